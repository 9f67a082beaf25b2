// Lesson 06: gates. The LSTM and the GRU measured exactly as lesson 05 measured the tanh RNN.
//
// Shape legend: B batch, T time steps, I input features (2 for adding, 8 for recall), H = 64.
//
//   1) ||dL/dx_t|| at initialisation, T = 200, float64: tanh RNN, LSTM with forget-gate bias 0
//      (PyTorch's default) and 1 (Gers et al. 2000), GRU.
//   2) Through the cell state: ||dL/dc_t|| of the LSTM next to the gradient that flows only
//      along c_{t-1} -> c_t, multiplied by the forget gate at every step.
//   3) First-token recall and the adding problem at T = 10, 50, 100 for the three models, with
//      the same budget: where each one stops learning.
//   4) The gradient curves again, after training on the adding problem.
#include <cmath>
#include <iostream>

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

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("06_gates", "LSTM and GRU against the tanh RNN: gradient flow, the forget-gate bias, how far each reaches");
  double task_forget_bias = 1.0;
  cli.app().add_option("--forget-bias", task_forget_bias, "initial forget-gate bias of the LSTM trained in part 3")
      ->check(CLI::Range(-10.0, 10.0));
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const std::uint64_t init_seed = lab::derive_seed(args.seed, 10);
    const std::vector<Variant> variants{{"rnn", "tanh RNN", lab::ModelKind::tanh_rnn, 0.0},
                                        {"lstm_fb0", "LSTM, forget bias 0", lab::ModelKind::lstm, 0.0},
                                        {"lstm_fb1", "LSTM, forget bias 1", lab::ModelKind::lstm, 1.0},
                                        {"gru", "GRU", lab::ModelKind::gru, 0.0}};
    std::cout << "Lesson 06: gates. The gradient reaching each input (H = 64, float64)\n\n";

    // ---- 1) ||dL/dx_t|| at initialisation ------------------------------------------------------
    auto profile = [&](const Variant& v, int len) {
      lab::AddingTask probe({.T = len, .seed = args.seed, .eval_size = 64});
      auto model = long_range::make_model(v.kind, Task::adding, init_seed, v.forget_bias);
      model->to(ag::f64);
      return long_range::gradient_per_position(*model, probe.eval_set());
    };
    const int T = 200;
    std::vector<std::vector<double>> init_norm;
    lab::Table t_init("||dL/dx_1|| / ||dL/dx_T|| at initialisation (float64), and the reach",
                      {"model", "T = 50", "T = 100", "T = 200", "reach (steps)"});
    std::vector<std::string> cols;
    std::vector<double> ratio50;
    for (const Variant& v : variants) {
      init_norm.push_back(profile(v, T));
      ratio50.push_back(long_range::first_to_last(profile(v, 50)));
      t_init.row({v.title, ratio50.back(), long_range::first_to_last(profile(v, 100)),
                  long_range::first_to_last(init_norm.back()), reach(init_norm.back())});
      cols.push_back(v.slug);
    }
    const auto init_csv = long_range::write_profiles(args.path("grad_init.csv"), cols, init_norm);
    std::vector<lab::Series> init_curves;
    for (const Variant& v : variants) init_curves.push_back({.csv = init_csv, .y = v.slug, .title = v.title, .x = "t"});
    const lab::PlotOptions po_grad{.title = "Gradient reaching each input at initialisation (T = 200)",
                                   .xlabel = "input position t (the loss is read after t = 200)",
                                   .ylabel = "||dL/dx_t||", .logy = true, .ymax = 1e15};
    lab::plot(args.path("grad_init.png"), init_curves, po_grad);
    t_init.print();
    t_init.save_markdown(args.path("report.md"));
    const double rnn50 = ratio50[0], fb0_50 = ratio50[1], fb1_50 = ratio50[2];
    checks.expect(fb0_50 < 1e-6 && rnn50 < 1e-6, "forget bias 0: the LSTM's ratio at T = 50 (" + lab::format_number(fb0_50) +
                                                     ") is as tiny as the tanh RNN's (" + lab::format_number(rnn50) + "), both < 1e-6");
    checks.expect(fb1_50 > 1e3 * fb0_50, "forget bias 1 reaches further: ratio " + lab::format_number(fb1_50) +
                                             " at T = 50, > 1000 x the bias-0 LSTM's");
    const double gru100 = long_range::first_to_last(profile(variants[3], 100)), rnn100 = long_range::first_to_last(profile(variants[0], 100));
    checks.expect(gru100 > 1e3 * rnn100, "the GRU reaches further than the tanh RNN: ratio " + lab::format_number(gru100) +
                                             " at T = 100, > 1000 x the RNN's (" + lab::format_number(rnn100) + ")");
    const double fb1_200 = long_range::first_to_last(init_norm[2]);
    checks.expect(fb1_200 < 1e-6, "but it still vanishes at long T: forget bias 1, T = 200, ratio " +
                                      lab::format_number(fb1_200) + " < 1e-6");

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
                             .style = "lines dt 2" + colour});
    }
    lab::plot(args.path("cell_state.png"), cell_curves,
              {.title = "LSTM at initialisation: the gradient on the cell state, by forget-gate bias (T = 100)",
               .xlabel = "position t (the loss is read after t = 100)", .ylabel = "||dL/dc_t||", .logy = true, .ymin = 1e-32, .ymax = 1e30, .height = 600});
    // Per-step factor: (||dL/dc_1|| / ||dL/dc_T||)^(1/(T-1)), the geometric mean shrinkage per step.
    auto per_step = [&](const std::vector<double>& n) { return std::pow(n.front() / n.back(), 1.0 / double(n.size() - 1)); };
    lab::Table t_cell("The LSTM's cell state at initialisation, T = 100",
                      {"forget bias", "mean f_t", "sigmoid(bias)", "per step: dL/dc", "per step: along c alone", "dL/dc_1 / dL/dc_T"});
    bool near_sigmoid = true, path_is_f = true, grows = true;
    for (std::size_t i = 0; i < biases.size(); ++i) {
      const CellTrace& tr = traces[i];
      const double sig = 1.0 / (1.0 + std::exp(-biases[i]));
      t_cell.row({biases[i], tr.forget_mean, sig, per_step(tr.dc), per_step(tr.path), tr.dc.front() / tr.dc.back()});
      near_sigmoid = near_sigmoid && std::abs(tr.forget_mean - sig) < 0.05;
      path_is_f = path_is_f && std::abs(per_step(tr.path) - tr.forget_mean) < 0.05;
      if (i > 0) grows = grows && tr.dc.front() / tr.dc.back() > traces[i - 1].dc.front() / traces[i - 1].dc.back();
    }
    std::cout << "\n";
    t_cell.print();
    t_cell.save_markdown(args.path("report.md"), true);
    checks.expect(near_sigmoid, "at init the forget gate sits near sigmoid(bias): mean f = " + lab::format_number(traces[0].forget_mean) +
                                    " for bias 0, " + lab::format_number(traces[1].forget_mean) + " for bias 1");
    checks.expect(path_is_f, "along the cell state alone the gradient shrinks by the forget gate each step (per-step factor within 0.05 of mean f)");
    checks.expect(grows, "the gradient reaching c_1 grows with the forget bias: 0 < 1 < 2 < 3");

    // ---- 3) The tasks at T = 10, 50, 100 -------------------------------------------------------
    const std::int64_t steps = args.steps_or(800, 60);
    const std::vector<int> lengths{10, 50, 100};
    const std::vector<Variant> trained{{"rnn", "tanh RNN", lab::ModelKind::tanh_rnn, 0.0},
                                       {"lstm", "LSTM", lab::ModelKind::lstm, task_forget_bias},
                                       {"gru", "GRU", lab::ModelKind::gru, 0.0}};
    std::cout << "\nTraining on both tasks, " << steps << " steps each (Adam 1e-2, B = 32, clip 1.0), LSTM forget bias "
              << task_forget_bias << "\n";
    lab::Table t_tasks("Held-out after " + std::to_string(steps) + " steps", {"task", "T", "tanh RNN", "LSTM", "GRU", "chance / baseline"});
    std::vector<std::shared_ptr<lab::SequenceModel>> adding_models;  // trained on adding, T = 100
    for (Task task : {Task::recall, Task::adding}) {
      const std::string tname = long_range::task_name(task);
      lab::CurveLog vs_T(args.path(tname + "_vs_T.csv"), {"rnn", "lstm", "gru"}, "T");
      for (int len : lengths) {
        std::vector<double> finals;
        for (const Variant& v : trained) {
          const std::string name = tname + "_" + v.slug + "_T" + std::to_string(len);
          const long_range::RunOptions ro{.kind = v.kind, .task = task, .T = len, .steps = steps, .eval_every = 100,
                                          .eval_size = args.quick ? 200 : 1000, .seed = args.seed, .forget_bias = v.forget_bias};
          long_range::RunResult run = long_range::train_run(ro, args.path(name + ".csv"), name);
          finals.push_back(run.final_metric);
          if (task == Task::adding && len == lengths.back()) adding_models.push_back(run.model);
        }
        vs_T.log(len, finals);
        t_tasks.row({tname, len, finals[0], finals[1], finals[2], task == Task::recall ? 0.125 : lab::AddingTask::kBaselineMSE});
      }
    }
    std::vector<lab::Series> recall_vs_T, adding_vs_T;
    for (const Variant& v : trained) {
      recall_vs_T.push_back({.csv = args.path("recall_vs_T.csv"), .y = v.slug, .title = v.title, .x = "T", .style = "linespoints"});
      adding_vs_T.push_back({.csv = args.path("adding_vs_T.csv"), .y = v.slug, .title = v.title, .x = "T", .style = "linespoints"});
    }
    lab::plot(args.path("recall_vs_T.png"), recall_vs_T,
              {.title = "First-token recall after " + std::to_string(steps) + " steps", .xlabel = "sequence length T",
               .ylabel = "held-out accuracy", .ymin = 0, .ymax = 1.3, .hlines = {{0.125, "chance (1/8)"}}});
    lab::plot(args.path("adding_vs_T.png"), adding_vs_T,
              {.title = "Adding problem after " + std::to_string(steps) + " steps", .xlabel = "sequence length T",
               .ylabel = "held-out MSE", .logy = true, .ymax = 10, .hlines = {{lab::AddingTask::kBaselineMSE, "predict 1.0 (0.167)"}}});
    std::cout << "\n";
    t_tasks.print();
    t_tasks.save_markdown(args.path("report.md"), true);

    // ---- 4) After training: the gradient curves of the models trained on adding, T = 100 -------
    lab::AddingTask probe100({.T = 100, .seed = args.seed, .eval_size = 64});
    lab::CurveLog trained_log(args.path("grad_trained.csv"), {"rnn_init", "rnn", "lstm_init", "lstm", "gru_init", "gru"}, "t");
    std::vector<std::vector<double>> before, after;
    lab::Table t_after("After training on adding, T = 100", {"model", "ratio at init", "ratio trained", "reach at init", "reach trained"});
    double forget_at_init = 0;
    for (std::size_t i = 0; i < trained.size(); ++i) {
      auto fresh = long_range::make_model(trained[i].kind, Task::adding, init_seed, trained[i].forget_bias);
      fresh->to(ag::f64);
      before.push_back(long_range::gradient_per_position(*fresh, probe100.eval_set()));
      if (trained[i].kind == lab::ModelKind::lstm) forget_at_init = trace_cell_state(*fresh, probe100.eval_set()).forget_mean;
      adding_models[i]->to(ag::f64);
      after.push_back(long_range::gradient_per_position(*adding_models[i], probe100.eval_set()));
      t_after.row({trained[i].title, long_range::first_to_last(before.back()), long_range::first_to_last(after.back()),
                   reach(before.back()), reach(after.back())});
    }
    for (int t = 0; t < 100; ++t)
      trained_log.log(t + 1, {before[0][t], after[0][t], before[1][t], after[1][t], before[2][t], after[2][t]});
    std::vector<lab::Series> trained_curves;
    for (std::size_t i = 0; i < trained.size(); ++i) {
      const Variant& v = trained[i];
      const std::string colour = " lc " + std::to_string(i + 1);
      trained_curves.push_back({.csv = trained_log.path(), .y = v.slug + "_init", .title = v.title + " at init", .x = "t",
                                .style = "lines dt 2" + colour});
      trained_curves.push_back({.csv = trained_log.path(), .y = v.slug, .title = v.title + " trained", .x = "t", .style = "lines" + colour});
    }
    lab::plot(args.path("grad_trained.png"), trained_curves,
              {.title = "Before and after " + std::to_string(steps) + " steps on the adding problem (T = 100)",
               .xlabel = "input position t (the loss is read after t = 100)", .ylabel = "||dL/dx_t||", .logy = true, .ymax = 1e25});
    const CellTrace trained_cell = trace_cell_state(*adding_models[1], probe100.eval_set());
    std::cout << "\n";
    t_after.print();
    t_after.save_markdown(args.path("report.md"), true);
    std::cout << "trained LSTM: mean forget gate " << lab::format_number(trained_cell.forget_mean) << " (at init "
              << lab::format_number(forget_at_init) << ")\n";

    std::cout << "\nThe key curve: ||dL/dx_t|| at initialisation, log scale\n";
    lab::plot_terminal(init_curves, po_grad, std::cout, 100, 30);
    return checks.report();
  });
}
