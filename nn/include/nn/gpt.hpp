#pragma once
// A decoder-only Transformer language model (GPT: Radford et al. 2018, 2019) with a choice of
// position scheme, and generation with or without a KV cache.
// Shape legend: B batch, T positions, D d_model, V vocabulary, L layers, H heads, H_kv key/value heads.
//
//   logits = lm_head(LN(blocks(dropout(tok_emb(ids) [+ positions]))))
//
// blocks: L pre-LN TransformerEncoderLayers (x + SelfAttn(LN(x)), x + MLP(LN(x)), GELU tanh) with
// a causal mask: position t sees 0..t, so one forward over T tokens gives T next-token predictions.
// Parameter names: tok_emb.weight, pos_emb.weight (learned only), blocks.layers.<i>...,
// blocks.norm, lm_head (absent when tie_weights).
#include <functional>
#include <string>
#include <vector>

#include "nn/sampling.hpp"
#include "nn/transformer.hpp"

namespace nn {

// Where a decoder-only model gets its sense of order:
//   learned:    a trained table P [block_size, D] added to the token embeddings (GPT-2); a
//               position past it is an error
//   sinusoidal: the fixed sin/cos table of Vaswani et al. added to the embeddings, which are
//               then, as theirs, N(0, 1/D) and multiplied by sqrt(D) (the table's entries are of size 1)
//   rope:       q and k of every head rotated by their positions (Su et al. 2021; ag::rope)
//   alibi:      a per-head penalty -m_h (i - j) on the scores (Press et al. 2022)
//   none:       nothing but the causal mask (NoPE: Haviv et al. 2022; Kazemnejad et al. 2023)
enum class PositionEncoding { learned, sinusoidal, rope, alibi, none };
const char* position_name(PositionEncoding p);  // "learned", "sinusoidal", "rope", "alibi", "none"
// The inverse of position_name. Errors: any other name (the message lists them).
PositionEncoding parse_position(const std::string& name);

// nanoGPT's GPTConfig, under this course's names.
struct GPTOptions {
  std::size_t vocab_size = 0;
  std::size_t block_size = 64;  // the context length trained on; the learned table's length
  std::size_t d_model = 128;    // nanoGPT's n_embd
  std::size_t num_heads = 4;    // n_head
  std::size_t num_kv_heads = 0; // GQA: key/value heads (1 = MQA); 0 = num_heads
  std::size_t num_layers = 4;   // n_layer
  double dropout = 0.0;
  PositionEncoding position = PositionEncoding::learned;
  AttentionImpl attention = AttentionImpl::naive;
  bool tie_weights = false;             // lm_head uses tok_emb.weight (GPT-2, nanoGPT): V D fewer parameters
  std::size_t max_positions = 4096;     // the sinusoidal table's length (sinusoidal only)
  // false: no causal mask, every position sees the whole window (then it can read the character it
  // must predict: lesson 14's exercise 1). A KV cache needs the mask (an error without it).
  bool causal = true;
};

// How GPT::generate reads its context.
struct GenerateOptions {
  SamplingOptions sampling;  // greedy, temperature, top-k, top-p
  bool use_cache = true;     // false: every new token re-reads its whole context
  // The most tokens the model reads (0: block_size). Without the cache: the last `context` tokens
  // of the text (nanoGPT's crop). With the cache: every token since the cache was filled; when it
  // holds `context` positions it is emptied and refilled with the last context / 2 tokens, at
  // positions from 0 (llama.cpp's context shift), so the text can go on for ever at a constant
  // cost per token. Both read the same tokens, and agree exactly, until the text first exceeds
  // `context`. Errors: context past the learned table (learned positions).
  std::size_t context = 0;
  // Called after each new token is chosen, with the count so far (1..new_tokens): to time the
  // steps, show progress, or print as it goes. May be empty.
  std::function<void(std::size_t)> on_token = {};
};

class GPT : public Module {
 public:
  // GPT-2's initialisation (as nanoGPT's): every weight matrix and embedding ~ N(0, 0.02^2)
  // (token embeddings N(0, 1/D) with sinusoidal positions, see above),
  // the residual projections (out_proj, linear2) ~ N(0, (0.02 / sqrt(2 L))^2), biases 0, LayerNorms
  // 1 and 0. Errors: vocab_size 0, d_model not divisible by num_heads, num_heads not divisible by num_kv_heads.
  GPT(const GPTOptions& o, ag::Generator& gen);
  // ids [B, T] -> logits [B, T, V]. Errors: an id outside [0, V), ids not [B, T], positions past
  // the table (learned: T > block_size; sinusoidal: T > max_positions).
  Tensor forward(const ag::Indices& ids);
  // The next T tokens ids [B, T] of sequences whose earlier positions are in `cache` (one KVCache
  // per layer, from make_cache) -> logits [B, T, V], equal to forward's last T rows over the whole
  // sequence; the caches grow by T. Inference only (ag::NoGrad). Errors: as forward, and a full cache.
  Tensor forward(const ag::Indices& ids, std::vector<KVCache>& cache);
  // One KVCache per layer, [B, H_kv, max_length, d] keys and values each.
  std::vector<KVCache> make_cache(std::size_t batch, std::size_t max_length) const;
  // prompt (at least one id) followed by new_tokens sampled ids. Runs in eval mode under ag::NoGrad
  // and restores the training mode. Draws from gen (none when greedy).
  std::vector<std::int64_t> generate(const std::vector<std::int64_t>& prompt, std::size_t new_tokens, const GenerateOptions& o,
                                     ag::Generator& gen);
  std::string describe() const override;
  const GPTOptions& options() const { return o_; }

  std::shared_ptr<Embedding> tok_emb;
  std::shared_ptr<LearnedPositionalEncoding> pos_emb;   // learned positions only
  std::shared_ptr<SinusoidalPositionalEncoding> sinusoidal;  // sinusoidal positions only (no parameters)
  std::shared_ptr<Dropout> drop;                        // on the embeddings (GPT-2's)
  std::shared_ptr<TransformerEncoder> blocks;           // ends in the final LayerNorm (blocks.norm)
  std::shared_ptr<Linear> lm_head;                      // null when tie_weights

 private:
  Tensor embed(const ag::Indices& ids, std::size_t offset) const;
  Tensor head(const Tensor& x) const;
  GPTOptions o_;
  // The causal mask [T, T] of the last forward's length, remade when T changes. (A mask for every
  // T up to block_size would hold sum T^2 bytes: 359 MB for GPT-2's 1,024 positions.)
  ag::Mask causal_mask_;
};

}  // namespace nn
