// Tensor handles, arrays, creation functions and grad mode.
#include <malloc.h>

#include <cmath>
#include <cstdlib>
#include <ostream>
#include <sstream>

#include "ag/ops.hpp"
#include "ag/tensor.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {

// Note [allocation]: a training step allocates and frees the same large arrays (attention
// weights of [B, H, T, T] are megabytes) over and over. glibc returns such blocks to the kernel
// on free (mmap / heap trimming), so every step paid page faults and zeroing again; on a
// Transformer step that was a third of the time. Keeping freed memory in the heap makes the
// next step's allocations reuse it. The limits are process-wide and only affect glibc.
namespace {
const bool g_allocator_tuned = [] {
  mallopt(M_MMAP_MAX, 0);              // every block comes from the heap (no per-block mmap) ...
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // ... and the heap is not trimmed below 1 GiB of slack
  return true;
}();
}  // namespace

// ---- grad mode ---------------------------------------------------------------------------
namespace {
thread_local bool g_grad_enabled = true;
}
bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool enabled) { g_grad_enabled = enabled; }
NoGrad::NoGrad() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = previous_; }

namespace {
bool g_detect_anomaly = [] {
  const char* env = std::getenv("ATTNLAB_DETECT_ANOMALY");
  return env != nullptr && *env != '\0' && std::string(env) != "0";
}();
}  // namespace
bool anomaly_detection_enabled() { return g_detect_anomaly; }
void set_anomaly_detection(bool enabled) { g_detect_anomaly = enabled; }
DetectAnomaly::DetectAnomaly() : previous_(g_detect_anomaly) { g_detect_anomaly = true; }
DetectAnomaly::~DetectAnomaly() { g_detect_anomaly = previous_; }

// ---- shapes and arrays -------------------------------------------------------------------
const char* dtype_name(Dtype d) { return d == Dtype::f32 ? "float32" : "float64"; }
const char* simd_target() { return kernels::simd_target(); }
std::size_t get_num_threads() { return kernels::num_threads(); }
void set_num_threads(std::size_t n) { kernels::set_num_threads(n); }
std::ostream& operator<<(std::ostream& os, Dtype d) { return os << dtype_name(d); }

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

std::size_t shape_numel(const Shape& s) {
  std::size_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

namespace {
// Large buffers in chunks over the threads (Note [threads]): zeroing a gradient slot is a pass over
// memory like any element-wise kernel.
template <class T>
void fill_chunks(xt::xarray<T>& a, T value) {
  T* p = a.data();
  kernels::parallel_for(a.size(), 1, 64, [&](std::size_t b, std::size_t e) { std::fill(p + b, p + e, value); });
}
}  // namespace

Array::Array(Dtype dtype, const Shape& shape) : dtype_(dtype) {
  if (dtype == Dtype::f32) {
    f_ = xt::xarray<float>::from_shape(shape);
    fill_chunks(f_, 0.f);
  } else {
    d_ = xt::xarray<double>::from_shape(shape);
    fill_chunks(d_, 0.0);
  }
}

Array Array::empty(Dtype dtype, const Shape& shape) {
  Array a;
  a.dtype_ = dtype;
  if (dtype == Dtype::f32) a.f_ = xt::xarray<float>::from_shape(shape);
  else a.d_ = xt::xarray<double>::from_shape(shape);
  return a;
}

const Shape& Array::shape() const { return dtype_ == Dtype::f32 ? f_.shape() : d_.shape(); }
std::size_t Array::size() const { return dtype_ == Dtype::f32 ? f_.size() : d_.size(); }

void Array::check(Dtype d) const {
  if (d != dtype_) fail("tensor data is ", dtype_name(dtype_), ", accessed as ", dtype_name(d));
}

Array Array::to(Dtype d) const {
  if (d == dtype_) return *this;
  if (d == Dtype::f64) return Array(xt::xarray<double>(xt::cast<double>(f_)));
  return Array(xt::xarray<float>(xt::cast<float>(d_)));
}

void Array::fill(double value) {
  if (dtype_ == Dtype::f32) fill_chunks(f_, float(value));
  else fill_chunks(d_, value);
}

// ---- Tensor ------------------------------------------------------------------------------
static std::shared_ptr<Node> leaf_node(Array a, bool requires_grad) {
  auto n = std::make_shared<Node>();
  n->data = std::move(a);
  n->requires_grad = requires_grad;
  return n;
}

Tensor Tensor::from(xt::xarray<float> a, bool rg) { return Tensor(leaf_node(Array(std::move(a)), rg)); }
Tensor Tensor::from(xt::xarray<double> a, bool rg) { return Tensor(leaf_node(Array(std::move(a)), rg)); }
Tensor Tensor::from(Array a, bool rg) { return Tensor(leaf_node(std::move(a), rg)); }

Node* Tensor::node() const {
  if (!node_) fail("use of an undefined tensor (default-constructed ag::Tensor)");
  return node_.get();
}

const Shape& Tensor::shape() const { return node()->data.shape(); }
std::size_t Tensor::numel() const { return node()->data.size(); }
Dtype Tensor::dtype() const { return node()->data.dtype(); }
std::size_t Tensor::size(int axis) const { return shape()[detail::normalize_axis("size", axis, shape())]; }

double Tensor::flat(std::size_t i) const {
  if (i >= numel()) fail("flat: index ", i, " out of range for shape ", shape_str(shape()));
  return dispatch(dtype(), [&](auto t) { return double(data<decltype(t)>().data()[i]); });
}

double Tensor::item() const {
  if (numel() != 1) fail("item: tensor of shape ", shape_str(shape()), " has ", numel(), " elements, expected 1");
  return flat(0);
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> v(numel());
  dispatch(dtype(), [&](auto t) {
    const auto* p = data<decltype(t)>().data();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = double(p[i]);
  });
  return v;
}

bool Tensor::requires_grad() const { return node()->requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  if (!node()->leaf) fail("requires_grad_: only leaf tensors can change requires_grad (this one comes from '", node()->op, "')");
  node_->requires_grad = on;
  return *this;
}

Tensor& Tensor::retain_grad() {
  node()->retains_grad = true;
  return *this;
}

Tensor& Tensor::set_label(std::string label) {
  node()->label = std::move(label);
  return *this;
}

bool Tensor::has_grad() const { return node()->grad.has_value(); }
Tensor Tensor::grad() const { return has_grad() ? Tensor::from(*node()->grad) : Tensor(); }
std::optional<Array>& Tensor::grad_array() { return node()->grad; }
void Tensor::zero_grad() { node()->grad.reset(); }

Tensor Tensor::detach() const { return Tensor::from(node()->data); }
const char* Tensor::op_name() const { return node()->op; }
bool Tensor::is_leaf() const { return node()->leaf; }

Tensor Tensor::to(Dtype d) const {
  if (d == dtype()) return *this;
  return detail::make_result("to", node()->data.to(d), {*this}, [](Node& self) {
    self.accumulate(0, self.grad->to(self.inputs[0]->data.dtype()));
  });
}

Tensor Tensor::matmul(const Tensor& other) const { return ag::matmul(*this, other); }
Tensor Tensor::reshape(std::vector<std::int64_t> shape) const { return ag::reshape(*this, std::move(shape)); }
Tensor Tensor::transpose(int dim0, int dim1) const { return ag::transpose(*this, dim0, dim1); }
Tensor Tensor::sum() const { return ag::sum(*this); }
Tensor Tensor::mean() const { return ag::mean(*this); }

// ---- creation ----------------------------------------------------------------------------
Tensor full(const Shape& shape, double value, TensorOptions o) {
  Array a = Array::empty(o.dtype, shape);
  a.fill(value);
  return Tensor::from(std::move(a), o.requires_grad);
}
Tensor zeros(const Shape& shape, TensorOptions o) { return Tensor::from(Array(o.dtype, shape), o.requires_grad); }
Tensor ones(const Shape& shape, TensorOptions o) { return full(shape, 1.0, o); }
Tensor scalar(double value, TensorOptions o) { return full(Shape{}, value, o); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), {t.dtype(), false}); }

Tensor arange(double start, double stop, double step, TensorOptions o) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
    fail("arange: need finite start, stop and a non-zero step (got ", start, ", ", stop, ", ", step, ")");
  const double count = std::ceil((stop - start) / step);
  const std::size_t n = count > 0 ? std::size_t(count) : 0;
  Array a = Array::empty(o.dtype, Shape{n});
  dispatch(o.dtype, [&](auto t) {
    using T = decltype(t);
    T* p = a.ptr<T>();
    for (std::size_t i = 0; i < n; ++i) p[i] = T(start + double(i) * step);
  });
  return Tensor::from(std::move(a), o.requires_grad);
}

Tensor tensor(const std::vector<double>& values, const Shape& shape, TensorOptions o) {
  if (values.size() != shape_numel(shape))
    fail("tensor: ", values.size(), " values do not fill shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
  Array a = Array::empty(o.dtype, shape);
  dispatch(o.dtype, [&](auto t) {
    using T = decltype(t);
    T* p = a.ptr<T>();
    for (std::size_t i = 0; i < values.size(); ++i) p[i] = T(values[i]);
  });
  return Tensor::from(std::move(a), o.requires_grad);
}

template <class Draw>
static Tensor random_tensor(const Shape& shape, TensorOptions o, Draw draw) {
  Array a = Array::empty(o.dtype, shape);
  dispatch(o.dtype, [&](auto t) {
    using T = decltype(t);
    T* p = a.ptr<T>();
    for (std::size_t i = 0; i < a.size(); ++i) p[i] = T(draw());
  });
  return Tensor::from(std::move(a), o.requires_grad);
}
Tensor randn(const Shape& shape, Generator& gen, TensorOptions o) {
  return random_tensor(shape, o, [&] { return gen.normal(); });
}
Tensor rand(const Shape& shape, Generator& gen, TensorOptions o) {
  return random_tensor(shape, o, [&] { return gen.uniform(); });
}

Indices::Indices(std::vector<std::int64_t> v) : shape{v.size()}, values(std::move(v)) {}
Indices::Indices(std::vector<std::int64_t> v, const Shape& s) : shape(s), values(std::move(v)) {
  if (values.size() != shape_numel(shape))
    fail("Indices: ", values.size(), " values do not fill shape ", shape_str(shape));
}

}  // namespace ag
