#pragma once
// The measurements lessons 05 (tanh RNN), 06 (LSTM, GRU) and 12 (the showdown) share, so that
// all make exactly the same ones:
//   norm_per_position()      ||dL/dx_t|| for every input position t: how much of the loss's
//                            gradient reaches each input, the quantity that vanishes or explodes
//   evaluate()               the held-out metric: MSE (adding) or accuracy (recall)
//   train_run()              a model trained on the adding problem or first-token recall, with
//                            the held-out metric logged to CSV as it goes (05 and 06)
//
// Shape legend: B batch, T time steps, I input features (2 for adding, V = 8 for recall),
// H hidden units (64).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/init.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace long_range {

constexpr std::size_t kHidden = 64;

enum class Task { adding, recall };
inline const char* task_name(Task t) { return t == Task::adding ? "adding" : "recall"; }

// A recurrent SequenceModel for a task: I = 2, one output (adding) or I = V = 8, 8 logits (recall).
// recurrent_scale < 0 keeps PyTorch's init, U(-1/sqrt(H), 1/sqrt(H)), for weight_hh; otherwise
// weight_hh is set by nn::scaled_recurrent_ to orthogonal blocks times recurrent_scale, so the
// spectral radius of each block is exactly recurrent_scale.
// attention and window: the Transformer kinds' (lab::SequenceModelOptions).
inline std::shared_ptr<lab::SequenceModel> make_model(lab::ModelKind kind, Task task, std::uint64_t seed,
                                                      double forget_bias = 1.0, double recurrent_scale = -1.0,
                                                      nn::AttentionImpl attention = nn::AttentionImpl::naive, std::size_t window = 32) {
  ag::Generator gen(seed);
  const bool recall = task == Task::recall;
  auto model = std::make_shared<lab::SequenceModel>(
      lab::SequenceModelOptions{.kind = kind, .input_dim = recall ? 8u : 2u, .hidden = kHidden,
                                .output_dim = recall ? 8u : 1u, .forget_bias = forget_bias, .attention = attention,
                                .window = window},
      gen);
  if (recurrent_scale >= 0) nn::scaled_recurrent_(model->rnn->weight_hh[0], gen, recurrent_scale);
  return model;
}

// ||dL/dx_t||, t = 1..T, from the gradient dL/dx [B, T, I]: the norm over the batch and the
// features at each t.
inline std::vector<double> norm_per_position(const ag::Tensor& g) {
  const std::size_t B = g.size(0), T = g.size(1), I = g.size(2);
  const std::vector<double> v = g.to_vector();
  std::vector<double> norm(T, 0.0);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t i = 0; i < I; ++i) norm[t] += v[(b * T + t) * I + i] * v[(b * T + t) * I + i];
  for (double& n : norm) n = std::sqrt(n);
  return norm;
}

// ||dL/dx_t||, t = 1..T, for the adding problem's MSE on `batch`: x is made a leaf that requires
// grad and backward() fills x.grad [B, T, 2]. The model runs in its own dtype: convert it with
// model.to(ag::f64) first, because these norms span dozens of decades and float32 runs out of
// exponent (see the README).
inline std::vector<double> gradient_per_position(lab::SequenceModel& model, const lab::AddingBatch& batch) {
  const ag::Dtype dt = model.dtype();
  ag::Tensor x = ag::Tensor::from(batch.inputs.array().to(dt), /*requires_grad=*/true);
  model.zero_grad();
  ag::mse_loss(model(x), batch.targets.to(dt)).backward();
  return norm_per_position(x.grad());
}

// How far back the gradient reaches: the ratio ||dL/dx_1|| / ||dL/dx_T||.
inline double first_to_last(const std::vector<double>& norm) { return norm.front() / norm.back(); }

// Writes per-position profiles (one column each, rows t = 1..T) to a CSV and returns its path.
inline std::filesystem::path write_profiles(const std::filesystem::path& csv, const std::vector<std::string>& columns,
                                            const std::vector<std::vector<double>>& profiles) {
  lab::CurveLog log(csv, columns, "t");
  for (std::size_t t = 0; t < profiles.front().size(); ++t) {
    std::vector<double> row;
    for (const auto& p : profiles) row.push_back(p[t]);
    log.log(double(t + 1), row);
  }
  return log.path();
}

// ---- training ------------------------------------------------------------------------------

struct RunOptions {
  lab::ModelKind kind = lab::ModelKind::tanh_rnn;
  Task task = Task::adding;
  int T = 50;
  std::int64_t steps = 800;
  int batch = 32;
  double lr = 1e-2;         // Adam
  double clip = 1.0;        // max gradient norm (nn::clip_grad_norm), every step
  int eval_every = 50;
  int eval_size = 1000;     // held-out sequences
  std::uint64_t seed = 0;   // data (the task's training stream and held-out set) and init
  double forget_bias = 1.0;
  double recurrent_scale = -1.0;
  nn::AttentionImpl attention = nn::AttentionImpl::naive;  // ModelKind::transformer's
  std::size_t window = 32;                                 // the window kinds'
  bool progress = true;     // false: no progress bar (a sweep of many short runs prints one line per run itself)
};

struct RunResult {
  std::shared_ptr<lab::SequenceModel> model;
  double final_metric = 0;  // held-out MSE (adding) or accuracy (recall) after the last step
  double best_metric = 0;   // the best held-out value seen during the run
  double seconds = 0;
};

// Recall accuracy: the most likely of the V = 8 logits against the first token.
// one_hot: [N, T, 8], targets: N ids.
inline double recall_accuracy(lab::SequenceModel& model, const ag::Tensor& one_hot, const ag::Indices& targets) {
  ag::NoGrad no_graph;
  return double(lab::count_correct(model(one_hot), targets)) / double(targets.size());
}

// Held-out metric on the task's fixed evaluation set (1000 sequences by default): MSE for the
// adding problem (predicting 1.0 scores 0.167), accuracy for recall (chance 0.125). `forward`
// maps inputs [n, T, I] to outputs [n, 1] (adding) or logits [n, 8] (recall), e.g. a
// SequenceModel. It sees 100 sequences at a time: attention over 1,000 sequences of T = 200 at
// once would hold [1000, H, 200, 200] weights.
template <class Forward>
double evaluate(Forward&& forward, Task task, const lab::AddingTask& adding, const lab::RecallTask& recall) {
  ag::NoGrad no_graph;
  constexpr std::size_t kChunk = 100;
  const std::size_t n = task == Task::adding ? adding.eval_set().size() : recall.eval_set().size();
  double total = 0;  // adding: the sum of squared errors; recall: the number right
  for (std::size_t lo = 0; lo < n; lo += kChunk) {
    const auto a = std::int64_t(lo), b = std::int64_t(std::min(n, lo + kChunk));
    if (task == Task::adding) {
      const auto& e = adding.eval_set();
      total += ag::mse_loss(forward(ag::slice(e.inputs, 0, a, b)), ag::slice(e.targets, 0, a, b), ag::Reduction::sum).item();
    } else {
      const auto& e = recall.eval_set();
      const ag::Indices targets(std::vector<std::int64_t>(e.targets.values.begin() + a, e.targets.values.begin() + b));
      total += double(lab::count_correct(forward(ag::slice(e.one_hot, 0, a, b)), targets));
    }
  }
  return total / double(n);
}

// Trains a fresh model (Adam, gradient clipping) and logs step,eval to csv every
// eval_every steps. Every run with the same seed sees the same batches and the same held-out set.
inline RunResult train_run(const RunOptions& o, const std::filesystem::path& csv, const std::string& label) {
  const auto start = std::chrono::steady_clock::now();
  RunResult r;
  r.model = make_model(o.kind, o.task, lab::derive_seed(o.seed, 10), o.forget_bias, o.recurrent_scale, o.attention, o.window);
  const int adding_eval = o.task == Task::adding ? o.eval_size : 1, recall_eval = o.task == Task::recall ? o.eval_size : 1;
  lab::AddingTask adding({.T = o.T, .batch_size = o.batch, .seed = o.seed, .eval_size = adding_eval});
  lab::RecallTask recall({.T = o.T, .batch_size = o.batch, .seed = o.seed, .eval_size = recall_eval});
  nn::Adam opt(r.model->parameters(), {.lr = o.lr});
  lab::CurveLog log(csv, {"eval"});
  const bool higher_is_better = o.task == Task::recall;
  r.best_metric = r.final_metric = evaluate(*r.model, o.task, adding, recall);
  log.log(0, {r.final_metric});
  std::optional<lab::Progress> bar;
  if (o.progress) bar.emplace(o.steps, label);
  for (std::int64_t step = 1; step <= o.steps; ++step) {
    opt.zero_grad();
    ag::Tensor loss;
    if (o.task == Task::adding) {
      const lab::AddingBatch b = adding.next_batch();
      loss = ag::mse_loss((*r.model)(b.inputs), b.targets);
    } else {
      const lab::RecallBatch b = recall.next_batch();
      loss = ag::cross_entropy((*r.model)(b.one_hot), b.targets);
    }
    loss.backward();
    nn::clip_grad_norm(r.model->parameters(), o.clip);
    opt.step();
    if (step % o.eval_every == 0 || step == o.steps) {
      r.final_metric = evaluate(*r.model, o.task, adding, recall);
      r.best_metric = higher_is_better ? std::max(r.best_metric, r.final_metric) : std::min(r.best_metric, r.final_metric);
      log.log(double(step), {r.final_metric});
    }
    if (bar) bar->update(step, {{"loss", loss.item()}, {higher_is_better ? "acc" : "mse", r.final_metric}});
  }
  if (bar) bar->finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace long_range
