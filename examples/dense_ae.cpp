// dense_ae: seed 004's dense autoencoder with batch norm against PCA on MNIST.
//
// The defaults are the seed's: 784-400-300-200-20, Linear -> BatchNorm (eps 1e-3) -> ReLU,
// sigmoid output, He-normal init, per-image L2 loss, Adam lr 1e-3, batch 128, 30 epochs. PCA
// with as many components as the code (--pca-components) is fitted on the same training
// images in f64, and both are scored by the test squared error per image (sum over the 784
// pixels, mean over the test images) - the measure of Hinton & Salakhutdinov 2006, whose 30-d
// deep autoencoder reaches 3.00 against 13.87 for 30-component PCA. Their comparison is set up
// with --code 30 --loss mse, plus their layer widths and linear code units:
//   build/examples/dense_ae --code 30 --loss mse --hidden 1000,500,250 --linear-code --cosine
// The recipe that gets under their 3.00 here (2.97 in 30 epochs, about 12 minutes on one
// thread; the README gives the runs and the settings tried) trains on BCE with ELU units:
//   build/examples/dense_ae --threads 1 --code 30 --loss bce --hidden 1000,500,250
//       --linear-code --cosine --activation elu --batch-size 128 --lr 3e-3 --epochs 30
//
// Writes, beside the training loop's metrics.json, history.csv, loss.png and checkpoint:
//   reconstructions.png   rows of 8: test digits, autoencoder, PCA (twice)
//   error_histogram.png   per-image squared error on the test set, autoencoder and PCA
//   codes_pca.png         the test codes' first two principal components, coloured by digit
//
//   build/examples/dense_ae [--code 20] [--loss l2|mse|bce] [--hidden 400,300,200] [--tied]
//                           [--no-batch-norm] [--linear-code] [--pca-components K] [--cosine]
//                           [--activation relu|leaky_relu|elu]
//                           [--epochs 30] [--out out/dense_ae] [--threads N] [--resume] ...
#include <algorithm>
#include <chrono>
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

/// The mean over images of the per-image squared error, and the per-image values.
struct ImageErrors {
  double mean = 0;
  std::vector<double> per_image;
};

/// The test images go through the model in chunks of this many: the whole test set at once
/// would hold every layer's activations for 10000 images (over 100 MB); 500 keeps evaluation's
/// activations (a few MB) below training's, so it adds nothing to the peak memory.
constexpr int64_t kChunk = 500;

/// Reconstructs x (flattened) in chunks, converted from bytes one at a time (eval mode, NoGrad
/// is the caller's), and scores it.
template <class F>
ImageErrors image_errors(F&& reconstruct, const nn::MnistBytes& x) {
  ImageErrors e;
  const int64_t n = x.size();
  for (int64_t i = 0; i < n; i += kChunk) {
    Tensor xi = x.images(i, std::min(kChunk, n - i));
    Tensor se = models::squared_error_per_image(reconstruct(xi), xi);
    for (double v : se.to_vector<double>()) e.per_image.push_back(v);
  }
  for (double v : e.per_image) e.mean += v;
  e.mean /= double(std::max<size_t>(1, e.per_image.size()));
  return e;
}

/// The mean of the model's loss over x, from chunks weighted by their sizes.
double mean_loss(models::DenseAutoencoder& ae, const nn::MnistBytes& x) {
  double total = 0;
  const int64_t n = x.size();
  for (int64_t i = 0; i < n; i += kChunk) {
    const int64_t len = std::min(kChunk, n - i);
    total += ae.loss(x.images(i, len)).item() * double(len);
  }
  return total / double(std::max<int64_t>(1, n));
}

/// Rows of 8: test digits, their autoencoder and PCA reconstructions, twice. x flattened.
void write_reconstructions(const std::string& png, models::DenseAutoencoder& ae,
                           const models::PCA& pca, const nn::MnistBytes& x) {
  const int64_t groups = std::min<int64_t>(2, x.size() / 8);
  Tensors rows;
  for (int64_t g = 0; g < groups; ++g) {
    Tensor xi = x.images(8 * g, 8);
    rows.push_back(xi);
    rows.push_back(ae.forward(xi));
    rows.push_back(pca.forward(xi));
  }
  io::write_image_grid(png, reshape(concat(rows, 0), {-1, 1, 28, 28}), 8);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dense_ae: seed 004's dense autoencoder with batch norm, against PCA, on MNIST"};
  examples::CommonFlags f{.epochs = 30, .batch_size = 128, .lr = 1e-3, .out = "out/dense_ae"};
  examples::add_common_flags(app, f);
  int64_t code = 20, pca_components = 0;
  std::vector<int64_t> hidden = {400, 300, 200};
  std::string loss = "l2", activation = "relu";
  bool no_batch_norm = false, tied = false, linear_code = false, cosine = false;
  app.add_option("--code", code, "code size")
      ->capture_default_str()
      ->check(examples::layer_width());
  app.add_option("--hidden", hidden, "encoder widths after the input (the decoder mirrors them)")
      ->delimiter(',')
      ->capture_default_str()
      ->check(examples::layer_width());
  app.add_option("--loss", loss, "l2 (per-image L2 norm, the seed's), mse or bce")
      ->capture_default_str()
      ->check(CLI::IsMember({"l2", "mse", "bce"}));
  app.add_option("--activation", activation,
                 "hidden units' nonlinearity: relu (the seed's), leaky_relu (slope 0.01) or elu")
      ->capture_default_str()
      ->check(CLI::IsMember({"relu", "leaky_relu", "elu"}));
  app.add_flag("--no-batch-norm", no_batch_norm, "drop the BatchNorm layers");
  app.add_flag("--tied", tied, "decoder weights = encoder weights transposed (shared)");
  app.add_flag("--linear-code", linear_code, "no ReLU on the code layer (Hinton & Salakhutdinov)");
  app.add_flag("--cosine", cosine, "cosine-decay the learning rate to 0 over the run");
  app.add_option("--pca-components", pca_components, "PCA components (0: the code size)")
      ->capture_default_str()
      ->check(CLI::Range(0, 784));  // at most the 28 x 28 pixels
  bool distributed = false;
  app.add_flag("--distributed", distributed,
               "data-parallel over MPI: run under mpirun -np N; each rank takes 1/N of every "
               "batch, only rank 0 prints and writes");
  bool sync_bn = false;
  app.add_flag("--sync-bn", sync_bn,
               "with --distributed: BatchNorm normalises with the statistics of the global batch "
               "(all ranks' rows; PyTorch's SyncBatchNorm), not each rank's shard");
  CLI11_PARSE(app, argc, argv);
  std::unique_ptr<nn::Distributed> dist;  // outlives run(): an error on one rank stops all
  if (pca_components == 0) pca_components = code;

  const int status = examples::run("dense_ae", [&] {
    ENCORE_CHECK(!sync_bn || distributed, "--sync-bn",
                 "BatchNorm synchronised over MPI ranks needs --distributed (mpirun -np N "
                 "dense_ae --distributed --sync-bn)");
    if (distributed) {
      // Throws in a build without MPI.
      dist = std::make_unique<nn::Distributed>(
          argc, argv,
          nn::DistributedOptions{.batch_norm = sync_bn ? nn::BatchNormSync::synchronized
                                                       : nn::BatchNormSync::per_rank});
      if (!dist->is_root() && !std::freopen("/dev/null", "w", stdout))
        std::fprintf(stderr, "dense_ae: rank %d: cannot silence stdout\n", dist->rank());
      if (f.threads == 0) f.threads = dist->threads_per_rank();
    }
    examples::setup(f);
    Generator gen(f.seed);
    models::DenseAutoencoder model({.hidden = hidden,
                                    .code = code,
                                    .loss = models::parse_loss(loss),
                                    .batch_norm = !no_batch_norm,
                                    .tied = tied,
                                    .linear_code = linear_code,
                                    .activation = models::parse_activation(activation),
                                    .gen = &gen});
    if (examples::prepare_model(model, f)) return;
    std::printf("%s", model.summary().c_str());
    std::printf("parameters: %lld", static_cast<long long>(model.num_parameters()));
    if (tied)
      std::printf(" (tied: %lld fewer than untied)",
                  static_cast<long long>(model.tied_parameter_saving()));
    std::printf("\n");

    // As bytes, converted to f32 a batch or a chunk at a time (as f32 the training set alone
    // would take 188 MB).
    nn::MnistBytes train =
        nn::load_mnist_bytes(f.data, /*train=*/true, /*flatten=*/true, f.train_limit);
    nn::MnistBytes test =
        nn::load_mnist_bytes(f.data, /*train=*/false, /*flatten=*/true, f.test_limit);
    std::printf("MNIST: %lld training and %lld test images from %s\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.size()),
                f.data.c_str());

    // PCA on the same training images, in f64, from chunks converted one at a time.
    auto t0 = std::chrono::steady_clock::now();
    models::PCA pca(784, pca_components);
    pca.fit(train.size(), [&](int64_t start, int64_t len) { return train.images(start, len); });
    double pca_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ImageErrors pca_err = image_errors([&](const Tensor& x) { return pca.forward(x); }, test);
    std::printf(
        "PCA(%lld): fitted in %.2f s, explains %.1f%% of the variance; test squared error "
        "per image %.3f\n",
        static_cast<long long>(pca_components), pca_seconds,
        100 * raw::reduce(raw::ReduceOp::sum, pca.explained_variance_ratio()).item(), pca_err.mean);

    optim::Adam opt(model.parameters(), {.lr = f.lr});
    nn::Batches batches(train, {.batch_size = f.batch_size}, gen);  // {images, labels}
    nn::FitOptions fo = examples::fit_options(f, "dense_ae", app);
    fo.distributed = dist.get();
    if (cosine)
      fo.lr_schedule =
          optim::CosineDecay{.base_lr = f.lr, .total_steps = f.epochs * batches.size()};
    nn::Trainer trainer(model, opt, gen, fo);
    auto evaluate = [&] {
      ImageErrors e = image_errors([&](const Tensor& x) { return model.forward(x); }, test);
      return nn::Metrics{{"val_loss", mean_loss(model, test)}, {"test_squared_error", e.mean}};
    };
    nn::FitResult r = trainer.fit(
        batches, [&](const Tensors& b) { return model.loss(b[0]); }, evaluate);
    if (r.interrupted) return;

    // Pictures, in eval mode (running batch-norm statistics).
    model.eval();
    NoGrad no_grad;
    ImageErrors ae_err = image_errors([&](const Tensor& x) { return model.forward(x); }, test);
    std::map<std::string, std::string> notes;
    const std::string grid = trainer.out_path("reconstructions.png");
    if (!grid.empty() && test.size() >= 8) {
      write_reconstructions(grid, model, pca, test);
      notes["reconstructions.png"] = "rows of 8: test digits, autoencoder, PCA (twice)";
    }
    const std::string hist = trainer.out_path("error_histogram.png");
    if (!hist.empty() &&
        plot::histogram(hist,
                        {{"autoencoder", {}, ae_err.per_image},
                         {"PCA (" + std::to_string(pca_components) + ")", {}, pca_err.per_image}},
                        50,
                        {.title = "test squared error per image",
                         .xlabel = "squared error (sum over pixels)",
                         .ylabel = "images"}))
      notes["error_histogram.png"] = "per-image test squared error, autoencoder and PCA";
    // The codes' first two principal components, coloured by digit.
    const std::string scatter = trainer.out_path("codes_pca.png");
    Tensors code_chunks;
    for (int64_t i = 0; i < test.size(); i += kChunk)
      code_chunks.push_back(model.encode(test.images(i, std::min(kChunk, test.size() - i))));
    Tensor codes = concat(code_chunks, 0);
    if (!scatter.empty() && code >= 2) {
      models::PCA code_pca(code, 2);
      code_pca.fit(codes);
      Tensor pc = code_pca.encode(codes.to(DType::f64));
      std::vector<double> xs = select(pc, 1, 0).to_vector<double>(),
                          ys = select(pc, 1, 1).to_vector<double>();
      if (plot::scatter_plot(scatter, xs, ys, test.labels().to_vector<int64_t>(),
                             {.title = "test codes: first two principal components",
                              .xlabel = "PC 1",
                              .ylabel = "PC 2"}))
        notes["codes_pca.png"] = "test codes' first two principal components by digit";
    }
    nn::Metrics results = examples::comm_metrics(dist.get());
    results.insert({{"test_squared_error", ae_err.mean},
                    {"pca_test_squared_error", pca_err.mean},
                    {"pca_components", double(pca_components)},
                    {"pca_fit_seconds", pca_seconds},
                    {"parameters", double(model.num_parameters())},
                    {"tied_parameter_saving", double(model.tied_parameter_saving())}});
    trainer.write_metrics(results, notes);
    std::printf("test squared error per image: autoencoder %.3f, PCA(%lld) %.3f\n", ae_err.mean,
                static_cast<long long>(pca_components), pca_err.mean);
    for (const auto& [file, what] : notes)
      std::printf("wrote %s (%s)\n", trainer.out_path(file).c_str(), what.c_str());
  });
  if (status != 0 && dist && dist->size() > 1)
    dist->abort("stopping every rank after the error above", status);
  return status;
}
