// The two attention ops of the engine.
//
// ag::attention_weights (softmax of masked scores in one op): float64 gradient checks, agreement
// with softmax(masked_fill(matmul(q * scale, k^T))) forward and backward, errors.
//
// ag::tiled_attention: float64 gradient checks on awkward sizes (T not a multiple of the block,
// Tq != Tk, batch dims, causal, masks), agreement with the composed attention
// softmax(matmul(q * scale, k^T) masked with -inf) v in both dtypes and for several block sizes,
// fully blocked rows (output 0, zero gradients, no NaN), and argument errors.
//
// Shape legend: B batch, H heads, Tq queries, Tk keys, d width of q and k, dv width of v.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "ag/ag.hpp"
#include "common/check_values.hpp"
#include "common/expect_error.hpp"

using namespace ag;
namespace tt = boost::test_tools;

namespace {

// The sizes of one attention problem: q [batch..., Tq, d], k [batch..., Tk, d], v [batch..., Tk, dv].
struct Sizes {
  Shape batch;
  std::size_t Tq, Tk, d, dv;
  Shape with(std::size_t rows, std::size_t cols) const {
    Shape s = batch;
    s.push_back(rows);
    s.push_back(cols);
    return s;
  }
  Shape q() const { return with(Tq, d); }
  Shape k() const { return with(Tk, d); }
  Shape v() const { return with(Tk, dv); }
};

Tensor uniform(const Shape& shape, Dtype dt, Generator& gen) { return (rand(shape, gen, {dt}) * 2.0 - 1.0).detach(); }

// [Tq, Tk]: true (blocked) where key j > query i's position, query_offset + i.
Mask causal_mask(std::size_t Tq, std::size_t Tk, std::size_t query_offset = 0) {
  std::vector<std::uint8_t> m(Tq * Tk, 0);
  for (std::size_t i = 0; i < Tq; ++i)
    for (std::size_t j = query_offset + i + 1; j < Tk; ++j) m[i * Tk + j] = 1;
  return Mask({Tq, Tk}, std::move(m));
}

// [Tq, Tk]: true (blocked) where query position i = query_offset + r and key j are more than w
// apart, unless either is a global token: the band of sliding-window attention, built directly.
Mask band_mask(std::size_t Tq, std::size_t Tk, std::size_t w, const std::vector<std::size_t>& globals, std::size_t query_offset) {
  auto global = [&](std::size_t pos) { return std::find(globals.begin(), globals.end(), pos) != globals.end(); };
  std::vector<std::uint8_t> m(Tq * Tk, 0);
  for (std::size_t r = 0; r < Tq; ++r)
    for (std::size_t j = 0; j < Tk; ++j) {
      const std::size_t i = query_offset + r, dist = i > j ? i - j : j - i;
      m[r * Tk + j] = dist > w && !global(i) && !global(j);
    }
  return Mask({Tq, Tk}, std::move(m));
}

// Key padding [B, 1, 1, Tk] (for q of shape [B, H, Tq, d]): batch element b keeps its first lengths[b] keys.
Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t Tk) {
  std::vector<std::uint8_t> m(lengths.size() * Tk, 0);
  for (std::size_t b = 0; b < lengths.size(); ++b)
    for (std::size_t j = lengths[b]; j < Tk; ++j) m[b * Tk + j] = 1;
  return Mask({lengths.size(), 1, 1, Tk}, std::move(m));
}

// About a third of the entries true.
std::vector<std::uint8_t> random_flags(std::size_t n, std::uint64_t seed) {
  Generator g(seed);
  std::vector<std::uint8_t> m(n);
  for (auto& x : m) x = g.uniform() < 1.0 / 3.0;
  return m;
}
Mask random_mask(const Shape& s, std::uint64_t seed) { return Mask(s, random_flags(shape_numel(s), seed)); }

// A float mask (added to the scores): uniform in [-2, 2], float32 to show the conversion to q's dtype.
Tensor random_bias(const Shape& s, std::uint64_t seed, Dtype dt = f32) {
  Generator g(seed);
  return (rand(s, g, {dt}) * 4.0 - 2.0).detach();
}

// The reference: attention composed of existing ops, holding the whole [..., Tq, Tk] matrix.
Tensor naive_scores(const Tensor& q, const Tensor& k, const AttentionMask& mask, double scale, bool causal,
                    std::size_t query_offset = 0) {
  const double s = scale != 0 ? scale : 1.0 / std::sqrt(double(q.shape().back()));
  const double inf = std::numeric_limits<double>::infinity();
  Tensor scores = matmul(q * s, transpose(k, -2, -1));
  if (mask.bias.defined()) scores = scores + mask.bias.to(q.dtype());
  if (causal) scores = masked_fill(scores, causal_mask(q.size(-2), k.size(-2), query_offset), -inf);
  if (mask.blocked.defined()) scores = masked_fill(scores, mask.blocked, -inf);
  return scores;
}
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask, TiledAttentionOptions o) {
  Tensor scores = naive_scores(q, k, mask, o.scale, o.causal, o.query_offset);
  if (o.window)
    scores = masked_fill(scores, band_mask(q.size(-2), k.size(-2), *o.window, o.global_tokens, o.query_offset),
                         -std::numeric_limits<double>::infinity());
  return matmul(softmax(scores, -1), v);
}

// Row i of a [rows, want.size()] row-major vector equals want (to 1e-15).
void check_row(const std::vector<double>& w, std::size_t i, const std::vector<double>& want) {
  for (std::size_t j = 0; j < want.size(); ++j) BOOST_TEST(std::abs(w[i * want.size() + j] - want[j]) <= 1e-15);
}

bool all_finite(const Tensor& t) {
  for (double x : t.to_vector())
    if (!std::isfinite(x)) return false;
  return true;
}

void gradcheck_case(const std::string& what, const Sizes& s, const AttentionMask& mask, TiledAttentionOptions o) {
  Generator gen(std::hash<std::string>{}(what) & 0xffffffffu);
  const std::vector<Tensor> xs{uniform(s.q(), f64, gen), uniform(s.k(), f64, gen), uniform(s.v(), f64, gen)};
  const GradcheckResult r =
      gradcheck([&](const std::vector<Tensor>& x) { return ag::tiled_attention(x[0], x[1], x[2], mask, o); }, xs);
  BOOST_TEST_MESSAGE("gradcheck " << what << " q " << shape_str(s.q()) << " k " << shape_str(s.k()) << " v "
                                  << shape_str(s.v()) << " block " << o.block << ": max rel error " << r.max_rel_error
                                  << ", max abs " << r.max_abs_error);
  BOOST_TEST(r.ok, what << ": " << r.report);
  BOOST_TEST(r.elements_checked == shape_numel(s.q()) + shape_numel(s.k()) + shape_numel(s.v()));
}

// Forward and the three gradients of tiled_attention against naive_attention.
void compare_with_naive(const std::string& what, const Sizes& s, Dtype dt, const AttentionMask& mask, TiledAttentionOptions o) {
  Generator gen(std::hash<std::string>{}(what) & 0xffffffffu);
  const Tensor q0 = uniform(s.q(), dt, gen), k0 = uniform(s.k(), dt, gen), v0 = uniform(s.v(), dt, gen);
  const Tensor dout = uniform(s.with(s.Tq, s.dv), dt, gen);
  Tensor grads[2][3];
  Tensor outs[2];
  for (int tiled = 0; tiled < 2; ++tiled) {
    // fresh leaves with the same values for each version
    Tensor q = Tensor::from(q0.array(), true), k = Tensor::from(k0.array(), true), v = Tensor::from(v0.array(), true);
    outs[tiled] = tiled ? ag::tiled_attention(q, k, v, mask, o) : naive_attention(q, k, v, mask, o);
    outs[tiled].backward(dout);
    grads[tiled][0] = q.grad(), grads[tiled][1] = k.grad(), grads[tiled][2] = v.grad();
  }
  const double tol = dt == f64 ? 1e-12 : 1e-5;
  const double e[4] = {rel_diff(outs[1], outs[0]), rel_diff(grads[1][0], grads[0][0]), rel_diff(grads[1][1], grads[0][1]),
                       rel_diff(grads[1][2], grads[0][2])};
  BOOST_TEST_MESSAGE("naive vs tiled " << what << " " << dt << " block " << o.block << ": out " << e[0] << ", dq " << e[1]
                                       << ", dk " << e[2] << ", dv " << e[3]);
  const char* names[4] = {"out", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i) {
    BOOST_TEST(e[i] <= tol, what << " " << dt << " block " << o.block << ": " << names[i] << " differs by " << e[i]);
  }
  BOOST_TEST(shape_str(outs[1].shape()) == shape_str(s.with(s.Tq, s.dv)));
}

const Sizes kAwkward{{2, 3}, 7, 13, 5, 4};  // Tq != Tk, neither a multiple of the block 4

}  // namespace

BOOST_AUTO_TEST_SUITE(tiled_attention)

BOOST_AUTO_TEST_CASE(gradcheck_plain_and_causal) {
  gradcheck_case("plain", kAwkward, Tensor(), {.block = 4});
  gradcheck_case("plain block 1", {{2}, 5, 6, 3, 2}, Tensor(), {.block = 1});
  gradcheck_case("plain block >= T", {{2}, 7, 13, 5, 4}, Tensor(), {.block = 64});
  gradcheck_case("no batch dims", {{}, 13, 7, 4, 6}, Tensor(), {.block = 4});
  gradcheck_case("explicit scale", kAwkward, Tensor(), {.scale = 0.7, .block = 3});
  gradcheck_case("causal", {{2, 3}, 13, 13, 5, 4}, Tensor(), {.causal = true, .block = 4});
  gradcheck_case("causal Tq > Tk", {{2, 3}, 13, 7, 5, 4}, Tensor(), {.causal = true, .block = 4});
  gradcheck_case("causal Tq < Tk", kAwkward, Tensor(), {.causal = true, .block = 4});
  // the last 7 of 13 positions (a KV cache's new queries), and 7 queries from position 3
  gradcheck_case("causal query_offset 6", kAwkward, Tensor(), {.causal = true, .block = 4, .query_offset = 6});
  gradcheck_case("causal query_offset 3", kAwkward, padding_mask({13, 9}, 13), {.causal = true, .block = 4, .query_offset = 3});
}

// The queries of a KV cache: rows i of q at positions query_offset + i give the same output and
// gradients as those rows of the whole causal attention (the naive one masks key j > offset + i).
BOOST_AUTO_TEST_CASE(query_offset_places_the_queries) {
  for (Dtype dt : {f32, f64})
    for (std::size_t block : {1, 4, 64})
      for (std::size_t offset : {0, 3, 6}) {
        compare_with_naive("offset " + std::to_string(offset), kAwkward, dt, Tensor(),
                           {.causal = true, .block = block, .query_offset = offset});
        compare_with_naive("offset " + std::to_string(offset) + " + padding", kAwkward, dt, padding_mask({13, 9}, 13),
                           {.causal = true, .block = block, .query_offset = offset});
      }
  // One query at the last position sees every key: the last row of the whole causal attention.
  for (Dtype dt : {f32, f64}) {
    Generator gen(77);
    const Tensor q = uniform({2, 3, 13, 5}, dt, gen), k = uniform({2, 3, 13, 5}, dt, gen), v = uniform({2, 3, 13, 4}, dt, gen);
    const Tensor full = ag::tiled_attention(q, k, v, {}, {.causal = true, .block = 4});
    const Tensor last = ag::tiled_attention(ag::slice(q, 2, 12, 13), k, v, {}, {.causal = true, .block = 4, .query_offset = 12});
    BOOST_TEST(rel_diff(last, ag::slice(full, 2, 12, 13)) <= (dt == f64 ? 1e-15 : 1e-7));
  }
}

BOOST_AUTO_TEST_CASE(gradcheck_masks) {
  gradcheck_case("padding [B,1,1,Tk]", kAwkward, padding_mask({13, 9}, 13), {.block = 4});
  gradcheck_case("padding + causal", {{2, 3}, 13, 13, 5, 4}, padding_mask({10, 7}, 13), {.causal = true, .block = 4});
  gradcheck_case("[Tq,Tk] mask", kAwkward, random_mask({7, 13}, 5), {.block = 4});
  gradcheck_case("[B,H,Tq,Tk] mask", kAwkward, random_mask({2, 3, 7, 13}, 6), {.block = 4});
  gradcheck_case("[H,1,Tk] mask", kAwkward, random_mask({3, 1, 13}, 7), {.block = 5});
}

BOOST_AUTO_TEST_CASE(matches_naive_attention) {
  struct Masked {
    std::string name;
    AttentionMask mask;
    bool causal;
  };
  const std::vector<Masked> masks = {{"none", {}, false},
                                     {"causal", {}, true},
                                     {"bias [Tq,Tk]", random_bias({7, 13}, 12), false},
                                     {"bias [B,1,1,Tk] + causal", random_bias({2, 1, 1, 13}, 13), true},
                                     {"bias + padding", {padding_mask({13, 9}, 13), random_bias({2, 3, 7, 13}, 14)}, false},
                                     {"padding", padding_mask({13, 9}, 13), false},
                                     {"[Tq,Tk]", random_mask({7, 13}, 11), false},
                                     {"causal+padding", padding_mask({5, 11}, 13), true}};
  for (Dtype dt : {f32, f64})
    for (std::size_t block : {1, 3, 4, 8, 64})
      for (const auto& m : masks) compare_with_naive("awkward " + m.name, kAwkward, dt, m.mask, {.causal = m.causal, .block = block});
  // Longer rows and wider heads: more terms in every sum, several tiles each way.
  for (Dtype dt : {f32, f64})
    for (std::size_t block : {16, 32, 100}) {
      compare_with_naive("long", {{2, 2}, 70, 90, 16, 24}, dt, Tensor(), {.block = block});
      compare_with_naive("long causal", {{2, 2}, 90, 90, 16, 24}, dt, Tensor(), {.causal = true, .block = block});
    }
}

// Issue 13, section 4: the backward recomputes the weights as exp((s - m) - log l) from the saved
// row max m and log-sum l, not as exp(s - L) with L = m + log l, which rounds log l to the
// scores' magnitude. Scores with a large common offset c per row (scale 1, q_i = [a_i, c],
// k_j = [b_j, 1], so s_ij = a_i b_j + c exactly) must give the same output and gradients as c = 0.
BOOST_AUTO_TEST_CASE(large_scores_lose_nothing) {
  for (Dtype dt : {f32, f64}) {
    const double c = dt == f32 ? 4096.0 : std::ldexp(1.0, 40);
    const std::size_t Tq = 5, Tk = 11, dv = 3;
    Tensor outs[2], dq[2], dk[2], dv_[2];
    for (int shifted = 0; shifted < 2; ++shifted) {
      std::vector<double> qv, kv, vv;
      for (std::size_t i = 0; i < Tq; ++i) qv.push_back(double(int(i * 3 % 7) - 3) * 0.5), qv.push_back(shifted ? c : 0.0);
      for (std::size_t j = 0; j < Tk; ++j) kv.push_back(double(int(j * 5 % 9) - 4) * 0.25), kv.push_back(1.0);
      for (std::size_t j = 0; j < Tk * dv; ++j) vv.push_back(double(int(j * 7 % 11) - 5) * 0.125);
      Tensor q = tensor(qv, {Tq, 2}, {dt, true}), k = tensor(kv, {Tk, 2}, {dt, true}), v = tensor(vv, {Tk, dv}, {dt, true});
      outs[shifted] = ag::tiled_attention(q, k, v, Tensor(), {.scale = 1.0, .block = 4});
      sum(outs[shifted] * outs[shifted]).backward();
      dq[shifted] = select(q.grad(), 1, 0), dk[shifted] = select(k.grad(), 1, 0), dv_[shifted] = v.grad();
    }
    const double tol = dt == f64 ? 1e-13 : 2e-6;
    BOOST_TEST_CONTEXT(dt << ", offset " << c) {
      BOOST_TEST(rel_diff(outs[1], outs[0]) <= tol);
      BOOST_TEST(rel_diff(dv_[1], dv_[0]) <= tol);
      BOOST_TEST(rel_diff(dq[1], dq[0]) <= tol);
      BOOST_TEST(rel_diff(dk[1], dk[0]) <= tol);
    }
  }
}

BOOST_AUTO_TEST_CASE(self_attention_one_tensor_for_q_k_v) {
  // q = k = v: the three gradients land in one slot and must add up.
  Generator gen(3);
  const Tensor x0 = uniform({2, 9, 6}, f64, gen), dout = uniform({2, 9, 6}, f64, gen);
  Tensor a = Tensor::from(x0.array(), true), b = Tensor::from(x0.array(), true);
  ag::tiled_attention(a, a, a, Tensor(), {.causal = true, .block = 4}).backward(dout);
  naive_attention(b, b, b, Tensor(), {.causal = true}).backward(dout);
  BOOST_TEST(rel_diff(a.grad(), b.grad()) <= 1e-12);
}

BOOST_AUTO_TEST_CASE(only_needed_gradients) {
  Generator gen(4);
  Tensor q = uniform({2, 5, 3}, f32, gen).requires_grad_(), k = uniform({2, 6, 3}, f32, gen), v = uniform({2, 6, 4}, f32, gen);
  sum(ag::tiled_attention(q, k, v)).backward();
  BOOST_TEST(q.has_grad());
  BOOST_TEST(!k.has_grad());
  BOOST_TEST(!v.has_grad());
  Tensor v2 = v.detach().requires_grad_();
  sum(ag::tiled_attention(q.detach(), k, v2)).backward();
  BOOST_TEST(v2.has_grad());
  // No input needs a gradient: a constant, with no graph behind it.
  const Tensor c = ag::tiled_attention(q.detach(), k, v);
  BOOST_TEST(!c.requires_grad());
}

BOOST_AUTO_TEST_CASE(fully_blocked_rows_give_zero_output_and_gradients) {
  Generator gen(5);
  const Sizes s{{2, 3}, 7, 13, 5, 4};
  // Query row 2 of every slice blocked by a [Tq, Tk] mask; every key of batch element 1 padded.
  std::vector<std::uint8_t> flags = random_flags(7 * 13, 8);
  for (std::size_t j = 0; j < 13; ++j) flags[2 * 13 + j] = 1;
  const Mask row_mask({7, 13}, flags);
  struct Case {
    std::string name;
    AttentionMask mask;
    std::vector<std::size_t> blocked_rows;  // flat indices (slice * Tq + row) of blocked rows
  };
  std::vector<Case> cases{{"[Tq,Tk] row", row_mask, {}}, {"padding all keys", padding_mask({13, 0}, 13), {}}};
  for (std::size_t slice = 0; slice < 6; ++slice) cases[0].blocked_rows.push_back(slice * 7 + 2);
  for (std::size_t slice = 3; slice < 6; ++slice)
    for (std::size_t i = 0; i < 7; ++i) cases[1].blocked_rows.push_back(slice * 7 + i);
  for (Dtype dt : {f32, f64})
    for (const auto& c : cases) {
      Tensor q = uniform(s.q(), dt, gen).requires_grad_(), k = uniform(s.k(), dt, gen).requires_grad_(),
             v = uniform(s.v(), dt, gen).requires_grad_();
      const Tensor out = ag::tiled_attention(q, k, v, c.mask, {.block = 4});
      out.backward(uniform(out.shape(), dt, gen));
      BOOST_TEST(all_finite(out));
      BOOST_TEST(all_finite(q.grad()));
      BOOST_TEST(all_finite(k.grad()));
      BOOST_TEST(all_finite(v.grad()));
      const auto o = out.to_vector(), gq = q.grad().to_vector();
      for (std::size_t r : c.blocked_rows) {
        for (std::size_t t = 0; t < s.dv; ++t) BOOST_TEST(o[r * s.dv + t] == 0.0, c.name << " output row " << r);
        for (std::size_t t = 0; t < s.d; ++t) BOOST_TEST(gq[r * s.d + t] == 0.0, c.name << " dq row " << r);
      }
      if (c.name == "padding all keys") {  // keys and values of the fully padded batch element get nothing
        const auto gk = k.grad().to_vector(), gv = v.grad().to_vector();
        for (std::size_t i = shape_numel(s.k()) / 2; i < gk.size(); ++i) BOOST_TEST(gk[i] == 0.0);
        for (std::size_t i = shape_numel(s.v()) / 2; i < gv.size(); ++i) BOOST_TEST(gv[i] == 0.0);
      }
    }
  // The rest of the rows still match the composed attention (which gives the same zeros), and
  // the gradients still pass the check.
  compare_with_naive("fully blocked row", s, f64, row_mask, {.block = 4});
  compare_with_naive("fully padded batch", s, f64, padding_mask({13, 0}, 13), {.block = 4});
  gradcheck_case("fully blocked row", s, row_mask, {.block = 4});
  // No keys at all: every row is blocked.
  Tensor q = uniform({2, 5, 4}, f64, gen).requires_grad_();
  Tensor k = zeros({2, 0, 4}, {f64, true}), v = zeros({2, 0, 3}, {f64, true});
  const Tensor out = ag::tiled_attention(q, k, v);
  BOOST_TEST(shape_str(out.shape()) == "[2,5,3]");
  sum(out).backward();
  for (double x : out.to_vector()) BOOST_TEST(x == 0.0);
  for (double x : q.grad().to_vector()) BOOST_TEST(x == 0.0);
}

// A float mask is an input like q, k, v: its gradient dS, summed over the axes it was broadcast
// along, is checked by central differences, for three shapes, with and without blocking.
BOOST_AUTO_TEST_CASE(gradcheck_float_mask) {
  const Sizes s = kAwkward;  // q [2,3,7,5]: scores [2,3,7,13]
  for (const Shape& bias_shape : {Shape{7, 13}, Shape{2, 1, 1, 13}, Shape{2, 3, 7, 13}})
    for (bool blocked : {false, true}) {
      const std::string what = "bias " + shape_str(bias_shape) + (blocked ? " + causal + padding" : "");
      Generator gen(std::hash<std::string>{}(what) & 0xffffffffu);
      const std::vector<Tensor> xs{uniform(s.q(), f64, gen), uniform(s.k(), f64, gen), uniform(s.v(), f64, gen),
                                   uniform(bias_shape, f64, gen)};
      const Mask m = blocked ? padding_mask({13, 9}, 13) : Mask();
      const GradcheckResult r = gradcheck(
          [&](const std::vector<Tensor>& x) {
            return ag::tiled_attention(x[0], x[1], x[2], AttentionMask(m, x[3]), {.causal = blocked, .block = 4});
          },
          xs);
      BOOST_TEST_MESSAGE("gradcheck tiled_attention " << what << ": max rel error " << r.max_rel_error);
      BOOST_TEST(r.ok, what << ": " << r.report);
      BOOST_TEST(r.elements_checked == shape_numel(s.q()) + shape_numel(s.k()) + shape_numel(s.v()) + shape_numel(bias_shape));
    }
}

// -inf in a float mask blocks exactly as a Mask does; a float mask of only 0s and 1s is refused.
BOOST_AUTO_TEST_CASE(float_mask_rules) {
  Generator gen(41);
  const Sizes s = kAwkward;
  const Tensor q = uniform(s.q(), f64, gen), k = uniform(s.k(), f64, gen), v = uniform(s.v(), f64, gen);
  const Mask m = random_mask({2, 3, 7, 13}, 42);
  for (std::size_t block : {4, 64}) {
    const auto a = ag::tiled_attention(q, k, v, m, {.block = block}).to_vector();
    const auto b = ag::tiled_attention(q, k, v, m.additive(f64), {.block = block}).to_vector();
    BOOST_TEST(a == b, tt::per_element());
  }
  const Tensor zero_one = tensor({0, 1, 0, 0, 1, 1}, {1, 6}, {f64});
  const Shape q6{1, 3, 4}, k6{1, 6, 4};
  expect_error([&] { ag::tiled_attention(zeros(q6, {f64}), zeros(k6, {f64}), zeros(k6, {f64}), zero_one); },
               {"tiled_attention", "float mask [1,6]", "only 0s and 1s", "Mask::nonzero"});
  expect_error([&] { ag::attention_weights(zeros(q6, {f64}), zeros(k6, {f64}), zero_one); },
               {"attention_weights", "float mask [1,6]", "only 0s and 1s"});
  // all zeros, or any other value, is a legitimate bias
  BOOST_CHECK_NO_THROW(ag::attention_weights(zeros(q6, {f64}), zeros(k6, {f64}), zeros({1, 6}, {f64})));
  BOOST_CHECK_NO_THROW(ag::attention_weights(zeros(q6, {f64}), zeros(k6, {f64}), zero_one * 0.5));
  // and Mask::nonzero turns the 0/1 tensor into the mask it meant
  const auto w = ag::attention_weights(zeros(q6, {f64}), zeros(k6, {f64}), Mask::nonzero(zero_one)).to_vector();
  for (std::size_t i = 0; i < 3; ++i) check_row(w, i, {1.0 / 3, 0, 1.0 / 3, 1.0 / 3, 0, 0});
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  const auto t = [](const Shape& s, Dtype dt = f32) { return zeros(s, {dt}); };
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), t({2, 7, 3}), t({2, 7, 4})); },
               {"tiled_attention", "[2,5,4]", "[2,7,3]", "d (4 vs 3)"});
  expect_error([&] { ag::tiled_attention(t({2, 3, 5, 4}), t({2, 4, 7, 4}), t({2, 4, 7, 4})); },
               {"tiled_attention", "[2,3,5,4]", "[2,4,7,4]", "batch"});
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), t({2, 7, 4}), t({2, 6, 4})); },
               {"tiled_attention", "[2,7,4]", "[2,6,4]", "Tk (7 vs 6)"});
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), t({2, 7, 4}), t({2, 7, 4}), t({5, 6})); },
               {"tiled_attention", "mask [5,6]", "[2,5,7]"});
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), t({2, 7, 4}), t({2, 7, 4}), t({3, 5, 7})); },
               {"tiled_attention", "mask [3,5,7]", "[2,5,7]"});
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), t({2, 7, 4}), t({2, 7, 4}), Tensor(), {.block = 0}); },
               {"tiled_attention", "block", "[2,5,4]"});
  expect_error([&] { ag::tiled_attention(t({5, 4}), t({2, 7, 4}), t({2, 7, 4})); }, {"tiled_attention", "[5,4]", "[2,7,4]"});
  expect_error([&] { ag::tiled_attention(t({4}), t({4}), t({4})); }, {"tiled_attention", "[4]"});
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), t({2, 7, 4}, f64), t({2, 7, 4})); },
               {"tiled_attention", "[2,5,4]", "[2,7,4]", "dtypes"});
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), Tensor(), t({2, 7, 4})); }, {"tiled_attention", "undefined"});
}

BOOST_AUTO_TEST_SUITE_END()

// ---- attention_weights -----------------------------------------------------------------------

namespace {

// The composed reference: softmax(masked_fill(matmul(q * scale, k^T) + bias, blocked, -inf)).
Tensor naive_weights(const Tensor& q, const Tensor& k, const AttentionMask& mask, double scale) {
  return softmax(naive_scores(q, k, mask, scale, false), -1);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(attention_weights)

BOOST_AUTO_TEST_CASE(gradcheck_with_masks) {
  const Sizes s = kAwkward;
  const std::vector<std::pair<std::string, AttentionMask>> masks = {{"none", {}},
                                                             {"causal [Tq,Tk]", causal_mask(7, 13)},
                                                             {"padding [B,1,1,Tk]", padding_mask({13, 9}, 13)},
                                                             {"[B,H,Tq,Tk]", random_mask({2, 3, 7, 13}, 6)}};
  for (const auto& [name, mask] : masks)
    for (double scale : {0.0, 1.0}) {
      Generator gen(std::hash<std::string>{}(name) & 0xffffffffu);
      const std::vector<Tensor> xs{uniform(s.q(), f64, gen), uniform(s.k(), f64, gen)};
      const GradcheckResult r = gradcheck(
          [&, &mask = mask](const std::vector<Tensor>& x) { return ag::attention_weights(x[0], x[1], mask, scale); }, xs);
      BOOST_TEST_MESSAGE("gradcheck attention_weights, mask " << name << ", scale " << scale << ": max rel error "
                                                              << r.max_rel_error);
      BOOST_TEST(r.ok, name << ": " << r.report);
    }
}

BOOST_AUTO_TEST_CASE(matches_the_composed_ops) {
  for (Dtype dt : {f32, f64})
    for (const AttentionMask& mask : {AttentionMask(), AttentionMask(causal_mask(7, 13)),
                                      AttentionMask(padding_mask({13, 0}, 13)),  // incl. fully padded rows
                                      AttentionMask(causal_mask(7, 13), random_bias({2, 1, 7, 13}, 31, dt))}) {
      Generator gen(21);
      const Tensor q0 = uniform(kAwkward.q(), dt, gen), k0 = uniform(kAwkward.k(), dt, gen);
      const Tensor dw = uniform(kAwkward.with(7, 13), dt, gen);
      Tensor w[2], gq[2], gk[2];
      for (int fused = 0; fused < 2; ++fused) {
        Tensor q = Tensor::from(q0.array(), true), k = Tensor::from(k0.array(), true);
        w[fused] = fused ? ag::attention_weights(q, k, mask) : naive_weights(q, k, mask, 0.0);
        w[fused].backward(dw);
        gq[fused] = q.grad(), gk[fused] = k.grad();
      }
      const double tol = dt == f64 ? 1e-13 : 1e-5;
      const double e[3] = {rel_diff(w[1], w[0]), rel_diff(gq[1], gq[0]), rel_diff(gk[1], gk[0])};
      BOOST_TEST_MESSAGE("attention_weights vs composed, " << dt << ": w " << e[0] << ", dq " << e[1] << ", dk " << e[2]);
      for (double x : e) BOOST_TEST(x <= tol);
      BOOST_TEST(all_finite(w[1]));
      BOOST_TEST(all_finite(gq[1]));
    }
}

BOOST_AUTO_TEST_CASE(gradcheck_float_mask) {
  const Sizes s = kAwkward;
  for (const Shape& bias_shape : {Shape{7, 13}, Shape{2, 1, 1, 13}, Shape{3, 7, 1}}) {
    Generator gen(std::hash<std::string>{}(shape_str(bias_shape)) & 0xffffffffu);
    const std::vector<Tensor> xs{uniform(s.q(), f64, gen), uniform(s.k(), f64, gen), uniform(bias_shape, f64, gen)};
    const Mask m = causal_mask(7, 13);
    const GradcheckResult r =
        gradcheck([&](const std::vector<Tensor>& x) { return ag::attention_weights(x[0], x[1], AttentionMask(m, x[2])); }, xs);
    BOOST_TEST_MESSAGE("gradcheck attention_weights, bias " << shape_str(bias_shape) << ": max rel error " << r.max_rel_error);
    BOOST_TEST(r.ok, shape_str(bias_shape) << ": " << r.report);
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  const auto t = [](const Shape& s, Dtype dt = f32) { return zeros(s, {dt}); };
  expect_error([&] { ag::attention_weights(t({2, 5, 4}), t({2, 7, 3})); }, {"attention_weights", "[2,5,4]", "[2,7,3]", "d (4 vs 3)"});
  expect_error([&] { ag::attention_weights(t({2, 5, 4}), t({3, 7, 4})); }, {"attention_weights", "batch"});
  expect_error([&] { ag::attention_weights(t({2, 5, 4}), t({2, 7, 4}), t({5, 6})); }, {"attention_weights", "mask [5,6]", "[2,5,7]"});
  expect_error([&] { ag::attention_weights(t({2, 5, 4}), t({2, 7, 4}, f64)); }, {"attention_weights", "dtypes"});
}

BOOST_AUTO_TEST_SUITE_END()

// ---- ALiBi in tiled_attention (ctest -R alibi) -------------------------------------------------

BOOST_AUTO_TEST_SUITE(alibi)

// The same ALiBi bias, built as a float mask [H, Tq, Tk]: -m_h (i - j), or -m_h |i - j|.
// Query row r is at position i = offset + r.
Tensor explicit_bias(const std::vector<double>& slopes, std::size_t Tq, std::size_t Tk, bool symmetric, Dtype dt,
                     std::size_t offset = 0) {
  std::vector<double> b;
  for (double m : slopes)
    for (std::size_t r = 0; r < Tq; ++r)
      for (std::size_t j = 0; j < Tk; ++j) {
        const double dist = double(offset + r) - double(j);
        b.push_back(-m * (symmetric ? std::abs(dist) : dist));
      }
  return tensor(b, {slopes.size(), Tq, Tk}, {dt});
}

// Computed tile by tile, ALiBi gives what the explicit bias gives, forward and backward, for
// causal and symmetric biases, several block sizes and Tq != Tk.
BOOST_AUTO_TEST_CASE(tiled_equals_the_explicit_bias) {
  const std::vector<double> slopes{0.5, 0.125, 0.03125};
  for (Dtype dt : {f32, f64})
    for (bool symmetric : {false, true})
      for (std::size_t block : {3, 64})
      for (std::size_t offset : {0, 4}) {  // 4: the 7 queries are the last 7 of 11 positions
        const Sizes s{{2, 3}, 7, 11, 5, 4};
        Generator gen(51);
        const Tensor q0 = uniform(s.q(), dt, gen), k0 = uniform(s.k(), dt, gen), v0 = uniform(s.v(), dt, gen);
        const Tensor dout = uniform(s.with(s.Tq, s.dv), dt, gen);
        Tensor out[2], gq[2], gk[2], gv[2];
        for (int implicit = 0; implicit < 2; ++implicit) {
          Tensor q = Tensor::from(q0.array(), true), k = Tensor::from(k0.array(), true), v = Tensor::from(v0.array(), true);
          TiledAttentionOptions o{.causal = !symmetric, .block = block, .query_offset = offset};
          AttentionMask m;
          if (implicit) o.alibi_slopes = slopes, o.alibi_symmetric = symmetric;
          else m = explicit_bias(slopes, s.Tq, s.Tk, symmetric, dt, offset);
          out[implicit] = ag::tiled_attention(q, k, v, m, o);
          out[implicit].backward(dout);
          gq[implicit] = q.grad(), gk[implicit] = k.grad(), gv[implicit] = v.grad();
        }
        const double tol = dt == f64 ? 1e-13 : 1e-5;
        BOOST_TEST_CONTEXT(dt << (symmetric ? " symmetric" : " causal") << " block " << block << " offset " << offset) {
          BOOST_TEST(rel_diff(out[1], out[0]) <= tol);
          BOOST_TEST(rel_diff(gq[1], gq[0]) <= tol);
          BOOST_TEST(rel_diff(gk[1], gk[0]) <= tol);
          BOOST_TEST(rel_diff(gv[1], gv[0]) <= tol);
        }
      }
}

BOOST_AUTO_TEST_CASE(gradcheck_with_alibi) {
  gradcheck_case("alibi causal", {{2, 3}, 9, 9, 5, 4}, {},
                 {.causal = true, .block = 4, .alibi_slopes = {0.5, 0.25, 0.125}});
  gradcheck_case("alibi symmetric + padding", {{2, 3}, 7, 13, 5, 4}, padding_mask({13, 9}, 13),
                 {.block = 4, .alibi_slopes = {0.5, 0.25, 0.125}, .alibi_symmetric = true});
  gradcheck_case("alibi causal query_offset 6", kAwkward, {},
                 {.causal = true, .block = 4, .query_offset = 6, .alibi_slopes = {0.5, 0.25, 0.125}});
}

BOOST_AUTO_TEST_CASE(errors) {
  const auto t = [](const Shape& s) { return zeros(s, {f64}); };
  expect_error([&] { ag::tiled_attention(t({2, 3, 5, 4}), t({2, 3, 5, 4}), t({2, 3, 5, 4}), {}, {.alibi_slopes = {0.5, 0.25}}); },
               {"tiled_attention", "2 ALiBi slopes", "3", "[2,3,5,4]"});
  expect_error([&] { ag::tiled_attention(t({5, 4}), t({5, 4}), t({5, 4}), {}, {.alibi_slopes = {0.5}}); },
               {"tiled_attention", "ALiBi", "missing"});
}

BOOST_AUTO_TEST_SUITE_END()

// ---- sliding windows and global tokens in tiled_attention (ctest -R window) --------------------

BOOST_AUTO_TEST_SUITE(sliding_window)

// The window, with and without causality, global tokens, masks and query offsets, equals full
// attention with the band mask built directly (band_mask above), forward and the three gradients:
// <= 1e-12 in float64, 1e-5 in float32, for blocks smaller than, equal to and larger than the window.
BOOST_AUTO_TEST_CASE(equals_full_attention_with_the_band_mask) {
  using Globals = std::vector<std::size_t>;
  for (Dtype dt : {f32, f64})
    for (std::size_t block : {1, 3, 4, 64})
      for (std::size_t w : {0, 1, 3, 5, 20})
        for (bool causal : {false, true})
          for (const Globals& g : {Globals{}, Globals{0}, Globals{0, 6}, Globals{12}}) {
            const std::string what = "window " + std::to_string(w) + (causal ? " causal" : "") + " globals " +
                                     std::to_string(g.size()) + (g.empty() ? "" : " first " + std::to_string(g[0]));
            compare_with_naive(what, {{2, 3}, 13, 13, 5, 4}, dt, Tensor(), {.causal = causal, .block = block, .window = w, .global_tokens = g});
            compare_with_naive(what + " Tq != Tk + padding", kAwkward, dt, padding_mask({13, 9}, 13),
                               {.causal = causal, .block = block, .window = w, .global_tokens = g});
            compare_with_naive(what + " offset 6", kAwkward, dt, Tensor(),
                               {.causal = causal, .block = block, .query_offset = 6, .window = w, .global_tokens = g});
          }
  // Long rows: many tiles skipped on both sides of the band.
  for (Dtype dt : {f32, f64})
    for (std::size_t block : {8, 16, 32})
      for (bool causal : {false, true}) {
        compare_with_naive("long window 20", {{2, 2}, 200, 200, 16, 8}, dt, Tensor(), {.causal = causal, .block = block, .window = 20});
        compare_with_naive("long window 20 global 0, 150", {{2, 2}, 200, 200, 16, 8}, dt, Tensor(),
                           {.causal = causal, .block = block, .window = 20, .global_tokens = {0, 150}});
      }
}

BOOST_AUTO_TEST_CASE(gradcheck_window_and_global_tokens) {
  const Sizes s{{2, 2}, 19, 19, 4, 3};
  gradcheck_case("window 3", s, Tensor(), {.block = 4, .window = 3});
  gradcheck_case("window 3 causal", s, Tensor(), {.causal = true, .block = 4, .window = 3});
  gradcheck_case("window 2 causal global 0", s, Tensor(), {.causal = true, .block = 4, .window = 2, .global_tokens = {0}});
  gradcheck_case("window 2 global 0, 9", s, padding_mask({19, 14}, 19), {.block = 3, .window = 2, .global_tokens = {0, 9}});
  gradcheck_case("window 0 (only itself) + global 18", s, Tensor(), {.block = 5, .window = 0, .global_tokens = {18}});
  gradcheck_case("window 4 Tq != Tk", kAwkward, Tensor(), {.block = 4, .window = 4, .global_tokens = {2}});
  gradcheck_case("window 3 causal offset 6", kAwkward, Tensor(), {.causal = true, .block = 4, .query_offset = 6, .window = 3});
  // queries past every key (positions 3..15 against 7 keys): the last rows see nothing
  gradcheck_case("window 2 Tq 13 > Tk 7 offset 3", {{2}, 13, 7, 4, 3}, Tensor(), {.block = 4, .query_offset = 3, .window = 2});
}

// A window at least as wide as the sequence is full attention, up to the largest size_t (the
// band arithmetic must not wrap around).
BOOST_AUTO_TEST_CASE(a_window_wider_than_the_sequence_is_full_attention) {
  Generator gen(33);
  const Tensor q = uniform({2, 70, 4}, f64, gen), k = uniform({2, 70, 4}, f64, gen), v = uniform({2, 70, 3}, f64, gen);
  for (bool causal : {false, true}) {
    const Tensor full = ag::tiled_attention(q, k, v, {}, {.causal = causal, .block = 16});
    for (std::size_t w : {std::size_t(69), std::size_t(1000), std::numeric_limits<std::size_t>::max()}) {
      const Tensor windowed = ag::tiled_attention(q, k, v, {}, {.causal = causal, .block = 16, .window = w});
      BOOST_TEST(rel_diff(windowed, full) == 0.0, "window " << w << (causal ? " causal" : ""));
    }
  }
}

// Tiles wholly outside the band are never read: NaN in the values of keys that no query may see
// (and in whole tiles away from the band) leaves every output and gradient finite. Full attention
// with the band mask would multiply the NaN by a zero weight and spread it.
BOOST_AUTO_TEST_CASE(tiles_outside_the_band_are_never_read) {
  const std::size_t T = 64, w = 4, block = 8;
  Generator gen(31);
  const Tensor q = uniform({1, T, 4}, f64, gen), k = uniform({1, T, 4}, f64, gen);
  Tensor v0 = uniform({1, T, 3}, f64, gen);
  auto* vals = v0.data<double>().data();
  for (std::size_t t = 40; t < 48; ++t)  // tile [40, 48): outside the band of queries 0..31 and 56..63
    for (std::size_t c = 0; c < 3; ++c) vals[t * 3 + c] = std::numeric_limits<double>::quiet_NaN();
  const Tensor v = Tensor::from(v0.array(), true);
  // only queries in blocks far from the poisoned keys: rows 0..31 (positions 0..31), and 56..63
  for (std::size_t offset : {0, 56}) {
    const std::size_t rows = offset == 0 ? 32 : 8;
    const Tensor qs = ag::slice(q, 1, std::int64_t(offset), std::int64_t(offset + rows));
    for (bool causal : {false, true}) {
      const Tensor out = ag::tiled_attention(qs, k, v, {}, {.causal = causal, .block = block, .query_offset = offset, .window = w});
      BOOST_TEST(all_finite(out), "window output read a tile outside the band (offset " << offset << ")");
      out.sum().backward();
      BOOST_TEST(all_finite(v.grad()));
    }
  }
  // and a global token inside the poisoned tile makes it visible again: NaN in every row
  const Tensor seen = ag::tiled_attention(ag::slice(q, 1, 0, 32), k, v, {}, {.block = block, .window = w, .global_tokens = {44}});
  BOOST_TEST(!all_finite(seen));
}

BOOST_AUTO_TEST_CASE(errors) {
  const auto t = [](const Shape& s) { return zeros(s, {f32}); };
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), t({2, 7, 4}), t({2, 7, 4}), {}, {.global_tokens = {0}}); },
               {"tiled_attention", "global_tokens need a window", "[2,5,4]"});
  expect_error([&] { ag::tiled_attention(t({2, 5, 4}), t({2, 7, 4}), t({2, 7, 4}), {}, {.window = 2, .global_tokens = {7}}); },
               {"tiled_attention", "global token at position 7", "7 keys"});
}

BOOST_AUTO_TEST_SUITE_END()
