// Optimizers, gradient clipping, learning-rate schedules (see optim.hpp for each rule).
#include "nn/optim.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <numbers>
#include <set>
#include <string>

#include "ag/error.hpp"
#include "ag/grad_mode.hpp"
#include "kernels/kernels.hpp"

namespace nn {

namespace {

// An option must be finite and in range: `ok` says whether it is, `expected` what it should be.
void check_option(const char* who, const char* what, double value, bool ok, const char* expected) {
  if (!std::isfinite(value) || !ok) ag::fail(who, ": invalid ", what, " ", value, " (expected ", expected, ")");
}
void check_non_negative(const char* who, const char* what, double value) {
  check_option(who, what, value, value >= 0, "a finite value >= 0");
}

// The shortest text that reads back as exactly `v` ("0.001", "0.9").
std::string exact_text(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace

// ---- Optimizer ---------------------------------------------------------------------------

Optimizer::Optimizer(const char* name, std::vector<ag::Tensor> params, double lr)
    : name_(name), params_(std::move(params)), state_(params_.size()), lr_(lr) {
  if (params_.empty())
    ag::fail(name_, ": got an empty parameter list (expected at least one tensor, e.g. model.parameters())");
  std::set<const ag::Node*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const ag::Tensor& p = params_[i];
    if (!p.defined()) ag::fail(name_, ": parameter ", i, " is an undefined tensor");
    if (!p.is_leaf())
      ag::fail(name_, ": parameter ", i, " (shape ", ag::shape_str(p.shape()), ") is not a leaf tensor (it comes from '",
               p.op_name(), "'); optimizers update leaves only");
    if (!seen.insert(p.node()).second)
      ag::fail(name_, ": parameter ", i, " (shape ", ag::shape_str(p.shape()),
               ") appears more than once in the parameter list; it would be updated twice per step");
  }
  set_lr(lr);
}

void Optimizer::set_steps(std::int64_t steps) {
  if (steps < 0) ag::fail(name_, ".set_steps: the step count must be >= 0, got ", steps);
  steps_ = steps;
}

std::vector<std::pair<std::string, ag::Tensor>> Optimizer::state_dict() const {
  std::vector<std::pair<std::string, ag::Tensor>> out;
  const std::vector<std::string> names = slot_names();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const std::string at = "state." + std::to_string(i) + ".";
    bool any = false;
    for (std::size_t s = 0; s < state_[i].size() && s < names.size(); ++s)
      if (state_[i][s]) {
        out.emplace_back(at + names[s], ag::Tensor::from(ag::Array(*state_[i][s])));
        any = true;
      }
    if (any && param_step(i) >= 0) out.emplace_back(at + "step", ag::scalar(double(param_step(i)), {.dtype = ag::f64}));
  }
  return out;
}

void Optimizer::load_state_dict(const std::vector<std::pair<std::string, ag::Tensor>>& saved) {
  const std::vector<std::string> names = slot_names();
  const bool has_step = param_step(0) >= 0;
  // 1) every problem, one line each; nothing changes unless there is none
  std::vector<std::string> problems;
  struct Entry {
    std::size_t param, slot;  // slot == names.size(): the step count
    const ag::Tensor* t;
  };
  std::vector<Entry> entries;
  std::set<std::string> seen;
  for (const auto& [name, t] : saved) {
    const std::string where = std::string(name_) + ".load_state_dict: '" + name + "'";
    if (!seen.insert(name).second) {
      problems.push_back(where + " appears twice");
      continue;
    }
    std::size_t i = 0;
    const bool prefixed = name.rfind("state.", 0) == 0;  // only then is there an index to read
    const char* digits = name.c_str() + (prefixed ? std::strlen("state.") : 0);
    const auto parsed = prefixed ? std::from_chars(digits, name.c_str() + name.size(), i)
                                 : std::from_chars_result{digits, std::errc::invalid_argument};
    if (parsed.ec != std::errc() || parsed.ptr == digits || *parsed.ptr != '.') {
      problems.push_back(where + " is not named state.<parameter index>.<key>");
      continue;
    }
    if (i >= params_.size()) {
      problems.push_back(where + " names parameter " + std::to_string(i) + ", but the optimizer has " +
                         std::to_string(params_.size()));
      continue;
    }
    const std::string key = parsed.ptr + 1;
    const auto slot = std::size_t(std::find(names.begin(), names.end(), key) - names.begin());
    if (slot == names.size() && !(has_step && key == "step")) {
      std::string keys;
      for (const auto& n : names) keys += (keys.empty() ? "" : ", ") + n;
      if (has_step) keys += ", step";
      problems.push_back(where + ": " + name_ + " keeps no '" + key + "' (its keys: " + keys + ")");
      continue;
    }
    const ag::Tensor& p = params_[i];
    if (slot == names.size()) {
      if (t.numel() != 1 || !(t.flat(0) >= 0) || t.flat(0) != std::floor(t.flat(0)))
        problems.push_back(where + " must be one whole number >= 0, got shape " + ag::shape_str(t.shape()));
    } else if (t.shape() != p.shape() || t.dtype() != p.dtype()) {
      problems.push_back(where + " is " + ag::dtype_name(t.dtype()) + " " + ag::shape_str(t.shape()) + ", but parameter " +
                         std::to_string(i) + " is " + ag::dtype_name(p.dtype()) + " " + ag::shape_str(p.shape()));
    }
    entries.push_back({i, slot, &t});
  }
  if (!problems.empty()) {
    std::string msg;
    for (const auto& line : problems) msg += (msg.empty() ? "" : "\n") + line;
    throw ag::Error(msg);
  }
  // 2) replace: every parameter starts fresh, then takes what the state names
  for (std::size_t i = 0; i < params_.size(); ++i) {
    state_[i].clear();
    if (has_step) set_param_step(i, 0);
  }
  for (const Entry& e : entries) {
    if (e.slot == names.size()) {
      set_param_step(e.param, std::int64_t(e.t->flat(0)));
      continue;
    }
    ag::Array& buf = state(e.param, e.slot, params_[e.param].array());
    ag::dispatch(buf.dtype(), [&](auto tag) {
      using T = decltype(tag);
      std::copy_n(e.t->array().ptr<T>(), buf.size(), buf.ptr<T>());
    });
  }
}

void Optimizer::set_lr(double lr) {
  check_non_negative(name_, "learning rate", lr);
  lr_ = lr;
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

void Optimizer::step() {
  // Check everything first, so that an error leaves every parameter as it was.
  for (std::size_t i = 0; i < params_.size(); ++i) {
    ag::Tensor& p = params_[i];
    if (!p.requires_grad())
      ag::fail(name_, ".step: parameter ", i, " (shape ", ag::shape_str(p.shape()),
               ") does not require grad; remove it from the optimizer or call requires_grad_(true)");
    const auto& g = p.grad_array();
    if (!g) continue;
    if (g->shape() != p.shape())
      ag::fail(name_, ".step: parameter ", i, " has shape ", ag::shape_str(p.shape()), " but its gradient has shape ",
               ag::shape_str(g->shape()), " (expected the same shape)");
    if (g->dtype() != p.dtype())
      ag::fail(name_, ".step: parameter ", i, " is ", ag::dtype_name(p.dtype()), " but its gradient is ",
               ag::dtype_name(g->dtype()), " (expected the same dtype)");
    for (const auto& s : state_[i])
      if (s && (s->dtype() != p.dtype() || s->shape() != p.shape()))
        ag::fail(name_, ".step: parameter ", i, " is now ", ag::dtype_name(p.dtype()), " ", ag::shape_str(p.shape()),
                 " but its optimizer state was made for ", ag::dtype_name(s->dtype()), " ", ag::shape_str(s->shape()),
                 " (convert the model with .to() before creating the optimizer)");
  }
  ag::NoGrad no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    ag::Tensor& p = params_[i];
    if (!p.grad_array()) continue;  // no gradient reached this parameter: skip it, as PyTorch
    update(i, p.array(), *p.grad_array());
  }
  ++steps_;
}

ag::Array& Optimizer::state(std::size_t i, std::size_t slot, const ag::Array& param, bool* fresh) {
  auto& slots = state_[i];
  if (slots.size() <= slot) slots.resize(slot + 1);
  if (fresh) *fresh = slots[slot] == nullptr;
  if (!slots[slot]) slots[slot] = std::make_unique<ag::Array>(param.dtype(), param.shape());  // zeros
  return *slots[slot];
}

// ---- SGD ---------------------------------------------------------------------------------

SGD::SGD(std::vector<ag::Tensor> params, SGDOptions o) : Optimizer("SGD", std::move(params), o.lr), o_(o) {
  check_non_negative("SGD", "momentum", o.momentum);
  check_non_negative("SGD", "weight_decay", o.weight_decay);
  check_option("SGD", "dampening", o.dampening, o.dampening >= 0 && o.dampening <= 1, "a value in [0, 1]");
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    ag::fail("SGD: nesterov momentum needs momentum > 0 and dampening = 0 (got momentum ", o.momentum, ", dampening ",
             o.dampening, ")");
}

std::map<std::string, std::string> SGD::hyperparameters() const {
  return {{"lr", exact_text(lr())},
          {"momentum", exact_text(o_.momentum)},
          {"dampening", exact_text(o_.dampening)},
          {"weight_decay", exact_text(o_.weight_decay)},
          {"nesterov", o_.nesterov ? "true" : "false"}};
}

void SGD::update(std::size_t i, ag::Array& param, const ag::Array& grad) {
  ag::dispatch(param.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::size_t n = param.size();
    T* p = param.ptr<T>();
    const T* g0 = grad.ptr<T>();
    const T rate = T(lr()), wd = T(o_.weight_decay), mu = T(o_.momentum), damp = T(1.0 - o_.dampening);
    bool first = false;
    T* buf = o_.momentum != 0 ? state(i, 0, param, &first).template ptr<T>() : nullptr;
    for (std::size_t k = 0; k < n; ++k) {
      T d = g0[k];
      if (o_.weight_decay != 0) d += wd * p[k];  // g = g + wd p
      if (buf) {
        buf[k] = first ? d : mu * buf[k] + damp * d;  // buf = g (first step) or mu buf + (1 - dampening) g
        d = o_.nesterov ? d + mu * buf[k] : buf[k];
      }
      p[k] -= rate * d;  // p = p - lr g
    }
  });
}

// ---- Adam / AdamW ------------------------------------------------------------------------

namespace {
void check_adam(const char* who, const AdamOptions& o) {
  const double b1 = o.betas.first, b2 = o.betas.second;
  check_option(who, "beta1", b1, b1 >= 0 && b1 < 1, "a value in [0, 1)");
  check_option(who, "beta2", b2, b2 >= 0 && b2 < 1, "a value in [0, 1)");
  check_non_negative(who, "eps", o.eps);
  check_non_negative(who, "weight_decay", o.weight_decay);
}
}  // namespace

namespace {
std::vector<ag::Tensor> all_params(const std::vector<ParamGroup>& groups) {
  std::vector<ag::Tensor> all;
  for (const auto& g : groups) all.insert(all.end(), g.params.begin(), g.params.end());
  return all;
}
std::vector<ParamGroup> one_group(std::vector<ag::Tensor> params, double weight_decay) {
  return {ParamGroup{std::move(params), weight_decay}};
}
}  // namespace

std::vector<ParamGroup> weight_decay_groups(const std::vector<ag::Tensor>& params, double weight_decay) {
  ParamGroup matrices{{}, weight_decay}, vectors{{}, 0.0};
  for (const auto& p : params) (p.dim() >= 2 ? matrices : vectors).params.push_back(p);
  std::vector<ParamGroup> groups;
  for (auto* g : {&matrices, &vectors})
    if (!g->params.empty()) groups.push_back(std::move(*g));
  return groups;
}

Adam::Adam(std::vector<ag::Tensor> params, AdamOptions o) : Adam("Adam", one_group(std::move(params), o.weight_decay), o, false, false) {}
Adam::Adam(std::vector<ParamGroup> groups, AdamOptions o) : Adam("Adam", std::move(groups), o, false, true) {}

Adam::Adam(const char* name, std::vector<ParamGroup> groups, AdamOptions o, bool decoupled, bool grouped)
    : Optimizer(name, all_params(groups), o.lr), o_(o), decoupled_(decoupled), param_steps_(parameters().size(), 0) {
  check_adam(name, o);
  for (const auto& g : groups) {
    check_non_negative(name, "weight_decay", g.weight_decay);
    weight_decay_.insert(weight_decay_.end(), g.params.size(), g.weight_decay);
  }
  if (grouped) groups_ = std::move(groups);
}

AdamW::AdamW(std::vector<ag::Tensor> params, AdamWOptions o)
    : Adam("AdamW", one_group(std::move(params), o.weight_decay), AdamOptions{o.lr, o.betas, o.eps, o.weight_decay}, true, false) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions o)
    : Adam("AdamW", std::move(groups), AdamOptions{o.lr, o.betas, o.eps, o.weight_decay}, true, true) {}

std::map<std::string, std::string> Adam::hyperparameters() const {
  std::map<std::string, std::string> h{{"lr", exact_text(lr())},
                                       {"betas", exact_text(o_.betas.first) + "," + exact_text(o_.betas.second)},
                                       {"eps", exact_text(o_.eps)},
                                       {"weight_decay", exact_text(o_.weight_decay)}};
  if (!groups_.empty()) {  // per group, in order: "0.1,0" and the groups' sizes "24,50"
    std::string decay, sizes;
    for (const auto& g : groups_) {
      if (!decay.empty()) decay += ',', sizes += ',';
      decay += exact_text(g.weight_decay);
      sizes += std::to_string(g.params.size());
    }
    h["weight_decay"] = decay;
    h["param_groups"] = sizes;
  }
  return h;
}

void Adam::update(std::size_t i, ag::Array& param, const ag::Array& grad) {
  ag::Array& m = state(i, 0, param);
  ag::Array& v = state(i, 1, param);
  const ag::kernels::AdamParams kp{.lr = lr(),
                                   .beta1 = o_.betas.first,
                                   .beta2 = o_.betas.second,
                                   .eps = o_.eps,
                                   .weight_decay = weight_decay_[i],
                                   .decoupled = decoupled_,
                                   .step = ++param_steps_[i]};
  ag::dispatch(param.dtype(), [&](auto tag) {
    using T = decltype(tag);
    ag::kernels::adam_update<T>(param.ptr<T>(), m.ptr<T>(), v.ptr<T>(), grad.ptr<T>(), param.size(), kp);
  });
}

// ---- clip_grad_norm ----------------------------------------------------------------------

double clip_grad_norm(const std::vector<ag::Tensor>& params, double max_norm, bool error_if_nonfinite) {
  if (std::isnan(max_norm) || max_norm < 0) ag::fail("clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  // total = sqrt(sum over every gradient element of g^2), in double
  double sum_sq = 0;
  for (const ag::Tensor& p : params) {
    if (!p.defined() || !p.has_grad()) continue;
    const ag::Array& g = *p.node()->grad;
    ag::dispatch(g.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* x = g.ptr<T>();
      for (std::size_t k = 0; k < g.size(); ++k) sum_sq += double(x[k]) * double(x[k]);
    });
  }
  const double total = std::sqrt(sum_sq);
  if (!std::isfinite(total) && error_if_nonfinite)
    ag::fail("clip_grad_norm: the total norm of the gradients is ", total,
             " (a gradient holds inf or NaN); pass error_if_nonfinite = false to clip anyway");
  if (total > max_norm || std::isnan(total)) {
    const double coef = max_norm / (total + 1e-6);  // scale so the new norm is max_norm (to 1e-6)
    for (const ag::Tensor& p : params) {
      if (!p.defined() || !p.has_grad()) continue;
      ag::Array& g = *p.node()->grad;
      ag::dispatch(g.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T* x = g.ptr<T>();
        for (std::size_t k = 0; k < g.size(); ++k) x[k] = T(double(x[k]) * coef);
      });
    }
  }
  return total;
}

// ---- schedules ---------------------------------------------------------------------------

namespace {
void check_step(const char* who, std::int64_t step) {
  if (step < 0) ag::fail(who, ".lr: step must be >= 0 (steps count from 1), got ", step);
}
}  // namespace

ConstantSchedule::ConstantSchedule(double lr) : value(lr) { check_non_negative("ConstantSchedule", "lr", lr); }
double ConstantSchedule::lr(std::int64_t step) const {
  check_step("ConstantSchedule", step);
  return value;
}

WarmupSchedule::WarmupSchedule(std::int64_t d_model_, std::int64_t warmup_, double factor_)
    : d_model(d_model_), warmup(warmup_), factor(factor_) {
  if (d_model < 1) ag::fail("WarmupSchedule: d_model must be >= 1, got ", d_model);
  if (warmup < 1) ag::fail("WarmupSchedule: warmup must be >= 1 step, got ", warmup);
  check_non_negative("WarmupSchedule", "factor", factor);
}

// factor * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5)
double WarmupSchedule::lr(std::int64_t step) const {
  check_step("WarmupSchedule", step);
  if (step == 0) return 0.0;  // min(inf, 0)
  const double s = double(step), w = double(warmup);
  return factor * std::pow(double(d_model), -0.5) * std::min(std::pow(s, -0.5), s * std::pow(w, -1.5));
}

CosineSchedule::CosineSchedule(double base_lr_, std::int64_t total_steps_, std::int64_t warmup_steps_, double min_lr_)
    : base_lr(base_lr_), total_steps(total_steps_), warmup_steps(warmup_steps_), min_lr(min_lr_) {
  check_non_negative("CosineSchedule", "base_lr", base_lr);
  check_non_negative("CosineSchedule", "min_lr", min_lr);
  if (total_steps < 1) ag::fail("CosineSchedule: total_steps must be >= 1, got ", total_steps);
  if (warmup_steps < 0 || warmup_steps > total_steps)
    ag::fail("CosineSchedule: warmup_steps must be in [0, total_steps = ", total_steps, "], got ", warmup_steps);
}

double CosineSchedule::lr(std::int64_t step) const {
  check_step("CosineSchedule", step);
  if (warmup_steps > 0 && step <= warmup_steps) return base_lr * double(step) / double(warmup_steps);
  if (step >= total_steps) return min_lr;
  const double p = double(step - warmup_steps) / double(total_steps - warmup_steps);
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
}

}  // namespace nn
