#pragma once
// The experiment of lessons 07 and 08, in one place so that both lessons run it identically:
// train RNN encoder-decoders (nn::Seq2Seq) to reverse sequences of mixed lengths, one per seed,
// then decode held-out sequences greedily and measure the accuracy at each input length.
//
// Shape legend: B batch, S source length (= L, the input length), T decoder steps (= L + 1:
// the L reversed symbols, then EOS), V vocabulary (symbols + PAD, BOS, EOS), H hidden size.
//
//   reversal::Setup setup = options.setup(args, reversal::Setup::full());
//   std::vector<reversal::SeedRun> runs = reversal::train_seeds(setup, /*attention=*/false, args, "loss");
//   lab::SeedStats at24 = reversal::at_length(runs, 24, &reversal::LengthScore::token_acc);
//
// A claim about what training produces is read from all the seeds (median, range, "in 5 of 5
// seeds"), never from one seed's luck. Seed k of a run with --seed N is N + k, so `--seed 3`
// makes seed 3 of the default run the first one, whose examples and heatmap the lessons show.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace reversal {

// Everything that defines a run. Lessons 07 and 08 share it, so the model with and the model
// without attention get the same data, the same steps and the same optimizer.
struct Setup {
  int min_len = 4, max_len = 24;    // training lengths L, drawn uniformly per sequence
  int eval_min = 4, eval_max = 24;  // held-out lengths measured one by one
  int symbols = 10;                 // the letters a..j
  int batch = 64;                   // B
  std::int64_t steps = 1500;        // Adam steps per model, a fresh batch each
  double lr = 3e-3;                 // Adam, decayed along half a cosine to lr / 30
  double clip = 1.0;                // gradient-norm clipping
  int eval_per_length = 200;        // held-out sequences per length
  std::size_t embed = 32, hidden = 64;  // E, H
  int seeds = 5;                    // models per kind: seeds --seed, --seed + 1, ...
  // With attention: Bahdanau et al.'s bidirectional encoder (nn::Seq2SeqOptions::bidirectional_encoder),
  // lesson 08's third model. It draws the same embeddings and forward encoder as the other two.
  bool bidirectional = false;
  // With attention: the score (nn::Seq2SeqOptions::score): Bahdanau's additive, or Luong's dot,
  // general or concat, in the same wiring (lesson 08's comparison of scores).
  nn::AttentionScore score = nn::AttentionScore::additive;

  // Lesson 07's run, and lesson 08's --full: lengths 4..24, 1,500 steps, 5 seeds.
  static Setup full() { return Setup{}; }
  // Lesson 08's default run: lengths 4..16 and 600 steps, so that its twenty-five models (5 seeds;
  // without attention, with attention, over a bidirectional encoder, with the dot and the general
  // score) train in about four minutes of CPU.
  static Setup small() {
    Setup s;
    s.min_len = s.eval_min = 4, s.max_len = s.eval_max = 16, s.steps = 600;
    return s;
  }
  // --quick (the smoke tests): lengths 3..8, 100 held-out sequences per length.
  static Setup quick(int seeds, std::int64_t steps) {
    Setup s;
    s.min_len = s.eval_min = 3, s.max_len = s.eval_max = 8;
    s.steps = steps, s.eval_per_length = 100, s.seeds = seeds;
    return s;
  }
};

// The options lessons 07 and 08 share: add() before parsing, then setup() for the run.
struct SetupOptions {
  int hidden = 0, eval_max = 0, seeds = 0;  // 0 = the default
  // `normal` and `quick`: the lesson's default and --quick setups, for the help text; `other`: the
  // lesson's other modes, as "--full 24" (the longest training length there).
  void add(CLI::App& app, const Setup& normal, const Setup& quick, const std::string& other = "") {
    app.add_option("--hidden", hidden,
                   "hidden size H of encoder and decoder (default " + std::to_string(normal.hidden) + ")")
        ->check(CLI::Range(4, 1024));
    app.add_option("--eval-max", eval_max,
                   "longest held-out length (default: the longest training length, " +
                       std::to_string(normal.max_len) + (other.empty() ? "" : "; " + other) + "; --quick " +
                       std::to_string(quick.max_len) + ")")
        ->check(CLI::Range(5, 200));
    app.add_option("--seeds", seeds,
                   "models trained per kind, with seeds --seed, --seed + 1, ... (default " +
                       std::to_string(normal.seeds) + "; --quick " + std::to_string(quick.seeds) + ")")
        ->check(CLI::Range(1, 100));
  }
  // `base`: the lesson's setup for this mode (default, --full or --quick); the options change it.
  Setup setup(const lab::LessonArgs& args, Setup base) const {
    if (args.steps > 0) base.steps = args.steps;
    if (hidden) base.hidden = std::size_t(hidden);
    if (eval_max) base.eval_max = eval_max;
    if (seeds) base.seeds = seeds;
    return base;
  }
};

// "lengths 4..24, 1500 Adam steps of batch 64, H = 64, 5 seeds (0 to 4)"
inline std::string describe(const Setup& s, std::uint64_t seed) {
  const std::uint64_t last = seed + std::uint64_t(s.seeds) - 1;
  return "lengths " + std::to_string(s.min_len) + ".." + std::to_string(s.max_len) + ", " + std::to_string(s.symbols) +
         " symbols; " + std::to_string(s.steps) + " Adam steps of batch " + std::to_string(s.batch) + ", H = " +
         std::to_string(s.hidden) + "; " + std::to_string(s.seeds) + (s.seeds == 1 ? " seed (" : " seeds (") +
         std::to_string(seed) + (s.seeds == 1 ? "" : " to " + std::to_string(last)) + ")";
}

struct Trained {
  std::shared_ptr<nn::Seq2Seq> model;
  double cpu_seconds = 0;  // CPU time of the training loop
  double first_loss = 0;   // mean cross-entropy of the first 25 steps
  double final_loss = 0;   // mean cross-entropy of the last 50 steps
};

// Trains one model. Writes `loss_csv` (step, loss: the mean over each 25 steps).
inline Trained train(const Setup& s, bool attention, std::uint64_t seed, const std::filesystem::path& loss_csv,
                     bool print_model = true) {
  ag::Generator init(lab::derive_seed(seed, 10));  // both kinds: the same initial embeddings and encoder
  lab::ReversalTask task({.min_len = s.min_len, .max_len = s.max_len, .symbols = s.symbols,
                          .batch_size = s.batch, .seed = seed});
  const auto V = static_cast<std::size_t>(task.vocab_size());
  Trained out;
  out.model = std::make_shared<nn::Seq2Seq>(
      V, V,
      nn::Seq2SeqOptions{
          .embed_dim = s.embed, .hidden_size = s.hidden, .attention = attention, .bidirectional_encoder = s.bidirectional,
          .score = s.score},
      init);
  nn::Seq2Seq& model = *out.model;
  if (print_model) std::cout << model.tree();
  nn::Adam opt(model.parameters(), {.lr = s.lr});
  const nn::CosineSchedule schedule(s.lr, s.steps, /*warmup_steps=*/0, /*min_lr=*/s.lr / 30);
  lab::CurveLog log(loss_csv, {"loss"});

  const std::string kind = s.bidirectional                           ? ", bidirectional encoder"
                           : !attention                              ? ", without attention"
                           : s.score == nn::AttentionScore::additive ? ", with attention   "
                                                                     : std::string(", ") + nn::score_name(s.score) + " score";
  lab::Progress bar(s.steps, "seed " + std::to_string(seed) + kind);
  const std::clock_t start = std::clock();
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
      const double mean = window / double((step - 1) % 25 + 1);
      if (step <= 25) out.first_loss = mean;
      log.log(double(step), {mean});
      window = 0;
    }
    bar.update(step, {{"loss", l}});
  }
  bar.finish();
  out.cpu_seconds = double(std::clock() - start) / CLOCKS_PER_SEC;
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
  double token_acc = 0;    // fraction of the L output symbols that are right, position by position
  double exact_acc = 0;    // fraction of sequences entirely right (L symbols, then EOS)
  double letters_acc = 0;  // fraction of the L input letters that the first L output symbols contain,
                           // in any order (each output symbol matches at most one input letter)
  double letters_other = 0;  // the same against another input of the same length (the next held-out
                             // sequence): what an output shares with an input it was not made from
  std::vector<double> by_position{};  // [L] accuracy of output step t (t = 0: the last input symbol)
  // With attention only (NaN without): over the L symbol steps t, the fraction whose attention
  // weights peak on the mirrored source position s = L-1-t, on the one after it (s = L-t), and
  // within one position of it.
  double on_mirror = lab::kMissing, after_mirror = lab::kMissing, near_mirror = lab::kMissing;
  double peak_weight = lab::kMissing;  // with attention: the mean over those steps of the largest weight
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
  std::size_t right = 0, exact = 0, letters = 0, letters_other = 0, on_mirror = 0, after_mirror = 0, near_mirror = 0;
  double peak_weight = 0;
  // How many of the L letters of target row m the first L symbols of output row n contain, in any order.
  const auto shared_letters = [&](std::size_t n, std::size_t m) {
    std::map<std::int64_t, int> wanted;  // the letters not yet matched by an output symbol
    for (std::size_t t = 0; t < S; ++t) ++wanted[ev.dec_target.values[m * T + t]];
    std::size_t found = 0;
    for (std::size_t t = 0; t < S; ++t)
      if (auto it = wanted.find(d.ids.values[n * T + t]); it != wanted.end() && it->second > 0) --it->second, ++found;
    return found;
  };
  for (std::size_t n = 0; n < N; ++n) {
    bool all = true;
    letters += shared_letters(n, n);
    letters_other += shared_letters(n, (n + 1) % N);
    for (std::size_t t = 0; t < T; ++t) {
      const bool ok = d.ids.values[n * T + t] == ev.dec_target.values[n * T + t];
      all = all && ok;
      if (t == S) break;  // the EOS step counts for the exact match only
      r.by_position[t] += ok;
      right += ok;
      if (attention) {
        const double* row = att.data() + (n * T + t) * S;  // a_t: [S]
        const auto peak = std::int64_t(std::max_element(row, row + S) - row);
        peak_weight += row[peak];  // how much of the row's weight its peak holds
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
  r.letters_acc = double(letters) / double(N * S);
  r.letters_other = double(letters_other) / double(N * S);
  if (attention) {
    r.on_mirror = double(on_mirror) / double(N * S);
    r.after_mirror = double(after_mirror) / double(N * S);
    r.near_mirror = double(near_mirror) / double(N * S);
    r.peak_weight = peak_weight / double(N * S);
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

// The score of length L in a table from score_by_length().
inline const LengthScore& at(const std::vector<LengthScore>& t, int L) {
  for (const auto& r : t)
    if (r.L == L) return r;
  ag::fail("reversal::at: length ", L, " was not scored");
}

// ---------------------------------------------------------------------------------------------
// Several seeds

// One model of one kind, trained and scored with one seed.
struct SeedRun {
  std::uint64_t seed = 0;
  Trained trained;
  std::vector<LengthScore> scores;  // score_by_length() on this seed's held-out sets
};

// Trains and scores s.seeds models of one kind, with seeds args.seed + k (k = 0 .. s.seeds - 1).
// Seed k writes its loss curve to <loss_prefix>_seed<args.seed + k>.csv. The held-out sets
// depend on the seed too, so no two seeds are measured on the same sequences.
inline std::vector<SeedRun> train_seeds(const Setup& s, bool attention, const lab::LessonArgs& args,
                                        const std::string& loss_prefix) {
  std::vector<SeedRun> runs;
  for (int k = 0; k < s.seeds; ++k) {
    const std::uint64_t seed = args.seed + std::uint64_t(k);
    SeedRun r;
    r.seed = seed;
    r.trained = train(s, attention, seed, args.path(loss_prefix + "_seed" + std::to_string(seed) + ".csv"),
                      /*print_model=*/k == 0);
    r.scores = score_by_length(*r.trained.model, s, seed);
    runs.push_back(std::move(r));
  }
  return runs;
}

// f(run) for every seed.
template <class F>
lab::SeedStats over_seeds(const std::vector<SeedRun>& runs, F f) {
  lab::SeedStats st;
  for (const auto& r : runs) st.add(f(r));
  return st;
}
// One column at length L, over the seeds.
inline lab::SeedStats at_length(const std::vector<SeedRun>& runs, int L, double LengthScore::*field) {
  return over_seeds(runs, [&](const SeedRun& r) { return at(r.scores, L).*field; });
}
// One column's mean over the lengths in [lo, hi], over the seeds.
inline lab::SeedStats mean_over(const std::vector<SeedRun>& runs, int lo, int hi, double LengthScore::*field) {
  return over_seeds(runs, [&](const SeedRun& r) { return mean_over(r.scores, lo, hi, field); });
}

// "0.98 (0.97 to 0.99)": a median and its range over the seeds; one seed: just its value.
inline std::string median_range(const lab::SeedStats& st, int digits = 3) {
  const std::string m = lab::format_number(st.median(), digits);
  return st.size() < 2 ? m : m + " (" + st.range(digits) + ")";
}
// "every one of the 5 seeds", "4 of 5 seeds", "the one seed", "no seed": how many seeds pass.
inline std::string seeds_phrase(std::size_t passed, std::size_t total) {
  if (total == 1) return passed ? "the one seed" : "no seed (of 1)";
  if (passed == total) return "every one of the " + std::to_string(total) + " seeds";
  if (passed == 0) return "none of the " + std::to_string(total) + " seeds";
  return std::to_string(passed) + " of " + std::to_string(total) + " seeds";
}

// "39309" -> "39,309"
inline std::string grouped(long v) {
  const std::string digits = std::to_string(v < 0 ? -v : v);
  std::string s = v < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

// The checks as the terminal shows them, for the chapter: a code block.
inline std::string checks_block(const lab::Checks& checks) {
  std::ostringstream s;
  checks.report(s);
  std::string text = s.str();
  while (!text.empty() && text.front() == '\n') text.erase(text.begin());
  return "```\n" + text + "```\n";
}

}  // namespace reversal
