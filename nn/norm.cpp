// BatchNorm1d / BatchNorm2d as a composite of differentiable ops (mean, var, rsqrt, broadcast
// arithmetic), so the tape derives the backward pass, including second order. A fused
// forward/backward kernel can replace it once a benchmark shows it is hot. The synchronised
// training forward (a ProcessGroup of several ranks) is a Function with its own backward,
// since its statistics and their gradient are sums over the ranks that no tape sees.
#include "nn/norm.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/function.h"

namespace encore::nn {

namespace {

/// Per-channel sums of x (f64) over `dims` (every dim but 1): (C) values.
std::vector<double> channel_sums(const Tensor& x, const std::vector<int64_t>& dims) {
  return sum(x.to(DType::f64), dims).to_vector<double>();
}

/// xhat = (x - mean) / sqrt(var + eps) with the global batch's mean and biased variance over
/// the ranks of a ProcessGroup, and its vjp (see nn/norm.h for the weighting). Inputs {x},
/// outputs {xhat}; saves xhat and 1 / sqrt(var + eps).
class SyncBatchNormFunction : public Function {
 public:
  SyncBatchNormFunction(const char* layer, ProcessGroup& group, std::vector<int64_t> dims,
                        Shape stat_shape, double eps)
      : layer_(layer),
        group_(group),
        dims_(std::move(dims)),
        stat_shape_(std::move(stat_shape)),
        eps_(eps) {}

  const char* name() const override { return "sync_batch_norm"; }

  Tensors forward(const Tensors& inputs) override {
    const Tensor& x = inputs[0];
    const size_t c = size_t(stat_shape_[1]);
    const int64_t n_local = x.numel() / int64_t(c);
    // One exchange: [count, sum_c..., sum of squares_c...].
    std::vector<double> v(1 + 2 * c);
    v[0] = double(n_local);
    const std::vector<double> s1 = channel_sums(x, dims_);
    const std::vector<double> s2 = channel_sums(x * x, dims_);
    std::copy(s1.begin(), s1.end(), v.begin() + 1);
    std::copy(s2.begin(), s2.end(), v.begin() + 1 + std::ptrdiff_t(c));
    v = group_.all_reduce_sum(std::move(v), "BatchNorm (synchronized) forward");
    count_ = v[0];
    // Every rank sees the same global count, so every rank throws alike (none is left waiting).
    ENCORE_CHECK(count_ > 1, layer_,
                 "expected more than 1 value per channel over the ranks when training, got ",
                 count_, " (this rank's input ", x.shape(), ")");
    weight_ = group_.gradient_weight();
    ENCORE_CHECK(std::isfinite(weight_) && weight_ > 0, layer_,
                 "the process group's gradient weight must be finite and > 0, got ", weight_);
    std::vector<double> mean_c(c), var_c(c), invstd_c(c);
    for (size_t k = 0; k < c; ++k) {
      mean_c[k] = v[1 + k] / count_;
      // E[x^2] - E[x]^2 in f64, clamped: rounding can leave a constant channel at -1e-17.
      var_c[k] = std::max(0.0, v[1 + c + k] / count_ - mean_c[k] * mean_c[k]);
      invstd_c[k] = 1.0 / std::sqrt(var_c[k] + eps_);
    }
    mean_ = from_vector<double>(mean_c, stat_shape_).to(x.dtype());
    var_ = from_vector<double>(var_c, stat_shape_).to(x.dtype());
    Tensor invstd = from_vector<double>(invstd_c, stat_shape_).to(x.dtype());
    Tensor xhat = (x - mean_) * invstd;
    save_for_backward({xhat, invstd});
    return {xhat};
  }

  Tensors backward(const Tensors& douts) override {
    const Tensor& xhat = saved()[0];
    const Tensor& invstd = saved()[1];
    const Tensor& g = douts[0];
    // The cross-rank sums below are plain numbers to a tape: an outer tape would record a
    // backward without them, and its gradient would be wrong.
    ENCORE_CHECK(!is_recording({g, xhat, invstd}), layer_, "the synchronised backward (input ",
                 xhat.shape(),
                 ") cannot be differentiated again; use per-rank statistics for higher-order "
                 "gradients");
    const size_t c = size_t(stat_shape_[1]);
    std::vector<double> v(2 * c);
    const std::vector<double> a = channel_sums(g, dims_);
    const std::vector<double> b = channel_sums(g * xhat, dims_);
    for (size_t k = 0; k < c; ++k) {
      v[k] = weight_ * a[k];
      v[c + k] = weight_ * b[k];
    }
    v = group_.all_reduce_sum(std::move(v), "BatchNorm (synchronized) backward");
    // Global means of w g and w g xhat, back on this rank's scale (1 / w).
    std::vector<double> mean_g(c), mean_gx(c);
    for (size_t k = 0; k < c; ++k) {
      mean_g[k] = v[k] / count_ / weight_;
      mean_gx[k] = v[c + k] / count_ / weight_;
    }
    Tensor mg = from_vector<double>(mean_g, stat_shape_).to(g.dtype());
    Tensor mgx = from_vector<double>(mean_gx, stat_shape_).to(g.dtype());
    return {invstd * (g - mg - xhat * mgx)};
  }

  /// The global moments (stat_shape, the input's dtype) and values per channel of the last
  /// forward.
  const Tensor& mean() const { return mean_; }
  const Tensor& var() const { return var_; }
  double count() const { return count_; }

 private:
  const char* layer_;
  ProcessGroup& group_;
  std::vector<int64_t> dims_;
  Shape stat_shape_;
  double eps_;
  double count_ = 0;
  double weight_ = 1;
  Tensor mean_, var_;
};

void collect_batch_norms(Module& m, std::set<Module*>& seen, std::vector<BatchNorm*>& out) {
  if (!seen.insert(&m).second) return;
  if (auto* bn = dynamic_cast<BatchNorm*>(&m)) out.push_back(bn);
  for (const auto& [name, child] : m.children())
    if (child) collect_batch_norms(*child, seen, out);
}

}  // namespace

int64_t set_batch_norm_process_group(Module& model, ProcessGroup* group) {
  std::set<Module*> seen;
  std::vector<BatchNorm*> layers;
  collect_batch_norms(model, seen, layers);
  for (BatchNorm* bn : layers) bn->set_process_group(group);
  return int64_t(layers.size());
}

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
  if (is_training() && group_ && group_->size() > 1) {
    Tensor y = normalize_synchronized(x, dims, stat_shape);
    if (options_.affine) y = y * reshape(weight_, stat_shape) + reshape(bias_, stat_shape);
    return y;
  }
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

Tensor BatchNorm::normalize_synchronized(const Tensor& x, const std::vector<int64_t>& dims,
                                         const Shape& stat_shape) {
  auto f = std::make_shared<SyncBatchNormFunction>(name_, *group_, dims, stat_shape, options_.eps);
  Tensor xhat = apply_function(f, {x})[0];
  // The count is the global one: every rank's running statistics are the same.
  if (options_.track_running_stats) update_running_stats(f->mean(), f->var(), int64_t(f->count()));
  return xhat;
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
