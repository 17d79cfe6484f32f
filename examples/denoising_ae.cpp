// denoising_ae: a denoising autoencoder on MNIST (seed 002's closing section; Vincent et al.
// 2008). The model (seed 002's conv autoencoder, or with --model dense seed 004's dense one)
// sees each training batch corrupted afresh (Gaussian noise --noise-sigma, masking
// --mask-prob, clipped to [0, 1]) and learns to reproduce the clean batch. In the same run, on
// the same batches and from the same initial weights, a plain autoencoder of the same kind
// learns to reproduce clean inputs. Both are then fed the same corrupted test images (drawn
// once, from their own seed); their errors against the clean images are the result, and the
// plain model's minus the denoiser's is the denoising gain.
//
// The two models train as one Module with one optimizer on the sum of their losses; their
// parameters are disjoint and Adam's update is per parameter, so each trains exactly as it
// would alone. The progress line shows that sum; the per-epoch metrics show each.
//
// Writes <out>/denoising.png (rows: noisy / denoised / plain autoencoder / clean) beside the
// training loop's metrics.json, history.csv, loss.png and checkpoint.
//
//   build/examples/denoising_ae [--model conv|dense] [--noise-sigma 0.5] [--mask-prob 0]
//                               [--epochs 10] [--batch-size 1000] [--lr 1e-4] ...
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "examples/common/common.h"
#include "models/dense_autoencoder.h"
#include "models/models.h"
#include "nn/train.h"

using namespace encore;

namespace {

/// The denoiser and the plain autoencoder, trained side by side. Parameters "denoiser.*" and
/// "plain.*".
template <class M>
class DenoisingPair : public nn::Module {
 public:
  DenoisingPair(std::shared_ptr<M> denoiser, std::shared_ptr<M> plain)
      : denoiser_(register_module("denoiser", std::move(denoiser))),
        plain_(register_module("plain", std::move(plain))) {}
  M& denoiser() { return *denoiser_; }
  M& plain() { return *plain_; }
  std::string describe() const override { return "DenoisingPair(" + denoiser_->describe() + ")"; }

 private:
  std::shared_ptr<M> denoiser_, plain_;
};

struct Settings {
  models::CorruptionOptions corruption;
  int64_t latent = 100, channels = 32;  // conv
  int64_t code = 20;                    // dense
  std::string dense_loss = "l2";
};

/// A model's reconstruction as images (N, 1, 28, 28), whatever shape its forward returns.
template <class M>
Tensor reconstruct(M& model, const Tensor& x) {
  Tensor y = model.forward(x);
  return reshape(y, {y.size(0), 1, 28, 28});
}

/// Rows: noisy, denoised, plain autoencoder, clean, for 8 test digits; twice when there are 16.
template <class M>
void write_picture(const std::string& png, DenoisingPair<M>& pair, const Tensor& noisy,
                   const Tensor& clean) {
  NoGrad no_grad;
  Tensors rows;
  const int64_t blocks = std::min<int64_t>(2, clean.size(0) / 8);
  for (int64_t b = 0; b < blocks; ++b) {
    Tensor in = narrow(noisy, 0, 8 * b, 8);
    rows.push_back(reshape(in, {8, 1, 28, 28}));
    rows.push_back(reconstruct(pair.denoiser(), in));
    rows.push_back(reconstruct(pair.plain(), in));
    rows.push_back(reshape(narrow(clean, 0, 8 * b, 8), {8, 1, 28, 28}));
  }
  io::write_image_grid(png, concat(rows, 0), 8);
}

template <class M>
void train_pair(const examples::CommonFlags& f, const CLI::App& app, const Settings& s,
                const std::shared_ptr<M>& denoiser, const std::shared_ptr<M>& plain, bool flatten) {
  DenoisingPair<M> pair(denoiser, plain);
  if (examples::prepare_model(pair, f)) return;
  std::printf("%s", pair.summary().c_str());

  nn::MnistBytes train = nn::load_mnist_bytes(f.data, /*train=*/true, flatten, f.train_limit);
  nn::Mnist test = nn::load_mnist(f.data, /*train=*/false, flatten, f.test_limit);
  const models::Corruption corruption(s.corruption);
  // The test corruption is drawn once, from its own seed: both models see the same inputs.
  Generator test_gen(f.seed + 1000003);
  const Tensor noisy_test = corruption.apply(test.images, test_gen);
  std::printf("MNIST: %lld training and %lld test images from %s; %s\n",
              static_cast<long long>(train.size()), static_cast<long long>(test.images.size(0)),
              f.data.c_str(), corruption.describe().c_str());

  Generator gen(f.seed);
  optim::Adam opt(pair.parameters(), {.lr = f.lr});
  nn::Batches batches(train, {.batch_size = f.batch_size}, gen);
  nn::FitOptions fo = examples::fit_options(f, "denoising_ae", app);
  fo.val_metric = "denoiser_noisy_bce";
  nn::Trainer trainer(pair, opt, gen, fo);

  auto error = [&](M& model, const Tensor& input) {
    return models::reconstruction_error([&](const Tensor& x) { return model.forward(x); }, input,
                                        test.images);
  };
  auto evaluate = [&] {
    const models::ReconstructionError d = error(pair.denoiser(), noisy_test);
    const models::ReconstructionError p = error(pair.plain(), noisy_test);
    return nn::Metrics{{"denoiser_noisy_bce", d.bce},
                       {"denoiser_noisy_squared_error", d.squared_error},
                       {"plain_noisy_bce", p.bce},
                       {"plain_noisy_squared_error", p.squared_error}};
  };
  auto loss = [&](const Tensors& b) {
    return models::denoising_loss(pair.denoiser(), b[0], corruption, gen) + pair.plain().loss(b[0]);
  };
  nn::FitResult r = trainer.fit(batches, loss, evaluate);
  if (r.interrupted) return;

  // The final comparison, in eval mode: on the noisy test images (the result), on the clean
  // ones (what denoising costs on uncorrupted inputs), and the noisy input itself.
  pair.eval();
  NoGrad no_grad;
  nn::Metrics m = r.final_metrics;
  const models::ReconstructionError dc = error(pair.denoiser(), test.images);
  const models::ReconstructionError pc = error(pair.plain(), test.images);
  m["denoiser_clean_bce"] = dc.bce;
  m["denoiser_clean_squared_error"] = dc.squared_error;
  m["plain_clean_bce"] = pc.bce;
  m["plain_clean_squared_error"] = pc.squared_error;
  m["noisy_input_squared_error"] =
      models::reconstruction_error([](const Tensor& x) { return x; }, noisy_test, test.images)
          .squared_error;
  m["denoising_gain_bce"] = m.at("plain_noisy_bce") - m.at("denoiser_noisy_bce");
  m["denoising_gain_squared_error"] =
      m.at("plain_noisy_squared_error") - m.at("denoiser_noisy_squared_error");

  const std::string png = trainer.out_path("denoising.png");
  const bool picture = !png.empty() && test.images.size(0) >= 8;
  if (picture) write_picture(png, pair, noisy_test, test.images);
  std::map<std::string, std::string> notes = {{"corruption", corruption.describe()}};
  if (picture)
    notes["denoising.png"] =
        "rows: noisy test digits, the denoiser's output, the plain autoencoder's output on the "
        "same noisy digits, the clean digits (two blocks of 8)";
  trainer.write_metrics(m, notes);
  std::printf(
      "on noisy test images against the clean ones: denoiser BCE %.5f, squared error %.3f; "
      "plain autoencoder BCE %.5f, squared error %.3f; gain %.5f BCE, %.3f squared error "
      "(the noisy input itself: %.3f)\n",
      m.at("denoiser_noisy_bce"), m.at("denoiser_noisy_squared_error"), m.at("plain_noisy_bce"),
      m.at("plain_noisy_squared_error"), m.at("denoising_gain_bce"),
      m.at("denoising_gain_squared_error"), m.at("noisy_input_squared_error"));
  if (picture) std::printf("wrote %s\n", png.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"denoising_ae: a denoising autoencoder on MNIST beside a plain one"};
  examples::CommonFlags f{.epochs = 10, .batch_size = 1000, .lr = 1e-4, .out = "out/denoising_ae"};
  examples::add_common_flags(app, f);
  Settings s;
  std::string model = "conv";
  app.add_option("--model", model, "conv (seed 002) or dense (seed 004)")
      ->capture_default_str()
      ->check(CLI::IsMember({"conv", "dense"}));
  app.add_option("--noise-sigma", s.corruption.noise_sigma,
                 "standard deviation of the Gaussian noise added to the inputs")
      ->capture_default_str()
      ->check(examples::finite_non_negative());
  app.add_option("--mask-prob", s.corruption.mask_prob,
                 "probability that an input pixel is set to 0")
      ->capture_default_str()
      ->check(examples::probability());
  app.add_option("--latent", s.latent, "conv: code size")
      ->capture_default_str()
      ->check(examples::layer_width());
  app.add_option("--channels", s.channels, "conv: encoder filters c")
      ->capture_default_str()
      ->check(examples::layer_width());
  app.add_option("--code", s.code, "dense: code size")
      ->capture_default_str()
      ->check(examples::layer_width());
  app.add_option("--dense-loss", s.dense_loss, "dense: training loss, l2 (seed 004), mse or bce")
      ->capture_default_str()
      ->check(CLI::IsMember({"l2", "mse", "bce"}));
  CLI11_PARSE(app, argc, argv);

  return examples::run("denoising_ae", [&] {
    examples::setup(f);
    // Both models start from the same weights: two generators with the run's seed.
    Generator init_a(f.seed), init_b(f.seed);
    if (model == "conv") {
      auto make = [&](Generator& g) {
        return std::make_shared<models::ConvAutoencoder>(
            models::ConvAutoencoderOptions{.latent = s.latent, .channels = s.channels, .gen = &g});
      };
      train_pair(f, app, s, make(init_a), make(init_b), /*flatten=*/false);
    } else {
      auto make = [&](Generator& g) {
        return std::make_shared<models::DenseAutoencoder>(models::DenseAutoencoderOptions{
            .code = s.code, .loss = models::parse_loss(s.dense_loss), .gen = &g});
      };
      train_pair(f, app, s, make(init_a), make(init_b), /*flatten=*/true);
    }
  });
}
