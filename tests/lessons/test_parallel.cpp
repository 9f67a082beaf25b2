// lab::run_in_parallel: every item once, the same results with one worker or several (each run
// with its own generator and graph), the longest-first order, and a run's exception rethrown.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <stdexcept>

#include "common/parallel.hpp"
#include "nn/nn.hpp"

BOOST_AUTO_TEST_SUITE(parallel)

BOOST_AUTO_TEST_CASE(same_results_with_one_worker_or_three) {
  struct Item {
    std::uint64_t seed;
    double loss = 0;
    int runs = 0;
  };
  // a small forward and backward per item, seeded by the item: the engine's work on every thread
  auto work = [](Item& it) {
    ag::Generator g(it.seed);
    ag::Tensor w = ag::randn({8, 8}, g, {ag::f64});
    w.requires_grad_();
    const ag::Tensor loss = ag::sum(ag::tanh(ag::matmul(w, w)));
    loss.backward();
    it.loss = loss.item() + ag::sum(w.grad()).item();
    ++it.runs;
  };
  std::vector<Item> one, three;
  for (std::uint64_t s = 0; s < 20; ++s) one.push_back({s}), three.push_back({s});
  lab::run_in_parallel(one, 1, work, [](const Item&) { return false; });
  lab::run_in_parallel(three, 3, work, [](const Item& it) { return it.seed % 2 == 1; });
  for (std::size_t i = 0; i < one.size(); ++i) {
    BOOST_TEST(one[i].runs == 1);
    BOOST_TEST(three[i].runs == 1);
    BOOST_TEST(three[i].loss == one[i].loss);  // bit for bit
  }
}

BOOST_AUTO_TEST_CASE(starts_first_items_first) {
  std::vector<int> items = {0, 1, 2, 3, 4, 5};
  std::vector<int> order;
  lab::run_in_parallel(items, 1, [&](int& v) { order.push_back(v); }, [](int v) { return v >= 4; });
  BOOST_TEST(order == std::vector<int>({4, 5, 0, 1, 2, 3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_exception_is_rethrown_after_the_others_finish) {
  std::vector<int> items(10);
  std::atomic<int> done{0};
  BOOST_CHECK_THROW(lab::run_in_parallel(
                        items, 2,
                        [&](int&) {
                          if (done++ == 3) throw std::runtime_error("run 3 failed");
                        },
                        [](int) { return false; }),
                    std::runtime_error);
  BOOST_TEST(done.load() <= 10);
}

BOOST_AUTO_TEST_SUITE_END()
