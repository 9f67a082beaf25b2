#pragma once
// check_values(got, want): got[i] == want[i] for every i, to a relative tolerance (absolute
// when the expected value is 0), each failure naming its element.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <vector>

inline void check_values(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-6) {
  BOOST_TEST_REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST_INFO("element " << i);
    if (want[i] == 0.0) BOOST_TEST(std::abs(got[i]) <= tol);
    else BOOST_TEST(got[i] == want[i], boost::test_tools::tolerance(tol));
  }
}
