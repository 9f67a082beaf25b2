// ag::linear_attention (Katharopoulos et al. 2020): float64 gradient checks (causal and not, within
// one chunk and across several), agreement with the quadratic form
// (phi_q phi_k^T, masked to j <= i when causal) V / row sums, computed directly with T x T
// matrices, known values, and errors.
//
// Shape legend: "..." batch dims, Tq queries, Tk keys, d feature width, dv value width.
#include <cmath>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "ag/ag.hpp"
#include "common/check_values.hpp"
#include "common/expect_error.hpp"

using namespace ag;

namespace {

// Non-negative features in [0.05, 1.05) (what elu + 1 gives), and values in [-1, 1).
Tensor features(const Shape& s, Dtype dt, Generator& gen) { return (rand(s, gen, {dt}) + 0.05).detach(); }
Tensor values(const Shape& s, Dtype dt, Generator& gen) { return (rand(s, gen, {dt}) * 2.0 - 1.0).detach(); }

Shape shape(Shape batch, std::size_t rows, std::size_t cols) {
  batch.push_back(rows);
  batch.push_back(cols);
  return batch;
}

// The quadratic form, the definition itself: A = phi_q phi_k^T [.., Tq, Tk] (lower triangle when
// causal), out = (A V) / (A 1 + eps).
Tensor quadratic_form(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double eps = 1e-6) {
  Tensor A = matmul(q, transpose(k, -2, -1));
  if (causal) {
    const std::size_t T = q.size(-2);
    std::vector<std::uint8_t> upper(T * T, 0);
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = i + 1; j < T; ++j) upper[i * T + j] = 1;
    A = masked_fill(A, Mask({T, T}, std::move(upper)), 0.0);
  }
  return matmul(A, v) / (sum(A, {-1}, true) + eps);
}

struct Case {
  std::string name;
  Shape batch;
  std::size_t Tq, Tk, d, dv;
  bool causal;
};

// Within one chunk of 64 rows, exactly one chunk, across chunks with a short last one, and
// non-causal with Tq != Tk.
const std::vector<Case> kCases = {{"causal T 7", {2, 3}, 7, 7, 5, 4, true},
                                  {"causal T 64", {2}, 64, 64, 4, 3, true},
                                  {"causal T 150 (chunks 64, 64, 22)", {2}, 150, 150, 6, 5, true},
                                  {"causal no batch dims", {}, 70, 70, 3, 2, true},
                                  {"non-causal Tq 9 Tk 13", {2, 3}, 9, 13, 5, 4, false},
                                  {"non-causal T 150", {2}, 150, 150, 6, 5, false}};

}  // namespace

BOOST_AUTO_TEST_SUITE(linear_attention)

BOOST_AUTO_TEST_CASE(gradcheck_causal_and_not) {
  for (const Case& c : kCases) {
    if (c.Tq > 100 && c.d > 4) continue;  // the long ones are checked against the quadratic form below
    Generator gen(std::hash<std::string>{}(c.name) & 0xffffffffu);
    const std::vector<Tensor> xs{features(shape(c.batch, c.Tq, c.d), f64, gen), features(shape(c.batch, c.Tk, c.d), f64, gen),
                                 values(shape(c.batch, c.Tk, c.dv), f64, gen)};
    const GradcheckResult r = gradcheck(
        [&](const std::vector<Tensor>& x) { return ag::linear_attention(x[0], x[1], x[2], {.causal = c.causal}); }, xs);
    BOOST_TEST_MESSAGE("gradcheck " << c.name << ": max rel error " << r.max_rel_error);
    BOOST_TEST(r.ok, c.name << ": " << r.report);
  }
  // Across chunk boundaries, small widths to keep it quick: T 130 = 64 + 64 + 2.
  Generator gen(5);
  const std::vector<Tensor> xs{features({130, 2}, f64, gen), features({130, 2}, f64, gen), values({130, 2}, f64, gen)};
  for (bool causal : {true, false}) {
    const GradcheckResult r = gradcheck(
        [&](const std::vector<Tensor>& x) { return ag::linear_attention(x[0], x[1], x[2], {.causal = causal}); }, xs);
    BOOST_TEST(r.ok, "T 130 " << (causal ? "causal: " : "non-causal: ") << r.report);
  }
  // With the feature map in front: elu(x) + 1 of raw q and k, as nn::MultiHeadAttention uses it.
  const std::vector<Tensor> raw{values({2, 9, 4}, f64, gen) * 2.0, values({2, 9, 4}, f64, gen) * 2.0, values({2, 9, 3}, f64, gen)};
  const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& x) {
    return ag::linear_attention(elu(x[0]) + 1.0, elu(x[1]) + 1.0, x[2], {.causal = true});
  }, raw);
  BOOST_TEST(r.ok, "elu + 1 features: " << r.report);
}

// Forward and every gradient equal the quadratic form's, which holds the T x T matrix.
BOOST_AUTO_TEST_CASE(equals_the_quadratic_form) {
  for (Dtype dt : {f32, f64})
    for (const Case& c : kCases) {
      Generator gen(std::hash<std::string>{}(c.name) & 0xffffffffu);
      const Tensor q0 = features(shape(c.batch, c.Tq, c.d), dt, gen), k0 = features(shape(c.batch, c.Tk, c.d), dt, gen),
                   v0 = values(shape(c.batch, c.Tk, c.dv), dt, gen), dout = values(shape(c.batch, c.Tq, c.dv), dt, gen);
      Tensor outs[2], grads[2][3];
      for (int linear = 0; linear < 2; ++linear) {
        Tensor q = Tensor::from(q0.array(), true), k = Tensor::from(k0.array(), true), v = Tensor::from(v0.array(), true);
        outs[linear] = linear ? ag::linear_attention(q, k, v, {.causal = c.causal}) : quadratic_form(q, k, v, c.causal);
        outs[linear].backward(dout);
        grads[linear][0] = q.grad(), grads[linear][1] = k.grad(), grads[linear][2] = v.grad();
      }
      const double tol = dt == f64 ? 1e-12 : 2e-5;
      const double e[4] = {rel_diff(outs[1], outs[0]), rel_diff(grads[1][0], grads[0][0]), rel_diff(grads[1][1], grads[0][1]),
                           rel_diff(grads[1][2], grads[0][2])};
      BOOST_TEST_MESSAGE("quadratic vs linear " << c.name << " " << dt << ": out " << e[0] << ", dq " << e[1] << ", dk " << e[2]
                                                << ", dv " << e[3]);
      const char* names[4] = {"out", "dq", "dk", "dv"};
      for (int i = 0; i < 4; ++i) BOOST_TEST(e[i] <= tol, c.name << " " << dt << ": " << names[i] << " differs by " << e[i]);
    }
}

// Two keys with features 1 and 3, values 2 and 4; one query with feature 1:
// non-causal: (1*2 + 3*4) / (1 + 3) = 3.5; causal rows: 2 / 1 = 2, then (2 + 12) / 4 = 3.5.
// A query whose features are all 0 gets 0 (eps keeps it finite), not NaN.
BOOST_AUTO_TEST_CASE(known_values) {
  for (Dtype dt : {f32, f64}) {
    const double tol = dt == f64 ? 1e-12 : 1e-6;
    const Tensor k = tensor({1, 3}, {2, 1}, {dt}), v = tensor({2, 4}, {2, 1}, {dt});
    check_values(ag::linear_attention(tensor({1}, {1, 1}, {dt}), k, v, {.eps = 0}).to_vector(), {3.5}, tol);
    check_values(ag::linear_attention(tensor({1, 1}, {2, 1}, {dt}), k, v, {.causal = true, .eps = 0}).to_vector(), {2, 3.5}, tol);
    check_values(ag::linear_attention(tensor({0}, {1, 1}, {dt}), k, v).to_vector(), {0}, 0);
  }
}

// Only the gradients asked for are computed, and q = k = v in one tensor adds all three.
BOOST_AUTO_TEST_CASE(one_tensor_for_q_k_v) {
  Generator gen(8);
  const Tensor x0 = features({2, 70, 3}, f64, gen);
  Tensor x = Tensor::from(x0.array(), true);
  ag::linear_attention(x, x, x, {.causal = true}).sum().backward();
  Tensor q = Tensor::from(x0.array(), true), k = Tensor::from(x0.array(), true), v = Tensor::from(x0.array(), true);
  ag::linear_attention(q, k, v, {.causal = true}).sum().backward();
  BOOST_TEST(rel_diff(x.grad(), q.grad() + k.grad() + v.grad()) <= 1e-14);
}

// Each gradient alone (the others' inputs need none) equals the same gradient computed with all three.
BOOST_AUTO_TEST_CASE(only_needed_gradients) {
  for (bool causal : {true, false}) {
    Generator gen(9);
    const Tensor q0 = features({2, 70, 3}, f64, gen), k0 = features({2, 70, 3}, f64, gen), v0 = values({2, 70, 1}, f64, gen);
    const Tensor all[3] = {Tensor::from(q0.array(), true), Tensor::from(k0.array(), true), Tensor::from(v0.array(), true)};
    ag::linear_attention(all[0], all[1], all[2], {.causal = causal}).sum().backward();
    for (int which = 0; which < 3; ++which) {
      Tensor in[3] = {Tensor::from(q0.array(), which == 0), Tensor::from(k0.array(), which == 1), Tensor::from(v0.array(), which == 2)};
      ag::linear_attention(in[0], in[1], in[2], {.causal = causal}).sum().backward();
      BOOST_TEST(rel_diff(in[which].grad(), all[which].grad()) <= 1e-15, "input " << which << (causal ? " causal" : ""));
    }
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  const auto t = [](const Shape& s, Dtype dt = f32) { return zeros(s, {dt}); };
  expect_error([&] { ag::linear_attention(t({2, 5, 4}), t({2, 7, 3}), t({2, 7, 4})); }, {"linear_attention", "[2,5,4]", "[2,7,3]", "width d"});
  expect_error([&] { ag::linear_attention(t({2, 5, 4}), t({3, 7, 4}), t({3, 7, 4})); }, {"linear_attention", "batch"});
  expect_error([&] { ag::linear_attention(t({2, 7, 4}), t({2, 7, 4}), t({2, 6, 4})); }, {"linear_attention", "[2,6,4]", "keys Tk"});
  expect_error([&] { ag::linear_attention(t({2, 5, 4}), t({2, 7, 4}), t({2, 7, 4}), {.causal = true}); },
               {"linear_attention", "causal", "[2,5,4]", "[2,7,4]"});
  expect_error([&] { ag::linear_attention(t({2, 5, 4}), t({2, 5, 4}), t({2, 5, 4}), {.eps = -1}); }, {"linear_attention", "eps"});
  expect_error([&] { ag::linear_attention(t({2, 5, 4}), t({2, 5, 4}, f64), t({2, 5, 4})); }, {"linear_attention", "dtypes"});
  expect_error([&] { ag::linear_attention(t({4}), t({4}), t({4})); }, {"linear_attention", "[4]"});
}

BOOST_AUTO_TEST_SUITE_END()
