// The tape: per-thread stack of recording scopes, node recording, and the backward walk.
#include "autograd/tape.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string_view>

#include "autograd/ops.h"
#include "autograd/small_vector.h"

namespace encore {

struct GradientTape::Node {
  struct Slot {
    uint64_t id;  // 0 for an input this tape does not watch
    Shape shape;
    DType dtype;
  };
  const char* op;
  detail::SmallVector<Slot, 3> inputs;
  detail::SmallVector<Slot, 2> outputs;
  VjpFn vjp;
  detail::SmallVector<std::pair<std::shared_ptr<Storage>, uint64_t>, 3> saved;  // + version
};

namespace {

struct ThreadState {
  std::vector<GradientTape*> tapes;  // innermost last
  size_t active = 0;                 // tapes whose recording_ is true
  size_t floor = 0;                  // tapes below this index are paused by a NoGrad scope
};
thread_local ThreadState tls;

std::atomic<bool> anomaly_on{false};
// The op whose vjp is running on this thread, so anomaly reports can name it.
thread_local const char* backward_op = nullptr;

// True when `from` broadcasts to `to` (NumPy rules): then sum_to(gradient of shape `to`,
// `from`) undoes the broadcast.
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (int i = 1; i <= from.size(); ++i) {
    int64_t f = from[from.size() - i], t = to[to.size() - i];
    if (f != t && f != 1) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Recording

namespace detail {

bool any_tape_recording() { return tls.active > 0 && tls.tapes.size() > tls.floor; }

void record_impl(const char* op, const Tensor* inputs, size_t n_in, const Tensor* outputs,
                 size_t n_out, VjpFn vjp, const Tensor* saved, size_t n_saved) {
  for (size_t i = tls.floor; i < tls.tapes.size(); ++i)
    tls.tapes[i]->maybe_record(op, inputs, n_in, outputs, n_out, vjp, saved, n_saved,
                               /*may_move=*/i + 1 == tls.tapes.size());
}

void check_finite(const char* op, const char* phase, const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype())) return;
  bool bad = dispatch_float(op, t.dtype(), [&]<class T>() {
    Tensor c = t.contiguous();
    const T* p = c.data<T>();
    for (int64_t i = 0, n = c.numel(); i < n; ++i)
      if (!std::isfinite(p[i])) return true;
    return false;
  });
  if (!bad) return;
  if (backward_op && std::string_view(phase) == "forward")
    ENCORE_FAIL(op, "produced NaN or Inf during the backward pass of '", backward_op,
                "' (output shape ", t.shape(), "; anomaly detection is on)");
  ENCORE_FAIL(op, "produced NaN or Inf in its ", phase, " pass (output shape ", t.shape(),
              "; anomaly detection is on)");
}

}  // namespace detail

bool is_recording(std::initializer_list<Tensor> inputs) {
  if (!detail::any_tape_recording()) return false;
  for (size_t i = tls.floor; i < tls.tapes.size(); ++i)
    for (const Tensor& t : inputs)
      if (t.defined() && tls.tapes[i]->is_watched(t)) return true;
  return false;
}

GradientTape::GradientTape(TapeOptions options) : options_(options) {
  tls.tapes.push_back(this);
  ++tls.active;  // recording_ starts true
}

size_t GradientTape::size() const { return nodes_.size(); }

GradientTape::~GradientTape() {
  set_recording(false);
  auto it = std::find(tls.tapes.begin(), tls.tapes.end(), this);
  if (it != tls.tapes.end()) {
    if (static_cast<size_t>(it - tls.tapes.begin()) < tls.floor) --tls.floor;
    tls.tapes.erase(it);
  }
}

bool GradientTape::watches(const Tensor& t) {
  if (watched_.contains(t.id())) return true;
  if (options_.watch_accessed_variables && t.trainable()) {
    watched_.insert(t.id());
    accessed_.push_back(t);
    return true;
  }
  return false;
}

void GradientTape::watch(const Tensor& t) {
  ENCORE_CHECK(t.defined(), "watch", "cannot watch an undefined tensor");
  ENCORE_CHECK(is_floating(t.dtype()), "watch", "cannot watch a tensor of dtype ", t.dtype(),
               " (shape ", t.shape(), "): only f32 and f64 are differentiable");
  watched_.insert(t.id());
}

bool GradientTape::is_watched(const Tensor& t) const {
  return watched_.contains(t.id()) ||
         (options_.watch_accessed_variables && t.defined() && t.trainable());
}

void GradientTape::maybe_record(const char* op, const Tensor* inputs, size_t n_in,
                                const Tensor* outputs, size_t n_out, VjpFn& vjp,
                                const Tensor* saved, size_t n_saved, bool may_move) {
  if (!recording_ || used_) return;
  bool any = false;
  for (size_t k = 0; k < n_in; ++k)
    if (inputs[k].defined() && is_floating(inputs[k].dtype()) && watches(inputs[k])) any = true;
  if (!any) return;
  Node* node = nodes_.emplace_back(std::make_unique<Node>()).get();
  node->op = op;
  node->inputs.reserve(n_in);
  for (size_t k = 0; k < n_in; ++k) {
    const Tensor& t = inputs[k];
    bool w = t.defined() && is_floating(t.dtype()) && watched_.contains(t.id());
    if (t.defined())
      node->inputs.push_back({w ? t.id() : 0, t.shape(), t.dtype()});
    else
      node->inputs.push_back({0, Shape{}, DType::f32});
  }
  node->outputs.reserve(n_out);
  for (size_t k = 0; k < n_out; ++k) {
    const Tensor& t = outputs[k];
    node->outputs.push_back({t.id(), t.shape(), t.dtype()});
    if (is_floating(t.dtype())) {
      watched_.insert(t.id());
    }
  }
  node->saved.reserve(n_saved);
  for (size_t k = 0; k < n_saved; ++k)
    if (saved[k].defined()) node->saved.emplace_back(saved[k].storage(), saved[k].version());
  // The innermost tape takes the vjp; outer tapes that also record keep copies.
  if (may_move)
    node->vjp = std::move(vjp);
  else
    node->vjp = vjp;
}

// ---------------------------------------------------------------------------------------------
// The backward walk

Tensors GradientTape::gradient(const Tensor& target, const Tensors& sources,
                               const GradientOptions& options) {
  ENCORE_CHECK(!used_, "gradient",
               "this non-persistent GradientTape has already computed gradients; use "
               "GradientTape(true) to call gradient() more than once");
  ENCORE_CHECK(target.defined(), "gradient", "the target is an undefined tensor");
  for (const Tensor& s : sources)
    ENCORE_CHECK(s.defined(), "gradient", "a source is an undefined tensor");
  ENCORE_CHECK(watched_.contains(target.id()), "gradient", "the target (shape ", target.shape(),
               ") was not computed on this tape from a watched tensor; compute it inside the "
               "tape's scope from parameters or watch()ed tensors (a layer's tensor is a "
               "parameter only once register_parameter() has been called on it; any other "
               "tensor needs tape.watch(t))");
  Tensor seed = options.output_gradient;
  if (seed.defined()) {
    ENCORE_CHECK(seed.shape() == target.shape(), "gradient", "output_gradient of shape ",
                 seed.shape(), " does not match the target's shape ", target.shape());
    if (seed.dtype() != target.dtype()) seed = seed.to(target.dtype());
  } else {
    ENCORE_CHECK(target.numel() == 1, "gradient", "the target of shape ", target.shape(),
                 " is not a scalar; pass GradientOptions{.output_gradient = ...}");
    seed = ones(target.shape(), target.dtype());
  }

  detail::IdSet keep;  // sources: their gradients stay in the map until the end
  for (const Tensor& s : sources) keep.insert(s.id());
  detail::IdMap<Tensor> grads(nodes_.size() + 1);
  bool inserted;
  grads.get(target.id(), &inserted) = seed;

  Tensors out(sources.size());
  auto final_gradient = [&](size_t j) {
    const Tensor& s = sources[j];
    Tensor* g = grads.find(s.id());
    if (g && g->defined())
      out[j] = *g;
    else if (options.unconnected_zeros)
      out[j] = zeros(s.shape(), s.dtype());
  };
  // on_ready: (node index of the source's earliest consumer, source index), latest node first;
  // sources nothing consumed carry nodes_.size() and come last. Built only with a callback.
  std::vector<std::pair<size_t, size_t>> ready;
  size_t next_ready = 0, n_consumed = 0;
  const bool notify = static_cast<bool>(options.on_ready);
  if (notify) {
    detail::IdMap<size_t> first_use(sources.size());
    for (const Tensor& s : sources) first_use.get(s.id(), &inserted) = nodes_.size();
    for (size_t i = nodes_.size(); i-- > 0;) {
      const Node& n = *nodes_[i];
      for (size_t k = 0; k < n.inputs.size(); ++k)
        if (n.inputs[k].id)
          if (size_t* f = first_use.find(n.inputs[k].id)) *f = i;
    }
    ready.reserve(sources.size());
    for (size_t j = 0; j < sources.size(); ++j)
      ready.emplace_back(*first_use.find(sources[j].id()), j);
    std::stable_sort(ready.begin(), ready.end(), [&](const auto& a, const auto& b) {
      const bool a_end = a.first == nodes_.size(), b_end = b.first == nodes_.size();
      if (a_end != b_end) return b_end;
      return a.first > b.first;
    });
    while (n_consumed < ready.size() && ready[n_consumed].first != nodes_.size()) ++n_consumed;
  }
  // Reports every consumed source whose earliest consumer has index >= `walked` (processed).
  auto report = [&](size_t walked) {
    NoGrad no_grad;
    while (next_ready < n_consumed && ready[next_ready].first >= walked) {
      const size_t j = ready[next_ready++].second;
      final_gradient(j);
      options.on_ready(j, out[j]);
    }
  };

  {
    Pause pause(this);  // the vjps' own ops are for outer tapes, not this one
    for (size_t i = nodes_.size(); i-- > 0;) {
      if (next_ready < n_consumed && ready[next_ready].first > i) report(i + 1);
      Node& n = *nodes_[i];
      if (!n.vjp) continue;
      Tensors douts(n.outputs.size());
      bool any = false;
      for (size_t k = 0; k < n.outputs.size(); ++k) {
        Tensor* g = grads.find(n.outputs[k].id);
        if (!g || !g->defined()) continue;
        douts[k] = *g;
        any = true;
        // Every consumer of this output was recorded later and has been walked already.
        if (!keep.contains(n.outputs[k].id)) *g = Tensor();
      }
      if (!any) continue;
      for (size_t k = 0; k < douts.size(); ++k)
        if (!douts[k].defined()) douts[k] = zeros(n.outputs[k].shape, n.outputs[k].dtype);
      for (size_t k = 0; k < n.saved.size(); ++k) {
        const auto& [storage, version] = n.saved[k];
        ENCORE_CHECK(storage->version() == version, "gradient", "a tensor saved by '", n.op,
                     "' for the backward pass was modified in place after the op ran (version ",
                     version, " -> ", storage->version(),
                     "); modify a clone, or update it outside the tape's recording");
      }
      uint32_t bits = 0;
      for (size_t k = 0; k < n.inputs.size() && k < 32; ++k)
        if (n.inputs[k].id) bits |= 1u << k;
      Tensors dins;
      {
        const char* outer_op = backward_op;
        backward_op = n.op;
        try {
          dins = n.vjp(douts, NeedsGrad(bits));
        } catch (...) {
          backward_op = outer_op;
          throw;
        }
        backward_op = outer_op;
      }
      ENCORE_CHECK(dins.size() == n.inputs.size(), n.op, "vjp returned ", dins.size(),
                   " gradients for ", n.inputs.size(), " inputs");
      for (size_t k = 0; k < dins.size(); ++k) {
        const auto& in = n.inputs[k];
        if (!in.id || !dins[k].defined()) continue;
        Tensor d = dins[k];
        // Broadcasting is undone here, once, for every op. Any other shape is the vjp's
        // mistake (a user's custom backward, typically): say which op and which input.
        if (d.shape() != in.shape) {
          ENCORE_CHECK(broadcasts_to(in.shape, d.shape()), n.op,
                       "backward returned a gradient of shape ", d.shape(), " for input ", k,
                       " of shape ", in.shape,
                       "; a gradient has its input's shape (or a shape the input broadcasts to)");
          d = sum_to(d, in.shape);
        }
        // Mixed-dtype ops promote; a gradient comes back in its input's dtype.
        if (d.dtype() != in.dtype) d = cast(d, in.dtype);
        if (anomaly_detection()) detail::check_finite(n.op, "backward", d);
        Tensor& acc = grads.get(in.id, &inserted);
        acc = acc.defined() ? acc + d : d;
      }
      if (!options_.persistent) {
        n.vjp = nullptr;
        n.saved.clear();
      }
    }
  }

  if (notify) {
    report(0);
    NoGrad no_grad;
    for (; next_ready < ready.size(); ++next_ready) {  // the sources nothing consumed
      const size_t j = ready[next_ready].second;
      final_gradient(j);
      options.on_ready(j, out[j]);
    }
  } else {
    for (size_t j = 0; j < sources.size(); ++j) final_gradient(j);
  }
  if (!options_.persistent) {
    used_ = true;
    set_recording(false);
    nodes_.clear();
    watched_.clear();
    accessed_.clear();
  }
  return out;
}

Tensor GradientTape::gradient(const Tensor& target, const Tensor& source,
                              const GradientOptions& options) {
  return gradient(target, Tensors{source}, options)[0];
}

void GradientTape::set_recording(bool on) {
  if (on == recording_) return;
  recording_ = on;
  if (on)
    ++tls.active;
  else
    --tls.active;
}

GradientTape::Pause::Pause(GradientTape* tape) : tape_(tape), was_recording_(tape->recording_) {
  tape_->set_recording(false);
}
GradientTape::Pause::~Pause() { tape_->set_recording(was_recording_ && !tape_->used_); }

NoGrad::NoGrad() : previous_floor_(tls.floor) { tls.floor = tls.tapes.size(); }
NoGrad::~NoGrad() { tls.floor = std::min(previous_floor_, tls.tapes.size()); }

void set_anomaly_detection(bool on) { anomaly_on.store(on); }
bool anomaly_detection() { return anomaly_on.load(std::memory_order_relaxed); }
DetectAnomaly::DetectAnomaly() : previous_(anomaly_detection()) { set_anomaly_detection(true); }
DetectAnomaly::~DetectAnomaly() { set_anomaly_detection(previous_); }

}  // namespace encore
