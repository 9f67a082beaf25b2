#pragma once
// The Transformer (Vaswani et al. 2017) from MultiHeadAttention, FeedForward pieces and
// LayerNorm. Names follow PyTorch's nn.TransformerEncoderLayer / DecoderLayer.
// Shape legend: B batch, S source length, T target length, D d_model.
//
// post-LN (the 2017 paper):  x = norm1(x + SelfAttn(x));  x = norm2(x + FF(x))
// pre-LN  (GPT-2 and later): x = x + SelfAttn(norm1(x));  x = x + FF(norm2(x))
// Pre-LN keeps an identity path from input to output and trains without warmup more often.
#include "nn/attention.hpp"
#include "nn/beam_search.hpp"
#include "nn/layers.hpp"

namespace nn {

struct TransformerOptions {
  std::size_t d_model = 64;
  std::size_t num_heads = 4;
  std::size_t dim_feedforward = 256;
  double dropout = 0.1;
  Activation activation = Activation::relu;
  bool norm_first = false;  // false: post-LN, true: pre-LN
  double layer_norm_eps = 1e-5;
  AttentionImpl attention = AttentionImpl::naive;  // tiled: memory linear in T, no weights kept; linear: not softmax
  std::size_t num_kv_heads = 0;  // self-attention's key/value heads (GQA; 1 = MQA); 0 = num_heads
  // The encoder layers' self-attention sees keys within `window` positions, plus global_tokens
  // (MultiHeadAttention::window). Unset: every key.
  std::optional<std::size_t> window = {};
  std::vector<std::size_t> global_tokens = {};
};

class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(const TransformerOptions& o, ag::Generator& gen);
  // src: [B, S, D]; src_mask: [S, S]; src_key_padding_mask: [B, S]. Masks: ag::Mask blocks where
  // true, a float Tensor is added (nn/attention.hpp). is_causal: position t sees 0..t, applied by
  // the attention itself (MultiHeadAttention::forward), as PyTorch's is_causal.
  Tensor forward(const Tensor& src, const ag::AttentionMask& src_mask = {}, const ag::AttentionMask& src_key_padding_mask = {},
                 bool is_causal = false);
  // Causal self-attention over src [B, T, D] (positions cache.length() ..) and the cached
  // positions before it, extending the cache: incremental decoding (MultiHeadAttention::forward
  // with a KVCache). Inference only (under ag::NoGrad).
  Tensor forward(const Tensor& src, KVCache& cache);
  std::string describe() const override;
  Tensor last_attention() const { return attention_; }  // [B, H, S, S] from the last forward (naive attention only)

  std::shared_ptr<MultiHeadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;

 private:
  Tensor feed_forward(const Tensor& x);
  // The layer around an attention block: residuals, norms (pre- or post-LN), feed-forward.
  template <class Attend>
  Tensor block(const Tensor& src, Attend&& attend);
  TransformerOptions o_;
  Tensor attention_;
};

class TransformerDecoderLayer : public Module {
 public:
  TransformerDecoderLayer(const TransformerOptions& o, ag::Generator& gen);
  // tgt: [B, T, D], memory: [B, S, D]; tgt_mask: [T, T] (causal); *_key_padding_mask: [B, T] / [B, S].
  // Masks: ag::Mask blocks where true, a float Tensor is added (nn/attention.hpp).
  Tensor forward(const Tensor& tgt, const Tensor& memory, const ag::AttentionMask& tgt_mask = {},
                 const ag::AttentionMask& tgt_key_padding_mask = {}, const ag::AttentionMask& memory_key_padding_mask = {});
  std::string describe() const override;
  Tensor last_self_attention() const { return self_attention_; }    // [B, H, T, T]
  Tensor last_cross_attention() const { return cross_attention_; }  // [B, H, T, S]

  std::shared_ptr<MultiHeadAttention> self_attn, multihead_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2, dropout3;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;

 private:
  Tensor feed_forward(const Tensor& x);
  TransformerOptions o_;
  Tensor self_attention_, cross_attention_;
};

// num_layers encoder layers (children layers.0, layers.1, ...), then a final LayerNorm "norm".
// final_norm unset: a norm exactly when norm_first (pre-LN stacks need it, GPT-2's layout;
// post-LN layers end in a norm already). true / false: as PyTorch's `norm` argument, which
// nn.Transformer sets for its post-LN stacks too, and which its pre-LN encoders leave out unless given.
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const TransformerOptions& o, std::size_t num_layers, ag::Generator& gen, std::optional<bool> final_norm = {});
  Tensor forward(const Tensor& src, const ag::AttentionMask& src_mask = {}, const ag::AttentionMask& src_key_padding_mask = {},
                 bool is_causal = false);
  // Incremental causal decoding, one KVCache per layer (make_cache). Inference only.
  Tensor forward(const Tensor& src, std::vector<KVCache>& caches);
  // One cache per layer for `batch` sequences of up to max_length positions.
  std::vector<KVCache> make_cache(std::size_t batch, std::size_t max_length) const;
  std::string describe() const override;
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers;
  std::shared_ptr<LayerNorm> norm;  // null without a final norm
};

class TransformerDecoder : public Module {
 public:
  TransformerDecoder(const TransformerOptions& o, std::size_t num_layers, ag::Generator& gen, std::optional<bool> final_norm = {});
  Tensor forward(const Tensor& tgt, const Tensor& memory, const ag::AttentionMask& tgt_mask = {},
                 const ag::AttentionMask& tgt_key_padding_mask = {}, const ag::AttentionMask& memory_key_padding_mask = {});
  std::string describe() const override;
  std::vector<std::shared_ptr<TransformerDecoderLayer>> layers;
  std::shared_ptr<LayerNorm> norm;
};

// A token-to-token Transformer: embeddings * sqrt(D) + sinusoidal positions, encoder, decoder,
// and a Linear "generator" to vocabulary logits.
class TransformerSeq2Seq : public Module {
 public:
  TransformerSeq2Seq(std::size_t src_vocab, std::size_t tgt_vocab, const TransformerOptions& o, std::size_t num_encoder_layers,
                     std::size_t num_decoder_layers, ag::Generator& gen, std::size_t max_len = 512);
  // src: [B, S] ids, tgt_in: [B, T] ids (BOS + target); pad_id marks padding in both -> logits [B, T, V]
  Tensor forward(const ag::Indices& src, const ag::Indices& tgt_in, std::int64_t pad_id = -1);
  // Greedy decoding from BOS for max_len steps -> [B, max_len] ids (no gradient).
  ag::Indices greedy_decode(const ag::Indices& src, std::int64_t bos, std::size_t max_len, std::int64_t pad_id = -1);
  // Beam search (beam_search.hpp), batched over examples and beams: [B, S] -> ids [B, o.max_len];
  // pad_id marks padding in src. Each step runs the decoder over the whole prefix, as greedy_decode
  // does (the encoder reads each source k times). No gradient. Errors: src not 2-D, and beam_search's.
  BeamSearchResult beam_search(const ag::Indices& src, std::int64_t bos, const BeamSearchOptions& o, std::int64_t pad_id = -1);
  std::string describe() const override;

  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<SinusoidalPositionalEncoding> positions;
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<TransformerDecoder> decoder;
  std::shared_ptr<Linear> generator;

 private:
  Tensor embed(Embedding& e, const ag::Indices& ids) const;
  std::size_t d_model_;
};

// [B, T], true where ids == pad_id (an undefined Mask when pad_id < 0).
ag::Mask pad_mask_from_ids(const ag::Indices& ids, std::int64_t pad_id);

}  // namespace nn
