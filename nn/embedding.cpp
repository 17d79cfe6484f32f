// Embedding: a registered table and encore::embedding, with the ids checked against it.
#include "nn/embedding.h"

#include <cmath>

#include "nn/init.h"

namespace encore::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, const EmbeddingOptions& options)
    : num_(num_embeddings), dim_(embedding_dim) {
  ENCORE_CHECK(num_ > 0 && dim_ > 0, "Embedding",
               "num_embeddings and embedding_dim must be positive, got ", num_, ", ", dim_);
  ENCORE_CHECK(std::isfinite(options.init_std) && options.init_std >= 0, "Embedding",
               "init_std must be finite and >= 0, got ", options.init_std);
  ENCORE_CHECK(is_floating(options.dtype), "Embedding", "dtype must be f32 or f64, got ",
               options.dtype);
  weight_ = register_parameter("weight", empty({num_, dim_}, options.dtype));
  init::normal(weight_, 0, options.init_std, options.gen ? *options.gen : default_generator());
}

Tensor Embedding::forward(const Tensor& indices) {
  ENCORE_CHECK(indices.defined(), "Embedding", "indices are undefined");
  ENCORE_CHECK(indices.dtype() == DType::i64, "Embedding", "indices ", indices.shape(),
               " must be i64, got ", indices.dtype());
  // Check every id here so the message names the layer and the offending value.
  const Tensor ids = indices.contiguous();
  const int64_t* p = ids.data<int64_t>();
  for (int64_t i = 0, n = ids.numel(); i < n; ++i)
    ENCORE_CHECK(p[i] >= 0 && p[i] < num_, "Embedding", "index ", p[i], " (at flat position ", i,
                 " of indices ", indices.shape(), ") is outside [0, ", num_, ")");
  return embedding(weight_, indices);
}

std::string Embedding::describe() const {
  return "Embedding(" + std::to_string(num_) + ", " + std::to_string(dim_) + ")";
}

}  // namespace encore::nn
