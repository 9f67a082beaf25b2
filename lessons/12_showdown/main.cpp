// Lesson 12, the showdown: a tanh RNN, an LSTM and a Transformer on two long-range tasks, at
// growing sequence length T, under one protocol. The recurrent networks must carry the signal
// through T steps of a recurrence; the Transformer reaches every position in one attention step.
//
//   ./lab run            (the default: both tasks at T = 10 and 100, a few minutes)
//   ./lab run 12 --full  (1,500 steps at T = 10, 50, 100, 200)
//
// Protocol (the same for every model): hidden size / d_model 64, batch 64, Adam lr 1e-3,
// gradient-norm clipping at 1.0, a fresh batch every step, a fixed held-out set of 1,000
// sequences evaluated every `eval_every` steps, the same seeds and step budget.
#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "common/labkit.hpp"
#include "nn/checkpoint.hpp"
#include "nn/optim.hpp"

using ag::Tensor;
namespace fs = std::filesystem;

namespace {

enum class Task { adding, recall };
const char* task_slug(Task t) { return t == Task::adding ? "adding" : "recall"; }
const char* task_title(Task t) { return t == Task::adding ? "adding problem" : "first-token recall"; }
const char* metric_name(Task t) { return t == Task::adding ? "eval MSE" : "eval accuracy"; }

struct Config {
  std::int64_t steps = 600, eval_every = 100, eval_size = 1000;
  std::size_t hidden = 64, batch = 64, transformer_layers = 1;
  std::uint64_t seed = 0;
};

// One batch of a task, as the models see it: inputs [B, T, I] and what the loss needs.
struct Batch {
  Tensor x;             // adding: [B, T, 2] values and markers; recall: [B, T, 8] one-hot tokens
  Tensor y;             // adding: [B, 1] targets
  ag::Indices labels;   // recall: [B] first tokens
};

class Data {
 public:
  Data(Task task, int T, const Config& c)
      : task_(task),
        adding_({.T = T, .batch_size = int(c.batch), .seed = c.seed, .eval_size = int(c.eval_size)}),
        recall_({.T = T, .batch_size = int(c.batch), .seed = c.seed, .eval_size = int(c.eval_size)}) {}
  std::size_t input_dim() const { return task_ == Task::adding ? 2 : 8; }
  std::size_t output_dim() const { return task_ == Task::adding ? 1 : 8; }
  Batch next() {
    if (task_ == Task::adding) {
      auto b = adding_.next_batch();
      return {b.inputs, b.targets, {}};
    }
    auto b = recall_.next_batch();
    return {b.one_hot, {}, b.targets};
  }
  // Rows [lo, hi) of the fixed evaluation set.
  Batch eval_rows(std::size_t lo, std::size_t hi) const {
    if (task_ == Task::adding) {
      const auto& e = adding_.eval_set();
      return {ag::slice(e.inputs, 0, std::int64_t(lo), std::int64_t(hi)), ag::slice(e.targets, 0, std::int64_t(lo), std::int64_t(hi)), {}};
    }
    const auto& e = recall_.eval_set();
    std::vector<std::int64_t> t(e.targets.values.begin() + std::ptrdiff_t(lo), e.targets.values.begin() + std::ptrdiff_t(hi));
    return {ag::slice(e.one_hot, 0, std::int64_t(lo), std::int64_t(hi)), {}, ag::Indices(t)};
  }
  std::size_t eval_size() const { return task_ == Task::adding ? adding_.eval_set().size() : recall_.eval_set().size(); }

 private:
  Task task_;
  lab::AddingTask adding_;
  lab::RecallTask recall_;
};

Tensor loss_of(Task task, const Tensor& out, const Batch& b) {
  return task == Task::adding ? ag::mse_loss(out, b.y.to(out.dtype())) : ag::cross_entropy(out, b.labels);
}

// MSE (adding) or accuracy (recall) on the whole held-out set, in chunks (attention at T = 200
// over 1,000 sequences at once would need [1000, 4, 200, 200] floats).
double evaluate(lab::SequenceModel& model, Task task, const Data& data) {
  ag::NoGrad no_grad;
  model.eval();
  double total = 0;
  const std::size_t n = data.eval_size(), chunk = 100;
  for (std::size_t lo = 0; lo < n; lo += chunk) {
    const std::size_t hi = std::min(n, lo + chunk);
    const Batch b = data.eval_rows(lo, hi);
    const Tensor out = model(b.x);
    if (task == Task::adding) {
      total += ag::mse_loss(out, b.y, ag::Reduction::sum).item();
      continue;
    }
    total += double(lab::count_correct(out, b.labels));
  }
  model.train();
  return total / double(n);
}

// ||dL/dx_1|| / ||dL/dx_T||: how much of the loss's gradient reaches the first input compared
// with the last. In float64: for a tanh RNN at T = 100 it is ~1e-21, below float32's range.
double first_position_gradient_ratio(lab::SequenceModel& model, Task task, const Data& data) {
  model.to(ag::f64);
  Batch b = data.eval_rows(0, 64);
  Tensor x = b.x.to(ag::f64).detach().requires_grad_();
  loss_of(task, model(x), b).backward();
  const auto g = x.grad().to_vector();
  const std::size_t B = x.shape()[0], T = x.shape()[1], I = x.shape()[2];
  double first = 0, last = 0;
  for (std::size_t i = 0; i < B; ++i)
    for (std::size_t k = 0; k < I; ++k) {
      first += std::pow(g[(i * T + 0) * I + k], 2);
      last += std::pow(g[(i * T + T - 1) * I + k], 2);
    }
  model.zero_grad();
  model.to(ag::f32);
  return last > 0 ? std::sqrt(first / last) : 0.0;
}

struct Result {
  Task task;
  lab::ModelKind kind;
  int T;
  double final_metric = 0, best_metric = 0, grad_ratio = 0, seconds = 0;
  fs::path curve;
};

Result train_one(Task task, lab::ModelKind kind, int T, const Config& c, const lab::LessonArgs& args) {
  Data data(task, T, c);
  ag::Generator init(c.seed * 1000 + 7);  // the same initialisation stream for every model
  lab::SequenceModel model({.kind = kind, .input_dim = data.input_dim(), .hidden = c.hidden, .output_dim = data.output_dim(),
                            .layers = kind == lab::ModelKind::transformer ? c.transformer_layers : 1,
                            .max_len = std::size_t(std::max(T, 16))},
                           init);
  nn::Adam opt(model.parameters(), {.lr = 1e-3});
  Result r{task, kind, T, 0, 0, 0, 0, {}};
  r.curve = args.path(std::string("curve_") + task_slug(task) + "_T" + std::to_string(T) + "_" + lab::model_slug(kind) + ".csv");
  lab::CurveLog log(r.curve, {"metric", "train_loss"});
  const bool higher_is_better = task == Task::recall;
  r.best_metric = higher_is_better ? 0.0 : 1e9;
  auto record = [&](std::int64_t step, double train_loss) {
    const double m = evaluate(model, task, data);
    r.final_metric = m;
    r.best_metric = higher_is_better ? std::max(r.best_metric, m) : std::min(r.best_metric, m);
    log.log(double(step), {m, train_loss});
    return m;
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::ostringstream label;
  label << task_slug(task) << " T=" << T << " " << lab::model_name(kind);
  lab::Progress bar(c.steps, label.str());
  double smoothed;  // the training loss, smoothed; at step 0, the loss on a held-out batch
  {
    ag::NoGrad no_grad;
    const Batch b = data.eval_rows(0, std::min<std::size_t>(64, data.eval_size()));
    smoothed = loss_of(task, model(b.x), b).item();
  }
  record(0, smoothed);
  for (std::int64_t step = 1; step <= c.steps; ++step) {
    const Batch b = data.next();
    const Tensor loss = loss_of(task, model(b.x), b);
    model.zero_grad();
    loss.backward();
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    const double l = loss.item();
    smoothed = 0.95 * smoothed + 0.05 * l;
    if (step % c.eval_every == 0 || step == c.steps) {
      const double m = record(step, smoothed);
      bar.update(step, {{"loss", smoothed}, {higher_is_better ? "acc" : "mse", m}});
    } else {
      bar.update(step, {{"loss", smoothed}});
    }
  }
  bar.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nn::save(model, args.path(std::string("model_") + task_slug(task) + "_" + lab::model_slug(kind) + "_T" + std::to_string(T) + ".safetensors"));
  r.grad_ratio = first_position_gradient_ratio(model, task, data);
  return r;
}

std::vector<int> parse_ints(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      std::size_t used = 0;
      const int v = std::stoi(item, &used);
      if (used != item.size() || v < 2 || v > 5000) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      ag::fail("--T: '", item, "' is not a sequence length in [2, 5000] (give a list like 10,50,100)");
    }
  }
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("12_showdown", "The showdown: tanh RNN vs LSTM vs Transformer on the adding problem and first-token recall");
  bool full = false;
  std::string lengths, tasks_arg = "recall,adding", models_arg = "rnn,lstm,transformer";
  Config c;
  cli.app().add_flag("--full", full, "the whole sweep: 1,500 steps at T = 10, 50, 100, 200");
  cli.app().add_option("--T", lengths, "sequence lengths, comma-separated (default 10,100; --full 10,50,100,200)");
  cli.app().add_option("--tasks", tasks_arg, "tasks: recall, adding")->capture_default_str();
  cli.app().add_option("--models", models_arg, "models: rnn, lstm, gru, transformer")->capture_default_str();
  cli.app().add_option("--eval-every", c.eval_every, "evaluate on the held-out set every N steps (default 50; --full 100)")->check(CLI::Range(1, 1000000));
  cli.app().add_option("--layers", c.transformer_layers, "Transformer encoder layers (pre-LN, 4 heads, FFN 128)")
      ->check(CLI::Range(1, 12))->capture_default_str();
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    c.seed = args.seed;
    c.steps = args.steps_or(full ? 1500 : 400, 60);
    if (cli.app().get_option("--eval-every")->count() == 0) c.eval_every = args.quick ? 20 : full ? 100 : 50;
    if (args.quick) c.eval_size = 200;
    const std::vector<int> Ts = !lengths.empty() ? parse_ints(lengths) : args.quick ? std::vector<int>{5, 20}
                                                                     : full       ? std::vector<int>{10, 50, 100, 200}
                                                                                  : std::vector<int>{10, 100};
    std::vector<Task> tasks;
    for (const auto& t : split(tasks_arg)) {
      if (t == "adding") tasks.push_back(Task::adding);
      else if (t == "recall") tasks.push_back(Task::recall);
      else ag::fail("--tasks: unknown task '", t, "' (expected recall or adding)");
    }
    std::vector<lab::ModelKind> kinds;
    for (const auto& m : split(models_arg)) kinds.push_back(lab::parse_model(m));

    std::cout << "SIMD: " << ag::simd_target() << ". Protocol: hidden 64, batch 64, Adam 1e-3, clip 1.0, " << c.steps
              << " steps, held-out set of " << c.eval_size << " evaluated every " << c.eval_every << " steps.\n\n";
    std::vector<Result> results;
    for (Task task : tasks)
      for (int T : Ts)
        for (auto kind : kinds) results.push_back(train_one(task, kind, T, c, args));

    // ---- tables, plots, report ----------------------------------------------------------------
    const fs::path report = args.path("report.md");
    {
      std::ofstream md(report);
      md << "# The showdown: tanh RNN vs LSTM vs Transformer\n\n" << c.steps << " steps per run, batch " << c.batch
         << ", hidden " << c.hidden << ", Adam 1e-3, clipping 1.0, seed " << c.seed << ". Metric on " << c.eval_size
         << " held-out sequences. Baselines: adding MSE 0.167 (always predict 1.0), recall accuracy 0.125 (chance).\n\n";
    }
    lab::Table table("Final held-out metric (adding: MSE, lower is better; recall: accuracy, higher is better)",
                     {"task", "T", "model", "final", "best", "|dL/dx_1| / |dL/dx_T|", "seconds"});
    for (const auto& r : results) {
      std::ostringstream ratio;
      ratio.precision(2);
      ratio << std::scientific << r.grad_ratio;
      table.row({task_slug(r.task), r.T, lab::model_name(r.kind), r.final_metric, r.best_metric, ratio.str(), r.seconds});
    }
    table.print();
    table.save_markdown(report, true);

    lab::Checks checks;
    for (Task task : tasks) {
      // metric vs T, one column per model
      std::vector<std::string> cols;
      for (auto k : kinds) cols.push_back(lab::model_slug(k));
      const fs::path vs_t = args.path(std::string("final_") + task_slug(task) + ".csv");
      {
        lab::CurveLog log(vs_t, cols, "T");
        for (int T : Ts) {
          std::vector<double> row;
          for (auto k : kinds)
            for (const auto& r : results)
              if (r.task == task && r.T == T && r.kind == k) row.push_back(r.final_metric);
          log.log(T, row);
        }
      }
      lab::PlotOptions po{.title = std::string(task_title(task)) + ": held-out metric after " + std::to_string(c.steps) + " steps",
                          .xlabel = "sequence length T", .ylabel = metric_name(task), .logx = true};
      if (task == Task::adding) po.hlines = {{lab::AddingTask::kBaselineMSE, "predict 1.0 (0.167)"}}, po.logy = true;  // MSE spans decades
      else po.hlines = {{0.125, "chance (0.125)"}}, po.ymin = 0, po.ymax = 1.35;  // headroom for the legend
      std::vector<lab::Series> ss;
      for (auto k : kinds) ss.push_back({vs_t, lab::model_slug(k), lab::model_name(k), "T", "linespoints"});
      lab::plot(args.path(std::string("final_") + task_slug(task) + ".png"), ss, po);
      std::ofstream(report, std::ios::app) << "\n![" << task_title(task) << "](final_" << task_slug(task) << ".png)\n";
      // training curves at the longest T, one line per model
      const int T = Ts.back();
      std::vector<lab::Series> curves;
      for (const auto& r : results)
        if (r.task == task && r.T == T) curves.push_back({r.curve, "metric", lab::model_name(r.kind), "step", "linespoints"});
      lab::PlotOptions pc = po;
      pc.title = std::string(task_title(task)) + ", T = " + std::to_string(T) + ": held-out metric while training";
      pc.xlabel = "step";
      pc.logx = false;
      const std::string curve_png = std::string("curves_") + task_slug(task) + "_T" + std::to_string(T) + ".png";
      lab::plot(args.path(curve_png), curves, pc);
      std::ofstream(report, std::ios::app) << "\n![" << pc.title << "](" << curve_png << ")\n";
      std::cout << "\n";
      lab::plot_terminal(curves, pc);

      // The lesson's claim, at the longest T: attention reaches where the tanh RNN cannot.
      const Result* rnn = nullptr;
      const Result* tf = nullptr;
      for (const auto& r : results)
        if (r.task == task && r.T == T) {
          if (r.kind == lab::ModelKind::tanh_rnn) rnn = &r;
          if (r.kind == lab::ModelKind::transformer) tf = &r;
        }
      if (rnn && tf && !args.quick) {
        if (task == Task::recall)
          checks.expect(tf->final_metric > rnn->final_metric + 0.3,
                        "recall at T = " + std::to_string(T) + ": the Transformer beats the tanh RNN by > 0.3 accuracy");
        else
          checks.expect(tf->final_metric < 0.5 * rnn->final_metric,
                        "adding at T = " + std::to_string(T) + ": the Transformer's MSE is under half the tanh RNN's");
      }
      if (rnn && T >= 50)
        checks.expect(rnn->grad_ratio < 1e-3, std::string(task_slug(task)) + " at T = " + std::to_string(T) +
                                                  ": under 1e-3 of the gradient reaching x_T reaches x_1 in the tanh RNN");
    }
    bool finite = true;
    for (const auto& r : results) finite = finite && std::isfinite(r.final_metric);
    checks.expect(finite, "every run ends with a finite held-out metric");
    std::cout << "\nWrote " << args.out.string() << "/: report.md, final_*.png, curves_*.png, curve_*.csv, model_*.safetensors\n";
    return checks.report();
  });
}
