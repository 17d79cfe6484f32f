// Sequence data for the sequence autoencoders and what evaluating them needs: random symbol
// sequences with a held-out set that never occurs in training, reconstruction accuracy over
// the valid steps of padded batches, the text of a one-hot sequence, and a least-squares
// linear probe that predicts a sequence's length from its code. (Seed 003's "moving one"
// sequences are nn::padded_onehot_sequences.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../nn/nn.h"

namespace encore::models {

struct RandomSequencesOptions {
  int64_t train = 20000;    ///< training sequences (drawn independently; repeats allowed)
  int64_t test = 2000;      ///< held-out sequences (distinct, none occurring in training)
  int64_t symbols = 8;      ///< alphabet size = one-hot width
  int64_t min_length = 1;   ///< lengths are uniform in [min_length, max_length]
  int64_t max_length = 10;  ///< also the padded length T
};

/// A training set and a held-out set, each {x (N, T, symbols) f32, lengths (N) i64}.
struct SequenceSplit {
  nn::Sequences train;
  nn::Sequences test;
};

/// Random sequences: each length uniform in [min_length, max_length], each step an
/// independent uniform symbol as a one-hot vector, post-padded with zero vectors to
/// max_length. Training sequences are drawn independently from that distribution; held-out
/// sequences are drawn from it too but a draw is rejected when the same sequence occurs in
/// the training set or already in the held-out set, so every held-out sequence is new and
/// distinct. Short sequences are few (8 of length 1, 64 of length 2, 512 of length 3), so
/// with 20000 training sequences nearly all of them are in training and held-out lengths
/// skew long. Throws when the held-out set cannot be filled within 1000 * test draws.
SequenceSplit random_sequences(const RandomSequencesOptions& options = {},
                               Generator& gen = default_generator());

/// x: (N, T, I), lengths: (N) i64 -> one string per sequence with a character per valid
/// step: the index of the step's single nonzero element ('0'..'9', then 'a'..'z'), '.' for
/// an all-zero step, '*' for a step with several nonzero elements. Binary inputs are
/// expected (thresholded reconstructions: gt(logits, 0)).
std::vector<std::string> sequence_texts(const Tensor& x, const Tensor& lengths);

/// How many sequences of `a` also occur in `b` (same length and same values at every valid
/// step; padding is ignored).
int64_t count_shared_sequences(const nn::Sequences& a, const nn::Sequences& b);

/// Reconstruction accuracy over the valid steps of a padded batch. A step counts as correct
/// when every element of its prediction, logit > 0 (sigmoid > 0.5), equals its 0/1 target:
/// argmax alone cannot score seed 003's all-zero steps.
struct SequenceAccuracy {
  double per_step = 0;  ///< correct valid steps / valid steps
  double exact = 0;     ///< sequences with every valid step correct / sequences
  /// over valid steps whose target is one-hot: argmax of the logits == the target's symbol
  /// (the usual symbol accuracy; it cannot score all-zero steps)
  double symbol = 0;
  int64_t steps = 0;      ///< valid steps scored
  int64_t sequences = 0;  ///< sequences scored (length-0 ones count as exact)
  /// exact-match rate per length (index = length; -1 where no sequence has that length)
  std::vector<double> exact_by_length;
  /// per-step accuracy at each position t (-1 where no sequence is that long)
  std::vector<double> per_position;
};

/// logits, targets: (N, T, I); lengths: (N) i64 in [0, T], or undefined (all T).
SequenceAccuracy reconstruction_accuracy(const Tensor& logits, const Tensor& targets,
                                         const Tensor& lengths = Tensor());

/// A linear probe's results: least squares of the length on [code, 1], fitted on the
/// training codes, scored on the held-out codes.
struct LengthProbe {
  double train_r2 = 0;       ///< R^2 on the training codes
  double test_r2 = 0;        ///< R^2 on the held-out codes (1 - SSE / SS around their mean)
  double test_accuracy = 0;  ///< rounded (and clamped to the training range) == length
  /// the best constant guess: always the most frequent held-out length
  double baseline_accuracy = 0;
};

/// train_codes: (N, D), train_lengths: (N) i64; test_codes: (M, D), test_lengths: (M) i64.
/// Solves the normal equations in f64 on centred features, with a ridge of 1e-8 times the
/// mean diagonal so a constant (saturated) code unit does not make them singular.
LengthProbe length_probe(const Tensor& train_codes, const Tensor& train_lengths,
                         const Tensor& test_codes, const Tensor& test_lengths);

}  // namespace encore::models
