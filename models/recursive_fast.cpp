// The fast greedy merge of RecursiveAutoencoder: candidate scores computed outside recording
// with raw kernels (in f64), cached between merges, and only the chosen merges recorded on the
// tape through the same merge_nodes as the literal implementation.
//
// All pairs. With We = [W1 | W2] and the decoder linear, the residual of merging a (left) and
// b (right) splits into a part of a and a part of b:
//   o - [a; b] = Wd (W1 a + W2 b + be) + bd - [a; b] = X(a) + Y(b),
//   X(a) = Wd W1 a - [a; 0] + (Wd be + bd),   Y(b) = Wd W2 b - [0; b],
// so score(a, b) = (|X(a)|^2 / 2 + s_a) + (|Y(b)|^2 / 2 + s_b) + X(a) . Y(b): every pair's
// score is one entry of the batched product X Y^T (L x L), and a new node needs only its own
// X and Y and one dot product with each other node. The scores are kept (up to kStoredLeaves
// leaves; beyond, recomputed from X and Y when needed) and each row i keeps its best partner
// j > i; after a merge only the new node's pairs are rescored, and only the rows that pointed
// at the merged pair look for a new best.
//
// Adjacent pairs. The hidden vector is normalised, so there is no such split; the L - 1
// candidates are scored in one batched product (two gemms), and a merge rescoring only the two
// candidates that now involve the new node.
//
// Same tree as the literal implementation. The literal one compares scores rounded in the
// model's dtype; these f64 scores differ from them by at most a bound E (a rounding-error
// analysis of the literal arithmetic, below). Every candidate that could be the literal choice
// (score - E <= best + E_best) is re-scored with the literal arithmetic (merge_nodes under
// NoGrad) and the literal rule picks among them: lowest score, first in the seed's loop order
// on ties. Duplicate leaves (as in the seed's data) make exact ties; they always go this way.
#include <algorithm>
#include <cmath>
#include <limits>

#include "models/recursive_autoencoder.h"

namespace encore::models {

namespace {

constexpr const char* kName = "RecursiveAutoencoder";
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kU64 = 0x1p-53;  // f64 unit roundoff
/// Up to this many leaves the all-pairs scores are kept in an L x L matrix (72 MB at most).
constexpr int64_t kStoredLeaves = 3000;

double gamma(int64_t k, double u) { return double(k) * u / (1 - double(k) * u); }

double norm2(const double* v, int64_t len) {
  double s = 0;
  for (int64_t k = 0; k < len; ++k) s += v[k] * v[k];
  return std::sqrt(s);
}

double dot(const double* a, const double* b, int64_t len) {
  double s = 0;
  for (int64_t k = 0; k < len; ++k) s += a[k] * b[k];
  return s;
}

double frobenius(const Tensor& t) {
  Tensor c = t.contiguous();
  return norm2(c.data<double>(), c.numel());
}

/// The merge weights in f64, with the norms the error bound uses.
struct Weights64 {
  explicit Weights64(const MergeWeights& w)
      : n(w.enc_bias.numel()),
        u(w.enc_weight.dtype() == DType::f32 ? 0x1p-24 : kU64),
        we(w.enc_weight.to(DType::f64).contiguous()),
        be(w.enc_bias.to(DType::f64).contiguous()),
        wd(w.dec_weight.to(DType::f64).contiguous()),
        bd(w.dec_bias.to(DType::f64).contiguous()),
        n_we(frobenius(we)),
        n_be(frobenius(be)),
        n_wd(frobenius(wd)),
        n_bd(frobenius(bd)) {}
  int64_t n;
  double u;  ///< unit roundoff of the model's dtype (what the literal scores are rounded in)
  Tensor we, be, wd, bd;
  double n_we, n_be, n_wd, n_bd;
};

/// The error of a literal score given a bound dO on the error of its reconstruction o, at a
/// candidate whose score is f (so |o - c| <= sqrt(2 f), the leaf scores being >= 0): the
/// squared residual's error 2 |d| |dd| + |dd|^2 summed in the dtype (gamma_2n), the two
/// additions of the children's scores, and the f64 error of the fast score itself.
double score_error(double f, double d_o, int64_t n, double u, double fast_err) {
  double fp = std::max(f, 0.0);
  return std::sqrt(2 * fp) * d_o + 0.5 * d_o * d_o + gamma(2 * n + 5, u) * fp + fast_err;
}

/// Picks the literal implementation's choice among candidate pairs listed in the seed's loop
/// order: re-scores them with merge_nodes under NoGrad when there is more than one.
size_t pick_literal(const std::vector<std::pair<int64_t, int64_t>>& near,
                    const std::vector<NodePtr>& nodes, const MergeWeights& w, MergeMode mode,
                    int64_t left) {
  ENCORE_CHECK(!near.empty(), kName, "no candidate merge has a finite score (", left,
               " nodes left): the weights have diverged");
  if (near.size() == 1) return 0;
  NoGrad no_grad;
  double best = kInf;
  size_t pick = near.size();
  for (size_t k = 0; k < near.size(); ++k) {
    double s = merge_nodes(nodes[size_t(near[k].first)], nodes[size_t(near[k].second)], w, mode)
                   ->score.item<double>();
    if (s < best) {
      best = s;
      pick = k;
    }
  }
  ENCORE_CHECK(pick < near.size(), kName, "no candidate merge has a finite score (", left,
               " nodes left): the weights have diverged");
  return pick;
}

/// Records the chosen merge on the tape; the literal implementation throws when its best score
/// is not finite, and so does this.
NodePtr record_merge(const NodePtr& a, const NodePtr& b, const MergeWeights& w, MergeMode mode,
                     int64_t left) {
  NodePtr m = merge_nodes(a, b, w, mode);
  ENCORE_CHECK(m->score.item<double>() < kInf, kName, "no candidate merge has a finite score (",
               left, " nodes left): the weights have diverged");
  return m;
}

// ---------------------------------------------------------------------------------------------
// All pairs

class AllPairs {
 public:
  AllPairs(std::vector<NodePtr> nodes, const MergeWeights& w) : w_(w), w64_(w), nodes_(nodes) {
    n_ = w64_.n;
    L_ = int64_t(nodes_.size());
    const int64_t n2 = 2 * n_;
    // P = Wd W1, Q = Wd W2: (2n, n); r = Wd be + bd: (2n).
    p_ = raw::matmul(w64_.wd, raw::narrow(w64_.we, 1, 0, n_)).contiguous();
    q_ = raw::matmul(w64_.wd, raw::narrow(w64_.we, 1, n_, n_)).contiguous();
    r_ = raw::linear(raw::unsqueeze(w64_.be, 0), w64_.wd, w64_.bd).contiguous();  // (1, 2n)
    n_p_ = frobenius(p_);
    n_q_ = frobenius(q_);
    n_r_ = frobenius(r_);
    // E: (L, n) the slots' embeddings; X = E P^T + r - [E, 0], Y = E Q^T - [0, E]: (L, 2n).
    std::vector<Tensor> rows;
    for (const NodePtr& x : nodes_) rows.push_back(x->embedding);
    e_ = raw::stack(rows, 0).to(DType::f64).contiguous();
    x_ = raw::linear(e_, p_, raw::reshape(r_, {n2})).contiguous();
    y_ = raw::linear(e_, q_, Tensor()).contiguous();
    double *e = e_.data<double>(), *x = x_.data<double>(), *y = y_.data<double>();
    xx_.resize(size_t(L_));
    yy_.resize(size_t(L_));
    for (int64_t i = 0; i < L_; ++i) {
      for (int64_t k = 0; k < n_; ++k) {
        x[i * n2 + k] -= e[i * n_ + k];
        y[i * n2 + n_ + k] -= e[i * n_ + k];
      }
      finish_row(i);
    }
    xp_ = x_.data<double>();
    yp_ = y_.data<double>();
    alive_.assign(size_t(L_), 1);
    best_.assign(size_t(L_), kInf);
    best_j_.assign(size_t(L_), -1);
    if (L_ <= kStoredLeaves) g_.resize(size_t(L_ * L_));
    // Every pair's score from the batched product X Y^T, in blocks of rows (bounded memory).
    const int64_t block = std::max<int64_t>(1, (int64_t(1) << 20) / L_);
    Tensor yt = raw::transpose(y_, 0, 1);
    for (int64_t r0 = 0; r0 < L_; r0 += block) {
      int64_t rb = std::min(block, L_ - r0);
      Tensor g = raw::matmul(raw::narrow(x_, 0, r0, rb), yt).contiguous();  // (rb, L)
      const double* gp = g.data<double>();
      for (int64_t i = r0; i < r0 + rb; ++i)
        for (int64_t j = i + 1; j < L_; ++j) {
          double f = xx_[size_t(i)] + yy_[size_t(j)] + gp[(i - r0) * L_ + j];
          if (!g_.empty()) g_[size_t(i * L_ + j)] = f;
          if (f < best_[size_t(i)]) best_[size_t(i)] = f, best_j_[size_t(i)] = j;
        }
    }
    update_bound();
  }

  NodePtr run() {
    for (int64_t left = L_; left > 1; --left) {
      auto [p, q] = choose(left);
      nodes_[size_t(p)] =
          record_merge(nodes_[size_t(p)], nodes_[size_t(q)], w_, MergeMode::all_pairs, left);
      nodes_[size_t(q)] = nullptr;
      alive_[size_t(q)] = 0;
      set_embedding(p);
      update_bound();
      rescore_after_merge(p, q);
    }
    for (const NodePtr& x : nodes_)
      if (x) return x;
    return nullptr;  // unreachable: one slot stays alive
  }

 private:
  /// The score of pair (i, j), i < j: X_i . Y_j and the two halves of the squares.
  double compute(int64_t i, int64_t j) const {
    const int64_t n2 = 2 * n_;
    return xx_[size_t(i)] + yy_[size_t(j)] + dot(xp_ + i * n2, yp_ + j * n2, n2);
  }
  double score(int64_t i, int64_t j) const {
    return g_.empty() ? compute(i, j) : g_[size_t(i * L_ + j)];
  }

  /// xx = |X_i|^2 / 2 + s_i, yy = |Y_i|^2 / 2 + s_i, and the running maxima of the norms.
  void finish_row(int64_t i) {
    const int64_t n2 = 2 * n_;
    double s = nodes_[size_t(i)]->score.item<double>();
    double nx = norm2(x_.data<double>() + i * n2, n2);
    double ny = norm2(y_.data<double>() + i * n2, n2);
    xx_[size_t(i)] = 0.5 * nx * nx + s;
    yy_[size_t(i)] = 0.5 * ny * ny + s;
    max_x_ = std::max(max_x_, nx);
    max_y_ = std::max(max_y_, ny);
    max_e_ = std::max(max_e_, norm2(e_.data<double>() + i * n_, n_));
  }

  /// The new node of slot p: its embedding, X and Y (one small product each).
  void set_embedding(int64_t p) {
    const int64_t n2 = 2 * n_;
    Tensor h = nodes_[size_t(p)]->embedding.to(DType::f64).contiguous();
    double* e = e_.data<double>() + p * n_;
    std::copy(h.data<double>(), h.data<double>() + n_, e);
    double *x = x_.data<double>() + p * n2, *y = y_.data<double>() + p * n2;
    const double *pm = p_.data<double>(), *qm = q_.data<double>(), *r = r_.data<double>();
    for (int64_t k = 0; k < n2; ++k) {
      x[k] = dot(pm + k * n_, e, n_) + r[k] - (k < n_ ? e[k] : 0.0);
      y[k] = dot(qm + k * n_, e, n_) - (k >= n_ ? e[k - n_] : 0.0);
    }
    finish_row(p);
  }

  /// dO: a bound on the literal reconstruction's rounding error for any pair of nodes so far
  /// (|c| <= sqrt(2) max|e|; the encoder's and decoder's dot products have 2n and n terms),
  /// and the fast scores' own f64 error (the cancellation in |X|^2/2 + |Y|^2/2 + X.Y).
  void update_bound() {
    double u = w64_.u, c = std::sqrt(2.0) * max_e_;
    double h_in = w64_.n_we * c + w64_.n_be;  // >= | |We| |c| + |be| |
    double dh = gamma(2 * n_ + 1, u) * h_in;
    d_o_ = gamma(n_ + 1, u) * (w64_.n_wd * (h_in + dh) + w64_.n_bd) + w64_.n_wd * dh;
    double m = max_x_ + max_y_ + (n_p_ + n_q_ + 2) * max_e_ + n_r_;
    fast_err_ = 16 * double(n_ + 4) * kU64 * m * m;
  }

  double err(double f) const { return score_error(f, d_o_, n_, w64_.u, fast_err_); }

  void recompute_row(int64_t i) {
    best_[size_t(i)] = kInf;
    best_j_[size_t(i)] = -1;
    for (int64_t j = i + 1; j < L_; ++j) {
      if (!alive_[size_t(j)]) continue;
      double f = score(i, j);
      if (f < best_[size_t(i)]) best_[size_t(i)] = f, best_j_[size_t(i)] = j;
    }
  }

  /// The literal implementation's choice: the best row, then every pair that could be within
  /// the rounding bound of it (rows whose best is clear of the bound are skipped: f - E(f)
  /// grows with f once f > dO^2), re-scored literally when there is more than one.
  std::pair<int64_t, int64_t> choose(int64_t left) {
    double f_min = kInf;
    for (int64_t i = 0; i < L_; ++i)
      if (alive_[size_t(i)] && best_[size_t(i)] < f_min) f_min = best_[size_t(i)];
    std::vector<std::pair<int64_t, int64_t>> near;
    if (f_min < kInf) {
      double threshold = f_min + err(f_min);
      for (int64_t i = 0; i < L_; ++i) {
        if (!alive_[size_t(i)] || best_j_[size_t(i)] < 0) continue;
        double b = best_[size_t(i)];
        if (b > d_o_ * d_o_ && b - err(b) > threshold) continue;
        for (int64_t j = i + 1; j < L_; ++j) {
          if (!alive_[size_t(j)]) continue;
          double f = score(i, j);
          if (f - err(f) <= threshold) near.emplace_back(i, j);
        }
      }
    }
    return near[pick_literal(near, nodes_, w_, MergeMode::all_pairs, left)];
  }

  /// Slot p holds the new node, q is gone: the new node's pairs are rescored; rows that pointed
  /// at p or q look again; the others compare their new pair with p against their best.
  void rescore_after_merge(int64_t p, int64_t q) {
    if (!g_.empty()) {
      for (int64_t i = 0; i < p; ++i)
        if (alive_[size_t(i)]) g_[size_t(i * L_ + p)] = compute(i, p);
      for (int64_t j = p + 1; j < L_; ++j)
        if (alive_[size_t(j)]) g_[size_t(p * L_ + j)] = compute(p, j);
    }
    for (int64_t i = 0; i < q; ++i) {
      if (!alive_[size_t(i)]) continue;
      int64_t bj = best_j_[size_t(i)];
      if (i == p || bj == p || bj == q) {
        recompute_row(i);
      } else if (i < p) {
        double f = score(i, p);
        if (f < best_[size_t(i)] || (f == best_[size_t(i)] && p < bj))
          best_[size_t(i)] = f, best_j_[size_t(i)] = p;
      }
    }
  }

  MergeWeights w_;
  Weights64 w64_;
  std::vector<NodePtr> nodes_;
  int64_t n_ = 0, L_ = 0;
  Tensor p_, q_, r_, e_, x_, y_;
  const double *xp_ = nullptr, *yp_ = nullptr;  // x_ and y_'s data
  double n_p_ = 0, n_q_ = 0, n_r_ = 0;
  std::vector<double> xx_, yy_, best_, g_;  // g_: the stored scores, row-major L x L
  std::vector<int64_t> best_j_;
  std::vector<char> alive_;
  double max_x_ = 0, max_y_ = 0, max_e_ = 0, d_o_ = 0, fast_err_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Adjacent pairs

class Adjacent {
 public:
  Adjacent(std::vector<NodePtr> nodes, const MergeWeights& w) : w_(w), w64_(w), nodes_(nodes) {
    n_ = w64_.n;
    L_ = int64_t(nodes_.size());
    std::vector<Tensor> rows;
    for (const NodePtr& x : nodes_) rows.push_back(x->embedding);
    e_ = raw::stack(rows, 0).to(DType::f64).contiguous();
    next_.resize(size_t(L_));
    prev_.resize(size_t(L_));
    for (int64_t i = 0; i < L_; ++i) {
      next_[size_t(i)] = i + 1 < L_ ? i + 1 : -1;
      prev_[size_t(i)] = i - 1;
    }
    f_.assign(size_t(L_), kInf);
    e_bound_.assign(size_t(L_), 0);
    std::vector<int64_t> all;
    for (int64_t i = 0; i + 1 < L_; ++i) all.push_back(i);
    rescore(all);
  }

  NodePtr run() {
    int64_t head = 0;
    for (int64_t left = L_; left > 1; --left) {
      // The best candidate (first on ties), then all that could be the literal choice.
      int64_t k_min = -1;
      for (int64_t k = head; k >= 0; k = next_[size_t(k)])
        if (next_[size_t(k)] >= 0 && (k_min < 0 || f_[size_t(k)] < f_[size_t(k_min)])) k_min = k;
      std::vector<std::pair<int64_t, int64_t>> near;
      if (k_min >= 0 && f_[size_t(k_min)] < kInf) {
        double threshold = f_[size_t(k_min)] + e_bound_[size_t(k_min)];
        for (int64_t k = head; k >= 0 && next_[size_t(k)] >= 0; k = next_[size_t(k)])
          if (f_[size_t(k)] - e_bound_[size_t(k)] <= threshold)
            near.emplace_back(k, next_[size_t(k)]);
      }
      auto [p, q] = near[pick_literal(near, nodes_, w_, MergeMode::adjacent, left)];
      nodes_[size_t(p)] =
          record_merge(nodes_[size_t(p)], nodes_[size_t(q)], w_, MergeMode::adjacent, left);
      nodes_[size_t(q)] = nullptr;
      next_[size_t(p)] = next_[size_t(q)];
      if (next_[size_t(q)] >= 0) prev_[size_t(next_[size_t(q)])] = p;
      Tensor h = nodes_[size_t(p)]->embedding.to(DType::f64).contiguous();
      std::copy(h.data<double>(), h.data<double>() + n_, e_.data<double>() + p * n_);
      // Only the two candidates that involve the new node change.
      std::vector<int64_t> touched;
      if (prev_[size_t(p)] >= 0) touched.push_back(prev_[size_t(p)]);
      if (next_[size_t(p)] >= 0) touched.push_back(p);
      rescore(touched);
    }
    return nodes_[size_t(head)];
  }

 private:
  /// Scores the candidates (k, next(k)) for the listed k in one batched product:
  /// C = [e_k, e_next]: (B, 2n) -> H = C We^T + be -> H / |H| -> O = H Wd^T + bd: (B, 2n).
  void rescore(const std::vector<int64_t>& ks) {
    if (ks.empty()) return;
    const int64_t nb = int64_t(ks.size()), n2 = 2 * n_;
    Tensor c = empty({nb, n2}, DType::f64);
    double* cp = c.data<double>();
    const double* e = e_.data<double>();
    for (int64_t b = 0; b < nb; ++b) {
      int64_t k = ks[size_t(b)], j = next_[size_t(k)];
      std::copy(e + k * n_, e + (k + 1) * n_, cp + b * n2);
      std::copy(e + j * n_, e + (j + 1) * n_, cp + b * n2 + n_);
    }
    Tensor h = raw::linear(c, w64_.we, w64_.be).contiguous();  // (B, n)
    double* hp = h.data<double>();
    std::vector<double> h_norm(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) {
      double s = 0;
      for (int64_t k = 0; k < n_; ++k) s += hp[b * n_ + k] * hp[b * n_ + k];
      h_norm[size_t(b)] = std::sqrt(s);
      double inv = 1 / std::sqrt(s + 1e-12);  // as unit_normalise
      for (int64_t k = 0; k < n_; ++k) hp[b * n_ + k] *= inv;
    }
    Tensor o = raw::linear(h, w64_.wd, w64_.bd).contiguous();  // (B, 2n)
    const double* op = o.data<double>();
    const double u = w64_.u;
    for (int64_t b = 0; b < nb; ++b) {
      int64_t k = ks[size_t(b)], j = next_[size_t(k)];
      double l2 = 0;
      for (int64_t m = 0; m < n2; ++m) {
        double d = op[b * n2 + m] - cp[b * n2 + m];
        l2 += d * d;
      }
      double f = 0.5 * l2 + nodes_[size_t(k)]->score.item<double>() +
                 nodes_[size_t(j)]->score.item<double>();
      // The literal error: h to gamma_{2n+1} (|We| |c| + |be|), relative to |h| after the
      // normalisation, then through the decoder (|h| = 1).
      double c_norm = norm2(cp + b * n2, n2);
      double dh = gamma(2 * n_ + 1, u) * (w64_.n_we * c_norm + w64_.n_be);
      double dhn = 2 * dh / h_norm[size_t(b)] + gamma(n_ + 4, u);
      double d_o = gamma(n_ + 1, u) * (w64_.n_wd + w64_.n_bd) + w64_.n_wd * dhn;
      double m = w64_.n_wd + w64_.n_bd + c_norm;
      double fast_err = 16 * double(n_ + 4) * kU64 * m * m;
      f_[size_t(k)] = std::isnan(f) ? kInf : f;
      e_bound_[size_t(k)] = std::isnan(d_o) ? kInf : score_error(f, d_o, n_, u, fast_err);
    }
  }

  MergeWeights w_;
  Weights64 w64_;
  std::vector<NodePtr> nodes_;
  int64_t n_ = 0, L_ = 0;
  Tensor e_;
  std::vector<int64_t> next_, prev_;
  std::vector<double> f_, e_bound_;
};

}  // namespace

NodePtr greedy_tree_fast(const std::vector<NodePtr>& leaves, const MergeWeights& w,
                         MergeMode mode) {
  ENCORE_CHECK(!leaves.empty(), kName, "greedy_tree_fast needs at least one leaf");
  if (leaves.size() == 1) return leaves[0];
  if (mode == MergeMode::all_pairs) return AllPairs(leaves, w).run();
  return Adjacent(leaves, w).run();
}

}  // namespace encore::models
