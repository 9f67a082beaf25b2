#pragma once
// Recurrent layers. BPTT is the engine running backward through the unrolled loop, one node
// (two for the LSTM: h_t and c_t) per step. Shape legend: B batch, T time, I input features,
// H hidden size. Inputs are batch-first: [B, T, I].
//
// Each step, with the input projection x_t W_ih^T + b_ih computed for all T at once:
//   tanh RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
//   LSTM:     [i f g o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh     (gate order as PyTorch)
//             c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g);  h_t = sigmoid(o) * tanh(c_t)
//   GRU:      r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), n = tanh(x_n + r * h_n)
//             h_t = (1 - z) * n + z * h_{t-1}                            (gate order r z n)
// Weights: weight_ih [G*H, I], weight_hh [G*H, H], biases [G*H] (G = 1, 4, 3), all
// ~ U(-1/sqrt(H), 1/sqrt(H)) as in PyTorch; names as PyTorch's (weight_ih_l0, ...).
#include <optional>

#include "nn/module.hpp"

namespace nn {

enum class CellKind { tanh_rnn, lstm, gru };

struct RecurrentState {
  Tensor h;  // [B, H]
  Tensor c;  // [B, H], LSTM only
};

struct RecurrentOutput {
  Tensor output;                // [B, T, D*H]: the top layer's hidden state at every step (D = 2 if bidirectional)
  // per layer and direction, PyTorch's h_n order (layer 0 forward, layer 0 backward, layer 1 ...):
  // the state after the last step it read (the backward direction's last step is t = 0)
  std::vector<RecurrentState> last;
  std::vector<Tensor> steps;    // the top layer's output at t = 0..T-1 (each [B, D*H]; output stacks them)
};

// One step of a cell written with engine ops, given the input already projected: xp = x_t W_ih^T
// + b_ih, [B, G*H]. The readable definition (lessons 04 and 06 unroll it and draw its graph).
RecurrentState recurrent_step(CellKind kind, const Tensor& xp, const RecurrentState& prev, const Tensor& weight_hh,
                              const Tensor& bias_hh);

// The same step through the engine's fused cells (ag::rnn_cell, lstm_cell, gru_cell), which keep
// only what backward needs: what the layers below use. xp: [B, T, G*H] and the step t, or [B, G*H], t = 0.
RecurrentState fused_step(CellKind kind, const Tensor& xp, std::size_t t, const RecurrentState& prev, const Tensor& weight_hh,
                          const Tensor& bias_hh);

// A single cell: RNNCell, LSTMCell, GRUCell (names weight_ih, weight_hh, bias_ih, bias_hh).
class RecurrentCell : public Module {
 public:
  RecurrentCell(CellKind kind, std::size_t input_size, std::size_t hidden_size, ag::Generator& gen);
  // x: [B, I]; prev: the previous state (undefined h -> zeros).
  RecurrentState forward(const Tensor& x, const RecurrentState& prev = {}) const;
  RecurrentState operator()(const Tensor& x, const RecurrentState& prev = {}) const { return forward(x, prev); }
  std::string describe() const override;
  std::size_t hidden_size() const { return hidden_; }
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  CellKind kind_;
  std::size_t input_, hidden_;
};

struct RNNCell : RecurrentCell {
  RNNCell(std::size_t in, std::size_t hidden, ag::Generator& gen) : RecurrentCell(CellKind::tanh_rnn, in, hidden, gen) {}
};
struct LSTMCell : RecurrentCell {
  LSTMCell(std::size_t in, std::size_t hidden, ag::Generator& gen) : RecurrentCell(CellKind::lstm, in, hidden, gen) {}
};
struct GRUCell : RecurrentCell {
  GRUCell(std::size_t in, std::size_t hidden, ag::Generator& gen) : RecurrentCell(CellKind::gru, in, hidden, gen) {}
};

enum class RNNNonlinearity { tanh, relu };  // the plain RNN's activation (PyTorch's nonlinearity)

// PyTorch's nn.RNN / LSTM / GRU options.
struct RecurrentOptions {
  std::size_t num_layers = 1;
  // LSTM: unset, the forget gate's biases are drawn like every other bias, U(-1/sqrt(H), 1/sqrt(H)),
  // as PyTorch does; a value v sets the gate's total bias (b_ih + b_hh) to v: b_ih = v, b_hh = 0
  // (Gers, Schmidhuber & Cummins 2000 use 1: the cell keeps ~73% of itself per step at first).
  std::optional<double> forget_bias{};
  // RNN only: h_t = relu(...) instead of tanh(...) (composed of engine ops, not the fused cell).
  RNNNonlinearity nonlinearity = RNNNonlinearity::tanh;
  // Dropout on the output of every layer but the last, in train() mode (0: none).
  double dropout = 0.0;
  // A second stack of weights reads the sequence backwards (Schuster & Paliwal 1997; Bahdanau et
  // al. 2015's encoder): the output at t is [forward h_t, backward h_t], [B, T, 2H], and the layer
  // above reads 2H features. Parameters "..._l0_reverse" as PyTorch's.
  bool bidirectional = false;
};

// A stack of recurrent layers over a whole sequence: RNN (tanh), LSTM, GRU.
class Dropout;

class Recurrent : public Module {
 public:
  // Errors: num_layers 0, a relu nonlinearity on an LSTM or GRU, dropout outside [0, 1).
  Recurrent(CellKind kind, std::size_t input_size, std::size_t hidden_size, ag::Generator& gen, RecurrentOptions o = {});
  // x: [B, T, I]; initial: one state per layer and direction, in the order of `last` (empty -> zeros).
  RecurrentOutput forward(const Tensor& x, const std::vector<RecurrentState>& initial = {}) const;
  RecurrentOutput operator()(const Tensor& x, const std::vector<RecurrentState>& initial = {}) const { return forward(x, initial); }
  std::string describe() const override;
  CellKind kind() const { return kind_; }
  std::size_t hidden_size() const { return hidden_; }
  std::size_t num_layers() const { return o_.num_layers; }
  std::size_t num_directions() const { return o_.bidirectional ? 2 : 1; }
  const RecurrentOptions& options() const { return o_; }
  // per layer and direction: index layer * num_directions() + direction (0 forward, 1 backward)
  std::vector<Tensor> weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  CellKind kind_;
  std::size_t input_, hidden_;
  RecurrentOptions o_;
  std::shared_ptr<Dropout> dropout_;  // between layers, when o_.dropout > 0
};

struct RNN : Recurrent {
  RNN(std::size_t in, std::size_t hidden, ag::Generator& gen, RecurrentOptions o = {}) : Recurrent(CellKind::tanh_rnn, in, hidden, gen, o) {}
};
struct LSTM : Recurrent {
  LSTM(std::size_t in, std::size_t hidden, ag::Generator& gen, RecurrentOptions o = {}) : Recurrent(CellKind::lstm, in, hidden, gen, o) {}
};
struct GRU : Recurrent {
  GRU(std::size_t in, std::size_t hidden, ag::Generator& gen, RecurrentOptions o = {}) : Recurrent(CellKind::gru, in, hidden, gen, o) {}
};

const char* cell_name(CellKind kind);  // "RNN", "LSTM", "GRU"
std::size_t gate_count(CellKind kind);  // 1, 4, 3

}  // namespace nn
