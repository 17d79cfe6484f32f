// Data: mini-batches over tensors, MNIST, and the synthetic data sets of the seeds.
#pragma once

#include <memory>
#include <string>

#include "../autograd/autograd.h"

namespace encore::nn {

class MnistBytes;

struct BatchesOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  /// Drop a last batch smaller than batch_size.
  bool drop_last = false;
};

/// Mini-batches of several tensors that share their first dimension (e.g. images and labels).
/// Each pass (each call to begin()) draws a new order from the Generator when shuffling:
///   for (const Tensors& b : batches) { Tensor x = b[0], y = b[1]; ... }
/// The Generator is held by reference and must outlive the Batches. With the same seed, the
/// passes come in bitwise the same orders; a checkpoint (nn/checkpoint.h) keeps the current
/// order so a run stopped mid-pass resumes with the same remaining batches.
class Batches {
 public:
  Batches(Tensors data, BatchesOptions options = {}, Generator& gen = default_generator());
  /// Mini-batches of MNIST kept as bytes: each batch is {images f32, labels i64}, only its
  /// rows converted (bitwise the values load_mnist gives), in the same orders as a Batches
  /// over {images, labels} with the same Generator, so checkpoints and resume work alike.
  ///   nn::Batches batches(nn::load_mnist_bytes(dir, true, true), {.batch_size = 128}, gen);
  Batches(const MnistBytes& mnist, BatchesOptions options = {},
          Generator& gen = default_generator());

  /// Number of batches in one pass.
  int64_t size() const;
  /// Number of examples.
  int64_t examples() const { return n_; }
  /// Batch i of the current order: index_select copies when shuffled, views (no copy) in the
  /// original order otherwise. When shuffling and no order has been drawn yet (batch() called
  /// before begin()), the first order is drawn here.
  Tensors batch(int64_t i) const;
  /// For a Batches over one tensor: batch i as that tensor (batch(i)[0]). Throws when this
  /// Batches holds more than one tensor.
  ///   nn::Batches images({mnist.images}, {.batch_size = 128});
  ///   for (int64_t i = 0; i < images.size(); ++i) { Tensor x = images.single(i); ... }
  Tensor single(int64_t i) const;
  /// Draws a new order (a no-op without shuffling).
  void reshuffle();
  /// The current order, an i64 permutation of 0..examples()-1; undefined when not shuffling
  /// or before the first order is drawn.
  const Tensor& order() const { return order_; }
  /// Replaces the current order (to resume a pass); throws unless this Batches shuffles and
  /// order is an i64 permutation of 0..examples()-1. The next begin() still draws a new one.
  void set_order(const Tensor& order);

  class iterator {
   public:
    iterator(const Batches* b, int64_t i) : b_(b), i_(i) {}
    Tensors operator*() const { return b_->batch(i_); }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const iterator& o) const { return i_ != o.i_; }

   private:
    const Batches* b_;
    int64_t i_;
  };
  /// Starts a pass: reshuffles when shuffling.
  iterator begin();
  iterator end() const { return iterator(this, size()); }

 private:
  Tensors data_;
  std::shared_ptr<const MnistBytes> bytes_;  // when set, batches are {its images, data_[0]}
  BatchesOptions o_;
  Generator* gen_;
  int64_t n_ = 0;
  mutable Tensor order_;  // i64 permutation, undefined when not shuffling or not yet drawn
};

/// MNIST images as f32 in [0, 1] and labels as i64.
struct Mnist {
  Tensor images;  ///< (N, 1, 28, 28), or (N, 784) when flattened
  Tensor labels;  ///< (N)
};

/// MNIST kept as its bytes (the training images take 47 MB, against 188 MB as f32), converted
/// to f32 in [0, 1] only for the rows asked for: the way to train on it without holding the
/// whole set as floats. Copies share the bytes.
///   nn::MnistBytes train = nn::load_mnist_bytes(nn::mnist_dir(), true, /*flatten=*/true);
///   nn::Batches batches(train, {.batch_size = 128}, gen);        // {images, labels}
///   Tensor first = train.images(0, 100);                          // (100, 784) f32
class MnistBytes {
 public:
  /// pixels: n * 784 bytes (n images of 28 x 28, row-major) in a buffer kept alive by owner;
  /// labels: (n) i64 in 0..9. flatten: images come as (n, 784), else (n, 1, 28, 28).
  MnistBytes(std::shared_ptr<const void> owner, const unsigned char* pixels, Tensor labels,
             bool flatten);

  /// Number of images.
  int64_t size() const { return n_; }
  const Tensor& labels() const { return labels_; }
  bool flattened() const { return flatten_; }
  /// Images [start, start + len) as f32 bytes / 255.
  Tensor images(int64_t start, int64_t len) const;
  /// The images of an i64 index tensor (1-d, each in 0..size()-1), in its order.
  Tensor images(const Tensor& index) const;
  /// Every image as f32: size() * 3 KB, for what needs the whole matrix at once.
  Tensor all_images() const { return images(0, n_); }

 private:
  Tensor convert(const int64_t* rows, int64_t start, int64_t len) const;

  std::shared_ptr<const void> owner_;
  const unsigned char* pixels_ = nullptr;
  Tensor labels_;
  bool flatten_ = false;
  int64_t n_ = 0;
};

/// Where the MNIST files live, as scripts/fetch-data puts them: $ENCORE_DATA_DIR if set, else
/// "data/mnist" (relative to the working directory, i.e. run from the repository root).
std::string mnist_dir();
/// Reads the train (60000) or test (10000) split from the IDX files in dir: images as the
/// bytes divided by 255 (as torchvision's ToTensor), labels 0..9. limit > 0 keeps the first
/// `limit` examples (any other value keeps all). Throws with a hint to run scripts/fetch-data
/// if files are missing.
Mnist load_mnist(const std::string& dir, bool train = true, bool flatten = false,
                 int64_t limit = -1);

/// The train or test split as load_mnist reads it (same checks, limit and flatten), kept as
/// bytes.
MnistBytes load_mnist_bytes(const std::string& dir, bool train = true, bool flatten = false,
                            int64_t limit = -1);

/// Seed 003's padded "moving one" sequences: n sequences of length round(uniform(0, max_len));
/// the element at time t is one-hot at t when t < dim, else all zeros (the seed's
/// getNotSoRandomList(t) for t in range(length)); post-padded with zero vectors to max_len.
/// Only the lengths are random. Returns {x (n, max_len, dim) f32, lengths (n) i64}.
struct Sequences {
  Tensor x;
  Tensor lengths;
};
Sequences padded_onehot_sequences(int64_t n, int64_t max_len = 10, int64_t dim = 8,
                                  Generator& gen = default_generator());

}  // namespace encore::nn
