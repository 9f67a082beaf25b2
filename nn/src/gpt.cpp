#include "nn/gpt.hpp"

#include <cmath>

#include "nn/init.hpp"

namespace nn {

namespace {
constexpr PositionEncoding kPositions[] = {PositionEncoding::learned, PositionEncoding::sinusoidal, PositionEncoding::rope,
                                           PositionEncoding::alibi, PositionEncoding::none};
}  // namespace

const char* position_name(PositionEncoding p) {
  switch (p) {
    case PositionEncoding::learned: return "learned";
    case PositionEncoding::sinusoidal: return "sinusoidal";
    case PositionEncoding::rope: return "rope";
    case PositionEncoding::alibi: return "alibi";
    case PositionEncoding::none: return "none";
  }
  return "?";
}

PositionEncoding parse_position(const std::string& name) {
  std::string known;
  for (PositionEncoding p : kPositions) {
    if (name == position_name(p)) return p;
    known += std::string(known.empty() ? "" : ", ") + position_name(p);
  }
  ag::fail("unknown position encoding '", name, "' (one of: ", known, ")");
}

GPT::GPT(const GPTOptions& o, ag::Generator& gen) : o_(o) {
  if (o.vocab_size == 0) ag::fail("GPT: vocab_size must be at least 1");
  if (o.block_size == 0) ag::fail("GPT: block_size must be at least 1");
  tok_emb = register_module("tok_emb", std::make_shared<Embedding>(o.vocab_size, o.d_model, gen));
  if (o.position == PositionEncoding::learned)
    pos_emb = register_module("pos_emb", std::make_shared<LearnedPositionalEncoding>(o.d_model, o.block_size, gen));
  if (o.position == PositionEncoding::sinusoidal)
    sinusoidal = register_module("sinusoidal", std::make_shared<SinusoidalPositionalEncoding>(o.d_model, o.max_positions));
  drop = register_module("drop", std::make_shared<Dropout>(o.dropout, std::uint64_t(gen.integer(0, 1 << 30))));
  const TransformerOptions t{.d_model = o.d_model, .num_heads = o.num_heads, .dim_feedforward = 4 * o.d_model,
                             .dropout = o.dropout, .activation = Activation::gelu_tanh, .norm_first = true,
                             .attention = o.attention, .num_kv_heads = o.num_kv_heads};
  blocks = register_module("blocks", std::make_shared<TransformerEncoder>(t, o.num_layers, gen));  // ends in LN
  for (auto& layer : blocks->layers) {
    layer->self_attn->rotary = o.position == PositionEncoding::rope;
    layer->self_attn->alibi = o.position == PositionEncoding::alibi;
  }
  if (!o.tie_weights) lm_head = register_module("lm_head", std::make_shared<Linear>(o.d_model, o.vocab_size, gen));
  // GPT-2's initialisation
  ag::NoGrad ng;
  const double residual_std = 0.02 / std::sqrt(2.0 * double(std::max<std::size_t>(o.num_layers, 1)));
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (auto& [name, p] : named_parameters()) {
    if (name.find("norm") != std::string::npos) continue;  // LayerNorms keep 1 and 0
    if (ends_with(name, "bias")) zeros_(p);
    else if (ends_with(name, "out_proj.weight") || ends_with(name, "linear2.weight")) normal_(p, gen, 0.0, residual_std);
    else normal_(p, gen, 0.0, 0.02);
  }
  // The sinusoids have entries of size 1: token vectors of size 0.02 added to them would be
  // drowned. Vaswani et al. (3.4) multiply the embeddings by sqrt(D); from N(0, 1/D) that makes
  // unit entries, as TransformerSeq2Seq does.
  if (sinusoidal) normal_(tok_emb->weight, gen, 0.0, 1.0 / std::sqrt(double(o.d_model)));
}

Tensor GPT::embed(const ag::Indices& ids, std::size_t offset) const {
  if (ids.shape.size() != 2 || ids.shape[1] == 0)
    ag::fail(describe(), ": ids should be [batch, time] with time >= 1, got ", ag::shape_str(ids.shape));
  Tensor x = tok_emb->forward(ids);  // [B, T, D]
  if (sinusoidal) x = x * std::sqrt(double(o_.d_model));  // Vaswani et al.'s scale (see the constructor)
  if (pos_emb) x = pos_emb->forward(x, offset);
  if (sinusoidal) x = sinusoidal->forward(x, offset);
  return x;
}

Tensor GPT::head(const Tensor& x) const {
  return lm_head ? lm_head->forward(x) : ag::linear(x, tok_emb->weight, Tensor());  // [B, T, V]
}

Tensor GPT::forward(const ag::Indices& ids) {
  const Tensor x = (*drop)(embed(ids, 0));
  const std::size_t T = ids.shape[1];
  if (!o_.causal) return head(blocks->forward(x));
  if (!causal_mask_.defined() || causal_mask_.shape()[0] != T) causal_mask_ = causal_mask(T);
  return head(blocks->forward(x, causal_mask_));  // t attends to 0..t only
}

Tensor GPT::forward(const ag::Indices& ids, std::vector<KVCache>& cache) {
  if (cache.empty()) ag::fail(describe(), ": no KV caches (make_cache gives one per layer)");
  if (!o_.causal) ag::fail(describe(), ": a KV cache needs the causal mask (this model has causal = false)");
  return head(blocks->forward((*drop)(embed(ids, cache.front().length())), cache));
}

std::vector<KVCache> GPT::make_cache(std::size_t batch, std::size_t max_length) const {
  return blocks->make_cache(batch, max_length);
}

std::vector<std::int64_t> GPT::generate(const std::vector<std::int64_t>& prompt, std::size_t new_tokens,
                                        const GenerateOptions& o, ag::Generator& gen) {
  if (prompt.empty()) ag::fail(describe(), ": generate needs a prompt of at least one token");
  const std::size_t context = o.context ? o.context : o_.block_size;
  if (pos_emb && context > o_.block_size)
    ag::fail(describe(), ": generate's context ", context, " is past the learned position table of ", o_.block_size);
  const bool was_training = is_training();
  eval();
  ag::NoGrad ng;
  std::vector<std::int64_t> text = prompt;
  auto last_tokens = [&](std::size_t n) {  // the last n tokens of the text as ids [1, n]
    n = std::min(n, text.size());
    return ag::Indices(std::vector<std::int64_t>(text.end() - std::ptrdiff_t(n), text.end()), {1, n});
  };
  auto last_row = [](const Tensor& logits) {  // [1, T, V] -> [V]
    return ag::select(ag::select(logits, 0, 0), 0, std::int64_t(logits.shape()[1]) - 1);
  };
  std::vector<KVCache> cache;
  if (o.use_cache) cache = make_cache(1, context);
  Tensor logits = o.use_cache ? forward(last_tokens(context), cache) : forward(last_tokens(context));
  for (std::size_t i = 0; i < new_tokens; ++i) {
    text.push_back(sample(last_row(logits), o.sampling, gen).values[0]);
    if (o.on_token) o.on_token(i + 1);
    if (i + 1 == new_tokens) break;
    if (!o.use_cache) {
      logits = forward(last_tokens(context));
    } else if (cache.front().length() < context) {
      logits = forward(last_tokens(1), cache);
    } else {  // full: keep the last context / 2 tokens, from position 0
      for (auto& c : cache) c.clear();
      logits = forward(last_tokens(std::max<std::size_t>(context / 2, 1)), cache);
    }
  }
  train(was_training);
  return text;
}

std::string GPT::describe() const {
  return "GPT(layers=" + std::to_string(o_.num_layers) + ", heads=" + std::to_string(o_.num_heads) +
         (o_.num_kv_heads && o_.num_kv_heads != o_.num_heads ? ", num_kv_heads=" + std::to_string(o_.num_kv_heads) : std::string()) +
         ", d_model=" + std::to_string(o_.d_model) + ", vocab=" + std::to_string(o_.vocab_size) + ", block_size=" +
         std::to_string(o_.block_size) + ", positions=" + position_name(o_.position) + (o_.tie_weights ? ", tied" : "") +
         (o_.causal ? "" : ", no causal mask") + ")";
}

}  // namespace nn
