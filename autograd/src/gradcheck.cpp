// gradcheck: analytic gradients (one backward) against central differences, in float64:
//   dL/dx_j ~ (L(x + eps e_j) - L(x - eps e_j)) / (2 eps),   error O(eps^2) + rounding O(1e-16 / eps).
#include <cmath>
#include <algorithm>
#include <sstream>

#include "ag/gradcheck.hpp"
#include "ag/ops.hpp"

namespace ag {

GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, GradcheckOptions opt,
                          const std::vector<std::size_t>& no_grad) {
  std::vector<Tensor> xs;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) fail("gradcheck: input ", i, " is undefined");
    const bool wanted = std::find(no_grad.begin(), no_grad.end(), i) == no_grad.end();
    if (inputs[i].is_leaf() && inputs[i].dtype() == f64) {
      // Used in place, so a module's own parameters (after module.to(f64)) can be checked.
      Tensor x = inputs[i];
      x.zero_grad();
      x.requires_grad_(wanted);
      xs.push_back(x);
    } else {
      xs.push_back(Tensor::from(inputs[i].array().to(f64), wanted));
    }
  }
  Tensor y = f(xs);
  if (!y.defined()) fail("gradcheck: the function returned an undefined tensor");
  if (y.dtype() != f64) fail("gradcheck: the function must compute in float64, its output is ", dtype_name(y.dtype()));
  // L = sum(y * r): r random, fixed for the whole check, so every output element takes part.
  Generator gen(opt.seed);
  const Tensor r = y.numel() == 1 ? ones(y.shape(), {f64}) : randn(y.shape(), gen, {f64});
  const std::vector<double> rv = r.to_vector();
  auto weighted = [&](const Tensor& out) {
    const std::vector<double> v = out.to_vector();
    if (v.size() != rv.size()) fail("gradcheck: the function's output changed shape between calls");
    double s = 0;
    for (std::size_t i = 0; i < v.size(); ++i) s += v[i] * rv[i];
    return s;
  };
  if (y.requires_grad()) sum(mul(y, r)).backward();

  GradcheckResult res;
  double worst_ratio = -1;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) continue;
    const std::vector<double> analytic = xs[i].has_grad() ? xs[i].grad().to_vector() : std::vector<double>(xs[i].numel(), 0.0);
    double* p = xs[i].data<double>().data();
    for (std::size_t j = 0; j < xs[i].numel(); ++j) {
      const double orig = p[j];
      double lp, lm;
      {
        NoGrad ng;
        p[j] = orig + opt.eps;
        lp = weighted(f(xs));
        p[j] = orig - opt.eps;
        lm = weighted(f(xs));
        p[j] = orig;
      }
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double a = analytic[j];
      const double err = std::abs(a - numeric);
      const double scale = std::max(std::abs(a), std::abs(numeric));
      const double allowed = opt.atol + opt.rtol * scale;
      const double ratio = std::isfinite(err) ? err / allowed : INFINITY;
      res.elements_checked++;
      res.max_abs_error = std::max(res.max_abs_error, err);
      if (scale > opt.atol) res.max_rel_error = std::max(res.max_rel_error, err / scale);
      if (ratio > worst_ratio) {
        worst_ratio = ratio;
        res.worst_input = i;
        res.worst_element = j;
        res.analytic = a;
        res.numeric = numeric;
      }
      if (!(ratio <= 1.0)) res.ok = false;
    }
  }
  std::ostringstream os;
  os << "gradcheck " << (res.ok ? "passed" : "FAILED") << ": " << res.elements_checked << " elements, max abs error "
     << res.max_abs_error << ", max rel error " << res.max_rel_error << "; worst at input " << res.worst_input
     << " element " << res.worst_element << " (shape " << (xs.empty() ? "[]" : shape_str(xs[res.worst_input].shape()))
     << "): analytic " << res.analytic << " vs numeric " << res.numeric << " (eps " << opt.eps << ", rtol " << opt.rtol
     << ", atol " << opt.atol << ")";
  res.report = os.str();
  return res;
}

}  // namespace ag
