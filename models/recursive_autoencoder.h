// RecursiveAutoencoder (seed 001): a merge network that encodes two vectors into one, and the
// greedy procedure that builds a binary tree over a sequence of leaf vectors with it. Merging a
// and b: h = encoder(concat(a, b)) (2n -> n, linear as the seed), o = decoder(h) (n -> 2n);
// the merged node's score is l2_loss(o - concat(a, b)) + a.score + b.score (leaves score 0).
// Greedy merge: score every candidate pair, merge the lowest, put the new node in the left
// one's place, drop the right one, repeat until one root is left; the root's score is the
// loss, and the gradient flows through the whole data-dependent tree.
//
// Two modes: all pairs i < j (the seed), and adjacent pairs only with unit-normalised hidden
// vectors (Socher et al. 2011), which removes the seed's degenerate minimum (every embedding
// shrinking towards zero). Two implementations that give the same tree and the same gradients:
//   literal  every candidate merge computed on the tape, exactly as the seed;
//   fast     candidate scores computed outside recording in one batched product (in f64),
//            cached between merges so a merge rescores only the pairs it touched; near-ties
//            are re-scored with the literal arithmetic, and only the chosen merges are
//            recorded on the tape (models/recursive_fast.cpp).
//
//   auto rae = std::make_shared<models::RecursiveAutoencoder>(10);
//   optim::Adam opt(rae->parameters(), {.lr = 1e-3, .eps = 1e-7});
//   GradientTape tape;
//   Tensor loss = rae->loss(leaves);                 // leaves: (L, 10)
//   opt.step(tape.gradient(loss, rae->parameters()));
//   std::cout << rae->forward(leaves)->print();      // the seed's Node.print
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../nn/nn.h"

namespace encore::models {

/// Which pairs are candidates for a merge.
enum class MergeMode {
  all_pairs,  ///< every i < j, raw hidden vectors (the seed)
  adjacent,   ///< neighbours only, hidden vectors unit-normalised (Socher et al. 2011)
};
/// How the candidates are scored (both give the same tree and gradients).
enum class MergeImpl {
  literal,  ///< every candidate on the tape (the seed)
  fast,     ///< batched scoring outside recording, cached; only chosen merges recorded
};

/// "all" / "adjacent" and "literal" / "fast" (the program's flag values).
std::string to_string(MergeMode mode);
std::string to_string(MergeImpl impl);
/// Parses those names; throws encore::Error naming the bad value.
MergeMode parse_merge_mode(const std::string& name);
MergeImpl parse_merge_impl(const std::string& name);

/// A node of the merge tree: a leaf (index >= 0, score 0) or a merge of left and right
/// (index -1, as the seed).
struct RecursiveNode {
  int64_t index = -1;
  Tensor embedding;  ///< (n)
  Tensor score;      ///< 0-d: this subtree's summed reconstruction error
  std::shared_ptr<const RecursiveNode> left, right;

  bool is_leaf() const { return left == nullptr; }
  /// The seed's Node.print: one line per node, "<offset> <index> <score> <mean>" with offset
  /// a tab per depth, the node first, then left and right; numbers as Python prints floats.
  std::string print() const;
  /// The shape of the tree with leaf indices, e.g. "((0 10) 3)".
  std::string structure() const;
  /// Number of leaves below (1 for a leaf).
  int64_t num_leaves() const;
};
using NodePtr = std::shared_ptr<const RecursiveNode>;

/// The merge network's tensors. The module passes its parameters; a test may pass its own
/// (e.g. the copies gradcheck perturbs).
struct MergeWeights {
  Tensor enc_weight;  ///< (n, 2n)
  Tensor enc_bias;    ///< (n)
  Tensor dec_weight;  ///< (2n, n)
  Tensor dec_bias;    ///< (2n)
};

/// Leaf nodes for the rows of leaves: (L, n) -> L leaves (embedding = row i, score 0).
std::vector<NodePtr> make_leaves(const Tensor& leaves);
/// One merge, recorded on the tape when one is active: a, b -> node with h and the score.
NodePtr merge_nodes(const NodePtr& a, const NodePtr& b, const MergeWeights& w, MergeMode mode);
/// The greedy tree over leaves (L, n), L >= 1; the root's score is the loss.
NodePtr greedy_tree(const Tensor& leaves, const MergeWeights& w, MergeMode mode, MergeImpl impl);
/// The fast implementation of greedy_tree (models/recursive_fast.cpp).
NodePtr greedy_tree_fast(const std::vector<NodePtr>& leaves, const MergeWeights& w, MergeMode mode);

struct RecursiveOptions {
  MergeMode mode = MergeMode::all_pairs;
  MergeImpl impl = MergeImpl::fast;
  /// Parameter dtype (f32 or f64); leaves must have it too.
  DType dtype = DType::f32;
  /// Random source for the initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// The seed's merge encoder as a Module: encoder Linear(2n -> n), decoder Linear(n -> 2n),
/// Keras' Dense defaults (glorot_uniform, zero bias). Parameters: "encoder.weight",
/// "encoder.bias", "decoder.weight", "decoder.bias".
class RecursiveAutoencoder : public nn::Module {
 public:
  explicit RecursiveAutoencoder(int64_t n, RecursiveOptions options = {});

  /// pairs: (..., 2n) = concat(a, b) -> h: (..., n), unit-normalised in adjacent mode.
  Tensor encode(const Tensor& pairs);
  /// h: (..., n) -> reconstruction (..., 2n).
  Tensor decode(const Tensor& h);
  /// leaves: (L, n), L >= 1 -> the root of the greedy tree.
  NodePtr forward(const Tensor& leaves);
  /// leaves: (L, n), L >= 2 -> the root's score (0-d), the training loss.
  Tensor loss(const Tensor& leaves);

  /// The leaf (and hidden) vector size n.
  int64_t dim() const { return n_; }
  const RecursiveOptions& options() const { return options_; }
  /// Switches the implementation (the tree and gradients do not change).
  void set_impl(MergeImpl impl) { options_.impl = impl; }
  /// The four parameters as MergeWeights: encoder (n, 2n), (n); decoder (2n, n), (2n)
  /// (handles on the parameters, not copies).
  MergeWeights weights() const;

  /// "RecursiveAutoencoder(n=10, all pairs, fast)".
  std::string describe() const override;

 private:
  int64_t n_;
  RecursiveOptions options_;
  std::shared_ptr<nn::Linear> encoder_, decoder_;
};

/// The seed's leaves: ones(n) * i for i in 0..9, twice -> (20, n).
Tensor seed_leaves(int64_t n = 10, DType dtype = DType::f32);

}  // namespace encore::models
