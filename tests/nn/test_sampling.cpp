// nn::sample (ctest -R sampling): greedy, temperature, top-k and top-p on known distributions,
// the draws a seed gives, and errors. Shape legend: B batch, V vocabulary.
#include <cmath>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/check_values.hpp"
#include "nn/sampling.hpp"

namespace {

// log p: logits whose softmax is p
std::vector<double> logits_of(const std::vector<double>& p) {
  std::vector<double> l;
  for (double x : p) l.push_back(std::log(x));
  return l;
}

std::vector<double> random_logits(std::size_t V, ag::Generator& g) {
  std::vector<double> l(V);
  for (double& x : l) x = g.normal(0.0, 2.0);
  return l;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sampling)

BOOST_AUTO_TEST_CASE(top_k_of_one_is_greedy) {
  ag::Generator g(1), draws(2);
  for (int trial = 0; trial < 200; ++trial) {
    const std::vector<double> l = random_logits(13, g);
    const auto greedy = nn::sample_token(l, {.greedy = true}, draws);
    BOOST_TEST(greedy == std::int64_t(std::max_element(l.begin(), l.end()) - l.begin()));
    BOOST_TEST(nn::sample_token(l, {.top_k = 1}, draws) == greedy);
    BOOST_TEST(nn::sample_token(l, {.temperature = 0.3, .top_k = 1, .top_p = 0.5}, draws) == greedy);
  }
  // ties: the lower id
  BOOST_TEST(nn::sample_token({1.0, 3.0, 3.0, 0.0}, {.greedy = true}, draws) == 1);
}

BOOST_AUTO_TEST_CASE(top_p_of_one_is_plain_sampling) {
  ag::Generator g(3);
  for (int trial = 0; trial < 20; ++trial) {
    const std::vector<double> l = random_logits(9, g);
    for (double temperature : {0.5, 1.0, 2.0}) {
      // the distribution: softmax(l / temperature), nothing cut
      double m = *std::max_element(l.begin(), l.end()), sum = 0;
      std::vector<double> want;
      for (double x : l) want.push_back(std::exp((x - m) / temperature)), sum += want.back();
      for (double& x : want) x /= sum;
      check_values(nn::sampling_distribution(l, {.temperature = temperature, .top_p = 1.0}), want, 1e-14);
      // and the draws: the same seed, the same tokens as the inverse CDF of that distribution
      ag::Generator a(trial), b(trial);
      for (int i = 0; i < 50; ++i) {
        const double u = b.uniform();
        double acc = 0;
        std::int64_t expected = std::int64_t(want.size()) - 1;
        for (std::size_t c = 0; c < want.size(); ++c)
          if ((acc += want[c]) > u) {
            expected = std::int64_t(c);
            break;
          }
        BOOST_TEST(nn::sample_token(l, {.temperature = temperature}, a) == expected);
      }
    }
  }
}

// p = [0.05, 0.5, 0.15, 0.3]: most likely first is 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05).
BOOST_AUTO_TEST_CASE(top_p_cuts_exactly_the_tail) {
  const std::vector<double> l = logits_of({0.05, 0.5, 0.15, 0.3});
  check_values(nn::sampling_distribution(l, {.top_p = 0.4}), {0, 1, 0, 0}, 1e-14);                        // 0.5 reaches 0.4
  check_values(nn::sampling_distribution(l, {.top_p = 0.75}), {0, 0.625, 0, 0.375}, 1e-14);              // 0.5 + 0.3
  check_values(nn::sampling_distribution(l, {.top_p = 0.9}), {0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95}, 1e-14);
  check_values(nn::sampling_distribution(l, {.top_p = 0.99}), {0.05, 0.5, 0.15, 0.3}, 1e-14);
  // top-k first, then top-p over what is left (renormalised): k = 2 keeps {1, 3}: 0.625, 0.375
  check_values(nn::sampling_distribution(l, {.top_k = 2, .top_p = 0.6}), {0, 1, 0, 0}, 1e-14);
  check_values(nn::sampling_distribution(l, {.top_k = 3}), {0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95}, 1e-14);
  // 20,000 draws at top_p = 0.9: token 0 never, the others at their renormalised rates
  ag::Generator g(4);
  std::vector<double> count(4, 0);
  for (int i = 0; i < 20000; ++i) ++count[std::size_t(nn::sample_token(l, {.top_p = 0.9}, g))];
  BOOST_TEST(count[0] == 0.0);
  check_values({count[1] / 20000, count[2] / 20000, count[3] / 20000}, {0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95}, 0.03);
}

BOOST_AUTO_TEST_CASE(temperature_sharpens_and_flattens) {
  const std::vector<double> l = logits_of({0.1, 0.2, 0.7});
  // softmax(log p / T) is p^(1/T), renormalised
  auto powered = [](double T) {
    std::vector<double> v{std::pow(0.1, 1 / T), std::pow(0.2, 1 / T), std::pow(0.7, 1 / T)};
    const double s = v[0] + v[1] + v[2];
    for (double& x : v) x /= s;
    return v;
  };
  check_values(nn::sampling_distribution(l, {.temperature = 0.5}), powered(0.5), 1e-14);
  check_values(nn::sampling_distribution(l, {.temperature = 2.0}), powered(2.0), 1e-14);
}

BOOST_AUTO_TEST_CASE(a_batch_and_a_seed) {
  ag::Generator g(5);
  std::vector<double> rows;
  for (int b = 0; b < 3; ++b)
    for (double x : random_logits(6, g)) rows.push_back(x);
  const ag::Tensor logits = ag::tensor(rows, {3, 6}, {ag::f32});
  ag::Generator a(9), b(9);
  const ag::Indices x = nn::sample(logits, {.temperature = 0.8, .top_k = 4}, a), y = nn::sample(logits, {.temperature = 0.8, .top_k = 4}, b);
  BOOST_TEST(x.shape.size() == 1u);
  BOOST_TEST(x.values.size() == 3u);
  BOOST_TEST(x.values == y.values, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(errors) {
  ag::Generator g(6);
  BOOST_CHECK_THROW(nn::sample_token({}, {}, g), ag::Error);
  BOOST_CHECK_THROW(nn::sample_token({1.0, 2.0}, {.temperature = 0.0}, g), ag::Error);
  BOOST_CHECK_THROW(nn::sample_token({1.0, 2.0}, {.top_p = 0.0}, g), ag::Error);
  BOOST_CHECK_THROW(nn::sample_token({1.0, 2.0}, {.top_p = 1.5}, g), ag::Error);
  BOOST_CHECK_THROW(nn::sample_token({1.0, std::nan("")}, {}, g), ag::Error);
  BOOST_CHECK_THROW(nn::sample(ag::zeros({2, 3, 4}), {}, g), ag::Error);
}

BOOST_AUTO_TEST_SUITE_END()
