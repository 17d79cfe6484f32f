// nn/optim: every optimizer and variant against PyTorch (five steps on two f64 parameters, and
// the same in f32), state_dict round trips mid-run, skipped gradients, option and argument
// errors, gradient clipping against torch.nn.utils.clip_grad_norm_ / torch.clamp, and the
// learning-rate schedules against torch.optim.lr_scheduler.
// tests/golden/make_optim_fixtures.py (run once with torch) wrote tests/golden/
// optim_fixtures.json; this test needs only the JSON.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/nn.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::check_close;
using encore::testing::golden;
using encore::testing::json_tensor;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

const json& fixtures() { return golden("optim_fixtures.json"); }

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

/// An optimizer of `kind` with the options in `o` (encore's names; absent = encore's default,
/// which the fixtures check against torch's default).
std::unique_ptr<optim::Optimizer> make_optimizer(const std::string& kind, const json& o,
                                                 Tensors params) {
  auto num = [&](const char* k, double& v) {
    if (o.contains(k)) v = o.at(k).get<double>();
  };
  auto flag = [&](const char* k, bool& v) {
    if (o.contains(k)) v = o.at(k).get<bool>();
  };
  if (kind == "SGD") {
    optim::SGDOptions s;
    num("lr", s.lr), num("momentum", s.momentum), num("dampening", s.dampening);
    num("weight_decay", s.weight_decay), flag("nesterov", s.nesterov);
    return std::make_unique<optim::SGD>(std::move(params), s);
  }
  if (kind == "Adam") {
    optim::AdamOptions s;
    num("lr", s.lr), num("beta1", s.beta1), num("beta2", s.beta2), num("eps", s.eps);
    num("weight_decay", s.weight_decay), flag("amsgrad", s.amsgrad);
    return std::make_unique<optim::Adam>(std::move(params), s);
  }
  if (kind == "AdamW") {
    optim::AdamWOptions s;
    num("lr", s.lr), num("beta1", s.beta1), num("beta2", s.beta2), num("eps", s.eps);
    num("weight_decay", s.weight_decay), flag("amsgrad", s.amsgrad);
    return std::make_unique<optim::AdamW>(std::move(params), s);
  }
  if (kind == "RMSProp") {
    optim::RMSPropOptions s;
    num("lr", s.lr), num("alpha", s.alpha), num("eps", s.eps), num("momentum", s.momentum);
    num("weight_decay", s.weight_decay), flag("centered", s.centered);
    return std::make_unique<optim::RMSProp>(std::move(params), s);
  }
  if (kind == "Adagrad") {
    optim::AdagradOptions s;
    num("lr", s.lr), num("lr_decay", s.lr_decay), num("weight_decay", s.weight_decay);
    num("initial_accumulator_value", s.initial_accumulator_value), num("eps", s.eps);
    return std::make_unique<optim::Adagrad>(std::move(params), s);
  }
  FAIL("unknown optimizer ", kind);
  return nullptr;
}

Tensors initial_params(DType dt) {
  Tensors ps;
  for (const json& p : fixtures().at("optimizers").at("init"))
    ps.push_back(json_tensor(p, dt).set_trainable());
  return ps;
}

/// The gradients of step `s` of a case (undefined for the second parameter at skipped steps).
Tensors step_grads(const json& c, int s, DType dt) {
  Tensors gs;
  for (const json& g : fixtures().at("optimizers").at("grads").at(s))
    gs.push_back(json_tensor(g, dt));
  for (int k : c.at("skip"))
    if (k == s) gs[1] = Tensor();
  return gs;
}

void check_step(const std::string& where, const json& c, int s, const Tensors& ps, double atol,
                double rtol) {
  for (size_t i = 0; i < ps.size(); ++i)
    check_close(where + ": step " + std::to_string(s + 1) + ", parameter " + std::to_string(i),
                ps[i], json_tensor(c.at("after").at(s).at(i)), atol, rtol);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Golden update rules

TEST_CASE("optim: every optimizer matches PyTorch over five f64 steps") {
  const json& cases = fixtures().at("optimizers").at("cases");
  REQUIRE(cases.size() >= 30);
  for (const auto& [name, c] : cases.items()) {
    Tensors ps = initial_params(DType::f64);
    auto opt = make_optimizer(c.at("optimizer"), c.at("options"), ps);
    CHECK(opt->name() == c.at("optimizer").get<std::string>());
    for (int s = 0; s < 5; ++s) {
      opt->step(step_grads(c, s, DType::f64));
      check_step(name, c, s, ps, 1e-15, 1e-12);
    }
    CHECK(opt->steps() == 5);
  }
}

TEST_CASE("optim: every optimizer matches PyTorch in f32") {
  for (const auto& [name, c] : fixtures().at("optimizers").at("cases").items()) {
    Tensors ps = initial_params(DType::f32);
    auto opt = make_optimizer(c.at("optimizer"), c.at("options"), ps);
    for (int s = 0; s < 5; ++s) {
      opt->step(step_grads(c, s, DType::f32));
      for (const Tensor& p : ps) CHECK(p.dtype() == DType::f32);
      check_step(name + " (f32)", c, s, ps, 2e-6, 2e-5);
    }
  }
}

TEST_CASE("optim: AdamW's designated-initialiser options keep weight_decay = 0.01") {
  // torch.optim.AdamW(lr=0.01) decays by 0.01; {.lr = 0.01} must mean the same here.
  const json& c = fixtures().at("optimizers").at("cases").at("adamw");
  Tensors ps = initial_params(DType::f64);
  optim::AdamW opt(ps, {.lr = 0.01});
  for (int s = 0; s < 5; ++s) {
    opt.step(step_grads(c, s, DType::f64));
    check_step("AdamW {.lr = 0.01}", c, s, ps, 1e-15, 1e-12);
  }
  CHECK(optim::AdamWOptions{}.weight_decay == 0.01);
  CHECK(optim::AdamOptions{}.weight_decay == 0);
}

// ---------------------------------------------------------------------------------------------
// State

TEST_CASE("optim: state_dict / load_state_dict mid-run continues identically") {
  for (const auto& item : fixtures().at("optimizers").at("cases").items()) {
    const std::string& name = item.key();
    const auto& c = item.value();
    INFO(name);
    Tensors ps = initial_params(DType::f64);
    auto a = make_optimizer(c.at("optimizer"), c.at("options"), ps);
    for (int s = 0; s < 3; ++s) a->step(step_grads(c, s, DType::f64));
    std::map<std::string, Tensor> state = a->state_dict();
    REQUIRE(state.count("step"));
    CHECK(state.at("step").item() == 3);
    CHECK(state.at("lr").item() == a->lr());

    // A fresh optimizer over copies of the parameters, resumed from the state.
    Tensors qs;
    for (const Tensor& p : ps) qs.push_back(p.clone().set_trainable());
    auto b = make_optimizer(c.at("optimizer"), c.at("options"), qs);
    b->load_state_dict(state);
    CHECK(b->steps() == 3);
    // The state is a copy: stepping a changes nothing in it.
    for (int s = 3; s < 5; ++s) {
      a->step(step_grads(c, s, DType::f64));
      b->step(step_grads(c, s, DType::f64));
      check_step(name + " (resumed)", c, s, qs, 1e-15, 1e-12);
      for (size_t i = 0; i < ps.size(); ++i) CHECK(same_values(ps[i], qs[i]));
    }
    for (const auto& entry : b->state_dict()) {
      const std::string& k = entry.first;  // not bound: clang 14 cannot capture bindings
      const Tensor& t = entry.second;
      if (k != "step") CHECK_MESSAGE(same_values(t, a->state_dict().at(k)), k);
    }
  }
}

TEST_CASE("optim: state_dict names slots per optimizer, step counts are f64") {
  Tensors ps = initial_params(DType::f32);
  optim::Adam adam(ps, {.amsgrad = true});
  adam.step({ones({2, 3}), Tensor()});
  auto st = adam.state_dict();
  std::vector<std::string> keys;
  for (const auto& [k, t] : st) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq", "0.step",
                                         "hyper.amsgrad", "hyper.beta1", "hyper.beta2", "hyper.eps",
                                         "hyper.weight_decay", "lr", "step"});
  CHECK(st.at("hyper.amsgrad").item() == 1.0);
  CHECK(st.at("hyper.beta2").item() == 0.999);
  CHECK(st.at("0.step").dtype() == DType::f64);
  CHECK(st.at("0.step").dim() == 0);
  CHECK(st.at("0.exp_avg").dtype() == DType::f32);
  // m = (1 - beta1) g after one step with g = 1; v = (1 - beta2) g^2 (1 - beta2 rounded in f32).
  check_close("exp_avg", st.at("0.exp_avg"), full({2, 3}, 0.1, DType::f64), 0, 1e-6);
  check_close("exp_avg_sq", st.at("0.exp_avg_sq"), full({2, 3}, 0.001, DType::f64), 0, 1e-4);

  Tensors qs = initial_params(DType::f64);
  optim::SGD plain(qs, {.lr = 0.1});
  plain.step({ones({2, 3}, DType::f64), ones({4}, DType::f64)});
  CHECK(plain.state_dict().size() == 6);  // "step", "lr" and the 4 options
  optim::SGD mom(qs, {.lr = 0.1, .momentum = 0.5});
  mom.step({ones({2, 3}, DType::f64), ones({4}, DType::f64)});
  CHECK(mom.state_dict().count("1.momentum_buffer") == 1);
  optim::Adagrad ada(qs, {.initial_accumulator_value = 0.25});
  ada.step({Tensor(), full({4}, 2.0, DType::f64)});
  auto sa = ada.state_dict();
  CHECK(sa.count("0.sum") == 0);
  check_close("Adagrad sum", sa.at("1.sum"), full({4}, 4.25, DType::f64), 0, 0);
  CHECK(sa.at("1.step").item() == 1);
}

TEST_CASE("optim: load_state_dict checks names, shapes and counters before changing anything") {
  Tensors ps = initial_params(DType::f64);
  optim::Adam opt(ps, {.lr = 0.01});
  opt.step({ones({2, 3}, DType::f64), ones({4}, DType::f64)});
  const auto good = opt.state_dict();
  auto with = [&](const std::string& k, const Tensor& t) {
    auto s = good;
    s[k] = t;
    return s;
  };
  auto without = [&](const std::string& k) {
    auto s = good;
    s.erase(k);
    return s;
  };
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("0.exp_avg", zeros({3, 2}, DType::f64))),
                       "Adam.load_state_dict: state '0.exp_avg' has shape [3, 2] but parameter "
                       "0 has shape [2, 3]",
                       Error);
  // A 0-d tensor for a shaped slot used to be accepted (and read out of bounds).
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("1.exp_avg_sq", scalar(1.0, DType::f64))),
                       "Adam.load_state_dict: state '1.exp_avg_sq' has shape [] but parameter "
                       "1 has shape [4]",
                       Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("0.momentum_buffer", zeros({2, 3}, DType::f64))),
                       "Adam.load_state_dict: unexpected key '0.momentum_buffer': Adam (with "
                       "these options) keeps no 'momentum_buffer' state",
                       Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("0.max_exp_avg_sq", zeros({2, 3}, DType::f64))),
                       doctest::Contains("keeps no 'max_exp_avg_sq' state"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("2.exp_avg", zeros({4}, DType::f64))),
                       "Adam.load_state_dict: key '2.exp_avg' names parameter 2 but there are 2",
                       Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("x.exp_avg", zeros({4}, DType::f64))),
                       "Adam.load_state_dict: unexpected key 'x.exp_avg'", Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with(" 1.exp_avg", zeros({4}, DType::f64))),
                       "Adam.load_state_dict: unexpected key ' 1.exp_avg'", Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("bogus", zeros({4}, DType::f64))),
                       "Adam.load_state_dict: unexpected key 'bogus'", Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("0.step", scalar(-1.0, DType::f64))),
                       "Adam.load_state_dict: '0.step' must be a non-negative integer, got -1",
                       Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("0.step", zeros({2}, DType::f64))),
                       "Adam.load_state_dict: '0.step' must hold one number", Error);
  CHECK_THROWS_WITH_AS(
      opt.load_state_dict(with("step", scalar(std::numeric_limits<double>::quiet_NaN()))),
      "Adam.load_state_dict: 'step' must be a non-negative integer, got nan", Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("step", scalar(2.5))),
                       "Adam.load_state_dict: 'step' must be a non-negative integer, got 2.5",
                       Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("lr", scalar(-0.5))),
                       "Adam.load_state_dict: invalid learning rate: -0.5", Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(without("step")),
                       "Adam.load_state_dict: the state has no 'step'", Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(without("lr")),
                       "Adam.load_state_dict: the state has no 'lr'", Error);
  // Nothing changed.
  CHECK(opt.steps() == 1);
  CHECK(opt.lr() == 0.01);
  for (const auto& entry : opt.state_dict()) {
    const std::string& k = entry.first;  // not bound: clang 14 cannot capture bindings
    const Tensor& t = entry.second;
    CHECK_MESSAGE(same_values(t, good.at(k)), k);
  }

  // Loading restores lr and the step counter; f32 state loads into f64 parameters.
  auto s32 = good;
  for (auto& [k, t] : s32)
    if (k.find('.') != std::string::npos && t.dim() > 0) t = t.to(DType::f32);
  s32["lr"] = scalar(0.125, DType::f64);
  s32["step"] = scalar(7, DType::f64);
  opt.load_state_dict(s32);
  CHECK(opt.lr() == 0.125);
  CHECK(opt.steps() == 7);
  CHECK(opt.state_dict().at("0.exp_avg").dtype() == DType::f64);
}

TEST_CASE("optim: a skipped gradient leaves its parameter and state unchanged") {
  for (const char* kind : {"SGD", "Adam", "AdamW", "RMSProp", "Adagrad"}) {
    INFO(kind);
    Tensors ps = initial_params(DType::f64);
    json o = {{"lr", 0.1}};
    if (std::string(kind) == "SGD") o["momentum"] = 0.9;
    if (std::string(kind) == "RMSProp") o["centered"] = true, o["momentum"] = 0.5;
    auto opt = make_optimizer(kind, o, ps);
    const json& c = fixtures().at("optimizers").at("cases").at("sgd_plain");  // skip: none
    opt->step(step_grads(c, 0, DType::f64));
    const std::vector<double> before = ps[1].to_vector<double>();
    const uint64_t version = ps[1].version();
    auto state = opt->state_dict();
    opt->step({step_grads(c, 1, DType::f64)[0], Tensor()});
    CHECK(ps[1].to_vector<double>() == before);
    CHECK(ps[1].version() == version);
    CHECK(!same_values(ps[0], json_tensor(fixtures().at("optimizers").at("init").at(0))));
    for (const auto& entry : opt->state_dict()) {
      const std::string& k = entry.first;  // not bound: clang 14 cannot capture bindings
      const Tensor& t = entry.second;
      if (k.rfind("1.", 0) == 0) CHECK_MESSAGE(same_values(t, state.at(k)), k);
    }
    CHECK(opt->steps() == 2);
  }
  // All gradients undefined: nothing moves, the counter still advances.
  Tensors ps = initial_params(DType::f64);
  optim::Adam opt(ps);
  opt.step({Tensor(), Tensor()});
  CHECK(same_values(ps[0], json_tensor(fixtures().at("optimizers").at("init").at(0))));
  CHECK(opt.state_dict().size() == 7);  // "step", "lr" and the 5 options: no slots
  CHECK(opt.steps() == 1);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("optim: invalid options throw naming the value") {
  Tensors ps = initial_params(DType::f64);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(optim::Adam(ps, {.beta1 = 1.5}), "Adam: invalid beta1: 1.5", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, {.beta2 = 1}), "Adam: invalid beta2: 1", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, {.beta1 = -0.1}), "Adam: invalid beta1: -0.1", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, {.eps = -1e-8}), "Adam: invalid eps: -1e-08", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, {.lr = -0.001}), "Adam: invalid learning rate: -0.001",
                       Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, {.lr = nan}), "Adam: invalid learning rate: nan", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, {.weight_decay = inf}), "Adam: invalid weight_decay: inf",
                       Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(ps, {.beta2 = 2}), "AdamW: invalid beta2: 2", Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(ps, {.weight_decay = -0.01}),
                       "AdamW: invalid weight_decay: -0.01", Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, {.lr = -1}), "SGD: invalid learning rate: -1", Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, {.momentum = -0.5}), "SGD: invalid momentum: -0.5", Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, {.momentum = nan}), "SGD: invalid momentum: nan", Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, {.dampening = 1.5}), "SGD: invalid dampening: 1.5", Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, {.weight_decay = -2}), "SGD: invalid weight_decay: -2",
                       Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, {.nesterov = true}),
                       "SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got "
                       "momentum 0 and dampening 0",
                       Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                       "SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got "
                       "momentum 0.9 and dampening 0.1",
                       Error);
  CHECK_THROWS_WITH_AS(optim::RMSProp(ps, {.alpha = 1.5}), "RMSProp: invalid alpha: 1.5", Error);
  CHECK_THROWS_WITH_AS(optim::RMSProp(ps, {.eps = -1}), "RMSProp: invalid eps: -1", Error);
  CHECK_THROWS_WITH_AS(optim::RMSProp(ps, {.momentum = -0.9}), "RMSProp: invalid momentum: -0.9",
                       Error);
  CHECK_THROWS_WITH_AS(optim::RMSProp(ps, {.weight_decay = -1}),
                       "RMSProp: invalid weight_decay: -1", Error);
  CHECK_THROWS_WITH_AS(optim::Adagrad(ps, {.lr_decay = -0.1}), "Adagrad: invalid lr_decay: -0.1",
                       Error);
  CHECK_THROWS_WITH_AS(optim::Adagrad(ps, {.weight_decay = -0.1}),
                       "Adagrad: invalid weight_decay: -0.1", Error);
  CHECK_THROWS_WITH_AS(optim::Adagrad(ps, {.initial_accumulator_value = -1}),
                       "Adagrad: invalid initial_accumulator_value: -1", Error);
  CHECK_THROWS_WITH_AS(optim::Adagrad(ps, {.eps = nan}), "Adagrad: invalid eps: nan", Error);

  optim::Adam opt(ps);
  CHECK_THROWS_WITH_AS(opt.set_lr(-1), "Adam: invalid learning rate: -1", Error);
  CHECK_THROWS_WITH_AS(opt.set_lr(inf), "Adam: invalid learning rate: inf", Error);
  CHECK(opt.lr() == 1e-3);
  opt.set_lr(0);
  CHECK(opt.lr() == 0);
  // Boundary values torch accepts are accepted.
  CHECK_NOTHROW(optim::Adam(ps, {.beta1 = 0, .beta2 = 0, .eps = 0}));
  CHECK_NOTHROW(optim::SGD(ps, {.lr = 0, .momentum = 0.9, .dampening = 1}));
  CHECK_NOTHROW(optim::RMSProp(ps, {.alpha = 0, .centered = true}));
}

TEST_CASE("optim: invalid parameters throw") {
  Tensor p = zeros({2, 3}, DType::f64);
  CHECK_THROWS_WITH_AS(optim::SGD({p, Tensor()}), "SGD: parameter 1 is undefined", Error);
  CHECK_THROWS_WITH_AS(optim::SGD({zeros({3}, DType::i64)}),
                       "SGD: parameter 0 (shape [3]) has dtype i64; only f32/f64 can be optimized",
                       Error);
  Tensor t = zeros({3, 2}, DType::f64);
  CHECK_THROWS_WITH_AS(optim::Adam({transpose(t, 0, 1)}),
                       "Adam: parameter 0 (shape [2, 3]) is not contiguous; optimizers update "
                       "parameters in place",
                       Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p, zeros({1}), p}),
                       "Adam: parameters 0 and 2 (shape [2, 3]) share storage; pass each "
                       "parameter once",
                       Error);
  // An empty list (a model whose layers never registered their tensors) trains nothing.
  CHECK_THROWS_WITH_AS(optim::Adam(Tensors{}),
                       "Adam: the parameter list is empty, so nothing would be trained; pass "
                       "model->parameters() after the layers have registered their tensors with "
                       "register_parameter() (or register_module() for submodules)",
                       Error);
  CHECK_THROWS_AS(optim::SGD(Tensors{}), Error);
}

TEST_CASE("optim: a wrong number or shape of gradients throws and changes nothing") {
  Tensors ps = initial_params(DType::f64);
  optim::Adam opt(ps, {.lr = 0.1});
  auto before = opt.state_dict();
  const std::vector<double> p0 = ps[0].to_vector<double>();
  CHECK_THROWS_WITH_AS(opt.step({ones({2, 3}, DType::f64)}),
                       "Adam: step got 1 gradients for 2 parameters", Error);
  CHECK_THROWS_WITH_AS(opt.step({ones({2, 3}, DType::f64), ones({4}), ones({1})}),
                       "Adam: step got 3 gradients for 2 parameters", Error);
  // The first gradient is fine, the second is not: the first parameter must not move.
  CHECK_THROWS_WITH_AS(opt.step({ones({2, 3}, DType::f64), ones({2, 2}, DType::f64)}),
                       "Adam: gradient 1 has shape [2, 2] but its parameter has shape [4]", Error);
  CHECK_THROWS_WITH_AS(opt.step({ones({3, 2}, DType::f64), Tensor()}),
                       "Adam: gradient 0 has shape [3, 2] but its parameter has shape [2, 3]",
                       Error);
  CHECK(ps[0].to_vector<double>() == p0);
  CHECK(opt.steps() == 0);
  CHECK(opt.state_dict().size() == before.size());
  // A gradient of another dtype is refused, not converted: it is a mistake upstream.
  CHECK_THROWS_WITH_AS(opt.step({ones({2, 3}, DType::f32), Tensor()}),
                       "Adam: gradient 0 has dtype f32 but its parameter (shape [2, 3]) has dtype "
                       "f64",
                       Error);
  CHECK_THROWS_WITH_AS(opt.step({ones({2, 3}, DType::i64), Tensor()}),
                       doctest::Contains("gradient 0 has dtype i64"), Error);
  CHECK(ps[0].to_vector<double>() == p0);
  CHECK(opt.steps() == 0);
  opt.step({ones({2, 3}, DType::f64), Tensor()});
  // First Adam step moves each element by lr * sign(g) (up to eps): p - 0.1.
  std::vector<double> p1 = ps[0].to_vector<double>();
  for (size_t i = 0; i < p0.size(); ++i) CHECK(p1[i] == doctest::Approx(p0[i] - 0.1).epsilon(1e-9));
}

TEST_CASE("optim: stepping with tape gradients; the update bumps the version counter") {
  // Minimise f(w) = sum((w - c)^2) with SGD lr 0.25: w' = w - 0.5 (w - c) halves the distance.
  Tensor w = from_vector<double>({4, -2, 0}, {3}).set_trainable();
  Tensor c = from_vector<double>({1, 1, 1}, {3});
  optim::SGD opt({w}, {.lr = 0.25});
  for (int s = 0; s < 3; ++s) {
    const uint64_t v = w.version();
    GradientTape tape;
    Tensor f = sum(square(w - c));
    opt.step(tape.gradient(f, Tensors{w}));
    CHECK(w.version() == v + 1);
  }
  // distance (3, -3, -1) / 8
  CHECK(w.to_vector<double>() == std::vector<double>{1 + 3.0 / 8, 1 - 3.0 / 8, 1 - 1.0 / 8});

  // A step between a forward and its backward is detected by the tape.
  GradientTape tape;
  Tensor f = sum(square(w) * w);
  opt.step({ones({3}, DType::f64)});
  CHECK_THROWS_AS(tape.gradient(f, Tensors{w}), Error);
}

TEST_CASE("optim: a schedule drives set_lr between steps") {
  // Plain SGD: p_k = p_{k-1} - lr_k g_k with lr_k from StepDecay, by hand.
  Tensor p = from_vector<double>({1.0}, {1});
  optim::SGD opt({p}, {.lr = 1});
  optim::StepDecay sched{.base_lr = 0.5, .step_size = 2, .gamma = 0.5};
  const double lrs[] = {0.5, 0.5, 0.25, 0.25, 0.125};
  double want = 1.0;
  for (int s = 0; s < 5; ++s) {
    opt.set_lr(sched(s));
    CHECK(opt.lr() == lrs[s]);
    opt.step({full({1}, double(s + 1), DType::f64)});
    want -= lrs[s] * (s + 1);
    CHECK(p.item() == want);
  }
}

// ---------------------------------------------------------------------------------------------
// Clipping

TEST_CASE("optim: clip_by_global_norm matches the exact rule and torch's clip_grad_norm_") {
  const json& cl = fixtures().at("clip");
  Tensors grads;
  for (const json& g : cl.at("grads")) grads.push_back(json_tensor(g));
  for (const json& c : cl.at("by_norm")) {
    const double max_norm = c.at("max_norm");
    INFO("max_norm " << max_norm);
    double norm = -1;
    Tensors out = optim::clip_by_global_norm(grads, max_norm, &norm);
    CHECK(norm == doctest::Approx(c.at("norm").get<double>()).epsilon(1e-14));
    CHECK(norm == doctest::Approx(c.at("torch_norm").get<double>()).epsilon(1e-14));
    REQUIRE(out.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      check_close("exact", out[i], json_tensor(c.at("clipped").at(i)), 0, 1e-14);
      // torch divides by norm + 1e-6.
      check_close("torch", out[i], json_tensor(c.at("torch_clipped").at(i)), 0, 2e-6 / norm);
    }
    if (max_norm >= norm)
      for (size_t i = 0; i < 2; ++i) CHECK(same_values(out[i], grads[i]));
    // The inputs are untouched.
    CHECK(same_values(grads[0], json_tensor(cl.at("grads").at(0))));
  }
  // By hand: (3, 4) and an undefined gradient: norm 5, clipped to norm 1 -> (0.6, 0.8).
  Tensors hand = {from_vector<double>({3, 4}, {2}), Tensor()};
  double norm = 0;
  Tensors out = optim::clip_by_global_norm(hand, 1.0, &norm);
  CHECK(norm == 5);
  CHECK(!out[1].defined());
  check_close("hand", out[0], from_vector<double>({0.6, 0.8}, {2}), 0, 1e-15);
  // f32 gradients stay f32; the norm is summed in f64.
  Tensors f32 = optim::clip_by_global_norm({full({100}, 0.1f, DType::f32)}, 0.5, &norm);
  CHECK(f32[0].dtype() == DType::f32);
  CHECK(norm == doctest::Approx(1.0).epsilon(1e-6));
  check_close("f32", f32[0], full({100}, 0.05, DType::f64), 1e-8, 0);
  CHECK_THROWS_WITH_AS(optim::clip_by_global_norm(hand, 0),
                       "clip_by_global_norm: max_norm must be positive and finite, got 0", Error);
  CHECK_THROWS_WITH_AS(optim::clip_by_global_norm(hand, -1),
                       "clip_by_global_norm: max_norm must be positive and finite, got -1", Error);
}

TEST_CASE("optim: clip_by_value matches torch.clamp") {
  const json& cl = fixtures().at("clip");
  Tensors grads;
  for (const json& g : cl.at("grads")) grads.push_back(json_tensor(g));
  for (const json& c : cl.at("by_value")) {
    Tensors out = optim::clip_by_value(grads, c.at("limit").get<double>());
    for (size_t i = 0; i < 2; ++i)
      check_close("clamp", out[i], json_tensor(c.at("clipped").at(i)), 0, 0);
  }
  Tensors out = optim::clip_by_value({Tensor(), from_vector<double>({-3, 0.5, 2}, {3})}, 1);
  CHECK(!out[0].defined());
  CHECK(out[1].to_vector<double>() == std::vector<double>{-1, 0.5, 1});
  CHECK_THROWS_WITH_AS(optim::clip_by_value(out, 0), "clip_by_value: limit must be positive, got 0",
                       Error);
}

// ---------------------------------------------------------------------------------------------
// Schedules

TEST_CASE("optim: schedules match torch.optim.lr_scheduler") {
  const json& sc = fixtures().at("schedules");
  auto check_seq = [](const std::string& what, const json& lrs, auto&& f) {
    for (size_t s = 0; s < lrs.size(); ++s) {
      INFO(what << " step " << s);
      CHECK(f(int64_t(s)) == doctest::Approx(lrs.at(s).get<double>()).epsilon(1e-12));
    }
  };
  {
    const json& c = sc.at("step_decay");
    optim::StepDecay f{
        .base_lr = c.at("base_lr"), .step_size = c.at("step_size"), .gamma = c.at("gamma")};
    check_seq("StepDecay", c.at("lr"), f);
  }
  {
    const json& c = sc.at("exponential_decay");
    optim::ExponentialDecay f{.base_lr = c.at("base_lr"), .gamma = c.at("gamma")};
    check_seq("ExponentialDecay", c.at("lr"), f);
  }
  for (const char* name : {"cosine_decay", "cosine_decay_to_zero"}) {
    const json& c = sc.at(name);
    optim::CosineDecay f{
        .base_lr = c.at("base_lr"), .total_steps = c.at("total_steps"), .min_lr = c.at("min_lr")};
    check_seq(name, c.at("lr"), f);
  }
  {
    const json& c = sc.at("linear_warmup_constant");
    const double base = c.at("base_lr");
    optim::LinearWarmup f{.warmup_steps = c.at("warmup_steps"),
                          .after = [base](int64_t) { return base; }};
    check_seq("LinearWarmup constant", c.at("lr"), f);
  }
  {
    const json& c = sc.at("linear_warmup_cosine");
    optim::LinearWarmup f{.warmup_steps = c.at("warmup_steps"),
                          .after = optim::CosineDecay{.base_lr = c.at("base_lr"),
                                                      .total_steps = c.at("total_steps"),
                                                      .min_lr = c.at("min_lr")}};
    check_seq("LinearWarmup cosine", c.at("lr"), f);
  }
}

TEST_CASE("optim: schedule edge cases by hand") {
  optim::StepDecay step{.base_lr = 1, .step_size = 3, .gamma = 0.5};
  CHECK(step(-5) == 1);
  CHECK(step(2) == 1);
  CHECK(step(3) == 0.5);
  CHECK(step(9) == 0.125);
  optim::ExponentialDecay ex{.base_lr = 2, .gamma = 0.5};
  CHECK(ex(-1) == 2);
  CHECK(ex(3) == 0.25);
  optim::CosineDecay cos{.base_lr = 1, .total_steps = 4, .min_lr = 0.2};
  CHECK(cos(0) == 1);
  CHECK(cos(2) == doctest::Approx(0.6).epsilon(1e-15));  // halfway: the mean
  CHECK(cos(4) == 0.2);
  CHECK(cos(100) == 0.2);  // stays at min_lr (torch's would rise again)
  CHECK(cos(-3) == 1);
  optim::LinearWarmup none{.warmup_steps = 0, .after = ex};
  CHECK(none(0) == 2);
  CHECK(none(-1) == 2);
  CHECK(none(2) == 0.5);
  optim::LinearWarmup warm{.warmup_steps = 4, .after = ex};
  CHECK(warm(-2) == 0.5);  // a negative step counts as 0
  CHECK(warm(0) == 0.5);
  CHECK(warm(3) == 2);
  CHECK(warm(4) == 2);
  CHECK(warm(5) == 1);
  CHECK_THROWS_WITH_AS(optim::StepDecay{.step_size = 0}(1),
                       "StepDecay: step_size must be positive, got 0", Error);
  CHECK_THROWS_WITH_AS(optim::CosineDecay{.total_steps = -1}(1),
                       "CosineDecay: total_steps must be positive, got -1", Error);
  CHECK_THROWS_WITH_AS(optim::LinearWarmup{.warmup_steps = 3}(1),
                       "LinearWarmup: no schedule to follow the warm-up", Error);
  CHECK_THROWS_WITH_AS((optim::LinearWarmup{.warmup_steps = -1, .after = ex}(1)),
                       "LinearWarmup: warmup_steps must be >= 0, got -1", Error);
}

TEST_CASE("optim: a state saved with other options is refused, naming each difference") {
  Tensors ps = initial_params(DType::f64);
  optim::SGD a(ps, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  a.step({ones({2, 3}, DType::f64), ones({4}, DType::f64)});
  std::map<std::string, Tensor> state = a.state_dict();
  CHECK(state.at("hyper.momentum").item() == 0.9);

  Tensors qs = initial_params(DType::f64);
  optim::SGD b(qs, {.lr = 0.1, .momentum = 0.5});
  CHECK_THROWS_WITH_AS(b.load_state_dict(state),
                       "SGD.load_state_dict: the state was saved with other options (momentum = "
                       "0.9 in the state but 0.5 here, nesterov = 1 in the state but 0 here); "
                       "build the optimizer with the saved options, or erase the 'hyper.' keys "
                       "to load it anyway",
                       Error);
  CHECK(b.steps() == 0);  // nothing was loaded

  // The same options load; so does a state without stored options (older checkpoints).
  optim::SGD c(qs, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  c.load_state_dict(state);
  CHECK(c.steps() == 1);
  for (auto it = state.begin(); it != state.end();)
    it = it->first.rfind("hyper.", 0) == 0 ? state.erase(it) : std::next(it);
  b.load_state_dict(state);
  CHECK(b.steps() == 1);

  // An option this optimizer does not have.
  state.emplace("hyper.beta1", scalar(0.9, DType::f64));
  CHECK_THROWS_WITH_AS(b.load_state_dict(state),
                       "SGD.load_state_dict: unexpected key 'hyper.beta1': SGD has no option "
                       "'beta1'",
                       Error);
}
