// The text form of a tensor (operator<< and to_string), NumPy/PyTorch style:
//
//   tensor([[ 1.0000, -2.5000],
//           [ 3.0000,  4.0000]], dtype=f32)
//
// - Nested brackets, one line per innermost row; blocks of higher dims are separated by blank
//   lines (one more newline per level, as NumPy does).
// - f32/f64 print with 4 decimals ("%.4f"), or in scientific notation ("%.4e", 1.2346e+09)
//   for the whole tensor when the largest finite |x| is >= 1e8 or the smallest nonzero finite
//   |x| is < 1e-4; nan, inf and -inf print as such. i64 prints plain integers.
// - Every element is right-aligned to the widest printed element, so columns line up.
// - Tensors of more than 1000 elements are summarised: each dim longer than 6 shows its first
//   3 and last 3 entries with "..." between. A summarised or empty tensor also prints its
//   shape: `tensor([...], shape=[2000, 3], dtype=f32)`.
// - 0-d: `tensor(3.5000, dtype=f32)`; empty: `tensor([], shape=[0, 3], dtype=f32)`;
//   an undefined handle: `tensor(undefined)`.
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/core.h"

namespace encore {
namespace {

constexpr int64_t kSummariseAbove = 1000;
constexpr int64_t kEdgeItems = 3;

class Printer {
 public:
  explicit Printer(const Tensor& t) : t_(t), summarise_(t.numel() > kSummariseAbove) {}

  void print(std::ostream& os) {
    if (t_.dim() == 0) {
      choose_format();
      os << format(0);
      return;
    }
    if (t_.numel() == 0) {
      os << "[]";
      return;
    }
    choose_format();
    print_dim(os, 0, 0, 7);  // 7 = the width of "tensor("
  }
  bool summarised() const { return summarise_; }

 private:
  // The indices of dim d that are printed; -1 marks the "..." gap.
  std::vector<int64_t> shown(int d) const {
    const int64_t n = t_.shape()[d];
    std::vector<int64_t> idx;
    if (summarise_ && n > 2 * kEdgeItems) {
      for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
      idx.push_back(-1);
      for (int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
    } else {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    }
    return idx;
  }

  double value(int64_t off) const {
    return dispatch(t_.dtype(), [&]<class T>() {
      return static_cast<double>(static_cast<T*>(t_.raw_data())[off]);
    });
  }

  std::string format(int64_t off) const {
    char buf[64];
    if (t_.dtype() == DType::i64) {
      std::snprintf(buf, sizeof buf, "%lld",
                    static_cast<long long>(static_cast<int64_t*>(t_.raw_data())[off]));
    } else {
      double v = value(off);
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      std::snprintf(buf, sizeof buf, scientific_ ? "%.4e" : "%.4f", v);
    }
    return buf;
  }

  // Visits the element offsets that will be printed.
  template <class F>
  void visit(int d, int64_t off, F&& f) const {
    if (d == t_.dim()) {
      f(off);
      return;
    }
    for (int64_t i : shown(d))
      if (i >= 0) visit(d + 1, off + i * t_.strides()[d], f);
  }

  void choose_format() {
    if (t_.dtype() != DType::i64) {
      double big = 0, small = INFINITY;
      visit(0, 0, [&](int64_t off) {
        double a = std::fabs(value(off));
        if (!std::isfinite(a)) return;
        big = std::max(big, a);
        if (a > 0) small = std::min(small, a);
      });
      scientific_ = big >= 1e8 || small < 1e-4;
    }
    visit(0, 0, [&](int64_t off) { width_ = std::max(width_, format(off).size()); });
  }

  void print_dim(std::ostream& os, int d, int64_t off, int col) const {
    os << '[';
    bool first = true;
    const bool last = d == t_.dim() - 1;
    for (int64_t i : shown(d)) {
      if (!first) {
        if (last) {
          os << ", ";
        } else {
          os << ',' << std::string(static_cast<size_t>(t_.dim() - d - 1), '\n')
             << std::string(static_cast<size_t>(col + 1), ' ');
        }
      }
      first = false;
      if (i < 0) {
        os << "...";
      } else if (last) {
        std::string s = format(off + i * t_.strides()[d]);
        os << std::string(width_ - s.size(), ' ') << s;
      } else {
        print_dim(os, d + 1, off + i * t_.strides()[d], col + 1);
      }
    }
    os << ']';
  }

  const Tensor& t_;
  bool summarise_;
  bool scientific_ = false;
  size_t width_ = 0;
};

}  // namespace

/// Writes the text form described at the top of this file.
std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  Printer p(t);
  os << "tensor(";
  p.print(os);
  if (p.summarised() || t.numel() == 0) os << ", shape=" << t.shape();
  return os << ", dtype=" << t.dtype() << ')';
}

/// The text form as a string.
std::string to_string(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace encore
