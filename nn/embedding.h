// Embedding: a lookup table of `num` learned vectors of size `dim`, indexed by i64 ids.
#pragma once

#include <cstdint>
#include <string>

#include "module.h"

namespace encore::nn {

struct EmbeddingOptions {
  /// Rows start as N(0, init_std^2) (PyTorch's default is 1; for Keras' uniform(-0.05, 0.05)
  /// call nn::init::uniform on weight() after construction).
  double init_std = 1.0;
  DType dtype = DType::f32;
  /// Random source for the initialisation; nullptr means default_generator().
  Generator* gen = nullptr;
};

/// weight (num, dim); forward(ids) picks rows. Parameter: "weight".
///   auto emb = std::make_shared<nn::Embedding>(10000, 64);
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, const EmbeddingOptions& options = {});

  /// indices: i64 of any shape, values in [0, num) -> (..., dim).
  Tensor forward(const Tensor& indices);

  /// (num, dim).
  Tensor weight() const { return weight_; }
  int64_t num_embeddings() const { return num_; }
  int64_t embedding_dim() const { return dim_; }

  /// "Embedding(10000, 64)".
  std::string describe() const override;

 private:
  int64_t num_, dim_;
  Tensor weight_;
};

}  // namespace encore::nn
