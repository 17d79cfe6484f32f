// vae: the variational autoencoder of PyTorch's reference example (examples/vae) on MNIST.
//
// The defaults are that example's: 784-400-(20, 20)-400-784, ReLU, sigmoid output, Adam lr
// 1e-3, batch 128, 10 epochs, loss -ELBO = BCE summed over the pixels + KL, per image. After
// each epoch it reports the test -ELBO per image in nats (PyTorch's example prints about 105.6
// at epoch 10), split into its reconstruction and KL terms; the test pass draws its codes from
// a Generator reseeded each time, so epochs compare on the same noise.
//
// Writes, beside the training loop's metrics.json, history.csv, loss.png and checkpoint:
//   reconstructions.png   rows of 8: test digits, then their reconstructions (4 pairs)
//   samples.png           64 digits decoded from codes drawn from the prior N(0, I)
//   manifold.png          with --code 2: decoded codes on a grid through the inverse normal CDF
//   codes.png             with --code 2: the test images' code means, coloured by digit
//
//   build/examples/vae [--code 20] [--hidden 400] [--manifold 20] [--epochs 10]
//                      [--out out/vae] [--threads N] [--resume] ...
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "examples/common/common.h"
#include "models/models.h"
#include "nn/plot.h"
#include "nn/train.h"

using namespace encore;

namespace {

/// The inverse of the standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, for p in (0, 1), by
/// bisection (Phi is increasing; 100 halvings of [-40, 40] reach double precision).
double inverse_normal_cdf(double p) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 100; ++i) {
    double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

/// The test -ELBO terms per image, over x (flattened) in chunks converted from bytes one at a
/// time, codes drawn from gen.
struct Elbo {
  double total = 0, reconstruction = 0, kl = 0;
};
Elbo test_elbo(models::VAE& vae, const nn::MnistBytes& x, Generator& gen) {
  Elbo e;
  // 500 images a chunk keep evaluation's buffers below training's (2000 added some 60 MB).
  const int64_t n = x.size(), chunk = 500;
  for (int64_t i = 0; i < n; i += chunk) {
    Tensor xi = x.images(i, std::min(chunk, n - i));
    models::VAELoss l = vae.loss_terms(vae.forward(xi, gen), xi);
    const double w = double(xi.size(0)) / double(n);  // the terms are per-image means
    e.reconstruction += w * l.reconstruction.item();
    e.kl += w * l.kl.item();
  }
  e.total = e.reconstruction + e.kl;
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vae: PyTorch's reference variational autoencoder on MNIST"};
  examples::CommonFlags f{.epochs = 10, .batch_size = 128, .lr = 1e-3, .out = "out/vae"};
  examples::add_common_flags(app, f);
  int64_t code = 20, hidden = 400, manifold = 20;
  app.add_option("--code", code, "latent size")
      ->capture_default_str()
      ->check(examples::layer_width());
  app.add_option("--hidden", hidden, "hidden layer width")
      ->capture_default_str()
      ->check(examples::layer_width());
  app.add_option("--manifold", manifold, "with --code 2: the manifold picture's grid side")
      ->capture_default_str()
      ->check(CLI::Range(2, 60));
  CLI11_PARSE(app, argc, argv);

  return examples::run("vae", [&] {
    examples::setup(f);
    Generator gen(f.seed);
    models::VAE model({.hidden = hidden, .code = code, .gen = &gen});
    if (examples::prepare_model(model, f)) return;
    std::printf("%s", model.summary().c_str());

    nn::MnistBytes train =
        nn::load_mnist_bytes(f.data, /*train=*/true, /*flatten=*/true, f.train_limit);
    // The test set stays bytes too (8 MB rather than 31 MB as f32): chunks are converted as
    // they are evaluated.
    nn::MnistBytes test =
        nn::load_mnist_bytes(f.data, /*train=*/false, /*flatten=*/true, f.test_limit);
    std::printf("MNIST: %lld training and %lld test images from %s\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.size()),
                f.data.c_str());

    optim::Adam opt(model.parameters(), {.lr = f.lr});
    nn::Batches batches(train, {.batch_size = f.batch_size}, gen);
    nn::Trainer trainer(model, opt, gen, examples::fit_options(f, "vae", app));
    const uint64_t eval_seed = f.seed + 1000003;  // the test pass's own noise
    auto evaluate = [&] {
      Generator eval_gen(eval_seed);
      Elbo e = test_elbo(model, test, eval_gen);
      return nn::Metrics{{"val_loss", e.total},
                         {"test_neg_elbo", e.total},
                         {"test_reconstruction", e.reconstruction},
                         {"test_kl", e.kl}};
    };
    nn::FitResult r = trainer.fit(
        batches, [&](const Tensors& b) { return model.loss(b[0], gen); }, evaluate);
    if (r.interrupted) return;

    model.eval();
    NoGrad no_grad;
    Generator pic_gen(eval_seed + 1);
    std::map<std::string, std::string> notes;
    const std::string recon = trainer.out_path("reconstructions.png");
    if (!recon.empty() && test.size() >= 8) {
      const int64_t pairs = std::min<int64_t>(4, test.size() / 8);
      Tensors rows;
      for (int64_t p = 0; p < pairs; ++p) {
        Tensor x = test.images(8 * p, 8);
        rows.push_back(x);
        rows.push_back(model.forward(x, pic_gen).recon);
      }
      io::write_image_grid(recon, reshape(concat(rows, 0), {-1, 1, 28, 28}), 8);
      notes["reconstructions.png"] = "rows alternate: 8 test digits, then their reconstructions";
    }
    const std::string samples = trainer.out_path("samples.png");
    if (!samples.empty()) {
      io::write_image_grid(samples, reshape(model.sample(64, pic_gen), {64, 1, 28, 28}), 8);
      notes["samples.png"] = "64 digits decoded from codes drawn from N(0, I)";
    }
    if (code == 2 && !trainer.out_path("manifold.png").empty()) {
      // Row r, column c decodes z = (Phi^-1(u_c), Phi^-1(v_r)), u, v evenly inside (0, 1),
      // with z_2 decreasing down the rows as on a plot.
      std::vector<float> z;
      for (int64_t r = 0; r < manifold; ++r)
        for (int64_t c = 0; c < manifold; ++c) {
          z.push_back(float(inverse_normal_cdf((double(c) + 0.5) / double(manifold))));
          z.push_back(float(inverse_normal_cdf(1 - (double(r) + 0.5) / double(manifold))));
        }
      Tensor digits = model.decode(from_vector(z, {manifold * manifold, 2}));
      io::write_image_grid(trainer.out_path("manifold.png"),
                           reshape(digits, {manifold * manifold, 1, 28, 28}), manifold, 0);
      notes["manifold.png"] = "decoded codes on a " + std::to_string(manifold) + "x" +
                              std::to_string(manifold) + " grid through the inverse normal CDF";
      models::GaussianCode q = model.encode(test.all_images());
      if (plot::scatter_plot(trainer.out_path("codes.png"), select(q.mu, 1, 0).to_vector<double>(),
                             select(q.mu, 1, 1).to_vector<double>(),
                             test.labels().to_vector<int64_t>(),
                             {.title = "test code means", .xlabel = "z1", .ylabel = "z2"}))
        notes["codes.png"] = "the test images' code means, coloured by digit";
    }
    trainer.write_metrics({}, notes);
    const nn::Metrics& m = r.final_metrics;
    std::printf("test -ELBO per image %.2f nats (reconstruction %.2f + KL %.2f)\n",
                m.at("test_neg_elbo"), m.at("test_reconstruction"), m.at("test_kl"));
    for (const auto& [file, what] : notes)
      std::printf("wrote %s (%s)\n", trainer.out_path(file).c_str(), what.c_str());
  });
}
