// The SIMD kernels of kernels.hpp, written once with Google Highway and compiled for every x86
// target (AVX3 = AVX-512, AVX2, SSE4, SSSE3, SCALAR): foreach_target.h re-includes this file once
// per target, and HWY_DYNAMIC_DISPATCH calls the best one the CPU supports.
//
// Shapes: every buffer is contiguous; elementwise kernels see n elements, *_rows kernels a
// row-major [rows, cols] matrix (mean/rstd: [rows], gamma/beta/dgamma/dbeta: [cols]).
// Semantics are those of the scalar twins in scalar.hpp, which the tests compare against:
//   - "acc" and "_backward" kernels ADD into their output;
//   - exp, log, tanh, sigmoid keep std::'s edge cases: exp(-inf) = 0, exp(x > 88.72f) = inf,
//     log(0) = -inf, log(x < 0) = NaN, NaN in gives NaN out;
//   - a softmax row that is all -inf gives zeros (log_softmax: -inf), -inf entries give 0.
// Loops: full vectors, then the tail as one partial vector with masked loads/stores, so short
// rows (8..128 elements) also run in SIMD.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "kernels/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace ag::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class T> constexpr T kInf = std::numeric_limits<T>::infinity();
template <class T> constexpr T kGeluC = T(0.7978845608028654);  // sqrt(2 / pi), as scalar.hpp
template <class T> constexpr T kGeluA = T(0.044715);

// ---------------------------------------------------------------------------------------------
// Loads and stores of count <= Lanes(d) elements: the tail of a buffer touches nothing past its end.

template <class D, class T = hn::TFromD<D>>
HWY_INLINE hn::Vec<D> LoadPart(D d, const T* p, std::size_t count) {
  if (count == hn::Lanes(d)) return hn::LoadU(d, p);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return hn::MaskedLoad(hn::FirstN(d, count), d, p);  // lanes past count read as zero, never fault
#else
  // Before AVX2, Highway's MaskedLoad loads a whole aligned vector: copy through a buffer instead
  // (count < Lanes(d) here; the min() only tells the compiler so).
  constexpr std::size_t kMaxLanes = HWY_MAX_BYTES / sizeof(T);
  HWY_ALIGN T buf[kMaxLanes] = {};
  std::memcpy(buf, p, std::min(count, kMaxLanes) * sizeof(T));
  return hn::Load(d, buf);
#endif
}

template <class D, class T = hn::TFromD<D>>
HWY_INLINE void StorePart(D d, hn::Vec<D> v, T* p, std::size_t count) {
  if (count == hn::Lanes(d)) return hn::StoreU(v, d, p);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  hn::BlendedStore(v, hn::FirstN(d, count), d, p);
#else
  constexpr std::size_t kMaxLanes = HWY_MAX_BYTES / sizeof(T);
  HWY_ALIGN T buf[kMaxLanes];
  hn::Store(v, d, buf);
  std::memcpy(p, buf, std::min(count, kMaxLanes) * sizeof(T));
#endif
}

// Calls step(i, count) on [0, n) one vector at a time: count == Lanes(d) for the full vectors,
// then once with count < Lanes(d) for the tail, if any.
template <class D, class Step>
HWY_INLINE void ForEachVector(D d, std::size_t n, Step&& step) {
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) step(i, N);
  if (i < n) step(i, n - i);
}

// sum_i term(i, count) over [0, n); term returns up to Lanes(d) values and must give zeros in
// the lanes past count (it may also store: softmax keeps its exps). Four accumulators: one alone
// would wait on each add's latency. Blocks of kBlock vectors are summed on their own, then added
// to the total, so rounding errors grow with the block length rather than with n.
template <class D, class Term, class T = hn::TFromD<D>>
HWY_INLINE T SumOf(D d, std::size_t n, Term&& term) {
  constexpr std::size_t kBlock = 256;
  const std::size_t N = hn::Lanes(d);
  auto total = hn::Zero(d);
  std::size_t i = 0;
  while (i + 4 * N <= n) {
    const std::size_t block_end = std::min(n, i + kBlock * N);
    auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    for (; i + 4 * N <= block_end; i += 4 * N) {
      s0 = hn::Add(s0, term(i, N));
      s1 = hn::Add(s1, term(i + N, N));
      s2 = hn::Add(s2, term(i + 2 * N, N));
      s3 = hn::Add(s3, term(i + 3 * N, N));
    }
    total = hn::Add(total, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)));
  }
  auto rest = hn::Zero(d);
  for (; i + N <= n; i += N) rest = hn::Add(rest, term(i, N));
  if (i < n) rest = hn::Add(rest, term(i, n - i));
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(total, rest)));
}

// max_i x[i], -inf for n == 0. "x > m ? x : m" as in scalar.hpp, so NaNs are skipped.
template <class D, class T = hn::TFromD<D>>
HWY_INLINE T MaxOf(D d, const T* x, std::size_t n) {
  const auto lowest = hn::Set(d, -kInf<T>);
  auto m0 = lowest, m1 = lowest;
  const auto keep_greater = [](auto v, auto m) HWY_ATTR { return hn::IfThenElse(hn::Gt(v, m), v, m); };
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    m0 = keep_greater(hn::LoadU(d, x + i), m0);
    m1 = keep_greater(hn::LoadU(d, x + i + N), m1);
  }
  if (i + N <= n) {
    m0 = keep_greater(hn::LoadU(d, x + i), m0);
    i += N;
  }
  if (i < n) {  // the zeros loaded past n must not win: give those lanes -inf
    const auto tail = hn::FirstN(d, n - i);
    m1 = keep_greater(hn::IfThenElse(tail, LoadPart(d, x + i, n - i), lowest), m1);
  }
  return hn::GetLane(hn::MaxOfLanes(d, keep_greater(m0, m1)));
}

// ---------------------------------------------------------------------------------------------
// Vector math with std::'s edge cases (Highway's contrib/math leaves the domain to the caller).

// e^x. Highway's Exp is valid up to +104 (f32) / +706 (f64) and turns +inf into garbage; clamped
// just past log(max) = 88.72 / 709.78 it still overflows to inf, like std::exp. Below -104 / -1000
// (and at -inf) Highway already returns 0.
template <class D, class V>
HWY_INLINE V VecExp(D d, V x) {
  using T = hn::TFromD<D>;
  const V overflow = hn::Set(d, T(sizeof(T) == 4 ? 89.0 : 710.0));
  const V y = hn::Exp(d, hn::Min(x, overflow));
  return hn::IfThenElse(hn::IsNaN(x), x, y);  // Min may drop a NaN: put it back
}

// ln x. Highway's Log is valid on (0, max] only: Log(0) is about -105 and Log(-1) about +177.
template <class D, class V>
HWY_INLINE V VecLog(D d, V x) {
  using T = hn::TFromD<D>;
  const V zero = hn::Zero(d), inf = hn::Set(d, kInf<T>);
  V y = hn::Log(d, x);
  y = hn::IfThenElse(hn::Eq(x, zero), hn::Neg(inf), y);  // log(+-0) = -inf
  y = hn::IfThenElse(hn::Eq(x, inf), inf, y);             // log(inf) = inf
  // "not (x >= 0)" is true for x < 0 and for NaN: both give NaN
  return hn::IfThenElse(hn::Not(hn::Ge(x, zero)), hn::Set(d, std::numeric_limits<T>::quiet_NaN()), y);
}

// tanh x. Highway's Tanh returns +-1 beyond |x| > 18.7 (and for +-inf); only NaN needs help.
template <class D, class V>
HWY_INLINE V VecTanh(D d, V x) {
  return hn::IfThenElse(hn::IsNaN(x), x, hn::Tanh(d, x));
}

// 1 / (1 + e^-x): e^-x = inf for x < -88.7 gives 0, as the scalar twin.
template <class D, class V>
HWY_INLINE V VecSigmoid(D d, V x) {
  const V one = hn::Set(d, hn::TFromD<D>(1));
  return hn::Div(one, hn::Add(one, VecExp(d, hn::Neg(x))));
}

// The GELU's inner argument u = c (x + a x^3).
template <class D, class V>
HWY_INLINE V GeluArg(D d, V x) {
  using T = hn::TFromD<D>;
  const V ax3 = hn::Mul(hn::Mul(hn::Mul(hn::Set(d, kGeluA<T>), x), x), x);
  return hn::Mul(hn::Set(d, kGeluC<T>), hn::Add(x, ax3));
}

// ---------------------------------------------------------------------------------------------
// Elementwise maps. "out may alias an input": each vector is loaded before its result is stored.

// y[i] = f(x[i])
template <class T, class F>
HWY_INLINE void Map(T* y, const T* x, std::size_t n, F&& f) {
  const hn::ScalableTag<T> d;
  ForEachVector(d, n, [&](std::size_t i, std::size_t c) HWY_ATTR {
    StorePart(d, f(d, LoadPart(d, x + i, c)), y + i, c);
  });
}
// out[i] = f(a[i], b[i])
template <class T, class F>
HWY_INLINE void Map2(T* out, const T* a, const T* b, std::size_t n, F&& f) {
  const hn::ScalableTag<T> d;
  ForEachVector(d, n, [&](std::size_t i, std::size_t c) HWY_ATTR {
    StorePart(d, f(d, LoadPart(d, a + i, c), LoadPart(d, b + i, c)), out + i, c);
  });
}
// dst[i] += f(a[i], b[i])
template <class T, class F>
HWY_INLINE void AccMap2(T* dst, const T* a, const T* b, std::size_t n, F&& f) {
  const hn::ScalableTag<T> d;
  ForEachVector(d, n, [&](std::size_t i, std::size_t c) HWY_ATTR {
    const auto term = f(d, LoadPart(d, a + i, c), LoadPart(d, b + i, c));
    StorePart(d, hn::Add(LoadPart(d, dst + i, c), term), dst + i, c);
  });
}

// y = f(x)
template <class T> void Exp(T* y, const T* x, std::size_t n) {
  Map(y, x, n, [](auto d, auto v) HWY_ATTR { return VecExp(d, v); });
}
template <class T> void Log(T* y, const T* x, std::size_t n) {
  Map(y, x, n, [](auto d, auto v) HWY_ATTR { return VecLog(d, v); });
}
template <class T> void Tanh(T* y, const T* x, std::size_t n) {
  Map(y, x, n, [](auto d, auto v) HWY_ATTR { return VecTanh(d, v); });
}
template <class T> void Sigmoid(T* y, const T* x, std::size_t n) {
  Map(y, x, n, [](auto d, auto v) HWY_ATTR { return VecSigmoid(d, v); });
}
template <class T> void Relu(T* y, const T* x, std::size_t n) {
  // x <= 0 ? 0 : x, so NaN stays NaN (as in PyTorch, and the scalar twin; Max would depend on the
  // operand order)
  Map(y, x, n, [](auto d, auto v) HWY_ATTR { return hn::IfThenZeroElse(hn::Le(v, hn::Zero(d)), v); });
}
// gelu(x) = x/2 (1 + tanh u) = x sigmoid(2u) = x / (1 + e^(-2u)): one exp, and no cancellation
// in 1 + tanh u for negative x (so for x << 0 it is more accurate than the scalar twin).
template <class T> void Gelu(T* y, const T* x, std::size_t n) {
  Map(y, x, n, [](auto d, auto v) HWY_ATTR {
    const auto one = hn::Set(d, T(1));
    const auto e = VecExp(d, hn::Mul(hn::Set(d, T(-2)), GeluArg(d, v)));
    return hn::Div(v, hn::Add(one, e));
  });
}

// dx += dy * f'(.)
template <class T> void TanhBackward(T* dx, const T* y, const T* dy, std::size_t n) {
  AccMap2(dx, y, dy, n, [](auto d, auto yv, auto g) HWY_ATTR {  // 1 - y^2
    return hn::Mul(g, hn::Sub(hn::Set(d, T(1)), hn::Mul(yv, yv)));
  });
}
template <class T> void SigmoidBackward(T* dx, const T* y, const T* dy, std::size_t n) {
  AccMap2(dx, y, dy, n, [](auto d, auto yv, auto g) HWY_ATTR {  // y (1 - y)
    return hn::Mul(hn::Mul(g, yv), hn::Sub(hn::Set(d, T(1)), yv));
  });
}
template <class T> void ReluBackward(T* dx, const T* x, const T* dy, std::size_t n) {
  AccMap2(dx, x, dy, n, [](auto d, auto xv, auto g) HWY_ATTR {
    return hn::IfThenZeroElse(hn::Le(xv, hn::Zero(d)), g);  // x <= 0 ? 0 : dy, PyTorch's threshold_backward
  });
}
// With s = sigmoid(2u) = (1 + t)/2, t = tanh u:  1 - t^2 = 4 s (1 - s), so
// gelu'(x) = (1 + t)/2 + x/2 (1 - t^2) c (1 + 3 a x^2) = s + 2 x s (1 - s) c (1 + 3 a x^2).
template <class T> void GeluBackward(T* dx, const T* x, const T* dy, std::size_t n) {
  AccMap2(dx, x, dy, n, [](auto d, auto xv, auto g) HWY_ATTR {
    const auto one = hn::Set(d, T(1));
    const auto e = VecExp(d, hn::Mul(hn::Set(d, T(-2)), GeluArg(d, xv)));  // e^(-2u)
    const auto s = hn::Div(one, hn::Add(one, e));
    // 1 - s = e s, without the cancellation of 1 - s for s near 1; e = inf exactly where s = 0
    const auto one_minus_s = hn::IfThenElse(hn::Eq(s, hn::Zero(d)), one, hn::Mul(e, s));
    const auto slope = hn::MulAdd(hn::Set(d, T(3) * kGeluA<T>), hn::Mul(xv, xv), one);  // 1 + 3 a x^2
    // x s (1 - s) first: it is 0 where s saturates, before slope (huge for large |x|) multiplies it
    const auto xss = hn::Mul(hn::Mul(hn::Set(d, T(2)), xv), hn::Mul(s, one_minus_s));
    const auto dgelu = hn::Add(s, hn::Mul(hn::Mul(xss, hn::Set(d, kGeluC<T>)), slope));
    return hn::Mul(g, dgelu);
  });
}

// out = a op b
template <class T> void AddK(T* out, const T* a, const T* b, std::size_t n) {
  Map2(out, a, b, n, [](auto, auto u, auto v) HWY_ATTR { return hn::Add(u, v); });
}
template <class T> void SubK(T* out, const T* a, const T* b, std::size_t n) {
  Map2(out, a, b, n, [](auto, auto u, auto v) HWY_ATTR { return hn::Sub(u, v); });
}
template <class T> void MulK(T* out, const T* a, const T* b, std::size_t n) {
  Map2(out, a, b, n, [](auto, auto u, auto v) HWY_ATTR { return hn::Mul(u, v); });
}
template <class T> void DivK(T* out, const T* a, const T* b, std::size_t n) {
  Map2(out, a, b, n, [](auto, auto u, auto v) HWY_ATTR { return hn::Div(u, v); });
}
template <class T> void AddScalar(T* out, const T* a, T s, std::size_t n) {
  Map(out, a, n, [s](auto d, auto v) HWY_ATTR { return hn::Add(v, hn::Set(d, s)); });
}
template <class T> void MulScalar(T* out, const T* a, T s, std::size_t n) {
  Map(out, a, n, [s](auto d, auto v) HWY_ATTR { return hn::Mul(v, hn::Set(d, s)); });
}

// accumulation: dst += ...  (acc and acc_scaled use Map2 with dst as output and first input)
template <class T> void Acc(T* dst, const T* src, std::size_t n) {
  Map2(dst, dst, src, n, [](auto, auto u, auto v) HWY_ATTR { return hn::Add(u, v); });
}
template <class T> void AccScaled(T* dst, const T* src, T alpha, std::size_t n) {
  Map2(dst, dst, src, n, [alpha](auto d, auto u, auto v) HWY_ATTR {
    return hn::Add(u, hn::Mul(hn::Set(d, alpha), v));
  });
}
template <class T> void AccMul(T* dst, const T* a, const T* b, std::size_t n) {
  AccMap2(dst, a, b, n, [](auto, auto u, auto v) HWY_ATTR { return hn::Mul(u, v); });
}
template <class T> void AccDiv(T* dst, const T* a, const T* b, std::size_t n) {
  AccMap2(dst, a, b, n, [](auto, auto u, auto v) HWY_ATTR { return hn::Div(u, v); });
}
// Column sums added into dst: four vectors of columns kept in registers over all the rows (dst
// read and written once), then one vector at a time; each lane adds its column's rows in order.
template <class T> void AccRows(T* dst, const T* x, std::size_t rows, std::size_t cols, std::size_t ld) {
  const hn::ScalableTag<T> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t c = 0;
  for (; c + 4 * N <= cols; c += 4 * N) {
    auto a0 = hn::LoadU(d, dst + c), a1 = hn::LoadU(d, dst + c + N), a2 = hn::LoadU(d, dst + c + 2 * N),
         a3 = hn::LoadU(d, dst + c + 3 * N);
    for (std::size_t r = 0; r < rows; ++r) {
      const T* xr = x + r * ld + c;
      a0 = hn::Add(a0, hn::LoadU(d, xr));
      a1 = hn::Add(a1, hn::LoadU(d, xr + N));
      a2 = hn::Add(a2, hn::LoadU(d, xr + 2 * N));
      a3 = hn::Add(a3, hn::LoadU(d, xr + 3 * N));
    }
    hn::StoreU(a0, d, dst + c), hn::StoreU(a1, d, dst + c + N), hn::StoreU(a2, d, dst + c + 2 * N), hn::StoreU(a3, d, dst + c + 3 * N);
  }
  for (; c < cols; c += N) {
    const std::size_t count = std::min(N, cols - c);
    auto a = LoadPart(d, dst + c, count);
    for (std::size_t r = 0; r < rows; ++r) a = hn::Add(a, LoadPart(d, x + r * ld + c, count));
    StorePart(d, a, dst + c, count);
  }
}

// reductions
template <class T> T Sum(const T* x, std::size_t n) {
  const hn::ScalableTag<T> d;
  return SumOf(d, n, [&](std::size_t i, std::size_t c) HWY_ATTR { return LoadPart(d, x + i, c); });
}
template <class T> T Max(const T* x, std::size_t n) {
  const hn::ScalableTag<T> d;
  return MaxOf(d, x, n);
}

// ---------------------------------------------------------------------------------------------
// Row kernels over [rows, cols].

// softmax(x)_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k
template <class T> void SoftmaxRows(T* y, const T* x, std::size_t rows, std::size_t cols) {
  const hn::ScalableTag<T> d;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    // 1) the row max; a fully masked row (all -inf) gives zeros
    const T m = MaxOf(d, xr, cols);
    if (m == -kInf<T>) {
      std::fill(yr, yr + cols, T(0));
      continue;
    }
    // 2) e_j = exp(x_j - m), stored into y, and their sum (exp(-inf) = 0 for masked entries)
    const auto vm = hn::Set(d, m);
    const T s = SumOf(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      const auto e = VecExp(d, hn::Sub(LoadPart(d, xr + j, c), vm));
      StorePart(d, e, yr + j, c);
      return c < hn::Lanes(d) ? hn::IfThenElseZero(hn::FirstN(d, c), e) : e;  // lanes past the row: exp(-m)
    });
    // 3) y_j = e_j / sum, as a multiply by 1/sum like the scalar twin
    const auto inv = hn::Set(d, T(1) / s);
    ForEachVector(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      StorePart(d, hn::Mul(LoadPart(d, yr + j, c), inv), yr + j, c);
    });
  }
}

// The row's max m and log(sum_k exp(x_k - m)); false for a row that is all -inf (m = -inf).
template <class D, class T>
HWY_INLINE bool RowLogSumExp(D d, const T* xr, std::size_t cols, T& m, T& log_s) {
  m = MaxOf(d, xr, cols);
  if (m == -kInf<T>) return false;
  const auto vm = hn::Set(d, m);
  const T s = SumOf(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
    const auto e = VecExp(d, hn::Sub(LoadPart(d, xr + j, c), vm));
    return c < hn::Lanes(d) ? hn::IfThenElseZero(hn::FirstN(d, c), e) : e;  // lanes past the row: exp(-m)
  });
  log_s = std::log(s);
  return true;
}

// log_softmax(x)_j = (x_j - m) - log(sum_k exp(x_k - m)); see scalar.hpp for why in that order
template <class T> void LogSoftmaxRows(T* y, const T* x, std::size_t rows, std::size_t cols) {
  const hn::ScalableTag<T> d;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T m, log_s;
    if (!RowLogSumExp(d, xr, cols, m, log_s)) {
      std::fill(yr, yr + cols, -kInf<T>);
      continue;
    }
    const auto vm = hn::Set(d, m), vlog_s = hn::Set(d, log_s);
    ForEachVector(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      StorePart(d, hn::Sub(hn::Sub(LoadPart(d, xr + j, c), vm), vlog_s), yr + j, c);
    });
  }
}
template <class T> void LogSoftmaxStatsRows(T* max, T* log_sum, const T* x, std::size_t rows, std::size_t cols) {
  const hn::ScalableTag<T> d;
  for (std::size_t r = 0; r < rows; ++r)
    if (!RowLogSumExp(d, x + r * cols, cols, max[r], log_sum[r])) log_sum[r] = -kInf<T>;
}

// dx += y * (dy - sum(dy * y))
template <class T> void SoftmaxBackwardRows(T* dx, const T* y, const T* dy, std::size_t rows, std::size_t cols) {
  const hn::ScalableTag<T> d;
  for (std::size_t r = 0; r < rows; ++r) {
    const T *yr = y + r * cols, *dyr = dy + r * cols;
    const T dot = SumOf(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      return hn::Mul(LoadPart(d, dyr + j, c), LoadPart(d, yr + j, c));
    });
    const auto vdot = hn::Set(d, dot);
    AccMap2(dx + r * cols, yr, dyr, cols, [&](auto, auto yv, auto g) HWY_ATTR {
      return hn::Mul(yv, hn::Sub(g, vdot));
    });
  }
}

// dx += dy - exp(y) * sum(dy), y = log_softmax(x)
template <class T> void LogSoftmaxBackwardRows(T* dx, const T* y, const T* dy, std::size_t rows, std::size_t cols) {
  const hn::ScalableTag<T> d;
  for (std::size_t r = 0; r < rows; ++r) {
    const T *yr = y + r * cols, *dyr = dy + r * cols;
    const auto vs = hn::Set(d, SumOf(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      return LoadPart(d, dyr + j, c);
    }));
    AccMap2(dx + r * cols, yr, dyr, cols, [&](auto dd, auto yv, auto g) HWY_ATTR {
      return hn::Sub(g, hn::Mul(VecExp(dd, yv), vs));
    });
  }
}

// y = (x - mean) * rstd * gamma + beta; mean = sum(x)/D, var = sum((x - mean)^2)/D (two passes,
// as the scalar twin), rstd = 1/sqrt(var + eps). gamma/beta may be null (1 and 0).
template <class T>
void LayerNormRows(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta, std::size_t rows,
                   std::size_t cols, T eps) {
  const hn::ScalableTag<T> d;
  const auto one = hn::Set(d, T(1));
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    // 1) mean and variance
    const T mu = SumOf(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR { return LoadPart(d, xr + j, c); }) / T(cols);
    const auto vmu = hn::Set(d, mu);
    T var = SumOf(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      const auto dev = hn::Sub(LoadPart(d, xr + j, c), vmu);
      const auto sq = hn::Mul(dev, dev);
      return c < hn::Lanes(d) ? hn::IfThenElseZero(hn::FirstN(d, c), sq) : sq;  // lanes past the row: mu^2
    });
    var /= T(cols);
    const T rs = T(1) / std::sqrt(var + eps);
    mean[r] = mu;
    rstd[r] = rs;
    // 2) normalise, scale, shift
    const auto vrs = hn::Set(d, rs);
    ForEachVector(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      const auto xhat = hn::Mul(hn::Sub(LoadPart(d, xr + j, c), vmu), vrs);
      const auto g = gamma ? LoadPart(d, gamma + j, c) : one;
      const auto b = beta ? LoadPart(d, beta + j, c) : hn::Zero(d);
      StorePart(d, hn::Add(hn::Mul(xhat, g), b), yr + j, c);
    });
  }
}

// With g = dy * gamma and xhat = (x - mean) * rstd:
//   dx += rstd * (g - mean(g) - xhat * mean(g * xhat)),  dgamma += dy * xhat,  dbeta += dy
template <class T>
void LayerNormBackwardRows(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean, const T* rstd,
                           const T* gamma, std::size_t rows, std::size_t cols) {
  const hn::ScalableTag<T> d;
  for (std::size_t r = 0; r < rows; ++r) {
    const T *xr = x + r * cols, *dyr = dy + r * cols;
    const auto vmu = hn::Set(d, mean[r]), vrs = hn::Set(d, rstd[r]);
    // 1) the two row means, and the parameter gradients (lanes past the row load zeros: dy = 0
    //    makes g, g * xhat and the stored increments zero there)
    auto sum_g = hn::Zero(d), sum_gx = hn::Zero(d);
    ForEachVector(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      const auto gy = LoadPart(d, dyr + j, c);
      const auto xhat = hn::Mul(hn::Sub(LoadPart(d, xr + j, c), vmu), vrs);
      const auto g = gamma ? hn::Mul(gy, LoadPart(d, gamma + j, c)) : gy;
      sum_g = hn::Add(sum_g, g);
      sum_gx = hn::Add(sum_gx, hn::Mul(g, xhat));
      if (dgamma) StorePart(d, hn::Add(LoadPart(d, dgamma + j, c), hn::Mul(gy, xhat)), dgamma + j, c);
      if (dbeta) StorePart(d, hn::Add(LoadPart(d, dbeta + j, c), gy), dbeta + j, c);
    });
    if (!dx) continue;
    const auto mean_g = hn::Set(d, hn::GetLane(hn::SumOfLanes(d, sum_g)) / T(cols));
    const auto mean_gx = hn::Set(d, hn::GetLane(hn::SumOfLanes(d, sum_gx)) / T(cols));
    // 2) dx
    T* dxr = dx + r * cols;
    ForEachVector(d, cols, [&](std::size_t j, std::size_t c) HWY_ATTR {
      const auto gy = LoadPart(d, dyr + j, c);
      const auto xhat = hn::Mul(hn::Sub(LoadPart(d, xr + j, c), vmu), vrs);
      const auto g = gamma ? hn::Mul(gy, LoadPart(d, gamma + j, c)) : gy;
      const auto inc = hn::Mul(vrs, hn::Sub(hn::Sub(g, mean_g), hn::Mul(xhat, mean_gx)));
      StorePart(d, hn::Add(LoadPart(d, dxr + j, c), inc), dxr + j, c);
    });
  }
}

// m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
// Adam adds wd * p to g first; AdamW (decoupled) subtracts lr * wd * p from p first.
template <class T>
void AdamUpdate(T* param, T* m, T* v, const T* grad, std::size_t n, const AdamParams& p) {
  const hn::ScalableTag<T> d;
  // the scalars exactly as the scalar twin rounds them
  const T b1 = T(p.beta1), b2 = T(p.beta2), lr = T(p.lr), eps = T(p.eps), wd = T(p.weight_decay);
  const T bc1 = T(1) - T(std::pow(p.beta1, double(p.step)));
  const T bc2 = T(1) - T(std::pow(p.beta2, double(p.step)));
  const auto vb1 = hn::Set(d, b1), vb2 = hn::Set(d, b2), vc1 = hn::Set(d, T(1) - b1), vc2 = hn::Set(d, T(1) - b2);
  const auto vlr = hn::Set(d, lr), vwd = hn::Set(d, wd), vlrwd = hn::Set(d, lr * wd), veps = hn::Set(d, eps);
  const auto vbc1 = hn::Set(d, bc1), vbc2 = hn::Set(d, bc2);
  const bool decoupled = p.decoupled;
  ForEachVector(d, n, [&](std::size_t i, std::size_t c) HWY_ATTR {
    auto pv = LoadPart(d, param + i, c);
    auto g = LoadPart(d, grad + i, c);
    if (decoupled) pv = hn::Sub(pv, hn::Mul(vlrwd, pv));
    else g = hn::Add(g, hn::Mul(vwd, pv));
    const auto mv = hn::Add(hn::Mul(vb1, LoadPart(d, m + i, c)), hn::Mul(vc1, g));
    const auto vv = hn::Add(hn::Mul(vb2, LoadPart(d, v + i, c)), hn::Mul(hn::Mul(vc2, g), g));
    const auto step = hn::Div(hn::Div(mv, vbc1), hn::Add(hn::Sqrt(hn::Div(vv, vbc2)), veps));
    StorePart(d, mv, m + i, c);
    StorePart(d, vv, v + i, c);
    StorePart(d, hn::Sub(pv, hn::Mul(vlr, step)), param + i, c);
  });
}

// The name of the target this file was compiled for; dispatched, it names the one that runs.
const char* ChosenTargetName() { return hwy::TargetName(HWY_TARGET); }

// Highway exports plain functions, not templates: one name per element type (a reference to the
// function, so &Name gives its address as HWY_EXPORT expects).
#define AG_PER_TYPE(Kernel)                            \
  static constexpr auto& Kernel##F32 = Kernel<float>;  \
  static constexpr auto& Kernel##F64 = Kernel<double>;
AG_PER_TYPE(Exp) AG_PER_TYPE(Log) AG_PER_TYPE(Tanh) AG_PER_TYPE(Sigmoid) AG_PER_TYPE(Relu) AG_PER_TYPE(Gelu)
AG_PER_TYPE(TanhBackward) AG_PER_TYPE(SigmoidBackward) AG_PER_TYPE(ReluBackward) AG_PER_TYPE(GeluBackward)
AG_PER_TYPE(AddK) AG_PER_TYPE(SubK) AG_PER_TYPE(MulK) AG_PER_TYPE(DivK) AG_PER_TYPE(AddScalar) AG_PER_TYPE(MulScalar)
AG_PER_TYPE(Acc) AG_PER_TYPE(AccScaled) AG_PER_TYPE(AccMul) AG_PER_TYPE(AccDiv) AG_PER_TYPE(AccRows) AG_PER_TYPE(Sum) AG_PER_TYPE(Max)
AG_PER_TYPE(SoftmaxRows) AG_PER_TYPE(LogSoftmaxRows) AG_PER_TYPE(LogSoftmaxStatsRows) AG_PER_TYPE(SoftmaxBackwardRows)
AG_PER_TYPE(LogSoftmaxBackwardRows) AG_PER_TYPE(LayerNormRows) AG_PER_TYPE(LayerNormBackwardRows)
AG_PER_TYPE(AdamUpdate)
#undef AG_PER_TYPE

}  // namespace HWY_NAMESPACE
}  // namespace ag::kernels
HWY_AFTER_NAMESPACE();

// ---------------------------------------------------------------------------------------------
// Compiled once: the dispatch tables and the public entry points of kernels.hpp.
#if HWY_ONCE
namespace ag::kernels {

HWY_EXPORT(ChosenTargetName);
const char* simd_target() { return HWY_DYNAMIC_DISPATCH(ChosenTargetName)(); }

// Note [ATTNLAB_SIMD]: the kernels' results differ in the last bits between targets (AVX-512 sums
// 16 lanes where AVX2 sums 8), and a training run amplifies such bits into other numbers. To give the
// same figures on every x86 machine, `ATTNLAB_SIMD=AVX2` caps the target: every better one is
// disabled before the first kernel runs. Names are Highway's (AVX3, AVX2, SSE4, SSSE3); a name the
// CPU does not support leaves its best lower target; an unknown name is reported and ignored.
bool cap_simd_target(const char* name) {
  for (std::int64_t bit = 1; bit != 0 && bit <= HWY_SCALAR; bit <<= 1) {
    if (!(HWY_TARGETS & bit) || std::strcmp(hwy::TargetName(bit), name) != 0) continue;
    hwy::DisableTargets(bit - 1);  // lower bits are the better targets
    return true;
  }
  return false;
}
namespace {
bool cap_simd_target_from_env() {
  const char* want = std::getenv("ATTNLAB_SIMD");
  if (!want || !*want) return false;
  if (cap_simd_target(want)) return true;
  std::fprintf(stderr, "attnlab: ATTNLAB_SIMD=%s is not a target of this build; using %s\n", want, simd_target());
  return false;
}
[[maybe_unused]] const bool g_simd_capped = cap_simd_target_from_env();
}  // namespace


#define AG_EXPORT(Kernel) \
  HWY_EXPORT(Kernel##F32);  \
  HWY_EXPORT(Kernel##F64);
AG_EXPORT(Exp) AG_EXPORT(Log) AG_EXPORT(Tanh) AG_EXPORT(Sigmoid) AG_EXPORT(Relu) AG_EXPORT(Gelu)
AG_EXPORT(TanhBackward) AG_EXPORT(SigmoidBackward) AG_EXPORT(ReluBackward) AG_EXPORT(GeluBackward)
AG_EXPORT(AddK) AG_EXPORT(SubK) AG_EXPORT(MulK) AG_EXPORT(DivK) AG_EXPORT(AddScalar) AG_EXPORT(MulScalar)
AG_EXPORT(Acc) AG_EXPORT(AccScaled) AG_EXPORT(AccMul) AG_EXPORT(AccDiv) AG_EXPORT(AccRows) AG_EXPORT(Sum) AG_EXPORT(Max)
AG_EXPORT(SoftmaxRows) AG_EXPORT(LogSoftmaxRows) AG_EXPORT(LogSoftmaxStatsRows) AG_EXPORT(SoftmaxBackwardRows)
AG_EXPORT(LogSoftmaxBackwardRows) AG_EXPORT(LayerNormRows) AG_EXPORT(LayerNormBackwardRows)
AG_EXPORT(AdamUpdate)
#undef AG_EXPORT

// The explicit specializations declared in kernels.hpp: T = float calls the F32 table, double F64.
// Element-wise kernels split their buffers into chunks of whole 64-element blocks, one per thread
// (Note [threads]): every element computed as on one thread, vector tails only at the end.
#define AG_CHUNKS(n, body) parallel_for(n, 1, 64, [&](std::size_t b, std::size_t e) { body; })
#define AG_DISPATCH(T, S)                                                                                        \
  template <> void exp<T>(T* y, const T* x, std::size_t n) { AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(Exp##S)(y + b, x + b, e - b)); } \
  template <> void log<T>(T* y, const T* x, std::size_t n) { AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(Log##S)(y + b, x + b, e - b)); } \
  template <> void tanh<T>(T* y, const T* x, std::size_t n) { AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(Tanh##S)(y + b, x + b, e - b)); } \
  template <> void sigmoid<T>(T* y, const T* x, std::size_t n) {                                               \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(Sigmoid##S)(y + b, x + b, e - b));                                       \
  }                                                                                                            \
  template <> void relu<T>(T* y, const T* x, std::size_t n) { AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(Relu##S)(y + b, x + b, e - b)); } \
  template <> void gelu<T>(T* y, const T* x, std::size_t n) { AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(Gelu##S)(y + b, x + b, e - b)); } \
  template <> void tanh_backward<T>(T* dx, const T* y, const T* dy, std::size_t n) {                           \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(TanhBackward##S)(dx + b, y + b, dy + b, e - b));                         \
  }                                                                                                            \
  template <> void sigmoid_backward<T>(T* dx, const T* y, const T* dy, std::size_t n) {                        \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(SigmoidBackward##S)(dx + b, y + b, dy + b, e - b));                      \
  }                                                                                                            \
  template <> void relu_backward<T>(T* dx, const T* x, const T* dy, std::size_t n) {                           \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(ReluBackward##S)(dx + b, x + b, dy + b, e - b));                         \
  }                                                                                                            \
  template <> void gelu_backward<T>(T* dx, const T* x, const T* dy, std::size_t n) {                           \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(GeluBackward##S)(dx + b, x + b, dy + b, e - b));                         \
  }                                                                                                            \
  template <> void add<T>(T* o, const T* x, const T* y, std::size_t n) {                                       \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(AddK##S)(o + b, x + b, y + b, e - b));                                   \
  }                                                                                                            \
  template <> void sub<T>(T* o, const T* x, const T* y, std::size_t n) {                                       \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(SubK##S)(o + b, x + b, y + b, e - b));                                   \
  }                                                                                                            \
  template <> void mul<T>(T* o, const T* x, const T* y, std::size_t n) {                                       \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(MulK##S)(o + b, x + b, y + b, e - b));                                   \
  }                                                                                                            \
  template <> void div<T>(T* o, const T* x, const T* y, std::size_t n) {                                       \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(DivK##S)(o + b, x + b, y + b, e - b));                                   \
  }                                                                                                            \
  template <> void add_scalar<T>(T* o, const T* x, T s, std::size_t n) {                                       \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(AddScalar##S)(o + b, x + b, s, e - b));                                  \
  }                                                                                                            \
  template <> void mul_scalar<T>(T* o, const T* x, T s, std::size_t n) {                                       \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(MulScalar##S)(o + b, x + b, s, e - b));                                  \
  }                                                                                                            \
  template <> void acc<T>(T* dst, const T* src, std::size_t n) { AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(Acc##S)(dst + b, src + b, e - b)); } \
  template <> void acc_scaled<T>(T* dst, const T* src, T alpha, std::size_t n) {                               \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(AccScaled##S)(dst + b, src + b, alpha, e - b));                          \
  }                                                                                                            \
  template <> void acc_mul<T>(T* dst, const T* x, const T* y, std::size_t n) {                                 \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(AccMul##S)(dst + b, x + b, y + b, e - b));                               \
  }                                                                                                            \
  template <> void acc_div<T>(T* dst, const T* x, const T* y, std::size_t n) {                                 \
    AG_CHUNKS(n, HWY_DYNAMIC_DISPATCH(AccDiv##S)(dst + b, x + b, y + b, e - b));                               \
  }                                                                                                            \
  template <> void acc_rows<T>(T* dst, const T* x, std::size_t rows, std::size_t cols, std::size_t ld) {        \
    parallel_for(cols, rows, 16, [&](std::size_t b, std::size_t e) {                                             \
      HWY_DYNAMIC_DISPATCH(AccRows##S)(dst + b, x + b, rows, e - b, ld);                                         \
    });                                                                                                        \
  }                                                                                                            \
  template <> T sum<T>(const T* x, std::size_t n) { return HWY_DYNAMIC_DISPATCH(Sum##S)(x, n); }               \
  template <> T max<T>(const T* x, std::size_t n) { return HWY_DYNAMIC_DISPATCH(Max##S)(x, n); }               \
  template <> void softmax_rows<T>(T* y, const T* x, std::size_t rows, std::size_t cols) {                     \
    parallel_for(rows, cols, 1, [&](std::size_t b, std::size_t e) {                                              \
      HWY_DYNAMIC_DISPATCH(SoftmaxRows##S)(y + b * cols, x + b * cols, e - b, cols);                             \
    });                                                                                                        \
  }                                                                                                            \
  template <> void log_softmax_rows<T>(T* y, const T* x, std::size_t rows, std::size_t cols) {                 \
    parallel_for(rows, cols, 1, [&](std::size_t b, std::size_t e) {                                              \
      HWY_DYNAMIC_DISPATCH(LogSoftmaxRows##S)(y + b * cols, x + b * cols, e - b, cols);                          \
    });                                                                                                        \
  }                                                                                                            \
  template <> void log_softmax_stats_rows<T>(T* max, T* log_sum, const T* x, std::size_t rows, std::size_t cols) { \
    parallel_for(rows, cols, 1, [&](std::size_t b, std::size_t e) {                                              \
      HWY_DYNAMIC_DISPATCH(LogSoftmaxStatsRows##S)(max + b, log_sum + b, x + b * cols, e - b, cols);              \
    });                                                                                                        \
  }                                                                                                            \
  template <> void softmax_backward_rows<T>(T* dx, const T* y, const T* dy, std::size_t rows, std::size_t cols) { \
    parallel_for(rows, cols, 1, [&](std::size_t b, std::size_t e) {                                              \
      const std::size_t o = b * cols;                                                                          \
      HWY_DYNAMIC_DISPATCH(SoftmaxBackwardRows##S)(dx + o, y + o, dy + o, e - b, cols);                          \
    });                                                                                                        \
  }                                                                                                            \
  template <> void log_softmax_backward_rows<T>(T* dx, const T* y, const T* dy, std::size_t rows, std::size_t cols) { \
    parallel_for(rows, cols, 1, [&](std::size_t b, std::size_t e) {                                              \
      const std::size_t o = b * cols;                                                                          \
      HWY_DYNAMIC_DISPATCH(LogSoftmaxBackwardRows##S)(dx + o, y + o, dy + o, e - b, cols);                       \
    });                                                                                                        \
  }                                                                                                            \
  template <> void layer_norm_rows<T>(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta,      \
                                      std::size_t rows, std::size_t cols, T eps) {                             \
    parallel_for(rows, cols, 1, [&](std::size_t b, std::size_t e) {                                              \
      const std::size_t o = b * cols;                                                                          \
      HWY_DYNAMIC_DISPATCH(LayerNormRows##S)(y + o, mean + b, rstd + b, x + o, gamma, beta, e - b, cols, eps);   \
    });                                                                                                        \
  }                                                                                                            \
  template <> void layer_norm_backward_rows<T>(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,           \
                                               const T* mean, const T* rstd, const T* gamma, std::size_t rows, \
                                               std::size_t cols) {                                             \
    HWY_DYNAMIC_DISPATCH(LayerNormBackwardRows##S)(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, rows, cols);   \
  }                                                                                                            \
  template <> void adam_update<T>(T* param, T* m, T* v, const T* grad, std::size_t n, const AdamParams& p) {   \
    parallel_for(n, 1, 64, [&](std::size_t b, std::size_t e) {                                                   \
      HWY_DYNAMIC_DISPATCH(AdamUpdate##S)(param + b, m + b, v + b, grad + b, e - b, p);                          \
    });                                                                                                        \
  }
AG_DISPATCH(float, F32)
AG_DISPATCH(double, F64)
#undef AG_DISPATCH
#undef AG_CHUNKS

}  // namespace ag::kernels
#endif  // HWY_ONCE
