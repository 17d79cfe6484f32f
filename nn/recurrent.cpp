// Recurrent layers: the LSTM and GRU cell math (as functions of explicit tensors), the cell
// modules, and the stacked sequence layers with masking for padded batches. Everything is
// composed from the differentiable ops, so the tape differentiates it without any code here.
//
// A sequence layer projects the whole input sequence through weight_ih in one gemm per layer
// ((N*T, I) x (I, G*H)) and only the recurrent product h W_hh^T runs per time step.
#include "nn/recurrent.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace encore::nn {
namespace {

// ---------------------------------------------------------------------------------------------
// Gate math shared by the cells and the sequence layers.

/// gates: (N, 4H) pre-activations in the order i, f, g, o; c: (N, H) -> {h', c'}.
LSTMState lstm_gates(const Tensor& gates, const Tensor& c) {
  int64_t h = gates.size(1) / 4;
  Tensors p = split(gates, {h, h, h, h}, 1);  // 4 x (N, H)
  Tensor i = sigmoid(p[0]), f = sigmoid(p[1]), g = tanh(p[2]), o = sigmoid(p[3]);
  Tensor c1 = f * c + i * g;
  return {o * tanh(c1), c1};
}

/// gx = x W_ih^T + b_ih and gh = h W_hh^T + b_hh: (N, 3H) in the order r, z, n; h: (N, H).
Tensor gru_gates(const Tensor& gx, const Tensor& gh, const Tensor& h) {
  int64_t hs = gx.size(1) / 3;
  Tensors a = split(gx, {hs, hs, hs}, 1), b = split(gh, {hs, hs, hs}, 1);  // 3 x (N, H)
  Tensor r = sigmoid(a[0] + b[0]);
  Tensor z = sigmoid(a[1] + b[1]);
  Tensor n = tanh(a[2] + r * b[2]);
  // (1 - z) * n + z * h, with one op fewer.
  return n + z * (h - n);
}

// ---------------------------------------------------------------------------------------------
// Initialisation

/// The four parameters of one layer (biases undefined without bias), initialised as
/// options.init says. gates: 4 (LSTM) or 3 (GRU).
RecurrentWeights make_layer(int64_t gates, int64_t in, int64_t hidden, const RecurrentOptions& o) {
  Generator& gen = o.gen ? *o.gen : default_generator();
  const int64_t gh = gates * hidden;
  RecurrentWeights w{.weight_ih = empty({gh, in}, o.dtype),
                     .weight_hh = empty({gh, hidden}, o.dtype)};
  if (o.bias) {
    w.bias_ih = empty({gh}, o.dtype);
    w.bias_hh = empty({gh}, o.dtype);
  }
  RecurrentInit how = o.init;
  if (how == RecurrentInit::convention)
    how = init_convention() == InitConvention::keras ? RecurrentInit::keras
                                                     : RecurrentInit::torch_default;
  if (how == RecurrentInit::torch_default) {
    const double b = 1.0 / std::sqrt(double(hidden));
    for (Tensor* t : {&w.weight_ih, &w.weight_hh, &w.bias_ih, &w.bias_hh})
      if (t->defined()) init::uniform(*t, -b, b, gen);
  } else {
    // Keras: glorot_uniform over the kernel, whose fans in PyTorch layout (G*H, in) are
    // fan_in = in and fan_out = G*H as for Keras' (in, G*H); orthogonal over the whole
    // recurrent kernel: (G*H, H) with orthonormal columns is Keras' (H, G*H) with orthonormal
    // rows, transposed.
    init::glorot_uniform(w.weight_ih, gen);
    init::orthogonal(w.weight_hh, gen);
    if (o.bias) {
      init::zeros(w.bias_ih);
      init::zeros(w.bias_hh);
      // unit_forget_bias: Keras' single bias is 1 on the forget gate (rows H..2H of i,f,g,o).
      if (gates == 4) init::constant(raw::narrow(w.bias_ih, 0, hidden, hidden), 1.0);
    }
  }
  return w;
}

void check_sizes(const char* layer, int64_t input_size, int64_t hidden_size,
                 const RecurrentOptions& o) {
  ENCORE_CHECK(input_size > 0 && hidden_size > 0, layer,
               "input_size and hidden_size must be positive, got ", input_size, " and ",
               hidden_size);
  ENCORE_CHECK(is_floating(o.dtype), layer, "dtype must be f32 or f64, got ", o.dtype);
}

void check_cell_options(const char* cell, const RecurrentOptions& o) {
  ENCORE_CHECK(
      o.num_layers == 1 && o.batch_first && o.dropout == 0, cell,
      "num_layers, batch_first and dropout do not apply to a cell (got num_layers=", o.num_layers,
      ", batch_first=", o.batch_first ? "true" : "false", ", dropout=", o.dropout, ")");
}

/// Checks a cell's x: (N, I) in dtype.
void check_cell_input(const char* cell, const Tensor& x, int64_t input_size, DType dtype) {
  ENCORE_CHECK(x.defined(), cell, "input is undefined");
  ENCORE_CHECK(x.dim() == 2 && x.size(1) == input_size, cell, "expected input (N, ", input_size,
               "), got ", x.shape());
  ENCORE_CHECK(x.dtype() == dtype, cell, "input has dtype ", x.dtype(), " (shape ", x.shape(),
               ") but the parameters are ", dtype);
}

/// Checks a cell's state tensor: (N, H) in dtype, or undefined.
void check_cell_state(const char* cell, const char* what, const Tensor& s, int64_t n,
                      int64_t hidden_size, DType dtype) {
  if (!s.defined()) return;
  ENCORE_CHECK(s.dim() == 2 && s.size(0) == n && s.size(1) == hidden_size, cell, "expected ", what,
               " (", n, ", ", hidden_size, ") for an input with batch ", n, ", got ", s.shape());
  ENCORE_CHECK(s.dtype() == dtype, cell, what, " has dtype ", s.dtype(), " (shape ", s.shape(),
               ") but the parameters are ", dtype);
}

/// Checks that w_ih (G*H, I) and w_hh (G*H, H) and the biases fit x (N, I); returns H.
int64_t check_cell_weights(const char* op, int64_t gates, const Tensor& x, const Tensor& w_ih,
                           const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  ENCORE_CHECK(x.defined() && w_ih.defined() && w_hh.defined(), op,
               "x, w_ih and w_hh must be defined");
  ENCORE_CHECK(w_hh.dim() == 2 && w_hh.size(0) == gates * w_hh.size(1), op, "w_hh must be (", gates,
               "H, H), got ", w_hh.shape());
  int64_t h = w_hh.size(1);
  ENCORE_CHECK(
      x.dim() == 2 && w_ih.dim() == 2 && w_ih.size(0) == gates * h && w_ih.size(1) == x.size(1), op,
      "x ", x.shape(), " and w_ih ", w_ih.shape(), " do not fit (expected x (N, I) and w_ih (",
      gates * h, ", I) for w_hh ", w_hh.shape(), ")");
  for (const Tensor* b : {&b_ih, &b_hh})
    ENCORE_CHECK(!b->defined() || (b->dim() == 1 && b->size(0) == gates * h), op,
                 "biases must be (", gates * h, "), got ", b->shape());
  return h;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Functional cells

LSTMState lstm_cell(const Tensor& x, const LSTMState& state, const Tensor& w_ih, const Tensor& w_hh,
                    const Tensor& b_ih, const Tensor& b_hh) {
  int64_t hs = check_cell_weights("lstm_cell", 4, x, w_ih, w_hh, b_ih, b_hh);
  int64_t n = x.size(0);
  Tensor h = state.h.defined() ? state.h : zeros({n, hs}, x.dtype());
  Tensor c = state.c.defined() ? state.c : zeros({n, hs}, x.dtype());
  // gates: (N, 4H) = x W_ih^T + b_ih + h W_hh^T + b_hh
  return lstm_gates(linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh), c);
}

Tensor gru_cell(const Tensor& x, const Tensor& h, const Tensor& w_ih, const Tensor& w_hh,
                const Tensor& b_ih, const Tensor& b_hh) {
  int64_t hs = check_cell_weights("gru_cell", 3, x, w_ih, w_hh, b_ih, b_hh);
  Tensor h0 = h.defined() ? h : zeros({x.size(0), hs}, x.dtype());
  return gru_gates(linear(x, w_ih, b_ih), linear(h0, w_hh, b_hh), h0);
}

Tensor sequence_mask(const Tensor& lengths, int64_t max_length, DType dtype) {
  ENCORE_CHECK(lengths.defined() && lengths.dtype() == DType::i64 && lengths.dim() == 1,
               "sequence_mask", "lengths must be a 1-D i64 tensor, got ",
               lengths.defined() ? to_string(lengths.shape()) : "undefined", " ",
               lengths.defined() ? std::string(dtype_name(lengths.dtype())) : "");
  ENCORE_CHECK(max_length >= 0, "sequence_mask", "max_length must be >= 0, got ", max_length);
  std::vector<int64_t> len = lengths.to_vector<int64_t>();
  int64_t n = static_cast<int64_t>(len.size());
  std::vector<double> m(n * max_length, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    ENCORE_CHECK(len[i] >= 0 && len[i] <= max_length, "sequence_mask", "lengths[", i,
                 "] = ", len[i], " is outside [0, ", max_length, "]");
    std::fill(m.begin() + i * max_length, m.begin() + i * max_length + len[i], 1.0);
  }
  return from_vector<double>(m, {n, max_length}).to(dtype);
}

// ---------------------------------------------------------------------------------------------
// Cells

RecurrentCell::RecurrentCell(const char* name, int64_t gates, int64_t input_size,
                             int64_t hidden_size, const RecurrentOptions& options)
    : input_size_(input_size), hidden_size_(hidden_size) {
  check_sizes(name, input_size, hidden_size, options);
  check_cell_options(name, options);
  RecurrentWeights w = make_layer(gates, input_size, hidden_size, options);
  weight_ih_ = register_parameter("weight_ih", w.weight_ih);
  weight_hh_ = register_parameter("weight_hh", w.weight_hh);
  if (options.bias) {
    bias_ih_ = register_parameter("bias_ih", w.bias_ih);
    bias_hh_ = register_parameter("bias_hh", w.bias_hh);
  }
}

std::string RecurrentCell::describe_as(const char* name) const {
  std::ostringstream os;
  os << name << "(" << input_size_ << " -> " << hidden_size_
     << (bias_ih_.defined() ? "" : ", bias=false") << ")";
  return os.str();
}

LSTMCell::LSTMCell(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options)
    : RecurrentCell("LSTMCell", 4, input_size, hidden_size, options) {}

LSTMState LSTMCell::forward(const Tensor& x, const LSTMState& state) const {
  DType dt = weight_ih_.dtype();
  check_cell_input("LSTMCell", x, input_size_, dt);
  ENCORE_CHECK(state.h.defined() == state.c.defined(), "LSTMCell",
               "give both h and c of the state, or neither (zeros)");
  check_cell_state("LSTMCell", "h", state.h, x.size(0), hidden_size_, dt);
  check_cell_state("LSTMCell", "c", state.c, x.size(0), hidden_size_, dt);
  return lstm_cell(x, state, weight_ih_, weight_hh_, bias_ih_, bias_hh_);
}

GRUCell::GRUCell(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options)
    : RecurrentCell("GRUCell", 3, input_size, hidden_size, options) {}

Tensor GRUCell::forward(const Tensor& x, const Tensor& h) const {
  DType dt = weight_ih_.dtype();
  check_cell_input("GRUCell", x, input_size_, dt);
  check_cell_state("GRUCell", "h", h, x.size(0), hidden_size_, dt);
  return gru_cell(x, h, weight_ih_, weight_hh_, bias_ih_, bias_hh_);
}

// ---------------------------------------------------------------------------------------------
// RecurrentBase: stacked layers over time, shared by LSTM and GRU

RecurrentBase::RecurrentBase(const char* name, int64_t gates, int64_t input_size,
                             int64_t hidden_size, const RecurrentOptions& options)
    : name_(name), input_size_(input_size), hidden_size_(hidden_size), options_(options) {
  check_sizes(name, input_size, hidden_size, options);
  ENCORE_CHECK(options.num_layers >= 1, name, "num_layers must be >= 1, got ", options.num_layers);
  ENCORE_CHECK(options.dropout >= 0 && options.dropout < 1, name, "dropout must be in [0, 1), got ",
               options.dropout);
  for (int64_t l = 0; l < options.num_layers; ++l) {
    RecurrentWeights w = make_layer(gates, l == 0 ? input_size : hidden_size, hidden_size, options);
    std::string k = "_l" + std::to_string(l);
    w.weight_ih = register_parameter("weight_ih" + k, w.weight_ih);
    w.weight_hh = register_parameter("weight_hh" + k, w.weight_hh);
    if (options.bias) {
      w.bias_ih = register_parameter("bias_ih" + k, w.bias_ih);
      w.bias_hh = register_parameter("bias_hh" + k, w.bias_hh);
    }
    layers_.push_back(w);
  }
}

std::string RecurrentBase::describe() const {
  std::ostringstream os;
  os << name_ << "(" << input_size_ << " -> " << hidden_size_;
  if (options_.num_layers != 1) os << ", num_layers=" << options_.num_layers;
  if (options_.dropout != 0) os << ", dropout=" << options_.dropout;
  if (!options_.batch_first) os << ", batch_first=false";
  if (!options_.bias) os << ", bias=false";
  os << ")";
  return os.str();
}

int RecurrentBase::check_inputs(const Tensor& x, const Tensors& initial) const {
  const char* layout = options_.batch_first ? "(N, T, " : "(T, N, ";
  const DType dt = layers_[0].weight_ih.dtype();
  const int64_t hs = hidden_size_, nl = options_.num_layers;
  ENCORE_CHECK(x.defined(), name_, "input is undefined");
  ENCORE_CHECK(x.dim() == 3 && x.size(2) == input_size_, name_, "expected input ", layout,
               input_size_, "), got ", x.shape());
  ENCORE_CHECK(x.dtype() == dt, name_, "input has dtype ", x.dtype(), " (shape ", x.shape(),
               ") but the parameters are ", dt);
  const int tdim = options_.batch_first ? 1 : 0;
  const int64_t n = x.size(1 - tdim), steps = x.size(tdim);
  ENCORE_CHECK(n > 0 && steps > 0, name_, "expected input ", layout, input_size_,
               ") with N and T positive, got ", x.shape());

  // Initial states: (L, N, H) each, or undefined (zeros).
  static const char* const state_names[] = {"h0", "c0"};
  bool any_defined = false, all_defined = true;
  for (size_t k = 0; k < initial.size(); ++k) {
    const Tensor& s = initial[k];
    any_defined |= s.defined();
    all_defined &= s.defined();
    if (!s.defined()) continue;
    ENCORE_CHECK(s.dim() == 3 && s.size(0) == nl && s.size(1) == n && s.size(2) == hs, name_,
                 "expected ", state_names[k], " (", nl, ", ", n, ", ", hs, ") for input ",
                 x.shape(), ", got ", s.shape());
    ENCORE_CHECK(s.dtype() == dt, name_, state_names[k], " has dtype ", s.dtype(), " (shape ",
                 s.shape(), ") but the parameters are ", dt);
  }
  ENCORE_CHECK(!any_defined || all_defined, name_,
               "give every initial state tensor (h0 and c0), or none (zeros)");
  return tdim;
}

RecurrentBase::StepMasks RecurrentBase::step_masks(const Tensor& x, const Tensor& lengths_or_mask,
                                                   int tdim) const {
  const DType dt = layers_[0].weight_ih.dtype();
  const int64_t n = x.size(1 - tdim), steps = x.size(tdim);
  StepMasks masks{.per_step = Tensors(steps), .any = std::vector<bool>(steps, true)};
  if (!lengths_or_mask.defined()) return masks;
  // valid: (N, T) with 1 at valid steps.
  const Tensor& m = lengths_or_mask;
  if (m.dim() == 1) {
    ENCORE_CHECK(m.dtype() == DType::i64 && m.size(0) == n, name_, "expected lengths as i64 (", n,
                 ") for input ", x.shape(), ", got ", m.dtype(), " ", m.shape());
    std::vector<int64_t> len = m.to_vector<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      ENCORE_CHECK(len[i] >= 0 && len[i] <= steps, name_, "lengths[", i, "] = ", len[i],
                   " is outside [0, ", steps, "] for input ", x.shape());
    masks.valid = sequence_mask(m, steps, dt);
  } else {
    ENCORE_CHECK(m.dim() == 2 && m.size(0) == n && m.size(1) == steps, name_, "expected lengths (",
                 n, ") or a mask (", n, ", ", steps, ") for input ", x.shape(), ", got ",
                 m.shape());
    std::vector<double> v = m.to_vector<double>();
    for (double& e : v) e = e != 0 ? 1.0 : 0.0;
    masks.valid = from_vector<double>(v, {n, steps}).to(dt);
  }
  std::vector<double> vv = masks.valid.to_vector<double>();
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<double> col(n);
    for (int64_t i = 0; i < n; ++i) col[i] = vv[i * steps + t];
    bool all = std::all_of(col.begin(), col.end(), [](double v) { return v != 0; });
    masks.any[t] = std::any_of(col.begin(), col.end(), [](double v) { return v != 0; });
    if (!all) masks.per_step[t] = from_vector<double>(col, {n, 1}).to(dt);
  }
  return masks;
}

Tensor RecurrentBase::run_layer(int64_t l, const Tensor& input, const Tensors& initial,
                                const StepMasks& masks, int tdim, const StepFn& step,
                                std::vector<Tensors>& finals) const {
  const RecurrentWeights& w = layers_[l];
  const DType dt = w.weight_ih.dtype();
  const int64_t n = input.size(1 - tdim), steps = input.size(tdim), hs = hidden_size_;
  const Tensor zero = scalar(0.0, dt);
  // gx: x's layout with G*H features, one gemm for every step of the layer.
  Tensor gx = linear(input, w.weight_ih, w.bias_ih);
  Tensors states;
  for (const Tensor& s : initial)
    states.push_back(s.defined() ? select(s, 0, l) : zeros({n, hs}, dt));
  Tensors outs(steps);  // (N, H) each
  for (int64_t t = 0; t < steps; ++t) {
    if (!masks.any[t]) {
      outs[t] = zeros({n, hs}, dt);
      continue;
    }
    Tensors next = step(select(gx, tdim, t), states, w);
    if (masks.per_step[t].defined()) {
      // Finished (or masked) sequences keep their state and output zeros.
      outs[t] = where(masks.per_step[t], next[0], zero);
      for (size_t k = 0; k < states.size(); ++k)
        states[k] = where(masks.per_step[t], next[k], states[k]);
    } else {
      states = std::move(next);
      outs[t] = states[0];
    }
  }
  for (size_t k = 0; k < states.size(); ++k) finals[k].push_back(states[k]);
  return stack(outs, tdim);  // x's layout with H features
}

RecurrentBase::RunResult RecurrentBase::run(const Tensor& x, const Tensors& initial,
                                            const Tensor& lengths_or_mask,
                                            const StepFn& step) const {
  const int tdim = check_inputs(x, initial);
  const StepMasks masks = step_masks(x, lengths_or_mask, tdim);
  Tensor input = x;
  if (masks.valid.defined()) {
    // Padded steps of x never influence anything; replacing them by zeros also keeps
    // non-finite padding out of the backward pass (0 * NaN would leak into the weights).
    const Tensor& v = masks.valid;
    Tensor keep = unsqueeze(options_.batch_first ? v : raw::transpose(v, 0, 1), 2);
    input = where(keep, x, scalar(0.0, x.dtype()));
  }
  std::vector<Tensors> finals(initial.size());  // [state kind][layer] -> (N, H)
  for (int64_t l = 0; l < options_.num_layers; ++l) {
    input = run_layer(l, input, initial, masks, tdim, step, finals);
    if (l + 1 < options_.num_layers && options_.dropout > 0 && is_training())
      input = dropout(input, options_.dropout, true,
                      options_.gen ? *options_.gen : default_generator());
  }
  RunResult r;
  r.output = input;
  for (const Tensors& f : finals) r.final.push_back(stack(f, 0));  // (L, N, H)
  return r;
}

// ---------------------------------------------------------------------------------------------
// LSTM and GRU

LSTM::LSTM(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options)
    : RecurrentBase("LSTM", 4, input_size, hidden_size, options) {}

LSTMOutput LSTM::forward(const Tensor& x, const LSTMState& initial,
                         const Tensor& lengths_or_mask) const {
  RunResult r = run(x, {initial.h, initial.c}, lengths_or_mask,
                    [](const Tensor& gx_t, const Tensors& s, const RecurrentWeights& w) {
                      // gates: (N, 4H) = gx_t + h W_hh^T + b_hh
                      LSTMState next =
                          lstm_gates(gx_t + linear(s[0], w.weight_hh, w.bias_hh), s[1]);
                      return Tensors{next.h, next.c};
                    });
  return {r.output, r.final[0], r.final[1]};
}

GRU::GRU(int64_t input_size, int64_t hidden_size, const RecurrentOptions& options)
    : RecurrentBase("GRU", 3, input_size, hidden_size, options) {}

GRUOutput GRU::forward(const Tensor& x, const Tensor& h0, const Tensor& lengths_or_mask) const {
  RunResult r = run(x, {h0}, lengths_or_mask,
                    [](const Tensor& gx_t, const Tensors& s, const RecurrentWeights& w) {
                      // gh: (N, 3H) = h W_hh^T + b_hh
                      return Tensors{gru_gates(gx_t, linear(s[0], w.weight_hh, w.bias_hh), s[0])};
                    });
  return {r.output, r.final[0]};
}

}  // namespace encore::nn
