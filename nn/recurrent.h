// Recurrent layers: LSTMCell, LSTM, GRUCell, GRU. Parameters use PyTorch's layout and names
// (weight_ih, weight_hh, bias_ih, bias_hh; "_l<k>" suffixes for stacked layers; gate order
// i, f, g, o for the LSTM and r, z, n for the GRU), so a state dict moves between encore and
// torch.nn unchanged. The gate math is written with the differentiable ops of autograd/, the
// way a user would write their own cell.
//
// Padded batches: LSTM and GRU take per-sequence lengths (or a (N, T) mask). A sequence's
// state stops updating after its last valid step (carried through with `where`), its outputs
// at padded steps are zero, and h_n / c_n are the states at its last valid step: the results
// PyTorch gives for a PackedSequence. (Keras' masking carries the state the same way but
// repeats the previous output at masked steps; zeros are what a masked loss expects.)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "init.h"
#include "module.h"

namespace encore::nn {

/// How a recurrent layer's parameters start.
enum class RecurrentInit {
  /// PyTorch's default: every weight and bias ~ uniform(-1/sqrt(H), 1/sqrt(H)).
  torch_default,
  /// Keras' default: weight_ih glorot_uniform (limit sqrt(6 / (I + G*H)) over the whole
  /// (G*H, I) matrix), weight_hh orthogonal (the whole (G*H, H) matrix has orthonormal
  /// columns, i.e. Keras' (H, G*H) recurrent kernel has orthonormal rows), biases zero. An
  /// LSTM also gets Keras' unit_forget_bias: bias_ih is 1 on the forget gate (bias_hh stays
  /// 0, so the effective forget bias is 1).
  keras,
  /// The InitConvention's (nn/init.h): torch_default under mixed and torch, keras under keras.
  convention,
};

/// Options shared by all recurrent modules (cells and sequence layers).
struct RecurrentOptions {
  /// Number of stacked layers (LSTM and GRU only; cells must leave it at 1).
  int64_t num_layers = 1;
  /// Input and output are (N, T, features) when true, (T, N, features) when false. The
  /// state tensors are (L, N, H) either way, as in PyTorch.
  bool batch_first = true;
  /// Dropout probability on the outputs of every layer but the last, in training mode
  /// (LSTM and GRU only).
  double dropout = 0;
  /// Whether to have bias_ih and bias_hh.
  bool bias = true;
  /// By default the InitConvention's (nn/init.h): PyTorch's unless set_init_convention(keras).
  RecurrentInit init = RecurrentInit::convention;
  /// Parameter dtype: f32 or f64.
  DType dtype = DType::f32;
  /// Random source for the initialisation and for the dropout masks between layers; nullptr
  /// means default_generator(). A given Generator must outlive the layer.
  Generator* gen = nullptr;
};

/// An LSTM state: h and c, each (N, H) for a cell or (L, N, H) for a stacked LSTM.
/// Undefined tensors mean zeros.
struct LSTMState {
  Tensor h;
  Tensor c;
};

/// What LSTM::forward returns.
struct LSTMOutput {
  Tensor output;  ///< (N, T, H) (batch_first) or (T, N, H): h of the last layer at every step
  Tensor h_n;     ///< (L, N, H): each layer's h at each sequence's last valid step
  Tensor c_n;     ///< (L, N, H): the same for c
};

/// What GRU::forward returns.
struct GRUOutput {
  Tensor output;  ///< (N, T, H) (batch_first) or (T, N, H)
  Tensor h_n;     ///< (L, N, H)
};

// ---------------------------------------------------------------------------------------------
// The cell math as functions of explicit tensors (used by the modules below, and handy for
// gradchecks and custom cells).

/// One LSTM step. x: (N, I), state.h / state.c: (N, H), w_ih: (4H, I), w_hh: (4H, H),
/// b_ih / b_hh: (4H) or undefined -> {h', c'} each (N, H), with
///   [i, f, g, o] = split(x W_ih^T + b_ih + h W_hh^T + b_hh, 4 along dim 1)
///   c' = sigmoid(f) * c + sigmoid(i) * tanh(g),   h' = sigmoid(o) * tanh(c').
/// The weights' shapes are checked here; the state's by the ops (the modules check
/// everything with messages that name the layer).
LSTMState lstm_cell(const Tensor& x, const LSTMState& state, const Tensor& w_ih, const Tensor& w_hh,
                    const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor());

/// One GRU step. x: (N, I), h: (N, H), w_ih: (3H, I), w_hh: (3H, H), b_ih / b_hh: (3H) or
/// undefined -> h' (N, H), with gates in PyTorch's order r, z, n:
///   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
///   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h.
Tensor gru_cell(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh,
                const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor());

/// A (N, T) mask with 1 where t < lengths[n], else 0. lengths: i64 (N), each in [0, T].
Tensor sequence_mask(const Tensor& lengths, int64_t max_length, DType dtype = DType::f32);

// ---------------------------------------------------------------------------------------------
// Cells

/// What LSTMCell and GRUCell share: the sizes and the four parameters weight_ih (G*H, I),
/// weight_hh (G*H, H), bias_ih (G*H), bias_hh (G*H) for G gates, registered under PyTorch's
/// names.
class RecurrentCell : public Module {
 public:
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }

  Tensor weight_ih() const { return weight_ih_; }
  Tensor weight_hh() const { return weight_hh_; }
  Tensor bias_ih() const { return bias_ih_; }  ///< undefined when options.bias is false
  Tensor bias_hh() const { return bias_hh_; }  ///< undefined when options.bias is false

 protected:
  /// name is the layer for messages; options.num_layers, batch_first and dropout do not apply
  /// to a cell and must keep their defaults.
  RecurrentCell(const char* name, int64_t gates, int64_t input_size, int64_t hidden_size,
                const RecurrentOptions& options);
  /// "<name>(I -> H)", with ", bias=false" when there is no bias.
  std::string describe_as(const char* name) const;

  int64_t input_size_, hidden_size_;
  Tensor weight_ih_, weight_hh_, bias_ih_, bias_hh_;
};

/// A single LSTM step as a module. Parameters: weight_ih (4H, I), weight_hh (4H, H),
/// bias_ih (4H), bias_hh (4H), gate order i, f, g, o (torch.nn.LSTMCell's layout).
class LSTMCell : public RecurrentCell {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options = {});

  /// x: (N, I), state {h, c} each (N, H) (undefined: zeros) -> {h', c'} each (N, H).
  LSTMState forward(const Tensor& x, const LSTMState& state = {}) const;

  std::string describe() const override { return describe_as("LSTMCell"); }
};

/// A single GRU step as a module. Parameters: weight_ih (3H, I), weight_hh (3H, H),
/// bias_ih (3H), bias_hh (3H), gate order r, z, n (torch.nn.GRUCell's layout).
class GRUCell : public RecurrentCell {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options = {});

  /// x: (N, I), h: (N, H) (undefined: zeros) -> h' (N, H).
  Tensor forward(const Tensor& x, const Tensor& h = Tensor()) const;

  std::string describe() const override { return describe_as("GRUCell"); }
};

// ---------------------------------------------------------------------------------------------
// Sequence layers

/// The four parameters of one recurrent layer (or cell), in PyTorch's names and layouts.
struct RecurrentWeights {
  Tensor weight_ih;  ///< (G*H, I): the input projection of every gate
  Tensor weight_hh;  ///< (G*H, H): the recurrent projection
  Tensor bias_ih;    ///< (G*H), undefined without bias
  Tensor bias_hh;    ///< (G*H), undefined without bias
};

/// One direction of stacked recurrent layers; the parameters of layer k are weight_ih_l<k>
/// (G*H, I or H), weight_hh_l<k> (G*H, H), bias_ih_l<k>, bias_hh_l<k> (G*H), where G is 4 for
/// an LSTM and 3 for a GRU: torch.nn.LSTM / torch.nn.GRU's names, so checkpoints interchange.
/// Shared by LSTM and GRU; not used on its own.
class RecurrentBase : public Module {
 public:
  int64_t input_size() const { return input_size_; }
  int64_t hidden_size() const { return hidden_size_; }
  int64_t num_layers() const { return options_.num_layers; }
  const RecurrentOptions& options() const { return options_; }
  std::string describe() const override;

 protected:
  /// gates: G (4 for LSTM, 3 for GRU); name: "LSTM" or "GRU", used in messages.
  RecurrentBase(const char* name, int64_t gates, int64_t input_size, int64_t hidden_size,
                const RecurrentOptions& options);

  /// One step of one layer: gx_t (N, G*H) is the input projection x_t W_ih^T + b_ih,
  /// states the layer's current state tensors (each (N, H); states[0] is h, the output),
  /// w the layer's weights. Returns the next states.
  using StepFn =
      std::function<Tensors(const Tensor& gx_t, const Tensors& states, const RecurrentWeights& w)>;
  struct RunResult {
    Tensor output;  ///< the last layer's outputs, x's layout with H features
    Tensors final;  ///< per state kind (h, then c for an LSTM): (L, N, H)
  };
  /// Checks x, the initial states (each (L, N, H) or undefined) and lengths_or_mask, then
  /// runs every layer over time with step, carrying the states across masked steps.
  RunResult run(const Tensor& x, const Tensors& initial, const Tensor& lengths_or_mask,
                const StepFn& step) const;

 private:
  /// Which time steps of a padded batch are valid (built from lengths_or_mask).
  struct StepMasks {
    Tensor valid;           ///< (N, T) 1/0, undefined when every step is valid
    Tensors per_step;       ///< T entries (N, 1); undefined where every sequence is valid
    std::vector<bool> any;  ///< T entries: false where no sequence is valid
  };
  /// Checks x and the initial states; returns the time dim of x's layout.
  int check_inputs(const Tensor& x, const Tensors& initial) const;
  StepMasks step_masks(const Tensor& x, const Tensor& lengths_or_mask, int tdim) const;
  /// Runs layer l over input (x's layout): its outputs (x's layout with H features); the
  /// final states are appended to finals (one list per state kind).
  Tensor run_layer(int64_t l, const Tensor& input, const Tensors& initial, const StepMasks& masks,
                   int tdim, const StepFn& step, std::vector<Tensors>& finals) const;

  const char* name_;
  int64_t input_size_, hidden_size_;
  RecurrentOptions options_;
  std::vector<RecurrentWeights> layers_;
};

/// A stacked LSTM over a sequence (torch.nn.LSTM's parameters, names and results).
///   auto lstm = std::make_shared<nn::LSTM>(8, 20, nn::RecurrentOptions{.num_layers = 2});
///   auto [out, h_n, c_n] = lstm->forward(x, {}, lengths);
class LSTM : public RecurrentBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options = {});

  /// x: (N, T, I) (batch_first) or (T, N, I); initial {h0, c0}: each (L, N, H) or undefined
  /// (zeros); lengths_or_mask: undefined (every sequence has T steps), i64 lengths (N) with
  /// values in [0, T], or a mask (N, T) in either layout, of any dtype, nonzero where a step
  /// is valid (the valid steps need not be a prefix: the state is carried across every
  /// masked step). The values of x at masked steps are never used (they may be anything,
  /// even NaN). Returns output (N, T, H) (zero at masked steps), h_n and c_n (L, N, H) (the
  /// state after each sequence's last valid step; the initial state for a sequence of
  /// length 0).
  LSTMOutput forward(const Tensor& x, const LSTMState& initial = {},
                     const Tensor& lengths_or_mask = Tensor()) const;
};

/// A stacked GRU over a sequence (torch.nn.GRU's parameters, names and results).
class GRU : public RecurrentBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options = {});

  /// x: (N, T, I) (batch_first) or (T, N, I); h0: (L, N, H) or undefined (zeros);
  /// lengths_or_mask as for LSTM::forward. Returns output (N, T, H) and h_n (L, N, H).
  GRUOutput forward(const Tensor& x, const Tensor& h0 = Tensor(),
                    const Tensor& lengths_or_mask = Tensor()) const;
};

}  // namespace encore::nn
