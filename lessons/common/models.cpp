#include "common/models.hpp"

namespace lab {

const char* model_name(ModelKind k) {
  switch (k) {
    case ModelKind::tanh_rnn: return "tanh RNN";
    case ModelKind::lstm: return "LSTM";
    case ModelKind::gru: return "GRU";
    case ModelKind::transformer: return "Transformer";
    case ModelKind::window: return "window";
    case ModelKind::window_global: return "window + global";
    case ModelKind::linear: return "linear attention";
  }
  return "?";
}

const char* model_slug(ModelKind k) {
  switch (k) {
    case ModelKind::tanh_rnn: return "rnn";
    case ModelKind::lstm: return "lstm";
    case ModelKind::gru: return "gru";
    case ModelKind::transformer: return "transformer";
    case ModelKind::window: return "window";
    case ModelKind::window_global: return "window_global";
    case ModelKind::linear: return "linear";
  }
  return "?";
}

ModelKind parse_model(const std::string& name) {
  for (ModelKind k : {ModelKind::tanh_rnn, ModelKind::lstm, ModelKind::gru, ModelKind::transformer, ModelKind::window,
                      ModelKind::window_global, ModelKind::linear})
    if (name == model_slug(k)) return k;
  ag::fail("unknown model '", name, "' (expected rnn, lstm, gru, transformer, window, window_global or linear)");
}

bool is_transformer(ModelKind k) {
  return k == ModelKind::transformer || k == ModelKind::window || k == ModelKind::window_global || k == ModelKind::linear;
}

SequenceModel::SequenceModel(const SequenceModelOptions& o, ag::Generator& gen) : o_(o) {
  if (is_transformer(o.kind)) {
    input_proj = register_module("input_proj", std::make_shared<nn::Linear>(o.input_dim, o.hidden, gen));
    positions = register_module("positions", std::make_shared<nn::SinusoidalPositionalEncoding>(o.hidden, o.max_len));
    nn::TransformerOptions t{.d_model = o.hidden, .num_heads = o.heads, .dim_feedforward = 2 * o.hidden, .dropout = 0.0,
                             .activation = nn::Activation::relu, .norm_first = o.norm_first, .attention = o.attention};
    if (o.kind == ModelKind::window || o.kind == ModelKind::window_global) {
      t.attention = nn::AttentionImpl::tiled;  // the tiles outside the band are skipped
      t.window = o.window;
      if (o.kind == ModelKind::window_global) t.global_tokens = {0};
    }
    if (o.kind == ModelKind::linear) t.attention = nn::AttentionImpl::linear;
    encoder = register_module("encoder", std::make_shared<nn::TransformerEncoder>(t, o.layers, gen));
  } else {
    const nn::CellKind cell = o.kind == ModelKind::tanh_rnn ? nn::CellKind::tanh_rnn
                              : o.kind == ModelKind::lstm   ? nn::CellKind::lstm
                                                            : nn::CellKind::gru;
    rnn = register_module("rnn", std::make_shared<nn::Recurrent>(cell, o.input_dim, o.hidden, gen,
                                                                 nn::RecurrentOptions{.num_layers = o.layers, .forget_bias = o.forget_bias}));
  }
  readout = register_module("readout", std::make_shared<nn::Linear>(o.hidden, o.output_dim, gen));
}

ag::Tensor SequenceModel::forward(const ag::Tensor& x) {
  if (x.dim() != 3 || x.shape()[2] != o_.input_dim)
    ag::fail(describe(), ": input ", ag::shape_str(x.shape()), " should be [batch, time, ", o_.input_dim, "]");
  if (rnn) return (*readout)(rnn->forward(x).last.back().h);
  const ag::Tensor z = encoder->forward((*positions)((*input_proj)(x)));  // [B, T, D]
  return (*readout)(ag::select(z, 1, -1));
}

std::string SequenceModel::describe() const {
  const bool windowed = o_.kind == ModelKind::window || o_.kind == ModelKind::window_global;
  return std::string("SequenceModel(") + model_name(o_.kind) + ", hidden=" + std::to_string(o_.hidden) +
         (windowed ? ", window=" + std::to_string(o_.window) : std::string()) + ")";
}

}  // namespace lab
