// Tests of nn/recurrent: LSTMCell, LSTM, GRUCell, GRU.
//   - golden values from PyTorch (tests/golden/recurrent_fixtures.json, written by
//     make_recurrent_fixtures.py): the fixture's weights are copied into the parameters found
//     by named_parameters() (so the names must be PyTorch's), then the outputs and the
//     gradients of sum(output * R) + sum(h_n * Rh) (+ sum(c_n * Rc)) w.r.t. the inputs, the
//     initial state and every parameter are compared, in f64 and in f32;
//   - gradcheck of the cells and of a padded, stacked sequence in f64;
//   - masking semantics: a padded sequence gives what the unpadded sequence gives alone;
//   - initialisers, describe(), and the errors a user can provoke.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "nn/recurrent.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_close;
using encore::testing::golden;
using encore::testing::json_tensor;
using encore::testing::Measure;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A case of tests/golden/recurrent_fixtures.json, by name.
const json& fixture(const std::string& name) {
  return golden("recurrent_fixtures.json").at("cases").at(name);
}

/// Copies the fixture's parameters into the module's, by PyTorch name; every name must match.
void load_params(nn::Module& m, const json& params) {
  nn::NamedTensors mine = m.named_parameters();
  std::set<std::string> want, have;
  for (const auto& [k, v] : params.items()) want.insert(k);
  for (const auto& [k, t] : mine) have.insert(k);
  REQUIRE(have == want);
  NoGrad no_grad;
  for (auto& [name, t] : mine) {
    Tensor src = json_tensor(params.at(name), t.dtype());
    REQUIRE(src.shape() == t.shape());
    t.copy_(src);
  }
}

/// How a golden case is fed to the module.
struct Feed {
  DType dtype = DType::f64;
  bool batch_first = true;
  bool mask_instead_of_lengths = false;
};

/// What a module gave: outputs and gradients by the fixture's names.
struct Result {
  std::map<std::string, Tensor> outputs, grads;
};

/// Runs the fixture case through an encore module: loads its weights and inputs, runs the
/// forward under a tape, and takes the gradient of sum_k sum(outputs[k] * weights[k]) w.r.t.
/// every input and parameter.
Result run_case(const json& c, const Feed& f) {
  const std::string kind = c.at("module");
  const int64_t in = c.at("input_size"), hs = c.at("hidden_size");
  std::map<std::string, Tensor> inputs;
  for (const auto& [k, v] : c.at("inputs").items()) inputs[k] = json_tensor(v, f.dtype);

  std::shared_ptr<nn::Module> module;
  Result r;
  GradientTape tape;
  // The tensors the module reads (batch_first=false gets x as (T, N, I)).
  std::map<std::string, Tensor> fed = inputs;
  if (!f.batch_first) fed["x"] = raw::transpose(inputs["x"], 0, 1).contiguous();
  for (auto& [k, v] : fed) tape.watch(v);

  Tensor lengths_or_mask;
  if (c.contains("lengths") && !c.at("lengths").is_null()) {
    std::vector<int64_t> len = c.at("lengths");
    lengths_or_mask = from_vector<int64_t>(len, {int64_t(len.size())});
    if (f.mask_instead_of_lengths)
      lengths_or_mask = nn::sequence_mask(lengths_or_mask, inputs["x"].size(1), DType::i64);
  }
  // batch_first=false gives (T, N, H) outputs: compare them transposed back.
  auto to_batch_first = [&](const Tensor& y) { return f.batch_first ? y : transpose(y, 0, 1); };

  nn::RecurrentOptions o{.batch_first = f.batch_first, .dtype = f.dtype};
  if (c.contains("num_layers")) o.num_layers = c.at("num_layers");
  if (kind == "LSTMCell") {
    auto m = std::make_shared<nn::LSTMCell>(in, hs, nn::RecurrentOptions{.dtype = f.dtype});
    load_params(*m, c.at("params"));
    nn::LSTMState s = m->forward(fed["x"], {fed["h"], fed["c"]});
    r.outputs = {{"h", s.h}, {"c", s.c}};
    module = m;
  } else if (kind == "GRUCell") {
    auto m = std::make_shared<nn::GRUCell>(in, hs, nn::RecurrentOptions{.dtype = f.dtype});
    load_params(*m, c.at("params"));
    r.outputs = {{"h", m->forward(fed["x"], fed["h"])}};
    module = m;
  } else if (kind == "LSTM") {
    auto m = std::make_shared<nn::LSTM>(in, hs, o);
    load_params(*m, c.at("params"));
    nn::LSTMOutput y = m->forward(fed["x"], {fed["h0"], fed["c0"]}, lengths_or_mask);
    r.outputs = {{"output", to_batch_first(y.output)}, {"h_n", y.h_n}, {"c_n", y.c_n}};
    module = m;
  } else if (kind == "GRU") {
    auto m = std::make_shared<nn::GRU>(in, hs, o);
    load_params(*m, c.at("params"));
    nn::GRUOutput y = m->forward(fed["x"], fed["h0"], lengths_or_mask);
    r.outputs = {{"output", to_batch_first(y.output)}, {"h_n", y.h_n}};
    module = m;
  } else {
    FAIL("unknown module kind ", kind);
  }

  Tensor loss;
  for (const auto& [k, w] : c.at("weights").items()) {
    Tensor term = sum(r.outputs.at(k) * json_tensor(w, f.dtype));
    loss = loss.defined() ? loss + term : term;
  }
  std::vector<std::string> names;
  Tensors sources;
  for (auto& [k, v] : fed) {
    names.push_back(k);
    sources.push_back(v);
  }
  for (auto& [k, p] : module->named_parameters()) {
    names.push_back(k);
    sources.push_back(p);
  }
  Tensors g = tape.gradient(loss, sources);
  for (size_t i = 0; i < names.size(); ++i) r.grads[names[i]] = g[i];
  if (!f.batch_first) r.grads["x"] = raw::transpose(r.grads["x"], 0, 1);
  return r;
}

/// Runs a case and compares every output and gradient with the fixture.
void check_case(const std::string& name, const Feed& f, double atol, double rtol) {
  const json& c = fixture(name);
  Result r = run_case(c, f);
  for (const auto& [k, v] : c.at("outputs").items())
    check_close(name + " output " + k, r.outputs.at(k), json_tensor(v, DType::f64), atol, rtol,
                Measure::ratio);
  REQUIRE(r.grads.size() == c.at("grads").size());
  for (const auto& [k, v] : c.at("grads").items())
    check_close(name + " d/d " + k, r.grads.at(k), json_tensor(v, DType::f64), atol, rtol,
                Measure::ratio);
}

// f64 runs the same arithmetic as PyTorch up to summation order (BLAS blocking, the order in
// which the tape accumulates gradients): the worst difference seen is below 1e-14, so
// 1e-12 absolute + 1e-10 relative leaves a wide margin and still fails on any real bug.
constexpr double kAtol64 = 1e-12, kRtol64 = 1e-10;
// f32 (weights and inputs rounded to f32, every op in f32, reference in f64): each op adds
// ~6e-8 relative error, compounded over 5 steps and 2 layers and accumulated over the
// sequence in the gradients; the worst difference seen is ~2e-7 on values O(0.01..1).
// 2e-6 absolute + 2e-5 relative is ~10x that.
constexpr double kAtol32 = 2e-6, kRtol32 = 2e-5;

const char* const kCases[] = {"lstm_cell",      "gru_cell", "lstm_l1", "lstm_l2",
                              "lstm_l2_padded", "gru_l1",   "gru_l2",  "gru_l2_padded"};

/// Random f64 values in [-1, 1).
Tensor uniform64(const Shape& s, Generator& gen) { return rand(s, gen, DType::f64, -1, 1); }

/// The maximum of |a - b| (a and b of one shape).
double max_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Golden values

TEST_CASE("LSTM/GRU golden: f64 forward and all gradients match PyTorch") {
  for (const char* name : kCases) {
    SUBCASE(name) { check_case(name, {.dtype = DType::f64}, kAtol64, kRtol64); }
  }
}

TEST_CASE("LSTM/GRU golden: f32 forward and all gradients match PyTorch") {
  for (const char* name : kCases) {
    SUBCASE(name) { check_case(name, {.dtype = DType::f32}, kAtol32, kRtol32); }
  }
}

TEST_CASE("LSTM/GRU golden: batch_first=false gives the same results transposed") {
  for (const char* name : {"lstm_l2", "lstm_l2_padded", "gru_l2", "gru_l2_padded"}) {
    SUBCASE(name) { check_case(name, {.batch_first = false}, kAtol64, kRtol64); }
  }
}

TEST_CASE("LSTM/GRU golden: a (N, T) mask gives what the lengths give") {
  for (const char* name : {"lstm_l2_padded", "gru_l2_padded"}) {
    SUBCASE(name) { check_case(name, {.mask_instead_of_lengths = true}, kAtol64, kRtol64); }
  }
}

// ---------------------------------------------------------------------------------------------
// gradcheck

TEST_CASE("LSTMCell and GRUCell: gradcheck in f64") {
  Generator gen(7);
  const int64_t n = 2, in = 3, hs = 4;
  Tensor x = uniform64({n, in}, gen), h = uniform64({n, hs}, gen), c = uniform64({n, hs}, gen);

  SUBCASE("LSTMCell module w.r.t. x, h, c") {
    auto cell = std::make_shared<nn::LSTMCell>(
        in, hs, nn::RecurrentOptions{.dtype = DType::f64, .gen = &gen});
    auto fn = [&](const Tensors& v) {
      nn::LSTMState s = cell->forward(v[0], {v[1], v[2]});
      return concat({flatten(s.h), flatten(s.c)}, 0);
    };
    GradcheckResult r = gradcheck(fn, {x, h, c});
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("lstm_cell w.r.t. every input and weight") {
    Tensor w_ih = uniform64({4 * hs, in}, gen), w_hh = uniform64({4 * hs, hs}, gen);
    Tensor b_ih = uniform64({4 * hs}, gen), b_hh = uniform64({4 * hs}, gen);
    auto fn = [](const Tensors& v) {
      nn::LSTMState s = nn::lstm_cell(v[0], {v[1], v[2]}, v[3], v[4], v[5], v[6]);
      return concat({flatten(s.h), flatten(s.c)}, 0);
    };
    GradcheckResult r = gradcheck(fn, {x, h, c, w_ih, w_hh, b_ih, b_hh});
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("GRUCell module w.r.t. x, h") {
    auto cell = std::make_shared<nn::GRUCell>(
        in, hs, nn::RecurrentOptions{.dtype = DType::f64, .gen = &gen});
    auto fn = [&](const Tensors& v) { return cell->forward(v[0], v[1]); };
    GradcheckResult r = gradcheck(fn, {x, h});
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("gru_cell w.r.t. every input and weight") {
    Tensor w_ih = uniform64({3 * hs, in}, gen), w_hh = uniform64({3 * hs, hs}, gen);
    Tensor b_ih = uniform64({3 * hs}, gen), b_hh = uniform64({3 * hs}, gen);
    auto fn = [](const Tensors& v) { return nn::gru_cell(v[0], v[1], v[2], v[3], v[4], v[5]); };
    GradcheckResult r = gradcheck(fn, {x, h, w_ih, w_hh, b_ih, b_hh});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("LSTM and GRU: gradcheck of a padded 2-layer sequence in f64") {
  Generator gen(11);
  const int64_t n = 3, steps = 4, in = 2, hs = 3, layers = 2;
  nn::RecurrentOptions o{.num_layers = layers, .dtype = DType::f64, .gen = &gen};
  Tensor x = uniform64({n, steps, in}, gen);
  Tensor h0 = uniform64({layers, n, hs}, gen), c0 = uniform64({layers, n, hs}, gen);
  // One full sequence, one stopping early, one of length 0 (its h_n is h0).
  Tensor lengths = from_vector<int64_t>({4, 2, 0}, {3});

  SUBCASE("LSTM") {
    auto lstm = std::make_shared<nn::LSTM>(in, hs, o);
    auto fn = [&](const Tensors& v) {
      nn::LSTMOutput y = lstm->forward(v[0], {v[1], v[2]}, lengths);
      return concat({flatten(y.output), flatten(y.h_n), flatten(y.c_n)}, 0);
    };
    GradcheckResult r = gradcheck(fn, {x, h0, c0});
    CHECK_MESSAGE(r.ok, r.message);
  }
  SUBCASE("GRU") {
    auto gru = std::make_shared<nn::GRU>(in, hs, o);
    auto fn = [&](const Tensors& v) {
      nn::GRUOutput y = gru->forward(v[0], v[1], lengths);
      return concat({flatten(y.output), flatten(y.h_n)}, 0);
    };
    GradcheckResult r = gradcheck(fn, {x, h0});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

// ---------------------------------------------------------------------------------------------
// Masking semantics

TEST_CASE("LSTM and GRU: a padded sequence gives what the unpadded sequence gives alone") {
  Generator gen(3);
  const int64_t n = 4, steps = 6, in = 3, hs = 5, layers = 2;
  const std::vector<int64_t> len = {6, 2, 4, 0};
  nn::RecurrentOptions o{.num_layers = layers, .dtype = DType::f64, .gen = &gen};
  auto lstm = std::make_shared<nn::LSTM>(in, hs, o);
  auto gru = std::make_shared<nn::GRU>(in, hs, o);
  Tensor x = uniform64({n, steps, in}, gen);
  Tensor h0 = uniform64({layers, n, hs}, gen), c0 = uniform64({layers, n, hs}, gen);
  Tensor lengths = from_vector<int64_t>(len, {n});
  // Non-finite padding must not matter either (it is replaced before any arithmetic).
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = len[i]; t < steps; ++t)
      raw::select(raw::select(x, 0, i), 0, t).fill_(std::nan(""));

  nn::LSTMOutput y = lstm->forward(x, {h0, c0}, lengths);
  nn::GRUOutput z = gru->forward(x, h0, lengths);
  for (int64_t i = 0; i < n; ++i) {
    CAPTURE(i);
    Tensor hi = raw::narrow(h0, 1, i, 1), ci = raw::narrow(c0, 1, i, 1);
    Tensor yi_out = raw::select(y.output, 0, i), zi_out = raw::select(z.output, 0, i);
    if (len[i] == 0) {
      // Nothing ran: the final state is the initial one.
      CHECK(max_diff(raw::narrow(y.h_n, 1, i, 1), hi) == 0);
      CHECK(max_diff(raw::narrow(y.c_n, 1, i, 1), ci) == 0);
      CHECK(max_diff(raw::narrow(z.h_n, 1, i, 1), hi) == 0);
    } else {
      Tensor xi = raw::narrow(raw::narrow(x, 0, i, 1), 1, 0, len[i]);  // (1, len, I)
      nn::LSTMOutput yi = lstm->forward(xi, {hi, ci});
      nn::GRUOutput zi = gru->forward(xi, hi);
      CHECK(max_diff(raw::narrow(y.h_n, 1, i, 1), yi.h_n) < 1e-14);
      CHECK(max_diff(raw::narrow(y.c_n, 1, i, 1), yi.c_n) < 1e-14);
      CHECK(max_diff(raw::narrow(z.h_n, 1, i, 1), zi.h_n) < 1e-14);
      CHECK(max_diff(raw::narrow(yi_out, 0, 0, len[i]), raw::select(yi.output, 0, 0)) < 1e-14);
      CHECK(max_diff(raw::narrow(zi_out, 0, 0, len[i]), raw::select(zi.output, 0, 0)) < 1e-14);
    }
    // Outputs past the end are exactly zero.
    for (int64_t t = len[i]; t < steps; ++t) {
      CHECK(max_diff(raw::select(yi_out, 0, t), zeros({hs}, DType::f64)) == 0);
      CHECK(max_diff(raw::select(zi_out, 0, t), zeros({hs}, DType::f64)) == 0);
    }
  }

  // Gradients stay finite and are zero at padded steps.
  GradientTape tape;
  tape.watch(x);
  Tensor loss =
      sum(lstm->forward(x, {h0, c0}, lengths).output) + sum(gru->forward(x, h0, lengths).h_n);
  Tensor dx = tape.gradient(loss, x);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < steps; ++t) {
      Tensor row = raw::select(raw::select(dx, 0, i), 0, t);
      for (double v : row.to_vector<double>()) {
        CHECK(std::isfinite(v));
        if (t >= len[i]) CHECK(v == 0);
      }
    }
}

TEST_CASE("LSTM: a mask with holes carries the state across the masked steps") {
  Generator gen(5);
  const int64_t steps = 5, in = 2, hs = 3;
  auto lstm =
      std::make_shared<nn::LSTM>(in, hs, nn::RecurrentOptions{.dtype = DType::f64, .gen = &gen});
  Tensor x = uniform64({1, steps, in}, gen);
  Tensor mask = from_vector<double>({1, 0, 1, 0, 1}, {1, steps});
  nn::LSTMOutput y = lstm->forward(x, {}, mask);
  // The same as running steps 0, 2, 4 alone.
  Tensor kept = raw::index_select(x, 1, from_vector<int64_t>({0, 2, 4}, {3}));
  nn::LSTMOutput ref = lstm->forward(kept, {});
  CHECK(max_diff(y.h_n, ref.h_n) < 1e-14);
  CHECK(max_diff(y.c_n, ref.c_n) < 1e-14);
  CHECK(max_diff(raw::select(y.output, 1, 4), raw::select(ref.output, 1, 2)) < 1e-14);
  CHECK(max_diff(raw::select(y.output, 1, 1), zeros({1, hs}, DType::f64)) == 0);
}

// ---------------------------------------------------------------------------------------------
// Initialisation, naming, description

TEST_CASE("LSTM/GRU init: PyTorch's uniform and Keras' glorot/orthogonal/forget bias") {
  const int64_t in = 5, hs = 4;
  SUBCASE("pytorch: every parameter in [-1/sqrt(H), 1/sqrt(H)]") {
    Generator gen(1);
    nn::LSTM lstm(in, hs, {.num_layers = 2, .gen = &gen});
    double bound = 1 / std::sqrt(double(hs));
    for (auto& named : lstm.named_parameters()) {
      const std::string& name = named.first;
      CAPTURE(name);
      std::vector<double> v = named.second.to_vector<double>();
      double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
      CHECK(lo >= -bound);
      CHECK(hi <= bound);
      CHECK(hi - lo > bound);  // spread out, not constant
    }
    // The same seed gives the same parameters.
    Generator again(1);
    nn::LSTM twin(in, hs, {.num_layers = 2, .gen = &again});
    for (size_t i = 0; i < lstm.parameters().size(); ++i)
      CHECK(max_diff(lstm.parameters()[i], twin.parameters()[i]) == 0);
  }
  SUBCASE("keras") {
    Generator gen(2);
    for (int64_t gates : {4, 3}) {
      CAPTURE(gates);
      nn::RecurrentOptions o{.init = nn::RecurrentInit::keras, .dtype = DType::f64, .gen = &gen};
      Tensor w_ih, w_hh, b_ih, b_hh;
      if (gates == 4) {
        auto cell = std::make_shared<nn::LSTMCell>(in, hs, o);
        w_ih = cell->weight_ih(), w_hh = cell->weight_hh(), b_ih = cell->bias_ih(),
        b_hh = cell->bias_hh();
      } else {
        auto cell = std::make_shared<nn::GRUCell>(in, hs, o);
        w_ih = cell->weight_ih(), w_hh = cell->weight_hh(), b_ih = cell->bias_ih(),
        b_hh = cell->bias_hh();
      }
      // glorot_uniform: |w| <= sqrt(6 / (fan_in + fan_out)) with the Keras kernel (I, G*H).
      double limit = std::sqrt(6.0 / double(in + gates * hs));
      for (double v : w_ih.to_vector<double>()) CHECK(std::abs(v) <= limit);
      // orthogonal: weight_hh (G*H, H) has orthonormal columns.
      Tensor gram = matmul(transpose(w_hh, 0, 1), w_hh);
      CHECK(max_diff(gram, eye(hs, -1, DType::f64)) < 1e-12);
      // biases: zero, except an LSTM's forget gate (rows H..2H) of bias_ih.
      std::vector<double> bi = b_ih.to_vector<double>();
      for (int64_t r = 0; r < gates * hs; ++r)
        CHECK(bi[r] == ((gates == 4 && r >= hs && r < 2 * hs) ? 1.0 : 0.0));
      CHECK(max_diff(b_hh, zeros({gates * hs}, DType::f64)) == 0);
    }
  }
}

TEST_CASE("LSTM/GRU: PyTorch parameter names, shapes and describe()") {
  nn::LSTM lstm(8, 16, {.num_layers = 2, .dropout = 0.25});
  std::vector<std::pair<std::string, Shape>> want = {
      {"weight_ih_l0", {64, 8}}, {"weight_hh_l0", {64, 16}}, {"bias_ih_l0", {64}},
      {"bias_hh_l0", {64}},      {"weight_ih_l1", {64, 16}}, {"weight_hh_l1", {64, 16}},
      {"bias_ih_l1", {64}},      {"bias_hh_l1", {64}}};
  nn::NamedTensors got = lstm.named_parameters();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(got[i].first == want[i].first);
    CHECK(got[i].second.shape() == want[i].second);
  }
  CHECK(lstm.describe() == "LSTM(8 -> 16, num_layers=2, dropout=0.25)");
  CHECK(nn::GRU(3, 5, {.batch_first = false, .bias = false}).describe() ==
        "GRU(3 -> 5, batch_first=false, bias=false)");
  CHECK(nn::GRU(3, 5, {.bias = false}).named_parameters().size() == 2);
  CHECK(nn::LSTMCell(3, 5).describe() == "LSTMCell(3 -> 5)");
  CHECK(nn::GRUCell(3, 5).describe() == "GRUCell(3 -> 5)");
  nn::GRUCell gc(3, 5);
  CHECK(gc.named_parameters()[0].first == "weight_ih");
  CHECK(gc.weight_ih().shape() == Shape{15, 3});
  CHECK(gc.weight_hh().shape() == Shape{15, 5});
}

TEST_CASE("LSTM/GRU: zero initial state when none is given, and dropout only in training") {
  Generator gen(4);
  nn::RecurrentOptions o{.num_layers = 2, .dropout = 0.5, .dtype = DType::f64, .gen = &gen};
  nn::LSTM lstm(3, 4, o);
  Tensor x = uniform64({2, 3, 3}, gen);
  lstm.eval();
  nn::LSTMOutput a = lstm.forward(x);
  nn::LSTMOutput b = lstm.forward(x, {zeros({2, 2, 4}, DType::f64), zeros({2, 2, 4}, DType::f64)});
  CHECK(max_diff(a.output, b.output) == 0);
  CHECK(max_diff(a.c_n, b.c_n) == 0);
  // The same computation as two single-layer LSTMs chained (no dropout in eval mode).
  nn::LSTM first(3, 4, {.dtype = DType::f64}), second(4, 4, {.dtype = DType::f64});
  {
    NoGrad no_grad;
    auto p = lstm.parameters(), p1 = first.parameters(), p2 = second.parameters();
    for (size_t i = 0; i < 4; ++i) {
      p1[i].copy_(p[i]);
      p2[i].copy_(p[4 + i]);
    }
  }
  nn::LSTMOutput c = second.forward(first.forward(x).output);
  CHECK(max_diff(a.output, c.output) < 1e-15);
  lstm.train();
  nn::LSTMOutput d = lstm.forward(x);
  CHECK(max_diff(a.output, d.output) > 1e-6);  // dropout between the layers changed it
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("LSTM/GRU errors name the layer and the shapes") {
  nn::LSTM lstm(8, 16, {.num_layers = 2});
  Tensor x = zeros({4, 10, 8});
  CHECK_THROWS_WITH_AS(lstm.forward(zeros({4, 10, 3})),
                       "LSTM: expected input (N, T, 8), got [4, 10, 3]", Error);
  CHECK_THROWS_WITH_AS(lstm.forward(zeros({4, 8})), "LSTM: expected input (N, T, 8), got [4, 8]",
                       Error);
  CHECK_THROWS_WITH_AS(nn::LSTM(8, 16, {.batch_first = false}).forward(zeros({4, 10, 3})),
                       "LSTM: expected input (T, N, 8), got [4, 10, 3]", Error);
  CHECK_THROWS_WITH_AS(lstm.forward(zeros({4, 10, 8}, DType::f64)),
                       "LSTM: input has dtype f64 (shape [4, 10, 8]) but the parameters are f32",
                       Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, {zeros({1, 4, 16}), zeros({2, 4, 16})}),
                       "LSTM: expected h0 (2, 4, 16) for input [4, 10, 8], got [1, 4, 16]", Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, {zeros({2, 4, 16}), Tensor()}),
                       "LSTM: give every initial state tensor (h0 and c0), or none (zeros)", Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, {}, from_vector<int64_t>({10, 3, 11, 1}, {4})),
                       "LSTM: lengths[2] = 11 is outside [0, 10] for input [4, 10, 8]", Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, {}, tensor({10, 3, 1, 1})),
                       "LSTM: expected lengths as i64 (4) for input [4, 10, 8], got f32 [4]",
                       Error);
  CHECK_THROWS_WITH_AS(lstm.forward(x, {}, ones({4, 9})),
                       "LSTM: expected lengths (4) or a mask (4, 10) for input [4, 10, 8], got "
                       "[4, 9]",
                       Error);
  CHECK_THROWS_WITH_AS(nn::GRU(8, 16).forward(x, zeros({1, 3, 16})),
                       "GRU: expected h0 (1, 4, 16) for input [4, 10, 8], got [1, 3, 16]", Error);
  CHECK_THROWS_WITH_AS(nn::LSTMCell(8, 16).forward(zeros({4, 7})),
                       "LSTMCell: expected input (N, 8), got [4, 7]", Error);
  CHECK_THROWS_WITH_AS(nn::LSTMCell(8, 16).forward(zeros({4, 8}), {zeros({4, 16}), Tensor()}),
                       "LSTMCell: give both h and c of the state, or neither (zeros)", Error);
  CHECK_THROWS_WITH_AS(nn::GRUCell(8, 16).forward(zeros({4, 8}), zeros({3, 16})),
                       "GRUCell: expected h (4, 16) for an input with batch 4, got [3, 16]", Error);
  CHECK_THROWS_WITH_AS(nn::LSTM(8, 16, {.num_layers = 0}), "LSTM: num_layers must be >= 1, got 0",
                       Error);
  CHECK_THROWS_WITH_AS(nn::GRU(8, 16, {.dropout = 1.0}), "GRU: dropout must be in [0, 1), got 1",
                       Error);
  CHECK_THROWS_WITH_AS(nn::GRU(0, 16),
                       "GRU: input_size and hidden_size must be positive, got 0 and 16", Error);
  CHECK_THROWS_AS(nn::LSTMCell(8, 16, {.num_layers = 2}), Error);
  CHECK_THROWS_WITH_AS(nn::lstm_cell(zeros({4, 8}), {}, zeros({64, 8}), zeros({60, 14})),
                       "lstm_cell: w_hh must be (4H, H), got [60, 14]", Error);
  CHECK_THROWS_WITH_AS(nn::sequence_mask(from_vector<int64_t>({1, 5}, {2}), 4),
                       "sequence_mask: lengths[1] = 5 is outside [0, 4]", Error);
}
