// Tape semantics: accumulation, unconnected sources, persistence, nesting, pausing,
// per-thread tapes, version checks, anomaly mode, memory release and error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <thread>

#include "autograd/autograd.h"
#include "tests/support/support.h"

using namespace encore;
using encore::testing::error_of;

namespace {
std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
}  // namespace

TEST_CASE("tape: a tensor used twice accumulates its gradient") {
  Tensor x = tensor({1, 2, 3}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor y = sum(x * x + x);  // dy/dx = 2x + 1
  Tensor g = tape.gradient(y, x);
  CHECK(values(g) == std::vector<double>{3, 5, 7});
}

TEST_CASE("tape: trainable tensors are watched automatically, unless switched off") {
  Tensor w = tensor({2.0}, DType::f64).set_trainable();
  {
    GradientTape tape;
    Tensor y = sum(w * w);
    CHECK(tape.gradient(y, w).item() == 4.0);
  }
  {
    GradientTape tape({.watch_accessed_variables = false});
    Tensor y = sum(w * w);
    CHECK(tape.size() == 0);
    std::string msg = error_of([&] { tape.gradient(y, w); });
    CHECK(msg.find("was not computed on this tape") != std::string::npos);
    // The hint names both ways a tensor gets watched.
    CHECK(msg.find("register_parameter()") != std::string::npos);
    CHECK(msg.find("tape.watch(t)") != std::string::npos);
  }
}

TEST_CASE("tape: unconnected sources get zeros, or undefined on request") {
  Tensor x = tensor({1, 2}, DType::f64), z = tensor({5, 6, 7}, DType::f64);
  {
    GradientTape tape;
    tape.watch(x);
    tape.watch(z);
    Tensors g = tape.gradient(sum(x * 3.0), {x, z});
    CHECK(values(g[0]) == std::vector<double>{3, 3});
    CHECK(values(g[1]) == std::vector<double>{0, 0, 0});
  }
  {
    GradientTape tape;
    tape.watch(x);
    tape.watch(z);
    Tensors g = tape.gradient(sum(x * 3.0), {x, z}, {.unconnected_zeros = false});
    CHECK(g[0].defined());
    CHECK_FALSE(g[1].defined());
  }
}

TEST_CASE("tape: non-persistent tapes answer once, persistent ones repeatedly") {
  Tensor x = tensor({3}, DType::f64);
  {
    GradientTape tape;
    tape.watch(x);
    Tensor y = sum(x * x);
    CHECK(tape.gradient(y, x).item() == 6.0);
    std::string msg = error_of([&] { tape.gradient(y, x); });
    CHECK(msg.find("gradient: this non-persistent GradientTape") == 0);
  }
  {
    GradientTape tape(true);
    tape.watch(x);
    Tensor y = sum(x * x);
    Tensor z = sum(exp(x));
    CHECK(tape.gradient(y, x).item() == 6.0);
    CHECK(tape.gradient(y, x).item() == 6.0);
    CHECK(tape.gradient(z, x).item() == doctest::Approx(std::exp(3.0)));
  }
}

TEST_CASE("tape: nested tapes give gradients of gradients") {
  Tensor x = tensor({2.0}, DType::f64);
  GradientTape outer;
  outer.watch(x);
  Tensor dy;
  {
    GradientTape inner;
    inner.watch(x);
    Tensor y = sum(x * x * x);  // y = x^3
    dy = inner.gradient(y, x);  // 3x^2 = 12, recorded by the outer tape
  }
  CHECK(dy.item() == 12.0);
  Tensor d2 = outer.gradient(sum(dy), x);  // 6x = 12
  CHECK(d2.item() == 12.0);
}

TEST_CASE("tape: third order through three tapes") {
  Tensor x = tensor({1.5}, DType::f64);
  GradientTape t3;
  t3.watch(x);
  Tensor d2;
  {
    GradientTape t2;
    t2.watch(x);
    Tensor d1;
    {
      GradientTape t1;
      t1.watch(x);
      d1 = t1.gradient(sum(exp(x * 2.0)), x);  // 2 e^{2x}
    }
    d2 = t2.gradient(sum(d1), x);  // 4 e^{2x}
  }
  Tensor d3 = t3.gradient(sum(d2), x);  // 8 e^{2x}
  CHECK(d3.item() == doctest::Approx(8 * std::exp(3.0)).epsilon(1e-12));
}

TEST_CASE("tape: stop_recording and NoGrad") {
  Tensor x = tensor({1, 2}, DType::f64);
  GradientTape tape(true);
  tape.watch(x);
  Tensor a = x * 2.0;
  Tensor b;
  {
    auto pause = tape.stop_recording();
    b = x * 5.0;  // not recorded: a constant for this tape
  }
  Tensor c;
  {
    NoGrad no_grad;
    c = x * 7.0;
  }
  size_t n = tape.size();
  Tensor y = sum(a + b + c);
  CHECK(tape.size() == n + 3);  // two adds and the sum
  CHECK(values(tape.gradient(y, x)) == std::vector<double>{2, 2});
  // A tape created inside a NoGrad scope still records.
  NoGrad no_grad;
  GradientTape inner;
  inner.watch(x);
  CHECK(inner.gradient(sum(x * 4.0), x).to_vector<double>() == std::vector<double>{4, 4});
}

TEST_CASE("tape: tapes are per thread") {
  Tensor x = tensor({1.0}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  size_t recorded_elsewhere = 0;
  std::thread other([&] {
    Tensor y = x * 3.0;  // this thread has no tape: nothing is recorded
    GradientTape own;
    own.watch(x);
    Tensor z = sum(x * 4.0);
    recorded_elsewhere = own.size();
    CHECK(own.gradient(z, x).item() == 4.0);
  });
  other.join();
  CHECK(tape.size() == 0);
  CHECK(recorded_elsewhere == 2);
}

TEST_CASE("tape: broadcasting is undone centrally") {
  Tensor a = ones({3, 1}, DType::f64), b = ones({1, 4}, DType::f64), c = ones({4}, DType::f64);
  GradientTape tape;
  tape.watch({a, b, c});
  Tensors g = tape.gradient(sum(a * b + c), {a, b, c});
  CHECK(g[0].shape() == Shape{3, 1});
  CHECK(g[1].shape() == Shape{1, 4});
  CHECK(g[2].shape() == Shape{4});
  CHECK(values(g[0]) == std::vector<double>{4, 4, 4});
  CHECK(values(g[1]) == std::vector<double>{3, 3, 3, 3});
  CHECK(values(g[2]) == std::vector<double>{3, 3, 3, 3});
}

TEST_CASE("tape: a saved tensor modified in place makes gradient() throw") {
  Tensor x = tensor({1, 2}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor y = exp(x);  // exp saves its output
  Tensor loss = sum(y);
  y.fill_(0);
  std::string msg = error_of([&] { tape.gradient(loss, x); });
  CHECK(msg.find("'exp'") != std::string::npos);
  CHECK(msg.find("modified in place") != std::string::npos);
}

TEST_CASE("tape: anomaly mode names the op") {
  DetectAnomaly anomaly;
  Tensor x = tensor({-1.0, 1.0}, DType::f64);
  CHECK(error_of([&] { log(x); }).find("log: produced NaN or Inf in its forward") == 0);
  Tensor z = tensor({0.0, 1.0}, DType::f64);
  GradientTape tape;
  tape.watch(z);
  Tensor y = sum(sqrt(z));  // d sqrt / dx at 0 is inf
  std::string msg = error_of([&] { tape.gradient(y, z); });
  CHECK(msg.find("during the backward pass of 'sqrt'") != std::string::npos);
}

TEST_CASE("tape: gradient errors") {
  Tensor x = tensor({1, 2}, DType::f64);
  GradientTape tape(true);
  tape.watch(x);
  Tensor y = x * 2.0;
  CHECK(error_of([&] { tape.gradient(y, x); }).find("is not a scalar") != std::string::npos);
  CHECK(error_of([&] {
          tape.gradient(y, x, {.output_gradient = ones({3}, DType::f64)});
        }).find("output_gradient of shape [3] does not match the target's shape [2]") !=
        std::string::npos);
  Tensor outside = tensor({1.0}, DType::f64);
  CHECK(error_of([&] { tape.gradient(outside, x); }).find("not computed on this tape") !=
        std::string::npos);
  // A non-scalar target with an explicit output gradient.
  Tensor g = tape.gradient(y, x, {.output_gradient = tensor({1, 10}, DType::f64)});
  CHECK(values(g) == std::vector<double>{2, 20});
  CHECK_THROWS_AS(tape.watch(arange(3)), Error);  // i64 is not differentiable
}

TEST_CASE("tape: memory is returned after gradient()") {
  Tensor w = randn({64, 32}, default_generator(), DType::f32).set_trainable();
  Tensor x = randn({16, 64});
  auto step = [&] {
    GradientTape tape;
    Tensor h = tanh(matmul(x, w));
    Tensor loss = mean(h * h);
    Tensor g = tape.gradient(loss, w);
    CHECK(g.shape() == w.shape());
  };
  step();  // warm the cache
  size_t before = allocator::stats().bytes_in_use;
  for (int i = 0; i < 3; ++i) step();
  CHECK(allocator::stats().bytes_in_use == before);
  // Persistent tapes keep their nodes (and saved tensors) until destroyed.
  {
    GradientTape tape(true);
    Tensor loss = mean(tanh(matmul(x, w)));
    tape.gradient(loss, w);
    CHECK(allocator::stats().bytes_in_use > before);
  }
  CHECK(allocator::stats().bytes_in_use == before);
}

TEST_CASE("tape: a non-persistent tape frees saved tensors as the walk passes") {
  Tensor x = randn({256, 256}, default_generator(), DType::f32);
  GradientTape tape;
  tape.watch(x);
  Tensor y = sum(tanh(tanh(tanh(x))));
  size_t peak_before = allocator::stats().bytes_in_use;
  tape.gradient(y, x);
  // After the walk the tape holds nothing: only x and y remain of this test's tensors.
  CHECK(tape.size() == 0);
  CHECK(allocator::stats().bytes_in_use < peak_before);
}

TEST_CASE("tape: gradient w.r.t. an intermediate tensor") {
  Tensor x = tensor({1, 2}, DType::f64);
  GradientTape tape;
  tape.watch(x);
  Tensor h = x * 3.0;
  Tensor y = sum(h * h);
  Tensors g = tape.gradient(y, {h, x});
  CHECK(values(g[0]) == std::vector<double>{6, 12});   // 2h
  CHECK(values(g[1]) == std::vector<double>{18, 36});  // 2h * 3
}

TEST_CASE("an undefined tensor handed to an op is reported naming the op") {
  Tensor x = tensor({1, 2}, DType::f64), u;
  CHECK_THROWS_WITH_AS(add(x, u),
                       "add: the second operand is an undefined tensor (a default-constructed "
                       "Tensor that was never assigned, or an undefined gradient)",
                       Error);
  auto starts = [](const std::string& msg, const std::string& head) {
    INFO(msg);
    return msg.rfind(head, 0) == 0 && msg.find("undefined tensor") != std::string::npos;
  };
  CHECK(starts(error_of([&] { (void)(u * x); }), "mul: the first operand"));
  CHECK(starts(error_of([&] { exp(u); }), "exp: the input"));
  CHECK(starts(error_of([&] { sum(u); }), "sum: the input"));
  CHECK(starts(error_of([&] { matmul(x, u); }), "matmul: the second operand"));
  CHECK(starts(error_of([&] { reshape(u, {2}); }), "reshape: the input"));
  CHECK(starts(error_of([&] { transpose(u, 0, 1); }), "transpose: the input"));
  CHECK(starts(error_of([&] { concat({x, u}, 0); }), "concat: a tensor to join"));
  CHECK(starts(error_of([&] { linear(x, u, Tensor()); }), "linear: the weight"));
}

namespace {
// A two-layer model with a parameter used twice (w1: first layer and a penalty at the end) and
// one the loss does not read (u); returns the loss.
struct ReadyModel {
  Generator gen{7};
  Tensor x = randn({5, 4}, gen, DType::f64);
  Tensor w1 = randn({4, 3}, gen, DType::f64).set_trainable();
  Tensor b1 = randn({3}, gen, DType::f64).set_trainable();
  Tensor w2 = randn({3, 2}, gen, DType::f64).set_trainable();
  Tensor b2 = randn({2}, gen, DType::f64).set_trainable();
  Tensor u = randn({2}, gen, DType::f64).set_trainable();
  Tensors params() const { return {w1, b1, w2, b2, u}; }
  Tensor loss() const {
    Tensor h = tanh(matmul(x, w1) + b1);
    Tensor y = matmul(h, w2) + b2;
    return sum(y * y) + sum(w1 * w1);
  }
};
}  // namespace

TEST_CASE("tape: on_ready reports each final gradient once, and changes no result") {
  ReadyModel m;
  Tensors plain;
  {
    GradientTape tape;
    plain = tape.gradient(m.loss(), m.params());
  }
  for (bool zeros : {true, false}) {
    std::vector<size_t> order;
    Tensors reported(5);
    Tensors got;
    {
      GradientTape tape;
      got = tape.gradient(m.loss(), m.params(),
                          {.unconnected_zeros = zeros, .on_ready = [&](size_t i, const Tensor& g) {
                             order.push_back(i);
                             reported[i] = g;
                           }});
    }
    // Once each; b2, w2 (second layer) before b1; w1, whose earliest reader is the first
    // matmul, after them; u, which nothing read, last.
    CHECK(order == std::vector<size_t>{3, 2, 1, 0, 4});
    for (size_t i = 0; i < 4; ++i) {
      CHECK(reported[i].id() == got[i].id());  // the very tensor returned: it was final
      CHECK(got[i].to_vector<double>() == plain[i].to_vector<double>());  // bitwise
    }
    CHECK(got[4].defined() == zeros);
    CHECK(reported[4].defined() == zeros);
    if (zeros) CHECK(got[4].to_vector<double>() == plain[4].to_vector<double>());
  }
}

TEST_CASE("tape: on_ready fires during the walk, before earlier-recorded vjps run") {
  Tensor a = tensor({1.0, 2.0}, DType::f64).set_trainable();
  Tensor b = tensor({3.0, 4.0}, DType::f64).set_trainable();
  std::vector<std::string> log;
  GradientTape tape;
  Tensor y = a * 2.0;
  Tensor z = y + 0.0;  // stands for the start of the network
  Tensor m = z * 1.0;
  record("mark", {z}, {m}, [&](const Tensors& g) {
    log.push_back("mark");
    return Tensors{g[0]};
  });
  Tensor loss = sum(m * b);
  Tensors g = tape.gradient(loss, {a, b}, {.on_ready = [&](size_t i, const Tensor&) {
                              log.push_back(i == 0 ? "a" : "b");
                            }});
  CHECK(log == std::vector<std::string>{"b", "mark", "a"});
  CHECK(values(g[0]) == std::vector<double>{6, 8});
  CHECK(values(g[1]) == std::vector<double>{2, 4});
}

TEST_CASE("tape: on_ready under an outer tape keeps gradients of gradients") {
  Tensor x = tensor({2.0}, DType::f64);
  GradientTape outer;
  outer.watch(x);
  Tensor dy;
  int calls = 0;
  {
    GradientTape inner;
    inner.watch(x);
    Tensor y = sum(x * x * x);
    dy = inner.gradient(y, Tensors{x}, {.on_ready = [&](size_t, const Tensor& g) {
                          ++calls;
                          CHECK(g.item() == 12.0);
                          const size_t before = outer.size();
                          Tensor unused = g * 5.0;  // no tape records in the callback
                          CHECK(outer.size() == before);
                        }})[0];
  }
  CHECK(calls == 1);
  Tensor d2 = outer.gradient(sum(dy), x);  // 6x = 12
  CHECK(d2.item() == 12.0);
}
