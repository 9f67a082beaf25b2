#pragma once
// Soft and hard attention over key/value pairs (lesson 19): a reader for the retrieval task
// (lab::RetrievalTask), and the REINFORCE estimator that trains hard attention (Williams 1992;
// Mnih et al. 2014; Xu et al. 2015, section 4.1).
//
// Shape legend: B batch, N key/value pairs, K key symbols, V value symbols, D width (d_model).
//
// The reader scores every pair against the query, then reads values:
//   q   = W_q E_key[query]                 [B, D]     the query symbol's embedding, projected
//   k_n = W_k E_key[key_n]                 [B, N, D]  each key, projected
//   s_n = q . k_n / sqrt(D)                [B, N]     scores; a = softmax(s), the attention distribution
//   soft: r = sum_n a_n E_val[value_n]     [B, D]     reads all N values, a weighted average
//   hard: n* ~ Categorical(a); r = E_val[value_n*]    reads one value
//   logits = W_o r + b_o                   [B, V]
//
// A drawn position has no gradient, so hard attention's scores learn by REINFORCE. With the
// reward R = log p(target | r) = -loss of the read (Xu et al.'s log-likelihood reward), a baseline
// b that does not depend on the draw, and an entropy bonus beta, one draw gives the surrogate
//   mean_b [ loss_b - (R_b - b) log a_{n*_b} ] - beta mean_b H(a_b)
// whose gradient is an unbiased estimate of the gradient of expected_loss():
//   E_{n* ~ a}[loss] - beta H(a) = sum_n a_n loss_n - beta H(a)     (mean over rows)
// The first term gives the classifier its gradient through the read it got; the second moves the
// scores: up for positions whose read did better than b, down otherwise. b changes only the
// variance of the estimate, not its mean (sum_n grad a_n = 0).
#include <memory>
#include <string>
#include <vector>

#include "common/tasks.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace lab {

using ag::Tensor;

struct RetrievalReaderOptions {
  std::size_t keys = 32;     // K: key symbols (the query is one of them)
  std::size_t values = 16;   // V: value symbols, the classes
  std::size_t d_model = 32;  // D
};

class RetrievalReader : public nn::Module {
 public:
  RetrievalReader(const RetrievalReaderOptions& o, ag::Generator& gen);
  // s: [B, N], the score of every pair against the query (before the softmax).
  Tensor scores(const RetrievalBatch& b) const;
  // Soft attention: logits [B, V] from the weighted average of all N values.
  Tensor soft_logits(const RetrievalBatch& b) const;
  // Hard attention's read: logits [B, V] from the value at positions[b] ([B] ids in [0, N)).
  Tensor read_logits(const RetrievalBatch& b, const ag::Indices& positions) const;
  // Every possible read: logits [B, N, V] (what expected_loss sums over).
  Tensor every_read_logits(const RetrievalBatch& b) const;
  // The parameters of the scores alone (embeddings of keys, W_q, W_k): what REINFORCE trains.
  std::vector<Tensor> score_parameters() const;
  std::string describe() const override;

  std::shared_ptr<nn::Embedding> key_embedding, value_embedding;
  std::shared_ptr<nn::Linear> query_proj, key_proj, head;

 private:
  RetrievalReaderOptions o_;
};

// Errors (ag::Error) of the functions below: a batch whose keys or values are out of the reader's
// ranges, positions of another size or out of [0, N).

// One REINFORCE estimate for a batch: one position per row drawn from softmax(scores) with gen.
struct HardAttentionStep {
  Tensor loss;                      // the surrogate above, a scalar: loss.backward() gives the estimate
  double read_loss = 0;             // mean_b loss_b of the reads drawn (nats)
  std::vector<double> reward;       // R_b = -loss_b, one per row
  ag::Indices positions;            // [B] the drawn positions
};
HardAttentionStep hard_attention_step(const RetrievalReader& m, const RetrievalBatch& b, ag::Generator& gen, double baseline,
                                      double entropy_bonus);

// The objective hard attention's estimate is unbiased for, computed exactly by summing over all N
// reads: mean_b (sum_n a_bn loss_bn - beta H(a_b)). A scalar.
Tensor expected_loss(const RetrievalReader& m, const RetrievalBatch& b, double entropy_bonus);

// The moving-average baseline: b <- decay b + (1 - decay) mean reward; the first update sets it.
class MovingAverageBaseline {
 public:
  explicit MovingAverageBaseline(double decay = 0.9) : decay_(decay) {}
  double value() const { return value_; }
  void update(const std::vector<double>& reward);

 private:
  double decay_, value_ = 0;
  bool started_ = false;
};

// Runs loss.backward() from zeroed gradients and returns the gradient of m.score_parameters() as
// one flat vector: one estimate, for measuring the spread of REINFORCE's estimates.
std::vector<double> score_gradient(RetrievalReader& m, const Tensor& loss);

// Accuracy of logits [B, V] against the batch's targets.
double accuracy(const Tensor& logits, const RetrievalBatch& b);
// The position of the largest score in each row (the first on ties): hard attention's read at
// inference, when nothing needs to be explored. [B] ids.
ag::Indices argmax_positions(const Tensor& scores);

}  // namespace lab
