// Neural-network ops: softmax, log_softmax, layer_norm, embedding, dropout and the losses.
#include <cmath>
#include <limits>
#include <numeric>

#include "ag/ops.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {
using detail::make_result;

namespace {

// The softmax kernels work on contiguous rows. For an axis other than the last, the op moves
// that axis last (a copy), runs the kernel, and moves it back.
struct AxisLayout {
  std::size_t axis = 0, cols = 0, rows = 0;
  bool last = true;
  std::vector<std::size_t> to_last, from_last;  // permutations, used when !last
};

AxisLayout axis_layout(const char* op, const Shape& s, int axis) {
  if (s.empty()) fail(op, ": needs at least 1 dimension, got a 0-d tensor");
  AxisLayout l;
  l.axis = detail::normalize_axis(op, axis, s);
  l.cols = s[l.axis];
  l.rows = l.cols ? shape_numel(s) / l.cols : 0;
  l.last = l.axis == s.size() - 1;
  if (!l.last) {
    for (std::size_t i = 0; i < s.size(); ++i)
      if (i != l.axis) l.to_last.push_back(i);
    l.to_last.push_back(l.axis);
    l.from_last.resize(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) l.from_last[l.to_last[i]] = i;
  }
  return l;
}

Tensor softmax_impl(const char* op, const Tensor& x, int axis, bool log) {
  detail::check_defined(op, x);
  const AxisLayout l = axis_layout(op, x.shape(), axis);
  Array x_moved;
  const Array& xl = l.last ? x.array() : (x_moved = detail::permute_array(x.array(), l.to_last));
  Array y = Array::empty(x.dtype(), xl.shape());
  dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    if (log) kernels::log_softmax_rows(y.ptr<T>(), xl.ptr<T>(), l.rows, l.cols);
    else kernels::softmax_rows(y.ptr<T>(), xl.ptr<T>(), l.rows, l.cols);
  });
  if (!l.last) y = detail::permute_array(y, l.from_last);
  // softmax: dx = y * (dy - sum(dy * y));  log_softmax: dx = dy - softmax * sum(dy). Both use y.
  return make_result(op, std::move(y), {x}, [l, log](Node& self) {
    if (!self.needs_grad(0)) return;
    auto backward_rows = [&](auto* dx, const Array& y, const Array& g) {
      using T = std::remove_pointer_t<decltype(dx)>;
      if (log) kernels::log_softmax_backward_rows(dx, y.ptr<T>(), g.ptr<T>(), l.rows, l.cols);
      else kernels::softmax_backward_rows(dx, y.ptr<T>(), g.ptr<T>(), l.rows, l.cols);
    };
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      if (l.last) {  // rows are contiguous: accumulate straight into the input's gradient
        backward_rows(self.input_grad<T>(0)->data(), self.data, *self.grad);
        return;
      }
      const Array yl = detail::permute_array(self.data, l.to_last), gl = detail::permute_array(*self.grad, l.to_last);
      Array dx(yl.dtype(), yl.shape());
      backward_rows(dx.ptr<T>(), yl, gl);
      self.accumulate(0, detail::permute_array(dx, l.from_last));
    });
  });
}

}  // namespace

Tensor softmax(const Tensor& x, int axis) { return softmax_impl("softmax", x, axis, false); }
Tensor log_softmax(const Tensor& x, int axis) { return softmax_impl("log_softmax", x, axis, true); }

// y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (D).
// Saved for backward: mean [rows] and rstd = 1/sqrt(var + eps) [rows].
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  detail::check_defined("layer_norm", x);
  if (x.dim() == 0) fail("layer_norm: needs at least 1 dimension, got a 0-d tensor");
  const std::size_t D = x.shape().back();
  const std::size_t rows = D ? x.numel() / D : 0;
  std::vector<Tensor> inputs{x};
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    detail::check_same_dtype("layer_norm", x, *p);
    if (p->shape() != Shape{D})
      fail("layer_norm: ", p == &weight ? "weight" : "bias", " has shape ", shape_str(p->shape()), ", expected [", D,
           "] for input ", shape_str(x.shape()));
    inputs.push_back(*p);
  }
  const bool has_w = weight.defined(), has_b = bias.defined();
  Array y = Array::empty(x.dtype(), x.shape());
  Array mean = Array::empty(x.dtype(), Shape{rows}), rstd = Array::empty(x.dtype(), Shape{rows});
  dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    kernels::layer_norm_rows(y.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(), x.array().ptr<T>(), has_w ? weight.array().ptr<T>() : nullptr,
                             has_b ? bias.array().ptr<T>() : nullptr, rows, D, T(eps));
  });
  return make_result("layer_norm", std::move(y), inputs,
                     [mean = std::move(mean), rstd = std::move(rstd), rows, D, has_w, has_b](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      auto* dx = self.input_grad<T>(0);
      auto* dw = has_w ? self.input_grad<T>(1) : nullptr;
      auto* db = has_b ? self.input_grad<T>(has_w ? 2 : 1) : nullptr;
      kernels::layer_norm_backward_rows(dx ? dx->data() : nullptr, dw ? dw->data() : nullptr, db ? db->data() : nullptr,
                                        self.grad->ptr<T>(), self.inputs[0]->data.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(),
                                        has_w ? self.inputs[1]->data.ptr<T>() : nullptr, rows, D);
    });
  });
}

// out[s, :] = weight[ids[s], :]; backward scatter-adds each row of the gradient into weight's.
Tensor embedding(const Tensor& weight, const Indices& ids, std::optional<std::int64_t> padding_idx) {
  detail::check_defined("embedding", weight);
  if (weight.dim() != 2) fail("embedding: weight must be [num_embeddings, dim], got ", shape_str(weight.shape()));
  const std::size_t V = weight.shape()[0], D = weight.shape()[1];
  std::int64_t pad = -1;  // the row that gets no gradient (-1: none)
  if (padding_idx) {
    if (*padding_idx < -std::int64_t(V) || *padding_idx >= std::int64_t(V))
      fail("embedding: padding_idx ", *padding_idx, " out of range for ", V, " embeddings (expected -", V, " <= padding_idx < ", V, ")");
    pad = *padding_idx < 0 ? *padding_idx + std::int64_t(V) : *padding_idx;
  }
  for (auto id : ids.values)
    if (id < 0 || std::size_t(id) >= V)
      fail("embedding: index ", id, " out of range for ", V, " embeddings (weight ", shape_str(weight.shape()), ")");
  Shape out_shape = ids.shape;
  out_shape.push_back(D);
  Array out = Array::empty(weight.dtype(), out_shape);
  dispatch(weight.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* w = weight.array().ptr<T>();
    T* o = out.ptr<T>();
    for (std::size_t s = 0; s < ids.size(); ++s) std::copy(w + ids.values[s] * D, w + (ids.values[s] + 1) * D, o + s * D);
  });
  return make_result("embedding", std::move(out), {weight}, [ids = ids.values, D, pad](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      auto* gw = self.input_grad<T>(0);
      if (!gw) return;
      const T* g = self.grad->ptr<T>();
      for (std::size_t s = 0; s < ids.size(); ++s)
        if (ids[s] != pad) kernels::acc(gw->data() + ids[s] * D, g + s * D, D);
    });
  });
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  detail::check_defined("dropout", x);
  if (!(p >= 0.0 && p <= 1.0)) fail("dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  // Inverted dropout: keep with probability 1-p and scale by 1/(1-p), so eval needs no change.
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  Array mask = Array::empty(x.dtype(), x.shape());
  Array out = Array::empty(x.dtype(), x.shape());
  dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    T* m = mask.ptr<T>();
    for (std::size_t i = 0; i < mask.size(); ++i) m[i] = gen.uniform() >= p ? T(scale) : T(0);
    kernels::mul(out.ptr<T>(), x.array().ptr<T>(), m, out.size());
  });
  return make_result("dropout", std::move(out), {x}, [mask = std::move(mask)](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      if (auto* gx = self.input_grad<T>(0)) kernels::acc_mul(gx->data(), self.grad->ptr<T>(), mask.ptr<T>(), mask.size());
    });
  });
}

// One entry of log_softmax(x) from its row's statistics, as log_softmax_rows computes it (the same
// bits: (x - m) - log_sum in T); a row that is all -inf has log-probabilities -inf.
namespace {
template <class T>
T log_softmax_entry(T x, T m, T log_sum) {
  return m == -std::numeric_limits<T>::infinity() ? m : (x - m) - log_sum;
}
}  // namespace

// cross_entropy, fused with its log_softmax (PyTorch's formula, with label smoothing ls and class
// weights w; see ops.hpp). For row r with target y and log-probabilities l = log_softmax(x_r):
//   loss_r = sum_c a_c l_c,  a_c = -(1 - ls) w_y [c = y] - (ls / C) w_c
// and since dl_c/dx_k = [c = k] - p_k:  dloss_r/dx_k = a_k - p_k sum_c a_c. Without smoothing or
// weights that is the familiar loss_r = -l_y and gradient softmax - onehot(y).
// The mean divides by sum_r w_{y_r} over the rows not ignored (the count of them without weights).
// Note [cross-entropy memory]: over a large vocabulary (GPT-2: [256, 50304], 51.5 MB in float32)
// the op keeps two numbers per row, the max m and log_sum, not the [rows, C] log-softmax: forward
// and backward recompute l_c = (x_c - m) - log_sum from the logits the graph keeps anyway, the
// same bits as log_softmax_rows writes. Its backward writes a new gradient slot instead of zeroing
// and adding to it. So the op holds one [rows, C] array at backward (the gradient), as PyTorch's.
Tensor cross_entropy(const Tensor& logits, const Indices& targets, CrossEntropyOptions o) {
  detail::check_defined("cross_entropy", logits);
  if (logits.dim() == 0) fail("cross_entropy: logits must be [..., classes], got a 0-d tensor");
  const std::size_t C = logits.shape().back();
  const std::size_t rows = C ? logits.numel() / C : 0;
  const Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  if (targets.shape != lead && !(targets.shape.size() == 1 && targets.size() == rows))
    fail("cross_entropy: targets ", shape_str(targets.shape), " do not match logits ", shape_str(logits.shape()),
         " (expected ", shape_str(lead), ")");
  for (auto t : targets.values)
    if (t != o.ignore_index && (t < 0 || std::size_t(t) >= C))
      fail("cross_entropy: target ", t, " out of range for ", C, " classes (logits ", shape_str(logits.shape()), ")");
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0))
    fail("cross_entropy: label_smoothing must be in [0, 1], got ", o.label_smoothing);
  if (o.weight.defined() && o.weight.shape() != Shape{C})
    fail("cross_entropy: weight must be [", C, "] (one per class of logits ", shape_str(logits.shape()), "), got ",
         shape_str(o.weight.shape()));
  std::vector<double> w(C, 1.0);
  if (o.weight.defined()) w = o.weight.to_vector();
  const double ls = o.label_smoothing, w_sum = std::accumulate(w.begin(), w.end(), 0.0);
  double denom = 0;  // the mean's divisor
  for (auto t : targets.values)
    if (t != o.ignore_index) denom += w[std::size_t(t)];
  Array stats = Array::empty(logits.dtype(), Shape{2, rows});  // row maxima, then log_sums (Note [cross-entropy memory])
  Array out = Array::empty(logits.dtype(), o.reduction == Reduction::none ? lead : Shape{});  // every entry written below
  dispatch(logits.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* x = logits.array().ptr<T>();
    const T *m = stats.ptr<T>(), *log_s = m + rows;
    kernels::log_softmax_stats_rows(stats.ptr<T>(), stats.ptr<T>() + rows, x, rows, C);
    T* dst = out.ptr<T>();
    double total = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const auto y = targets.values[r];
      auto l = [&](std::size_t c) { return log_softmax_entry(x[r * C + c], m[r], log_s[r]); };
      double loss = 0;
      if (y != o.ignore_index) {
        loss = -(1 - ls) * w[std::size_t(y)] * double(l(std::size_t(y)));
        if (ls != 0) {  // only then: a class at -inf (l_c = -inf) must not turn 0 * -inf into NaN
          double smooth = 0;
          for (std::size_t c = 0; c < C; ++c) smooth -= w[c] * double(l(c));
          loss += ls / double(C) * smooth;
        }
      }
      if (o.reduction == Reduction::none) dst[r] = T(loss);
      total += loss;
    }
    if (o.reduction == Reduction::sum) dst[0] = T(total);
    if (o.reduction == Reduction::mean) dst[0] = denom != 0 ? T(total / denom) : T(0);  // every target ignored: 0, no NaN
  });
  return make_result("cross_entropy", std::move(out), {logits},
                     [stats = std::move(stats), tg = targets.values, o, w = std::move(w), w_sum, ls, denom, rows, C](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      bool fresh = false;  // a new slot: every entry is written, ignored rows with zeros
      auto* gx = self.input_grad<T>(0, fresh);
      if (!gx) return;
      const T* x = self.inputs[0]->data.ptr<T>();
      const T *m = stats.ptr<T>(), *log_s = m + rows;
      const T* g = self.grad->ptr<T>();
      T* d = gx->data();
      auto scale_of = [&](std::size_t r) {
        return o.reduction == Reduction::none ? double(g[r])
               : o.reduction == Reduction::sum ? double(g[0])
               : denom != 0                    ? double(g[0]) / denom
                                               : 0.0;
      };
      // Rows are independent: split over threads (Note [threads] in kernels.hpp; the same bits).
      kernels::parallel_for(rows, C, 1, [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end; ++r) {
          T* dr = d + r * C;
          const auto y = tg[r];
          if (y == o.ignore_index) {
            if (fresh) std::fill(dr, dr + C, T(0));
            continue;
          }
          const double scale = scale_of(r);
          const double a_y = -(1 - ls) * w[std::size_t(y)], a_sum = a_y - ls / double(C) * w_sum;
          for (std::size_t c = 0; c < C; ++c) {
            const double a_c = -ls / double(C) * w[c] + (c == std::size_t(y) ? a_y : 0.0);
            const T v = T(scale * (a_c - std::exp(double(log_softmax_entry(x[r * C + c], m[r], log_s[r]))) * a_sum));
            dr[c] = fresh ? v + T(0) : dr[c] + v;  // + 0: the bits of adding into a zeroed slot (-0 becomes +0)
          }
        }
      });
    });
  });
}

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  detail::check_same_dtype("mse_loss", pred, target);
  if (pred.shape() != target.shape())
    fail("mse_loss: prediction ", shape_str(pred.shape()), " and target ", shape_str(target.shape()), " differ in shape");
  const Tensor sq = pow(pred - target, 2.0);
  if (reduction == Reduction::none) return sq;
  return reduction == Reduction::sum ? sum(sq) : mean(sq);
}

}  // namespace ag
