// Generator: an explicit, seeded random source (xoshiro256**). Every random op takes one; the
// same seed gives bitwise the same numbers on every run.
#pragma once

#include <array>
#include <cstdint>

namespace encore {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  /// Resets the state from a seed (splitmix64 expansion).
  void manual_seed(uint64_t seed);
  uint64_t next_u64();
  /// Uniform in [0, 1), 53 bits.
  double uniform();
  /// Standard normal (Box-Muller; each call consumes two uniforms).
  double normal();
  /// Uniform integer in [0, n), unbiased.
  uint64_t below(uint64_t n);

  using State = std::array<uint64_t, 4>;
  /// The whole state, for checkpoints; set_state(state()) resumes the same sequence.
  State state() const { return s_; }
  void set_state(const State& s) { s_ = s; }

 private:
  State s_{};
};

/// The process-wide default generator (seed 0 until reseeded). Not thread-safe: threads that
/// draw random numbers concurrently should hold their own Generator.
Generator& default_generator();

}  // namespace encore
