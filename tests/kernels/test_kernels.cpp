// Every SIMD kernel of kernels.hpp against its scalar twin in scalar.hpp (which defines what the
// kernel must compute), for float and double, on awkward sizes (0, 1, around the vector width,
// large and not a multiple of it), with edge values: +-20 for tanh/sigmoid, +-88 / +-709 for exp,
// log(0), +-inf, NaN, subnormals, -inf entries and fully -inf rows in softmax.
//
// Tolerances, with eps = std::numeric_limits<T>::epsilon() (1.19e-7 float, 2.2e-16 double):
//   |simd - scalar| <= eps * (rel * |scalar| + abs * scale) + min_normal
// where scale is 1 unless a kernel's rounding error grows with another magnitude (named at the
// kernel: |x| for gelu, sum |x| for sum, ...). min_normal (1.2e-38 / 2.2e-308) only matters for
// subnormal results. rel = abs = 0 means bit-exact (NaN matches NaN, inf must match exactly).
// Kernels that sum (sum and the row kernels) add in another order than the scalar loop (lanes,
// accumulators). For them the scalar twin runs in a wider type (double for float, long double for
// double): a float loop summing 1M terms is itself off by far more than the SIMD sum (measured:
// the mean of 1M values 1e3 + noise came out 1009.6), so comparing with it would test nothing.
// Their tolerances carry a sqrt(length) term: rounding errors of a sum grow like its square root.
// Each case prints its worst error (in eps of |scalar| or of the scale, whichever the tolerance
// uses) and worst error/tolerance ratio (BOOST_TEST_MESSAGE; ctest -V shows them).
#define BOOST_TEST_MODULE kernels
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iomanip>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "ag/ops.hpp"
#include "hwy/targets.h"
#include "kernels/kernels.hpp"
#include "kernels/scalar.hpp"

namespace k = ag::kernels;
namespace ks = ag::kernels::scalar;

namespace {

// The lengths every elementwise kernel is run on (and the column counts of the row kernels).
const std::vector<std::size_t> kSizes = {0, 1, 3, 7, 15, 16, 17, 31, 33, 1000, 1048579};

// The every_kernel_on_<target> cases rerun all the checks on another Highway target: without the
// 1M size (time), and reporting failures only.
bool g_other_target = false;
const std::vector<std::size_t>& sizes() {
  static const std::vector<std::size_t> small(kSizes.begin(), kSizes.end() - 1);
  return g_other_target ? small : kSizes;
}

template <class T> constexpr T kInf = std::numeric_limits<T>::infinity();
template <class T> constexpr T kNaN = std::numeric_limits<T>::quiet_NaN();
template <class T> constexpr double kEps = std::numeric_limits<T>::epsilon();
template <class T> const char* type_name() { return sizeof(T) == 4 ? "f32" : "f64"; }

// The wider type the reference of a summing kernel runs in, and conversions to and from it.
template <class T> using Wide = std::conditional_t<sizeof(T) == 4, double, long double>;
template <class T> std::vector<Wide<T>> widen(const T* p, std::size_t n) { return {p, p + n}; }
template <class T> std::vector<T> narrow(const std::vector<Wide<T>>& v) {
  std::vector<T> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), [](Wide<T> x) { return T(x); });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Buffers with guard zones: the data sits at an odd offset (SIMD loads are unaligned) between two
// zones of canaries, which must be intact after a kernel ran (nothing written past either end).
template <class T>
class Guarded {
 public:
  static constexpr std::size_t kGuard = 19;
  explicit Guarded(const std::vector<T>& init) : raw_(init.size() + 2 * kGuard, kCanary), n_(init.size()) {
    std::copy(init.begin(), init.end(), raw_.begin() + kGuard);
  }
  T* data() { return raw_.data() + kGuard; }
  const T* data() const { return raw_.data() + kGuard; }
  std::size_t size() const { return n_; }
  bool guards_intact() const {
    for (std::size_t i = 0; i < raw_.size(); ++i)
      if ((i < kGuard || i >= kGuard + n_) && std::memcmp(&raw_[i], &kCanary, sizeof(T)) != 0) return false;
    return true;
  }

 private:
  static constexpr T kCanary = T(-7321.5);
  std::vector<T> raw_;
  std::size_t n_;
};

// ---------------------------------------------------------------------------------------------
// Test data: uniform in [lo, hi], with every third element (from index 1) replaced by the next of
// `specials`, so the edge values land both in full vectors and in tails.
template <class T>
std::vector<T> make_values(std::size_t n, double lo, double hi, const std::vector<T>& specials, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uni(lo, hi);
  std::vector<T> v(n);
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = T(uni(rng));
    if (i % 3 == 1 && !specials.empty()) v[i] = specials[k++ % specials.size()];
  }
  return v;
}

// Edge values shared by the transcendental kernels; the double-only ones would overflow a float.
template <class T>
std::vector<T> edge_values() {
  std::vector<T> v = {T(0),      T(-0.0),    T(1),        T(-1),       T(0.5),       T(-0.5),     T(20),
                      T(-20),    T(18.7),    T(-18.7),    T(18.8),     T(-18.8),     T(19),       T(-19),
                      T(9),      T(-9),      T(50),       T(-50),      T(88),        T(-88),      T(88.5),
                      T(88.72),  T(88.73),   T(89),       T(-89),      T(100),       T(-100),     T(-103),
                      T(-103.9), T(-104),    T(-105),     T(-150),     T(1e-7),      T(-1e-7),    T(1e-30),
                      T(-1e-30), T(1e-40),   T(-1e-40),   T(1e30),     T(-1e30),     kInf<T>,     -kInf<T>,
                      kNaN<T>,   std::numeric_limits<T>::denorm_min(), std::numeric_limits<T>::max(),
                      std::numeric_limits<T>::lowest()};
  if constexpr (sizeof(T) == 8) {
    for (double x : {700.0, 706.0, 709.0, 709.7, 709.78, 709.79, 710.0, 800.0, -708.0, -745.0, -745.2, -746.0,
                     -1000.0, -1001.0, 1e300, -1e300, 1e-310, -1e-310})
      v.push_back(x);
  }
  return v;
}

// Positive values for log: zeros, subnormals, around 1, the ends of the range, and the invalid ones.
template <class T>
std::vector<T> log_edge_values() {
  using L = std::numeric_limits<T>;
  return {T(0),          T(-0.0),      T(1),       T(-1),      -kInf<T>,      kInf<T>,         kNaN<T>,
          T(1) + L::epsilon(), T(1) - L::epsilon() / 2, T(2),  T(0.5),        T(1e-30),        T(1e-40),
          L::denorm_min(), L::min(),   L::max(),   T(1e30),    T(-1e-30),     T(-1e30),        T(0.70710678),
          T(1.41421356), T(1.0001),    T(0.9999),  T(3),       T(10),         T(1e-7),         T(123456.75)};
}

// Values for exact kernels (add, mul, relu, ...): signed zeros, infinities, NaN, subnormals.
template <class T>
std::vector<T> exact_edge_values() {
  return {T(0), T(-0.0), kInf<T>, -kInf<T>, kNaN<T>, T(1e30), T(-1e30), T(1e-30), T(1e-40), T(-1e-40),
          std::numeric_limits<T>::max(), std::numeric_limits<T>::denorm_min(), T(1), T(-1)};
}

// ---------------------------------------------------------------------------------------------
// Comparison, and the worst error one test case measured.
struct Tol {
  double rel = 0, abs = 0;  // in units of eps (see the top of the file); both 0: bit-exact
};
using Scale = std::function<double(std::size_t)>;  // per-element multiplier of the absolute tolerance

// Compares SIMD results with the scalar twin's over a test case, and reports the worst error.
template <class T>
class Compare {
 public:
  // tol_text describes the tolerance in the report, e.g. "rel 2 eps"
  Compare(std::string kernel, Tol tol, std::string tol_text = "")
      : kernel_(kernel + " " + type_name<T>() + (g_other_target ? std::string(" on ") + k::simd_target() : "")),
        tol_(tol),
        tol_text_(std::move(tol_text)) {
    if (tol_text_.empty()) {
      std::ostringstream os;
      if (tol.rel == 0 && tol.abs == 0) os << "bit-exact";
      else os << "rel " << tol.rel << " eps, abs " << tol.abs << " eps";
      tol_text_ = os.str();
    }
  }
  void set_tol(Tol tol) { tol_ = tol; }  // for tolerances that grow with the row length

  // got vs ref over n elements; input (if given) is shown next to the worst element.
  void check(const std::string& where, const T* got, const T* ref, std::size_t n, const Scale& scale = {},
             const T* input = nullptr) {
    const double eps = kEps<T>, floor = std::numeric_limits<T>::min();
    const bool exact = tol_.rel == 0 && tol_.abs == 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double g = got[i], r = ref[i];
      bool ok;
      double ratio = 0, err = 0;
      if (std::isnan(g) || std::isnan(r)) ok = std::isnan(g) && std::isnan(r);
      else if (exact) ok = g == r && std::signbit(g) == std::signbit(r);
      else if (std::isinf(g) || std::isinf(r)) ok = g == r;
      else {
        const double s = scale ? scale(i) : 1.0;
        const double allowed = eps * (tol_.rel * std::fabs(r) + tol_.abs * s) + floor;
        const double diff = std::fabs(g - r);
        ok = diff <= allowed;
        ratio = diff / allowed;
        // the error in eps of the magnitude the tolerance is about: |scalar| or the scale
        err = diff / eps / std::max({tol_.rel > 0 ? std::fabs(r) : 0.0, tol_.abs > 0 ? s : 0.0, floor / eps});
      }
      if (!ok) ratio = std::numeric_limits<double>::infinity();
      if (ratio > worst_ratio_ || (!ok && failures_ == 0)) {
        std::ostringstream os;
        os << std::setprecision(std::numeric_limits<T>::max_digits10) << where << " [" << i << "]";
        if (input) os << " x=" << input[i];
        os << " simd=" << g << " scalar=" << r;
        if (ratio > worst_ratio_) {
          worst_ratio_ = ratio;
          worst_where_ = os.str();
        }
        if (!ok && failures_ == 0) first_failure_ = os.str();
      }
      worst_err_ = std::max(worst_err_, err);
      if (!ok) ++failures_;
    }
  }
  void check(const std::string& where, const Guarded<T>& got, const Guarded<T>& ref, const Scale& scale = {},
             const T* input = nullptr) {
    BOOST_TEST(got.guards_intact(), kernel_ << " wrote outside its buffer: " << where);
    check(where, got.data(), ref.data(), got.size(), scale, input);
  }

  // One line of results; fails the test case if any element was out of tolerance.
  ~Compare() {
    std::ostringstream os;
    os << std::setprecision(3) << kernel_ << ": worst error " << worst_err_
       << " eps, worst error/tolerance " << worst_ratio_ << " (tolerance " << tol_text_ << ")";
    if (!worst_where_.empty()) os << "; worst at " << worst_where_;
    if (!g_other_target) BOOST_TEST_MESSAGE(os.str());
    BOOST_TEST(failures_ == 0u, kernel_ << ": " << failures_ << " elements out of tolerance, first: " << first_failure_);
  }

 private:
  std::string kernel_;
  Tol tol_;
  std::string tol_text_;
  double worst_ratio_ = 0, worst_err_ = 0;
  std::string worst_where_, first_failure_;
  std::size_t failures_ = 0;
};

std::string size_label(std::size_t n) { return "n=" + std::to_string(n); }
std::string rows_label(std::size_t rows, std::size_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

// ---------------------------------------------------------------------------------------------
// Shared drivers.

// y = f(x): every size, then the edge values alone (so each sits in a vector and in a tail).
template <class T>
void check_map(const char* name, void (*simd)(T*, const T*, std::size_t), void (*ref)(T*, const T*, std::size_t),
               double lo, double hi, const std::vector<T>& edges, Tol tol, bool scale_by_x = false) {
  Compare<T> cmp(name, tol);
  std::vector<std::vector<T>> inputs;
  for (std::size_t n : sizes()) inputs.push_back(make_values<T>(n, lo, hi, edges, std::uint32_t(n + 1)));
  inputs.push_back(edges);
  for (const auto& in : inputs) {
    const Guarded<T> x(in);
    Guarded<T> y(std::vector<T>(in.size(), T(12345))), y_ref(y);
    simd(y.data(), x.data(), in.size());
    ref(y_ref.data(), x.data(), in.size());
    const auto scale = [&](std::size_t i) { return std::fabs(double(x.data()[i])); };
    cmp.check(size_label(in.size()), y, y_ref, scale_by_x ? Scale(scale) : Scale(), x.data());
  }
}

// out = f(a, b) or dst += f(a, b) (the same signature): every size plus one where each edge value
// occurs; out starts from random values in [-1, 1]. scale(a, b, out0) as in Compare::check.
template <class T>
struct ZipData {
  double a_lo, a_hi, b_lo, b_hi;
  std::vector<T> a_edges, b_edges;
};
template <class T>
void check_zip(const char* name, void (*simd)(T*, const T*, const T*, std::size_t),
               void (*ref)(T*, const T*, const T*, std::size_t), const ZipData<T>& data, Tol tol,
               const std::function<double(double a, double b, double out0)>& scale = {}) {
  Compare<T> cmp(name, tol);
  std::vector<std::size_t> lengths = sizes();
  lengths.push_back(std::max(data.a_edges.size(), data.b_edges.size()) * 3);
  for (std::size_t n : lengths) {
    const Guarded<T> a(make_values<T>(n, data.a_lo, data.a_hi, data.a_edges, std::uint32_t(2 * n + 1)));
    const Guarded<T> b(make_values<T>(n, data.b_lo, data.b_hi, data.b_edges, std::uint32_t(3 * n + 7)));
    const Guarded<T> out0(make_values<T>(n, -1, 1, {}, std::uint32_t(5 * n + 3)));
    Guarded<T> out(out0), out_ref(out0);
    simd(out.data(), a.data(), b.data(), n);
    ref(out_ref.data(), a.data(), b.data(), n);
    Scale s;
    if (scale) s = [&](std::size_t i) { return scale(a.data()[i], b.data()[i], out0.data()[i]); };
    cmp.check(size_label(n), out, out_ref, s, a.data());
  }
}

// The rows x cols shapes for row kernels: each column count of kSizes, with enough rows to cycle
// through every row pattern, fewer when the rows are long; plus an empty matrix.
std::vector<std::pair<std::size_t, std::size_t>> row_shapes() {
  std::vector<std::pair<std::size_t, std::size_t>> shapes = {{0, 16}};
  for (std::size_t cols : sizes()) shapes.push_back({cols > 100000 ? 2 : cols >= 1000 ? 60 : 37, cols});
  return shapes;
}

// Softmax inputs by row pattern (r % 6): 0 plain, 1 causal mask (-inf after column r), 2 all -inf
// but one, 3 all -inf, 4 large spread (+-1e4: most weights underflow to 0), 5 tiny spread.
template <class T>
std::vector<T> softmax_input(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uni(-1, 1);
  std::vector<T> x(rows * cols);
  for (std::size_t r = 0; r < rows; ++r) {
    T* xr = x.data() + r * cols;
    for (std::size_t j = 0; j < cols; ++j) {
      const double u = uni(rng);
      switch (r % 6) {
        case 0: xr[j] = T(5 * u); break;
        case 1: xr[j] = j > r % (cols + 1) ? -kInf<T> : T(5 * u); break;
        case 2: xr[j] = j == (7 * r) % cols ? T(3 * u) : -kInf<T>; break;
        case 3: xr[j] = -kInf<T>; break;
        case 4: xr[j] = T(1e4 * u); break;
        default: xr[j] = T(1e-6 * u); break;
      }
    }
  }
  return x;
}

// Row-reduction tolerance: base + per_sqrt * sqrt(cols), in eps.
double grow(double base, double per_sqrt, std::size_t cols) { return base + per_sqrt * std::sqrt(double(cols)); }

// ---------------------------------------------------------------------------------------------
// The tests, one function per kernel, run for float and double.

template <class T> void test_exp() {
  // Highway Exp (1 ULP) vs std::exp (<1 ULP)
  check_map<T>("exp", k::exp<T>, ks::exp<T>, -30, 30, edge_values<T>(), {2, 0});
}
template <class T> void test_log() {
  // Highway Log (4 ULP); absolute part: near x = 1 the result is near 0
  check_map<T>("log", k::log<T>, ks::log<T>, 1e-6, 1e6, log_edge_values<T>(), {2, 1});
  std::vector<T> wide;  // log-uniform over most of the float range
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> e(-36, 36);
  for (int i = 0; i < 4096; ++i) wide.push_back(T(std::pow(10.0, e(rng))));
  Compare<T> cmp("log (log-uniform 1e-36..1e36)", {2, 1});
  std::vector<T> y(wide.size()), y_ref(wide.size());
  k::log<T>(y.data(), wide.data(), wide.size());
  ks::log<T>(y_ref.data(), wide.data(), wide.size());
  cmp.check("n=4096", y.data(), y_ref.data(), wide.size(), {}, wide.data());
}
template <class T> void test_tanh() {
  // Highway Tanh (4 ULP) vs std::tanh (1 ULP)
  check_map<T>("tanh", k::tanh<T>, ks::tanh<T>, -10, 10, edge_values<T>(), {5, 0});
}
template <class T> void test_sigmoid() {
  // 1 / (1 + exp(-x)): exp's error and two roundings on each side
  check_map<T>("sigmoid", k::sigmoid<T>, ks::sigmoid<T>, -30, 30, edge_values<T>(), {4, 0});
}
template <class T> void test_relu() {
  check_map<T>("relu", k::relu<T>, ks::relu<T>, -1e3, 1e3, exact_edge_values<T>(), {0, 0});
}
template <class T> void test_gelu() {
  // x / (1 + e^(-2u)) vs x/2 (1 + tanh u): the scalar form cancels in 1 + tanh u for x < 0, so
  // the difference is bounded by eps * |x|, not eps * |y|.
  check_map<T>("gelu", k::gelu<T>, ks::gelu<T>, -10, 10, edge_values<T>(), {4, 2}, /*scale_by_x=*/true);
}

template <class T> void test_tanh_backward() {
  // dx += dy (1 - y^2); the FMA may round 1 - y^2 once instead of twice: abs ~ eps (|dx| + |dy|)
  check_zip<T>("tanh_backward", k::tanh_backward<T>, ks::tanh_backward<T>,
               {-1, 1, -2, 2, {T(1), T(-1), T(0), T(0.999999)}, {T(0), T(1e-30), T(1e30)}}, {2, 2},
               [](double, double dy, double dx0) { return std::fabs(dy) + std::fabs(dx0); });
}
template <class T> void test_sigmoid_backward() {
  check_zip<T>("sigmoid_backward", k::sigmoid_backward<T>, ks::sigmoid_backward<T>,
               {0, 1, -2, 2, {T(0), T(1), T(0.5), T(1e-30)}, {T(0), T(1e-30), T(1e30)}}, {2, 2},
               [](double, double dy, double dx0) { return std::fabs(dy) + std::fabs(dx0); });
}
template <class T> void test_relu_backward() {
  check_zip<T>("relu_backward", k::relu_backward<T>, ks::relu_backward<T>,
               {-10, 10, -2, 2, exact_edge_values<T>(), exact_edge_values<T>()}, {0, 0});
}
template <class T> void test_gelu_backward() {
  check_zip<T>("gelu_backward", k::gelu_backward<T>, ks::gelu_backward<T>,
               {-10, 10, -2, 2, edge_values<T>(), {T(0), T(1), T(-1)}}, {4, 4},
               [](double x, double dy, double dx0) {
                 // 1 - tanh^2 cancels (scalar) like s (1 - s) (simd): an error ~eps, times x c (1 + 3 a x^2)
                 const double ax = std::fabs(x);
                 return std::fabs(dy) * (1 + ax + 0.134 * ax * ax * ax) + std::fabs(dx0);
               });
}

template <class T> ZipData<T> exact_zip_data() {
  return {-1e3, 1e3, -1e3, 1e3, exact_edge_values<T>(), exact_edge_values<T>()};
}
template <class T> void test_add() { check_zip<T>("add", k::add<T>, ks::add<T>, exact_zip_data<T>(), {0, 0}); }
template <class T> void test_sub() { check_zip<T>("sub", k::sub<T>, ks::sub<T>, exact_zip_data<T>(), {0, 0}); }
template <class T> void test_mul() { check_zip<T>("mul", k::mul<T>, ks::mul<T>, exact_zip_data<T>(), {0, 0}); }
template <class T> void test_div() { check_zip<T>("div", k::div<T>, ks::div<T>, exact_zip_data<T>(), {0, 0}); }

// out may alias an input
template <class T> void test_aliasing() {
  Compare<T> cmp("add/mul/acc_mul in place", {0, 0});
  for (std::size_t n : sizes()) {
    const auto a0 = make_values<T>(n, -10, 10, {}, 1), b0 = make_values<T>(n, -10, 10, {}, 2);
    Guarded<T> a(a0), b(b0), a_ref(a0), b_ref(b0);
    k::add<T>(a.data(), a.data(), b.data(), n);  // a = a + b
    ks::add<T>(a_ref.data(), a_ref.data(), b_ref.data(), n);
    k::mul<T>(b.data(), a.data(), b.data(), n);  // b = a * b
    ks::mul<T>(b_ref.data(), a_ref.data(), b_ref.data(), n);
    cmp.check(size_label(n) + " a", a, a_ref);
    cmp.check(size_label(n) + " b", b, b_ref);
  }
}

template <class T>
void check_with_scalar(const char* name, void (*simd)(T*, const T*, T, std::size_t),
                       void (*ref)(T*, const T*, T, std::size_t), bool accumulate, Tol tol) {
  Compare<T> cmp(name, tol);
  for (T s : {T(0.375), T(-3.5), T(0), kInf<T>}) {
    for (std::size_t n : sizes()) {
      const Guarded<T> a(make_values<T>(n, -1e3, 1e3, exact_edge_values<T>(), std::uint32_t(n)));
      const Guarded<T> out0(accumulate ? make_values<T>(n, -1e3, 1e3, {}, std::uint32_t(n + 9))
                                       : std::vector<T>(n, T(12345)));
      Guarded<T> out(out0), out_ref(out0);
      simd(out.data(), a.data(), s, n);
      ref(out_ref.data(), a.data(), s, n);
      std::ostringstream where;
      where << size_label(n) << " s=" << s;
      cmp.check(where.str(), out, out_ref,
                [&](std::size_t i) { return std::fabs(double(out0.data()[i])) + std::fabs(s * double(a.data()[i])); },
                a.data());
    }
  }
}
template <class T> void test_add_scalar() { check_with_scalar<T>("add_scalar", k::add_scalar<T>, ks::add_scalar<T>, false, {0, 0}); }
template <class T> void test_mul_scalar() { check_with_scalar<T>("mul_scalar", k::mul_scalar<T>, ks::mul_scalar<T>, false, {0, 0}); }
// dst + alpha * src: an FMA rounds once where the scalar twin rounds twice
template <class T> void test_acc_scaled() { check_with_scalar<T>("acc_scaled", k::acc_scaled<T>, ks::acc_scaled<T>, true, {1, 1}); }

template <class T> void test_acc() {
  Compare<T> cmp("acc", {0, 0});
  for (std::size_t n : sizes()) {
    const Guarded<T> src(make_values<T>(n, -1e3, 1e3, exact_edge_values<T>(), std::uint32_t(n)));
    const Guarded<T> dst0(make_values<T>(n, -1e3, 1e3, {}, std::uint32_t(n + 5)));
    Guarded<T> dst(dst0), dst_ref(dst0);
    k::acc<T>(dst.data(), src.data(), n);
    ks::acc<T>(dst_ref.data(), src.data(), n);
    cmp.check(size_label(n), dst, dst_ref);
  }
}
// Column sums in row order, as acc row by row: bit for bit, rows of cols and of cols + 3 (a stride).
template <class T> void test_acc_rows() {
  Compare<T> cmp("acc_rows", {0, 0});
  for (auto [rows, cols] : row_shapes())
    for (std::size_t ld : {cols, cols + 3}) {
      const std::size_t n = rows ? (rows - 1) * ld + cols : 0;
      const Guarded<T> x(make_values<T>(n, -1e3, 1e3, exact_edge_values<T>(), std::uint32_t(cols + ld)));
      const Guarded<T> dst0(make_values<T>(cols, -1e3, 1e3, {}, std::uint32_t(cols + 5)));
      Guarded<T> dst(dst0), dst_ref(dst0);
      k::acc_rows<T>(dst.data(), x.data(), rows, cols, ld);
      ks::acc_rows<T>(dst_ref.data(), x.data(), rows, cols, ld);
      cmp.check(rows_label(rows, cols) + " ld " + std::to_string(ld), dst, dst_ref);
    }
}
template <class T> void test_acc_mul() {
  // dst + a * b: FMA, as acc_scaled
  check_zip<T>("acc_mul", k::acc_mul<T>, ks::acc_mul<T>, {-2, 2, -2, 2, exact_edge_values<T>(), {T(0), T(1)}}, {1, 1},
               [](double a, double b, double dst0) { return std::fabs(a * b) + std::fabs(dst0); });
}
template <class T> void test_acc_div() {
  // a / b is exact-rounded on both sides, the add too: bit-exact
  check_zip<T>("acc_div", k::acc_div<T>, ks::acc_div<T>, {-2, 2, 0.5, 2, exact_edge_values<T>(), exact_edge_values<T>()},
               {0, 0});
}

template <class T> void test_sum() {
  // lanes and accumulators reorder the additions; the reference is the scalar twin in Wide<T>
  Compare<T> cmp("sum", {}, "abs (4 + sqrt(n)) eps sum|x|");
  std::vector<std::vector<T>> inputs;
  for (std::size_t n : sizes()) inputs.push_back(make_values<T>(n, -1, 1, {}, std::uint32_t(n + 3)));
  for (std::size_t n : sizes()) inputs.push_back(make_values<T>(n, 0, 100, {}, std::uint32_t(n + 4)));  // all positive
  inputs.push_back({T(1), kInf<T>, T(2)});
  inputs.push_back({kInf<T>, T(1), T(2), T(3), T(4), T(5), T(6), T(7), T(8), T(9), T(10), T(11), T(12), T(13), T(14), T(15), T(16), -kInf<T>});
  inputs.push_back({T(1), T(2), kNaN<T>});
  for (const auto& in : inputs) {
    const Guarded<T> x(in);
    const T got = k::sum<T>(x.data(), in.size());
    const T ref = T(ks::sum<Wide<T>>(widen(x.data(), in.size()).data(), in.size()));
    double abs_sum = 0;
    for (T v : in) abs_sum += std::fabs(double(v));
    cmp.set_tol({0, grow(4, 1, in.size())});
    cmp.check(size_label(in.size()), &got, &ref, 1, [&](std::size_t) { return abs_sum; });
  }
}
template <class T> void test_max() {
  Compare<T> cmp("max", {0, 0});
  std::vector<std::vector<T>> inputs;
  for (std::size_t n : sizes()) inputs.push_back(make_values<T>(n, -1e3, 1e3, {}, std::uint32_t(n + 3)));
  for (std::size_t n : sizes()) inputs.push_back(make_values<T>(n, -1e3, 1e3, exact_edge_values<T>(), std::uint32_t(n)));
  // the maximum in the tail, -inf only, NaN (skipped, as in the scalar twin), a large max
  std::vector<T> tail(37, T(-5));
  tail[36] = T(3);
  inputs.push_back(tail);
  inputs.push_back(std::vector<T>(17, -kInf<T>));
  inputs.push_back({kNaN<T>, T(-3), kNaN<T>, T(-7)});
  inputs.push_back(std::vector<T>(19, kNaN<T>));
  for (const auto& in : inputs) {
    const Guarded<T> x(in);
    const T got = k::max<T>(x.data(), in.size()), ref = ks::max<T>(x.data(), in.size());
    cmp.check(size_label(in.size()), &got, &ref, 1);
  }
}

template <class T> void test_softmax_rows() {
  // y = e_j / sum: the exp's error, the row's reordered sum, and x_j - m rounded in T (which
  // the wide reference does not round): a relative error up to eps |x_j - m| / 2
  Compare<T> cmp("softmax_rows", {}, "rel (4 + 0.5 sqrt(cols) + |x - max|) eps");
  for (auto [rows, cols] : row_shapes()) {
    const Guarded<T> x(softmax_input<T>(rows, cols, std::uint32_t(cols + 1)));
    Guarded<T> y(std::vector<T>(rows * cols, T(12345))), y_ref(y);
    k::softmax_rows<T>(y.data(), x.data(), rows, cols);
    std::vector<Wide<T>> y_wide(rows * cols);
    ks::softmax_rows<Wide<T>>(y_wide.data(), widen(x.data(), rows * cols).data(), rows, cols);
    y_ref = Guarded<T>(narrow<T>(y_wide));
    std::vector<double> row_max(rows);
    for (std::size_t r = 0; r < rows; ++r) row_max[r] = ks::max(x.data() + r * cols, cols);
    cmp.set_tol({grow(4, 0.5, cols), 1});
    cmp.check(rows_label(rows, cols), y, y_ref, [&](std::size_t i) {
      const double yi = y_ref.data()[i];
      return yi == 0 ? 0.0 : std::fabs(yi) * std::fabs(double(x.data()[i]) - row_max[i / cols]);
    }, x.data());
  }
}
template <class T> void test_log_softmax_rows() {
  // y = x - lse: absolute error ~ eps (|x| + |lse|) plus the sum's relative error
  Compare<T> cmp("log_softmax_rows", {}, "abs (4 + 0.5 sqrt(cols)) eps (1 + |x| + |y|)");
  for (auto [rows, cols] : row_shapes()) {
    const Guarded<T> x(softmax_input<T>(rows, cols, std::uint32_t(cols + 2)));
    Guarded<T> y(std::vector<T>(rows * cols, T(12345))), y_ref(y);
    k::log_softmax_rows<T>(y.data(), x.data(), rows, cols);
    std::vector<Wide<T>> y_wide(rows * cols);
    ks::log_softmax_rows<Wide<T>>(y_wide.data(), widen(x.data(), rows * cols).data(), rows, cols);
    y_ref = Guarded<T>(narrow<T>(y_wide));
    cmp.set_tol({0, grow(4, 0.5, cols)});
    cmp.check(rows_label(rows, cols), y, y_ref,
              [&](std::size_t i) { return 1 + std::fabs(double(x.data()[i])) + std::fabs(double(y_ref.data()[i])); },
              x.data());
  }
}
template <class T> void test_log_softmax_stats_rows() {
  // The row max is exact; log_sum as log_softmax_rows' sum. And (x - max) - log_sum in T is
  // log_softmax_rows' output bit for bit (cross_entropy relies on it: Note [cross-entropy memory]).
  Compare<T> cmp_max("log_softmax_stats_rows max", {0, 0});
  Compare<T> cmp_log_sum("log_softmax_stats_rows log_sum", {}, "abs (4 + 0.5 sqrt(cols)) eps (1 + |log_sum|)");
  Compare<T> cmp_entry("log_softmax_stats_rows (x - max) - log_sum against log_softmax_rows", {0, 0});
  for (auto [rows, cols] : row_shapes()) {
    const Guarded<T> x(softmax_input<T>(rows, cols, std::uint32_t(cols + 5)));
    Guarded<T> m(std::vector<T>(rows, T(12345))), log_sum(m), y(std::vector<T>(rows * cols, T(12345)));
    k::log_softmax_stats_rows<T>(m.data(), log_sum.data(), x.data(), rows, cols);
    k::log_softmax_rows<T>(y.data(), x.data(), rows, cols);
    std::vector<Wide<T>> m_wide(rows), log_sum_wide(rows);
    ks::log_softmax_stats_rows<Wide<T>>(m_wide.data(), log_sum_wide.data(), widen(x.data(), rows * cols).data(), rows, cols);
    const Guarded<T> m_ref(narrow<T>(m_wide)), log_sum_ref(narrow<T>(log_sum_wide));
    cmp_max.check(rows_label(rows, cols), m, m_ref);
    cmp_log_sum.set_tol({0, grow(4, 0.5, cols)});
    cmp_log_sum.check(rows_label(rows, cols), log_sum, log_sum_ref, [&](std::size_t i) { return 1 + std::fabs(double(log_sum_ref.data()[i])); });
    std::vector<T> entries(rows * cols);
    for (std::size_t i = 0; i < rows * cols; ++i) {
      const std::size_t r = i / cols;
      entries[i] = m.data()[r] == -kInf<T> ? -kInf<T> : (x.data()[i] - m.data()[r]) - log_sum.data()[r];
    }
    cmp_entry.check(rows_label(rows, cols), entries.data(), y.data(), rows * cols, {}, x.data());
  }
}
template <class T> void test_softmax_backward_rows() {
  // dx += y (dy - dot): dot is a reordered sum; values are O(1)
  Compare<T> cmp("softmax_backward_rows", {}, "abs (4 + 0.5 sqrt(cols)) eps (1 + |dx|)");
  for (auto [rows, cols] : row_shapes()) {
    std::vector<T> y(rows * cols);
    const auto x = softmax_input<T>(rows, cols, std::uint32_t(cols + 3));
    ks::softmax_rows<T>(y.data(), x.data(), rows, cols);
    const Guarded<T> yg(y), dy(make_values<T>(rows * cols, -1, 1, {}, 5));
    const Guarded<T> dx0(make_values<T>(rows * cols, -1, 1, {}, 6));
    Guarded<T> dx(dx0), dx_ref(dx0);
    k::softmax_backward_rows<T>(dx.data(), yg.data(), dy.data(), rows, cols);
    auto dx_wide = widen(dx0.data(), rows * cols);
    ks::softmax_backward_rows<Wide<T>>(dx_wide.data(), widen(yg.data(), rows * cols).data(),
                                       widen(dy.data(), rows * cols).data(), rows, cols);
    dx_ref = Guarded<T>(narrow<T>(dx_wide));
    cmp.set_tol({0, grow(4, 0.5, cols)});
    cmp.check(rows_label(rows, cols), dx, dx_ref, [&](std::size_t i) { return 1 + std::fabs(double(dx0.data()[i])); });
  }
}
template <class T> void test_log_softmax_backward_rows() {
  // dx += dy - exp(y) sum(dy): sum(dy) is a reordered sum, its error ~ eps sum|dy|
  Compare<T> cmp("log_softmax_backward_rows", {}, "abs (4 + 0.5 sqrt(cols)) eps (1 + |dx| + exp(y) sum|dy|)");
  for (auto [rows, cols] : row_shapes()) {
    std::vector<T> y(rows * cols);
    const auto x = softmax_input<T>(rows, cols, std::uint32_t(cols + 4));
    ks::log_softmax_rows<T>(y.data(), x.data(), rows, cols);
    const Guarded<T> yg(y), dy(make_values<T>(rows * cols, -1, 1, {}, 7));
    const Guarded<T> dx0(make_values<T>(rows * cols, -1, 1, {}, 8));
    Guarded<T> dx(dx0), dx_ref(dx0);
    k::log_softmax_backward_rows<T>(dx.data(), yg.data(), dy.data(), rows, cols);
    auto dx_wide = widen(dx0.data(), rows * cols);
    ks::log_softmax_backward_rows<Wide<T>>(dx_wide.data(), widen(yg.data(), rows * cols).data(),
                                           widen(dy.data(), rows * cols).data(), rows, cols);
    dx_ref = Guarded<T>(narrow<T>(dx_wide));
    std::vector<double> abs_sum_dy(rows, 0);
    for (std::size_t i = 0; i < rows * cols; ++i) abs_sum_dy[i / cols] += std::fabs(double(dy.data()[i]));
    cmp.set_tol({0, grow(4, 0.5, cols)});
    cmp.check(rows_label(rows, cols), dx, dx_ref, [&](std::size_t i) {
      return 1 + std::fabs(double(dx0.data()[i])) + std::exp(double(yg.data()[i])) * abs_sum_dy[i / cols];
    });
  }
}

// Layer-norm inputs by row pattern (r % 5): 0 plain, 1 a large offset (1e3 + noise), 2 tiny spread
// (eps dominates the variance), 3 constant, 4 wide (+-1e3).
template <class T>
std::vector<T> layer_norm_input(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uni(-1, 1);
  std::vector<T> x(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cols; ++j) {
      const double u = uni(rng);
      const double v[] = {3 * u, 1e3 + u, 1e-4 * u, 2.5, 1e3 * u};
      x[r * cols + j] = T(v[r % 5]);
    }
  return x;
}

template <class T> void test_layer_norm_rows() {
  const T eps = T(1e-5);
  // mean: a reordered sum, relative to mean |x|. rstd: the variance is insensitive (to first
  // order) to the mean's error: a few eps plus its reordered sum. y = xhat gamma + beta: the
  // mean's error shows as eps |mean| rstd, so the absolute part scales with 1 + |mean| rstd.
  Compare<T> cmp_mean("layer_norm_rows mean", {}, "abs (4 + sqrt(cols)) eps mean|x|");
  Compare<T> cmp_rstd("layer_norm_rows rstd", {}, "rel (4 + sqrt(cols)) eps");
  Compare<T> cmp_y("layer_norm_rows y", {}, "rel 4 eps, abs (4 + sqrt(cols)) eps 2 (1 + |mean| rstd)");
  for (auto [rows, cols] : row_shapes()) {
    const Guarded<T> x(layer_norm_input<T>(rows, cols, std::uint32_t(cols + 1)));
    const Guarded<T> gamma(make_values<T>(cols, 0.5, 2, {}, 3)), beta(make_values<T>(cols, -1, 1, {}, 4));
    for (bool affine : {false, true}) {
      Guarded<T> y(std::vector<T>(rows * cols, T(12345))), y_ref(y);
      Guarded<T> mean(std::vector<T>(rows, T(12345))), mean_ref(mean), rstd(mean), rstd_ref(mean);
      const T* g = affine ? gamma.data() : nullptr;
      const T* b = affine ? beta.data() : nullptr;
      k::layer_norm_rows<T>(y.data(), mean.data(), rstd.data(), x.data(), g, b, rows, cols, eps);
      {
        std::vector<Wide<T>> y_w(rows * cols), mean_w(rows), rstd_w(rows);
        const auto g_w = widen(gamma.data(), cols), b_w = widen(beta.data(), cols);
        ks::layer_norm_rows<Wide<T>>(y_w.data(), mean_w.data(), rstd_w.data(), widen(x.data(), rows * cols).data(),
                                     affine ? g_w.data() : nullptr, affine ? b_w.data() : nullptr, rows, cols, eps);
        y_ref = Guarded<T>(narrow<T>(y_w));
        mean_ref = Guarded<T>(narrow<T>(mean_w));
        rstd_ref = Guarded<T>(narrow<T>(rstd_w));
      }
      const std::string where = rows_label(rows, cols) + (affine ? " gamma,beta" : " no gamma/beta");
      std::vector<double> mean_abs(rows, 0);
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t j = 0; j < cols; ++j) mean_abs[r] += std::fabs(double(x.data()[r * cols + j]));
        mean_abs[r] /= double(cols);
      }
      cmp_mean.set_tol({0, grow(4, 1, cols)});
      cmp_mean.check(where, mean, mean_ref, [&](std::size_t r) { return mean_abs[r]; });
      cmp_rstd.set_tol({grow(4, 1, cols), 0});
      cmp_rstd.check(where, rstd, rstd_ref);
      cmp_y.set_tol({4, grow(4, 1, cols)});
      cmp_y.check(where, y, y_ref, [&](std::size_t i) {
        const std::size_t r = i / cols;
        return 2.0 * (1 + std::fabs(double(mean_ref.data()[r]) * double(rstd_ref.data()[r])));
      }, x.data());
    }
  }
}

template <class T> void test_layer_norm_backward_rows() {
  const T eps = T(1e-5);
  // dx = rstd (g - mean(g) - xhat mean(g xhat)): reordered row sums, times rstd (up to
  // 1/sqrt(eps) = 316 on the tiny-spread rows). dgamma, dbeta: the same order of additions over
  // rows as the scalar twin; an FMA may round once less per row.
  Compare<T> cmp_dx("layer_norm_backward_rows dx", {}, "rel 4 eps, abs (8 + sqrt(cols)) eps (1 + rstd (2 + |xhat|))");
  Compare<T> cmp_dg("layer_norm_backward_rows dgamma", {4, 4}, "rel 4 eps, abs 4 eps rows");
  Compare<T> cmp_db("layer_norm_backward_rows dbeta", {2, 2}, "rel 2 eps, abs 2 eps rows");
  for (auto [rows, cols] : row_shapes()) {
    const Guarded<T> x(layer_norm_input<T>(rows, cols, std::uint32_t(cols + 1)));
    const Guarded<T> gamma(make_values<T>(cols, 0.5, 2, {}, 3)), dy(make_values<T>(rows * cols, -1, 1, {}, 9));
    std::vector<T> y(rows * cols), mean_v(rows), rstd_v(rows);
    ks::layer_norm_rows<T>(y.data(), mean_v.data(), rstd_v.data(), x.data(), gamma.data(), nullptr, rows, cols, eps);
    const Guarded<T> mean(mean_v), rstd(rstd_v);
    // with / without gamma, and with some outputs null
    struct Variant { bool gamma, dx, dgamma, dbeta; };
    for (Variant v : {Variant{true, true, true, true}, Variant{false, true, true, true}, Variant{true, true, false, false},
                      Variant{true, false, true, true}}) {
      const Guarded<T> dx0(make_values<T>(rows * cols, -1, 1, {}, 10)), dg0(make_values<T>(cols, -1, 1, {}, 11)),
          db0(make_values<T>(cols, -1, 1, {}, 12));
      Guarded<T> dx(dx0), dx_ref(dx0), dg(dg0), dg_ref(dg0), db(db0), db_ref(db0);
      const T* g = v.gamma ? gamma.data() : nullptr;
      k::layer_norm_backward_rows<T>(v.dx ? dx.data() : nullptr, v.dgamma ? dg.data() : nullptr,
                                     v.dbeta ? db.data() : nullptr, dy.data(), x.data(), mean.data(), rstd.data(), g,
                                     rows, cols);
      {
        auto dx_w = widen(dx0.data(), rows * cols), dg_w = widen(dg0.data(), cols), db_w = widen(db0.data(), cols);
        const auto g_w = widen(gamma.data(), cols);
        ks::layer_norm_backward_rows<Wide<T>>(
            v.dx ? dx_w.data() : nullptr, v.dgamma ? dg_w.data() : nullptr, v.dbeta ? db_w.data() : nullptr,
            widen(dy.data(), rows * cols).data(), widen(x.data(), rows * cols).data(), widen(mean.data(), rows).data(),
            widen(rstd.data(), rows).data(), v.gamma ? g_w.data() : nullptr, rows, cols);
        dx_ref = Guarded<T>(narrow<T>(dx_w));
        dg_ref = Guarded<T>(narrow<T>(dg_w));
        db_ref = Guarded<T>(narrow<T>(db_w));
      }
      std::ostringstream where;
      where << rows_label(rows, cols) << (v.gamma ? " gamma" : " no gamma") << (v.dx ? "" : " dx=null")
            << (v.dgamma ? "" : " dgamma=null") << (v.dbeta ? "" : " dbeta=null");
      cmp_dx.set_tol({4, grow(8, 1, cols)});
      cmp_dx.check(where.str(), dx, dx_ref, [&](std::size_t i) {
        const std::size_t r = i / cols;
        const double xhat = (double(x.data()[i]) - double(mean.data()[r])) * double(rstd.data()[r]);
        return 1 + double(rstd.data()[r]) * (2 + std::fabs(xhat));
      });
      cmp_dg.check(where.str(), dg, dg_ref, [&](std::size_t) { return double(rows); });
      cmp_db.check(where.str(), db, db_ref, [&](std::size_t) { return double(rows); });
    }
  }
}

template <class T> void test_adam_update() {
  // the same operations in the same order; FMAs may round a product once less
  Compare<T> cmp("adam_update", {4, 1});
  const k::AdamParams settings[] = {
      {.lr = 1e-3, .step = 1},
      {.lr = 3e-4, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.1, .step = 1000},
      {.lr = 1e-2, .weight_decay = 0.01, .decoupled = true, .step = 10},
  };
  int which = 0;
  for (const auto& p : settings) {
    for (std::size_t n : sizes()) {
      const Guarded<T> grad(make_values<T>(n, -1, 1, {T(0), T(1e-30), T(-1e30)}, std::uint32_t(n + 1)));
      const Guarded<T> param0(make_values<T>(n, -1, 1, {}, std::uint32_t(n + 2)));
      const Guarded<T> m0(make_values<T>(n, -0.1, 0.1, {}, std::uint32_t(n + 3)));
      const Guarded<T> v0(make_values<T>(n, 0, 0.01, {T(0)}, std::uint32_t(n + 4)));
      Guarded<T> param(param0), param_ref(param0), m(m0), m_ref(m0), v(v0), v_ref(v0);
      k::adam_update<T>(param.data(), m.data(), v.data(), grad.data(), n, p);
      ks::adam_update<T>(param_ref.data(), m_ref.data(), v_ref.data(), grad.data(), n, p);
      const std::string where = "settings " + std::to_string(which) + " " + size_label(n);
      cmp.check(where + " param", param, param_ref);
      cmp.check(where + " m", m, m_ref);
      cmp.check(where + " v", v, v_ref);
    }
    ++which;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One Boost test case per kernel and element type (CTest lists each: kernels/exp_f32, ...).
BOOST_AUTO_TEST_SUITE(kernels)

#define KERNEL_TEST(kernel)                                   \
  BOOST_AUTO_TEST_CASE(kernel##_f32) { test_##kernel<float>(); } \
  BOOST_AUTO_TEST_CASE(kernel##_f64) { test_##kernel<double>(); }

KERNEL_TEST(exp)
KERNEL_TEST(log)
KERNEL_TEST(tanh)
KERNEL_TEST(sigmoid)
KERNEL_TEST(relu)
KERNEL_TEST(gelu)
KERNEL_TEST(tanh_backward)
KERNEL_TEST(sigmoid_backward)
KERNEL_TEST(relu_backward)
KERNEL_TEST(gelu_backward)
KERNEL_TEST(add)
KERNEL_TEST(sub)
KERNEL_TEST(mul)
KERNEL_TEST(div)
KERNEL_TEST(aliasing)
KERNEL_TEST(add_scalar)
KERNEL_TEST(mul_scalar)
KERNEL_TEST(acc)
KERNEL_TEST(acc_scaled)
KERNEL_TEST(acc_mul)
KERNEL_TEST(acc_div)
KERNEL_TEST(acc_rows)
KERNEL_TEST(sum)
KERNEL_TEST(max)
KERNEL_TEST(softmax_rows)
KERNEL_TEST(log_softmax_rows)
KERNEL_TEST(log_softmax_stats_rows)
KERNEL_TEST(softmax_backward_rows)
KERNEL_TEST(log_softmax_backward_rows)
KERNEL_TEST(layer_norm_rows)
KERNEL_TEST(layer_norm_backward_rows)
KERNEL_TEST(adam_update)

// Every check again on the other x86 targets compiled into kernels.cc (AVX3 is the one the
// cases above run on here), so AVX2's masked tails, SSE4/SSSE3's buffered tails and the SCALAR
// fallback are tested too. Skipped when the CPU lacks the target.
void every_kernel_on(std::int64_t target) {
  if ((hwy::SupportedTargets() & target) == 0) {
    BOOST_TEST_MESSAGE(hwy::TargetName(target) << " is not supported on this CPU: skipped");
    return;
  }
  hwy::SetSupportedTargetsForTest(target);  // the next dispatch chooses `target`
  g_other_target = true;
  BOOST_TEST(std::string(k::simd_target()) == hwy::TargetName(target));
#define RUN_BOTH(kernel) test_##kernel<float>(), test_##kernel<double>();
  RUN_BOTH(exp) RUN_BOTH(log) RUN_BOTH(tanh) RUN_BOTH(sigmoid) RUN_BOTH(relu) RUN_BOTH(gelu)
  RUN_BOTH(tanh_backward) RUN_BOTH(sigmoid_backward) RUN_BOTH(relu_backward) RUN_BOTH(gelu_backward)
  RUN_BOTH(add) RUN_BOTH(sub) RUN_BOTH(mul) RUN_BOTH(div) RUN_BOTH(aliasing) RUN_BOTH(add_scalar)
  RUN_BOTH(mul_scalar) RUN_BOTH(acc) RUN_BOTH(acc_scaled) RUN_BOTH(acc_mul) RUN_BOTH(acc_div) RUN_BOTH(acc_rows) RUN_BOTH(sum)
  RUN_BOTH(max) RUN_BOTH(softmax_rows) RUN_BOTH(log_softmax_rows) RUN_BOTH(log_softmax_stats_rows)
  RUN_BOTH(softmax_backward_rows)
  RUN_BOTH(log_softmax_backward_rows) RUN_BOTH(layer_norm_rows) RUN_BOTH(layer_norm_backward_rows)
  RUN_BOTH(adam_update)
#undef RUN_BOTH
  g_other_target = false;
  hwy::SetSupportedTargetsForTest(0);  // back to the CPU's best
  BOOST_TEST_MESSAGE("every kernel checked on " << hwy::TargetName(target));
}
BOOST_AUTO_TEST_CASE(every_kernel_on_AVX2) { every_kernel_on(HWY_AVX2); }
BOOST_AUTO_TEST_CASE(every_kernel_on_SSE4) { every_kernel_on(HWY_SSE4); }
BOOST_AUTO_TEST_CASE(every_kernel_on_SSSE3) { every_kernel_on(HWY_SSSE3); }
BOOST_AUTO_TEST_CASE(every_kernel_on_SCALAR) { every_kernel_on(HWY_SCALAR); }

// The dispatch picks a SIMD target wherever the CPU has one (AVX3 on AVX-512 machines).
BOOST_AUTO_TEST_CASE(simd_target_not_scalar) {
  const std::string target = k::simd_target();
  const auto generated = hwy::SupportedAndGeneratedTargets();  // best first
  BOOST_TEST_MESSAGE("Highway target chosen at run time: " << target);
  if ((hwy::SupportedTargets() & HWY_AVX2) == 0) {
    BOOST_TEST_MESSAGE("this CPU has no AVX2: nothing to check");
    return;
  }
  BOOST_TEST(target != "SCALAR");
  BOOST_TEST(target != "EMU128");
  BOOST_REQUIRE(!generated.empty());
  BOOST_TEST(target == hwy::TargetName(generated.front()));
}

// ATTNLAB_SIMD=AVX2 (Note [ATTNLAB_SIMD] in kernels.cc) goes through cap_simd_target at start-up.
BOOST_AUTO_TEST_CASE(cap_simd_target_limits_the_dispatch) {
  const std::string best = k::simd_target();
  BOOST_TEST(!k::cap_simd_target("NOT_A_TARGET"));
  BOOST_TEST(k::simd_target() == best);
  for (std::int64_t target : {HWY_AVX2, HWY_SSE4}) {
    if ((hwy::SupportedTargets() & target) == 0) continue;
    BOOST_TEST(k::cap_simd_target(hwy::TargetName(target)));
    BOOST_TEST(std::string(k::simd_target()) == hwy::TargetName(target));
    std::vector<float> x{0.5f, -1.0f, 2.0f}, y(3);
    k::exp(y.data(), x.data(), x.size());  // the capped target computes
    BOOST_TEST(y[2] == std::exp(2.0f), boost::test_tools::tolerance(1e-6f));
  }
  hwy::DisableTargets(0);
  BOOST_TEST(k::simd_target() == best);
}

// Note [threads]: from kParallelGrain elements per thread the streaming kernels split their buffers
// over threads; every element or row is computed as on one thread, so 1, 2 and 3 threads give the
// same bits. Sizes just past 3 grains (every count splits) and odd, so that the chunks end mid-vector.
BOOST_AUTO_TEST_CASE(threads_give_the_same_bits) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto random = [&](std::size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = normal(rng);
    return v;
  };
  const std::size_t n = 3 * k::kParallelGrain + 4099, rows = 1001, cols = 301;
  const std::vector<float> grad = random(n), x = random(rows * cols), dy = random(rows * cols);
  const std::vector<float> param0 = random(n);
  std::vector<std::vector<float>> adam, softmax, log_softmax, stats, softmax_back, log_softmax_back, layer_norm, acc_rows, elementwise;
  for (std::size_t threads : {1, 2, 3}) {
    k::set_num_threads(threads);
    BOOST_TEST(k::num_threads() == threads);
    std::vector<float> p = param0, m(n, 0.f), v(n, 0.f);
    for (std::int64_t step = 1; step <= 2; ++step)
      k::adam_update(p.data(), m.data(), v.data(), grad.data(), n, {.lr = 1e-2, .weight_decay = 0.1, .decoupled = true, .step = step});
    adam.push_back(p);
    std::vector<float> y(rows * cols), ly(rows * cols), dx(rows * cols, 0.5f), ldx(rows * cols, 0.5f);
    k::softmax_rows(y.data(), x.data(), rows, cols);
    k::log_softmax_rows(ly.data(), x.data(), rows, cols);
    std::vector<float> st(2 * rows);
    k::log_softmax_stats_rows(st.data(), st.data() + rows, x.data(), rows, cols);
    stats.push_back(st);
    k::softmax_backward_rows(dx.data(), y.data(), dy.data(), rows, cols);
    k::log_softmax_backward_rows(ldx.data(), ly.data(), dy.data(), rows, cols);
    softmax.push_back(y), log_softmax.push_back(ly), softmax_back.push_back(dx), log_softmax_back.push_back(ldx);
    std::vector<float> ln(rows * cols + 2 * rows);  // y, then mean and rstd
    k::layer_norm_rows(ln.data(), ln.data() + rows * cols, ln.data() + rows * cols + rows, x.data(), dy.data(), grad.data(),
                       rows, cols, 1e-5f);
    layer_norm.push_back(ln);
    std::vector<float> column_sums(cols, 0.5f);
    k::acc_rows(column_sums.data(), dy.data(), rows, cols, cols);
    acc_rows.push_back(column_sums);
    std::vector<float> e(n), g(n), d(n, 0.25f), s(n), acc = param0;  // element-wise: unary, backward, binary, scalar, acc
    k::exp(e.data(), grad.data(), n);
    k::gelu(g.data(), grad.data(), n);
    k::gelu_backward(d.data(), grad.data(), param0.data(), n);
    k::mul(s.data(), grad.data(), param0.data(), n);
    k::add_scalar(s.data(), s.data(), 0.5f, n);
    k::acc_scaled(acc.data(), grad.data(), 0.3f, n);
    for (auto* v : {&e, &g, &d, &s, &acc}) elementwise.push_back(*v);
  }
  k::set_num_threads(0);
  for (std::size_t t = 1; t < 3; ++t) {
    BOOST_TEST((adam[t] == adam[0]), "adam_update, " << t + 1 << " threads");
    BOOST_TEST((softmax[t] == softmax[0]), "softmax_rows, " << t + 1 << " threads");
    BOOST_TEST((log_softmax[t] == log_softmax[0]), "log_softmax_rows, " << t + 1 << " threads");
    BOOST_TEST((stats[t] == stats[0]), "log_softmax_stats_rows, " << t + 1 << " threads");
    BOOST_TEST((softmax_back[t] == softmax_back[0]), "softmax_backward_rows, " << t + 1 << " threads");
    BOOST_TEST((log_softmax_back[t] == log_softmax_back[0]), "log_softmax_backward_rows, " << t + 1 << " threads");
    BOOST_TEST((layer_norm[t] == layer_norm[0]), "layer_norm_rows, " << t + 1 << " threads");
    BOOST_TEST((acc_rows[t] == acc_rows[0]), "acc_rows, " << t + 1 << " threads");
    const char* names[] = {"exp", "gelu", "gelu_backward", "mul, add_scalar", "acc_scaled"};
    for (std::size_t i = 0; i < 5; ++i) BOOST_TEST((elementwise[5 * t + i] == elementwise[i]), names[i] << ", " << t + 1 << " threads");
  }
  BOOST_TEST(adam[0] != param0);  // the update did something
}

// cross_entropy's backward splits its rows over threads too (with ignored rows and weights).
BOOST_AUTO_TEST_CASE(cross_entropy_backward_threads_give_the_same_bits) {
  const std::size_t rows = 300, classes = 1001;
  ag::Generator gen(3);
  const ag::Tensor logits = ag::randn({rows, classes}, gen);
  std::vector<std::int64_t> targets(rows);
  for (std::size_t r = 0; r < rows; ++r) targets[r] = r % 7 == 0 ? -100 : std::int64_t((r * 37) % classes);
  std::vector<std::vector<double>> grads;
  for (std::size_t threads : {1, 2}) {
    k::set_num_threads(threads);
    for (double smoothing : {0.0, 0.1}) {
      ag::Tensor x = logits.detach();
      x.requires_grad_();
      ag::cross_entropy(x, ag::Indices(targets, {rows}), {.label_smoothing = smoothing}).backward();
      grads.push_back(x.grad().to_vector());
    }
  }
  k::set_num_threads(0);
  BOOST_TEST((grads[2] == grads[0]));
  BOOST_TEST((grads[3] == grads[1]));
  BOOST_TEST((grads[0] != grads[1]));
}

// Note [threads]: the pool runs every task once, on the caller's thread too; a task that asks for
// threads runs its own tasks in place, and a second caller while the pool is busy runs its tasks
// itself: no task lost, run twice, or deadlocked.
BOOST_AUTO_TEST_CASE(run_tasks_runs_every_task_once) {
  k::set_num_threads(3);
  for (std::size_t tasks : {1, 2, 3, 7, 1000}) {
    std::vector<std::atomic<int>> runs(tasks);
    k::run_tasks(tasks, 3, [&](std::size_t t) { runs[t].fetch_add(1); });
    for (std::size_t t = 0; t < tasks; ++t) BOOST_TEST(runs[t].load() == 1, tasks << " tasks: task " << t);
  }
  std::vector<std::atomic<int>> inner(8 * 8);  // nested
  k::run_tasks(8, 3, [&](std::size_t i) { k::run_tasks(8, 3, [&](std::size_t j) { inner[i * 8 + j].fetch_add(1); }); });
  for (auto& r : inner) BOOST_TEST(r.load() == 1);
  std::vector<std::atomic<int>> a(500), b(500);  // two callers at once
  std::thread other([&] {
    for (int round = 0; round < 50; ++round) k::run_tasks(10, 3, [&](std::size_t t) { b[std::size_t(round) * 10 + t].fetch_add(1); });
  });
  for (int round = 0; round < 50; ++round) k::run_tasks(10, 3, [&](std::size_t t) { a[std::size_t(round) * 10 + t].fetch_add(1); });
  other.join();
  for (std::size_t t = 0; t < 500; ++t) BOOST_TEST((a[t].load() == 1 && b[t].load() == 1), "task " << t);
  k::set_num_threads(0);
}

// gemm splits a product of kGemmGrain multiply-adds or more into blocks of rows (or of columns),
// one per thread; matmul and attention_weights spread a batch of smaller products over the
// threads. A batch's products are each one BLAS call on some thread: the same bits with 1, 2 and
// 3 threads. A split product may differ from one thread's in the last bits (OpenBLAS rounds a
// block's edge tiles in another order): within a few float epsilons of the product's scale, and
// the same bits from run to run. Awkward sizes (not multiples of the 24-row blocks), both
// transposes (the backward's gemms), a broadcast operand (whose gradient sums over the batch, in
// order, on one thread), float32 and float64.
BOOST_AUTO_TEST_CASE(threaded_gemms_match_one_thread) {
  struct Case {
    const char* name;
    ag::Shape a, b;
    bool split;  // a product large enough to be split
  };
  const Case cases[] = {
      {"tall product, split by rows", {301, 257}, {257, 299}, true},
      {"wide product, split by columns", {37, 200}, {200, 1001}, true},
      {"folded batch, shared weight", {6, 129, 200}, {200, 97}, true},
      {"batched small products", {8, 3, 70, 50}, {8, 3, 50, 61}, false},
      {"broadcast batch", {8, 1, 70, 50}, {1, 3, 50, 61}, false},
  };
  auto max_abs_diff = [](const std::vector<double>& x, const std::vector<double>& y) {
    double m = 0, scale = 0;
    for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i])), scale = std::max(scale, std::abs(x[i]));
    return m / scale;
  };
  for (ag::Dtype dtype : {ag::Dtype::f32, ag::Dtype::f64})
    for (const Case& c : cases) {
      const double eps = dtype == ag::Dtype::f32 ? 1e-6 : 1e-15;
      std::vector<std::vector<double>> results;  // per run: product, a's gradient, b's gradient
      for (std::size_t threads : {1, 2, 3, 2}) {
        k::set_num_threads(threads);
        ag::Generator gen(11);
        ag::Tensor a = ag::randn(c.a, gen, {dtype, true}), b = ag::randn(c.b, gen, {dtype, true});
        const ag::Tensor y = ag::matmul(a, b);
        ag::sum(y * y).backward();
        results.push_back(y.to_vector()), results.push_back(a.grad().to_vector()), results.push_back(b.grad().to_vector());
      }
      const char* what[] = {"the product", "a's gradient", "b's gradient"};
      for (std::size_t r = 1; r < 4; ++r)
        for (std::size_t i = 0; i < 3; ++i) {
          const auto &one = results[i], &now = results[3 * r + i];
          const std::size_t threads = r == 2 ? 3 : 2;
          if (c.split) BOOST_TEST(max_abs_diff(now, one) < 8 * eps, c.name << ", " << threads << " threads: " << what[i]);
          else BOOST_TEST((now == one), c.name << ", " << threads << " threads: " << what[i]);
        }
      for (std::size_t i = 0; i < 3; ++i)  // 2 threads, twice
        BOOST_TEST((results[9 + i] == results[3 + i]), c.name << ", 2 threads run twice: " << what[i]);
    }
  // linear's bias gradient, summed over the rows per column block on each thread: the in-order
  // float sum of each column of dy = 2 y, bit for bit
  for (std::size_t threads : {1, 2, 3}) {
    k::set_num_threads(threads);
    ag::Generator gen(12);
    ag::Tensor x = ag::randn({9000, 50}, gen), w = ag::randn({97, 50}, gen, {.requires_grad = true}),
               bias = ag::randn({97}, gen, {.requires_grad = true});
    const ag::Tensor y = ag::linear(x, w, bias);
    ag::sum(y * y).backward();
    const float* yv = y.array().ptr<float>();
    std::vector<float> expected(97, 0.f);
    for (std::size_t r = 0; r < 9000; ++r)  // 9,000 x 97 entries: three column blocks with 3 threads
      for (std::size_t j = 0; j < 97; ++j) expected[j] += 2.f * yv[r * 97 + j];
    const ag::Tensor db = bias.grad();
    BOOST_TEST((std::vector<float>(db.array().ptr<float>(), db.array().ptr<float>() + 97) == expected),
               "linear's bias gradient, " << threads << " threads");
  }
  // a view's gradient (slice, split_heads) added in blocks along its first axis over the threads:
  // every entry once, in its place
  for (std::size_t threads : {1, 2, 3}) {
    k::set_num_threads(threads);
    ag::Generator gen(13);
    ag::Tensor x = ag::randn({601, 1000}, gen, {.requires_grad = true});
    const ag::Tensor y = ag::slice(x, 1, 100, 997, 3);
    ag::sum(y * y).backward();
    const ag::Tensor grad = x.grad();  // held: a pointer into a temporary's array would dangle
    const float *xv = x.array().ptr<float>(), *gx = grad.array().ptr<float>();
    std::size_t wrong = 0;
    for (std::size_t r = 0; r < 601; ++r)
      for (std::size_t c = 0; c < 1000; ++c) {
        const bool in_view = c >= 100 && c < 997 && (c - 100) % 3 == 0;
        wrong += gx[r * 1000 + c] != (in_view ? 2.f * xv[r * 1000 + c] : 0.f);
      }
    BOOST_TEST(wrong == 0u, "slice's gradient, " << threads << " threads: " << wrong << " entries wrong");
  }
  // attention_weights: its slices side by side (forward and backward), and with a float mask that
  // takes a gradient (summed over the slices: one thread)
  for (bool bias_grad : {false, true}) {
    std::vector<std::vector<double>> w, gq, gk, gbias;
    for (std::size_t threads : {1, 2, 3}) {
      k::set_num_threads(threads);
      ag::Generator gen(5);
      ag::Tensor q = ag::randn({4, 6, 45, 24}, gen, {.requires_grad = true}), key = ag::randn({4, 6, 53, 24}, gen, {.requires_grad = true});
      ag::Tensor bias = ag::randn({45, 53}, gen);
      if (bias_grad) bias.requires_grad_();
      const ag::Tensor weights = ag::attention_weights(q, key, bias);
      ag::sum(weights * weights).backward();
      w.push_back(weights.to_vector()), gq.push_back(q.grad().to_vector()), gk.push_back(key.grad().to_vector());
      if (bias_grad) gbias.push_back(bias.grad().to_vector());
    }
    for (std::size_t t = 1; t < 3; ++t) {
      BOOST_TEST((w[t] == w[0]), "attention_weights, " << t + 1 << " threads");
      BOOST_TEST((gq[t] == gq[0]), "attention_weights' q gradient, " << t + 1 << " threads");
      BOOST_TEST((gk[t] == gk[0]), "attention_weights' k gradient, " << t + 1 << " threads");
      if (bias_grad) BOOST_TEST((gbias[t] == gbias[0]), "attention_weights' mask gradient, " << t + 1 << " threads");
    }
  }
  k::set_num_threads(0);
}

BOOST_AUTO_TEST_SUITE_END()
