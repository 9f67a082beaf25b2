#pragma once
// Shared machinery of the op files (not public): making an op's output node, checking
// arguments, and walking broadcast / strided layouts row by row.
#include <array>
#include <cstddef>
#include <vector>

#include "ag/ops.hpp"
#include "ag/tensor.hpp"
#include "kernels/kernels.hpp"

namespace ag::detail {

using Strides = xt::svector<std::ptrdiff_t, 4>;  // in elements, one per axis

// The output of an op. When grad mode is on and any input requires grad, the node records the
// inputs and the backward rule; otherwise it is a plain constant and the rule is dropped.
Tensor make_result(const char* op, Array data, std::vector<Tensor> inputs, BackwardFn backward);

// C[M,N] = alpha * op(A) op(B) + beta * C, row-major with leading dimensions (cblas; op =
// transpose when ta / tb). Empty products are handled: M = 0 or N = 0 writes nothing, K = 0
// scales C by beta (BLAS rejects a leading dimension of 0, and may not write C when K = 0).
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A, std::size_t lda,
          const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc);
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, double alpha, const double* A, std::size_t lda,
          const double* B, std::size_t ldb, double beta, double* C, std::size_t ldc);
// The same for contiguous matrices (lda, ldb, ldc follow from the shapes).
template <class T>
void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A, const T* B, T beta, T* C) {
  gemm(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C, N);
}

// Note [threads] (kernels/kernels.hpp): a product of at least kGemmGrain multiply-adds is split by
// gemm into blocks of rows (or of columns), one per thread, each a single-threaded BLAS call;
// below it one call on this thread (handing a block to another thread costs microseconds).
inline constexpr std::size_t kGemmGrain = std::size_t(1) << 18;

// product(i) for every i in [0, count): a batch of gemms of `macs` multiply-adds each, writing
// distinct outputs. Together at least kGemmGrain: spread over the threads, one product per task
// (each whole on one thread, unsplit); otherwise in order, here. `distinct_outputs` false (several
// products add into one block: a broadcast operand's gradient): in order, here, so that the sums
// keep their order and no two threads write one block (each product may split itself).
template <class F>
void gemm_batch(std::size_t count, std::size_t macs, bool distinct_outputs, F&& product) {
  if (distinct_outputs && count > 1 && count * macs >= kGemmGrain) return kernels::run_tasks(count, kernels::num_threads(), product);
  for (std::size_t i = 0; i < count; ++i) product(i);
}

// Argument checks that throw ag::Error naming the op.
void check_defined(const char* op, const Tensor& t);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
// -1 -> the last axis. `extra` counts axes the op adds (unsqueeze and stack accept ndim + 1).
std::size_t normalize_axis(const char* op, int axis, const Shape& shape, std::size_t extra = 0);
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Row-major strides of a contiguous array of this shape.
Strides contiguous_strides(const Shape& shape);
// Strides for reading an array of shape `in` as if broadcast to `out` (0 along broadcast axes).
Strides broadcast_strides(const Shape& in, const Shape& out);

// Visits every element of `shape` in row-major order, one row of the last axis at a time:
// row(offsets, len, inner) where offsets[k] is where the row starts in operand k (laid out
// with strides[k]) and inner[k] the step between its elements along the row.
template <std::size_t N, class Row>
void for_each_row(const Shape& shape, const std::array<const Strides*, N>& strides, Row&& row) {
  const std::size_t nd = shape.size();
  std::array<std::ptrdiff_t, N> off{}, inner{};
  if (nd == 0) {
    row(off, std::size_t{1}, inner);
    return;
  }
  const std::size_t len = shape[nd - 1];
  const std::size_t total = shape_numel(shape);
  if (total == 0) return;
  for (std::size_t k = 0; k < N; ++k) inner[k] = (*strides[k])[nd - 1];
  const std::size_t rows = total / len;
  xt::svector<std::size_t, 4> idx(nd, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    row(off, len, inner);
    for (std::size_t ax = nd - 1; ax-- > 0;) {  // odometer over the outer axes
      ++idx[ax];
      for (std::size_t k = 0; k < N; ++k) off[k] += (*strides[k])[ax];
      if (idx[ax] < shape[ax]) break;
      for (std::size_t k = 0; k < N; ++k) off[k] -= (*strides[k])[ax] * std::ptrdiff_t(shape[ax]);
      idx[ax] = 0;
    }
  }
}

// dst (contiguous, shape `shape`) = src read through (offset, strides).
void gather_strided(Array& dst, const Array& src, std::ptrdiff_t offset, const Strides& strides);
// dst read through (offset, strides) += src (contiguous, shape src.shape()). one_to_one: no two
// src entries share a dst entry (the strides of a view); then blocks along src's first axis run
// on the threads (Note [threads]), each entry added as on one thread.
void scatter_add_strided(Array& dst, std::ptrdiff_t offset, const Strides& strides, const Array& src, bool one_to_one = false);
// dst read through (offset, strides) = src + 0 (no two src entries share a dst entry): what
// scatter_add_strided gives into zeros, bit for bit (+0 for a -0), without reading dst.
void scatter_strided(Array& dst, std::ptrdiff_t offset, const Strides& strides, const Array& src);
// Sums g over the axes along which `target` was broadcast to g's shape; the result has shape target.
Array reduce_to_shape(const Array& g, const Shape& target);
// Array-level permutation of axes (a contiguous copy).
Array permute_array(const Array& x, const std::vector<std::size_t>& perm);

}  // namespace ag::detail
