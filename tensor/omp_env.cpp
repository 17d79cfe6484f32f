// libencore_ompenv: OpenMP's wait policy, chosen before libgomp reads its environment.
//
// libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it initialises, and offers no call
// to change them later; by default its idle threads spin for a while after every parallel
// region. On a machine where other processes also want the cores, a spinning thread holds a
// core that the thread it waits for needs, and a 2-thread step was many times slower than a
// 1-thread one (bench/README.md); with passive waiting (sleep on a futex at once) 2 threads are
// faster than 1 there. So this small library, which libencore links ahead of libgomp (an
// object's dependencies initialise before it, in link order), sets OMP_WAIT_POLICY=PASSIVE in
// its constructor unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT; libencore's own start
// (tensor/threads.cpp) removes the variable again, once libgomp has read it, so the process's
// environment and its children's stay as the user left them.
#include <cstdlib>

namespace {

int g_status = 0;  // 0: not run, 1: the user's setting kept, 2: PASSIVE set for libgomp

__attribute__((constructor)) void choose_wait_policy() {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) {
    g_status = 1;
    return;
  }
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  g_status = 2;
}

}  // namespace

/// What the constructor did: 0 not run, 1 the user's OMP_WAIT_POLICY / GOMP_SPINCOUNT kept,
/// 2 OMP_WAIT_POLICY=PASSIVE set (and still in the environment until libencore starts).
extern "C" __attribute__((visibility("default"))) int encore_omp_wait_policy_status() {
  return g_status;
}
