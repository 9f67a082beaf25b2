// Whole-module float64 gradient checks, mask proofs by perturbation, and known values.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <map>

#include "../common/expect_error.hpp"
#include "nn/nn.hpp"

using namespace ag;

namespace {

// Gradient-checks `forward` with respect to every parameter of `m` (converted to float64)
// and to the data inputs.
template <class M, class F>
void check_module(const std::string& what, M& m, const std::vector<Tensor>& data, F forward, double rtol = 1e-6) {
  m.to(f64);
  m.eval();  // no dropout
  std::vector<Tensor> inputs = m.parameters();
  const std::size_t P = inputs.size();
  for (const auto& d : data) inputs.push_back(d.to(f64).detach());
  GradcheckOptions opt;
  opt.rtol = rtol;
  const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) {
    const std::vector<Tensor> data_in(in.begin() + std::ptrdiff_t(P), in.end());
    return forward(data_in);
  }, inputs, opt);
  BOOST_TEST_MESSAGE(what << ": " << r.elements_checked << " elements, max rel error " << r.max_rel_error);
  BOOST_TEST(r.ok, what << ": " << r.report);
}

Tensor input(const Shape& s, std::uint64_t seed) {
  Generator g(seed);
  return randn(s, g, {f64});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(module_gradcheck)

BOOST_AUTO_TEST_CASE(linear_layernorm_feedforward) {
  Generator gen(1);
  nn::Linear fc(4, 3, gen);
  check_module("Linear", fc, {input({2, 5, 4}, 2)}, [&](const auto& x) { return fc(x[0]); });
  nn::LayerNorm ln(6);
  check_module("LayerNorm", ln, {input({3, 6}, 3)}, [&](const auto& x) { return ln(x[0]); });
  nn::FeedForward ff(4, 8, gen, nn::Activation::gelu);
  check_module("FeedForward", ff, {input({2, 4}, 4)}, [&](const auto& x) { return ff(x[0]); });
}

// nn::GPT with each position scheme (and GQA, a tied head, the tiled path): every parameter's
// gradient, through the embeddings, the positions, the causal blocks and the head.
BOOST_AUTO_TEST_CASE(gpt_every_position_scheme) {
  const ag::Indices ids({1, 4, 0, 6, 2, 3, 5, 1, 1, 0}, {2, 5});
  for (nn::PositionEncoding p : {nn::PositionEncoding::learned, nn::PositionEncoding::sinusoidal, nn::PositionEncoding::rope,
                                 nn::PositionEncoding::alibi, nn::PositionEncoding::none}) {
    Generator gen(21);
    const bool variant = p == nn::PositionEncoding::rope;  // GQA, tied head and tiled attention on one of them
    nn::GPT gpt({.vocab_size = 7, .block_size = 6, .d_model = 8, .num_heads = 2, .num_kv_heads = variant ? 1u : 0u,
                 .num_layers = 1, .position = p, .attention = variant ? nn::AttentionImpl::tiled : nn::AttentionImpl::naive,
                 .tie_weights = variant},
                gen);
    check_module(std::string("GPT, ") + nn::position_name(p), gpt, {}, [&](const auto&) { return gpt.forward(ids); });
  }
}

BOOST_AUTO_TEST_CASE(tanh_rnn_8_steps) {
  Generator gen(2);
  nn::RNN rnn(3, 5, gen);
  check_module("RNN", rnn, {input({2, 8, 3}, 5)}, [&](const auto& x) { return rnn(x[0]).output; });
  nn::RNN deep(3, 4, gen, {.num_layers = 2});
  check_module("RNN 2 layers", deep, {input({2, 4, 3}, 6)}, [&](const auto& x) { return deep(x[0]).last.back().h; });
}

BOOST_AUTO_TEST_CASE(lstm) {
  Generator gen(3);
  nn::LSTM lstm(3, 4, gen, {.forget_bias = 1.0});
  check_module("LSTM", lstm, {input({2, 6, 3}, 7)}, [&](const auto& x) {
    auto r = lstm(x[0]);
    return r.output + ag::unsqueeze(r.last[0].c, 1);  // through the cell state too
  });
}

BOOST_AUTO_TEST_CASE(gru) {
  Generator gen(4);
  nn::GRU gru(3, 4, gen);
  check_module("GRU", gru, {input({2, 6, 3}, 8)}, [&](const auto& x) { return gru(x[0]).output; });
  nn::GRUCell cell(3, 4, gen);
  check_module("GRUCell", cell, {input({2, 3}, 9), input({2, 4}, 10)}, [&](const auto& x) { return cell(x[0], {x[1], Tensor()}).h; });
}

BOOST_AUTO_TEST_CASE(additive_attention) {
  Generator gen(5);
  nn::AdditiveAttention att(4, 3, 5, gen);
  const ag::Mask pad = nn::padding_mask({5, 3}, 5);
  check_module("AdditiveAttention", att, {input({2, 4}, 11), input({2, 5, 3}, 12)}, [&](const auto& x) {
    auto a = att.forward(x[0], x[1], x[1], pad);
    return ag::concat({a.output, a.weights}, -1);
  });
}

BOOST_AUTO_TEST_CASE(multi_head_attention_masks) {
  Generator gen(6);
  nn::MultiHeadAttention mha(8, 2, gen);
  const ag::Mask causal = nn::causal_mask(4);
  const ag::Mask pad = nn::padding_mask({4, 2}, 4);
  check_module("MHA self causal+padding", mha, {input({2, 4, 8}, 13)}, [&](const auto& x) {
    return mha(x[0], x[0], x[0], pad, causal).output;
  });
  check_module("MHA cross", mha, {input({2, 3, 8}, 14), input({2, 5, 8}, 15)}, [&](const auto& x) {
    return mha(x[0], x[1], x[1]).output;
  });
}

// PyTorch's mask rule in MultiheadAttention: a Mask blocks, a float mask is added (and gets a
// gradient); the two kinds combine; -inf in a float mask blocks exactly as the Mask does.
BOOST_AUTO_TEST_CASE(multi_head_attention_float_masks) {
  for (nn::AttentionImpl impl : {nn::AttentionImpl::naive, nn::AttentionImpl::tiled}) {
    const std::string tag = impl == nn::AttentionImpl::tiled ? " tiled" : " naive";
    Generator gen(8);
    nn::MultiHeadAttention mha(8, 2, gen, 0.0, impl);
    mha.to(f64);
    const ag::Mask causal = nn::causal_mask(4), pad = nn::padding_mask({4, 2}, 4);
    const Tensor bias = input({4, 4}, 21), kpm_bias = input({2, 4}, 22);
    // the float masks are inputs here: their gradients are checked too
    check_module("MHA" + tag + ", float attn_mask", mha, {input({2, 4, 8}, 13), bias}, [&](const auto& x) {
      return mha(x[0], x[0], x[0], {}, x[1]).output;
    });
    check_module("MHA" + tag + ", Mask padding + float attn_mask", mha, {input({2, 4, 8}, 13), bias}, [&](const auto& x) {
      return mha(x[0], x[0], x[0], pad, x[1]).output;
    });
    check_module("MHA" + tag + ", float padding + Mask causal", mha, {input({2, 4, 8}, 13), kpm_bias}, [&](const auto& x) {
      return mha(x[0], x[0], x[0], x[1], causal).output;
    });
    const Tensor x = input({2, 4, 8}, 23);
    const auto by_mask = mha(x, x, x, pad, causal).output.to_vector();
    const auto by_float = mha(x, x, x, pad.additive(f64), causal.additive(f64)).output.to_vector();
    BOOST_TEST(by_mask == by_float, boost::test_tools::per_element());
    std::vector<double> ones(16, 0.0);
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = i + 1; j < 4; ++j) ones[i * 4 + j] = 1.0;
    BOOST_CHECK_THROW(mha(x, x, x, {}, ag::tensor(ones, {4, 4}, {f64})), ag::Error);
    BOOST_CHECK_THROW(mha(x, x, x, ag::tensor({0, 0, 1, 1, 0, 0, 0, 1}, {2, 4}, {f64})), ag::Error);
  }
}

// RoPE inside the layer (ctest -R rope): gradient-checked on both paths, and the two paths agree.
BOOST_AUTO_TEST_CASE(multi_head_attention_rope) {
  std::vector<double> out[2];
  for (nn::AttentionImpl impl : {nn::AttentionImpl::naive, nn::AttentionImpl::tiled}) {
    Generator gen(9);
    nn::MultiHeadAttention mha(8, 2, gen, 0.0, impl);
    mha.rotary = true;
    const ag::Mask causal = nn::causal_mask(5);
    const std::string tag = impl == nn::AttentionImpl::tiled ? "tiled" : "naive";
    check_module("MHA rope " + tag + ", self causal", mha, {input({2, 5, 8}, 24)}, [&](const auto& x) {
      return mha(x[0], x[0], x[0], {}, causal).output;
    });
    const Tensor x = input({2, 5, 8}, 25);
    out[impl == nn::AttentionImpl::tiled] = mha(x, x, x, {}, causal).output.to_vector();
  }
  for (std::size_t i = 0; i < out[0].size(); ++i) BOOST_TEST(std::abs(out[0][i] - out[1][i]) <= 1e-13);
}

BOOST_AUTO_TEST_CASE(multi_head_attention_tiled) {
  Generator gen(6);
  nn::MultiHeadAttention mha(8, 2, gen, 0.0, nn::AttentionImpl::tiled);
  const ag::Mask causal = nn::causal_mask(5);
  const ag::Mask pad = nn::padding_mask({5, 3}, 5);
  check_module("MHA tiled, self causal+padding", mha, {input({2, 5, 8}, 13)}, [&](const auto& x) {
    return mha(x[0], x[0], x[0], pad, causal).output;
  });
  check_module("MHA tiled, cross", mha, {input({2, 3, 8}, 14), input({2, 5, 8}, 15)}, [&](const auto& x) {
    return mha(x[0], x[1], x[1]).output;
  });
  nn::TransformerEncoderLayer enc({.d_model = 8, .num_heads = 2, .dim_feedforward = 16, .dropout = 0.0,
                                   .attention = nn::AttentionImpl::tiled}, gen);
  check_module("EncoderLayer tiled", enc, {input({2, 6, 8}, 16)}, [&](const auto& x) {
    return enc.forward(x[0], nn::causal_mask(6), nn::padding_mask({6, 4}, 6));
  });
}

BOOST_AUTO_TEST_CASE(transformer_layers_pre_and_post_ln) {
  for (bool pre : {false, true}) {
    Generator gen(7);
    nn::TransformerOptions o{.d_model = 8, .num_heads = 2, .dim_feedforward = 16, .dropout = 0.0, .norm_first = pre};
    nn::TransformerEncoderLayer enc(o, gen);
    const std::string tag = pre ? " pre-LN" : " post-LN";
    check_module("EncoderLayer" + tag, enc, {input({2, 4, 8}, 16)}, [&](const auto& x) {
      return enc.forward(x[0], {}, nn::padding_mask({4, 3}, 4));
    });
    nn::TransformerDecoderLayer dec(o, gen);
    check_module("DecoderLayer" + tag, dec, {input({2, 3, 8}, 17), input({2, 4, 8}, 18)}, [&](const auto& x) {
      return dec.forward(x[0], x[1], nn::causal_mask(3));
    });
  }
}

BOOST_AUTO_TEST_CASE(seq2seq_with_and_without_attention) {
  for (bool att : {true, false}) {
    Generator gen(8);
    nn::Seq2Seq model(7, 6, {.embed_dim = 4, .hidden_size = 5, .attention = att}, gen);
    const Indices src({3, 4, 5, 0, 6, 5, 0, 0}, {2, 4}), tgt_in({1, 3, 4, 1, 5, 3}, {2, 3});
    check_module(att ? "Seq2Seq attention" : "Seq2Seq plain", model, {}, [&](const auto&) {
      return model.forward(src, tgt_in, 0).logits;
    });
  }
}

// Bahdanau et al.'s encoder: both directions, s_0 = tanh(W_s bwd h_1), keys and values [B, S, 2H].
// Padded, the backward direction is packed (computed in Seq2Seq); unpadded, it is the GRU's own.
BOOST_AUTO_TEST_CASE(seq2seq_bidirectional_encoder) {
  for (bool att : {true, false}) {
    Generator gen(9);
    nn::Seq2Seq model(7, 6, {.embed_dim = 4, .hidden_size = 5, .attention = att, .bidirectional_encoder = true}, gen);
    const Indices src({3, 4, 5, 0, 6, 5, 0, 0}, {2, 4}), tgt_in({1, 3, 4, 1, 5, 3}, {2, 3});
    const std::string what = std::string("Seq2Seq bidirectional encoder") + (att ? ", attention" : ", no attention");
    check_module(what + ", padded", model, {}, [&](const auto&) { return model.forward(src, tgt_in, 0).logits; });
    check_module(what + ", no padding", model, {}, [&](const auto&) { return model.forward(src, tgt_in).logits; });
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(attention_facts)

// q = [[1, 0], [0, 1]], k = [[1, 0], [1, 1]], v = [[1, 2], [3, 4]], d = 2:
// scores / sqrt(2) = [[1, 1], [0, 1]] / sqrt(2); row 0 softmax = [0.5, 0.5] -> output [2, 3];
// row 1: w = softmax([0, 0.70711]) = [0.33024, 0.66976] -> output [2.33952, 3.33952].
BOOST_AUTO_TEST_CASE(scaled_dot_product_2x2_by_hand) {
  const Tensor q = tensor({1, 0, 0, 1}, {2, 2}, {f64}), k = tensor({1, 0, 1, 1}, {2, 2}, {f64});
  const Tensor v = tensor({1, 2, 3, 4}, {2, 2}, {f64});
  const auto a = nn::scaled_dot_product_attention(q, k, v);
  const double w1 = 1.0 / (1.0 + std::exp(1.0 / std::sqrt(2.0)));
  const std::vector<double> want_w{0.5, 0.5, w1, 1 - w1};
  const std::vector<double> want_o{2, 3, w1 * 1 + (1 - w1) * 3, w1 * 2 + (1 - w1) * 4};
  const auto w = a.weights.to_vector(), o = a.output.to_vector();
  for (std::size_t i = 0; i < 4; ++i) {
    BOOST_TEST(w[i] == want_w[i], boost::test_tools::tolerance(1e-12));
    BOOST_TEST(o[i] == want_o[i], boost::test_tools::tolerance(1e-12));
  }
  BOOST_TEST(w1 == 0.33024, boost::test_tools::tolerance(1e-4));
}

BOOST_AUTO_TEST_CASE(weights_sum_to_one_and_padding_gets_zero) {
  Generator gen(9);
  nn::MultiHeadAttention mha(8, 2, gen);
  const Tensor x = randn({2, 5, 8}, gen);
  const auto a = mha(x, x, x, nn::padding_mask({5, 3}, 5));
  const auto w = a.weights.to_vector();  // [2, 2, 5, 5]
  for (std::size_t row = 0; row < 2 * 2 * 5; ++row) {
    double s = 0;
    for (std::size_t j = 0; j < 5; ++j) s += w[row * 5 + j];
    BOOST_TEST(s == 1.0, boost::test_tools::tolerance(1e-6));
  }
  for (std::size_t h = 0; h < 2; ++h)  // batch 1 has length 3: keys 3 and 4 get exactly zero weight
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t j = 3; j < 5; ++j) BOOST_TEST(w[((1 * 2 + h) * 5 + i) * 5 + j] == 0.0);
}

BOOST_AUTO_TEST_CASE(causal_outputs_ignore_the_future) {
  Generator gen(10);
  nn::TransformerEncoderLayer layer({.d_model = 8, .num_heads = 2, .dim_feedforward = 16, .dropout = 0.0}, gen);
  layer.eval();
  const Tensor x = randn({1, 6, 8}, gen);
  const Tensor y = layer.forward(x, nn::causal_mask(6));
  for (std::size_t t = 0; t < 6; ++t) {  // change every input after t: outputs up to t stay the same
    Tensor x2 = x.detach();
    float* p = x2.data<float>().data();
    for (std::size_t i = (t + 1) * 8; i < 6 * 8; ++i) p[i] += 1.0f + float(i % 3);
    const Tensor y2 = layer.forward(x2, nn::causal_mask(6));
    const auto a = y.to_vector(), b = y2.to_vector();
    for (std::size_t i = 0; i < (t + 1) * 8; ++i) BOOST_TEST(a[i] == b[i]);
    if (t + 1 < 6) BOOST_TEST(a[(t + 1) * 8] != b[(t + 1) * 8]);
  }
}

// The same layer, the same parameters: naive and tiled attention give the same output and the
// same gradient for every parameter and the input.
BOOST_AUTO_TEST_CASE(tiled_attention_equals_naive_in_a_layer) {
  Generator gen(11);
  nn::TransformerEncoderLayer layer({.d_model = 16, .num_heads = 4, .dim_feedforward = 32, .dropout = 0.0}, gen);
  layer.to(f64);
  const Tensor x = randn({3, 37, 16}, gen, {f64});  // 37: not a multiple of the 64-key tile
  std::vector<std::vector<double>> got[2];
  for (int tiled = 0; tiled < 2; ++tiled) {
    layer.self_attn->impl = tiled ? nn::AttentionImpl::tiled : nn::AttentionImpl::naive;
    layer.zero_grad();
    const Tensor xi = x.detach().requires_grad_();
    const Tensor y = layer.forward(xi, nn::causal_mask(37), nn::padding_mask({37, 20, 5}, 37));
    ag::sum(y * y).backward();
    got[tiled].push_back(y.to_vector());
    got[tiled].push_back(xi.grad().to_vector());
    for (const Tensor& p : layer.parameters()) got[tiled].push_back(p.grad().to_vector());
  }
  double worst = 0;
  for (std::size_t k = 0; k < got[0].size(); ++k)
    for (std::size_t i = 0; i < got[0][k].size(); ++i)
      worst = std::max(worst, std::abs(got[0][k][i] - got[1][k][i]) / std::max(1.0, std::abs(got[0][k][i])));
  BOOST_TEST_MESSAGE("tiled vs naive in an encoder layer (float64): worst relative difference " << worst);
  BOOST_TEST(worst < 1e-12);
  BOOST_TEST(!layer.last_attention().defined());  // tiled keeps no weights
}

BOOST_AUTO_TEST_CASE(tiled_attention_refuses_weight_dropout) {
  Generator gen(12);
  nn::MultiHeadAttention mha(8, 2, gen, 0.1, nn::AttentionImpl::tiled);
  const Tensor x = randn({1, 3, 8}, gen);
  expect_error([&] { mha(x, x, x); }, {"MultiHeadAttention(d_model=8, heads=2, tiled)", "dropout"});
  mha.eval();
  BOOST_TEST(mha(x, x, x).output.shape() == (Shape{1, 3, 8}));  // in eval mode dropout is off: fine
}

BOOST_AUTO_TEST_CASE(padded_source_does_not_change_the_seq2seq_output) {
  Generator gen(11);
  nn::Seq2Seq model(9, 9, {.embed_dim = 4, .hidden_size = 6, .attention = true}, gen);
  const Indices a({3, 4, 5, 0, 0}, {1, 5}), b({3, 4, 5, 0, 0, 0, 0}, {1, 7}), tgt({1, 5, 4}, {1, 3});
  const auto ya = model.forward(a, tgt, 0), yb = model.forward(b, tgt, 0);
  const auto la = ya.logits.to_vector(), lb = yb.logits.to_vector();
  for (std::size_t i = 0; i < la.size(); ++i) BOOST_TEST(la[i] == lb[i], boost::test_tools::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(seq2seq_bidirectional_shapes_and_names) {
  Generator gen(14);
  const std::size_t E = 4, H = 6, A = 5, V = 9;
  nn::Seq2Seq model(V, V, {.embed_dim = E, .hidden_size = H, .attention = true, .attention_dim = A, .bidirectional_encoder = true},
                    gen);
  std::map<std::string, Shape> shape;
  for (const auto& [name, p] : model.named_parameters()) shape[name] = p.shape();
  BOOST_TEST((shape.at("encoder.weight_ih_l0") == Shape{3 * H, E}));
  BOOST_TEST((shape.at("encoder.weight_ih_l0_reverse") == Shape{3 * H, E}));
  BOOST_TEST((shape.at("encoder.weight_hh_l0_reverse") == Shape{3 * H, H}));
  BOOST_TEST((shape.at("init_proj.weight") == Shape{H, H}));  // W_s
  BOOST_TEST((shape.at("init_proj.bias") == Shape{H}));
  BOOST_TEST((shape.at("attention.query_proj.weight") == Shape{A, H}));
  BOOST_TEST((shape.at("attention.key_proj.weight") == Shape{A, 2 * H}));  // keys are the annotations [fwd h_j; bwd h_j]
  BOOST_TEST((shape.at("decoder.weight_ih") == Shape{3 * H, E + 2 * H}));  // [embed(y); c_t]
  BOOST_TEST((shape.at("out.weight") == Shape{V, 3 * H}));                 // [h_t; c_t]
  BOOST_TEST(model.describe() == "Seq2Seq(GRU, hidden=6, bidirectional encoder, additive attention)");

  const Indices src({3, 4, 5, 6, 7, 3, 4, 0, 0, 0}, {2, 5}), tgt({1, 3, 4, 1, 5, 3}, {2, 3});
  const auto y = model.forward(src, tgt, 0);
  BOOST_TEST((y.logits.shape() == Shape{2, 3, V}));
  BOOST_TEST((y.attention.shape() == Shape{2, 3, 5}));
  const auto w = y.attention.to_vector();
  for (std::size_t r = 0; r < 6; ++r) {
    double sum = 0;
    for (std::size_t s = 0; s < 5; ++s) sum += w[r * 5 + s];
    BOOST_TEST(sum == 1.0, boost::test_tools::tolerance(1e-5));
  }
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t s = 2; s < 5; ++s) BOOST_TEST(w[(3 + t) * 5 + s] == 0.0);  // row 1's padding gets no weight
  const auto d = model.greedy_decode(src, 1, 4, 0);
  BOOST_TEST((d.ids.shape == Shape{2, 4}));
  BOOST_TEST((d.attention.shape() == Shape{2, 4, 5}));

  // The default model is unchanged: one direction, no init_proj, keys of size H.
  Generator gen2(14);
  nn::Seq2Seq plain(V, V, {.embed_dim = E, .hidden_size = H, .attention = true, .attention_dim = A}, gen2);
  std::map<std::string, Shape> plain_shape;
  for (const auto& [name, p] : plain.named_parameters()) plain_shape[name] = p.shape();
  BOOST_TEST(plain_shape.count("init_proj.weight") == 0u);
  BOOST_TEST(plain_shape.count("encoder.weight_ih_l0_reverse") == 0u);
  BOOST_TEST((plain_shape.at("attention.key_proj.weight") == Shape{A, H}));
  BOOST_TEST(plain.describe() == "Seq2Seq(GRU, hidden=6, additive attention)");
  // Both draw the embeddings and the forward encoder first, from the same generator: the same values.
  BOOST_TEST(plain.src_embed->weight.to_vector() == model.src_embed->weight.to_vector(), boost::test_tools::per_element());
  BOOST_TEST(plain.encoder->weight_hh[0].to_vector() == model.encoder->weight_hh[0].to_vector(), boost::test_tools::per_element());
}

// s_0 = tanh(W_s bwd h_1): without attention the first logits are out(GRUCell(embed(BOS), s_0)), with bwd h_1 the
// backward direction's state after reading the whole source (the GRU's last[1], its output at t = 0, second half).
BOOST_AUTO_TEST_CASE(seq2seq_bidirectional_initial_state_is_tanh_Ws_backward_h1) {
  Generator gen(15);
  const std::size_t H = 6;
  nn::Seq2Seq model(9, 9, {.embed_dim = 4, .hidden_size = H, .attention = false, .bidirectional_encoder = true}, gen);
  const Indices src({3, 4, 5, 6}, {1, 4}), bos({1}, {1, 1});
  const auto got = model.forward(src, bos).logits.to_vector();  // [1, 1, 9]
  const nn::RecurrentOutput r = model.encoder->forward((*model.src_embed)(src));
  const auto first = ag::slice(ag::select(r.output, 1, 0), -1, std::int64_t(H), std::int64_t(2 * H)).to_vector();
  const auto last = r.last[1].h.to_vector();
  BOOST_TEST(first == last, boost::test_tools::per_element());
  const Tensor s0 = ag::tanh((*model.init_proj)(r.last[1].h));
  const Tensor h1 = model.decoder->forward((*model.tgt_embed)(Indices({1})), {s0, Tensor()}).h;
  const auto want = (*model.out)(h1).to_vector();
  BOOST_TEST(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) BOOST_TEST(got[i] == want[i], boost::test_tools::tolerance(1e-6));
  // and the backward direction matters: changing the first token (the last one it reads) changes s_0
  const auto other = model.forward(Indices({7, 4, 5, 6}, {1, 4}), bos).logits.to_vector();
  BOOST_TEST(std::abs(other[0] - got[0]) + std::abs(other[1] - got[1]) > 1e-4);
}

// Padding is packed, as in PyTorch: a sequence gives the same output alone and padded (in a batch
// with a longer one). Treated as tokens (pad_id -1), the same padding would change the output.
BOOST_AUTO_TEST_CASE(seq2seq_bidirectional_padding_is_packed) {
  for (bool att : {true, false}) {
    Generator gen(16);
    nn::Seq2Seq model(9, 9, {.embed_dim = 4, .hidden_size = 6, .attention = att, .bidirectional_encoder = true}, gen);
    const Indices alone({3, 4, 5}, {1, 3}), batch({3, 4, 5, 0, 0, 6, 7, 8, 3, 4}, {2, 5});
    const Indices tgt1({1, 5, 4}, {1, 3}), tgt2({1, 5, 4, 1, 4, 3}, {2, 3});
    const auto ya = model.forward(alone, tgt1).logits.to_vector();        // the GRU's own bidirectional forward
    const auto yb = model.forward(batch, tgt2, 0).logits.to_vector();     // packed, row 0
    const auto yc = model.forward(batch, tgt2, -1).logits.to_vector();    // padding read as tokens
    double differs = 0;
    for (std::size_t i = 0; i < ya.size(); ++i) {
      BOOST_TEST(ya[i] == yb[i], boost::test_tools::tolerance(1e-5));
      differs = std::max(differs, std::abs(ya[i] - yc[i]));
    }
    BOOST_TEST(differs > 1e-3);
  }
}

BOOST_AUTO_TEST_CASE(seq2seq_bidirectional_refuses_a_token_after_padding) {
  Generator gen(17);
  nn::Seq2Seq model(9, 9, {.embed_dim = 4, .hidden_size = 6, .attention = true, .bidirectional_encoder = true}, gen);
  expect_error([&] { model.forward(Indices({3, 0, 4}, {1, 3}), Indices({1}, {1, 1}), 0); },
               {"bidirectional encoder", "src row 0", "token after padding at position 2"});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(module_basics)

BOOST_AUTO_TEST_CASE(names_counts_and_tree) {
  Generator gen(12);
  nn::TransformerEncoderLayer layer({.d_model = 8, .num_heads = 2, .dim_feedforward = 16}, gen);
  const auto named = layer.named_parameters();
  std::vector<std::string> names;
  for (auto& [n, p] : named) names.push_back(n);
  const std::vector<std::string> want{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                                      "self_attn.out_proj.bias",  "linear1.weight",         "linear1.bias",
                                      "linear2.weight",           "linear2.bias",           "norm1.weight",
                                      "norm1.bias",               "norm2.weight",           "norm2.bias"};
  BOOST_TEST(names == want, boost::test_tools::per_element());
  // 3*8*8 + 3*8 + 8*8 + 8 + 16*8 + 16 + 8*16 + 8 + 4*8 = 600
  BOOST_TEST(layer.num_parameters() == 600u);
  const std::string tree = layer.tree();
  BOOST_TEST(tree.find("(self_attn): MultiHeadAttention(d_model=8, heads=2)") != std::string::npos, tree);
  BOOST_TEST(tree.find("600 parameters") != std::string::npos, tree);
}

BOOST_AUTO_TEST_CASE(lstm_forget_bias_and_bad_shapes) {
  Generator gen(13);
  nn::LSTM lstm(3, 4, gen, {.forget_bias = 1.0});
  const auto bi = lstm.bias_ih[0].to_vector(), bh = lstm.bias_hh[0].to_vector();
  for (std::size_t j = 4; j < 8; ++j) BOOST_TEST(bi[j] + bh[j] == 1.0);
  {  // unset: PyTorch's init, every bias (the forget gate's too) drawn from U(-1/sqrt(H), 1/sqrt(H))
    nn::LSTM plain(3, 4, gen);
    const auto pi = plain.bias_ih[0].to_vector(), ph = plain.bias_hh[0].to_vector();
    bool forget_drawn = false;
    for (std::size_t j = 0; j < 16; ++j) {
      BOOST_TEST(std::abs(pi[j]) <= 0.5);
      BOOST_TEST(std::abs(ph[j]) <= 0.5);
      if (j >= 4 && j < 8) forget_drawn = forget_drawn || (pi[j] != 0 && ph[j] != 0);
    }
    BOOST_TEST(forget_drawn);
  }
  BOOST_CHECK_THROW(lstm(randn({2, 5, 4}, gen)), ag::Error);
  try {
    lstm(randn({2, 5}, gen));
  } catch (const ag::Error& e) {
    BOOST_TEST(std::string(e.what()).find("LSTM(3, 4): input [2,5] should be [batch, time, 3]") != std::string::npos, e.what());
  }
  nn::Linear fc(4, 2, gen);
  BOOST_CHECK_THROW(fc(randn({3, 5}, gen)), ag::Error);
  BOOST_CHECK_THROW(nn::MultiHeadAttention(10, 3, gen), ag::Error);
}

BOOST_AUTO_TEST_CASE(to_f64_and_train_eval) {
  Generator gen(14);
  nn::FeedForward ff(4, 8, gen, nn::Activation::relu, 0.5);
  BOOST_TEST(ff.is_training());
  ff.eval();
  BOOST_TEST(!ff.dropout->is_training());
  const Tensor x = randn({3, 4}, gen);
  const auto a = ff(x).to_vector(), b = ff(x).to_vector();  // eval: dropout is the identity
  BOOST_TEST(a == b, boost::test_tools::per_element());
  ff.to(f64);
  BOOST_TEST(ff.linear1->weight.dtype() == f64);
  BOOST_TEST(ff(x.to(f64)).dtype() == f64);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(positional_encoding)

BOOST_AUTO_TEST_CASE(sinusoidal_table_in_the_models_dtype) {
  // PE[t, 2i] = sin(t / 10000^(2i/D)), PE[t, 2i+1] = cos(...): a float64 model gets the table in
  // float64 (right to ~1e-16), a float32 model the same table rounded to float32.
  const std::size_t D = 6, T = 50;
  nn::SinusoidalPositionalEncoding pe(D, 64);
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT(ag::dtype_name(d)) {
      const auto y = pe(ag::zeros({1, T, D}, {.dtype = d})).to_vector();
      double worst = 0;
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t i = 0; i < D; ++i) {
          const double angle = double(t) / std::pow(10000.0, double(i - i % 2) / double(D));
          const double want = i % 2 ? std::cos(angle) : std::sin(angle);
          worst = std::max(worst, std::abs(y[t * D + i] - (d == ag::f32 ? double(float(want)) : want)));
        }
      BOOST_TEST(worst <= (d == ag::f64 ? 1e-15 : 0.0));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(pytorch_options)

BOOST_AUTO_TEST_CASE(embedding_padding_idx_layernorm_without_affine_mha_without_bias) {
  Generator gen(21);
  nn::Embedding emb(5, 3, gen, 1);
  for (double v : ag::slice(emb.weight, 0, 1, 2).to_vector()) BOOST_TEST(v == 0.0);  // the padding row starts at 0
  BOOST_CHECK_THROW(nn::Embedding(5, 3, gen, 5), ag::Error);
  sum(emb(ag::Indices({1, 2, 1}, {3}))).backward();
  for (double v : ag::slice(emb.weight.grad(), 0, 1, 2).to_vector()) BOOST_TEST(v == 0.0);  // and gets no gradient

  nn::LayerNorm plain(6, 1e-5, false);
  BOOST_TEST(plain.parameters().empty());
  const auto y = plain(input({4, 6}, 7)).to_vector();
  for (std::size_t r = 0; r < 4; ++r) {
    double mean = 0, var = 0;
    for (std::size_t j = 0; j < 6; ++j) mean += y[r * 6 + j] / 6;
    for (std::size_t j = 0; j < 6; ++j) var += (y[r * 6 + j] - mean) * (y[r * 6 + j] - mean) / 6;
    BOOST_TEST(std::abs(mean) < 1e-12);
    BOOST_TEST(std::abs(var - 1) < 1e-4);  // eps = 1e-5 in the denominator
  }

  nn::MultiHeadAttention mha(8, 2, gen, 0.0, nn::AttentionImpl::naive, /*bias=*/false);
  std::vector<std::string> names;
  for (const auto& [n, p] : mha.named_parameters()) names.push_back(n);
  BOOST_TEST(names == (std::vector<std::string>{"in_proj_weight", "out_proj.weight"}), boost::test_tools::per_element());
  const Tensor x = input({2, 3, 8}, 8), mem = input({2, 4, 8}, 9);
  check_module("MultiHeadAttention bias=false, self", mha, {x}, [&](const auto& in) { return mha(in[0], in[0], in[0]).output; });
  check_module("MultiHeadAttention bias=false, cross", mha, {x, mem}, [&](const auto& in) { return mha(in[0], in[1], in[1]).output; });
  check_module("LayerNorm without affine", plain, {input({3, 6}, 10)}, [&](const auto& in) { return plain(in[0]); });
}

BOOST_AUTO_TEST_CASE(final_norm_chosen_apart_from_the_layout) {
  Generator gen(22);
  auto has_norm = [](const nn::Module& m) {
    for (const auto& [n, p] : m.named_parameters())
      if (n == "norm.weight") return true;
    return false;
  };
  const nn::TransformerOptions post{.d_model = 8, .num_heads = 2, .dim_feedforward = 16, .dropout = 0.0};
  nn::TransformerOptions pre = post;
  pre.norm_first = true;
  BOOST_TEST(!has_norm(nn::TransformerEncoder(post, 2, gen)));        // unset: as before, pre-LN only
  BOOST_TEST(has_norm(nn::TransformerEncoder(pre, 2, gen)));
  BOOST_TEST(has_norm(nn::TransformerEncoder(post, 2, gen, true)));   // torch's nn.Transformer post-LN stacks
  BOOST_TEST(!has_norm(nn::TransformerDecoder(pre, 2, gen, false)));  // a pre-LN stack without one
  nn::TransformerEncoder enc(post, 2, gen, true);
  check_module("TransformerEncoder post-LN with a final norm", enc, {input({2, 3, 8}, 11)}, [&](const auto& in) { return enc.forward(in[0]); });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(recurrent_options)

BOOST_AUTO_TEST_CASE(bidirectional_relu_and_dropout_between_layers) {
  Generator gen(31);
  for (nn::CellKind kind : {nn::CellKind::tanh_rnn, nn::CellKind::lstm, nn::CellKind::gru}) {
    BOOST_TEST_CONTEXT(nn::cell_name(kind)) {
      nn::Recurrent bi(kind, 3, 4, gen, {.num_layers = 2, .bidirectional = true});
      // PyTorch's names and shapes: the second layer reads both directions (2H = 8 features)
      std::vector<std::string> names;
      for (const auto& [n, p] : bi.named_parameters()) names.push_back(n);
      BOOST_TEST(names.size() == 16u);
      BOOST_TEST(names[4] == "weight_ih_l0_reverse");
      BOOST_TEST(bi.weight_ih[2].shape()[1] == 8u);
      const Tensor x = input({2, 5, 3}, 32);
      const nn::RecurrentOutput out = bi(x.to(f32));
      BOOST_TEST(ag::shape_str(out.output.shape()) == "[2,5,8]");
      BOOST_TEST(out.last.size() == 4u);
      // the backward direction of the top layer ends at t = 0: its last h is output[:, 0, H:]
      const auto first = ag::slice(ag::select(out.output, 1, 0), -1, 4, 8).to_vector(), last_bwd = out.last[3].h.to_vector();
      BOOST_TEST(first == last_bwd, boost::test_tools::per_element());
      check_module(std::string("bidirectional ") + nn::cell_name(kind), bi, {x}, [&](const auto& in) { return bi(in[0]).output; });
    }
  }
  // relu: h_t = relu(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), step by step by hand
  nn::RNN relu_rnn(2, 3, gen, {.nonlinearity = nn::RNNNonlinearity::relu});
  relu_rnn.to(f64);
  const Tensor x = input({1, 4, 2}, 33);
  Tensor h = zeros({1, 3}, {f64});
  for (std::int64_t t = 0; t < 4; ++t)
    h = relu(linear(select(x, 1, t), relu_rnn.weight_ih[0], relu_rnn.bias_ih[0]) + linear(h, relu_rnn.weight_hh[0], relu_rnn.bias_hh[0]));
  BOOST_TEST(relu_rnn(x).last[0].h.to_vector() == h.to_vector(), boost::test_tools::per_element());
  check_module("RNN relu", relu_rnn, {x}, [&](const auto& in) { return relu_rnn(in[0]).output; });
  BOOST_CHECK_THROW(nn::LSTM(2, 3, gen, {.nonlinearity = nn::RNNNonlinearity::relu}), ag::Error);
  // dropout between layers: only in train(), never after the last layer
  nn::GRU deep(3, 4, gen, {.num_layers = 3, .dropout = 0.5});
  const Tensor x32 = input({2, 6, 3}, 34).to(f32);
  deep.eval();
  const auto a = deep(x32).output.to_vector(), b = deep(x32).output.to_vector();
  BOOST_TEST(a == b, boost::test_tools::per_element());
  deep.train();
  BOOST_TEST(deep(x32).output.to_vector() != a);
  BOOST_TEST(deep.named_generators().size() == 1u);
  BOOST_CHECK_THROW(nn::GRU(3, 4, gen, {.dropout = 1.0}), ag::Error);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- ALiBi (ctest -R alibi) ----------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(alibi)

BOOST_AUTO_TEST_CASE(slopes_are_the_papers) {
  // Powers of two: 2^(-8h/H). Otherwise (the reference code): the slopes of the nearest smaller
  // power of two n, then every other slope of 2n.
  const std::vector<double> h8 = nn::alibi_slopes(8), h6 = nn::alibi_slopes(6), h1 = nn::alibi_slopes(1);
  BOOST_TEST(h8 == std::vector<double>({0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625}),
             boost::test_tools::per_element());
  BOOST_TEST(h6 == std::vector<double>({0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125}), boost::test_tools::per_element());
  BOOST_TEST(h1 == std::vector<double>({0.00390625}), boost::test_tools::per_element());
  BOOST_CHECK_THROW(nn::alibi_slopes(0), ag::Error);
}

BOOST_AUTO_TEST_CASE(bias_values) {
  const auto b = nn::alibi_bias({0.5}, 3, 3, false, f64).to_vector();  // -m (i - j)
  BOOST_TEST(b == std::vector<double>({0, 0.5, 1, -0.5, 0, 0.5, -1, -0.5, 0}), boost::test_tools::per_element());
  const auto s = nn::alibi_bias({0.25}, 2, 3, true, f64).to_vector();  // -m |i - j|
  BOOST_TEST(s == std::vector<double>({0, -0.25, -0.5, -0.25, 0, -0.25}), boost::test_tools::per_element());
}

// In MultiheadAttention: naive (an explicit float mask) and tiled (per tile) agree, and both are
// gradient-checked, causal and symmetric.
BOOST_AUTO_TEST_CASE(multi_head_attention_alibi) {
  for (bool symmetric : {false, true}) {
    std::vector<double> out[2];
    for (nn::AttentionImpl impl : {nn::AttentionImpl::naive, nn::AttentionImpl::tiled}) {
      Generator gen(12);
      nn::MultiHeadAttention mha(8, 2, gen, 0.0, impl);
      mha.alibi = true;
      mha.alibi_symmetric = symmetric;
      const ag::AttentionMask m = symmetric ? ag::AttentionMask(nn::padding_mask({5, 3}, 5).reshape({2, 1, 1, 5}))
                                            : ag::AttentionMask(nn::causal_mask(5));
      const std::string tag = std::string(impl == nn::AttentionImpl::tiled ? "tiled" : "naive") + (symmetric ? " symmetric" : " causal");
      check_module("MHA alibi " + tag, mha, {input({2, 5, 8}, 26)}, [&](const auto& x) { return mha(x[0], x[0], x[0], {}, m).output; });
      const Tensor x = input({2, 5, 8}, 27);
      out[impl == nn::AttentionImpl::tiled] = mha(x, x, x, {}, m).output.to_vector();
    }
    for (std::size_t i = 0; i < out[0].size(); ++i) BOOST_TEST(std::abs(out[0][i] - out[1][i]) <= 1e-13);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- grouped-query attention (ctest -R gqa) -------------------------------------------------------
BOOST_AUTO_TEST_SUITE(gqa)

BOOST_AUTO_TEST_CASE(gradcheck_gqa_and_mqa) {
  for (std::size_t kv : {2, 1})
    for (nn::AttentionImpl impl : {nn::AttentionImpl::naive, nn::AttentionImpl::tiled}) {
      Generator gen(13);
      nn::MultiHeadAttention mha(8, 4, gen, 0.0, impl, true, kv);
      BOOST_TEST(ag::shape_str(mha.in_proj_weight.shape()) == (kv == 2 ? "[16,8]" : "[12,8]"));  // D + 2 D_kv rows
      const std::string tag = std::string(kv == 1 ? "MQA" : "GQA") + (impl == nn::AttentionImpl::tiled ? " tiled" : " naive");
      const ag::Mask causal = nn::causal_mask(5);
      check_module(tag + ", self causal", mha, {input({2, 5, 8}, 28)}, [&](const auto& x) {
        return mha(x[0], x[0], x[0], {}, causal).output;
      });
      check_module(tag + ", cross", mha, {input({2, 3, 8}, 29), input({2, 6, 8}, 30)}, [&](const auto& x) {
        return mha(x[0], x[1], x[1]).output;
      });
    }
}

// GQA is multi-head attention whose heads in a group share their key and value weights: copy the
// GQA layer's W_k, W_v (and biases) into an ordinary 4-head layer, repeated per group, and the
// two compute the same outputs.
BOOST_AUTO_TEST_CASE(equals_multi_head_with_shared_key_value_weights) {
  const std::size_t D = 8, H = 4, Hkv = 2, d = D / H, G = H / Hkv;
  Generator gen(14);
  nn::MultiHeadAttention gqa(D, H, gen, 0.0, nn::AttentionImpl::naive, true, Hkv), mha(D, H, gen);
  gqa.to(f64);
  mha.to(f64);
  {
    ag::NoGrad ng;
    Generator draw(16);
    for (auto& x : gqa.in_proj_bias.data<double>()) x = draw.normal();  // nonzero biases
    for (auto& x : gqa.out_proj->bias.data<double>()) x = draw.normal();
    const auto w = gqa.in_proj_weight.to_vector(), b = gqa.in_proj_bias.to_vector();
    std::vector<double> w_full(3 * D * D), b_full(3 * D);
    for (std::size_t r = 0; r < 3 * D; ++r) {  // row r of the full in_proj: which row of the GQA one
      std::size_t src = r;
      if (r >= D) {
        const std::size_t block = (r - D) / D, in_block = (r - D) % D, head = in_block / d;  // block 0: W_k, 1: W_v
        src = D + block * Hkv * d + (head / G) * d + in_block % d;
      }
      for (std::size_t c = 0; c < D; ++c) w_full[r * D + c] = w[src * D + c];
      b_full[r] = b[src];
    }
    std::copy(w_full.begin(), w_full.end(), mha.in_proj_weight.data<double>().begin());
    std::copy(b_full.begin(), b_full.end(), mha.in_proj_bias.data<double>().begin());
    mha.out_proj->weight.data<double>() = gqa.out_proj->weight.data<double>();
    mha.out_proj->bias.data<double>() = gqa.out_proj->bias.data<double>();
  }
  const Tensor x = input({2, 5, D}, 31), m = input({2, 7, D}, 32);
  for (bool self : {true, false}) {
    const auto a = self ? gqa(x, x, x).output.to_vector() : gqa(x, m, m).output.to_vector();
    const auto b = self ? mha(x, x, x).output.to_vector() : mha(x, m, m).output.to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(std::abs(a[i] - b[i]) <= 1e-13);
  }
}

BOOST_AUTO_TEST_CASE(errors) {
  Generator gen(15);
  BOOST_CHECK_THROW(nn::MultiHeadAttention(8, 4, gen, 0.0, nn::AttentionImpl::naive, true, 3), ag::Error);
  BOOST_CHECK_THROW(nn::MultiHeadAttention(8, 4, gen, 0.0, nn::AttentionImpl::naive, true, 8), ag::Error);
  nn::MultiHeadAttention mqa(8, 4, gen, 0.0, nn::AttentionImpl::naive, true, 1);
  BOOST_TEST(mqa.num_kv_heads() == 1u);
  BOOST_TEST(mqa.describe().find("num_kv_heads=1") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- attention in linear time: sliding windows, global tokens, linear attention ----------------
// (ctest -R window, ctest -R linear_attention)

BOOST_AUTO_TEST_SUITE(efficient_attention)

// Query position i = offset + r blocks key j when |i - j| > window, unless either is global.
BOOST_AUTO_TEST_CASE(sliding_window_mask_known_values) {
  const auto m = nn::sliding_window_mask(4, 5, 1);
  const std::vector<std::uint8_t> want{0, 0, 1, 1, 1,  //
                                       0, 0, 0, 1, 1,  //
                                       1, 0, 0, 0, 1,  //
                                       1, 1, 0, 0, 0};
  BOOST_TEST(std::vector<std::uint8_t>(m.data(), m.data() + 20) == want, boost::test_tools::per_element());
  const auto g = nn::sliding_window_mask(3, 5, 0, {0}, 2);  // queries at 2, 3, 4; position 0 global
  const std::vector<std::uint8_t> want_g{0, 1, 0, 1, 1,  //
                                         0, 1, 1, 0, 1,  //
                                         0, 1, 1, 1, 0};
  BOOST_TEST(std::vector<std::uint8_t>(g.data(), g.data() + 15) == want_g, boost::test_tools::per_element());
  expect_error([] { nn::sliding_window_mask(3, 5, 1, {5}); }, {"sliding_window_mask", "position 5", "5 keys"});
}

// MultiHeadAttention with a window (and global tokens, causal or not): the tiled path, which skips
// the blocks outside the band, gives the naive path's output (the band as a mask); both are
// gradient-checked, alone and inside an encoder layer.
BOOST_AUTO_TEST_CASE(mha_sliding_window_naive_equals_tiled) {
  for (bool causal : {false, true})
    for (const std::vector<std::size_t>& g : {std::vector<std::size_t>{}, std::vector<std::size_t>{0}}) {
      std::vector<double> out[2];
      for (nn::AttentionImpl impl : {nn::AttentionImpl::naive, nn::AttentionImpl::tiled}) {
        Generator gen(41);
        nn::MultiHeadAttention mha(8, 2, gen, 0.0, impl);
        mha.window = 2;
        mha.global_tokens = g;
        const std::string tag = std::string(impl == nn::AttentionImpl::tiled ? "tiled" : "naive") + (causal ? " causal" : "") +
                                (g.empty() ? "" : " global 0");
        BOOST_TEST(mha.describe().find("window=2") != std::string::npos);
        check_module("MHA window 2 " + tag, mha, {input({2, 9, 8}, 42)}, [&](const auto& x) {
          return mha(x[0], x[0], x[0], nn::padding_mask({9, 7}, 9), {}, causal).output;
        });
        const Tensor x = input({2, 9, 8}, 43);
        out[impl == nn::AttentionImpl::tiled] = mha(x, x, x, nn::padding_mask({9, 7}, 9), {}, causal).output.to_vector();
      }
      for (std::size_t i = 0; i < out[0].size(); ++i) BOOST_TEST(std::abs(out[0][i] - out[1][i]) <= 1e-13);
    }
  Generator gen(44);
  nn::TransformerEncoderLayer enc({.d_model = 8, .num_heads = 2, .dim_feedforward = 16, .dropout = 0.0, .norm_first = true,
                                   .attention = nn::AttentionImpl::tiled, .window = 1, .global_tokens = {0}}, gen);
  BOOST_TEST(enc.self_attn->window.value_or(99) == 1u);
  check_module("EncoderLayer window 1 global 0, causal", enc, {input({2, 7, 8}, 45)}, [&](const auto& x) {
    return enc.forward(x[0], {}, {}, true);
  });
  nn::MultiHeadAttention bad(8, 2, gen);
  bad.global_tokens = {0};
  const Tensor x = input({1, 4, 8}, 46).to(f32);
  expect_error([&] { bad(x, x, x); }, {"MultiHeadAttention", "global_tokens need a window"});
}

// Decoding with a KV cache through a window with global tokens (one of them past the tokens fed
// so far) writes, token by token, the rows of the whole causal forward, on both paths.
BOOST_AUTO_TEST_CASE(window_and_global_tokens_with_a_kv_cache) {
  for (nn::AttentionImpl impl : {nn::AttentionImpl::naive, nn::AttentionImpl::tiled}) {
    Generator gen(49);
    nn::MultiHeadAttention mha(8, 2, gen, 0.0, impl);
    mha.to(f64);
    mha.window = 2;
    mha.global_tokens = {0, 100};
    const Tensor x = input({1, 7, 8}, 50);
    ag::NoGrad no_grad;
    const auto full = mha(x, x, x, {}, {}, true).output.to_vector();
    nn::KVCache cache = mha.make_cache(1, 7);
    for (std::int64_t t = 0; t < 7; ++t) {
      const auto row = mha.forward(ag::slice(x, 1, t, t + 1), cache).output.to_vector();
      for (std::size_t c = 0; c < 8; ++c) BOOST_TEST(std::abs(row[c] - full[std::size_t(t) * 8 + c]) <= 1e-14);
    }
  }
}

// is_causal (applied by the attention itself) gives what the causal mask gives, on both paths.
BOOST_AUTO_TEST_CASE(is_causal_equals_the_causal_mask) {
  for (nn::AttentionImpl impl : {nn::AttentionImpl::naive, nn::AttentionImpl::tiled}) {
    Generator gen(47);
    nn::MultiHeadAttention mha(8, 2, gen, 0.0, impl);
    mha.to(f64);
    const Tensor x = input({2, 6, 8}, 48);
    const auto a = mha(x, x, x, {}, nn::causal_mask(6)).output.to_vector(), b = mha(x, x, x, {}, {}, true).output.to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(std::abs(a[i] - b[i]) <= 1e-15);
    const Tensor m = input({2, 4, 8}, 51);
    expect_error([&] { mha(x, m, m, {}, {}, true); }, {"is_causal needs as many queries as keys", "[2,6,8]", "[2,4,8]"});
  }
}

// AttentionImpl::linear in the layer: gradient-checked (causal, padded, GQA, cross); a padded batch
// element gives what its unpadded sequence alone gives; causal row t depends on x_0..x_t only.
BOOST_AUTO_TEST_CASE(mha_linear_attention) {
  for (std::size_t kv : {0, 1}) {
    Generator gen(51);
    nn::MultiHeadAttention mha(8, 2, gen, 0.0, nn::AttentionImpl::linear, true, kv);
    BOOST_TEST(mha.describe().find("linear") != std::string::npos);
    const std::string tag = kv ? " MQA" : "";
    check_module("MHA linear causal" + tag, mha, {input({2, 6, 8}, 52)}, [&](const auto& x) {
      return mha(x[0], x[0], x[0], {}, {}, true).output;
    });
    check_module("MHA linear padded" + tag, mha, {input({2, 6, 8}, 53)}, [&](const auto& x) {
      return mha(x[0], x[0], x[0], nn::padding_mask({6, 4}, 6)).output;
    });
    check_module("MHA linear cross" + tag, mha, {input({2, 3, 8}, 54), input({2, 5, 8}, 55)}, [&](const auto& x) {
      return mha(x[0], x[1], x[1]).output;
    });
    // padding: element 1 has 4 real keys; its output equals the layer run on those 4 positions alone
    const Tensor x = input({2, 6, 8}, 56);
    const Tensor padded = mha(x, x, x, nn::padding_mask({6, 4}, 6)).output;
    const Tensor alone_x = ag::slice(ag::slice(x, 0, 1, 2), 1, 0, 4);
    const auto alone = mha(alone_x, alone_x, alone_x).output.to_vector();
    const auto rows = ag::slice(ag::slice(padded, 0, 1, 2), 1, 0, 4).to_vector();
    for (std::size_t i = 0; i < alone.size(); ++i) BOOST_TEST(std::abs(rows[i] - alone[i]) <= 1e-14);
    // causality: changing x_4 leaves rows 0..3 unchanged and changes row 4
    std::vector<double> changed = x.to_vector();
    for (std::size_t c = 0; c < 8; ++c) changed[(0 * 6 + 4) * 8 + c] += 1.0;
    const Tensor x2 = ag::tensor(changed, x.shape(), {f64});
    const auto y1 = mha(x, x, x, {}, {}, true).output.to_vector(), y2 = mha(x2, x2, x2, {}, {}, true).output.to_vector();
    for (std::size_t t = 0; t < 6; ++t) {
      double diff = 0;
      for (std::size_t c = 0; c < 8; ++c) diff = std::max(diff, std::abs(y1[t * 8 + c] - y2[t * 8 + c]));
      if (t < 4) BOOST_TEST(diff == 0.0, "row " << t << " changed by " << diff);
      else BOOST_TEST(diff > 1e-3, "row " << t << " did not change");
    }
  }
}

BOOST_AUTO_TEST_CASE(mha_linear_attention_errors) {
  Generator gen(57);
  nn::MultiHeadAttention mha(8, 2, gen, 0.0, nn::AttentionImpl::linear);
  const Tensor x = input({2, 4, 8}, 58).to(f32);
  expect_error([&] { mha(x, x, x, {}, nn::causal_mask(4)); }, {"linear attention takes no attn_mask", "is_causal"});
  mha.alibi = true;
  expect_error([&] { mha(x, x, x); }, {"linear attention takes no ALiBi"});
  mha.alibi = false;
  ag::NoGrad ng;
  nn::KVCache cache = mha.make_cache(2, 8);
  expect_error([&] { mha.forward(x, cache); }, {"linear attention has no KV cache"});
  nn::MultiHeadAttention dropping(8, 2, gen, 0.1, nn::AttentionImpl::linear);
  expect_error([&] { dropping(x, x, x); }, {"no weights to drop out"});
}

BOOST_AUTO_TEST_SUITE_END()

// Luong et al.'s (2015) scores: dot, general, and concat (the additive score without the key bias).
BOOST_AUTO_TEST_SUITE(luong_attention)

BOOST_AUTO_TEST_CASE(gradcheck_dot_general_concat) {
  Generator gen(21);
  const ag::Mask pad = nn::padding_mask({5, 3}, 5);
  nn::LuongAttention dot(4, 4, nn::LuongScore::dot, gen), general(4, 3, nn::LuongScore::general, gen);
  nn::AdditiveAttention concat(4, 3, 5, gen, /*key_bias=*/false);
  const Tensor q = input({2, 4}, 31), k4 = input({2, 5, 4}, 32), k3 = input({2, 5, 3}, 33);
  auto both = [](const nn::AttentionOutput& a) { return ag::concat({a.output, a.weights}, -1); };
  check_module("Luong dot", dot, {q, k4}, [&](const auto& x) { return both(dot.forward(x[0], x[1], x[1], pad)); });
  check_module("Luong general", general, {q, k3}, [&](const auto& x) { return both(general.forward(x[0], x[1], x[1], pad)); });
  check_module("Luong concat", concat, {q, k3}, [&](const auto& x) { return both(concat.forward(x[0], x[1], x[1], pad)); });
  BOOST_TEST(dot.parameters().empty());
  BOOST_TEST(general.parameters().size() == 1u);  // W_a only
  BOOST_TEST(concat.parameters().size() == 3u);   // W_q, W_k, v: no key bias
}

// q = [1, 2], keys [[1, 0], [0, 1], [1, 1], [5, 5]] with the last one padded: dot scores 1, 2, 3
// (the padded key's 15 never counts); weights softmax(1, 2, 3) = [0.09003, 0.24473, 0.66524, 0].
BOOST_AUTO_TEST_CASE(known_values) {
  Generator gen(22);
  const Tensor q = tensor({1, 2}, {1, 2}, {f64}), keys = tensor({1, 0, 0, 1, 1, 1, 5, 5}, {1, 4, 2}, {f64});
  const Tensor values = tensor({1, 0, 0, 1, 2, 2, 100, 100}, {1, 4, 2}, {f64});
  const ag::Mask pad = nn::padding_mask({3}, 4);
  nn::LuongAttention dot(2, 2, nn::LuongScore::dot, gen);
  dot.to(f64);
  const nn::AttentionOutput a = dot.forward(q, keys, values, pad);
  const std::vector<double> w = a.weights.to_vector(), c = a.output.to_vector();
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const std::vector<double> expected_w = {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 0.0};
  for (std::size_t s = 0; s < 4; ++s) BOOST_TEST(w[s] == expected_w[s], boost::test_tools::tolerance(1e-14));
  BOOST_TEST(w[3] == 0.0);  // exactly: padding is -inf before the softmax
  BOOST_TEST(c[0] == expected_w[0] + 2 * expected_w[2], boost::test_tools::tolerance(1e-14));
  BOOST_TEST(c[1] == expected_w[1] + 2 * expected_w[2], boost::test_tools::tolerance(1e-14));

  // general with W_a = I is dot; with W_a = 2 I the scores double.
  nn::LuongAttention general(2, 2, nn::LuongScore::general, gen);
  general.to(f64);
  auto set_w_a = [&](double d) {  // W_a = d I
    auto& w_a = general.key_proj->weight.data<double>();
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 2; ++j) w_a(i, j) = i == j ? d : 0.0;
  };
  set_w_a(1);
  const std::vector<double> wg = general.forward(q, keys, values, pad).weights.to_vector();
  for (std::size_t s = 0; s < 4; ++s) BOOST_TEST(wg[s] == w[s], boost::test_tools::tolerance(1e-15));
  set_w_a(2);
  const double z2 = std::exp(2.0) + std::exp(4.0) + std::exp(6.0);
  BOOST_TEST(general.forward(q, keys, values, pad).weights.to_vector()[2] == std::exp(6.0) / z2, boost::test_tools::tolerance(1e-14));

  // concat is the additive score with the key bias at zero, weight for weight.
  Generator g1(23), g2(23);
  nn::AdditiveAttention additive(2, 2, 3, g1), concat(2, 2, 3, g2, /*key_bias=*/false);
  additive.to(f64);
  concat.to(f64);
  for (auto& b : additive.key_proj->bias.data<double>()) b = 0;
  concat.query_proj->weight.data<double>() = additive.query_proj->weight.data<double>();
  concat.key_proj->weight.data<double>() = additive.key_proj->weight.data<double>();
  concat.v.data<double>() = additive.v.data<double>();
  const std::vector<double> wa = additive.forward(q, keys, values, pad).weights.to_vector(),
                            wc = concat.forward(q, keys, values, pad).weights.to_vector();
  for (std::size_t s = 0; s < 4; ++s) BOOST_TEST(wc[s] == wa[s], boost::test_tools::tolerance(1e-15));
  BOOST_TEST(concat.describe() == "AdditiveAttention(query=2, key=2, hidden=3, no key bias)");
  BOOST_TEST(general.describe() == "LuongAttention(general, query=2, key=2)");
}

BOOST_AUTO_TEST_CASE(seq2seq_with_each_score) {
  const Indices src({3, 4, 5, 0, 6, 5, 0, 0}, {2, 4}), tgt_in({1, 3, 4, 1, 5, 3}, {2, 3});
  for (nn::AttentionScore score : {nn::AttentionScore::dot, nn::AttentionScore::general, nn::AttentionScore::concat}) {
    Generator gen(24);
    nn::Seq2Seq model(7, 6, {.embed_dim = 4, .hidden_size = 5, .attention = true, .score = score}, gen);
    check_module(std::string("Seq2Seq ") + nn::score_name(score), model, {}, [&](const auto&) { return model.forward(src, tgt_in, 0).logits; });
    BOOST_TEST(model.describe() == std::string("Seq2Seq(GRU, hidden=5, ") + nn::score_name(score) + " attention)");
    // padded source positions get no weight, whatever the score
    const Tensor w = model.forward(src, tgt_in, 0).attention;  // [2, 3, 4]
    const std::vector<double> wv = w.to_vector();
    for (std::size_t t = 0; t < 3; ++t) {
      BOOST_TEST(wv[0 * 12 + t * 4 + 3] == 0.0);
      BOOST_TEST(wv[1 * 12 + t * 4 + 2] == 0.0);
    }
  }
  // general maps the 2H annotations of a bidirectional encoder to the decoder's H
  Generator gen(25);
  nn::Seq2Seq bi(7, 6, {.embed_dim = 4, .hidden_size = 5, .attention = true, .bidirectional_encoder = true, .score = nn::AttentionScore::general},
                 gen);
  check_module("Seq2Seq bidirectional general", bi, {}, [&](const auto&) { return bi.forward(src, tgt_in, 0).logits; });
}

BOOST_AUTO_TEST_CASE(errors) {
  Generator gen(26);
  expect_error([&] { nn::LuongAttention(4, 3, nn::LuongScore::dot, gen); }, {"LuongAttention(dot", "4", "3", "same size"});
  expect_error([&] { nn::Seq2Seq(7, 6, {.hidden_size = 5, .bidirectional_encoder = true, .score = nn::AttentionScore::dot}, gen); },
               {"Seq2Seq", "dot", "10", "bidirectional", "general"});
  nn::LuongAttention general(4, 3, nn::LuongScore::general, gen);
  expect_error([&] { general.project_keys(input({2, 5, 4}, 1).to(f32)); }, {"LuongAttention(general", "[2,5,4]", "[B, S, 3]"});
  expect_error([&] { general.project_keys(input({5, 3}, 1).to(f32)); }, {"LuongAttention(general", "[5,3]", "keys"});
  const Tensor keys = general.project_keys(input({2, 5, 3}, 2).to(f32));
  expect_error([&] { general.attend(input({2, 3}, 3).to(f32), keys, keys); }, {"LuongAttention(general", "[2,3]", "[B, 4]"});
}

BOOST_AUTO_TEST_SUITE_END()
