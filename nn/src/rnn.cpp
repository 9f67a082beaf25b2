#include "nn/rnn.hpp"

#include <cmath>
#include <sstream>

#include "nn/layers.hpp"

namespace nn {

const char* cell_name(CellKind k) { return k == CellKind::tanh_rnn ? "RNN" : k == CellKind::lstm ? "LSTM" : "GRU"; }
std::size_t gate_count(CellKind k) { return k == CellKind::tanh_rnn ? 1 : k == CellKind::lstm ? 4 : 3; }

namespace {
Tensor gate(const Tensor& x, std::size_t k, std::size_t H) {  // the k-th block of H columns
  return ag::slice(x, -1, std::int64_t(k * H), std::int64_t((k + 1) * H));
}
}  // namespace

RecurrentState recurrent_step(CellKind kind, const Tensor& xp, const RecurrentState& prev, const Tensor& weight_hh,
                              const Tensor& bias_hh) {
  const std::size_t H = weight_hh.shape()[1];
  const Tensor hp = ag::linear(prev.h, weight_hh, bias_hh);  // h_{t-1} W_hh^T + b_hh: [B, G*H]
  switch (kind) {
    case CellKind::tanh_rnn:
      return {ag::tanh(xp + hp), Tensor()};
    case CellKind::lstm: {
      const Tensor gates = xp + hp;
      const Tensor i = ag::sigmoid(gate(gates, 0, H)), f = ag::sigmoid(gate(gates, 1, H));
      const Tensor g = ag::tanh(gate(gates, 2, H)), o = ag::sigmoid(gate(gates, 3, H));
      const Tensor c = f * prev.c + i * g;
      return {o * ag::tanh(c), c};
    }
    case CellKind::gru: {
      const Tensor r = ag::sigmoid(gate(xp, 0, H) + gate(hp, 0, H));
      const Tensor z = ag::sigmoid(gate(xp, 1, H) + gate(hp, 1, H));
      const Tensor n = ag::tanh(gate(xp, 2, H) + r * gate(hp, 2, H));
      return {(1.0 - z) * n + z * prev.h, Tensor()};
    }
  }
  return {};
}

RecurrentState fused_step(CellKind kind, const Tensor& xp, std::size_t t, const RecurrentState& prev, const Tensor& weight_hh,
                          const Tensor& bias_hh) {
  switch (kind) {
    case CellKind::tanh_rnn:
      return {ag::rnn_cell(xp, t, prev.h, weight_hh, bias_hh), Tensor()};
    case CellKind::lstm: {
      const ag::LstmState s = ag::lstm_cell(xp, t, prev.h, prev.c, weight_hh, bias_hh);
      return {s.h, s.c};
    }
    case CellKind::gru:
      return {ag::gru_cell(xp, t, prev.h, weight_hh, bias_hh), Tensor()};
  }
  return {};
}

static RecurrentState zero_state(CellKind kind, std::size_t B, std::size_t H, ag::Dtype dt) {
  RecurrentState s{ag::zeros({B, H}, {dt}), Tensor()};
  if (kind == CellKind::lstm) s.c = ag::zeros({B, H}, {dt});
  return s;
}

static void check_state(const char* who, CellKind kind, const RecurrentState& s, std::size_t B, std::size_t H) {
  const ag::Shape want{B, H};
  if (s.h.shape() != want) ag::fail(who, ": initial h is ", ag::shape_str(s.h.shape()), ", expected ", ag::shape_str(want));
  if (kind == CellKind::lstm && (!s.c.defined() || s.c.shape() != want))
    ag::fail(who, ": LSTM needs an initial c of shape ", ag::shape_str(want));
}

// ---- cells --------------------------------------------------------------------------------
RecurrentCell::RecurrentCell(CellKind kind, std::size_t in, std::size_t hidden, ag::Generator& gen)
    : kind_(kind), input_(in), hidden_(hidden) {
  const std::size_t G = gate_count(kind);
  const double k = 1.0 / std::sqrt(double(hidden));
  weight_ih = register_parameter("weight_ih", uniform_tensor({G * hidden, in}, k, gen));
  weight_hh = register_parameter("weight_hh", uniform_tensor({G * hidden, hidden}, k, gen));
  bias_ih = register_parameter("bias_ih", uniform_tensor({G * hidden}, k, gen));
  bias_hh = register_parameter("bias_hh", uniform_tensor({G * hidden}, k, gen));
}

RecurrentState RecurrentCell::forward(const Tensor& x, const RecurrentState& prev) const {
  if (x.dim() != 2 || x.shape()[1] != input_)
    ag::fail(describe(), ": input ", ag::shape_str(x.shape()), " should be [batch, ", input_, "]");
  const std::size_t B = x.shape()[0];
  RecurrentState s = prev.h.defined() ? prev : zero_state(kind_, B, hidden_, x.dtype());
  check_state(cell_name(kind_), kind_, s, B, hidden_);
  return fused_step(kind_, ag::linear(x, weight_ih, bias_ih), 0, s, weight_hh, bias_hh);
}

std::string RecurrentCell::describe() const {
  return std::string(cell_name(kind_)) + "Cell(" + std::to_string(input_) + ", " + std::to_string(hidden_) + ")";
}

// ---- sequence layers ------------------------------------------------------------------------
Recurrent::Recurrent(CellKind kind, std::size_t in, std::size_t hidden, ag::Generator& gen, RecurrentOptions o)
    : kind_(kind), input_(in), hidden_(hidden), o_(o) {
  if (o.num_layers == 0) ag::fail(cell_name(kind), ": num_layers must be at least 1");
  if (o.nonlinearity == RNNNonlinearity::relu && kind != CellKind::tanh_rnn)
    ag::fail(cell_name(kind), ": nonlinearity relu is an option of the plain RNN only");
  if (!(o.dropout >= 0.0 && o.dropout < 1.0)) ag::fail(cell_name(kind), ": dropout must be in [0, 1), got ", o.dropout);
  const std::size_t G = gate_count(kind), D = num_directions();
  const double k = 1.0 / std::sqrt(double(hidden));
  for (std::size_t l = 0; l < o.num_layers; ++l)
    for (std::size_t d = 0; d < D; ++d) {  // PyTorch's order: layer 0 forward, layer 0 reverse, layer 1 ...
      const std::string sfx = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      weight_ih.push_back(register_parameter("weight_ih" + sfx, uniform_tensor({G * hidden, l ? D * hidden : in}, k, gen)));
      weight_hh.push_back(register_parameter("weight_hh" + sfx, uniform_tensor({G * hidden, hidden}, k, gen)));
      bias_ih.push_back(register_parameter("bias_ih" + sfx, uniform_tensor({G * hidden}, k, gen)));
      bias_hh.push_back(register_parameter("bias_hh" + sfx, uniform_tensor({G * hidden}, k, gen)));
      if (kind == CellKind::lstm && o.forget_bias) {  // the forget gate's total bias (b_ih + b_hh) starts at forget_bias
        float* bi = bias_ih.back().data<float>().data() + hidden;
        float* bh = bias_hh.back().data<float>().data() + hidden;
        for (std::size_t j = 0; j < hidden; ++j) bi[j] = float(*o.forget_bias), bh[j] = 0.f;
      }
    }
  // Seeded from gen only when used, so that models without dropout draw exactly what they did.
  if (o.dropout > 0 && o.num_layers > 1)
    dropout_ = register_module("dropout", std::make_shared<Dropout>(o.dropout, std::uint64_t(gen.integer(0, 1 << 30))));
}

RecurrentOutput Recurrent::forward(const Tensor& x, const std::vector<RecurrentState>& initial) const {
  if (x.dim() != 3 || x.shape()[2] != input_)
    ag::fail(describe(), ": input ", ag::shape_str(x.shape()), " should be [batch, time, ", input_, "]");
  const std::size_t D = num_directions();
  if (!initial.empty() && initial.size() != num_layers() * D)
    ag::fail(describe(), ": ", initial.size(), " initial states given for ", num_layers(), " layers x ", D, " directions");
  const std::size_t B = x.shape()[0], T = x.shape()[1];
  RecurrentOutput out;
  Tensor layer_input = x;
  for (std::size_t l = 0; l < num_layers(); ++l) {
    if (l > 0 && dropout_) layer_input = (*dropout_)(layer_input);  // between layers, as PyTorch
    std::vector<std::vector<Tensor>> hs(D);  // per direction, h_t in time order
    for (std::size_t d = 0; d < D; ++d) {
      const std::size_t i = l * D + d;
      RecurrentState s = initial.empty() ? zero_state(kind_, B, hidden_, x.dtype()) : initial[i];
      check_state(cell_name(kind_), kind_, s, B, hidden_);
      const Tensor xp = ag::linear(layer_input, weight_ih[i], bias_ih[i]);  // all steps in one gemm: [B, T, G*H]
      hs[d].resize(T);
      for (std::size_t n = 0; n < T; ++n) {
        const std::size_t t = d ? T - 1 - n : n;  // the backward direction reads t = T-1 .. 0
        if (o_.nonlinearity == RNNNonlinearity::relu)
          s = {ag::relu(ag::select(xp, 1, std::int64_t(t)) + ag::linear(s.h, weight_hh[i], bias_hh[i])), Tensor()};
        else
          s = fused_step(kind_, xp, t, s, weight_hh[i], bias_hh[i]);
        hs[d][t] = s.h;
      }
      out.last.push_back(s);
    }
    std::vector<Tensor> steps = std::move(hs[0]);
    if (D == 2)
      for (std::size_t t = 0; t < T; ++t) steps[t] = ag::concat({steps[t], hs[1][t]}, -1);  // [B, 2H]
    layer_input = T ? ag::stack(steps, 1) : ag::zeros({B, 0, D * hidden_}, {x.dtype()});
    if (l + 1 == num_layers()) out.steps = std::move(steps);
  }
  out.output = layer_input;
  return out;
}

std::string Recurrent::describe() const {
  return std::string(cell_name(kind_)) + "(" + std::to_string(input_) + ", " + std::to_string(hidden_) +
         (num_layers() > 1 ? ", num_layers=" + std::to_string(num_layers()) : "") +
         (o_.nonlinearity == RNNNonlinearity::relu ? ", nonlinearity=relu" : "") +
         (o_.dropout > 0 ? ", dropout=" + (std::ostringstream() << o_.dropout).str() : "") +
         (o_.bidirectional ? ", bidirectional=true" : "") + ")";
}

}  // namespace nn
