// nn::Distributed: MPI set-up, broadcast, bucketed gradient all-reduce and the deadline on
// every collective (see nn/distributed.h). Built without MPI, only the constructor's error
// remains.
#include "nn/distributed.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#ifdef ENCORE_HAVE_MPI
// The C API only: MPI's deprecated C++ bindings (removed in MPI-3) do not compile warning-free.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace encore::nn {

void Distributed::set_gradient_weight(double weight) {
  ENCORE_CHECK(std::isfinite(weight) && weight > 0, "Distributed::set_gradient_weight",
               "the weight must be finite and > 0, got ", weight);
  gradient_weight_ = weight;
}

#ifndef ENCORE_HAVE_MPI

bool mpi_available() { return false; }

struct Distributed::Impl {};

Distributed::Distributed(int&, char**&, DistributedOptions options) : options_(options) {
  ENCORE_FAIL("Distributed",
              "this build of encore has no MPI support: install libopenmpi-dev and openmpi-bin, "
              "then reconfigure with meson setup --reconfigure -Dmpi=enabled <builddir>");
}
Distributed::~Distributed() = default;
int Distributed::threads_per_rank() const { return 1; }
Distributed::Slice Distributed::slice(int64_t rows) const { return {0, rows}; }
Tensors Distributed::shard(const Tensors& batch) const { return batch; }
void Distributed::broadcast(Module&) {}
void Distributed::broadcast(const Tensors&, const char*) {}
void Distributed::all_reduce_gradients(Tensors&, const Tensors&, double, std::vector<double>*,
                                       int64_t) {}
void Distributed::begin_gradients(const Tensors&, double, int64_t) {}
void Distributed::gradient_ready(size_t, const Tensor&) {}
void Distributed::finish_gradients(Tensors&, std::vector<double>*) {}
void Distributed::average_buffers(Module&) {}
std::vector<double> Distributed::all_reduce_sum(std::vector<double> v, const char*) { return v; }
std::vector<double> Distributed::all_reduce_min(std::vector<double> v, const char*) { return v; }
std::vector<double> Distributed::all_reduce_max(std::vector<double> v, const char*) { return v; }
void Distributed::barrier(const char*) {}
void Distributed::abort(const std::string& message, int code) {
  std::fprintf(stderr, "encore distributed: %s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}
void Distributed::roll_call(int64_t, const char*) {}

#else

bool mpi_available() { return true; }

namespace {

using Clock = std::chrono::steady_clock;

bool g_alive = false;  // one Distributed per process

// Tags of the roll call on the library's own communicator.
constexpr int kTagArrive = 1;
constexpr int kTagGo = 2;

MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i64:
      return MPI_INT64_T;
  }
  return MPI_BYTE;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (int r : ranks) s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

}  // namespace

struct Distributed::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  // The gradient buckets' own communicator: their MPI_Iallreduce calls, started during the
  // backward walk, never share a communicator with the blocking collectives of the walk
  // (synchronised BatchNorm), so no rank can see the two in a different order.
  MPI_Comm grad_comm = MPI_COMM_NULL;
  bool finalize = false;  // MPI was initialised here
  bool aborted = false;
  // Reused bucket buffers (bytes), one per bucket of the last all-reduce.
  std::vector<std::vector<char>> buckets;

  // The gradient exchange in progress (begin_gradients .. finish_gradients).
  struct Bucket {
    DType dtype;
    std::vector<size_t> members;
    int64_t elements = 0;
    size_t packed = 0;  // members packed so far
  };
  bool active = false;
  bool rolled = false;  // the roll call of this exchange has run
  Tensors params;
  double weight = 1;
  int64_t step = -1;
  std::vector<Bucket> plan;
  std::vector<size_t> bucket_of;  // per parameter
  std::vector<int64_t> at_of;     // per parameter: element offset in its bucket
  std::vector<char> is_packed;    // per parameter
  size_t next_start = 0;          // buckets [0, next_start) have started
  std::vector<MPI_Request> reqs;

  /// Polls the requests until all complete; returns false at the deadline. Open MPI's
  /// non-blocking collectives advance only inside MPI calls, one round per poll, so the first
  /// 2 ms poll back to back without yielding: on a busy machine a yield hands the core to
  /// another process for a whole time slice, and a small all-reduce (synchronised BatchNorm's
  /// 1201 doubles) took 15 ms instead of 0.27 ms. Until 20 ms the polls yield the core to any
  /// other runnable process; a longer wait (a slow peer) sleeps between polls, growing to
  /// 1 ms, to leave the cores to the others.
  bool wait(std::vector<MPI_Request>& reqs, double timeout) {
    if (reqs.empty()) return true;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout);
    const auto busy_until = start + std::chrono::milliseconds(2);
    const auto spin_until = start + std::chrono::milliseconds(20);
    auto pause = std::chrono::microseconds(20);
    for (;;) {
      int done = 0;
      MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE);
      if (done) return true;
      const auto now = Clock::now();
      if (now > deadline) return false;
      if (now < busy_until) {
        continue;  // poll again at once
      } else if (now < spin_until) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds(1000));
      }
    }
  }
};

Distributed::Distributed(int& argc, char**& argv, DistributedOptions options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  ENCORE_CHECK(std::isfinite(options_.timeout_seconds) && options_.timeout_seconds > 0,
               "Distributed", "timeout_seconds must be positive, got ", options_.timeout_seconds);
  ENCORE_CHECK(options_.bucket_bytes >= 1024, "Distributed",
               "bucket_bytes must be at least 1024, got ", options_.bucket_bytes);
  ENCORE_CHECK(!g_alive, "Distributed", "MPI is already set up by another nn::Distributed");
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    impl_->finalize = true;
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm);
  MPI_Comm_dup(impl_->comm, &impl_->grad_comm);
  MPI_Comm_rank(impl_->comm, &rank_);
  MPI_Comm_size(impl_->comm, &size_);
  gradient_weight_ = 1.0 / double(size_);
  MPI_Comm local = MPI_COMM_NULL;
  MPI_Comm_split_type(impl_->comm, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
  g_alive = true;
}

Distributed::~Distributed() {
  if (!impl_ || impl_->aborted) return;
  MPI_Comm_free(&impl_->grad_comm);
  MPI_Comm_free(&impl_->comm);
  if (impl_->finalize) MPI_Finalize();
  g_alive = false;
}

void Distributed::abort(const std::string& message, int code) {
  std::fprintf(stderr, "encore distributed (rank %d of %d): %s\n", rank_, size_, message.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  impl_->aborted = true;
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

int Distributed::threads_per_rank() const {
  const int cores = int(std::thread::hardware_concurrency());
  return std::max(1, cores / std::max(1, local_size_));
}

Distributed::Slice Distributed::slice(int64_t rows) const {
  const int64_t base = rows / size_, rem = rows % size_;
  return {rank_ * base + std::min<int64_t>(rank_, rem), base + (rank_ < rem ? 1 : 0)};
}

Tensors Distributed::shard(const Tensors& batch) const {
  if (batch.empty()) return batch;
  ENCORE_CHECK(batch[0].defined() && batch[0].dim() >= 1, "Distributed::shard",
               "the batch's first tensor has no first dimension to shard");
  const int64_t rows = batch[0].size(0);
  ENCORE_CHECK(rows >= size_, "Distributed::shard", "a batch of ", rows, " rows (shape ",
               to_string(batch[0].shape()), ") cannot be shared by ", size_,
               " ranks; use a batch size of at least ", size_);
  const Slice s = slice(rows);
  Tensors out;
  for (size_t i = 0; i < batch.size(); ++i) {
    ENCORE_CHECK(batch[i].defined() && batch[i].dim() >= 1 && batch[i].size(0) == rows,
                 "Distributed::shard", "tensor ", i, " of the batch has shape ",
                 batch[i].defined() ? to_string(batch[i].shape()) : std::string("undefined"),
                 ", tensor 0 has ", rows, " rows");
    out.push_back(narrow(batch[i], 0, s.begin, s.length));
  }
  return out;
}

namespace {
std::vector<double> all_reduce(Distributed::Impl& impl, Distributed& d, std::vector<double> v,
                               MPI_Op op, const char* what) {
  MPI_Request req = MPI_REQUEST_NULL;
  MPI_Iallreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, op, impl.comm, &req);
  std::vector<MPI_Request> reqs{req};
  if (!impl.wait(reqs, d.options().timeout_seconds))
    d.abort(std::string(what) + ": not every rank arrived within " +
            std::to_string(d.options().timeout_seconds) + " s");
  return v;
}
}  // namespace

std::vector<double> Distributed::all_reduce_sum(std::vector<double> v, const char* what) {
  return all_reduce(*impl_, *this, std::move(v), MPI_SUM, what);
}
std::vector<double> Distributed::all_reduce_min(std::vector<double> v, const char* what) {
  return all_reduce(*impl_, *this, std::move(v), MPI_MIN, what);
}
std::vector<double> Distributed::all_reduce_max(std::vector<double> v, const char* what) {
  return all_reduce(*impl_, *this, std::move(v), MPI_MAX, what);
}

void Distributed::barrier(const char* what) {
  MPI_Request req = MPI_REQUEST_NULL;
  MPI_Ibarrier(impl_->comm, &req);
  std::vector<MPI_Request> reqs{req};
  if (!impl_->wait(reqs, options_.timeout_seconds))
    abort(std::string(what) + ": not every rank arrived within " +
          std::to_string(options_.timeout_seconds) + " s");
}

void Distributed::broadcast(const Tensors& tensors, const char* what) {
  std::vector<MPI_Request> reqs;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    ENCORE_CHECK(t.defined() && t.is_contiguous(), what, "tensor ", i,
                 " is undefined or not contiguous");
    MPI_Request req = MPI_REQUEST_NULL;
    MPI_Ibcast(t.raw_data(), int(t.numel()), mpi_type(t.dtype()), 0, impl_->comm, &req);
    reqs.push_back(req);
    t.storage()->bump_version();
  }
  if (!impl_->wait(reqs, options_.timeout_seconds))
    abort(std::string(what) + ": rank 0's values did not arrive within " +
          std::to_string(options_.timeout_seconds) + " s");
}

void Distributed::broadcast(Module& model) {
  Tensors ts = model.parameters();
  for (const Tensor& b : model.buffers()) ts.push_back(b);
  // Every rank must hold the same tensors: compare a signature (count, and per tensor its
  // element count and dtype) through min and max over the ranks.
  std::vector<double> sig{double(ts.size())};
  for (const Tensor& t : ts) {
    sig.push_back(double(t.numel()));
    sig.push_back(double(static_cast<int>(t.dtype())));
  }
  std::vector<double> n = all_reduce_max({double(sig.size())}, "broadcast (model signature)");
  sig.resize(size_t(n[0]), -1.0);
  std::vector<double> lo = all_reduce_min(sig, "broadcast (model signature)");
  std::vector<double> hi = all_reduce_max(sig, "broadcast (model signature)");
  ENCORE_CHECK(lo == hi, "Distributed::broadcast", "the ranks' models differ (this rank's ",
               model.describe(), " has ", ts.size(), " parameters and buffers, ",
               model.num_parameters(),
               " parameter elements); every rank must build the same model");
  broadcast(ts, "Distributed::broadcast");
}

void Distributed::average_buffers(Module& model) {
  Tensors fl;
  for (const Tensor& b : model.buffers())
    if (b.dtype() != DType::i64) fl.push_back(b);
  if (fl.empty() || size_ == 1) return;
  Tensors sums = fl;  // the buffers stand in for parameters (shapes and dtypes)
  all_reduce_gradients(sums, fl, 1.0 / size_);
  for (size_t i = 0; i < fl.size(); ++i) {
    std::memcpy(fl[i].raw_data(), sums[i].raw_data(),
                size_t(fl[i].numel()) * dtype_size(fl[i].dtype()));
    fl[i].storage()->bump_version();
  }
}

void Distributed::roll_call(int64_t step, const char* what) {
  if (size_ == 1) return;
  const double timeout = options_.timeout_seconds;
  if (rank_ == 0) {
    std::vector<int64_t> arrived(size_t(size_), -1);
    std::vector<MPI_Request> reqs(size_t(size_ - 1), MPI_REQUEST_NULL);
    for (int r = 1; r < size_; ++r)
      MPI_Irecv(&arrived[size_t(r)], 1, MPI_INT64_T, r, kTagArrive, impl_->comm,
                &reqs[size_t(r - 1)]);
    if (!impl_->wait(reqs, timeout)) {
      std::vector<int> missing;
      for (int r = 1; r < size_; ++r) {
        int done = 0;
        MPI_Test(&reqs[size_t(r - 1)], &done, MPI_STATUS_IGNORE);
        if (!done) missing.push_back(r);
      }
      char buf[256];
      std::snprintf(buf, sizeof(buf),
                    "rank(s) %s did not arrive at step %lld (%s) within %g s; "
                    "stopping every rank",
                    rank_list(missing).c_str(), static_cast<long long>(step), what, timeout);
      abort(buf);
    }
    for (int r = 1; r < size_; ++r)
      if (arrived[size_t(r)] != step) {
        char buf[256];
        std::snprintf(buf, sizeof(buf), "rank %d is at step %lld, rank 0 at step %lld (%s)", r,
                      static_cast<long long>(arrived[size_t(r)]), static_cast<long long>(step),
                      what);
        abort(buf);
      }
    std::vector<MPI_Request> go(size_t(size_ - 1), MPI_REQUEST_NULL);
    for (int r = 1; r < size_; ++r)
      MPI_Isend(&step, 1, MPI_INT64_T, r, kTagGo, impl_->comm, &go[size_t(r - 1)]);
    if (!impl_->wait(go, timeout)) abort("the roll call's answer was not delivered in time");
  } else {
    int64_t answer = -1;
    std::vector<MPI_Request> reqs(2, MPI_REQUEST_NULL);
    MPI_Isend(&step, 1, MPI_INT64_T, 0, kTagArrive, impl_->comm, &reqs[0]);
    MPI_Irecv(&answer, 1, MPI_INT64_T, 0, kTagGo, impl_->comm, &reqs[1]);
    // Rank 0 knows who is missing: give it the time to say so before this rank gives up.
    if (!impl_->wait(reqs, 1.5 * timeout + 1)) {
      char buf[256];
      std::snprintf(buf, sizeof(buf),
                    "rank 0 did not answer the roll call of step %lld (%s) "
                    "within %g s: rank 0 hangs or died; stopping every rank",
                    static_cast<long long>(step), what, 1.5 * timeout + 1);
      abort(buf);
    }
  }
}

void Distributed::check_gradient(size_t i, const Tensor& g, const char* what) const {
  const Tensor& p = impl_->params[i];
  ENCORE_CHECK(!g.defined() || (g.shape() == p.shape() && g.dtype() == p.dtype()), what,
               "gradient ", i, " has shape ", to_string(g.shape()), " and dtype ",
               dtype_name(g.dtype()), " for a parameter of shape ", to_string(p.shape()),
               " and dtype ", dtype_name(p.dtype()));
}

void Distributed::all_reduce_gradients(Tensors& grads, const Tensors& params, double weight,
                                       std::vector<double>* extras, int64_t step) {
  ENCORE_CHECK(grads.size() == params.size(), "Distributed::all_reduce_gradients", grads.size(),
               " gradients for ", params.size(), " parameters");
  for (size_t i = 0; i < grads.size(); ++i)
    ENCORE_CHECK(
        !grads[i].defined() ||
            (grads[i].shape() == params[i].shape() && grads[i].dtype() == params[i].dtype()),
        "Distributed::all_reduce_gradients", "gradient ", i, " has shape ",
        to_string(grads[i].shape()), " for a parameter of shape ", to_string(params[i].shape()));
  begin_gradients(params, weight, step);
  finish_gradients(grads, extras);
}

void Distributed::begin_gradients(const Tensors& params, double weight, int64_t step) {
  Impl& x = *impl_;
  ENCORE_CHECK(!x.active, "Distributed::begin_gradients", "the previous gradient exchange (step ",
               x.step, ") was not finished with finish_gradients");
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    ENCORE_CHECK(p.defined() && (p.dtype() == DType::f32 || p.dtype() == DType::f64),
                 "Distributed::all_reduce_gradients", "parameter ", i, " has dtype ",
                 p.defined() ? dtype_name(p.dtype()) : "undefined",
                 "; only f32 and f64 are reduced");
  }
  const auto t0 = Clock::now();
  x.params = params;
  x.weight = weight;
  x.step = step;
  x.rolled = step < 0;
  x.next_start = 0;
  x.reqs.clear();
  // Buckets: runs of same-dtype gradients, last parameter first, up to bucket_bytes each.
  x.plan.clear();
  x.bucket_of.assign(params.size(), 0);
  x.at_of.assign(params.size(), 0);
  x.is_packed.assign(params.size(), 0);
  for (size_t k = params.size(); k-- > 0;) {
    const DType d = params[k].dtype();
    const int64_t bytes = params[k].numel() * int64_t(dtype_size(d));
    if (x.plan.empty() || x.plan.back().dtype != d ||
        (x.plan.back().elements > 0 &&
         (x.plan.back().elements * int64_t(dtype_size(d)) + bytes > options_.bucket_bytes)))
      x.plan.push_back({d, {}, 0, 0});
    x.bucket_of[k] = x.plan.size() - 1;
    x.at_of[k] = x.plan.back().elements;
    x.plan.back().members.push_back(k);
    x.plan.back().elements += params[k].numel();
  }
  x.buckets.resize(x.plan.size());
  for (size_t b = 0; b < x.plan.size(); ++b)
    x.buckets[b].resize(size_t(x.plan[b].elements) * dtype_size(x.plan[b].dtype));
  x.active = true;
  stats_.reduce_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
}

namespace {
// Writes weight * g (zeros for an undefined g) into the bucket buffer at element `at`.
void pack(char* buf, int64_t at, DType dtype, int64_t n, const Tensor& grad, double weight) {
  if (!grad.defined()) {
    std::memset(buf + at * int64_t(dtype_size(dtype)), 0, size_t(n) * dtype_size(dtype));
    return;
  }
  Tensor g = grad.contiguous();
  if (dtype == DType::f32) {
    const float* src = g.data<float>();
    float* dst = reinterpret_cast<float*>(buf) + at;
    const float w = float(weight);
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * w;
  } else {
    const double* src = g.data<double>();
    double* dst = reinterpret_cast<double*>(buf) + at;
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * weight;
  }
}
}  // namespace

void Distributed::start_ready_buckets(bool from_walk) {
  Impl& x = *impl_;
  while (x.next_start < x.plan.size() &&
         x.plan[x.next_start].packed == x.plan[x.next_start].members.size()) {
    if (!x.rolled) {
      const auto t0 = Clock::now();
      roll_call(x.step, "gradient all-reduce");
      stats_.arrival_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      x.rolled = true;
    }
    const Impl::Bucket& bk = x.plan[x.next_start];
    std::vector<char>& buf = x.buckets[x.next_start];
    MPI_Request req = MPI_REQUEST_NULL;
    MPI_Iallreduce(MPI_IN_PLACE, buf.data(), int(bk.elements), mpi_type(bk.dtype), MPI_SUM,
                   x.grad_comm, &req);
    x.reqs.push_back(req);
    stats_.bytes += int64_t(buf.size());
    if (from_walk) ++stats_.buckets_overlapped;
    ++x.next_start;
  }
}

void Distributed::gradient_ready(size_t index, const Tensor& grad) {
  Impl& x = *impl_;
  ENCORE_CHECK(x.active, "Distributed::gradient_ready", "called before begin_gradients");
  ENCORE_CHECK(index < x.params.size(), "Distributed::gradient_ready", "index ", index,
               " is out of range for ", x.params.size(), " parameters");
  ENCORE_CHECK(!x.is_packed[index], "Distributed::gradient_ready", "gradient ", index,
               " was reported twice");
  check_gradient(index, grad, "Distributed::gradient_ready");
  const auto t0 = Clock::now();
  const size_t b = x.bucket_of[index];
  pack(x.buckets[b].data(), x.at_of[index], x.plan[b].dtype, x.params[index].numel(), grad,
       x.weight);
  x.is_packed[index] = 1;
  ++x.plan[b].packed;
  start_ready_buckets(/*from_walk=*/true);
  if (!x.reqs.empty()) {  // Open MPI advances non-blocking collectives only inside MPI calls
    int done = 0;
    MPI_Testall(int(x.reqs.size()), x.reqs.data(), &done, MPI_STATUSES_IGNORE);
  }
  stats_.reduce_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
}

void Distributed::finish_gradients(Tensors& grads, std::vector<double>* extras) {
  Impl& x = *impl_;
  ENCORE_CHECK(x.active, "Distributed::finish_gradients", "called before begin_gradients");
  ENCORE_CHECK(grads.size() == x.params.size(), "Distributed::finish_gradients", grads.size(),
               " gradients for ", x.params.size(), " parameters");
  const auto t0 = Clock::now();
  x.active = false;  // an error below ends this exchange (the job stops at the next)
  for (size_t k = 0; k < grads.size(); ++k) {
    if (x.is_packed[k]) continue;
    check_gradient(k, grads[k], "Distributed::finish_gradients");
    const size_t b = x.bucket_of[k];
    pack(x.buckets[b].data(), x.at_of[k], x.plan[b].dtype, x.params[k].numel(), grads[k], x.weight);
    x.is_packed[k] = 1;
    ++x.plan[b].packed;
  }
  start_ready_buckets(/*from_walk=*/false);
  if (!x.rolled) {  // no bucket (no parameters): the roll call still runs
    const auto t1 = Clock::now();
    roll_call(x.step, "gradient all-reduce");
    stats_.arrival_seconds += std::chrono::duration<double>(Clock::now() - t1).count();
    x.rolled = true;
  }
  const size_t extra_n = extras ? extras->size() : 0;
  std::vector<double> ex(extras ? *extras : std::vector<double>{});
  if (extra_n > 0) {
    MPI_Request req = MPI_REQUEST_NULL;
    MPI_Iallreduce(MPI_IN_PLACE, ex.data(), int(extra_n), MPI_DOUBLE, MPI_SUM, x.grad_comm, &req);
    x.reqs.push_back(req);
  }
  if (!impl_->wait(x.reqs, options_.timeout_seconds)) {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "the gradient all-reduce of step %lld (%zu buckets) did not complete within "
                  "%g s: a rank died or hangs",
                  static_cast<long long>(x.step), x.plan.size(), options_.timeout_seconds);
    abort(buf);
  }
  for (size_t b = 0; b < x.plan.size(); ++b) {
    const Impl::Bucket& bk = x.plan[b];
    const char* buf = x.buckets[b].data();
    for (size_t k : bk.members) {
      Tensor g(x.params[k].shape(), bk.dtype, "all_reduce_gradients");
      const size_t bytes = size_t(x.params[k].numel()) * dtype_size(bk.dtype);
      std::memcpy(g.raw_data(), buf + x.at_of[k] * int64_t(dtype_size(bk.dtype)), bytes);
      grads[k] = g;
    }
  }
  if (extras) *extras = ex;
  x.reqs.clear();
  x.params.clear();
  ++stats_.all_reduces;
  stats_.buckets += int64_t(x.plan.size());
  stats_.reduce_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
}

#endif  // ENCORE_HAVE_MPI

}  // namespace encore::nn
