#pragma once
// The hot loops of the engine, over contiguous buffers: Highway SIMD kernels with runtime
// dispatch (kernels.cc). Each has a plain scalar twin in scalar.hpp that the tests compare it
// with. Signatures: outputs first, then inputs, then sizes. "acc"/"_backward" kernels ADD into
// their output (dx += ...), since gradients accumulate. Callers never see SIMD types.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ag::kernels {

// The Highway target chosen at run time on this CPU, e.g. "AVX3" or "AVX2".
const char* simd_target();
// Disables every target better than `name` (Highway's name: "AVX2", "SSE4", ...), so that the
// dispatch chooses `name` or, where the CPU lacks it, its best lower target. False for a name that
// is not a target of this build. Called at start-up with $ATTNLAB_SIMD (Note [ATTNLAB_SIMD]);
// hwy::DisableTargets(0) undoes it.
bool cap_simd_target(const char* name);

// The Adam / AdamW step's hyper-parameters (step counts from 1).
struct AdamParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = false;  // true: AdamW (decay the weight), false: Adam (add wd * p to the gradient)
  std::int64_t step = 1;
};

// Each kernel is declared for T = float and T = double (defined in kernels.cc).

// y = f(x)
template <class T> void exp(T* y, const T* x, std::size_t n);
template <class T> void log(T* y, const T* x, std::size_t n); // log(0) = -inf, log(<0) = NaN, as std::log
template <class T> void tanh(T* y, const T* x, std::size_t n);
template <class T> void sigmoid(T* y, const T* x, std::size_t n);
template <class T> void relu(T* y, const T* x, std::size_t n);
template <class T> void gelu(T* y, const T* x, std::size_t n); // tanh approximation
// dx += dy * f'(.) ; tanh and sigmoid use the forward output y, relu and gelu the input x
template <class T> void tanh_backward(T* dx, const T* y, const T* dy, std::size_t n);
template <class T> void sigmoid_backward(T* dx, const T* y, const T* dy, std::size_t n);
template <class T> void relu_backward(T* dx, const T* x, const T* dy, std::size_t n);
template <class T> void gelu_backward(T* dx, const T* x, const T* dy, std::size_t n);
// out = a op b, same length (out may alias a or b)
template <class T> void add(T* out, const T* a, const T* b, std::size_t n);
template <class T> void sub(T* out, const T* a, const T* b, std::size_t n);
template <class T> void mul(T* out, const T* a, const T* b, std::size_t n);
template <class T> void div(T* out, const T* a, const T* b, std::size_t n);
template <class T> void add_scalar(T* out, const T* a, T s, std::size_t n);
template <class T> void mul_scalar(T* out, const T* a, T s, std::size_t n);
// accumulation
template <class T> void acc(T* dst, const T* src, std::size_t n);                       // dst += src
template <class T> void acc_scaled(T* dst, const T* src, T alpha, std::size_t n);       // dst += alpha * src
template <class T> void acc_mul(T* dst, const T* a, const T* b, std::size_t n);         // dst += a * b
template <class T> void acc_div(T* dst, const T* a, const T* b, std::size_t n);         // dst += a / b
// dst[c] += x[0][c] + x[1][c] + ... for c < cols, row r at x + r * ld: added row by row in order, the
// bits of acc(dst, x + r * ld, cols) for r = 0, 1, ... (a bias's gradient: the column sums of dy)
template <class T> void acc_rows(T* dst, const T* x, std::size_t rows, std::size_t cols, std::size_t ld);
// reductions (max of nothing is -inf, sum of nothing is 0)
template <class T> T sum(const T* x, std::size_t n);
template <class T> T max(const T* x, std::size_t n);
// row-wise over [rows, cols] (y may be x); a row that is all -inf gives all-zero softmax weights
template <class T> void softmax_rows(T* y, const T* x, std::size_t rows, std::size_t cols);
template <class T> void log_softmax_rows(T* y, const T* x, std::size_t rows, std::size_t cols);
// The two numbers per row that log_softmax_rows subtracts: max[r] = m and log_sum[r] =
// log(sum_k exp(x_k - m)), so that (x_j - max[r]) - log_sum[r] in T is log_softmax_rows' y_j bit
// for bit. A row that is all -inf gives m = -inf (its log-softmax is all -inf). For callers that
// keep two numbers per row instead of the [rows, cols] log-softmax (cross_entropy).
template <class T> void log_softmax_stats_rows(T* max, T* log_sum, const T* x, std::size_t rows, std::size_t cols);
// dx += y * (dy - sum(dy * y))
template <class T> void softmax_backward_rows(T* dx, const T* y, const T* dy, std::size_t rows, std::size_t cols);
// dx += dy - exp(y) * sum(dy), y = log_softmax(x)
template <class T> void log_softmax_backward_rows(T* dx, const T* y, const T* dy, std::size_t rows, std::size_t cols);
// y = (x - mean) * rstd * gamma + beta per row; saves mean[rows], rstd[rows];
// gamma/beta may be null (then 1 and 0)
template <class T> void layer_norm_rows(T* y, T* mean, T* rstd, const T* x, const T* gamma, const T* beta,
                     std::size_t rows, std::size_t cols, T eps);
// dx += ..., dgamma += sum_rows(dy * xhat), dbeta += sum_rows(dy); any output may be null
template <class T> void layer_norm_backward_rows(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                              const T* mean, const T* rstd, const T* gamma, std::size_t rows,
                              std::size_t cols);
// one Adam/AdamW step on a parameter vector, updating m and v in place
template <class T> void adam_update(T* param, T* m, T* v, const T* grad, std::size_t n, const AdamParams& p);

// Note [threads]: the engine runs its parallel work on its own threads, and BLAS on one thread
// per call (ops_matmul.cpp sets OpenBLAS to one thread when it loads). Why: OpenBLAS's own threads
// run attention's per-head 128 x 128 x 32 gemms at a quarter of the rate two single-threaded
// gemms side by side reach, and its idle worker spins on the core the engine's other work wants.
// What runs on several threads:
// - gemm (ops_matmul.cpp): one product of at least kGemmGrain multiply-adds is split into
//   row (or column) blocks, one per thread; a batch of smaller products (matmul's batch
//   elements, attention's heads) is spread over the threads, one product per task; linear's bias
//   is copied into the rows, and its gradient summed over them (acc_rows), in column blocks over the threads.
// - a recurrent cell's step (ops_recurrent.cpp): blocks of batch rows, each its share of the
//   step's gemm and its element-wise gates in one task; the weights' gradients after, split as above.
// - the kernels above that stream through large buffers (the element-wise ones, adam_update, the
//   softmax and log-softmax rows, their statistics and backward, the layer norm's rows forward; not
//   sum, max or the layer norm's backward, whose gamma and beta gradients sum over the rows in
//   order) and cross-entropy's backward, from kParallelGrain elements per thread: contiguous
//   chunks of elements (whole 64-element blocks) or rows, one per thread.
// Every element, row or product of a batch is computed exactly as on one thread, so those results
// have the same bits with any thread count. A product split into blocks may differ from one
// thread's in the last bits (OpenBLAS's kernels round a block's edge tiles in another order), as
// it did with OpenBLAS's own threads; for a given thread count every result is the same from run
// to run. The count: $ATTNLAB_NUM_THREADS, else $OPENBLAS_NUM_THREADS (the lessons and the tests
// set 1: one thread, as their timings assume), else the machine's cores.
std::size_t num_threads();
void set_num_threads(std::size_t n);  // 0: back to the environment's count
// The least work (in elements) worth one more thread: handing a chunk to a spinning worker costs
// about a microsecond, streaming 2^15 floats through a kernel tens of them.
inline constexpr std::size_t kParallelGrain = std::size_t(1) << 15;

// Runs fn(ctx, t) for every t in [0, tasks) on up to `threads` threads (the caller's included) of
// a pool started on first use, and returns when every task is done. The tasks run one after
// another on the caller's thread when threads <= 1, inside a task (no nesting), or while another
// thread is using the pool. fn must not throw.
void run_tasks(std::size_t tasks, std::size_t threads, void (*fn)(void* ctx, std::size_t t), void* ctx);
// True inside a task of run_tasks (where more threads are not to be had).
bool in_task();
template <class F>
void run_tasks(std::size_t tasks, std::size_t threads, F&& f) {
  using Fn = std::remove_reference_t<F>;
  run_tasks(tasks, threads, [](void* ctx, std::size_t t) { (*static_cast<Fn*>(ctx))(t); }, const_cast<void*>(static_cast<const void*>(&f)));
}

// f(begin, end) over [0, n) units of `unit_size` elements each, in contiguous chunks, one per
// thread (this thread takes the first); chunk starts are multiples of `align` units. f must not throw.
template <class F>
void parallel_for(std::size_t n, std::size_t unit_size, std::size_t align, F&& f) {
  const std::size_t threads = std::min(num_threads(), n * unit_size / kParallelGrain);
  if (threads <= 1 || n < 2) {
    f(std::size_t(0), n);
    return;
  }
  std::size_t chunk = (n + threads - 1) / threads;
  chunk = (chunk + align - 1) / align * align;
  const std::size_t chunks = (n + chunk - 1) / chunk;
  run_tasks(chunks, chunks, [&](std::size_t c) { f(c * chunk, std::min(n, (c + 1) * chunk)); });
}

}  // namespace ag::kernels
