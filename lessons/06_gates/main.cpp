// Lesson 06: gates. The LSTM and the GRU measured exactly as lesson 05 measured the tanh RNN.
//
// Shape legend: B batch, T time steps, I input features (2 for adding, 8 for recall), H = 64.
//
//   1) ||dL/dx_t|| at initialisation, T = 200, float64: tanh RNN, LSTM with forget-gate bias 0
//      (PyTorch's default) and 1 (Gers et al. 2000), GRU.
//   2) Through the cell state: ||dL/dc_t|| of the LSTM next to the gradient that flows only
//      along c_{t-1} -> c_t, multiplied by the forget gate at every step.
//   3) A fair race on first-token recall and the adding problem. Every model gets the same budget
//      (steps, batch, clipping) and its own learning rate: the one of a small grid with the lowest
//      held-out loss on a validation seed that no reported figure uses. Then 5 other seeds at each
//      T; reported as median, range and "learned in k of 5 seeds".
//   4) The gradient curves again, after training on the adding problem, for every seed.
//   5) The exercises' answers, measured.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <tuple>

#if defined(__x86_64__) || defined(__i386__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include "common/long_range.hpp"

using long_range::Task;

namespace {

struct Variant {
  std::string slug, title;
  lab::ModelKind kind;
  double forget_bias;
};

double norm(const ag::Tensor& t) { return std::sqrt(ag::sum(t * t).item()); }

// The LSTM unrolled by hand with the library's own step (nn::recurrent_step), to keep every
// cell state c_t and forget gate f_t. Returns, for t = 1..T:
//   dc[t]    ||dL/dc_t||, the engine's gradient (retain_grad on each c_t): every path
//   path[t]  the part that flows only along the cell state, c_{t-1} -> c_t, i.e. dL/dc_T
//            multiplied element-wise by f_T, f_{T-1}, ..., f_{t+1}:
//              dL/dc_{t-1} = dL/dc_t * f_t  (+ the paths through h_{t-1} and the gates)
// and the mean forget gate over the batch, the units and the steps.
struct CellTrace {
  std::vector<double> dc, path;
  double forget_mean = 0;
};
CellTrace trace_cell_state(lab::SequenceModel& model, const lab::AddingBatch& batch) {
  const nn::Recurrent& rnn = *model.rnn;
  const ag::Dtype dt = model.dtype();
  const std::size_t B = batch.size(), T = batch.inputs.size(1), H = rnn.hidden_size();
  const ag::Tensor x = batch.inputs.to(dt).detach();                     // [B, T, 2]
  const ag::Tensor xp = ag::linear(x, rnn.weight_ih[0], rnn.bias_ih[0]);  // [B, T, 4H]: gates i f g o
  nn::RecurrentState s{ag::zeros({B, H}, {dt}), ag::zeros({B, H}, {dt})};
  std::vector<ag::Tensor> c, f;
  CellTrace r;
  for (std::size_t t = 0; t < T; ++t) {
    const ag::Tensor xp_t = ag::select(xp, 1, std::int64_t(t));
    {
      ag::NoGrad watch_only;  // f_t = sigmoid(x_t W_if^T + b_if + h_{t-1} W_hf^T + b_hf): columns H..2H
      const ag::Tensor gates = xp_t + ag::linear(s.h, rnn.weight_hh[0], rnn.bias_hh[0]);
      f.push_back(ag::sigmoid(ag::slice(gates, -1, std::int64_t(H), std::int64_t(2 * H))));
      r.forget_mean += ag::mean(f.back()).item() / double(T);
    }
    s = nn::recurrent_step(nn::CellKind::lstm, xp_t, s, rnn.weight_hh[0], rnn.bias_hh[0]);
    s.c.retain_grad();
    c.push_back(s.c);
  }
  model.zero_grad();
  ag::mse_loss((*model.readout)(s.h), batch.targets.to(dt)).backward();
  r.dc.resize(T), r.path.resize(T);
  ag::NoGrad no_graph;
  ag::Tensor along_c = c[T - 1].grad();  // dL/dc_T
  for (std::size_t t = T; t-- > 0;) {
    r.dc[t] = norm(c[t].grad());
    r.path[t] = norm(along_c);
    along_c = along_c * f[t];  // one step further back: dL/dc_{t-1} along the cell state
  }
  return r;
}

// The step k back from the end at which ||dL/dx_{T-k}|| first drops below 1/1000 of ||dL/dx_T||:
// how far back the gradient "reaches" (T if it never drops that far).
int reach(const std::vector<double>& n) {
  for (std::size_t k = 0; k < n.size(); ++k)
    if (n[n.size() - 1 - k] < 1e-3 * n.back()) return int(k);
  return int(n.size());
}

// The GRU's update gate z is block 1 (columns H..2H) of its biases: h_t = (1 - z) n + z h_{t-1},
// so z near 1 copies the state forward. Sets the total bias of z to `bias`, as the Recurrent
// constructor does for the LSTM's forget gate (exercise 2).
void set_update_bias(lab::SequenceModel& model, double bias) {
  const std::size_t H = model.rnn->hidden_size();
  float* bi = model.rnn->bias_ih[0].data<float>().data() + H;
  float* bh = model.rnn->bias_hh[0].data<float>().data() + H;
  for (std::size_t j = 0; j < H; ++j) bi[j] = float(bias), bh[j] = 0.f;
}

// ---- the fair race (part 3) ----------------------------------------------------------------

// Everything the race holds fixed, in one place: the chapter prints it.
struct Protocol {
  std::vector<int> lengths;  // T of the reported runs
  std::vector<double> lrs;   // the grid (Adam)
  int seeds = 5;             // reported seeds: args.seed + 1 .. args.seed + seeds
  std::int64_t steps = 800;
  int eval_size = 1000;      // held-out sequences
  int after_T = 50;          // T of the adding models whose gradients part 4 measures
};

// The validation seed: used only to choose each model's learning rate, never reported.
std::uint64_t validation_seed(std::uint64_t seed) { return seed + 1000; }

// Lesson 05's words for a score: recall is *full* from an accuracy of 0.9 and *above chance* from
// 0.2 (a network that ignores x_1 scores 0.125 +- 0.01); the adding problem is *learned* below an
// MSE of 0.1 (the baseline is 0.167). "Learned" below means full recall or a learned adding problem.
constexpr double kRecallFull = 0.9, kRecallAboveChance = 0.2, kAddingLearned = 0.1;
bool learned(Task task, double metric) { return task == Task::recall ? metric >= kRecallFull : metric < kAddingLearned; }
bool above_chance(double accuracy) { return accuracy >= kRecallAboveChance; }

std::string lr_text(double lr) {  // 0.003, 0.01, 0.03
  std::ostringstream os;
  os << lr;
  return os.str();
}

struct Trained {
  double metric = 0;  // held-out accuracy (recall) or MSE (adding) after the last step
  double loss = 0;    // held-out loss: cross-entropy (recall) or MSE (adding)
  std::shared_ptr<lab::SequenceModel> model;
};

Trained train(const Variant& v, Task task, int T, double lr, std::uint64_t seed, const Protocol& p,
              const std::filesystem::path& csv, const std::string& label) {
  const long_range::RunOptions ro{.kind = v.kind, .task = task, .T = T, .steps = p.steps, .batch = 32, .lr = lr, .clip = 1.0,
                                  .eval_every = 400, .eval_size = p.eval_size, .seed = seed, .forget_bias = v.forget_bias};
  long_range::RunResult run;
  {
    // train_run draws a progress bar; with dozens of runs, one line per run says more.
    std::ostringstream bar;
    std::streambuf* out = std::cout.rdbuf(bar.rdbuf());
    try {
      run = long_range::train_run(ro, csv, label);
    } catch (...) {
      std::cout.rdbuf(out);
      throw;
    }
    std::cout.rdbuf(out);
  }
  Trained r{run.final_metric, run.final_metric, run.model};
  if (task == Task::recall) {  // the same held-out set train_run scored (same seed, same size)
    const lab::RecallTask held_out({.T = T, .seed = seed, .eval_size = p.eval_size});
    ag::NoGrad no_graph;
    r.loss = ag::cross_entropy((*run.model)(held_out.eval_set().one_hot), held_out.eval_set().targets).item();
  }
  std::cout << "  " << label << ", lr " << lr_text(lr) << ": " << (task == Task::recall ? "accuracy " : "MSE ")
            << lab::format_number(r.metric, 3) << "\n" << std::flush;
  return r;
}

// The file name of a run: training/recall_gru_T50_seed3.csv
std::string run_name(Task task, const Variant& v, int T, const std::string& what) {
  return std::string(long_range::task_name(task)) + "_" + v.slug + "_T" + std::to_string(T) + "_" + what;
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("06_gates", "LSTM and GRU against the tanh RNN: gradient flow, the forget-gate bias, and a fair race on recall and adding");
  double task_forget_bias = 1.0;
  bool full = false;
  cli.app().add_option("--forget-bias", task_forget_bias, "initial forget-gate bias of the LSTM in the race (part 3)")
      ->check(CLI::Range(-10.0, 10.0));
  cli.app().add_flag("--full", full, "the race at T = 10, 25, 50, 100, 200 instead of 10, 25, 50 (about 20 min of CPU)");
  cli.steps_help("training steps of every run of the race: each model, task, T, seed and learning rate of the grid (default 800; --quick 150)");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
#if defined(__x86_64__) || defined(__i386__)
    // Flush float32 numbers below 1.2e-38 to 0 instead of computing with denormals, which x86
    // does ~5x slower: a tanh RNN that saturates produces them by the million in its backward pass.
    // Only the speed changes (and results below 1e-38); parts 1 and 2 measure in float64.
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#endif
    lab::Checks checks;
    lab::Chapter chapter(args);
    std::vector<std::string> claims;  // the check lines, for the chapter
    auto expect = [&](bool ok, const std::string& claim) {
      checks.expect(ok, claim);
      claims.push_back(std::string(ok ? "[ok]   " : "[FAIL] ") + claim);
    };
    const std::uint64_t init_seed = lab::derive_seed(args.seed, 10);
    const std::vector<Variant> variants{{"rnn", "tanh RNN", lab::ModelKind::tanh_rnn, 0.0},
                                        {"lstm_fb0", "LSTM, forget bias 0", lab::ModelKind::lstm, 0.0},
                                        {"lstm_fb1", "LSTM, forget bias 1", lab::ModelKind::lstm, 1.0},
                                        {"gru", "GRU", lab::ModelKind::gru, 0.0}};
    std::cout << "Lesson 06: gates. The gradient reaching each input (H = 64, float64)\n\n";

    // ---- 1) ||dL/dx_t|| at initialisation ------------------------------------------------------
    auto profile = [&](const Variant& v, int len, double gru_bias = 0.0) {
      lab::AddingTask probe({.T = len, .seed = args.seed, .eval_size = 64});
      auto model = long_range::make_model(v.kind, Task::adding, init_seed, v.forget_bias);
      if (gru_bias != 0.0) set_update_bias(*model, gru_bias);
      model->to(ag::f64);
      return long_range::gradient_per_position(*model, probe.eval_set());
    };
    const int T = 200;
    std::vector<std::vector<double>> init_norm;
    lab::Table t_init("||dL/dx_1|| / ||dL/dx_T|| at initialisation (float64), and the reach",
                      {"model (at init)", "ratio, T = 50", "T = 100", "T = 200", "reach (steps)"});
    std::vector<std::string> cols;
    std::vector<double> ratio50, ratio100, ratio200;
    std::vector<int> reaches;
    for (const Variant& v : variants) {
      init_norm.push_back(profile(v, T));
      ratio50.push_back(long_range::first_to_last(profile(v, 50)));
      ratio100.push_back(long_range::first_to_last(profile(v, 100)));
      ratio200.push_back(long_range::first_to_last(init_norm.back()));
      reaches.push_back(reach(init_norm.back()));
      t_init.row({v.title, ratio50.back(), ratio100.back(), ratio200.back(), reaches.back()});
      cols.push_back(v.slug);
    }
    const auto init_csv = long_range::write_profiles(args.path("grad_init.csv"), cols, init_norm);
    std::vector<lab::Series> init_curves;
    for (std::size_t i = 0; i < variants.size(); ++i)  // the GRU runs close to the bias-0 LSTM: that one wide, the GRU dashed
      init_curves.push_back({.csv = init_csv, .y = variants[i].slug, .title = variants[i].title + (i == 3 ? " (dashed)" : ""), .x = "t",
                             .width = i == 1 ? 5.0 : 2.0, .dash = i == 3 ? 2 : 0});
    const lab::PlotOptions po_grad{.title = "Gradient reaching each input at initialisation (T = 200)",
                                   .xlabel = "input position t (the loss is read after t = 200)",
                                   .ylabel = "||dL/dx_t||", .logy = true, .ymax = 1e15};
    lab::plot(args.path("grad_init.png"), init_curves, po_grad);
    t_init.print();
    t_init.save_markdown(args.path("report.md"));
    chapter.table("init_ratios", t_init);
    chapter.figure("grad_init.png");
    const double rnn50 = ratio50[0], fb0_50 = ratio50[1], fb1_50 = ratio50[2];
    chapter.text("init_reading",
                 "A forget bias of 1 changes the slope: the ratio at T = 50 is " + lab::format_number(fb1_50, 2) + " against " +
                     lab::format_number(fb0_50, 2) + " for bias 0, " + std::to_string(int(std::floor(std::log10(fb1_50 / fb0_50)))) +
                     " orders of magnitude more, and the gradient stays within a factor 1000 of its final value for " + std::to_string(reaches[2]) +
                     " steps instead of " + std::to_string(std::min({reaches[0], reaches[1], reaches[3]})) + " to " +
                     std::to_string(std::max({reaches[0], reaches[1], reaches[3]})) +
                     ". It still vanishes: its line is straight too, only flatter, and at T = 200 the first input gets " +
                     lab::format_number(ratio200[2], 2) + " of what the last one gets.");
    expect(fb0_50 < 1e-6 && rnn50 < 1e-6, "forget bias 0: the LSTM's ratio at T = 50 (" + lab::format_number(fb0_50) +
                                              ") is as tiny as the tanh RNN's (" + lab::format_number(rnn50) + "), both < 1e-6");
    expect(fb1_50 > 1e3 * fb0_50, "forget bias 1 reaches further: ratio " + lab::format_number(fb1_50) +
                                      " at T = 50, > 1000 x the bias-0 LSTM's");
    expect(ratio100[3] > 1e3 * ratio100[0], "the GRU reaches further than the tanh RNN: ratio " + lab::format_number(ratio100[3]) +
                                                " at T = 100, > 1000 x the RNN's (" + lab::format_number(ratio100[0]) + ")");
    expect(ratio200[2] < 1e-6, "but it still vanishes at long T: forget bias 1, T = 200, ratio " +
                                   lab::format_number(ratio200[2]) + " < 1e-6");

    // ---- 2) Through the cell state -------------------------------------------------------------
    const int Tc = 100;
    const std::vector<double> biases{0.0, 1.0, 2.0, 3.0};
    lab::AddingTask cell_probe({.T = Tc, .seed = args.seed, .eval_size = 64});
    std::vector<std::string> cell_cols;
    for (std::size_t i = 0; i < biases.size(); ++i) cell_cols.push_back("dc_fb" + std::to_string(i)), cell_cols.push_back("path_fb" + std::to_string(i));
    lab::CurveLog cell_log(args.path("cell_state.csv"), cell_cols, "t");
    std::vector<CellTrace> traces;
    for (double fb : biases) {
      auto model = long_range::make_model(lab::ModelKind::lstm, Task::adding, init_seed, fb);
      model->to(ag::f64);
      traces.push_back(trace_cell_state(*model, cell_probe.eval_set()));
    }
    for (int t = 0; t < Tc; ++t) {
      std::vector<double> row;
      for (const CellTrace& tr : traces) row.push_back(tr.dc[t]), row.push_back(tr.path[t]);
      cell_log.log(t + 1, row);
    }
    std::vector<lab::Series> cell_curves;
    for (std::size_t i = 0; i < biases.size(); ++i) {
      const std::string b = std::to_string(i), colour = " lc " + std::to_string(i + 1);
      cell_curves.push_back({.csv = cell_log.path(), .y = "dc_fb" + b, .title = "bias " + b + ": ||dL/dc_t||", .x = "t", .style = "lines" + colour});
      cell_curves.push_back({.csv = cell_log.path(), .y = "path_fb" + b, .title = "bias " + b + ": along c alone", .x = "t",
                             .style = "lines" + colour, .dash = 2});
    }
    lab::plot(args.path("cell_state.png"), cell_curves,
              {.title = "LSTM at initialisation: the gradient on the cell state, by forget-gate bias (T = 100)",
               .xlabel = "position t (the loss is read after t = 100)", .ylabel = "||dL/dc_t||", .logy = true, .ymin = 1e-32, .ymax = 1e30, .height = 600});
    // Per-step factor: (||dL/dc_1|| / ||dL/dc_T||)^(1/(T-1)), the geometric mean shrinkage per step.
    auto per_step = [&](const std::vector<double>& n) { return std::pow(n.front() / n.back(), 1.0 / double(n.size() - 1)); };
    lab::Table t_cell("The LSTM's cell state at initialisation, T = 100",
                      {"forget bias", "mean f_t", "sigmoid(bias)", "per step: dL/dc", "per step: along c alone", "dL/dc_1 / dL/dc_T"});
    bool near_sigmoid = true, path_is_f = true, grows = true;
    std::string along_c_factors;
    for (std::size_t i = 0; i < biases.size(); ++i) {
      const CellTrace& tr = traces[i];
      const double sig = 1.0 / (1.0 + std::exp(-biases[i]));
      t_cell.row({int(biases[i]), tr.forget_mean, sig, per_step(tr.dc), per_step(tr.path), tr.dc.front() / tr.dc.back()});
      near_sigmoid = near_sigmoid && std::abs(tr.forget_mean - sig) < 0.05;
      path_is_f = path_is_f && std::abs(per_step(tr.path) - tr.forget_mean) < 0.05;
      if (i > 0) grows = grows && tr.dc.front() / tr.dc.back() > traces[i - 1].dc.front() / traces[i - 1].dc.back();
      along_c_factors += (i == 0 ? "" : i + 1 == biases.size() ? " and " : ", ") + lab::format_number(per_step(tr.path), 3);
    }
    std::cout << "\n";
    t_cell.print();
    t_cell.save_markdown(args.path("report.md"), true);
    chapter.table("cell_state", t_cell);
    chapter.figure("cell_state.png");
    chapter.text("cell_reading", "The run measures " + along_c_factors +
                                     " per step along c for the biases 0, 1, 2 and 3 (the geometric mean of the actual gates), close to these.");
    expect(near_sigmoid, "at init the forget gate sits near sigmoid(bias): mean f = " + lab::format_number(traces[0].forget_mean) +
                             " for bias 0, " + lab::format_number(traces[1].forget_mean) + " for bias 1");
    expect(path_is_f, "along the cell state alone the gradient shrinks by the forget gate each step (per-step factor within 0.05 of mean f)");
    expect(grows, "the gradient reaching c_1 grows with the forget bias: 0 < 1 < 2 < 3");

    // ---- 3) The fair race ----------------------------------------------------------------------
    Protocol p{.lengths = full ? std::vector<int>{10, 25, 50, 100, 200} : std::vector<int>{10, 25, 50},
               .lrs = {3e-3, 1e-2, 3e-2}, .seeds = 5, .steps = args.steps_or(800, 150), .eval_size = 1000, .after_T = 50};
    if (args.quick) p.lengths = {10}, p.seeds = 3, p.eval_size = 200, p.after_T = 10;
    const std::vector<Variant> racers{{"rnn", "tanh RNN", lab::ModelKind::tanh_rnn, 0.0},
                                      {"lstm", "LSTM", lab::ModelKind::lstm, task_forget_bias},
                                      {"gru", "GRU", lab::ModelKind::gru, 0.0}};
    const std::vector<Task> tasks{Task::recall, Task::adding};
    {
      std::ostringstream os;
      std::string grid, lengths, params;
      for (double lr : p.lrs) grid += (grid.empty() ? "" : ", ") + lr_text(lr);
      for (int len : p.lengths) lengths += (lengths.empty() ? "" : ", ") + std::to_string(len);
      for (const Variant& v : racers)
        params += (params.empty() ? "" : ", ") + v.title + " " +
                  std::to_string(long_range::make_model(v.kind, Task::recall, init_seed, v.forget_bias)->num_parameters());
      os << "- the same budget for every model: " << p.steps << " steps of Adam, batch 32, gradient norm clipped at 1.0, H = "
         << long_range::kHidden << " (parameters on recall: " << params << ");\n"
         << "- its own learning rate, per task: the one of " << grid << " with the lowest held-out loss (cross-entropy for recall, MSE for adding) "
         << "after those steps, at each T, on a validation seed that no reported figure uses;\n"
         << "- then " << p.seeds << " fresh seeds (each a different initialisation, training stream and held-out set of "
         << p.eval_size << " sequences) at T = " << lengths << ", reported as median, range and the number of seeds that learned the task, "
         << "in lesson 05's words: recall is *full* from an accuracy of " << kRecallFull << " and *above chance* from " << kRecallAboveChance
         << ", the adding problem is *learned* below an MSE of " << kAddingLearned << " (\"learned\" in the tables: full recall, or a learned adding problem);\n"
         << "- the LSTM's forget bias is " << lr_text(task_forget_bias) << ".\n";
      chapter.text("protocol", os.str());
      std::cout << "\nThe race:\n" << os.str();
    }

    // 3a) Each model's learning rate, on the validation seed.
    std::vector<std::string> tune_cols{"task", "T", "model"};
    for (double lr : p.lrs) tune_cols.push_back("lr " + lr_text(lr));
    tune_cols.push_back("chosen");
    lab::Table t_tune("Held-out loss on the validation seed after " + std::to_string(p.steps) + " steps (recall: cross-entropy, and accuracy in brackets)",
                      tune_cols);
    using Key = std::tuple<Task, int, std::string>;  // (task, T, model)
    std::map<Key, double> chosen;                     // -> its learning rate
    std::map<Key, std::vector<Trained>> at_grid;      // -> every rate's result
    for (Task task : tasks)
      for (int len : p.lengths)
        for (const Variant& v : racers) {
          const Key key{task, len, v.slug};
          std::vector<lab::Cell> row{long_range::task_name(task), len, v.title};
          double best = std::numeric_limits<double>::infinity();
          for (double lr : p.lrs) {
            const std::string name = run_name(task, v, len, "lr" + lr_text(lr));
            Trained r = train(v, task, len, lr, validation_seed(args.seed), p, args.path("validation/" + name + ".csv"),
                              "validation seed: " + std::string(long_range::task_name(task)) + ", " + v.title + ", T = " + std::to_string(len));
            r.model.reset();
            row.push_back(task == Task::recall ? lab::format_number(r.loss, 3) + " (" + lab::format_number(r.metric, 3) + ")"
                                               : lab::format_number(r.loss, 3));
            if (r.loss < best) best = r.loss, chosen[key] = lr;
            at_grid[key].push_back(r);
          }
          row.push_back(lr_text(chosen[key]));
          t_tune.row(row);
        }
    std::cout << "\n";
    t_tune.print();
    t_tune.save_markdown(args.path("report.md"), true);
    chapter.table("lr_choice", t_tune);

    // 3b) The reported seeds.
    lab::Table t_race("The race: " + std::to_string(p.seeds) + " seeds, held-out metric after " + std::to_string(p.steps) + " steps",
                      {"task", "T", "model", "lr", "median", "range", "learned", "above chance", "each seed"});
    std::map<std::tuple<Task, int, std::string>, lab::SeedStats> stats;
    std::vector<std::vector<std::shared_ptr<lab::SequenceModel>>> after_models(racers.size());  // adding, T = after_T, per seed
    const std::vector<double> offset{0.8, 1.0, 1.25};  // x positions of the three models at each T (log axis)
    for (Task task : tasks) {
      const std::string tname = long_range::task_name(task);
      lab::CurveLog medians(args.path(tname + "_vs_T.csv"), {"x_rnn", "rnn", "x_lstm", "lstm", "x_gru", "gru"}, "T");
      std::vector<std::unique_ptr<lab::CurveLog>> each;
      for (const Variant& v : racers) each.push_back(std::make_unique<lab::CurveLog>(args.path(tname + "_seeds_" + v.slug + ".csv"), std::vector<std::string>{"value"}, "x"));
      for (int len : p.lengths) {
        std::vector<double> row;
        for (std::size_t m = 0; m < racers.size(); ++m) {
          const Variant& v = racers[m];
          const double lr = chosen[{task, len, v.slug}];
          lab::SeedStats& s = stats[{task, len, v.slug}];
          for (int k = 1; k <= p.seeds; ++k) {
            const std::string name = run_name(task, v, len, "seed" + std::to_string(k));
            Trained r = train(v, task, len, lr, args.seed + std::uint64_t(k), p, args.path("training/" + name + ".csv"),
                              tname + ", " + v.title + ", T = " + std::to_string(len) + ", seed " + std::to_string(k));
            s.add(r.metric);
            each[m]->log(len * offset[m] * std::pow(1.02, k), {r.metric});  // seeds in a row right of their median
            if (task == Task::adding && len == p.after_T) after_models[m].push_back(r.model);
          }
          row.push_back(len * offset[m] * 0.97), row.push_back(s.median());
          const std::string of = " of " + std::to_string(s.size());
          t_race.row({tname, len, v.title, lr_text(lr), s.median(), s.range(), std::to_string(s.count([&](double x) { return learned(task, x); })) + of,
                      task == Task::recall ? std::to_string(s.count(above_chance)) + of : std::string(), s.all()});
        }
        medians.log(len, row);
      }
    }
    std::cout << "\n";
    t_race.print();
    t_race.save_markdown(args.path("report.md"), true);
    chapter.table("race", t_race);
    auto S = [&](Task task, int len, const std::string& slug) -> const lab::SeedStats& { return stats.at({task, len, slug}); };
    auto n_learned = [&](Task task, int len, const std::string& slug) {
      return S(task, len, slug).count([&](double x) { return learned(task, x); });
    };
    auto n_above = [&](int len, const std::string& slug) { return S(Task::recall, len, slug).count(above_chance); };

    // The two figures: every seed as a small hollow marker, the median as a large filled one, the
    // three models side by side at each T so that none hides another.
    const char* pt_seed[] = {"6", "4", "8"};    // hollow circle, square, triangle
    const char* pt_median[] = {"7", "5", "9"};  // the same, filled
    const bool few_T = p.lengths.size() < 3;    // two T values: points only, no lines between them
    const double xmin = p.lengths.front() * 0.65, xmax = p.lengths.back() * 1.5;
    for (Task task : tasks) {
      const std::string tname = long_range::task_name(task);
      std::vector<lab::Series> ss;
      for (std::size_t m = 0; m < racers.size(); ++m) {
        const std::string colour = " lc " + std::to_string(m + 1);
        ss.push_back({.csv = args.path(tname + "_vs_T.csv"), .y = racers[m].slug, .title = racers[m].title + ", median",
                      .x = "x_" + racers[m].slug, .style = std::string(few_T ? "points" : "linespoints") + " pt " + pt_median[m] + " ps 2.2" + colour});
        ss.push_back({.csv = args.path(tname + "_seeds_" + racers[m].slug + ".csv"), .y = "value", .title = racers[m].title + ", each seed",
                      .x = "x", .style = std::string("points pt ") + pt_seed[m] + " ps 1.3" + colour, .width = 1.5});
      }
      lab::PlotOptions po{.title = (task == Task::recall ? "First-token recall" : "Adding problem") + std::string(", ") + std::to_string(p.seeds) +
                                   " seeds (small markers) and their median (large), " + std::to_string(p.steps) + " steps, own learning rate",
                          .xlabel = "sequence length T (log scale; the three models side by side at each T)",
                          .ylabel = task == Task::recall ? "held-out accuracy" : "held-out MSE (log scale)",
                          .logx = true, .xmin = xmin, .xmax = xmax};
      // The legend goes below the plot, where no marker can hide under it. PlotOptions has no
      // settings for ticks or number formats, and `key` is passed to gnuplot as it is: two more
      // lines ride on it (a tick at every T; "0.001" rather than "0.001000" on the log axis).
      std::string xtics;
      for (int len : p.lengths) xtics += (xtics.empty() ? "" : ", ") + std::to_string(len);
      const std::string below = "below\nset xtics (" + xtics + ")\nset format y \"%g\"";
      if (task == Task::recall) {
        po.ymin = 0, po.ymax = 1.1, po.key = below, po.height = 560;
        po.hlines = {{lab::RecallTask::kChanceAccuracy, "chance (1/8)"}};
      } else {
        po.logy = true, po.ymax = 1, po.key = below, po.height = 560;
        po.hlines = {{lab::AddingTask::kBaselineMSE, "predict 1.0 (0.167)"}};
      }
      lab::plot(args.path(tname + "_vs_T.png"), ss, po);
      chapter.figure(tname + "_vs_T.png");
    }

    // A sentence per task and T: who learned it in how many seeds.
    {
      std::ostringstream os;
      for (Task task : tasks)
        for (int len : p.lengths) {
          os << "- " << long_range::task_name(task) << ", T = " << len << ": ";
          for (std::size_t m = 0; m < racers.size(); ++m) {
            const std::string& slug = racers[m].slug;
            os << (m == 0 ? "" : "; ") << racers[m].title << (task == Task::recall ? " full in " : " learned in ") << n_learned(task, len, slug)
               << " of " << p.seeds << " seeds";
            if (task == Task::recall) os << ", above chance in " << n_above(len, slug);
            os << " (median " << lab::format_number(S(task, len, slug).median(), 3) << ")";
          }
          os << ".\n";
        }
      chapter.text("race_counts", os.str());
    }

    // ---- 4) After training: the gradient curves of the adding models ---------------------------
    lab::AddingTask probe_after({.T = p.after_T, .seed = args.seed, .eval_size = 64});
    lab::Table t_after("Gradient ratio ||dL/dx_1|| / ||dL/dx_T|| before and after training on adding, T = " + std::to_string(p.after_T) + ", " +
                           std::to_string(p.seeds) + " seeds",
                       {"model", "at init: median", "trained: median", "trained: range", "learned"});
    std::vector<std::vector<double>> first_before, first_after;  // seed 1's curves, for the figure
    lab::SeedStats ratio_learned, ratio_failed;                   // trained ratios of the seeds that learned, that failed
    for (std::size_t m = 0; m < racers.size(); ++m) {
      lab::SeedStats init_ratio, trained_ratio;
      for (int k = 1; k <= p.seeds; ++k) {
        auto fresh = long_range::make_model(racers[m].kind, Task::adding, lab::derive_seed(args.seed + std::uint64_t(k), 10), racers[m].forget_bias);
        fresh->to(ag::f64);
        const auto before = long_range::gradient_per_position(*fresh, probe_after.eval_set());
        lab::SequenceModel& trained = *after_models[m][std::size_t(k - 1)];
        trained.to(ag::f64);
        const auto after = long_range::gradient_per_position(trained, probe_after.eval_set());
        init_ratio.add(long_range::first_to_last(before));
        trained_ratio.add(long_range::first_to_last(after));
        const bool l = learned(Task::adding, S(Task::adding, p.after_T, racers[m].slug).values[std::size_t(k - 1)]);
        (l ? ratio_learned : ratio_failed).add(trained_ratio.values.back());
        if (k == 1) first_before.push_back(before), first_after.push_back(after);
      }
      t_after.row({racers[m].title, init_ratio.median(), trained_ratio.median(), trained_ratio.range(),
                   std::to_string(n_learned(Task::adding, p.after_T, racers[m].slug)) + " of " + std::to_string(p.seeds)});
    }
    lab::CurveLog trained_log(args.path("grad_trained.csv"), {"rnn_init", "rnn", "lstm_init", "lstm", "gru_init", "gru"}, "t");
    for (int t = 0; t < p.after_T; ++t)
      trained_log.log(t + 1, {first_before[0][t], first_after[0][t], first_before[1][t], first_after[1][t], first_before[2][t], first_after[2][t]});
    std::vector<lab::Series> trained_curves;
    for (std::size_t m = 0; m < racers.size(); ++m) {
      const std::string colour = " lc " + std::to_string(m + 1);
      trained_curves.push_back({.csv = trained_log.path(), .y = racers[m].slug + "_init", .title = racers[m].title + " at init", .x = "t",
                                .style = "lines" + colour, .dash = 2});
      trained_curves.push_back({.csv = trained_log.path(), .y = racers[m].slug, .title = racers[m].title + " trained", .x = "t", .style = "lines" + colour});
    }
    lab::plot(args.path("grad_trained.png"), trained_curves,
              {.title = "Before and after " + std::to_string(p.steps) + " steps on the adding problem (T = " + std::to_string(p.after_T) + ", seed 1 of " +
                            std::to_string(p.seeds) + ")",
               .xlabel = "input position t (the loss is read after t = " + std::to_string(p.after_T) + ")", .ylabel = "||dL/dx_t||", .logy = true,
               .key = "bottom right"});
    std::cout << "\n";
    t_after.print();
    t_after.save_markdown(args.path("report.md"), true);
    chapter.table("after_training", t_after);
    chapter.figure("grad_trained.png");
    {
      std::ostringstream os;
      os << "The " << ratio_learned.size() << " runs that learned the task (of " << racers.size() * std::size_t(p.seeds)
         << ") end with a ratio from " << ratio_learned.range() << "; the " << ratio_failed.size() << " that did not, "
         << (ratio_failed.size() ? "from " + ratio_failed.range() : std::string("none")) << ".";
      chapter.text("after_reading", os.str());
    }

    // ---- 5) The exercises' answers -------------------------------------------------------------
    // 1: one shared learning rate, lesson 05's 0.01, read from the validation grid.
    {
      const auto at = std::find(p.lrs.begin(), p.lrs.end(), 1e-2);
      if (at == p.lrs.end()) ag::fail("the grid must hold lesson 05's learning rate 0.01");
      const std::size_t i01 = std::size_t(at - p.lrs.begin());
      std::ostringstream os;
      os << "On the validation seed at T = " << p.after_T << ", with 0.01 for every model (in brackets: each model's own rate): ";
      for (Task task : tasks) {
        os << (task == Task::recall ? "recall accuracy " : "; adding MSE ");
        for (std::size_t m = 0; m < racers.size(); ++m) {
          const Key key{task, p.after_T, racers[m].slug};
          const auto& grid = at_grid.at(key);
          const std::size_t own = std::size_t(std::find(p.lrs.begin(), p.lrs.end(), chosen.at(key)) - p.lrs.begin());
          os << (m == 0 ? "" : ", ") << racers[m].title << " " << lab::format_number(grid[i01].metric, 3) << " ("
             << lab::format_number(grid[own].metric, 3) << ")";
        }
      }
      os << ".";
      chapter.text("answer_shared_lr", os.str());
    }
    // 2: the GRU's update-gate bias, at initialisation.
    {
      std::ostringstream os;
      for (double b : {1.0, 2.0}) {
        os << (b == 1.0 ? "With a bias of 1: " : "; with a bias of 2: ");
        for (int len : {50, 100, 200}) os << (len == 50 ? "" : ", ") << lab::format_number(long_range::first_to_last(profile(racers[2], len, b)), 2);
      }
      os << " at T = 50, 100, 200 (from " << lab::format_number(ratio50[3], 2) << ", " << lab::format_number(ratio100[3], 2) << ", "
         << lab::format_number(ratio200[3], 2) << " with 0).";
      chapter.text("answer_gru_bias", os.str());
    }
    // 3: the other forget bias in the race: adding at after_T, the same seeds and learning rate.
    std::size_t other_bias_learned = 0;
    {
      const double other_bias = task_forget_bias == 0.0 ? 1.0 : 0.0;
      const Variant v{"lstm_fb" + lr_text(other_bias), "LSTM, forget bias " + lr_text(other_bias), lab::ModelKind::lstm, other_bias};
      const double lr = chosen.at({Task::adding, p.after_T, "lstm"});
      lab::SeedStats s;
      for (int k = 1; k <= p.seeds; ++k)
        s.add(train(v, Task::adding, p.after_T, lr, args.seed + std::uint64_t(k), p,
                    args.path("training/" + run_name(Task::adding, v, p.after_T, "seed" + std::to_string(k)) + ".csv"),
                    "exercise 3: adding, " + v.title + ", T = " + std::to_string(p.after_T) + ", seed " + std::to_string(k))
                  .metric);
      const lab::SeedStats& base = S(Task::adding, p.after_T, "lstm");
      other_bias_learned = s.count([](double m) { return learned(Task::adding, m); });
      lab::Table t_ex("Exercise 3: the LSTM's forget bias on adding, T = " + std::to_string(p.after_T) + ", lr " + lr_text(lr) + ", the race's seeds",
                      {"forget bias", "median MSE", "range", "learned", "each seed"});
      for (const auto& [b, x] : std::vector<std::pair<double, const lab::SeedStats*>>{{task_forget_bias, &base}, {other_bias, &s}})
        t_ex.row({lr_text(b), x->median(), x->range(),
                  std::to_string(x->count([](double m) { return learned(Task::adding, m); })) + " of " + std::to_string(p.seeds), x->all()});
      std::cout << "\n";
      t_ex.print();
      t_ex.save_markdown(args.path("report.md"), true);
      chapter.table("answer_forget_bias", t_ex);
    }

    // The checks of the race: they test what the chapter says, on every reported seed. The quick
    // run (T = 10, 150 steps, 3 seeds) checks the forms that hold there.
    const std::size_t all = std::size_t(p.seeds);
    auto counts = [&](Task task, int len, bool above = false) {
      std::string c;
      for (const Variant& v : racers)
        c += (c.empty() ? "" : ", ") + v.title + " " + std::to_string(above ? n_above(len, v.slug) : n_learned(task, len, v.slug));
      return c + " of " + std::to_string(all);
    };
    auto med = [&](Task task, int len, const std::string& slug) { return lab::format_number(S(task, len, slug).median(), 3); };
    expect(n_above(10, "rnn") == all && n_above(10, "lstm") == all && n_above(10, "gru") == all,
           "recall, T = 10: every model is above chance in every seed (" + counts(Task::recall, 10, true) + ")");
    if (args.quick) {
      expect(n_learned(Task::adding, 10, "gru") == all && n_learned(Task::adding, 10, "rnn") == 0,
             "quick, adding, T = 10 after " + std::to_string(p.steps) + " steps: the GRU learns it in every seed, the tanh RNN in none (" +
                 counts(Task::adding, 10) + ")");
      expect(S(Task::adding, 10, "gru").median() < 0.1 * S(Task::adding, 10, "rnn").median(),
             "quick, adding, T = 10: the GRU's median MSE (" + med(Task::adding, 10, "gru") + ") is < 1/10 of the RNN's (" + med(Task::adding, 10, "rnn") + ")");
      expect(ratio_learned.size() > 0 && ratio_learned.min() > 0.1,
             "every run that learned adding ends with a gradient ratio > 0.1 (" + ratio_learned.range() + ")");
      if (task_forget_bias == 1.0)  // the chapter's setting; --forget-bias 0 turns the exercise around
        expect(other_bias_learned == 0 && n_learned(Task::adding, 10, "lstm") > 0,
             "quick, exercise 3: with a forget bias of " + lr_text(task_forget_bias == 0.0 ? 1.0 : 0.0) + " the LSTM learns adding at T = 10 in no seed (" +
                 std::to_string(other_bias_learned) + " of " + std::to_string(all) + "), with " + lr_text(task_forget_bias) + " in " +
                 std::to_string(n_learned(Task::adding, 10, "lstm")));
    } else {
      expect(n_learned(Task::recall, 10, "lstm") == all && n_learned(Task::recall, 10, "gru") == all && 2 * n_learned(Task::recall, 10, "rnn") > all,
             "recall, T = 10: the gated models are full in every seed, the tanh RNN in most (" + counts(Task::recall, 10) + ")");
      expect(2 * n_learned(Task::adding, 10, "rnn") > all && n_learned(Task::adding, 10, "lstm") == all && n_learned(Task::adding, 10, "gru") == all,
             "adding, T = 10: the gated models learn it in every seed, the tanh RNN in most (" + counts(Task::adding, 10) + ")");
      expect(S(Task::adding, 10, "lstm").median() < 0.1 * S(Task::adding, 10, "rnn").median() &&
                 S(Task::adding, 10, "gru").median() < 0.1 * S(Task::adding, 10, "rnn").median(),
             "adding, T = 10: the gated models' median MSE (LSTM " + med(Task::adding, 10, "lstm") + ", GRU " + med(Task::adding, 10, "gru") +
                 ") is < 1/10 of the RNN's (" + med(Task::adding, 10, "rnn") + ")");
      for (int len : {25, 50})
        expect(n_learned(Task::adding, len, "lstm") == all && n_learned(Task::adding, len, "gru") == all && n_learned(Task::adding, len, "rnn") == 0,
               "adding, T = " + std::to_string(len) + ": both gated models learn it in every seed, the tanh RNN in none (" + counts(Task::adding, len) + ")");
      expect(n_learned(Task::recall, 25, "gru") == all, "recall, T = 25: the GRU is full in every seed (" + counts(Task::recall, 25) + ")");
      expect(S(Task::recall, 25, "lstm").median() < S(Task::recall, 25, "rnn").median() &&
                 S(Task::recall, 50, "lstm").median() < S(Task::recall, 50, "rnn").median(),
             "recall: at T = 25 and 50 the LSTM's median accuracy is below the tanh RNN's (" + med(Task::recall, 25, "lstm") + " < " +
                 med(Task::recall, 25, "rnn") + ", " + med(Task::recall, 50, "lstm") + " < " + med(Task::recall, 50, "rnn") + ")");
      expect(n_learned(Task::recall, 50, "gru") == all && n_learned(Task::recall, 50, "rnn") == 0,
             "recall, T = 50: the GRU is full in every seed, the tanh RNN in none (" + counts(Task::recall, 50) + "; above chance: " +
                 counts(Task::recall, 50, true) + ")");
      expect(n_above(50, "lstm") == 0,
             "recall, T = 50: the LSTM stays at chance in every seed (accuracy " + S(Task::recall, 50, "lstm").range() + ", all < 0.2)");
      {  // exercise 1, read from the validation seed's grid at T = 50
        auto at = [&](Task task, const std::string& slug, double lr) {
          const auto& grid = at_grid.at({task, 50, slug});
          return grid[std::size_t(std::find(p.lrs.begin(), p.lrs.end(), lr) - p.lrs.begin())].metric;
        };
        const double gru01 = at(Task::recall, "gru", 1e-2), rnn01 = at(Task::recall, "rnn", 1e-2);
        const double gru_own = at(Task::recall, "gru", chosen.at({Task::recall, 50, "gru"}));
        expect(gru01 < kRecallAboveChance && gru_own >= kRecallFull && rnn01 > gru01 && at(Task::adding, "lstm", 1e-2) < kAddingLearned &&
                   at(Task::adding, "gru", 1e-2) < kAddingLearned,
               "exercise 1 (validation seed, T = 50): at lr 0.01 the GRU is at chance on recall (" + lab::format_number(gru01, 3) +
                   ", full at its own rate: " + lab::format_number(gru_own, 3) + ") and the tanh RNN ahead (" + lab::format_number(rnn01, 3) +
                   "); on adding both gated models learn at 0.01");
      }
      if (task_forget_bias == 1.0)
        expect(other_bias_learned == all, "exercise 3: with a forget bias of " + lr_text(task_forget_bias == 0.0 ? 1.0 : 0.0) +
                                            " the LSTM still learns adding at T = 50 in every seed (" + std::to_string(other_bias_learned) + " of " +
                                            std::to_string(all) + ")");
      expect(ratio_learned.size() > 0 && ratio_learned.min() > 0.1 && (ratio_failed.size() == 0 || ratio_failed.max() < 1e-3),
             "after training on adding at T = 50, every run that learned has a gradient ratio > 0.1 (" + ratio_learned.range() +
                 "), every run that failed < 1e-3 (" + (ratio_failed.size() ? ratio_failed.range() : std::string("none")) + ")");
    }
    if (full)  // what the chapter reads from the full sweep (lessons/06_gates/full/report.md)
      for (int len : {100, 200}) {
        expect(n_learned(Task::adding, len, "gru") == all && n_learned(Task::adding, len, "lstm") == 0 && n_learned(Task::adding, len, "rnn") == 0,
               "full, adding, T = " + std::to_string(len) + ": the GRU learns it in every seed, the LSTM and the tanh RNN in none (" +
                   counts(Task::adding, len) + ")");
        expect(2 * n_learned(Task::recall, len, "gru") > all && n_learned(Task::recall, len, "gru") < all && n_learned(Task::recall, len, "lstm") == 0 &&
                   n_learned(Task::recall, len, "rnn") == 0,
               "full, recall, T = " + std::to_string(len) + ": the GRU is full in most seeds but not all, the LSTM and the tanh RNN in none (" +
                   counts(Task::recall, len) + ")");
      }
    std::cout << "\nThe key curve: ||dL/dx_t|| at initialisation, log scale\n";
    std::vector<lab::Series> init_terminal = init_curves;  // one character per series there: no dashes to name
    init_terminal.back().title = variants.back().title + " (over the bias-0 LSTM)";
    lab::plot_terminal(init_terminal, po_grad, std::cout, 100, 30);
    if (full) {  // the --full run's report is committed as lessons/06_gates/full/report.md: say what made it
      std::ifstream in(args.path("report.md"));
      std::stringstream body;
      body << in.rdbuf();
      in.close();
      std::ofstream(args.path("report.md"))
          << "# Lesson 06, the full race\n\nWritten by `./lab run 06 --full` (seed " << args.seed << ", SIMD target " << ag::simd_target()
          << "); figures `recall_vs_T.png` and `adding_vs_T.png` from the same run. Not checked by CI (about 20 min of CPU): "
          << "rerun it to reproduce these tables bit for bit on the same target.\n\n"
          << body.str();
    }
    std::string check_lines = "```\n";
    for (const auto& c : claims) check_lines += c + "\n";
    if (full) std::ofstream(args.path("report.md"), std::ios::app) << "\n## Checks\n\n" << check_lines << "```\n";
    chapter.text("checks", check_lines + "```\n");
    return checks.report();
  });
}
