// Dropout: validation, the generator choice, and encore::dropout in training mode.
#include "nn/dropout.h"

#include <sstream>

namespace encore::nn {

Dropout::Dropout(double p, Generator* gen) : p_(p), gen_(gen) {
  ENCORE_CHECK(p >= 0 && p < 1, "Dropout", "p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined(), "Dropout", "input is undefined");
  ENCORE_CHECK(is_floating(x.dtype()), "Dropout", "input ", x.shape(), " has dtype ", x.dtype(),
               "; expected f32 or f64");
  if (!is_training() || p_ == 0) return x;
  return dropout(x, p_, /*training=*/true, generator());
}

void Dropout::manual_seed(uint64_t seed) { own_.emplace(seed); }

std::string Dropout::describe() const {
  std::ostringstream os;
  os << "Dropout(p=" << p_ << ")";
  return os.str();
}

}  // namespace encore::nn
