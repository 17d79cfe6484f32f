// Central-difference Jacobian checks of the tape, first and second order.
#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "autograd/ops.h"

namespace encore {
namespace {

bool is_constant(const GradcheckOptions& o, size_t i) {
  return std::find(o.constant_inputs.begin(), o.constant_inputs.end(), i) !=
         o.constant_inputs.end();
}

// Evaluates fn with no tape recording and returns its output as contiguous f64 values.
std::vector<double> eval(const GradcheckFn& fn, const Tensors& xs) {
  NoGrad no_grad;
  return fn(xs).to_vector<double>();
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const Tensors& inputs, const GradcheckOptions& o) {
  // Private contiguous copies, so perturbing them cannot touch the caller's data.
  Tensors xs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    ENCORE_CHECK(x.defined(), "gradcheck", "input ", i, " is undefined");
    bool differentiable = !is_constant(o, i) && is_floating(x.dtype());
    ENCORE_CHECK(!differentiable || x.dtype() == DType::f64, "gradcheck", "input ", i, " (shape ",
                 x.shape(), ") has dtype ", x.dtype(),
                 "; finite differences need f64 (convert with .to(DType::f64))");
    xs.push_back(x.clone());
  }

  // Analytic Jacobian, one output element at a time: row j = d y_j / d inputs.
  Tensor y0;
  std::vector<std::vector<double>> analytic(xs.size());  // [input][j * n_i + k]
  {
    GradientTape tape(true);
    for (size_t i = 0; i < xs.size(); ++i)
      if (!is_constant(o, i) && is_floating(xs[i].dtype())) tape.watch(xs[i]);
    y0 = fn(xs);
    ENCORE_CHECK(y0.dtype() == DType::f64, "gradcheck", "fn returned dtype ", y0.dtype(),
                 " (shape ", y0.shape(), "); it must compute in f64");
    int64_t m = y0.numel();
    for (size_t i = 0; i < xs.size(); ++i) analytic[i].assign(m * xs[i].numel(), 0.0);
    Tensors sources;
    std::vector<size_t> which;
    for (size_t i = 0; i < xs.size(); ++i)
      if (tape.is_watched(xs[i])) {
        sources.push_back(xs[i]);
        which.push_back(i);
      }
    bool connected = m > 0 && !sources.empty();
    if (connected) {
      // A target the tape never saw (fn ignored every input) has an all-zero Jacobian.
      try {
        for (int64_t j = 0; j < m; ++j) {
          Tensor seed = zeros(y0.shape(), DType::f64);
          seed.data<double>()[j] = 1.0;
          Tensors g = tape.gradient(y0, sources, {.output_gradient = seed});
          for (size_t s = 0; s < sources.size(); ++s) {
            std::vector<double> gv = g[s].to_vector<double>();
            std::copy(gv.begin(), gv.end(), analytic[which[s]].begin() + j * xs[which[s]].numel());
          }
        }
      } catch (const Error& e) {
        if (std::string(e.what()).find("was not computed on this tape") == std::string::npos) throw;
      }
    }
  }

  GradcheckResult r;
  int64_t m = y0.numel();
  for (size_t i = 0; i < xs.size(); ++i) {
    if (is_constant(o, i) || !is_floating(xs[i].dtype())) continue;
    double* p = xs[i].data<double>();
    int64_t n = xs[i].numel();
    for (int64_t k = 0; k < n; ++k) {
      double saved = p[k];
      p[k] = saved + o.eps;
      std::vector<double> yp = eval(fn, xs);
      p[k] = saved - o.eps;
      std::vector<double> ym = eval(fn, xs);
      p[k] = saved;
      for (int64_t j = 0; j < m; ++j) {
        double num = (yp[j] - ym[j]) / (2 * o.eps);
        double ana = analytic[i][j * n + k];
        double err = std::abs(ana - num);
        r.max_abs_error = std::max(r.max_abs_error, err);
        if (!(err <= o.atol + o.rtol * std::abs(num)) && r.ok) {
          r.ok = false;
          std::ostringstream os;
          os << "gradcheck: d output[" << j << "] / d input " << i << "[" << k << "] (input shape "
             << xs[i].shape() << ", output shape " << y0.shape() << "): analytic " << ana
             << " vs numeric " << num;
          r.message = os.str();
        }
      }
    }
  }
  return r;
}

GradcheckResult gradgradcheck(const GradcheckFn& fn, const Tensors& inputs,
                              const GradcheckOptions& o) {
  // A fixed output gradient v, so the checked function is x -> J(x)^T v.
  Tensor y;
  {
    NoGrad no_grad;
    y = fn(inputs);
  }
  Generator gen(1234);
  Tensor v = randn(y.shape(), gen, DType::f64);
  GradcheckFn vjp_fn = [&](const Tensors& xs) {
    GradientTape tape;
    Tensors sources;
    for (size_t i = 0; i < xs.size(); ++i)
      if (!is_constant(o, i) && is_floating(xs[i].dtype())) {
        tape.watch(xs[i]);
        sources.push_back(xs[i]);
      }
    Tensor out = fn(xs);
    Tensors g = tape.gradient(out, sources, {.output_gradient = v});
    Tensors flat;
    for (const Tensor& t : g) flat.push_back(reshape(t, {-1}));
    return concat(flat, 0);
  };
  return gradcheck(vjp_fn, inputs, o);
}

}  // namespace encore
