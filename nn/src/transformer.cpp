#include "nn/transformer.hpp"

#include <cmath>

namespace nn {

namespace {
std::uint64_t next_seed(ag::Generator& gen) { return std::uint64_t(gen.integer(0, 1 << 30)); }
}  // namespace

// ---- encoder layer --------------------------------------------------------------------------
TransformerEncoderLayer::TransformerEncoderLayer(const TransformerOptions& o, ag::Generator& gen) : o_(o) {
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(o.d_model, o.num_heads, gen, o.dropout, o.attention,
                                                                                true, o.num_kv_heads));
  self_attn->window = o.window;
  self_attn->global_tokens = o.global_tokens;
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward, gen));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout, next_seed(gen)));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model, gen));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout, next_seed(gen)));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout, next_seed(gen)));
}

Tensor TransformerEncoderLayer::feed_forward(const Tensor& x) {
  return (*linear2)((*dropout)(activate((*linear1)(x), o_.activation)));
}

template <class Attend>
Tensor TransformerEncoderLayer::block(const Tensor& src, Attend&& attend) {
  auto self_attention = [&](const Tensor& x) {
    AttentionOutput a = attend(x);
    attention_ = a.weights;
    return (*dropout1)(a.output);
  };
  Tensor x = src;
  if (o_.norm_first) {
    x = x + self_attention((*norm1)(x));
    x = x + (*dropout2)(feed_forward((*norm2)(x)));
  } else {
    x = (*norm1)(x + self_attention(x));
    x = (*norm2)(x + (*dropout2)(feed_forward(x)));
  }
  return x;
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const ag::AttentionMask& src_mask,
                                        const ag::AttentionMask& src_key_padding_mask, bool is_causal) {
  return block(src, [&](const Tensor& x) { return (*self_attn)(x, x, x, src_key_padding_mask, src_mask, is_causal); });
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, KVCache& cache) {
  return block(src, [&](const Tensor& x) { return self_attn->forward(x, cache); });
}

std::string TransformerEncoderLayer::describe() const {
  return std::string("TransformerEncoderLayer(") + (o_.norm_first ? "pre-LN" : "post-LN") + ")";
}

// ---- decoder layer --------------------------------------------------------------------------
TransformerDecoderLayer::TransformerDecoderLayer(const TransformerOptions& o, ag::Generator& gen) : o_(o) {
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(o.d_model, o.num_heads, gen, o.dropout, o.attention));
  multihead_attn = register_module("multihead_attn", std::make_shared<MultiHeadAttention>(o.d_model, o.num_heads, gen, o.dropout, o.attention));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward, gen));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout, next_seed(gen)));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model, gen));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  norm3 = register_module("norm3", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout, next_seed(gen)));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout, next_seed(gen)));
  dropout3 = register_module("dropout3", std::make_shared<Dropout>(o.dropout, next_seed(gen)));
}

Tensor TransformerDecoderLayer::feed_forward(const Tensor& x) {
  return (*linear2)((*dropout)(activate((*linear1)(x), o_.activation)));
}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory, const ag::AttentionMask& tgt_mask,
                                        const ag::AttentionMask& tgt_key_padding_mask,
                                        const ag::AttentionMask& memory_key_padding_mask) {
  auto self_block = [&](const Tensor& x) {
    AttentionOutput a = (*self_attn)(x, x, x, tgt_key_padding_mask, tgt_mask);
    self_attention_ = a.weights;
    return (*dropout1)(a.output);
  };
  auto cross_block = [&](const Tensor& x) {
    AttentionOutput a = (*multihead_attn)(x, memory, memory, memory_key_padding_mask);
    cross_attention_ = a.weights;
    return (*dropout2)(a.output);
  };
  Tensor x = tgt;
  if (o_.norm_first) {
    x = x + self_block((*norm1)(x));
    x = x + cross_block((*norm2)(x));
    x = x + (*dropout3)(feed_forward((*norm3)(x)));
  } else {
    x = (*norm1)(x + self_block(x));
    x = (*norm2)(x + cross_block(x));
    x = (*norm3)(x + (*dropout3)(feed_forward(x)));
  }
  return x;
}

std::string TransformerDecoderLayer::describe() const {
  return std::string("TransformerDecoderLayer(") + (o_.norm_first ? "pre-LN" : "post-LN") + ")";
}

// ---- stacks ---------------------------------------------------------------------------------
TransformerEncoder::TransformerEncoder(const TransformerOptions& o, std::size_t n, ag::Generator& gen, std::optional<bool> final_norm) {
  for (std::size_t i = 0; i < n; ++i)
    layers.push_back(register_module("layers." + std::to_string(i), std::make_shared<TransformerEncoderLayer>(o, gen)));
  if (final_norm.value_or(o.norm_first)) norm = register_module("norm", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
}

Tensor TransformerEncoder::forward(const Tensor& src, const ag::AttentionMask& mask, const ag::AttentionMask& kpm, bool is_causal) {
  Tensor x = src;
  for (auto& layer : layers) x = layer->forward(x, mask, kpm, is_causal);
  return norm ? (*norm)(x) : x;
}

Tensor TransformerEncoder::forward(const Tensor& src, std::vector<KVCache>& caches) {
  if (caches.size() != layers.size())
    ag::fail(describe(), ": ", caches.size(), " KV caches for ", layers.size(), " layers (one per layer: make_cache)");
  Tensor x = src;
  for (std::size_t i = 0; i < layers.size(); ++i) x = layers[i]->forward(x, caches[i]);
  return norm ? (*norm)(x) : x;
}

std::vector<KVCache> TransformerEncoder::make_cache(std::size_t batch, std::size_t max_length) const {
  std::vector<KVCache> caches;
  for (const auto& layer : layers) caches.push_back(layer->self_attn->make_cache(batch, max_length));
  return caches;
}

std::string TransformerEncoder::describe() const { return "TransformerEncoder(" + std::to_string(layers.size()) + " layers)"; }

TransformerDecoder::TransformerDecoder(const TransformerOptions& o, std::size_t n, ag::Generator& gen, std::optional<bool> final_norm) {
  for (std::size_t i = 0; i < n; ++i)
    layers.push_back(register_module("layers." + std::to_string(i), std::make_shared<TransformerDecoderLayer>(o, gen)));
  if (final_norm.value_or(o.norm_first)) norm = register_module("norm", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const ag::AttentionMask& tgt_mask,
                                   const ag::AttentionMask& tgt_kpm, const ag::AttentionMask& mem_kpm) {
  Tensor x = tgt;
  for (auto& layer : layers) x = layer->forward(x, memory, tgt_mask, tgt_kpm, mem_kpm);
  return norm ? (*norm)(x) : x;
}

std::string TransformerDecoder::describe() const { return "TransformerDecoder(" + std::to_string(layers.size()) + " layers)"; }

// ---- a whole sequence-to-sequence model --------------------------------------------------------
ag::Mask pad_mask_from_ids(const ag::Indices& ids, std::int64_t pad_id) {
  if (pad_id < 0) return {};
  if (ids.shape.size() != 2) ag::fail("pad_mask_from_ids: ids should be [batch, time], got ", ag::shape_str(ids.shape));
  std::vector<std::uint8_t> m(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) m[i] = ids.values[i] == pad_id;
  return ag::Mask(ids.shape, std::move(m));
}

TransformerSeq2Seq::TransformerSeq2Seq(std::size_t src_vocab, std::size_t tgt_vocab, const TransformerOptions& o,
                                       std::size_t n_enc, std::size_t n_dec, ag::Generator& gen, std::size_t max_len)
    : d_model_(o.d_model) {
  src_embed = register_module("src_embed", std::make_shared<Embedding>(src_vocab, o.d_model, gen));
  tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(tgt_vocab, o.d_model, gen));
  positions = register_module("positions", std::make_shared<SinusoidalPositionalEncoding>(o.d_model, max_len));
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(o, n_enc, gen));
  decoder = register_module("decoder", std::make_shared<TransformerDecoder>(o, n_dec, gen));
  generator = register_module("generator", std::make_shared<Linear>(o.d_model, tgt_vocab, gen));
  // Embeddings ~ N(0, 1/D) so that, scaled by sqrt(D) below, token vectors have unit entries.
  for (auto* e : {src_embed.get(), tgt_embed.get()})
    for (auto& v : e->weight.data<float>()) v *= float(1.0 / std::sqrt(double(o.d_model)));
}

Tensor TransformerSeq2Seq::embed(Embedding& e, const ag::Indices& ids) const {
  return (*positions)(e(ids) * std::sqrt(double(d_model_)));
}

Tensor TransformerSeq2Seq::forward(const ag::Indices& src, const ag::Indices& tgt_in, std::int64_t pad_id) {
  if (src.shape.size() != 2 || tgt_in.shape.size() != 2 || src.shape[0] != tgt_in.shape[0])
    ag::fail(describe(), ": src ", ag::shape_str(src.shape), " and tgt_in ", ag::shape_str(tgt_in.shape),
             " should be [batch, S] and [batch, T]");
  const ag::Mask src_pad = pad_mask_from_ids(src, pad_id);
  const Tensor memory = encoder->forward(embed(*src_embed, src), {}, src_pad);
  const Tensor y = decoder->forward(embed(*tgt_embed, tgt_in), memory, causal_mask(tgt_in.shape[1]),
                                    pad_mask_from_ids(tgt_in, pad_id), src_pad);
  return (*generator)(y);
}

ag::Indices TransformerSeq2Seq::greedy_decode(const ag::Indices& src, std::int64_t bos, std::size_t max_len, std::int64_t pad_id) {
  ag::NoGrad no_grad;
  const std::size_t B = src.shape[0];
  const ag::Mask src_pad = pad_mask_from_ids(src, pad_id);
  const Tensor memory = encoder->forward(embed(*src_embed, src), {}, src_pad);
  std::vector<std::int64_t> ys(B, bos);  // [B, t+1], grows by one column per step
  std::vector<std::int64_t> out(B * max_len);
  for (std::size_t t = 0; t < max_len; ++t) {
    const ag::Indices tgt(ys, {B, t + 1});
    const Tensor y = decoder->forward(embed(*tgt_embed, tgt), memory, causal_mask(t + 1), {}, src_pad);
    const Tensor logits = (*generator)(ag::select(y, 1, std::int64_t(t)));  // [B, V]
    const std::size_t V = logits.shape()[1];
    const auto lv = logits.to_vector();
    std::vector<std::int64_t> next(B * (t + 2));
    for (std::size_t b = 0; b < B; ++b) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < V; ++c)
        if (lv[b * V + c] > lv[b * V + best]) best = c;
      out[b * max_len + t] = std::int64_t(best);
      std::copy(ys.begin() + std::ptrdiff_t(b * (t + 1)), ys.begin() + std::ptrdiff_t((b + 1) * (t + 1)), next.begin() + std::ptrdiff_t(b * (t + 2)));
      next[b * (t + 2) + t + 1] = std::int64_t(best);
    }
    ys = std::move(next);
  }
  return ag::Indices(out, {B, max_len});
}

BeamSearchResult TransformerSeq2Seq::beam_search(const ag::Indices& src, std::int64_t bos, const BeamSearchOptions& o, std::int64_t pad_id) {
  ag::NoGrad no_grad;
  if (src.shape.size() != 2) ag::fail(describe(), ": src should be [batch, source length], got ", ag::shape_str(src.shape));
  check_beam_search(src.shape[0], o);  // before the encoder runs
  const ag::Indices rows = repeat_rows(src, o.beam_size);  // beam j of example b is row b k + j
  const ag::Mask src_pad = pad_mask_from_ids(rows, pad_id);
  const Tensor memory = encoder->forward(embed(*src_embed, rows), {}, src_pad);
  return nn::beam_search(src.shape[0], bos, o, [&](const std::vector<std::size_t>&, const ag::Indices& prefixes) {
    const std::size_t t = prefixes.shape[1];
    const Tensor y = decoder->forward(embed(*tgt_embed, prefixes), memory, causal_mask(t), {}, src_pad);
    return ag::log_softmax((*generator)(ag::select(y, 1, std::int64_t(t - 1))), -1);  // [B k, V]
  });
}

std::string TransformerSeq2Seq::describe() const { return "TransformerSeq2Seq(d_model=" + std::to_string(d_model_) + ")"; }

}  // namespace nn
