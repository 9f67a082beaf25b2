#pragma once
// The scalar twins of the SIMD kernels in kernels.hpp: plain loops, written for clarity. They
// define what each kernel must compute; the kernel tests compare the SIMD versions with them,
// and they serve as the "scalar" side of the benchmarks.
#include <cmath>
#include <cstddef>
#include <limits>

#include "kernels/kernels.hpp"

namespace ag::kernels::scalar {

template <class T> constexpr T kGeluC = T(0.7978845608028654);  // sqrt(2 / pi)
template <class T> constexpr T kGeluA = T(0.044715);

template <class T> void exp(T* y, const T* x, std::size_t n) { for (std::size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]); }
template <class T> void log(T* y, const T* x, std::size_t n) { for (std::size_t i = 0; i < n; ++i) y[i] = std::log(x[i]); }
template <class T> void tanh(T* y, const T* x, std::size_t n) { for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]); }
template <class T> void sigmoid(T* y, const T* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
}
// relu: x <= 0 ? 0 : x, so relu(NaN) = NaN (as PyTorch: a diverged run stays visible)
template <class T> void relu(T* y, const T* x, std::size_t n) { for (std::size_t i = 0; i < n; ++i) y[i] = x[i] <= T(0) ? T(0) : x[i]; }
// gelu(x) = x/2 (1 + tanh(u)), u = c (x + a x^3); written as x * sigmoid(2u), the same function,
// because 1 + tanh(u) cancels badly for x << 0 (gelu(-5) would be 30% off in float).
template <class T> void gelu(T* y, const T* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const T u = kGeluC<T> * (x[i] + kGeluA<T> * x[i] * x[i] * x[i]);
    y[i] = x[i] / (T(1) + std::exp(T(-2) * u));
  }
}
// d tanh = 1 - y^2
template <class T> void tanh_backward(T* dx, const T* y, const T* dy, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dx[i] += dy[i] * (T(1) - y[i] * y[i]);
}
// d sigmoid = y (1 - y)
template <class T> void sigmoid_backward(T* dx, const T* y, const T* dy, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dx[i] += dy[i] * y[i] * (T(1) - y[i]);
}
template <class T> void relu_backward(T* dx, const T* x, const T* dy, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dx[i] += x[i] <= T(0) ? T(0) : dy[i];  // PyTorch's threshold_backward
}
// d gelu = s + 2 x s (1 - s) u',  s = sigmoid(2u), u' = c (1 + 3 a x^2), 1 - s = e^(-2u) s
template <class T> void gelu_backward(T* dx, const T* x, const T* dy, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = x[i];
    const T e = std::exp(T(-2) * kGeluC<T> * (xi + kGeluA<T> * xi * xi * xi));
    const T s = T(1) / (T(1) + e);
    const T s_one_minus_s = std::isinf(e) ? T(0) : e * s * s;  // x << 0: e overflows, s(1-s) -> 0
    const T d = s + T(2) * xi * s_one_minus_s * kGeluC<T> * (T(1) + T(3) * kGeluA<T> * xi * xi);
    dx[i] += dy[i] * d;
  }
}
template <class T> void add(T* out, const T* a, const T* b, std::size_t n) { for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i]; }
template <class T> void sub(T* out, const T* a, const T* b, std::size_t n) { for (std::size_t i = 0; i < n; ++i) out[i] = a[i] - b[i]; }
template <class T> void mul(T* out, const T* a, const T* b, std::size_t n) { for (std::size_t i = 0; i < n; ++i) out[i] = a[i] * b[i]; }
template <class T> void div(T* out, const T* a, const T* b, std::size_t n) { for (std::size_t i = 0; i < n; ++i) out[i] = a[i] / b[i]; }
template <class T> void add_scalar(T* out, const T* a, T s, std::size_t n) { for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + s; }
template <class T> void mul_scalar(T* out, const T* a, T s, std::size_t n) { for (std::size_t i = 0; i < n; ++i) out[i] = a[i] * s; }

template <class T> void acc(T* dst, const T* src, std::size_t n) { for (std::size_t i = 0; i < n; ++i) dst[i] += src[i]; }
template <class T> void acc_scaled(T* dst, const T* src, T alpha, std::size_t n) { for (std::size_t i = 0; i < n; ++i) dst[i] += alpha * src[i]; }
template <class T> void acc_mul(T* dst, const T* a, const T* b, std::size_t n) { for (std::size_t i = 0; i < n; ++i) dst[i] += a[i] * b[i]; }
template <class T> void acc_div(T* dst, const T* a, const T* b, std::size_t n) { for (std::size_t i = 0; i < n; ++i) dst[i] += a[i] / b[i]; }
template <class T> void acc_rows(T* dst, const T* x, std::size_t rows, std::size_t cols, std::size_t ld) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) dst[c] += x[r * ld + c];
}

template <class T> T sum(const T* x, std::size_t n) {
  T s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i];
  return s;
}
template <class T> T max(const T* x, std::size_t n) {
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k (subtracting m keeps exp finite)
template <class T> void softmax_rows(T* y, const T* x, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = max(xr, cols);
    if (m == -std::numeric_limits<T>::infinity()) {  // fully masked row
      for (std::size_t j = 0; j < cols; ++j) yr[j] = T(0);
      continue;
    }
    T s = 0;
    for (std::size_t j = 0; j < cols; ++j) s += (yr[j] = std::exp(xr[j] - m));
    const T inv = T(1) / s;
    for (std::size_t j = 0; j < cols; ++j) yr[j] *= inv;
  }
}
// log_softmax(x)_j = (x_j - m) - log(sum_k exp(x_k - m)), in that order: x_j - m is exact for
// nearby values, while m + log(sum) would round the small log term to the inputs' magnitude.
template <class T> void log_softmax_rows(T* y, const T* x, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T m = max(xr, cols);
    if (m == -std::numeric_limits<T>::infinity()) {
      for (std::size_t j = 0; j < cols; ++j) yr[j] = -std::numeric_limits<T>::infinity();
      continue;
    }
    T s = 0;
    for (std::size_t j = 0; j < cols; ++j) s += std::exp(xr[j] - m);
    const T log_s = std::log(s);
    for (std::size_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - log_s;
  }
}
template <class T> void log_softmax_stats_rows(T* max_out, T* log_sum, const T* x, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T m = max(xr, cols);
    max_out[r] = m;
    if (m == -std::numeric_limits<T>::infinity()) {
      log_sum[r] = -std::numeric_limits<T>::infinity();
      continue;
    }
    T s = 0;
    for (std::size_t j = 0; j < cols; ++j) s += std::exp(xr[j] - m);
    log_sum[r] = std::log(s);
  }
}
template <class T> void softmax_backward_rows(T* dx, const T* y, const T* dy, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T *yr = y + r * cols, *dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    T dot = 0;
    for (std::size_t j = 0; j < cols; ++j) dot += dyr[j] * yr[j];
    for (std::size_t j = 0; j < cols; ++j) dxr[j] += yr[j] * (dyr[j] - dot);
  }
}
template <class T> void log_softmax_backward_rows(T* dx, const T* y, const T* dy, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T *yr = y + r * cols, *dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    const T s = sum(dyr, cols);
    for (std::size_t j = 0; j < cols; ++j) dxr[j] += dyr[j] - std::exp(yr[j]) * s;
  }
}

// mean = sum(x)/D, var = sum((x - mean)^2)/D (biased, as PyTorch), rstd = 1/sqrt(var + eps)
template <class T>
void layer_norm_rows(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, std::size_t rows,
                     std::size_t cols, T eps) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T mu = sum(xr, cols) / T(cols);
    T var = 0;
    for (std::size_t j = 0; j < cols; ++j) var += (xr[j] - mu) * (xr[j] - mu);
    var /= T(cols);
    const T rs = T(1) / std::sqrt(var + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (std::size_t j = 0; j < cols; ++j) {
      const T xhat = (xr[j] - mu) * rs;
      yr[j] = xhat * (gamma ? gamma[j] : T(1)) + (beta ? beta[j] : T(0));
    }
  }
}
// With g = dy * gamma and xhat = (x - mean) * rstd:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
template <class T>
void layer_norm_backward_rows(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                              const T* gamma, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T *xr = x + r * cols, *dyr = dy + r * cols;
    const T mu = mean[r], rs = rstd[r];
    T mean_g = 0, mean_gx = 0;
    for (std::size_t j = 0; j < cols; ++j) {
      const T xhat = (xr[j] - mu) * rs;
      const T g = dyr[j] * (gamma ? gamma[j] : T(1));
      mean_g += g;
      mean_gx += g * xhat;
      if (dgamma) dgamma[j] += dyr[j] * xhat;
      if (dbeta) dbeta[j] += dyr[j];
    }
    mean_g /= T(cols);
    mean_gx /= T(cols);
    if (!dx) continue;
    T* dxr = dx + r * cols;
    for (std::size_t j = 0; j < cols; ++j) {
      const T xhat = (xr[j] - mu) * rs;
      const T g = dyr[j] * (gamma ? gamma[j] : T(1));
      dxr[j] += rs * (g - mean_g - xhat * mean_gx);
    }
  }
}

// m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// Adam adds wd * p to g first; AdamW (decoupled) multiplies p by (1 - lr * wd) first.
template <class T>
void adam_update(T* param, T* m, T* v, const T* grad, std::size_t n, const AdamParams& p) {
  const T b1 = T(p.beta1), b2 = T(p.beta2), lr = T(p.lr), eps = T(p.eps), wd = T(p.weight_decay);
  const T bc1 = T(1) - T(std::pow(p.beta1, double(p.step)));
  const T bc2 = T(1) - T(std::pow(p.beta2, double(p.step)));
  for (std::size_t i = 0; i < n; ++i) {
    T g = grad[i];
    if (p.decoupled) param[i] -= lr * wd * param[i];
    else g += wd * param[i];
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    param[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
  }
}

}  // namespace ag::kernels::scalar
