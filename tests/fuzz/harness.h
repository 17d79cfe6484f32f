// What each fuzz target does with one input file, shared by the libFuzzer targets
// (tests/fuzz/fuzz_*.cpp), the corpus generator (make_corpus.cpp) and the doctest suite that
// replays the committed corpus and every regression input (tests/reliability/).
//
// Each function calls a public loader on a file and returns true when it loaded, false when it
// threw encore::Error (the loader refused the file: fine). Anything else is a finding: a crash
// or sanitizer report, another exception escaping, or a broken promise of the loader, which
// is reported by throwing std::logic_error (libFuzzer stops on it as an uncaught exception;
// doctest fails the test case).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "nn/nn.h"
#include "tensor/io.h"

namespace encore::fuzz {

/// Raw bytes of every tensor of a state dict, by name.
inline std::map<std::string, std::string> bytes_of(const std::map<std::string, Tensor>& state) {
  std::map<std::string, std::string> out;
  for (const auto& [name, t] : state) {
    Tensor c = t.contiguous();
    out[name] = std::string(static_cast<const char*>(c.raw_data()),
                            static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  }
  return out;
}

/// Reads every element of t (as f64), so a tensor over bad memory shows under ASan.
inline double touch(const Tensor& t) {
  double s = 0;
  for (double v : t.contiguous().to(DType::f64).to_vector<double>()) s += v;
  return s;
}

/// read_idx into each output dtype (f64 and f32 convert, i64 range-checks floats).
inline bool idx(const std::string& path) {
  bool any = false;
  for (DType dt : {DType::f32, DType::f64, DType::i64}) {
    try {
      Tensor t = io::read_idx(path, dt);
      if (t.dtype() != dt) throw std::logic_error("read_idx returned another dtype");
      touch(t);
      any = true;
    } catch (const Error&) {
    }
  }
  return any;
}

/// read_image keeping the file's channels and converted to grey and RGBA.
inline bool image(const std::string& path) {
  bool any = false;
  for (int channels : {0, 1, 4}) {
    try {
      Tensor t = io::read_image(path, channels);
      if (t.dim() != 3 || (channels != 0 && t.size(0) != channels))
        throw std::logic_error("read_image returned a tensor of another shape");
      if (t.numel() > io::kMaxImagePixels * 4)
        throw std::logic_error("read_image decoded more than kMaxImagePixels");
      touch(t);
      any = true;
    } catch (const Error&) {
    }
  }
  return any;
}

inline bool safetensors(const std::string& path) {
  try {
    io::SafeTensors st = io::load_safetensors(path);
    for (const auto& [name, t] : st.tensors) touch(t);
    return true;
  } catch (const Error&) {
    return false;
  }
}

/// The model, optimizer, Generator and Batches checkpoints are loaded into: Linear ->
/// BatchNorm1d -> tanh -> Linear with Adam, so a checkpoint carries parameters, buffers,
/// optimizer slots, a Generator state and a shuffled order.
struct CheckpointRig {
  Generator init{11};
  std::shared_ptr<nn::Linear> fc1 =
      std::make_shared<nn::Linear>(3, 4, nn::LinearOptions{.gen = &init});
  std::shared_ptr<nn::BatchNorm1d> bn = std::make_shared<nn::BatchNorm1d>(4);
  std::shared_ptr<nn::Linear> fc2 =
      std::make_shared<nn::Linear>(4, 2, nn::LinearOptions{.gen = &init});
  nn::Sequential model{fc1, bn, fc2};
  optim::Adam opt{model.parameters(), {.lr = 0.01}};
  Generator gen{12};
  Tensor x = randn({6, 3}, init);
  Tensor y = randn({6, 2}, init);
  nn::Batches batches{{x, y}, {.batch_size = 2}, gen};

  /// One training step on batch i of the current order.
  void step(int64_t i) {
    Tensors b = batches.batch(i % batches.size());
    GradientTape tape;
    Tensor loss = nn::mse_loss(model.forward(b[0]), b[1]);
    opt.step(tape.gradient(loss, model.parameters()));
  }
};

/// load_checkpoint into a CheckpointRig; a refused file must leave everything unchanged
/// (load_checkpoint's promise), a loaded one must train a step without undefined behaviour.
inline bool checkpoint(const std::string& path) {
  static CheckpointRig* rig = new CheckpointRig;  // leaked: lives for the process
  const auto model_before = bytes_of(rig->model.state_dict());
  const auto optim_before = bytes_of(rig->opt.state_dict());
  const Generator::State gen_before = rig->gen.state();
  try {
    nn::TrainingState st = nn::load_checkpoint(path, rig->model, rig->opt, rig->gen, &rig->batches);
    rig->step(st.step);
    touch(rig->fc1->weight());
    return true;
  } catch (const Error&) {
    if (bytes_of(rig->model.state_dict()) != model_before)
      throw std::logic_error("load_checkpoint threw but changed the model");
    if (bytes_of(rig->opt.state_dict()) != optim_before)
      throw std::logic_error("load_checkpoint threw but changed the optimizer");
    if (rig->gen.state() != gen_before)
      throw std::logic_error("load_checkpoint threw but changed the Generator");
    return false;
  }
}

/// A per-process temp file holding the current input, removed at exit.
class InputFile {
 public:
  explicit InputFile(const char* target) {
    path_ = (std::filesystem::temp_directory_path() /
             ("encore_fuzz_" + std::string(target) + "_" + std::to_string(::getpid())))
                .string();
  }
  ~InputFile() { std::remove(path_.c_str()); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// Writes the bytes over the file and returns its path.
  const std::string& write(const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr) throw std::runtime_error("cannot create the fuzz input file " + path_);
    const bool ok = std::fwrite(data, 1, size, f) == size;
    if (std::fclose(f) != 0 || !ok)
      throw std::runtime_error("cannot write the fuzz input file " + path_);
    return path_;
  }

 private:
  std::string path_;
};

}  // namespace encore::fuzz

/// The libFuzzer entry point of a target that runs encore::fuzz::FN on each input.
#define ENCORE_FUZZ_TARGET(FN)                                              \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    static encore::fuzz::InputFile file(#FN);                               \
    (void)encore::fuzz::FN(file.write(data, size));                         \
    return 0;                                                               \
  }
