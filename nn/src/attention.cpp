#include "nn/attention.hpp"

#include <cmath>
#include <limits>

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

Tensor alibi_bias(const std::vector<double>& slopes, std::size_t Tq, std::size_t Tk, bool symmetric, ag::Dtype dtype) {
  const std::size_t H = slopes.size();
  std::vector<double> b(H * Tq * Tk);
  for (std::size_t h = 0; h < H; ++h)
    for (std::size_t i = 0; i < Tq; ++i)
      for (std::size_t j = 0; j < Tk; ++j) {
        const double dist = double(i) - double(j);
        b[(h * Tq + i) * Tk + j] = -slopes[h] * (symmetric ? std::abs(dist) : dist);
      }
  return ag::tensor(b, {H, Tq, Tk}, {dtype});
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

AttentionOutput MultiHeadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                            const ag::AttentionMask& key_padding_mask, const ag::AttentionMask& attn_mask) {
  for (const Tensor* t : {&query, &key, &value})
    if (t->dim() != 3 || t->shape()[2] != d_model_)
      ag::fail(describe(), ": query/key/value must be [batch, time, ", d_model_, "], got ", ag::shape_str(t->shape()));
  const std::size_t B = query.shape()[0], Tq = query.shape()[1], Tk = key.shape()[1], D = d_model_, H = heads_,
                    Hkv = kv_heads_, Dkv = Hkv * (D / H);
  if (key.shape()[0] != B || value.shape() != key.shape())
    ag::fail(describe(), ": key ", ag::shape_str(key.shape()), " and value ", ag::shape_str(value.shape()),
             " must match each other and the query's batch ", B);
  // 1) project. Self-attention (one input) takes all three projections in one gemm.
  Tensor q, k, v;
  if (query.node() == key.node() && key.node() == value.node()) {
    const Tensor qkv = ag::linear(query, in_proj_weight, in_proj_bias);  // [B, T, D + 2 D_kv]
    q = ag::slice(qkv, -1, 0, std::int64_t(D));
    k = ag::slice(qkv, -1, std::int64_t(D), std::int64_t(D + Dkv));
    v = ag::slice(qkv, -1, std::int64_t(D + Dkv), std::int64_t(D + 2 * Dkv));
  } else {
    // the blocks of in_proj: W_q rows [0, D), W_k [D, D + D_kv), W_v [D + D_kv, D + 2 D_kv)
    const std::int64_t from[3] = {0, std::int64_t(D), std::int64_t(D + Dkv)}, to[3] = {std::int64_t(D), std::int64_t(D + Dkv),
                                                                                      std::int64_t(D + 2 * Dkv)};
    auto rows = [&](std::size_t i) { return ag::slice(in_proj_weight, 0, from[i], to[i]); };
    auto bias = [&](std::size_t i) { return in_proj_bias.defined() ? ag::slice(in_proj_bias, 0, from[i], to[i]) : Tensor(); };
    q = ag::linear(query, rows(0), bias(0));
    k = ag::linear(key, rows(1), bias(1));
    v = ag::linear(value, rows(2), bias(2));
  }
  // 2) split heads: [B, T, D] -> [B, H, T, d]
  const auto d = std::int64_t(D / H);
  auto heads = [&](const Tensor& x, std::size_t T, std::size_t n = 0) {
    n = n ? n : H;
    return ag::permute(ag::reshape(x, {std::int64_t(B), std::int64_t(T), std::int64_t(n), d}), {0, 2, 1, 3});
  };
  // GQA: [B, H_kv, T, d] -> [B, H, T, d], each key/value head repeated for its H / H_kv query heads
  auto repeat_kv = [&](const Tensor& x, std::size_t T) {
    if (Hkv == H) return x;
    const auto b = std::int64_t(B), g = std::int64_t(H / Hkv), n = std::int64_t(Hkv), t = std::int64_t(T);
    return ag::reshape(ag::expand(ag::reshape(x, {b, n, 1, t, d}), {std::size_t(b), std::size_t(n), std::size_t(g), T, std::size_t(d)}),
                       {b, std::int64_t(H), t, d});
  };
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
  Tensor qh = heads(q, Tq), kh = heads(k, Tk, Hkv);
  if (rotary) qh = ag::rope(qh, 0, rotary_base), kh = ag::rope(kh, 0, rotary_base);
  kh = repeat_kv(kh, Tk);
  const Tensor vh = repeat_kv(heads(v, Tk, Hkv), Tk);
  const bool drop = dropout->p() > 0 && is_training();
  AttentionOutput a;
  if (impl == AttentionImpl::tiled) {
    if (drop) ag::fail(describe(), ": tiled attention has no weights to drop out; use dropout 0 or AttentionImpl::naive in training");
    ag::TiledAttentionOptions o;
    if (alibi) o.alibi_slopes = alibi_slopes(H), o.alibi_symmetric = alibi_symmetric;
    a.output = ag::tiled_attention(qh, kh, vh, mask, o);
  } else {
    if (alibi) {  // [H, Tq, Tk], broadcast over the batch, added to any float mask
      const Tensor b = alibi_bias(alibi_slopes(H), Tq, Tk, alibi_symmetric, qh.dtype());
      mask.bias = mask.bias.defined() ? ag::add(mask.bias.to(b.dtype()), b) : b;
    }
    a = scaled_dot_product_attention(qh, kh, vh, mask);
    if (drop) a.output = ag::matmul((*dropout)(a.weights), vh);  // dropout on the weights
  }
  // 4) merge heads and project: [B, H, Tq, d] -> [B, Tq, D] -> out_proj
  const Tensor merged = ag::reshape(ag::permute(a.output, {0, 2, 1, 3}), {std::int64_t(B), std::int64_t(Tq), std::int64_t(D)});
  return {(*out_proj)(merged), a.weights};
}

std::string MultiHeadAttention::describe() const {
  return "MultiHeadAttention(d_model=" + std::to_string(d_model_) + ", heads=" + std::to_string(heads_) +
         (kv_heads_ != heads_ ? ", num_kv_heads=" + std::to_string(kv_heads_) : std::string()) +
         (impl == AttentionImpl::tiled ? ", tiled" : "") + (in_proj_bias.defined() ? "" : ", bias=false") + (rotary ? ", rotary" : "") +
         (alibi ? ", alibi" : "") + ")";
}

// ---- AdditiveAttention --------------------------------------------------------------------------
AdditiveAttention::AdditiveAttention(std::size_t query_dim, std::size_t key_dim, std::size_t hidden, ag::Generator& gen)
    : hidden_(hidden) {
  query_proj = register_module("query_proj", std::make_shared<Linear>(query_dim, hidden, gen, false));
  key_proj = register_module("key_proj", std::make_shared<Linear>(key_dim, hidden, gen));
  v = register_parameter("v", uniform_tensor({hidden}, 1.0 / std::sqrt(double(hidden)), gen));
}

Tensor AdditiveAttention::project_keys(const Tensor& keys) const {
  if (keys.dim() != 3) ag::fail(describe(), ": keys should be [batch, source, features], got ", ag::shape_str(keys.shape()));
  return (*key_proj)(keys);
}

AttentionOutput AdditiveAttention::attend(const Tensor& query, const Tensor& projected_keys, const Tensor& values,
                                          const ag::AttentionMask& key_padding_mask) const {
  if (query.dim() != 2 || projected_keys.dim() != 3 || values.dim() != 3 || query.shape()[0] != projected_keys.shape()[0] ||
      projected_keys.shape()[1] != values.shape()[1] || projected_keys.shape()[2] != hidden_)
    ag::fail(describe(), ": query ", ag::shape_str(query.shape()), ", projected keys ", ag::shape_str(projected_keys.shape()),
             ", values ", ag::shape_str(values.shape()), " should be [B, Dq], [B, S, ", hidden_, "], [B, S, Dv]");
  // 1) e_s = v^T tanh(W_q q + W_k k_s): [B, S]
  const Tensor e = ag::tanh(ag::unsqueeze((*query_proj)(query), 1) + projected_keys);  // [B, S, hidden]
  Tensor scores = ag::squeeze(ag::matmul(e, ag::unsqueeze(v, 1)), -1);
  // 2) padded source positions get zero weight; a float mask is added
  if (key_padding_mask.bias.defined()) {
    ag::check_float_mask(describe().c_str(), key_padding_mask.bias);
    scores = scores + key_padding_mask.bias.to(scores.dtype());
  }
  if (key_padding_mask.blocked.defined())
    scores = ag::masked_fill(scores, key_padding_mask.blocked, -std::numeric_limits<double>::infinity());
  // 3) weights, 4) context = sum_s w_s values_s: [B, Dv]
  const Tensor w = ag::softmax(scores, -1);
  return {ag::squeeze(ag::matmul(ag::unsqueeze(w, 1), values), 1), w};
}

std::string AdditiveAttention::describe() const {
  return "AdditiveAttention(query=" + std::to_string(query_proj->weight.shape()[1]) + ", key=" +
         std::to_string(key_proj->weight.shape()[1]) + ", hidden=" + std::to_string(hidden_) + ")";
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

static Tensor add_positions(const char* who, const Tensor& x, const Tensor& table) {
  if (x.dim() != 3 || x.shape()[2] != table.shape()[1] || x.shape()[1] > table.shape()[0])
    ag::fail(who, ": input ", ag::shape_str(x.shape()), " should be [batch, time <= ", table.shape()[0], ", ", table.shape()[1], "]");
  const Tensor pos = ag::slice(table, 0, 0, std::int64_t(x.shape()[1]));
  return x + (pos.dtype() == x.dtype() ? pos : pos.to(x.dtype()));
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x) const {
  return add_positions("SinusoidalPositionalEncoding", x, x.dtype() == ag::f64 ? pe64_ : pe_);
}
std::string SinusoidalPositionalEncoding::describe() const {
  return "SinusoidalPositionalEncoding(d_model=" + std::to_string(pe_.shape()[1]) + ")";
}

LearnedPositionalEncoding::LearnedPositionalEncoding(std::size_t D, std::size_t max_len, ag::Generator& gen) {
  Tensor w = ag::randn({max_len, D}, gen);
  for (auto& x : w.data<float>()) x *= 0.02f;
  weight = register_parameter("weight", w);
}
Tensor LearnedPositionalEncoding::forward(const Tensor& x) const { return add_positions("LearnedPositionalEncoding", x, weight); }
std::string LearnedPositionalEncoding::describe() const {
  return "LearnedPositionalEncoding(max_len=" + std::to_string(weight.shape()[0]) + ", d_model=" + std::to_string(weight.shape()[1]) + ")";
}

}  // namespace nn
