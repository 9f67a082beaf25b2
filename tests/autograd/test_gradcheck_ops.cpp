// One float64 gradient check per op, on several shapes including broadcasting and size-1 dims.
// Each op is its own test case (CTest: gradcheck/<op>); each case checks every shape listed,
// with analytic and central-difference gradients agreeing to rtol 1e-6 (atol 1e-8).
#include <boost/test/unit_test.hpp>

#include <functional>
#include <string>

#include "ag/ag.hpp"

using namespace ag;

namespace {

struct In {
  Shape shape;
  double lo = -1.0, hi = 1.0;  // values drawn uniformly from [lo, hi]
};

std::uint64_t seed_of(const std::string& s) { return std::hash<std::string>{}(s) & 0xffffffffu; }

Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen) {
  return mul(rand(shape, gen, {f64}), hi - lo) + lo;
}

// Checks f on inputs of the given shapes; `what` names the case in failure messages.
void check(const std::string& what, const TensorFunction& f, const std::vector<In>& ins,
           const std::vector<std::size_t>& no_grad = {}) {
  Generator gen(seed_of(what));
  std::vector<Tensor> xs;
  std::string shapes;
  for (const auto& in : ins) {
    xs.push_back(uniform(in.shape, in.lo, in.hi, gen));
    shapes += shape_str(in.shape) + " ";
  }
  const GradcheckResult r = gradcheck(f, xs, {}, no_grad);
  BOOST_TEST_MESSAGE(what << " " << shapes << ": max rel error " << r.max_rel_error << ", max abs " << r.max_abs_error);
  BOOST_TEST(r.ok, what << " on " << shapes << ": " << r.report);
  BOOST_TEST(r.elements_checked > 0u);
}

using Fn2 = std::function<Tensor(const Tensor&, const Tensor&)>;
// The broadcasting shapes every binary op is checked on.
void check_binary(const std::string& name, const Fn2& op, double lo_b = -1, double hi_b = 1, double lo_a = -1, double hi_a = 1) {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{}, {2, 3}}, {{1}, {5}}, {{2, 1, 3}, {2, 4, 1}}};
  for (const auto& [sa, sb] : pairs)
    check(name, [&](const std::vector<Tensor>& x) { return op(x[0], x[1]); }, {{sa, lo_a, hi_a}, {sb, lo_b, hi_b}});
}

using Fn1 = std::function<Tensor(const Tensor&)>;
void check_unary(const std::string& name, const Fn1& op, double lo = -2, double hi = 2) {
  for (const Shape& s : std::vector<Shape>{{}, {1}, {7}, {3, 5}, {2, 3, 4}})
    check(name, [&](const std::vector<Tensor>& x) { return op(x[0]); }, {{s, lo, hi}});
}

Tensor fixed_mask(const Shape& s, std::uint64_t seed) {  // 0/1 values, about half ones
  Generator g(seed);
  Tensor m = rand(s, g, {f64});
  for (auto& v : m.data<double>()) v = v > 0.5 ? 1.0 : 0.0;
  return m;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gradcheck)

// ---- binary, broadcasting ------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(add_op) { check_binary("add", [](auto& a, auto& b) { return a + b; }); }
BOOST_AUTO_TEST_CASE(sub_op) { check_binary("sub", [](auto& a, auto& b) { return a - b; }); }
BOOST_AUTO_TEST_CASE(mul_op) { check_binary("mul", [](auto& a, auto& b) { return a * b; }); }
BOOST_AUTO_TEST_CASE(div_op) { check_binary("div", [](auto& a, auto& b) { return a / b; }, 0.5, 2.0); }
BOOST_AUTO_TEST_CASE(pow_op) { check_binary("pow", [](auto& a, auto& b) { return ag::pow(a, b); }, -1.5, 2.0, 0.5, 2.0); }

BOOST_AUTO_TEST_CASE(where_op) {
  for (const Shape& s : std::vector<Shape>{{3, 4}, {2, 3, 4}}) {
    const Tensor cond = fixed_mask(s, 3);
    check("where", [&](const std::vector<Tensor>& x) { return where(cond, x[0], x[1]); }, {{s}, {s}});
    check("where broadcast", [&](const std::vector<Tensor>& x) { return where(cond, x[0], x[1]); }, {{{s.back()}}, {{1}}});
  }
}

BOOST_AUTO_TEST_CASE(masked_fill_op) {
  const Tensor mask = fixed_mask({1, 4}, 5);  // broadcasts over rows, like a padding mask
  check("masked_fill", [&](const std::vector<Tensor>& x) { return masked_fill(x[0], mask, -5.0); }, {{{3, 4}}});
  check("masked_fill 3d", [&](const std::vector<Tensor>& x) { return masked_fill(x[0], fixed_mask({2, 3, 4}, 6), 0.0); }, {{{2, 3, 4}}});
  const Mask blocked = Mask::nonzero(fixed_mask({2, 1, 4}, 7));  // an ag::Mask, broadcast over the middle axis
  check("masked_fill Mask", [&](const std::vector<Tensor>& x) { return masked_fill(x[0], blocked, 1.5); }, {{{2, 3, 4}}});
}

// ---- with a scalar ---------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(add_scalar_op) { check_unary("add_scalar", [](auto& x) { return x + 2.5; }); }
BOOST_AUTO_TEST_CASE(mul_scalar_op) { check_unary("mul_scalar", [](auto& x) { return -1.5 * x; }); }
BOOST_AUTO_TEST_CASE(rsub_scalar_op) { check_unary("rsub_scalar", [](auto& x) { return 3.0 - x; }); }
BOOST_AUTO_TEST_CASE(rdiv_scalar_op) { check_unary("rdiv_scalar", [](auto& x) { return 2.0 / x; }, 0.5, 2.0); }
BOOST_AUTO_TEST_CASE(pow_scalar_op) {
  check_unary("pow 3", [](auto& x) { return ag::pow(x, 3.0); });
  check_unary("pow 0.5", [](auto& x) { return ag::pow(x, 0.5); }, 0.5, 2.0);
  check_unary("pow -2", [](auto& x) { return ag::pow(x, -2.0); }, 0.5, 2.0);
}

// ---- unary -----------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(neg_op) { check_unary("neg", [](auto& x) { return -x; }); }
BOOST_AUTO_TEST_CASE(exp_op) { check_unary("exp", [](auto& x) { return ag::exp(x); }); }
BOOST_AUTO_TEST_CASE(log_op) { check_unary("log", [](auto& x) { return ag::log(x); }, 0.2, 3.0); }
BOOST_AUTO_TEST_CASE(sqrt_op) { check_unary("sqrt", [](auto& x) { return ag::sqrt(x); }, 0.2, 3.0); }
BOOST_AUTO_TEST_CASE(elu_op) {
  check_unary("elu", [](auto& x) { return ag::elu(x); }, -3, 3);
  check_unary("elu alpha 0.5", [](auto& x) { return ag::elu(x, 0.5); }, -3, 3);
}
BOOST_AUTO_TEST_CASE(tanh_op) { check_unary("tanh", [](auto& x) { return ag::tanh(x); }, -3, 3); }
BOOST_AUTO_TEST_CASE(sigmoid_op) { check_unary("sigmoid", [](auto& x) { return sigmoid(x); }, -4, 4); }
BOOST_AUTO_TEST_CASE(relu_op) { check_unary("relu", [](auto& x) { return relu(x); }); }
BOOST_AUTO_TEST_CASE(gelu_op) {
  check_unary("gelu", [](auto& x) { return gelu(x); }, -4, 4);
  check_unary("gelu tanh", [](auto& x) { return gelu(x, ag::GeluApproximate::tanh); }, -4, 4);
}
BOOST_AUTO_TEST_CASE(abs_op) { check_unary("abs", [](auto& x) { return ag::abs(x); }); }
BOOST_AUTO_TEST_CASE(clamp_op) { check_unary("clamp", [](auto& x) { return clamp(x, -0.5, 0.7); }); }

// ---- reductions ------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(sum_op) {
  check("sum all", [](auto& x) { return sum(x[0]); }, {{{2, 3, 4}}});
  for (const auto& axes : std::vector<std::vector<int>>{{0}, {1}, {-1}, {0, 2}, {}})
    for (bool keep : {false, true})
      check("sum axes", [&](auto& x) { return sum(x[0], axes, keep); }, {{{2, 3, 4}}});
  check("sum size-1 axis", [](auto& x) { return sum(x[0], {1}); }, {{{4, 1, 3}}});
}

BOOST_AUTO_TEST_CASE(mean_op) {
  check("mean all", [](auto& x) { return mean(x[0]); }, {{{2, 3, 4}}});
  for (const auto& axes : std::vector<std::vector<int>>{{0}, {-1}, {0, 1}})
    for (bool keep : {false, true})
      check("mean axes", [&](auto& x) { return mean(x[0], axes, keep); }, {{{2, 3, 4}}});
}

BOOST_AUTO_TEST_CASE(max_op) {
  check("max all", [](auto& x) { return ag::max(x[0]); }, {{{3, 5}}});
  for (int axis : {0, 1, -1})
    for (bool keep : {false, true})
      check("max axis", [&](auto& x) { return ag::max(x[0], axis, keep); }, {{{2, 3, 4}}});
}

// ---- shape -----------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(reshape_op) {
  check("reshape", [](auto& x) { return reshape(x[0], {4, -1}) * reshape(x[1], {4, 6}); }, {{{2, 3, 4}}, {{24}}});
  check("flatten", [](auto& x) { return flatten(x[0], 1) * 2.0; }, {{{2, 3, 4}}});
}
BOOST_AUTO_TEST_CASE(unsqueeze_op) { check("unsqueeze", [](auto& x) { return unsqueeze(x[0], 1) * x[1]; }, {{{3, 4}}, {{3, 2, 4}}}); }
BOOST_AUTO_TEST_CASE(squeeze_op) { check("squeeze", [](auto& x) { return squeeze(x[0], 1) * x[1]; }, {{{3, 1, 4}}, {{3, 4}}}); }
BOOST_AUTO_TEST_CASE(transpose_op) {
  check("transpose", [](auto& x) { return transpose(x[0], 0, 1) * x[1]; }, {{{3, 4}}, {{4, 3}}});
  check("transpose 3d", [](auto& x) { return transpose(x[0], -1, 0) * 1.5; }, {{{2, 3, 4}}});
}
BOOST_AUTO_TEST_CASE(permute_op) { check("permute", [](auto& x) { return permute(x[0], {2, 0, 1}) * x[1]; }, {{{2, 3, 4}}, {{4, 2, 3}}}); }
BOOST_AUTO_TEST_CASE(split_and_merge_heads_ops) {
  // q, k, v from one fused [B, T, 3 D] array (D = 2 heads of 3), a GQA-like split, and the merge;
  // multiplied by other inputs so that every output element has its own gradient
  check("split_heads qkv", [](auto& x) {
    return split_heads(x[0], 2, 3, 0) * x[1] + split_heads(x[0], 2, 3, 6) * 2.0 - split_heads(x[0], 2, 3, 12) * x[1];
  }, {{{2, 4, 18}}, {{2, 2, 4, 3}}});
  check("split_heads offset", [](auto& x) { return split_heads(x[0], 1, 2, 3) * x[1]; }, {{{3, 2, 7}}, {{3, 1, 2, 2}}});
  check("merge_heads", [](auto& x) { return merge_heads(x[0]) * x[1]; }, {{{2, 3, 4, 2}}, {{2, 4, 6}}});
  check("merge_heads of split_heads", [](auto& x) { return merge_heads(split_heads(x[0], 3, 2, 1) * x[1]); },
        {{{2, 5, 8}}, {{2, 3, 5, 2}}});
}
BOOST_AUTO_TEST_CASE(slice_op) {
  check("slice", [](auto& x) { return slice(x[0], 1, 1, 4) * 2.0; }, {{{3, 5}}});
  check("slice step", [](auto& x) { return slice(x[0], -1, -4, 5, 2) * 2.0; }, {{{2, 3, 6}}});
  check("slice axis 0", [](auto& x) { return slice(x[0], 0, 0, 1) * 3.0; }, {{{3, 4}}});
}
BOOST_AUTO_TEST_CASE(select_op) {
  check("select", [](auto& x) { return select(x[0], 1, 2) * x[1]; }, {{{2, 4, 3}}, {{2, 3}}});
  check("select negative", [](auto& x) { return select(x[0], 0, -1) * 2.0; }, {{{3, 4}}});
}
BOOST_AUTO_TEST_CASE(concat_op) {
  for (int axis : {0, 1, -1})
    check("concat", [&](auto& x) { return concat({x[0], x[1], x[0]}, axis) * 1.5; }, {{{2, 3, 2}}, {{2, 3, 2}}});
  check("concat uneven", [](auto& x) { return concat({x[0], x[1]}, 1) * 1.5; }, {{{2, 1, 3}}, {{2, 4, 3}}});
}
BOOST_AUTO_TEST_CASE(stack_op) {
  for (int axis : {0, 1, 2})
    check("stack", [&](auto& x) { return stack({x[0], x[1], x[0]}, axis) * 1.5; }, {{{2, 3}}, {{2, 3}}});
}
BOOST_AUTO_TEST_CASE(expand_op) {
  check("expand", [](auto& x) { return expand(x[0], {2, 3, 4}) * x[1]; }, {{{3, 1}}, {{2, 3, 4}}});
}

// ---- matmul ----------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(matmul_op) {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {4, 5}},       {{2, 3, 4}, {4, 5}},    {{2, 3, 4}, {2, 4, 5}}, {{2, 1, 3, 4}, {3, 4, 2}},
      {{3, 4}, {2, 4, 5}},    {{4}, {4, 5}},          {{3, 4}, {4}},          {{4}, {4}},
      {{1, 1}, {1, 1}},       {{2, 3, 4}, {1, 4, 2}}};
  for (const auto& [sa, sb] : pairs) check("matmul", [](auto& x) { return matmul(x[0], x[1]); }, {{sa}, {sb}});
}

BOOST_AUTO_TEST_CASE(linear_op) {
  check("linear", [](auto& x) { return linear(x[0], x[1], x[2]); }, {{{5, 4}}, {{3, 4}}, {{3}}});
  check("linear 3d", [](auto& x) { return linear(x[0], x[1], x[2]); }, {{{2, 3, 4}}, {{6, 4}}, {{6}}});
  check("linear no bias", [](auto& x) { return linear(x[0], x[1], Tensor()); }, {{{2, 4}}, {{3, 4}}});
  check("linear vector", [](auto& x) { return linear(x[0], x[1], x[2]); }, {{{4}}, {{3, 4}}, {{3}}});
}

// ---- neural-network ops ----------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(softmax_op) {
  for (int axis : {-1, 0, 1}) check("softmax", [&](auto& x) { return softmax(x[0], axis); }, {{{3, 4, 5}, -3, 3}});
  check("softmax 1d", [](auto& x) { return softmax(x[0]); }, {{{6}}});
}
BOOST_AUTO_TEST_CASE(log_softmax_op) {
  for (int axis : {-1, 0, 1}) check("log_softmax", [&](auto& x) { return log_softmax(x[0], axis); }, {{{3, 4, 5}, -3, 3}});
}
BOOST_AUTO_TEST_CASE(layer_norm_op) {
  check("layer_norm affine", [](auto& x) { return layer_norm(x[0], x[1], x[2]); }, {{{2, 3, 8}, -2, 2}, {{8}}, {{8}}});
  check("layer_norm plain", [](auto& x) { return layer_norm(x[0], Tensor(), Tensor()); }, {{{5, 16}, -2, 2}});
  check("layer_norm weight only", [](auto& x) { return layer_norm(x[0], x[1], Tensor()); }, {{{4, 6}}, {{6}}});
}
BOOST_AUTO_TEST_CASE(embedding_op) {
  const Indices ids({0, 2, 5, 2, 2, 1}, {2, 3});  // repeated ids: the scatter-add must sum
  check("embedding", [&](auto& x) { return embedding(x[0], ids); }, {{{6, 4}}});
  // padding_idx: row 2 gets no gradient (PyTorch's padding_idx), the other rows theirs
  Generator gen(3);
  Tensor w = randn({6, 4}, gen, {f64, true});
  sum(embedding(w, ids, 2) * 2.0).backward();
  const std::vector<double> g = w.grad().to_vector();
  for (std::size_t j = 0; j < 4; ++j) BOOST_TEST(g[2 * 4 + j] == 0.0);   // padding row: nothing
  for (std::size_t j = 0; j < 4; ++j) BOOST_TEST(g[0 * 4 + j] == 2.0);   // id 0 once
  w.zero_grad();
  sum(embedding(w, ids, -4)).backward();  // -4 counts from the end: row 2 again
  BOOST_TEST(w.grad().to_vector()[2 * 4] == 0.0);
}
BOOST_AUTO_TEST_CASE(dropout_op) {
  // A fresh generator with the same seed on every call: the same mask each time.
  check("dropout", [](auto& x) { Generator g(11); return dropout(x[0], 0.3, true, g); }, {{{4, 5}}});
}
BOOST_AUTO_TEST_CASE(cross_entropy_op) {
  const Indices t({0, 3, 6, 1, 2});
  check("cross_entropy mean", [&](auto& x) { return cross_entropy(x[0], t); }, {{{5, 7}, -3, 3}});
  check("cross_entropy sum", [&](auto& x) { return cross_entropy(x[0], t, {.reduction = Reduction::sum}); }, {{{5, 7}, -3, 3}});
  check("cross_entropy none", [&](auto& x) { return cross_entropy(x[0], t, {.reduction = Reduction::none}); }, {{{5, 7}, -3, 3}});
  const Indices padded({0, -100, 6, -100, 2});
  check("cross_entropy ignore", [&](auto& x) { return cross_entropy(x[0], padded); }, {{{5, 7}, -3, 3}});
  const Indices seq({1, 0, 3, 2, 2, 1}, {2, 3});
  check("cross_entropy 3d", [&](auto& x) { return cross_entropy(x[0], seq); }, {{{2, 3, 4}, -3, 3}});
  // label smoothing and class weights, with every reduction and ignored targets
  const Tensor w = tensor({1.0, 2.0, 0.5, 1.5, 1.0, 0.25, 3.0}, {7}, {f64});
  for (auto red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    check("cross_entropy label_smoothing", [&](auto& x) { return cross_entropy(x[0], padded, {.reduction = red, .label_smoothing = 0.1}); },
          {{{5, 7}, -3, 3}});
    check("cross_entropy weight", [&](auto& x) { return cross_entropy(x[0], padded, {.reduction = red, .weight = w}); }, {{{5, 7}, -3, 3}});
    check("cross_entropy both", [&](auto& x) { return cross_entropy(x[0], t, {.reduction = red, .label_smoothing = 0.3, .weight = w}); },
          {{{5, 7}, -3, 3}});
  }
}
BOOST_AUTO_TEST_CASE(mse_loss_op) {
  for (auto red : {Reduction::mean, Reduction::sum, Reduction::none})
    check("mse_loss", [&](auto& x) { return mse_loss(x[0], x[1], red); }, {{{3, 4}}, {{3, 4}}});
}

// A composed expression: the whole chain through many ops at once.
BOOST_AUTO_TEST_CASE(composed_attention_like) {
  check("attention-like", [](auto& x) {
    Tensor scores = matmul(x[0], transpose(x[1], -2, -1)) * (1.0 / std::sqrt(4.0));
    return matmul(softmax(scores), x[2]);
  }, {{{2, 3, 4}}, {{2, 5, 4}}, {{2, 5, 4}}});
}

BOOST_AUTO_TEST_SUITE_END()
