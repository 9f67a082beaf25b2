// Learning sanity: small models must actually learn, in seconds. If a gradient were wrong in a
// way the checks missed, or an optimizer misbehaved, these would stall at chance.
#include <boost/test/unit_test.hpp>

#include "common/labkit.hpp"
#include "nn/optim.hpp"

using ag::Tensor;

namespace {

double recall_accuracy(lab::SequenceModel& model, const lab::RecallBatch& b) {
  ag::NoGrad no_grad;
  const auto v = model(b.one_hot).to_vector();
  std::size_t right = 0;
  for (std::size_t r = 0; r < b.size(); ++r) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < 8; ++c)
      if (v[r * 8 + c] > v[r * 8 + best]) best = c;
    right += std::int64_t(best) == b.targets.values[r];
  }
  return double(right) / double(b.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(learning)

BOOST_AUTO_TEST_CASE(tanh_rnn_learns_first_token_recall_at_T5) {
  lab::RecallTask task({.T = 5, .batch_size = 64, .seed = 1, .eval_size = 500});
  ag::Generator gen(2);
  lab::SequenceModel model({.kind = lab::ModelKind::tanh_rnn, .input_dim = 8, .hidden = 64, .output_dim = 8}, gen);
  nn::Adam opt(model.parameters(), {.lr = 3e-3});
  double acc = 0;
  for (int step = 1; step <= 600 && acc < 0.97; ++step) {
    const auto b = task.next_batch();
    const Tensor loss = ag::cross_entropy(model(b.one_hot), b.targets);
    model.zero_grad();
    loss.backward();
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    if (step % 50 == 0) acc = recall_accuracy(model, task.eval_set());
  }
  BOOST_TEST_MESSAGE("tanh RNN, recall T = 5: held-out accuracy " << acc);
  BOOST_TEST(acc >= 0.95);
}

BOOST_AUTO_TEST_CASE(one_layer_transformer_learns_reversal_of_length_8) {
  lab::ReversalTask task({.min_len = 8, .max_len = 8, .symbols = 10, .batch_size = 64, .seed = 3, .eval_size = 200});
  ag::Generator gen(4);
  const auto V = std::size_t(task.vocab_size());
  nn::TransformerSeq2Seq model(V, V, {.d_model = 64, .num_heads = 4, .dim_feedforward = 128, .dropout = 0.0, .norm_first = true},
                               1, 1, gen, 32);
  nn::Adam opt(model.parameters(), {.lr = 1e-3});
  auto token_accuracy = [&](const lab::Seq2SeqBatch& b) {
    ag::NoGrad no_grad;
    model.eval();
    const Tensor logits = model.forward(b.src, b.dec_in, lab::PAD);  // teacher forcing, [B, T, V]
    model.train();
    const auto v = logits.to_vector();
    std::size_t right = 0, counted = 0;
    for (std::size_t i = 0; i < b.dec_target.size(); ++i) {
      if (b.dec_target.values[i] == lab::IGNORE) continue;
      std::size_t best = 0;
      for (std::size_t c = 1; c < V; ++c)
        if (v[i * V + c] > v[i * V + best]) best = c;
      right += std::int64_t(best) == b.dec_target.values[i];
      ++counted;
    }
    return double(right) / double(counted);
  };
  double acc = 0;
  for (int step = 1; step <= 800 && acc < 0.97; ++step) {
    const auto b = task.next_batch();
    const Tensor logits = model.forward(b.src, b.dec_in, lab::PAD);
    const Tensor loss = ag::cross_entropy(logits, b.dec_target);
    model.zero_grad();
    loss.backward();
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    if (step % 50 == 0) acc = token_accuracy(task.eval_set());
  }
  BOOST_TEST_MESSAGE("1-layer Transformer, reversal of length 8: held-out token accuracy " << acc);
  BOOST_TEST(acc >= 0.95);
}

BOOST_AUTO_TEST_SUITE_END()
