#include "nn/seq2seq.hpp"

#include "nn/transformer.hpp"  // pad_mask_from_ids

namespace nn {

Seq2Seq::Seq2Seq(std::size_t src_vocab, std::size_t tgt_vocab, const Seq2SeqOptions& o, ag::Generator& gen) : o_(o) {
  const std::size_t H = o.hidden_size, E = o.embed_dim;
  src_embed = register_module("src_embed", std::make_shared<Embedding>(src_vocab, E, gen));
  tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(tgt_vocab, E, gen));
  encoder = register_module("encoder", std::make_shared<GRU>(E, H, gen));
  decoder = register_module("decoder", std::make_shared<GRUCell>(o.attention ? E + H : E, H, gen));
  if (o.attention)
    attention = register_module("attention", std::make_shared<AdditiveAttention>(H, H, o.attention_dim ? o.attention_dim : H, gen));
  out = register_module("out", std::make_shared<Linear>(o.attention ? 2 * H : H, tgt_vocab, gen));
}

Seq2Seq::Encoded Seq2Seq::encode(const ag::Indices& src, std::int64_t pad_id) const {
  if (src.shape.size() != 2) ag::fail(describe(), ": src should be [batch, source length], got ", ag::shape_str(src.shape));
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

std::string Seq2Seq::describe() const {
  return std::string("Seq2Seq(GRU, hidden=") + std::to_string(o_.hidden_size) + (attention ? ", additive attention)" : ", no attention)");
}

}  // namespace nn
