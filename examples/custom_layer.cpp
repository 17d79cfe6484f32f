// custom_layer: extending encore with your own layer and your own op, then training with them.
//
// GatedDense is a layer written exactly the way the built-in ones are (derive from nn::Module,
// register parameters and submodules, give it a forward). `swish` is a user-defined op with a
// hand-written gradient, recorded through custom_gradient like any built-in. A small
// autoencoder made of them learns to reconstruct MNIST digits; the program prints the loss as
// it trains and writes inputs against reconstructions to a PNG.
//
//   build/examples/custom_layer [--mnist DIR] [--out DIR] [--epochs N] [--train N] [--seed N]
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "nn/nn.h"

using namespace encore;

/// swish(x) = x * sigmoid(x), with its derivative sigmoid(x) (1 + x (1 - sigmoid(x))) written
/// by hand, in differentiable ops (so even second derivatives would work).
Tensor swish(const Tensor& x) {
  return custom_gradient(
      "swish", {x}, [](const Tensors& in) { return Tensors{in[0] * sigmoid(in[0])}; },
      [](const Tensors& in, const Tensors&, const Tensors& g) {
        Tensor s = sigmoid(in[0]);
        return Tensors{g[0] * s * (1.0 + in[0] * (1.0 - s))};
      })[0];
}

/// A dense layer whose outputs pass through a learned per-feature gate.
class GatedDense : public nn::Module {
 public:
  GatedDense(int64_t in, int64_t out)
      : fc_(register_module("fc", std::make_shared<nn::Linear>(in, out))),
        gate_(register_parameter("gate", zeros({out}))) {}
  /// x: (N, in) -> (N, out)
  Tensor forward(const Tensor& x) { return fc_->forward(x) * sigmoid(gate_); }
  std::string describe() const override {
    return "GatedDense(" + std::to_string(fc_->in_features()) + " -> " +
           std::to_string(fc_->out_features()) + ")";
  }

 private:
  std::shared_ptr<nn::Linear> fc_;
  Tensor gate_;
};

/// 784 -> 256 -> 32 -> 256 -> 784, swish inside, sigmoid output.
class TinyAutoencoder : public nn::Module {
 public:
  TinyAutoencoder()
      : enc1_(register_module("enc1", std::make_shared<GatedDense>(784, 256))),
        enc2_(register_module("enc2", std::make_shared<GatedDense>(256, 32))),
        dec1_(register_module("dec1", std::make_shared<GatedDense>(32, 256))),
        dec2_(register_module("dec2", std::make_shared<nn::Linear>(256, 784))) {}
  Tensor encode(const Tensor& x) { return enc2_->forward(swish(enc1_->forward(x))); }
  Tensor decode(const Tensor& z) { return sigmoid(dec2_->forward(swish(dec1_->forward(z)))); }
  /// x: (N, 784) in [0, 1] -> reconstruction (N, 784)
  Tensor forward(const Tensor& x) { return decode(encode(x)); }
  std::string describe() const override { return "TinyAutoencoder"; }

 private:
  std::shared_ptr<GatedDense> enc1_, enc2_, dec1_;
  std::shared_ptr<nn::Linear> dec2_;
};

int main(int argc, char** argv) {
  CLI::App app{"encore: a user-defined layer and op, trained as an MNIST autoencoder"};
  std::string mnist = nn::mnist_dir(), out = "out";
  int epochs = 2;
  int64_t train_n = 10000, batch = 128;
  uint64_t seed = 0;
  app.add_option("--mnist", mnist, "folder with the MNIST IDX files (scripts/fetch-data)");
  app.add_option("--out", out, "folder for the pictures and the checkpoint");
  app.add_option("--epochs", epochs, "passes over the training images")->check(CLI::PositiveNumber);
  app.add_option("--train", train_n, "training images used")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "random seed");
  CLI11_PARSE(app, argc, argv);

  try {
    Generator gen(seed);
    default_generator().manual_seed(seed);
    nn::Mnist train = nn::load_mnist(mnist, true, /*flatten=*/true, train_n);
    nn::Mnist test = nn::load_mnist(mnist, false, /*flatten=*/true, 1000);
    std::cout << "MNIST: " << train.images.size(0) << " training and " << test.images.size(0)
              << " test images from " << mnist << "\n";

    auto model = std::make_shared<TinyAutoencoder>();
    std::cout << model->summary();
    optim::Adam opt(model->parameters(), {.lr = 2e-3});
    nn::Batches batches({train.images}, {.batch_size = batch, .drop_last = true}, gen);

    auto test_loss = [&] {
      NoGrad no_grad;
      return nn::binary_cross_entropy(model->forward(test.images), test.images).item();
    };
    std::printf("before training: test BCE %.4f\n", test_loss());
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      auto t0 = std::chrono::steady_clock::now();
      double total = 0;
      int64_t steps = 0;
      for (const Tensors& b : batches) {
        GradientTape tape;
        Tensor loss = nn::binary_cross_entropy(model->forward(b[0]), b[0]);
        opt.step(tape.gradient(loss, model->parameters()));
        total += loss.item();
        if (++steps % 20 == 0)
          std::printf("  epoch %d step %3lld/%lld  train BCE %.4f\n", epoch, (long long)steps,
                      (long long)batches.size(), total / double(steps));
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("epoch %d: train BCE %.4f, test BCE %.4f, %.1f s\n", epoch, total / double(steps),
                  test_loss(), secs);
    }

    std::filesystem::create_directories(out);
    Tensor x = raw::narrow(test.images, 0, 0, 16);
    Tensor y;
    {
      NoGrad no_grad;
      y = model->forward(x);
    }
    // Rows alternate: 8 test digits, then their reconstructions.
    Tensor grid = raw::concat({raw::narrow(x, 0, 0, 8), raw::narrow(y, 0, 0, 8),
                               raw::narrow(x, 0, 8, 8), raw::narrow(y, 0, 8, 8)},
                              0);
    std::string png = out + "/custom_layer_reconstructions.png";
    io::write_image_grid(png, raw::reshape(grid, {32, 1, 28, 28}), 8);
    std::string ckpt = out + "/custom_layer.safetensors";
    model->save(ckpt);
    std::cout << "wrote " << png << " (rows: test digits, reconstructions) and " << ckpt
              << " (keys like enc1.fc.weight, enc1.gate)\n";
  } catch (const Error& e) {
    std::cerr << "custom_layer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
