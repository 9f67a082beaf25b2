// Shape ops: reshape, permute/transpose, slice/select, concat/stack, expand. Every result is a
// contiguous copy (so the kernels always see flat buffers); backward scatters the gradient back.
#include <algorithm>
#include <numeric>

#include "ag/ops.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {

// s with a new axis of size n before position ax (0 <= ax <= s.size()). Built element by element:
// xtensor's svector::insert trips GCC 12's -Warray-bounds.
static Shape with_axis(const Shape& s, std::size_t ax, std::size_t n) {
  Shape out;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == ax) out.push_back(n);
    if (i < s.size()) out.push_back(s[i]);
  }
  return out;
}

using detail::make_result;

namespace {

// Same data, new shape: forward copies; backward passes the flat gradient straight back (moved,
// not copied, unless the output keeps its .grad).
Tensor reshape_to(const char* op, const Tensor& x, const Shape& shape) {
  Array out = x.array();
  dispatch(out.dtype(), [&](auto t) { out.as<decltype(t)>().reshape(shape); });
  return make_result(op, std::move(out), {x}, [](Node& self) {
    if (!self.retains_grad) {  // the engine drops self.grad after this rule: hand it on, reshaped, without a copy
      Array g = std::move(*self.grad);
      const Shape& in_shape = self.inputs[0]->data.shape();
      dispatch(g.dtype(), [&](auto t) { g.as<decltype(t)>().reshape(in_shape); });
      self.accumulate(0, std::move(g));
      return;
    }
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      if (auto* gx = self.input_grad<T>(0)) kernels::acc(gx->data(), self.grad->ptr<T>(), self.data.size());
    });
  });
}

}  // namespace

Tensor reshape(const Tensor& x, std::vector<std::int64_t> shape) {
  detail::check_defined("reshape", x);
  std::size_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) fail("reshape: only one -1 allowed in the new shape (input ", shape_str(x.shape()), ")");
      infer = int(i);
    } else if (shape[i] < 0) {
      fail("reshape: negative size ", shape[i], " in the new shape (input ", shape_str(x.shape()), ")");
    } else {
      known *= std::size_t(shape[i]);
    }
  }
  Shape s(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) s[i] = shape[i] < 0 ? 0 : std::size_t(shape[i]);
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      fail("reshape: cannot infer -1 reshaping ", shape_str(x.shape()), " (", x.numel(), " elements)");
    s[std::size_t(infer)] = x.numel() / known;
  }
  if (shape_numel(s) != x.numel())
    fail("reshape: cannot reshape ", shape_str(x.shape()), " (", x.numel(), " elements) to ", shape_str(s), " (",
         shape_numel(s), " elements)");
  return reshape_to("reshape", x, s);
}

Tensor flatten(const Tensor& x, int start_axis, int end_axis) {
  detail::check_defined("flatten", x);
  if (x.dim() == 0) return reshape_to("flatten", x, Shape{1});
  const std::size_t a = detail::normalize_axis("flatten", start_axis, x.shape());
  const std::size_t b = detail::normalize_axis("flatten", end_axis, x.shape());
  if (a > b) fail("flatten: start axis ", start_axis, " comes after end axis ", end_axis, " for ", shape_str(x.shape()));
  Shape s;
  std::size_t merged = 1;
  for (std::size_t i = a; i <= b; ++i) merged *= x.shape()[i];
  for (std::size_t i = 0; i < x.dim(); ++i) {
    if (i < a || i > b) s.push_back(x.shape()[i]);
    if (i == a) s.push_back(merged);
  }
  return reshape_to("flatten", x, s);
}

Tensor unsqueeze(const Tensor& x, int axis) {
  detail::check_defined("unsqueeze", x);
  const std::size_t ax = detail::normalize_axis("unsqueeze", axis, x.shape(), 1);
  return reshape_to("unsqueeze", x, with_axis(x.shape(), ax, 1));
}

Tensor squeeze(const Tensor& x, int axis) {
  detail::check_defined("squeeze", x);
  const std::size_t ax = detail::normalize_axis("squeeze", axis, x.shape());
  if (x.shape()[ax] != 1) fail("squeeze: axis ", axis, " of ", shape_str(x.shape()), " has size ", x.shape()[ax], ", not 1");
  Shape s = x.shape();
  s.erase(s.begin() + std::ptrdiff_t(ax));
  return reshape_to("squeeze", x, s);
}

Tensor permute(const Tensor& x, const std::vector<int>& dims) {
  detail::check_defined("permute", x);
  if (dims.size() != x.dim()) fail("permute: ", dims.size(), " dims given for a tensor of shape ", shape_str(x.shape()));
  std::vector<std::size_t> perm(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (std::size_t i = 0; i < dims.size(); ++i) {
    perm[i] = detail::normalize_axis("permute", dims[i], x.shape());
    if (used[perm[i]]) fail("permute: axis ", dims[i], " repeated (shape ", shape_str(x.shape()), ")");
    used[perm[i]] = true;
  }
  std::vector<std::size_t> inverse(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = i;
  return make_result("permute", detail::permute_array(x.array(), perm), {x}, [inverse](Node& self) {
    self.accumulate(0, detail::permute_array(*self.grad, inverse));  // undo the permutation
  });
}

Tensor transpose(const Tensor& x, int dim0, int dim1) {
  detail::check_defined("transpose", x);
  std::vector<int> dims(x.dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[detail::normalize_axis("transpose", dim0, x.shape())], dims[detail::normalize_axis("transpose", dim1, x.shape())]);
  return permute(x, dims);
}

namespace {

// What a view reads of x: every element whose index along `axis` is in [lo, hi), and nothing
// else (a slice with step 1, select, split_heads). Unknown for other views (a strided slice).
struct Cover {
  bool known = false;
  std::size_t axis = 0, lo = 0, hi = 0;
};

// Zeroes x's elements outside `cover`, in blocks of the axes before it over the threads.
void zero_outside(Array& x, const Cover& cover) {
  const Shape& s = x.shape();
  std::size_t outer = 1, inner = 1;
  for (std::size_t i = 0; i < cover.axis; ++i) outer *= s[i];
  for (std::size_t i = cover.axis + 1; i < s.size(); ++i) inner *= s[i];
  const std::size_t extent = s[cover.axis], block = extent * inner;
  dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    T* p = x.ptr<T>();
    kernels::parallel_for(outer, block, 1, [&](std::size_t o0, std::size_t o1) {
      for (std::size_t o = o0; o < o1; ++o) {
        std::fill(p + o * block, p + o * block + cover.lo * inner, T(0));
        std::fill(p + o * block + cover.hi * inner, p + (o + 1) * block, T(0));
      }
    });
  });
}

// The elements of x at (offset, strides) laid out with shape `shape`: slice, select and split_heads.
// Backward into a new gradient slot with a known cover: the rest zeroed and the view's part written
// (no zero-fill of the whole slot, no read of it); into a slot that holds a gradient, added.
Tensor strided_view(const char* op, const Tensor& x, const Shape& shape, std::ptrdiff_t offset, detail::Strides strides, Cover cover) {
  Array out = Array::empty(x.dtype(), shape);
  detail::gather_strided(out, x.array(), offset, strides);
  return make_result(op, std::move(out), {x}, [offset, strides, cover](Node& self) {
    if (!self.needs_grad(0)) return;
    Node& in = *self.inputs[0];
    if (!in.grad && cover.known) {
      in.grad = Array::empty(in.data.dtype(), in.data.shape());
      zero_outside(*in.grad, cover);
      detail::scatter_strided(*in.grad, offset, strides, *self.grad);
      return;
    }
    if (!in.grad) in.grad = Array(in.data.dtype(), in.data.shape());
    detail::scatter_add_strided(*in.grad, offset, strides, *self.grad, /*one_to_one=*/true);
  });
}

}  // namespace

Tensor slice(const Tensor& x, int axis, std::int64_t start, std::int64_t stop, std::int64_t step) {
  detail::check_defined("slice", x);
  const std::size_t ax = detail::normalize_axis("slice", axis, x.shape());
  if (step <= 0) fail("slice: step must be positive, got ", step, " (shape ", shape_str(x.shape()), ")");
  const auto n = std::int64_t(x.shape()[ax]);
  auto clip = [n](std::int64_t i) { return std::clamp(i < 0 ? i + n : i, std::int64_t(0), n); };  // Python rules
  const std::int64_t a = clip(start), b = clip(stop);
  const std::size_t len = b > a ? std::size_t((b - a + step - 1) / step) : 0;
  Shape s = x.shape();
  s[ax] = len;
  detail::Strides st = detail::contiguous_strides(x.shape());
  const std::ptrdiff_t offset = std::ptrdiff_t(a) * st[ax];
  st[ax] *= step;
  return strided_view("slice", x, s, offset, st, {.known = step == 1, .axis = ax, .lo = std::size_t(a), .hi = std::size_t(a) + len});
}

Tensor split_heads(const Tensor& x, std::size_t num_heads, std::size_t head_dim, std::size_t offset) {
  detail::check_defined("split_heads", x);
  if (x.dim() != 3) fail("split_heads: x must be [batch, time, features], got ", shape_str(x.shape()));
  const std::size_t B = x.shape()[0], T = x.shape()[1], C = x.shape()[2];
  if (num_heads == 0 || head_dim == 0)
    fail("split_heads: ", num_heads, " heads of width ", head_dim, " (both must be at least 1; x ", shape_str(x.shape()), ")");
  if (offset + num_heads * head_dim > C)
    fail("split_heads: ", num_heads, " heads of width ", head_dim, " from feature ", offset, " need ", offset + num_heads * head_dim,
         " features, x ", shape_str(x.shape()), " has ", C);
  // element (b, h, t, j) is x[b, t, offset + h d + j]
  const auto c = std::ptrdiff_t(C), d = std::ptrdiff_t(head_dim);
  return strided_view("split_heads", x, Shape{B, num_heads, T, head_dim}, std::ptrdiff_t(offset), {std::ptrdiff_t(T) * c, d, c, 1},
                      {.known = true, .axis = 2, .lo = offset, .hi = offset + num_heads * head_dim});
}

Tensor merge_heads(const Tensor& o) {
  detail::check_defined("merge_heads", o);
  if (o.dim() != 4) fail("merge_heads: o must be [batch, heads, time, head_dim], got ", shape_str(o.shape()));
  const std::size_t B = o.shape()[0], H = o.shape()[1], T = o.shape()[2], d = o.shape()[3];
  const auto h = std::ptrdiff_t(H), t = std::ptrdiff_t(T), w = std::ptrdiff_t(d);
  // output element (b, t, h, j) is o[b, h, t, j]; gathered as [B, T, H, d], then seen as [B, T, H d]
  Array out = Array::empty(o.dtype(), Shape{B, T, H, d});
  detail::gather_strided(out, o.array(), 0, {h * t * w, w, t * w, 1});
  dispatch(out.dtype(), [&](auto e) { out.as<decltype(e)>().reshape(Shape{B, T, H * d}); });
  return make_result("merge_heads", std::move(out), {o}, [h, t, w](Node& self) {
    if (!self.needs_grad(0)) return;
    Node& in = *self.inputs[0];
    // gradient element (b, h, t, j) is the output gradient's [b, t, h d + j]
    const detail::Strides from_output{t * h * w, w, h * w, 1};
    if (!in.grad) {  // a new slot: gathered straight in
      in.grad = Array::empty(in.data.dtype(), in.data.shape());
      detail::gather_strided(*in.grad, *self.grad, 0, from_output);
      return;
    }
    Array g = Array::empty(in.data.dtype(), in.data.shape());
    detail::gather_strided(g, *self.grad, 0, from_output);
    self.accumulate(0, std::move(g));
  });
}

Tensor select(const Tensor& x, int axis, std::int64_t index) {
  detail::check_defined("select", x);
  const std::size_t ax = detail::normalize_axis("select", axis, x.shape());
  const auto n = std::int64_t(x.shape()[ax]);
  if (index < -n || index >= n)
    fail("select: index ", index, " out of range for axis ", axis, " of size ", n, " (shape ", shape_str(x.shape()), ")");
  const std::int64_t i = index < 0 ? index + n : index;
  detail::Strides st = detail::contiguous_strides(x.shape());
  const std::ptrdiff_t offset = std::ptrdiff_t(i) * st[ax];
  Shape s = x.shape();
  s.erase(s.begin() + std::ptrdiff_t(ax));
  st.erase(st.begin() + std::ptrdiff_t(ax));
  return strided_view("select", x, s, offset, st, {.known = true, .axis = ax, .lo = std::size_t(i), .hi = std::size_t(i) + 1});
}

namespace {

// Joins xs along `axis` of the output: viewed as [outer, width_i * inner] blocks per input.
// concat: each input keeps its own extent along the axis; stack: each adds an axis of size 1.
Tensor join(const char* op, const std::vector<Tensor>& xs, const Shape& out_shape, std::size_t axis) {
  std::size_t outer = 1;
  for (std::size_t i = 0; i < axis; ++i) outer *= out_shape[i];
  const std::size_t out_row = shape_numel(out_shape) / std::max<std::size_t>(outer, 1);
  std::vector<std::size_t> widths;  // elements of each input per outer index
  for (const auto& x : xs) widths.push_back(outer ? x.numel() / outer : 0);
  Array out = Array::empty(xs[0].dtype(), out_shape);
  dispatch(out.dtype(), [&](auto t) {
    using T = decltype(t);
    T* o = out.ptr<T>();
    std::size_t col = 0;
    for (std::size_t k = 0; k < xs.size(); ++k) {
      const T* p = xs[k].array().ptr<T>();
      for (std::size_t r = 0; r < outer; ++r) std::copy(p + r * widths[k], p + (r + 1) * widths[k], o + r * out_row + col);
      col += widths[k];
    }
  });
  return make_result(op, std::move(out), xs, [widths, outer, out_row](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      const T* g = self.grad->ptr<T>();
      std::size_t col = 0;
      for (std::size_t k = 0; k < widths.size(); ++k) {
        if (auto* gx = self.input_grad<T>(k))
          for (std::size_t r = 0; r < outer; ++r) kernels::acc(gx->data() + r * widths[k], g + r * out_row + col, widths[k]);
        col += widths[k];
      }
    });
  });
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) fail("concat: no tensors given");
  for (const auto& x : xs) detail::check_same_dtype("concat", xs[0], x);
  const Shape& s0 = xs[0].shape();
  if (s0.empty()) fail("concat: cannot concatenate 0-d tensors (use stack)");
  const std::size_t ax = detail::normalize_axis("concat", axis, s0);
  Shape out = s0;
  out[ax] = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const Shape& s = xs[k].shape();
    bool same = s.size() == s0.size();
    for (std::size_t i = 0; same && i < s.size(); ++i) same = i == ax || s[i] == s0[i];
    if (!same)
      fail("concat: tensor ", k, " has shape ", shape_str(s), ", which does not match ", shape_str(s0),
           " except along axis ", axis);
    out[ax] += s[ax];
  }
  return join("concat", xs, out, ax);
}

Tensor stack(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) fail("stack: no tensors given");
  for (const auto& x : xs) detail::check_same_dtype("stack", xs[0], x);
  const Shape& s0 = xs[0].shape();
  for (std::size_t k = 0; k < xs.size(); ++k)
    if (xs[k].shape() != s0) fail("stack: tensor ", k, " has shape ", shape_str(xs[k].shape()), ", expected ", shape_str(s0));
  const std::size_t ax = detail::normalize_axis("stack", axis, s0, 1);
  return join("stack", xs, with_axis(s0, ax, xs.size()), ax);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  detail::check_defined("expand", x);
  if (detail::broadcast_shapes("expand", x.shape(), shape) != shape)
    fail("expand: ", shape_str(x.shape()), " cannot be broadcast to ", shape_str(shape));
  Array out = Array::empty(x.dtype(), shape);
  detail::gather_strided(out, x.array(), 0, detail::broadcast_strides(x.shape(), shape));
  return make_result("expand", std::move(out), {x}, [](Node& self) { self.accumulate(0, *self.grad); });
}

}  // namespace ag
