// Rotary position embedding (RoPE; Su et al. 2021, "RoFormer", eq. 34), forward and backward.
//
// Note [rope pairing]
// Each row x (one position p, d features) is split into d/2 pairs, and pair i is rotated by the
// angle p * theta_i, theta_i = base^(-2i/d). Which features form a pair is a convention:
//   halves (used here, as GPT-NeoX, Llama and Hugging Face's rotate_half): x_i with x_{i + d/2}
//   interleaved (the paper's notation, GPT-J, Meta's Llama reference code): x_{2i} with x_{2i+1}
// The two are the same function up to a fixed permutation of the features (which the learned
// projections absorb), but checkpoints are not interchangeable. With c = cos(p theta_i),
// s = sin(p theta_i):
//   y_i       = x_i c - x_{i+d/2} s
//   y_{i+d/2} = x_i s + x_{i+d/2} c
// A rotation's inverse is its transpose, so the backward rotates the gradient by -p theta_i:
//   dx_i       =  dy_i c + dy_{i+d/2} s
//   dx_{i+d/2} = -dy_i s + dy_{i+d/2} c
// Why it encodes relative position: rotating q by m theta and k by n theta gives
// q_m . k_n = q . R((n - m) theta) k, a function of n - m only.
#include <cmath>
#include <vector>

#include "ag/ops.hpp"
#include "internal.hpp"

namespace ag {
using detail::make_result;

namespace {

// cos and sin of (offset + t) * theta_i for t < T, i < d/2: [T, d/2] each, computed once in double
// and shared by the forward and the backward.
struct RopeTables {
  std::vector<double> c, s;
};
RopeTables rope_tables(std::size_t T_len, std::size_t half, std::size_t offset, double base) {
  RopeTables r{std::vector<double>(T_len * half), std::vector<double>(T_len * half)};
  for (std::size_t i = 0; i < half; ++i) {
    const double theta = std::pow(base, -2.0 * double(i) / double(2 * half));
    for (std::size_t t = 0; t < T_len; ++t) {
      const double a = double(offset + t) * theta;
      r.c[t * half + i] = std::cos(a);
      r.s[t * half + i] = std::sin(a);
    }
  }
  return r;
}

// y = R x per row (sign = +1) or y = R^T x (sign = -1, the backward), adding into y when accumulate.
template <class T>
void rotate(T* y, const T* x, const RopeTables& tab, std::size_t rows, std::size_t T_len, std::size_t half, T sign, bool accumulate) {
  const std::size_t d = 2 * half;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t t = r % T_len;
    const T* xr = x + r * d;
    const double *cr = tab.c.data() + t * half, *sr = tab.s.data() + t * half;
    T* yr = y + r * d;
    for (std::size_t i = 0; i < half; ++i) {
      const T a = xr[i], b = xr[i + half], ci = T(cr[i]), si = sign * T(sr[i]);
      const T lo = a * ci - b * si, hi = a * si + b * ci;
      if (accumulate) {
        yr[i] += lo;
        yr[i + half] += hi;
      } else {
        yr[i] = lo;
        yr[i + half] = hi;
      }
    }
  }
}

}  // namespace

Tensor rope(const Tensor& x, std::size_t offset, double base) {
  detail::check_defined("rope", x);
  if (x.dim() < 2) fail("rope: x must be [..., T, d], got ", shape_str(x.shape()));
  const std::size_t T_len = x.shape()[x.dim() - 2], d = x.shape().back();
  if (d % 2 != 0) fail("rope: the feature size d must be even (pairs of features are rotated), got x ", shape_str(x.shape()));
  if (!(base > 1.0) || !std::isfinite(base)) fail("rope: base must be finite and > 1, got ", base, " (x ", shape_str(x.shape()), ")");
  const std::size_t half = d / 2, rows = d ? x.numel() / d : 0;
  Array y = Array::empty(x.dtype(), x.shape());
  RopeTables tab = rope_tables(T_len, half, offset, base);
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    rotate(y.ptr<T>(), x.array().ptr<T>(), tab, rows, T_len, half, T(1), false);
  });
  return make_result("rope", std::move(y), {x}, [tab = std::move(tab), T_len, half, rows](Node& self) {
    dispatch(self.data.dtype(), [&](auto tag) {
      using T = decltype(tag);
      auto* gx = self.input_grad<T>(0);
      if (!gx) return;
      rotate(gx->data(), self.grad->ptr<T>(), tab, rows, T_len, half, T(-1), true);
    });
  });
}

}  // namespace ag
