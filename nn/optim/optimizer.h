// Optimizers: each update is one fused pass over a parameter's memory, in place and outside
// any tape's recording. Options are plain aggregates set with designated initialisers:
//   optim::Adam opt(model->parameters(), {.lr = 1e-3});
//   opt.step(tape.gradient(loss, model->parameters()));
// Update rules follow PyTorch's documented algorithms, so golden values compare directly.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "../../autograd/autograd.h"

namespace encore::optim {

/// The base: parameters, learning rate, a step counter and named per-parameter state.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Updates every parameter with its gradient (same order as the parameters given at
  /// construction). An undefined gradient leaves its parameter and its state unchanged. The
  /// count and every shape are checked before anything is updated, so a throwing step changes
  /// nothing.
  void step(const Tensors& grads);

  double lr() const { return lr_; }
  /// Sets the learning rate (schedules call this); must be >= 0 and finite.
  void set_lr(double lr);
  /// Number of step() calls so far.
  int64_t steps() const { return steps_; }
  const Tensors& parameters() const { return params_; }
  virtual std::string name() const = 0;

  /// State for resuming: per-parameter slots as "<index>.<slot>" (e.g. "3.exp_avg"), plus
  /// "step" and "lr" and the options as "hyper.<option>" (e.g. "hyper.momentum"; booleans as
  /// 0/1), all 0-d f64 tensors. Slots have their parameter's shape and dtype; step counts
  /// ("<index>.step") are 0-d f64. The tensors are copies.
  std::map<std::string, Tensor> state_dict() const;
  /// Restores what state_dict() returned. Checks everything before changing anything: "step"
  /// and "lr" must be present and valid, every "hyper.<option>" must equal this optimizer's
  /// option (a state saved by SGD(momentum = 0.9) does not load into SGD(momentum = 0.5);
  /// the error lists every difference; erase the "hyper." keys to load anyway, and states
  /// saved before options were stored have none), and every other key must name a parameter
  /// and a slot this optimizer keeps (with its options), with the parameter's shape (0-d for
  /// step counts).
  void load_state_dict(const std::map<std::string, Tensor>& state);

 protected:
  /// Checks the parameters (at least one; defined, floating, contiguous, no two sharing
  /// storage) and lr.
  Optimizer(Tensors params, double lr, const char* name);
  /// One parameter's update; p is contiguous, g contiguous with p's shape and dtype.
  virtual void update(size_t index, Tensor& p, const Tensor& g) = 0;

  struct SlotInfo {
    std::string name;
    bool scalar = false;  ///< a 0-d f64 counter (per-parameter step count), not p's shape
  };
  /// The state slots this optimizer keeps per parameter (given its options).
  virtual std::vector<SlotInfo> slots() const = 0;
  /// The options other than lr, by name (booleans as 0/1), stored by state_dict() and checked
  /// by load_state_dict(). The default is none.
  virtual std::vector<std::pair<std::string, double>> hyperparameters() const { return {}; }
  /// The named state slot of parameter `index`, created on first use: filled with `init`, of
  /// the parameter's shape and dtype, or a 0-d f64 when scalar is true (step counts).
  Tensor& slot(size_t index, const std::string& name, double init = 0.0, bool scalar = false);
  bool has_slot(size_t index, const std::string& name) const {
    return state_[index].count(name) > 0;
  }

 private:
  Tensors params_;
  double lr_;
  int64_t steps_ = 0;
  std::vector<std::map<std::string, Tensor>> state_;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};
/// Plain, momentum and Nesterov gradient descent (torch.optim.SGD's rule):
///   g += weight_decay p; b = first ? g : momentum b + (1 - dampening) g;
///   p -= lr (nesterov ? g + momentum b : b)        (b only when momentum > 0)
class SGD : public Optimizer {
 public:
  explicit SGD(Tensors params, SGDOptions options = {});
  std::string name() const override { return "SGD"; }

 private:
  void update(size_t index, Tensor& p, const Tensor& g) override;
  std::vector<SlotInfo> slots() const override;
  std::vector<std::pair<std::string, double>> hyperparameters() const override;
  SGDOptions o_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  ///< L2: added to the gradient as weight_decay * p
  bool amsgrad = false;
};
/// Adam (Kingma & Ba) with bias correction, torch.optim.Adam's rule; weight decay as L2 on
/// the gradient. Each parameter counts its own steps (for the bias correction).
class Adam : public Optimizer {
 public:
  explicit Adam(Tensors params, AdamOptions options = {});
  std::string name() const override { return decoupled_ ? "AdamW" : "Adam"; }

 protected:
  Adam(Tensors params, AdamOptions options, bool decoupled);

 private:
  void update(size_t index, Tensor& p, const Tensor& g) override;
  std::vector<SlotInfo> slots() const override;
  std::vector<std::pair<std::string, double>> hyperparameters() const override;
  AdamOptions o_;
  bool decoupled_;
};

/// AdamW's options: Adam's, with PyTorch's default decoupled weight decay of 0.01 (a separate
/// struct so that `{.lr = 1e-3}` keeps that default).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  ///< decoupled: p *= 1 - lr * weight_decay before the Adam step
  bool amsgrad = false;
};
/// AdamW (Loshchilov & Hutter), torch.optim.AdamW's rule: weight decay applied to the
/// parameter, not the gradient.
class AdamW : public Adam {
 public:
  explicit AdamW(Tensors params, AdamWOptions options = {});
};

struct RMSPropOptions {
  double lr = 0.01;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
};
/// torch.optim.RMSprop's rule: g += weight_decay p; v = alpha v + (1 - alpha) g^2;
/// centered: a = alpha a + (1 - alpha) g, v' = v - a^2; d = sqrt(v') + eps;
/// momentum: b = momentum b + g / d, p -= lr b; else p -= lr g / d.
class RMSProp : public Optimizer {
 public:
  explicit RMSProp(Tensors params, RMSPropOptions options = {});
  std::string name() const override { return "RMSProp"; }

 private:
  void update(size_t index, Tensor& p, const Tensor& g) override;
  std::vector<SlotInfo> slots() const override;
  std::vector<std::pair<std::string, double>> hyperparameters() const override;
  RMSPropOptions o_;
};

struct AdagradOptions {
  double lr = 0.01;
  double lr_decay = 0;
  double weight_decay = 0;
  double initial_accumulator_value = 0;
  double eps = 1e-10;
};
/// torch.optim.Adagrad's rule: g += weight_decay p; s += g^2;
/// p -= lr / (1 + (t - 1) lr_decay) g / (sqrt(s) + eps), t counting this parameter's steps.
class Adagrad : public Optimizer {
 public:
  explicit Adagrad(Tensors params, AdagradOptions options = {});
  std::string name() const override { return "Adagrad"; }

 private:
  void update(size_t index, Tensor& p, const Tensor& g) override;
  std::vector<SlotInfo> slots() const override;
  std::vector<std::pair<std::string, double>> hyperparameters() const override;
  AdagradOptions o_;
};

}  // namespace encore::optim
