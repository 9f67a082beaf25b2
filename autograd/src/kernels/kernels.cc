// TEMPORARY: forwards every kernel to its scalar twin until the Highway kernels land.
#include "kernels/kernels.hpp"
#include "kernels/scalar.hpp"

namespace ag::kernels {

const char* simd_target() { return "SCALAR (reference)"; }

template <> void exp<float>(float* y, const float* x, std::size_t n) { scalar::exp(y, x, n); }
template <> void log<float>(float* y, const float* x, std::size_t n) { scalar::log(y, x, n); }
template <> void tanh<float>(float* y, const float* x, std::size_t n) { scalar::tanh(y, x, n); }
template <> void sigmoid<float>(float* y, const float* x, std::size_t n) { scalar::sigmoid(y, x, n); }
template <> void relu<float>(float* y, const float* x, std::size_t n) { scalar::relu(y, x, n); }
template <> void gelu<float>(float* y, const float* x, std::size_t n) { scalar::gelu(y, x, n); }
template <> void tanh_backward<float>(float* dx, const float* y, const float* dy, std::size_t n) { scalar::tanh_backward(dx, y, dy, n); }
template <> void sigmoid_backward<float>(float* dx, const float* y, const float* dy, std::size_t n) { scalar::sigmoid_backward(dx, y, dy, n); }
template <> void relu_backward<float>(float* dx, const float* x, const float* dy, std::size_t n) { scalar::relu_backward(dx, x, dy, n); }
template <> void gelu_backward<float>(float* dx, const float* x, const float* dy, std::size_t n) { scalar::gelu_backward(dx, x, dy, n); }
template <> void add<float>(float* out, const float* a, const float* b, std::size_t n) { scalar::add(out, a, b, n); }
template <> void sub<float>(float* out, const float* a, const float* b, std::size_t n) { scalar::sub(out, a, b, n); }
template <> void mul<float>(float* out, const float* a, const float* b, std::size_t n) { scalar::mul(out, a, b, n); }
template <> void div<float>(float* out, const float* a, const float* b, std::size_t n) { scalar::div(out, a, b, n); }
template <> void add_scalar<float>(float* out, const float* a, float s, std::size_t n) { scalar::add_scalar(out, a, s, n); }
template <> void mul_scalar<float>(float* out, const float* a, float s, std::size_t n) { scalar::mul_scalar(out, a, s, n); }
template <> void acc<float>(float* dst, const float* src, std::size_t n) { scalar::acc(dst, src, n); }
template <> void acc_scaled<float>(float* dst, const float* src, float alpha, std::size_t n) { scalar::acc_scaled(dst, src, alpha, n); }
template <> void acc_mul<float>(float* dst, const float* a, const float* b, std::size_t n) { scalar::acc_mul(dst, a, b, n); }
template <> void acc_div<float>(float* dst, const float* a, const float* b, std::size_t n) { scalar::acc_div(dst, a, b, n); }
template <> float sum<float>(const float* x, std::size_t n) { return scalar::sum(x, n); }
template <> float max<float>(const float* x, std::size_t n) { return scalar::max(x, n); }
template <> void softmax_rows<float>(float* y, const float* x, std::size_t rows, std::size_t cols) { scalar::softmax_rows(y, x, rows, cols); }
template <> void log_softmax_rows<float>(float* y, const float* x, std::size_t rows, std::size_t cols) { scalar::log_softmax_rows(y, x, rows, cols); }
template <> void softmax_backward_rows<float>(float* dx, const float* y, const float* dy, std::size_t rows, std::size_t cols) { scalar::softmax_backward_rows(dx, y, dy, rows, cols); }
template <> void log_softmax_backward_rows<float>(float* dx, const float* y, const float* dy, std::size_t rows, std::size_t cols) { scalar::log_softmax_backward_rows(dx, y, dy, rows, cols); }
template <> void layer_norm_rows<float>(float* y, float* mean, float* rstd, const float* x, const float* gamma, const float* beta, std::size_t rows, std::size_t cols, float eps) { scalar::layer_norm_rows(y, mean, rstd, x, gamma, beta, rows, cols, eps); }
template <> void layer_norm_backward_rows<float>(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x, const float* mean, const float* rstd, const float* gamma, std::size_t rows, std::size_t cols) { scalar::layer_norm_backward_rows(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, rows, cols); }
template <> void adam_update<float>(float* param, float* m, float* v, const float* grad, std::size_t n, const AdamParams& p) { scalar::adam_update(param, m, v, grad, n, p); }
template <> void exp<double>(double* y, const double* x, std::size_t n) { scalar::exp(y, x, n); }
template <> void log<double>(double* y, const double* x, std::size_t n) { scalar::log(y, x, n); }
template <> void tanh<double>(double* y, const double* x, std::size_t n) { scalar::tanh(y, x, n); }
template <> void sigmoid<double>(double* y, const double* x, std::size_t n) { scalar::sigmoid(y, x, n); }
template <> void relu<double>(double* y, const double* x, std::size_t n) { scalar::relu(y, x, n); }
template <> void gelu<double>(double* y, const double* x, std::size_t n) { scalar::gelu(y, x, n); }
template <> void tanh_backward<double>(double* dx, const double* y, const double* dy, std::size_t n) { scalar::tanh_backward(dx, y, dy, n); }
template <> void sigmoid_backward<double>(double* dx, const double* y, const double* dy, std::size_t n) { scalar::sigmoid_backward(dx, y, dy, n); }
template <> void relu_backward<double>(double* dx, const double* x, const double* dy, std::size_t n) { scalar::relu_backward(dx, x, dy, n); }
template <> void gelu_backward<double>(double* dx, const double* x, const double* dy, std::size_t n) { scalar::gelu_backward(dx, x, dy, n); }
template <> void add<double>(double* out, const double* a, const double* b, std::size_t n) { scalar::add(out, a, b, n); }
template <> void sub<double>(double* out, const double* a, const double* b, std::size_t n) { scalar::sub(out, a, b, n); }
template <> void mul<double>(double* out, const double* a, const double* b, std::size_t n) { scalar::mul(out, a, b, n); }
template <> void div<double>(double* out, const double* a, const double* b, std::size_t n) { scalar::div(out, a, b, n); }
template <> void add_scalar<double>(double* out, const double* a, double s, std::size_t n) { scalar::add_scalar(out, a, s, n); }
template <> void mul_scalar<double>(double* out, const double* a, double s, std::size_t n) { scalar::mul_scalar(out, a, s, n); }
template <> void acc<double>(double* dst, const double* src, std::size_t n) { scalar::acc(dst, src, n); }
template <> void acc_scaled<double>(double* dst, const double* src, double alpha, std::size_t n) { scalar::acc_scaled(dst, src, alpha, n); }
template <> void acc_mul<double>(double* dst, const double* a, const double* b, std::size_t n) { scalar::acc_mul(dst, a, b, n); }
template <> void acc_div<double>(double* dst, const double* a, const double* b, std::size_t n) { scalar::acc_div(dst, a, b, n); }
template <> double sum<double>(const double* x, std::size_t n) { return scalar::sum(x, n); }
template <> double max<double>(const double* x, std::size_t n) { return scalar::max(x, n); }
template <> void softmax_rows<double>(double* y, const double* x, std::size_t rows, std::size_t cols) { scalar::softmax_rows(y, x, rows, cols); }
template <> void log_softmax_rows<double>(double* y, const double* x, std::size_t rows, std::size_t cols) { scalar::log_softmax_rows(y, x, rows, cols); }
template <> void softmax_backward_rows<double>(double* dx, const double* y, const double* dy, std::size_t rows, std::size_t cols) { scalar::softmax_backward_rows(dx, y, dy, rows, cols); }
template <> void log_softmax_backward_rows<double>(double* dx, const double* y, const double* dy, std::size_t rows, std::size_t cols) { scalar::log_softmax_backward_rows(dx, y, dy, rows, cols); }
template <> void layer_norm_rows<double>(double* y, double* mean, double* rstd, const double* x, const double* gamma, const double* beta, std::size_t rows, std::size_t cols, double eps) { scalar::layer_norm_rows(y, mean, rstd, x, gamma, beta, rows, cols, eps); }
template <> void layer_norm_backward_rows<double>(double* dx, double* dgamma, double* dbeta, const double* dy, const double* x, const double* mean, const double* rstd, const double* gamma, std::size_t rows, std::size_t cols) { scalar::layer_norm_backward_rows(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, rows, cols); }
template <> void adam_update<double>(double* param, double* m, double* v, const double* grad, std::size_t n, const AdamParams& p) { scalar::adam_update(param, m, v, grad, n, p); }

}  // namespace ag::kernels
