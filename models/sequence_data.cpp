// Random symbol sequences with a disjoint held-out set, reconstruction accuracy of padded
// batches, sequence text and the length probe (see sequence_data.h).
#include "models/sequence_data.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_set>

namespace encore::models {

namespace {

// Checks x (N, T, I) and lengths (N) i64 in [0, T]; returns the lengths (all T if undefined).
std::vector<int64_t> checked_lengths(const char* op, const Tensor& x, const Tensor& lengths) {
  ENCORE_CHECK(x.defined() && x.dim() == 3, op, "expected x (N, T, I), got ",
               x.defined() ? to_string(x.shape()) : "undefined");
  const int64_t n = x.size(0), steps = x.size(1);
  if (!lengths.defined()) return std::vector<int64_t>(n, steps);
  ENCORE_CHECK(lengths.dtype() == DType::i64 && lengths.dim() == 1 && lengths.size(0) == n, op,
               "expected lengths as i64 (", n, ") for x ", x.shape(), ", got ", lengths.dtype(),
               " ", lengths.shape());
  std::vector<int64_t> len = lengths.to_vector<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    ENCORE_CHECK(len[i] >= 0 && len[i] <= steps, op, "lengths[", i, "] = ", len[i],
                 " is outside [0, ", steps, "] for x ", x.shape());
  return len;
}

// The valid steps of sequence i as bytes, prefixed by its length: equal keys <=> equal
// sequences (padding ignored).
std::string sequence_key(const std::vector<float>& v, int64_t i, int64_t length, int64_t steps,
                         int64_t width) {
  std::string key(sizeof(int64_t) + sizeof(float) * length * width, '\0');
  std::memcpy(key.data(), &length, sizeof(int64_t));
  std::memcpy(key.data() + sizeof(int64_t), v.data() + i * steps * width,
              sizeof(float) * length * width);
  return key;
}

double r_squared(const std::vector<double>& pred, const std::vector<double>& y) {
  double mean = 0;
  for (double v : y) mean += v;
  mean /= double(y.size());
  double sse = 0, sst = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    sse += (pred[i] - y[i]) * (pred[i] - y[i]);
    sst += (y[i] - mean) * (y[i] - mean);
  }
  return sst > 0 ? 1.0 - sse / sst : 0.0;
}

}  // namespace

SequenceSplit random_sequences(const RandomSequencesOptions& o, Generator& gen) {
  const char* op = "random_sequences";
  ENCORE_CHECK(o.train > 0 && o.test > 0, op, "train and test must be positive, got ", o.train,
               " and ", o.test);
  ENCORE_CHECK(o.symbols > 0 && o.symbols <= 255, op, "symbols must be in [1, 255], got ",
               o.symbols);
  ENCORE_CHECK(o.min_length >= 1 && o.min_length <= o.max_length, op,
               "need 1 <= min_length <= max_length, got ", o.min_length, " and ", o.max_length);
  const int64_t steps = o.max_length, span = o.max_length - o.min_length + 1;

  // One draw: a symbol string (the key) of a uniform length.
  auto draw = [&] {
    int64_t len = o.min_length + static_cast<int64_t>(gen.below(uint64_t(span)));
    std::string s(size_t(len), '\0');
    for (char& c : s) c = static_cast<char>(gen.below(uint64_t(o.symbols)));
    return s;
  };
  auto fill = [&](const std::vector<std::string>& seqs) {
    const int64_t n = static_cast<int64_t>(seqs.size());
    nn::Sequences out{zeros({n, steps, o.symbols}), empty({n}, DType::i64)};
    float* px = out.x.data<float>();
    int64_t* pl = out.lengths.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      pl[i] = static_cast<int64_t>(seqs[i].size());
      for (size_t t = 0; t < seqs[i].size(); ++t)
        px[(i * steps + int64_t(t)) * o.symbols + uint8_t(seqs[i][t])] = 1.0f;
    }
    return out;
  };

  std::vector<std::string> train(size_t(o.train)), test;
  for (std::string& s : train) s = draw();
  std::unordered_set<std::string> seen(train.begin(), train.end());
  test.reserve(size_t(o.test));
  for (int64_t tries = 0; int64_t(test.size()) < o.test; ++tries) {
    ENCORE_CHECK(tries < 1000 * o.test, op, "could not draw ", o.test,
                 " held-out sequences unseen in training (got ", test.size(), " in ", tries,
                 " draws): too few distinct sequences of lengths ", o.min_length, "..",
                 o.max_length, " over ", o.symbols, " symbols");
    std::string s = draw();
    if (seen.insert(s).second) test.push_back(std::move(s));
  }
  return {fill(train), fill(test)};
}

std::vector<std::string> sequence_texts(const Tensor& x, const Tensor& lengths) {
  std::vector<int64_t> len = checked_lengths("sequence_texts", x, lengths);
  static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  const int64_t n = x.size(0), steps = x.size(1), width = x.size(2);
  std::vector<double> v = x.to_vector<double>();
  std::vector<std::string> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < len[i]; ++t) {
      const double* row = v.data() + (i * steps + t) * width;
      int64_t hot = -1, count = 0;
      for (int64_t k = 0; k < width; ++k)
        if (row[k] != 0) hot = k, ++count;
      out[i] += count == 0 ? '.' : count > 1 || hot >= 36 ? '*' : kDigits[hot];
    }
  }
  return out;
}

int64_t count_shared_sequences(const nn::Sequences& a, const nn::Sequences& b) {
  std::vector<int64_t> la = checked_lengths("count_shared_sequences", a.x, a.lengths);
  std::vector<int64_t> lb = checked_lengths("count_shared_sequences", b.x, b.lengths);
  ENCORE_CHECK(a.x.size(2) == b.x.size(2), "count_shared_sequences",
               "the two sets have different widths: ", a.x.shape(), " and ", b.x.shape());
  std::vector<float> va = a.x.to(DType::f32).to_vector<float>();
  std::vector<float> vb = b.x.to(DType::f32).to_vector<float>();
  const int64_t w = a.x.size(2);
  std::unordered_set<std::string> keys;
  for (int64_t i = 0; i < b.x.size(0); ++i) keys.insert(sequence_key(vb, i, lb[i], b.x.size(1), w));
  int64_t shared = 0;
  for (int64_t i = 0; i < a.x.size(0); ++i)
    shared += keys.count(sequence_key(va, i, la[i], a.x.size(1), w)) ? 1 : 0;
  return shared;
}

SequenceAccuracy reconstruction_accuracy(const Tensor& logits, const Tensor& targets,
                                         const Tensor& lengths) {
  const char* op = "reconstruction_accuracy";
  ENCORE_CHECK(logits.defined() && targets.defined() && logits.shape() == targets.shape(), op,
               "logits and targets must have one shape (N, T, I), got ",
               logits.defined() ? to_string(logits.shape()) : "undefined", " and ",
               targets.defined() ? to_string(targets.shape()) : "undefined");
  std::vector<int64_t> len = checked_lengths(op, targets, lengths);
  const int64_t n = logits.size(0), steps = logits.size(1), width = logits.size(2);
  std::vector<double> z = logits.to_vector<double>(), y = targets.to_vector<double>();
  SequenceAccuracy acc;
  acc.sequences = n;
  std::vector<int64_t> per_len(size_t(steps + 1), 0), exact_len(size_t(steps + 1), 0);
  std::vector<int64_t> at_pos(size_t(steps), 0), right_at_pos(size_t(steps), 0);
  int64_t correct_steps = 0, exact = 0, onehot_steps = 0, symbols_right = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool all = true;
    for (int64_t t = 0; t < len[i]; ++t) {
      bool ok = true;
      int64_t ones = 0, hot = 0, best = 0;
      const int64_t row = (i * steps + t) * width;
      for (int64_t k = 0; k < width; ++k) {
        ok &= (z[row + k] > 0 ? 1.0 : 0.0) == y[row + k];
        if (y[row + k] != 0) ++ones, hot = k;
        if (z[row + k] > z[row + best]) best = k;
      }
      if (ones == 1 && y[row + hot] == 1.0) {
        ++onehot_steps;
        symbols_right += best == hot ? 1 : 0;
      }
      correct_steps += ok ? 1 : 0;
      ++at_pos[size_t(t)];
      right_at_pos[size_t(t)] += ok ? 1 : 0;
      all &= ok;
    }
    acc.steps += len[i];
    exact += all ? 1 : 0;
    ++per_len[size_t(len[i])];
    exact_len[size_t(len[i])] += all ? 1 : 0;
  }
  acc.per_step = acc.steps > 0 ? double(correct_steps) / double(acc.steps) : 1.0;
  acc.exact = n > 0 ? double(exact) / double(n) : 1.0;
  acc.symbol = onehot_steps > 0 ? double(symbols_right) / double(onehot_steps) : 1.0;
  for (size_t l = 0; l < per_len.size(); ++l)
    acc.exact_by_length.push_back(per_len[l] ? double(exact_len[l]) / double(per_len[l]) : -1.0);
  for (size_t t = 0; t < at_pos.size(); ++t)
    acc.per_position.push_back(at_pos[t] ? double(right_at_pos[t]) / double(at_pos[t]) : -1.0);
  return acc;
}

LengthProbe length_probe(const Tensor& train_codes, const Tensor& train_lengths,
                         const Tensor& test_codes, const Tensor& test_lengths) {
  const char* op = "length_probe";
  auto check = [&](const Tensor& c, const Tensor& l, const char* which) {
    ENCORE_CHECK(c.defined() && c.dim() == 2 && c.size(0) > 0, op, "expected ", which,
                 " codes (N, D) with N > 0, got ",
                 c.defined() ? to_string(c.shape()) : "undefined");
    ENCORE_CHECK(l.defined() && l.dtype() == DType::i64 && l.dim() == 1 && l.size(0) == c.size(0),
                 op, "expected ", which, " lengths as i64 (", c.size(0), ") for codes ", c.shape(),
                 ", got ", l.defined() ? to_string(l.shape()) : "undefined");
  };
  check(train_codes, train_lengths, "train");
  check(test_codes, test_lengths, "test");
  ENCORE_CHECK(train_codes.size(1) == test_codes.size(1), op, "train codes ", train_codes.shape(),
               " and test codes ", test_codes.shape(), " differ in width");
  const int64_t n = train_codes.size(0), d = train_codes.size(1);
  std::vector<double> x = train_codes.to_vector<double>();
  std::vector<int64_t> li = train_lengths.to_vector<int64_t>();
  std::vector<double> y(li.begin(), li.end());

  // Centre, then solve (Xc^T Xc + ridge I) w = Xc^T yc by Cholesky.
  std::vector<double> mx(size_t(d), 0.0);
  double my = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) mx[j] += x[i * d + j];
    my += y[i];
  }
  for (double& m : mx) m /= double(n);
  my /= double(n);
  std::vector<double> a(size_t(d * d), 0.0), b(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      double xj = x[i * d + j] - mx[j];
      b[j] += xj * (y[i] - my);
      for (int64_t k = 0; k <= j; ++k) a[j * d + k] += xj * (x[i * d + k] - mx[k]);
    }
  }
  double trace = 0;
  for (int64_t j = 0; j < d; ++j) trace += a[j * d + j];
  const double ridge = 1e-8 * trace / double(d) + 1e-12;
  for (int64_t j = 0; j < d; ++j) a[j * d + j] += ridge;
  // In-place lower Cholesky factor of a (only the lower triangle was filled).
  for (int64_t j = 0; j < d; ++j) {
    for (int64_t k = 0; k < j; ++k) a[j * d + j] -= a[j * d + k] * a[j * d + k];
    a[j * d + j] = std::sqrt(std::max(a[j * d + j], 1e-300));
    for (int64_t i = j + 1; i < d; ++i) {
      for (int64_t k = 0; k < j; ++k) a[i * d + j] -= a[i * d + k] * a[j * d + k];
      a[i * d + j] /= a[j * d + j];
    }
  }
  std::vector<double> w = b;
  for (int64_t j = 0; j < d; ++j) {  // L z = b
    for (int64_t k = 0; k < j; ++k) w[j] -= a[j * d + k] * w[k];
    w[j] /= a[j * d + j];
  }
  for (int64_t j = d - 1; j >= 0; --j) {  // L^T w = z
    for (int64_t k = j + 1; k < d; ++k) w[j] -= a[k * d + j] * w[k];
    w[j] /= a[j * d + j];
  }

  auto predict = [&](const std::vector<double>& codes, int64_t rows) {
    std::vector<double> p(size_t(rows), my);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < d; ++j) p[i] += w[j] * (codes[i * d + j] - mx[j]);
    return p;
  };
  LengthProbe r;
  r.train_r2 = r_squared(predict(x, n), y);
  std::vector<double> xt = test_codes.to_vector<double>();
  std::vector<int64_t> lt = test_lengths.to_vector<int64_t>();
  std::vector<double> yt(lt.begin(), lt.end());
  std::vector<double> pt = predict(xt, test_codes.size(0));
  r.test_r2 = r_squared(pt, yt);

  const auto [lo, hi] = std::minmax_element(li.begin(), li.end());
  std::map<int64_t, int64_t> counts;  // of the held-out lengths: the best constant guess
  for (int64_t l : lt) ++counts[l];
  int64_t mode = counts.begin()->first;
  for (const auto& [l, c] : counts)
    if (c > counts[mode]) mode = l;
  int64_t hits = 0, base_hits = 0;
  for (size_t i = 0; i < lt.size(); ++i) {
    double rounded = std::clamp(std::round(pt[i]), double(*lo), double(*hi));
    hits += rounded == double(lt[i]) ? 1 : 0;
    base_hits += lt[i] == mode ? 1 : 0;
  }
  r.test_accuracy = double(hits) / double(lt.size());
  r.baseline_accuracy = double(base_hits) / double(lt.size());
  return r;
}

}  // namespace encore::models
