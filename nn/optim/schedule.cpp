// Learning-rate schedules.
#include "nn/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/error.h"

namespace encore::optim {

namespace {
// A rate that set_lr would refuse later, reported by the schedule the user configured.
void check_rate(const char* op, const char* what, double lr) {
  ENCORE_CHECK(std::isfinite(lr) && lr >= 0, op, what, " must be finite and >= 0, got ", lr);
}
}  // namespace

double StepDecay::operator()(int64_t step) const {
  check_rate("StepDecay", "base_lr", base_lr);
  ENCORE_CHECK(step_size > 0, "StepDecay", "step_size must be positive, got ", step_size);
  ENCORE_CHECK(std::isfinite(gamma) && gamma > 0, "StepDecay", "gamma must be finite and > 0, got ",
               gamma);
  return base_lr * std::pow(gamma, double(std::max<int64_t>(step, 0) / step_size));
}

double ExponentialDecay::operator()(int64_t step) const {
  check_rate("ExponentialDecay", "base_lr", base_lr);
  // A negative gamma would flip the rate's sign every step; 0 would stop training after one.
  ENCORE_CHECK(std::isfinite(gamma) && gamma > 0, "ExponentialDecay",
               "gamma must be finite and > 0, got ", gamma);
  return base_lr * std::pow(gamma, double(std::max<int64_t>(step, 0)));
}

double CosineDecay::operator()(int64_t step) const {
  check_rate("CosineDecay", "base_lr", base_lr);
  check_rate("CosineDecay", "min_lr", min_lr);
  ENCORE_CHECK(total_steps > 0, "CosineDecay", "total_steps must be positive, got ", total_steps);
  if (step >= total_steps) return min_lr;
  double t = double(std::max<int64_t>(step, 0)) / double(total_steps);
  return min_lr + (base_lr - min_lr) * (1 + std::cos(std::numbers::pi * t)) / 2;
}

double LinearWarmup::operator()(int64_t step) const {
  ENCORE_CHECK(warmup_steps >= 0, "LinearWarmup", "warmup_steps must be >= 0, got ", warmup_steps);
  ENCORE_CHECK(static_cast<bool>(after), "LinearWarmup", "no schedule to follow the warm-up");
  step = std::max<int64_t>(step, 0);
  if (step < warmup_steps) return after(0) * double(step + 1) / double(warmup_steps);
  return after(step - warmup_steps);
}

}  // namespace encore::optim
