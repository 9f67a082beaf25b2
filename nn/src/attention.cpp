#include "nn/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

namespace nn {

AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const ag::AttentionMask& mask, double scale) {
  if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2 || q.shape().back() != k.shape().back() ||
      k.shape()[k.dim() - 2] != v.shape()[v.dim() - 2])
    ag::fail("scaled_dot_product_attention: q ", ag::shape_str(q.shape()), ", k ", ag::shape_str(k.shape()), ", v ",
             ag::shape_str(v.shape()), " should be [..., Tq, d], [..., Tk, d], [..., Tk, dv]");
  // The batch dims of q and k may broadcast against each other (as in matmul); the fused op
  // wants them equal, so a smaller one is expanded (q and k are [..., T, d]: small next to the weights).
  const ag::Shape qb(q.shape().begin(), q.shape().end() - 2), kb(k.shape().begin(), k.shape().end() - 2);
  Tensor qe = q, ke = k;
  if (qb != kb) {
    ag::Shape batch(std::max(qb.size(), kb.size()), 1);
    for (std::size_t i = 1; i <= batch.size(); ++i) {
      const std::size_t a = i <= qb.size() ? qb[qb.size() - i] : 1, b = i <= kb.size() ? kb[kb.size() - i] : 1;
      if (a != b && a != 1 && b != 1)
        ag::fail("scaled_dot_product_attention: the batch dims of q ", ag::shape_str(q.shape()), " and k ",
                 ag::shape_str(k.shape()), " do not broadcast");
      batch[batch.size() - i] = std::max(a, b);
    }
    auto expand = [&](const Tensor& t) {
      ag::Shape s = batch;
      s.push_back(t.shape()[t.dim() - 2]);
      s.push_back(t.shape().back());
      return t.shape() == s ? t : ag::expand(t, s);
    };
    qe = expand(q), ke = expand(k);
  }
  // 1) scores = q k^T * scale (+ a float mask), 2) blocked positions -> -inf (exactly 0 weight), 3) softmax over
  // the keys: one op, ag::attention_weights, which keeps the weights but not the scores.
  const Tensor weights = ag::attention_weights(qe, ke, mask, scale > 0 ? scale : 0.0);
  // 4) the weighted sum of the values
  return {ag::matmul(weights, v), weights};
}

ag::Mask causal_mask(std::size_t T) {
  std::vector<std::uint8_t> m(T * T, 0);
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = i + 1; j < T; ++j) m[i * T + j] = 1;
  return ag::Mask({T, T}, std::move(m));
}

ag::Mask causal_mask(std::size_t Tq, std::size_t Tk) {
  if (Tq > Tk) ag::fail("causal_mask: ", Tq, " queries cannot be the last of ", Tk, " keys (Tq <= Tk)");
  std::vector<std::uint8_t> m(Tq * Tk, 0);
  for (std::size_t i = 0; i < Tq; ++i)
    for (std::size_t j = Tk - Tq + i + 1; j < Tk; ++j) m[i * Tk + j] = 1;
  return ag::Mask({Tq, Tk}, std::move(m));
}

ag::Mask sliding_window_mask(std::size_t Tq, std::size_t Tk, std::size_t window, const std::vector<std::size_t>& global_tokens,
                             std::size_t query_offset) {
  std::vector<std::uint8_t> global(std::max(Tk, query_offset + Tq), 0);
  for (std::size_t g : global_tokens) {
    if (g >= Tk) ag::fail("sliding_window_mask: global token at position ", g, " is not among the ", Tk, " keys");
    global[g] = 1;
  }
  std::vector<std::uint8_t> m(Tq * Tk, 0);
  for (std::size_t r = 0; r < Tq; ++r) {
    const std::size_t i = query_offset + r;
    if (global[i]) continue;
    for (std::size_t j = 0; j < Tk; ++j) m[r * Tk + j] = (i > j ? i - j : j - i) > window && !global[j];
  }
  return ag::Mask({Tq, Tk}, std::move(m));
}

ag::Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t T) {
  std::vector<std::uint8_t> m(lengths.size() * T, 0);
  for (std::size_t b = 0; b < lengths.size(); ++b)
    for (std::size_t j = lengths[b]; j < T; ++j) m[b * T + j] = 1;
  return ag::Mask({lengths.size(), T}, std::move(m));
}

std::vector<double> alibi_slopes(std::size_t H) {
  if (H == 0) ag::fail("alibi_slopes: needs at least one head");
  auto power_of_two = [](std::size_t n) {  // 2^(-8/n), 2^(-16/n), ..., 2^(-8)
    std::vector<double> m(n);
    for (std::size_t h = 0; h < n; ++h) m[h] = std::exp2(-8.0 * double(h + 1) / double(n));
    return m;
  };
  std::size_t n = 1;
  while (2 * n <= H) n *= 2;
  std::vector<double> m = power_of_two(n);
  const std::vector<double> twice = power_of_two(2 * n);
  for (std::size_t h = 0; m.size() < H; h += 2) m.push_back(twice[h]);
  return m;
}

Tensor alibi_bias(const std::vector<double>& slopes, std::size_t Tq, std::size_t Tk, bool symmetric, ag::Dtype dtype,
                  std::size_t query_offset) {
  const std::size_t H = slopes.size();
  std::vector<double> b(H * Tq * Tk);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < Tq; ++i)
      for (std::size_t j = 0; j < Tk; ++j) {
        const double dist = double(query_offset + i) - double(j);
        b[(h * Tq + i) * Tk + j] = -slopes[h] * (symmetric ? std::abs(dist) : dist);
      }
  return ag::tensor(b, {H, Tq, Tk}, {dtype});
}

// ---- KVCache ------------------------------------------------------------------------------------
KVCache::KVCache(std::size_t batch, std::size_t num_kv_heads, std::size_t max_length, std::size_t head_dim, ag::Dtype dtype)
    : max_length_(max_length) {
  if (batch == 0 || num_kv_heads == 0 || max_length == 0 || head_dim == 0)
    ag::fail("KVCache: batch ", batch, ", num_kv_heads ", num_kv_heads, ", max_length ", max_length, ", head_dim ", head_dim,
             " must all be at least 1");
  k_ = ag::zeros({batch, num_kv_heads, max_length, head_dim}, {.dtype = dtype});
  v_ = ag::zeros({batch, num_kv_heads, max_length, head_dim}, {.dtype = dtype});
}

std::size_t KVCache::bytes() const { return k_.defined() ? 2 * k_.numel() * (k_.dtype() == ag::f64 ? sizeof(double) : sizeof(float)) : 0; }

namespace {
// rows [from, from + n) of every [T_src, d] slab of src [S, T_src, d] -> rows [to, to + n) of dst [S, T_dst, d]
template <class T>
void copy_rows(const T* src, std::size_t src_rows, std::size_t from, T* dst, std::size_t dst_rows, std::size_t to,
               std::size_t n, std::size_t slabs, std::size_t d) {
  for (std::size_t s = 0; s < slabs; ++s)
    std::copy_n(src + (s * src_rows + from) * d, n * d, dst + (s * dst_rows + to) * d);
}
}  // namespace

std::pair<Tensor, Tensor> KVCache::append(const Tensor& k, const Tensor& v) {
  if (!defined()) ag::fail("KVCache: append to a cache made without sizes (use MultiHeadAttention::make_cache)");
  const ag::Shape& full = k_.shape();
  if (k.dim() != 4 || k.shape() != v.shape() || k.shape()[0] != full[0] || k.shape()[1] != full[1] || k.shape()[3] != full[3] ||
      k.dtype() != k_.dtype() || v.dtype() != k_.dtype())
    ag::fail("KVCache: keys ", ag::shape_str(k.shape()), " and values ", ag::shape_str(v.shape()), " should both be [", full[0], ", ",
             full[1], ", T, ", full[3], "] of the cache's dtype ", ag::dtype_name(k_.dtype()));
  const std::size_t T = k.shape()[2], slabs = full[0] * full[1], d = full[3];
  if (length_ + T > max_length_)
    ag::fail("KVCache: full: it holds ", length_, " of ", max_length_, " positions and ", T,
             " more do not fit (make a longer cache, or clear() it)");
  const std::size_t n = length_ + T;
  // every element is written below: no zero fill on the per-token path
  Tensor k_all = Tensor::from(ag::Array::empty(k_.dtype(), {full[0], full[1], n, d}), false),
         v_all = Tensor::from(ag::Array::empty(k_.dtype(), {full[0], full[1], n, d}), false);
  auto run = [&](auto zero) {
    using E = decltype(zero);
    for (auto [src, store, all] : {std::tuple{&k, &k_, &k_all}, std::tuple{&v, &v_, &v_all}}) {
      E* cache = store->template data<E>().data();
      copy_rows(src->template data<E>().data(), T, 0, cache, max_length_, length_, T, slabs, d);  // write the new rows
      copy_rows(cache, max_length_, 0, all->template data<E>().data(), n, 0, n, slabs, d);        // read every row held
    }
  };
  if (k_.dtype() == ag::f64) run(double(0)); else run(float(0));
  length_ = n;
  return {k_all, v_all};
}

// ---- MultiHeadAttention -----------------------------------------------------------------------
MultiHeadAttention::MultiHeadAttention(std::size_t d_model, std::size_t num_heads, ag::Generator& gen, double p,
                                       AttentionImpl attention_impl, bool bias, std::size_t num_kv_heads)
    : impl(attention_impl), d_model_(d_model), heads_(num_heads), kv_heads_(num_kv_heads ? num_kv_heads : num_heads) {
  if (num_heads == 0 || d_model % num_heads != 0)
    ag::fail("MultiHeadAttention: d_model ", d_model, " is not divisible by num_heads ", num_heads);
  if (num_heads % kv_heads_ != 0)
    ag::fail("MultiHeadAttention: num_heads ", num_heads, " is not divisible by num_kv_heads ", kv_heads_,
             " (each key/value head serves a whole group of query heads)");
  // PyTorch: xavier_uniform_ on in_proj_weight (fan_in = D, fan_out = its rows), zero biases.
  const std::size_t rows = d_model + 2 * kv_heads_ * (d_model / num_heads);  // 3D without GQA
  const double bound = std::sqrt(6.0 / double(d_model + rows));
  in_proj_weight = register_parameter("in_proj_weight", uniform_tensor({rows, d_model}, bound, gen));
  if (bias) in_proj_bias = register_parameter("in_proj_bias", ag::zeros({rows}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(d_model, d_model, gen, bias));
  if (bias) out_proj->bias.data<float>().fill(0.f);
  dropout = register_module("dropout", std::make_shared<Dropout>(p, std::uint64_t(gen.integer(0, 1 << 30))));
}

MultiHeadAttention::Heads MultiHeadAttention::project(const Tensor& query, const Tensor& key, const Tensor& value) const {
  const std::size_t D = d_model_, H = heads_, Hkv = kv_heads_, Dkv = Hkv * (D / H);
  // 1) project, and 2) split heads: [B, T, n d] -> [B, n, T, d], one copy each (ag::split_heads).
  // Self-attention (one input) takes all three projections in one gemm.
  const std::size_t d = D / H;
  if (query.node() == key.node() && key.node() == value.node()) {
    const Tensor qkv = ag::linear(query, in_proj_weight, in_proj_bias);  // [B, T, D + 2 D_kv]
    return {ag::split_heads(qkv, H, d, 0), ag::split_heads(qkv, Hkv, d, D), ag::split_heads(qkv, Hkv, d, D + Dkv)};
  }
  // the blocks of in_proj: W_q rows [0, D), W_k [D, D + D_kv), W_v [D + D_kv, D + 2 D_kv)
  const std::int64_t from[3] = {0, std::int64_t(D), std::int64_t(D + Dkv)}, to[3] = {std::int64_t(D), std::int64_t(D + Dkv),
                                                                                    std::int64_t(D + 2 * Dkv)};
  auto rows = [&](std::size_t i) { return ag::slice(in_proj_weight, 0, from[i], to[i]); };
  auto bias = [&](std::size_t i) { return in_proj_bias.defined() ? ag::slice(in_proj_bias, 0, from[i], to[i]) : Tensor(); };
  return {ag::split_heads(ag::linear(query, rows(0), bias(0)), H, d), ag::split_heads(ag::linear(key, rows(1), bias(1)), Hkv, d),
          ag::split_heads(ag::linear(value, rows(2), bias(2)), Hkv, d)};
}

Tensor MultiHeadAttention::repeat_kv(const Tensor& x) const {
  // each key/value head repeated for its H / H_kv query heads
  if (kv_heads_ == heads_) return x;
  const std::size_t B = x.shape()[0], Tk = x.shape()[2], d = d_model_ / heads_, g = heads_ / kv_heads_;
  const auto b = std::int64_t(B), n = std::int64_t(kv_heads_), t = std::int64_t(Tk);
  return ag::reshape(ag::expand(ag::reshape(x, {b, n, 1, t, std::int64_t(d)}), {B, kv_heads_, g, Tk, d}),
                     {b, std::int64_t(heads_), t, std::int64_t(d)});
}

Tensor MultiHeadAttention::merge_heads(const Tensor& o) const {
  // 4) merge heads and project: [B, H, Tq, d] -> [B, Tq, D] -> out_proj
  return (*out_proj)(ag::merge_heads(o));
}

AttentionOutput MultiHeadAttention::attend(const Tensor& q, const Tensor& k_in, const Tensor& v_in, ag::AttentionMask mask,
                                           bool causal, std::size_t query_offset) {
  const std::size_t Tq = q.shape()[2], Tk = k_in.shape()[2], H = heads_;
  const Tensor k = repeat_kv(k_in), v = repeat_kv(v_in);
  const bool drop = dropout->p() > 0 && is_training();
  // Global positions among these Tk keys (a shorter sequence, or a KV cache still filling, has
  // not reached the others yet).
  std::vector<std::size_t> globals;
  for (std::size_t g : global_tokens)
    if (g < Tk) globals.push_back(g);
  AttentionOutput a;
  if (impl == AttentionImpl::tiled) {
    if (drop) ag::fail(describe(), ": tiled attention has no weights to drop out; use dropout 0 or AttentionImpl::naive in training");
    ag::TiledAttentionOptions o{.causal = causal, .query_offset = query_offset, .window = window, .global_tokens = globals};
    if (alibi) o.alibi_slopes = alibi_slopes(H), o.alibi_symmetric = alibi_symmetric;
    a.output = ag::tiled_attention(q, k, v, mask, o);
  } else {
    if (causal && Tq > 1) mask.blocked = causal_mask(Tq, Tk) | mask.blocked;  // one query sees every key
    if (window) mask.blocked = sliding_window_mask(Tq, Tk, *window, globals, query_offset) | mask.blocked;
    else if (!global_tokens.empty()) ag::fail(describe(), ": global_tokens need a window (without one every query sees every key)");
    if (alibi) {  // [H, Tq, Tk], broadcast over the batch, added to any float mask
      const Tensor b = alibi_bias(alibi_slopes(H), Tq, Tk, alibi_symmetric, q.dtype(), query_offset);
      mask.bias = mask.bias.defined() ? ag::add(mask.bias.to(b.dtype()), b) : b;
    }
    a = scaled_dot_product_attention(q, k, v, mask);
    if (drop) a.output = ag::matmul((*dropout)(a.weights), v);  // dropout on the weights
  }
  return {merge_heads(a.output), a.weights};
}

AttentionOutput MultiHeadAttention::attend_linear(const Tensor& q, const Tensor& k_in, const Tensor& v_in, const ag::Mask& key_padding,
                                                  bool causal) {
  if (dropout->p() > 0 && is_training())
    ag::fail(describe(), ": linear attention has no weights to drop out; use dropout 0 in training");
  if (alibi || rotary || window || !global_tokens.empty())
    ag::fail(describe(), ": linear attention takes no ALiBi, rotary positions, window or global tokens");
  // phi(x) = elu(x) + 1 > 0 (Katharopoulos et al. 2020, eq. 7), on each head's q and k (before
  // GQA's repetition: once per key/value head)
  const Tensor phi_q = ag::elu(q) + 1.0;
  Tensor phi_k = repeat_kv(ag::elu(k_in) + 1.0);
  if (key_padding.defined()) {  // a padded key with phi = 0 adds nothing to either sum
    const std::size_t B = q.shape()[0], Tk = k_in.shape()[2];
    std::vector<double> keep(B * Tk);
    for (std::size_t i = 0; i < keep.size(); ++i) keep[i] = key_padding.data()[i] ? 0.0 : 1.0;
    phi_k = phi_k * ag::tensor(keep, {B, 1, Tk, 1}, {q.dtype()});
  }
  return {merge_heads(ag::linear_attention(phi_q, phi_k, repeat_kv(v_in), {.causal = causal})), Tensor()};
}

AttentionOutput MultiHeadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                            const ag::AttentionMask& key_padding_mask, const ag::AttentionMask& attn_mask,
                                            bool is_causal) {
  for (const Tensor* t : {&query, &key, &value})
    if (t->dim() != 3 || t->shape()[2] != d_model_)
      ag::fail(describe(), ": query/key/value must be [batch, time, ", d_model_, "], got ", ag::shape_str(t->shape()));
  const std::size_t B = query.shape()[0], Tk = key.shape()[1];
  if (key.shape()[0] != B || value.shape() != key.shape())
    ag::fail(describe(), ": key ", ag::shape_str(key.shape()), " and value ", ag::shape_str(value.shape()),
             " must match each other and the query's batch ", B);
  if (is_causal && query.shape()[1] != Tk)
    ag::fail(describe(), ": is_causal needs as many queries as keys (query i sees keys 0..i), got query ",
             ag::shape_str(query.shape()), " and key ", ag::shape_str(key.shape()), "; pass an attn_mask for anything else");
  if (impl == AttentionImpl::linear) {
    if (attn_mask.blocked.defined() || attn_mask.bias.defined() || key_padding_mask.bias.defined())
      ag::fail(describe(), ": linear attention takes no attn_mask and no float key_padding_mask (a Mask [B, Tk] of padded keys, and "
               "is_causal, only): its weights are never formed, so nothing can be masked one pair at a time");
    if (key_padding_mask.blocked.defined() && key_padding_mask.blocked.shape() != ag::Shape{B, Tk})
      ag::fail(describe(), ": key_padding_mask ", ag::shape_str(key_padding_mask.blocked.shape()), " should be [", B, ",", Tk, "]");
    const Heads h = project(query, key, value);
    return attend_linear(h.q, h.k, h.v, key_padding_mask.blocked, is_causal);
  }
  // 3) masks: [B, Tk] padding -> [B, 1, 1, Tk]; [Tq, Tk] broadcasts as it is. Blocking parts are
  // or-ed, float parts added (PyTorch adds a bool mask as -inf: the same result).
  ag::AttentionMask mask = attn_mask;
  if (attn_mask.bias.defined()) ag::check_float_mask(describe().c_str(), attn_mask.bias);  // before any sum hides it
  const ag::Shape kpm_shape{B, 1, 1, Tk};
  if (key_padding_mask.blocked.defined()) {
    if (key_padding_mask.blocked.shape() != ag::Shape{B, Tk})
      ag::fail(describe(), ": key_padding_mask ", ag::shape_str(key_padding_mask.blocked.shape()), " should be [", B, ",", Tk, "]");
    mask.blocked = key_padding_mask.blocked.reshape(kpm_shape) | mask.blocked;
  }
  if (key_padding_mask.bias.defined()) {
    if (key_padding_mask.bias.shape() != ag::Shape{B, Tk})
      ag::fail(describe(), ": key_padding_mask ", ag::shape_str(key_padding_mask.bias.shape()), " should be [", B, ",", Tk, "]");
    ag::check_float_mask(describe().c_str(), key_padding_mask.bias);  // before the sum hides its 0/1 values
    const Tensor kpm = ag::reshape(key_padding_mask.bias, {std::int64_t(B), 1, 1, std::int64_t(Tk)});
    mask.bias = mask.bias.defined() ? ag::add(kpm, mask.bias.to(kpm.dtype())) : kpm;
  }
  Heads h = project(query, key, value);
  if (rotary) h.q = ag::rope(h.q, 0, rotary_base), h.k = ag::rope(h.k, 0, rotary_base);
  return attend(h.q, h.k, h.v, mask, is_causal, 0);
}

AttentionOutput MultiHeadAttention::forward(const Tensor& x, KVCache& cache) {
  if (x.dim() != 3 || x.shape()[2] != d_model_)
    ag::fail(describe(), ": x must be [batch, time, ", d_model_, "] with a KV cache, got ", ag::shape_str(x.shape()));
  if (ag::grad_enabled())
    ag::fail(describe(), ": a KV cache is for inference; its keys and values are not on the graph. Decode under ag::NoGrad");
  if (impl == AttentionImpl::linear)
    ag::fail(describe(), ": linear attention has no KV cache here (its decoding state would be the d x d sums S and z)");
  const std::size_t position = cache.length();  // of x's first token
  Heads h = project(x, x, x);
  if (rotary) h.q = ag::rope(h.q, position, rotary_base), h.k = ag::rope(h.k, position, rotary_base);
  const auto [k, v] = cache.append(h.k, h.v);  // every position so far: [B, H_kv, position + T, d]
  return attend(h.q, k, v, {}, true, position);
}

KVCache MultiHeadAttention::make_cache(std::size_t batch, std::size_t max_length) const {
  return KVCache(batch, kv_heads_, max_length, d_model_ / heads_, in_proj_weight.dtype());
}

std::string MultiHeadAttention::describe() const {
  return "MultiHeadAttention(d_model=" + std::to_string(d_model_) + ", heads=" + std::to_string(heads_) +
         (kv_heads_ != heads_ ? ", num_kv_heads=" + std::to_string(kv_heads_) : std::string()) +
         (impl == AttentionImpl::tiled ? ", tiled" : impl == AttentionImpl::linear ? ", linear" : "") +
         (in_proj_bias.defined() ? "" : ", bias=false") + (rotary ? ", rotary" : "") + (alibi ? ", alibi" : "") +
         (window ? ", window=" + std::to_string(*window) : std::string()) +
         (global_tokens.empty() ? std::string() : ", global_tokens=" + std::to_string(global_tokens.size())) + ")";
}

// ---- SourceAttention: the additive and Luong scores -----------------------------------------------
namespace {

// Steps 2-4 of every score: padded source positions get zero weight (a float mask is added), the
// weights are the softmax over s, the context their sum of the values. scores: [B, S], values: [B, S, Dv].
AttentionOutput weigh_values(const std::string& who, Tensor scores, const Tensor& values, const ag::AttentionMask& key_padding_mask) {
  if (key_padding_mask.bias.defined()) {
    ag::check_float_mask(who.c_str(), key_padding_mask.bias);
    scores = scores + key_padding_mask.bias.to(scores.dtype());
  }
  if (key_padding_mask.blocked.defined())
    scores = ag::masked_fill(scores, key_padding_mask.blocked, -std::numeric_limits<double>::infinity());
  const Tensor w = ag::softmax(scores, -1);
  return {ag::squeeze(ag::matmul(ag::unsqueeze(w, 1), values), 1), w};
}

void check_keys(const std::string& who, const Tensor& keys) {
  if (keys.dim() != 3) ag::fail(who, ": keys should be [batch, source, features], got ", ag::shape_str(keys.shape()));
}

// query [B, Dq], projected keys [B, S, P] with P = `width`, values [B, S, Dv]
void check_attend(const std::string& who, const Tensor& query, const Tensor& projected_keys, const Tensor& values, std::size_t width,
                  std::size_t query_dim) {
  if (query.dim() != 2 || projected_keys.dim() != 3 || values.dim() != 3 || query.shape()[0] != projected_keys.shape()[0] ||
      values.shape()[0] != query.shape()[0] || projected_keys.shape()[1] != values.shape()[1] || projected_keys.shape()[2] != width ||
      query.shape()[1] != query_dim)
    ag::fail(who, ": query ", ag::shape_str(query.shape()), ", projected keys ", ag::shape_str(projected_keys.shape()), ", values ",
             ag::shape_str(values.shape()), " should be [B, ", query_dim, "], [B, S, ", width, "], [B, S, Dv]");
}

}  // namespace

AdditiveAttention::AdditiveAttention(std::size_t query_dim, std::size_t key_dim, std::size_t hidden, ag::Generator& gen, bool key_bias)
    : hidden_(hidden) {
  query_proj = register_module("query_proj", std::make_shared<Linear>(query_dim, hidden, gen, false));
  key_proj = register_module("key_proj", std::make_shared<Linear>(key_dim, hidden, gen, key_bias));
  v = register_parameter("v", uniform_tensor({hidden}, 1.0 / std::sqrt(double(hidden)), gen));
}

Tensor AdditiveAttention::project_keys(const Tensor& keys) const {
  check_keys(describe(), keys);
  return (*key_proj)(keys);
}

AttentionOutput AdditiveAttention::attend(const Tensor& query, const Tensor& projected_keys, const Tensor& values,
                                          const ag::AttentionMask& key_padding_mask) const {
  check_attend(describe(), query, projected_keys, values, hidden_, query_proj->weight.shape()[1]);
  // e_s = v^T tanh(W_q q + W_k k_s): [B, S]
  const Tensor e = ag::tanh(ag::unsqueeze((*query_proj)(query), 1) + projected_keys);  // [B, S, hidden]
  return weigh_values(describe(), ag::squeeze(ag::matmul(e, ag::unsqueeze(v, 1)), -1), values, key_padding_mask);
}

std::string AdditiveAttention::describe() const {
  return "AdditiveAttention(query=" + std::to_string(query_proj->weight.shape()[1]) + ", key=" +
         std::to_string(key_proj->weight.shape()[1]) + ", hidden=" + std::to_string(hidden_) +
         (key_proj->bias.defined() ? ")" : ", no key bias)");
}

LuongAttention::LuongAttention(std::size_t query_dim, std::size_t key_dim, LuongScore score, ag::Generator& gen)
    : query_dim_(query_dim), key_dim_(key_dim), score_(score) {
  if (score == LuongScore::dot && query_dim != key_dim)
    ag::fail(describe(), ": the dot score needs the query and the keys the same size, got ", query_dim, " and ", key_dim,
             " (the general score maps one to the other)");
  if (score == LuongScore::general) key_proj = register_module("key_proj", std::make_shared<Linear>(key_dim, query_dim, gen, false));
}

Tensor LuongAttention::project_keys(const Tensor& keys) const {
  check_keys(describe(), keys);
  if (keys.shape()[2] != key_dim_) ag::fail(describe(), ": keys ", ag::shape_str(keys.shape()), " should be [B, S, ", key_dim_, "]");
  return key_proj ? (*key_proj)(keys) : keys;
}

AttentionOutput LuongAttention::attend(const Tensor& query, const Tensor& projected_keys, const Tensor& values,
                                       const ag::AttentionMask& key_padding_mask) const {
  check_attend(describe(), query, projected_keys, values, query_dim_, query_dim_);
  // score_s = q . k_s (dot) or q . W_a k_s (general): [B, S, Dq] x [B, Dq, 1] -> [B, S]
  const Tensor scores = ag::squeeze(ag::matmul(projected_keys, ag::unsqueeze(query, -1)), -1);
  return weigh_values(describe(), scores, values, key_padding_mask);
}

std::string LuongAttention::describe() const {
  return std::string("LuongAttention(") + (score_ == LuongScore::dot ? "dot" : "general") + ", query=" + std::to_string(query_dim_) +
         ", key=" + std::to_string(key_dim_) + ")";
}

// ---- positional encodings ------------------------------------------------------------------------
SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(std::size_t D, std::size_t max_len) {
  pe64_ = ag::zeros({max_len, D}, {.dtype = ag::f64});
  double* p = pe64_.data<double>().data();
  for (std::size_t t = 0; t < max_len; ++t)
    for (std::size_t i = 0; i < D; i += 2) {
      const double angle = double(t) / std::pow(10000.0, double(i) / double(D));
      p[t * D + i] = std::sin(angle);
      if (i + 1 < D) p[t * D + i + 1] = std::cos(angle);
    }
  pe_ = pe64_.to(ag::f32);
}

static Tensor add_positions(const char* who, const Tensor& x, const Tensor& table, std::size_t offset) {
  const std::size_t max_len = table.shape()[0], D = table.shape()[1];
  if (x.dim() != 3 || x.shape()[2] != D)
    ag::fail(who, ": input ", ag::shape_str(x.shape()), " should be [batch, time, ", D, "]");
  const std::size_t T = x.shape()[1];
  if (offset + T > max_len)
    ag::fail(who, ": positions ", offset, " to ", offset + T - 1, " (input ", ag::shape_str(x.shape()), " from position ", offset,
             ") are past its table of ", max_len, " positions (0 to ", max_len - 1, ")");
  const Tensor pos = ag::slice(table, 0, std::int64_t(offset), std::int64_t(offset + T));
  return x + (pos.dtype() == x.dtype() ? pos : pos.to(x.dtype()));
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x, std::size_t offset) const {
  return add_positions("SinusoidalPositionalEncoding", x, x.dtype() == ag::f64 ? pe64_ : pe_, offset);
}
std::string SinusoidalPositionalEncoding::describe() const {
  return "SinusoidalPositionalEncoding(d_model=" + std::to_string(pe_.shape()[1]) + ")";
}

LearnedPositionalEncoding::LearnedPositionalEncoding(std::size_t D, std::size_t max_len, ag::Generator& gen) {
  Tensor w = ag::randn({max_len, D}, gen);
  for (auto& x : w.data<float>()) x *= 0.02f;
  weight = register_parameter("weight", w);
}
Tensor LearnedPositionalEncoding::forward(const Tensor& x, std::size_t offset) const {
  return add_positions("LearnedPositionalEncoding", x, weight, offset);
}
std::string LearnedPositionalEncoding::describe() const {
  return "LearnedPositionalEncoding(max_len=" + std::to_string(weight.shape()[0]) + ", d_model=" + std::to_string(weight.shape()[1]) + ")";
}

}  // namespace nn
