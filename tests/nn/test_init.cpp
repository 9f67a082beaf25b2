// Initialisers: sample statistics against each distribution's formula, orthogonality, the
// spectral radius of scaled_recurrent_, fans as PyTorch computes them, and errors.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/expect_error.hpp"
#include "ag/ag.hpp"
#include "nn/init.hpp"

namespace {

struct Stats {
  double mean, std, min, max;
};
Stats stats(const ag::Tensor& t) {
  const auto v = t.to_vector();
  double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
  for (double x : v) {
    s += x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  const double mean = s / double(v.size());
  for (double x : v) s2 += (x - mean) * (x - mean);
  return {mean, std::sqrt(s2 / double(v.size())), lo, hi};
}

void check_std(const char* what, const ag::Tensor& t, double want_std) {
  const Stats s = stats(t);
  BOOST_TEST_INFO(what << " (" << ag::dtype_name(t.dtype()) << "): sample std " << s.std << ", formula " << want_std
                       << ", mean " << s.mean);
  BOOST_TEST(std::abs(s.std / want_std - 1.0) < 0.05);
  BOOST_TEST(std::abs(s.mean) < 0.05 * want_std);
}

// Row-major matrix helpers in double.
using Mat = std::vector<double>;
Mat gram_cols(const Mat& w, std::size_t rows, std::size_t cols) {  // W^T W [cols, cols]
  Mat g(cols * cols, 0.0);
  for (std::size_t i = 0; i < cols; ++i)
    for (std::size_t j = 0; j < cols; ++j)
      for (std::size_t k = 0; k < rows; ++k) g[i * cols + j] += w[k * cols + i] * w[k * cols + j];
  return g;
}
Mat gram_rows(const Mat& w, std::size_t rows, std::size_t cols) {  // W W^T [rows, rows]
  Mat g(rows * rows, 0.0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < rows; ++j)
      for (std::size_t k = 0; k < cols; ++k) g[i * rows + j] += w[i * cols + k] * w[j * cols + k];
  return g;
}
double max_dev_from_scaled_identity(const Mat& g, std::size_t n, double scale2) {
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) worst = std::max(worst, std::abs(g[i * n + j] - (i == j ? scale2 : 0.0)));
  return worst;
}
Mat matvec(const Mat& w, std::size_t rows, std::size_t cols, const Mat& v) {
  Mat out(rows, 0.0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t k = 0; k < cols; ++k) out[i] += w[i * cols + k] * v[k];
  return out;
}
Mat matvec_t(const Mat& w, std::size_t rows, std::size_t cols, const Mat& v) {  // W^T v
  Mat out(cols, 0.0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t k = 0; k < cols; ++k) out[k] += w[i * cols + k] * v[i];
  return out;
}
double norm(const Mat& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// The largest singular value of W [rows, cols], by power iteration on W^T W.
double largest_singular_value(const Mat& w, std::size_t rows, std::size_t cols, ag::Generator& gen) {
  Mat v(cols);
  for (double& x : v) x = gen.normal();
  double sigma = 0;
  for (int it = 0; it < 200; ++it) {
    const double n = norm(v);
    for (double& x : v) x /= n;
    const Mat wv = matvec(w, rows, cols, v);
    sigma = norm(wv);
    v = matvec_t(w, rows, cols, wv);
  }
  return sigma;
}

// The spectral radius of a square W, as lim ||W^k v||^(1/k): k = 50 steps of the recurrence h <- W h.
double growth_rate(const Mat& w, std::size_t n, ag::Generator& gen, int k = 50) {
  Mat v(n);
  for (double& x : v) x = gen.normal();
  double log_growth = 0;
  for (int it = 0; it < k; ++it) {
    Mat next = matvec(w, n, n, v);
    const double r = norm(next) / norm(v);
    log_growth += std::log(r);
    v = std::move(next);
    const double nv = norm(v);
    for (double& x : v) x /= nv;  // keep it O(1); the growth is accumulated in log_growth
  }
  return std::exp(log_growth / k);
}

const ag::Dtype kDtypes[] = {ag::f32, ag::f64};

}  // namespace

BOOST_AUTO_TEST_SUITE(init)

BOOST_AUTO_TEST_CASE(fans_as_pytorch) {
  const nn::Fans lin = nn::calculate_fans(ag::zeros({128, 64}));  // Linear weight [out, in]
  BOOST_TEST(lin.fan_in == 64);
  BOOST_TEST(lin.fan_out == 128);
  const nn::Fans conv = nn::calculate_fans(ag::zeros({8, 4, 3, 3}));  // conv [out, in, kh, kw]
  BOOST_TEST(conv.fan_in == 4 * 9);
  BOOST_TEST(conv.fan_out == 8 * 9);
  expect_error([] { nn::calculate_fans(ag::zeros({5})); }, {"calculate_fans", "at least 2 dimensions", "[5]"});
  BOOST_TEST(std::abs(nn::calculate_gain(nn::Nonlinearity::relu) - std::sqrt(2.0)) < 1e-15);
  BOOST_TEST(std::abs(nn::calculate_gain(nn::Nonlinearity::tanh) - 5.0 / 3.0) < 1e-15);
  BOOST_TEST(std::abs(nn::calculate_gain(nn::Nonlinearity::leaky_relu, 0.2) - std::sqrt(2.0 / 1.04)) < 1e-15);
  BOOST_TEST(nn::calculate_gain(nn::Nonlinearity::linear) == 1.0);
}

BOOST_AUTO_TEST_CASE(xavier_std_matches_formula) {
  for (auto d : kDtypes) {
    ag::Generator gen(1);
    const double fan_sum = 512 + 512;
    // U[-a, a], a = sqrt(6 / (fan_in + fan_out)): std = a / sqrt(3) = sqrt(2 / (fan_in + fan_out))
    ag::Tensor u = nn::xavier_uniform_(ag::zeros({512, 512}, {d}), gen);
    check_std("xavier_uniform_", u, std::sqrt(2.0 / fan_sum));
    const Stats su = stats(u);
    const double a = std::sqrt(6.0 / fan_sum);
    BOOST_TEST(su.max <= a);
    BOOST_TEST(su.min >= -a);
    BOOST_TEST(su.max > 0.99 * a);  // the whole interval is used
    // gain scales the std
    check_std("xavier_uniform_ gain 5/3", nn::xavier_uniform_(ag::zeros({512, 512}, {d}), gen, 5.0 / 3.0),
              5.0 / 3.0 * std::sqrt(2.0 / fan_sum));
    // N(0, 2 / (fan_in + fan_out)), on a non-square tensor to tell fan_in from fan_out apart
    check_std("xavier_normal_", nn::xavier_normal_(ag::zeros({512, 512}, {d}), gen), std::sqrt(2.0 / fan_sum));
    check_std("xavier_normal_ [256,1024]", nn::xavier_normal_(ag::zeros({256, 1024}, {d}), gen),
              std::sqrt(2.0 / (256 + 1024)));
    BOOST_TEST(u.dtype() == d);
  }
}

BOOST_AUTO_TEST_CASE(kaiming_std_matches_formula) {
  for (auto d : kDtypes) {
    ag::Generator gen(2);
    // a = 0, fan_in: gain sqrt(2), std = sqrt(2 / fan_in); uniform bound sqrt(6 / fan_in)
    ag::Tensor u = nn::kaiming_uniform_(ag::zeros({512, 512}, {d}), gen);
    check_std("kaiming_uniform_", u, std::sqrt(2.0 / 512));
    BOOST_TEST(stats(u).max <= std::sqrt(6.0 / 512));
    check_std("kaiming_normal_", nn::kaiming_normal_(ag::zeros({512, 512}, {d}), gen), std::sqrt(2.0 / 512));
    // fan_in vs fan_out on [256, 1024]: fan_in = 1024, fan_out = 256
    check_std("kaiming_normal_ fan_in", nn::kaiming_normal_(ag::zeros({256, 1024}, {d}), gen), std::sqrt(2.0 / 1024));
    check_std("kaiming_normal_ fan_out",
              nn::kaiming_normal_(ag::zeros({256, 1024}, {d}), gen, 0.0, nn::FanMode::fan_out), std::sqrt(2.0 / 256));
    // PyTorch's Linear default: kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / 6), std = sqrt(1 / 3) / sqrt(fan_in)
    check_std("kaiming_uniform_ a=sqrt(5)", nn::kaiming_uniform_(ag::zeros({512, 512}, {d}), gen, std::sqrt(5.0)),
              std::sqrt(1.0 / 3.0) / std::sqrt(512.0));
    // a linear layer: gain 1
    check_std("kaiming_normal_ linear",
              nn::kaiming_normal_(ag::zeros({512, 512}, {d}), gen, 0.0, nn::FanMode::fan_in, nn::Nonlinearity::linear),
              1.0 / std::sqrt(512.0));
  }
}

BOOST_AUTO_TEST_CASE(plain_distributions) {
  for (auto d : kDtypes) {
    ag::Generator gen(3);
    ag::Tensor n = nn::normal_(ag::zeros({256, 256}, {d}), gen, 2.0, 0.5);
    const Stats sn = stats(n);
    BOOST_TEST(std::abs(sn.mean - 2.0) < 0.01);
    BOOST_TEST(std::abs(sn.std - 0.5) < 0.01);
    ag::Tensor u = nn::uniform_(ag::zeros({256, 256}, {d}), gen, -3.0, 1.0);
    const Stats su = stats(u);
    BOOST_TEST(su.min >= -3.0);
    BOOST_TEST(su.max < 1.0);
    BOOST_TEST(std::abs(su.mean + 1.0) < 0.02);
    BOOST_TEST(std::abs(su.std - 4.0 / std::sqrt(12.0)) < 0.02);
    ag::Tensor c = nn::constant_(ag::zeros({3, 4}, {d}), 0.25);
    for (double x : c.to_vector()) BOOST_TEST(x == 0.25);
    for (double x : nn::ones_(ag::zeros({5}, {d})).to_vector()) BOOST_TEST(x == 1.0);
    for (double x : nn::zeros_(ag::ones({5}, {d})).to_vector()) BOOST_TEST(x == 0.0);
  }
}

BOOST_AUTO_TEST_CASE(init_is_in_place_seeded_and_records_no_graph) {
  ag::Tensor w = ag::zeros({16, 8}, {ag::f32, true});
  ag::Node* node = w.node();
  ag::Generator g1(42), g2(42);
  ag::Tensor r = nn::xavier_uniform_(w, g1);
  BOOST_TEST(r.node() == node);  // the same tensor, filled in place
  BOOST_TEST(w.is_leaf());
  BOOST_TEST(w.requires_grad());
  BOOST_TEST(std::string(w.op_name()) == "leaf");
  ag::Tensor w2 = nn::xavier_uniform_(ag::zeros({16, 8}), g2);
  BOOST_TEST(w.to_vector() == w2.to_vector());  // the same seed gives the same values
  // grad mode is restored afterwards
  BOOST_TEST(ag::grad_enabled());
  // zero-element tensors are left alone
  ag::Tensor empty = ag::zeros({0, 4});
  BOOST_CHECK_NO_THROW(nn::xavier_uniform_(empty, g1));
  BOOST_CHECK_NO_THROW(nn::kaiming_normal_(empty, g1));
  BOOST_CHECK_NO_THROW(nn::orthogonal_(empty, g1));
}

BOOST_AUTO_TEST_CASE(orthogonal_square_tall_wide) {
  for (const ag::Shape& shape : {ag::Shape{64, 64}, ag::Shape{100, 30}, ag::Shape{30, 100}, ag::Shape{4, 3, 5},
                                 ag::Shape{1, 7}, ag::Shape{7, 1}}) {
    ag::Generator gen(11);
    ag::Tensor w = nn::orthogonal_(ag::zeros(shape, {ag::f64}), gen);
    const std::size_t rows = shape[0], cols = w.numel() / rows;
    const Mat m = w.to_vector();
    BOOST_TEST_INFO("shape " << ag::shape_str(shape));
    if (rows >= cols) BOOST_TEST(max_dev_from_scaled_identity(gram_cols(m, rows, cols), cols, 1.0) < 1e-5);  // W^T W = I
    if (rows <= cols) BOOST_TEST(max_dev_from_scaled_identity(gram_rows(m, rows, cols), rows, 1.0) < 1e-5);  // W W^T = I
  }
  // gain: W^T W = gain^2 I; float32 too (to float precision)
  ag::Generator gen(12);
  ag::Tensor w = nn::orthogonal_(ag::zeros({50, 50}, {ag::f64}), gen, 2.0);
  BOOST_TEST(max_dev_from_scaled_identity(gram_cols(w.to_vector(), 50, 50), 50, 4.0) < 1e-5);
  ag::Tensor w32 = nn::orthogonal_(ag::zeros({128, 64}, {ag::f32}), gen);
  BOOST_TEST(max_dev_from_scaled_identity(gram_cols(w32.to_vector(), 128, 64), 64, 1.0) < 1e-5);
  // the same seed gives the same matrix
  ag::Generator a(5), b(5);
  BOOST_TEST(nn::orthogonal_(ag::zeros({20, 20}, {ag::f64}), a).to_vector() ==
             nn::orthogonal_(ag::zeros({20, 20}, {ag::f64}), b).to_vector());
  expect_error([&] { nn::orthogonal_(ag::zeros({5}), gen); }, {"orthogonal_", "2 dimensions", "[5]"});
}

BOOST_AUTO_TEST_CASE(orthogonal_is_sign_corrected) {
  // The first column of Q is A's first column normalised, with R_00 = ||a_0|| > 0: with the sign
  // correction, Q[:, 0] = a_0 / ||a_0||, the same sign as the draw (a plain Householder QR flips it).
  ag::Generator gen(21), replay(21);
  const std::size_t rows = 6, cols = 4;
  ag::Tensor w = nn::orthogonal_(ag::zeros({rows, cols}, {ag::f64}), gen);
  Mat a(rows * cols);
  for (double& x : a) x = replay.normal();  // the same normal draw, row-major
  double n0 = 0;
  for (std::size_t i = 0; i < rows; ++i) n0 += a[i * cols] * a[i * cols];
  n0 = std::sqrt(n0);
  for (std::size_t i = 0; i < rows; ++i) BOOST_TEST(std::abs(w.flat(i * cols) - a[i * cols] / n0) < 1e-12);
}

BOOST_AUTO_TEST_CASE(scaled_recurrent_spectral_radius_equals_scale) {
  for (double scale : {0.5, 0.9, 1.0, 1.1, 2.0}) {
    ag::Generator gen(31);
    const std::size_t h = 64;
    ag::Tensor w = nn::scaled_recurrent_(ag::zeros({h, h}, {ag::f64}), gen, scale);
    const Mat m = w.to_vector();
    BOOST_TEST_INFO("scale " << scale);
    BOOST_TEST(std::abs(largest_singular_value(m, h, h, gen) - scale) < 1e-4);
    BOOST_TEST_INFO("scale " << scale);
    BOOST_TEST(std::abs(growth_rate(m, h, gen) - scale) < 1e-4);  // |h_t| = scale^t |h_0|
    BOOST_TEST(max_dev_from_scaled_identity(gram_cols(m, h, h), h, scale * scale) < 1e-5);
  }
  // stacked gates [4H, H]: each block is a scaled orthogonal matrix
  ag::Generator gen(32);
  const std::size_t h = 16;
  ag::Tensor w = nn::scaled_recurrent_(ag::zeros({4 * h, h}, {ag::f32}), gen, 0.8);
  const Mat m = w.to_vector();
  for (std::size_t b = 0; b < 4; ++b) {
    const Mat block(m.begin() + std::ptrdiff_t(b * h * h), m.begin() + std::ptrdiff_t((b + 1) * h * h));
    BOOST_TEST(std::abs(largest_singular_value(block, h, h, gen) - 0.8) < 1e-4);
    BOOST_TEST(max_dev_from_scaled_identity(gram_cols(block, h, h), h, 0.64) < 1e-5);
  }
  expect_error([&] { nn::scaled_recurrent_(ag::zeros({6, 4}), gen, 1.0); }, {"scaled_recurrent_", "[H,H]", "[6,4]"});
  expect_error([&] { nn::scaled_recurrent_(ag::zeros({4, 4}), gen, -1.0); }, {"scaled_recurrent_", "spectral_scale", "-1"});
}

BOOST_AUTO_TEST_CASE(init_errors) {
  ag::Generator gen(0);
  expect_error([&] { nn::xavier_uniform_(ag::zeros({10}), gen); }, {"xavier_uniform_", "2 dimensions", "[10]"});
  expect_error([&] { nn::xavier_normal_(ag::scalar(1.0), gen); }, {"xavier_normal_", "2 dimensions", "[]"});
  expect_error([&] { nn::kaiming_uniform_(ag::zeros({3}), gen); }, {"kaiming_uniform_", "2 dimensions"});
  expect_error([&] { nn::kaiming_normal_(ag::zeros({3}), gen); }, {"kaiming_normal_", "2 dimensions"});
  expect_error([&] { nn::normal_(ag::zeros({3}), gen, 0.0, -1.0); }, {"normal_", "std >= 0", "-1"});
  expect_error([&] { nn::uniform_(ag::zeros({3}), gen, 2.0, 1.0); }, {"uniform_", "lo <= hi", "lo = 2", "hi = 1"});
  expect_error([&] { nn::uniform_(ag::zeros({3}), gen, 0.0, INFINITY); }, {"uniform_", "hi", "finite"});
  expect_error([&] { nn::xavier_uniform_(ag::Tensor(), gen); }, {"undefined"});
}

BOOST_AUTO_TEST_SUITE_END()
