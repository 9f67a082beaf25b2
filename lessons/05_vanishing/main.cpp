// Lesson 05: vanishing and exploding gradients in a tanh RNN.
//
// Shape legend: B batch, T time steps, I input features (2 for adding, 8 for recall), H = 64.
//
//   1) At initialisation: ||dL/dx_t|| for every position t, for recurrent weights W_hh with
//      spectral radius 0.5, 0.9, 1.0, 1.5, 2.0 (nn::scaled_recurrent_) and PyTorch's default
//      init: a family of curves on a log scale, computed in float64.
//   2) After training each of them on the adding problem: the same curves again.
//   3) Gradient clipping on the exploding case (radius 2.0, plain SGD): without it the run
//      diverges; with nn::clip_grad_norm it trains.
//   4) First-token recall and the adding problem at T = 10, 50, 100: the RNN fails as T grows.
#include <cmath>
#include <iostream>
#include <limits>
#include <sstream>

#include "common/long_range.hpp"

using long_range::Task;

namespace {

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

// One training run of a plain-SGD tanh RNN on the adding problem, with or without clipping.
// Logs step, the gradient norm before clipping, after clipping, and the training loss; stops
// logging at the first non-finite loss. Returns the step it diverged at (0 if it never did).
std::int64_t sgd_run(double scale, double max_norm, std::int64_t steps, std::uint64_t seed, const std::filesystem::path& csv) {
  auto model = long_range::make_model(lab::ModelKind::tanh_rnn, Task::adding, lab::derive_seed(seed, 10), 1.0, scale);
  lab::AddingTask task({.T = 50, .batch_size = 32, .seed = seed});
  nn::SGD opt(model->parameters(), {.lr = 0.1});
  lab::CurveLog log(csv, {"norm_before", "norm_after", "loss"});
  for (std::int64_t step = 1; step <= steps; ++step) {
    const lab::AddingBatch b = task.next_batch();
    opt.zero_grad();
    const ag::Tensor loss = ag::mse_loss((*model)(b.inputs), b.targets);
    if (!std::isfinite(loss.item())) return step;
    loss.backward();
    const double before = nn::clip_grad_norm(model->parameters(), max_norm);  // returns the norm before clipping
    if (!std::isfinite(before)) return step;
    const double after = nn::clip_grad_norm(model->parameters(), std::numeric_limits<double>::infinity());  // measures only
    log.log(double(step), {before, after, loss.item()});
    opt.step();
  }
  return 0;
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

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("05_vanishing", "vanishing and exploding gradients in a tanh RNN; clipping; recall and adding fail as T grows");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const std::vector<double> scales{-1.0, 0.5, 0.9, 1.0, 1.5, 2.0};  // -1 = PyTorch's default init
    const std::uint64_t init_seed = lab::derive_seed(args.seed, 10);
    std::cout << "Lesson 05: the gradient reaching each input of a tanh RNN (H = 64), float64\n\n";

    // ---- 1) ||dL/dx_t|| at initialisation, T = 100 -------------------------------------------
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
    lab::plot(args.path("grad_init.png"), init_curves, po_grad);

    // The key fact at T = 50, and float32 against float64.
    auto ratio_at = [&](double scale, int len, ag::Dtype dt) {
      lab::AddingTask task({.T = len, .seed = args.seed, .eval_size = 64});
      auto model = long_range::make_model(lab::ModelKind::tanh_rnn, Task::adding, init_seed, 1.0, scale);
      model->to(dt);
      return long_range::first_to_last(long_range::gradient_per_position(*model, task.eval_set()));
    };
    lab::Table t_init("||dL/dx_1|| / ||dL/dx_T|| at initialisation (float64)", {"W_hh", "T = 50", "T = 100"});
    for (std::size_t i = 0; i < scales.size(); ++i)
      t_init.row({scale_title(scales[i]), ratio_at(scales[i], 50, ag::f64), long_range::first_to_last(init_norm[i])});
    t_init.print();
    t_init.save_markdown(args.path("report.md"));
    const double key = ratio_at(0.5, 50, ag::f64);
    checks.expect(key < 1e-3, "at init with weight scale 0.5, ||dL/dx_1|| / ||dL/dx_T|| = " + lab::format_number(key) +
                                  " < 1e-3 for T = 50");
    const double exploding = ratio_at(2.0, 50, ag::f64);
    checks.expect(exploding > 1, "at init with weight scale 2.0 the gradient grows going back: ratio " +
                                     lab::format_number(exploding) + " > 1 for T = 50");

    lab::Table t_prec("Why float64: the same ratio (radius 0.5) in float32 and float64", {"T", "float32", "float64"});
    double f32_at_200 = 1, f64_at_200 = 0;
    for (int len : {50, 100, 150, 200}) {
      const double r32 = ratio_at(0.5, len, ag::f32), r64 = ratio_at(0.5, len, ag::f64);
      t_prec.row({len, r32, r64});
      if (len == 200) f32_at_200 = r32, f64_at_200 = r64;
    }
    std::cout << "\n";
    t_prec.print();
    t_prec.save_markdown(args.path("report.md"), true);
    checks.expect(f32_at_200 == 0 && f64_at_200 > 0, "in float32 the ratio at T = 200 underflows to exactly 0; float64 keeps it (" +
                                                         lab::format_number(f64_at_200) + ")");

    // ---- 2) The same curves after training on the adding problem, T = 100 ----------------------
    const std::int64_t steps = args.steps_or(800, 60);
    std::cout << "\nTraining each initialisation on the adding problem, T = " << T << ", " << steps << " steps\n";
    std::vector<std::vector<double>> trained_norm;
    lab::Table t_trained("After training on adding, T = 100 (" + std::to_string(steps) + " steps)",
                         {"W_hh at init", "eval MSE", "ratio at init", "ratio after training"});
    for (std::size_t i = 0; i < scales.size(); ++i) {
      const long_range::RunOptions ro{.task = Task::adding, .T = T, .steps = steps, .eval_size = args.quick ? 200 : 1000,
                                      .seed = args.seed, .recurrent_scale = scales[i]};
      long_range::RunResult run = train_run(ro, args.path("train_adding_" + scale_label(scales[i]) + ".csv"), scale_label(scales[i]));
      run.model->to(ag::f64);
      trained_norm.push_back(long_range::gradient_per_position(*run.model, probe));
      t_trained.row({scale_title(scales[i]), run.final_metric, long_range::first_to_last(init_norm[i]),
                     long_range::first_to_last(trained_norm.back())});
    }
    const auto trained_csv = long_range::write_profiles(args.path("grad_trained.csv"), cols, trained_norm);
    std::vector<lab::Series> trained_curves;
    for (double s : scales)
      trained_curves.push_back({.csv = trained_csv, .y = scale_label(s), .title = "init: " + scale_title(s), .x = "t"});
    lab::PlotOptions po_trained = po_grad;
    po_trained.title = "The same RNNs after " + std::to_string(steps) + " steps on the adding problem (T = 100)";
    po_trained.ymin = lab::kMissing, po_trained.ymax = 1e40;  // trained, some fall below 1e-35; room for the legend
    lab::plot(args.path("grad_trained.png"), trained_curves, po_trained);
    std::cout << "\n";
    t_trained.print();
    t_trained.save_markdown(args.path("report.md"), true);

    // ---- 3) Clipping the exploding case --------------------------------------------------------
    const std::int64_t clip_steps = args.steps_or(300, 100);
    const double max_norm = 1.0;
    std::cout << "\nPlain SGD (lr 0.1) on adding, T = 50, W_hh with spectral radius 2.0: without and with clipping\n";
    const std::int64_t diverged = sgd_run(2.0, 1e300, clip_steps, args.seed, args.path("clip_off.csv"));
    const std::int64_t diverged_clipped = sgd_run(2.0, max_norm, clip_steps, args.seed, args.path("clip_on.csv"));
    const std::vector<lab::Series> clip_norms{
        {.csv = args.path("clip_off.csv"), .y = "norm_before", .title = "no clipping: gradient norm"},
        {.csv = args.path("clip_on.csv"), .y = "norm_before", .title = "clipping: norm before clip_grad_norm"},
        {.csv = args.path("clip_on.csv"), .y = "norm_after", .title = "clipping: norm after (max_norm = 1)"}};
    lab::plot(args.path("clipping.png"), clip_norms,
              {.title = "Exploding gradients (radius 2.0, SGD lr 0.1) with and without clipping",
               .ylabel = "gradient norm (all parameters)", .logy = true, .ymin = 0.1, .ymax = 1e30});
    const std::vector<lab::Series> clip_loss{
        {.csv = args.path("clip_off.csv"), .y = "loss", .title = "no clipping"},
        {.csv = args.path("clip_on.csv"), .y = "loss", .title = "clipping at 1.0"}};
    lab::plot(args.path("clipping_loss.png"), clip_loss,
              {.title = "Training loss, adding problem T = 50", .ylabel = "MSE", .logy = true,
               .hlines = {{lab::AddingTask::kBaselineMSE, "predict 1.0 (0.167)"}}});
    lab::Table t_clip("Clipping (SGD lr 0.1, radius 2.0)", {"run", "diverged at step", "steps run"});
    t_clip.row({"no clipping", diverged ? std::to_string(diverged) : "never", clip_steps});
    t_clip.row({"clip_grad_norm(1.0)", diverged_clipped ? std::to_string(diverged_clipped) : "never", clip_steps});
    t_clip.print();
    t_clip.save_markdown(args.path("report.md"), true);
    checks.expect(diverged > 0, "without clipping, SGD on the exploding RNN diverges (non-finite loss at step " +
                                    std::to_string(diverged) + ")");
    checks.expect(diverged_clipped == 0, "with clip_grad_norm(1.0) the same run stays finite for all " +
                                             std::to_string(clip_steps) + " steps");

    // ---- 4) Recall and adding at T = 10, 50, 100 (PyTorch's default init) ----------------------
    const std::int64_t task_steps = args.steps_or(800, 150);
    std::cout << "\nThe tanh RNN on both tasks, " << task_steps << " steps each (Adam 1e-2, B = 32, clip 1.0)\n";
    lab::Table t_tasks("tanh RNN after " + std::to_string(task_steps) + " steps", {"task", "T", "held-out", "chance / baseline"});
    std::vector<lab::Series> recall_curves, adding_curves;
    double recall_acc_10 = 0, recall_acc_100 = 1, adding_mse_100 = 0;
    std::shared_ptr<lab::SequenceModel> recall_100;
    for (Task task : {Task::recall, Task::adding}) {
      for (int len : {10, 50, 100}) {
        const std::string name = std::string(long_range::task_name(task)) + "_T" + std::to_string(len);
        const long_range::RunOptions ro{.task = task, .T = len, .steps = task_steps, .eval_size = args.quick ? 200 : 1000,
                                        .seed = args.seed};
        long_range::RunResult run = train_run(ro, args.path(name + ".csv"), name);
        if (task == Task::recall && len == 100) recall_100 = run.model;
        const lab::Series curve{.csv = args.path(name + ".csv"), .y = "eval", .title = "T = " + std::to_string(len)};
        (task == Task::recall ? recall_curves : adding_curves).push_back(curve);
        t_tasks.row({long_range::task_name(task), len, run.final_metric, task == Task::recall ? 0.125 : lab::AddingTask::kBaselineMSE});
        if (task == Task::recall && len == 10) recall_acc_10 = run.final_metric;
        if (task == Task::recall && len == 100) recall_acc_100 = run.final_metric;
        if (task == Task::adding && len == 100) adding_mse_100 = run.final_metric;
      }
    }
    lab::plot(args.path("recall.png"), recall_curves,
              {.title = "tanh RNN, first-token recall", .ylabel = "held-out accuracy", .ymin = 0, .ymax = 1.25,
               .hlines = {{0.125, "chance (1/8)"}}});
    lab::plot(args.path("adding.png"), adding_curves,
              {.title = "tanh RNN, adding problem", .ylabel = "held-out MSE", .logy = true,
               .hlines = {{lab::AddingTask::kBaselineMSE, "predict 1.0 (0.167)"}}});
    std::cout << "\n";
    t_tasks.print();
    t_tasks.save_markdown(args.path("report.md"), true);

    // Which inputs does the RNN trained on recall at T = 100 use? Change one position's token in
    // every held-out sequence and measure again.
    lab::RecallTask recall_eval({.T = 100, .seed = args.seed, .eval_size = args.quick ? 200 : 1000});
    const lab::RecallBatch& ev = recall_eval.eval_set();
    lab::Table t_latch("The RNN trained on recall, T = 100: accuracy with one input token changed",
                       {"token changed", "held-out accuracy"});
    t_latch.row({"none", long_range::recall_accuracy(*recall_100, ev.one_hot, ev.targets)});
    for (std::size_t p : {0, 1, 9, 49, 99})
      t_latch.row({"x_" + std::to_string(p + 1), long_range::recall_accuracy(*recall_100, change_token(ev.one_hot, p), ev.targets)});
    std::cout << "\n";
    t_latch.print();
    t_latch.save_markdown(args.path("report.md"), true);

    checks.expect(recall_acc_10 - recall_acc_100 > 0.3,
                  "recall fails as T grows: accuracy " + lab::format_number(recall_acc_10) + " at T = 10, " +
                      lab::format_number(recall_acc_100) + " at T = 100");
    checks.expect(adding_mse_100 > 0.12, "adding at T = 100 stays near the 0.167 baseline (MSE " +
                                             lab::format_number(adding_mse_100) + ")");

    std::cout << "\nThe key curve: ||dL/dx_t|| at initialisation, log scale\n";
    lab::plot_terminal(init_curves, po_grad, std::cout, 100, 30);
    return checks.report();
  });
}
