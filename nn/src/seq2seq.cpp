#include "nn/seq2seq.hpp"

#include "nn/transformer.hpp"  // pad_mask_from_ids

namespace nn {

Seq2Seq::Seq2Seq(std::size_t src_vocab, std::size_t tgt_vocab, const Seq2SeqOptions& o, ag::Generator& gen) : o_(o) {
  const std::size_t H = o.hidden_size, E = o.embed_dim;
  const std::size_t N = o.bidirectional_encoder ? 2 * H : H;  // the size of an annotation h_j (keys, values, c_t)
  src_embed = register_module("src_embed", std::make_shared<Embedding>(src_vocab, E, gen));
  tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(tgt_vocab, E, gen));
  encoder = register_module("encoder", std::make_shared<GRU>(E, H, gen, RecurrentOptions{.bidirectional = o.bidirectional_encoder}));
  if (o.bidirectional_encoder) init_proj = register_module("init_proj", std::make_shared<Linear>(H, H, gen));
  decoder = register_module("decoder", std::make_shared<GRUCell>(o.attention ? E + N : E, H, gen));
  if (o.attention && o.score == AttentionScore::dot && N != H)
    ag::fail("Seq2Seq: the dot score needs annotations of the decoder's size ", H, "; the bidirectional encoder's are ", N,
             " (2 x hidden_size): use AttentionScore::general, whose W_a maps one to the other");
  if (o.attention) {
    const std::size_t A = o.attention_dim ? o.attention_dim : H;
    std::shared_ptr<SourceAttention> a;
    switch (o.score) {
      case AttentionScore::additive: a = std::make_shared<AdditiveAttention>(H, N, A, gen); break;
      case AttentionScore::concat: a = std::make_shared<AdditiveAttention>(H, N, A, gen, /*key_bias=*/false); break;
      case AttentionScore::dot: a = std::make_shared<LuongAttention>(H, N, LuongScore::dot, gen); break;
      case AttentionScore::general: a = std::make_shared<LuongAttention>(H, N, LuongScore::general, gen); break;
    }
    attention = register_module("attention", a);
  }
  out = register_module("out", std::make_shared<Linear>(o.attention ? H + N : H, tgt_vocab, gen));
}

Seq2Seq::Encoded Seq2Seq::encode(const ag::Indices& src, std::int64_t pad_id) const {
  if (src.shape.size() != 2) ag::fail(describe(), ": src should be [batch, source length], got ", ag::shape_str(src.shape));
  if (o_.bidirectional_encoder) return encode_bidirectional(src, pad_id);
  const std::size_t B = src.shape[0], S = src.shape[1];
  Encoded e;
  RecurrentOutput r = encoder->forward((*src_embed)(src));
  e.states = r.output;  // [B, S, H]
  e.pad_mask = pad_mask_from_ids(src, pad_id);
  if (e.pad_mask.defined()) {
    // The last real (non-pad) state of each sequence: sum_t states[:, t] * [t == length - 1]
    Tensor pick = ag::zeros({B, S, 1}, {e.states.dtype()});
    ag::dispatch(pick.dtype(), [&](auto t) {
      using V = decltype(t);
      V* p = pick.data<V>().data();
      for (std::size_t b = 0; b < B; ++b) {
        std::size_t len = 0;
        while (len < S && src.values[b * S + len] != pad_id) ++len;
        p[b * S + (len ? len - 1 : 0)] = V(1);
      }
    });
    e.final_state = ag::sum(e.states * pick, {1});
  } else {
    e.final_state = r.last.back().h;
  }
  if (attention) e.projected_keys = attention->project_keys(e.states);
  return e;
}

// Bahdanau et al.'s encoder: annotations h_j = [fwd h_j; bwd h_j] and s_0 = tanh(W_s bwd h_1).
Seq2Seq::Encoded Seq2Seq::encode_bidirectional(const ag::Indices& src, std::int64_t pad_id) const {
  const std::size_t B = src.shape[0], S = src.shape[1], H = o_.hidden_size;
  Encoded e;
  const Tensor x = (*src_embed)(src);  // [B, S, E]
  e.pad_mask = pad_mask_from_ids(src, pad_id);
  Tensor backward_first;  // bwd h_1: the backward direction's state after reading the whole source, [B, H]
  if (!e.pad_mask.defined()) {
    RecurrentOutput r = encoder->forward(x);
    e.states = r.output;  // [B, S, 2H]
    backward_first = r.last[1].h;
  } else {
    // Packed, as PyTorch's pack_padded_sequence: the backward direction must start at each
    // sequence's last real token, not at the end of the padding. real[b, t] = 0 at padding; the
    // backward state is multiplied by it, so it stays zero through the padding and the last real
    // token starts from zeros. (The forward direction's states at padding are never read: the
    // attention masks them.)
    Tensor real = ag::zeros({B, S, 1}, {x.dtype()});
    ag::dispatch(real.dtype(), [&](auto tag) {
      using V = decltype(tag);
      V* p = real.data<V>().data();
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t t = 0; t < S; ++t) {
          const bool pad = src.values[b * S + t] == pad_id;
          if (!pad && t > 0 && src.values[b * S + t - 1] == pad_id)
            ag::fail(describe(), ": src row ", b, " has a token after padding at position ", t,
                     "; a bidirectional encoder needs the padding after the last token");
          p[b * S + t] = pad ? V(0) : V(1);
        }
    });
    std::vector<std::vector<Tensor>> hs(2, std::vector<Tensor>(S));
    for (std::size_t d = 0; d < 2; ++d) {  // 0 forward, 1 backward: encoder->weight_ih[d] is weight_ih_l0 / _l0_reverse
      const Tensor xp = ag::linear(x, encoder->weight_ih[d], encoder->bias_ih[d]);  // [B, S, 3H]
      RecurrentState s{ag::zeros({B, H}, {x.dtype()}), Tensor()};
      for (std::size_t n = 0; n < S; ++n) {
        const std::size_t t = d ? S - 1 - n : n;
        s = fused_step(CellKind::gru, xp, t, s, encoder->weight_hh[d], encoder->bias_hh[d]);
        if (d) s.h = s.h * ag::select(real, 1, std::int64_t(t));  // [B, H] * [B, 1]
        hs[d][t] = s.h;
      }
    }
    std::vector<Tensor> steps(S);
    for (std::size_t t = 0; t < S; ++t) steps[t] = ag::concat({hs[0][t], hs[1][t]}, -1);  // [B, 2H]
    e.states = S ? ag::stack(steps, 1) : ag::zeros({B, 0, 2 * H}, {x.dtype()});
    backward_first = S ? hs[1][0] : ag::zeros({B, H}, {x.dtype()});
  }
  e.final_state = ag::tanh((*init_proj)(backward_first));  // s_0 = tanh(W_s bwd h_1): [B, H]
  if (attention) e.projected_keys = attention->project_keys(e.states);
  return e;
}

std::pair<Tensor, Tensor> Seq2Seq::step(const Encoded& enc, const Tensor& y_prev, Tensor& h) const {
  if (!attention) {
    h = decoder->forward(y_prev, {h, Tensor()}).h;
    return {(*out)(h), Tensor()};
  }
  const AttentionOutput a = attention->attend(h, enc.projected_keys, enc.states, enc.pad_mask);  // c_t, a_t
  h = decoder->forward(ag::concat({y_prev, a.output}, -1), {h, Tensor()}).h;
  return {(*out)(ag::concat({h, a.output}, -1)), a.weights};
}

Seq2Seq::Output Seq2Seq::forward(const ag::Indices& src, const ag::Indices& tgt_in, std::int64_t pad_id) {
  if (tgt_in.shape.size() != 2 || tgt_in.shape[0] != src.shape[0])
    ag::fail(describe(), ": tgt_in ", ag::shape_str(tgt_in.shape), " should be [", src.shape[0], ", target length]");
  const Encoded enc = encode(src, pad_id);
  const Tensor emb = (*tgt_embed)(tgt_in);  // [B, T, E]
  Tensor h = enc.final_state;
  std::vector<Tensor> logits, weights;
  for (std::size_t t = 0; t < tgt_in.shape[1]; ++t) {
    auto [l, w] = step(enc, ag::select(emb, 1, std::int64_t(t)), h);
    logits.push_back(l);
    if (w.defined()) weights.push_back(w);
  }
  return {ag::stack(logits, 1), weights.empty() ? Tensor() : ag::stack(weights, 1)};
}

Seq2Seq::Decoded Seq2Seq::greedy_decode(const ag::Indices& src, std::int64_t bos, std::size_t max_len, std::int64_t pad_id) {
  ag::NoGrad no_grad;
  const std::size_t B = src.shape[0];
  const Encoded enc = encode(src, pad_id);
  Tensor h = enc.final_state;
  std::vector<std::int64_t> prev(B, bos), ids(B * max_len);
  std::vector<Tensor> weights;
  for (std::size_t t = 0; t < max_len; ++t) {
    auto [l, w] = step(enc, (*tgt_embed)(ag::Indices(prev)), h);
    if (w.defined()) weights.push_back(w);
    const std::size_t V = l.shape()[1];
    const auto lv = l.to_vector();
    for (std::size_t b = 0; b < B; ++b) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < V; ++c)
        if (lv[b * V + c] > lv[b * V + best]) best = c;
      prev[b] = std::int64_t(best);
      ids[b * max_len + t] = std::int64_t(best);
    }
  }
  return {ag::Indices(ids, {B, max_len}), weights.empty() ? Tensor() : ag::stack(weights, 1)};
}

const char* score_name(AttentionScore s) {
  switch (s) {
    case AttentionScore::additive: return "additive";
    case AttentionScore::dot: return "dot";
    case AttentionScore::general: return "general";
    case AttentionScore::concat: return "concat";
  }
  return "?";
}

BeamSearchResult Seq2Seq::beam_search(const ag::Indices& src, std::int64_t bos, const BeamSearchOptions& o, std::int64_t pad_id) {
  ag::NoGrad no_grad;
  if (src.shape.size() != 2) ag::fail(describe(), ": src should be [batch, source length], got ", ag::shape_str(src.shape));
  check_beam_search(src.shape[0], o);  // before the encoder runs
  const Encoded enc = encode(repeat_rows(src, o.beam_size), pad_id);  // [B k, ...]: beam j of example b is row b k + j
  Tensor h = enc.final_state;
  return nn::beam_search(src.shape[0], bos, o, [&](const std::vector<std::size_t>& parents, const ag::Indices& prefixes) {
    h = take_rows(h, parents);  // each row continues its parent's state
    const std::size_t N = prefixes.shape[0], t = prefixes.shape[1];
    std::vector<std::int64_t> last(N);
    for (std::size_t r = 0; r < N; ++r) last[r] = prefixes.values[r * t + t - 1];
    return ag::log_softmax(step(enc, (*tgt_embed)(ag::Indices(last)), h).first, -1);
  });
}

std::string Seq2Seq::describe() const {
  return std::string("Seq2Seq(GRU, hidden=") + std::to_string(o_.hidden_size) + (o_.bidirectional_encoder ? ", bidirectional encoder" : "") +
         (attention ? std::string(", ") + score_name(o_.score) + " attention)" : ", no attention)");
}

}  // namespace nn
