// ConvAutoencoder: seed 002's convolutional autoencoder for 28x28 images (MNIST), NCHW.
//
//   encoder  (N, 1, 28, 28) -> Conv2d(32, 3, stride 2, valid) + ReLU  -> (N, 32, 13, 13)
//                           -> Conv2d(32, 3, stride 2, valid) + ReLU  -> (N, 32, 6, 6)
//                           -> Flatten                                -> (N, 1152)
//                           -> Linear(100)                            -> code (N, 100)
//   decoder  (N, 100)       -> Linear(7*7*32) + ReLU                  -> (N, 1568)
//                           -> Reshape(32, 7, 7)                      -> (N, 32, 7, 7)
//                           -> ConvTranspose2d(64, 3, stride 2, same) + ReLU -> (N, 64, 14, 14)
//                           -> ConvTranspose2d(32, 3, stride 2, same) + ReLU -> (N, 32, 28, 28)
//                           -> ConvTranspose2d(1, 3, stride 1, same)  -> (N, 1, 28, 28)
//                           -> ConvTranspose2d(1, 3, stride 1, same) + sigmoid -> (N, 1, 28, 28)
//   loss     binary cross-entropy(x, reconstruction), the mean over every pixel (Keras').
//
// NOTE: Keras flattens (and reshapes) in NHWC order, encore in NCHW. The two orders differ only
// by a fixed permutation of the rows of the code layer's weight (and of the columns of the first
// decoder layer's), so the model class — what it can represent and how it trains from a
// glorot_uniform start — is the same; only weights imported from Keras would need permuting.
//
// The loss is computed from the last layer's pre-sigmoid output with bce_with_logits, which
// equals BCE(sigmoid(logits), x) exactly but stays finite and accurate where the sigmoid
// saturates; decode() and forward() return the sigmoid's probabilities.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../nn/nn.h"

namespace encore::models {

/// The name and output shape of each layer one forward pass went through, in order, e.g.
/// {"encoder.conv1", [N, 32, 13, 13]}.
using LayerShapes = std::vector<std::pair<std::string, Shape>>;

struct ConvAutoencoderOptions {
  /// Size of the code (the seed's latent_dim).
  int64_t latent = 100;
  /// Width c of the network: the encoder's two convolutions have c filters, the decoder's
  /// dense layer 7*7*c units and its transposed convolutions 2c, c, then the image channels.
  /// The seed's c is 32 (decoder 64, 32).
  int64_t channels = 32;
  /// Channels of the input images (1 for MNIST); images are image_channels x 28 x 28.
  int64_t image_channels = 1;
  /// Random source for the initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// The encoder half: two strided 'valid' convolutions with ReLU, flattened, then a linear code.
/// Parameters: "conv1.*", "conv2.*", "code.*".
class ConvEncoder : public nn::Module {
 public:
  explicit ConvEncoder(const ConvAutoencoderOptions& options = {});

  /// x: (N, image_channels, 28, 28) -> code (N, latent). When shapes is given, appends each
  /// layer's name (prefixed "encoder.") and output shape.
  Tensor forward(const Tensor& x, LayerShapes* shapes = nullptr);

  /// "ConvEncoder(1x28x28 -> 100, channels 32)".
  std::string describe() const override;

 private:
  ConvAutoencoderOptions options_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::Linear> code_;
};

/// The decoder half: a dense layer reshaped to (c, 7, 7), then four 'same' transposed
/// convolutions up to the image. Parameters: "dense.*", "deconv1.*" ... "deconv4.*".
class ConvDecoder : public nn::Module {
 public:
  explicit ConvDecoder(const ConvAutoencoderOptions& options = {});

  /// z: (N, latent) -> reconstruction (N, image_channels, 28, 28) in (0, 1).
  Tensor forward(const Tensor& z, LayerShapes* shapes = nullptr);
  /// z: (N, latent) -> the last layer's pre-sigmoid output (N, image_channels, 28, 28).
  Tensor logits(const Tensor& z, LayerShapes* shapes = nullptr);

  /// "ConvDecoder(100 -> 1x28x28, channels 32)".
  std::string describe() const override;

 private:
  ConvAutoencoderOptions options_;
  std::shared_ptr<nn::Linear> dense_;
  std::shared_ptr<nn::ConvTranspose2d> deconv1_, deconv2_, deconv3_, deconv4_;
};

/// Seed 002's convolutional autoencoder (see the top of this file). Parameters are named
/// "encoder.conv1.weight", ..., "decoder.deconv4.bias":
///   models::ConvAutoencoder model({.latent = 100});
///   Tensor loss = model.loss(x);              // x: (N, 1, 28, 28) in [0, 1]
class ConvAutoencoder : public nn::Module {
 public:
  explicit ConvAutoencoder(const ConvAutoencoderOptions& options = {});

  /// x: (N, image_channels, 28, 28) -> code (N, latent).
  Tensor encode(const Tensor& x);
  /// z: (N, latent) -> reconstruction (N, image_channels, 28, 28) in (0, 1).
  Tensor decode(const Tensor& z);
  /// x: (N, image_channels, 28, 28) -> reconstruction of the same shape.
  Tensor forward(const Tensor& x);

  /// Scalar mean binary cross-entropy of the reconstruction of x against x itself.
  /// x: (N, image_channels, 28, 28) with values in [0, 1].
  Tensor loss(const Tensor& x);
  /// Scalar mean binary cross-entropy of the reconstruction of `input` against `target`
  /// (denoising: a corrupted input, the clean target). Both (N, image_channels, 28, 28).
  Tensor loss(const Tensor& input, const Tensor& target);

  /// The output shape of every layer for input x, encoder then decoder, in order (runs one
  /// forward pass). x: (N, image_channels, 28, 28).
  LayerShapes layer_shapes(const Tensor& x);

  std::shared_ptr<ConvEncoder> encoder() const { return encoder_; }
  std::shared_ptr<ConvDecoder> decoder() const { return decoder_; }
  const ConvAutoencoderOptions& options() const { return options_; }

  /// "ConvAutoencoder(1x28x28 -> 100 -> 1x28x28, channels 32)".
  std::string describe() const override;

 private:
  ConvAutoencoderOptions options_;
  std::shared_ptr<ConvEncoder> encoder_;
  std::shared_ptr<ConvDecoder> decoder_;
};

}  // namespace encore::models
