// Lesson 18: attention in linear time, and what it gives up.
//
// Lesson 13 tiled attention's memory down to O(T); its time stayed O(T^2). Two ways out change
// the time too, and both change what the model can see:
//   - a sliding window (each position sees the `window` positions on each side; causal: behind it),
//     optionally with global tokens that see and are seen by everyone (Longformer): the tiled op
//     skips every tile outside the band (ag::TiledAttentionOptions::window);
//   - linear attention (Katharopoulos et al. 2020): exp(q . k) replaced by phi(q) . phi(k) with
//     phi = elu + 1, so the sums regroup into a d x d state (ag::linear_attention).
//
// Part 1, cost: one training step (forward, backward, Adam) of a pre-LN Transformer layer
// (D 256, 4 heads of 64, FFN 1024, causal, batch 1) for T = 256 ... 4096 (--long: 16,384),
// for naive, tiled, window (w = 256) and linear attention: CPU time of one thread and the heap's
// peak, counted exactly (common/heap_count.hpp), with fitted exponents.
// Part 2, accuracy: the showdown's two tasks (lesson 12's protocol: hidden 64, 4 heads, batch 64,
// Adam 1e-3, clipping 1.0, 250 steps, 1,000 held-out sequences) for full attention, a window of
// 32 without and with position 0 global, and linear attention, over several seeds; and how much
// of the loss's gradient reaches position 0.
//
// Shape legend: B batch, T sequence length, D model width, H heads, d = D / H, w window.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/cpu_time.hpp"
#include "common/heap_count.hpp"
#include "common/labkit.hpp"
#include "common/long_range.hpp"
#include "common/parallel.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

extern "C" void openblas_set_num_threads(int);  // OpenBLAS is linked through the engine

namespace {

using ag::Tensor;
using long_range::Task;

// ---- part 1: cost ---------------------------------------------------------------------------

enum class Kind { naive, tiled, window, linear };
constexpr Kind kKinds[] = {Kind::naive, Kind::tiled, Kind::window, Kind::linear};
const char* kind_slug(Kind k) {
  switch (k) {
    case Kind::naive: return "naive";
    case Kind::tiled: return "tiled";
    case Kind::window: return "window";
    case Kind::linear: return "linear";
  }
  return "?";
}
constexpr std::size_t kCostWindow = 256;        // w of the window kind in part 1
constexpr std::size_t kNaiveLongest = 4096;     // naive attention's last T: at 8,192 it would hold GBs of [H, T, T] arrays
constexpr std::size_t kD = 256, kHeads = 4, kFFN = 1024;

// One training step of a pre-LN encoder layer on one causal sequence [1, T, D]: the loss is the
// mean square of every position's output, so every position's attention is in the gradient.
struct LayerStep {
  ag::Generator gen;
  nn::TransformerEncoderLayer layer;
  Tensor x;
  std::unique_ptr<nn::Adam> opt;
  LayerStep(Kind kind, std::size_t T, std::uint64_t seed) : gen(seed), layer(options(kind), gen) {
    x = ag::randn({1, T, kD}, gen);
    opt = std::make_unique<nn::Adam>(layer.parameters());
  }
  static nn::TransformerOptions options(Kind kind) {
    nn::TransformerOptions o{.d_model = kD, .num_heads = kHeads, .dim_feedforward = kFFN, .dropout = 0.0, .norm_first = true};
    o.attention = kind == Kind::naive ? nn::AttentionImpl::naive : kind == Kind::linear ? nn::AttentionImpl::linear : nn::AttentionImpl::tiled;
    if (kind == Kind::window) o.window = kCostWindow;
    return o;
  }
  void step() {
    const Tensor out = layer.forward(x, {}, {}, /*is_causal=*/true);
    ag::mean(out * out).backward();
    opt->step();
    opt->zero_grad();
  }
};

struct Cost {
  std::vector<double> T, ms, mb;
};

// The attention op alone, the size: q, k, v [1, 4, T, 64], causal, forward + backward
// (the gradient of the sum of the outputs into q, k, v).
struct AttentionAlone {
  Kind kind;
  Tensor q, k, v;
  AttentionAlone(Kind kind_, std::size_t T, std::uint64_t seed) : kind(kind_) {
    ag::Generator gen(seed);
    q = ag::randn({1, kHeads, T, kD / kHeads}, gen).requires_grad_();
    k = ag::randn({1, kHeads, T, kD / kHeads}, gen).requires_grad_();
    v = ag::randn({1, kHeads, T, kD / kHeads}, gen).requires_grad_();
  }
  void step() {
    const std::size_t T = q.shape()[2];
    Tensor out;
    switch (kind) {
      case Kind::naive: out = nn::scaled_dot_product_attention(q, k, v, nn::causal_mask(T)).output; break;
      case Kind::tiled: out = ag::tiled_attention(q, k, v, {}, {.causal = true}); break;
      case Kind::window: out = ag::tiled_attention(q, k, v, {}, {.causal = true, .window = kCostWindow}); break;
      case Kind::linear: out = ag::linear_attention(ag::elu(q) + 1.0, ag::elu(k) + 1.0, v, {.causal = true}); break;
    }
    ag::sum(out).backward();
  }
};

// ---- part 2: accuracy -------------------------------------------------------------------------

constexpr lab::ModelKind kAccuracyKinds[] = {lab::ModelKind::transformer, lab::ModelKind::window, lab::ModelKind::window_global,
                                              lab::ModelKind::linear};
const char* accuracy_name(lab::ModelKind k) {
  switch (k) {
    case lab::ModelKind::transformer: return "full";
    case lab::ModelKind::window: return "window";
    case lab::ModelKind::window_global: return "window + global 0";
    default: return "linear";
  }
}
bool solved(Task t, double m) { return t == Task::recall ? m >= 0.95 : m <= 0.01; }     // the showdown's bars
bool at_chance(Task t, double m) { return t == Task::recall ? m <= 0.165 : m >= 0.15; }

// ||dL/dx_1|| / ||dL/dx_T|| over 64 held-out sequences of the task (the showdown's measure): how
// much of the loss's gradient reaches position 0. Exactly 0 when no path of attention leads there.
double first_position_gradient_ratio(lab::SequenceModel& model, Task task, int T, std::uint64_t seed) {
  Tensor x, loss;
  if (task == Task::adding) {
    const lab::AddingTask data({.T = T, .batch_size = 64, .seed = seed, .eval_size = 64});
    x = data.eval_set().inputs.to(model.dtype()).detach().requires_grad_();
    loss = ag::mse_loss(model(x), data.eval_set().targets.to(model.dtype()));
  } else {
    const lab::RecallTask data({.T = T, .batch_size = 64, .seed = seed, .eval_size = 64});
    x = data.eval_set().one_hot.to(model.dtype()).detach().requires_grad_();
    loss = ag::cross_entropy(model(x), data.eval_set().targets);
  }
  model.zero_grad();
  loss.backward();
  const std::vector<double> norm = long_range::norm_per_position(x.grad());
  model.zero_grad();
  return norm.back() > 0 ? long_range::first_to_last(norm) : 0.0;
}

std::string sci(double v) {  // 0 stays "0"; small ratios in scientific notation
  if (v == 0) return "0";
  std::ostringstream s;
  s.precision(2);
  if (std::abs(v) < 1e-3) s << std::scientific;
  s << v;
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("18_linear_time", "Sliding windows, global tokens and linear attention: the cost against T, and what each can see");
  std::string lengths;
  bool long_cost = false;
  std::size_t window = 32, seeds = 0, jobs_n = 1;
  cli.steps_help("training steps per accuracy run (default 250; --quick 60)");
  cli.app().add_flag("--long", long_cost, "the cost up to T = 16,384 (naive attention to 4,096), without the accuracy runs (about 5 minutes)");
  cli.app().add_option("--T", lengths, "accuracy runs: sequence lengths, comma-separated (default 100; --quick 40)");
  cli.app().add_option("--window", window, "accuracy runs: the window kinds see keys within this distance (--quick: 8)")
      ->check(CLI::Range(0, 5000))
      ->capture_default_str();
  cli.app().add_option("--seeds", seeds, "accuracy runs per task, T and kind (0 = 3; --quick 2)")->check(CLI::Range(0, 20));
  cli.app().add_option("--jobs", jobs_n, "accuracy runs trained at once, one thread each (2 on two cores halves the wait)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    openblas_set_num_threads(1);  // one core for every kernel, every kind alike
    const bool long_run = long_cost && !args.quick;
    const lab::Chapter chapter(args);
    lab::Checks checks, timing_checks;  // the second: claims about timings, with margins
    std::cout << "Lesson 18: attention in linear time (SIMD " << ag::simd_target() << ", one thread)\n\n";

    // ---- part 1: the cost of one layer's training step against T ----
    std::vector<std::size_t> Ts = {256, 512, 1024};
    if (!args.quick) Ts.insert(Ts.end(), {2048, 4096});
    if (long_run) Ts.insert(Ts.end(), {8192, 16384});
    std::map<Kind, Cost> cost;
    {
      std::size_t points = 0;
      for (std::size_t T : Ts) points += T <= kNaiveLongest ? 4 : 3;
      lab::Progress bar(std::int64_t(points), "layer steps");
      for (std::size_t T : Ts)
        for (Kind kind : kKinds) {
          if (kind == Kind::naive && T > kNaiveLongest) continue;
          // Memory: the most bytes in use during the second step (Adam's moments exist from the
          // first), less what was in use before the layer existed.
          const std::int64_t before = heap::reset_peak();
          LayerStep model(kind, T, args.seed + 1);
          model.step();
          heap::reset_peak();
          model.step();
          const double mb = double(heap::peak() - before) / 1e6;
          const double ms = lab::median_ms([&] { model.step(); }, T >= 4096 ? 2 : 3);
          Cost& c = cost[kind];
          c.T.push_back(double(T)), c.ms.push_back(ms), c.mb.push_back(mb);
          bar.tick({{"T", double(T)}, {"ms", ms}});
        }
    }
    const double fit_from = long_run ? 2048 : args.quick ? 256 : 1024;  // below, the projections and the FFN hide attention's share
    lab::Table ct("One training step of the layer, CPU ms (one thread) and peak MB", {"T", "naive ms", "tiled ms", "window ms",
                                                                                    "linear ms", "naive MB", "tiled MB", "window MB", "linear MB"});
    for (std::size_t i = 0; i < Ts.size(); ++i) {
      std::vector<lab::Cell> row{long(Ts[i])};
      for (int what = 0; what < 2; ++what)
        for (Kind kind : kKinds) {
          const Cost& c = cost[kind];
          const auto it = std::find(c.T.begin(), c.T.end(), double(Ts[i]));
          if (it == c.T.end()) row.push_back("-");
          else row.push_back(lab::Cell((what == 0 ? c.ms : c.mb)[std::size_t(it - c.T.begin())], 3));
        }
      ct.row(row);
    }
    std::map<Kind, double> p_time, p_mem;
    lab::Table fits("Fitted exponents p in cost ~ T^p (T = " + std::to_string(std::size_t(fit_from)) + " to " +
                        std::to_string(Ts.back()) + "; naive to " + std::to_string(std::min(Ts.back(), kNaiveLongest)) + ")",
                    {"kind", "time p", "memory p"});
    for (Kind kind : kKinds) {
      const Cost& c = cost[kind];
      p_time[kind] = lab::loglog_slope(c.T, c.ms, fit_from);
      p_mem[kind] = lab::loglog_slope(c.T, c.mb, fit_from);
      fits.row({kind_slug(kind), lab::Cell(p_time[kind], 2), lab::Cell(p_mem[kind], 2)});
      lab::CurveLog log(args.path(std::string("cost_") + kind_slug(kind) + ".csv"), {"ms", "MB"}, "T");
      for (std::size_t i = 0; i < c.T.size(); ++i) log.log(c.T[i], {c.ms[i], c.mb[i]});
    }
    std::cout << "\n";
    ct.print();
    fits.print();
    chapter.table("cost", ct, lab::Timing::yes);
    chapter.table("cost_fits", fits, lab::Timing::yes);
    ct.save_markdown(args.path("report.md"));
    fits.save_markdown(args.path("report.md"), true);
    for (int what = 0; what < 2; ++what) {
      std::vector<lab::Series> ss;
      for (Kind kind : kKinds)  // tiled and window hold the same memory: tiled wide underneath, window dashed on top
        ss.push_back({args.path(std::string("cost_") + kind_slug(kind) + ".csv"), what == 0 ? "ms" : "MB", kind_slug(kind), "T",
                      "linespoints", kind == Kind::tiled ? 5.0 : 2.0, kind == Kind::window ? 2 : 0});
      const std::string png = what == 0 ? "cost_time.png" : "cost_memory.png";
      lab::plot(args.path(png), ss,
                {.title = std::string("One training step of a causal layer (D 256, 4 heads): ") + (what == 0 ? "CPU time" : "peak memory"),
                 .xlabel = "sequence length T", .ylabel = what == 0 ? "ms per step (one thread)" : "MB at the peak", .logx = true,
                 .logy = true, .key = "top left"});
      chapter.figure(png);
    }
    // The attention alone at the longest T naive attention reaches.
    const std::size_t T_cmp = std::min(Ts.back(), kNaiveLongest);
    std::map<Kind, std::pair<double, double>> alone;  // ms, MB
    lab::Table alone_table("The attention alone at T = " + std::to_string(T_cmp) + ": 4 heads of 64, causal, batch 1, forward + backward",
                  {"kind", "CPU ms", "peak MB"});
    for (Kind kind : kKinds) {
      AttentionAlone a(kind, T_cmp, args.seed + 2);
      a.step();  // the gradients' arrays exist from the first step on
      const double mb = double(heap::peak_growth([&] { a.step(); })) / 1e6;
      const double ms = lab::median_ms([&] { a.step(); }, 3);
      alone[kind] = {ms, mb};
      alone_table.row({kind_slug(kind), lab::Cell(ms, 3), lab::Cell(mb, 3)});
    }
    alone_table.print();
    chapter.table("attention_alone", alone_table, lab::Timing::yes);
    alone_table.save_markdown(args.path("report.md"), true);
    checks.expect(alone[Kind::tiled].second < alone[Kind::naive].second / 10,
                  "at T = " + std::to_string(T_cmp) + " tiled attention's forward + backward holds under a tenth of naive attention's memory (" +
                      lab::format_number(alone[Kind::tiled].second, 3) + " vs " + lab::format_number(alone[Kind::naive].second, 3) + " MB)");
    timing_checks.expect(alone[Kind::tiled].first <= alone[Kind::naive].first,
                         "at T = " + std::to_string(T_cmp) + " tiled attention's forward + backward is no slower than naive attention's (" +
                             lab::format_number(alone[Kind::tiled].first, 3) + " vs " + lab::format_number(alone[Kind::naive].first, 3) + " ms)");

    // The claims about whole steps, at the longest T each kind reached in this run.
    auto at = [&](Kind kind, std::size_t T, bool time) {
      const Cost& c = cost[kind];
      const auto it = std::find(c.T.begin(), c.T.end(), double(T));
      return it == c.T.end() ? -1.0 : (time ? c.ms : c.mb)[std::size_t(it - c.T.begin())];
    };
    checks.expect(at(Kind::tiled, T_cmp, false) < at(Kind::naive, T_cmp, false),
                  "at T = " + std::to_string(T_cmp) + " the tiled layer's step holds less memory than the naive one's (" +
                      lab::format_number(at(Kind::tiled, T_cmp, false), 3) + " vs " + lab::format_number(at(Kind::naive, T_cmp, false), 3) +
                      " MB; the rest is the layer's other arrays)");
    const std::string exponents = lab::format_number(p_mem[Kind::naive], 2) + ", " + lab::format_number(p_mem[Kind::tiled], 2) + ", " +
                                  lab::format_number(p_mem[Kind::window], 2) + ", " + lab::format_number(p_mem[Kind::linear], 2);
    if (args.quick)  // up to T = 1,024 the layer's O(T) arrays still dominate every kind's memory
      checks.expect(p_mem[Kind::naive] > std::max({p_mem[Kind::tiled], p_mem[Kind::window], p_mem[Kind::linear]}) + 0.1,
                    "naive attention's memory grows fastest (exponents " + exponents + ")");
    else
      checks.expect(p_mem[Kind::naive] > 1.5 && p_mem[Kind::tiled] < 1.2 && p_mem[Kind::window] < 1.2 && p_mem[Kind::linear] < 1.2,
                    "memory grows as T^2 for naive attention only (exponents " + exponents + ")");
    if (!args.quick) {
      timing_checks.expect(at(Kind::tiled, T_cmp, true) <= at(Kind::naive, T_cmp, true),
                           "at T = " + std::to_string(T_cmp) + " the tiled layer's step is no slower than the naive one's");
      timing_checks.expect(p_time[Kind::window] < 1.3 && p_time[Kind::linear] < 1.3,
                           "window and linear attention's time grows about linearly in T (exponents below 1.3)");
      timing_checks.expect(p_time[Kind::naive] > 1.5 && p_time[Kind::tiled] > 1.5,
                           "naive and tiled attention's time grows about as T^2 (exponents above 1.5)");
    }
    if (long_run) {
      checks.expect(at(Kind::window, 16384, false) < 1000, "the window layer's step at T = 16,384 holds under 1 GB (" +
                                                               lab::format_number(at(Kind::window, 16384, false), 3) + " MB)");
      timing_checks.expect(at(Kind::window, 16384, true) / at(Kind::window, 2048, true) <= 16,
                           "the window step's time from T = 2,048 to 16,384 grows at most 16-fold (" +
                               lab::format_number(at(Kind::window, 16384, true) / at(Kind::window, 2048, true), 3) + "x for 8x the length)");
    }

    // ---- part 2: what each kind can learn ----
    std::vector<int> accuracy_T;
    if (!lengths.empty()) {
      std::stringstream ss(lengths);
      for (std::string item; std::getline(ss, item, ',');) accuracy_T.push_back(std::stoi(item));
    } else {
      accuracy_T = args.quick ? std::vector<int>{40} : long_run ? std::vector<int>{} : std::vector<int>{100};
    }
    if (!accuracy_T.empty()) {
      const std::size_t w = args.quick && cli.app().get_option("--window")->count() == 0 ? 8 : window;
      const std::size_t n_seeds = seeds ? seeds : args.quick ? 2 : 3;
      const std::int64_t steps = args.steps_or(250, 60);
      std::cout << "\nAccuracy: hidden 64, 4 heads, batch 64, Adam 1e-3, clipping 1.0, " << steps << " steps; window " << w << "; seeds "
                << args.seed << " to " << args.seed + n_seeds - 1 << "\n";
      lab::Table acc("Held-out metric after " + std::to_string(steps) + " steps, median (lowest to highest) over " +
                         std::to_string(n_seeds) + " seeds; the gradient reaching position 0",
                     {"task", "T", "attention", "held-out metric", "solved", "at chance / baseline", "|dL/dx_1| / |dL/dx_T|"});
      struct Key {
        Task task;
        int T;
        lab::ModelKind kind;
        bool operator<(const Key& o) const { return std::tie(task, T, kind) < std::tie(o.task, o.T, o.kind); }
      };
      std::map<Key, lab::SeedStats> metric, ratio, seconds;
      struct Job {
        Key key;
        std::uint64_t seed;
        double metric = 0, ratio = 0, seconds = 0;
      };
      std::vector<Job> jobs;
      for (Task task : {Task::recall, Task::adding})
        for (int T : accuracy_T)
          for (lab::ModelKind kind : kAccuracyKinds)
            for (std::size_t k = 0; k < n_seeds; ++k) jobs.push_back({{task, T, kind}, args.seed + k});
      auto run = [&](Job& job) {
        const auto [task, T, kind] = job.key;
        long_range::RunOptions o{.kind = kind, .task = task, .T = T, .steps = steps, .batch = 64, .lr = 1e-3, .eval_every = 50,
                                 .eval_size = args.quick ? 200 : 1000, .seed = job.seed, .attention = nn::AttentionImpl::tiled,
                                 .window = w, .progress = jobs_n == 1};
        const std::string name = std::string(long_range::task_name(task)) + "_T" + std::to_string(T) + "_" + lab::model_slug(kind) +
                                 "_seed" + std::to_string(job.seed);
        const std::string label = std::string(long_range::task_name(task)) + " T=" + std::to_string(T) + " " + accuracy_name(kind) +
                                  " seed " + std::to_string(job.seed);
        const auto t0 = lab::thread_cpu_clock::now();  // CPU time: the same with one worker or two
        const long_range::RunResult r = long_range::train_run(o, args.path("curve_" + name + ".csv"), label);
        job.seconds = std::chrono::duration<double>(lab::thread_cpu_clock::now() - t0).count();
        job.metric = r.final_metric;
        r.model->to(ag::f64);  // the ratio spans decades
        job.ratio = first_position_gradient_ratio(*r.model, task, T, job.seed);
        if (jobs_n > 1) lab::print_line(label + ": held-out " + lab::format_number(job.metric, 3) + " after " +
                                        lab::format_number(job.seconds, 3) + " s");
      };
      lab::run_in_parallel(jobs, jobs_n, run,
                           // full attention's runs are the longest: they start first, so that the workers end together
                           [](const Job& j) { return j.key.kind == lab::ModelKind::transformer; });
      for (const Job& job : jobs) {
        metric[job.key].add(job.metric);
        ratio[job.key].add(job.ratio);
        seconds[job.key].add(job.seconds);
      }
      for (Task task : {Task::recall, Task::adding})
        for (int T : accuracy_T)
          for (lab::ModelKind kind : kAccuracyKinds) {
            const Key key{task, T, kind};
            const lab::SeedStats& m = metric[key];
            const std::string range = m.size() > 1 ? " (" + m.range() + ")" : "";
            acc.row({task == Task::recall ? "recall (accuracy)" : "adding (MSE)", T, accuracy_name(kind), lab::format_number(m.median(), 3) + range,
                     std::to_string(m.count([&](double v) { return solved(task, v); })) + " of " + std::to_string(m.size()),
                     std::to_string(m.count([&](double v) { return at_chance(task, v); })) + " of " + std::to_string(m.size()),
                     sci(ratio[key].median())});
          }
      std::cout << "\n";
      acc.print();
      chapter.table("accuracy", acc);
      acc.save_markdown(args.path("report.md"), true);
      lab::Table secs("CPU seconds per accuracy run (training and evaluation), median over the seeds", {"task", "T", "attention", "seconds"});
      for (const auto& [key, s] : seconds)
        secs.row({key.task == Task::recall ? "recall" : "adding", key.T, accuracy_name(key.kind), lab::Cell(s.median(), 3)});
      chapter.table("accuracy_seconds", secs, lab::Timing::yes);
      secs.save_markdown(args.path("report.md"), true);

      // The reading of the table, at the first T: the numbers the chapter's bullets quote.
      {
        const int T = accuracy_T.front();
        auto stats = [&](Task task, lab::ModelKind kind) -> const lab::SeedStats& { return metric[{task, T, kind}]; };
        auto solved_in = [&](Task task, lab::ModelKind kind) {
          const lab::SeedStats& m = stats(task, kind);
          return lab::in_seeds(m.count([&](double v) { return solved(task, v); }), m.size());
        };
        const lab::SeedStats& linear_recall = stats(Task::recall, lab::ModelKind::linear);
        const lab::SeedStats& window_adding = stats(Task::adding, lab::ModelKind::window);
        const lab::SeedStats& global_adding = stats(Task::adding, lab::ModelKind::window_global);
        std::string text = "At `T = " + std::to_string(T) + "`, window " + std::to_string(w) + ":\n\n";
        text += "- the window: recall accuracy " + stats(Task::recall, lab::ModelKind::window).range() + " (chance 0.125); adding MSE " +
                window_adding.range() + " (the baseline 0.167, solved at 0.01);\n";
        text += "- the window with position 0 global: recall solved " + solved_in(Task::recall, lab::ModelKind::window_global) +
                "; adding MSE " + global_adding.range() + ";\n";
        text += "- linear attention: adding solved " + solved_in(Task::adding, lab::ModelKind::linear) + " (MSE " +
                stats(Task::adding, lab::ModelKind::linear).range() + ", full attention " + stats(Task::adding, lab::ModelKind::transformer).range() +
                "); recall solved " + solved_in(Task::recall, lab::ModelKind::linear) + " (accuracy " + linear_recall.all() + ").\n";
        chapter.text("accuracy_reading", text);
      }

      // The claims the chapter makes about part 2, at every T > window this run trained.
      for (int T : accuracy_T) {
        if (std::size_t(T) <= w + 1) continue;
        const std::string at_T = " at T = " + std::to_string(T);
        const lab::SeedStats& r_window = ratio[{Task::recall, T, lab::ModelKind::window}];
        checks.expect(r_window.count([](double v) { return v == 0; }) == r_window.size(),
                      "no gradient reaches position 0 through a window of " + std::to_string(w) + at_T + ", in every seed");
        const lab::SeedStats& window_recall = metric[{Task::recall, T, lab::ModelKind::window}];
        checks.expect(window_recall.count([](double v) { return v < 0.3; }) == window_recall.size(),
                      "a window that cannot see position 0 cannot recall it" + at_T + " (accuracy " + window_recall.range() + ")");
        const lab::SeedStats& r_linear = ratio[{Task::recall, T, lab::ModelKind::linear}];
        const lab::SeedStats& r_global = ratio[{Task::recall, T, lab::ModelKind::window_global}];
        checks.expect(r_linear.count([](double v) { return v > 0; }) == r_linear.size() &&
                          r_global.count([](double v) { return v > 0; }) == r_global.size(),
                      "the gradient reaches position 0 through linear attention and through a global token" + at_T + ", in every seed");
      }
      for (const auto& [key, m] : metric)
        checks.expect(std::isfinite(m.median()), std::string("a finite held-out metric for ") + accuracy_name(key.kind) + " on " +
                                                     long_range::task_name(key.task) + " at T = " + std::to_string(key.T));
    }

    {
      std::ofstream report(args.path("report.md"), std::ios::app);
      report << "\n## Checks\n\n" << checks.markdown() << "\n## Timing checks\n\n" << timing_checks.markdown();
    }
    // The timing checks go to report.md and the terminal, not to the chapter: on a busy machine
    // one can miss its margin, and the chapter quotes the committed --long run's instead.
    chapter.text("checks", checks.markdown());
    // The --long run and the accuracy runs at longer T take too long for CI: their reports are
    // committed in long/ and longer/T<T>/, and the default run quotes their sections verbatim, so
    // that the chapter and those files cannot disagree.
    if (!long_cost && !args.quick) {
      const std::filesystem::path committed = lab::lesson_source_dir(args) / "long" / "report.md";
      if (std::filesystem::exists(committed))
        for (const auto& [heading, body] : lab::markdown_sections(committed)) {
          if (heading.rfind("One training step", 0) == 0) chapter.text("long_cost", body, lab::Timing::yes);
          if (heading.rfind("Fitted exponents", 0) == 0) chapter.text("long_fits", body, lab::Timing::yes);
          if (heading.rfind("The attention alone", 0) == 0) chapter.text("long_attention_alone", body, lab::Timing::yes);
          if (heading.rfind("Checks", 0) == 0) chapter.text("long_checks", body);
          if (heading.rfind("Timing checks", 0) == 0) chapter.text("long_timing_checks", body, lab::Timing::yes);
        }
      for (const int T : {500, 1000}) {  // `--T 500` and `--T 1000 --jobs 2`: hours each
        const std::filesystem::path longer = lab::lesson_source_dir(args) / "longer" / ("T" + std::to_string(T)) / "report.md";
        if (!std::filesystem::exists(longer)) continue;
        const std::string prefix = "T" + std::to_string(T) + "_";
        for (const auto& [heading, body] : lab::markdown_sections(longer)) {
          if (heading.rfind("Held-out metric", 0) == 0) chapter.text(prefix + "accuracy", body);
          if (heading.rfind("CPU seconds per accuracy run", 0) == 0) chapter.text(prefix + "seconds", body, lab::Timing::yes);
          if (heading.rfind("Checks", 0) == 0) chapter.text(prefix + "checks", body);
        }
      }
    }
    const int failed = checks.report();
    timing_checks.report();
    return failed;
  });
}
