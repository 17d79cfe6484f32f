// RecursiveAutoencoder: the merge network, the tree nodes and their print, and the literal
// greedy merge (every candidate on the tape, as seed 001). The fast implementation is in
// models/recursive_fast.cpp; both share merge_nodes, so a chosen merge is the same computation.
#include "models/recursive_autoencoder.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace encore::models {

namespace {

constexpr const char* kName = "RecursiveAutoencoder";

/// Python's repr of a float: the shortest digits that round-trip (in f32 for an f32 value, as
/// NumPy prints a float32), fixed notation for exponents in [-4, 16), else d.ddde+XX.
std::string python_float(double v, bool single) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  std::to_chars_result r =
      single ? std::to_chars(buf, buf + sizeof(buf), float(v), std::chars_format::scientific)
             : std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string s(buf, r.ptr);  // e.g. "-1.2345e+01", "5e-05"
  std::string out;
  size_t pos = 0;
  if (s[0] == '-') {
    out.push_back('-');
    pos = 1;
  }
  size_t e = s.find('e');
  std::string digits;
  for (size_t k = pos; k < e; ++k)
    if (s[k] != '.') digits.push_back(s[k]);
  int exp = std::atoi(s.c_str() + e + 1);
  if (exp >= 0 && exp < 16) {
    size_t whole = size_t(exp) + 1;
    if (digits.size() < whole) digits.resize(whole, '0');
    out.append(digits, 0, whole);
    out.push_back('.');
    if (digits.size() > whole)
      out.append(digits, whole, std::string::npos);
    else
      out.push_back('0');
    return out;
  }
  if (exp < 0 && exp >= -4) {
    out.append("0.");
    out.append(size_t(-exp - 1), '0');
    out.append(digits);
    return out;
  }
  out.push_back(digits[0]);
  if (digits.size() > 1) {
    out.push_back('.');
    out.append(digits, 1, std::string::npos);
  }
  char ebuf[16];
  std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  out.append(ebuf);
  return out;
}

void print_into(const RecursiveNode& node, const std::string& offset, std::string& out) {
  bool single = node.score.dtype() == DType::f32;
  double mean = raw::reduce(raw::ReduceOp::mean, node.embedding).item<double>();
  out += offset + " " + std::to_string(node.index) + " " +
         python_float(node.score.item<double>(), single) + " " + python_float(mean, single) + "\n";
  if (node.left && node.right) {
    print_into(*node.left, offset + "\t", out);
    print_into(*node.right, offset + "\t", out);
  }
}

/// h / ||h|| over the last dim (the epsilon only keeps h = 0 finite).
Tensor unit_normalise(const Tensor& h) { return h * rsqrt(sum(square(h), {-1}, true) + 1e-12); }

void check_weights(const MergeWeights& w, int64_t n) {
  ENCORE_CHECK(w.enc_weight.defined() && w.enc_bias.defined() && w.dec_weight.defined() &&
                   w.dec_bias.defined(),
               kName, "every merge weight must be defined");
  ENCORE_CHECK(
      (w.enc_weight.shape() == Shape{n, 2 * n}) && (w.enc_bias.shape() == Shape{n}) &&
          (w.dec_weight.shape() == Shape{2 * n, n}) && (w.dec_bias.shape() == Shape{2 * n}),
      kName, "merge weights for n = ", n,
      " must be encoder (n, 2n), (n) and decoder (2n, n), (2n); got ", w.enc_weight.shape(), ", ",
      w.enc_bias.shape(), ", ", w.dec_weight.shape(), ", ", w.dec_bias.shape());
  DType dt = w.enc_weight.dtype();
  ENCORE_CHECK(is_floating(dt) && w.enc_bias.dtype() == dt && w.dec_weight.dtype() == dt &&
                   w.dec_bias.dtype() == dt,
               kName, "merge weights must share one floating dtype, got ", w.enc_weight.dtype(),
               ", ", w.enc_bias.dtype(), ", ", w.dec_weight.dtype(), ", ", w.dec_bias.dtype());
}

Tensor encode_pairs(const Tensor& pairs, const MergeWeights& w, MergeMode mode) {
  Tensor h = linear(pairs, w.enc_weight, w.enc_bias);  // (..., 2n) -> (..., n)
  return mode == MergeMode::adjacent ? unit_normalise(h) : h;
}

Tensor decode_hidden(const Tensor& h, const MergeWeights& w) {
  return linear(h, w.dec_weight, w.dec_bias);  // (..., n) -> (..., 2n)
}

/// The seed's merge loop: every candidate merged on the tape, the lowest score (first in loop
/// order on ties) kept, the new node in the left one's place, the right one dropped.
NodePtr greedy_literal(std::vector<NodePtr> x, const MergeWeights& w, MergeMode mode) {
  while (x.size() > 1) {
    double min_loss = std::numeric_limits<double>::infinity();
    NodePtr min_node;
    size_t min_i = 0, min_j = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      size_t j_end = mode == MergeMode::adjacent ? std::min(i + 2, x.size()) : x.size();
      for (size_t j = i + 1; j < j_end; ++j) {
        NodePtr node = merge_nodes(x[i], x[j], w, mode);
        double s = node->score.item<double>();
        if (s < min_loss) {
          min_node = node;
          min_loss = s;
          min_i = i;
          min_j = j;
        }
      }
    }
    ENCORE_CHECK(min_node != nullptr, kName, "no candidate merge has a finite score (", x.size(),
                 " nodes left): the weights have diverged");
    x[min_i] = min_node;
    x.erase(x.begin() + std::ptrdiff_t(min_j));
  }
  return x[0];
}

}  // namespace

std::string to_string(MergeMode mode) { return mode == MergeMode::all_pairs ? "all" : "adjacent"; }
std::string to_string(MergeImpl impl) { return impl == MergeImpl::literal ? "literal" : "fast"; }

MergeMode parse_merge_mode(const std::string& name) {
  if (name == "all") return MergeMode::all_pairs;
  if (name == "adjacent") return MergeMode::adjacent;
  ENCORE_FAIL(kName, "unknown merge mode '", name, "' (expected all or adjacent)");
}

MergeImpl parse_merge_impl(const std::string& name) {
  if (name == "literal") return MergeImpl::literal;
  if (name == "fast") return MergeImpl::fast;
  ENCORE_FAIL(kName, "unknown implementation '", name, "' (expected literal or fast)");
}

std::string RecursiveNode::print() const {
  std::string out;
  print_into(*this, "", out);
  return out;
}

std::string RecursiveNode::structure() const {
  if (is_leaf()) return std::to_string(index);
  std::string out(1, '(');
  out.append(left->structure());
  out.push_back(' ');
  out.append(right->structure());
  out.push_back(')');
  return out;
}

int64_t RecursiveNode::num_leaves() const {
  return is_leaf() ? 1 : left->num_leaves() + right->num_leaves();
}

std::vector<NodePtr> make_leaves(const Tensor& leaves) {
  ENCORE_CHECK(leaves.defined() && leaves.dim() == 2 && leaves.size(0) >= 1, kName,
               "leaves must be (L, n) with L >= 1, got ",
               leaves.defined() ? to_string(leaves.shape()) : "undefined");
  ENCORE_CHECK(is_floating(leaves.dtype()), kName, "leaves must be f32 or f64, got ",
               leaves.dtype());
  std::vector<NodePtr> out;
  out.reserve(size_t(leaves.size(0)));
  Tensor zero = scalar(0.0, leaves.dtype());
  for (int64_t i = 0; i < leaves.size(0); ++i)
    out.push_back(std::make_shared<const RecursiveNode>(
        RecursiveNode{i, select(leaves, 0, i), zero, nullptr, nullptr}));
  return out;
}

NodePtr merge_nodes(const NodePtr& a, const NodePtr& b, const MergeWeights& w, MergeMode mode) {
  Tensor c = concat({a->embedding, b->embedding}, 0);  // (2n)
  Tensor h = encode_pairs(c, w, mode);                 // (n)
  Tensor o = decode_hidden(h, w);                      // (2n)
  Tensor score = nn::l2_loss(o - c) + a->score + b->score;
  return std::make_shared<const RecursiveNode>(RecursiveNode{-1, h, score, a, b});
}

NodePtr greedy_tree(const Tensor& leaves, const MergeWeights& w, MergeMode mode, MergeImpl impl) {
  std::vector<NodePtr> x = make_leaves(leaves);
  int64_t n = leaves.size(1);
  check_weights(w, n);
  ENCORE_CHECK(leaves.dtype() == w.enc_weight.dtype(), kName, "leaves ", leaves.shape(), " are ",
               leaves.dtype(), " but the merge weights are ", w.enc_weight.dtype());
  return impl == MergeImpl::literal ? greedy_literal(std::move(x), w, mode)
                                    : greedy_tree_fast(x, w, mode);
}

// ---------------------------------------------------------------------------------------------
// The module

RecursiveAutoencoder::RecursiveAutoencoder(int64_t n, RecursiveOptions options)
    : n_(n), options_(options) {
  ENCORE_CHECK(n > 0, kName, "n must be positive, got ", n);
  ENCORE_CHECK(is_floating(options.dtype), kName, "dtype must be f32 or f64, got ", options.dtype);
  nn::LinearOptions lo{.dtype = options.dtype, .gen = options.gen};
  encoder_ = register_module("encoder", std::make_shared<nn::Linear>(2 * n, n, lo));
  decoder_ = register_module("decoder", std::make_shared<nn::Linear>(n, 2 * n, lo));
}

MergeWeights RecursiveAutoencoder::weights() const {
  return {encoder_->weight(), encoder_->bias(), decoder_->weight(), decoder_->bias()};
}

Tensor RecursiveAutoencoder::encode(const Tensor& pairs) {
  ENCORE_CHECK(pairs.defined() && pairs.dim() >= 1 && pairs.size(-1) == 2 * n_,
               "RecursiveAutoencoder.encode", "expected pairs (..., ", 2 * n_, "), got ",
               pairs.defined() ? to_string(pairs.shape()) : "undefined");
  return encode_pairs(pairs, weights(), options_.mode);
}

Tensor RecursiveAutoencoder::decode(const Tensor& h) {
  ENCORE_CHECK(h.defined() && h.dim() >= 1 && h.size(-1) == n_, "RecursiveAutoencoder.decode",
               "expected h (..., ", n_, "), got ",
               h.defined() ? to_string(h.shape()) : "undefined");
  return decode_hidden(h, weights());
}

NodePtr RecursiveAutoencoder::forward(const Tensor& leaves) {
  ENCORE_CHECK(leaves.defined() && leaves.dim() == 2 && leaves.size(1) == n_,
               "RecursiveAutoencoder.forward", "expected leaves (L, ", n_, "), got ",
               leaves.defined() ? to_string(leaves.shape()) : "undefined");
  // A NaN or inf leaf would make every candidate merge's score non-finite, which the greedy
  // search would report as diverged weights: name the input instead.
  const std::vector<double> values = leaves.to_vector<double>();
  ENCORE_CHECK(std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); }),
               "RecursiveAutoencoder.forward", "leaves ", leaves.shape(), " hold NaN or inf");
  return greedy_tree(leaves, weights(), options_.mode, options_.impl);
}

Tensor RecursiveAutoencoder::loss(const Tensor& leaves) {
  ENCORE_CHECK(leaves.defined() && leaves.dim() == 2 && leaves.size(0) >= 2,
               "RecursiveAutoencoder.loss", "loss needs at least 2 leaves (L, n), got ",
               leaves.defined() ? to_string(leaves.shape()) : "undefined");
  return forward(leaves)->score;
}

std::string RecursiveAutoencoder::describe() const {
  return std::string(kName) + "(n=" + std::to_string(n_) + ", " +
         (options_.mode == MergeMode::all_pairs ? "all pairs" : "adjacent pairs") + ", " +
         to_string(options_.impl) + ")";
}

Tensor seed_leaves(int64_t n, DType dtype) {
  ENCORE_CHECK(n > 0, "seed_leaves", "n must be positive, got ", n);
  Tensor out = empty({20, n}, dtype);
  for (int64_t i = 0; i < 20; ++i) raw::select(out, 0, i).fill_(double(i % 10));
  return out;
}

}  // namespace encore::models
