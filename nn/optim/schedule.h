// Learning-rate schedules: plain function objects from a step (or epoch) number to a rate.
//   optim::CosineDecay sched{.base_lr = 1e-3, .total_steps = 1000};
//   opt.set_lr(sched(step));
#pragma once

#include <cstdint>
#include <functional>

namespace encore::optim {

/// base_lr * gamma^(floor(step / step_size)) (torch.optim.lr_scheduler.StepLR). Negative steps
/// count as 0, here and in every schedule.
struct StepDecay {
  double base_lr = 1e-3;
  int64_t step_size = 10;
  double gamma = 0.1;
  double operator()(int64_t step) const;
};

/// base_lr * gamma^step (ExponentialLR).
struct ExponentialDecay {
  double base_lr = 1e-3;
  double gamma = 0.95;
  double operator()(int64_t step) const;
};

/// min_lr + (base_lr - min_lr) (1 + cos(pi * step / total_steps)) / 2 for step <= total_steps
/// (CosineAnnealingLR with T_max = total_steps), then min_lr (where torch's would rise again).
struct CosineDecay {
  double base_lr = 1e-3;
  int64_t total_steps = 1000;
  double min_lr = 0;
  double operator()(int64_t step) const;
};

/// Linear warm-up, then `after(step - warmup_steps)`. Step s < warmup_steps gives
/// after(0) * (s + 1) / warmup_steps: the ramp starts at after(0) / warmup_steps (never a wasted
/// step at lr 0) and reaches after(0) at step warmup_steps - 1 (torch's
/// LinearLR(start_factor = 1 / W, total_iters = W - 1) followed by `after` in a SequentialLR).
struct LinearWarmup {
  int64_t warmup_steps = 100;
  std::function<double(int64_t)> after;
  double operator()(int64_t step) const;
};

}  // namespace encore::optim
