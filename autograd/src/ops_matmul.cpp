// matmul through BLAS gemm. a: [..., M, K], b: [..., K, N] -> c: [..., M, N]; batch dims broadcast.
//
// Backward, per batch element (the transposes are gemm flags, never copies):
//   dA += dC · B^T      gemm(NoTrans, Trans)
//   dB += A^T · dC      gemm(Trans, NoTrans)
// Where a batch element of A or B is shared by several of C (broadcast), beta = 1 makes gemm
// add each contribution into the same block: that is the unbroadcast sum.
#include <cblas.h>

#include "ag/ops.hpp"
#include "internal.hpp"

namespace ag {
using detail::make_result;

namespace {

// C[M,N] = alpha * op(A) op(B) + beta * C for row-major A, B, C.
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A, const float* B,
          float beta, float* C) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K), alpha,
              A, ta ? int(M) : int(K), B, tb ? int(K) : int(N), beta, C, int(N));
}
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, double alpha, const double* A, const double* B,
          double beta, double* C) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K), alpha,
              A, ta ? int(M) : int(K), B, tb ? int(K) : int(N), beta, C, int(N));
}

// How the batch dims of a and b map onto the batch dims of c.
struct BatchPlan {
  std::size_t M = 0, K = 0, N = 0;
  Shape batch;                                    // c's batch shape
  std::vector<std::size_t> a_index, b_index;      // for each c batch element, which a / b matrix
  bool fold_a = false;  // b has no batch dims: treat a as one [batch*M, K] matrix (one gemm)
};

BatchPlan plan(const Shape& as, const Shape& bs) {
  BatchPlan p;
  p.M = as[as.size() - 2];
  p.K = as[as.size() - 1];
  p.N = bs[bs.size() - 1];
  const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  p.batch = detail::broadcast_shapes("matmul", ab, bb);
  p.fold_a = bb.empty() || (shape_numel(bb) == 1 && ab == p.batch);
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
  Array out(a.dtype(), out_shape);
  const std::size_t sa = p.M * p.K, sb = p.K * p.N, sc = p.M * p.N;
  dispatch(a.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *A = a.array().ptr<T>(), *B = b.array().ptr<T>();
    T* C = out.ptr<T>();
    if (p.fold_a) return gemm(false, false, p.a_index.size() * p.M, p.N, p.K, T(1), A, B, T(0), C);
    for (std::size_t i = 0; i < p.a_index.size(); ++i)
      gemm(false, false, p.M, p.N, p.K, T(1), A + p.a_index[i] * sa, B + p.b_index[i] * sb, T(0), C + i * sc);
  });
  return make_result("matmul", std::move(out), {a, b}, [p](Node& self) {
    const std::size_t sa = p.M * p.K, sb = p.K * p.N, sc = p.M * p.N;
    dispatch(self.data.dtype(), [&](auto t) {
      using T = decltype(t);
      const T* dC = self.grad->ptr<T>();
      const T *A = self.inputs[0]->data.ptr<T>(), *B = self.inputs[1]->data.ptr<T>();
      const std::size_t rows = p.a_index.size() * p.M;
      if (auto* gA = self.input_grad<T>(0)) {  // dA += dC · B^T
        if (p.fold_a) gemm(false, true, rows, p.K, p.N, T(1), dC, B, T(1), gA->data());
        else
          for (std::size_t i = 0; i < p.a_index.size(); ++i)
            gemm(false, true, p.M, p.K, p.N, T(1), dC + i * sc, B + p.b_index[i] * sb, T(1), gA->data() + p.a_index[i] * sa);
      }
      if (auto* gB = self.input_grad<T>(1)) {  // dB += A^T · dC
        if (p.fold_a) gemm(true, false, p.K, p.N, rows, T(1), A, dC, T(1), gB->data());
        else
          for (std::size_t i = 0; i < p.a_index.size(); ++i)
            gemm(true, false, p.K, p.N, p.M, T(1), A + p.a_index[i] * sa, dC + i * sc, T(1), gB->data() + p.b_index[i] * sb);
      }
    });
  });
}

}  // namespace

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
