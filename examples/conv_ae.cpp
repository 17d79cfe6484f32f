// conv_ae: seed 002's convolutional autoencoder trained on MNIST with binary cross-entropy.
//
// The defaults are the seed's (Adam lr 1e-4, batch 1000, 10 epochs, latent 100): 600 steps,
// which under-trains the model. A better setting on this machine (see the README):
//   build/examples/conv_ae --batch-size 128 --lr 1e-3
// After each epoch it reports the test BCE (the mean over every pixel, as Keras) and the test
// squared error per image; at the end it writes test digits against their reconstructions to
// <out>/reconstructions.png, beside the training loop's metrics.json, history.csv, loss.png and
// checkpoint.
//
//   build/examples/conv_ae [--epochs 10] [--batch-size 1000] [--lr 1e-4] [--latent 100]
//                          [--channels 32] [--out out/conv_ae] [--threads N] [--resume] ...
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "examples/common/common.h"
#include "models/models.h"
#include "nn/train.h"

using namespace encore;

namespace {

/// Rows alternate: 8 test digits, then their reconstructions; up to 4 such row pairs (as many
/// as the test images allow). images: (N, 1, 28, 28) with N >= 8.
void write_reconstructions(const std::string& png, models::ConvAutoencoder& model,
                           const Tensor& images) {
  NoGrad no_grad;
  const int64_t pairs = std::min<int64_t>(4, images.size(0) / 8);
  Tensors rows;
  for (int64_t r = 0; r < pairs; ++r) {
    Tensor x = narrow(images, 0, 8 * r, 8);
    rows.push_back(x);
    rows.push_back(model.forward(x));
  }
  io::write_image_grid(png, concat(rows, 0), 8);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"conv_ae: seed 002's convolutional autoencoder on MNIST (BCE, Adam)"};
  examples::CommonFlags f{.epochs = 10, .batch_size = 1000, .lr = 1e-4, .out = "out/conv_ae"};
  examples::add_common_flags(app, f);
  int64_t latent = 100, channels = 32;
  app.add_option("--latent", latent, "code size (the seed's latent_dim)")
      ->capture_default_str()
      ->check(examples::layer_width());
  app.add_option("--channels", channels,
                 "encoder filters c (decoder: 7*7*c units, then 2c and c filters)")
      ->capture_default_str()
      ->check(examples::layer_width());
  bool distributed = false;
  app.add_flag("--distributed", distributed,
               "data-parallel over MPI: run under mpirun -np N; each rank takes 1/N of every "
               "batch, only rank 0 prints and writes");
  CLI11_PARSE(app, argc, argv);
  std::unique_ptr<nn::Distributed> dist;  // outlives run(): an error on one rank stops all

  const int status = examples::run("conv_ae", [&] {
    if (distributed) {
      dist = std::make_unique<nn::Distributed>(argc, argv);  // throws in a build without MPI
      if (!dist->is_root() && !std::freopen("/dev/null", "w", stdout))
        std::fprintf(stderr, "conv_ae: rank %d: cannot silence stdout\n", dist->rank());
      if (f.threads == 0) f.threads = dist->threads_per_rank();
    }
    examples::setup(f);
    Generator gen(f.seed);
    models::ConvAutoencoder model({.latent = latent, .channels = channels, .gen = &gen});
    if (examples::prepare_model(model, f)) return;
    std::printf("%s", model.summary().c_str());

    nn::MnistBytes train =
        nn::load_mnist_bytes(f.data, /*train=*/true, /*flatten=*/false, f.train_limit);
    nn::Mnist test = nn::load_mnist(f.data, /*train=*/false, /*flatten=*/false, f.test_limit);
    std::printf("MNIST: %lld training and %lld test images from %s\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.images.size(0)),
                f.data.c_str());

    optim::Adam opt(model.parameters(), {.lr = f.lr});
    nn::Batches batches(train, {.batch_size = f.batch_size}, gen);
    nn::FitOptions fo = examples::fit_options(f, "conv_ae", app);
    fo.distributed = dist.get();
    nn::Trainer trainer(model, opt, gen, fo);

    auto evaluate = [&] {
      models::ReconstructionError e = models::reconstruction_error(
          [&](const Tensor& x) { return model.forward(x); }, test.images, test.images);
      return nn::Metrics{
          {"val_loss", e.bce}, {"test_bce", e.bce}, {"test_squared_error", e.squared_error}};
    };
    nn::FitResult r = trainer.fit(
        batches, [&](const Tensors& b) { return model.loss(b[0]); }, evaluate);
    if (r.interrupted) return;

    const std::string png = trainer.out_path("reconstructions.png");
    model.eval();
    const bool picture = !png.empty() && test.images.size(0) >= 8;
    if (picture) write_reconstructions(png, model, test.images);
    std::map<std::string, std::string> notes;
    if (picture)
      notes["reconstructions.png"] = "rows alternate: 8 test digits, then their reconstructions";
    trainer.write_metrics(examples::comm_metrics(dist.get()), notes);
    std::printf("test BCE %.5f, squared error per image %.3f%s%s\n", r.final_metrics.at("test_bce"),
                r.final_metrics.at("test_squared_error"), picture ? "; wrote " : "",
                picture ? png.c_str() : "");
  });
  if (status != 0 && dist && dist->size() > 1)
    dist->abort("stopping every rank after the error above", status);
  return status;
}
