#pragma once
// A categorical distribution over the last axis of a tensor of logits, as PyTorch's
// torch.distributions.Categorical(logits=...): what a policy-gradient learner needs from it
// (hard attention, lesson 19): a draw, the log-probability of a draw (differentiable: REINFORCE's
// gradient is reward * grad log p(draw); Williams 1992), and the entropy (an exploration bonus).
// Shape legend: B rows (examples), V categories.
#include "ag/ops.hpp"

namespace nn {

using ag::Tensor;

class Categorical {
 public:
  // logits: [B, V] (or [V]: one row), any real numbers; -inf rules a category out (p = 0).
  // p = softmax(logits) per row. Errors (ag::Error): another rank, V = 0.
  explicit Categorical(Tensor logits);

  // One category per row, drawn from p with `gen` (one uniform number per row, compared with the
  // cumulative probabilities in category order: a fixed seed gives fixed draws): [B] ids. No
  // gradient flows through a draw.
  ag::Indices sample(ag::Generator& gen) const;
  // log p(value_b) per row: [B], differentiable with respect to the logits. value: [B] ids in
  // [0, V). Errors: a size other than B, an id out of range.
  Tensor log_prob(const ag::Indices& value) const;
  // H(p) = -sum_v p_v log p_v per row: [B] nats, differentiable. A category with p = 0 adds 0
  // (its log p is clamped to the lowest finite number, as PyTorch does).
  Tensor entropy() const;
  Tensor probs() const;                            // softmax(logits): [B, V]
  const Tensor& logits() const { return logits_; }  // [B, V] (a [V] input gains the row axis)

 private:
  Tensor logits_, log_p_;  // log_p_ = log_softmax(logits): [B, V]
};

}  // namespace nn
