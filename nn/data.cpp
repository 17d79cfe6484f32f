// Batches, MNIST loading and the seeds' synthetic sequences.
#include "nn/data.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <utility>
#include <vector>

namespace encore::nn {

Batches::Batches(Tensors data, BatchesOptions o, Generator& gen)
    : data_(std::move(data)), o_(o), gen_(&gen) {
  ENCORE_CHECK(!data_.empty(), "Batches", "no tensors given");
  ENCORE_CHECK(o.batch_size > 0, "Batches", "batch_size must be positive, got ", o.batch_size);
  for (size_t i = 0; i < data_.size(); ++i) {
    ENCORE_CHECK(data_[i].defined() && data_[i].dim() >= 1, "Batches", "tensor ", i,
                 " must have at least one dimension");
    ENCORE_CHECK(data_[i].size(0) == data_[0].size(0), "Batches", "tensor ", i, " has shape ",
                 data_[i].shape(), " but tensor 0 has shape ", data_[0].shape(),
                 "; the first dimensions must agree");
  }
  n_ = data_[0].size(0);
  // NOTE: index_select makes its input contiguous on every call, so a strided data set would
  // be copied whole for every shuffled batch; copy it once here instead (a no-op when it is).
  if (o_.shuffle)
    for (Tensor& t : data_) t = t.contiguous();
}

Batches::Batches(const MnistBytes& mnist, BatchesOptions o, Generator& gen)
    : Batches(Tensors{mnist.labels()}, o, gen) {
  bytes_ = std::make_shared<const MnistBytes>(mnist);
}

int64_t Batches::size() const {
  return o_.drop_last ? n_ / o_.batch_size : (n_ + o_.batch_size - 1) / o_.batch_size;
}

void Batches::reshuffle() {
  if (o_.shuffle) order_ = permutation(n_, *gen_);
}

void Batches::set_order(const Tensor& order) {
  ENCORE_CHECK(o_.shuffle, "Batches::set_order", "this Batches does not shuffle");
  ENCORE_CHECK(order.defined(), "Batches::set_order", "the order is undefined");
  ENCORE_CHECK(order.dtype() == DType::i64 && order.shape() == Shape{n_}, "Batches::set_order",
               "expected an i64 permutation of shape ", Shape{n_}, ", got ", order.dtype(),
               " of shape ", order.shape());
  Tensor o = order.contiguous().clone();
  const int64_t* p = o.data<int64_t>();
  std::vector<bool> seen(static_cast<size_t>(n_), false);
  for (int64_t i = 0; i < n_; ++i) {
    ENCORE_CHECK(p[i] >= 0 && p[i] < n_ && !seen[static_cast<size_t>(p[i])], "Batches::set_order",
                 "not a permutation of 0..", n_ - 1, ": element ", i, " is ", p[i]);
    seen[static_cast<size_t>(p[i])] = true;
  }
  order_ = o;
}

Batches::iterator Batches::begin() {
  reshuffle();
  return iterator(this, 0);
}

Tensor Batches::single(int64_t i) const {
  // A Batches over MNIST bytes hands out images and labels: two tensors.
  const size_t tensors = data_.size() + (bytes_ ? 1 : 0);
  ENCORE_CHECK(tensors == 1, "Batches::single", "this Batches holds ", tensors,
               " tensors; single() is for one (use batch(i), one tensor per data tensor)");
  return batch(i)[0];
}

Tensors Batches::batch(int64_t i) const {
  ENCORE_CHECK(i >= 0 && i < size(), "Batches::batch", "batch ", i, " out of range (", size(),
               " batches)");
  int64_t start = i * o_.batch_size, len = std::min(o_.batch_size, n_ - start);
  Tensors out;
  out.reserve(data_.size());
  if (o_.shuffle) {
    // NOTE: without this, indexing batch(i) without begin() would silently never shuffle.
    if (!order_.defined()) order_ = permutation(n_, *gen_);
    Tensor idx = raw::narrow(order_, 0, start, len);
    if (bytes_) out.push_back(bytes_->images(idx));
    for (const Tensor& t : data_) out.push_back(raw::index_select(t, 0, idx));
  } else {
    if (bytes_) out.push_back(bytes_->images(start, len));
    for (const Tensor& t : data_) out.push_back(raw::narrow(t, 0, start, len));
  }
  return out;
}

std::string mnist_dir() {
  // The same rule as scripts/fetch-data, which writes the files into $ENCORE_DATA_DIR itself.
  if (const char* d = std::getenv("ENCORE_DATA_DIR"); d && *d) return d;
  return "data/mnist";
}

namespace {
constexpr int64_t kPixels = 28 * 28;

/// The image and label files of a split, checked to exist.
std::pair<std::string, std::string> mnist_files(const char* op, const std::string& dir,
                                                bool train) {
  std::string prefix = train ? "train" : "t10k";
  std::string img = dir + "/" + prefix + "-images-idx3-ubyte";
  std::string lab = dir + "/" + prefix + "-labels-idx1-ubyte";
  for (const std::string& f : {img, lab})
    ENCORE_CHECK(std::filesystem::exists(f), op, "missing ", f,
                 "; run scripts/fetch-data to download MNIST");
  return {img, lab};
}

/// Throws unless every label is a digit.
void check_labels(const char* op, const std::string& file, const Tensor& labels) {
  const int64_t* pl = labels.data<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i)
    ENCORE_CHECK(pl[i] >= 0 && pl[i] <= 9, op, file, ": label ", i, " is ", pl[i],
                 ", expected 0..9");
}
}  // namespace

MnistBytes::MnistBytes(std::shared_ptr<const void> owner, const unsigned char* pixels,
                       Tensor labels, bool flatten)
    : owner_(std::move(owner)), pixels_(pixels), labels_(std::move(labels)), flatten_(flatten) {
  ENCORE_CHECK(labels_.defined() && labels_.dtype() == DType::i64 && labels_.dim() == 1,
               "MnistBytes", "labels must be a 1-d i64 tensor, got ",
               labels_.defined() ? labels_.shape() : Shape{});
  labels_ = labels_.contiguous();
  n_ = labels_.size(0);
  ENCORE_CHECK(pixels_ != nullptr || n_ == 0, "MnistBytes", "no pixels for ", n_, " labels");
}

Tensor MnistBytes::convert(const int64_t* rows, int64_t start, int64_t len) const {
  Tensor out = flatten_ ? Tensor({len, kPixels}, DType::f32) : Tensor({len, 1, 28, 28}, DType::f32);
  float* po = out.data<float>();
#pragma omp parallel for if (len * kPixels >= kParallelGrain) schedule(static)
  for (int64_t r = 0; r < len; ++r) {
    const unsigned char* src = pixels_ + (rows ? rows[r] : start + r) * kPixels;
    float* dst = po + r * kPixels;
    // The same arithmetic as load_mnist (the byte as float, divided by 255), so the values are
    // bitwise the same.
    for (int64_t j = 0; j < kPixels; ++j) dst[j] = static_cast<float>(src[j]) / 255.0f;
  }
  return out;
}

Tensor MnistBytes::images(int64_t start, int64_t len) const {
  ENCORE_CHECK(start >= 0 && len >= 0 && start <= n_ - len, "MnistBytes::images", "rows [", start,
               ", ", start + len, ") out of range for ", n_, " images");
  return convert(nullptr, start, len);
}

Tensor MnistBytes::images(const Tensor& index) const {
  ENCORE_CHECK(index.defined() && index.dtype() == DType::i64 && index.dim() == 1,
               "MnistBytes::images", "expected a 1-d i64 index, got ",
               index.defined() ? index.shape() : Shape{});
  Tensor idx = index.contiguous();
  const int64_t* p = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i)
    ENCORE_CHECK(p[i] >= 0 && p[i] < n_, "MnistBytes::images", "index ", i, " is ", p[i],
                 ", out of range for ", n_, " images");
  return convert(p, 0, idx.numel());
}

MnistBytes load_mnist_bytes(const std::string& dir, bool train, bool flatten, int64_t limit) {
  const char* op = "load_mnist_bytes";
  auto [img, lab] = mnist_files(op, dir, train);
  io::IdxBytes images = io::read_idx_bytes(img);
  Tensor labels = io::read_idx(lab, DType::i64);
  ENCORE_CHECK(images.shape.size() == 3 && images.shape[1] == 28 && images.shape[2] == 28 &&
                   labels.dim() == 1 && labels.size(0) == images.shape[0],
               op, "unexpected shapes ", images.shape, " and ", labels.shape(), " in ", dir);
  // The bytes past the limit stay in the buffer (it is the file, read once): only the labels
  // are cut.
  if (limit > 0 && limit < labels.size(0)) labels = raw::narrow(labels, 0, 0, limit).clone();
  check_labels(op, lab, labels);
  return MnistBytes(images.buffer, images.data, labels, flatten);
}

Mnist load_mnist(const std::string& dir, bool train, bool flatten, int64_t limit) {
  std::string prefix = train ? "train" : "t10k";
  std::string img = dir + "/" + prefix + "-images-idx3-ubyte";
  std::string lab = dir + "/" + prefix + "-labels-idx1-ubyte";
  for (const std::string& f : {img, lab})
    ENCORE_CHECK(std::filesystem::exists(f), "load_mnist", "missing ", f,
                 "; run scripts/fetch-data to download MNIST");
  Tensor images = io::read_idx(img, DType::f32);
  Tensor labels = io::read_idx(lab, DType::i64);
  ENCORE_CHECK(images.dim() == 3 && images.size(1) == 28 && images.size(2) == 28 &&
                   labels.dim() == 1 && labels.size(0) == images.size(0),
               "load_mnist", "unexpected shapes ", images.shape(), " and ", labels.shape(), " in ",
               dir);
  if (limit > 0 && limit < images.size(0)) {
    images = raw::narrow(images, 0, 0, limit).clone();
    labels = raw::narrow(labels, 0, 0, limit).clone();
  }
  const int64_t n = images.size(0);
  const int64_t* pl = labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    ENCORE_CHECK(pl[i] >= 0 && pl[i] <= 9, "load_mnist", lab, ": label ", i, " is ", pl[i],
                 ", expected 0..9");
  // NOTE: divide, not multiply by 1/255: 255 * float(1/255) is not exactly 1. In place, as
  // images is a fresh tensor (a second 188 MB copy of the training set is not needed).
  float* px = images.data<float>();
  const int64_t total = images.numel();
#pragma omp parallel for if (total >= kParallelGrain) schedule(static)
  for (int64_t i = 0; i < total; ++i) px[i] /= 255.0f;
  images = flatten ? raw::reshape(images, {n, 784}) : raw::reshape(images, {n, 1, 28, 28});
  return {images, labels};
}

Sequences padded_onehot_sequences(int64_t n, int64_t max_len, int64_t dim, Generator& gen) {
  ENCORE_CHECK(n > 0 && max_len > 0 && dim > 0, "padded_onehot_sequences",
               "n, max_len and dim must be positive, got ", n, ", ", max_len, ", ", dim);
  Tensor x = zeros({n, max_len, dim});
  Tensor lengths = empty({n}, DType::i64);
  float* px = x.data<float>();
  int64_t* pl = lengths.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    // round(uniform(0, max_len)): nearbyint rounds half to even, as Python's round.
    int64_t len = static_cast<int64_t>(std::nearbyint(gen.uniform() * double(max_len)));
    pl[i] = len;
    for (int64_t t = 0; t < std::min(len, dim); ++t) px[(i * max_len + t) * dim + t] = 1.0f;
  }
  return {x, lengths};
}

}  // namespace encore::nn
