// VAE: the layers of PyTorch's reference example, the reparameterised sample, and -ELBO as
// BCE(sum) + KL per image.
#include "models/vae.h"

namespace encore::models {

VAE::VAE(const VAEOptions& options) : options_(options) {
  ENCORE_CHECK(options.input > 0 && options.hidden > 0 && options.code > 0, "VAE",
               "input, hidden and code sizes must be positive, got ", options.input, ", ",
               options.hidden, ", ", options.code);
  nn::LinearOptions lin{.init = options.init, .gen = options.gen};
  fc1_ = register_module("fc1", std::make_shared<nn::Linear>(options.input, options.hidden, lin));
  fc21_ = register_module("fc21", std::make_shared<nn::Linear>(options.hidden, options.code, lin));
  fc22_ = register_module("fc22", std::make_shared<nn::Linear>(options.hidden, options.code, lin));
  fc3_ = register_module("fc3", std::make_shared<nn::Linear>(options.code, options.hidden, lin));
  fc4_ = register_module("fc4", std::make_shared<nn::Linear>(options.hidden, options.input, lin));
}

Tensor VAE::flat(const char* op, const Tensor& x) const {
  ENCORE_CHECK(x.defined(), op, "input is undefined");
  int64_t per = 1;
  for (int d = 1; d < x.dim(); ++d) per *= x.size(d);
  ENCORE_CHECK(x.dim() >= 2 && per == options_.input, op, "expected input (N, ", options_.input,
               ") (or (N, ...) with ", options_.input, " elements per sample), got ", x.shape());
  const DType want = fc1_->weight().dtype();
  ENCORE_CHECK(x.dtype() == want, op, "input ", x.shape(), " is ", x.dtype(), " but the model is ",
               want, "; convert it with x.to(DType::", want, ")");
  return x.dim() == 2 ? x : reshape(x, {x.size(0), options_.input});
}

GaussianCode VAE::encode(const Tensor& x) {
  Tensor h = relu(fc1_->forward(flat("VAE.encode", x)));  // (N, hidden)
  return {fc21_->forward(h), fc22_->forward(h)};
}

Tensor VAE::reparameterize(const Tensor& mu, const Tensor& logvar, Generator& gen) {
  ENCORE_CHECK(mu.defined() && logvar.defined() && mu.shape() == logvar.shape() && mu.dim() == 2 &&
                   mu.size(1) == options_.code,
               "VAE.reparameterize", "mu and logvar must both be (N, ", options_.code, "), got ",
               mu.defined() ? to_string(mu.shape()) : "undefined", " and ",
               logvar.defined() ? to_string(logvar.shape()) : "undefined");
  Tensor eps = randn(mu.shape(), gen, mu.dtype());  // a constant for the tape
  return mu + exp(logvar * 0.5) * eps;
}

Tensor VAE::decode_logits(const Tensor& z) {
  ENCORE_CHECK(z.defined() && z.dim() == 2 && z.size(1) == options_.code, "VAE.decode",
               "expected codes (N, ", options_.code, "), got ",
               z.defined() ? to_string(z.shape()) : "undefined");
  return fc4_->forward(relu(fc3_->forward(z)));
}

Tensor VAE::decode(const Tensor& z) { return sigmoid(decode_logits(z)); }

VAEOutput VAE::forward(const Tensor& x, Generator& gen) {
  GaussianCode q = encode(x);
  Tensor logits = decode_logits(reparameterize(q.mu, q.logvar, gen));
  return {sigmoid(logits), logits, q.mu, q.logvar};
}

VAELoss VAE::loss_terms(const VAEOutput& out, const Tensor& x_in) const {
  Tensor x = flat("VAE.loss", x_in);
  ENCORE_CHECK(out.logits.defined() && out.logits.shape() == x.shape(), "VAE.loss", "output ",
               out.logits.defined() ? to_string(out.logits.shape()) : "undefined",
               " does not match input ", x_in.shape());
  // A per-image mean over no images is undefined (the KL term would say so in its own name).
  ENCORE_CHECK(x.size(0) > 0, "VAE.loss", "input ", x_in.shape(),
               " is an empty batch; the loss is a mean per image");
  const double n = double(x.size(0));
  // BCE on the logits equals binary_cross_entropy(sigmoid(logits), x) (PyTorch's example)
  // without its log clamping at -100, and is finite for saturated outputs.
  Tensor rec = nn::bce_with_logits(out.logits, x, nn::Reduction::sum) / n;
  Tensor kl = nn::gaussian_kl(out.mu, out.logvar, nn::Reduction::mean);
  return {rec + kl, rec, kl};
}

Tensor VAE::loss(const Tensor& x, Generator& gen) { return loss_terms(forward(x, gen), x).total; }

Tensor VAE::sample(int64_t n, Generator& gen) {
  ENCORE_CHECK(n >= 0, "VAE.sample", "number of samples must be >= 0, got ", n);
  return decode(randn({n, options_.code}, gen, fc3_->weight().dtype()));
}

std::string VAE::describe() const {
  return "VAE(" + std::to_string(options_.input) + "-" + std::to_string(options_.hidden) + "-(" +
         std::to_string(options_.code) + ", " + std::to_string(options_.code) + ")-" +
         std::to_string(options_.hidden) + "-" + std::to_string(options_.input) + ")";
}

}  // namespace encore::models
