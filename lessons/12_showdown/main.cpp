// Lesson 12, the showdown: a tanh RNN, an LSTM and a Transformer on two long-range tasks, at
// growing sequence length T, under one protocol and over several seeds. The recurrent networks
// must carry the signal through T steps of a recurrence; the Transformer reaches every position in
// one attention step.
//
//   ./lab run            (the default: both tasks at T = 10 and 100, 5 seeds, a few minutes)
//   ./lab run 12 --full  (1,500 steps at T = 10, 50, 100, 200, 5 seeds: hours)
//
// Protocol (the same for every model): hidden size / d_model 64, batch 64, Adam lr 1e-3,
// gradient-norm clipping at 1.0, a fresh batch every step, a fixed held-out set of 1,000
// sequences evaluated every `eval_every` steps, the same seeds and step budget.
//
// The default run also measures the chapter's exercises: the trained recurrent networks on
// sequences three times longer (float32 against float64), the plateaus where a run stops between
// chance and solved, and the Transformer without positions (--no-positions).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "common/labkit.hpp"
#include "common/long_range.hpp"
#include "common/resume.hpp"
#include "nn/checkpoint.hpp"
#include "nn/optim.hpp"

using ag::Tensor;
namespace fs = std::filesystem;

namespace {

using long_range::Task;
const char* task_title(Task t) { return t == Task::adding ? "adding problem" : "first-token recall"; }
const char* metric_name(Task t) { return t == Task::adding ? "held-out MSE" : "held-out accuracy"; }

// What the tables count, on the held-out set. Recall: solved = accuracy >= 0.95; at chance =
// accuracy <= 0.165 (chance 0.125 plus four standard errors over 1,000 sequences). Adding:
// solved = MSE <= 0.01 (a sixteenth of the baseline); at the baseline = MSE >= 0.15 (always
// answering 1.0 scores 1/6 = 0.167).
bool solved(Task t, double m) { return t == Task::recall ? m >= 0.95 : m <= 0.01; }
bool at_chance(Task t, double m) { return t == Task::recall ? m <= 0.165 : m >= 0.15; }

constexpr double kFloat32Denormal = 1.4e-45;  // the smallest positive float32 (2^-149)
constexpr int kFarFactor = 3;                 // the recurrent networks are also measured at 3 T
constexpr double kPlateauTop = 0.5;           // exercise 2: recall runs that end between chance and this

struct Config {
  std::int64_t steps = 250, eval_every = 50, eval_size = 1000;
  std::size_t hidden = 64, batch = 64, transformer_layers = 1;
  std::size_t window = 32;  // --models window, window_global: keys within this distance (lesson 18)
  std::uint64_t seed = 0;
  bool positions = true;  // false: the Transformer without its positional encoding (exercise 3)
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
  const lab::AddingTask& adding() const { return adding_; }
  const lab::RecallTask& recall() const { return recall_; }
  // The training batches' generator: its state is the stream's position (--save-every, --resume).
  ag::Generator& stream() { return task_ == Task::adding ? adding_.train_stream() : recall_.train_stream(); }

  // Recall: the best accuracy a reader blind to order can reach on the held-out set. It knows
  // which symbols occur and how often, and which one is last (the position it answers from), so
  // its best guess for x_1 is the most frequent symbol among the other T - 1 positions: right
  // with probability (that symbol's count) / (T - 1).
  double order_blind_best() const {
    const auto& e = recall_.eval_set();
    const std::size_t B = e.size(), T = e.tokens.values.size() / B;
    double total = 0;
    for (std::size_t i = 0; i < B; ++i) {
      std::vector<int> count(std::size_t(recall_.options().vocab), 0);
      for (std::size_t t = 0; t < T; ++t) ++count[std::size_t(e.tokens.values[i * T + t])];
      --count[std::size_t(e.tokens.values[i * T + T - 1])];
      total += double(*std::max_element(count.begin(), count.end())) / double(T - 1);
    }
    return total / double(B);
  }

 private:
  Task task_;
  lab::AddingTask adding_;
  lab::RecallTask recall_;
};

// The model's output [B, output_dim]. Without positions (exercise 3) the Transformer reads
// W_in x without the positional encoding: attention alone cannot tell one position from another.
Tensor run(lab::SequenceModel& model, const Tensor& x, const Config& c) {
  if (c.positions || !model.encoder) return model(x);
  const Tensor z = model.encoder->forward((*model.input_proj)(x));  // [B, T, D]
  return (*model.readout)(ag::select(z, 1, -1));
}

Tensor loss_of(Task task, const Tensor& out, const Batch& b) {
  return task == Task::adding ? ag::mse_loss(out, b.y.to(out.dtype())) : ag::cross_entropy(out, b.labels);
}

// MSE (adding) or accuracy (recall) on the whole held-out set, as lessons 05 and 06 measure it.
double evaluate(lab::SequenceModel& model, Task task, const Data& data, const Config& c) {
  model.eval();
  const double m = long_range::evaluate([&](const Tensor& x) { return run(model, x, c); }, task, data.adding(), data.recall());
  model.train();
  return m;
}

// ||dL/dx_1|| / ||dL/dx_T|| over 64 held-out sequences: how much of the loss's gradient reaches
// the first input compared with the last, with the model and the inputs in `dtype`.
double first_position_gradient_ratio(lab::SequenceModel& model, Task task, const Data& data, const Config& c, ag::Dtype dtype) {
  const ag::Dtype was = model.dtype();
  model.to(dtype);
  Batch b = data.eval_rows(0, 64);
  Tensor x = b.x.to(dtype).detach().requires_grad_();
  model.zero_grad();
  loss_of(task, run(model, x, c), b).backward();
  const std::vector<double> norm = long_range::norm_per_position(x.grad());
  model.zero_grad();
  model.to(was);
  return norm.back() > 0 ? long_range::first_to_last(norm) : 0.0;
}

// Recall: the first tokens grouped by the answer the model gives most often for them. A model
// that tells k groups apart and nothing within a group is right for one symbol per group: k/8.
std::vector<std::vector<int>> answer_groups(lab::SequenceModel& model, const Data& data, const Config& c) {
  ag::NoGrad no_grad;
  model.eval();
  std::vector<std::vector<int>> votes(8, std::vector<int>(8, 0));  // [first token][answer]
  for (std::size_t lo = 0; lo < data.eval_size(); lo += 100) {
    const Batch b = data.eval_rows(lo, std::min(data.eval_size(), lo + 100));
    const auto v = run(model, b.x, c).to_vector();
    for (std::size_t i = 0; i < b.labels.size(); ++i) {
      const auto row = v.begin() + std::ptrdiff_t(i * 8);
      ++votes[std::size_t(b.labels.values[i])][std::size_t(std::max_element(row, row + 8) - row)];
    }
  }
  model.train();
  std::vector<std::vector<int>> groups;
  std::vector<int> answer_of_group;
  for (int t = 0; t < 8; ++t) {
    const int a = int(std::max_element(votes[std::size_t(t)].begin(), votes[std::size_t(t)].end()) - votes[std::size_t(t)].begin());
    const auto it = std::find(answer_of_group.begin(), answer_of_group.end(), a);
    if (it == answer_of_group.end()) {
      answer_of_group.push_back(a);
      groups.push_back({t});
    } else {
      groups[std::size_t(it - answer_of_group.begin())].push_back(t);
    }
  }
  return groups;
}

struct Result {
  Task task;
  lab::ModelKind kind;
  int T;
  std::uint64_t seed;
  bool positions = true;
  double metric = 0;                // held-out metric after the last step
  std::int64_t solved_at = -1;      // first evaluated step at which solved(); -1 = never
  double ratio = 0, ratio_f32 = 0;  // |dL/dx_1| / |dL/dx_T| after training, in float64 and float32
  double far_ratio = -1, far_ratio_f32 = -1;  // recurrent: the same on sequences of kFarFactor * T
  double order_blind = -1;          // recall: order_blind_best() of the held-out set
  std::vector<std::vector<int>> groups{};  // recall, ended between chance and solved: answer_groups()
  double cpu_seconds = 0;
  fs::path curve{};                 // held-out metric while training (CSV)
};

double cpu_now() { return double(std::clock()) / CLOCKS_PER_SEC; }

Result train_one(Task task, lab::ModelKind kind, int T, const Config& c, bool first_seed, const lab::LessonArgs& args,
                 const lab::ResumeOptions& resume) {
  const double cpu0 = cpu_now();
  Data data(task, T, c);
  ag::Generator init(c.seed * 1000 + 7);  // the same initialisation stream for every model
  lab::SequenceModel model({.kind = kind, .input_dim = data.input_dim(), .hidden = c.hidden, .output_dim = data.output_dim(),
                            .layers = lab::is_transformer(kind) ? c.transformer_layers : 1,
                            .max_len = std::size_t(std::max(T, 16)), .window = c.window},
                           init);
  nn::Adam opt(model.parameters(), {.lr = 1e-3});
  Result r{task, kind, T, c.seed, c.positions};
  const std::string run_name = std::string(long_range::task_name(task)) + "_T" + std::to_string(T) + "_" + lab::model_slug(kind) +
                               (c.positions ? "" : "_nopos");
  r.curve = args.path("curve_" + run_name + "_seed" + std::to_string(c.seed) + ".csv");
  lab::CurveLog log(r.curve, {"metric", "train_loss"});
  std::vector<double> curve;  // step, metric, train_loss per evaluation: what a saved state keeps of the log
  auto record = [&](std::int64_t step, double train_loss) {
    const double m = evaluate(model, task, data, c);
    r.metric = m;
    if (r.solved_at < 0 && solved(task, m)) r.solved_at = step;
    log.log(double(step), {m, train_loss});
    curve.insert(curve.end(), {double(step), m, train_loss});
    return m;
  };
  std::ostringstream label;
  label << long_range::task_name(task) << " T=" << T << " " << lab::model_name(kind) << (c.positions ? "" : " (no positions)") << " seed " << c.seed;
  // In a log (not a terminal): a few lines for the first seed's runs, one for the others.
  lab::Progress bar(c.steps, label.str(), {.plain_percent = first_seed ? 25 : 100});
  double smoothed;  // the training loss, smoothed; at step 0, the loss on a held-out batch
  // --save-every / --resume (for --full): the state holds the batch stream and the curve so far.
  lab::ResumableRun saver(args, resume, run_name + "_seed" + std::to_string(c.seed));
  nn::TrainingState state{.step = 0,
                          .generators = {{"batches", &data.stream()}},
                          .config = {{"steps", std::to_string(c.steps)}, {"eval_every", std::to_string(c.eval_every)},
                                     {"eval_size", std::to_string(c.eval_size)}, {"hidden", std::to_string(c.hidden)},
                                     {"batch", std::to_string(c.batch)}, {"layers", std::to_string(c.transformer_layers)}},
                          .extra = {}};
  if (saver.restore(model, opt, state)) {
    curve = lab::decode_doubles(state.extra.at("curve"));
    for (std::size_t i = 0; i + 2 < curve.size(); i += 3) log.log(curve[i], {curve[i + 1], curve[i + 2]});
    r.metric = curve[curve.size() - 2];
    r.solved_at = std::stoll(state.extra.at("solved_at"));
    smoothed = lab::decode_doubles(state.extra.at("smoothed")).at(0);
  } else {
    {
      ag::NoGrad no_grad;
      const Batch b = data.eval_rows(0, std::min<std::size_t>(64, data.eval_size()));
      smoothed = loss_of(task, run(model, b.x, c), b).item();
    }
    record(0, smoothed);
  }
  const bool higher_is_better = task == Task::recall;
  for (std::int64_t step = state.step + 1; step <= c.steps; ++step) {
    const Batch b = data.next();
    const Tensor loss = loss_of(task, run(model, b.x, c), b);
    model.zero_grad();
    loss.backward();
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    smoothed = 0.95 * smoothed + 0.05 * loss.item();
    if (step % c.eval_every == 0 || step == c.steps) {
      const double m = record(step, smoothed);
      bar.update(step, {{"loss", smoothed}, {higher_is_better ? "acc" : "mse", m}});
    } else {
      bar.update(step, {{"loss", smoothed}});
    }
    if (saver.due(step, c.steps)) {
      state.step = step;
      state.extra = {{"curve", lab::encode_doubles(curve)}, {"solved_at", std::to_string(r.solved_at)},
                     {"smoothed", lab::encode_doubles({smoothed})}};
      saver.save(model, opt, state);
    }
  }
  bar.finish();
  if (first_seed) nn::save(model, args.path("model_" + run_name + ".safetensors"));
  r.ratio_f32 = first_position_gradient_ratio(model, task, data, c, ag::f32);
  r.ratio = first_position_gradient_ratio(model, task, data, c, ag::f64);
  if (!lab::is_transformer(kind)) {  // a recurrent network reads sequences of any length
    const Data far(task, kFarFactor * T, c);
    r.far_ratio_f32 = first_position_gradient_ratio(model, task, far, c, ag::f32);
    r.far_ratio = first_position_gradient_ratio(model, task, far, c, ag::f64);
  }
  if (task == Task::recall) {
    r.order_blind = data.order_blind_best();
    if (!solved(task, r.metric) && !at_chance(task, r.metric)) r.groups = answer_groups(model, data, c);
  }
  r.cpu_seconds = cpu_now() - cpu0;
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

std::string num(double v, int digits = 3) { return lab::format_number(v, digits); }

// A gradient ratio: 2 significant digits, "2.7" or "8.2e-23"; 0 stays "0".
std::string ratio_str(double v) {
  if (v == 0 || (v >= 1e-2 && v < 1e3)) return lab::format_number(v, 2);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", v);
  return buf;
}

// A held-out metric: accuracy with 3 decimals; MSE with 3 significant digits ("0.167", "0.0113"),
// below 1e-3 with 2 ("4.1e-04").
std::string metric_str(Task t, double v) {
  if (t == Task::recall || v >= 1e-3) return num(v, 3);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", v);
  return buf;
}

std::string of_n(std::size_t k, std::size_t n) { return std::to_string(k) + " of " + std::to_string(n); }

// One statistic of a set of runs, over the seeds.
template <class F>
lab::SeedStats stats_of(const std::vector<const Result*>& runs, F f) {
  lab::SeedStats s;
  for (const Result* r : runs) s.add(f(*r));
  return s;
}

// The runs of one task, T and model: one Result per seed.
struct Group {
  Task task;
  int T;
  lab::ModelKind kind;
  std::vector<const Result*> runs;

  lab::SeedStats metric() const { return stats_of(runs, [](const Result& r) { return r.metric; }); }
  lab::SeedStats ratio() const { return stats_of(runs, [](const Result& r) { return r.ratio; }); }
  lab::SeedStats cpu() const { return stats_of(runs, [](const Result& r) { return r.cpu_seconds; }); }
  std::size_t n() const { return runs.size(); }
  std::size_t n_solved() const { return metric().count([&](double m) { return solved(task, m); }); }
  std::size_t n_chance() const { return metric().count([&](double m) { return at_chance(task, m); }); }
  bool all_solved() const { return n_solved() == n(); }
  bool all_chance() const { return n_chance() == n(); }
  // The step at which each run first counted as solved (the runs that got there).
  lab::SeedStats solved_at() const {
    lab::SeedStats s;
    for (const Result* r : runs)
      if (r->solved_at >= 0) s.add(double(r->solved_at));
    return s;
  }
  // What the seeds did, in words: "solves it in every seed (median 1.00)", "solves it in 3 of 5
  // seeds and ends between chance and solved in 2 (0.255, 0.236)".
  std::string verdict() const {
    const std::string chance = task == Task::recall ? "stays at chance" : "stays at the baseline";
    const std::string between = task == Task::recall ? "ends between chance and solved" : "ends between the baseline and solved";
    const auto m = metric();
    const std::string med = m.min() == m.max() ? " (all at " + metric_str(task, m.min()) + ")"
                                               : " (median " + metric_str(task, m.median()) + ", " + metric_str(task, m.min()) +
                                                     " to " + metric_str(task, m.max()) + ")";
    if (all_solved()) return "solves it in every seed" + med;
    if (all_chance()) return chance + " in every seed" + med;
    std::vector<std::string> parts;
    if (n_solved() > 0) parts.push_back("solves it in " + of_n(n_solved(), n()) + " seeds");
    if (n_chance() > 0) parts.push_back(chance + " in " + std::to_string(n_chance()));
    std::string mid;
    for (const Result* r : runs)
      if (!solved(task, r->metric) && !at_chance(task, r->metric)) mid += (mid.empty() ? "" : ", ") + metric_str(task, r->metric);
    const std::size_t n_mid = n() - n_solved() - n_chance();
    if (n_mid == n()) return between + " in every seed" + med;
    if (n_mid > 0) parts.push_back(between + " in " + std::to_string(n_mid) + " (" + mid + ")");
    std::string s;
    for (std::size_t i = 0; i < parts.size(); ++i) s += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
    return s;
  }
};

std::string metric_cell(const Group& g) {
  const auto m = g.metric();
  return metric_str(g.task, m.median()) + " (" + metric_str(g.task, m.min()) + " to " + metric_str(g.task, m.max()) + ")";
}
std::string ratio_cell(const Group& g) {
  const auto r = g.ratio();
  return ratio_str(r.median()) + " (" + ratio_str(r.min()) + " to " + ratio_str(r.max()) + ")";
}

// The metric of every seed against T, for one model: one vertical segment per T from the lowest
// to the highest seed, a marker per seed. `shift` moves the model's points sideways (a factor on
// T, the axis being logarithmic) so that models with equal values do not hide each other.
// Blank lines end a segment (gnuplot draws no line across them).
fs::path write_seed_points(const fs::path& csv, const std::vector<Group>& groups, Task task, lab::ModelKind kind, double shift) {
  std::ofstream f(csv);
  f << "x,T,metric\n";
  for (const Group& g : groups) {
    if (g.task != task || g.kind != kind) continue;
    std::vector<double> v = g.metric().values;
    std::sort(v.begin(), v.end());
    for (double m : v) f << lab::format_number(g.T * shift, 6) << "," << g.T << "," << lab::format_number(m, 9) << "\n";
    f << "\n";
  }
  return csv;
}

// The metric column of a curve CSV (rows after step 0).
std::vector<double> curve_values(const fs::path& csv) {
  std::vector<double> v;
  std::ifstream f(csv);
  std::string line;
  std::getline(f, line);  // header
  std::getline(f, line);  // step 0
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string step, metric;
    std::getline(ss, step, ',');
    std::getline(ss, metric, ',');
    v.push_back(std::stod(metric));
  }
  return v;
}

// Two curves that lie on top of each other for at least 80% of their points (within 0.05 in
// accuracy, within 10% in MSE): the one drawn first is hidden under the other.
bool overlap(const fs::path& a, const fs::path& b, Task task) {
  const auto x = curve_values(a), y = curve_values(b);
  const std::size_t n = std::min(x.size(), y.size());
  std::size_t close = 0;
  for (std::size_t i = 0; i < n; ++i)
    close += task == Task::recall ? std::fabs(x[i] - y[i]) < 0.05 : std::fabs(std::log(x[i] / y[i])) < 0.1;
  return n > 0 && close * 5 >= n * 4;
}

// A curve that lies on a horizontal line (as overlap(), against a constant).
bool on_line(const fs::path& a, double y, Task task) {
  const auto x = curve_values(a);
  std::size_t close = 0;
  for (double v : x) close += task == Task::recall ? std::fabs(v - y) < 0.05 : std::fabs(std::log(v / y)) < 0.1;
  return !x.empty() && close * 5 >= x.size() * 4;
}

std::string join_groups(const std::vector<std::vector<int>>& groups) {
  std::string s;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    s += i == 0 ? "" : i + 1 == groups.size() ? " and " : ", ";
    s += "{";
    for (std::size_t j = 0; j < groups[i].size(); ++j) s += (j ? ", " : "") + std::to_string(groups[i][j]);
    s += "}";
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("12_showdown", "The showdown: tanh RNN vs LSTM vs Transformer on the adding problem and first-token recall");
  bool full = false, no_positions = false;
  std::string lengths, tasks_arg = "recall,adding", models_arg = "rnn,lstm,transformer";
  std::uint64_t n_seeds = 5;
  Config c;
  cli.steps_help("training steps per run, one run being one task, T, model and seed, one batch of 64 sequences per step (default 250; --full 1500; --quick 60)");
  cli.app().add_flag("--full", full, "the whole sweep: 1,500 steps at T = 10, 50, 100, 200");
  cli.app().add_option("--T", lengths, "sequence lengths, comma-separated (default 10,100; --full 10,50,100,200; --quick 5,20)");
  cli.app().add_option("--tasks", tasks_arg, "tasks: recall, adding");
  cli.app().add_option("--models", models_arg,
                       "models: rnn, lstm, gru, transformer; window, window_global, linear (lesson 18's efficient attention)");
  cli.app().add_option("--window", c.window, "window and window_global: each position sees the keys within this distance")
      ->check(CLI::Range(0, 5000))
      ->capture_default_str();
  cli.app().add_option("--seeds", n_seeds, "seeds per task, T and model: --seed, --seed + 1, ... (--quick: 2)")->check(CLI::Range(1, 100));
  cli.app().add_option("--eval-every", c.eval_every, "evaluate on the held-out set every N steps (--full: 100; --quick: 20)")->check(CLI::Range(1, 1000000));
  cli.app().add_option("--layers", c.transformer_layers, "Transformer encoder layers (pre-LN, 4 heads, FFN 128)")->check(CLI::Range(1, 12));
  cli.app().add_flag("--no-positions", no_positions, "train the Transformer without its positional encoding (exercise 3)");
  lab::ResumeOptions resume;
  lab::add_resume_options(cli, resume);
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const double cpu_start = cpu_now();
    const std::string default_tasks = "recall,adding", default_models = "rnn,lstm,transformer";
    c.steps = args.steps_or(full ? 1500 : 250, 60);
    if (cli.app().get_option("--eval-every")->count() == 0) c.eval_every = args.quick ? 20 : full ? 100 : 50;
    if (args.quick) c.eval_size = 200;
    if (args.quick && cli.app().get_option("--seeds")->count() == 0) n_seeds = 2;
    c.positions = !no_positions;
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
    // The run the chapter quotes (every claim in lessons/12_showdown/README.md is checked in it),
    // and --quick, which checks weaker forms of the same claims.
    // default_config: the chapter's claims that hold for any five seeds; chapter_run: seeds 0 to 4 as well.
    const bool default_config = !args.quick && !full && lengths.empty() && args.steps == 0 && tasks_arg == default_tasks &&
                                models_arg == default_models && n_seeds == 5 && c.transformer_layers == 1 && c.positions;
    const bool chapter_run = default_config && args.seed == 0;
    const bool quick_run = args.quick && lengths.empty() && args.steps == 0 && tasks_arg == default_tasks &&
                           models_arg == default_models && c.transformer_layers == 1 && c.positions;
    const bool exercises = default_config || quick_run;

    std::cout << "SIMD: " << ag::simd_target() << ". Protocol: hidden 64, batch 64, Adam 1e-3, clip 1.0, " << c.steps
              << " steps, held-out set of " << c.eval_size << " evaluated every " << c.eval_every << " steps; seeds "
              << args.seed << " to " << args.seed + n_seeds - 1 << (c.positions ? "" : "; the Transformer without positions")
              << ".\n\n";
    std::vector<Result> results;
    results.reserve(tasks.size() * Ts.size() * kinds.size() * n_seeds + 2 * n_seeds);
    for (Task task : tasks)
      for (int T : Ts)
        for (auto kind : kinds)
          for (std::uint64_t k = 0; k < n_seeds; ++k) {
            Config ck = c;
            ck.seed = args.seed + k;
            results.push_back(train_one(task, kind, T, ck, k == 0, args, resume));
          }
    // Exercise 3: the Transformer without positions, at the shortest T.
    std::vector<const Result*> nopos_recall, nopos_adding;
    if (exercises) {
      std::cout << "\nExercise 3: the Transformer without positions at T = " << Ts.front() << "\n";
      for (Task task : tasks)
        for (std::uint64_t k = 0; k < n_seeds; ++k) {
          Config ck = c;
          ck.seed = args.seed + k;
          ck.positions = false;
          results.push_back(train_one(task, lab::ModelKind::transformer, Ts.front(), ck, k == 0, args, resume));
        }
      for (const auto& r : results)
        if (!r.positions) (r.task == Task::recall ? nopos_recall : nopos_adding).push_back(&r);
    }
    std::vector<Group> groups;
    for (Task task : tasks)
      for (int T : Ts)
        for (auto kind : kinds) {
          Group g{task, T, kind, {}};
          for (const auto& r : results)
            if (r.task == task && r.T == T && r.kind == kind && r.positions == c.positions) g.runs.push_back(&r);
          groups.push_back(g);
        }
    auto group = [&](Task task, int T, lab::ModelKind kind) -> const Group* {
      for (const auto& g : groups)
        if (g.task == task && g.T == T && g.kind == kind) return &g;
      return nullptr;
    };
    const std::string seeds_str = std::to_string(n_seeds) + (n_seeds == 1 ? " seed" : " seeds");
    const int T_short = Ts.front(), T_long = Ts.back();

    // ---- tables -------------------------------------------------------------------------------
    lab::Chapter chapter(args);
    lab::Table summary("After " + std::to_string(c.steps) + " steps, over " + seeds_str + ": median (lowest to highest seed)",
                       {"task", "T", "model", "held-out metric", "solved", "at chance / baseline", "|dL/dx_1| / |dL/dx_T|"});
    lab::Table cpu("CPU seconds per run, median over " + seeds_str, {"task", "T", "model", "CPU seconds"});
    for (const auto& g : groups) {
      const std::string task = g.task == Task::recall ? "recall (accuracy)" : "adding (MSE)";
      const std::string model = std::string(lab::model_name(g.kind)) +
                                (lab::is_transformer(g.kind) && !c.positions ? " (no positions)" : "");
      summary.row({task, g.T, model, metric_cell(g), of_n(g.n_solved(), g.n()), of_n(g.n_chance(), g.n()), ratio_cell(g)});
      cpu.row({task, g.T, model, num(g.cpu().median(), 2)});
    }
    std::cout << "\n";
    summary.print();
    chapter.table("results", summary);

    const fs::path report = args.path("report.md");
    {
      std::ofstream md(report);
      md << "# The showdown: tanh RNN vs LSTM vs Transformer\n\n" << c.steps << " steps per run, batch " << c.batch
         << ", hidden " << c.hidden << ", Adam 1e-3, clipping 1.0, seeds " << args.seed << " to " << args.seed + n_seeds - 1
         << ". Metric on " << c.eval_size << " held-out sequences. Solved: recall accuracy >= 0.95, adding MSE <= 0.01. "
         << "At chance: recall accuracy <= 0.165 (chance 0.125); at the baseline: adding MSE >= 0.15 (always answering 1.0 "
         << "scores 0.167).\n\n";
    }
    summary.save_markdown(report, true);
    lab::Table per_run("Every run", {"task", "T", "model", "seed", "held-out metric", "solved at step", "|dL/dx_1| / |dL/dx_T|",
                                     "in float32", "at " + std::to_string(kFarFactor) + " T", "at " + std::to_string(kFarFactor) + " T in float32",
                                     "CPU seconds"});
    for (const auto& r : results)
      per_run.row({long_range::task_name(r.task), r.T, std::string(lab::model_name(r.kind)) + (r.positions ? "" : " (no positions)"),
                   (unsigned long long)r.seed, metric_str(r.task, r.metric), r.solved_at >= 0 ? std::to_string(r.solved_at) : std::string("-"),
                   ratio_str(r.ratio), ratio_str(r.ratio_f32), r.far_ratio >= 0 ? ratio_str(r.far_ratio) : std::string("-"),
                   r.far_ratio_f32 >= 0 ? ratio_str(r.far_ratio_f32) : std::string("-"), num(r.cpu_seconds, 2)});
    per_run.save_markdown(report, true);
    cpu.save_markdown(report, true);

    // ---- plots --------------------------------------------------------------------------------
    for (Task task : tasks) {
      lab::PlotOptions po{.xlabel = "sequence length T", .ylabel = metric_name(task), .logx = true};
      if (task == Task::adding) po.hlines = {{lab::AddingTask::kBaselineMSE, "always 1.0 (0.167)"}}, po.logy = true;  // MSE spans decades
      else po.hlines = {{0.125, "chance (0.125)"}}, po.ymin = 0, po.ymax = 1.05;
      // Metric vs T: one marker per seed, each model shifted a little in T so none hides another.
      po.title = std::string(task_title(task)) + " after " + std::to_string(c.steps) + " steps: one marker per seed (" + seeds_str +
                 "), models side by side at each T";
      po.key = "center";  // the middle of the plot: no model sits between the two ends of the scale
      po.xmin = T_short * 0.6, po.xmax = T_long * 1.6;
      std::vector<lab::Series> ss;
      for (std::size_t i = 0; i < kinds.size(); ++i) {
        const double shift = std::pow(1.2, double(i) - double(kinds.size() - 1) / 2);
        const fs::path csv = write_seed_points(args.path(std::string("final_") + long_range::task_name(task) + "_" + lab::model_slug(kinds[i]) + ".csv"),
                                               groups, task, kinds[i], shift);
        ss.push_back({csv, "metric", lab::model_name(kinds[i]), "x", "linespoints pointsize 1.3"});
      }
      const std::string final_png = std::string("final_") + long_range::task_name(task) + ".png";
      lab::plot(args.path(final_png), ss, po);
      std::ofstream(report, std::ios::app) << "\n![" << po.title << "](" << final_png << ")\n";

      // Training curves at the longest T, first seed: a line per model.
      std::vector<const Result*> runs;
      for (const auto& r : results)
        if (r.task == task && r.T == T_long && r.seed == args.seed && r.positions == c.positions) runs.push_back(&r);
      lab::PlotOptions pc = po;
      pc.title = std::string(task_title(task)) + ", T = " + std::to_string(T_long) + ": held-out metric while training (seed " +
                 std::to_string(args.seed) + ")";
      pc.xlabel = "step";
      pc.logx = false;
      pc.xmin = pc.xmax = lab::kMissing;
      pc.key = task == Task::recall ? "center right" : "bottom left";
      std::vector<lab::Series> curves;
      for (std::size_t i = 0; i < runs.size(); ++i) {
        std::string title = lab::model_name(runs[i]->kind);
        for (std::size_t j = i + 1; j < runs.size(); ++j)  // drawn later, so drawn over it
          if (overlap(runs[i]->curve, runs[j]->curve, task)) {
            title += std::string(" (under the ") + lab::model_name(runs[j]->kind) + ")";
            break;
          }
        // The first curve wide and solid, the second dashed: both visible where they coincide.
        curves.push_back({runs[i]->curve, "metric", title, "step", "linespoints", i == 0 ? 5.0 : 2.0, i == 1 ? 2 : 0});
      }
      const std::string curve_png = std::string("curves_") + long_range::task_name(task) + "_T" + std::to_string(T_long) + ".png";
      lab::plot(args.path(curve_png), curves, pc);
      std::ofstream(report, std::ios::app) << "\n![" << pc.title << "](" << curve_png << ")\n";
      // In the terminal: the reference line first, so that the curves are drawn over it.
      const fs::path ref = args.path(std::string("reference_") + long_range::task_name(task) + ".csv");
      {
        lab::CurveLog log(ref, {"y"});
        log.log(0, {pc.hlines[0].first});
        log.log(double(c.steps), {pc.hlines[0].first});
      }
      std::string ref_title = pc.hlines[0].second;
      for (auto it = runs.rbegin(); it != runs.rend(); ++it)  // the last one drawn over the line hides it
        if (on_line((*it)->curve, pc.hlines[0].first, task)) {
          ref_title += std::string(", under the ") + lab::model_name((*it)->kind);
          break;
        }
      std::vector<lab::Series> tc{{ref, "y", ref_title, "step", "lines"}};
      tc.insert(tc.end(), curves.begin(), curves.end());
      lab::PlotOptions pt = pc;
      pt.hlines.clear();
      std::cout << "\n";
      lab::plot_terminal(tc, pt, std::cout, 80, 24);
      if (chapter_run) {
        chapter.figure(curve_png);
        chapter.figure(final_png);
      }
    }

    // ---- the chapter's sentences and the checks of its claims ---------------------------------
    lab::Checks checks;
    std::vector<std::string> check_lines;
    auto expect = [&](bool ok, const std::string& claim) {
      checks.expect(ok, claim);
      check_lines.push_back(std::string(ok ? "[ok]   " : "[FAIL] ") + claim);
    };
    const std::string Tl = "T = " + std::to_string(T_long), Ts_ = "T = " + std::to_string(T_short);
    const auto rnn = lab::ModelKind::tanh_rnn, lstm = lab::ModelKind::lstm, tf = lab::ModelKind::transformer;
    const bool have_all = std::find(kinds.begin(), kinds.end(), rnn) != kinds.end() &&
                          std::find(kinds.begin(), kinds.end(), lstm) != kinds.end() &&
                          std::find(kinds.begin(), kinds.end(), tf) != kinds.end() && tasks.size() == 2;
    if (have_all) {
      // What the seeds did, task by task, at the shortest and the longest T.
      std::ostringstream reading;
      for (int T : {T_short, T_long}) {
        reading << "**At T = " << T << "**";
        for (Task task : {Task::recall, Task::adding}) {
          reading << (task == Task::recall ? ", first-token recall: " : ". The adding problem: ");
          for (auto k : {rnn, lstm, tf}) {
            const Group* g = group(task, T, k);
            reading << (k == rnn ? "" : k == lstm ? "; " : "; and ") << "the " << lab::model_name(k) << " " << g->verdict();
            if (k == tf && g->all_solved()) {
              const auto at = g->solved_at();
              const auto step = [](double v) { return std::to_string(std::int64_t(v)); };
              if (at.min() == at.max()) reading << ", first at step " << step(at.min()) << " in every seed";
              else reading << ", first at step " << step(at.median()) << " (median; " << step(at.min()) << " to " << step(at.max()) << ")";
            }
          }
        }
        reading << ".\n\n";
      }
      std::string text = reading.str();
      chapter.text("reading", text.substr(0, text.size() - 1));

      // The gradient ratios at the longest T.
      auto rmed = [&](Task task, lab::ModelKind k) { return ratio_str(group(task, T_long, k)->ratio().median()); };
      auto both = [&](lab::ModelKind k) {
        lab::SeedStats s;
        for (Task task : tasks)
          for (double v : group(task, T_long, k)->ratio().values) s.add(v);
        return s;
      };
      std::ostringstream ratios;
      ratios << "In the trained tanh RNNs at " << Tl << ", the gradient that reaches x_1 is " << rmed(Task::recall, rnn)
             << " of the one that reaches x_T on recall and " << rmed(Task::adding, rnn) << " on the adding problem (medians over "
             << seeds_str << "; the largest of the " << both(rnn).size() << " runs: " << ratio_str(both(rnn).max())
             << "); in the LSTMs " << rmed(Task::recall, lstm) << " and " << rmed(Task::adding, lstm) << " (largest "
             << ratio_str(both(lstm).max()) << "); in the Transformers " << rmed(Task::recall, tf) << " and "
             << rmed(Task::adding, tf) << " (" << ratio_str(both(tf).min()) << " to " << ratio_str(both(tf).max()) << ").";
      chapter.text("ratios", ratios.str());
      if (default_config) {
        for (Task task : tasks) {
          const std::string what = task == Task::recall ? "recall" : "adding";
          const std::string stay = task == Task::recall ? "stay at chance" : "stay at the baseline";
          expect(group(task, T_long, rnn)->all_chance() && group(task, T_long, lstm)->all_chance(),
                 what + " at " + Tl + ": the tanh RNN and the LSTM " + stay + " in every seed");
          expect(group(task, T_long, tf)->all_solved(), what + " at " + Tl + ": the Transformer solves it in every seed");
        }
        expect(both(rnn).max() < 1e-12 && both(lstm).max() < 1e-5,
               "at " + Tl + ": under 1e-12 (tanh RNN) and 1e-5 (LSTM) of the gradient reaching x_T reaches x_1, in every run");
        expect(both(tf).min() > 1e-3 && both(tf).max() < 10,
               "at " + Tl + ": the Transformer's x_1 gets between 1e-3 and 10 times x_T's gradient, in every run");
        expect(group(Task::recall, T_short, tf)->all_solved() && group(Task::adding, T_short, tf)->all_solved(),
               "at " + Ts_ + ": the Transformer solves both tasks in every seed");
        expect(group(Task::recall, T_short, rnn)->n_solved() > 0 && group(Task::recall, T_short, lstm)->n_solved() > 0,
               "recall at " + Ts_ + ": the tanh RNN and the LSTM each solve it in at least one seed");
        expect(group(Task::adding, T_short, rnn)->n_solved() == 0 && group(Task::adding, T_short, lstm)->n_solved() == 0,
               "adding at " + Ts_ + ": neither the tanh RNN nor the LSTM solves it in any seed");
      }
      if (quick_run) {  // --quick: 60 steps, T = 5 and 20; weaker forms of the same claims
        for (Task task : tasks) {
          const double t = group(task, T_long, tf)->metric().median();
          const double r = group(task, T_long, rnn)->metric().median(), l = group(task, T_long, lstm)->metric().median();
          if (task == Task::recall)
            expect(t > r + 0.3 && t > l + 0.3, "recall at " + Tl + ": the Transformer's median accuracy beats the tanh RNN's and the LSTM's by > 0.3");
          else
            expect(t < 0.5 * r && t < 0.5 * l, "adding at " + Tl + ": the Transformer's median MSE is under half the tanh RNN's and the LSTM's");
        }
        expect(both(rnn).max() < 1e-3, "at " + Tl + ": under 1e-3 of the gradient reaching x_T reaches x_1 in the tanh RNN, in every run");
      }

      // float32 against float64, at T and on sequences kFarFactor times longer.
      double worst = 0;  // the largest relative difference float32 vs float64 at the trained T
      for (const auto& r : results)
        worst = std::max(worst, r.ratio > 0 ? std::fabs(r.ratio_f32 - r.ratio) / r.ratio : r.ratio_f32 == 0 ? 0.0 : 1.0);
      lab::SeedStats far_rnn, far_rnn32, far_lstm, far_lstm32;
      for (Task task : tasks)
        for (const Result* r : group(task, T_long, rnn)->runs) far_rnn.add(r->far_ratio), far_rnn32.add(r->far_ratio_f32);
      for (Task task : tasks)
        for (const Result* r : group(task, T_long, lstm)->runs) far_lstm.add(r->far_ratio), far_lstm32.add(r->far_ratio_f32);
      const std::size_t rnn_zero = far_rnn32.count([](double v) { return v == 0; });
      const int T_far = kFarFactor * T_long;
      std::ostringstream f32;
      f32 << "The run measures every ratio in float32 too: at the trained T the two agree to within "
          << num(100 * worst, 2) << "% in all " << results.size() << " runs, the tanh RNN's smallest ("
          << ratio_str(both(rnn).min()) << ") included. Run on sequences " << kFarFactor << " times longer (T = " << T_far
          << "), the same trained tanh RNNs give a median ratio of " << ratio_str(far_rnn.median()) << " in float64, and float32 gives 0 in "
          << of_n(rnn_zero, far_rnn32.size()) << " runs; the LSTMs give " << ratio_str(far_lstm.median()) << " in float64 and "
          << ratio_str(far_lstm32.median()) << " in float32.";
      chapter.text("float32", f32.str());
      if (default_config || quick_run) expect(worst < 0.01, "at the trained T, float32 measures every ratio within 1% of float64");
      if (default_config)
        expect(rnn_zero == far_rnn32.size() && far_rnn.min() > 0 && far_lstm32.min() > 0,
               "at T = " + std::to_string(T_far) + ": float32 rounds the tanh RNN's ratio to 0 in every run (float64 does not), and keeps the LSTM's");
      if (quick_run)
        expect(far_rnn.max() < both(rnn).min(), "at T = " + std::to_string(T_far) + ": the tanh RNN's ratio is smaller than at " + Tl + " in every run");

      // Exercise 1: the factor per step, and where float32 runs out.
      const double f_rnn = std::pow(both(rnn).median(), 1.0 / (T_long - 1)), f_lstm = std::pow(both(lstm).median(), 1.0 / (T_long - 1));
      const double T_star = 1 + std::log(kFloat32Denormal) / std::log(f_rnn);
      std::ostringstream a1;
      a1 << "*Answer:* over both tasks the tanh RNN's median ratio at " << Tl << " is " << ratio_str(both(rnn).median())
         << ", so its average factor per step is " << ratio_str(both(rnn).median()) << "^(1/" << T_long - 1 << ") = " << num(f_rnn, 2)
         << "; the LSTM's is " << ratio_str(both(lstm).median()) << "^(1/" << T_long - 1 << ") = " << num(f_lstm, 2)
         << ". At " << num(f_rnn, 2) << " per step the tanh RNN's ratio passes 1.4e-45 at about T = " << num(T_star, 2)
         << ". The run measures both trained networks at T = " << T_far << ": the tanh RNNs' median ratio is "
         << ratio_str(far_rnn.median()) << " in float64 and float32 reads 0 in " << of_n(rnn_zero, far_rnn32.size())
         << " runs; the LSTMs' is " << ratio_str(far_lstm.median()) << " in float64 and " << ratio_str(far_lstm32.median())
         << " in float32, far above float32's limits.";
      chapter.text("answer1", a1.str());

      // Exercise 2: runs that stop between chance and solved on recall.
      std::ostringstream a2;
      std::size_t plateaus = 0, rnn_plateaus = 0;
      bool plateaus_fit = true;
      for (const auto& r : results) {
        if (r.task != Task::recall || r.groups.empty() || !r.positions || r.metric > kPlateauTop) continue;
        ++plateaus;
        rnn_plateaus += r.kind == rnn && r.T == T_short;
        const double k = double(r.groups.size());
        plateaus_fit = plateaus_fit && std::fabs(r.metric - k / 8) < 0.05;
        const auto v = curve_values(r.curve);
        std::string last;
        for (std::size_t i = v.size() >= 3 ? v.size() - 3 : 0; i < v.size(); ++i) last += (last.empty() ? "" : ", ") + num(v[i], 3);
        a2 << (plateaus == 1 ? "*Answer:* " : " ") << "The " << lab::model_name(r.kind) << " at T = " << r.T << ", seed " << r.seed
           << " (last three evaluations " << last << ") gives one answer for a first symbol in " << join_groups(r.groups)
           << ": it tells " << r.groups.size() << " groups apart and nothing inside a group, worth " << r.groups.size() << "/8 = "
           << num(k / 8, 3) << ".";
      }
      if (plateaus == 0) a2 << "*Answer:* no run of this seed set ends between chance and " << num(kPlateauTop, 2) << " on recall.";
      else
        a2 << " Each group gets one answer, right for one of its symbols: whatever the groups' sizes, k groups are worth k/8.";
      chapter.text("answer2", a2.str());
      if (chapter_run)
        expect(rnn_plateaus > 0 && plateaus_fit, "recall at " + Ts_ + ": some tanh RNN runs end between chance and 0.5; every such run sits within 0.05 of k/8, k the groups of first symbols it tells apart");

      // Exercise 3: the Transformer without positions.
      if (exercises && !nopos_recall.empty() && !nopos_adding.empty()) {
        const auto acc = stats_of(nopos_recall, [](const Result& r) { return r.metric; });
        const auto blind = stats_of(nopos_recall, [](const Result& r) { return r.order_blind; });
        const auto mse = stats_of(nopos_adding, [](const Result& r) { return r.metric; });
        const std::size_t mse_solved = mse.count([](double m) { return solved(Task::adding, m); });
        std::ostringstream a3;
        a3 << "*Answer:* without positions, the Transformer's recall at " << Ts_ << " ends at a median of " << num(acc.median(), 3)
           << " (" << acc.range(3) << " over " << seeds_str << "), against " << metric_str(Task::recall, group(Task::recall, T_short, tf)->metric().median())
           << " with them. The best any reader blind to order can do on these held-out sequences is " << num(blind.median(), 3)
           << " (median over the seeds' held-out sets): guess the most frequent symbol among x_1 to x_(T-1), which it can count, "
              "knowing x_T, the position it answers from. On the adding problem it "
           << (mse_solved == mse.size() ? "still solves it in every seed" : "solves it in " + of_n(mse_solved, mse.size()) + " seeds")
           << " (median MSE " << ratio_str(mse.median()) << "): the markers, not the positions, say which values to add.";
        chapter.text("answer3", a3.str());
        bool under_bound = true;
        for (const Result* r : nopos_recall) under_bound = under_bound && r->metric <= r->order_blind + 0.05;
        expect(under_bound, "recall at " + Ts_ + " without positions: no seed beats the order-blind best by more than 0.05");
        if (default_config) expect(mse_solved == mse.size(), "adding at " + Ts_ + " without positions: the Transformer still solves it in every seed");
        if (quick_run)
          expect(mse.median() < 0.5 * lab::AddingTask::kBaselineMSE, "adding at " + Ts_ + " without positions: the median MSE is under half the baseline");
      }
    }
    if (!default_config && !quick_run && T_long >= 50)
      for (Task task : tasks)
        if (const Group* g = group(task, T_long, rnn))
          expect(g->ratio().max() < 1e-3, std::string(long_range::task_name(task)) + " at " + Tl +
                                               ": under 1e-3 of the gradient reaching x_T reaches x_1 in the tanh RNN, in every seed");
    bool finite = true;
    for (const auto& r : results) finite = finite && std::isfinite(r.metric) && std::isfinite(r.ratio);
    expect(finite, "every run ends with a finite held-out metric and gradient ratio");
    std::string block = "```\n";
    for (const auto& l : check_lines) block += "    " + l + "\n";
    chapter.text("checks", block + "```");

    const double total_cpu = cpu_now() - cpu_start;
    chapter.table("cpu", cpu, lab::Timing::yes);
    chapter.text("runtime", "This run took " + num(total_cpu, 3) + " CPU seconds on the machine that last wrote this chapter (" +
                                std::to_string(results.size()) + " training runs).",
                 lab::Timing::yes);
    std::cout << "\nCPU time of the whole run: " << num(total_cpu, 3) << " s\n";
    std::cout << "Wrote " << args.out.string() << "/: report.md, final_*.png, curves_*.png, curve_*.csv, model_*.safetensors\n";
    return checks.report();
  });
}
