// Initialisers: functions that fill an existing tensor in place (outside any tape), each drawing
// from an explicit Generator, plus the fan_in / fan_out rule they share and the `Init` choice
// the built-in layers take as an option.
//
// Which layer starts how, in one place. A layer whose options leave `.init` at its default
// follows the process-wide convention set_init_convention() chooses (below):
//
//   layer                     InitConvention::mixed       ::keras            ::torch
//                             (the default)
//   Linear, Conv2d,           glorot_uniform weight,      same as mixed      U(+-1/sqrt(fan_in))
//   ConvTranspose2d           zero bias (Keras)                              weight and bias
//   LSTM(Cell), GRU(Cell)     U(+-1/sqrt(H)) everywhere   RecurrentInit::    same as mixed
//                             (PyTorch)                   keras
//   BatchNorm1d/2d            gamma ones, beta zeros (both conventions agree)
//   Embedding                 normal(0, 1) (PyTorch; Keras uses uniform(-0.05, 0.05))
//
// An explicit `.init = Init::torch_default` (or any other value) on a layer's options always
// wins over the convention. Init::torch_default is kaiming_uniform with a = sqrt(5), i.e.
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for the weight and the bias alike.
#pragma once

#include <cstdint>

#include "../autograd/autograd.h"

namespace encore::nn::init {

/// The number of inputs and outputs each weight element connects, as PyTorch and Keras compute
/// them for weights in PyTorch layout: dims 0 and 1 are (out, in) and the remaining dims are the
/// receptive field, so
///   Linear (out, in)                        fan_in = in,           fan_out = out
///   Conv2d (F, C, kh, kw)                   fan_in = C kh kw,      fan_out = F kh kw
///   ConvTranspose2d (C_in, C_out, kh, kw)   fan_in = C_out kh kw,  fan_out = C_in kh kw
/// (the transposed case matches both PyTorch and Keras' Conv2DTranspose). A 1-D shape (n) has
/// fan_in = fan_out = n, as Keras. A 0-D shape throws.
struct Fans {
  int64_t fan_in = 0;
  int64_t fan_out = 0;
};
Fans compute_fans(const Shape& shape);

/// Gain for kaiming/he initialisers: sqrt(2 / (1 + a^2)) (a = leaky-ReLU slope; a = 0 is ReLU).
double relu_gain(double negative_slope = 0);

// Every initialiser fills t in place (t is a handle: the caller's tensor, e.g. a registered
// parameter, changes), runs under NoGrad, and returns t. t must be f32 or f64.

/// t = 0.
Tensor zeros(Tensor t);
/// t = 1.
Tensor ones(Tensor t);
/// t = value.
Tensor constant(Tensor t, double value);
/// t ~ U(lo, hi).
Tensor uniform(Tensor t, double lo, double hi, Generator& gen = default_generator());
/// t ~ N(mean, std^2).
Tensor normal(Tensor t, double mean, double std, Generator& gen = default_generator());

/// Glorot/Xavier uniform: U(-a, a), a = gain sqrt(6 / (fan_in + fan_out)). Keras' default kernel
/// initialiser.
Tensor glorot_uniform(Tensor t, Generator& gen = default_generator(), double gain = 1);
/// Glorot/Xavier normal: N(0, s^2), s = gain sqrt(2 / (fan_in + fan_out)). (Keras draws from a
/// truncated normal; this is PyTorch's plain normal.)
Tensor glorot_normal(Tensor t, Generator& gen = default_generator(), double gain = 1);
/// He/Kaiming normal, fan_in mode: N(0, s^2), s = relu_gain(a) / sqrt(fan_in); a = 0 gives
/// sqrt(2 / fan_in), the init of seed 004. (Keras' he_normal truncates; PyTorch does not.)
Tensor he_normal(Tensor t, Generator& gen = default_generator(), double negative_slope = 0);
/// He/Kaiming uniform, fan_in mode: U(-b, b), b = relu_gain(a) sqrt(3 / fan_in). With
/// a = sqrt(5) this is PyTorch's default Linear/Conv weight init, b = 1 / sqrt(fan_in).
Tensor he_uniform(Tensor t, Generator& gen = default_generator(), double negative_slope = 0);
/// A (semi-)orthogonal matrix times gain (Saxe et al. 2013): t viewed as (rows = size(0),
/// cols = numel / rows) gets orthonormal rows (rows <= cols) or columns (rows >= cols), so
/// W W^T = gain^2 I or W^T W = gain^2 I. Computed by a QR decomposition (LAPACK dgeqrf/dorgqr
/// from OpenBLAS) of a Gaussian matrix in f64, with R's diagonal signs folded in so Q is
/// uniformly (Haar) distributed. Needs at least 2 dims.
Tensor orthogonal(Tensor t, Generator& gen = default_generator(), double gain = 1);

}  // namespace encore::nn::init

namespace encore::nn {

/// How a built-in layer initialises its weight and bias (designated-initialiser option `.init`).
enum class Init {
  glorot_uniform,  ///< weight glorot_uniform, bias zeros (Keras default)
  glorot_normal,   ///< weight glorot_normal, bias zeros
  he_uniform,      ///< weight he_uniform (ReLU gain), bias zeros
  he_normal,       ///< weight he_normal (ReLU gain), bias zeros (seed 004)
  orthogonal,      ///< weight orthogonal, bias zeros
  torch_default,   ///< weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch)
  /// The layer's default under the current InitConvention: glorot_uniform under mixed and
  /// keras, torch_default under torch. What LinearOptions and the conv options default to.
  convention,
};

const char* init_name(Init init);

/// The family of defaults the built-in layers use (the table at the top of this file).
enum class InitConvention {
  mixed,  ///< Keras' for Linear/Conv, PyTorch's for recurrent layers (the default)
  keras,  ///< Keras' defaults for every layer
  torch,  ///< PyTorch's defaults for every layer
};
/// The one switch: layers constructed afterwards (on any thread) whose options leave `.init`
/// at its default follow c. Set it once, before building the model.
void set_init_convention(InitConvention c);
InitConvention init_convention();
/// What Init::convention means now (glorot_uniform or torch_default); other values unchanged.
Init resolve_init(Init init);

/// Initialises a layer's weight (and bias when defined) by the rule `init`; fans from weight.
void init_layer(Init init, Tensor weight, Tensor bias, Generator& gen);

}  // namespace encore::nn
