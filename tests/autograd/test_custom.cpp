// User-defined ops: a Function subclass and custom_gradient, recorded like built-ins.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::error_of;

namespace {

// y = x^3 with a backward written in differentiable ops, so second order works too.
class Cube : public Function {
 public:
  const char* name() const override { return "cube"; }
  Tensors forward(const Tensors& in) override {
    save_for_backward({in[0]});
    return {in[0] * in[0] * in[0]};
  }
  Tensors backward(const Tensors& douts) override {
    const Tensor& x = saved()[0];
    return {douts[0] * 3.0 * x * x};
  }
};

Tensor cube(const Tensor& x) { return apply_function(std::make_shared<Cube>(), {x})[0]; }

// A deliberately broken op: backward returns the wrong number of gradients.
class Broken : public Function {
 public:
  const char* name() const override { return "broken"; }
  Tensors forward(const Tensors& in) override { return {in[0] * 2.0}; }
  Tensors backward(const Tensors& douts) override { return {douts[0], douts[0]}; }
};

}  // namespace

TEST_CASE("custom Function: forward is not taped inside, the op is") {
  Tensor x = tensor({1, 2}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor y = cube(x);
  CHECK(tape.size() == 1);  // one node for cube, none for its inner multiplications
  CHECK(y.to_vector<double>() == std::vector<double>{1, 8});
  CHECK(tape.gradient(sum(y), x).to_vector<double>() == std::vector<double>{3, 12});
}

TEST_CASE("custom Function: gradcheck and second order") {
  Tensor x = tensor({0.5, -1.25, 2.0}, DType::f64);
  GradcheckResult r = gradcheck([](const Tensors& in) { return cube(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.message);
  GradcheckResult r2 = gradgradcheck([](const Tensors& in) { return cube(in[0]); }, {x});
  CHECK_MESSAGE(r2.ok, r2.message);
}

TEST_CASE("custom Function: a wrong backward is reported with the op's name") {
  Tensor x = tensor({1.0}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  // The former name still works (qualified: unqualified, ADL would also find std::apply).
  Tensor y = sum(encore::apply(std::make_shared<Broken>(), {x})[0]);
  try {
    tape.gradient(y, x);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("broken") == 0);
  }
}

TEST_CASE("custom_gradient: straight-through clipping") {
  // Forward clamps to [-1, 1]; backward passes the gradient straight through.
  auto clip_st = [](const Tensor& x) {
    return custom_gradient(
        "clip_straight_through", {x},
        [](const Tensors& in) { return Tensors{clamp(in[0], -1, 1)}; },
        [](const Tensors&, const Tensors&, const Tensors& g) { return Tensors{g[0]}; })[0];
  };
  Tensor x = tensor({-3, 0.5, 2}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor y = clip_st(x);
  CHECK(y.to_vector<double>() == std::vector<double>{-1, 0.5, 1});
  CHECK(tape.gradient(sum(y * 2.0), x).to_vector<double>() == std::vector<double>{2, 2, 2});
}

TEST_CASE("custom_gradient: a user's numerically stable log(1 + exp(x))") {
  auto stable_softplus = [](const Tensor& x) {
    return custom_gradient(
        "my_softplus", {x}, [](const Tensors& in) { return Tensors{softplus(in[0])}; },
        [](const Tensors& in, const Tensors&, const Tensors& g) {
          return Tensors{g[0] * sigmoid(in[0])};
        })[0];
  };
  Tensor x = tensor({-30, -1, 0, 2, 40}, DType::f64);
  GradcheckResult r = gradcheck([&](const Tensors& in) { return stable_softplus(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.message);
  GradcheckResult r2 =
      gradgradcheck([&](const Tensors& in) { return stable_softplus(in[0]); }, {x});
  CHECK_MESSAGE(r2.ok, r2.message);
}

TEST_CASE("gradcheck catches a wrong gradient") {
  auto wrong = [](const Tensor& x) {
    return custom_gradient(
        "wrong_square", {x}, [](const Tensors& in) { return Tensors{in[0] * in[0]}; },
        [](const Tensors& in, const Tensors&, const Tensors& g) {
          return Tensors{g[0] * in[0]};  // should be 2x
        })[0];
  };
  GradcheckResult r =
      gradcheck([&](const Tensors& in) { return wrong(in[0]); }, {tensor({1, 2}, DType::f64)});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("analytic") != std::string::npos);
  CHECK_THROWS_AS(gradcheck([](const Tensors& in) { return in[0] * 2.0; }, {tensor({1.0})}),
                  Error);  // f32 input
}

// ---------------------------------------------------------------------------------------------
// One saved list, handed to the vjp by the tape

namespace {

// y = exp(x) whose backward reads its output, as a user would write it.
Tensor my_exp(const Tensor& x) {
  return custom_gradient(
      "my_exp", {x}, [](const Tensors& in) { return Tensors{exp(in[0])}; },
      [](const Tensors&, const Tensors& out, const Tensors& g) {
        return Tensors{g[0] * out[0]};
      })[0];
}

}  // namespace

TEST_CASE("custom_gradient: an output modified in place before gradient() throws") {
  // The backward reads the output; before the tape saved outputs, zeroing it in place gave a
  // gradient of 0 without any error.
  Tensor x = tensor({0.0, 1.0}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor y = my_exp(x);
  Tensor loss = sum(y);
  y.fill_(0.0);
  std::string msg = error_of([&] { tape.gradient(loss, x); });
  INFO(msg);
  CHECK(msg.find("gradient: a tensor saved by 'my_exp' for the backward pass was modified in "
                 "place") == 0);
}

TEST_CASE("custom_gradient: an input modified in place before gradient() throws") {
  Tensor x = tensor({0.5, 2.0}, DType::f64);
  Tensor c = tensor({3.0, 4.0}, DType::f64);  // a constant input, read by the backward
  GradientTape tape;
  tape.watch(x);
  Tensor y = custom_gradient(
      "times_c", {x, c}, [](const Tensors& in) { return Tensors{in[0] * in[1]}; },
      [](const Tensors& in, const Tensors&, const Tensors& g) {
        return Tensors{g[0] * in[1], Tensor()};
      })[0];
  Tensor loss = sum(y);
  c.fill_(1.0);
  CHECK(error_of([&] { tape.gradient(loss, x); }).find("saved by 'times_c'") != std::string::npos);
}

TEST_CASE("custom_gradient: outputs left alone give the right gradient") {
  Tensor x = tensor({0.0, 1.0}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor g = tape.gradient(sum(my_exp(x)), x);
  CHECK(g.to_vector<double>() == std::vector<double>{1.0, std::exp(1.0)});
}

TEST_CASE("Function: the saved tensors come from the tape, per application") {
  // One Function object applied twice: each backward sees the tensors its own forward saved
  // (the object held only the last ones before the tape kept them).
  auto f = std::make_shared<Cube>();
  Tensor x1 = tensor({1.0, 2.0}, DType::f64), x2 = tensor({10.0, 20.0}, DType::f64);
  GradientTape tape;
  tape.watch(x1);
  tape.watch(x2);
  Tensor y1 = apply_function(f, {x1})[0];
  Tensor y2 = apply_function(f, {x2})[0];
  Tensors g = tape.gradient(sum(y1) + sum(y2), {x1, x2});
  CHECK(g[0].to_vector<double>() == std::vector<double>{3, 12});      // 3 x1^2
  CHECK(g[1].to_vector<double>() == std::vector<double>{300, 1200});  // 3 x2^2
}

TEST_CASE("Function: a saved tensor modified in place before gradient() throws") {
  Tensor x = tensor({1.0, 2.0}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor loss = sum(cube(x));
  x.fill_(5.0);
  CHECK(error_of([&] { tape.gradient(loss, x); }).find("saved by 'cube'") != std::string::npos);
}

TEST_CASE("record: a vjp taking (saved, douts) is handed the saved list") {
  // y = x * w, written the way the README tells users to write ops: the vjp captures no
  // tensors and reads x and w from what the tape hands it.
  auto scale = [](const Tensor& x, const Tensor& w) {
    Tensor y = raw::binary(raw::BinaryOp::mul, x, w);
    record("scale", {x, w}, {y},
           [](const Tensors& saved, const Tensors& g, NeedsGrad needs) {
             return Tensors{needs[0] ? g[0] * saved[1] : Tensor(),
                            needs[1] ? g[0] * saved[0] : Tensor()};
           },
           {x, w});
    return y;
  };
  Tensor x = tensor({1.0, -2.0, 3.0}, DType::f64), w = tensor({0.5, 4.0, -1.5}, DType::f64);
  GradcheckResult r = gradcheck([&](const Tensors& in) { return scale(in[0], in[1]); }, {x, w});
  CHECK_MESSAGE(r.ok, r.message);
  GradcheckResult r2 =
      gradgradcheck([&](const Tensors& in) { return scale(in[0], in[1]); }, {x, w});
  CHECK_MESSAGE(r2.ok, r2.message);
  {
    GradientTape tape;
    tape.watch(x);
    Tensor loss = sum(scale(x, w));
    w.fill_(0.0);
    CHECK(error_of([&] { tape.gradient(loss, x); }).find("saved by 'scale'") != std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// The tape checks the shape of what a backward returns

TEST_CASE("custom backward: a gradient of the wrong shape is reported naming the op") {
  Tensor x = tensor({1.0, 2.0}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor y = custom_gradient(
      "bad_shape", {x}, [](const Tensors& in) { return Tensors{in[0] * 2.0}; },
      [](const Tensors&, const Tensors&, const Tensors&) {
        return Tensors{ones({3}, DType::f64)};  // should be (2)
      })[0];
  CHECK_THROWS_WITH_AS(tape.gradient(sum(y), x),
                       "bad_shape: backward returned a gradient of shape [3] for input 0 of shape "
                       "[2]; a gradient has its input's shape (or a shape the input broadcasts to)",
                       Error);
}

TEST_CASE("custom backward: a broadcast-shaped gradient is still summed to the input") {
  // A (1, 2) input whose backward returns (3, 2): the tape reduces it, as for built-ins.
  Tensor x = from_vector<double>({1.0, 2.0}, {1, 2});
  GradientTape tape;
  tape.watch(x);
  Tensor y = custom_gradient(
      "spread", {x}, [](const Tensors& in) { return Tensors{in[0] * 1.0}; },
      [](const Tensors&, const Tensors&, const Tensors&) {
        return Tensors{ones({3, 2}, DType::f64)};
      })[0];
  Tensor g = tape.gradient(sum(y), x);
  CHECK(g.shape() == Shape{1, 2});
  CHECK(g.to_vector<double>() == std::vector<double>{3, 3});
}
