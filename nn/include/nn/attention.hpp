#pragma once
// Attention, as layers of one idea (the Annotated Transformer's order):
//   1) a pure function: scaled_dot_product_attention(q, k, v, mask) -> output, weights
//   2) a module with projections: MultiHeadAttention; and a decoder's attention over its source,
//      with Bahdanau's additive score or Luong's dot and general ones (SourceAttention)
//   3) blocks with residuals and norms (transformer.hpp), 4) stacks.
// Shape legend: B batch, H heads, Tq queries, Tk keys, D model width, d = D / H per head.
//
// Masks (PyTorch's rule; ag/mask.hpp): an ag::Mask is true where attention is NOT allowed: the
// score becomes -inf before the softmax and gets exactly zero weight (a row with nothing allowed
// gets all zeros). A float Tensor is ADDED to the scores (a bias: ALiBi, relative positions,
// learned; -inf in it blocks too), and gets a gradient. Both broadcast against the scores
// [..., Tq, Tk]. A float mask of only 0s and 1s is refused as ambiguous (ag::Error): pass
// ag::Mask::nonzero(t) to block where t is 1.
#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace nn {

struct AttentionOutput {
  Tensor output;   // [..., Tq, dv]
  Tensor weights;  // [..., Tq, Tk], rows sum to 1
};

// softmax(q k^T * scale + mask) v (Vaswani et al. 2017, eq. 1).  q: [..., Tq, d], k: [..., Tk, d],
// v: [..., Tk, dv]; the batch dims of q and k broadcast. scale defaults to 1/sqrt(d) (pass
// scale = 1 to see the softmax saturate, lesson 09). Errors: shapes that do not fit, a mask that
// does not broadcast to [..., Tq, Tk], an ambiguous float mask.
AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const ag::AttentionMask& mask = {}, double scale = 0.0);

// [T, T], true above the diagonal: position t may attend to 0..t only.
ag::Mask causal_mask(std::size_t T);
// [Tq, Tk] for queries that are the last Tq of Tk positions (bottom-right aligned, as in decoding
// with a KV cache): query i, at position Tk - Tq + i, may attend to keys 0..Tk - Tq + i.
// causal_mask(T, T) == causal_mask(T). Errors: Tq > Tk.
ag::Mask causal_mask(std::size_t Tq, std::size_t Tk);
// Sliding-window attention's mask [Tq, Tk] (Beltagy et al. 2020): true (blocked) where the query at
// position i = query_offset + r and key j are more than `window` apart, |i - j| > window, unless
// i or j is one of global_tokens (Longformer's global attention: those positions see and are seen
// by every position). Combine with causal_mask for a causal window (keys i - window .. i).
// The tiled path never builds it (ag::TiledAttentionOptions::window). Errors: a global token >= Tk.
ag::Mask sliding_window_mask(std::size_t Tq, std::size_t Tk, std::size_t window, const std::vector<std::size_t>& global_tokens = {},
                             std::size_t query_offset = 0);
// [B, T], true at padded positions t >= lengths[b].
ag::Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t T);

// ALiBi (Press et al. 2022, "Train short, test long"): head h adds -m_h * (i - j) to the score of
// query i for key j, so far keys count less, and no positional embedding is used.
// alibi_slopes(H): the paper's slopes, the geometric sequence m_h = 2^(-8h/H), h = 1..H, when H
// is a power of two; otherwise those of the nearest smaller power of two n followed by every other
// slope of 2n (the paper's reference code). Errors: H = 0.
std::vector<double> alibi_slopes(std::size_t num_heads);
// The bias itself as a float mask [H, Tq, Tk], -m_h (i - j), or -m_h |i - j| when symmetric (for
// attention without a causal mask), with query row r at position i = query_offset + r and key row j
// at position j (query_offset = Tk - Tq for the new queries of a KV cache). The tiled path never
// builds it (ag::TiledAttentionOptions::alibi_slopes); the naive path adds it.
Tensor alibi_bias(const std::vector<double>& slopes, std::size_t Tq, std::size_t Tk, bool symmetric = false,
                  ag::Dtype dtype = ag::f32, std::size_t query_offset = 0);

// The keys and values one attention layer has computed so far, kept for incremental decoding
// (the "KV cache"; used by GPT-2 and every decoder since): generating token t then costs one query
// against t cached keys instead of recomputing all t positions. Preallocated at its maximum length:
// k and v [B, H_kv, T_max, d]. Holds keys after any rotation (RoPE), before GQA's repetition, so a
// GQA layer's cache is H / H_kv times smaller. Inference only: what it holds is not on any graph.
class KVCache {
 public:
  KVCache() = default;
  // Errors: a zero size.
  KVCache(std::size_t batch, std::size_t num_kv_heads, std::size_t max_length, std::size_t head_dim, ag::Dtype dtype = ag::f32);
  std::size_t length() const { return length_; }  // positions held: the position of the next token
  std::size_t max_length() const { return max_length_; }
  std::size_t bytes() const;  // of k and v together: 2 B H_kv T_max d sizeof(dtype)
  void clear() { length_ = 0; }
  // Writes k and v [B, H_kv, T, d] at positions length() .. length() + T - 1 and returns the keys
  // and values of every position held, [B, H_kv, length(), d] each (length() grown by T).
  // Errors (nothing is written): shapes or dtypes other than the cache's, more positions than fit.
  std::pair<Tensor, Tensor> append(const Tensor& k, const Tensor& v);
  bool defined() const { return k_.defined(); }

 private:
  Tensor k_, v_;
  std::size_t length_ = 0, max_length_ = 0;
};

// How MultiHeadAttention computes its attention:
//   naive:  softmax(q k^T / sqrt(d) + mask) v with the whole [B, H, Tq, Tk] matrix of weights,
//           kept for backward and returned (time and memory grow as T^2; lessons read the weights)
//   tiled:  the same output through ag::tiled_attention, an online softmax over blocks of keys
//           (FlashAttention): memory that grows as T (time as T^2, or T * window with a sliding
//           window: MultiHeadAttention::window); no weights are returned, and attention dropout is
//           not supported (its forward fails in training mode when dropout > 0). Masks are read
//           at their own shape; given both, MultiHeadAttention combines the key padding mask and
//           attn_mask into one [B, 1, Tq, Tk] mask first: T^2 again (one byte per entry for a Mask).
//   linear: NOT softmax attention: linear attention (Katharopoulos et al. 2020) with the feature
//           map phi(x) = elu(x) + 1, out_i = sum_j (phi(q_i) . phi(k_j)) v_j / sum_j phi(q_i) . phi(k_j)
//           through ag::linear_attention: time and memory grow as T. Takes a key padding Mask
//           (padded keys' features are zeroed) and is_causal; no attn_mask, window, ALiBi, RoPE,
//           dropout in training, weights or KV cache (each an ag::Error).
enum class AttentionImpl { naive, tiled, linear };

// Multi-head attention (Vaswani et al. 2017), PyTorch's names and layout:
// in_proj_weight [3D, D] (rows: W_q; W_k; W_v), in_proj_bias [3D], out_proj (Linear D -> D).
//   head_i = attention(Q W_q,i, K W_k,i, V W_v,i);  output = concat(head_1..head_H) W_o^T + b_o
// Grouped-query attention (GQA, Ainslie et al. 2023; MQA, Shazeer 2019, is num_kv_heads = 1):
// num_kv_heads = H_kv < H key/value heads, each shared by H / H_kv consecutive query heads (query
// head h reads key/value head h / (H / H_kv), Llama's repeat_kv). Then d = D / H per head,
// D_kv = H_kv d, and in_proj_weight is [D + 2 D_kv, D] (rows W_q; W_k; W_v), in_proj_bias
// [D + 2 D_kv]: K and V, and a KV cache, are H / H_kv times smaller. (PyTorch's
// MultiheadAttention has no GQA; this layout is its in_proj with shorter K and V blocks.)
class MultiHeadAttention : public Module {
 public:
  // bias = false (PyTorch's bias=False): no in_proj_bias and no out_proj.bias. num_kv_heads 0
  // means num_heads (plain multi-head attention). Errors: d_model not divisible by num_heads,
  // num_heads not divisible by num_kv_heads.
  MultiHeadAttention(std::size_t d_model, std::size_t num_heads, ag::Generator& gen, double dropout = 0.0,
                     AttentionImpl impl = AttentionImpl::naive, bool bias = true, std::size_t num_kv_heads = 0);
  // query: [B, Tq, D], key/value: [B, Tk, D]. key_padding_mask: [B, Tk]; attn_mask: [Tq, Tk]
  // (or anything broadcasting to [B, H, Tq, Tk]); each an ag::Mask (true = blocked) or a float
  // Tensor (added), as PyTorch's. is_causal (PyTorch's name): query i sees keys 0..i only,
  // applied by the attention itself (the tiled path skips the blocks above the diagonal; the
  // linear path runs prefix sums), with or without an attn_mask; it needs Tq = Tk. Weights
  // returned per head: [B, H, Tq, Tk] (undefined with AttentionImpl::tiled and linear). Errors:
  // shapes that do not fit, an ambiguous float mask, is_causal with Tq != Tk, what
  // AttentionImpl::linear does not take.
  AttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                          const ag::AttentionMask& key_padding_mask = {}, const ag::AttentionMask& attn_mask = {},
                          bool is_causal = false);
  AttentionOutput operator()(const Tensor& q, const Tensor& k, const Tensor& v, const ag::AttentionMask& kpm = {},
                             const ag::AttentionMask& am = {}, bool is_causal = false) {
    return forward(q, k, v, kpm, am, is_causal);
  }
  // Causal self-attention of x [B, T, D], the tokens at positions cache.length() .. + T - 1, over
  // themselves and every position in the cache, which it extends by T (incremental decoding).
  // RoPE and ALiBi use those positions. The same output as forward(x, x, x) over the whole
  // sequence with a causal mask, at its last T rows. Inference only: errors unless gradients are
  // off (ag::NoGrad); also a cache of another batch, head count, head size or dtype, or a full one.
  AttentionOutput forward(const Tensor& x, KVCache& cache);
  // A cache for this layer: [B, H_kv, max_length, d] keys and values of the parameters' dtype.
  KVCache make_cache(std::size_t batch, std::size_t max_length) const;
  std::string describe() const override;
  std::size_t num_heads() const { return heads_; }
  std::size_t num_kv_heads() const { return kv_heads_; }
  AttentionImpl impl = AttentionImpl::naive;  // may be switched at any time: the parameters are the same
  // Rotary positions (RoPE, ag::rope): q and k of every head rotated by their positions (queries
  // and keys both from 0) after the projections, on the naive and the tiled path. Off by default,
  // as PyTorch's MultiheadAttention (which has no such option; Llama's attention applies it here).
  bool rotary = false;
  double rotary_base = 10000.0;
  // ALiBi: adds head h's bias -m_h (i - j) (|i - j| when alibi_symmetric) to the scores, slopes
  // alibi_slopes(num_heads); on the tiled path computed per tile, on the naive path as a float mask.
  bool alibi = false;
  bool alibi_symmetric = false;
  // Sliding-window attention: query i sees keys j with |i - j| <= window (i - window .. i when
  // causal), plus the global_tokens, which see and are seen by every position (Longformer;
  // sliding_window_mask). On the tiled path the blocks outside the band are skipped (time and
  // memory grow as T * window); the naive path adds sliding_window_mask. Unset: every key.
  std::optional<std::size_t> window;
  // Positions, the same for every sequence; need a window. Those past a shorter input's keys are
  // left out (they are not there to see or be seen).
  std::vector<std::size_t> global_tokens;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;
  std::shared_ptr<Dropout> dropout;  // on the attention weights

 private:
  // The projections split into heads: q [B, H, Tq, d]; k, v [B, H_kv, Tk, d].
  struct Heads {
    Tensor q, k, v;
  };
  Heads project(const Tensor& query, const Tensor& key, const Tensor& value) const;
  // Attention of q over k and v (repeated for GQA), the query rows at positions query_offset + i;
  // causal: key positions after the query's are blocked. Then heads merged and out_proj.
  AttentionOutput attend(const Tensor& q, const Tensor& k, const Tensor& v, ag::AttentionMask mask, bool causal,
                         std::size_t query_offset);
  // AttentionImpl::linear: elu + 1 features, padded keys' features zeroed (key_padding [B, Tk]).
  AttentionOutput attend_linear(const Tensor& q, const Tensor& k, const Tensor& v, const ag::Mask& key_padding, bool causal);
  Tensor repeat_kv(const Tensor& x) const;     // GQA: [B, H_kv, T, d] -> [B, H, T, d]
  Tensor merge_heads(const Tensor& o) const;   // [B, H, Tq, d] -> out_proj([B, Tq, D])
  std::size_t d_model_, heads_, kv_heads_;
};

// A decoder state's attention over a source sequence (nn::Seq2Seq's), one interface for every score
// function, so that the score is one option of the model. The keys are projected once per
// sequence (project_keys); every decoder step then scores its query against them (attend):
//   weights = softmax over s of score(q, k_s);  context = sum_s weights_s v_s
// Errors (ag::Error): shapes that do not fit, an ambiguous float mask.
class SourceAttention : public Module {
 public:
  // keys: [B, S, Dk] -> what attend() scores against, [B, S, P] (P: each class says).
  virtual Tensor project_keys(const Tensor& keys) const = 0;
  // query: [B, Dq], projected_keys: project_keys(keys), values: [B, S, Dv], key_padding_mask: [B, S]
  // (an ag::Mask, true = padded, or a float Tensor added to the scores). -> context [B, Dv],
  // weights [B, S].
  virtual AttentionOutput attend(const Tensor& query, const Tensor& projected_keys, const Tensor& values,
                                 const ag::AttentionMask& key_padding_mask = {}) const = 0;
  AttentionOutput forward(const Tensor& query, const Tensor& keys, const Tensor& values,
                          const ag::AttentionMask& key_padding_mask = {}) const {
    return attend(query, project_keys(keys), values, key_padding_mask);
  }
};

// Additive attention (Bahdanau, Cho & Bengio 2015, appendix A.1.2):
//   score(q, k_s) = v^T tanh(W_q q + W_k k_s + b_k)
// query_proj: Linear(query_dim -> hidden, no bias), key_proj: Linear(key_dim -> hidden) with the
// bias b_k, v: [hidden]. project_keys: W_k k_s + b_k, [B, S, hidden]. key_bias = false drops b_k:
// that is Luong et al.'s (2015, eq. 8) "concat" score v_a^T tanh(W_a [q; k_s]), W_a = [W_q W_k]
// split by columns.
class AdditiveAttention : public SourceAttention {
 public:
  AdditiveAttention(std::size_t query_dim, std::size_t key_dim, std::size_t hidden_dim, ag::Generator& gen, bool key_bias = true);
  Tensor project_keys(const Tensor& keys) const override;
  AttentionOutput attend(const Tensor& query, const Tensor& projected_keys, const Tensor& values,
                         const ag::AttentionMask& key_padding_mask = {}) const override;
  std::string describe() const override;
  std::shared_ptr<Linear> query_proj, key_proj;
  Tensor v;  // [hidden]

 private:
  std::size_t hidden_;
};

// Multiplicative attention (Luong, Pham & Manning 2015, eq. 8):
//   dot:      score(q, k_s) = q^T k_s            needs query_dim = key_dim; no parameters
//   general:  score(q, k_s) = q^T W_a k_s        W_a: [query_dim, key_dim], key_proj's weight
// project_keys: dot, the keys themselves [B, S, Dk]; general, W_a k_s [B, S, Dq] (key_proj:
// Linear(key_dim -> query_dim, no bias)), so each step costs one [S, Dq] x [Dq] product. The score
// is not scaled (Luong's; the 1/sqrt(d) of lesson 09 came with the Transformer).
// Errors: dot with query_dim != key_dim (at construction).
enum class LuongScore { dot, general };
class LuongAttention : public SourceAttention {
 public:
  LuongAttention(std::size_t query_dim, std::size_t key_dim, LuongScore score, ag::Generator& gen);
  Tensor project_keys(const Tensor& keys) const override;
  AttentionOutput attend(const Tensor& query, const Tensor& projected_keys, const Tensor& values,
                         const ag::AttentionMask& key_padding_mask = {}) const override;
  std::string describe() const override;
  std::shared_ptr<Linear> key_proj;  // general: W_a; dot: null

 private:
  std::size_t query_dim_, key_dim_;
  LuongScore score_;
};

// x + PE[t]: PE[t, 2i] = sin(t / 10000^(2i/D)), PE[t, 2i+1] = cos(t / 10000^(2i/D)). No parameters.
// Positional encodings add row offset + t of their table to x[:, t]: offset is the position of the
// first row (the cache's length when decoding with a KV cache). Errors: positions past the table
// (offset + T > max_len), x not [B, T, D].
class SinusoidalPositionalEncoding : public Module {
 public:
  SinusoidalPositionalEncoding(std::size_t d_model, std::size_t max_len = 4096);
  Tensor forward(const Tensor& x, std::size_t offset = 0) const;  // x: [B, T, D]
  Tensor operator()(const Tensor& x) const { return forward(x); }
  std::string describe() const override;
  Tensor table(ag::Dtype dtype = ag::f32) const { return dtype == ag::f64 ? pe64_ : pe_; }  // [max_len, D]

 private:
  Tensor pe_, pe64_;  // the same table rounded to float32, and in float64 (for float64 models)
};

// x + P[t] with a learned table P: [max_len, D] ~ N(0, 0.02^2).
class LearnedPositionalEncoding : public Module {
 public:
  LearnedPositionalEncoding(std::size_t d_model, std::size_t max_len, ag::Generator& gen);
  Tensor forward(const Tensor& x, std::size_t offset = 0) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  std::string describe() const override;
  Tensor weight;
};

}  // namespace nn
