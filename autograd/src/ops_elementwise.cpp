// Element-wise ops: forward and backward side by side. Binary ops broadcast as NumPy does;
// Node::accumulate sums each gradient back to its input's shape.
#include <algorithm>
#include <cmath>

#include "ag/ops.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {
using detail::make_result;

namespace {

// ---- machinery -----------------------------------------------------------------------------

// out[i] = f(a[i'], b[i'']) over the broadcast shape; the four inner-stride cases are split so
// that each inner loop has constant strides (and vectorises).
template <class T, class F>
void broadcast_binary(T* out, const Shape& shape, const T* a, const detail::Strides& sa, const T* b,
                      const detail::Strides& sb, F f) {
  const detail::Strides so = detail::contiguous_strides(shape);
  detail::for_each_row<3>(shape, {&so, &sa, &sb}, [&](auto off, std::size_t len, auto inner) {
    T* o = out + off[0];
    const T* ar = a + off[1];
    const T* br = b + off[2];
    if (inner[1] == 1 && inner[2] == 1) {
      for (std::size_t j = 0; j < len; ++j) o[j] = f(ar[j], br[j]);
    } else if (inner[2] == 0) {
      const T bv = *br;
      for (std::size_t j = 0; j < len; ++j) o[j] = f(ar[std::ptrdiff_t(j) * inner[1]], bv);
    } else if (inner[1] == 0) {
      const T av = *ar;
      for (std::size_t j = 0; j < len; ++j) o[j] = f(av, br[std::ptrdiff_t(j) * inner[2]]);
    } else {
      for (std::size_t j = 0; j < len; ++j) o[j] = f(ar[std::ptrdiff_t(j) * inner[1]], br[std::ptrdiff_t(j) * inner[2]]);
    }
  });
}

enum class Bin { add, sub, mul, div };

// a (op) b as arrays, broadcast to `shape`; same-shape operands go straight to the SIMD kernels.
Array binary_array(Bin op, const Array& a, const Array& b, const Shape& shape) {
  Array out = Array::empty(a.dtype(), shape);
  dispatch(a.dtype(), [&](auto t) {
    using T = decltype(t);
    T* o = out.ptr<T>();
    const T *pa = a.ptr<T>(), *pb = b.ptr<T>();
    if (a.shape() == shape && b.shape() == shape) {
      const std::size_t n = out.size();
      switch (op) {
        case Bin::add: kernels::add(o, pa, pb, n); break;
        case Bin::sub: kernels::sub(o, pa, pb, n); break;
        case Bin::mul: kernels::mul(o, pa, pb, n); break;
        case Bin::div: kernels::div(o, pa, pb, n); break;
      }
      return;
    }
    const auto sa = detail::broadcast_strides(a.shape(), shape), sb = detail::broadcast_strides(b.shape(), shape);
    switch (op) {
      case Bin::add: broadcast_binary(o, shape, pa, sa, pb, sb, [](T x, T y) { return x + y; }); break;
      case Bin::sub: broadcast_binary(o, shape, pa, sa, pb, sb, [](T x, T y) { return x - y; }); break;
      case Bin::mul: broadcast_binary(o, shape, pa, sa, pb, sb, [](T x, T y) { return x * y; }); break;
      case Bin::div: broadcast_binary(o, shape, pa, sa, pb, sb, [](T x, T y) { return x / y; }); break;
    }
  });
  return out;
}

// add(gx, b, e): an element-wise rule that adds into input i's gradient over [b, e). Into a new
// slot (not initialised) it runs on blocks of kFreshBlock elements, each zeroed just before the
// rule reads it (still in the cache), over the threads, instead of a zero-fill pass over the whole
// slot first; every element is computed as before (0 + its term), so the bits are the same.
constexpr std::size_t kFreshBlock = 4096;  // 16 KB of floats; a multiple of the kernels' 64-element chunks
template <class T, class Add>
void add_into_grad(Node& self, std::size_t i, std::size_t n, Add add) {
  bool fresh = false;
  T* gx = self.input_grad<T>(i, fresh)->data();
  if (!fresh) return add(gx, std::size_t(0), n);
  kernels::parallel_for(n, 1, kFreshBlock, [&](std::size_t b, std::size_t e) {
    for (std::size_t s = b; s < e; s += kFreshBlock) {
      const std::size_t len = std::min(kFreshBlock, e - s);
      std::fill(gx + s, gx + s + len, T(0));
      add(gx, s, s + len);
    }
  });
}

// Adds alpha * g (summed to input i's shape) into input i's gradient.
void accumulate_scaled(Node& self, std::size_t i, const Array& g, double alpha) {
  if (!self.needs_grad(i)) return;
  const Shape& target = self.inputs[i]->data.shape();
  dispatch(g.dtype(), [&](auto t) {
    using T = decltype(t);
    if (g.shape() == target) {  // the common case: straight into the gradient, no temporary
      const T* gp = g.ptr<T>();
      add_into_grad<T>(self, i, g.size(), [&](T* gx, std::size_t b, std::size_t e) { kernels::acc_scaled(gx + b, gp + b, T(alpha), e - b); });
      return;
    }
    Array summed = detail::reduce_to_shape(g, target);
    kernels::mul_scalar(summed.ptr<T>(), summed.ptr<T>(), T(alpha), summed.size());
    self.accumulate(i, std::move(summed));
  });
}

// The skeleton of every unary op: y = fwd(x); dx += bwd(x, y, dy).
//   fwd(T* y, const T* x, n);  bwd(T* dx, const T* x, const T* y, const T* dy, n)
template <class Fwd, class Bwd>
Tensor unary_op(const char* name, const Tensor& x, Fwd fwd, Bwd bwd) {
  detail::check_defined(name, x);
  Array out = Array::empty(x.dtype(), x.shape());
  dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    fwd(out.ptr<T>(), x.array().ptr<T>(), out.size());
  });
  return make_result(name, std::move(out), {x}, [bwd](Node& self) {
    if (!self.needs_grad(0)) return;
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      const T *x = self.inputs[0]->data.ptr<T>(), *y = self.data.ptr<T>(), *dy = self.grad->ptr<T>();
      add_into_grad<T>(self, 0, self.data.size(), [&](T* gx, std::size_t b, std::size_t e) { bwd(gx + b, x + b, y + b, dy + b, e - b); });
    });
  });
}

template <class T> T sign(T v) { return T((v > T(0)) - (v < T(0))); }

}  // namespace

// ---- binary ----------------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype("add", a, b);
  const Shape shape = detail::broadcast_shapes("add", a.shape(), b.shape());
  return make_result("add", binary_array(Bin::add, a.array(), b.array(), shape), {a, b}, [](Node& self) {
    self.accumulate(0, *self.grad);  // d(a+b)/da = 1
    // d(a+b)/db = 1; the engine drops self.grad after this rule unless it is kept: hand it over
    if (self.retains_grad) self.accumulate(1, *self.grad);
    else self.accumulate(1, std::move(*self.grad));
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype("sub", a, b);
  const Shape shape = detail::broadcast_shapes("sub", a.shape(), b.shape());
  return make_result("sub", binary_array(Bin::sub, a.array(), b.array(), shape), {a, b}, [](Node& self) {
    self.accumulate(0, *self.grad);              // d(a-b)/da = 1
    accumulate_scaled(self, 1, *self.grad, -1);  // d(a-b)/db = -1
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype("mul", a, b);
  const Shape shape = detail::broadcast_shapes("mul", a.shape(), b.shape());
  return make_result("mul", binary_array(Bin::mul, a.array(), b.array(), shape), {a, b}, [](Node& self) {
    const Array& g = *self.grad;
    const Array &a = self.inputs[0]->data, &b = self.inputs[1]->data;
    // d(ab)/da = b, d(ab)/db = a; without broadcasting, accumulate in place.
    for (std::size_t i = 0; i < 2; ++i) {
      if (!self.needs_grad(i)) continue;
      const Array& other = i == 0 ? b : a;
      const Array& mine = i == 0 ? a : b;
      if (mine.shape() == g.shape() && other.shape() == g.shape()) {
        dispatch(g.dtype(), [&](auto t) {
          using T = decltype(t);
          const T *gp = g.ptr<T>(), *op = other.ptr<T>();
          add_into_grad<T>(self, i, g.size(), [&](T* gx, std::size_t b, std::size_t e) { kernels::acc_mul(gx + b, gp + b, op + b, e - b); });
        });
      } else {
        self.accumulate(i, binary_array(Bin::mul, g, other, g.shape()));
      }
    }
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype("div", a, b);
  const Shape shape = detail::broadcast_shapes("div", a.shape(), b.shape());
  return make_result("div", binary_array(Bin::div, a.array(), b.array(), shape), {a, b}, [](Node& self) {
    const Array& g = *self.grad;
    const Array& b = self.inputs[1]->data;
    Array g_over_b = binary_array(Bin::div, g, b, g.shape());  // d(a/b)/da = 1/b
    if (self.needs_grad(1))                                   // d(a/b)/db = -a/b^2 = -(a/b)/b
      accumulate_scaled(self, 1, binary_array(Bin::mul, g_over_b, self.data, g.shape()), -1);
    self.accumulate(0, g_over_b);
  });
}

Tensor pow(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype("pow", a, b);
  const Shape shape = detail::broadcast_shapes("pow", a.shape(), b.shape());
  const auto sa = detail::broadcast_strides(a.shape(), shape), sb = detail::broadcast_strides(b.shape(), shape);
  Array out = Array::empty(a.dtype(), shape);
  dispatch(a.dtype(), [&](auto t) {
    using T = decltype(t);
    broadcast_binary(out.ptr<T>(), shape, a.array().ptr<T>(), sa, b.array().ptr<T>(), sb,
                     [](T x, T y) { return std::pow(x, y); });
  });
  return make_result("pow", std::move(out), {a, b}, [](Node& self) {
    const Shape& shape = self.data.shape();
    const Array &a = self.inputs[0]->data, &b = self.inputs[1]->data;
    const auto sa = detail::broadcast_strides(a.shape(), shape), sb = detail::broadcast_strides(b.shape(), shape);
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      if (self.needs_grad(0)) {  // d(a^b)/da = b a^(b-1); 0 where b = 0 (a^0 is the constant 1, even at a = 0)
        Array da = Array::empty(self.data.dtype(), shape);
        broadcast_binary(da.ptr<T>(), shape, a.ptr<T>(), sa, b.ptr<T>(), sb,
                         [](T x, T y) { return y == T(0) ? T(0) : y * std::pow(x, y - T(1)); });
        kernels::mul(da.ptr<T>(), da.ptr<T>(), self.grad->ptr<T>(), da.size());
        self.accumulate(0, da);
      }
      if (self.needs_grad(1)) {  // d(a^b)/db = a^b log(a); 0 at a = 0, b >= 0 (not 0 * -inf), as PyTorch
        Array db = Array::empty(self.data.dtype(), shape);
        broadcast_binary(db.ptr<T>(), shape, a.ptr<T>(), sa, b.ptr<T>(), sb,
                         [](T x, T y) { return x == T(0) && y >= T(0) ? T(0) : std::pow(x, y) * std::log(x); });
        kernels::mul(db.ptr<T>(), db.ptr<T>(), self.grad->ptr<T>(), db.size());
        self.accumulate(1, db);
      }
    });
  });
}

// Reads a condition/mask tensor (any dtype) as "is this element non-zero", broadcast to shape.
static std::vector<unsigned char> truth_mask(const Tensor& cond, const Shape& shape) {
  std::vector<unsigned char> m(shape_numel(shape));
  const auto sc = detail::broadcast_strides(cond.shape(), shape);
  const auto so = detail::contiguous_strides(shape);
  dispatch(cond.dtype(), [&](auto t) {
    using C = decltype(t);
    const C* c = cond.array().ptr<C>();
    detail::for_each_row<2>(shape, {&so, &sc}, [&](auto off, std::size_t len, auto inner) {
      for (std::size_t j = 0; j < len; ++j) m[off[0] + j] = c[off[1] + std::ptrdiff_t(j) * inner[1]] != C(0);
    });
  });
  return m;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined("where", cond);
  detail::check_same_dtype("where", a, b);
  const Shape shape = detail::broadcast_shapes("where", cond.shape(), detail::broadcast_shapes("where", a.shape(), b.shape()));
  std::vector<unsigned char> pick_a = truth_mask(cond, shape);
  Array out = Array::empty(a.dtype(), shape);
  dispatch(a.dtype(), [&](auto t) {
    using T = decltype(t);
    const auto sa = detail::broadcast_strides(a.shape(), shape), sb = detail::broadcast_strides(b.shape(), shape);
    const auto so = detail::contiguous_strides(shape);
    const T *pa = a.array().ptr<T>(), *pb = b.array().ptr<T>();
    T* o = out.ptr<T>();
    detail::for_each_row<3>(shape, {&so, &sa, &sb}, [&](auto off, std::size_t len, auto inner) {
      for (std::size_t j = 0; j < len; ++j)
        o[off[0] + j] = pick_a[off[0] + j] ? pa[off[1] + std::ptrdiff_t(j) * inner[1]] : pb[off[2] + std::ptrdiff_t(j) * inner[2]];
    });
  });
  return make_result("where", std::move(out), {a, b}, [pick_a = std::move(pick_a)](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      const T* g = self.grad->ptr<T>();
      for (std::size_t i = 0; i < 2; ++i) {  // the gradient goes to the side that was picked
        if (!self.needs_grad(i)) continue;
        Array gi = Array::empty(self.data.dtype(), self.data.shape());
        T* p = gi.ptr<T>();
        for (std::size_t j = 0; j < gi.size(); ++j) p[j] = (pick_a[j] != 0) == (i == 0) ? g[j] : T(0);
        self.accumulate(i, gi);
      }
    });
  });
}

// A Tensor mask is read as "nonzero": the same as the Mask it converts to.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  detail::check_defined("masked_fill", mask);
  return masked_fill(x, Mask::nonzero(mask), value);
}

Tensor masked_fill(const Tensor& x, const Mask& mask, double value) {
  detail::check_defined("masked_fill", x);
  if (!mask.defined()) fail("masked_fill: the mask is undefined (input ", shape_str(x.shape()), ")");
  if (detail::broadcast_shapes("masked_fill", mask.shape(), x.shape()) != x.shape())
    fail("masked_fill: mask ", shape_str(mask.shape()), " does not broadcast to the input ", shape_str(x.shape()));
  std::vector<unsigned char> filled(x.numel());  // in x's own row-major layout
  const auto sm = detail::broadcast_strides(mask.shape(), x.shape()), so = detail::contiguous_strides(x.shape());
  const std::uint8_t* m = mask.data();
  detail::for_each_row<2>(x.shape(), {&so, &sm}, [&](auto off, std::size_t len, auto inner) {
    for (std::size_t j = 0; j < len; ++j) filled[std::size_t(off[0]) + j] = m[off[1] + std::ptrdiff_t(j) * inner[1]];
  });
  Array out = x.array();
  dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    T* o = out.ptr<T>();
    for (std::size_t j = 0; j < out.size(); ++j)
      if (filled[j]) o[j] = T(value);
  });
  return make_result("masked_fill", std::move(out), {x}, [filled = std::move(filled)](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      if (auto* gx = self.input_grad<T>(0)) {  // filled places are constants: no gradient
        const T* g = self.grad->ptr<T>();
        T* d = gx->data();
        for (std::size_t j = 0; j < self.data.size(); ++j)
          if (!filled[j]) d[j] += g[j];
      }
    });
  });
}

// ---- with a scalar ---------------------------------------------------------------------------

Tensor add(const Tensor& a, double s) {
  return unary_op("add_scalar", a,
      [s](auto* y, const auto* x, std::size_t n) { kernels::add_scalar(y, x, decltype(*y + 0)(s), n); },
      [](auto* dx, const auto*, const auto*, const auto* dy, std::size_t n) { kernels::acc(dx, dy, n); });
}

Tensor mul(const Tensor& a, double s) {
  return unary_op("mul_scalar", a,
      [s](auto* y, const auto* x, std::size_t n) { kernels::mul_scalar(y, x, decltype(*y + 0)(s), n); },
      [s](auto* dx, const auto*, const auto*, const auto* dy, std::size_t n) {
        kernels::acc_scaled(dx, dy, decltype(*dx + 0)(s), n);
      });
}

Tensor rsub(const Tensor& a, double s) {  // s - a
  return unary_op("rsub_scalar", a,
      [s](auto* y, const auto* x, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) y[i] = decltype(*y + 0)(s) - x[i];
      },
      [](auto* dx, const auto*, const auto*, const auto* dy, std::size_t n) {
        kernels::acc_scaled(dx, dy, decltype(*dx + 0)(-1), n);
      });
}

Tensor rdiv(const Tensor& a, double s) {  // s / a; d/da = -s/a^2 = -y/a
  return unary_op("rdiv_scalar", a,
      [s](auto* y, const auto* x, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) y[i] = decltype(*y + 0)(s) / x[i];
      },
      [](auto* dx, const auto* x, const auto* y, const auto* dy, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) dx[i] -= dy[i] * y[i] / x[i];
      });
}

Tensor pow(const Tensor& a, double e) {  // d(x^e)/dx = e x^(e-1); 0 for e = 0 (x^0 = 1, also at x = 0)
  return unary_op("pow_scalar", a,
      [e](auto* y, const auto* x, std::size_t n) {
        using T = decltype(*y + 0);
        for (std::size_t i = 0; i < n; ++i) y[i] = std::pow(x[i], T(e));
      },
      [e](auto* dx, const auto* x, const auto*, const auto* dy, std::size_t n) {
        using T = decltype(*dx + 0);
        if (e == 0) return;
        for (std::size_t i = 0; i < n; ++i) dx[i] += dy[i] * T(e) * std::pow(x[i], T(e - 1));
      });
}

// ---- unary -----------------------------------------------------------------------------------

Tensor neg(const Tensor& x) { return mul(x, -1.0); }

Tensor exp(const Tensor& x) {  // d exp = exp = y
  return unary_op("exp", x, [](auto* y, const auto* xs, std::size_t n) { kernels::exp(y, xs, n); },
      [](auto* dx, const auto*, const auto* y, const auto* dy, std::size_t n) { kernels::acc_mul(dx, dy, y, n); });
}

Tensor log(const Tensor& x) {  // d log = 1/x
  return unary_op("log", x, [](auto* y, const auto* xs, std::size_t n) { kernels::log(y, xs, n); },
      [](auto* dx, const auto* xs, const auto*, const auto* dy, std::size_t n) { kernels::acc_div(dx, dy, xs, n); });
}

Tensor sqrt(const Tensor& x) {  // d sqrt = 1 / (2 y)
  return unary_op("sqrt", x,
      [](auto* y, const auto* xs, std::size_t n) { for (std::size_t i = 0; i < n; ++i) y[i] = std::sqrt(xs[i]); },
      [](auto* dx, const auto*, const auto* y, const auto* dy, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) dx[i] += dy[i] / (2 * y[i]);
      });
}

Tensor tanh(const Tensor& x) {  // d tanh = 1 - y^2
  return unary_op("tanh", x, [](auto* y, const auto* xs, std::size_t n) { kernels::tanh(y, xs, n); },
      [](auto* dx, const auto*, const auto* y, const auto* dy, std::size_t n) { kernels::tanh_backward(dx, y, dy, n); });
}

Tensor sigmoid(const Tensor& x) {  // d sigmoid = y (1 - y)
  return unary_op("sigmoid", x, [](auto* y, const auto* xs, std::size_t n) { kernels::sigmoid(y, xs, n); },
      [](auto* dx, const auto*, const auto* y, const auto* dy, std::size_t n) { kernels::sigmoid_backward(dx, y, dy, n); });
}

Tensor relu(const Tensor& x) {  // relu(NaN) = NaN; d relu = [x > 0] (0 at x = 0), as PyTorch
  return unary_op("relu", x, [](auto* y, const auto* xs, std::size_t n) { kernels::relu(y, xs, n); },
      [](auto* dx, const auto* xs, const auto*, const auto* dy, std::size_t n) { kernels::relu_backward(dx, xs, dy, n); });
}

Tensor elu(const Tensor& x, double alpha) {  // d elu = 1 for x > 0, alpha exp(x) = y + alpha otherwise
  if (!std::isfinite(alpha)) fail("elu: alpha must be finite, got ", alpha, " (x ", shape_str(x.shape()), ")");
  return unary_op("elu", x,
      [alpha](auto* y, const auto* xs, std::size_t n) {
        using T = decltype(*y + 0);
        for (std::size_t i = 0; i < n; ++i) y[i] = xs[i] > T(0) ? xs[i] : T(alpha) * std::expm1(xs[i]);
      },
      [alpha](auto* dx, const auto* xs, const auto*, const auto* dy, std::size_t n) {
        using T = decltype(*dx + 0);
        for (std::size_t i = 0; i < n; ++i) dx[i] += dy[i] * (xs[i] > T(0) ? T(1) : T(alpha) * std::exp(xs[i]));
      });
}

Tensor gelu(const Tensor& x, GeluApproximate approximate) {
  if (approximate == GeluApproximate::tanh)  // the SIMD kernels
    return unary_op("gelu_tanh", x, [](auto* y, const auto* xs, std::size_t n) { kernels::gelu(y, xs, n); },
        [](auto* dx, const auto* xs, const auto*, const auto* dy, std::size_t n) { kernels::gelu_backward(dx, xs, dy, n); });
  // x Phi(x), Phi the standard normal CDF; d/dx = Phi(x) + x phi(x), phi the density
  return unary_op("gelu", x,
      [](auto* y, const auto* xs, std::size_t n) {
        using T = decltype(*y + 0);
        for (std::size_t i = 0; i < n; ++i) y[i] = T(0.5) * xs[i] * (T(1) + std::erf(xs[i] * T(M_SQRT1_2)));
      },
      [](auto* dx, const auto* xs, const auto*, const auto* dy, std::size_t n) {
        using T = decltype(*dx + 0);
        const T inv_sqrt_2pi = T(0.3989422804014327);  // 1 / sqrt(2 pi)
        for (std::size_t i = 0; i < n; ++i) {
          const T x = xs[i], cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
          dx[i] += dy[i] * (cdf + x * inv_sqrt_2pi * std::exp(T(-0.5) * x * x));
        }
      });
}

Tensor abs(const Tensor& x) {  // d |x| = sign(x)
  return unary_op("abs", x,
      [](auto* y, const auto* xs, std::size_t n) { for (std::size_t i = 0; i < n; ++i) y[i] = std::abs(xs[i]); },
      [](auto* dx, const auto* xs, const auto*, const auto* dy, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) dx[i] += dy[i] * sign(xs[i]);
      });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  if (!(lo <= hi)) fail("clamp: lo (", lo, ") must not exceed hi (", hi, ")");
  return unary_op("clamp", x,
      [lo, hi](auto* y, const auto* xs, std::size_t n) {
        using T = decltype(*y + 0);
        for (std::size_t i = 0; i < n; ++i) y[i] = std::min(std::max(xs[i], T(lo)), T(hi));
      },
      [lo, hi](auto* dx, const auto* xs, const auto*, const auto* dy, std::size_t n) {
        using T = decltype(*dx + 0);
        for (std::size_t i = 0; i < n; ++i) dx[i] += xs[i] >= T(lo) && xs[i] <= T(hi) ? dy[i] : T(0);
      });
}

}  // namespace ag
