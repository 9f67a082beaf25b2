// Same seed, same build, same thread count: bit-identical losses, step after step.
#include <boost/test/unit_test.hpp>

#include "nn/nn.hpp"
#include "nn/optim.hpp"

using namespace ag;

namespace {

// A short training run of an LSTM feeding a Transformer encoder layer; returns every loss.
std::vector<double> train(std::uint64_t seed) {
  Generator gen(seed);
  nn::LSTM lstm(3, 16, gen);
  nn::TransformerEncoderLayer layer({.d_model = 16, .num_heads = 2, .dim_feedforward = 32, .dropout = 0.1}, gen);
  nn::Linear head(16, 1, gen);
  std::vector<Tensor> params = lstm.parameters();
  for (auto* m : std::initializer_list<nn::Module*>{&layer, &head})
    for (auto& p : m->parameters()) params.push_back(p);
  nn::Adam opt(params, {.lr = 1e-2});
  Generator data(seed + 1);
  std::vector<double> losses;
  for (int step = 0; step < 25; ++step) {
    const Tensor x = randn({8, 6, 3}, data), y = randn({8, 1}, data);
    const Tensor h = layer.forward(lstm(x).output);  // dropout on: its generator is seeded too
    const Tensor loss = mse_loss(head(select(h, 1, -1)), y);
    for (auto& p : params) p.zero_grad();
    loss.backward();
    nn::clip_grad_norm(params, 1.0);
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(determinism)

BOOST_AUTO_TEST_CASE(same_seed_gives_bit_identical_losses) {
  const auto a = train(42), b = train(42), c = train(43);
  BOOST_TEST(a.size() == 25u);
  for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i] == b[i]);  // exact, not approximately
  BOOST_TEST(a != c);
  BOOST_TEST(a.back() < a.front());  // and it did train
}

BOOST_AUTO_TEST_SUITE_END()
