// GradientTape: reverse-mode differentiation as a recording scope, in the spirit of
// TensorFlow's tf.GradientTape. While a tape is alive on a thread, every differentiable op
// whose inputs the tape watches appends a node (op name, input/output ids, vjp) to it;
// gradient() walks the nodes backwards. The graph lives only here: tensors carry no grad
// fields, just a `trainable` flag that makes a tape watch them.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <vector>

#include "../tensor/tensor.h"
#include "id_set.h"

namespace encore {

using Tensors = std::vector<Tensor>;

/// Which inputs of a node need a gradient; a vjp may skip work for the others and return an
/// undefined Tensor in their place.
class NeedsGrad {
 public:
  explicit NeedsGrad(uint32_t bits = 0) : bits_(bits) {}
  bool operator[](size_t i) const { return i < 32 ? (bits_ >> i) & 1u : true; }
  uint32_t bits() const { return bits_; }

 private:
  uint32_t bits_;
};

/// A vector-Jacobian product: given one gradient per output (same shape), returns one per
/// input (undefined where NeedsGrad is false or the input is not differentiable). Gradients
/// may have the broadcast shape of an input; the tape sums them down to the input's shape.
using VjpFn = std::function<Tensors(const Tensors& douts, NeedsGrad needs)>;

struct TapeOptions {
  /// Keep the nodes after gradient() so it can be called again.
  bool persistent = false;
  /// Watch trainable tensors (parameters) automatically when an op reads them, as TF's
  /// watch_accessed_variables.
  bool watch_accessed_variables = true;
};

struct GradientOptions {
  /// Gradient of the target w.r.t. itself, required for a non-scalar target (same shape).
  Tensor output_gradient;
  /// For sources the target does not depend on: zeros (true) or an undefined Tensor (false).
  bool unconnected_zeros = true;
  /// Called once per source, during the backward walk, as soon as that source's gradient is
  /// final: when every recorded node that read the source has had its vjp run (walking in
  /// reverse recording order, right after the earliest-recorded such node). `grad` is the very
  /// tensor gradient() then returns at `source_index` (undefined or zeros as
  /// unconnected_zeros says). Order: by the position of each source's earliest consumer, the
  /// latest-recorded first (ties by index); sources no recorded node read (unconnected ones,
  /// or the target itself) last, by index. Data-parallel training starts communicating a
  /// gradient while the walk goes on (nn::Distributed). The callback must not modify `grad` in
  /// place (it may share storage with gradients the walk still uses); it runs with no tape of
  /// this thread recording; an exception it throws leaves gradient() (the tape is then
  /// spent, as after a vjp's exception). Empty (the default): no cost.
  std::function<void(size_t source_index, const Tensor& grad)> on_ready;
};

class GradientTape {
 public:
  /// Starts recording on this thread; the tape stops recording when it goes out of scope.
  explicit GradientTape(TapeOptions options = {});
  explicit GradientTape(bool persistent) : GradientTape(TapeOptions{.persistent = persistent}) {}
  ~GradientTape();
  GradientTape(const GradientTape&) = delete;
  GradientTape& operator=(const GradientTape&) = delete;

  /// Makes the tape follow t (and everything computed from it from now on).
  void watch(const Tensor& t);
  void watch(const Tensors& ts) {
    for (const Tensor& t : ts) watch(t);
  }
  bool is_watched(const Tensor& t) const;
  /// The trainable tensors read while recording, in first-use order.
  const Tensors& watched_variables() const { return accessed_; }

  /// d target / d source for every source. A scalar target is seeded with 1; otherwise pass
  /// options.output_gradient. Throws when the target was not computed on this tape, on a
  /// second call to a non-persistent tape, when a tensor saved for the backward pass was
  /// modified in place, or (anomaly mode) when a vjp produces NaN/Inf.
  Tensors gradient(const Tensor& target, const Tensors& sources,
                   const GradientOptions& options = {});
  /// One source.
  Tensor gradient(const Tensor& target, const Tensor& source, const GradientOptions& options = {});

  /// While the returned guard lives, this tape records nothing.
  class Pause {
   public:
    explicit Pause(GradientTape* tape);
    ~Pause();
    Pause(const Pause&) = delete;
    Pause& operator=(const Pause&) = delete;

   private:
    GradientTape* tape_;
    bool was_recording_;
  };
  [[nodiscard]] Pause stop_recording() { return Pause(this); }

  /// Number of nodes recorded (for tests and diagnostics).
  size_t size() const;

  struct Node;  // defined in tape.cpp
  // Internal: used by record().
  void maybe_record(const char* op, const Tensor* inputs, size_t n_in, const Tensor* outputs,
                    size_t n_out, VjpFn& vjp, const Tensor* saved, size_t n_saved, bool may_move);

 private:
  bool watches(const Tensor& t);
  /// Keeps the thread's count of recording tapes (the fast "nothing records" check) in step.
  void set_recording(bool on);
  TapeOptions options_;
  bool recording_ = true;
  bool used_ = false;
  std::vector<std::unique_ptr<Node>> nodes_;  // recording order is a topological order
  detail::IdSet watched_;  // ids of watched tensors and of every recorded op's outputs
  Tensors accessed_;
};

/// While alive, no tape that existed on this thread when it was made records (for inference
/// and in-place updates). Tapes created inside the scope record as usual.
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  size_t previous_floor_;
};

/// Anomaly mode: every op checks its outputs, and gradient() every vjp result, for NaN/Inf
/// and throws naming the op. Off by default (it reads every value).
void set_anomaly_detection(bool on);
bool anomaly_detection();
/// RAII form of set_anomaly_detection(true).
class DetectAnomaly {
 public:
  DetectAnomaly();
  ~DetectAnomaly();

 private:
  bool previous_;
};

namespace detail {
/// False when no tape on this thread can record; record() then returns at once.
bool any_tape_recording();
void record_impl(const char* op, const Tensor* inputs, size_t n_in, const Tensor* outputs,
                 size_t n_out, VjpFn vjp, const Tensor* saved, size_t n_saved);
void check_finite(const char* op, const char* phase, const Tensor& t);

// True when f is a vjp of the saving form: f(saved, douts) or f(saved, douts, needs).
template <class F>
constexpr bool takes_saved = std::is_invocable_v<F, const Tensors&, const Tensors&, NeedsGrad> ||
                             std::is_invocable_v<F, const Tensors&, const Tensors&>;

template <class F>
VjpFn make_vjp(F&& f) {
  if constexpr (std::is_invocable_v<F, const Tensors&, NeedsGrad>) {
    return VjpFn(std::forward<F>(f));
  } else {
    return [g = std::forward<F>(f)](const Tensors& douts, NeedsGrad) { return g(douts); };
  }
}

// The saving form: the tape keeps `saved` (and checks its versions) and hands it to f.
template <class F>
VjpFn make_saving_vjp(F&& f, Tensors saved) {
  if constexpr (std::is_invocable_v<F, const Tensors&, const Tensors&, NeedsGrad>) {
    return [g = std::forward<F>(f), saved = std::move(saved)](
               const Tensors& douts, NeedsGrad needs) { return g(saved, douts, needs); };
  } else {
    return [g = std::forward<F>(f), saved = std::move(saved)](const Tensors& douts, NeedsGrad) {
      return g(saved, douts);
    };
  }
}

template <class F>
void record_any(const char* op, const Tensor* inputs, size_t n_in, const Tensor* outputs,
                size_t n_out, F&& vjp, const Tensor* saved, size_t n_saved) {
  if (anomaly_detection())
    for (size_t k = 0; k < n_out; ++k) check_finite(op, "forward", outputs[k]);
  if (!any_tape_recording()) return;
  if constexpr (takes_saved<F>)
    record_impl(op, inputs, n_in, outputs, n_out,
                make_saving_vjp(std::forward<F>(vjp), Tensors(saved, saved + n_saved)), saved,
                n_saved);
  else
    record_impl(op, inputs, n_in, outputs, n_out, make_vjp(std::forward<F>(vjp)), saved, n_saved);
}
}  // namespace detail

/// The one entry point through which built-in and user ops join the tape. Call it after the
/// forward computation. `saved` lists the tensors the vjp reads; the tape keeps them, hands
/// them to the vjp as its first argument (as torch's save_for_backward), and throws in
/// gradient() instead of returning a wrong answer if one was modified in place in between:
///   Tensor y = raw::unary(raw::UnaryOp::exp, x);
///   record("exp", {x}, {y},
///          [](const Tensors& saved, const Tensors& g) { return Tensors{g[0] * saved[0]}; },
///          {y});
/// Such a vjp captures no tensors, so none can be read without being checked. The vjp may
/// take (saved, douts) or (saved, douts, NeedsGrad).
///
/// The older form, a vjp taking (douts) or (douts, NeedsGrad) that captures what it reads,
/// is still accepted; `saved` then only lists the tensors to check, and must name every
/// tensor the closure captures.
template <class F>
void record(const char* op, std::initializer_list<Tensor> inputs,
            std::initializer_list<Tensor> outputs, F&& vjp,
            std::initializer_list<Tensor> saved = {}) {
  detail::record_any(op, inputs.begin(), inputs.size(), outputs.begin(), outputs.size(),
                     std::forward<F>(vjp), saved.begin(), saved.size());
}

/// As above, for ops with a run-time number of inputs or outputs (concat, split).
template <class F>
void record(const char* op, const Tensors& inputs, const Tensors& outputs, F&& vjp,
            const Tensors& saved = {}) {
  detail::record_any(op, inputs.data(), inputs.size(), outputs.data(), outputs.size(),
                     std::forward<F>(vjp), saved.data(), saved.size());
}

/// True when some tape on this thread would record an op reading these inputs.
bool is_recording(std::initializer_list<Tensor> inputs);

}  // namespace encore
