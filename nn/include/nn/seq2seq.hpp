#pragma once
// A recurrent encoder-decoder (Sutskever et al. 2014; Cho et al. 2014), with or without
// Bahdanau attention (Bahdanau, Cho & Bengio 2015). Shape legend: B batch, S source length,
// T target length, E embedding size, H hidden size, V target vocabulary.
//
//   encoder:  h^enc_1..S = GRU(embed(src))                          [B, S, H]
//   without attention, every decoder step sees only the last encoder state (the bottleneck):
//             h_t = GRUCell(embed(y_{t-1}), h_{t-1}),  h_0 = h^enc_S,   logits_t = out(h_t)
//   with attention, step t first looks back at every encoder state:
//             c_t, a_t = AdditiveAttention(h_{t-1}, h^enc_1..S)      (a_t: [B, S] weights)
//             h_t = GRUCell([embed(y_{t-1}); c_t], h_{t-1}),         logits_t = out([h_t; c_t])
#include "nn/attention.hpp"
#include "nn/layers.hpp"
#include "nn/rnn.hpp"

namespace nn {

struct Seq2SeqOptions {
  std::size_t embed_dim = 32;
  std::size_t hidden_size = 64;
  bool attention = true;
  std::size_t attention_dim = 0;  // 0 -> hidden_size
};

class Seq2Seq : public Module {
 public:
  Seq2Seq(std::size_t src_vocab, std::size_t tgt_vocab, const Seq2SeqOptions& o, ag::Generator& gen);

  struct Output {
    Tensor logits;     // [B, T, V]
    Tensor attention;  // [B, T, S] alignment weights (undefined without attention)
  };
  // Teacher forcing: tgt_in is BOS + target. pad_id (if >= 0) marks padding in src.
  Output forward(const ag::Indices& src, const ag::Indices& tgt_in, std::int64_t pad_id = -1);

  struct Decoded {
    ag::Indices ids;   // [B, max_len]
    Tensor attention;  // [B, max_len, S]
  };
  Decoded greedy_decode(const ag::Indices& src, std::int64_t bos, std::size_t max_len, std::int64_t pad_id = -1);
  std::string describe() const override;

  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<Recurrent> encoder;
  std::shared_ptr<RecurrentCell> decoder;
  std::shared_ptr<AdditiveAttention> attention;  // null without attention
  std::shared_ptr<Linear> out;

 private:
  struct Encoded {
    Tensor states, projected_keys, final_state, pad_mask;
  };
  Encoded encode(const ag::Indices& src, std::int64_t pad_id) const;
  // One decoder step: returns logits [B, V] and the attention weights [B, S] (if any).
  std::pair<Tensor, Tensor> step(const Encoded& enc, const Tensor& y_prev_embedded, Tensor& h) const;
  Seq2SeqOptions o_;
};

}  // namespace nn
