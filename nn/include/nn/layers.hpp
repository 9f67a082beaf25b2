#pragma once
// Basic layers. Shape legend: B batch, T time, D features. Weights are laid out and named as
// in PyTorch (Linear.weight is [out, in]) and initialised as PyTorch does by default.
#include <optional>

#include "nn/module.hpp"

namespace nn {

// y = x W^T + b.  weight: [out, in], bias: [out], both ~ U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(std::size_t in_features, std::size_t out_features, ag::Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) const;  // x: [..., in] -> [..., out]
  Tensor operator()(const Tensor& x) const { return forward(x); }
  std::string describe() const override;
  Tensor weight, bias;  // bias is undefined when bias = false

 private:
  std::size_t in_, out_;
};

// Rows of a lookup table.  weight: [num_embeddings, dim] ~ N(0, 1).
class Embedding : public Module {
 public:
  // weight ~ N(0, 1), as PyTorch. padding_idx (-V <= p < V): that row starts at 0 and gets no
  // gradient, so a padding token always embeds to 0 (PyTorch's padding_idx).
  Embedding(std::size_t num_embeddings, std::size_t dim, ag::Generator& gen, std::optional<std::int64_t> padding_idx = {});
  Tensor forward(const ag::Indices& ids) const;  // ids: [S...] -> [S..., dim]
  Tensor operator()(const ag::Indices& ids) const { return forward(ids); }
  std::string describe() const override;
  Tensor weight;
  std::optional<std::int64_t> padding_idx() const { return padding_idx_; }

 private:
  std::optional<std::int64_t> padding_idx_;
};

// Normalise over the last axis (Ba et al. 2016), then scale by weight: [D] = 1 and shift by
// bias: [D] = 0; elementwise_affine = false (PyTorch's option): no parameters, normalisation only.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::size_t dim, double eps = 1e-5, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  std::string describe() const override;
  Tensor weight, bias;

 private:
  std::size_t dim_;
  double eps_;
};

// Inverted dropout, active only in train() mode; owns its seeded generator.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.1, std::uint64_t seed = 0);
  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  std::string describe() const override;
  double p() const { return p_; }

 protected:
  ag::Generator* own_generator() override { return &gen_; }

 private:
  double p_;
  ag::Generator gen_;
};

// gelu: PyTorch's default, x Phi(x) (erf; activation="gelu" in its Transformer layers);
// gelu_tanh: the tanh approximation (F.gelu(x, approximate="tanh"); GPT-2's). See ag::gelu.
enum class Activation { relu, gelu, gelu_tanh, tanh };
Tensor activate(const Tensor& x, Activation a);
const char* activation_name(Activation a);

// Position-wise feed-forward network: linear2(dropout(act(linear1(x)))).
class FeedForward : public Module {
 public:
  FeedForward(std::size_t dim, std::size_t hidden, ag::Generator& gen, Activation act = Activation::relu, double dropout = 0.0);
  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  std::string describe() const override;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout;

 private:
  Activation act_;
};

// Helper for modules: a parameter-sized tensor ~ U(-bound, bound).
Tensor uniform_tensor(const ag::Shape& shape, double bound, ag::Generator& gen);

}  // namespace nn
