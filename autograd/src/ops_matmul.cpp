// matmul through BLAS gemm. a: [..., M, K], b: [..., K, N] -> c: [..., M, N]; batch dims broadcast.
//
// Backward, per batch element (the transposes are gemm flags, never copies):
//   dA += dC · B^T      gemm(NoTrans, Trans)
//   dB += A^T · dC      gemm(Trans, NoTrans)
// Where a batch element of A or B is shared by several of C (broadcast), beta = 1 makes gemm
// add each contribution into the same block: that is the unbroadcast sum.
#include <algorithm>
#include <type_traits>

#include <cblas.h>

#include "ag/ops.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {
using detail::gemm;
using detail::make_result;

namespace detail {
namespace {
// Note [threads]: BLAS runs on one thread per call; the engine's threads split the work.
[[maybe_unused]] const bool g_blas_single_threaded = (openblas_set_num_threads(1), true);

template <class T>
void blas_gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A, std::size_t lda, const T* B,
               std::size_t ldb, T beta, T* C, std::size_t ldc) {
  const auto trans_a = ta ? CblasTrans : CblasNoTrans, trans_b = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, trans_a, trans_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
  else
    cblas_dgemm(CblasRowMajor, trans_a, trans_b, int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
}  // namespace

// See internal.hpp.
template <class T>
void gemm_impl(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A, std::size_t lda,
               const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (std::size_t i = 0; i < M; ++i) {
      if (beta == T(0)) std::fill(C + i * ldc, C + i * ldc + N, T(0));
      else if (beta != T(1)) kernels::mul_scalar(C + i * ldc, C + i * ldc, beta, N);
    }
    return;
  }
  const std::size_t threads = kernels::in_task() ? 1 : std::min(kernels::num_threads(), M * N * K / kGemmGrain);
  if (threads <= 1) return blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // Blocks of C's rows (A's rows), or of its columns (B's columns) when there are too few rows to
  // give each thread 48, in multiples of 24 (whole register tiles of OpenBLAS's kernels).
  const bool by_rows = M >= 48 * threads || M >= N;
  const std::size_t extent = by_rows ? M : N;
  const std::size_t block = ((extent + threads - 1) / threads + 23) / 24 * 24;
  const std::size_t blocks = (extent + block - 1) / block;
  kernels::run_tasks(blocks, threads, [&](std::size_t i) {
    const std::size_t start = i * block, size = std::min(extent, start + block) - start;
    if (by_rows)
      blas_gemm(ta, tb, size, N, K, alpha, ta ? A + start : A + start * lda, lda, B, ldb, beta, C + start * ldc, ldc);
    else
      blas_gemm(ta, tb, M, size, K, alpha, A, lda, tb ? B + start * ldb : B + start, ldb, beta, C + start, ldc);
  });
}

void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A, std::size_t lda,
          const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) {
  gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, double alpha, const double* A, std::size_t lda,
          const double* B, std::size_t ldb, double beta, double* C, std::size_t ldc) {
  gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
}  // namespace detail

namespace {

// How the batch dims of a and b map onto the batch dims of c.
struct BatchPlan {
  std::size_t M = 0, K = 0, N = 0;
  Shape batch;                                    // c's batch shape
  std::vector<std::size_t> a_index, b_index;      // for each c batch element, which a / b matrix
  bool fold_a = false;  // b has no batch dims: treat a as one [batch*M, K] matrix (one gemm)
  bool a_broadcast = false, b_broadcast = false;  // some a / b matrix is used by several c batch elements
};

BatchPlan plan(const Shape& as, const Shape& bs) {
  BatchPlan p;
  p.M = as[as.size() - 2];
  p.K = as[as.size() - 1];
  p.N = bs[bs.size() - 1];
  const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  for (std::size_t i = 1; i <= std::min(ab.size(), bb.size()); ++i) {  // name the operands, not just their batch dims
    const std::size_t da = ab[ab.size() - i], db = bb[bb.size() - i];
    if (da != db && da != 1 && db != 1)
      fail("matmul: shapes ", shape_str(as), " and ", shape_str(bs), ": batch dimensions ", shape_str(ab), " and ",
           shape_str(bb), " cannot be broadcast (", da, " vs ", db, ")");
  }
  p.batch = detail::broadcast_shapes("matmul", ab, bb);
  p.fold_a = bb.empty() || (shape_numel(bb) == 1 && ab == p.batch);
  p.a_broadcast = shape_numel(ab) != shape_numel(p.batch);
  p.b_broadcast = shape_numel(bb) != shape_numel(p.batch);
  const std::size_t count = shape_numel(p.batch);
  p.a_index.resize(count);
  p.b_index.resize(count);
  const auto sa = detail::broadcast_strides(ab, p.batch), sb = detail::broadcast_strides(bb, p.batch);
  const auto sc = detail::contiguous_strides(p.batch);
  detail::for_each_row<3>(p.batch, {&sc, &sa, &sb}, [&](auto off, std::size_t len, auto inner) {
    for (std::size_t j = 0; j < len; ++j) {
      p.a_index[std::size_t(off[0]) + j] = std::size_t(off[1] + std::ptrdiff_t(j) * inner[1]);
      p.b_index[std::size_t(off[0]) + j] = std::size_t(off[2] + std::ptrdiff_t(j) * inner[2]);
    }
  });
  return p;
}

Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const Shape &as = a.shape(), &bs = b.shape();
  if (as[as.size() - 1] != bs[bs.size() - 2])
    fail("matmul: shapes ", shape_str(as), " and ", shape_str(bs), " do not align (", as[as.size() - 1],
         " != ", bs[bs.size() - 2], ")");
  const BatchPlan p = plan(as, bs);
  Shape out_shape = p.batch;
  out_shape.push_back(p.M);
  out_shape.push_back(p.N);
  Array out = p.K ? Array::empty(a.dtype(), out_shape) : Array(a.dtype(), out_shape);  // K = 0: gemm may not write
  const std::size_t sa = p.M * p.K, sb = p.K * p.N, sc = p.M * p.N;
  dispatch(a.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *A = a.array().ptr<T>(), *B = b.array().ptr<T>();
    T* C = out.ptr<T>();
    if (p.fold_a) return gemm(false, false, p.a_index.size() * p.M, p.N, p.K, T(1), A, B, T(0), C);
    detail::gemm_batch(p.a_index.size(), p.M * p.N * p.K, true, [&](std::size_t i) {
      gemm(false, false, p.M, p.N, p.K, T(1), A + p.a_index[i] * sa, B + p.b_index[i] * sb, T(0), C + i * sc);
    });
  });
  return make_result("matmul", std::move(out), {a, b}, [p](Node& self) {
    const std::size_t sa = p.M * p.K, sb = p.K * p.N, sc = p.M * p.N;
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      const T* dC = self.grad->ptr<T>();
      const T *A = self.inputs[0]->data.ptr<T>(), *B = self.inputs[1]->data.ptr<T>();
      const std::size_t rows = p.a_index.size() * p.M;
      // A new gradient slot is written by gemm with beta = 0 (no zero-fill, no read), unless
      // a broadcast makes several batch elements add into the same block, or N = 0 / M = 0.
      const std::size_t batches = p.a_index.size();
      bool fresh = false;
      if (auto* gA = self.input_grad<T>(0, fresh)) {  // dA += dC · B^T
        if (fresh && (p.a_broadcast || p.N == 0 || batches == 0)) gA->fill(T(0)), fresh = false;
        const T beta = fresh ? T(0) : T(1);
        if (p.fold_a) gemm(false, true, rows, p.K, p.N, T(1), dC, B, beta, gA->data());
        else
          detail::gemm_batch(batches, p.M * p.N * p.K, !p.a_broadcast, [&](std::size_t i) {
            gemm(false, true, p.M, p.K, p.N, T(1), dC + i * sc, B + p.b_index[i] * sb, beta, gA->data() + p.a_index[i] * sa);
          });
      }
      if (auto* gB = self.input_grad<T>(1, fresh)) {  // dB += A^T · dC
        if (fresh && ((!p.fold_a && p.b_broadcast) || (p.fold_a ? rows : p.M) == 0 || batches == 0)) gB->fill(T(0)), fresh = false;
        const T beta = fresh ? T(0) : T(1);
        if (p.fold_a) gemm(true, false, p.K, p.N, rows, T(1), A, dC, beta, gB->data());
        else
          detail::gemm_batch(batches, p.M * p.N * p.K, !p.b_broadcast, [&](std::size_t i) {
            gemm(true, false, p.K, p.N, p.M, T(1), A + p.a_index[i] * sa, dC + i * sc, beta, gB->data() + p.b_index[i] * sb);
          });
      }
    });
  });
}

}  // namespace

//   y = x W^T + b          gemm(NoTrans, Trans) on x as one [N, in] matrix
//   dx += dy W             gemm(NoTrans, NoTrans)
//   dW += dy^T x           gemm(Trans, NoTrans)
//   db += sum over rows of dy
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_same_dtype("linear", x, weight);
  if (weight.dim() != 2) fail("linear: weight must be [out, in], got ", shape_str(weight.shape()));
  const std::size_t out_f = weight.shape()[0], in_f = weight.shape()[1];
  if (x.dim() == 0 || x.shape().back() != in_f)
    fail("linear: input ", shape_str(x.shape()), " does not end in ", in_f, " features (weight ", shape_str(weight.shape()), ")");
  if (bias.defined()) {
    detail::check_same_dtype("linear", x, bias);
    if (bias.shape() != Shape{out_f}) fail("linear: bias ", shape_str(bias.shape()), " should be [", out_f, "]");
  }
  const std::size_t rows = in_f ? x.numel() / in_f : 0;
  Shape out_shape = x.shape();
  out_shape.back() = out_f;
  Array out = in_f || bias.defined() ? Array::empty(x.dtype(), out_shape) : Array(x.dtype(), out_shape);
  dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    T* y = out.ptr<T>();
    if (bias.defined()) {  // y starts as the bias in every row, then gemm adds x W^T (beta = 1)
      const T* b = bias.array().ptr<T>();
      kernels::parallel_for(rows, out_f, 1, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) std::copy(b, b + out_f, y + r * out_f);
      });
    }
    if (rows && out_f) gemm(false, true, rows, out_f, in_f, T(1), x.array().ptr<T>(), weight.array().ptr<T>(), T(bias.defined() ? 1 : 0), y);
  });
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return make_result("linear", std::move(out), inputs, [rows, in_f, out_f](Node& self) {
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      const T* dy = self.grad->ptr<T>();
      if (!rows || !out_f) return;
      bool fresh = false;  // a new gradient slot is overwritten (beta = 0) rather than zeroed and added to
      if (auto* dx = self.input_grad<T>(0, fresh))
        gemm(false, false, rows, in_f, out_f, T(1), dy, self.inputs[1]->data.ptr<T>(), T(fresh ? 0 : 1), dx->data());
      if (auto* dw = self.input_grad<T>(1, fresh))
        gemm(true, false, out_f, in_f, rows, T(1), dy, self.inputs[0]->data.ptr<T>(), T(fresh ? 0 : 1), dw->data());
      if (self.inputs.size() > 2)
        if (auto* db = self.input_grad<T>(2)) kernels::acc_rows(db->data(), dy, rows, out_f, out_f);  // summed over the rows in order
    });
  });
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype("matmul", a, b);
  if (a.dim() == 0 || b.dim() == 0)
    fail("matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), ": both operands need at least 1 dimension");
  // NumPy's rule for vectors: a row on the left, a column on the right, dropped afterwards.
  if (a.dim() == 1 && b.dim() == 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  return matmul_nd(a, b);
}

}  // namespace ag
