// ConvAutoencoder: the layers of seed 002 and the checks that turn a wrong input into an
// encore::Error naming the model and the shapes.
#include "models/conv_autoencoder.h"

#include <sstream>

namespace encore::models {

namespace {

// The input side the architecture is built for: two valid stride-2 3x3 convolutions take
// 28 -> 13 -> 6, and the decoder's two stride-2 'same' transposed convolutions take 7 -> 28.
constexpr int64_t kImage = 28;
constexpr int64_t kEncoded = 6;  // floor((floor((28 - 3) / 2) + 1 - 3) / 2) + 1
constexpr int64_t kSeed = 7;     // 28 / 4

void check_options(const char* who, const ConvAutoencoderOptions& o) {
  ENCORE_CHECK(o.latent >= 1, who, "latent must be >= 1, got ", o.latent);
  ENCORE_CHECK(o.channels >= 1, who, "channels must be >= 1, got ", o.channels);
  ENCORE_CHECK(o.image_channels >= 1, who, "image_channels must be >= 1, got ", o.image_channels);
}

void check_images(const char* who, const Tensor& x, const ConvAutoencoderOptions& o) {
  ENCORE_CHECK(x.defined(), who, "input is undefined");
  ENCORE_CHECK(x.dim() == 4 && x.size(0) >= 1 && x.size(1) == o.image_channels &&
                   x.size(2) == kImage && x.size(3) == kImage,
               who, "input ", x.shape(), " must be (N, ", o.image_channels, ", ", kImage, ", ",
               kImage, ") with N >= 1");
  ENCORE_CHECK(x.dtype() == DType::f32, who, "input ", x.shape(), " has dtype ", x.dtype(),
               " (the model's parameters are f32)");
}

void check_codes(const char* who, const Tensor& z, const ConvAutoencoderOptions& o) {
  ENCORE_CHECK(z.defined(), who, "code is undefined");
  ENCORE_CHECK(z.dim() == 2 && z.size(0) >= 1 && z.size(1) == o.latent, who, "code ", z.shape(),
               " must be (N, ", o.latent, ") with N >= 1");
  ENCORE_CHECK(z.dtype() == DType::f32, who, "code ", z.shape(), " has dtype ", z.dtype(),
               " (the model's parameters are f32)");
}

void note(LayerShapes* shapes, const char* name, const Tensor& t) {
  if (shapes) shapes->emplace_back(name, t.shape());
}

std::string image_text(const ConvAutoencoderOptions& o) {
  std::ostringstream os;
  os << o.image_channels << "x" << kImage << "x" << kImage;
  return os.str();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Encoder

ConvEncoder::ConvEncoder(const ConvAutoencoderOptions& options) : options_(options) {
  check_options("ConvEncoder", options_);
  const int64_t c = options_.channels;
  const nn::ConvOptions valid2{
      .stride = 2, .padding_mode = nn::PaddingMode::valid, .gen = options_.gen};
  conv1_ =
      register_module("conv1", std::make_shared<nn::Conv2d>(options_.image_channels, c, 3, valid2));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(c, c, 3, valid2));
  code_ =
      register_module("code", std::make_shared<nn::Linear>(c * kEncoded * kEncoded, options_.latent,
                                                           nn::LinearOptions{.gen = options_.gen}));
}

Tensor ConvEncoder::forward(const Tensor& x, LayerShapes* shapes) {
  check_images("ConvEncoder", x, options_);
  Tensor h = relu(conv1_->forward(x));  // (N, c, 13, 13)
  note(shapes, "encoder.conv1", h);
  h = relu(conv2_->forward(h));  // (N, c, 6, 6)
  note(shapes, "encoder.conv2", h);
  h = flatten(h, 1);  // (N, c*36), NCHW order (Keras: NHWC)
  note(shapes, "encoder.flatten", h);
  Tensor z = code_->forward(h);  // (N, latent), linear
  note(shapes, "encoder.code", z);
  return z;
}

std::string ConvEncoder::describe() const {
  std::ostringstream os;
  os << "ConvEncoder(" << image_text(options_) << " -> " << options_.latent << ", channels "
     << options_.channels << ")";
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// Decoder

ConvDecoder::ConvDecoder(const ConvAutoencoderOptions& options) : options_(options) {
  check_options("ConvDecoder", options_);
  const int64_t c = options_.channels;
  const nn::ConvTransposeOptions same2{
      .stride = 2, .padding_mode = nn::PaddingMode::same, .gen = options_.gen};
  const nn::ConvTransposeOptions same1{
      .stride = 1, .padding_mode = nn::PaddingMode::same, .gen = options_.gen};
  dense_ = register_module("dense",
                           std::make_shared<nn::Linear>(options_.latent, c * kSeed * kSeed,
                                                        nn::LinearOptions{.gen = options_.gen}));
  deconv1_ = register_module("deconv1", std::make_shared<nn::ConvTranspose2d>(c, 2 * c, 3, same2));
  deconv2_ = register_module("deconv2", std::make_shared<nn::ConvTranspose2d>(2 * c, c, 3, same2));
  deconv3_ = register_module(
      "deconv3", std::make_shared<nn::ConvTranspose2d>(c, options_.image_channels, 3, same1));
  deconv4_ =
      register_module("deconv4", std::make_shared<nn::ConvTranspose2d>(
                                     options_.image_channels, options_.image_channels, 3, same1));
}

Tensor ConvDecoder::logits(const Tensor& z, LayerShapes* shapes) {
  check_codes("ConvDecoder", z, options_);
  Tensor h = relu(dense_->forward(z));  // (N, 49 c)
  note(shapes, "decoder.dense", h);
  h = reshape(h, {z.size(0), options_.channels, kSeed, kSeed});  // (N, c, 7, 7), NCHW
  note(shapes, "decoder.reshape", h);
  h = relu(deconv1_->forward(h));  // (N, 2c, 14, 14)
  note(shapes, "decoder.deconv1", h);
  h = relu(deconv2_->forward(h));  // (N, c, 28, 28)
  note(shapes, "decoder.deconv2", h);
  h = deconv3_->forward(h);  // (N, C, 28, 28), linear (as the seed)
  note(shapes, "decoder.deconv3", h);
  h = deconv4_->forward(h);  // (N, C, 28, 28), pre-sigmoid
  note(shapes, "decoder.deconv4", h);
  return h;
}

Tensor ConvDecoder::forward(const Tensor& z, LayerShapes* shapes) {
  Tensor p = sigmoid(logits(z, shapes));
  note(shapes, "decoder.sigmoid", p);
  return p;
}

std::string ConvDecoder::describe() const {
  std::ostringstream os;
  os << "ConvDecoder(" << options_.latent << " -> " << image_text(options_) << ", channels "
     << options_.channels << ")";
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// The autoencoder

ConvAutoencoder::ConvAutoencoder(const ConvAutoencoderOptions& options)
    // Checked here first, so that a bad option is reported as the user's ConvAutoencoder, not as
    // its ConvEncoder.
    : options_((check_options("ConvAutoencoder", options), options)),
      encoder_(register_module("encoder", std::make_shared<ConvEncoder>(options))),
      decoder_(register_module("decoder", std::make_shared<ConvDecoder>(options))) {}

Tensor ConvAutoencoder::encode(const Tensor& x) {
  check_images("ConvAutoencoder.encode", x, options_);
  return encoder_->forward(x);
}

Tensor ConvAutoencoder::decode(const Tensor& z) {
  check_codes("ConvAutoencoder.decode", z, options_);
  return decoder_->forward(z);
}

Tensor ConvAutoencoder::forward(const Tensor& x) { return decode(encode(x)); }

Tensor ConvAutoencoder::loss(const Tensor& x) { return loss(x, x); }

Tensor ConvAutoencoder::loss(const Tensor& input, const Tensor& target) {
  check_images("ConvAutoencoder.loss", input, options_);
  ENCORE_CHECK(target.defined() && target.shape() == input.shape(), "ConvAutoencoder.loss",
               "target ", target.defined() ? to_string(target.shape()) : "(undefined)",
               " must have the input's shape ", input.shape());
  // bce_with_logits(l, t) == BCE(sigmoid(l), t), computed stably (see the top of the header).
  return nn::bce_with_logits(decoder_->logits(encoder_->forward(input)), target);
}

LayerShapes ConvAutoencoder::layer_shapes(const Tensor& x) {
  LayerShapes shapes;
  NoGrad no_grad;
  decoder_->forward(encoder_->forward(x, &shapes), &shapes);
  return shapes;
}

std::string ConvAutoencoder::describe() const {
  std::ostringstream os;
  os << "ConvAutoencoder(" << image_text(options_) << " -> " << options_.latent << " -> "
     << image_text(options_) << ", channels " << options_.channels << ")";
  return os.str();
}

}  // namespace encore::models
