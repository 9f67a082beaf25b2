#pragma once
// check_values(got, want): got[i] == want[i] for every i, to a relative tolerance (absolute
// when the expected value is 0), each failure naming its element.
// rel_diff(got, want): max |got - want| / max |want| over all elements (0 when both are all zero).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ag/tensor.hpp"

inline void check_values(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-6) {
  BOOST_TEST_REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST_INFO("element " << i);
    if (want[i] == 0.0) BOOST_TEST(std::abs(got[i]) <= tol);
    else BOOST_TEST(got[i] == want[i], boost::test_tools::tolerance(tol));
  }
}

inline double rel_diff(const ag::Tensor& got, const ag::Tensor& want) {
  const auto g = got.to_vector(), w = want.to_vector();
  BOOST_TEST_REQUIRE(g.size() == w.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < g.size(); ++i) num = std::max(num, std::abs(g[i] - w[i])), den = std::max(den, std::abs(w[i]));
  return den > 0 ? num / den : num;
}
