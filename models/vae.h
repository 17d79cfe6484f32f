// VAE: the variational autoencoder of Kingma & Welling 2014 as in PyTorch's reference example
// (examples/vae): 784-400-(20, 20)-400-784, ReLU hidden layers, a Gaussian code with a mean
// and a log-variance head, the reparameterisation z = mu + exp(logvar / 2) eps drawn from an
// explicit Generator, a sigmoid (Bernoulli) decoder, and the loss -ELBO = BCE summed over the
// pixels + KL(q(z|x) || N(0, I)), averaged per image (nats per image). Parameter names are the
// PyTorch example's: fc1, fc21 (mean), fc22 (log-variance), fc3, fc4.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "../nn/nn.h"

namespace encore::models {

struct VAEOptions {
  int64_t input = 784;
  int64_t hidden = 400;
  int64_t code = 20;
  /// PyTorch's default Linear initialisation, as the reference example uses.
  nn::Init init = nn::Init::torch_default;
  /// Random source for the initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// What the encoder gives for a batch: q(z | x) = N(mu, exp(logvar)).
struct GaussianCode {
  Tensor mu;      ///< (N, code)
  Tensor logvar;  ///< (N, code)
};

/// One pass: the decoder's output for a sampled code, with the code's distribution.
struct VAEOutput {
  Tensor recon;   ///< (N, input) in (0, 1)
  Tensor logits;  ///< (N, input), recon = sigmoid(logits)
  Tensor mu;      ///< (N, code)
  Tensor logvar;  ///< (N, code)
};

/// The two terms of -ELBO, averaged over the batch (scalars).
struct VAELoss {
  Tensor total;           ///< reconstruction + kl
  Tensor reconstruction;  ///< BCE summed over the pixels, mean over images
  Tensor kl;              ///< KL summed over the code, mean over images
};

class VAE : public nn::Module {
 public:
  explicit VAE(const VAEOptions& options = {});

  /// x: (N, input) (or (N, 1, 28, 28), flattened) -> {mu, logvar}, each (N, code).
  GaussianCode encode(const Tensor& x);
  /// mu, logvar: (N, code) -> z = mu + exp(logvar / 2) eps, eps ~ N(0, I) from gen: (N, code).
  Tensor reparameterize(const Tensor& mu, const Tensor& logvar, Generator& gen);
  /// z: (N, code) -> the decoder's logits (N, input).
  Tensor decode_logits(const Tensor& z);
  /// z: (N, code) -> Bernoulli means (N, input) in (0, 1).
  Tensor decode(const Tensor& z);
  /// x: (N, input) -> encode, sample one code per image from gen, decode.
  VAEOutput forward(const Tensor& x, Generator& gen);
  /// The -ELBO terms of a pass against its input x: (N, input).
  VAELoss loss_terms(const VAEOutput& out, const Tensor& x) const;
  /// -ELBO per image of x: (N, input) -> scalar, one code sample per image from gen.
  Tensor loss(const Tensor& x, Generator& gen);
  /// n codes drawn from the prior N(0, I) with gen, decoded: (n, input).
  Tensor sample(int64_t n, Generator& gen);

  const VAEOptions& options() const { return options_; }
  /// "VAE(784-400-(20, 20)-400-784)".
  std::string describe() const override;

 private:
  Tensor flat(const char* op, const Tensor& x) const;

  VAEOptions options_;
  std::shared_ptr<nn::Linear> fc1_, fc21_, fc22_, fc3_, fc4_;
};

}  // namespace encore::models
