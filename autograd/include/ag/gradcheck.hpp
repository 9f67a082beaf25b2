#pragma once
// ag::gradcheck: compares the engine's gradients with central differences, in float64.
//
//   auto r = ag::gradcheck([](const std::vector<ag::Tensor>& in) { return ag::tanh(in[0]); }, {x});
//   if (!r.ok) std::cerr << r.report << "\n";
//
// A non-scalar output y is reduced to L = sum(y * r) with a fixed random r, so one backward
// checks the whole Jacobian against a random direction.
#include <functional>
#include <string>
#include <vector>

#include "ag/tensor.hpp"

namespace ag {

struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-8;  // absolute floor: errors below it always pass
  double rtol = 1e-6;  // relative tolerance
  std::uint64_t seed = 1234;  // for the random output weights r
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;  // worst |analytic - numeric|
  double max_rel_error = 0.0;  // worst |analytic - numeric| / max(|analytic|, |numeric|, atol)
  std::size_t worst_input = 0;    // which input holds the worst element
  std::size_t worst_element = 0;  // its flat index
  double analytic = 0.0, numeric = 0.0;  // the two values there
  std::size_t elements_checked = 0;
  std::string report;  // one readable paragraph
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Inputs are converted to float64 leaves requiring grad; f must build its result from them.
// Inputs that already are float64 leaves are used in place (perturbed and restored), so the
// parameters of a module converted with module.to(ag::f64) can be checked directly.
// Inputs whose gradient is not wanted can be passed as `no_grad` (indices into inputs).
GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                          GradcheckOptions options = {}, const std::vector<std::size_t>& no_grad = {});

}  // namespace ag
