// ag::rope, the rotary position embedding (ctest -R rope): float64 gradient checks on awkward
// shapes and offsets, known values, position 0 is the identity, the relative property that makes
// it work (q_m . k_n depends only on n - m), the backward is the inverse rotation, errors.
//
// Shape legend: B batch, H heads, T positions, d features per head (even).
#include <cmath>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "ag/ag.hpp"
#include "common/check_values.hpp"
#include "common/expect_error.hpp"

using namespace ag;

namespace {

Tensor uniform(const Shape& shape, Dtype dt, std::uint64_t seed) {
  Generator g(seed);
  return (rand(shape, g, {dt}) * 2.0 - 1.0).detach();
}

// Row-wise dot products of a [T, d] and b [T, d] -> T values.
std::vector<double> row_dots(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  const std::size_t d = a.shape().back(), T = x.size() / d;
  std::vector<double> out(T, 0.0);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < d; ++i) out[t] += x[t * d + i] * y[t * d + i];
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rope)

BOOST_AUTO_TEST_CASE(gradcheck_shapes_and_offsets) {
  struct Case {
    Shape shape;
    std::size_t offset;
    double base;
  };
  for (const Case& c : {Case{{7, 2}, 0, 10000.0}, Case{{2, 3, 5, 8}, 0, 10000.0}, Case{{2, 3, 5, 8}, 13, 10000.0},
                        Case{{1, 9, 6}, 100, 500.0}}) {
    const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& x) { return ag::rope(x[0], c.offset, c.base); },
                                        {uniform(c.shape, f64, 7)});
    BOOST_TEST_MESSAGE("gradcheck rope " << shape_str(c.shape) << " offset " << c.offset << ": max rel error " << r.max_rel_error);
    BOOST_TEST(r.ok, shape_str(c.shape) << " offset " << c.offset << ": " << r.report);
  }
}

BOOST_AUTO_TEST_CASE(known_values) {
  // d = 4: pairs (0, 2) at theta_0 = 1 and (1, 3) at theta_1 = 10000^(-1/2) = 0.01.
  // Row t = 1 (position 1) of x = [1, 2, 3, 4]:
  //   y0 = 1 cos 1 - 3 sin 1, y2 = 1 sin 1 + 3 cos 1, y1 = 2 cos .01 - 4 sin .01, y3 = 2 sin .01 + 4 cos .01
  for (Dtype dt : {f32, f64}) {
    const Tensor x = tensor({1, 2, 3, 4, 1, 2, 3, 4}, {2, 4}, {dt});
    const auto y = ag::rope(x).to_vector();
    const double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.01), s2 = std::sin(0.01);
    check_values(y, {1, 2, 3, 4, c1 - 3 * s1, 2 * c2 - 4 * s2, s1 + 3 * c1, 2 * s2 + 4 * c2}, dt == f64 ? 1e-15 : 1e-6);
    // The offset moves the positions: row 0 with offset 1 is row 1 without.
    const auto y1 = ag::rope(ag::slice(x, 0, 0, 1), 1).to_vector();
    check_values(y1, std::vector<double>(y.begin() + 4, y.end()), dt == f64 ? 1e-15 : 1e-6);
  }
}

BOOST_AUTO_TEST_CASE(position_zero_is_the_identity_and_norms_are_kept) {
  const Tensor x = uniform({3, 1, 6}, f64, 11);  // T = 1: every row at position 0
  BOOST_TEST(ag::rope(x).to_vector() == x.to_vector(), boost::test_tools::per_element());
  const Tensor z = uniform({2, 40, 16}, f64, 12);  // a rotation keeps every row's length
  const auto n0 = row_dots(z.reshape({80, 16}), z.reshape({80, 16}));
  const Tensor r = ag::rope(z, 1000);
  const auto n1 = row_dots(r.reshape({80, 16}), r.reshape({80, 16}));
  check_values(n1, n0, 1e-13);
}

// The property RoPE exists for: rotate q by its position m and k by its position n, and q . k
// depends only on n - m. Shifting both positions by 7 changes no dot product (to 1e-12).
BOOST_AUTO_TEST_CASE(dot_products_depend_only_on_the_distance) {
  const std::size_t T = 20, d = 32;
  const Tensor q = uniform({T, d}, f64, 21), k = uniform({T, d}, f64, 22);
  for (std::size_t shift : {7, 1000}) {
    // q at positions 0..T-1 against k at positions 3..T+2 (distance 3), then both shifted
    const auto a = row_dots(ag::rope(q, 0), ag::rope(k, 3));
    const auto b = row_dots(ag::rope(q, shift), ag::rope(k, shift + 3));
    check_values(b, a, 1e-12);
  }
  // and the whole score matrix: S_mn = rope(q)_m . rope(k)_n equals S shifted along both axes
  const Tensor s0 = ag::matmul(ag::rope(q, 0), ag::transpose(ag::rope(k, 0), 0, 1));
  const Tensor s7 = ag::matmul(ag::rope(q, 7), ag::transpose(ag::rope(k, 7), 0, 1));
  check_values(s7.to_vector(), s0.to_vector(), 1e-12);
}

// The backward is the inverse rotation: rope's vector-Jacobian product with dy = rope(v) is v.
BOOST_AUTO_TEST_CASE(backward_is_the_inverse_rotation) {
  for (Dtype dt : {f32, f64}) {
    const Tensor v = uniform({2, 9, 10}, dt, 31);
    Tensor x = uniform({2, 9, 10}, dt, 32).requires_grad_();
    ag::rope(x, 5).backward(ag::rope(v, 5));
    check_values(x.grad().to_vector(), v.to_vector(), dt == f64 ? 1e-14 : 1e-6);
  }
}

BOOST_AUTO_TEST_CASE(errors) {
  expect_error([] { ag::rope(zeros({4, 5})); }, {"rope", "even", "[4,5]"});
  expect_error([] { ag::rope(zeros({6})); }, {"rope", "[..., T, d]", "[6]"});
  expect_error([] { ag::rope(zeros({2, 4}), 0, 1.0); }, {"rope", "base", "[2,4]"});
  expect_error([] { ag::rope(Tensor()); }, {"rope", "undefined"});
}

BOOST_AUTO_TEST_SUITE_END()
