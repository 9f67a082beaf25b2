#include "nn/distributions.hpp"

#include <limits>

#include "nn/sampling.hpp"

namespace nn {

Categorical::Categorical(Tensor logits) {
  if (!logits.defined() || (logits.dim() != 1 && logits.dim() != 2) || logits.shape().back() == 0)
    ag::fail("Categorical: logits should be [B, V] or [V] with V >= 1, got ",
             logits.defined() ? ag::shape_str(logits.shape()) : std::string("an undefined tensor"));
  logits_ = logits.dim() == 1 ? ag::unsqueeze(logits, 0) : logits;
  log_p_ = ag::log_softmax(logits_, -1);
}

ag::Indices Categorical::sample(ag::Generator& gen) const { return nn::sample(logits_.detach(), {}, gen); }

Tensor Categorical::log_prob(const ag::Indices& value) const {
  const std::size_t B = logits_.shape()[0], V = logits_.shape()[1];
  if (value.size() != B) ag::fail("Categorical::log_prob: ", value.size(), " values for logits ", ag::shape_str(logits_.shape()), "; one per row");
  for (std::int64_t v : value.values)
    if (v < 0 || std::size_t(v) >= V) ag::fail("Categorical::log_prob: value ", v, " outside [0, ", V, ") for logits ", ag::shape_str(logits_.shape()));
  // -cross_entropy without reduction is log p at each row's value: a differentiable gather.
  return ag::neg(ag::cross_entropy(logits_, ag::Indices(value.values, {B}), {.reduction = ag::Reduction::none}));
}

Tensor Categorical::entropy() const {
  const Tensor finite_log_p = ag::clamp(log_p_, std::numeric_limits<double>::lowest(), 0.0);
  return ag::neg(ag::sum(ag::exp(log_p_) * finite_log_p, {-1}));
}

Tensor Categorical::probs() const { return ag::exp(log_p_); }

}  // namespace nn
