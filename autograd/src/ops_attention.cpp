// Tiled ("flash") attention: out = softmax(q k^T * scale + mask) v, forward and backward,
// without ever holding the [Tq, Tk] matrix of scores or weights.
//
// Shape legend: "..." batch dims shared by q, k, v (e.g. [B, H]); one "slice" is one matrix of
// each. Tq queries, Tk keys, d width of q and k, dv width of v. A tile is Bq queries x Bk keys
// (Bq = Bk = block, fewer at the ends).
//
// Note [online softmax]
// Row i of the output is o_i = sum_j p_ij v_j with p_ij = exp(s_ij - m_i) / l_i, where
// s_ij = scale * q_i . k_j, m_i = max_j s_ij (for stability) and l_i = sum_j exp(s_ij - m_i).
// m_i and l_i need the whole row of scores before any weight is known. The online softmax
// (Milakov & Gimelshein 2018) keeps them as running values over blocks of keys, and rescales
// what it has accumulated whenever the running max grows. Per slice, per block of queries I:
//   m = -inf, l = 0, O_I = 0
//   for each block of keys J:
//     1) S    = scale * Q_I K_J^T                  [Bq, Bk], one gemm; blocked entries -> -inf
//     2) m'   = max(m, rowmax S)                   the new running max of each row
//        c    = exp(m - m')                        how much the terms summed so far shrink
//        P    = exp(S - m')                        unnormalised weights of this tile
//        l    = c l + rowsum P                     running sum of exponentials
//        O_I  = c O_I + P V_J                      running unnormalised output, one gemm
//        m    = m'
//   3) O_I = O_I / l                                and keep m and log l
// Saved for backward: the output O, m and log l [..., Tq]. Nothing of size Tq x Tk: the weights
// are recomputed tile by tile, exactly: p_ij = exp((s_ij - m_i) - log l_i). (Not as
// exp(s_ij - L_i) with L = m + log l, the row's log-sum-exp: L would round log l to the scores'
// magnitude, and large scores would lose the weights; the same fault as in log_softmax.)
//
// Backward (FlashAttention-2, Dao 2023), with dO the gradient of the output:
//   D_i = sum_j p_ij dp_ij = sum_k dO_ik O_ik      computed once per row, from O, not from P
//   for each tile (I, J): recompute S and P = exp((S - m) - log l), then
//     dV_J += P^T dO_I                             gemm
//     dP    = dO_I V_J^T                           gemm
//     dS    = P * (dP - D)                         the softmax backward, element-wise
//     dQ_I += scale * dS K_J                       gemm
//     dK_J += scale * dS^T Q_I                     gemm
// Extra memory, forward and backward: two [Bq, Bk] tiles and a few [Bq] vectors, whatever T is.
//
// Masks (PyTorch's rule, ag/mask.hpp): a bias (float mask) is added to the scores, S = scale Q K^T
// + bias, and gets the gradient dS summed over the axes it was broadcast along; a Mask blocks (the
// score becomes -inf). Both broadcast to [..., Tq, Tk] and are read through broadcast strides, at
// their own shape. causal blocks key j > query i's position (query_offset + i). A row with
// every key blocked has l = 0: its output is 0, m = -inf, and it passes no gradient (no NaN),
// as softmax of an all -inf row gives zero weights.
//
// Note [sliding window]
// With a window w, the query at position i sees keys j with |i - j| <= w (and j <= i under
// causal), plus the global tokens: a global query sees every key, every query sees a global key.
// The allowed pairs form a band of width 2w + 1 around the diagonal (w + 1 under causal) and a few
// full rows and columns. Tile (I, J) is visited only if it meets the band or holds a global query
// or key (Plan::visits); inside a visited tile the pairs outside are set to -inf, as a mask would.
// The skipped tiles are exactly those whose weights would all be 0, so the output is the same as
// full attention with the band mask; the work per query block is about (2w + block) keys, and
// Tq * (2w + block) in all, plus Tk per block holding a global query.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ag/mask.hpp"
#include "ag/ops.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {
using detail::gemm;
using detail::make_result;

namespace {

// How to read an array of its own shape (a mask or a bias) as if broadcast to the scores.
struct BroadcastView {
  std::vector<std::ptrdiff_t> offset;  // per slice: where its [Tq, Tk] view starts
  std::ptrdiff_t row = 0, col = 0;     // strides along Tq and Tk (0 where broadcast)
  std::ptrdiff_t at(std::size_t slice, std::size_t i, std::size_t j) const {
    return offset[slice] + std::ptrdiff_t(i) * row + std::ptrdiff_t(j) * col;
  }
};

// Everything the forward and the backward share: sizes, scale, and how to read the masks.
struct Plan {
  std::size_t slices = 0, Tq = 0, Tk = 0, d = 0, dv = 0, block = 0;
  double scale = 1.0;
  bool causal = false;
  std::size_t query_offset = 0;  // query row i is at position query_offset + i
  Mask blocked;             // undefined when there is none
  BroadcastView blocked_at;
  bool has_bias = false;    // the bias is the op's last input (converted to q's dtype)
  BroadcastView bias_at;
  std::vector<double> alibi_slope;  // per slice (the slope of its head); empty without ALiBi
  bool alibi_symmetric = false;
  bool windowed = false;  // Note [sliding window]
  std::size_t window = 0;
  std::vector<std::size_t> globals_before;  // [n + 1]: how many global positions are < n

  std::size_t tile_q() const { return std::min(block, Tq); }
  std::size_t tile_k() const { return std::min(block, Tk); }
  std::size_t globals_in(std::size_t from, std::size_t to) const {  // global positions in [from, to)
    auto at = [&](std::size_t n) { return globals_before[std::min(n, globals_before.size() - 1)]; };
    return at(to) - at(from);
  }
  bool is_global(std::size_t position) const { return globals_in(position, position + 1) > 0; }
  // Whether tile (I, J) has any key a query may see, from causality and the window alone (the
  // masks are read inside). Tiles without one are skipped, forward and backward.
  bool visits(std::size_t i0, std::size_t bq, std::size_t j0, std::size_t bk) const {
    const std::size_t first = query_offset + i0, last = first + bq - 1;  // the queries' positions
    if (causal && j0 > last) return false;                               // every key in the future
    if (!windowed) return true;
    const bool in_band = j0 <= last + window && j0 + bk - 1 + window >= first;
    return in_band || globals_in(first, last + 1) > 0 || globals_in(j0, j0 + bk) > 0;
  }
  // Whether every pair of the tile lies within the band (then no entry needs the window's -inf).
  bool inside_band(std::size_t i0, std::size_t bq, std::size_t j0, std::size_t bk) const {
    const std::size_t first = query_offset + i0, last = first + bq - 1;
    return last <= j0 + window && j0 + bk - 1 <= first + window;
  }
};

// 1) of the forward (and of the backward's recomputation): the scores of tile (I, J),
// S = scale * Q_I K_J^T + bias as [bq, bk] with row stride bk, blocked entries set to -inf.
// bias: the whole bias array at its own shape, or null.
template <class T>
void tile_scores(T* S, const Plan& p, std::size_t slice, const T* Q, const T* K, const T* bias, std::size_t i0,
                 std::size_t bq, std::size_t j0, std::size_t bk) {
  gemm(false, true, bq, bk, p.d, T(p.scale), Q + i0 * p.d, p.d, K + j0 * p.d, p.d, T(0), S, bk);
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  if (bias)
    for (std::size_t i = 0; i < bq; ++i) {
      const T* br = bias + p.bias_at.at(slice, i0 + i, j0);
      for (std::size_t j = 0; j < bk; ++j) S[i * bk + j] += br[std::ptrdiff_t(j) * p.bias_at.col];
    }
  if (!p.alibi_slope.empty()) {  // -m (i - j), or -m |i - j|: computed here, never stored
    const double m = p.alibi_slope[slice];
    for (std::size_t i = 0; i < bq; ++i)
      for (std::size_t j = 0; j < bk; ++j) {
        const double dist = double(p.query_offset + i0 + i) - double(j0 + j);
        S[i * bk + j] += T(-m * (p.alibi_symmetric ? std::abs(dist) : dist));
      }
  }
  if (p.windowed && !p.inside_band(i0, bq, j0, bk))  // outside the band, unless a global token is either end
    for (std::size_t i = 0; i < bq; ++i) {
      const std::size_t qi = p.query_offset + i0 + i;
      if (p.is_global(qi)) continue;
      for (std::size_t j = 0; j < bk; ++j) {
        const std::size_t kj = j0 + j;
        if ((qi > kj ? qi - kj : kj - qi) > p.window && !p.is_global(kj)) S[i * bk + j] = kNegInf;
      }
    }
  if (p.causal)
    for (std::size_t i = 0; i < bq; ++i) {
      const std::size_t first_blocked = p.query_offset + i0 + i + 1;  // keys after the query's position are in the future
      if (first_blocked < j0 + bk) std::fill(S + i * bk + (std::max(first_blocked, j0) - j0), S + (i + 1) * bk, kNegInf);
    }
  if (p.blocked.defined())
    for (std::size_t i = 0; i < bq; ++i) {
      const std::uint8_t* mr = p.blocked.data() + p.blocked_at.at(slice, i0 + i, j0);
      for (std::size_t j = 0; j < bk; ++j)
        if (mr[std::ptrdiff_t(j) * p.blocked_at.col]) S[i * bk + j] = kNegInf;
    }
}

// The forward of one slice. O: [Tq, dv], zero on entry; row_max, log_sum: [Tq] (m and log l).
template <class T>
void forward_slice(T* O, T* row_max, T* log_sum, const Plan& p, std::size_t slice, const T* Q, const T* K, const T* V,
                   const T* bias) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const std::size_t dv = p.dv;
  std::vector<T> S(p.tile_q() * p.tile_k()), m(p.tile_q()), l(p.tile_q());
  for (std::size_t i0 = 0; i0 < p.Tq; i0 += p.block) {
    const std::size_t bq = std::min(p.block, p.Tq - i0);
    std::fill(m.begin(), m.end(), kNegInf);
    std::fill(l.begin(), l.end(), T(0));
    for (std::size_t j0 = 0; j0 < p.Tk; j0 += p.block) {
      const std::size_t bk = std::min(p.block, p.Tk - j0);
      if (!p.visits(i0, bq, j0, bk)) continue;
      tile_scores(S.data(), p, slice, Q, K, bias, i0, bq, j0, bk);  // 1)
      for (std::size_t i = 0; i < bq; ++i) {                   // 2) the online softmax, row by row
        T* s = S.data() + i * bk;
        const T m_new = std::max(m[i], kernels::max(s, bk));
        if (m_new == kNegInf) {  // every key so far blocked: nothing to add (exp(-inf - -inf) is NaN)
          std::fill(s, s + bk, T(0));
          continue;
        }
        const T c = std::exp(m[i] - m_new);  // 0 on the row's first unblocked block
        kernels::add_scalar(s, s, -m_new, bk);
        kernels::exp(s, s, bk);  // P; blocked entries: exp(-inf) = 0
        l[i] = c * l[i] + kernels::sum(s, bk);
        if (c != T(1)) kernels::mul_scalar(O + (i0 + i) * dv, O + (i0 + i) * dv, c, dv);
        m[i] = m_new;
      }
      gemm(false, false, bq, dv, bk, T(1), S.data(), bk, V + j0 * dv, dv, T(1), O + i0 * dv, dv);  // O_I += P V_J
    }
    for (std::size_t i = 0; i < bq; ++i) {  // 3) normalise once; a fully blocked row keeps O = 0
      if (l[i] > T(0)) kernels::mul_scalar(O + (i0 + i) * dv, O + (i0 + i) * dv, T(1) / l[i], dv);
      row_max[i0 + i] = m[i];  // -inf for a fully blocked row
      log_sum[i0 + i] = l[i] > T(0) ? std::log(l[i]) : T(0);  // std::log: l > 0 here, no Log(0) trap
    }
  }
}

// The backward of one slice: adds into whichever of dQ, dK, dV, dBias is not null (dBias: the
// whole bias gradient at the bias's own shape, which every slice adds into).
template <class T>
void backward_slice(T* dQ, T* dK, T* dV, T* dBias, const Plan& p, std::size_t slice, const T* Q, const T* K, const T* V,
                    const T* bias, const T* O, const T* row_max, const T* log_sum, const T* dO) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const std::size_t d = p.d, dv = p.dv;
  const T scale = T(p.scale);
  const bool need_dS = dQ || dK || dBias;
  std::vector<T> P(p.tile_q() * p.tile_k()), dS(need_dS ? P.size() : 0), D(p.tile_q());
  for (std::size_t i0 = 0; i0 < p.Tq; i0 += p.block) {
    const std::size_t bq = std::min(p.block, p.Tq - i0);
    for (std::size_t i = 0; i < bq; ++i) {  // D_i = dO_i . O_i (= sum_j p_ij dp_ij)
      const T *g = dO + (i0 + i) * dv, *o = O + (i0 + i) * dv;
      T acc = 0;
      for (std::size_t t = 0; t < dv; ++t) acc += g[t] * o[t];
      D[i] = acc;
    }
    for (std::size_t j0 = 0; j0 < p.Tk; j0 += p.block) {
      const std::size_t bk = std::min(p.block, p.Tk - j0);
      if (!p.visits(i0, bq, j0, bk)) continue;
      tile_scores(P.data(), p, slice, Q, K, bias, i0, bq, j0, bk);
      for (std::size_t i = 0; i < bq; ++i) {  // P = exp((S - m) - log l): the exact softmax weights
        T* s = P.data() + i * bk;
        if (row_max[i0 + i] == kNegInf) {  // fully blocked row: weights 0, no gradient
          std::fill(s, s + bk, T(0));
          continue;
        }
        kernels::add_scalar(s, s, -row_max[i0 + i], bk);
        kernels::add_scalar(s, s, -log_sum[i0 + i], bk);
        kernels::exp(s, s, bk);
      }
      if (dV) gemm(true, false, bk, dv, bq, T(1), P.data(), bk, dO + i0 * dv, dv, T(1), dV + j0 * dv, dv);  // dV_J += P^T dO_I
      if (!need_dS) continue;
      gemm(false, true, bq, bk, dv, T(1), dO + i0 * dv, dv, V + j0 * dv, dv, T(0), dS.data(), bk);  // dP = dO_I V_J^T
      for (std::size_t i = 0; i < bq; ++i) {  // dS = P * (dP - D)
        T* ds = dS.data() + i * bk;
        kernels::add_scalar(ds, ds, -D[i], bk);
        kernels::mul(ds, ds, P.data() + i * bk, bk);
      }
      if (dQ) gemm(false, false, bq, d, bk, scale, dS.data(), bk, K + j0 * d, d, T(1), dQ + i0 * d, d);  // dQ_I += scale dS K_J
      if (dK) gemm(true, false, bk, d, bq, scale, dS.data(), bk, Q + i0 * d, d, T(1), dK + j0 * d, d);   // dK_J += scale dS^T Q_I
      if (dBias)  // dBias += dS, summed where the bias is broadcast
        for (std::size_t i = 0; i < bq; ++i) {
          T* gr = dBias + p.bias_at.at(slice, i0 + i, j0);
          for (std::size_t j = 0; j < bk; ++j) gr[std::ptrdiff_t(j) * p.bias_at.col] += dS[i * bk + j];
        }
    }
  }
}

std::string shapes_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return "q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + (v.defined() ? ", v " + shape_str(v.shape()) : "");
}

// The view of an array of shape ms broadcast to the scores [batch..., Tq, Tk] (checked by the caller).
BroadcastView broadcast_view(const Shape& ms, const Shape& batch, const Shape& scores, std::size_t slices) {
  const std::size_t nd = scores.size();
  const detail::Strides st = detail::broadcast_strides(ms, scores);
  BroadcastView v;
  v.row = st[nd - 2];
  v.col = st[nd - 1];
  const detail::Strides batch_st(st.begin(), st.end() - 2), slice_st = detail::contiguous_strides(batch);
  v.offset.resize(slices);
  detail::for_each_row<2>(batch, {&slice_st, &batch_st}, [&](auto off, std::size_t len, auto inner) {
    for (std::size_t j = 0; j < len; ++j) v.offset[std::size_t(off[0]) + j] = off[1] + std::ptrdiff_t(j) * inner[1];
  });
  return v;
}

// Checks the arguments and works out the plan (sizes, scale, how to read the masks). v may be
// undefined (attention_weights): then dv = 0 and only q, k and the masks are checked. Returns the
// bias converted to q's dtype (undefined without one): the op's last input.
Tensor make_plan(Plan& p, const char* op, const Tensor& q, const Tensor& k, const Tensor& v_in, const AttentionMask& mask,
                 const TiledAttentionOptions& o) {
  const Tensor& v = v_in.defined() ? v_in : k;  // k stands in for v in the checks below
  detail::check_same_dtype(op, q, k);
  detail::check_same_dtype(op, q, v);
  const std::size_t nd = q.dim();
  if (nd < 2 || k.dim() != nd || v.dim() != nd)
    fail(op, ": ", shapes_of(q, k, v_in), " must all be [..., T, features] with the same number of dimensions (at least 2)");
  const Shape batch(q.shape().begin(), q.shape().end() - 2);
  if (Shape(k.shape().begin(), k.shape().end() - 2) != batch || Shape(v.shape().begin(), v.shape().end() - 2) != batch)
    fail(op, ": ", shapes_of(q, k, v_in), ": the batch dimensions (all but the last two) must be equal");
  p.Tq = q.shape()[nd - 2];
  p.d = q.shape()[nd - 1];
  p.Tk = k.shape()[nd - 2];
  p.dv = v_in.defined() ? v.shape()[nd - 1] : 0;
  if (k.shape()[nd - 1] != p.d)
    fail(op, ": ", shapes_of(q, k, v_in), ": q and k differ in width d (", p.d, " vs ", k.shape()[nd - 1], ")");
  if (v.shape()[nd - 2] != p.Tk)
    fail(op, ": ", shapes_of(q, k, v_in), ": k and v differ in the number of keys Tk (", p.Tk, " vs ", v.shape()[nd - 2], ")");
  if (o.block == 0) fail(op, ": block must be at least 1 (", shapes_of(q, k, v_in), ")");
  if (!std::isfinite(o.scale)) fail(op, ": scale must be finite, got ", o.scale, " (", shapes_of(q, k, v_in), ")");
  p.slices = shape_numel(batch);
  p.block = o.block;
  p.causal = o.causal;
  p.query_offset = o.query_offset;
  if (!o.alibi_slopes.empty()) {
    if (batch.empty() || batch.back() != o.alibi_slopes.size())
      fail(op, ": ", o.alibi_slopes.size(), " ALiBi slopes, one per head, but the last batch dim of q is ",
           batch.empty() ? std::string("missing") : std::to_string(batch.back()), " (", shapes_of(q, k, v_in), ")");
    p.alibi_slope.resize(p.slices);
    for (std::size_t s = 0; s < p.slices; ++s) p.alibi_slope[s] = o.alibi_slopes[s % o.alibi_slopes.size()];
    p.alibi_symmetric = o.alibi_symmetric;
  }
  if (!o.global_tokens.empty() && !o.window)
    fail(op, ": global_tokens need a window (without one every query sees every key already) (", shapes_of(q, k, v_in), ")");
  if (o.window) {
    p.windowed = true;
    // No distance exceeds max(Tk, last query position): a wider window is the same, and clamping
    // keeps the band arithmetic (position + window) from wrapping around.
    p.window = std::min(*o.window, std::max(p.Tk, p.query_offset + p.Tq));
    std::vector<std::uint8_t> global(p.Tk, 0);
    for (std::size_t g : o.global_tokens) {
      if (g >= p.Tk) fail(op, ": global token at position ", g, " is not among the ", p.Tk, " keys (", shapes_of(q, k, v_in), ")");
      global[g] = 1;
    }
    p.globals_before.assign(p.Tk + 1, 0);
    for (std::size_t n = 0; n < p.Tk; ++n) p.globals_before[n + 1] = p.globals_before[n] + global[n];
  }
  p.scale = o.scale != 0.0 ? o.scale : p.d ? 1.0 / std::sqrt(double(p.d)) : 1.0;

  Shape scores = batch;  // [..., Tq, Tk]: what a mask must broadcast to, without growing it
  scores.push_back(p.Tq);
  scores.push_back(p.Tk);
  auto check_fits = [&](const char* what, const Shape& ms) {
    bool fits = ms.size() <= scores.size();
    for (std::size_t i = 0; fits && i < ms.size(); ++i) {
      const std::size_t want = scores[scores.size() - ms.size() + i];
      fits = ms[i] == want || ms[i] == 1;
    }
    if (!fits)
      fail(op, ": ", what, " ", shape_str(ms), " does not broadcast to the scores ", shape_str(scores), " (", shapes_of(q, k, v_in), ")");
  };
  if (mask.blocked.defined()) {
    check_fits("mask", mask.blocked.shape());
    p.blocked = mask.blocked;
    p.blocked_at = broadcast_view(mask.blocked.shape(), batch, scores, p.slices);
  }
  if (!mask.bias.defined()) return Tensor();
  check_fits("float mask", mask.bias.shape());
  check_float_mask(op, mask.bias);
  p.has_bias = true;
  p.bias_at = broadcast_view(mask.bias.shape(), batch, scores, p.slices);
  return mask.bias.dtype() == q.dtype() ? mask.bias : mask.bias.to(q.dtype());
}

}  // namespace

Tensor tiled_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask, TiledAttentionOptions o) {
  Plan p;
  const Tensor bias = make_plan(p, "tiled_attention", q, k, v, mask, o);
  Shape out_shape = q.shape();
  out_shape.back() = p.dv;
  Array out(q.dtype(), out_shape);  // zero-filled: the tiles add into it
  const Shape rows(q.shape().begin(), q.shape().end() - 1);  // [..., Tq]
  Array row_max = Array::empty(q.dtype(), rows), log_sum = Array::empty(q.dtype(), rows);
  dispatch(q.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *Q = q.array().ptr<T>(), *K = k.array().ptr<T>(), *V = v.array().ptr<T>();
    const T* Bias = bias.defined() ? bias.array().ptr<T>() : nullptr;
    for (std::size_t b = 0; b < p.slices; ++b)
      forward_slice(out.ptr<T>() + b * p.Tq * p.dv, row_max.ptr<T>() + b * p.Tq, log_sum.ptr<T>() + b * p.Tq, p, b,
                    Q + b * p.Tq * p.d, K + b * p.Tk * p.d, V + b * p.Tk * p.dv, Bias);
  });
  std::vector<Tensor> inputs{q, k, v};
  if (bias.defined()) inputs.push_back(bias);
  // Saved for backward: m and log l here, O as the node's own data, q, k, v (and the bias) as its inputs.
  return make_result("tiled_attention", std::move(out), std::move(inputs),
                     [p = std::move(p), row_max = std::move(row_max), log_sum = std::move(log_sum)](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      // The tiles add into the gradients (beta = 1), so a new slot must start at zero, which
      // input_grad<T>(i) does; it returns null for an input that needs no gradient. (q, k, v
      // may be one tensor: then the three share one slot, and adding is still right.)
      auto* gq = self.input_grad<T>(0);
      auto* gk = self.input_grad<T>(1);
      auto* gv = self.input_grad<T>(2);
      auto* gb = p.has_bias ? self.input_grad<T>(3) : nullptr;
      const T *Q = self.inputs[0]->data.ptr<T>(), *K = self.inputs[1]->data.ptr<T>(), *V = self.inputs[2]->data.ptr<T>();
      const T* Bias = p.has_bias ? self.inputs[3]->data.ptr<T>() : nullptr;
      const std::size_t sq = p.Tq * p.d, sk = p.Tk * p.d, sv = p.Tk * p.dv, so = p.Tq * p.dv;
      for (std::size_t b = 0; b < p.slices; ++b)
        backward_slice(gq ? gq->data() + b * sq : nullptr, gk ? gk->data() + b * sk : nullptr,
                       gv ? gv->data() + b * sv : nullptr, gb ? gb->data() : nullptr, p, b, Q + b * sq, K + b * sk,
                       V + b * sv, Bias, self.data.ptr<T>() + b * so, row_max.ptr<T>() + b * p.Tq,
                       log_sum.ptr<T>() + b * p.Tq, self.grad->ptr<T>() + b * so);
    });
  });
}

// The weights in one op: each slice's scores are written straight into the output and turned
// into weights in place, so no [..., Tq, Tk] array of scores is kept. Backward, per slice, with
// W the weights and dW their gradient:
//   dS  = W * (dW - rowsum(dW * W))     the softmax backward, into one [Tq, Tk] scratch
//   dQ += scale * dS K,   dK += scale * dS^T Q,   dBias += dS (summed where broadcast)
Tensor attention_weights(const Tensor& q, const Tensor& k, const AttentionMask& mask, double scale) {
  Plan p;
  const Tensor bias = make_plan(p, "attention_weights", q, k, Tensor(), mask, {.scale = scale});
  p.block = std::max<std::size_t>(p.Tk, 1);  // one tile holds a whole row of keys
  Shape out_shape = q.shape();
  out_shape.back() = p.Tk;
  Array w = Array::empty(q.dtype(), out_shape);
  const std::size_t sq = p.Tq * p.d, sk = p.Tk * p.d, sw = p.Tq * p.Tk;
  dispatch(q.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *Q = q.array().ptr<T>(), *K = k.array().ptr<T>();
    const T* Bias = bias.defined() ? bias.array().ptr<T>() : nullptr;
    detail::gemm_batch(p.slices, p.Tq * p.Tk * p.d, true, [&](std::size_t b) {  // the slices side by side (Note [threads])
      T* W = w.ptr<T>() + b * sw;
      tile_scores(W, p, b, Q + b * sq, K + b * sk, Bias, 0, p.Tq, 0, p.Tk);
      kernels::softmax_rows(W, W, p.Tq, p.Tk);  // in place; a fully blocked row gets zeros
    });
  });
  std::vector<Tensor> inputs{q, k};
  if (bias.defined()) inputs.push_back(bias);
  return make_result("attention_weights", std::move(w), std::move(inputs), [p = std::move(p), sq, sk, sw](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      auto* gq = self.input_grad<T>(0);
      auto* gk = self.input_grad<T>(1);
      auto* gb = p.has_bias ? self.input_grad<T>(2) : nullptr;
      if (!gq && !gk && !gb) return;
      const T *Q = self.inputs[0]->data.ptr<T>(), *K = self.inputs[1]->data.ptr<T>();
      const T scale = T(p.scale);
      // The slices side by side, unless the bias's gradient sums over them (Note [threads]).
      detail::gemm_batch(p.slices, 2 * p.Tq * p.Tk * p.d, !gb, [&](std::size_t b) {
        std::vector<T> dS(sw, T(0));  // the kernel adds into it
        kernels::softmax_backward_rows(dS.data(), self.data.ptr<T>() + b * sw, self.grad->ptr<T>() + b * sw, p.Tq, p.Tk);
        if (gq) gemm(false, false, p.Tq, p.d, p.Tk, scale, dS.data(), K + b * sk, T(1), gq->data() + b * sq);
        if (gk) gemm(true, false, p.Tk, p.d, p.Tq, scale, dS.data(), Q + b * sq, T(1), gk->data() + b * sk);
        if (gb)
          for (std::size_t i = 0; i < p.Tq; ++i) {
            T* gr = gb->data() + p.bias_at.at(b, i, 0);
            for (std::size_t j = 0; j < p.Tk; ++j) gr[std::ptrdiff_t(j) * p.bias_at.col] += dS[i * p.Tk + j];
          }
      });
    });
  });
}

}  // namespace ag
