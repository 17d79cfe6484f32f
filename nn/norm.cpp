// BatchNorm1d / BatchNorm2d as a composite of differentiable ops (mean, var, rsqrt, broadcast
// arithmetic), so the tape derives the backward pass, including second order. A fused
// forward/backward kernel can replace it once a benchmark shows it is hot.
#include "nn/norm.h"

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace encore::nn {

BatchNorm::BatchNorm(const char* name, int min_dim, int max_dim, int64_t num_features,
                     const BatchNormOptions& options)
    : name_(name), min_dim_(min_dim), max_dim_(max_dim), c_(num_features), options_(options) {
  const BatchNormOptions& o = options_;
  ENCORE_CHECK(num_features > 0, name_, "num_features must be positive, got ", num_features);
  // eps = 0 divides by zero on a constant channel (variance 0), so it must be positive.
  ENCORE_CHECK(std::isfinite(o.eps) && o.eps > 0, name_, "eps must be finite and > 0, got ", o.eps);
  ENCORE_CHECK(!o.momentum || (*o.momentum >= 0 && *o.momentum <= 1), name_,
               "momentum must be in [0, 1], got ", o.momentum.value_or(0));
  ENCORE_CHECK(is_floating(o.dtype), name_, "dtype must be f32 or f64, got ", o.dtype);
  if (o.affine) {
    weight_ = register_parameter("weight", ones({c_}, o.dtype));
    bias_ = register_parameter("bias", zeros({c_}, o.dtype));
  }
  if (o.track_running_stats) {
    running_mean_ = register_buffer("running_mean", zeros({c_}, o.dtype));
    running_var_ = register_buffer("running_var", ones({c_}, o.dtype));
    num_batches_tracked_ = register_buffer("num_batches_tracked", zeros(Shape{}, DType::i64));
  }
}

void BatchNorm::check_input(const Tensor& x) const {
  ENCORE_CHECK(x.defined(), name_, "input is undefined");
  ENCORE_CHECK(is_floating(x.dtype()), name_, "input of shape ", x.shape(), " has dtype ",
               x.dtype(), "; expected f32 or f64");
  // Mixed dtypes would promote silently (f32 statistics, an f64 output): ask for a conversion.
  ENCORE_CHECK(x.dtype() == options_.dtype, name_, "input ", x.shape(), " is ", x.dtype(),
               " but the layer is ", options_.dtype,
               "; convert it with x.to(DType::", options_.dtype, ")");
  const char* layout = max_dim_ == 4 ? "(N, C, H, W)" : "(N, C) or (N, C, L)";
  ENCORE_CHECK(x.dim() >= min_dim_ && x.dim() <= max_dim_ && x.size(1) == c_, name_,
               "expected input ", layout, " with C = ", c_, ", got ", x.shape());
}

void BatchNorm::update_running_stats(const Tensor& batch_mean, const Tensor& batch_var, int64_t n) {
  NoGrad no_grad;
  const int64_t batches = num_batches_tracked_.item<int64_t>() + 1;
  num_batches_tracked_.fill_(double(batches));
  const double m = options_.momentum ? *options_.momentum : 1.0 / double(batches);
  // batch_mean, batch_var: (1, C, 1...) -> (C); the running variance is the unbiased one.
  Tensor mean_c = reshape(batch_mean, {c_});
  Tensor var_c = reshape(batch_var, {c_}) * (double(n) / double(n - 1));
  running_mean_.copy_(running_mean_ * (1 - m) + mean_c * m);
  running_var_.copy_(running_var_ * (1 - m) + var_c * m);
}

Tensor BatchNorm::forward(const Tensor& x) {
  check_input(x);
  // Statistics over every dim but the channel dim 1; they broadcast back as (1, C, 1, ...).
  std::vector<int64_t> dims = {0};
  Shape stat_shape = {1, c_};
  for (int d = 2; d < x.dim(); ++d) {
    dims.push_back(d);
    stat_shape.push_back(1);
  }
  const int64_t n = x.numel() / c_;  // values per channel
  const bool use_batch_stats = is_training() || !options_.track_running_stats;
  Tensor mu, sigma2;
  if (use_batch_stats) {
    ENCORE_CHECK(n > 1 || !is_training(), name_,
                 "expected more than 1 value per channel when training, got input ", x.shape());
    ENCORE_CHECK(n > 0, name_, "input ", x.shape(), " is empty");
    mu = mean(x, dims, /*keepdim=*/true);
    sigma2 = var(x, dims, /*correction=*/0, /*keepdim=*/true);  // biased, for normalising
    if (is_training() && options_.track_running_stats) update_running_stats(mu, sigma2, n);
  } else {
    mu = reshape(running_mean_, stat_shape);
    sigma2 = reshape(running_var_, stat_shape);
  }
  Tensor y = (x - mu) * rsqrt(sigma2 + options_.eps);
  if (options_.affine) y = y * reshape(weight_, stat_shape) + reshape(bias_, stat_shape);
  return y;
}

void BatchNorm::check_loaded_state(const std::string& prefix,
                                   const std::map<std::string, Tensor>& state,
                                   std::vector<std::string>& problems) const {
  if (!options_.track_running_stats) return;
  if (auto it = state.find(prefix + "num_batches_tracked"); it != state.end()) {
    const int64_t count = it->second.item<int64_t>();
    if (count < 0 || count > kMaxBatchesTracked)
      problems.push_back("'" + it->first + "' is " + std::to_string(count) + "; " + describe() +
                         " counts batches in [0, 2^53]");
  }
  if (auto it = state.find(prefix + "running_var"); it != state.end()) {
    const std::vector<double> v = it->second.to_vector<double>();
    for (size_t k = 0; k < v.size(); ++k)
      if (v[k] < 0) {
        std::ostringstream os;
        os << "'" << it->first << "' has the negative variance " << v[k] << " for channel " << k
           << "; " << describe() << " needs variances >= 0";
        problems.push_back(os.str());
        break;
      }
  }
}

std::string BatchNorm::describe() const {
  std::ostringstream os;
  os << name_ << "(" << c_;
  const BatchNormOptions& o = options_;
  if (o.eps != 1e-5) os << ", eps " << o.eps;
  if (!o.momentum)
    os << ", cumulative average";
  else if (*o.momentum != 0.1)
    os << ", momentum " << *o.momentum;
  if (!o.affine) os << ", no affine";
  if (!o.track_running_stats) os << ", no running stats";
  os << ")";
  return os.str();
}

BatchNorm1d::BatchNorm1d(int64_t num_features, const BatchNormOptions& options)
    : BatchNorm("BatchNorm1d", 2, 3, num_features, options) {}

BatchNorm2d::BatchNorm2d(int64_t num_features, const BatchNormOptions& options)
    : BatchNorm("BatchNorm2d", 4, 4, num_features, options) {}

}  // namespace encore::nn
