// Lesson 05: vanishing and exploding gradients in a tanh RNN.
//
// Shape legend: B batch, T time steps, I input features (2 for adding, 8 for recall), H = 64.
//
//   1) At initialisation: ||dL/dx_t|| for every position t, for recurrent weights W_hh with
//      spectral radius 0.5, 0.9, 1.0, 1.5, 2.0 (nn::scaled_recurrent_) and PyTorch's default
//      init: a family of curves on a log scale, computed in float64. Deterministic.
//   2) Three of them (default, radius 1, radius 2) trained on the adding problem at T = 100,
//      5 seeds each: the same curves after training, and what training did to the ratio.
//   3) Gradient clipping on the exploding case (radius 2.0, plain SGD), 5 seeds: without it the
//      run diverges; with nn::clip_grad_norm it stays finite.
//   4) First-token recall at T = 10 ... 200 and the adding problem at T = 10 ... 100, 5 seeds
//      each: where the tanh RNN stops learning. Then which inputs the recall models at the
//      longest T use (the latch).
//   The exercises' answers are measured in the same run.
//
// Every table and sentence the chapter (README.md) quotes is written here with lab::Chapter;
// every claim about training is read from all seeds (seed = --seed + k, k = 0..4).
#include <algorithm>
#include <cmath>
#include <ctime>
#include <iostream>
#include <limits>
#include <map>
#include <tuple>
#include <sstream>

#include "common/long_range.hpp"

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#define LESSON05_HAS_MXCSR 1
#endif

using long_range::Task;

namespace {

constexpr double kFullRecall = 0.9;     // recall "learned": held-out accuracy at least this
constexpr double kAboveChance = 0.2;    // recall above chance (1/8 = 0.125); see the chapter
constexpr double kAddingLearned = 0.1;  // adding "learned": held-out MSE below this (baseline 0.167)

std::string fmt(double v, int digits = 3) { return lab::format_number(v, digits); }
// Two significant digits, with an exponent from 1e5 on: 1471102 -> "1.5e+06", 4637 -> "4637".
std::string short_number(double v) {
  if (std::fabs(v) >= 1e5) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1e", v);
    return buf;
  }
  return std::fabs(v) >= 100 ? std::to_string(std::lround(v)) : fmt(v, 2);
}
// "20, 50 and 100"
std::string list_T(const std::vector<int>& Ts) {
  std::string s;
  for (std::size_t i = 0; i < Ts.size(); ++i) s += (i == 0 ? "" : i + 1 == Ts.size() ? " and " : ", ") + std::to_string(Ts[i]);
  return s;
}
// min to max over the seeds, or the one value when they agree.
std::string span(const lab::SeedStats& s) { return s.min() == s.max() ? fmt(s.min()) : s.range(); }
// A range of whole numbers (steps): "20" when every seed has the same, else "12 to 20".
std::string int_range(const lab::SeedStats& s) {
  const long lo = std::lround(s.min()), hi = std::lround(s.max());
  return lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi);
}
std::string of_seeds(std::size_t k, std::size_t n) { return std::to_string(k) + " of " + std::to_string(n) + " seeds"; }

std::string scale_label(double s) {
  if (s < 0) return "default";
  std::ostringstream os;
  os << "scale_" << s;
  return os.str();
}
std::string scale_title(double s) {
  if (s < 0) return "PyTorch default init";
  std::ostringstream os;
  os << "spectral radius " << s;
  return os.str();
}

// The part of the seeds for which pred holds, as words: "every seed", "3 of 5 seeds", "no seed".
template <class Pred>
std::string how_many(const lab::SeedStats& s, Pred pred) {
  const std::size_t k = s.count(pred);
  if (k == s.size()) return s.size() == 1 ? "the one seed" : "every seed";
  if (k == 0) return "no seed";
  return of_seeds(k, s.size());
}

// One run of a tanh RNN on the adding problem at T = 50 with W_hh of spectral radius 2 (the
// exploding case), plain SGD (lr 0.1) or Adam (lr 1e-2), gradients clipped to max_norm (1e300 =
// never). Logs step, the gradient norm before clipping, after clipping, and the training loss,
// until the first non-finite loss or norm.
enum class Opt { sgd, adam };
struct ClipRun {
  std::vector<double> before, loss;  // per step (1, 2, ...) while finite
  std::int64_t diverged = 0;         // the step whose loss or gradient norm was not finite; 0 = never
  double mean_loss_last(std::size_t n) const {
    double s = 0;
    const std::size_t k = std::min(n, loss.size());
    for (std::size_t i = loss.size() - k; i < loss.size(); ++i) s += loss[i];
    return s / double(k);
  }
};
ClipRun clip_run(Opt kind, double max_norm, std::int64_t steps, std::uint64_t seed, const std::filesystem::path& csv) {
  auto model = long_range::make_model(lab::ModelKind::tanh_rnn, Task::adding, lab::derive_seed(seed, 10), 1.0, 2.0);
  lab::AddingTask task({.T = 50, .batch_size = 32, .seed = seed});
  std::unique_ptr<nn::Optimizer> opt;
  if (kind == Opt::sgd) opt = std::make_unique<nn::SGD>(model->parameters(), nn::SGDOptions{.lr = 0.1});
  else opt = std::make_unique<nn::Adam>(model->parameters(), nn::AdamOptions{.lr = 1e-2});
  lab::CurveLog log(csv, {"norm_before", "norm_after", "loss"});
  ClipRun r;
  for (std::int64_t step = 1; step <= steps; ++step) {
    const lab::AddingBatch b = task.next_batch();
    opt->zero_grad();
    const ag::Tensor loss = ag::mse_loss((*model)(b.inputs), b.targets);
    if (!std::isfinite(loss.item())) return r.diverged = step, r;
    loss.backward();
    const double before = nn::clip_grad_norm(model->parameters(), max_norm);  // returns the norm before clipping
    if (!std::isfinite(before)) return r.diverged = step, r;
    const double after = nn::clip_grad_norm(model->parameters(), std::numeric_limits<double>::infinity());  // measures only
    log.log(double(step), {before, after, loss.item()});
    r.before.push_back(before);
    r.loss.push_back(loss.item());
    opt->step();
  }
  return r;
}

// The same one-hot sequences [N, T, V] with the token at position p (0-based) replaced by a
// different symbol in every sequence; the targets (the first tokens) are left as they were.
ag::Tensor change_token(const ag::Tensor& one_hot, std::size_t p) {
  const std::size_t N = one_hot.size(0), T = one_hot.size(1), V = one_hot.size(2);
  std::vector<double> v = one_hot.to_vector();
  for (std::size_t n = 0; n < N; ++n) {
    double* at = &v[(n * T + p) * V];
    std::size_t old = 0;
    for (std::size_t k = 0; k < V; ++k)
      if (at[k] > 0.5) old = k;
    at[old] = 0;
    at[(old + 1 + n % (V - 1)) % V] = 1;  // any symbol but the old one
  }
  return ag::tensor(v, one_hot.shape());
}

// The median over seeds of each position's ||dL/dx_t||.
std::vector<double> median_profile(const std::vector<std::vector<double>>& per_seed) {
  std::vector<double> out(per_seed.front().size());
  for (std::size_t t = 0; t < out.size(); ++t) {
    lab::SeedStats s;
    for (const auto& p : per_seed) s.add(p[t]);
    out[t] = s.median();
  }
  return out;
}

double decades(double ratio) { return std::log10(ratio); }

// Subnormal ("denormal") numbers, the floats below 1.2e-38 (float64: 2.2e-308), take a slow path
// on x86 CPUs: an operation on one costs tens of times more than on a normal number. A gradient
// that vanishes passes through them, so a run whose gradient has vanished slows down several-fold
// (one recall run at T = 50: 8.8 s of CPU against 1.4 s). While this object lives, the CPU flushes
// subnormal results to 0 (FTZ) and reads subnormal inputs as 0 (DAZ). On other CPUs it does nothing.
class FlushSubnormals {
 public:
#ifdef LESSON05_HAS_MXCSR
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040); }  // bit 15 FTZ, bit 6 DAZ
  ~FlushSubnormals() { _mm_setcsr(saved_); }
 private:
  unsigned saved_;
#endif
};

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("05_vanishing", "vanishing and exploding gradients in a tanh RNN; clipping; where recall and adding stop being learned as T grows");
  cli.steps_help("Adam steps of every training run (each init, task, T and seed; one batch of 32 sequences each) "
                 "(default 800; --quick 150). The SGD clipping runs always take 300 (--quick 100)");
  int n_seeds = 5;
  cli.app().add_option("--seeds", n_seeds, "seeds per training claim: --seed + 0, 1, ... (--quick: 2)")->check(CLI::Range(1, 100));
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const std::clock_t cpu_start = std::clock();
    lab::Checks checks;
    lab::Chapter chapter(args);
    auto figure = [&](bool drawn, const std::string& png) {
      if (drawn) chapter.figure(png);
    };
    if (args.quick && cli.app().get_option("--seeds")->count() == 0) n_seeds = 2;
    std::vector<std::uint64_t> seeds;
    for (int k = 0; k < n_seeds; ++k) seeds.push_back(args.seed + std::uint64_t(k));
    const std::size_t S = seeds.size();
    const std::string seeds_text = S == 1 ? "seed " + std::to_string(seeds[0])
                                          : "seeds " + std::to_string(seeds.front()) + " to " + std::to_string(seeds.back());
    const std::int64_t steps = args.steps_or(800, 150);
    const int eval_size = args.quick ? 200 : 1000;

    const std::vector<double> scales{-1.0, 0.5, 0.9, 1.0, 1.5, 2.0};  // -1 = PyTorch's default init
    const std::uint64_t init_seed = lab::derive_seed(args.seed, 10);
    std::cout << "Lesson 05: the gradient reaching each input of a tanh RNN (H = 64), float64\n\n";

    // ---- 1) ||dL/dx_t|| at initialisation, T = 100 (deterministic) ---------------------------
    const int T = 100;
    lab::AddingTask probe_task({.T = T, .seed = args.seed, .eval_size = 128});
    const lab::AddingBatch& probe = probe_task.eval_set();  // 128 held-out sequences
    std::vector<std::string> cols;
    for (double s : scales) cols.push_back(scale_label(s));
    std::vector<std::vector<double>> init_norm;
    for (double s : scales) {
      auto model = long_range::make_model(lab::ModelKind::tanh_rnn, Task::adding, init_seed, 1.0, s);
      model->to(ag::f64);
      init_norm.push_back(long_range::gradient_per_position(*model, probe));
    }
    const auto init_csv = long_range::write_profiles(args.path("grad_init.csv"), cols, init_norm);
    std::vector<lab::Series> init_curves;
    for (double s : scales)
      init_curves.push_back({.csv = init_csv, .y = scale_label(s), .title = scale_title(s), .x = "t"});
    lab::PlotOptions po_grad{.title = "Gradient reaching each input of a tanh RNN at initialisation (T = 100)",
                             .xlabel = "input position t (the loss is read after t = 100)",
                             .ylabel = "||dL/dx_t||", .logy = true, .ymin = 1e-35, .ymax = 1e20};
    figure(lab::plot(args.path("grad_init.png"), init_curves, po_grad), "grad_init.png");

    // The key fact at T = 50, and float32 against float64.
    auto ratio_at = [&](double scale, int len, ag::Dtype dt) {
      lab::AddingTask task({.T = len, .seed = args.seed, .eval_size = 64});
      auto model = long_range::make_model(lab::ModelKind::tanh_rnn, Task::adding, init_seed, 1.0, scale);
      model->to(dt);
      return long_range::first_to_last(long_range::gradient_per_position(*model, task.eval_set()));
    };
    lab::Table t_init("||dL/dx_1|| / ||dL/dx_T|| at initialisation (float64)", {"W_hh", "ratio at T = 50", "ratio at T = 100"});
    std::vector<double> ratio50;
    for (std::size_t i = 0; i < scales.size(); ++i) {
      ratio50.push_back(ratio_at(scales[i], 50, ag::f64));
      t_init.row({scale_title(scales[i]), ratio50.back(), long_range::first_to_last(init_norm[i])});
    }
    t_init.print();
    t_init.save_markdown(args.path("report.md"));
    chapter.table("init_ratios", t_init);
    auto idx = [&](double s) { return std::size_t(std::find(scales.begin(), scales.end(), s) - scales.begin()); };
    const double key = ratio50[idx(0.5)], exploding = ratio50[idx(2.0)];
    checks.expect(key < 1e-3, "at init with spectral radius 0.5, ||dL/dx_1|| / ||dL/dx_T|| = " + lab::format_number(key) +
                                  " < 1e-3 for T = 50");
    checks.expect(exploding > 1, "at init with spectral radius 2.0 the gradient grows going back: ratio " +
                                     lab::format_number(exploding) + " > 1 for T = 50");
    {
      auto pair = [&](double rho_bound, const std::string& base, double measured) {
        return "`" + base + "^49 = " + fmt(std::pow(rho_bound, 49), 2) + "`, and the run measures `" + fmt(measured, 2) + "`";
      };
      chapter.text("worked_example",
                   "**Worked example.** Take `rho = 0.5` and T = 50: the bound is " + pair(0.5, "0.5", ratio50[idx(0.5)]) +
                       " (smaller, since every `1 - h^2` is also below 1). For `rho = 0.9` the bound is " +
                       pair(0.9, "0.9", ratio50[idx(0.9)]) + ". For the default init (radius about 0.58) it is " +
                       pair(1.0 / std::sqrt(3.0), "0.58", ratio50[idx(-1.0)]) + ". For `rho = 2`, `2^49 = " +
                       fmt(std::pow(2.0, 49), 2) + "` is only an upper bound: saturation keeps the measured growth to `" +
                       fmt(ratio50[idx(2.0)], 2) + "`.");
      // How the curves of the picture read, in numbers.
      const auto& d = init_norm[idx(-1.0)];
      double lo_T = d.back(), hi_T = d.back();
      for (const auto& p : init_norm) lo_T = std::min(lo_T, p.back()), hi_T = std::max(hi_T, p.back());
      auto fall = [&](double s) { return fmt(-decades(long_range::first_to_last(init_norm[idx(s)])), 2); };
      auto rise = [&](double s) { return fmt(decades(long_range::first_to_last(init_norm[idx(s)])), 2); };
      chapter.text("init_reading",
                   "Every curve starts on the right, at t = 100 (the input just before the loss), between `" + fmt(lo_T, 2) +
                       "` and `" + fmt(hi_T, 2) +
                       "`. Going left, the two inits below 1 fall on straight lines (a constant factor per step is a "
                       "straight line on a log scale) to `" +
                       fmt(init_norm[idx(0.5)].front(), 2) + "` (radius 0.5) and `" + fmt(d.front(), 2) +
                       "` (default) at t = 1; radius 0.9 falls " + fall(0.9) + " decades and radius 1 falls " + fall(1.0) +
                       " (the `tanh` derivative alone); 1.5 and 2 rise by " + rise(1.5) + " and " + rise(2.0) +
                       " decades. The default init sits right next to 0.5. A learner who trains this default RNN with "
                       "inputs 100 steps back asks the optimizer to follow a signal about `10^" +
                       std::to_string(int(std::lround(-decades(long_range::first_to_last(d))))) +
                       "` times weaker than the one from the last step.");
    }

    lab::Table t_prec("Why float64: the same ratio (radius 0.5) in float32 and float64", {"T", "float32", "float64"});
    double f32_at_100 = 0, f32_at_150 = 1, f32_at_200 = 1, f64_at_200 = 0;
    for (int len : {50, 100, 150, 200}) {
      const double r32 = ratio_at(0.5, len, ag::f32), r64 = ratio_at(0.5, len, ag::f64);
      t_prec.row({len, r32, r64});
      if (len == 100) f32_at_100 = r32;
      if (len == 150) f32_at_150 = r32;
      if (len == 200) f32_at_200 = r32, f64_at_200 = r64;
    }
    std::cout << "\n";
    t_prec.print();
    t_prec.save_markdown(args.path("report.md"), true);
    chapter.table("precision", t_prec);
    checks.expect(f32_at_100 > 0 && f32_at_150 == 0 && f32_at_200 == 0 && f64_at_200 > 0,
                  "in float32 the ratio still fits at T = 100 (" + lab::format_number(f32_at_100) +
                      ") and underflows to exactly 0 at T = 150 and 200; float64 keeps it (" +
                                                         lab::format_number(f64_at_200) + ")");

    // ---- Training runs, shared by parts 2 and 4: one per (task, T, init, seed) -----------------
    // Part 1 kept subnormal numbers (its float32 column is about where they end); the training
    // runs flush them to 0, which makes them several times faster (see FlushSubnormals).
    const FlushSubnormals flush_subnormals;
    std::map<std::tuple<Task, int, double, std::uint64_t, std::int64_t>, long_range::RunResult> runs;
    auto train = [&](Task task, int len, double scale, std::uint64_t seed, std::int64_t n_steps) -> long_range::RunResult& {
      const auto key = std::make_tuple(task, len, scale, seed, n_steps);
      auto it = runs.find(key);
      if (it != runs.end()) return it->second;
      std::string name = std::string(long_range::task_name(task)) + "_T" + std::to_string(len);
      if (scale >= 0) name += "_" + scale_label(scale);
      if (n_steps != steps) name += "_steps" + std::to_string(n_steps);
      name += "_seed" + std::to_string(seed);
      const long_range::RunOptions ro{.task = task, .T = len, .steps = n_steps, .eval_size = eval_size, .seed = seed,
                                      .recurrent_scale = scale, .progress = false};
      const std::clock_t c0 = std::clock();
      long_range::RunResult run = long_range::train_run(ro, args.path(name + ".csv"), name);
      std::cout << "  " << name << ": " << (task == Task::recall ? "accuracy " : "MSE ") << fmt(run.final_metric, 4)
                << " after " << n_steps << " steps (best " << fmt(run.best_metric, 4) << "), "
                << fmt(double(std::clock() - c0) / CLOCKS_PER_SEC, 2) << " s CPU\n";
      return runs.emplace(key, std::move(run)).first->second;
    };

    // ---- 2) The same curves after training on the adding problem, T = 100 ----------------------
    const std::vector<double> trained_scales{-1.0, 1.0, 2.0};
    std::cout << "\nTraining three inits on the adding problem, T = " << T << ", " << steps << " steps, " << seeds_text << "\n";
    lab::Table t_trained("After " + std::to_string(steps) + " steps on adding, T = 100 (" + seeds_text + ")",
                         {"W_hh at init", "held-out MSE: median", "MSE range", "ratio at init", "ratio after training: median",
                          "ratio range", "below the init ratio"});
    std::vector<std::string> trained_cols;
    std::vector<std::vector<double>> trained_profiles;  // at init and the median after training, per init
    std::vector<lab::SeedStats> after_ratio(trained_scales.size()), trained_mse(trained_scales.size());
    for (std::size_t i = 0; i < trained_scales.size(); ++i) {
      const double s = trained_scales[i];
      std::vector<std::vector<double>> per_seed;
      for (std::uint64_t seed : seeds) {
        long_range::RunResult& run = train(Task::adding, T, s, seed, steps);
        run.model->to(ag::f64);  // part 4 reads only this run's held-out MSE, not its model
        per_seed.push_back(long_range::gradient_per_position(*run.model, probe));
        after_ratio[i].add(long_range::first_to_last(per_seed.back()));
        trained_mse[i].add(run.final_metric);
      }
      const double at_init = long_range::first_to_last(init_norm[idx(s)]);
      t_trained.row({scale_title(s), trained_mse[i].median(), trained_mse[i].range(), at_init, after_ratio[i].median(),
                     after_ratio[i].range(), of_seeds(after_ratio[i].count([&](double r) { return r < at_init; }), S)});
      trained_cols.push_back(scale_label(s) + "_init");
      trained_profiles.push_back(init_norm[idx(s)]);
      trained_cols.push_back(scale_label(s) + "_trained");
      trained_profiles.push_back(median_profile(per_seed));
    }
    const auto trained_csv = long_range::write_profiles(args.path("grad_trained.csv"), trained_cols, trained_profiles);
    std::vector<lab::Series> trained_curves;  // one colour per init: dashed at init, solid after training
    for (std::size_t i = 0; i < trained_scales.size(); ++i) {
      const double s = trained_scales[i];
      const std::string colour = "lines lc " + std::to_string(i + 1);
      trained_curves.push_back({.csv = trained_csv, .y = scale_label(s) + "_init", .title = scale_title(s) + ": at init",
                                .x = "t", .style = colour, .width = 1.5, .dash = 2});
      trained_curves.push_back({.csv = trained_csv, .y = scale_label(s) + "_trained",
                                .title = scale_title(s) + ": trained (median of " + std::to_string(S) + " seeds)", .x = "t",
                                .style = colour, .width = 2.5});
    }
    lab::PlotOptions po_trained = po_grad;
    po_trained.title = "Three inits before and after " + std::to_string(steps) + " steps on the adding problem (T = 100)";
    po_trained.ymin = lab::kMissing, po_trained.ymax = 1e20;
    po_trained.key = "bottom right";  // the trained curves leave the lower right empty
    figure(lab::plot(args.path("grad_trained.png"), trained_curves, po_trained), "grad_trained.png");
    std::cout << "\n";
    t_trained.print();
    t_trained.save_markdown(args.path("report.md"), true);
    chapter.table("trained", t_trained);
    {
      lab::SeedStats all_mse;
      for (const auto& m : trained_mse)
        for (double v : m.values) all_mse.add(v);
      const std::size_t learned = all_mse.count([](double v) { return v < kAddingLearned; });
      std::string s = "After " + std::to_string(steps) + " steps on the adding problem at T = 100, " +
                      (learned == 0 ? std::string("no run (") + std::to_string(all_mse.size()) + " = " +
                                          std::to_string(trained_scales.size()) + " inits × " + std::to_string(S) +
                                          " seeds) has learned the task: held-out MSE " + all_mse.range() +
                                          ", against the 0.167 of always answering 1.0."
                                    : std::to_string(learned) + " of the " + std::to_string(all_mse.size()) +
                                          " runs got below MSE " + fmt(kAddingLearned) + ".");
      const double init2 = long_range::first_to_last(init_norm[idx(2.0)]);
      const auto& r2 = after_ratio[2];
      s += " The exploding init stopped exploding in " + how_many(r2, [](double r) { return r < 1; }) +
           " (its ratio went from " + short_number(init2) + " to a median of " + fmt(r2.median(), 2) +
           "): the optimizer shrinks whatever makes the loss jump.";
      const double init_d = long_range::first_to_last(init_norm[idx(-1.0)]), init_1 = long_range::first_to_last(init_norm[idx(1.0)]);
      const std::size_t fell_d = after_ratio[0].count([&](double r) { return r < init_d; });
      const std::size_t fell_1 = after_ratio[1].count([&](double r) { return r < init_1; });
      s += fell_d == S && fell_1 == S ? " Nothing pulled the others back up:" : " The others moved both ways:";
      s += " the default init ends below its own starting ratio (" + fmt(init_d, 2) + ") in " +
           how_many(after_ratio[0], [&](double r) { return r < init_d; }) + " (median " + fmt(after_ratio[0].median(), 2) +
           "), and the orthogonal radius-1 init below its " + fmt(init_1, 2) + " in " +
           how_many(after_ratio[1], [&](double r) { return r < init_1; }) + " (median " + fmt(after_ratio[1].median(), 2) + ").";
      if (fell_d == S && fell_1 == S) s += " The gradient that would pull them back up is the one that vanished.";
      chapter.text("trained_reading", s);
      checks.expect(learned == 0, "adding at T = 100: no init and no seed gets below MSE " + fmt(kAddingLearned) + " (" +
                                      all_mse.range() + ")");
      checks.expect(r2.count([](double r) { return r < 1; }) == S,
                    "after training the radius-2 init no longer explodes: ratio < 1 in " + how_many(r2, [](double r) { return r < 1; }) +
                        " (" + r2.range() + ")");
      if (!args.quick)  // after 150 steps a seed can still be on its way (one sits at a ratio of 44 then)
        checks.expect(after_ratio[0].count([](double r) { return r < 1e-3; }) == S,
                    "after training the default init still vanishes: ratio < 1e-3 in " +
                        how_many(after_ratio[0], [](double r) { return r < 1e-3; }) + " (" + after_ratio[0].range() + ")");
    }

    // ---- 3) Clipping the exploding case, every seed ----------------------------------------------
    const std::int64_t clip_steps = args.quick ? 100 : 300;
    const double max_norm = 1.0;
    std::cout << "\nPlain SGD (lr 0.1) on adding, T = 50, W_hh with spectral radius 2.0: without and with clipping, " << seeds_text << "\n";
    lab::Table t_clip("Clipping (SGD lr 0.1, radius 2.0, T = 50, " + std::to_string(clip_steps) + " steps)",
                      {"seed", "no clipping: diverged at step", "clipped: largest norm before clipping",
                       "clipped: mean loss over the last 50 steps"});
    lab::SeedStats div_step, clip_loss;
    std::size_t clipped_finite = 0;
    ClipRun off0, on0;
    for (std::uint64_t seed : seeds) {
      const std::string sfx = seed == args.seed ? "" : "_seed" + std::to_string(seed);
      ClipRun off = clip_run(Opt::sgd, 1e300, clip_steps, seed, args.path("clip_off" + sfx + ".csv"));
      ClipRun on = clip_run(Opt::sgd, max_norm, clip_steps, seed, args.path("clip_on" + sfx + ".csv"));
      if (off.diverged) div_step.add(double(off.diverged));
      if (!on.diverged) {
        ++clipped_finite;
        clip_loss.add(on.mean_loss_last(50));
      }
      t_clip.row({seed, off.diverged ? lab::Cell(off.diverged) : lab::Cell("never"),
                  on.diverged ? lab::Cell("diverged") : lab::Cell(*std::max_element(on.before.begin(), on.before.end()), 4),
                  on.diverged ? lab::Cell("-") : lab::Cell(on.mean_loss_last(50), 3)});
      if (seed == args.seed) off0 = off, on0 = on;
    }
    const std::vector<lab::Series> clip_norms{
        {.csv = args.path("clip_off.csv"), .y = "norm_before", .title = "no clipping: gradient norm"},
        {.csv = args.path("clip_on.csv"), .y = "norm_before", .title = "clipping: norm before clip_grad_norm"},
        {.csv = args.path("clip_on.csv"), .y = "norm_after", .title = "clipping: norm after (max_norm = 1)"}};
    figure(lab::plot(args.path("clipping.png"), clip_norms,
                     {.title = "Exploding gradients (radius 2.0, SGD lr 0.1, seed " + std::to_string(args.seed) +
                               ") with and without clipping",
                      .ylabel = "gradient norm (all parameters)", .logy = true, .ymin = 0.1, .ymax = 1e30}),
           "clipping.png");
    const std::vector<lab::Series> clip_loss_curves{
        {.csv = args.path("clip_off.csv"), .y = "loss", .title = "no clipping"},
        {.csv = args.path("clip_on.csv"), .y = "loss", .title = "clipping at 1.0"}};
    lab::plot(args.path("clipping_loss.png"), clip_loss_curves,
              {.title = "Training loss, adding problem T = 50", .ylabel = "MSE", .logy = true,
               .hlines = {{lab::AddingTask::kBaselineMSE, "predict 1.0 (0.167)"}}});
    std::cout << "\n";
    t_clip.print();
    t_clip.save_markdown(args.path("report.md"), true);
    chapter.table("clipping", t_clip);
    checks.expect(div_step.size() == S, "without clipping, SGD on the exploding RNN diverges in " + of_seeds(div_step.size(), S) +
                                            (div_step.size() ? " (non-finite loss at step " + int_range(div_step) + ")" : ""));
    checks.expect(clipped_finite == S, "with clip_grad_norm(1.0) the same runs stay finite for all " + std::to_string(clip_steps) +
                                           " steps in " + of_seeds(clipped_finite, S));
    if (off0.diverged && off0.loss.size() >= 2 && !on0.diverged) {
      const std::size_t n = off0.loss.size();
      const double growth = std::pow(off0.loss.back() / off0.loss.front(), 1.0 / double(n - 1));
      std::size_t settled = 0;  // the first step after which the norm before clipping stays below 10
      for (std::size_t i = 0; i < on0.before.size(); ++i)
        if (on0.before[i] >= 10) settled = i + 1;
      double first60 = 0, last50 = 0;
      const std::size_t k60 = std::min<std::size_t>(60, on0.before.size()), k50 = std::min<std::size_t>(50, on0.before.size());
      for (std::size_t i = 0; i < k60; ++i) first60 += on0.before[i] / double(k60);
      for (std::size_t i = on0.before.size() - k50; i < on0.before.size(); ++i) last50 += on0.before[i] / double(k50);
      chapter.text("clipping_reading",
                   "In seed " + std::to_string(args.seed) + " (the picture), without clipping the first gradient has norm " +
                       short_number(off0.before[0]) + ", the second " + short_number(off0.before[1]) +
                       "; the weights jump, the loss grows about " + short_number(growth) + "-fold per step (" + fmt(off0.loss.front(), 3) +
                       " at step 1, " + short_number(off0.loss.back()) + " at step " + std::to_string(n) + ") and is not finite at step " +
                       std::to_string(off0.diverged) + ". With `clip_grad_norm(1.0)` the same run sees norms up to " +
                       short_number(*std::max_element(on0.before.begin(), on0.before.end())) + " before clipping (" + short_number(first60) +
                       " on average over the first " + std::to_string(k60) + " steps), and every step has length 1. " +
                       (settled < on0.before.size()
                            ? "From step " + std::to_string(settled + 1) + " on the norm before clipping stays below 10 (" +
                                  fmt(last50, 2) + " on average over the last " + std::to_string(k50) +
                                  " steps): the network has left the exploding region. "
                            : "The norm before clipping is still above 10 at the last step (" + short_number(on0.before.back()) +
                                  "). ") +
                       "Over " + seeds_text + ", the run without clipping diverges in " + of_seeds(div_step.size(), S) +
                       (div_step.size() ? " (at step " + int_range(div_step) + ")" : std::string()) + ", the clipped one stays finite in " +
                       of_seeds(clipped_finite, S) +
                       (clip_loss.size() ? std::string(", and its training loss ends ") +
                                               (clip_loss.min() > 1.2 * lab::AddingTask::kBaselineMSE ? "above" : "around") +
                                               " the 0.167 of always answering 1.0 (mean over the last 50 steps: " +
                                               clip_loss.range() + ")"
                                         : std::string()) +
                       ". Clipping kept the runs alive; it did not teach them the task.");
    }

    // ---- 4) Where the tanh RNN stops learning: recall and adding against T (default init) -------
    const std::vector<int> recall_T = args.quick ? std::vector<int>{10, 100} : std::vector<int>{10, 20, 30, 50, 100, 200};
    const std::vector<int> adding_T = args.quick ? std::vector<int>{10, 100} : std::vector<int>{10, 20, 50, 100};
    std::cout << "\nThe tanh RNN (default init) on first-token recall and the adding problem, " << steps
              << " steps each (Adam 1e-2, B = 32, clip 1.0), " << seeds_text << "\n";
    // Per T: the final and the best held-out value of every seed.
    struct Sweep {
      std::vector<int> T;
      std::vector<lab::SeedStats> final, best;
    };
    auto sweep = [&](Task task, const std::vector<int>& lengths) {
      Sweep sw{lengths, {}, {}};
      for (int len : lengths) {
        lab::SeedStats f, b;
        for (std::uint64_t seed : seeds) {
          const long_range::RunResult& run = train(task, len, -1.0, seed, steps);
          f.add(run.final_metric);
          b.add(run.best_metric);
        }
        sw.final.push_back(f);
        sw.best.push_back(b);
      }
      return sw;
    };
    // A metric-vs-T picture: every seed's value after training as a point, the median as a line.
    auto plot_vs_T = [&](const Sweep& sw, const std::string& stem, lab::PlotOptions po) {
      lab::CurveLog pts(args.path(stem + "_seeds.csv"), {"final"}, "T");
      lab::CurveLog med(args.path(stem + "_median.csv"), {"median", "best_median"}, "T");
      for (std::size_t i = 0; i < sw.T.size(); ++i) {
        for (double v : sw.final[i].values) pts.log(sw.T[i], {v});
        med.log(sw.T[i], {sw.final[i].median(), sw.best[i].median()});
      }
      po.xlabel = "sequence length T (log scale)";
      po.logx = true;
      po.xmin = sw.T.front() * 0.8, po.xmax = sw.T.back() * 1.25;
      return lab::plot(args.path(stem + ".png"),
                       {{.csv = pts.path(), .y = "final", .title = "each seed, after " + std::to_string(steps) + " steps", .x = "T",
                         .style = "points pt 7 ps 1.2"},
                        {.csv = med.path(), .y = "median", .title = "median after " + std::to_string(steps) + " steps", .x = "T",
                         .style = "linespoints pt 5", .width = 2.5},
                        {.csv = med.path(), .y = "best_median", .title = "median of each seed's best during the run", .x = "T",
                         .style = "linespoints pt 4", .width = 1.5, .dash = 2}},
                       po);
    };

    const Sweep rec = sweep(Task::recall, recall_T);
    const Sweep add = sweep(Task::adding, adding_T);
    figure(plot_vs_T(rec, "recall_vs_T",
                     {.title = "tanh RNN, first-token recall (" + std::to_string(S) + " seeds per T)", .ylabel = "held-out accuracy",
                      .ymin = 0, .ymax = 1.3, .hlines = {{lab::RecallTask::kChanceAccuracy, "chance (1/8)"}}}),
           "recall_vs_T.png");
    figure(plot_vs_T(add, "adding_vs_T",
                     {.title = "tanh RNN, adding problem (" + std::to_string(S) + " seeds per T)", .ylabel = "held-out MSE",
                      .logy = true, .ymin = 5e-3, .ymax = 3, .hlines = {{lab::AddingTask::kBaselineMSE, "predict 1.0 (0.167)"}}}),
           "adding_vs_T.png");

    lab::Table t_recall("tanh RNN, first-token recall (chance 0.125), " + seeds_text,
                        {"T", "after " + std::to_string(steps) + " steps: median", "range", "best during the run: median",
                         "seeds that reached " + fmt(kFullRecall, 1), "seeds above " + fmt(kAboveChance, 1) + " at the end"});
    for (std::size_t i = 0; i < rec.T.size(); ++i)
      t_recall.row({rec.T[i], lab::Cell(rec.final[i].median(), 3), rec.final[i].range(), lab::Cell(rec.best[i].median(), 3),
                    std::to_string(rec.best[i].count([](double a) { return a >= kFullRecall; })) + " of " + std::to_string(S),
                    std::to_string(rec.final[i].count([](double a) { return a >= kAboveChance; })) + " of " + std::to_string(S)});
    lab::Table t_adding("tanh RNN, adding problem (always answering 1.0 scores 0.167), " + seeds_text,
                        {"T", "after " + std::to_string(steps) + " steps: median", "range", "best during the run: median",
                         "seeds below " + fmt(kAddingLearned, 1) + " at the end"});
    for (std::size_t i = 0; i < add.T.size(); ++i)
      t_adding.row({add.T[i], lab::Cell(add.final[i].median(), 3), add.final[i].range(), lab::Cell(add.best[i].median(), 3),
                    std::to_string(add.final[i].count([](double m) { return m < kAddingLearned; })) + " of " + std::to_string(S)});
    std::cout << "\n";
    t_recall.print();
    std::cout << "\n";
    t_adding.print();
    t_recall.save_markdown(args.path("report.md"), true);
    t_adding.save_markdown(args.path("report.md"), true);
    chapter.table("recall", t_recall);
    chapter.table("adding", t_adding);

    // What the recall sweep says, in words built from it.
    {
      const lab::SeedStats& first_best = rec.best.front();
      int last_full = 0;  // the longest T at which some seed reached full recall
      std::size_t last_full_count = 0;
      for (std::size_t i = 0; i < rec.T.size(); ++i) {
        const std::size_t k = rec.best[i].count([](double a) { return a >= kFullRecall; });
        if (k) last_full = rec.T[i], last_full_count = k;
      }
      int all_chance = 0;  // the shortest T at which every seed stays at chance for the whole run
      for (std::size_t i = 0; i < rec.T.size() && !all_chance; ++i)
        if (rec.best[i].count([](double a) { return a < kAboveChance; }) == S) all_chance = rec.T[i];
      const lab::SeedStats& longest = rec.final.back();
      std::string s = "At T = " + std::to_string(rec.T.front()) + " " + how_many(first_best, [](double a) { return a >= kFullRecall; }) +
                      " reaches full recall (held-out accuracy of at least " + fmt(kFullRecall, 1) + ") during the run";
      const std::size_t end_full = rec.final.front().count([](double a) { return a >= kFullRecall; });
      s += end_full == S ? " and keeps it." : "; " + std::to_string(end_full) + " of " + std::to_string(S) + " still have it after the last step.";
      if (last_full == rec.T.back())
        s += " Even at T = " + std::to_string(last_full) + " " + of_seeds(last_full_count, S) + " reach it.";
      else
        s += " The longest T at which any seed reaches full recall is T = " + std::to_string(last_full) + " (" +
             of_seeds(last_full_count, S) + "); from there on the median after training falls to " +
             fmt(rec.final.back().median()) + " at T = " + std::to_string(rec.T.back()) + ".";
      if (all_chance)
        s += " From T = " + std::to_string(all_chance) + " on every seed stays at chance (below " + fmt(kAboveChance, 1) +
             ") for the whole run.";
      else
        s += " But at no T up to " + std::to_string(rec.T.back()) + " does every seed sit at chance: at T = " +
             std::to_string(rec.T.back()) + ", " + of_seeds(longest.count([](double a) { return a >= kAboveChance; }), S) +
             " end above " + fmt(kAboveChance, 1) + " (every seed: " + longest.all() +
             "). What they keep is not full recall but a part of it, and the last experiment shows how.";
      if (end_full < S)
        s += " (The held-out accuracy of a network that has learned can drop suddenly during training, as the runs' CSV "
             "files show, and it does not always climb back before the last step: that is why the table also gives each "
             "seed's best score during the run.)";
      chapter.text("recall_reading", s);

      const lab::SeedStats& a_first = add.final.front();
      std::size_t first_fail = 0;  // index of the first T at which no seed learns adding
      while (first_fail < add.T.size() && add.best[first_fail].count([](double m) { return m < kAddingLearned; }) > 0) ++first_fail;
      std::string a = "The adding problem stops earlier. At T = " + std::to_string(add.T.front()) + " the RNN learns it in " +
                      of_seeds(a_first.count([](double m) { return m < kAddingLearned; }), S) + " (MSE below " +
                      fmt(kAddingLearned, 1) + " after " + std::to_string(steps) + " steps; every seed: " + a_first.all() + ")";
      if (first_fail < add.T.size()) {
        lab::SeedStats best_after;
        for (std::size_t i = first_fail; i < add.T.size(); ++i)
          for (double v : add.best[i].values) best_after.add(v);
        a += "; from T = " + std::to_string(add.T[first_fail]) +
             " on no seed gets below it at any point of the run: the best held-out MSE any of them reaches is " +
             fmt(best_after.min()) + ", next to the 0.167 line.";
      } else {
        a += ", and some seed learns it at every T up to " + std::to_string(add.T.back()) + ".";
      }
      a += " A value can only be added if it is carried, unrounded, for up to T steps; a latch cannot do that.";
      chapter.text("adding_reading", a);

      checks.expect(first_best.count([](double a) { return a >= kFullRecall; }) == S,
                    "recall at T = " + std::to_string(rec.T.front()) + ": every seed reaches accuracy " + fmt(kFullRecall, 1) +
                        " during the run (best: " + first_best.range() + ")");
      {
        lab::SeedStats long_best;  // every seed's best at T >= 100
        std::vector<int> long_T;
        for (std::size_t i = 0; i < rec.T.size(); ++i)
          if (rec.T[i] >= 100) {
            long_T.push_back(rec.T[i]);
            for (double v : rec.best[i].values) long_best.add(v);
          }
        checks.expect(!long_T.empty() && long_best.count([](double a) { return a >= kFullRecall; }) == 0,
                      "recall at T = " + list_T(long_T) + ": no seed reaches " + fmt(kFullRecall, 1) +
                          " at any point of the run (best: " + long_best.range() + ")");
      }
      checks.expect(rec.final.front().median() - rec.final.back().median() > 0.3,
                    "recall fails as T grows: median accuracy " + fmt(rec.final.front().median()) + " at T = " +
                        std::to_string(rec.T.front()) + ", " + fmt(rec.final.back().median()) + " at T = " + std::to_string(rec.T.back()));
      if (!args.quick)  // 150 steps are too few for adding even at T = 10 (it breaks away after ~400)
        checks.expect(a_first.count([](double m) { return m < kAddingLearned; }) * 2 > S,
                      "adding at T = " + std::to_string(add.T.front()) + ": most seeds learn it (MSE < " + fmt(kAddingLearned, 1) +
                          " in " + of_seeds(a_first.count([](double m) { return m < kAddingLearned; }), S) + ")");
      {
        lab::SeedStats later_best;  // every seed's best at every T but the first
        for (std::size_t i = 1; i < add.T.size(); ++i)
          for (double v : add.best[i].values) later_best.add(v);
        checks.expect(add.T.size() > 1 && later_best.count([](double m) { return m < kAddingLearned; }) == 0,
                      "adding at T = " + list_T(std::vector<int>(add.T.begin() + 1, add.T.end())) + ": no seed gets below MSE " +
                          fmt(kAddingLearned, 1) + " at any point of the run (best: " + later_best.range() + ")");
      }
      checks.expect(longest.count([](double a) { return a >= kAboveChance; }) > 0,
                    "recall at T = " + std::to_string(rec.T.back()) + ": not every seed sits at chance, " +
                        of_seeds(longest.count([](double a) { return a >= kAboveChance; }), S) + " end above " +
                        fmt(kAboveChance, 1) + " (" + longest.all() + ")");
    }

    // Which inputs do the recall models at the longest T use? Change one position's token in
    // every held-out sequence and measure again, for every seed.
    {
      const int TL = rec.T.back();
      std::vector<std::string> head{"token changed"};
      for (std::uint64_t seed : seeds) head.push_back("seed " + std::to_string(seed));
      lab::Table t_latch("The recall models at T = " + std::to_string(TL) + ": held-out accuracy with one input token changed", head);
      const std::vector<std::size_t> positions{0, 1, 9, std::size_t(TL / 2 - 1), std::size_t(TL - 1)};
      std::vector<std::vector<double>> acc(positions.size() + 1);  // [none, x_1, ...][seed]
      for (std::uint64_t seed : seeds) {
        lab::SequenceModel& m = *train(Task::recall, TL, -1.0, seed, steps).model;
        const lab::RecallTask recall_eval({.T = TL, .seed = seed, .eval_size = eval_size});  // the run's own held-out set
        const lab::RecallBatch& ev = recall_eval.eval_set();
        acc[0].push_back(long_range::recall_accuracy(m, ev.one_hot, ev.targets));
        for (std::size_t j = 0; j < positions.size(); ++j)
          acc[j + 1].push_back(long_range::recall_accuracy(m, change_token(ev.one_hot, positions[j]), ev.targets));
      }
      for (std::size_t j = 0; j <= positions.size(); ++j) {
        std::vector<lab::Cell> row{j == 0 ? std::string("none") : "x_" + std::to_string(positions[j - 1] + 1)};
        for (double a : acc[j]) row.push_back(lab::Cell(a, 3));
        t_latch.row(row);
      }
      std::cout << "\n";
      t_latch.print();
      t_latch.save_markdown(args.path("report.md"), true);
      chapter.table("latch", t_latch);
      // Over the seeds that are above chance: how far changing x_1 drops them, and changing a later token.
      lab::SeedStats latched, x1, later_change, groups;
      for (std::size_t k = 0; k < S; ++k) {
        if (acc[0][k] < kAboveChance) continue;
        latched.add(acc[0][k]);
        x1.add(acc[1][k]);
        double worst = 0;
        for (std::size_t j = 2; j <= positions.size(); ++j) worst = std::max(worst, std::fabs(acc[j][k] - acc[0][k]));
        later_change.add(worst);
        groups.add(std::round(acc[0][k] * 8));
      }
      if (latched.size()) {
        chapter.text("latch_reading",
                     "In the " + of_seeds(latched.size(), S) + " above chance at T = " + std::to_string(TL) +
                         ", changing the first token drops the accuracy to " + span(x1) +
                         " (chance is 0.125); changing any later token, even the second or the last one, moves it by at most " +
                         fmt(later_change.max(), 2) + ". Those networks have become *latches*: the first input pushes the state into "
                         "one of a few saturated patterns, and from then on the state ignores the input. Accuracies of " +
                         span(latched) + " are what telling apart " +
                         (groups.min() == groups.max() ? fmt(groups.min(), 1) : fmt(groups.min(), 1) + " to " + fmt(groups.max(), 1)) +
                         " groups of the eight symbols gives (k groups, each answered with one of its symbols, score k/8).");
        checks.expect(x1.max() < kAboveChance && later_change.max() < 0.05,
                      "the recall models above chance at T = " + std::to_string(TL) + " (" + of_seeds(latched.size(), S) +
                          ") are latches: changing x_1 drops them to " + span(x1) + ", changing a later token moves them by at most " +
                          fmt(later_change.max(), 2));
      } else {
        chapter.text("latch_reading", "No seed is above chance at T = " + std::to_string(TL) + ", so there is no latch to look at.");
      }
    }

    // ---- The exercises' answers ---------------------------------------------------------------
    {
      const double r50 = ratio_at(1.1, 50, ag::f64), r100 = ratio_at(1.1, 100, ag::f64);
      chapter.text("answer1", "*Answer:* " + fmt(r50, 2) + " and " + fmt(r100, 2) +
                                  ": neither vanishing nor exploding much. Slightly above 1 is where `rho` and the shrinking "
                                  "`tanh` derivative cancel; that is why orthogonal and identity initialisations (Saxe et al. "
                                  "2013, Le et al. 2015) make plain RNNs trainable for longer.");

      // Exercise 2: Adam (lr 1e-2) without clipping on the exploding case.
      std::size_t adam_div = 0;
      lab::SeedStats adam_loss;
      ClipRun adam0;
      for (std::uint64_t seed : seeds) {
        ClipRun r = clip_run(Opt::adam, 1e300, clip_steps, seed, args.path("exercise2_adam_seed" + std::to_string(seed) + ".csv"));
        if (r.diverged) ++adam_div;
        else adam_loss.add(r.mean_loss_last(50));
        if (seed == args.seed) adam0 = r;
      }
      std::string a2 = "*Answer:* ";
      a2 += adam_div == 0 ? "no, in none of " + seeds_text + "." : "in " + of_seeds(adam_div, S) + " it does.";
      a2 += " Adam divides each gradient by the root of its running mean square, so a step moves each weight by about lr "
            "however large the gradient is";
      if (adam0.before.size() >= 2)
        a2 += ": in seed " + std::to_string(args.seed) + " the first gradient norms are " + short_number(adam0.before[0]) +
              " and " + short_number(adam0.before[1]) + ", and the training loss stays finite";
      if (adam_loss.size())
        a2 += " (its mean over the last 50 of " + std::to_string(clip_steps) + " steps: " + span(adam_loss) +
              (adam_loss.size() < S ? " over the seeds that stayed finite" : "") + ")";
      a2 += ". Clipping still matters for Adam when one huge gradient arrives after many small ones, and it is standard in the "
            "Transformer lessons.";
      chapter.text("answer2", a2);
      checks.expect(adam_div == 0, "exercise 2: Adam without clipping stays finite on the exploding RNN in " +
                                       of_seeds(S - adam_div, S));

      // Exercise 3: four times the steps for adding at T = 20, the shortest T at which 800 steps fail.
      // Measured only in a run with the default --steps (a --steps run is the exercise itself).
      if (args.steps == 0) {
        const std::int64_t long_steps = 4 * steps;
        const int T3 = args.quick ? 10 : 20;
        std::cout << "\nExercise 3: adding at T = " << T3 << " with " << long_steps << " steps, " << seeds_text << "\n";
        lab::SeedStats fin, best;
        for (std::uint64_t seed : seeds) {
          const long_range::RunResult& r = train(Task::adding, T3, -1.0, seed, long_steps);
          fin.add(r.final_metric);
          best.add(r.best_metric);
        }
        const std::size_t learned = fin.count([](double m) { return m < kAddingLearned; });
        chapter.text("answer3",
                     "*Answer:* " + std::string(learned == 0 ? "it stays on the line." : "it leaves the line in " + of_seeds(learned, S) + ".") +
                         " The run measures this for you (the same " + std::to_string(long_steps) + "-step runs at T = " +
                         std::to_string(T3) + ", " + seeds_text + "): after " + std::to_string(long_steps) +
                         " steps the held-out MSE is " + fin.all() + ", and the best any seed reaches during the run is " +
                         fmt(best.min()) + ". " +
                         (learned == 0 ? "More time does not help when the signal that would teach the network is too weak to follow. "
                                         "The adding problem needs a memory that the tanh RNN does not find; lesson 06 adds gates "
                                         "built for that."
                                       : "Some seeds find the memory given time; the others do not."));
        if (!args.quick)
          checks.expect(learned == 0, "exercise 3: adding at T = " + std::to_string(T3) + " with " + std::to_string(long_steps) +
                                          " steps stays above MSE " + fmt(kAddingLearned, 1) + " in " + of_seeds(S - learned, S) +
                                          " (" + fin.all() + ")");
      }
    }

    std::cout << "\nThe key curve: ||dL/dx_t|| at initialisation, log scale\n";
    lab::plot_terminal(init_curves, po_grad, std::cout, 100, 30);
    std::ostringstream report;
    const int status = checks.report(report);
    std::cout << report.str();
    chapter.text("checks", "```" + report.str() + "```");
    std::cout << "\nCPU time of the whole run: " << fmt(double(std::clock() - cpu_start) / CLOCKS_PER_SEC, 3) << " s\n";
    return status;
  });
}
