// custom_layer: extending encore with your own layer and your own op, then training with them
// on the library's training loop.
//
// GatedDense is a layer written exactly the way the built-in ones are (derive from nn::Module,
// register parameters and submodules, give it a forward). `swish` is a user-defined op with a
// hand-written gradient, written twice: through custom_gradient (a forward and a backward
// lambda) and as a Function subclass (like torch.autograd.Function); --swish picks one, and
// gradcheck compares both against finite differences before training. A small autoencoder made
// of them learns to reconstruct MNIST digits with nn::Trainer (progress bar, per-epoch test
// loss, metrics.json, history.csv, loss.png, checkpoints, --resume, Ctrl-C), then writes test
// digits against their reconstructions and a histogram of the learned gates.
//
//   build/examples/custom_layer [--epochs N] [--train-limit N] [--swish function] [--help]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "examples/common/common.h"
#include "nn/nn.h"

using namespace encore;

/// swish(x) = x * sigmoid(x), with its derivative sigmoid(x) (1 + x (1 - sigmoid(x))) written
/// by hand, in differentiable ops (so even second derivatives work). x: any shape -> same.
Tensor swish(const Tensor& x) {
  return custom_gradient(
      "swish", {x}, [](const Tensors& in) { return Tensors{in[0] * sigmoid(in[0])}; },
      [](const Tensors& in, const Tensors&, const Tensors& g) {
        Tensor s = sigmoid(in[0]);
        return Tensors{g[0] * s * (1.0 + in[0] * (1.0 - s))};
      })[0];
}

/// The same op as a Function: forward saves what backward needs.
class SwishFunction : public Function {
 public:
  const char* name() const override { return "swish_function"; }
  Tensors forward(const Tensors& in) override {
    save_for_backward({in[0]});
    return {in[0] * sigmoid(in[0])};
  }
  Tensors backward(const Tensors& dout) override {
    // NOTE: sigmoid is recomputed from x here rather than saved from forward: forward runs
    // unrecorded, so a saved sigmoid(x) would be a constant to an outer tape and second
    // derivatives would miss its dependence on x (gradgradcheck below catches exactly that).
    const Tensor& x = saved()[0];
    Tensor s = sigmoid(x);
    return {dout[0] * s * (1.0 + x * (1.0 - s))};
  }
};

/// x: any shape -> same.
Tensor swish_function(const Tensor& x) { return apply(std::make_shared<SwishFunction>(), {x})[0]; }

/// A dense layer whose outputs pass through a learned per-feature gate.
class GatedDense : public nn::Module {
 public:
  GatedDense(int64_t in, int64_t out, Generator& gen)
      : fc_(register_module("fc",
                            std::make_shared<nn::Linear>(in, out, nn::LinearOptions{.gen = &gen}))),
        gate_(register_parameter("gate", zeros({out}))) {}
  /// x: (N, in) -> (N, out)
  Tensor forward(const Tensor& x) { return fc_->forward(x) * sigmoid(gate_); }
  /// The gates sigmoid(gate), (out).
  Tensor gates() const {
    NoGrad no_grad;
    return sigmoid(gate_);
  }
  std::string describe() const override {
    return "GatedDense(" + std::to_string(fc_->in_features()) + " -> " +
           std::to_string(fc_->out_features()) + ")";
  }

 private:
  std::shared_ptr<nn::Linear> fc_;
  Tensor gate_;
};

/// 784 -> 256 -> code -> 256 -> 784, swish inside, sigmoid output.
class TinyAutoencoder : public nn::Module {
 public:
  TinyAutoencoder(int64_t code, bool use_function, Generator& gen)
      : enc1_(register_module("enc1", std::make_shared<GatedDense>(784, 256, gen))),
        enc2_(register_module("enc2", std::make_shared<GatedDense>(256, code, gen))),
        dec1_(register_module("dec1", std::make_shared<GatedDense>(code, 256, gen))),
        dec2_(register_module(
            "dec2", std::make_shared<nn::Linear>(256, 784, nn::LinearOptions{.gen = &gen}))),
        use_function_(use_function) {}
  /// x: (N, 784) -> code (N, code)
  Tensor encode(const Tensor& x) { return enc2_->forward(act(enc1_->forward(x))); }
  /// z: (N, code) -> (N, 784) in (0, 1)
  Tensor decode(const Tensor& z) { return sigmoid(dec2_->forward(act(dec1_->forward(z)))); }
  /// x: (N, 784) in [0, 1] -> reconstruction (N, 784)
  Tensor forward(const Tensor& x) { return decode(encode(x)); }
  /// Mean binary cross-entropy of the reconstruction, a scalar.
  Tensor loss(const Tensor& x) { return nn::binary_cross_entropy(forward(x), x); }
  std::string describe() const override { return "TinyAutoencoder"; }
  const GatedDense& layer(int i) const { return i == 0 ? *enc1_ : i == 1 ? *enc2_ : *dec1_; }

 private:
  Tensor act(const Tensor& x) const { return use_function_ ? swish_function(x) : swish(x); }
  std::shared_ptr<GatedDense> enc1_, enc2_, dec1_;
  std::shared_ptr<nn::Linear> dec2_;
  bool use_function_;
};

/// gradcheck of one swish implementation in f64 at a few points, kinks and tails included.
double check_swish(const char* which, const GradcheckFn& fn) {
  Tensor x = tensor({-6.0, -1.5, -0.1, 0.0, 0.3, 2.0, 7.0}, DType::f64);
  GradcheckResult r = gradcheck(fn, {x});
  ENCORE_CHECK(r.ok, "gradcheck", which, " fails gradcheck: ", r.message);
  GradcheckResult r2 = gradgradcheck(fn, {x});
  ENCORE_CHECK(r2.ok, "gradgradcheck", which, " fails gradgradcheck: ", r2.message);
  std::printf("gradcheck %s: first order max error %.2e, second order %.2e\n", which,
              r.max_abs_error, r2.max_abs_error);
  return std::max(r.max_abs_error, r2.max_abs_error);
}

int main(int argc, char** argv) {
  CLI::App app{"custom_layer: a user-written layer and op, trained as an MNIST autoencoder"};
  examples::CommonFlags f{.epochs = 2,
                          .batch_size = 128,
                          .lr = 2e-3,
                          .out = "out/custom_layer",
                          .train_limit = 10000,
                          .test_limit = 1000};
  examples::add_common_flags(app, f);
  int64_t code = 32;
  std::string which = "custom_gradient";
  app.add_option("--code", code, "code size")->capture_default_str()->check(CLI::Range(1, 784));
  app.add_option("--swish", which, "swish implementation: custom_gradient or function")
      ->capture_default_str()
      ->check(CLI::IsMember({"custom_gradient", "function"}));
  CLI11_PARSE(app, argc, argv);

  return examples::run("custom_layer", [&] {
    examples::setup(f);
    Generator gen(f.seed);
    TinyAutoencoder model(code, which == "function", gen);
    if (examples::prepare_model(model, f)) return;
    std::printf("%s", model.summary().c_str());
    double grad_error =
        check_swish("swish (custom_gradient)", [](const Tensors& in) { return swish(in[0]); });
    double function_error =
        check_swish("swish (Function)", [](const Tensors& in) { return swish_function(in[0]); });
    grad_error = std::max(grad_error, function_error);

    nn::MnistBytes train =
        nn::load_mnist_bytes(f.data, /*train=*/true, /*flatten=*/true, f.train_limit);
    nn::Mnist test = nn::load_mnist(f.data, /*train=*/false, /*flatten=*/true, f.test_limit);
    std::printf("MNIST: %lld training and %lld test images from %s\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.images.size(0)),
                f.data.c_str());

    optim::Adam opt(model.parameters(), {.lr = f.lr});
    nn::Batches batches(train, {.batch_size = f.batch_size, .drop_last = true}, gen);
    nn::Trainer trainer(model, opt, gen, examples::fit_options(f, "custom_layer", app));
    auto test_bce = [&] { return model.loss(test.images).item(); };
    nn::FitResult r = trainer.fit(
        batches, [&](const Tensors& b) { return model.loss(b[0]); },
        [&] {
          return nn::Metrics{{"val_loss", test_bce()}};
        });
    if (r.interrupted) return;

    std::map<std::string, std::string> notes;
    const std::string grid = trainer.out_path("reconstructions.png");
    const int64_t shown = std::min<int64_t>(16, test.images.size(0) / 2 * 2);
    if (!grid.empty() && shown >= 2) {
      model.eval();
      NoGrad no_grad;
      Tensor x = raw::narrow(test.images, 0, 0, shown);
      Tensor y = model.forward(x);
      // Rows alternate: test digits, then their reconstructions (8 per row).
      int64_t half = shown / 2;
      Tensor rows = raw::concat({raw::narrow(x, 0, 0, half), raw::narrow(y, 0, 0, half),
                                 raw::narrow(x, 0, half, half), raw::narrow(y, 0, half, half)},
                                0);
      io::write_image_grid(grid, raw::reshape(rows, {2 * shown, 1, 28, 28}), half);
      notes["reconstructions"] = grid + " (rows: test digits, their reconstructions)";
      std::printf("wrote %s (rows: test digits, their reconstructions)\n", grid.c_str());
    }
    const std::string gates = trainer.out_path("gates.png");
    if (!gates.empty()) {
      std::vector<plot::Series> series;
      const char* names[] = {"enc1 (256)", "enc2 (code)", "dec1 (256)"};
      for (int i = 0; i < 3; ++i)
        series.push_back({.label = names[i], .y = model.layer(i).gates().to_vector<double>()});
      if (plot::histogram(gates, series, 30,
                          {.title = "custom_layer: learned gates sigmoid(gate) per layer",
                           .xlabel = "gate",
                           .ylabel = "features"})) {
        notes["gates"] = gates;
        std::printf("wrote %s (histogram of the learned gates)\n", gates.c_str());
      }
    }
    const std::string weights = trainer.out_path("custom_layer.safetensors");
    if (!weights.empty()) {
      model.save(weights);
      notes["weights"] = weights + " (keys like enc1.fc.weight, enc1.gate; loads with --init)";
      std::printf("wrote %s (keys like enc1.fc.weight, enc1.gate)\n", weights.c_str());
    }
    trainer.write_metrics(
        {{"test_bce", r.final_metrics.at("val_loss")}, {"swish_gradcheck_max_error", grad_error}},
        notes);
  });
}
