// Soft and hard attention over key/value pairs. See hard_attention.hpp for the formulas.
#include "common/hard_attention.hpp"

#include <cmath>

#include "ag/error.hpp"
#include "ag/ops.hpp"
#include "nn/distributions.hpp"

namespace lab {

namespace {

void check_batch(const char* op, const RetrievalBatch& b, const RetrievalReaderOptions& o) {
  const std::size_t B = b.size(), N = b.pairs();
  if (B == 0 || b.keys.shape != ag::Shape{B, N} || b.values.shape != ag::Shape{B, N} || b.query.size() != B)
    ag::fail(op, ": a batch of keys ", ag::shape_str(b.keys.shape), ", values ", ag::shape_str(b.values.shape), ", query [",
             b.query.size(), "], targets [", B, "]; expected [B, N], [B, N], [B], [B]");
  for (std::int64_t k : b.keys.values)
    if (k < 0 || std::size_t(k) >= o.keys) ag::fail(op, ": key ", k, " outside the reader's [0, ", o.keys, ")");
  for (std::int64_t k : b.query.values)
    if (k < 0 || std::size_t(k) >= o.keys) ag::fail(op, ": query ", k, " outside the reader's [0, ", o.keys, ")");
  for (std::int64_t v : b.values.values)
    if (v < 0 || std::size_t(v) >= o.values) ag::fail(op, ": value ", v, " outside the reader's [0, ", o.values, ")");
}

}  // namespace

RetrievalReader::RetrievalReader(const RetrievalReaderOptions& o, ag::Generator& gen) : o_(o) {
  key_embedding = register_module("key_embedding", std::make_shared<nn::Embedding>(o.keys, o.d_model, gen));
  value_embedding = register_module("value_embedding", std::make_shared<nn::Embedding>(o.values, o.d_model, gen));
  query_proj = register_module("query_proj", std::make_shared<nn::Linear>(o.d_model, o.d_model, gen, false));
  key_proj = register_module("key_proj", std::make_shared<nn::Linear>(o.d_model, o.d_model, gen, false));
  head = register_module("head", std::make_shared<nn::Linear>(o.d_model, o.values, gen));
}

Tensor RetrievalReader::scores(const RetrievalBatch& b) const {
  check_batch("RetrievalReader::scores", b, o_);
  const Tensor q = query_proj->forward(key_embedding->forward(b.query));  // [B, D]
  const Tensor k = key_proj->forward(key_embedding->forward(b.keys));     // [B, N, D]
  const Tensor s = ag::squeeze(ag::matmul(k, ag::unsqueeze(q, 2)), 2);    // [B, N]
  return ag::mul(s, 1.0 / std::sqrt(double(o_.d_model)));
}

Tensor RetrievalReader::soft_logits(const RetrievalBatch& b) const {
  const Tensor a = ag::softmax(scores(b), -1);                                                          // [B, N]
  const Tensor read = ag::squeeze(ag::matmul(ag::unsqueeze(a, 1), value_embedding->forward(b.values)), 1);  // [B, D]
  return head->forward(read);
}

Tensor RetrievalReader::read_logits(const RetrievalBatch& b, const ag::Indices& positions) const {
  check_batch("RetrievalReader::read_logits", b, o_);
  const std::size_t B = b.size(), N = b.pairs();
  if (positions.size() != B)
    ag::fail("RetrievalReader::read_logits: ", positions.size(), " positions for a batch of ", B, "; one per row");
  std::vector<std::int64_t> read(B);
  for (std::size_t r = 0; r < B; ++r) {
    const std::int64_t n = positions.values[r];
    if (n < 0 || std::size_t(n) >= N) ag::fail("RetrievalReader::read_logits: position ", n, " outside [0, ", N, ")");
    read[r] = b.values.values[r * N + std::size_t(n)];
  }
  // Only the one value is looked up: hard attention's read costs D, not N D.
  return head->forward(value_embedding->forward(ag::Indices(std::move(read), {B})));
}

Tensor RetrievalReader::every_read_logits(const RetrievalBatch& b) const {
  check_batch("RetrievalReader::every_read_logits", b, o_);
  return head->forward(value_embedding->forward(b.values));  // [B, N, V]
}

std::vector<Tensor> RetrievalReader::score_parameters() const {
  return {key_embedding->weight, query_proj->weight, key_proj->weight};
}

std::string RetrievalReader::describe() const {
  return "RetrievalReader(keys=" + std::to_string(o_.keys) + ", values=" + std::to_string(o_.values) +
         ", d_model=" + std::to_string(o_.d_model) + ")";
}

HardAttentionStep hard_attention_step(const RetrievalReader& m, const RetrievalBatch& b, ag::Generator& gen, double baseline,
                                      double entropy_bonus) {
  const std::size_t B = b.size();
  const nn::Categorical attention(m.scores(b));
  HardAttentionStep step;
  step.positions = attention.sample(gen);
  const Tensor read_loss = ag::cross_entropy(m.read_logits(b, step.positions), b.targets, {.reduction = ag::Reduction::none});  // [B]
  const std::vector<double> losses = read_loss.to_vector();
  std::vector<double> advantage(B);
  step.reward.resize(B);
  for (std::size_t r = 0; r < B; ++r) {
    step.reward[r] = -losses[r];
    step.read_loss += losses[r] / double(B);
    advantage[r] = step.reward[r] - baseline;
  }
  // The advantage is a constant (no gradient): only log a_{n*} carries the score's gradient.
  const Tensor adv = ag::tensor(advantage, {B}, {.dtype = read_loss.dtype()});
  step.loss = ag::mean(read_loss) - ag::mean(adv * attention.log_prob(step.positions)) - ag::mul(ag::mean(attention.entropy()), entropy_bonus);
  return step;
}

Tensor expected_loss(const RetrievalReader& m, const RetrievalBatch& b, double entropy_bonus) {
  const std::size_t B = b.size(), N = b.pairs();
  const nn::Categorical attention(m.scores(b));
  const Tensor logits = m.every_read_logits(b);  // [B, N, V]
  std::vector<std::int64_t> targets(B * N);
  for (std::size_t r = 0; r < B; ++r)
    for (std::size_t n = 0; n < N; ++n) targets[r * N + n] = b.targets.values[r];
  const Tensor losses = ag::reshape(ag::cross_entropy(ag::reshape(logits, {std::int64_t(B * N), -1}), ag::Indices(std::move(targets), {B * N}),
                                                      {.reduction = ag::Reduction::none}),
                                    {std::int64_t(B), std::int64_t(N)});  // [B, N]
  return ag::mean(ag::sum(attention.probs() * losses, {1})) - ag::mul(ag::mean(attention.entropy()), entropy_bonus);
}

void MovingAverageBaseline::update(const std::vector<double>& reward) {
  if (reward.empty()) return;
  double mean = 0;
  for (double r : reward) mean += r / double(reward.size());
  value_ = started_ ? decay_ * value_ + (1 - decay_) * mean : mean;
  started_ = true;
}

std::vector<double> score_gradient(RetrievalReader& m, const Tensor& loss) {
  m.zero_grad();
  loss.backward();
  std::vector<double> g;
  for (const Tensor& p : m.score_parameters()) {
    const std::vector<double> v = p.grad().to_vector();
    g.insert(g.end(), v.begin(), v.end());
  }
  return g;
}

double accuracy(const Tensor& logits, const RetrievalBatch& b) {
  return double(count_correct(logits, b.targets)) / double(b.size());
}

ag::Indices argmax_positions(const Tensor& scores) {
  if (scores.dim() != 2) ag::fail("argmax_positions: scores ", ag::shape_str(scores.shape()), " should be [B, N]");
  const std::size_t B = scores.size(0), N = scores.size(1);
  const std::vector<double> s = scores.to_vector();
  std::vector<std::int64_t> best(B, 0);
  for (std::size_t r = 0; r < B; ++r)
    for (std::size_t n = 1; n < N; ++n)
      if (s[r * N + n] > s[r * N + std::size_t(best[r])]) best[r] = std::int64_t(n);
  return ag::Indices(std::move(best), {B});
}

}  // namespace lab
