#pragma once
// A recurrent encoder-decoder (Sutskever et al. 2014; Cho et al. 2014), with or without
// Bahdanau attention (Bahdanau, Cho & Bengio 2015). Shape legend: B batch, S source length,
// T target length, E embedding size, H hidden size, V target vocabulary.
//
//   encoder:  h^enc_1..S = GRU(embed(src))                          [B, S, H]
//   without attention, every decoder step sees only the last encoder state (the bottleneck):
//             h_t = GRUCell(embed(y_{t-1}), h_{t-1}),  h_0 = h^enc_S,   logits_t = out(h_t)
//   with attention, step t first looks back at every encoder state:
//             c_t, a_t = attention(h_{t-1}, h^enc_1..S)              (a_t: [B, S] weights)
//             h_t = GRUCell([embed(y_{t-1}); c_t], h_{t-1}),         logits_t = out([h_t; c_t])
//   the score inside attention is an option (Seq2SeqOptions::score, attention.hpp): Bahdanau's
//   additive v^T tanh(W_q h_{t-1} + W_k h_s), or Luong et al.'s (2015) dot h_{t-1}^T h_s, general
//   h_{t-1}^T W_a h_s and concat. Only the score changes: the query is Bahdanau's h_{t-1} for every
//   score (Luong et al. score h_t after the step and feed tanh(W_c [c_t; h_t]) to the output), so
//   a comparison of scores measures the score alone.
//
// bidirectional_encoder (Bahdanau et al. 2015, section 3.2 and appendix A.2): the encoder GRU also
// reads the source backwards, and each annotation holds both directions' states at j:
//             h_j = [fwd h_j; bwd h_j]                               [B, S, 2H]
//   the attention's keys and values are these annotations (key size 2H), so c_t: [B, 2H], the
//   decoder cell reads [embed(y_{t-1}); c_t] ([B, E + 2H]) and out reads [h_t; c_t] ([B, 3H]);
//   without attention it reads embed(y_{t-1}) and out reads h_t, as above. The decoder starts from
//             s_0 = tanh(W_s bwd h_1)      W_s: [H, H] and a bias: the Linear `init_proj`
//   the backward state at the first source position, which has read the whole source (appendix
//   A.2.2, W_s in R^{n x n}; the paper leaves the biases out of its equations, nn::Linear keeps
//   one). The encoder's parameters are PyTorch's: weight_ih_l0, ..., weight_ih_l0_reverse, ...
//   With padding (pad_id >= 0; pads only after a sequence's last token, else an error), each
//   direction reads only a sequence's real tokens, as PyTorch's packed sequences do: the backward
//   one starts from zeros at the last real token, so padding changes no output.
#include "nn/attention.hpp"
#include "nn/beam_search.hpp"
#include "nn/layers.hpp"
#include "nn/rnn.hpp"

namespace nn {

// additive: AdditiveAttention (Bahdanau); concat: the same without the key bias (Luong's concat);
// dot, general: LuongAttention. dot needs the annotations the decoder's size: not with a
// bidirectional encoder (annotations 2H), an ag::Error naming Seq2Seq at construction.
enum class AttentionScore { additive, dot, general, concat };
const char* score_name(AttentionScore s);  // "additive", "dot", "general", "concat"

struct Seq2SeqOptions {
  std::size_t embed_dim = 32;
  std::size_t hidden_size = 64;
  bool attention = true;
  std::size_t attention_dim = 0;  // additive and concat: W_q, W_k's output size; 0 -> hidden_size
  bool bidirectional_encoder = false;  // Bahdanau et al.'s encoder (see above): annotations [B, S, 2H]
  AttentionScore score = AttentionScore::additive;
};

class Seq2Seq : public Module {
 public:
  Seq2Seq(std::size_t src_vocab, std::size_t tgt_vocab, const Seq2SeqOptions& o, ag::Generator& gen);

  struct Output {
    Tensor logits;     // [B, T, V]
    Tensor attention;  // [B, T, S] alignment weights (undefined without attention)
  };
  // src: [B, S] ids; tgt_in: [B, T]. Errors: src not 2-D, tgt_in not [B, T]; with a bidirectional
  // encoder, a real token after padding in src.
  // Teacher forcing: tgt_in is BOS + target. pad_id (if >= 0) marks padding in src.
  Output forward(const ag::Indices& src, const ag::Indices& tgt_in, std::int64_t pad_id = -1);

  struct Decoded {
    ag::Indices ids;   // [B, max_len]
    Tensor attention;  // [B, max_len, S]
  };
  Decoded greedy_decode(const ag::Indices& src, std::int64_t bos, std::size_t max_len, std::int64_t pad_id = -1);
  // Beam search (beam_search.hpp), batched: every example's k beams decode side by side (the
  // encoder reads each source k times). src: [B, S] -> ids [B, o.max_len]; pad_id as in forward.
  // No gradient. Errors: src not 2-D, and beam_search's.
  BeamSearchResult beam_search(const ag::Indices& src, std::int64_t bos, const BeamSearchOptions& o, std::int64_t pad_id = -1);
  std::string describe() const override;

  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<Recurrent> encoder;
  std::shared_ptr<RecurrentCell> decoder;
  std::shared_ptr<SourceAttention> attention;    // null without attention
  std::shared_ptr<Linear> init_proj;             // W_s of s_0 = tanh(W_s bwd h_1); bidirectional encoder only
  std::shared_ptr<Linear> out;

 private:
  struct Encoded {
    Tensor states, projected_keys, final_state;  // states: [B, S, H], or [B, S, 2H] bidirectional
    ag::Mask pad_mask;                            // [B, S], true at padding
  };
  Encoded encode(const ag::Indices& src, std::int64_t pad_id) const;
  Encoded encode_bidirectional(const ag::Indices& src, std::int64_t pad_id) const;
  // One decoder step: returns logits [B, V] and the attention weights [B, S] (if any).
  std::pair<Tensor, Tensor> step(const Encoded& enc, const Tensor& y_prev_embedded, Tensor& h) const;
  Seq2SeqOptions o_;
};

}  // namespace nn
