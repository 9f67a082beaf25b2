#pragma once
// Optimizers, gradient clipping and learning-rate schedules, with PyTorch's names, defaults and
// update rules (torch.optim.SGD / Adam / AdamW, torch.nn.utils.clip_grad_norm_), so a training
// loop reads the same in both:
//
//   nn::AdamW opt(model.parameters(), {.lr = 3e-4, .weight_decay = 0.1});
//   for (...) {
//     opt.zero_grad();
//     auto loss = ...;
//     loss.backward();
//     nn::clip_grad_norm(model.parameters(), 1.0);
//     opt.set_lr(schedule.lr(opt.steps() + 1));  // the step about to be taken, counting from 1
//     opt.step();
//   }
//
// Per-parameter state (momentum buffer; Adam's m and v) is allocated on the first step that
// parameter has a gradient, with the parameter's dtype. A parameter without a gradient is
// skipped (its state and its step count do not advance), as in PyTorch.
//
// state_dict() / load_state_dict() give that state under PyTorch's names, flattened the way
// torch.optim.Optimizer.state_dict()["state"] nests them: "state.<i>.<key>", i the parameter's
// index in parameters(), key exp_avg, exp_avg_sq, step (Adam, AdamW) or momentum_buffer (SGD).
// hyperparameters() gives the param_groups entries (lr, betas, ...) as text. Whole training runs
// are saved and resumed with nn::save_training_state (checkpoint.hpp).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ag/tensor.hpp"

namespace nn {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient. Errors (nothing is updated then): a
  // parameter that does not require grad, or whose gradient's shape or dtype differs from its data.
  void step();
  // Drops every parameter's gradient (PyTorch's set_to_none=True).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);
  std::int64_t steps() const { return steps_; }  // step() calls so far
  void set_steps(std::int64_t steps);             // for resuming a run (nn::load_training_state)
  const std::vector<ag::Tensor>& parameters() const { return params_; }
  const char* name() const { return name_; }

  // The per-parameter state, copied, as PyTorch names it (see above): only parameters that have
  // state (that have been updated at least once) appear. Tensors have the parameter's dtype and
  // shape; "step" is a float64 scalar (shape []), as PyTorch keeps it in a tensor.
  std::vector<std::pair<std::string, ag::Tensor>> state_dict() const;
  // Replaces the state with `saved` (as state_dict() gives it); parameters it does not name start
  // fresh. Errors (nothing changes): a name that is not "state.<i>.<key>" with i < parameters().size()
  // and a key this optimizer keeps, or a tensor whose shape or dtype differs from its parameter's;
  // the message lists every problem, one per line.
  void load_state_dict(const std::vector<std::pair<std::string, ag::Tensor>>& saved);
  // PyTorch's param_groups entries, as text that reads back exactly ("lr" -> "0.001",
  // "betas" -> "0.9,0.999", ...), for checkpoints and for refusing to resume with other options.
  virtual std::map<std::string, std::string> hyperparameters() const = 0;

 protected:
  // params: non-empty, defined leaf tensors, each at most once.
  Optimizer(const char* name, std::vector<ag::Tensor> params, double lr);
  // Updates parameter i (which has a gradient of its shape and dtype) in place.
  virtual void update(std::size_t i, ag::Array& param, const ag::Array& grad) = 0;
  // The lazily allocated state buffer `slot` of parameter i: zeros shaped and typed as param.
  ag::Array& state(std::size_t i, std::size_t slot, const ag::Array& param, bool* fresh = nullptr);
  // The PyTorch name of each slot (SGD: momentum_buffer; Adam: exp_avg, exp_avg_sq).
  virtual std::vector<std::string> slot_names() const = 0;
  // A per-parameter step count kept beside the slots (Adam's), or -1 when the optimizer has none.
  virtual std::int64_t param_step(std::size_t) const { return -1; }
  virtual void set_param_step(std::size_t, std::int64_t) {}

 private:
  const char* name_;
  std::vector<ag::Tensor> params_;
  // [param][slot]; each buffer on the heap so a reference to one survives adding the next
  std::vector<std::vector<std::unique_ptr<ag::Array>>> state_;
  double lr_;
  std::int64_t steps_ = 0;
};

// ---- SGD ---------------------------------------------------------------------------------
// torch.optim.SGD, for each parameter p with gradient g:
//   g = g + weight_decay * p
//   if momentum != 0:  buf = g on the first step, else buf = momentum * buf + (1 - dampening) * g
//                      g = nesterov ? g + momentum * buf : buf
//   p = p - lr * g
struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening == 0
  double dampening = 0.0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ag::Tensor> params, SGDOptions options);
  const SGDOptions& options() const { return o_; }
  std::map<std::string, std::string> hyperparameters() const override;

 private:
  void update(std::size_t i, ag::Array& param, const ag::Array& grad) override;
  std::vector<std::string> slot_names() const override { return {"momentum_buffer"}; }
  SGDOptions o_;
};

// ---- Adam and AdamW ----------------------------------------------------------------------
// For each parameter p with gradient g, t = that parameter's step count (from 1):
//   Adam:  g = g + weight_decay * p             (L2 penalty through the gradient)
//   AdamW: p = p - lr * weight_decay * p         (decoupled decay, Loshchilov & Hutter)
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
//   p = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// The update runs in the SIMD kernel ag::kernels::adam_update.
struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
};
struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

// Parameters that share a weight decay: PyTorch's param_groups, where here only weight_decay may
// differ between groups (lr, betas and eps are the optimizer's). Parameters are indexed across
// the groups in order, as PyTorch's state_dict indexes them.
struct ParamGroup {
  std::vector<ag::Tensor> params;
  double weight_decay = 0.0;
};
// GPT-2's and nanoGPT's split: weight matrices and embeddings (2 or more dims) decay by
// weight_decay, biases and LayerNorm gains and shifts (1 dim) do not.
// -> {{matrices, weight_decay}, {vectors, 0}} (an empty group is left out).
std::vector<ParamGroup> weight_decay_groups(const std::vector<ag::Tensor>& params, double weight_decay);

class Adam : public Optimizer {
 public:
  Adam(std::vector<ag::Tensor> params, AdamOptions options = {});
  // Each group with its own weight_decay (options.weight_decay unused). Errors: as above, over
  // all the groups' parameters; a negative weight_decay.
  Adam(std::vector<ParamGroup> groups, AdamOptions options);
  const AdamOptions& options() const { return o_; }
  std::map<std::string, std::string> hyperparameters() const override;

 protected:
  Adam(const char* name, std::vector<ParamGroup> groups, AdamOptions options, bool decoupled, bool grouped);

 private:
  void update(std::size_t i, ag::Array& param, const ag::Array& grad) override;
  std::vector<std::string> slot_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  std::int64_t param_step(std::size_t i) const override { return param_steps_[i]; }
  void set_param_step(std::size_t i, std::int64_t step) override { param_steps_[i] = step; }
  AdamOptions o_;
  bool decoupled_;
  std::vector<std::int64_t> param_steps_;
  std::vector<double> weight_decay_;      // per parameter
  std::vector<ParamGroup> groups_;        // as given (empty without groups)
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<ag::Tensor> params, AdamWOptions options = {});
  // Each group with its own weight_decay (options.weight_decay unused), e.g.
  // nn::AdamW(nn::weight_decay_groups(model.parameters(), 0.1), {.lr = 1e-3}).
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);
};

// ---- gradient clipping -------------------------------------------------------------------
// torch.nn.utils.clip_grad_norm_: the L2 norm of all gradients together (as one vector, summed
// in double), total = sqrt(sum_p sum_i g_pi^2). When total > max_norm every gradient is scaled in
// place by max_norm / (total + 1e-6). Returns total, the norm before clipping. Parameters without
// a gradient are skipped. A non-finite total is an error when error_if_nonfinite (otherwise the
// gradients are scaled by max_norm / (inf + 1e-6) = 0, or become NaN, as in PyTorch).
double clip_grad_norm(const std::vector<ag::Tensor>& params, double max_norm, bool error_if_nonfinite = false);

// ---- learning-rate schedules -------------------------------------------------------------
// lr(step) with step counting from 1 (the first optimizer step), as the papers count (Vaswani et
// al.'s step_num starts at 1): opt.set_lr(s.lr(opt.steps() + 1)) before opt.step().
// PyTorch's loop `optimizer.step(); scheduler.step()` is one step behind: its first update uses
// the schedule at 0 (LambdaLR's lambda(0), CosineAnnealingLR's base lr). To reproduce a PyTorch
// run exactly call opt.set_lr(s.lr(opt.steps())) instead, or, the other way, give LambdaLR
// `lambda step: lr(step + 1)` (as the Annotated Transformer does). WarmupSchedule's lr(0) is 0.
struct Schedule {
  virtual ~Schedule() = default;
  virtual double lr(std::int64_t step) const = 0;
};

// lr(step) = lr
struct ConstantSchedule : Schedule {
  explicit ConstantSchedule(double lr);
  double lr(std::int64_t step) const override;
  double value;
};

// "Attention is all you need" (Vaswani et al. 2017, eq. 3): linear warmup, then 1/sqrt(step) decay:
//   lr(step) = factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)
// rising to its peak factor * (d_model * warmup)^-0.5 at step == warmup. lr(0) = 0.
struct WarmupSchedule : Schedule {
  WarmupSchedule(std::int64_t d_model, std::int64_t warmup, double factor = 1.0);
  double lr(std::int64_t step) const override;
  std::int64_t d_model, warmup;
  double factor;
};

// Linear warmup to base_lr, then half a cosine down to min_lr (SGDR / GPT-style):
//   step <= warmup:          lr = base_lr * step / warmup
//   warmup < step < total:   p = (step - warmup) / (total - warmup),
//                            lr = min_lr + (base_lr - min_lr) * (1 + cos(pi p)) / 2
//   step >= total:           lr = min_lr
// Without warmup lr(0) = base_lr; the peak base_lr is at step == warmup.
struct CosineSchedule : Schedule {
  CosineSchedule(double base_lr, std::int64_t total_steps, std::int64_t warmup_steps = 0, double min_lr = 0.0);
  double lr(std::int64_t step) const override;
  double base_lr;
  std::int64_t total_steps, warmup_steps;
  double min_lr;
};

}  // namespace nn
