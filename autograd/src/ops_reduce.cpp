// Reductions: sum, mean, max over all elements or over axes.
#include <algorithm>
#include <limits>

#include "ag/ops.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {
using detail::make_result;

namespace {

// The shape with the reduced axes kept as 1 (keepdim) and the list of reduced axes, sorted.
struct Reduced {
  Shape keep;  // x's shape with reduced axes set to 1
  Shape out;   // the result's shape (keep, or keep without the reduced axes)
  std::size_t count = 1;  // elements summed into each output
};

Reduced reduced_shape(const char* op, const Shape& x, std::vector<int> axes, bool keepdim) {
  std::vector<bool> reduce(x.size(), false);
  for (int a : axes) {
    const std::size_t ax = detail::normalize_axis(op, a, x);
    if (reduce[ax]) fail(op, ": axis ", a, " given twice for shape ", shape_str(x));
    reduce[ax] = true;
  }
  Reduced r;
  r.keep = x;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!reduce[i]) {
      r.out.push_back(x[i]);
      continue;
    }
    r.count *= x[i];
    r.keep[i] = 1;
    if (keepdim) r.out.push_back(1);
  }
  return r;
}

// Broadcasts g (shape `keep` in memory) back over x's shape, scaled, into x's gradient.
void broadcast_back(Node& self, const Shape& keep, double scale) {
  dispatch(self.data.dtype(), [&](auto t) {
    using T = decltype(t);
    auto* gx = self.input_grad<T>(0);
    if (!gx) return;
    const Shape& xs = self.inputs[0]->data.shape();
    const auto sx = detail::contiguous_strides(xs);
    const auto sg = detail::broadcast_strides(keep, xs);
    const T* g = self.grad->ptr<T>();
    T* d = gx->data();
    const T s = T(scale);
    detail::for_each_row<2>(xs, {&sx, &sg}, [&](auto off, std::size_t len, auto inner) {
      if (inner[1] == 0) {
        const T v = g[off[1]] * s;
        for (std::size_t j = 0; j < len; ++j) d[off[0] + j] += v;
      } else {
        kernels::acc_scaled(d + off[0], g + off[1], s, len);
      }
    });
  });
}

Tensor sum_impl(const char* op, const Tensor& x, const std::vector<int>& axes, bool keepdim, bool average) {
  detail::check_defined(op, x);
  Reduced r = reduced_shape(op, x.shape(), axes, keepdim);
  Array summed = detail::reduce_to_shape(x.array(), r.keep);
  const double scale = average ? 1.0 / double(r.count) : 1.0;
  if (average) {
    dispatch(summed.dtype(), [&](auto t) {
      using T = decltype(t);
      kernels::mul_scalar(summed.ptr<T>(), summed.ptr<T>(), T(scale), summed.size());
    });
  }
  dispatch(summed.dtype(), [&](auto t) {  // same data, the requested shape
    using T = decltype(t);
    summed.as<T>().reshape(r.out);
  });
  return make_result(op, std::move(summed), {x}, [keep = r.keep, scale](Node& self) {
    broadcast_back(self, keep, scale);  // d sum / dx_i = 1 (mean: 1/count)
  });
}

std::vector<int> all_axes(const Tensor& x) {
  std::vector<int> axes(x.dim());
  for (std::size_t i = 0; i < axes.size(); ++i) axes[i] = int(i);
  return axes;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) { return sum_impl("sum", x, axes, keepdim, false); }
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  return sum_impl("mean", x, axes, keepdim, true);
}
Tensor sum(const Tensor& x) {
  detail::check_defined("sum", x);
  return sum_impl("sum", x, all_axes(x), false, false);
}
Tensor mean(const Tensor& x) {
  detail::check_defined("mean", x);
  if (x.numel() == 0) fail("mean: the tensor ", shape_str(x.shape()), " is empty");
  return sum_impl("mean", x, all_axes(x), false, true);
}

// max over one axis, viewed as [outer, n, inner]; the gradient goes to the first maximum.
Tensor max(const Tensor& x, int axis, bool keepdim) {
  detail::check_defined("max", x);
  const std::size_t ax = detail::normalize_axis("max", axis, x.shape());
  const Shape& xs = x.shape();
  const std::size_t n = xs[ax];
  if (n == 0) fail("max: cannot reduce an empty axis (", shape_str(xs), ", axis ", axis, ")");
  std::size_t outer = 1, inner = 1;
  for (std::size_t i = 0; i < ax; ++i) outer *= xs[i];
  for (std::size_t i = ax + 1; i < xs.size(); ++i) inner *= xs[i];
  Shape out_shape;
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (i != ax) out_shape.push_back(xs[i]);
    else if (keepdim) out_shape.push_back(1);
  Array out = Array::empty(x.dtype(), out_shape);
  std::vector<std::uint32_t> argmax(outer * inner, 0);
  dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* p = x.array().ptr<T>();
    T* o = out.ptr<T>();
    for (std::size_t a = 0; a < outer; ++a)
      for (std::size_t c = 0; c < inner; ++c) {
        const T* base = p + a * n * inner + c;
        std::uint32_t best = 0;
        for (std::size_t k = 1; k < n; ++k)
          if (base[k * inner] > base[best * inner] || (base[k * inner] != base[k * inner] && base[best * inner] == base[best * inner]))
            best = std::uint32_t(k);  // NaN wins, as in PyTorch
        argmax[a * inner + c] = best;
        o[a * inner + c] = base[best * inner];
      }
  });
  return make_result("max", std::move(out), {x}, [argmax = std::move(argmax), n, inner](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      auto* gx = self.input_grad<T>(0);
      if (!gx) return;
      const T* g = self.grad->ptr<T>();
      T* d = gx->data();
      for (std::size_t i = 0; i < argmax.size(); ++i) {
        const std::size_t a = i / inner, c = i % inner;
        d[a * n * inner + argmax[i] * inner + c] += g[i];
      }
    });
  });
}

Tensor max(const Tensor& x) {
  detail::check_defined("max", x);
  if (x.numel() == 0) fail("max: the tensor ", shape_str(x.shape()), " is empty");
  return max(reshape(x, {-1}), 0, false);
}

}  // namespace ag
