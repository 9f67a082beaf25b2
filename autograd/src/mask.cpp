#include "ag/mask.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <ostream>

#include "ag/ops.hpp"
#include "internal.hpp"

namespace ag {

Mask::Mask(const Shape& shape, std::vector<std::uint8_t> blocked) : shape_(shape) {
  if (blocked.size() != shape_numel(shape))
    fail("Mask: ", blocked.size(), " values for the shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
  for (auto& b : blocked) b = b != 0;
  values_ = std::make_shared<const std::vector<std::uint8_t>>(std::move(blocked));
}

Mask Mask::full(const Shape& shape, bool blocked) {
  return Mask(shape, std::vector<std::uint8_t>(shape_numel(shape), blocked ? 1 : 0));
}

Mask Mask::nonzero(const Tensor& t) {
  detail::check_defined("Mask::nonzero", t);
  std::vector<std::uint8_t> v(t.numel());
  dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = t.array().ptr<T>();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = src[i] != T(0);
  });
  return Mask(t.shape(), std::move(v));
}

std::size_t Mask::count() const {
  return values_ ? std::size_t(std::count(values_->begin(), values_->end(), std::uint8_t(1))) : 0;
}

Mask Mask::reshape(const Shape& shape) const {
  if (shape_numel(shape) != numel()) fail("Mask::reshape: ", shape_str(shape_), " cannot become ", shape_str(shape));
  Mask m = *this;
  m.shape_ = shape;
  return m;
}

Tensor Mask::additive(Dtype dtype) const {
  if (!defined()) fail("Mask::additive: the mask is undefined");
  Tensor t = zeros(shape_, {dtype});
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* d = t.array().ptr<T>();
    for (std::size_t i = 0; i < numel(); ++i)
      if ((*values_)[i]) d[i] = -std::numeric_limits<T>::infinity();
  });
  return t;
}

Mask operator|(const Mask& a, const Mask& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  const Shape out = detail::broadcast_shapes("Mask operator|", a.shape(), b.shape());
  const auto sa = detail::broadcast_strides(a.shape(), out), sb = detail::broadcast_strides(b.shape(), out);
  const auto so = detail::contiguous_strides(out);
  std::vector<std::uint8_t> v(shape_numel(out));
  const std::uint8_t *pa = a.data(), *pb = b.data();
  detail::for_each_row<3>(out, {&so, &sa, &sb}, [&](auto off, std::size_t len, auto inner) {
    for (std::size_t j = 0; j < len; ++j)
      v[std::size_t(off[0]) + j] = pa[off[1] + std::ptrdiff_t(j) * inner[1]] | pb[off[2] + std::ptrdiff_t(j) * inner[2]];
  });
  return Mask(out, std::move(v));
}

void check_float_mask(const char* op, const Tensor& bias) {
  const bool zero_one = dispatch(bias.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* b = bias.array().ptr<T>();
    bool any_one = false;
    for (std::size_t i = 0; i < bias.numel(); ++i) {
      if (b[i] != T(0) && b[i] != T(1)) return false;
      any_one = any_one || b[i] == T(1);
    }
    return any_one;
  });
  if (zero_one)
    fail(op, ": the float mask ", shape_str(bias.shape()), " holds only 0s and 1s. A float mask is added to the scores "
         "(PyTorch's rule), so this one would block nothing. To block where it is 1, pass ag::Mask::nonzero(mask) "
         "(true = blocked); to block in a float mask, put -inf there");
}

std::ostream& operator<<(std::ostream& os, const Mask& m) {
  if (!m.defined()) return os << "Mask(undefined)";
  return os << "Mask" << shape_str(m.shape()) << " " << m.count() << " of " << m.numel() << " blocked";
}

}  // namespace ag
