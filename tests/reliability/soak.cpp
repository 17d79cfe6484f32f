// soak: flat memory. Trains a small dense autoencoder (models::DenseAutoencoder with batch norm,
// Adam) through nn::Trainer for thousands of steps on the committed MNIST subset, with
// per-epoch evaluation, history, loss curve and checkpoints every 100 steps, and samples the
// memory at the same point of every epoch (the first step's loss call): encore's allocator
// statistics, glibc's (mallinfo2) and the process RSS. After the warm-up epochs none may grow.
//
//   soak MNIST_DIR [EPOCHS]   (default 48 epochs of 125 steps: 6000 steps)
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "models/models.h"
#include "nn/nn.h"
#include "nn/train.h"
#include "tensor/storage.h"

using namespace encore;
namespace fs = std::filesystem;

namespace {

struct Sample {
  int64_t epoch = 0;
  size_t encore_in_use = 0, encore_cached = 0;  // encore's caching allocator
  size_t heap_in_use = 0;                       // glibc: bytes malloc'ed and not freed
  size_t rss = 0;                               // resident set size, bytes
};

size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

Sample sample(int64_t epoch) {
  const AllocatorStats a = allocator::stats();
  const struct mallinfo2 m = ::mallinfo2();
  return {epoch, a.bytes_in_use, a.bytes_cached, m.uordblks, rss_bytes()};
}

double kib(size_t b) { return double(b) / 1024.0; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: soak MNIST_DIR [EPOCHS]\n");
    return 2;
  }
  const int64_t epochs = argc > 2 ? std::atoll(argv[2]) : 48;
  // The first epochs allocate what stays: optimizer slots, the allocator's free lists, glibc's
  // arenas, the first evaluation's and plot's buffers, lazily loaded code.
  const int64_t warmup = 4;
  if (epochs < warmup + 4) {
    std::fprintf(stderr, "soak: need at least %lld epochs\n", static_cast<long long>(warmup + 4));
    return 2;
  }
  const fs::path out = fs::temp_directory_path() / ("encore_soak_" + std::to_string(::getpid()));
  int status = 0;
  try {
    set_num_threads(1);
    Generator gen(7);
    models::DenseAutoencoder model({.hidden = {64, 32}, .code = 8, .gen = &gen});
    nn::Mnist train = nn::load_mnist(argv[1], /*train=*/true, /*flatten=*/true, 1000);
    nn::Mnist test = nn::load_mnist(argv[1], /*train=*/false, /*flatten=*/true, 64);
    optim::Adam opt(model.parameters(), {.lr = 1e-3});
    nn::Batches batches({train.images}, {.batch_size = 8}, gen);  // 125 steps an epoch
    nn::Trainer trainer(model, opt, gen,
                        {.epochs = epochs,
                         .out_dir = out.string(),
                         .checkpoint_every = 100,
                         .name = "soak",
                         .progress = false,
                         .handle_sigint = false});
    std::vector<Sample> samples;
    int64_t calls = 0;
    nn::FitResult r = trainer.fit(
        batches,
        [&](const Tensors& b) {
          if (calls++ % batches.size() == 0) samples.push_back(sample(calls / batches.size()));
          return model.loss(b[0]);
        },
        [&] {
          return nn::Metrics{{"val_loss", model.loss(test.images).item()}};
        });
    std::printf("%lld steps in %lld epochs\n", static_cast<long long>(r.steps),
                static_cast<long long>(epochs));
    std::printf("epoch  encore in use  encore cached  heap in use (KiB)  RSS (KiB)\n");
    for (const Sample& s : samples)
      std::printf("%5lld  %13.1f  %13.1f  %17.1f  %9.1f\n", static_cast<long long>(s.epoch),
                  kib(s.encore_in_use), kib(s.encore_cached), kib(s.heap_in_use), kib(s.rss));

    const Sample& base = samples[static_cast<size_t>(warmup)];
    auto check = [&](bool ok, const char* what, size_t got, size_t want, size_t tolerance) {
      if (ok) return;
      std::fprintf(
          stderr,
          "FAIL: %s grew after warm-up: %.1f KiB, %.1f KiB at epoch %lld (%.1f KiB allowed)\n",
          what, kib(got), kib(want), static_cast<long long>(base.epoch), kib(tolerance));
      status = 1;
    };
    // Tolerances. encore's allocator: none. At the same point of each epoch the same tensors
    // are alive (parameters, optimizer slots, data, one batch) and the free lists have every
    // size class the loop uses, so the counts are equal.
    // glibc heap: 64 KiB. The history grows by one EpochRecord (a map of metrics, measured
    // at about 0.6 KiB) per epoch, some 25 KiB over 43 checked epochs; a leak of 16 bytes a
    // step would add 84 KiB.
    // RSS: 2 MiB. Pages glibc keeps or returns (its trim threshold is 128 KiB, heap
    // fragmentation moves the top) and code first run late; a leaked batch (25 KiB) a step
    // would add 130 MiB.
    constexpr size_t kHeapTolerance = 64 * 1024, kRssTolerance = 2 * 1024 * 1024;
    for (size_t i = static_cast<size_t>(warmup) + 1; i < samples.size(); ++i) {
      const Sample& s = samples[i];
      check(s.encore_in_use == base.encore_in_use, "encore bytes in use", s.encore_in_use,
            base.encore_in_use, 0);
      check(s.encore_cached == base.encore_cached, "encore bytes cached", s.encore_cached,
            base.encore_cached, 0);
      check(s.heap_in_use <= base.heap_in_use + kHeapTolerance, "heap in use (mallinfo2)",
            s.heap_in_use, base.heap_in_use, kHeapTolerance);
      check(s.rss <= base.rss + kRssTolerance, "RSS", s.rss, base.rss, kRssTolerance);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak: %s\n", e.what());
    status = 1;
  }
  std::error_code ec;
  fs::remove_all(out, ec);
  std::printf("%s\n", status == 0 ? "memory flat after warm-up" : "FAILED");
  return status;
}
