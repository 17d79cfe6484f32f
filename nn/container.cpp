// Sequential's chaining and error context, Flatten and Reshape.
#include "nn/container.h"

namespace encore::nn {

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < steps_.size(); ++i) {
    try {
      h = steps_[i].forward(h);
    } catch (const Error& e) {
      // children() holds the steps in the same order (add() is the only registration here).
      ENCORE_FAIL("Sequential", "step '", steps_[i].name, "' (", children()[i].second->describe(),
                  "): ", e.what());
    }
  }
  return h;
}

std::shared_ptr<Module> Sequential::at(size_t i) const {
  ENCORE_CHECK(i < steps_.size(), "Sequential", "index ", i, " is out of range for ", steps_.size(),
               " modules");
  return children()[i].second;
}

std::string Sequential::describe() const {
  return "Sequential(" + std::to_string(steps_.size()) +
         (steps_.size() == 1 ? " module)" : " modules)");
}

Flatten::Flatten(int64_t start_dim, int64_t end_dim) : start_(start_dim), end_(end_dim) {}

Tensor Flatten::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined(), "Flatten", "input is undefined");
  const int64_t n = x.dim();
  const int64_t s = start_ < 0 ? start_ + n : start_, e = end_ < 0 ? end_ + n : end_;
  ENCORE_CHECK(n > 0 && s >= 0 && s < n && e >= 0 && e < n && s <= e, "Flatten", "dims ", start_,
               "..", end_, " are out of range (or reversed) for input ", x.shape());
  return flatten(x, s, e);
}

std::string Flatten::describe() const {
  return "Flatten(" + std::to_string(start_) + ", " + std::to_string(end_) + ")";
}

Reshape::Reshape(const Shape& shape) : shape_(shape) {
  ENCORE_CHECK(shape.size() + 1 <= kMaxDims, "Reshape", "target ", shape, " has too many dims");
  int inferred = 0;
  for (int64_t d : shape) {
    ENCORE_CHECK(d > 0 || d == -1, "Reshape", "target ", shape,
                 " may hold positive sizes and at most one -1, got ", d);
    inferred += d == -1;
  }
  ENCORE_CHECK(inferred <= 1, "Reshape", "target ", shape, " has more than one -1");
}

Tensor Reshape::forward(const Tensor& x) {
  ENCORE_CHECK(x.defined() && x.dim() >= 1, "Reshape", "expected input (N, ...), got ",
               x.defined() ? to_string(x.shape()) : std::string("undefined"));
  int64_t per_sample = 1;
  for (int i = 1; i < x.dim(); ++i) per_sample *= x.size(i);
  int64_t known = 1;
  bool has_inferred = false;
  Shape target = {x.size(0)};
  for (int64_t d : shape_) {
    if (d == -1)
      has_inferred = true;
    else
      known *= d;
    target.push_back(d);
  }
  ENCORE_CHECK(has_inferred ? (known > 0 && per_sample % known == 0) : per_sample == known,
               "Reshape", "cannot reshape input ", x.shape(), " (", per_sample,
               " values per sample) to ", target_text());
  if (has_inferred)
    for (int i = 1; i < target.size(); ++i)
      if (target[i] == -1) target[i] = per_sample / known;
  return reshape(x, target);
}

std::string Reshape::target_text() const {
  std::string s = to_string(shape_);  // "[32, 7, 7]" -> "(N, 32, 7, 7)"
  return "(N" + (shape_.empty() ? std::string() : ", " + s.substr(1, s.size() - 2)) + ")";
}

std::string Reshape::describe() const { return "Reshape" + target_text(); }

}  // namespace encore::nn
