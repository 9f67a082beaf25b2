#include "nn/module.hpp"

namespace nn {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  if (!t.is_leaf()) ag::fail("register_parameter: '", name, "' must be a leaf tensor, got the result of '", t.op_name(), "'");
  t.requires_grad_(true);
  params_.emplace_back(name, t);
  return t;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out = params_;
  for (const auto& [cname, child] : children_)
    for (auto& [pname, p] : child->named_parameters()) out.emplace_back(cname + "." + pname, p);
  return out;
}

std::vector<std::pair<std::string, ag::Generator*>> Module::named_generators() {
  std::vector<std::pair<std::string, ag::Generator*>> out;
  if (ag::Generator* g = own_generator()) out.emplace_back("generator", g);
  for (const auto& [cname, child] : children_)
    for (auto& [gname, g] : child->named_generators()) out.emplace_back(cname + "." + gname, g);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

std::size_t Module::num_parameters() const {
  std::size_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(ag::Dtype dtype) {
  for (auto& p : parameters()) {
    ag::Node* n = p.node();
    n->data = n->data.to(dtype);
    n->grad.reset();
  }
}

ag::Dtype Module::dtype() const {
  const auto ps = parameters();
  return ps.empty() ? ag::f32 : ps.front().dtype();
}

std::string Module::tree() const {
  std::string out;
  tree_into(out, "", 0);
  return out;
}

void Module::tree_into(std::string& out, const std::string& name, int depth) const {
  out += std::string(std::size_t(depth) * 2, ' ') + (name.empty() ? "" : "(" + name + "): ") + describe();
  if (depth == 0) out += "  [" + std::to_string(num_parameters()) + " parameters]";
  out += "\n";
  for (const auto& [cname, child] : children_) child->tree_into(out, cname, depth + 1);
}

}  // namespace nn
