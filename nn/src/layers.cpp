#include "nn/layers.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace nn {

Tensor uniform_tensor(const ag::Shape& shape, double bound, ag::Generator& gen) {
  Tensor t = ag::rand(shape, gen);
  for (auto& v : t.data<float>()) v = float((2.0 * v - 1.0) * bound);
  return t;
}

// ---- Linear -------------------------------------------------------------------------------
Linear::Linear(std::size_t in, std::size_t out, ag::Generator& gen, bool has_bias) : in_(in), out_(out) {
  const double bound = in ? 1.0 / std::sqrt(double(in)) : 0.0;  // PyTorch: kaiming_uniform(a=sqrt(5))
  weight = register_parameter("weight", uniform_tensor({out, in}, bound, gen));
  if (has_bias) bias = register_parameter("bias", uniform_tensor({out}, bound, gen));
}

Tensor Linear::forward(const Tensor& x) const {
  if (x.dim() == 0 || x.shape().back() != in_)
    ag::fail("Linear(in=", in_, ", out=", out_, "): input ", ag::shape_str(x.shape()), " should end in ", in_, " features");
  return ag::linear(x, weight, bias);
}

std::string Linear::describe() const {
  return "Linear(in=" + std::to_string(in_) + ", out=" + std::to_string(out_) + ", bias=" + (bias.defined() ? "true" : "false") + ")";
}

// ---- Embedding ----------------------------------------------------------------------------
Embedding::Embedding(std::size_t n, std::size_t dim, ag::Generator& gen, std::optional<std::int64_t> padding_idx)
    : padding_idx_(padding_idx) {
  if (padding_idx && (*padding_idx < -std::int64_t(n) || *padding_idx >= std::int64_t(n)))
    ag::fail("Embedding(", n, ", ", dim, "): padding_idx ", *padding_idx, " out of range (expected -", n, " <= padding_idx < ", n, ")");
  weight = register_parameter("weight", ag::randn({n, dim}, gen));
  if (padding_idx) {
    const std::size_t row = std::size_t(*padding_idx < 0 ? *padding_idx + std::int64_t(n) : *padding_idx);
    std::fill_n(weight.data<float>().data() + row * dim, dim, 0.f);
  }
}

Tensor Embedding::forward(const ag::Indices& ids) const { return ag::embedding(weight, ids, padding_idx_); }

std::string Embedding::describe() const {
  return "Embedding(" + std::to_string(weight.shape()[0]) + ", " + std::to_string(weight.shape()[1]) +
         (padding_idx_ ? ", padding_idx=" + std::to_string(*padding_idx_) : std::string()) + ")";
}

// ---- LayerNorm ----------------------------------------------------------------------------
LayerNorm::LayerNorm(std::size_t dim, double eps, bool elementwise_affine) : dim_(dim), eps_(eps) {
  if (!elementwise_affine) return;  // weight and bias stay undefined: layer_norm skips them
  weight = register_parameter("weight", ag::ones({dim}));
  bias = register_parameter("bias", ag::zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor& x) const {
  if (x.dim() == 0 || x.shape().back() != dim_)
    ag::fail("LayerNorm(", dim_, "): input ", ag::shape_str(x.shape()), " should end in ", dim_, " features");
  return ag::layer_norm(x, weight, bias, eps_);
}

std::string LayerNorm::describe() const {
  return "LayerNorm(" + std::to_string(dim_) + (weight.defined() ? "" : ", elementwise_affine=false") + ")";
}

// ---- Dropout ------------------------------------------------------------------------------
Dropout::Dropout(double p, std::uint64_t seed) : p_(p), gen_(seed) {
  if (!(p >= 0.0 && p < 1.0)) ag::fail("Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return ag::dropout(x, p_, is_training(), gen_); }

std::string Dropout::describe() const {
  std::ostringstream os;
  os << "Dropout(p=" << p_ << ")";
  return os.str();
}

// ---- activations and FeedForward ------------------------------------------------------------
Tensor activate(const Tensor& x, Activation a) {
  switch (a) {
    case Activation::relu: return ag::relu(x);
    case Activation::gelu: return ag::gelu(x);
    case Activation::gelu_tanh: return ag::gelu(x, ag::GeluApproximate::tanh);
    case Activation::tanh: return ag::tanh(x);
  }
  return x;
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu_tanh";
    case Activation::tanh: return "tanh";
  }
  return "?";
}

FeedForward::FeedForward(std::size_t dim, std::size_t hidden, ag::Generator& gen, Activation act, double p) : act_(act) {
  linear1 = register_module("linear1", std::make_shared<Linear>(dim, hidden, gen));
  dropout = register_module("dropout", std::make_shared<Dropout>(p, std::uint64_t(gen.integer(0, 1 << 30))));
  linear2 = register_module("linear2", std::make_shared<Linear>(hidden, dim, gen));
}

Tensor FeedForward::forward(const Tensor& x) { return (*linear2)((*dropout)(activate((*linear1)(x), act_))); }

std::string FeedForward::describe() const { return std::string("FeedForward(") + activation_name(act_) + ")"; }

}  // namespace nn
