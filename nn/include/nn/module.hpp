#pragma once
// nn::Module: named parameters and submodules, as in PyTorch, so that what a learner learns
// here carries over (and a checkpoint maps onto a PyTorch model parameter by parameter).
//
// A module registers its parameters and children in its constructor (reset() does the
// initialisation under NoGrad), then defines forward(). Names compose with dots:
// "layers.0.self_attn.in_proj_weight".
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ag/ag.hpp"

namespace nn {

using ag::Tensor;

class Module {
 public:
  virtual ~Module() = default;

  // Every parameter of this module and its children, in registration order.
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::size_t num_parameters() const;  // total number of scalars
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  // Every random generator the module and its children draw from while training (each Dropout's),
  // named as the parameters are ("layers.0.dropout.generator"): what a checkpoint must hold, beside
  // the parameters, to resume training exactly (nn::save_training_state).
  std::vector<std::pair<std::string, ag::Generator*>> named_generators();

  void zero_grad();
  void train(bool on = true);  // also sets every child
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(ag::Dtype dtype);  // converts every parameter in place; gradients are dropped
  ag::Dtype dtype() const;   // of the first parameter (float32 if there is none)

  // One line for this module ("Linear(in=64, out=128, bias=true)") ...
  virtual std::string describe() const = 0;
  // ... and the whole tree, indented, with parameter counts: print(std::cout << model.tree()).
  std::string tree() const;

 protected:
  // Registers a parameter (a leaf that requires grad) under `name` and returns it.
  Tensor register_parameter(const std::string& name, Tensor t);
  // The generator this module itself draws from, if any (Dropout overrides it).
  virtual ag::Generator* own_generator() { return nullptr; }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void tree_into(std::string& out, const std::string& name, int depth) const;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace nn
