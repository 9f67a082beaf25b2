// nn::KVCache and nn::GPT's incremental decoding (ctest -R kv_cache): for every position scheme
// (learned, sinusoidal, RoPE, ALiBi, none), both attention paths, MHA, GQA and MQA, in float32 and
// float64, the logits of cached decoding equal a full recomputation at every step; generation
// with and without the cache writes the same tokens; the cache's size; clear errors.
// Shape legend: B batch, T positions, V vocabulary, H heads, H_kv key/value heads, d head width.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/check_values.hpp"
#include "common/expect_error.hpp"
#include "nn/gpt.hpp"

namespace {

using nn::PositionEncoding;

constexpr PositionEncoding kSchemes[] = {PositionEncoding::learned, PositionEncoding::sinusoidal, PositionEncoding::rope,
                                         PositionEncoding::alibi, PositionEncoding::none};

nn::GPTOptions small(PositionEncoding position, std::size_t kv_heads = 0, nn::AttentionImpl impl = nn::AttentionImpl::naive) {
  return {.vocab_size = 11, .block_size = 16, .d_model = 16, .num_heads = 4, .num_kv_heads = kv_heads, .num_layers = 2,
          .dropout = 0.0, .position = position, .attention = impl};
}

// Random ids [B, T] in [0, V).
ag::Indices random_ids(std::size_t B, std::size_t T, std::size_t V, ag::Generator& gen) {
  std::vector<std::int64_t> v(B * T);
  for (auto& x : v) x = gen.integer(0, std::int64_t(V) - 1);
  return ag::Indices(v, {B, T});
}

// Columns [from, from + n) of ids [B, T].
ag::Indices columns(const ag::Indices& ids, std::size_t from, std::size_t n) {
  const std::size_t B = ids.shape[0], T = ids.shape[1];
  std::vector<std::int64_t> v;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = from; t < from + n; ++t) v.push_back(ids.values[b * T + t]);
  return ag::Indices(v, {B, n});
}

// max |got - want| / max |want|
std::string name_of(PositionEncoding p, std::size_t kv_heads, nn::AttentionImpl impl, ag::Dtype dt) {
  return std::string(nn::position_name(p)) + ", H_kv " + std::to_string(kv_heads) +
         (impl == nn::AttentionImpl::tiled ? ", tiled, " : ", naive, ") + ag::dtype_name(dt);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kv_cache)

// The test: logits of cached decoding (a prompt of 5, then chunks of 1 and 3 tokens) equal
// the full recomputation's rows at every step: <= 1e-5 in float32, <= 1e-12 in float64.
BOOST_AUTO_TEST_CASE(cached_logits_equal_full_recomputation) {
  ag::NoGrad ng;
  for (ag::Dtype dt : {ag::f32, ag::f64})
    for (PositionEncoding p : kSchemes)
      for (std::size_t kv_heads : {4, 2, 1})
        for (nn::AttentionImpl impl : {nn::AttentionImpl::naive, nn::AttentionImpl::tiled}) {
          ag::Generator gen(7);
          nn::GPT model(small(p, kv_heads, impl), gen);
          model.to(dt);
          model.eval();
          const std::size_t B = 2, T = 14;
          const ag::Indices ids = random_ids(B, T, 11, gen);
          const ag::Tensor full = model.forward(ids);  // [B, T, V]
          std::vector<nn::KVCache> cache = model.make_cache(B, 16);
          std::size_t at = 0;
          double worst = 0;
          for (std::size_t n : {5, 1, 3, 1, 1, 1, 2}) {
            const ag::Tensor step = model.forward(columns(ids, at, n), cache);  // [B, n, V]
            BOOST_TEST(cache.front().length() == at + n);
            worst = std::max(worst, rel_diff(step, ag::slice(full, 1, std::int64_t(at), std::int64_t(at + n))));
            at += n;
          }
          BOOST_TEST_MESSAGE("cached vs full, " << name_of(p, kv_heads, impl, dt) << ": " << worst);
          BOOST_TEST(worst <= (dt == ag::f64 ? 1e-12 : 1e-5), name_of(p, kv_heads, impl, dt) << ": " << worst);
        }
}

// Greedy and seeded sampling write the same tokens with and without the cache while the text
// fits the context (float64, so that no two logits are near a tie by rounding).
BOOST_AUTO_TEST_CASE(generation_with_and_without_the_cache_agree) {
  for (PositionEncoding p : kSchemes)
    for (bool greedy : {true, false}) {
      ag::Generator gen(11);
      nn::GPT model(small(p, 2), gen);
      model.to(ag::f64);
      nn::GenerateOptions o{.sampling = {.greedy = greedy, .temperature = 0.8, .top_k = 6}};
      ag::Generator a(5), b(5);
      std::vector<std::size_t> counts;
      o.on_token = [&](std::size_t n) { counts.push_back(n); };
      const auto with = model.generate({3, 1, 4}, 13, o, a);  // 16 tokens = block_size: fits
      BOOST_TEST(counts.size() == 13u);  // once per new token, counting 1..13
      BOOST_TEST(counts.back() == 13u);
      o.use_cache = false;
      const auto without = model.generate({3, 1, 4}, 13, o, b);
      BOOST_TEST(with.size() == 16u);
      BOOST_TEST(with == without, nn::position_name(p) << (greedy ? " greedy" : " sampled"));
      BOOST_TEST(model.is_training());  // generate restores the mode
    }
}

// Past the context, the cached path keeps the last context / 2 tokens and goes on from position 0
// (a context shift): the reference re-reads exactly those tokens without a cache.
BOOST_AUTO_TEST_CASE(context_shift_rereads_the_last_half) {
  for (PositionEncoding p : {PositionEncoding::learned, PositionEncoding::rope}) {
    ag::Generator gen(13);
    nn::GPT model(small(p), gen);
    model.to(ag::f64);
    const std::size_t context = 8;
    ag::Generator unused(0);
    const auto got = model.generate({2, 7}, 20, {.sampling = {.greedy = true}, .context = context}, unused);
    // reference: the tokens the cache holds are text[start:]; when they would exceed the
    // context, start moves to keep the last context / 2
    std::vector<std::int64_t> text{2, 7};
    std::size_t start = 0;
    {
      ag::NoGrad ng;
      model.eval();
      while (text.size() < 22) {
        if (text.size() - start > context) start = text.size() - context / 2;
        const std::vector<std::int64_t> window(text.begin() + std::ptrdiff_t(start), text.end());
        const ag::Tensor logits = model.forward(ag::Indices(window, {1, window.size()}));
        const auto row = ag::select(ag::select(logits, 0, 0), 0, std::int64_t(window.size()) - 1).to_vector();
        text.push_back(std::int64_t(std::max_element(row.begin(), row.end()) - row.begin()));
      }
      model.train();
    }
    BOOST_TEST(got == text, nn::position_name(p));
  }
}

// Where position enters: with every token the same, attention averages identical values, so
// without added position vectors (RoPE, ALiBi, none) every position gives the same logits; a
// learned or sinusoidal table makes them differ.
BOOST_AUTO_TEST_CASE(identical_tokens_show_where_position_enters) {
  ag::NoGrad ng;
  for (PositionEncoding p : kSchemes) {
    ag::Generator gen(17);
    nn::GPT model(small(p), gen);
    model.to(ag::f64);
    model.eval();
    const ag::Tensor logits = model.forward(ag::Indices(std::vector<std::int64_t>(9, 4), {1, 9}));  // [1, 9, V]
    const ag::Tensor first = ag::slice(logits, 1, 0, 1);
    double spread = 0;
    for (std::int64_t t = 1; t < 9; ++t) spread = std::max(spread, rel_diff(ag::slice(logits, 1, t, t + 1), first));
    const bool adds_vectors = p == PositionEncoding::learned || p == PositionEncoding::sinusoidal;
    BOOST_TEST_MESSAGE(nn::position_name(p) << ": largest difference from position 0 " << spread);
    if (adds_vectors) BOOST_TEST(spread > 1e-3, nn::position_name(p));
    else BOOST_TEST(spread <= 1e-13, nn::position_name(p));
  }
}

// The cache holds [B, H_kv, T_max, d] keys and values per layer: GQA shrinks it by H / H_kv.
BOOST_AUTO_TEST_CASE(cache_size_follows_the_key_value_heads) {
  for (std::size_t kv_heads : {4, 2, 1}) {
    ag::Generator gen(19);
    nn::GPT model(small(PositionEncoding::rope, kv_heads), gen);
    const auto cache = model.make_cache(3, 10);
    BOOST_TEST(cache.size() == 2u);  // one per layer
    for (const auto& c : cache) {
      BOOST_TEST(c.bytes() == 2u * 3 * kv_heads * 10 * 4 * sizeof(float));  // d = 16 / 4
      BOOST_TEST(c.length() == 0u);
      BOOST_TEST(c.max_length() == 10u);
    }
  }
  ag::Generator gen(19);
  nn::GPT model(small(PositionEncoding::rope), gen);
  model.to(ag::f64);
  BOOST_TEST(model.make_cache(1, 10).front().bytes() == 2u * 4 * 10 * 4 * sizeof(double));
}

BOOST_AUTO_TEST_CASE(bottom_right_causal_mask) {
  // the last 2 of 4 positions: query 0 (position 2) sees keys 0..2, query 1 sees all
  const ag::Mask m = nn::causal_mask(2, 4);
  BOOST_TEST((std::vector<std::uint8_t>(m.data(), m.data() + 8) == std::vector<std::uint8_t>{0, 0, 0, 1, 0, 0, 0, 0}));
  const ag::Mask square = nn::causal_mask(5, 5), plain = nn::causal_mask(5);
  BOOST_TEST(std::equal(square.data(), square.data() + 25, plain.data()));
  expect_error([] { nn::causal_mask(3, 2); }, {"causal_mask", "3 queries", "2 keys"});
}

BOOST_AUTO_TEST_CASE(errors_are_clear) {
  ag::Generator gen(23);
  nn::GPT model(small(PositionEncoding::learned), gen);  // a table of 16 positions
  {
    ag::NoGrad ng;
    // a full cache
    std::vector<nn::KVCache> cache = model.make_cache(1, 4);
    model.forward(ag::Indices({1, 2, 3}, {1, 3}), cache);
    expect_error([&] { model.forward(ag::Indices({1, 2}, {1, 2}), cache); }, {"KVCache", "full", "holds 3 of 4", "2 more"});
    // past the learned table, without and with a cache
    expect_error([&] { model.forward(ag::Indices(std::vector<std::int64_t>(17, 1), {1, 17})); },
                 {"LearnedPositionalEncoding", "positions 0 to 16", "past its table of 16"});
    std::vector<nn::KVCache> long_cache = model.make_cache(1, 32);
    model.forward(ag::Indices(std::vector<std::int64_t>(16, 1), {1, 16}), long_cache);
    expect_error([&] { model.forward(ag::Indices({1}, {1, 1}), long_cache); },
                 {"LearnedPositionalEncoding", "positions 16 to 16", "past its table of 16"});
    // one cache per layer
    std::vector<nn::KVCache> one = {model.blocks->layers[0]->self_attn->make_cache(1, 4)};
    expect_error([&] { model.forward(ag::Indices({1}, {1, 1}), one); }, {"TransformerEncoder", "1 KV caches for 2 layers"});
    // a cache of another shape or dtype
    nn::KVCache c(1, 4, 8, 4);
    expect_error([&] { c.append(ag::zeros({1, 2, 3, 4}), ag::zeros({1, 2, 3, 4})); }, {"KVCache", "[1,2,3,4]", "[1, 4, T, 4]"});
    expect_error([&] { c.append(ag::zeros({1, 4, 3, 4}, {.dtype = ag::f64}), ag::zeros({1, 4, 3, 4}, {.dtype = ag::f64})); },
                 {"KVCache", "float32"});
    expect_error([] { nn::KVCache(0, 4, 8, 4); }, {"KVCache", "at least 1"});
  }
  // the cache is for inference
  std::vector<nn::KVCache> cache = model.make_cache(1, 4);
  expect_error([&] { model.forward(ag::Indices({1}, {1, 1}), cache); }, {"KV cache is for inference", "ag::NoGrad"});
  // generate's context
  ag::Generator g(1);
  expect_error([&] { model.generate({1}, 3, {.sampling = {}, .context = 32}, g); }, {"context 32", "learned position table of 16"});
  expect_error([&] { model.generate({}, 3, {}, g); }, {"prompt of at least one token"});
  expect_error([] { nn::parse_position("relative"); }, {"unknown position encoding 'relative'", "learned", "alibi", "none"});
}

BOOST_AUTO_TEST_CASE(tied_weights_share_the_embedding) {
  ag::Generator g1(29), g2(29);
  nn::GPTOptions o = small(PositionEncoding::learned);
  nn::GPT untied(o, g1);
  o.tie_weights = true;
  nn::GPT tied(o, g2);
  BOOST_TEST(!tied.lm_head);
  BOOST_TEST(untied.num_parameters() - tied.num_parameters() == 11u * 16 + 11);  // lm_head's weight and bias
  ag::NoGrad ng;
  // logits = final hidden states . tok_emb.weight^T: the embedding's rows score the tokens
  const ag::Indices ids({1, 2, 3}, {1, 3});
  const ag::Tensor h = tied.blocks->forward(tied.pos_emb->forward(tied.tok_emb->forward(ids)), nn::causal_mask(3));
  BOOST_TEST(rel_diff(tied.forward(ids), ag::matmul(h, ag::transpose(tied.tok_emb->weight, 0, 1))) <= 1e-6);
}

BOOST_AUTO_TEST_SUITE_END()
