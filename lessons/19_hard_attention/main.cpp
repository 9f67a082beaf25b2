// Lesson 19: hard attention, trained with REINFORCE (Williams 1992; Mnih et al. 2014; Xu et al. 2015).
//
// Soft attention reads a weighted average of every value; hard attention draws ONE position from
// the same distribution and reads only that value. The draw has no gradient, so the scores learn
// from a policy gradient: log a_{n*} times how much better than usual the read did. This lesson
// trains both on key/value retrieval (lab::RetrievalTask: the value stored under a query key among
// N = 64 pairs), side by side from the same initial weights and batches, and measures
//   1) held-out accuracy against training steps: soft, hard with a moving-average baseline, hard
//      without one (the entropy bonus in both hard runs);
//   2) the variance of hard attention's gradient estimate, with and without the baseline, from
//      repeated draws at fixed weights, against the exact gradient (a sum over all N reads);
//   3) the cost of a read at inference: one value against all of them;
//   4) steps to 0.9 against N = 16 to 128.
// The reader and the estimator: lessons/common/hard_attention.hpp.
//
// Shape legend: B batch, N key/value pairs (64; --pairs), K key symbols (2 N), V value symbols (16), D width (32).
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/cpu_time.hpp"
#include "common/hard_attention.hpp"
#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

using ag::Tensor;
using lab::format_number;

std::string fmt(double v, int digits = 3) { return format_number(v, digits); }
std::string plain(double v) {  // 0.003, 0.9: as a reader writes a setting
  std::ostringstream o;
  o << v;
  return o.str();
}
// Steps: "150 (100 to 200)", whole numbers.
std::string steps_range(const lab::SeedStats& v) {
  return std::to_string(std::lround(v.median())) + " (" + std::to_string(std::lround(v.min())) + " to " + std::to_string(std::lround(v.max())) + ")";
}

enum Learner { kSoft, kHard, kHardNoBaseline, kLearners };
const char* const kSlug[kLearners] = {"soft", "hard", "hard_no_baseline"};
const char* const kName[kLearners] = {"soft attention", "hard attention, baseline", "hard attention, no baseline"};

struct Settings {
  std::int64_t steps = 3000;
  std::int64_t eval_every = 50;
  double lr = 3e-3;
  double entropy_bonus = 0.01;
  double baseline_decay = 0.9;
  std::size_t variance_draws = 200;  // one-draw estimates per variance measurement
  std::vector<std::int64_t> variance_at;  // steps at which the hard learner's estimate is measured
  lab::RetrievalOptions task{.pairs = 64, .keys = 128, .values = 16, .batch_size = 32};  // pairs and keys: set in main
  lab::RetrievalReaderOptions reader{.keys = 128, .values = 16, .d_model = 32};
};

// The spread of one-draw estimates of the score parameters' gradient at fixed weights, on a fixed
// batch: total variance (the sum over elements of each element's variance) with the baseline b and
// with 0, and the squared norm of the exact gradient for scale.
struct Variance {
  std::int64_t step = 0;
  double baseline = 0;  // the moving average's value then
  double with_baseline = 0, without = 0, exact_sq = 0;
};

Variance measure_variance(lab::RetrievalReader& m, const lab::RetrievalBatch& batch, double baseline, const Settings& s,
                          std::uint64_t seed) {
  Variance v;
  for (double g : lab::score_gradient(m, lab::expected_loss(m, batch, s.entropy_bonus))) v.exact_sq += g * g;
  for (int with = 0; with < 2; ++with) {
    ag::Generator draws(seed);  // the same draws for both: only the baseline differs
    std::vector<double> sum, sum_sq;
    for (std::size_t i = 0; i < s.variance_draws; ++i) {
      const lab::HardAttentionStep step = lab::hard_attention_step(m, batch, draws, with ? baseline : 0.0, s.entropy_bonus);
      const std::vector<double> g = lab::score_gradient(m, step.loss);
      sum.resize(g.size()), sum_sq.resize(g.size());
      for (std::size_t j = 0; j < g.size(); ++j) sum[j] += g[j], sum_sq[j] += g[j] * g[j];
    }
    double total = 0;
    const double M = double(s.variance_draws);
    for (std::size_t j = 0; j < sum.size(); ++j) total += std::max(0.0, (sum_sq[j] - sum[j] * sum[j] / M) / (M - 1));
    (with ? v.with_baseline : v.without) = total;
  }
  m.zero_grad();
  return v;
}

struct Run {
  std::vector<double> accuracy;   // held-out, at step 0, eval_every, 2 eval_every, ...
  double final_accuracy = 0;
  double sampled_accuracy = 0;    // hard learners: reading a drawn position instead of the argmax
  double mass_on_answer = 0;      // mean attention weight on the queried pair, held out
  std::int64_t steps_to_90 = -1;  // first evaluation at >= 0.9 (-1: never)
  std::vector<Variance> variance; // the hard learner with the baseline only
  double seconds = 0;             // CPU seconds of training
};

double held_out(const lab::RetrievalReader& m, const lab::RetrievalBatch& ev, Learner who) {
  ag::NoGrad no_grad;
  if (who == kSoft) return lab::accuracy(m.soft_logits(ev), ev);
  return lab::accuracy(m.read_logits(ev, lab::argmax_positions(m.scores(ev))), ev);
}

Run train(Learner who, const Settings& s, std::uint64_t seed, const std::string& label) {
  ag::Generator init(seed);
  lab::RetrievalReader m(s.reader, init);  // the same initial weights for every learner of a seed
  lab::RetrievalTask task({.pairs = s.task.pairs, .keys = s.task.keys, .values = s.task.values,
                           .batch_size = s.task.batch_size, .seed = seed});  // and the same batches
  ag::Generator draws(lab::derive_seed(seed, 3));
  nn::Adam opt(m.parameters(), {.lr = s.lr});
  lab::MovingAverageBaseline baseline(s.baseline_decay);
  const lab::RetrievalBatch& ev = task.eval_set();
  ag::Generator probe_gen(lab::derive_seed(seed, 4));
  const lab::RetrievalBatch probe = task.sample(probe_gen, 32);  // the fixed batch the variance is measured on
  Run r;
  const auto started = lab::thread_cpu_clock::now();
  auto evaluate = [&](std::int64_t step) {
    r.accuracy.push_back(held_out(m, ev, who));
    if (r.steps_to_90 < 0 && r.accuracy.back() >= 0.9) r.steps_to_90 = step;
  };
  evaluate(0);
  lab::Progress bar(s.steps, std::string(kSlug[who]) + ", " + label);
  for (std::int64_t step = 1; step <= s.steps; ++step) {
    if (who == kHard && std::find(s.variance_at.begin(), s.variance_at.end(), step - 1) != s.variance_at.end()) {
      Variance v = measure_variance(m, probe, baseline.value(), s, lab::derive_seed(seed, 5 + std::uint64_t(step)));
      v.step = step - 1, v.baseline = baseline.value();
      r.variance.push_back(v);
    }
    const lab::RetrievalBatch b = task.next_batch();
    opt.zero_grad();
    double loss = 0;
    if (who == kSoft) {
      const Tensor l = ag::cross_entropy(m.soft_logits(b), b.targets);
      l.backward();
      loss = l.item();
    } else {
      const lab::HardAttentionStep hs =
          lab::hard_attention_step(m, b, draws, who == kHard ? baseline.value() : 0.0, s.entropy_bonus);
      hs.loss.backward();
      if (who == kHard) baseline.update(hs.reward);
      loss = hs.read_loss;
    }
    opt.step();
    if (step % s.eval_every == 0) evaluate(step);
    if (step % 50 == 0 || step == s.steps) bar.update(step, {{"loss", loss}, {"held-out", r.accuracy.back()}});
  }
  if (s.steps % s.eval_every != 0) evaluate(s.steps);  // the final accuracy is the final weights'
  
  r.seconds = std::chrono::duration<double>(lab::thread_cpu_clock::now() - started).count();
  r.final_accuracy = r.accuracy.back();
  {
    ag::NoGrad no_grad;
    const Tensor a = ag::softmax(m.scores(ev), -1);
    const std::vector<double> w = a.to_vector();
    const std::size_t N = ev.pairs();
    for (std::size_t b = 0; b < ev.size(); ++b) r.mass_on_answer += w[b * N + std::size_t(ev.position.values[b])] / double(ev.size());
    if (who != kSoft) {
      ag::Generator g(lab::derive_seed(seed, 6));
      r.sampled_accuracy = lab::accuracy(m.read_logits(ev, nn::Categorical(m.scores(ev)).sample(g)), ev);
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("19_hard_attention", "Hard attention trained with REINFORCE against soft attention, on key/value retrieval");
  cli.steps_help("training steps of each learner, one batch of 32 fresh sequences each (default 3000; --quick 600)");
  std::size_t seeds = 5;
  Settings s;
  cli.app().add_option("--seeds", seeds, "seeds, each training all three learners (seed, seed+1, ...)")->check(CLI::Range(1, 100));
  cli.app().add_option("--entropy-bonus", s.entropy_bonus, "beta, the weight of the entropy bonus (exercise 2)")->check(CLI::Range(0.0, 10.0));
  bool pairs_given = false;
  cli.app().add_option_function<int>("--pairs", [&](int v) { s.task.pairs = v, pairs_given = true; },
                                     "N, key/value pairs per sequence, key symbols 2 N (default 64; --quick 32)")->check(CLI::Range(2, 4096));
  cli.app().add_option("--lr", s.lr, "Adam's learning rate")->check(CLI::Range(1e-6, 1.0));
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    s.steps = args.steps_or(3000, 600);
    if (!pairs_given) s.task.pairs = args.quick ? 32 : 64;
    s.task.keys = 2 * s.task.pairs, s.reader.keys = std::size_t(s.task.keys);
    if (args.quick) seeds = std::min<std::size_t>(seeds, 2);
    // Measured after the baseline has started (step >= 1), each step once.
    for (std::int64_t at : {s.steps / 30, s.steps / 10, s.steps / 5})
      if (at >= 1 && std::find(s.variance_at.begin(), s.variance_at.end(), at) == s.variance_at.end()) s.variance_at.push_back(at);
    const std::size_t N = std::size_t(s.task.pairs), D = s.reader.d_model, V = s.reader.values;
    // The right pair with probability 1/N, else a value that matches by luck with probability 1/V.
    const double random_read = 1.0 / double(N) + (1.0 - 1.0 / double(N)) / double(V);
    const lab::Chapter chapter(args);
    lab::Checks checks;

    const std::string setup = "Retrieval: " + std::to_string(N) + " key/value pairs per sequence (keys distinct, drawn from " +
                              std::to_string(s.task.keys) + " symbols; values from " + std::to_string(V) +
                              "; a guess scores " + fmt(1.0 / double(V)) + ", reading one pair at random " +
                              fmt(random_read) + "); reader width D = " + std::to_string(D) + ", " +
                              lab::thousands(lab::RetrievalReader(s.reader, *std::make_unique<ag::Generator>(0)).num_parameters()) +
                              " parameters; " + std::to_string(s.steps) + " steps of Adam (lr " + plain(s.lr) +
                              ", batch 32) per learner; entropy bonus " + plain(s.entropy_bonus) +
                              ", baseline decay " + plain(s.baseline_decay) + "; " + std::to_string(seeds) +
                              " seeds, each learner of a seed from the same initial weights and batches; accuracy on " +
                              std::to_string(s.task.eval_size) + " held-out sequences.";
    std::cout << "Lesson 19: hard attention with REINFORCE against soft attention.\n" << setup << "\n";
    chapter.text("setup", setup);

    std::vector<std::array<Run, kLearners>> runs;
    for (std::size_t k = 0; k < seeds; ++k) {
      const std::uint64_t seed = args.seed + k;
      std::array<Run, kLearners> r;
      for (int who = 0; who < kLearners; ++who)
        r[who] = train(Learner(who), s, seed, "seed " + std::to_string(seed) + " (" + std::to_string(k + 1) + "/" + std::to_string(seeds) + ")");
      runs.push_back(std::move(r));
      std::cout << "seed " << seed << ": held-out accuracy soft " << fmt(r[kSoft].final_accuracy) << ", hard "
                << fmt(r[kHard].final_accuracy) << ", hard without the baseline " << fmt(r[kHardNoBaseline].final_accuracy) << "\n";
    }
    const std::size_t n = runs.size();
    const std::string seeds_word = std::to_string(n) + (n == 1 ? " seed" : " seeds");

    // ---- 1) accuracy ----
    std::array<lab::SeedStats, kLearners> final_acc, mass, sampled, secs;
    std::array<std::size_t, kLearners> solved{};
    std::array<lab::SeedStats, kLearners> to90;  // only the seeds that got there
    for (const auto& r : runs)
      for (int w = 0; w < kLearners; ++w) {
        final_acc[w].add(r[w].final_accuracy), mass[w].add(r[w].mass_on_answer), sampled[w].add(r[w].sampled_accuracy);
        secs[w].add(r[w].seconds);
        if (r[w].steps_to_90 >= 0) ++solved[w], to90[w].add(double(r[w].steps_to_90));
      }
    auto med_range = [](const lab::SeedStats& v, int digits = 3) {
      return v.size() == 0 ? std::string("-") : fmt(v.median(), digits) + " (" + v.range(digits) + ")";
    };
    lab::Table acc("Held-out accuracy after " + std::to_string(s.steps) + " steps, median (range) over " + seeds_word +
                       "; hard attention reads the argmax position",
                   {"learner", "accuracy", "reached 0.9", "steps to 0.9", "weight on the right pair", "accuracy, reading a drawn position"});
    for (int w = 0; w < kLearners; ++w)
      acc.row({kName[w], med_range(final_acc[w]), std::to_string(solved[w]) + " of " + std::to_string(n),
               to90[w].size() ? steps_range(to90[w]) : "never", med_range(mass[w]), w == kSoft ? "-" : med_range(sampled[w])});
    std::cout << "\n";
    acc.print();
    acc.save_markdown(args.path("report.md"));
    chapter.table("accuracy", acc);

    {
      // Median curves, and every seed's as a thin line (blocks of accuracy_seeds.csv).
      lab::CurveLog log(args.path("accuracy.csv"), {kSlug[0], kSlug[1], kSlug[2]});
      const std::size_t points = runs[0][0].accuracy.size();
      for (std::size_t i = 0; i < points; ++i) {
        std::vector<double> row;
        for (int w = 0; w < kLearners; ++w) {
          lab::SeedStats at;
          for (const auto& r : runs) at.add(r[w].accuracy[i]);
          row.push_back(at.median());
        }
        log.log(double(i) * double(s.eval_every), row);
      }
      std::ofstream f(args.path("accuracy_seeds.csv"));
      f << "step," << kSlug[0] << "," << kSlug[1] << "," << kSlug[2] << "\n";
      for (std::size_t k = 0; k < n; ++k) {
        if (k) f << "\n";
        for (std::size_t i = 0; i < points; ++i) {
          f << i * std::size_t(s.eval_every);
          for (int w = 0; w < kLearners; ++w) f << "," << format_number(runs[k][w].accuracy[i], 6);
          f << "\n";
        }
      }
    }
    const char* const colour[kLearners] = {"#1f5fa8", "#c0392b", "#e69f00"};
    const char* const pale[kLearners] = {"#a6c4e6", "#eaa8a0", "#f3d08a"};
    std::vector<lab::Series> curves;
    for (int w = 0; w < kLearners; ++w)
      curves.push_back({args.path("accuracy_seeds.csv"), kSlug[w], std::string(kName[w]) + ", each seed", "step",
                        std::string("lines lc rgb '") + pale[w] + "'", 1});
    for (int w = 0; w < kLearners; ++w)
      curves.push_back({args.path("accuracy.csv"), kSlug[w], std::string(kName[w]) + ", median", "step",
                        std::string("lines lc rgb '") + colour[w] + "'", 3});
    const lab::PlotOptions po{.title = "Retrieval among " + std::to_string(N) + " pairs: held-out accuracy (" + seeds_word + ")",
                              .xlabel = "training step", .ylabel = "held-out accuracy", .ymin = 0.0, .ymax = 1.05,
                              .hlines = {{random_read, "one pair read at random"}}, .key = "center right"};
    lab::plot(args.path("accuracy.png"), curves, po);
    chapter.figure("accuracy.png");
    std::cout << "\nHeld-out accuracy, medians over " << seeds_word << ":\n";
    lab::plot_terminal({curves[3], curves[4], curves[5]}, po);

    // ---- 2) the variance of the estimate ----
    lab::Table var("Hard attention's gradient estimate for the score parameters, one batch of 32, " +
                       std::to_string(s.variance_draws) + " draws at fixed weights (those of the learner with the baseline), median (range) over " +
                       seeds_word,
                   {"step", "baseline b", "variance, b = 0", "variance, with b", "b cuts it by", "noise / signal, b = 0", "noise / signal, with b"});
    std::vector<lab::SeedStats> cut(s.variance_at.size());
    for (std::size_t i = 0; i < s.variance_at.size(); ++i) {
      lab::SeedStats b, without, with, nts0, nts1;
      for (const auto& r : runs) {
        const Variance& v = r[kHard].variance[i];
        b.add(v.baseline), without.add(v.without), with.add(v.with_baseline), cut[i].add(v.without / v.with_baseline);
        nts0.add(v.without / v.exact_sq), nts1.add(v.with_baseline / v.exact_sq);
      }
      var.row({long(s.variance_at[i]), med_range(b), med_range(without), med_range(with), med_range(cut[i]) + "x", med_range(nts0),
               med_range(nts1)});
    }
    std::cout << "\n";
    var.print();
    var.save_markdown(args.path("report.md"), true);
    chapter.table("variance", var);

    // ---- 3) the cost of a read at inference ----
    // Multiply-adds per query: the query's projection D^2, the keys' N D^2, the scores N D; the read:
    // soft sum_n a_n E[value_n] is N D, hard looks up one row (no multiply); the head D V.
    const double scores_cost = double(D * D + N * D * D + N * D), head_cost = double(D * V);
    lab::Table cost("What one query costs at inference (N = " + std::to_string(N) + ", D = " + std::to_string(D) + ", V = " +
                        std::to_string(V) + "), multiply-adds",
                    {"", "values read", "the read", "the scores", "the head", "total"});
    cost.row({"soft attention", long(N), long(N * D), long(scores_cost), long(head_cost), long(scores_cost + double(N * D) + head_cost)});
    cost.row({"hard attention", 1L, 0L, long(scores_cost), long(head_cost), long(scores_cost + head_cost)});
    std::cout << "\n";
    cost.print();
    cost.save_markdown(args.path("report.md"), true);
    chapter.table("cost", cost);
    {
      // Measured: the held-out set through a reader of the same shape, no gradient (the cost does
      // not depend on the weights).
      ag::Generator init(args.seed);
      lab::RetrievalReader m(s.reader, init);
      const lab::RetrievalTask task({.pairs = s.task.pairs, .keys = s.task.keys, .values = s.task.values, .seed = args.seed});
      const lab::RetrievalBatch& ev = task.eval_set();
      ag::NoGrad no_grad;
      auto time_of = [&](auto f) { return lab::median_ms(f, 7); };
      const double soft_ms = time_of([&] { (void)m.soft_logits(ev); });
      const double scores_ms = time_of([&] { (void)m.scores(ev); });
      const double hard_ms = time_of([&] { (void)m.read_logits(ev, lab::argmax_positions(m.scores(ev))); });
      lab::Table t("CPU milliseconds for " + std::to_string(ev.size()) + " held-out queries (median of 7 runs)", {"", "ms"});
      t.row({"the scores alone (both)", scores_ms});
      t.row({"soft attention: scores, the weighted sum of all values, the head", soft_ms});
      t.row({"hard attention: scores, the argmax, one value, the head", hard_ms});
      std::cout << "\n";
      t.print();
      t.save_markdown(args.path("report.md"), true);
      chapter.table("cost_time", t, lab::Timing::yes);
    }

    // ---- exercise 2: hard attention without the entropy bonus (the same seeds) ----
    {
      Settings t = s;
      t.entropy_bonus = s.entropy_bonus > 0 ? 0.0 : 0.01;  // the other setting
      t.variance_at = {};
      lab::SeedStats acc_t, to90_t, mass_t;
      std::size_t solved_t = 0;
      for (std::size_t k = 0; k < n; ++k) {
        const std::uint64_t seed = args.seed + k;
        const Run r = train(kHard, t, seed, "entropy bonus " + plain(t.entropy_bonus) + ", seed " + std::to_string(seed));
        acc_t.add(r.final_accuracy), mass_t.add(r.mass_on_answer);
        if (r.steps_to_90 >= 0) ++solved_t, to90_t.add(double(r.steps_to_90));
      }
      lab::Table ex("Exercise 2: hard attention with the baseline, entropy bonus " + plain(s.entropy_bonus) + " and " +
                        plain(t.entropy_bonus) + ", median (range) over " + seeds_word,
                    {"entropy bonus", "accuracy", "reached 0.9", "steps to 0.9", "weight on the right pair"});
      ex.row({plain(s.entropy_bonus), med_range(final_acc[kHard]), std::to_string(solved[kHard]) + " of " + std::to_string(n),
              to90[kHard].size() ? steps_range(to90[kHard]) : "never", med_range(mass[kHard])});
      ex.row({plain(t.entropy_bonus), med_range(acc_t), std::to_string(solved_t) + " of " + std::to_string(n),
              to90_t.size() ? steps_range(to90_t) : "never", med_range(mass_t)});
      std::cout << "\n";
      ex.print();
      ex.save_markdown(args.path("report.md"), true);
      chapter.table("exercise_entropy", ex);
    }

    // ---- 4) exploring costs more as N grows: steps to 0.9 against the number of pairs ----
    const std::vector<int> scale_pairs = args.quick ? std::vector<int>{8, 16} : std::vector<int>{16, 32, 64, 128};
    const std::size_t scale_seeds = args.quick ? 1 : 3;
    lab::Table scale("Steps to 0.9 held-out accuracy against the number of pairs N (median (range) over " +
                         std::to_string(scale_seeds) + (scale_seeds == 1 ? " seed" : " seeds") + ", at most " + std::to_string(s.steps) +
                         " steps, evaluated every " + std::to_string(s.eval_every) + ")",
                     {"N", "soft attention", "hard attention, baseline", "hard / soft"});
    std::vector<double> hard_steps_at;  // median per N, for the check
    for (int pairs : scale_pairs) {
      Settings t = s;
      t.task.pairs = pairs, t.task.keys = 2 * pairs, t.reader.keys = std::size_t(2 * pairs), t.variance_at = {};
      lab::SeedStats soft_steps, hard_steps, ratio;
      for (std::size_t k = 0; k < scale_seeds; ++k) {
        const std::uint64_t seed = args.seed + k;
        const std::string label = "N = " + std::to_string(pairs) + ", seed " + std::to_string(seed);
        const auto steps_of = [&](Learner w) {
          // At the main run's N its learners of this seed are the same runs (the variance
          // measurements draw from their own generators): reuse them instead of training again.
          const bool trained = pairs == s.task.pairs && k < runs.size();
          const std::int64_t at = trained ? runs[k][w].steps_to_90 : train(w, t, seed, label).steps_to_90;
          return at < 0 ? NAN : double(at);
        };
        const double a = steps_of(kSoft), b = steps_of(kHard);
        soft_steps.add(a), hard_steps.add(b), ratio.add(b / a);
      }
      auto cell = [&](const lab::SeedStats& v) {
        return v.count([](double x) { return std::isnan(x); }) ? "not in " + std::to_string(s.steps) + " steps" : steps_range(v);
      };
      lab::SeedStats never_is_inf;  // a seed that never got there counts as the most steps
      for (double v : hard_steps.values) never_is_inf.add(std::isnan(v) ? std::numeric_limits<double>::infinity() : v);
      hard_steps_at.push_back(never_is_inf.median());
      scale.row({long(pairs), cell(soft_steps), cell(hard_steps), med_range(ratio) + "x"});
    }
    std::cout << "\n";
    scale.print();
    scale.save_markdown(args.path("report.md"), true);
    chapter.table("scaling", scale);

    {
      // The chapter's reading of the tables, with the run's own numbers.
      const auto steps_of = [](const lab::SeedStats& v) { return v.size() ? std::to_string(std::lround(v.median())) : std::string("never"); };
      const double saved = double(N * D) / (scores_cost + double(N * D) + head_cost);
      std::string doubling;
      for (std::size_t i = 1; i < hard_steps_at.size(); ++i)
        doubling += (i > 1 ? ", " : "") + fmt(hard_steps_at[i] / hard_steps_at[i - 1], 2) + "x";
      const std::string reading =
          "Soft attention reaches 0.9 in a median of " + steps_of(to90[kSoft]) + " steps, hard attention with the baseline in " +
          steps_of(to90[kHard]) + "; both end at " + fmt(final_acc[kSoft].median()) + " and " + fmt(final_acc[kHard].median()) +
          " (medians). Without the baseline, hard attention reaches 0.9 in " + std::to_string(solved[kHardNoBaseline]) + " of " +
          std::to_string(n) + " seeds within " + std::to_string(s.steps) + " steps (final median " +
          fmt(final_acc[kHardNoBaseline].median()) + "; one pair read at random scores " + fmt(random_read) + "). At step " +
          std::to_string(s.variance_at[0]) + " one estimate without the baseline has a total variance " + fmt(cut[0].median()) +
          " times that of one with it (median over seeds). Hard attention skips the read of " + std::to_string(N - 1) + " of " +
          std::to_string(N) + " values, " + fmt(100 * saved, 2) + "% of this reader's multiply-adds per query: here the scores cost " +
          "far more than the read. From one N to the next (twice as many pairs) hard attention's median steps to 0.9 grow by " +
          doubling + ".";
      std::cout << "\n" << reading << "\n";
      chapter.text("reading", reading);
    }

    // ---- the claims, checked ----
    std::size_t soft_first = 0, hard_beats_plain = 0;
    for (const auto& r : runs) {
      const auto at = [](const Run& x) { return x.steps_to_90 < 0 ? std::numeric_limits<std::int64_t>::max() : x.steps_to_90; };
      soft_first += at(r[kSoft]) < at(r[kHard]);
      hard_beats_plain += r[kHard].final_accuracy > r[kHardNoBaseline].final_accuracy ||
                          at(r[kHard]) < at(r[kHardNoBaseline]);
    }
    checks.expect(solved[kSoft] == n && solved[kHard] == n,
                  "soft attention and hard attention with the baseline both reach 0.9 held-out accuracy " + lab::in_seeds(std::min(solved[kSoft], solved[kHard]), n) +
                      " (final medians " + fmt(final_acc[kSoft].median()) + " and " + fmt(final_acc[kHard].median()) + ")");
    checks.expect(soft_first == n, "soft attention gets there first " + lab::in_seeds(soft_first, n) + " (median steps " +
                                       std::to_string(std::lround(to90[kSoft].median())) + " against " +
                                       (to90[kHard].size() ? std::to_string(std::lround(to90[kHard].median())) : "never") + ")");
    checks.expect(hard_beats_plain == n, "without the baseline, hard attention learns later or ends lower " + lab::in_seeds(hard_beats_plain, n) +
                                             " (it reaches 0.9 in " + std::to_string(solved[kHardNoBaseline]) + " of " + std::to_string(n) + ")");
    checks.expect(cut[0].count([](double c) { return c > 10; }) == n,
                  "at step " + std::to_string(s.variance_at[0]) + " the baseline cuts the variance of the estimate more than tenfold " +
                      lab::in_seeds(cut[0].count([](double c) { return c > 10; }), n) + " (median " + fmt(cut[0].median()) + "x)");
    std::size_t argmax_not_worse = 0;
    for (const auto& r : runs) argmax_not_worse += r[kHard].final_accuracy >= r[kHard].sampled_accuracy;
    checks.expect(argmax_not_worse == n, "reading the argmax position is at least as accurate as reading a drawn one " + lab::in_seeds(argmax_not_worse, n));
    bool grows = !hard_steps_at.empty() && std::isfinite(hard_steps_at.front());  // "never" (inf) counts as the most steps
    for (std::size_t i = 1; i < hard_steps_at.size(); ++i) grows = grows && hard_steps_at[i] >= hard_steps_at[i - 1];
    checks.expect(grows, "hard attention needs more steps as N grows (medians " + [&] {
      std::string t;
      for (std::size_t i = 0; i < hard_steps_at.size(); ++i) t += (i ? ", " : "") + (std::isfinite(hard_steps_at[i]) ? std::to_string(std::lround(hard_steps_at[i])) : std::string("never"));
      return t;
    }() + " for N = " + [&] {
      std::string t;
      for (std::size_t i = 0; i < scale_pairs.size(); ++i) t += (i ? ", " : "") + std::to_string(scale_pairs[i]);
      return t;
    }() + ")");
    const int status = checks.report();
    chapter.text("checks", checks.markdown());
    std::cout << "Wrote " << args.out.string() << "/{accuracy.png, accuracy.csv, accuracy_seeds.csv, report.md}\n";
    return status;
  });
}
