#pragma once
// Masks for attention, by PyTorch's rule (nn.MultiheadAttention's attn_mask and key_padding_mask):
//   a boolean mask BLOCKS: where it is true the score becomes -inf and gets zero weight;
//   a float mask is ADDED to the scores: ALiBi, relative-position and learned biases (it gets a
//   gradient), and -inf in it blocks too.
// ag::Mask is the boolean kind (ag::Tensor holds float32/float64 only); ag::AttentionMask is what
// the attention ops take: a Mask, a float Tensor, or both.
//
// Shape legend: B batch, H heads, Tq queries, Tk keys. A mask broadcasts (NumPy's rules, without
// growing the scores) against the scores [..., Tq, Tk], e.g. [Tq, Tk], or key padding [B, 1, 1, Tk].
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <vector>

#include "ag/tensor.hpp"

namespace ag {

// An array of booleans with a shape; true = blocked. Cheap to copy (the values are shared and
// never modified). No dtype and no gradient.
class Mask {
 public:
  Mask() = default;  // undefined: no mask at all
  // Errors: blocked.size() differs from the number of elements of shape.
  Mask(const Shape& shape, std::vector<std::uint8_t> blocked);
  static Mask full(const Shape& shape, bool blocked);
  // true where t != 0 (any dtype): how a 0/1 float tensor becomes a mask that blocks.
  static Mask nonzero(const Tensor& t);

  bool defined() const { return values_ != nullptr; }
  const Shape& shape() const { return shape_; }
  std::size_t dim() const { return shape_.size(); }
  std::size_t numel() const { return values_ ? values_->size() : 0; }
  const std::uint8_t* data() const { return values_ ? values_->data() : nullptr; }  // 0 or 1, row-major
  bool operator[](std::size_t flat_index) const { return (*values_)[flat_index] != 0; }
  std::size_t count() const;  // how many entries are true

  // The same values with another shape of as many elements. Errors: the sizes differ.
  Mask reshape(const Shape& shape) const;
  // The float mask that does the same when added: 0 where allowed, -inf where blocked.
  Tensor additive(Dtype dtype) const;

 private:
  Shape shape_;
  std::shared_ptr<const std::vector<std::uint8_t>> values_;
};

// Element-wise or, broadcasting (blocked by either). Errors: shapes that do not broadcast.
Mask operator|(const Mask& a, const Mask& b);
std::ostream& operator<<(std::ostream& os, const Mask& m);  // "Mask[2,3] 4 of 6 blocked"

// What the attention ops take as their mask (implicitly from either kind, so `{}`, a Mask or a
// Tensor can be passed): `blocked` (true = the score becomes -inf) and/or `bias` (a float
// Tensor added to the scores, differentiable; a different dtype than q is converted).
// A float mask that holds only 0s and 1s (at least one 1) is refused as ambiguous by the ops:
// it looks like a 0/1 mask of blocked positions (the rule before PyTorch's, and other
// libraries'), which added to the scores would block nothing. Pass Mask::nonzero(t) to block.
struct AttentionMask {
  AttentionMask() = default;
  AttentionMask(Mask blocked_) : blocked(std::move(blocked_)) {}  // NOLINT: implicit by design
  AttentionMask(Tensor bias_) : bias(std::move(bias_)) {}          // NOLINT: implicit by design
  AttentionMask(Mask blocked_, Tensor bias_) : blocked(std::move(blocked_)), bias(std::move(bias_)) {}
  bool defined() const { return blocked.defined() || bias.defined(); }

  Mask blocked;
  Tensor bias;
};

// Throws the ambiguity error above (naming op and the mask's shape) if bias holds only 0s and 1s,
// some of them 1s; the attention ops call it on every float mask.
void check_float_mask(const char* op, const Tensor& bias);

}  // namespace ag
