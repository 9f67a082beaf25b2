// Linear attention (Katharopoulos et al. 2020): out_i = phi_q_i^T S_i / (phi_q_i^T z_i + eps),
// forward and backward in O(T d dv) time, never forming the [Tq, Tk] weights.
//
// Shape legend: "..." batch dims shared by phi_q, phi_k, v (e.g. [B, H]); one "slice" is one matrix
// of each. Tq queries, Tk keys (T = Tq = Tk when causal), d feature width, dv value width,
// e = dv + 1, C rows per chunk.
//
// Note [one more value column]
// The denominator is the numerator's sum with v_j replaced by 1: phi_q_i^T z_i = sum_j
// (phi_q_i . phi_k_j) * 1. So both come from one attention over the values v'_j = [v_j, 1] (width
// e = dv + 1): N'_i = sum_{j visible} (phi_q_i . phi_k_j) v'_j, whose first dv entries are the
// numerator and whose last is the denominator. The backward then needs only the gradient of N':
//   out_i = N'_i[:dv] r_i with r_i = 1 / (N'_i[dv] + eps), so
//   dN'_i[:dv] = dout_i r_i,   dN'_i[dv] = -r_i (dout_i . out_i).
// For N'_i = sum_j (q_i . k_j) v'_j (q, k the features), with g_i = dN'_i:
//   dq_i  = sum_j (g_i . v'_j) k_j,   dk_j = sum_i (g_i . v'_j) q_i,   dv'_j = sum_i (q_i . k_j) g_i
// summed over the visible pairs (j <= i when causal); dv is dv' without its last column.
//
// Non-causal: S' = K^T V' [d, e], N' = Q S'; backward with R' = Q^T G [d, e]:
//   dQ = G S'^T, dK = V' R'^T, dV' = K R'. Five gemms; nothing of size T x T.
//
// Causal, in chunks of C rows (the chunkwise form of linear attention, as in Yang et al. 2024's
// "Gated Linear Attention" kernels): with S' the sum of k_j v'_j^T over the chunks before chunk c,
//   N'_c = Q_c S' + tril(Q_c K_c^T) V'_c,   then S' += K_c^T V'_c
// (tril keeps j <= i). Backward: a forward pass rebuilds the S' before each chunk (dQ_c += G_c S'^T),
// a reverse pass keeps R' = sum over the chunks after c of Q^T G, and inside a chunk
// W = tril(G_c V'_c^T), A = tril(Q_c K_c^T):
//   dQ_c += W K_c,  dK_c += V'_c R'^T + W^T Q_c,  dV'_c += K_c R' + A^T G_c.
// Memory: S' and R' [d, e], a [C, C] tile, and V', G [T, e]: O(T (d + dv)) whatever T is, and no
// [T, d, dv] stack of states. Time per chunk: O(C^2 (d + e) + C d e), so O(T d dv) for C ~ d.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ag/ops.hpp"
#include "internal.hpp"

namespace ag {
using detail::gemm;
using detail::make_result;

namespace {

constexpr std::size_t kChunk = 64;

struct LinearPlan {
  std::size_t slices = 0, Tq = 0, Tk = 0, d = 0, dv = 0;
  bool causal = false;
  double eps = 1e-6;
  std::size_t e() const { return dv + 1; }
};

// V' = [V | 1]: [Tk, e]
template <class T>
void with_ones(T* Vp, const T* V, std::size_t rows, std::size_t dv) {
  for (std::size_t j = 0; j < rows; ++j) {
    std::copy_n(V + j * dv, dv, Vp + j * (dv + 1));
    Vp[j * (dv + 1) + dv] = T(1);
  }
}

// Zero the entries above the diagonal of a [n, n] tile (keep j <= i).
template <class T>
void keep_lower(T* A, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) std::fill(A + i * n + i + 1, A + (i + 1) * n, T(0));
}

// N' = the unnormalised attention over V' (Note [one more value column]): [Tq, e].
template <class T>
void numerator(T* Np, const LinearPlan& p, const T* Q, const T* K, const T* Vp) {
  const std::size_t d = p.d, e = p.e();
  std::vector<T> S(d * e, T(0));
  if (!p.causal) {
    gemm(true, false, d, e, p.Tk, T(1), K, d, Vp, e, T(0), S.data(), e);      // S' = K^T V'
    gemm(false, false, p.Tq, e, d, T(1), Q, d, S.data(), e, T(0), Np, e);    // N' = Q S'
    return;
  }
  std::vector<T> A(kChunk * kChunk);
  for (std::size_t c0 = 0; c0 < p.Tq; c0 += kChunk) {
    const std::size_t n = std::min(kChunk, p.Tq - c0);
    const T *Qc = Q + c0 * d, *Kc = K + c0 * d, *Vc = Vp + c0 * e;
    T* Nc = Np + c0 * e;
    gemm(false, false, n, e, d, T(1), Qc, d, S.data(), e, T(0), Nc, e);    // Q_c S' (the chunks before)
    gemm(false, true, n, n, d, T(1), Qc, d, Kc, d, T(0), A.data(), n);     // A = Q_c K_c^T
    keep_lower(A.data(), n);
    gemm(false, false, n, e, n, T(1), A.data(), n, Vc, e, T(1), Nc, e);    // + tril(A) V'_c
    gemm(true, false, d, e, n, T(1), Kc, d, Vc, e, T(1), S.data(), e);     // S' += K_c^T V'_c
  }
}

// The backward of one slice given G = dN' [Tq, e]; adds into whichever of dQ, dK, dV is not null.
template <class T>
void backward_slice(T* dQ, T* dK, T* dV, const LinearPlan& p, const T* Q, const T* K, const T* Vp, const T* G) {
  const std::size_t d = p.d, dv = p.dv, e = p.e();
  std::vector<T> S(d * e, T(0)), R(d * e, T(0));
  if (!p.causal) {
    if (dQ) {
      gemm(true, false, d, e, p.Tk, T(1), K, d, Vp, e, T(0), S.data(), e);     // S' = K^T V'
      gemm(false, true, p.Tq, d, e, T(1), G, e, S.data(), e, T(1), dQ, d);     // dQ += G S'^T
    }
    if (!dK && !dV) return;
    gemm(true, false, d, e, p.Tq, T(1), Q, d, G, e, T(0), R.data(), e);        // R' = Q^T G
    if (dK) gemm(false, true, p.Tk, d, e, T(1), Vp, e, R.data(), e, T(1), dK, d);  // dK += V' R'^T
    if (dV) gemm(false, false, p.Tk, dv, d, T(1), K, d, R.data(), e, T(1), dV, dv);  // dV += (K R')[:, :dv]
    return;
  }
  std::vector<T> W(kChunk * kChunk), A(kChunk * kChunk);
  if (dQ)  // the forward pass: dQ_c += G_c S'^T with S' over the chunks before c
    for (std::size_t c0 = 0; c0 < p.Tq; c0 += kChunk) {
      const std::size_t n = std::min(kChunk, p.Tq - c0);
      gemm(false, true, n, d, e, T(1), G + c0 * e, e, S.data(), e, T(1), dQ + c0 * d, d);
      gemm(true, false, d, e, n, T(1), K + c0 * d, d, Vp + c0 * e, e, T(1), S.data(), e);
    }
  // the reverse pass: the terms inside each chunk, and R' over the chunks after it
  if (p.Tq == 0) return;
  for (std::size_t c0 = (p.Tq - 1) / kChunk * kChunk;; c0 -= kChunk) {  // the chunk starts, last to first
    const std::size_t n = std::min(kChunk, p.Tq - c0);
    const T *Qc = Q + c0 * d, *Kc = K + c0 * d, *Vc = Vp + c0 * e, *Gc = G + c0 * e;
    if (dQ || dK) {
      gemm(false, true, n, n, e, T(1), Gc, e, Vc, e, T(0), W.data(), n);  // W = G_c V'_c^T
      keep_lower(W.data(), n);
      if (dQ) gemm(false, false, n, d, n, T(1), W.data(), n, Kc, d, T(1), dQ + c0 * d, d);  // dQ_c += W K_c
      if (dK) {
        gemm(true, false, n, d, n, T(1), W.data(), n, Qc, d, T(1), dK + c0 * d, d);         // dK_c += W^T Q_c
        gemm(false, true, n, d, e, T(1), Vc, e, R.data(), e, T(1), dK + c0 * d, d);         // + V'_c R'^T
      }
    }
    if (dV) {
      gemm(false, true, n, n, d, T(1), Qc, d, Kc, d, T(0), A.data(), n);  // A = Q_c K_c^T
      keep_lower(A.data(), n);
      gemm(true, false, n, dv, n, T(1), A.data(), n, Gc, e, T(1), dV + c0 * dv, dv);  // dV_c += (A^T G_c)[:, :dv]
      gemm(false, false, n, dv, d, T(1), Kc, d, R.data(), e, T(1), dV + c0 * dv, dv);  // + (K_c R')[:, :dv]
    }
    if (dK || dV) gemm(true, false, d, e, n, T(1), Qc, d, Gc, e, T(1), R.data(), e);  // R' += Q_c^T G_c
    if (c0 == 0) break;
  }
}

std::string shapes_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return "phi_q " + shape_str(q.shape()) + ", phi_k " + shape_str(k.shape()) + ", v " + shape_str(v.shape());
}

LinearPlan make_plan(const Tensor& q, const Tensor& k, const Tensor& v, const LinearAttentionOptions& o) {
  const char* op = "linear_attention";
  detail::check_same_dtype(op, q, k);
  detail::check_same_dtype(op, q, v);
  const std::size_t nd = q.dim();
  if (nd < 2 || k.dim() != nd || v.dim() != nd)
    fail(op, ": ", shapes_of(q, k, v), " must all be [..., T, features] with the same number of dimensions (at least 2)");
  const Shape batch(q.shape().begin(), q.shape().end() - 2);
  if (Shape(k.shape().begin(), k.shape().end() - 2) != batch || Shape(v.shape().begin(), v.shape().end() - 2) != batch)
    fail(op, ": ", shapes_of(q, k, v), ": the batch dimensions (all but the last two) must be equal");
  LinearPlan p;
  p.slices = shape_numel(batch);
  p.Tq = q.shape()[nd - 2], p.d = q.shape()[nd - 1], p.Tk = k.shape()[nd - 2], p.dv = v.shape()[nd - 1];
  if (k.shape()[nd - 1] != p.d) fail(op, ": ", shapes_of(q, k, v), ": phi_q and phi_k differ in width d");
  if (v.shape()[nd - 2] != p.Tk) fail(op, ": ", shapes_of(q, k, v), ": phi_k and v differ in the number of keys Tk");
  if (o.causal && p.Tq != p.Tk)
    fail(op, ": causal needs as many queries as keys (query i sees keys 0..i), got ", shapes_of(q, k, v));
  if (!std::isfinite(o.eps) || o.eps < 0) fail(op, ": eps must be finite and >= 0, got ", o.eps, " (", shapes_of(q, k, v), ")");
  p.causal = o.causal;
  p.eps = o.eps;
  return p;
}

}  // namespace

Tensor linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, LinearAttentionOptions o) {
  const LinearPlan p = make_plan(phi_q, phi_k, v, o);
  Shape out_shape = phi_q.shape();
  out_shape.back() = p.dv;
  Array out = Array::empty(phi_q.dtype(), out_shape);
  const Shape rows(phi_q.shape().begin(), phi_q.shape().end() - 1);  // [..., Tq]
  Array den = Array::empty(phi_q.dtype(), rows);  // phi_q_i . z_i, saved for backward
  const std::size_t e = p.e();
  dispatch(phi_q.dtype(), [&](auto t) {
    using T = decltype(t);
    std::vector<T> Vp(p.Tk * e), Np(p.Tq * e);
    for (std::size_t b = 0; b < p.slices; ++b) {
      with_ones(Vp.data(), v.array().ptr<T>() + b * p.Tk * p.dv, p.Tk, p.dv);
      numerator(Np.data(), p, phi_q.array().ptr<T>() + b * p.Tq * p.d, phi_k.array().ptr<T>() + b * p.Tk * p.d, Vp.data());
      T *O = out.ptr<T>() + b * p.Tq * p.dv, *Den = den.ptr<T>() + b * p.Tq;
      for (std::size_t i = 0; i < p.Tq; ++i) {
        Den[i] = Np[i * e + p.dv];
        const T r = T(1) / (Den[i] + T(p.eps));
        for (std::size_t c = 0; c < p.dv; ++c) O[i * p.dv + c] = Np[i * e + c] * r;
      }
    }
  });
  return make_result("linear_attention", std::move(out), {phi_q, phi_k, v}, [p, den = std::move(den)](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      auto* gq = self.input_grad<T>(0);
      auto* gk = self.input_grad<T>(1);
      auto* gv = self.input_grad<T>(2);
      if (!gq && !gk && !gv) return;
      const std::size_t e = p.e(), sq = p.Tq * p.d, sk = p.Tk * p.d, sv = p.Tk * p.dv, so = p.Tq * p.dv;
      std::vector<T> Vp(p.Tk * e), G(p.Tq * e);
      for (std::size_t b = 0; b < p.slices; ++b) {
        const T *O = self.data.ptr<T>() + b * so, *dO = self.grad->ptr<T>() + b * so, *Den = den.ptr<T>() + b * p.Tq;
        for (std::size_t i = 0; i < p.Tq; ++i) {  // dN' (Note [one more value column])
          const T r = T(1) / (Den[i] + T(p.eps));
          T dot = 0;
          for (std::size_t c = 0; c < p.dv; ++c) {
            G[i * e + c] = dO[i * p.dv + c] * r;
            dot += dO[i * p.dv + c] * O[i * p.dv + c];
          }
          G[i * e + p.dv] = -r * dot;
        }
        with_ones(Vp.data(), self.inputs[2]->data.ptr<T>() + b * sv, p.Tk, p.dv);
        backward_slice(gq ? gq->data() + b * sq : nullptr, gk ? gk->data() + b * sk : nullptr, gv ? gv->data() + b * sv : nullptr, p,
                       self.inputs[0]->data.ptr<T>() + b * sq, self.inputs[1]->data.ptr<T>() + b * sk, Vp.data(), G.data());
      }
    });
  });
}

}  // namespace ag
