// Synchronised BatchNorm (nn/norm.h) over a ProcessGroup, in every build (MPI or not): two
// threads stand in for two ranks, each with its own tape, all-reducing through shared memory.
// tests/distributed checks the same over MPI against one process in f64; here f32 is checked,
// and that a group of size 1, or eval mode, changes nothing.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nn/nn.h"

using namespace encore;

namespace {

/// The memory the ranks of a ThreadGroup sum through.
struct Shared {
  explicit Shared(int size) : size(size) {}
  std::mutex mu;
  std::condition_variable cv;
  int size;
  int arrived = 0;
  int64_t generation = 0;
  std::vector<double> acc, result;
};

/// A ProcessGroup whose ranks are threads of this process.
class ThreadGroup : public nn::ProcessGroup {
 public:
  ThreadGroup(Shared& s, int rank, double weight) : s_(s), rank_(rank), weight_(weight) {}
  int rank() const override { return rank_; }
  int size() const override { return s_.size; }
  double gradient_weight() const override { return weight_; }
  std::vector<double> all_reduce_sum(std::vector<double> v, const char* what) override {
    std::unique_lock<std::mutex> lock(s_.mu);
    const int64_t generation = s_.generation;
    if (s_.arrived == 0) s_.acc.assign(v.size(), 0.0);
    ENCORE_CHECK(s_.acc.size() == v.size(), what, "ranks sent ", s_.acc.size(), " and ", v.size(),
                 " values");
    for (size_t k = 0; k < v.size(); ++k) s_.acc[k] += v[k];
    if (++s_.arrived == s_.size) {
      s_.result = s_.acc;
      s_.arrived = 0;
      ++s_.generation;
      s_.cv.notify_all();
    } else {
      s_.cv.wait(lock, [&] { return s_.generation != generation; });
    }
    return s_.result;
  }

 private:
  Shared& s_;
  int rank_;
  double weight_;
};

struct Result {
  std::vector<double> y, dx, dgamma, dbeta, running_mean, running_var;
};

/// BatchNorm2d (f32) on rows [begin, begin + len) of a (10, 3, 2, 2) batch whose rows have
/// other means; loss sum(tanh(y) * r) / len. dx, dgamma, dbeta are returned times
/// len / 10 (the scale of the global loss, as the gradient all-reduce weights them).
Result run(int64_t begin, int64_t len, nn::ProcessGroup* group) {
  const int64_t n = 10;
  Generator g(5);
  Tensor x_all = randn({n, 3, 2, 2}, g) + reshape(arange(n, DType::f32), {n, 1, 1, 1}) * 0.5;
  Tensor r_all = randn({n, 3, 2, 2}, g);
  nn::BatchNorm2d bn(3, {.momentum = 0.2});
  bn.weight().copy_(randn({3}, g) * 0.5 + 1.0);
  bn.bias().copy_(randn({3}, g));
  bn.set_process_group(group);
  Tensor x = narrow(x_all, 0, begin, len).clone(), r = narrow(r_all, 0, begin, len).clone();
  GradientTape tape;
  tape.watch(x);
  Tensor y = bn.forward(x);
  Tensors d = tape.gradient(sum(tanh(y) * r) / double(len), {x, bn.weight(), bn.bias()});
  const double w = double(len) / double(n);
  return {y.to_vector<double>(),
          (d[0] * w).to_vector<double>(),
          (d[1] * w).to_vector<double>(),
          (d[2] * w).to_vector<double>(),
          bn.running_mean().to_vector<double>(),
          bn.running_var().to_vector<double>()};
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t k = 0; k < a.size(); ++k) d = std::max(d, std::fabs(a[k] - b[k]));
  return d;
}

std::vector<double> add(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> s(a.size());
  for (size_t k = 0; k < a.size(); ++k) s[k] = a[k] + b[k];
  return s;
}

std::vector<double> concat_v(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> s = a;
  s.insert(s.end(), b.begin(), b.end());
  return s;
}

}  // namespace

TEST_CASE("synchronized BatchNorm over two threads equals one process on the whole batch") {
  const Result one = run(0, 10, nullptr);
  Shared shared(2);
  Result part[2];
  std::exception_ptr error[2];
  {
    // Shards of 6 and 4 rows: unequal gradient weights 0.6 and 0.4.
    auto body = [&](int rank) {
      try {
        ThreadGroup group(shared, rank, rank == 0 ? 0.6 : 0.4);
        part[rank] = rank == 0 ? run(0, 6, &group) : run(6, 4, &group);
      } catch (...) {
        error[rank] = std::current_exception();
      }
    };
    std::thread t0(body, 0), t1(body, 1);
    t0.join();
    t1.join();
  }
  for (const std::exception_ptr& e : error)
    if (e) std::rethrow_exception(e);
  // f32 data, moments summed in f64 on the one side and f32 reductions on the other.
  const double tol = 2e-5;
  CHECK(max_diff(concat_v(part[0].y, part[1].y), one.y) <= tol);
  CHECK(max_diff(concat_v(part[0].dx, part[1].dx), one.dx) <= tol);
  // gamma and beta: the weighted sum of the ranks' partial gradients.
  CHECK(max_diff(add(part[0].dgamma, part[1].dgamma), one.dgamma) <= tol);
  CHECK(max_diff(add(part[0].dbeta, part[1].dbeta), one.dbeta) <= tol);
  for (const Result& p : part) {
    CHECK(max_diff(p.running_mean, one.running_mean) <= tol);
    CHECK(max_diff(p.running_var, one.running_var) <= tol);
  }
  // Without the group each shard normalises with its own moments: another output.
  const Result own = run(0, 6, nullptr);
  CHECK(max_diff(own.y, part[0].y) > 1e-2);
}

TEST_CASE("synchronized BatchNorm: a group of one, or eval mode, is the plain layer") {
  Shared shared(1);
  ThreadGroup solo(shared, 0, 1.0);
  // Bitwise the same as no group: a group of size 1 takes the unsynchronised path.
  const Result plain = run(0, 10, nullptr);
  const Result single = run(0, 10, &solo);
  CHECK(single.y == plain.y);
  CHECK(single.dx == plain.dx);
  CHECK(single.running_var == plain.running_var);

  // In eval mode a group of two is not called (a call would wait for a second rank forever:
  // the throwing stand-in below shows it is not made).
  struct Refuses : nn::ProcessGroup {
    int rank() const override { return 0; }
    int size() const override { return 2; }
    double gradient_weight() const override { return 0.5; }
    std::vector<double> all_reduce_sum(std::vector<double>, const char* what) override {
      ENCORE_FAIL("Refuses", what, " was called");
    }
  } refuses;
  nn::BatchNorm1d bn(3);
  bn.set_process_group(&refuses);
  Generator g(1);
  Tensor x = randn({4, 3}, g);
  bn.eval();
  CHECK_NOTHROW(bn.forward(x));
  bn.train();
  CHECK_THROWS_WITH_AS(bn.forward(x), doctest::Contains("BatchNorm (synchronized) forward"), Error);

  // set_batch_norm_process_group reaches every BatchNorm of a model, and nullptr detaches.
  auto bn1 = std::make_shared<nn::BatchNorm1d>(4);
  auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 4), bn1,
                                                std::make_shared<nn::ReLU>());
  CHECK(nn::set_batch_norm_process_group(*model, &refuses) == 1);
  CHECK(bn1->process_group() == &refuses);
  CHECK(nn::set_batch_norm_process_group(*model, nullptr) == 1);
  CHECK(bn1->process_group() == nullptr);
}

TEST_CASE("synchronized BatchNorm: too few values over the ranks, and a bad weight, throw") {
  // Two ranks with one row each: 2 values per channel over the ranks is enough, where one row
  // alone would be refused; a single row over both ranks is not.
  struct Fake : nn::ProcessGroup {
    double total_rows = 1, weight = 1;
    int rank() const override { return 0; }
    int size() const override { return 2; }
    double gradient_weight() const override { return weight; }
    std::vector<double> all_reduce_sum(std::vector<double> v, const char*) override {
      v[0] = total_rows;  // the count is first; sums are left as this rank's (a stand-in)
      return v;
    }
  } fake;
  nn::BatchNorm1d bn(2);
  bn.set_process_group(&fake);
  CHECK_THROWS_WITH_AS(bn.forward(ones({1, 2})),
                       doctest::Contains("expected more than 1 value per channel over the ranks"),
                       Error);
  fake.total_rows = 2;
  CHECK_NOTHROW(bn.forward(ones({1, 2})));
  fake.weight = 0;
  CHECK_THROWS_WITH_AS(bn.forward(ones({1, 2})), doctest::Contains("gradient weight"), Error);
}
