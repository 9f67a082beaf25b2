// Known values: every op's forward (and a few backward) results checked against numbers
// computed by hand or with NumPy conventions.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/check_values.hpp"
#include "ag/ag.hpp"

namespace tt = boost::test_tools;

namespace {

void check_shape(const ag::Tensor& t, const std::string& want) { BOOST_TEST(ag::shape_str(t.shape()) == want); }

std::vector<double> arange_values(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = double(i);
  return v;
}

ag::Tensor iota(const ag::Shape& shape, ag::Dtype d = ag::f32, bool requires_grad = false) {
  return ag::tensor(arange_values(ag::shape_numel(shape)), shape, {d, requires_grad});
}

double tol_for(ag::Dtype d) { return d == ag::f32 ? 1e-5 : 1e-12; }

}  // namespace

BOOST_AUTO_TEST_SUITE(known_values)

// ---- softmax / log_softmax -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(softmax_rows_sum_to_one) {
  ag::Generator gen(7);
  for (ag::Dtype d : {ag::f32, ag::f64})
    for (const ag::Shape& shape : {ag::Shape{5}, ag::Shape{3, 4}, ag::Shape{2, 3, 5}})
      for (int axis : {0, -1}) {
        BOOST_TEST_CONTEXT(ag::dtype_name(d) << " " << ag::shape_str(shape) << " axis " << axis) {
          auto x = ag::randn(shape, gen, {d, false}) * 3.0;
          auto y = ag::softmax(x, axis);
          check_shape(y, ag::shape_str(shape));
          for (double v : y.to_vector()) BOOST_TEST((v > 0.0 && v < 1.0));
          auto sums = ag::sum(y, {axis});
          check_values(sums.to_vector(), std::vector<double>(sums.numel(), 1.0), tol_for(d));
        }
      }
}

BOOST_AUTO_TEST_CASE(softmax_known_values_along_both_axes) {
  // softmax([1,2,3]) = e^k / (e + e^2 + e^3)
  const std::vector<double> p = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  check_values(ag::softmax(ag::tensor({1, 2, 3}, {3}, {ag::f64})).to_vector(), p, 1e-12);
  // along axis 0: each column [0, log 3] -> [1/4, 3/4]
  auto x = ag::tensor({0, 0, std::log(3.0), std::log(3.0)}, {2, 2}, {ag::f64});
  check_values(ag::softmax(x, 0).to_vector(), {0.25, 0.25, 0.75, 0.75}, 1e-12);
  check_values(ag::softmax(x, -1).to_vector(), {0.5, 0.5, 0.5, 0.5}, 1e-12);
}

BOOST_AUTO_TEST_CASE(softmax_of_huge_logits_is_exact_and_finite) {
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      auto y = ag::softmax(ag::tensor({1e4, -1e4}, {2}, {d}));
      BOOST_TEST(y.to_vector() == std::vector<double>({1.0, 0.0}), tt::per_element());
      auto z = ag::softmax(ag::tensor({1e4, 1e4, -1e4, -1e4}, {2, 2}, {d}));
      BOOST_TEST(z.to_vector() == std::vector<double>({0.5, 0.5, 0.5, 0.5}), tt::per_element());
      auto w = ag::softmax(ag::tensor({-1e4, 1e4}, {2, 1}, {d}), 0);
      BOOST_TEST(w.to_vector() == std::vector<double>({0.0, 1.0}), tt::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(log_softmax_of_equal_logits_is_minus_log_classes) {
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    auto y = ag::log_softmax(ag::full({2, 4}, 0.7, {d}));
    check_values(y.to_vector(), std::vector<double>(8, -std::log(4.0)), tol_for(d));
  }
}

BOOST_AUTO_TEST_CASE(log_softmax_of_huge_logits_is_finite) {
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      auto y = ag::log_softmax(ag::tensor({1e4, -1e4}, {2}, {d}));
      for (double v : y.to_vector()) BOOST_TEST(std::isfinite(v));
      check_values(y.to_vector(), {0.0, -2e4}, tol_for(d));
    }
  }
}

// Issue 13, section 4: log_softmax as (x - m) - log(sum), not x - (m + log(sum)), which rounds
// the log term to the inputs' magnitude. With an offset c that keeps x - m exact, the result
// must not depend on c at all: equal to the last bit, in the scalar tail (3 columns) and in
// the SIMD body (37 columns), and so must cross_entropy and its gradient.
BOOST_AUTO_TEST_CASE(log_softmax_is_shift_invariant_for_large_offsets) {
  {  // the case: float32 [30000.5, 30000, 29999] = [1.5, 1, 0] + 29999
    const auto big = ag::log_softmax(ag::tensor({30000.5, 30000.0, 29999.0}, {3}, {ag::f32}));
    const auto small = ag::log_softmax(ag::tensor({1.5, 1.0, 0.0}, {3}, {ag::f32}));
    BOOST_TEST(big.to_vector() == small.to_vector(), tt::per_element());
    check_values(big.to_vector(), {-0.6041306053367284, -1.1041306053367284, -2.1041306053367284}, 1e-6);
  }
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      const double offset = d == ag::f32 ? 16384.0 : std::ldexp(1.0, 40);  // x - m stays exact (quarters)
      for (std::size_t C : {3, 37}) {
        std::vector<double> base(2 * C), shifted(2 * C);
        for (std::size_t i = 0; i < base.size(); ++i) {
          base[i] = double((i * 7) % 13) * 0.25 - 1.5;
          shifted[i] = base[i] + offset;
        }
        BOOST_TEST_CONTEXT(C << " classes") {
          const auto a = ag::log_softmax(ag::tensor(base, {2, C}, {d}));
          const auto b = ag::log_softmax(ag::tensor(shifted, {2, C}, {d}));
          BOOST_TEST(b.to_vector() == a.to_vector(), tt::per_element());
          auto xa = ag::tensor(base, {2, C}, {d, true}), xb = ag::tensor(shifted, {2, C}, {d, true});
          const ag::Indices y({1, std::int64_t(C) - 1});
          for (ag::CrossEntropyOptions o : {ag::CrossEntropyOptions{}, ag::CrossEntropyOptions{.label_smoothing = 0.1}}) {
            xa.zero_grad();
            xb.zero_grad();
            const auto la = ag::cross_entropy(xa, y, o), lb = ag::cross_entropy(xb, y, o);
            BOOST_TEST(lb.item() == la.item());
            la.backward();
            lb.backward();
            BOOST_TEST(xb.grad().to_vector() == xa.grad().to_vector(), tt::per_element());
          }
        }
      }
    }
  }
}

// ---- losses --------------------------------------------------------------------------------

// logits [[1,2,3],[1,1,1]], targets [2,0]:
//   row 0: log(e^1 + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2) = 0.40760596444438013
//   row 1: log(3 e^1) - 1 = log 3                           = 1.0986122886681098
//   mean = (0.40760596 + 1.09861229) / 2 = 0.753109126556245, sum = 1.50621825311249
constexpr double kLoss0 = 0.40760596444438013, kLoss1 = 1.0986122886681098;

ag::Tensor ce_logits(ag::Dtype d = ag::f64) { return ag::tensor({1, 2, 3, 1, 1, 1}, {2, 3}, {d, true}); }

BOOST_AUTO_TEST_CASE(cross_entropy_matches_hand_computed_value) {
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    auto loss = ag::cross_entropy(ce_logits(d), ag::Indices({2, 0}));
    check_shape(loss, "[]");
    BOOST_TEST(loss.item() == (kLoss0 + kLoss1) / 2, tt::tolerance(tol_for(d)));
  }
  auto sum = ag::cross_entropy(ce_logits(), ag::Indices({2, 0}), {.reduction = ag::Reduction::sum});
  BOOST_TEST(sum.item() == kLoss0 + kLoss1, tt::tolerance(1e-12));
  auto none = ag::cross_entropy(ce_logits(), ag::Indices({2, 0}), {.reduction = ag::Reduction::none});
  check_shape(none, "[2]");
  check_values(none.to_vector(), {kLoss0, kLoss1}, 1e-12);
}

BOOST_AUTO_TEST_CASE(cross_entropy_ignore_index_rows_do_not_count) {
  // row 1 ignored: the mean is over row 0 alone
  auto mean = ag::cross_entropy(ce_logits(), ag::Indices({2, -100}));
  BOOST_TEST(mean.item() == kLoss0, tt::tolerance(1e-12));
  auto none = ag::cross_entropy(ce_logits(), ag::Indices({2, 7}), {.ignore_index = 7, .reduction = ag::Reduction::none});
  check_values(none.to_vector(), {kLoss0, 0.0}, 1e-12);
  // everything ignored: 0, not NaN
  auto all = ag::cross_entropy(ce_logits(), ag::Indices({-100, -100}));
  BOOST_TEST(all.item() == 0.0);
}

BOOST_AUTO_TEST_CASE(cross_entropy_gradient_is_softmax_minus_onehot) {
  const std::vector<double> p0 = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  const double third = 1.0 / 3.0;
  {  // mean over N = 2: (softmax - onehot) / 2
    auto logits = ce_logits();
    ag::cross_entropy(logits, ag::Indices({2, 0})).backward();
    check_values(logits.grad().to_vector(),
                 {p0[0] / 2, p0[1] / 2, (p0[2] - 1) / 2, (third - 1) / 2, third / 2, third / 2}, 1e-12);
  }
  {  // sum: no division
    auto logits = ce_logits();
    ag::cross_entropy(logits, ag::Indices({2, 0}), {.reduction = ag::Reduction::sum}).backward();
    check_values(logits.grad().to_vector(), {p0[0], p0[1], p0[2] - 1, third - 1, third, third}, 1e-12);
  }
  {  // ignored row: zero gradient, and the mean divides by the one counted row
    auto logits = ce_logits();
    ag::cross_entropy(logits, ag::Indices({2, -100})).backward();
    check_values(logits.grad().to_vector(), {p0[0], p0[1], p0[2] - 1, 0, 0, 0}, 1e-12);
  }
}

// Note [cross-entropy memory]: cross_entropy keeps two numbers per row and recomputes the
// log-softmax from the logits; its loss and gradient are the bits of the formula applied to
// log_softmax's own output (float32, a wide vocabulary, masked classes, an all -inf row, an
// ignored row), as when the op kept the [rows, C] array.
BOOST_AUTO_TEST_CASE(cross_entropy_has_the_bits_of_its_log_softmax) {
  const std::size_t rows = 9, C = 1003;
  ag::Generator gen(4);
  ag::Tensor x = ag::randn({rows, C}, gen) * 4.0;
  std::vector<double> v = x.to_vector();
  const double inf = std::numeric_limits<double>::infinity();
  for (std::size_t c = 0; c < C; ++c) {
    if (c % 3 == 0) v[2 * C + c] = -inf;  // row 2: every third class masked
    v[5 * C + c] = -inf;                  // row 5: all -inf (its loss is inf, its gradient finite)
  }
  x = ag::tensor(v, {rows, C}, {ag::f32, true});
  const std::vector<std::int64_t> y = {0, 1002, 4, 17, -100, 9, 500, 3, 999};
  const ag::Tensor loss = ag::cross_entropy(x, ag::Indices(y, {rows}), {.reduction = ag::Reduction::sum});
  loss.backward();
  const ag::Tensor lsm = ag::log_softmax(x.detach(), -1);
  const float* l = lsm.array().ptr<float>();
  double total = 0;
  std::vector<float> grad(rows * C, 0.f);
  for (std::size_t r = 0; r < rows; ++r) {
    if (y[r] == -100) continue;
    total += -double(l[r * C + std::size_t(y[r])]);
    for (std::size_t c = 0; c < C; ++c)
      grad[r * C + c] = float(1.0 * ((c == std::size_t(y[r]) ? -1.0 : 0.0) - std::exp(double(l[r * C + c])) * -1.0)) + 0.f;
  }
  BOOST_TEST(loss.item() == double(float(total)));  // inf: row 5
  const ag::Tensor g = x.grad();  // held: array() refers into it
  BOOST_TEST(std::equal(grad.begin(), grad.end(), g.array().ptr<float>()));
}

BOOST_AUTO_TEST_CASE(mse_loss_values) {
  // (1-1)^2, (2-0)^2, (3-0)^2 = 0, 4, 9
  auto pred = ag::tensor({1, 2, 3}, {3}, {ag::f64, true});
  auto target = ag::tensor({1, 0, 0}, {3}, {ag::f64});
  BOOST_TEST(ag::mse_loss(pred, target).item() == 13.0 / 3.0, tt::tolerance(1e-12));
  BOOST_TEST(ag::mse_loss(pred, target, ag::Reduction::sum).item() == 13.0, tt::tolerance(1e-12));
  check_values(ag::mse_loss(pred, target, ag::Reduction::none).to_vector(), {0, 4, 9});
  ag::mse_loss(pred, target).backward();  // 2 (p - t) / 3
  check_values(pred.grad().to_vector(), {0, 4.0 / 3, 2.0}, 1e-12);
}

// ---- layer_norm ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(layer_norm_rows_have_zero_mean_unit_variance) {
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      auto x = ag::tensor({1, 2, 3, 4, -10, 0, 10, 20, 5, 5, 5, 6}, {3, 4}, {d});
      auto y = ag::layer_norm(x, ag::Tensor(), ag::Tensor());
      check_shape(y, "[3,4]");
      auto mu = ag::mean(y, {-1});
      auto var = ag::mean(ag::pow(y - ag::mean(y, {-1}, true), 2.0), {-1});  // biased
      check_values(mu.to_vector(), {0, 0, 0}, 1e-5);
      // var(y) = var(x) / (var(x) + eps): within 1e-4 of 1 for these rows (smallest var(x) = 0.1875)
      check_values(var.to_vector(), {1, 1, 1}, 1e-4);
    }
  }
}

BOOST_AUTO_TEST_CASE(layer_norm_applies_weight_and_bias) {
  auto x = ag::tensor({1, 2, 3, 4, -1, 0, 1, 5}, {2, 4}, {ag::f64});
  auto w = ag::tensor({1, 2, -1, 0.5}, {4}, {ag::f64});
  auto b = ag::tensor({0, 1, 2, 3}, {4}, {ag::f64});
  auto plain = ag::layer_norm(x, ag::Tensor(), ag::Tensor()).to_vector();
  auto y = ag::layer_norm(x, w, b).to_vector();
  const std::vector<double> wv = w.to_vector(), bv = b.to_vector();
  std::vector<double> want(plain.size());
  for (std::size_t i = 0; i < plain.size(); ++i) want[i] = plain[i] * wv[i % 4] + bv[i % 4];
  check_values(y, want, 1e-12);
  // row 0 = [1,2,3,4]: mean 2.5, var 1.25 -> xhat = (x - 2.5) / sqrt(1.25 + 1e-5)
  const double rs = 1 / std::sqrt(1.25 + 1e-5);
  check_values(std::vector<double>(plain.begin(), plain.begin() + 4), {-1.5 * rs, -0.5 * rs, 0.5 * rs, 1.5 * rs}, 1e-12);
}

// ---- matmul --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(matmul_2x3_by_3x2) {
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    auto a = ag::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, {d});
    auto b = ag::tensor({7, 8, 9, 10, 11, 12}, {3, 2}, {d});
    auto c = ag::matmul(a, b);
    check_shape(c, "[2,2]");
    BOOST_TEST((c.dtype() == d));
    // [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12]
    check_values(c.to_vector(), {58, 64, 139, 154}, 0);
  }
}

BOOST_AUTO_TEST_CASE(matmul_batched_by_matrix) {
  // batch 0 = [[1,2,3],[4,5,6]], batch 1 = its negation
  auto a = ag::tensor({1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6}, {2, 2, 3});
  auto b = ag::tensor({7, 8, 9, 10, 11, 12}, {3, 2});
  auto c = ag::matmul(a, b);
  check_shape(c, "[2,2,2]");
  check_values(c.to_vector(), {58, 64, 139, 154, -58, -64, -139, -154}, 0);
  // both batched, with broadcast batch dims: [2,1,2,3] x [3,3,2] -> [2,3,2,2]
  auto a4 = ag::reshape(a, {2, 1, 2, 3});
  auto b3 = ag::stack({b, b * 2.0, b * 0.0}, 0);
  auto c4 = ag::matmul(a4, b3);
  check_shape(c4, "[2,3,2,2]");
  check_values(ag::select(ag::select(c4, 0, 1), 0, 1).to_vector(), {-116, -128, -278, -308}, 0);
}

BOOST_AUTO_TEST_CASE(matmul_with_vectors_follows_numpy_shapes) {
  auto v = ag::tensor({1, 2, 3}, {3});
  auto a = ag::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  auto b = ag::tensor({7, 8, 9, 10, 11, 12}, {3, 2});
  auto vb = ag::matmul(v, b);  // [3] x [3,2] -> [2]
  check_shape(vb, "[2]");
  check_values(vb.to_vector(), {58, 64}, 0);
  auto av = ag::matmul(a, v);  // [2,3] x [3] -> [2]
  check_shape(av, "[2]");
  check_values(av.to_vector(), {14, 32}, 0);
  auto vv = ag::matmul(v, ag::tensor({4, 5, 6}, {3}));  // [3] x [3] -> []
  check_shape(vv, "[]");
  BOOST_TEST(vv.item() == 32.0);
  auto vB = ag::matmul(v, ag::stack({b, b}, 0));  // [3] x [2,3,2] -> [2,2]
  check_shape(vB, "[2,2]");
  check_values(vB.to_vector(), {58, 64, 58, 64}, 0);
}

// ---- element-wise --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(unary_activation_values) {
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      const double tol = tol_for(d);
      auto g = ag::gelu(ag::tensor({0, 1, -1, 2}, {4}, {d}), ag::GeluApproximate::tanh).to_vector();
      BOOST_TEST(g[0] == 0.0);
      BOOST_TEST(g[1] == 0.8411919906082768, tt::tolerance(tol));  // 0.5 (1 + tanh(sqrt(2/pi) 1.044715))
      BOOST_TEST(g[2] == -0.15880800939172324, tt::tolerance(tol));
      BOOST_TEST(g[3] == 1.954597694087775, tt::tolerance(tol));
      // the exact form, PyTorch's default: x Phi(x) (torch.nn.functional.gelu, float64)
      auto e = ag::gelu(ag::tensor({0, 1, -1, 2, -3}, {5}, {d})).to_vector();
      BOOST_TEST(e[0] == 0.0);
      BOOST_TEST(e[1] == 0.8413447460685429, tt::tolerance(tol));
      BOOST_TEST(e[2] == -0.15865525393145707, tt::tolerance(tol));
      BOOST_TEST(e[3] == 1.9544997361036416, tt::tolerance(tol));
      BOOST_TEST(e[4] == -0.00404969409489031, tt::tolerance(tol));
      BOOST_TEST(ag::sigmoid(ag::scalar(0, {d})).item() == 0.5);
      BOOST_TEST(ag::sigmoid(ag::scalar(2, {d})).item() == 1 / (1 + std::exp(-2.0)), tt::tolerance(tol));
      BOOST_TEST(ag::tanh(ag::scalar(0.5, {d})).item() == std::tanh(0.5), tt::tolerance(tol));
      check_values(ag::relu(ag::tensor({-1, 0, 2.5}, {3}, {d})).to_vector(), {0, 0, 2.5}, 0);
      // elu: x for x > 0, exp(x) - 1 otherwise (torch.nn.functional.elu, float64); alpha scales the negative side
      check_values(ag::elu(ag::tensor({-2, 0, 1.5}, {3}, {d})).to_vector(), {-0.8646647167633873, 0, 1.5}, tol);
      check_values(ag::elu(ag::tensor({-1, 2}, {2}, {d}), 0.5).to_vector(), {-0.31606027941427883, 2}, tol);
      check_values(ag::abs(ag::tensor({-1.5, 0, 2}, {3}, {d})).to_vector(), {1.5, 0, 2}, 0);
      check_values(ag::clamp(ag::tensor({-2, 0.5, 3, -1}, {4}, {d}), -1, 1).to_vector(), {-1, 0.5, 1, -1}, 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(cross_entropy_label_smoothing_and_weight_values) {
  // torch.nn.functional.cross_entropy(x, y, label_smoothing=0.1[, weight=w]) in float64, for
  // x = [[1, 2, 3], [0.5, -1, 2]], y = [2, 0], w = [1, 2, 0.5]: the mean divides by sum w[y_r].
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      const auto x = ag::tensor({1, 2, 3, 0.5, -1, 2}, {2, 3}, {d});
      const ag::Indices y({2, 0});
      const double tol = d == ag::f32 ? 1e-6 : 1e-14;
      BOOST_TEST(ag::cross_entropy(x, y, {.label_smoothing = 0.1}).item() == 1.1244586305507687, tt::tolerance(tol));
      BOOST_TEST(ag::cross_entropy(x, y, {.label_smoothing = 0.1, .weight = ag::tensor({1, 2, 0.5}, {3}, {d})}).item() ==
                     1.4730954654132835, tt::tolerance(tol));
      // label_smoothing = 0 and weights of 1 are the plain loss
      BOOST_TEST(ag::cross_entropy(x, y, {.weight = ag::tensor({1, 1, 1}, {3}, {d})}).item() == ag::cross_entropy(x, y).item(),
                 tt::tolerance(tol));
    }
  }
  const auto x = ag::tensor({1, 2, 3}, {1, 3}, {ag::f64});
  BOOST_CHECK_THROW(ag::cross_entropy(x, ag::Indices({0}), {.label_smoothing = 1.5}), ag::Error);
  BOOST_CHECK_THROW(ag::cross_entropy(x, ag::Indices({0}), {.weight = ag::tensor({1, 1}, {2}, {ag::f64})}), ag::Error);
}

BOOST_AUTO_TEST_CASE(nan_passes_through_relu_and_clamp) {
  // As PyTorch: relu(NaN) = NaN and clamp(NaN) = NaN, so a diverged run is not hidden; relu's
  // gradient at NaN passes dy (threshold_backward: x <= 0 ? 0 : dy), clamp's is 0.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      auto x = ag::tensor({nan, -1, 2}, {3}, {d, true});
      const auto y = ag::relu(x).to_vector();
      BOOST_TEST(std::isnan(y[0]));
      BOOST_TEST(y[1] == 0.0);
      BOOST_TEST(y[2] == 2.0);
      ag::sum(ag::relu(x) * 3.0).backward();
      check_values(x.grad().to_vector(), {3, 0, 3}, 0);
      BOOST_TEST(std::isnan(ag::clamp(x, -1, 1).to_vector()[0]));
    }
  }
}

BOOST_AUTO_TEST_CASE(pow_gradients_at_a_zero_base) {
  // x^0 is the constant 1, also at x = 0: its derivative is 0, not 0 * 0^-1 = NaN (PyTorch: 0).
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      auto x = ag::tensor({0, 2}, {2}, {d, true});
      ag::sum(ag::pow(x, 0.0)).backward();
      check_values(x.grad().to_vector(), {0, 0}, 0);
      x.zero_grad();
      auto e = ag::tensor({0, 0}, {2}, {d, true});
      ag::sum(ag::pow(x, e)).backward();
      check_values(x.grad().to_vector(), {0, 0}, 0);
      // d(a^b)/db = a^b log a: at a = 0 and b >= 0 PyTorch takes 0 (not 0 * -inf = NaN)
      auto a = ag::tensor({0, 0, 2}, {3}, {d, true});
      auto b = ag::tensor({0, 2, 3}, {3}, {d, true});
      ag::sum(ag::pow(a, b)).backward();
      check_values(b.grad().to_vector(), {0, 0, 8 * std::log(2.0)}, d == ag::f32 ? 1e-6 : 1e-12);
      check_values(a.grad().to_vector(), {0, 0, 12}, d == ag::f32 ? 1e-6 : 1e-12);  // b a^(b-1): 0 (b = 0), 2 * 0, 3 * 4
    }
  }
}

BOOST_AUTO_TEST_CASE(relu_abs_clamp_gradients) {
  auto x = ag::tensor({-2, 0, 0.5, 3}, {4}, {ag::f64, true});
  ag::sum(ag::relu(x)).backward();
  check_values(x.grad().to_vector(), {0, 0, 1, 1}, 0);  // relu'(0) = 0
  x.zero_grad();
  ag::sum(ag::abs(x)).backward();
  check_values(x.grad().to_vector(), {-1, 0, 1, 1}, 0);  // sign, 0 at 0
  x.zero_grad();
  ag::sum(ag::clamp(x, -1, 0.5)).backward();
  check_values(x.grad().to_vector(), {0, 1, 1, 0}, 0);  // 1 inside [lo, hi] (inclusive)
}

BOOST_AUTO_TEST_CASE(binary_and_scalar_arithmetic_values) {
  auto a = ag::tensor({1, 2, 4}, {3}, {ag::f64});
  auto b = ag::tensor({2, 2, 2}, {3}, {ag::f64});
  check_values((a + b).to_vector(), {3, 4, 6}, 0);
  check_values((a - b).to_vector(), {-1, 0, 2}, 0);
  check_values((a * b).to_vector(), {2, 4, 8}, 0);
  check_values((a / b).to_vector(), {0.5, 1, 2}, 0);
  check_values(ag::pow(a, b).to_vector(), {1, 4, 16}, 1e-12);
  check_values((10.0 - a).to_vector(), {9, 8, 6}, 0);
  check_values((8.0 / a).to_vector(), {8, 4, 2}, 0);
  check_values((-a).to_vector(), {-1, -2, -4}, 0);
  check_values(ag::pow(a, 0.5).to_vector(), {1, std::sqrt(2.0), 2}, 1e-12);
  check_values(ag::sqrt(a).to_vector(), {1, std::sqrt(2.0), 2}, 1e-12);
  check_values(ag::log(ag::exp(a)).to_vector(), {1, 2, 4}, 1e-12);
}

// ---- reductions ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(max_over_axis_and_its_argmax_gradient) {
  auto x = ag::tensor({1, 5, 3, 7, 2, 7}, {2, 3}, {ag::f64, true});
  auto m1 = ag::max(x, 1);
  check_shape(m1, "[2]");
  check_values(m1.to_vector(), {5, 7}, 0);
  check_shape(ag::max(x, 1, true), "[2,1]");
  auto m0 = ag::max(x, 0);
  check_values(m0.to_vector(), {7, 5, 7}, 0);
  BOOST_TEST(ag::max(x).item() == 7.0);

  ag::sum(m1).backward();  // row 1 has a tie: the first maximum gets the gradient
  check_values(x.grad().to_vector(), {0, 1, 0, 1, 0, 0}, 0);
  x.zero_grad();
  m0 = ag::max(x, -2);
  m0.backward(ag::tensor({10, 20, 30}, {3}, {ag::f64}));
  check_values(x.grad().to_vector(), {0, 20, 0, 10, 0, 30}, 0);
  x.zero_grad();
  ag::max(x).backward();
  check_values(x.grad().to_vector(), {0, 0, 0, 1, 0, 0}, 0);
}

// split_heads and merge_heads equal their composed forms bit for bit, forward and backward.
BOOST_AUTO_TEST_CASE(split_and_merge_heads_equal_their_composed_forms) {
  ag::Generator gen(8);
  const std::size_t B = 2, T = 5, H = 3, d = 4, C = 3 * H * d + 2;
  const ag::Tensor x0 = ag::randn({B, T, C}, gen), w = ag::randn({B, H, T, d}, gen), w_merged = ag::randn({B, T, H * d}, gen);
  auto composed_split = [&](const ag::Tensor& x, std::size_t offset) {
    const auto b = std::int64_t(B), t = std::int64_t(T), h = std::int64_t(H), e = std::int64_t(d);
    return ag::permute(ag::reshape(ag::slice(x, -1, std::int64_t(offset), std::int64_t(offset + H * d)), {b, t, h, e}), {0, 2, 1, 3});
  };
  auto composed_merge = [&](const ag::Tensor& o) {
    return ag::reshape(ag::permute(o, {0, 2, 1, 3}), {std::int64_t(B), std::int64_t(T), std::int64_t(H * d)});
  };
  std::vector<double> out[2], grad[2];  // [0] composed, [1] fused
  for (bool fused : {true, false}) {
    ag::Tensor x = x0.detach();
    x.requires_grad_();
    ag::Tensor merged;
    ag::Tensor loss;
    for (std::size_t offset : {std::size_t(1), H * d + 1, 2 * H * d + 2}) {
      const ag::Tensor heads = fused ? ag::split_heads(x, H, d, offset) : composed_split(x, offset);
      merged = fused ? ag::merge_heads(heads * w) : composed_merge(heads * w);
      const ag::Tensor term = ag::sum(merged * w_merged);
      loss = loss.defined() ? loss + term : term;
    }
    loss.backward();
    out[fused] = merged.to_vector();
    grad[fused] = x.grad().to_vector();
    if (!fused) {
      BOOST_TEST((out[1] == out[0]));
      BOOST_TEST((grad[1] == grad[0]));
      check_shape(merged, "[2,5,12]");
    }
  }
}

// A view's gradient into a new slot (slice with step 1, select, split_heads: the rest zeroed, the
// view's part written) is bit for bit the gradient added into zeros: +0 outside the view, 0 + g
// inside (a -0 becomes +0, NaN stays NaN); the same for a strided slice (added into zeros) and for
// two views of one tensor (through a product with g: the second adds into the first's slot). The
// reference puts each upstream entry where the same view of the element indices says it came from.
BOOST_AUTO_TEST_CASE(view_gradient_into_a_new_slot_is_zeros_plus_the_view) {
  const ag::Shape shape{2, 3, 8};
  const std::size_t n = 48;
  const ag::Tensor index = ag::reshape(ag::arange(0, double(n), 1, {ag::f64}), {2, 3, 8});
  const double pattern[] = {-0.0, 1.5, std::numeric_limits<double>::quiet_NaN(), -2.25, 0.0, 3.0, -7.0};
  using View = std::function<ag::Tensor(const ag::Tensor&)>;
  const std::vector<std::pair<std::string, std::vector<View>>> cases = {
      {"slice axis 2", {[](const ag::Tensor& x) { return ag::slice(x, 2, 2, 7); }}},
      {"slice axis 0", {[](const ag::Tensor& x) { return ag::slice(x, 0, 1, 2); }}},
      {"slice step 2", {[](const ag::Tensor& x) { return ag::slice(x, 1, 0, 3, 2); }}},
      {"select", {[](const ag::Tensor& x) { return ag::select(x, 1, 2); }}},
      {"split_heads", {[](const ag::Tensor& x) { return ag::split_heads(x, 2, 3, 1); }}},
      {"split_heads q and k", {[](const ag::Tensor& x) { return ag::split_heads(x, 1, 4, 0); },
                               [](const ag::Tensor& x) { return ag::split_heads(x, 1, 4, 4); }}},
      {"two overlapping slices", {[](const ag::Tensor& x) { return ag::slice(x, 2, 0, 5); },
                                  [](const ag::Tensor& x) { return ag::slice(x, 2, 3, 8); }}},
  };
  for (const auto& [name, views] : cases) {
    ag::Tensor x = ag::zeros(shape, {ag::f64, true});
    std::vector<double> expected(n, 0.0);
    ag::Tensor loss;
    std::size_t k = 0;
    for (const View& view : views) {
      const ag::Tensor from = view(index);  // which element of x each entry of the view reads
      std::vector<double> g(from.numel());
      for (auto& v : g) v = pattern[k++ % 7];
      const std::vector<double> at = from.to_vector();
      for (std::size_t j = 0; j < g.size(); ++j) expected[std::size_t(at[j])] += g[j];
      const ag::Tensor upstream = ag::tensor(g, from.shape(), {ag::f64});
      if (views.size() == 1) view(x).backward(upstream);  // the view's gradient is g itself, -0 and NaN included
      else loss = loss.defined() ? loss + ag::sum(view(x) * upstream) : ag::sum(view(x) * upstream);
    }
    if (loss.defined()) loss.backward();
    const std::vector<double> got = x.grad().to_vector();
    bool same = true;
    for (std::size_t i = 0; i < n; ++i) same = same && (std::isnan(expected[i]) ? std::isnan(got[i]) : std::memcmp(&got[i], &expected[i], sizeof(double)) == 0);
    BOOST_TEST(same, name);
  }
}

// An element-wise rule adds into a new gradient slot block by block, each block zeroed just
// before (ops_elementwise.cpp); into a slot that holds a gradient it adds over the whole. The two
// give the same bits: the op's gradient into a new slot, and into a slot of exact zeros left by an
// earlier backward of an empty slice of x (a leaf's gradient accumulates over backward calls; the
// slice's rule zeroes the slot without any element-wise rule). Sizes that end mid-block and
// mid-vector, on 1 and 2 threads, with NaN, infinities and subnormals upstream.
BOOST_AUTO_TEST_CASE(elementwise_gradient_into_a_new_slot_has_the_same_bits) {
  using Op = std::function<ag::Tensor(const ag::Tensor&, const ag::Tensor&)>;
  const std::vector<std::pair<std::string, Op>> ops = {
      {"relu", [](const ag::Tensor& x, const ag::Tensor&) { return ag::relu(x); }},
      {"gelu", [](const ag::Tensor& x, const ag::Tensor&) { return ag::gelu(x); }},
      {"tanh", [](const ag::Tensor& x, const ag::Tensor&) { return ag::tanh(x); }},
      {"exp", [](const ag::Tensor& x, const ag::Tensor&) { return ag::exp(x); }},
      {"mul_scalar", [](const ag::Tensor& x, const ag::Tensor&) { return x * 0.3; }},
      {"mul", [](const ag::Tensor& x, const ag::Tensor& w) { return x * w; }},
      {"sub (second operand)", [](const ag::Tensor& x, const ag::Tensor& w) { return w - x; }},
  };
  const double specials[] = {-0.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(), 1e-310, 3e-39};
  for (ag::Dtype dtype : {ag::f32, ag::f64})
    for (std::size_t threads : {1, 2}) {
      ag::set_num_threads(threads);
      const std::size_t n = 3 * 4096 + 77;
      ag::Generator gen(11);
      const ag::Tensor x0 = ag::randn({n}, gen, {dtype}), w = ag::randn({n}, gen, {dtype});
      std::vector<double> g = ag::randn({n}, gen, {ag::f64}).to_vector();
      for (std::size_t i = 0; i < n; i += 97) g[i] = specials[(i / 97) % 6];
      const ag::Tensor upstream = ag::tensor(g, {n}, {dtype});
      for (const auto& [name, op] : ops) {
        std::vector<std::vector<double>> grads;
        for (int variant = 0; variant < 2; ++variant) {  // 0: into a new slot; 1: into zeros already there
          ag::Tensor x = x0.detach();
          x.requires_grad_();
          if (variant == 1) ag::sum(ag::slice(x, 0, 0, 0)).backward();
          ag::sum(op(x, w) * upstream).backward();
          grads.push_back(x.grad().to_vector());
        }
        bool same = true;
        for (std::size_t i = 0; i < n; ++i)
          same = same && (std::isnan(grads[0][i]) ? std::isnan(grads[1][i]) : std::memcmp(&grads[0][i], &grads[1][i], sizeof(double)) == 0);
        BOOST_TEST(same, name << " " << (dtype == ag::f32 ? "f32" : "f64") << ", " << threads << " threads");
      }
    }
  ag::set_num_threads(0);
}

BOOST_AUTO_TEST_CASE(sum_and_mean_values_and_keepdim_shapes) {
  auto x = iota({2, 3, 4}, ag::f64);  // 0..23
  BOOST_TEST(ag::sum(x).item() == 276.0);
  BOOST_TEST(ag::mean(x).item() == 11.5);
  check_shape(ag::sum(x), "[]");
  check_shape(ag::sum(x, {1}), "[2,4]");
  check_shape(ag::sum(x, {1}, true), "[2,1,4]");
  check_shape(ag::sum(x, {0, 2}), "[3]");
  check_shape(ag::sum(x, {0, 2}, true), "[1,3,1]");
  check_shape(ag::mean(x, {-1}, true), "[2,3,1]");
  check_shape(ag::mean(x, {-1}), "[2,3]");
  // sum over axis 1: element [i, k] = sum_j (12 i + 4 j + k) = 36 i + 12 + 3 k
  check_values(ag::sum(x, {1}).to_vector(), {12, 15, 18, 21, 48, 51, 54, 57}, 0);
  // mean over the last axis: 4 (3 i + j) + 1.5
  check_values(ag::mean(x, {-1}).to_vector(), {1.5, 5.5, 9.5, 13.5, 17.5, 21.5}, 0);
  // sum over axes 0 and 2: sum_{i,k} (12 i + 4 j + k) = 8 (4 j) + 4*12 + 2*6 = 32 j + 60
  check_values(ag::sum(x, {0, 2}).to_vector(), {60, 92, 124}, 0);
}

BOOST_AUTO_TEST_CASE(mean_gradient_is_one_over_count) {
  auto x = ag::zeros({2, 4}, {ag::f64, true});
  ag::sum(ag::mean(x, {1})).backward();
  check_values(x.grad().to_vector(), std::vector<double>(8, 0.25), 0);
}

// ---- shape ops -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(reshape_with_minus_one) {
  auto x = iota({6});
  auto y = ag::reshape(x, {-1, 2});
  check_shape(y, "[3,2]");
  check_values(y.to_vector(), arange_values(6), 0);
  check_shape(x.reshape({2, -1}), "[2,3]");
  check_shape(ag::reshape(iota({1}), {}), "[]");
  check_shape(ag::flatten(iota({2, 3, 4}), 1), "[2,12]");
  check_shape(ag::unsqueeze(x, 0), "[1,6]");
  check_shape(ag::unsqueeze(x, -1), "[6,1]");
  check_shape(ag::squeeze(ag::reshape(x, {1, 6}), 0), "[6]");
}

BOOST_AUTO_TEST_CASE(transpose_and_permute_values) {
  auto x = iota({2, 3});  // [[0,1,2],[3,4,5]]
  auto t = ag::transpose(x, 0, 1);
  check_shape(t, "[3,2]");
  check_values(t.to_vector(), {0, 3, 1, 4, 2, 5}, 0);
  check_values(x.transpose(-1, -2).to_vector(), {0, 3, 1, 4, 2, 5}, 0);

  auto z = iota({2, 3, 4});  // z[i,j,k] = 12 i + 4 j + k
  auto p = ag::permute(z, {2, 0, 1});  // p[k,i,j] = z[i,j,k]
  check_shape(p, "[4,2,3]");
  const auto pv = p.to_vector();
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j) BOOST_TEST(pv[k * 6 + i * 3 + j] == double(12 * i + 4 * j + k));
}

BOOST_AUTO_TEST_CASE(slice_with_negative_start_and_step_two) {
  auto x = iota({10}, ag::f64, true);
  auto s = ag::slice(x, 0, -7, 10, 2);  // Python x[-7:10:2] = x[3:10:2] = [3,5,7,9]
  check_shape(s, "[4]");
  check_values(s.to_vector(), {3, 5, 7, 9}, 0);
  check_values(ag::slice(x, 0, -3, 100).to_vector(), {7, 8, 9}, 0);  // stop clipped
  check_shape(ag::slice(x, 0, 5, 2), "[0]");                          // empty
  ag::sum(s).backward();  // the gradient lands on the picked elements only
  check_values(x.grad().to_vector(), {0, 0, 0, 1, 0, 1, 0, 1, 0, 1}, 0);

  auto m = iota({3, 4});
  auto cols = ag::slice(m, 1, 1, 4, 2);  // columns 1 and 3
  check_shape(cols, "[3,2]");
  check_values(cols.to_vector(), {1, 3, 5, 7, 9, 11}, 0);
}

BOOST_AUTO_TEST_CASE(select_values) {
  auto x = iota({2, 3}, ag::f64, true);
  auto row = ag::select(x, 0, 1);
  check_shape(row, "[3]");
  check_values(row.to_vector(), {3, 4, 5}, 0);
  auto col = ag::select(x, 1, -1);
  check_shape(col, "[2]");
  check_values(col.to_vector(), {2, 5}, 0);
  ag::sum(col * 2.0).backward();
  check_values(x.grad().to_vector(), {0, 0, 2, 0, 0, 2}, 0);
}

BOOST_AUTO_TEST_CASE(concat_and_stack_values_and_shapes) {
  auto a = iota({2, 2}, ag::f64, true);  // [[0,1],[2,3]]
  auto b = ag::tensor({10, 11, 12, 13, 14, 15}, {2, 3}, {ag::f64, true});
  auto c1 = ag::concat({a, b}, 1);
  check_shape(c1, "[2,5]");
  check_values(c1.to_vector(), {0, 1, 10, 11, 12, 2, 3, 13, 14, 15}, 0);
  auto c0 = ag::concat({a, a * 10.0}, -2);
  check_shape(c0, "[4,2]");
  check_values(c0.to_vector(), {0, 1, 2, 3, 0, 10, 20, 30}, 0);
  // gradient: each input gets its block back
  c1.backward(ag::tensor({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {2, 5}, {ag::f64}));
  check_values(a.grad().to_vector(), {1, 2, 6, 7}, 0);
  check_values(b.grad().to_vector(), {3, 4, 5, 8, 9, 10}, 0);

  auto u = ag::tensor({1, 2}, {2}), v = ag::tensor({3, 4}, {2}), w = ag::tensor({5, 6}, {2});
  auto s0 = ag::stack({u, v, w}, 0);
  check_shape(s0, "[3,2]");
  check_values(s0.to_vector(), {1, 2, 3, 4, 5, 6}, 0);
  auto s1 = ag::stack({u, v, w}, -1);
  check_shape(s1, "[2,3]");
  check_values(s1.to_vector(), {1, 3, 5, 2, 4, 6}, 0);
}

BOOST_AUTO_TEST_CASE(expand_values) {
  auto x = ag::tensor({1, 2, 3}, {3, 1}, {ag::f64, true});
  auto y = ag::expand(x, {3, 4});
  check_shape(y, "[3,4]");
  check_values(y.to_vector(), {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, 0);
  ag::sum(y).backward();
  check_values(x.grad().to_vector(), {4, 4, 4}, 0);
  auto z = ag::expand(ag::tensor({1, 2}, {2}), {2, 2});
  check_values(z.to_vector(), {1, 2, 1, 2}, 0);
}

// ---- embedding, masking --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(embedding_rows_and_scatter_add_gradient) {
  auto weight = iota({4, 2}, ag::f64, true);  // row r = [2r, 2r+1]
  auto out = ag::embedding(weight, ag::Indices({1, 3, 1}));
  check_shape(out, "[3,2]");
  check_values(out.to_vector(), {2, 3, 6, 7, 2, 3}, 0);
  // upstream [1,2] for both occurrences of id 1: its row gets 2 * [1,2]
  out.backward(ag::tensor({1, 2, 5, 6, 1, 2}, {3, 2}, {ag::f64}));
  check_values(weight.grad().to_vector(), {0, 0, 2, 4, 0, 0, 5, 6}, 0);

  auto grid = ag::embedding(weight, ag::Indices({0, 1, 2, 3}, {2, 2}));
  check_shape(grid, "[2,2,2]");
  check_values(grid.to_vector(), arange_values(8), 0);
}

BOOST_AUTO_TEST_CASE(masked_fill_values_and_gradient) {
  auto x = iota({2, 3}, ag::f64, true);
  auto mask = ag::tensor({0, 1, 0}, {1, 3});  // broadcast over rows; any dtype
  auto y = ag::masked_fill(x, mask, -1e9);
  check_values(y.to_vector(), {0, -1e9, 2, 3, -1e9, 5}, 0);
  ag::sum(y).backward();
  check_values(x.grad().to_vector(), {1, 0, 1, 1, 0, 1}, 0);
}

BOOST_AUTO_TEST_CASE(masked_fill_with_a_mask) {
  auto x = iota({2, 3}, ag::f64, true);
  const ag::Mask mask({1, 3}, {0, 1, 0});  // broadcast over rows
  auto y = ag::masked_fill(x, mask, -1e9);
  check_values(y.to_vector(), {0, -1e9, 2, 3, -1e9, 5}, 0);
  ag::sum(y).backward();
  check_values(x.grad().to_vector(), {1, 0, 1, 1, 0, 1}, 0);
  BOOST_CHECK_THROW(ag::masked_fill(x, ag::Mask({1, 2}, {0, 1}), 0.0), ag::Error);
  BOOST_CHECK_THROW(ag::masked_fill(x, ag::Mask(), 0.0), ag::Error);
}

// ag::Mask: PyTorch's bool masks (true = blocked).
BOOST_AUTO_TEST_CASE(mask_values_or_reshape_additive) {
  const ag::Mask row({1, 3}, {0, 1, 0}), col({2, 1}, {1, 0});
  const ag::Mask both = row | col;  // broadcast to [2, 3]
  BOOST_TEST(ag::shape_str(both.shape()) == "[2,3]");
  std::vector<int> got;
  for (std::size_t i = 0; i < both.numel(); ++i) got.push_back(both[i]);
  BOOST_TEST(got == std::vector<int>({1, 1, 1, 0, 1, 0}), tt::per_element());
  BOOST_TEST(both.count() == 4u);
  BOOST_TEST(ag::shape_str(both.reshape({3, 2}).shape()) == "[3,2]");
  BOOST_CHECK_THROW(both.reshape({4}), ag::Error);
  BOOST_CHECK_THROW(ag::Mask({2, 2}, {0, 1}), ag::Error);
  BOOST_CHECK_THROW(row | ag::Mask({2, 2}, {0, 1, 1, 0}), ag::Error);
  BOOST_TEST((ag::Mask() | row).count() == 1u);  // undefined: no mask
  const double inf = std::numeric_limits<double>::infinity();
  check_values(row.additive(ag::f64).to_vector(), {0, -inf, 0}, 0);
  BOOST_TEST(row.additive(ag::f32).dtype() == ag::f32);
  const ag::Mask nz = ag::Mask::nonzero(ag::tensor({0, 2, -1, 0}, {2, 2}));
  BOOST_TEST(nz.count() == 2u);
  BOOST_TEST(!nz[0]);
  BOOST_TEST(nz[1]);
  BOOST_TEST(ag::Mask::full({2, 2}, true).count() == 4u);
  std::ostringstream os;
  os << both;
  BOOST_TEST(os.str() == "Mask[2,3] 4 of 6 blocked");
}

BOOST_AUTO_TEST_CASE(where_values_and_gradient) {
  auto cond = ag::tensor({1, 0, 1}, {3});
  auto a = ag::tensor({1, 2, 3}, {3}, {ag::f64, true});
  auto b = ag::tensor({10, 20, 30}, {3}, {ag::f64, true});
  auto y = ag::where(cond, a, b);
  check_values(y.to_vector(), {1, 20, 3}, 0);
  ag::sum(y).backward();
  check_values(a.grad().to_vector(), {1, 0, 1}, 0);
  check_values(b.grad().to_vector(), {0, 1, 0}, 0);

  auto s = ag::tensor({-5}, {1}, {ag::f64, true});  // broadcast operand
  ag::sum(ag::where(cond, a, s)).backward();
  check_values(s.grad().to_vector(), {1}, 0);
}

// ---- dropout -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(dropout_is_identity_with_p_zero_or_in_eval) {
  ag::Generator gen(1);
  auto x = ag::tensor({1, 2, 3, 4}, {4});
  check_values(ag::dropout(x, 0.0, true, gen).to_vector(), {1, 2, 3, 4}, 0);
  check_values(ag::dropout(x, 0.5, false, gen).to_vector(), {1, 2, 3, 4}, 0);
}

BOOST_AUTO_TEST_CASE(dropout_zeroes_about_p_and_scales_the_rest) {
  const double p = 0.3;
  const std::size_t n = 100'000;
  ag::Generator gen(42);
  auto x = ag::ones({n}, {ag::f32, true});
  auto y = ag::dropout(x, p, true, gen);
  std::size_t zeros = 0;
  bool kept_scaled = true;
  for (double v : y.to_vector()) {
    if (v == 0.0) ++zeros;
    else kept_scaled = kept_scaled && std::abs(v - 1 / (1 - p)) < 1e-6;
  }
  const double frac = double(zeros) / double(n);
  BOOST_TEST_MESSAGE("dropped fraction " << frac);
  BOOST_TEST(std::abs(frac - p) < 0.01);  // ~7 standard deviations
  BOOST_TEST(kept_scaled);
  // the gradient is the mask: 0 where dropped, 1/(1-p) where kept
  ag::sum(y).backward();
  BOOST_TEST(x.grad().to_vector() == y.to_vector(), tt::per_element());
}

BOOST_AUTO_TEST_CASE(dropout_same_seed_same_mask) {
  auto x = ag::ones({1000});
  ag::Generator g1(5), g2(5), g3(6);
  auto a = ag::dropout(x, 0.5, true, g1).to_vector();
  auto b = ag::dropout(x, 0.5, true, g2).to_vector();
  auto c = ag::dropout(x, 0.5, true, g3).to_vector();
  BOOST_TEST(a == b, tt::per_element());
  BOOST_TEST((a != c));
}

// ---- creation ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(creation_functions_values_shapes_dtypes) {
  auto z = ag::zeros({2, 3});
  check_shape(z, "[2,3]");
  BOOST_TEST((z.dtype() == ag::f32));
  BOOST_TEST(!z.requires_grad());
  BOOST_TEST(z.is_leaf());
  check_values(z.to_vector(), std::vector<double>(6, 0.0), 0);
  auto o = ag::ones({4}, {ag::f64, true});
  BOOST_TEST((o.dtype() == ag::f64));
  BOOST_TEST(o.requires_grad());
  check_values(o.to_vector(), std::vector<double>(4, 1.0), 0);
  check_values(ag::full({2, 2}, -2.5).to_vector(), std::vector<double>(4, -2.5), 0);
  auto s = ag::scalar(3.5);
  check_shape(s, "[]");
  BOOST_TEST(s.numel() == 1u);
  BOOST_TEST(s.item() == 3.5);
  check_values(ag::zeros_like(o).to_vector(), std::vector<double>(4, 0.0), 0);
  BOOST_TEST((ag::zeros_like(o).dtype() == ag::f64));

  check_values(ag::arange(0, 5).to_vector(), {0, 1, 2, 3, 4}, 0);
  check_values(ag::arange(1, 2, 0.25).to_vector(), {1, 1.25, 1.5, 1.75}, 0);
  check_values(ag::arange(5, 0, -2).to_vector(), {5, 3, 1}, 0);
  check_shape(ag::arange(3, 3), "[0]");

  auto t = ag::tensor({1, 2, 3, 4, 5, 6}, {3, 2}, {ag::f64});
  check_shape(t, "[3,2]");
  check_values(t.to_vector(), {1, 2, 3, 4, 5, 6}, 0);
  BOOST_TEST(t.flat(3) == 4.0);
  BOOST_TEST(t.size(0) == 3u);
  BOOST_TEST(t.size(-1) == 2u);
  BOOST_TEST(t.dim() == 2u);
}

BOOST_AUTO_TEST_CASE(randn_is_seeded_and_standard_normal) {
  ag::Generator g1(123), g2(123), g3(124);
  auto a = ag::randn({100'000}, g1, {ag::f64});
  auto b = ag::randn({100'000}, g2, {ag::f64});
  auto c = ag::randn({100'000}, g3, {ag::f64});
  const auto av = a.to_vector();
  BOOST_TEST((av == b.to_vector()));   // same seed, same values
  BOOST_TEST((av != c.to_vector()));   // different seed, different values
  double mean = 0, sq = 0;
  for (double v : av) mean += v;
  mean /= double(av.size());
  for (double v : av) sq += (v - mean) * (v - mean);
  const double sd = std::sqrt(sq / double(av.size()));
  BOOST_TEST_MESSAGE("randn mean " << mean << " std " << sd);
  BOOST_TEST(std::abs(mean) < 0.02);
  BOOST_TEST(std::abs(sd - 1.0) < 0.02);

  ag::Generator g4(9);
  auto u = ag::rand({10'000}, g4);
  for (double v : u.to_vector()) BOOST_TEST_REQUIRE((v >= 0.0 && v < 1.0));
}

BOOST_AUTO_TEST_SUITE_END()
