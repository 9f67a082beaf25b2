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

// Trains on recall (Adam, clipping 1.0) until the held-out accuracy, read every 50 steps, reaches
// 0.97 or max_steps pass; returns the last accuracy read.
double train_recall(lab::SequenceModel& model, lab::RecallTask& task, int max_steps, double lr) {
  nn::Adam opt(model.parameters(), {.lr = lr});
  double acc = 0;
  for (int step = 1; step <= max_steps && acc < 0.97; ++step) {
    const auto b = task.next_batch();
    const Tensor loss = ag::cross_entropy(model(b.one_hot), b.targets);
    model.zero_grad();
    loss.backward();
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    if (step % 50 == 0) acc = recall_accuracy(model, task.eval_set());
  }
  return acc;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(learning)

BOOST_AUTO_TEST_CASE(tanh_rnn_learns_first_token_recall_at_T5) {
  lab::RecallTask task({.T = 5, .batch_size = 64, .seed = 1, .eval_size = 500});
  ag::Generator gen(2);
  lab::SequenceModel model({.kind = lab::ModelKind::tanh_rnn, .input_dim = 8, .hidden = 64, .output_dim = 8}, gen);
  const double acc = train_recall(model, task, 600, 3e-3);
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

// Lesson 18's claim in small: at T = 24 with a window of 4, the last position cannot see the
// first token (the window model stays near chance), while position 0 as a global token lets a
// one-layer model read it straight from the last position.
BOOST_AUTO_TEST_CASE(window_global_learns_recall_a_plain_window_cannot) {
  for (lab::ModelKind kind : {lab::ModelKind::window_global, lab::ModelKind::window}) {
    BOOST_TEST((lab::parse_model(lab::model_slug(kind)) == kind));
    lab::RecallTask task({.T = 24, .batch_size = 64, .seed = 5, .eval_size = 500});
    ag::Generator gen(6);
    lab::SequenceModel model({.kind = kind, .input_dim = 8, .hidden = 32, .output_dim = 8, .heads = 2, .window = 4}, gen);
    BOOST_TEST(model.describe().find("window=4") != std::string::npos);
    const double acc = train_recall(model, task, 300, 3e-3);
    BOOST_TEST_MESSAGE(lab::model_name(kind) << ", recall T = 24, window 4: held-out accuracy " << acc);
    if (kind == lab::ModelKind::window_global) BOOST_TEST(acc >= 0.95);
    else BOOST_TEST(acc <= 0.3);
  }
  BOOST_CHECK_THROW(lab::parse_model("longformer"), ag::Error);
}

BOOST_AUTO_TEST_SUITE_END()
