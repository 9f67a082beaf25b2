// Lesson 19's soft and hard attention reader (lessons/common/hard_attention.hpp): float64 gradient
// checks of every differentiable path, known values on a hand-set reader, and REINFORCE itself:
// the mean of many one-draw estimates equals the exact gradient of the expected loss, with the
// baseline and without it, and the baseline shrinks the estimate's variance.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <vector>

#include "../common/expect_error.hpp"
#include "ag/gradcheck.hpp"
#include "ag/ops.hpp"
#include "common/hard_attention.hpp"

using ag::Tensor;

namespace {

// The float64 reader of a small task, with its batch.
struct Small {
  ag::Generator gen{11};
  lab::RetrievalReader reader{{.keys = 6, .values = 3, .d_model = 5}, gen};
  lab::RetrievalBatch batch;
  Small() {
    reader.to(ag::f64);
    batch = lab::RetrievalTask({.pairs = 4, .keys = 6, .values = 3, .batch_size = 3, .seed = 2}).next_batch();
  }
};

// Gradient-checks f with respect to every parameter of the reader (float64).
template <class F>
void check_reader(const std::string& what, lab::RetrievalReader& m, F f) {
  const ag::GradcheckResult r = ag::gradcheck([&](const std::vector<Tensor>&) { return f(); }, m.parameters());
  BOOST_TEST_MESSAGE(what << ": " << r.elements_checked << " elements, max rel error " << r.max_rel_error);
  BOOST_TEST(r.ok, what << ": " << r.report);
}

// Overwrites a parameter's values.
void set(Tensor& t, const std::vector<double>& v) { t.array() = ag::tensor(v, t.shape(), {.dtype = t.dtype()}).array(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(reinforce)

BOOST_AUTO_TEST_CASE(gradcheck_soft_read_and_expected_loss) {
  Small s;
  check_reader("scores", s.reader, [&] { return s.reader.scores(s.batch); });
  check_reader("soft attention", s.reader, [&] { return s.reader.soft_logits(s.batch); });
  const ag::Indices positions({3, 0, 2});
  check_reader("hard attention's read", s.reader, [&] { return s.reader.read_logits(s.batch, positions); });
  check_reader("every read", s.reader, [&] { return s.reader.every_read_logits(s.batch); });
  check_reader("expected loss", s.reader, [&] { return lab::expected_loss(s.reader, s.batch, 0.1); });
}

// One-hot embeddings and identity projections, D = K = 4: the score of a pair is 1/sqrt(4) = 0.5
// where its key is the query and 0 elsewhere; the head reads a value's embedding as its logits.
BOOST_AUTO_TEST_CASE(known_values) {
  ag::Generator gen(1);
  lab::RetrievalReader m({.keys = 4, .values = 4, .d_model = 4}, gen);
  m.to(ag::f64);
  const std::vector<double> eye = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  for (Tensor* t : {&m.key_embedding->weight, &m.value_embedding->weight, &m.query_proj->weight, &m.key_proj->weight, &m.head->weight})
    set(*t, eye);
  set(m.head->bias, {0, 0, 0, 0});
  lab::RetrievalBatch b;
  b.keys = ag::Indices({2, 0, 3}, {1, 3});
  b.values = ag::Indices({1, 3, 3}, {1, 3});
  b.query = ag::Indices({0}), b.position = ag::Indices({1}), b.targets = ag::Indices({3});
  const std::vector<double> s = m.scores(b).to_vector();
  BOOST_TEST(s[0] == 0.0);
  BOOST_TEST(s[1] == 0.5, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(s[2] == 0.0);
  BOOST_TEST(lab::argmax_positions(m.scores(b)).values[0] == 1);
  // Hard read at position 0: the value 1, one-hot -> logits (0, 1, 0, 0).
  const std::vector<double> read = m.read_logits(b, ag::Indices({0})).to_vector();
  BOOST_TEST((read == std::vector<double>{0, 1, 0, 0}));
  // Soft read: a = softmax(0, 0.5, 0) over values 1, 3, 3 -> logits (0, a0, 0, a1 + a2).
  const double e = std::exp(0.5), a0 = 1 / (2 + e);
  const std::vector<double> soft = m.soft_logits(b).to_vector();
  BOOST_TEST(soft[1] == a0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(soft[3] == 1 - a0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(lab::accuracy(m.soft_logits(b), b) == 1.0);
  // The expected loss: reads 1, 3, 3 have losses CE((0,1,0,0), 3) = log(3 + e^1) - 0 and CE(e_3, 3) = log(3 + e^1) - 1.
  const double wrong = std::log(3 + std::exp(1.0)), right = wrong - 1;
  BOOST_TEST(lab::expected_loss(m, b, 0.0).item() == a0 * wrong + (1 - a0) * right, boost::test_tools::tolerance(1e-14));
  const double h = -(2 * a0 * std::log(a0) + e * a0 * std::log(e * a0));
  BOOST_TEST(lab::expected_loss(m, b, 0.5).item() == a0 * wrong + (1 - a0) * right - 0.5 * h, boost::test_tools::tolerance(1e-14));
}

// The mean of 8,000 one-draw REINFORCE estimates against the exact gradient of expected_loss,
// every element within 5 standard errors, with a baseline near the mean reward and with none;
// the baseline's estimates spread less.
BOOST_AUTO_TEST_CASE(estimator_is_unbiased_and_the_baseline_cuts_its_variance) {
  Small s;
  const double entropy_bonus = 0.1;
  const std::vector<double> exact = lab::score_gradient(s.reader, lab::expected_loss(s.reader, s.batch, entropy_bonus));
  const double mean_reward = -lab::expected_loss(s.reader, s.batch, 0.0).item();
  const std::size_t M = 8000, P = exact.size();
  std::vector<double> variance_total(2);
  for (int with_baseline = 0; with_baseline < 2; ++with_baseline) {
    ag::Generator draws(5);
    std::vector<double> sum(P), sum_sq(P);
    for (std::size_t i = 0; i < M; ++i) {
      const lab::HardAttentionStep step = lab::hard_attention_step(s.reader, s.batch, draws, with_baseline ? mean_reward : 0.0, entropy_bonus);
      const std::vector<double> g = lab::score_gradient(s.reader, step.loss);
      for (std::size_t j = 0; j < P; ++j) sum[j] += g[j], sum_sq[j] += g[j] * g[j];
    }
    double worst_z = 0;
    for (std::size_t j = 0; j < P; ++j) {
      const double mean = sum[j] / M, var = std::max(0.0, sum_sq[j] / M - mean * mean);
      variance_total[std::size_t(with_baseline)] += var;
      const double se = std::sqrt(var / M);
      if (se > 0) worst_z = std::max(worst_z, std::abs(mean - exact[j]) / se);
      else BOOST_TEST(std::abs(mean - exact[j]) < 1e-12);
    }
    BOOST_TEST_MESSAGE("baseline " << with_baseline << ": worst |mean - exact| = " << worst_z << " standard errors over " << P
                                   << " elements; total variance " << variance_total[std::size_t(with_baseline)]);
    BOOST_TEST(worst_z < 5.0);
  }
  BOOST_TEST(variance_total[1] < 0.5 * variance_total[0]);
}

BOOST_AUTO_TEST_CASE(moving_average_baseline) {
  lab::MovingAverageBaseline b(0.9);
  BOOST_TEST(b.value() == 0.0);
  b.update({-2.0, -4.0});  // the first update sets it to the mean
  BOOST_TEST(b.value() == -3.0);
  b.update({-1.0});
  BOOST_TEST(b.value() == 0.9 * -3.0 + 0.1 * -1.0, boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(errors) {
  Small s;
  expect_error([&] { s.reader.read_logits(s.batch, ag::Indices({0, 1})); }, {"read_logits", "2 positions", "batch of 3"});
  expect_error([&] { s.reader.read_logits(s.batch, ag::Indices({0, 4, 1})); }, {"read_logits", "position 4", "[0, 4)"});
  lab::RetrievalBatch wide = lab::RetrievalTask({.pairs = 4, .keys = 9, .values = 3, .batch_size = 2, .seed = 1}).next_batch();
  for (auto& k : wide.keys.values) k = 8;
  expect_error([&] { s.reader.scores(wide); }, {"scores", "key 8", "[0, 6)"});
  expect_error([] { lab::argmax_positions(ag::tensor({1, 2, 3}, {3})); }, {"argmax_positions", "[3]", "[B, N]"});
  lab::RetrievalBatch bad = s.batch;  // a query or a value out of the reader's ranges, values of another shape
  bad.query.values[1] = 6;
  expect_error([&] { s.reader.scores(bad); }, {"scores", "query 6", "[0, 6)"});
  bad = s.batch;
  bad.values.values[5] = -1;
  expect_error([&] { s.reader.scores(bad); }, {"scores", "value -1", "[0, 3)"});
  bad = s.batch;
  bad.values = ag::Indices({0, 1, 2}, {3, 1});
  expect_error([&] { s.reader.scores(bad); }, {"scores", "keys [3,4]", "values [3,1]", "expected [B, N]"});
}

BOOST_AUTO_TEST_SUITE_END()
