// models/recursive_autoencoder: the greedy merge tree of seed 001. The root score against a
// hand computation (3 leaves, both modes; 2 leaves), the seed's Node.print format, the fast
// implementation against the literal one (same tree, same root score, same gradients) in both
// modes on the seed's leaves, on random leaves and on all-equal leaves (exact ties), also
// after Adam steps, the gradient through the tree against finite differences, a few Adam steps
// lowering the loss, and the errors a user can cause.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "models/models.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_close;
using encore::testing::check_grad;
using encore::testing::expect_error;
using models::MergeImpl;
using models::MergeMode;
using models::RecursiveAutoencoder;
using models::RecursiveOptions;

namespace {

/// n = 1 weights that keep every number exact in binary: h = a + b, o = (h / 2, h / 2).
std::shared_ptr<RecursiveAutoencoder> tiny_model(MergeMode mode, MergeImpl impl, DType dt) {
  auto m = std::make_shared<RecursiveAutoencoder>(
      1, RecursiveOptions{.mode = mode, .impl = impl, .dtype = dt});
  models::MergeWeights w = m->weights();
  w.enc_weight.copy_(tensor({1, 1}, dt));
  w.enc_bias.fill_(0);
  w.dec_weight.copy_(raw::reshape(tensor({0.5, 0.5}, dt), {2, 1}));
  w.dec_bias.fill_(0);
  return m;
}

/// What one implementation computes at the end: the tree, its print, the root score and the
/// gradients w.r.t. the parameters and the leaves.
struct Outcome {
  std::string structure, print;
  double root = 0;
  Tensors grads;
};

/// A model of dim n from `seed`, `adam_steps` Adam steps on leaves, then the tree and
/// gradients.
Outcome run(MergeMode mode, MergeImpl impl, const Tensor& leaves, uint64_t seed,
            int adam_steps = 0) {
  Generator gen(seed);
  auto m = std::make_shared<RecursiveAutoencoder>(
      leaves.size(1),
      RecursiveOptions{.mode = mode, .impl = impl, .dtype = leaves.dtype(), .gen = &gen});
  optim::Adam opt(m->parameters(), {.lr = 1e-2});
  for (int s = 0; s < adam_steps; ++s) {
    GradientTape tape;
    opt.step(tape.gradient(m->loss(leaves), m->parameters()));
  }
  Tensor x = leaves.clone();
  GradientTape tape;
  tape.watch(x);
  models::NodePtr root = m->forward(x);
  Tensors sources = m->parameters();
  sources.push_back(x);
  Outcome out{root->structure(), root->print(), root->score.item<double>(), {}};
  out.grads = tape.gradient(root->score, sources);
  return out;
}

/// Largest |g| over the gradients (the scale of an f32 comparison).
double max_abs(const Tensors& gs) {
  double m = 0;
  for (const Tensor& g : gs)
    for (double v : g.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

void check_fast_equals_literal(const std::string& what, MergeMode mode, const Tensor& leaves,
                               int adam_steps = 0) {
  CAPTURE(what);
  Outcome lit = run(mode, MergeImpl::literal, leaves, 7, adam_steps);
  Outcome fast = run(mode, MergeImpl::fast, leaves, 7, adam_steps);
  CHECK(fast.structure == lit.structure);
  CHECK(fast.print == lit.print);
  REQUIRE(fast.grads.size() == lit.grads.size());
  if (leaves.dtype() == DType::f64) {
    // Same tree, and the chosen merges are the same ops recorded in the same order: exact.
    CHECK(fast.root == lit.root);
    for (size_t k = 0; k < lit.grads.size(); ++k)
      check_close(what + " gradient " + std::to_string(k), fast.grads[k], lit.grads[k], 0, 0);
  } else {
    // f32: the same argument gives bitwise equality on this build; the tolerance only allows
    // a different summation order of the per-merge contributions, each rounded at u = 6e-8
    // relative, over at most L = 60 merges: 60 u ~ 4e-6 of the largest gradient.
    CHECK(fast.root == doctest::Approx(lit.root).epsilon(1e-6));
    double scale = max_abs(lit.grads);
    for (size_t k = 0; k < lit.grads.size(); ++k)
      check_close(what + " gradient " + std::to_string(k), fast.grads[k], lit.grads[k],
                  1e-5 * scale, 1e-5);
  }
}

}  // namespace

TEST_CASE("recursive: the root score is the hand computation (3 leaves, both implementations)") {
  // Leaves 1, 3, 4. All pairs: (1,3) h 4 o (2,2) -> 1; (1,4) h 5 -> 2.25; (3,4) h 7 o (3.5,3.5)
  // -> 0.25, the lowest: [1, m(7)]; then (1, 7): h 8, o (4, 4), d (3, -3) -> 9 + 0.25 = 9.25.
  for (DType dt : {DType::f64, DType::f32})
    for (MergeImpl impl : {MergeImpl::literal, MergeImpl::fast}) {
      CAPTURE(dt);
      CAPTURE(models::to_string(impl));
      auto m = tiny_model(MergeMode::all_pairs, impl, dt);
      Tensor leaves = raw::reshape(tensor({1, 3, 4}, dt), {3, 1});
      models::NodePtr root = m->forward(leaves);
      CHECK(root->score.item<double>() == 9.25);
      CHECK(root->structure() == "(0 (1 2))");
      CHECK(root->num_leaves() == 3);
      CHECK(m->loss(raw::narrow(leaves, 0, 0, 2)).item<double>() == 1.0);  // 2 leaves: (1, 3)
    }
  // Adjacent, h normalised to 1 so o = (0.5, 0.5): (1,3) -> (0.25 + 6.25) / 2 = 3.25,
  // (3,4) -> (6.25 + 12.25) / 2 = 9.25; merge (1,3); then (m(1), 4): d (-0.5, -3.5) -> 6.25,
  // plus 3.25 = 9.5. (The normalisation's 1e-12 moves this by ~1e-13.)
  for (MergeImpl impl : {MergeImpl::literal, MergeImpl::fast}) {
    auto m = tiny_model(MergeMode::adjacent, impl, DType::f64);
    models::NodePtr root = m->forward(raw::reshape(tensor({1, 3, 4}, DType::f64), {3, 1}));
    CHECK(root->score.item<double>() == doctest::Approx(9.5).epsilon(1e-12));
    CHECK(root->structure() == "((0 1) 2)");
  }
}

TEST_CASE("recursive: the tree prints as the seed's Node.print") {
  // "<offset> <index> <score> <mean of the embedding>", a tab per depth, node, left, right;
  // numbers as Python prints floats (the same in f32 and f64 here: all are exact).
  for (DType dt : {DType::f64, DType::f32}) {
    auto m = tiny_model(MergeMode::all_pairs, MergeImpl::fast, dt);
    models::NodePtr root = m->forward(raw::reshape(tensor({1, 3, 4}, dt), {3, 1}));
    CHECK(root->print() ==
          " -1 9.25 8.0\n"
          "\t 0 0.0 1.0\n"
          "\t -1 0.25 7.0\n"
          "\t\t 1 0.0 3.0\n"
          "\t\t 2 0.0 4.0\n");
  }
  // Python's exponent notation below 1e-4: score ~1e-10 (d = (1e-5, -1e-5)), mean 4e-05.
  auto m = tiny_model(MergeMode::all_pairs, MergeImpl::fast, DType::f64);
  models::NodePtr small = m->forward(raw::reshape(tensor({0.00001, 0.00003}, DType::f64), {2, 1}));
  std::string line = small->print().substr(0, small->print().find('\n'));
  CAPTURE(line);
  CHECK(line.rfind(" -1 ", 0) == 0);
  CHECK((line.find("e-10 ") != std::string::npos || line.find("e-11 ") != std::string::npos));
  CHECK(line.substr(line.size() - 5) == "4e-05");
  auto m32 = tiny_model(MergeMode::all_pairs, MergeImpl::fast, DType::f32);
  models::NodePtr tenth = m32->forward(raw::reshape(tensor({0.1, 0.2}, DType::f32), {2, 1}));
  CHECK(tenth->print().find("\t 0 0.0 0.1\n") != std::string::npos);
}

TEST_CASE("recursive: fast == literal, all pairs") {
  Generator gen(3);
  check_fast_equals_literal("seed leaves f64", MergeMode::all_pairs,
                            models::seed_leaves(10, DType::f64));
  check_fast_equals_literal("seed leaves f32", MergeMode::all_pairs, models::seed_leaves(10));
  check_fast_equals_literal("seed leaves f32 after 3 Adam steps", MergeMode::all_pairs,
                            models::seed_leaves(10), 3);
  check_fast_equals_literal("random f64", MergeMode::all_pairs, randn({25, 6}, gen, DType::f64));
  check_fast_equals_literal("random f32", MergeMode::all_pairs, randn({60, 10}, gen));
  check_fast_equals_literal("equal leaves (ties everywhere)", MergeMode::all_pairs,
                            ones({9, 4}, DType::f64));
}

TEST_CASE("recursive: fast == literal, adjacent pairs") {
  Generator gen(4);
  check_fast_equals_literal("seed leaves f64", MergeMode::adjacent,
                            models::seed_leaves(10, DType::f64));
  check_fast_equals_literal("seed leaves f32 after 3 Adam steps", MergeMode::adjacent,
                            models::seed_leaves(10), 3);
  check_fast_equals_literal("random f64", MergeMode::adjacent, randn({40, 6}, gen, DType::f64));
  check_fast_equals_literal("random f32", MergeMode::adjacent, randn({60, 10}, gen));
  check_fast_equals_literal("equal leaves (ties everywhere)", MergeMode::adjacent,
                            ones({9, 4}, DType::f64));
}

TEST_CASE("recursive: the gradient through the tree passes gradcheck") {
  // w.r.t. the leaves and all four weights, f64, n = 3, 6 random leaves (no near-ties, so the
  // tree does not change under the finite-difference steps).
  Generator gen(11);
  for (MergeMode mode : {MergeMode::all_pairs, MergeMode::adjacent})
    for (MergeImpl impl : {MergeImpl::literal, MergeImpl::fast}) {
      Generator wgen(5);
      RecursiveAutoencoder m(3, {.mode = mode, .dtype = DType::f64, .gen = &wgen});
      models::MergeWeights w = m.weights();
      Tensors inputs = {randn({6, 3}, gen, DType::f64), w.enc_weight.clone(), w.enc_bias.clone(),
                        w.dec_weight.clone(), w.dec_bias.clone()};
      inputs[2] = randn({3}, gen, DType::f64, 0, 0.5);  // nonzero biases
      inputs[4] = randn({6}, gen, DType::f64, 0, 0.5);
      check_grad(
          models::to_string(mode) + " " + models::to_string(impl),
          [&](const Tensors& in) {
            return models::greedy_tree(in[0], {in[1], in[2], in[3], in[4]}, mode, impl)->score;
          },
          inputs);
    }
}

TEST_CASE("recursive: a few Adam steps lower the root loss on the seed's leaves") {
  for (MergeMode mode : {MergeMode::all_pairs, MergeMode::adjacent}) {
    CAPTURE(models::to_string(mode));
    Generator gen(0);
    RecursiveAutoencoder m(10, {.mode = mode, .gen = &gen});
    optim::Adam opt(m.parameters(), {.lr = 1e-2, .eps = 1e-7});
    Tensor leaves = models::seed_leaves(10);
    std::vector<double> losses;
    for (int step = 0; step < 10; ++step) {
      GradientTape tape;
      Tensor loss = m.loss(leaves);
      losses.push_back(loss.item<double>());
      opt.step(tape.gradient(loss, m.parameters()));
    }
    std::string trace;
    for (double l : losses) trace += std::to_string(l) + " ";
    CAPTURE(trace);
    // Seen here: all pairs 6913 -> 2167, adjacent 2922 -> 2555 (the unit-norm hidden vector
    // must be decoded back to leaves of norm up to 28, so that mode moves slower).
    CHECK(std::isfinite(losses.back()));
    CHECK(losses.back() < 0.9 * losses.front());
  }
}

TEST_CASE("recursive: user errors throw encore::Error naming the model and shapes") {
  RecursiveAutoencoder m(4);
  CHECK(expect_error([&] { m.loss(ones({1, 4})); }).find("at least 2 leaves") != std::string::npos);
  CHECK(expect_error([&] { m.forward(ones({5, 3})); }).find("[5, 3]") != std::string::npos);
  CHECK(expect_error([&] {
          m.forward(ones({5, 4}, DType::f64));
        }).find("f64") != std::string::npos);
  CHECK(expect_error([&] { m.forward(ones({0, 4})); }).find("L >= 1") != std::string::npos);
  CHECK(expect_error([&] { m.encode(ones({3, 7})); }).find("[3, 7]") != std::string::npos);
  CHECK(expect_error([&] { m.decode(ones({3, 8})); }).find("[3, 8]") != std::string::npos);
  CHECK(expect_error([] { models::parse_merge_mode("pairs"); }).find("'pairs'") !=
        std::string::npos);
  CHECK(expect_error([] { models::parse_merge_impl("quick"); }).find("'quick'") !=
        std::string::npos);
  CHECK(expect_error([] { RecursiveAutoencoder bad(0); }).find("RecursiveAutoencoder") !=
        std::string::npos);
  models::MergeWeights w = m.weights();
  w.dec_bias = ones({3});
  CHECK(expect_error([&] {
          models::greedy_tree(ones({3, 4}), w, MergeMode::all_pairs, MergeImpl::fast);
        }).find("[3]") != std::string::npos);
  // NaN leaves: no candidate has a finite score; both implementations say so (the seed would
  // fail on None.score).
  Tensor bad_leaves = ones({4, 4});
  raw::select(bad_leaves, 0, 2).fill_(std::nan(""));
  for (MergeImpl impl : {MergeImpl::literal, MergeImpl::fast}) {
    CAPTURE(models::to_string(impl));
    CHECK(expect_error([&] {
            models::greedy_tree(bad_leaves, m.weights(), MergeMode::all_pairs, impl);
          }).find("no candidate merge has a finite score") != std::string::npos);
  }
  // One leaf is its own tree (score 0); encode/decode keep leading dims.
  CHECK(m.forward(ones({1, 4}))->structure() == "0");
  CHECK(m.encode(ones({2, 5, 8})).shape() == Shape{2, 5, 4});
  CHECK(m.decode(ones({2, 5, 4})).shape() == Shape{2, 5, 8});
  CHECK(m.describe() == "RecursiveAutoencoder(n=4, all pairs, fast)");
}
