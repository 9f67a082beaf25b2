// The fused recurrent cells (ag::rnn_cell, lstm_cell, gru_cell): float64 gradient checks of the
// ops themselves, agreement with nn::recurrent_step (the same cells written with engine ops) over
// an unrolled sequence, forward and every gradient, the same on several threads as on one, and
// clear errors on bad shapes.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>

#include "../common/expect_error.hpp"
#include "nn/nn.hpp"

using namespace ag;
using nn::CellKind;

namespace {

constexpr std::size_t kB = 3, kT = 5, kI = 2, kH = 4;

Tensor draw(const Shape& s, std::uint64_t seed, Dtype dt = f64, double scale = 1.0) {
  Generator g(seed);
  return mul(randn(s, g, {dt}), scale).detach();
}

void expect_gradcheck(const std::string& what, const TensorFunction& f, const std::vector<Tensor>& inputs) {
  const GradcheckResult r = gradcheck(f, inputs);
  BOOST_TEST_MESSAGE(what << ": " << r.elements_checked << " elements, max rel error " << r.max_rel_error);
  BOOST_TEST(r.ok, what << ": " << r.report);
}

// One step t = 2 of a five-step xp, with and without bias, as [B, T, G*H] and as [B, G*H].
void gradcheck_cell(CellKind kind) {
  const std::size_t G = nn::gate_count(kind);
  const std::string name = nn::cell_name(kind);
  const Tensor xp = draw({kB, kT, G * kH}, 1), h = draw({kB, kH}, 2), c = draw({kB, kH}, 3);
  const Tensor w = draw({G * kH, kH}, 4, f64, 0.5), b = draw({G * kH}, 5);
  for (bool bias : {true, false}) {
    auto step = [&](const std::vector<Tensor>& in, const Tensor& xp_in, std::size_t t) {
      const Tensor bh = bias ? in[4] : Tensor();
      const nn::RecurrentState s = nn::fused_step(kind, xp_in, t, {in[1], in[2]}, in[3], bh);
      // both outputs of the LSTM, so the gradient reaches c_t through h_t and directly
      return kind == CellKind::lstm ? concat({s.h, mul(s.c, 0.7)}, -1) : s.h;
    };
    const std::string tag = name + (bias ? " with bias" : " without bias");
    expect_gradcheck(tag + ", step 2 of [B, T, GH]", [&](const auto& in) { return step(in, in[0], 2); }, {xp, h, c, w, b});
    const Tensor xp2 = draw({kB, G * kH}, 6);
    expect_gradcheck(tag + ", [B, GH]", [&](const auto& in) { return step(in, in[0], 0); }, {xp2, h, c, w, b});
  }
  if (kind == CellKind::lstm)  // c_t alone: the h node is never reached, the c node's gradient is its own
    expect_gradcheck("LSTM c only", [&](const auto& in) { return lstm_cell(in[0], 1, in[1], in[2], in[3], in[4]).c; }, {xp, h, c, w, b});
}

// Unrolls kT steps of `kind` both ways from the same leaves; compares outputs and gradients.
void compare_with_composed(CellKind kind, Dtype dt, double tol) {
  const std::size_t G = nn::gate_count(kind);
  std::vector<std::vector<double>> values[2];
  for (int fused = 0; fused < 2; ++fused) {
    const Tensor x = draw({kB, kT, kI}, 11, dt).requires_grad_();
    const Tensor w_ih = draw({G * kH, kI}, 12, dt, 0.5).requires_grad_(), b_ih = draw({G * kH}, 13, dt).requires_grad_();
    const Tensor w_hh = draw({G * kH, kH}, 14, dt, 0.5).requires_grad_(), b_hh = draw({G * kH}, 15, dt).requires_grad_();
    nn::RecurrentState s{draw({kB, kH}, 16, dt).requires_grad_(), draw({kB, kH}, 17, dt).requires_grad_()};
    if (kind != CellKind::lstm) s.c = Tensor();
    const Tensor h0 = s.h, c0 = s.c;
    const Tensor xp = linear(x, w_ih, b_ih);
    Tensor loss = scalar(0.0, {dt});
    for (std::size_t t = 0; t < kT; ++t) {
      s = fused ? nn::fused_step(kind, xp, t, s, w_hh, b_hh)
                : nn::recurrent_step(kind, select(xp, 1, std::int64_t(t)), s, w_hh, b_hh);
      loss = loss + sum(mul(s.h, draw({kB, kH}, 100 + t, dt)));  // every step's h, weighted
      if (s.c.defined()) loss = loss + sum(mul(s.c, draw({kB, kH}, 200 + t, dt)));
    }
    loss.backward();
    values[fused].push_back({loss.item()});
    for (const Tensor& p : {x, w_ih, b_ih, w_hh, b_hh, h0}) values[fused].push_back(p.grad().to_vector());
    if (c0.defined()) values[fused].push_back(c0.grad().to_vector());
  }
  const char* names[] = {"loss", "dx", "dW_ih", "db_ih", "dW_hh", "db_hh", "dh0", "dc0"};
  double worst = 0;
  for (std::size_t k = 0; k < values[0].size(); ++k)
    for (std::size_t i = 0; i < values[0][k].size(); ++i) {
      const double a = values[0][k][i], f = values[1][k][i];
      const double err = std::abs(a - f) / std::max(1.0, std::abs(a));
      worst = std::max(worst, err);
      BOOST_TEST_INFO(nn::cell_name(kind) << " " << dtype_name(dt) << " " << names[k] << "[" << i << "]: composed " << a << ", fused " << f);
      BOOST_TEST(err <= tol);
    }
  BOOST_TEST_MESSAGE(nn::cell_name(kind) << " " << dtype_name(dt) << ": fused vs composed, worst relative difference " << worst);
}

// A step large enough to run in blocks of batch rows over the threads (ops_recurrent.cpp's
// over_rows: from 2^18 multiply-adds in the step's gemm, B * G*H * H) against one thread: three
// steps, forward and every gradient. Each block's share of the gemm is its own BLAS call, whose
// edge tiles may round in another order: within a few epsilons of the values' scale, and the
// same bits when the same count runs again. B = 37 splits unevenly (19 + 18, 13 + 13 + 11).
void compare_threads(CellKind kind, Dtype dt, bool bias) {
  constexpr std::size_t B = 37, T = 3, H = 96;
  const std::size_t G = nn::gate_count(kind);
  BOOST_REQUIRE(B * G * H * H >= (std::size_t(1) << 18));
  std::vector<std::vector<std::vector<double>>> runs;  // per thread count: h, c, then the gradients
  for (std::size_t threads : {1, 2, 3, 2}) {
    set_num_threads(threads);
    const Tensor xp = draw({B, T, G * H}, 21, dt).requires_grad_(), w = draw({G * H, H}, 22, dt, 0.1).requires_grad_();
    const Tensor b = bias ? draw({G * H}, 23, dt).requires_grad_() : Tensor();
    nn::RecurrentState s{draw({B, H}, 24, dt).requires_grad_(), draw({B, H}, 25, dt).requires_grad_()};
    if (kind != CellKind::lstm) s.c = Tensor();
    const Tensor h0 = s.h, c0 = s.c;
    for (std::size_t t = 0; t < T; ++t) s = nn::fused_step(kind, xp, t, s, w, b);
    Tensor loss = sum(mul(s.h, draw({B, H}, 26, dt)));
    if (s.c.defined()) loss = loss + sum(mul(s.c, draw({B, H}, 27, dt)));
    loss.backward();
    std::vector<std::vector<double>> v{s.h.to_vector()};
    if (s.c.defined()) v.push_back(s.c.to_vector());
    for (const Tensor& p : {xp, w, b, h0, c0})
      if (p.defined()) v.push_back(p.grad().to_vector());
    runs.push_back(std::move(v));
  }
  set_num_threads(0);
  const std::string what = nn::cell_name(kind) + std::string(" ") + dtype_name(dt) + (bias ? " with bias" : " without bias");
  const double eps = dt == f32 ? 1.2e-7 : 2.3e-16;
  for (std::size_t r = 1; r < runs.size(); ++r)
    for (std::size_t k = 0; k < runs[0].size(); ++k) {
      const auto &one = runs[0][k], &now = runs[r][k];
      double diff = 0, scale = 0;
      for (std::size_t i = 0; i < one.size(); ++i) diff = std::max(diff, std::abs(now[i] - one[i])), scale = std::max(scale, std::abs(one[i]));
      BOOST_TEST(diff <= 16 * eps * scale, what << ", run " << r << " (" << (r == 2 ? 3 : 2) << " threads), value " << k << ": max difference "
                                                << diff << " at scale " << scale);
    }
  for (std::size_t k = 0; k < runs[0].size(); ++k)
    BOOST_TEST((runs[3][k] == runs[1][k]), what << ", 2 threads twice, value " << k << ": not the same bits");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fused_cells)

BOOST_AUTO_TEST_CASE(gradcheck_rnn_cell) { gradcheck_cell(CellKind::tanh_rnn); }
BOOST_AUTO_TEST_CASE(gradcheck_lstm_cell) { gradcheck_cell(CellKind::lstm); }
BOOST_AUTO_TEST_CASE(gradcheck_gru_cell) { gradcheck_cell(CellKind::gru); }

BOOST_AUTO_TEST_CASE(same_as_composed_ops) {
  for (CellKind kind : {CellKind::tanh_rnn, CellKind::lstm, CellKind::gru}) {
    compare_with_composed(kind, f64, 1e-13);
    compare_with_composed(kind, f32, 2e-5);
  }
}

BOOST_AUTO_TEST_CASE(threads_match_one_thread) {
  for (CellKind kind : {CellKind::tanh_rnn, CellKind::lstm, CellKind::gru})
    for (Dtype dt : {f32, f64})
      for (bool bias : {true, false}) compare_threads(kind, dt, bias);
}

BOOST_AUTO_TEST_CASE(bad_shapes_are_named) {
  const Tensor xp = draw({2, 3, 8}, 1, f32), h = draw({2, 4}, 2, f32), w = draw({4, 4}, 3, f32), b = draw({4}, 4, f32);
  expect_error([&] { rnn_cell(xp, 0, h, w, b); }, {"rnn_cell", "xp [2,3,8]", "[2, T, 4]"});
  expect_error([&] { rnn_cell(draw({2, 3, 4}, 1, f32), 3, h, w, b); }, {"rnn_cell", "step 3", "3 steps"});
  expect_error([&] { rnn_cell(draw({2, 4}, 1, f32), 1, h, w, b); }, {"rnn_cell", "step 1"});
  expect_error([&] { gru_cell(xp, 0, h, draw({8, 4}, 3, f32), b); }, {"gru_cell", "weight_hh", "[12, 4]"});
  expect_error([&] { lstm_cell(draw({2, 16}, 1, f32), 0, h, draw({3, 4}, 5, f32), draw({16, 4}, 3, f32), Tensor()); },
               {"lstm_cell", "c_prev [3,4]", "h_prev [2,4]"});
  expect_error([&] { lstm_cell(draw({2, 16}, 1, f32), 0, h, h, draw({16, 4}, 3, f32), b); }, {"lstm_cell", "bias_hh", "[16]"});
  expect_error([&] { rnn_cell(draw({2, 4}, 1, f64), 0, h, w, b); }, {"rnn_cell", "dtypes differ"});
}

BOOST_AUTO_TEST_SUITE_END()
