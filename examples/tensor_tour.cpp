// tensor_tour: a short walk through what encore's tensor layer does today: creating tensors,
// views that share storage, broadcasting arithmetic, matmul, reductions, errors that name
// shapes, and a PNG grid of images written to out/. It uses only tensor/ (the raw kernels, no
// gradients); the flagship autoencoder demo replaces it once autograd/ and nn/ exist.
//
//   build/examples/tensor_tour [--out DIR] [--mnist DIR] [--seed N] [--count N]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>

#include "tensor/tensor.h"

namespace {

using encore::DType;
using encore::Tensor;
using encore::raw::BinaryOp;
using encore::raw::ReduceOp;
using encore::raw::UnaryOp;
namespace raw = encore::raw;
namespace fs = std::filesystem;

void section(const std::string& title) { std::cout << "\n== " << title << " ==\n"; }

void show(const std::string& what, const Tensor& t) {
  std::cout << what << "    (shape " << t.shape() << ", strides " << t.strides()
            << (t.is_contiguous() ? ")" : ", a non-contiguous view)") << "\n"
            << t << "\n";
}

/// n images (n, size, size) of one soft blob each, exp(-((x-cx)^2 + (y-cy)^2) / (2 s^2)) with
/// a random centre and width: the coordinates (1, 1, W) and (1, H, 1) broadcast against the
/// per-image parameters (n, 1, 1), so no loop over pixels is written here.
Tensor random_blobs(int64_t n, int64_t size, encore::Generator& gen) {
  const double sz = static_cast<double>(size);
  Tensor xs = raw::view(encore::arange(0, sz), {1, 1, size});
  Tensor ys = raw::view(encore::arange(0, sz), {1, size, 1});
  Tensor cx = encore::rand({n, 1, 1}, gen, DType::f32, 0.25 * sz, 0.75 * sz);
  Tensor cy = encore::rand({n, 1, 1}, gen, DType::f32, 0.25 * sz, 0.75 * sz);
  Tensor s = encore::rand({n, 1, 1}, gen, DType::f32, 0.08 * sz, 0.25 * sz);
  // tensor/ has no operators (those are autograd's differentiable ops): name the raw kernels
  // this formula uses, so it reads as the formula.
  auto sub = [](const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::sub, a, b); };
  auto add = [](const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::add, a, b); };
  auto div = [](const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::div, a, b); };
  auto square = [](const Tensor& t) { return raw::unary(UnaryOp::square, t); };
  auto scale = [](const Tensor& t, double k) { return raw::unary(UnaryOp::mul_scalar, t, k); };
  auto exp_neg = [](const Tensor& t) {
    return raw::unary(UnaryOp::exp, raw::unary(UnaryOp::neg, t));
  };
  Tensor dx2 = square(sub(xs, cx));       // (n, 1, W)
  Tensor dy2 = square(sub(ys, cy));       // (n, H, 1)
  Tensor d2 = add(dx2, dy2);              // (n, H, W)
  Tensor two_s2 = scale(square(s), 2.0);  // (n, 1, 1)
  return exp_neg(div(d2, two_s2));        // (n, H, W)
}

/// The first n MNIST images in dir as (n, 28, 28) in [0, 1], or an undefined tensor when dir
/// holds no images file.
Tensor mnist_images(const fs::path& dir, int64_t n) {
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte",
                           "train-images-idx3-ubyte", "train-images.idx3-ubyte"}) {
    if (!fs::exists(dir / name)) continue;
    Tensor all = encore::io::read_idx((dir / name).string());  // (N, 28, 28), 0..255
    Tensor first = raw::narrow(all, 0, 0, std::min<int64_t>(n, all.size(0)));
    std::cout << "read " << first.size(0) << " images from " << (dir / name).string() << "\n";
    return raw::unary(UnaryOp::mul_scalar, first, 1.0 / 255);
  }
  std::cout << "no MNIST images file (t10k-images-idx3-ubyte) in " << dir.string() << "\n";
  return Tensor();
}

void tour(const fs::path& out_dir, const std::string& mnist_dir, uint64_t seed, int64_t count) {
  section("creating tensors");
  // arange's dtype follows NumPy: integer arguments give i64, a floating one gives f32.
  show("arange(5) (integers: i64)", encore::arange(5));
  Tensor a = raw::view(encore::arange(0.0, 12.0), {3, 4});
  show("a = arange(0.0, 12.0).view(3, 4) (floating: f32)", a);
  show("eye(3, 3, f64)", encore::eye(3, 3, DType::f64));

  section("views share storage: no copies");
  Tensor at = raw::transpose(a, 0, 1);
  show("a.transpose(0, 1)", at);
  Tensor every_other = raw::slice(a, 1, 0, 4, 2);
  show("a[:, 0::2]", every_other);
  Tensor row = raw::select(a, 0, 1);
  show("a[1].expand(3, 4) (stride 0)", raw::expand(row, {3, 4}));
  bool shared = at.storage() == a.storage() && every_other.storage() == a.storage() &&
                row.storage() == a.storage();
  std::cout << "all three views use a's storage: " << (shared ? "yes" : "no") << "\n";
  every_other.fill_(-1);
  show("after a[:, 0::2].fill_(-1), a itself", a);

  section("broadcasting arithmetic");
  Tensor col = raw::view(encore::arange(1.0, 4.0), {3, 1});
  Tensor tens = encore::tensor({10, 20, 30, 40});
  show("col (3, 1) * tens (4) -> (3, 4)", raw::binary(BinaryOp::mul, col, tens));
  show("i64 arange(4) + f32 0.5 promotes to f32",
       raw::binary(BinaryOp::add, encore::arange(4), encore::scalar(0.5)));
  show("col > 1.5 gives 1/0 in the promoted dtype",
       raw::binary(BinaryOp::gt, col, encore::scalar(1.5)));
  show("sigmoid([-2, 0, 2])", raw::unary(UnaryOp::sigmoid, encore::tensor({-2, 0, 2})));

  section("matmul through OpenBLAS");
  Tensor x = raw::view(encore::arange(0.0, 6.0), {2, 3});
  Tensor w = raw::view(encore::arange(0.0, 6.0), {2, 3});  // (out, in) as a Linear layer keeps it
  show("x @ w^T, the transposed view passed to sgemm as a flag",
       raw::matmul(x, raw::transpose(w, 0, 1)));
  show("linear(x, w, b = [100, 200])", raw::linear(x, w, encore::tensor({100, 200})));

  section("reductions");
  encore::Generator gen(seed);
  Tensor r = encore::randn({3, 5}, gen);
  show("r = randn(3, 5)", r);
  show("sum of r over dim 1, keepdim", raw::reduce(ReduceOp::sum, r, {1}, true));
  show("mean of r", raw::reduce(ReduceOp::mean, r));
  show("argmax of r along dim 1", raw::argmax(r, 1));

  section("errors name the op and the shapes");
  try {
    raw::matmul(encore::zeros({128, 784}), encore::zeros({400, 784}));
  } catch (const encore::Error& e) {
    std::cout << "encore::Error: " << e.what() << "\n";
  }

  section("images");
  Tensor images;
  std::string what;
  if (!mnist_dir.empty()) {
    images = mnist_images(mnist_dir, count);
    what = "MNIST digits";
  }
  if (!images.defined()) {
    images = random_blobs(count, 28, gen);
    what = "random blobs (put MNIST in data/mnist to see digits)";
  }
  fs::create_directories(out_dir);
  const fs::path png = out_dir / "tensor_tour.png";
  encore::io::write_image_grid(png.string(), images, 8);
  std::cout << "wrote " << png.string() << ": a grid of " << images.size(0) << " " << images.size(1)
            << "x" << images.size(2) << " " << what << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A tour of encore's tensor layer; writes a PNG grid to --out."};
  std::string out = "out";
  std::string mnist;
  uint64_t seed = 0;
  int64_t count = 64;
  app.add_option("--out", out, "directory for the PNG")->capture_default_str();
  app.add_option("--mnist", mnist, "directory holding MNIST IDX files (optional)");
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_option("--count", count, "images in the grid")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  CLI11_PARSE(app, argc, argv);

  try {
    tour(out, mnist, seed, count);
  } catch (const encore::Error& e) {
    std::cerr << "tensor_tour failed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
