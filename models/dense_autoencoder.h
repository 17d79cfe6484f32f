// DenseAutoencoder: the fully connected autoencoder of seed 004 (TensorFlow 1, MNIST),
// 784-400-300-200-20 and back, every layer Linear -> BatchNorm1d (eps 1e-3, momentum 0.1 =
// TF decay 0.9) -> ReLU except the decoder output (Linear -> sigmoid), He-normal weights and
// zero biases, trained on the mean over the batch of each image's L2 reconstruction distance.
// Options change the sizes, the loss (l2 / mse / bce), drop batch norm, make the code linear
// (as Hinton & Salakhutdinov 2006), or tie the weights: each decoder layer then multiplies by
// the transpose of its mirrored encoder layer's weight (the same storage, not a copy) and keeps
// only its own bias. Parameter names follow PyTorch's nn.Sequential, so a state written there
// loads here:
//   encoder.0.weight (400, 784)  encoder.0.bias  encoder.1.weight (BN gamma)  encoder.1.bias
//   encoder.1.running_mean ... encoder.3.weight (300, 400) ...  decoder.0.weight (200, 20) ...
// (without batch norm the ReLUs take the odd positions: encoder.0, encoder.2, ...; a tied
// decoder layer has only "bias").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../nn/nn.h"

namespace encore::models {

/// The hidden units' nonlinearity: the seed's ReLU, or LeakyReLU(0.01) / ELU(1), whose
/// gradient does not vanish for negative inputs.
enum class HiddenActivation { relu, leaky_relu, elu };
/// "relu", "leaky_relu" or "elu".
const char* activation_name(HiddenActivation activation);
/// Inverse of activation_name; throws on any other name.
HiddenActivation parse_activation(const std::string& name);

/// The reconstruction loss a DenseAutoencoder trains on.
enum class ReconstructionLoss {
  l2,   ///< mean over the batch of ||out - in||_2 per image (seed 004)
  mse,  ///< mean over every pixel of (out - in)^2
  bce,  ///< binary cross-entropy, mean over every pixel (computed on the logits, stably)
};

/// "l2", "mse" or "bce".
const char* loss_name(ReconstructionLoss loss);
/// Parses "l2", "mse" or "bce"; anything else throws naming the accepted values.
ReconstructionLoss parse_loss(const std::string& name);

struct DenseAutoencoderOptions {
  /// Features per input (28 x 28 MNIST digits flattened).
  int64_t input = 784;
  /// Encoder widths after the input; the decoder mirrors them.
  std::vector<int64_t> hidden = {400, 300, 200};
  /// Code size (the last encoder layer's width).
  int64_t code = 20;
  ReconstructionLoss loss = ReconstructionLoss::l2;
  /// Linear -> BatchNorm1d -> ReLU in every layer but the output (seed 004); false drops BN.
  bool batch_norm = true;
  /// Decoder weights are the encoder weights transposed (shared storage); own biases.
  bool tied = false;
  /// The code layer stops after Linear (-> BN): no ReLU, so codes may be negative (Hinton &
  /// Salakhutdinov 2006 use linear code units). false is the seed's ReLU code.
  bool linear_code = false;
  /// The nonlinearity after every hidden layer (and the code layer unless linear_code).
  HiddenActivation activation = HiddenActivation::relu;
  /// BatchNorm1d epsilon and momentum (seed 004: 1e-3 and TF decay 0.9).
  double bn_eps = 1e-3;
  double bn_momentum = 0.1;
  /// Random source for the He-normal initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// A decoder layer tied to an encoder Linear: y = x W^T_tied + b with W_tied = source.weight()^T,
/// i.e. y = x source.weight() + b, so it maps source's out_features back to its in_features.
/// The weight is the source's parameter itself (no copy, counted once by parameters()); this
/// layer owns only "bias" (source.in_features()), zero-initialised.
class TiedLinear : public nn::Module {
 public:
  explicit TiedLinear(std::shared_ptr<nn::Linear> source);

  /// x: (..., source.out_features) -> (..., source.in_features).
  Tensor forward(const Tensor& x);

  /// The effective weight (in_features_of_source, out_features_of_source): a transposed view of
  /// the source's weight, sharing its storage.
  Tensor weight() const;
  Tensor bias() const { return bias_; }
  /// "TiedLinear(20 -> 200, tied to Linear(200 -> 20))".
  std::string describe() const override;

 private:
  std::shared_ptr<nn::Linear> source_;
  Tensor bias_;
};

class DenseAutoencoder : public nn::Module {
 public:
  explicit DenseAutoencoder(const DenseAutoencoderOptions& options = {});

  /// x: (N, input) (or (N, 1, 28, 28), flattened) -> codes (N, code).
  Tensor encode(const Tensor& x);
  /// z: (N, code) -> reconstruction (N, input) in (0, 1).
  Tensor decode(const Tensor& z);
  /// z: (N, code) -> the output layer's pre-sigmoid values (N, input).
  Tensor decode_logits(const Tensor& z);
  /// x: (N, input) -> reconstruction (N, input) = decode(encode(x)).
  Tensor forward(const Tensor& x);
  /// The training loss of reconstructing x: (N, input) -> scalar, by options().loss.
  Tensor loss(const Tensor& x);
  /// The loss of reconstructing `target` from `input` (both (N, input)): denoising trains
  /// on a corrupted input against the clean target.
  Tensor loss(const Tensor& input, const Tensor& target);

  const DenseAutoencoderOptions& options() const { return options_; }
  /// The encoder and decoder chains (nn::Sequential); the decoder's ends at the output layer's
  /// Linear (decode() applies the sigmoid).
  std::shared_ptr<nn::Sequential> encoder() const { return encoder_; }
  std::shared_ptr<nn::Sequential> decoder() const { return decoder_; }
  /// The encoder's Linear layers, input side first.
  const std::vector<std::shared_ptr<nn::Linear>>& encoder_linears() const { return enc_linear_; }
  /// Parameter elements a tied model saves against the untied one with the same sizes: the
  /// sum of in x out over the encoder's Linear layers (0 when not tied).
  int64_t tied_parameter_saving() const;

  /// "DenseAutoencoder(784-400-300-200-20, l2, batch norm, tied)".
  std::string describe() const override;

 private:
  /// x: (N, d1, ...) with d1 * ... = width -> (N, width); throws naming op otherwise.
  Tensor flat(const char* op, const Tensor& x, int64_t width, const char* what) const;

  DenseAutoencoderOptions options_;
  std::shared_ptr<nn::Sequential> encoder_;
  // Every decoder layer up to the output Linear; the sigmoid is applied by decode().
  std::shared_ptr<nn::Sequential> decoder_;
  std::vector<std::shared_ptr<nn::Linear>> enc_linear_;
};

/// Per-image squared reconstruction error: recon, x: (N, ...) of the same shape -> (N), the sum
/// over each image's elements of (recon - x)^2 (Hinton & Salakhutdinov's "squared error").
Tensor squared_error_per_image(const Tensor& recon, const Tensor& x);

}  // namespace encore::models
