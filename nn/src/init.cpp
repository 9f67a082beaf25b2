// nn initialisers (see init.hpp for each distribution). Every value is drawn in double from the
// generator, in row-major order, then rounded to the tensor's dtype.
#include "nn/init.hpp"

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "ag/error.hpp"
#include "ag/grad_mode.hpp"

namespace nn {

namespace {

// Writes draw() into every element of t, row-major, under NoGrad.
template <class Draw>
ag::Tensor fill_with(ag::Tensor& t, Draw&& draw) {
  ag::NoGrad no_grad;
  ag::dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>().data();
    const std::size_t n = t.numel();
    for (std::size_t i = 0; i < n; ++i) p[i] = T(draw());
  });
  return t;
}

// Copies row-major doubles into t (same number of elements).
void assign(ag::Tensor& t, const std::vector<double>& values) {
  std::size_t i = 0;
  fill_with(t, [&] { return values[i++]; });
}

void check_finite(const char* fn, const char* what, double value) {
  if (!std::isfinite(value)) ag::fail(fn, ": ", what, " must be finite, got ", value);
}

std::int64_t fan_for(const char* fn, const ag::Tensor& t, FanMode mode) {
  if (t.dim() < 2)
    ag::fail(fn, ": fan in and fan out need a tensor with at least 2 dimensions, got shape ", ag::shape_str(t.shape()));
  const Fans f = calculate_fans(t);
  return mode == FanMode::fan_in ? f.fan_in : f.fan_out;
}

// Q of the thin QR factorisation of a tall matrix A [m, n] (m >= n, row-major), by Householder
// reflections, with the sign of each column chosen so that R's diagonal is >= 0 (the unique
// factorisation; PyTorch: q *= sign(diag(r))). Returns Q [m, n], row-major.
//
// Reflection k maps the column x = A[k:, k] onto alpha e_k with alpha = -sign(x_0) ||x|| (the sign
// that avoids cancellation): H_k = I - 2 v v^T, v = (x - alpha e_k) / ||x - alpha e_k||.
// Then R = H_{n-1} ... H_0 A, so Q = H_0 ... H_{n-1} I[:, :n], and R_kk = alpha_k.
std::vector<double> householder_q(std::vector<double> a, std::size_t m, std::size_t n) {
  std::vector<std::vector<double>> vs(n);  // v_k over rows k..m-1 (empty: no reflection)
  std::vector<double> r_diag(n, 0.0);
  for (std::size_t k = 0; k < n; ++k) {
    double norm2 = 0;
    for (std::size_t i = k; i < m; ++i) norm2 += a[i * n + k] * a[i * n + k];
    const double norm = std::sqrt(norm2);
    if (norm == 0) continue;  // a zero column: R_kk = 0, nothing to reflect
    const double x0 = a[k * n + k];
    const double alpha = x0 >= 0 ? -norm : norm;
    std::vector<double> v(m - k);
    for (std::size_t i = k; i < m; ++i) v[i - k] = a[i * n + k];
    v[0] -= alpha;
    double vnorm2 = 0;
    for (double x : v) vnorm2 += x * x;
    const double vnorm = std::sqrt(vnorm2);
    for (double& x : v) x /= vnorm;
    // A[k:, k:] -= 2 v (v^T A[k:, k:])
    for (std::size_t j = k; j < n; ++j) {
      double dot = 0;
      for (std::size_t i = k; i < m; ++i) dot += v[i - k] * a[i * n + j];
      for (std::size_t i = k; i < m; ++i) a[i * n + j] -= 2 * dot * v[i - k];
    }
    r_diag[k] = alpha;
    vs[k] = std::move(v);
  }
  // Q = H_0 ... H_{n-1} I[:, :n]: apply the reflections to the identity's first n columns, last first.
  std::vector<double> q(m * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) q[i * n + i] = 1.0;
  for (std::size_t kk = n; kk-- > 0;) {
    const auto& v = vs[kk];
    if (v.empty()) continue;
    for (std::size_t j = 0; j < n; ++j) {
      double dot = 0;
      for (std::size_t i = kk; i < m; ++i) dot += v[i - kk] * q[i * n + j];
      for (std::size_t i = kk; i < m; ++i) q[i * n + j] -= 2 * dot * v[i - kk];
    }
  }
  // Sign correction: Q R = (Q D)(D R) with D = diag(sign(R_kk)) makes R's diagonal non-negative.
  for (std::size_t j = 0; j < n; ++j)
    if (r_diag[j] < 0)
      for (std::size_t i = 0; i < m; ++i) q[i * n + j] = -q[i * n + j];
  return q;
}

// A random orthogonal matrix [rows, cols] times gain, row-major (see orthogonal_ in init.hpp).
std::vector<double> random_orthogonal(std::size_t rows, std::size_t cols, ag::Generator& gen, double gain) {
  std::vector<double> a(rows * cols);
  for (double& x : a) x = gen.normal();  // A ~ N(0, 1), [rows, cols]
  const bool wide = rows < cols;
  const std::size_t m = wide ? cols : rows, n = wide ? rows : cols;  // the tall shape [m, n]
  if (wide) {  // A^T [cols, rows]
    std::vector<double> at(a.size());
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) at[j * rows + i] = a[i * cols + j];
    a = std::move(at);
  }
  std::vector<double> q = householder_q(std::move(a), m, n);
  std::vector<double> w(rows * cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) w[i * cols + j] = gain * (wide ? q[j * n + i] : q[i * cols + j]);
  return w;
}

}  // namespace

Fans calculate_fans(const ag::Tensor& t) {
  if (t.dim() < 2)
    ag::fail("calculate_fans: fan in and fan out need a tensor with at least 2 dimensions, got shape ",
             ag::shape_str(t.shape()));
  std::int64_t receptive = 1;
  for (std::size_t d = 2; d < t.dim(); ++d) receptive *= std::int64_t(t.shape()[d]);
  return Fans{std::int64_t(t.shape()[1]) * receptive, std::int64_t(t.shape()[0]) * receptive};
}

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu:
      check_finite("calculate_gain", "the leaky_relu negative slope", param);
      return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::selu: return 3.0 / 4.0;
  }
  ag::fail("calculate_gain: unknown nonlinearity ", int(nonlinearity));
}

// t ~ U[lo, hi)
ag::Tensor uniform_(ag::Tensor t, ag::Generator& gen, double lo, double hi) {
  check_finite("uniform_", "lo", lo);
  check_finite("uniform_", "hi", hi);
  if (lo > hi) ag::fail("uniform_: expected lo <= hi, got lo = ", lo, ", hi = ", hi);
  if (lo == hi) return constant_(t, lo);
  return fill_with(t, [&] { return gen.uniform(lo, hi); });
}

// t ~ N(mean, std^2)
ag::Tensor normal_(ag::Tensor t, ag::Generator& gen, double mean, double std) {
  check_finite("normal_", "mean", mean);
  check_finite("normal_", "std", std);
  if (std < 0) ag::fail("normal_: expected std >= 0, got ", std);
  if (std == 0) return constant_(t, mean);
  return fill_with(t, [&] { return gen.normal(mean, std); });
}

// t = value
ag::Tensor constant_(ag::Tensor t, double value) {
  ag::NoGrad no_grad;
  t.array().fill(value);
  return t;
}
ag::Tensor zeros_(ag::Tensor t) { return constant_(t, 0.0); }
ag::Tensor ones_(ag::Tensor t) { return constant_(t, 1.0); }

// t ~ U[-a, a],  a = gain * sqrt(6 / (fan_in + fan_out))
ag::Tensor xavier_uniform_(ag::Tensor t, ag::Generator& gen, double gain) {
  check_finite("xavier_uniform_", "gain", gain);
  if (t.dim() < 2) fan_for("xavier_uniform_", t, FanMode::fan_in);  // the error
  if (t.numel() == 0) return t;
  const Fans f = calculate_fans(t);
  const double a = gain * std::sqrt(6.0 / double(f.fan_in + f.fan_out));
  return fill_with(t, [&] { return gen.uniform(-a, a); });
}

// t ~ N(0, std^2),  std = gain * sqrt(2 / (fan_in + fan_out))
ag::Tensor xavier_normal_(ag::Tensor t, ag::Generator& gen, double gain) {
  check_finite("xavier_normal_", "gain", gain);
  if (t.dim() < 2) fan_for("xavier_normal_", t, FanMode::fan_in);
  if (t.numel() == 0) return t;
  const Fans f = calculate_fans(t);
  const double std = gain * std::sqrt(2.0 / double(f.fan_in + f.fan_out));
  return fill_with(t, [&] { return gen.normal(0.0, std); });
}

// t ~ U[-b, b],  b = gain * sqrt(3 / fan)
ag::Tensor kaiming_uniform_(ag::Tensor t, ag::Generator& gen, double a, FanMode mode, Nonlinearity nonlinearity) {
  const std::int64_t fan = fan_for("kaiming_uniform_", t, mode);
  if (t.numel() == 0) return t;
  const double gain = calculate_gain(nonlinearity, a);
  const double bound = gain * std::sqrt(3.0 / double(fan));
  return fill_with(t, [&] { return gen.uniform(-bound, bound); });
}

// t ~ N(0, std^2),  std = gain / sqrt(fan)
ag::Tensor kaiming_normal_(ag::Tensor t, ag::Generator& gen, double a, FanMode mode, Nonlinearity nonlinearity) {
  const std::int64_t fan = fan_for("kaiming_normal_", t, mode);
  if (t.numel() == 0) return t;
  const double gain = calculate_gain(nonlinearity, a);
  const double std = gain / std::sqrt(double(fan));
  return fill_with(t, [&] { return gen.normal(0.0, std); });
}

// W = gain * Q, Q from the QR factorisation of a normal matrix (see init.hpp)
ag::Tensor orthogonal_(ag::Tensor t, ag::Generator& gen, double gain) {
  check_finite("orthogonal_", "gain", gain);
  if (t.dim() < 2)
    ag::fail("orthogonal_: only tensors with at least 2 dimensions are supported, got shape ", ag::shape_str(t.shape()));
  if (t.numel() == 0) return t;
  const std::size_t rows = t.shape()[0], cols = t.numel() / rows;
  assign(t, random_orthogonal(rows, cols, gen, gain));
  return t;
}

// each [H, H] block = spectral_scale * an orthogonal matrix
ag::Tensor scaled_recurrent_(ag::Tensor t, ag::Generator& gen, double spectral_scale) {
  check_finite("scaled_recurrent_", "spectral_scale", spectral_scale);
  if (spectral_scale < 0) ag::fail("scaled_recurrent_: expected spectral_scale >= 0, got ", spectral_scale);
  if (t.dim() != 2 || t.shape()[1] == 0 || t.shape()[0] % t.shape()[1] != 0)
    ag::fail("scaled_recurrent_: expected a recurrent weight of shape [H,H] or [k*H,H] (stacked gates), got ",
             ag::shape_str(t.shape()));
  const std::size_t h = t.shape()[1], blocks = t.shape()[0] / h;
  std::vector<double> w;
  w.reserve(t.numel());
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::vector<double> q = random_orthogonal(h, h, gen, spectral_scale);
    w.insert(w.end(), q.begin(), q.end());
  }
  assign(t, w);
  return t;
}

}  // namespace nn
