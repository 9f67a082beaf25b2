// nn::Categorical: gradient checks of log_prob and entropy, known values, the frequencies of its
// draws, and the score-function (REINFORCE) estimator it exists for, against the exact gradient.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "../common/expect_error.hpp"
#include "nn/nn.hpp"

using namespace ag;

BOOST_AUTO_TEST_SUITE(categorical)

BOOST_AUTO_TEST_CASE(gradcheck_log_prob_and_entropy) {
  Generator g(1);
  const Tensor logits = randn({4, 5}, g, {f64});
  const Indices value({0, 3, 4, 1});
  const GradcheckResult lp = gradcheck([&](const std::vector<Tensor>& x) { return nn::Categorical(x[0]).log_prob(value); }, {logits});
  BOOST_TEST(lp.ok, lp.report);
  const GradcheckResult h = gradcheck([&](const std::vector<Tensor>& x) { return nn::Categorical(x[0]).entropy(); }, {logits});
  BOOST_TEST(h.ok, h.report);
}

// logits log 1, log 2, log 3: p = 1/6, 2/6, 3/6.
BOOST_AUTO_TEST_CASE(known_values) {
  const nn::Categorical c(tensor({0, std::log(2.0), std::log(3.0)}, {3}, {f64}));
  BOOST_TEST(c.log_prob(Indices({2})).item() == std::log(0.5), boost::test_tools::tolerance(1e-14));
  const double h = -(1.0 / 6 * std::log(1.0 / 6) + 2.0 / 6 * std::log(2.0 / 6) + 3.0 / 6 * std::log(3.0 / 6));
  BOOST_TEST(c.entropy().item() == h, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(c.probs().to_vector()[1] == 2.0 / 6, boost::test_tools::tolerance(1e-14));
  BOOST_TEST((c.logits().shape() == Shape{1, 3}));
  // A category ruled out (-inf) has p = 0, adds nothing to the entropy, and the gradient stays finite.
  const double inf = std::numeric_limits<double>::infinity();
  Tensor masked = tensor({0, -inf, 0}, {3}, {f64});
  masked.requires_grad_();
  const Tensor hm = nn::Categorical(masked).entropy();
  BOOST_TEST(hm.item() == std::log(2.0), boost::test_tools::tolerance(1e-14));
  hm.backward();
  for (double v : masked.grad().to_vector()) BOOST_TEST(std::isfinite(v));
  Generator gen(2);
  for (int i = 0; i < 200; ++i) BOOST_TEST(nn::Categorical(masked.detach()).sample(gen).values[0] != 1);
}

// 60,000 draws from p = (0.1, 0.2, 0.7): each count within 4 standard deviations of N p.
BOOST_AUTO_TEST_CASE(draws_follow_the_probabilities) {
  const std::size_t N = 60000;
  std::vector<double> logits;
  for (std::size_t i = 0; i < N; ++i) logits.insert(logits.end(), {std::log(0.1), std::log(0.2), std::log(0.7)});
  Generator gen(3);
  const Indices x = nn::Categorical(tensor(logits, {N, 3}, {f64})).sample(gen);
  BOOST_TEST(x.size() == N);
  std::vector<double> count(3, 0.0);
  for (std::int64_t v : x.values) count[std::size_t(v)] += 1;
  for (std::size_t v = 0; v < 3; ++v) {
    const double p = std::vector<double>{0.1, 0.2, 0.7}[v], sd = std::sqrt(double(N) * p * (1 - p));
    BOOST_TEST(std::abs(count[v] - double(N) * p) < 4 * sd, "category " << v << ": " << count[v] << " draws");
  }
}

// REINFORCE (Williams 1992): grad E_p[f(x)] = E_p[f(x) grad log p(x)]. The exact gradient of
// sum_v p_v f(v) against the mean of f(x) grad log p(x) over 40,000 draws, within 5 standard errors.
BOOST_AUTO_TEST_CASE(score_function_estimator_is_unbiased) {
  const std::vector<double> f = {1.0, -2.0, 0.5, 3.0};
  const Tensor f_t = tensor(f, {4}, {f64});
  Tensor theta = tensor({0.3, -0.1, 0.8, -0.5}, {4}, {f64});
  theta.requires_grad_();
  ag::sum(nn::Categorical(theta).probs() * f_t).backward();
  const std::vector<double> exact = theta.grad().to_vector();

  const std::size_t N = 40000;
  Tensor theta2 = theta.detach();
  theta2.requires_grad_();
  const nn::Categorical many(ag::expand(ag::unsqueeze(theta2, 0), {N, 4}));
  Generator gen(4);
  const Indices x = many.sample(gen);
  std::vector<double> fx(N);
  for (std::size_t i = 0; i < N; ++i) fx[i] = f[std::size_t(x.values[i])];
  ag::mean(many.log_prob(x) * tensor(fx, {N}, {f64})).backward();  // d/dtheta of mean f(x) log p(x), f fixed
  const std::vector<double> estimate = theta2.grad().to_vector();
  // Standard error of each component: f(x) (onehot(x) - p) has variance at most max f^2 / N * 1.
  const double se = 3.0 / std::sqrt(double(N));
  for (std::size_t v = 0; v < 4; ++v)
    BOOST_TEST(std::abs(estimate[v] - exact[v]) < 5 * se, "component " << v << ": " << estimate[v] << " vs exact " << exact[v]);
}

BOOST_AUTO_TEST_CASE(errors) {
  Generator g(5);
  expect_error([&] { nn::Categorical(randn({2, 3, 4}, g, {f64})); }, {"Categorical", "[2,3,4]"});
  expect_error([&] { nn::Categorical(tensor({}, {2, 0}, {f64})); }, {"Categorical", "[2,0]"});
  const nn::Categorical c(randn({2, 3}, g, {f64}));
  expect_error([&] { c.log_prob(Indices({0, 1, 2})); }, {"Categorical::log_prob", "3 values", "[2,3]"});
  expect_error([&] { c.log_prob(Indices({0, 3})); }, {"Categorical::log_prob", "value 3", "[0, 3)"});
}

BOOST_AUTO_TEST_SUITE_END()
