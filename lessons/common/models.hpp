#pragma once
// The sequence models the long-range lessons compare (05, 06, 12): a recurrent network or a
// Transformer encoder reading [B, T, I] inputs, with a linear readout of the last position.
//
//   tanh RNN / LSTM / GRU:  h_1..T = cell(x_1..T);           y = W_out h_T + b_out
//   Transformer:            z = encoder(W_in x + PE);        y = W_out z_T + b_out
// The Transformer comes in four kinds of attention (lesson 18): full softmax attention, a
// sliding window of `window` keys on each side, the same window with position 0 a global token
// (Longformer), and linear attention (elu + 1 features). Every model sees the same inputs and is
// trained the same way; only the architecture differs.
#include <memory>
#include <string>

#include "nn/nn.hpp"

namespace lab {

enum class ModelKind { tanh_rnn, lstm, gru, transformer, window, window_global, linear };
const char* model_name(ModelKind k);           // "tanh RNN", "LSTM", "GRU", "Transformer", "window", ...
const char* model_slug(ModelKind k);           // "rnn", "lstm", "gru", "transformer", "window", "window_global", "linear" (file names)
ModelKind parse_model(const std::string& name);  // accepts the slugs; ag::Error otherwise
bool is_transformer(ModelKind k);              // every kind with an encoder (and positions), not a recurrence

struct SequenceModelOptions {
  ModelKind kind = ModelKind::tanh_rnn;
  std::size_t input_dim = 2;     // I
  std::size_t hidden = 64;       // H, or d_model for the Transformer
  std::size_t output_dim = 1;    // 1 for regression, V for classification
  std::size_t layers = 1;        // recurrent layers / encoder layers
  std::size_t heads = 4;         // Transformer only
  std::size_t max_len = 4096;    // Transformer positions
  double forget_bias = 1.0;      // LSTM (Gers et al. 2000)
  bool norm_first = true;        // Transformer: pre-LN trains without warmup
  // ModelKind::transformer's attention (naive keeps the weights; tiled the same output in memory
  // that grows as T). The window kinds always run tiled, linear its own.
  nn::AttentionImpl attention = nn::AttentionImpl::naive;
  std::size_t window = 32;       // window, window_global: keys within this distance on each side
};

class SequenceModel : public nn::Module {
 public:
  SequenceModel(const SequenceModelOptions& o, ag::Generator& gen);
  ag::Tensor forward(const ag::Tensor& x);  // x: [B, T, I] -> [B, output_dim]
  ag::Tensor operator()(const ag::Tensor& x) { return forward(x); }
  std::string describe() const override;
  const SequenceModelOptions& options() const { return o_; }

  std::shared_ptr<nn::Recurrent> rnn;                        // recurrent kinds
  std::shared_ptr<nn::Linear> input_proj;                    // Transformer
  std::shared_ptr<nn::SinusoidalPositionalEncoding> positions;
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Linear> readout;

 private:
  SequenceModelOptions o_;
};

}  // namespace lab
