// The optimizer base and the update rules of SGD, Adam/AdamW, RMSProp and Adagrad. Each
// update is a single loop over the parameter, its gradient and its state slots.
#include "nn/optim/optimizer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace encore::optim {
namespace {
void check_option(bool ok, const char* opt, const char* what, double value) {
  ENCORE_CHECK(ok, opt, "invalid ", what, ": ", value);
}
// A finite, non-negative option (weight decay, momentum, eps, ...). NaN fails too.
void check_nonneg(const char* opt, const char* what, double value) {
  check_option(value >= 0 && std::isfinite(value), opt, what, value);
}

// Runs f(i) for i in [0, n), on several threads when n is large.
template <class F>
void parallel_for(int64_t n, F&& f) {
#pragma omp parallel for if (n >= kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Runs f(begin, end) over [0, n) in one contiguous chunk per thread (one chunk when n is small),
// so that f's loop is a plain vectorisable loop.
template <class F>
void parallel_chunks(int64_t n, F&& f) {
  if (n < 2 * kParallelGrain) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t chunk = (n + nt - 1) / nt, b = std::min(n, t * chunk);
    f(b, std::min(n, b + chunk));
  }
}

// The plain Adam update (no weight decay, no AMSGrad) of elements [b, e): one branch-free
// pass, the bias corrections folded into step and sqrt_bc2 by the caller. The pointers never
// alias (distinct slots), which lets the compiler vectorise it, sqrt and division included.
template <class T>
void adam_plain(int64_t b, int64_t e, T* __restrict w, const T* __restrict d, T* __restrict mm,
                T* __restrict vv, T b1, T b2, T step, T sqrt_bc2, T eps) {
  const T c1 = 1 - b1, c2 = 1 - b2;
  for (int64_t i = b; i < e; ++i) {
    const T gi = d[i];
    const T m = b1 * mm[i] + c1 * gi, v = b2 * vv[i] + c2 * gi * gi;
    mm[i] = m;
    vv[i] = v;
    w[i] -= step * m / (std::sqrt(v) / sqrt_bc2 + eps);
  }
}
}  // namespace

Optimizer::Optimizer(Tensors params, double lr, const char* name)
    : params_(std::move(params)), lr_(lr), state_(params_.size()) {
  check_option(lr >= 0 && std::isfinite(lr), name, "learning rate", lr);
  // An optimizer with nothing to update would train nothing, silently.
  ENCORE_CHECK(!params_.empty(), name,
               "the parameter list is empty, so nothing would be trained; pass "
               "model->parameters() after the layers have registered their tensors with "
               "register_parameter() (or register_module() for submodules)");
  std::map<const Storage*, size_t> owners;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    ENCORE_CHECK(p.defined(), name, "parameter ", i, " is undefined");
    ENCORE_CHECK(is_floating(p.dtype()), name, "parameter ", i, " (shape ", p.shape(),
                 ") has dtype ", p.dtype(), "; only f32/f64 can be optimized");
    ENCORE_CHECK(p.is_contiguous(), name, "parameter ", i, " (shape ", p.shape(),
                 ") is not contiguous; optimizers update parameters in place");
    // NOTE: the same tensor twice (a module registered in two places) would be updated twice
    // per step with the same gradient.
    auto [it, fresh] = owners.emplace(p.storage().get(), i);
    ENCORE_CHECK(fresh, name, "parameters ", it->second, " and ", i, " (shape ", p.shape(),
                 ") share storage; pass each parameter once");
  }
}

void Optimizer::set_lr(double lr) {
  check_option(lr >= 0 && std::isfinite(lr), name().c_str(), "learning rate", lr);
  lr_ = lr;
}

Tensor& Optimizer::slot(size_t index, const std::string& name, double init, bool scalar) {
  auto& m = state_[index];
  auto it = m.find(name);
  if (it == m.end()) {
    // Step counts are f64 whatever the parameter's dtype: an f32 count stops at 2^24.
    const Tensor& p = params_[index];
    Tensor t = scalar ? full({}, init, DType::f64) : full(p.shape(), init, p.dtype());
    it = m.emplace(name, std::move(t)).first;
  }
  return it->second;
}

void Optimizer::step(const Tensors& grads) {
  const std::string op = name();
  ENCORE_CHECK(grads.size() == params_.size(), op.c_str(), "step got ", grads.size(),
               " gradients for ", params_.size(), " parameters");
  // Check everything first: a throw must not leave some parameters updated.
  for (size_t i = 0; i < params_.size(); ++i)
    if (grads[i].defined()) {
      ENCORE_CHECK(grads[i].shape() == params_[i].shape(), op.c_str(), "gradient ", i,
                   " has shape ", grads[i].shape(), " but its parameter has shape ",
                   params_[i].shape());
      // A gradient of another dtype is a mistake upstream (e.g. an f64 loss for f32 weights);
      // converting it silently would hide it.
      ENCORE_CHECK(grads[i].dtype() == params_[i].dtype(), op.c_str(), "gradient ", i,
                   " has dtype ", grads[i].dtype(), " but its parameter (shape ",
                   params_[i].shape(), ") has dtype ", params_[i].dtype());
    }
  NoGrad no_grad;
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!grads[i].defined()) continue;
    Tensor& p = params_[i];
    Tensor g = grads[i].contiguous();
    update(i, p, g);
    p.storage()->bump_version();
  }
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < state_.size(); ++i)
    for (const auto& [k, t] : state_[i]) out.emplace(std::to_string(i) + "." + k, t.clone());
  out.emplace("step", scalar(double(steps_), DType::f64));
  out.emplace("lr", scalar(lr_, DType::f64));
  for (const auto& [k, v] : hyperparameters()) out.emplace("hyper." + k, scalar(v, DType::f64));
  return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
  const std::string op = name() + ".load_state_dict";
  const char* o = op.c_str();
  auto counter = [&](const std::string& key, const Tensor& t) {
    ENCORE_CHECK(t.defined() && t.numel() == 1, o, "'", key, "' must hold one number");
    const double v = t.item();
    ENCORE_CHECK(v >= 0 && v < 9.0e15 && v == std::floor(v), o, "'", key,
                 "' must be a non-negative integer, got ", v);
    return v;
  };
  auto need = [&](const char* key) -> const Tensor& {
    auto it = state.find(key);
    ENCORE_CHECK(it != state.end(), o, "the state has no '", key, "'");
    return it->second;
  };
  const int64_t steps = static_cast<int64_t>(counter("step", need("step")));
  const Tensor& lr_t = need("lr");
  ENCORE_CHECK(lr_t.defined() && lr_t.numel() == 1, o, "'lr' must hold one number");
  const double lr = lr_t.item();
  check_option(lr >= 0 && std::isfinite(lr), o, "learning rate", lr);

  // Options: each stored one must match; every difference is reported at once.
  const std::vector<std::pair<std::string, double>> mine = hyperparameters();
  std::string differences;
  for (const auto& [key, t] : state) {
    if (key.rfind("hyper.", 0) != 0) continue;
    const std::string option = key.substr(6);
    auto it =
        std::find_if(mine.begin(), mine.end(), [&](const auto& h) { return h.first == option; });
    ENCORE_CHECK(it != mine.end(), o, "unexpected key '", key, "': ", name(), " has no option '",
                 option, "'");
    ENCORE_CHECK(t.defined() && t.numel() == 1, o, "'", key, "' must hold one number");
    const double saved = t.item();
    if (saved != it->second) {
      std::ostringstream os;
      os << (differences.empty() ? "" : ", ") << option << " = " << saved << " in the state but "
         << it->second << " here";
      differences += os.str();
    }
  }
  ENCORE_CHECK(differences.empty(), o, "the state was saved with other options (", differences,
               "); build the optimizer with the saved options, or erase the 'hyper.' keys to "
               "load it anyway");

  const std::vector<SlotInfo> known = slots();
  std::vector<std::map<std::string, Tensor>> fresh(params_.size());
  for (const auto& [key, t] : state) {
    if (key == "step" || key == "lr" || key.rfind("hyper.", 0) == 0) continue;
    const size_t dot = key.find('.');
    const bool digits =
        dot != std::string::npos && dot > 0 && dot <= 9 &&
        std::all_of(key.begin(), key.begin() + dot, [](char c) { return c >= '0' && c <= '9'; });
    ENCORE_CHECK(digits, o, "unexpected key '", key, "'");
    const size_t idx = std::stoul(key.substr(0, dot));
    ENCORE_CHECK(idx < params_.size(), o, "key '", key, "' names parameter ", idx,
                 " but there are ", params_.size());
    const std::string slot_name = key.substr(dot + 1);
    auto info = std::find_if(known.begin(), known.end(),
                             [&](const SlotInfo& s) { return s.name == slot_name; });
    ENCORE_CHECK(info != known.end(), o, "unexpected key '", key, "': ", name(),
                 " (with these options) keeps no '", slot_name, "' state");
    ENCORE_CHECK(t.defined(), o, "state '", key, "' is undefined");
    if (info->scalar) {
      fresh[idx].emplace(slot_name, scalar(counter(key, t), DType::f64));
    } else {
      ENCORE_CHECK(t.shape() == params_[idx].shape(), o, "state '", key, "' has shape ", t.shape(),
                   " but parameter ", idx, " has shape ", params_[idx].shape());
      fresh[idx].emplace(slot_name, t.to(params_[idx].dtype()).clone());
    }
  }
  state_ = std::move(fresh);
  steps_ = steps;
  lr_ = lr;
}

// ---------------------------------------------------------------------------------------------
// SGD: b = momentum b + (1 - dampening) g; g' = nesterov ? g + momentum b : b; p -= lr g'

SGD::SGD(Tensors params, SGDOptions o) : Optimizer(std::move(params), o.lr, "SGD"), o_(o) {
  check_nonneg("SGD", "momentum", o.momentum);
  check_nonneg("SGD", "weight_decay", o.weight_decay);
  check_option(o.dampening >= 0 && o.dampening <= 1, "SGD", "dampening", o.dampening);
  ENCORE_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), "SGD",
               "Nesterov momentum needs momentum > 0 and dampening = 0, got momentum ", o.momentum,
               " and dampening ", o.dampening);
}

std::vector<std::pair<std::string, double>> SGD::hyperparameters() const {
  return {{"momentum", o_.momentum},
          {"dampening", o_.dampening},
          {"weight_decay", o_.weight_decay},
          {"nesterov", o_.nesterov ? 1.0 : 0.0}};
}

std::vector<Optimizer::SlotInfo> SGD::slots() const {
  if (o_.momentum > 0) return {{"momentum_buffer"}};
  return {};
}

void SGD::update(size_t index, Tensor& p, const Tensor& g) {
  // The first update of a parameter starts its momentum buffer at the gradient itself.
  bool first = o_.momentum > 0 && !has_slot(index, "momentum_buffer");
  Tensor* buf = o_.momentum > 0 ? &slot(index, "momentum_buffer") : nullptr;
  dispatch_float("SGD", p.dtype(), [&]<class T>() {
    T* w = p.data<T>();
    const T* d = g.data<T>();
    T* b = buf ? buf->data<T>() : nullptr;
    const T lr = T(this->lr()), wd = T(o_.weight_decay), mom = T(o_.momentum);
    const T damp = T(1 - o_.dampening);
    const bool nesterov = o_.nesterov, init = first;
    parallel_for(p.numel(), [&](int64_t i) {
      T gi = d[i] + wd * w[i];
      if (b) {
        b[i] = init ? gi : mom * b[i] + damp * gi;
        gi = nesterov ? gi + mom * b[i] : b[i];
      }
      w[i] -= lr * gi;
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW

Adam::Adam(Tensors params, AdamOptions o) : Adam(std::move(params), o, false) {}

Adam::Adam(Tensors params, AdamOptions o, bool decoupled)
    : Optimizer(std::move(params), o.lr, decoupled ? "AdamW" : "Adam"),
      o_(o),
      decoupled_(decoupled) {
  const char* n = decoupled ? "AdamW" : "Adam";
  check_option(o.beta1 >= 0 && o.beta1 < 1, n, "beta1", o.beta1);
  check_option(o.beta2 >= 0 && o.beta2 < 1, n, "beta2", o.beta2);
  check_nonneg(n, "eps", o.eps);
  check_nonneg(n, "weight_decay", o.weight_decay);
}

AdamW::AdamW(Tensors params, AdamWOptions o)
    : Adam(std::move(params),
           AdamOptions{.lr = o.lr,
                       .beta1 = o.beta1,
                       .beta2 = o.beta2,
                       .eps = o.eps,
                       .weight_decay = o.weight_decay,
                       .amsgrad = o.amsgrad},
           true) {}

std::vector<std::pair<std::string, double>> Adam::hyperparameters() const {
  return {{"beta1", o_.beta1},
          {"beta2", o_.beta2},
          {"eps", o_.eps},
          {"weight_decay", o_.weight_decay},
          {"amsgrad", o_.amsgrad ? 1.0 : 0.0}};
}

std::vector<Optimizer::SlotInfo> Adam::slots() const {
  std::vector<SlotInfo> s = {{"step", true}, {"exp_avg"}, {"exp_avg_sq"}};
  if (o_.amsgrad) s.push_back({"max_exp_avg_sq"});
  return s;
}

void Adam::update(size_t index, Tensor& p, const Tensor& g) {
  // Each parameter counts its own steps, so a parameter whose gradient was skipped keeps
  // a correct bias correction.
  Tensor& count = slot(index, "step", 0, true);
  Tensor& m = slot(index, "exp_avg");
  Tensor& v = slot(index, "exp_avg_sq");
  Tensor* vmax = o_.amsgrad ? &slot(index, "max_exp_avg_sq") : nullptr;
  const double t = ++count.data<double>()[0];
  dispatch_float(name().c_str(), p.dtype(), [&]<class T>() {
    const double bc1 = 1 - std::pow(o_.beta1, t), bc2 = 1 - std::pow(o_.beta2, t);
    const T b1 = T(o_.beta1), b2 = T(o_.beta2), eps = T(o_.eps), wd = T(o_.weight_decay);
    const T step = T(lr() / bc1), sqrt_bc2 = T(std::sqrt(bc2));
    const T decay = decoupled_ ? T(1 - lr() * o_.weight_decay) : T(1);
    const bool l2 = !decoupled_;
    T* w = p.data<T>();
    const T* d = g.data<T>();
    T* mm = m.data<T>();
    T* vv = v.data<T>();
    T* vm = vmax ? vmax->data<T>() : nullptr;
    if (!vm && o_.weight_decay == 0) {
      parallel_chunks(p.numel(), [&](int64_t b, int64_t e) {
        adam_plain(b, e, w, d, mm, vv, b1, b2, step, sqrt_bc2, eps);
      });
      return;
    }
    parallel_for(p.numel(), [&](int64_t i) {
      T gi = l2 ? d[i] + wd * w[i] : d[i];
      w[i] *= decay;
      mm[i] = b1 * mm[i] + (1 - b1) * gi;
      vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
      T denom_v = vv[i];
      if (vm) denom_v = vm[i] = std::max(vm[i], vv[i]);
      w[i] -= step * mm[i] / (std::sqrt(denom_v) / sqrt_bc2 + eps);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// RMSProp: v = alpha v + (1 - alpha) g^2 (centered: minus the squared running mean of g)

RMSProp::RMSProp(Tensors params, RMSPropOptions o)
    : Optimizer(std::move(params), o.lr, "RMSProp"), o_(o) {
  check_option(o.alpha >= 0 && o.alpha <= 1, "RMSProp", "alpha", o.alpha);
  check_nonneg("RMSProp", "eps", o.eps);
  check_nonneg("RMSProp", "momentum", o.momentum);
  check_nonneg("RMSProp", "weight_decay", o.weight_decay);
}

std::vector<std::pair<std::string, double>> RMSProp::hyperparameters() const {
  return {{"alpha", o_.alpha},
          {"eps", o_.eps},
          {"weight_decay", o_.weight_decay},
          {"momentum", o_.momentum},
          {"centered", o_.centered ? 1.0 : 0.0}};
}

std::vector<Optimizer::SlotInfo> RMSProp::slots() const {
  std::vector<SlotInfo> s = {{"square_avg"}};
  if (o_.centered) s.push_back({"grad_avg"});
  if (o_.momentum > 0) s.push_back({"momentum_buffer"});
  return s;
}

void RMSProp::update(size_t index, Tensor& p, const Tensor& g) {
  Tensor& sq = slot(index, "square_avg");
  Tensor* gavg = o_.centered ? &slot(index, "grad_avg") : nullptr;
  Tensor* buf = o_.momentum > 0 ? &slot(index, "momentum_buffer") : nullptr;
  dispatch_float("RMSProp", p.dtype(), [&]<class T>() {
    const T alpha = T(o_.alpha), eps = T(o_.eps), wd = T(o_.weight_decay), mom = T(o_.momentum),
            lr = T(this->lr());
    T* w = p.data<T>();
    const T* d = g.data<T>();
    T* s = sq.data<T>();
    T* ga = gavg ? gavg->data<T>() : nullptr;
    T* b = buf ? buf->data<T>() : nullptr;
    parallel_for(p.numel(), [&](int64_t i) {
      T gi = d[i] + wd * w[i];
      s[i] = alpha * s[i] + (1 - alpha) * gi * gi;
      T avg = s[i];
      if (ga) {
        ga[i] = alpha * ga[i] + (1 - alpha) * gi;
        // NOTE: v >= a^2 in exact arithmetic; rounding can break it (alpha = 0 gives v = a^2),
        // and sqrt of a tiny negative would be NaN where torch would produce one.
        avg = std::max(avg - ga[i] * ga[i], T(0));
      }
      T denom = std::sqrt(avg) + eps;
      if (b) {
        b[i] = mom * b[i] + gi / denom;
        w[i] -= lr * b[i];
      } else {
        w[i] -= lr * gi / denom;
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Adagrad: sum += g^2; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)

Adagrad::Adagrad(Tensors params, AdagradOptions o)
    : Optimizer(std::move(params), o.lr, "Adagrad"), o_(o) {
  check_nonneg("Adagrad", "lr_decay", o.lr_decay);
  check_nonneg("Adagrad", "weight_decay", o.weight_decay);
  check_nonneg("Adagrad", "initial_accumulator_value", o.initial_accumulator_value);
  check_nonneg("Adagrad", "eps", o.eps);
}

std::vector<std::pair<std::string, double>> Adagrad::hyperparameters() const {
  return {{"lr_decay", o_.lr_decay},
          {"weight_decay", o_.weight_decay},
          {"initial_accumulator_value", o_.initial_accumulator_value},
          {"eps", o_.eps}};
}

std::vector<Optimizer::SlotInfo> Adagrad::slots() const { return {{"sum"}, {"step", true}}; }

void Adagrad::update(size_t index, Tensor& p, const Tensor& g) {
  Tensor& acc = slot(index, "sum", o_.initial_accumulator_value);
  Tensor& count = slot(index, "step", 0, true);
  const double t = ++count.data<double>()[0];
  dispatch_float("Adagrad", p.dtype(), [&]<class T>() {
    const T clr = T(lr() / (1 + (t - 1) * o_.lr_decay));
    const T eps = T(o_.eps), wd = T(o_.weight_decay);
    T* w = p.data<T>();
    const T* d = g.data<T>();
    T* s = acc.data<T>();
    parallel_for(p.numel(), [&](int64_t i) {
      T gi = d[i] + wd * w[i];
      s[i] += gi * gi;
      w[i] -= clr * gi / (std::sqrt(s[i]) + eps);
    });
  });
}

}  // namespace encore::optim
