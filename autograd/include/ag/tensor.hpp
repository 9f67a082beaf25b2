#pragma once
// ag::Tensor: a cheap handle (shared ownership) to a node of the computation graph.
//
// A node holds the data (a dense row-major xtensor array, float32 or float64), the gradient
// once backward() has reached it, and, for a node made by an op, the op's inputs and its
// backward rule. Ops are free functions in ops.hpp; each op's forward and backward sit side by
// side in autograd/src/ops_*.cpp.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ag/array_config.hpp"  // first: the allocator of every xtensor container (the build also forces it)
#include <xtensor/xarray.hpp>

#include "ag/error.hpp"
#include "ag/grad_mode.hpp"

namespace ag {

enum class Dtype { f32, f64 };
inline constexpr Dtype f32 = Dtype::f32;
inline constexpr Dtype f64 = Dtype::f64;
const char* dtype_name(Dtype d);
// The SIMD target the kernels chose at run time, e.g. "AVX3" (AVX-512). The environment variable
// ATTNLAB_SIMD=AVX2 caps it (for figures that are equal on every x86 machine; see kernels.cc).
const char* simd_target();
// The threads the engine's matmuls and large element-wise kernels use (BLAS runs on one thread
// per call; Note [threads] in kernels.hpp): $ATTNLAB_NUM_THREADS, else $OPENBLAS_NUM_THREADS, else
// the machine's cores. set_num_threads(n) overrides it for the process (0: back to the
// environment's count), as torch.set_num_threads does.
std::size_t get_num_threads();
void set_num_threads(std::size_t n);
std::ostream& operator<<(std::ostream& os, Dtype d);  // "float32" / "float64"

template <class T>
constexpr Dtype dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "ag supports float and double");
  return std::is_same_v<T, float> ? Dtype::f32 : Dtype::f64;
}

// Calls f(float{}) or f(double{}) for the dtype: `dispatch(d, [&](auto t) { using T = decltype(t); ... })`.
template <class F>
decltype(auto) dispatch(Dtype d, F&& f) {
  if (d == Dtype::f32) return f(float{});
  return f(double{});
}

using Shape = xt::svector<std::size_t, 4>;
std::string shape_str(const Shape& s);  // "[32,64]"
std::size_t shape_numel(const Shape& s);

// A dense row-major array of either dtype: the storage of data and gradients.
class Array {
 public:
  Array() = default;
  Array(Dtype dtype, const Shape& shape);  // zero-filled
  static Array empty(Dtype dtype, const Shape& shape);  // uninitialised: for outputs about to be written
  explicit Array(xt::xarray<float> a) : dtype_(Dtype::f32), f_(std::move(a)) {}
  explicit Array(xt::xarray<double> a) : dtype_(Dtype::f64), d_(std::move(a)) {}

  Dtype dtype() const { return dtype_; }
  const Shape& shape() const;
  std::size_t size() const;
  std::size_t dim() const { return shape().size(); }

  template <class T> xt::xarray<T>& as();
  template <class T> const xt::xarray<T>& as() const;
  template <class T> T* ptr() { return as<T>().data(); }
  template <class T> const T* ptr() const { return as<T>().data(); }

  Array to(Dtype d) const;
  void fill(double value);

 private:
  void check(Dtype d) const;
  Dtype dtype_ = Dtype::f32;
  xt::xarray<float> f_;
  xt::xarray<double> d_;
};

template <> inline xt::xarray<float>& Array::as<float>() { check(Dtype::f32); return f_; }
template <> inline xt::xarray<double>& Array::as<double>() { check(Dtype::f64); return d_; }
template <> inline const xt::xarray<float>& Array::as<float>() const { check(Dtype::f32); return f_; }
template <> inline const xt::xarray<double>& Array::as<double>() const { check(Dtype::f64); return d_; }

struct Node;
// A backward rule reads self.grad (dL/d output) and accumulates dL/d input into the inputs.
using BackwardFn = std::function<void(Node& self)>;

struct Node {
  Array data;
  std::optional<Array> grad;
  bool requires_grad = false;
  bool retains_grad = false;   // keep .grad on a non-leaf after backward
  bool leaf = true;            // made by the user, not by an op
  bool graph_freed = false;    // backward() already released this node's rule and inputs
  const char* op = "leaf";     // the op's name, for errors, anomaly reports and to_dot
  std::string label;           // optional user name (shown by to_dot)
  std::vector<std::shared_ptr<Node>> inputs;
  BackwardFn backward;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();  // iterative: dropping a 100,000-node chain must not recurse 100,000 deep

  // For backward rules. The gradient slot of input i, zero-filled on first use, or nullptr
  // when input i does not require a gradient (so the rule can skip that work).
  template <class T> xt::xarray<T>* input_grad(std::size_t i);
  // The same, but a new slot is left uninitialised and `fresh` says so: for rules that
  // overwrite the whole gradient when it is new (gemm with beta = 0) instead of adding to it.
  template <class T> xt::xarray<T>* input_grad(std::size_t i, bool& fresh);
  // Adds g into input i's gradient, first summing g over the dimensions along which the
  // forward broadcast the input ("unbroadcast"). No-op when input i needs no gradient.
  void accumulate(std::size_t i, const Array& g);
  void accumulate(std::size_t i, Array&& g);  // takes g over when input i has no gradient yet
  bool needs_grad(std::size_t i) const { return inputs[i] && inputs[i]->requires_grad; }
};

// Random numbers for initialisation, data and dropout: always explicit and seeded.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  double uniform(double lo = 0.0, double hi = 1.0) { return std::uniform_real_distribution<double>(lo, hi)(engine_); }
  double normal(double mean = 0.0, double stddev = 1.0) { return std::normal_distribution<double>(mean, stddev)(engine_); }
  std::int64_t integer(std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(engine_); }  // [lo, hi]
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

struct TensorOptions {
  Dtype dtype = Dtype::f32;
  bool requires_grad = false;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<Node> node) : node_(std::move(node)) {}
  static Tensor from(xt::xarray<float> a, bool requires_grad = false);
  static Tensor from(xt::xarray<double> a, bool requires_grad = false);
  static Tensor from(Array a, bool requires_grad = false);

  bool defined() const { return node_ != nullptr; }
  const Shape& shape() const;
  std::size_t dim() const { return shape().size(); }
  std::size_t numel() const;
  std::size_t size(int axis) const;  // negative axes count from the end
  Dtype dtype() const;

  template <class T> xt::xarray<T>& data() { return node()->data.as<T>(); }
  template <class T> const xt::xarray<T>& data() const { return node()->data.as<T>(); }
  Array& array() { return node()->data; }
  const Array& array() const { return node()->data; }
  double item() const;                    // the value of a one-element tensor
  double flat(std::size_t i) const;       // element i in row-major order, as double
  std::vector<double> to_vector() const;  // all elements, row-major

  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  // leaves only
  Tensor& retain_grad();                   // keep .grad on a non-leaf tensor
  Tensor& set_label(std::string label);    // a name shown by to_dot
  bool has_grad() const;
  Tensor grad() const;                   // a detached copy of the gradient; undefined if none
  std::optional<Array>& grad_array();    // the gradient storage itself (optimizers)
  void zero_grad();                      // drops the gradient (the next backward starts from zero)

  // Reverse-mode differentiation from this tensor. Without grad_output the tensor must hold
  // one element (a loss). The graph's rules are released afterwards unless retain_graph.
  void backward(bool retain_graph = false) const;
  void backward(const Tensor& grad_output, bool retain_graph = false) const;

  Tensor detach() const;     // same values, no history, no grad
  Tensor to(Dtype d) const;  // differentiable dtype conversion
  const char* op_name() const;
  bool is_leaf() const;

  Node* node() const;
  const std::shared_ptr<Node>& node_ptr() const { return node_; }

  // Method forms of common ops (see ops.hpp).
  Tensor matmul(const Tensor& other) const;
  Tensor reshape(std::vector<std::int64_t> shape) const;
  Tensor transpose(int dim0, int dim1) const;
  Tensor sum() const;
  Tensor mean() const;

 private:
  std::shared_ptr<Node> node_;
};

// Creation.
Tensor zeros(const Shape& shape, TensorOptions o = {});
Tensor ones(const Shape& shape, TensorOptions o = {});
Tensor full(const Shape& shape, double value, TensorOptions o = {});
Tensor scalar(double value, TensorOptions o = {});
Tensor arange(double start, double stop, double step = 1.0, TensorOptions o = {});
Tensor tensor(const std::vector<double>& values, const Shape& shape, TensorOptions o = {});
Tensor randn(const Shape& shape, Generator& gen, TensorOptions o = {});  // N(0, 1)
Tensor rand(const Shape& shape, Generator& gen, TensorOptions o = {});   // U[0, 1)
Tensor zeros_like(const Tensor& t);

// Integer indices (token ids, class labels): embedding() and cross_entropy() take these.
struct Indices {
  Shape shape;
  std::vector<std::int64_t> values;
  Indices() = default;
  Indices(std::vector<std::int64_t> v);  // 1-D
  Indices(std::vector<std::int64_t> v, const Shape& s);
  std::size_t size() const { return values.size(); }
};

}  // namespace ag
