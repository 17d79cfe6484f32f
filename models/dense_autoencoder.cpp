// DenseAutoencoder and TiedLinear: building the seed-004 layer chains from the options, the
// checks on inputs, and the three reconstruction losses.
#include "models/dense_autoencoder.h"

#include <sstream>

namespace encore::models {

const char* loss_name(ReconstructionLoss loss) {
  switch (loss) {
    case ReconstructionLoss::l2:
      return "l2";
    case ReconstructionLoss::mse:
      return "mse";
    case ReconstructionLoss::bce:
      return "bce";
  }
  return "?";
}

ReconstructionLoss parse_loss(const std::string& name) {
  if (name == "l2") return ReconstructionLoss::l2;
  if (name == "mse") return ReconstructionLoss::mse;
  if (name == "bce") return ReconstructionLoss::bce;
  ENCORE_FAIL("DenseAutoencoder", "unknown loss '", name, "' (expected l2, mse or bce)");
}

const char* activation_name(HiddenActivation activation) {
  switch (activation) {
    case HiddenActivation::relu:
      return "relu";
    case HiddenActivation::leaky_relu:
      return "leaky_relu";
    case HiddenActivation::elu:
      return "elu";
  }
  return "?";
}

HiddenActivation parse_activation(const std::string& name) {
  if (name == "relu") return HiddenActivation::relu;
  if (name == "leaky_relu") return HiddenActivation::leaky_relu;
  if (name == "elu") return HiddenActivation::elu;
  ENCORE_FAIL("DenseAutoencoder", "unknown activation '", name,
              "' (expected relu, leaky_relu or elu)");
}

namespace {

void add_activation(nn::Sequential& seq, HiddenActivation activation) {
  switch (activation) {
    case HiddenActivation::relu:
      seq.add(std::make_shared<nn::ReLU>());
      return;
    case HiddenActivation::leaky_relu:
      seq.add(std::make_shared<nn::LeakyReLU>());
      return;
    case HiddenActivation::elu:
      seq.add(std::make_shared<nn::ELU>());
      return;
  }
  ENCORE_FAIL("DenseAutoencoder", "unknown activation");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TiedLinear

TiedLinear::TiedLinear(std::shared_ptr<nn::Linear> source) : source_(std::move(source)) {
  ENCORE_CHECK(source_ != nullptr, "TiedLinear", "source layer is null");
  Tensor w = source_->weight();
  bias_ = register_parameter("bias", zeros({source_->in_features()}, w.dtype()));
}

Tensor TiedLinear::weight() const { return transpose(source_->weight(), 0, 1); }

Tensor TiedLinear::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == source_->out_features(), "TiedLinear",
               "expected input (..., ", source_->out_features(), "), got ",
               x.defined() ? to_string(x.shape()) : "undefined");
  // x (..., out_src) @ W_src (out_src, in_src): the transposed view reaches BLAS as a flag.
  return linear(x, weight(), bias_);
}

std::string TiedLinear::describe() const {
  return "TiedLinear(" + std::to_string(source_->out_features()) + " -> " +
         std::to_string(source_->in_features()) + ", tied to " + source_->describe() + ")";
}

// ---------------------------------------------------------------------------------------------
// DenseAutoencoder

DenseAutoencoder::DenseAutoencoder(const DenseAutoencoderOptions& options) : options_(options) {
  const char* op = "DenseAutoencoder";
  ENCORE_CHECK(options.input > 0 && options.code > 0, op,
               "input and code sizes must be positive, got input ", options.input, ", code ",
               options.code);
  for (int64_t h : options.hidden)
    ENCORE_CHECK(h > 0, op, "hidden sizes must be positive, got ", h);
  ENCORE_CHECK(options.bn_eps > 0, op, "bn_eps must be positive, got ", options.bn_eps);
  ENCORE_CHECK(options.bn_momentum >= 0 && options.bn_momentum <= 1, op,
               "bn_momentum must lie in [0, 1], got ", options.bn_momentum);

  std::vector<int64_t> sizes = {options.input};
  sizes.insert(sizes.end(), options.hidden.begin(), options.hidden.end());
  sizes.push_back(options.code);
  const size_t layers = sizes.size() - 1;
  Generator& gen = options.gen ? *options.gen : default_generator();
  nn::LinearOptions lin{.init = nn::Init::he_normal, .gen = &gen};
  nn::BatchNormOptions bn{.eps = options.bn_eps, .momentum = options.bn_momentum};

  encoder_ = register_module("encoder", std::make_shared<nn::Sequential>());
  for (size_t i = 0; i < layers; ++i) {
    auto fc = encoder_->add(std::make_shared<nn::Linear>(sizes[i], sizes[i + 1], lin));
    enc_linear_.push_back(fc);
    if (options.batch_norm) encoder_->add(std::make_shared<nn::BatchNorm1d>(sizes[i + 1], bn));
    if (!(i + 1 == layers && options.linear_code)) add_activation(*encoder_, options.activation);
  }

  // The decoder mirrors the encoder: layer j maps sizes[j + 1] back to sizes[j].
  decoder_ = register_module("decoder", std::make_shared<nn::Sequential>());
  for (size_t k = 0; k < layers; ++k) {
    size_t j = layers - 1 - k;
    if (options.tied)
      decoder_->add(std::make_shared<TiedLinear>(enc_linear_[j]));
    else
      decoder_->add(std::make_shared<nn::Linear>(sizes[j + 1], sizes[j], lin));
    if (j == 0) break;  // the output layer: Linear only; decode() adds the sigmoid
    if (options.batch_norm) decoder_->add(std::make_shared<nn::BatchNorm1d>(sizes[j], bn));
    add_activation(*decoder_, options.activation);
  }
}

Tensor DenseAutoencoder::flat(const char* op, const Tensor& x, int64_t width,
                              const char* what) const {
  ENCORE_CHECK(x.defined(), op, what, " is undefined");
  int64_t per = 1;
  for (int d = 1; d < x.dim(); ++d) per *= x.size(d);
  ENCORE_CHECK(x.dim() >= 2 && per == width, op, "expected ", what, " (N, ", width,
               ") (or (N, ...) with ", width, " elements per sample), got ", x.shape());
  const DType want = enc_linear_.front()->weight().dtype();
  ENCORE_CHECK(x.dtype() == want, op, what, " ", x.shape(), " is ", x.dtype(), " but the model is ",
               want, "; convert it with x.to(DType::", want, ")");
  ENCORE_CHECK(x.size(0) >= 1, op, what, " ", x.shape(), " is an empty batch");
  return x.dim() == 2 ? x : reshape(x, {x.size(0), width});
}

Tensor DenseAutoencoder::encode(const Tensor& x) {
  return encoder_->forward(flat("DenseAutoencoder.encode", x, options_.input, "input"));
}

Tensor DenseAutoencoder::decode_logits(const Tensor& z) {
  return decoder_->forward(flat("DenseAutoencoder.decode", z, options_.code, "code"));
}

Tensor DenseAutoencoder::decode(const Tensor& z) { return sigmoid(decode_logits(z)); }

Tensor DenseAutoencoder::forward(const Tensor& x) { return decode(encode(x)); }

Tensor DenseAutoencoder::loss(const Tensor& x) { return loss(x, x); }

Tensor DenseAutoencoder::loss(const Tensor& input, const Tensor& target) {
  const char* op = "DenseAutoencoder.loss";
  Tensor in = flat(op, input, options_.input, "input");
  Tensor t = flat(op, target, options_.input, "target");
  ENCORE_CHECK(in.size(0) == t.size(0), op, "input ", input.shape(), " and target ", target.shape(),
               " hold different numbers of samples");
  Tensor z = encode(in);
  switch (options_.loss) {
    case ReconstructionLoss::l2: {
      // Seed 004: mean over the batch of sqrt(sum over pixels of (out - in)^2).
      Tensor d = decode(z) - t;
      return mean(sqrt(sum(square(d), {1})));
    }
    case ReconstructionLoss::mse:
      return nn::mse_loss(decode(z), t);
    case ReconstructionLoss::bce:
      // Same value as binary_cross_entropy(sigmoid(logits), t), without its log clamping.
      return nn::bce_with_logits(decode_logits(z), t);
  }
  ENCORE_FAIL(op, "unknown loss");
}

int64_t DenseAutoencoder::tied_parameter_saving() const {
  if (!options_.tied) return 0;
  int64_t saved = 0;
  for (const auto& fc : enc_linear_) saved += fc->in_features() * fc->out_features();
  return saved;
}

std::string DenseAutoencoder::describe() const {
  std::ostringstream os;
  os << "DenseAutoencoder(" << options_.input;
  for (int64_t h : options_.hidden) os << "-" << h;
  os << "-" << options_.code << ", " << loss_name(options_.loss)
     << (options_.batch_norm ? ", batch norm" : ", no batch norm")
     << (options_.tied ? ", tied" : "") << (options_.linear_code ? ", linear code" : "")
     << (options_.activation != HiddenActivation::relu
             ? std::string(", ") + activation_name(options_.activation)
             : std::string())
     << ")";
  return os.str();
}

Tensor squared_error_per_image(const Tensor& recon, const Tensor& x) {
  ENCORE_CHECK(recon.defined() && x.defined() && recon.shape() == x.shape() && x.dim() >= 1,
               "squared_error_per_image", "reconstruction ",
               recon.defined() ? to_string(recon.shape()) : "undefined", " and images ",
               x.defined() ? to_string(x.shape()) : "undefined",
               " must have the same (N, ...) shape");
  std::vector<int64_t> dims;
  for (int d = 1; d < x.dim(); ++d) dims.push_back(d);
  Tensor d = recon - x;
  return dims.empty() ? square(d) : sum(square(d), dims);
}

}  // namespace encore::models
