#pragma once
// The experiment of lessons 07 and 08, in one place so that both lessons run it identically:
// train an RNN encoder-decoder (nn::Seq2Seq) to reverse sequences of mixed lengths, then
// decode held-out sequences greedily and measure the accuracy at each input length.
//
// Shape legend: B batch, S source length (= L, the input length), T decoder steps (= L + 1:
// the L reversed symbols, then EOS), V vocabulary (symbols + PAD, BOS, EOS), H hidden size.
//
//   reversal::Setup setup = reversal::Setup::for_run(args.quick);
//   reversal::Trained t = reversal::train(setup, /*attention=*/false, args.seed, args.path("loss_plain.csv"));
//   std::vector<reversal::LengthScore> table = reversal::score_by_length(*t.model, setup, args.seed);
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace reversal {

// Everything that defines a run. Lessons 07 and 08 use the same Setup, so the model with and
// the model without attention get the same data, the same steps and the same optimizer.
struct Setup {
  int min_len = 4, max_len = 24;  // training lengths L, drawn uniformly per sequence
  int eval_min = 4, eval_max = 24;  // held-out lengths measured one by one
  int symbols = 10;                 // the letters a..j
  int batch = 64;                   // B
  std::int64_t steps = 1500;        // Adam steps, a fresh batch each
  double lr = 3e-3;                 // Adam, decayed along half a cosine to lr / 30
  double clip = 1.0;                // gradient-norm clipping
  int eval_per_length = 200;        // held-out sequences per length
  std::size_t embed = 32, hidden = 64;  // E, H

  // The default run, or the --quick one (shorter sequences, fewer steps: seconds, not minutes).
  static Setup for_run(bool quick) {
    Setup s;
    if (quick) {
      s.min_len = 3, s.max_len = 10, s.eval_min = 3, s.eval_max = 10;
      s.steps = 400, s.eval_per_length = 100;
    }
    return s;
  }
};

// The options lessons 07 and 08 share: add() before parsing, then setup() for the run.
struct SetupOptions {
  int hidden = 0, eval_max = 0;  // 0 = the default
  void add(CLI::App& app) {
    app.add_option("--hidden", hidden, "hidden size H of encoder and decoder (default 64)")->check(CLI::Range(4, 1024));
    app.add_option("--eval-max", eval_max, "longest held-out length (default: the longest training length, 24)")
        ->check(CLI::Range(5, 200));
  }
  Setup setup(const lab::LessonArgs& args) const {
    Setup s = Setup::for_run(args.quick);
    s.steps = args.steps_or(s.steps, s.steps);
    if (hidden) s.hidden = std::size_t(hidden);
    if (eval_max) s.eval_max = eval_max;
    return s;
  }
};

struct Trained {
  std::shared_ptr<nn::Seq2Seq> model;
  double seconds = 0;      // training wall time
  double final_loss = 0;   // mean cross-entropy of the last 50 steps
};

// Trains one model. Writes `loss_csv` (step, loss: the mean over each 25 steps).
inline Trained train(const Setup& s, bool attention, std::uint64_t seed, const std::filesystem::path& loss_csv) {
  ag::Generator init(lab::derive_seed(seed, 10));  // both kinds: the same initial embeddings and encoder
  lab::ReversalTask task({.min_len = s.min_len, .max_len = s.max_len, .symbols = s.symbols,
                          .batch_size = s.batch, .seed = seed});
  const auto V = static_cast<std::size_t>(task.vocab_size());
  Trained out;
  out.model = std::make_shared<nn::Seq2Seq>(
      V, V, nn::Seq2SeqOptions{.embed_dim = s.embed, .hidden_size = s.hidden, .attention = attention}, init);
  nn::Seq2Seq& model = *out.model;
  std::cout << model.tree();
  nn::Adam opt(model.parameters(), {.lr = s.lr});
  const nn::CosineSchedule schedule(s.lr, s.steps, /*warmup_steps=*/0, /*min_lr=*/s.lr / 30);
  lab::CurveLog log(loss_csv, {"loss"});

  lab::Progress bar(s.steps, attention ? "train with attention   " : "train without attention");
  const auto start = std::chrono::steady_clock::now();
  double window = 0, last50 = 0;
  for (std::int64_t step = 1; step <= s.steps; ++step) {
    const lab::Seq2SeqBatch b = task.next_batch();  // src [B,S], dec_in [B,T], dec_target [B,T]
    opt.zero_grad();
    // Teacher forcing: the decoder reads the true previous symbol (dec_in) at every step.
    const ag::Tensor logits = model.forward(b.src, b.dec_in, lab::PAD).logits;  // [B, T, V]
    const std::size_t BT = b.dec_target.size();
    // Padding positions of dec_target hold -100, which cross_entropy ignores.
    const ag::Tensor loss = ag::cross_entropy(logits.reshape({std::int64_t(BT), std::int64_t(V)}),
                                              ag::Indices(b.dec_target.values, {BT}));
    loss.backward();
    nn::clip_grad_norm(model.parameters(), s.clip);
    opt.set_lr(schedule.lr(step));
    opt.step();

    const double l = loss.item();
    window += l;
    if (step > s.steps - 50) last50 += l;
    if (step % 25 == 0 || step == s.steps) {
      log.log(double(step), {window / double((step - 1) % 25 + 1)});
      window = 0;
    }
    bar.update(step, {{"loss", l}});
  }
  bar.finish();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.final_loss = last50 / double(std::min<std::int64_t>(50, s.steps));
  return out;
}

// The held-out set of length L: its own seed, never the training stream.
inline lab::ReversalTask eval_task(const Setup& s, int L, std::uint64_t seed) {
  return lab::ReversalTask({.min_len = L, .max_len = L, .symbols = s.symbols, .batch_size = s.batch,
                            .seed = lab::derive_seed(seed, 1000 + std::uint64_t(L)), .eval_size = s.eval_per_length});
}

struct LengthScore {
  int L = 0;
  double token_acc = 0;  // fraction of the L output symbols that are right, position by position
  double exact_acc = 0;  // fraction of sequences entirely right (L symbols, then EOS)
  std::vector<double> by_position{};  // [L] accuracy of output step t (t = 0: the last input symbol)
  // With attention only (NaN without): over the L symbol steps t, the fraction whose attention
  // weights peak on the mirrored source position s = L-1-t, on the one after it (s = L-t), and
  // within one position of it.
  double on_mirror = lab::kMissing, after_mirror = lab::kMissing, near_mirror = lab::kMissing;
};

// Greedy decoding (the model reads its own previous output, not the truth) of the held-out
// sequences of length L, scored against the reversed source.
inline LengthScore score_length(nn::Seq2Seq& model, const Setup& s, int L, std::uint64_t seed) {
  const lab::ReversalTask task = eval_task(s, L, seed);
  const lab::Seq2SeqBatch& ev = task.eval_set();  // src [N, L], dec_target [N, L+1]
  const std::size_t N = ev.size(), S = std::size_t(L), T = S + 1;
  const nn::Seq2Seq::Decoded d = model.greedy_decode(ev.src, lab::BOS, T, lab::PAD);  // ids [N, T]
  const bool attention = d.attention.defined();
  const std::vector<double> att = attention ? d.attention.to_vector() : std::vector<double>{};  // [N, T, S]

  LengthScore r{.L = L, .by_position = std::vector<double>(S, 0.0)};
  std::size_t right = 0, exact = 0, on_mirror = 0, after_mirror = 0, near_mirror = 0;
  for (std::size_t n = 0; n < N; ++n) {
    bool all = true;
    for (std::size_t t = 0; t < T; ++t) {
      const bool ok = d.ids.values[n * T + t] == ev.dec_target.values[n * T + t];
      all = all && ok;
      if (t == S) break;  // the EOS step counts for the exact match only
      r.by_position[t] += ok;
      right += ok;
      if (attention) {
        const double* row = att.data() + (n * T + t) * S;  // a_t: [S]
        const auto peak = std::int64_t(std::max_element(row, row + S) - row);
        const std::int64_t mirror = std::int64_t(S - 1 - t);
        on_mirror += peak == mirror;
        after_mirror += peak == mirror + 1;
        near_mirror += std::abs(peak - mirror) <= 1;
      }
    }
    exact += all;
  }
  for (double& p : r.by_position) p /= double(N);
  r.token_acc = double(right) / double(N * S);
  r.exact_acc = double(exact) / double(N);
  if (attention) {
    r.on_mirror = double(on_mirror) / double(N * S);
    r.after_mirror = double(after_mirror) / double(N * S);
    r.near_mirror = double(near_mirror) / double(N * S);
  }
  return r;
}

// score_length() for every held-out length in [eval_min, eval_max].
inline std::vector<LengthScore> score_by_length(nn::Seq2Seq& model, const Setup& s, std::uint64_t seed) {
  std::vector<LengthScore> table;
  for (int L = s.eval_min; L <= s.eval_max; ++L) table.push_back(score_length(model, s, L, seed));
  return table;
}

// Mean of one column over the lengths in [lo, hi].
inline double mean_over(const std::vector<LengthScore>& t, int lo, int hi, double LengthScore::*field) {
  double sum = 0;
  int n = 0;
  for (const auto& r : t)
    if (r.L >= lo && r.L <= hi) sum += r.*field, ++n;
  return n ? sum / n : lab::kMissing;
}

}  // namespace reversal
