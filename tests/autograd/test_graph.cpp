// Graph behaviour: accumulation, reuse, retain_graph, long chains, grad mode, retain_grad,
// detach / dtype conversion, to_dot, broadcasting in backward, and both dtypes.
#include <cmath>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/check_values.hpp"
#include "ag/ag.hpp"

namespace tt = boost::test_tools;

namespace {

ag::Tensor leaf(double v, ag::Dtype d = ag::f32) { return ag::scalar(v, {d, true}); }

std::size_t count_substr(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + what.size())) ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(graph)

// ---- basic derivatives ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(square_derivative_at_three_is_exactly_six) {
  auto x = leaf(3.0);
  auto y = x * x;
  y.backward();
  BOOST_TEST(y.item() == 9.0);
  BOOST_TEST(x.grad().item() == 6.0);  // exact: 3*1 + 3*1 in float
}

BOOST_AUTO_TEST_CASE(reused_subexpression_accumulates_to_four_x) {
  // y = x*x + x*x = 2x^2, dy/dx = 4x; once with two separate products, once with one reused node.
  auto x = leaf(3.0);
  (x * x + x * x).backward();
  BOOST_TEST(x.grad().item() == 12.0);

  auto z = leaf(3.0);
  auto s = z * z;
  (s + s).backward();
  BOOST_TEST(z.grad().item() == 12.0);
}

BOOST_AUTO_TEST_CASE(diamond_graph_matches_hand_derivative) {
  // a = 2x; b = a + 1; c = 3a; y = b*c = (2x+1)(6x) = 12x^2 + 6x  =>  dy/dx = 24x + 6.
  const double xv = 1.5;
  auto x = leaf(xv, ag::f64);
  auto a = x * 2.0;
  auto b = a + 1.0;
  auto c = a * 3.0;
  auto y = b * c;
  y.backward();
  BOOST_TEST(y.item() == 12 * xv * xv + 6 * xv, tt::tolerance(1e-12));
  BOOST_TEST(x.grad().item() == 24 * xv + 6, tt::tolerance(1e-12));  // 42
}

// ---- accumulation and retain_graph ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(gradients_accumulate_over_two_backward_calls_and_zero_grad_resets) {
  auto x = leaf(3.0);
  (x * x).backward();   // +6
  (x * 5.0).backward(); // +5 (a separate graph)
  BOOST_TEST(x.grad().item() == 11.0);

  x.zero_grad();
  BOOST_TEST(!x.has_grad());
  BOOST_TEST(!x.grad().defined());

  (x * x).backward();
  BOOST_TEST(x.grad().item() == 6.0);  // starts from zero again
}

BOOST_AUTO_TEST_CASE(second_backward_without_retain_graph_throws) {
  auto x = leaf(2.0);
  auto y = ag::tanh(x * x);
  y.backward();
  try {
    y.backward();
    BOOST_ERROR("the second backward() through a freed graph did not throw");
  } catch (const ag::Error& e) {
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(std::string(e.what()).find("retain_graph") != std::string::npos, "message: " << e.what());
  }
}

BOOST_AUTO_TEST_CASE(second_backward_with_retain_graph_doubles_the_gradient) {
  auto x = leaf(2.0, ag::f64);
  auto y = ag::tanh(x * x);
  y.backward(/*retain_graph=*/true);
  const double once = x.grad().item();
  BOOST_TEST(once == 4.0 * (1 - std::pow(std::tanh(4.0), 2)), tt::tolerance(1e-12));
  y.backward();
  BOOST_TEST(x.grad().item() == 2 * once, tt::tolerance(1e-12));
}

// ---- long chains: nothing may recurse per node ----------------------------------------------

BOOST_AUTO_TEST_CASE(chain_of_100k_multiplications_backwards_without_stack_overflow) {
  constexpr int kSteps = 100'000;
  const double k = 1.0000001;
  auto x = leaf(1.0, ag::f64);
  ag::Tensor y = x;
  for (int i = 0; i < kSteps; ++i) y = y * k;
  y.backward();
  const double expected = std::pow(k, kSteps);  // ~1.01005
  BOOST_TEST(y.item() == expected, tt::tolerance(1e-9));
  BOOST_TEST(x.grad().item() == expected, tt::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(chain_of_100k_additions_backwards_to_exactly_one) {
  auto x = leaf(0.5);
  ag::Tensor y = x;
  for (int i = 0; i < 100'000; ++i) y = y + 0.0;
  y.backward();
  BOOST_TEST(x.grad().item() == 1.0);
}

BOOST_AUTO_TEST_CASE(chain_of_100k_ops_destroyed_without_backward) {
  auto x = leaf(1.0);
  {
    ag::Tensor y = x;
    for (int i = 0; i < 100'000; ++i) y = y * 1.0000001;
    BOOST_TEST(y.requires_grad());
  }  // the whole chain is released here; the node destructor must not recurse
  {  // the same after a backward that kept the graph alive
    ag::Tensor y = x;
    for (int i = 0; i < 100'000; ++i) y = y + 0.0;
    y.backward(/*retain_graph=*/true);
  }
  BOOST_TEST(x.grad().item() == 1.0);
}

// ---- grad mode -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(no_grad_builds_no_graph_and_restores_the_mode) {
  auto x = leaf(2.0);
  BOOST_TEST(ag::grad_enabled());
  {
    ag::NoGrad ng;
    BOOST_TEST(!ag::grad_enabled());
    auto y = x * x;
    BOOST_TEST(!y.requires_grad());
    BOOST_TEST(!y.is_leaf());                       // made by an op...
    BOOST_TEST(std::string(y.op_name()) == "mul");  // ...whose name is still recorded
    BOOST_TEST(y.item() == 4.0);
    BOOST_CHECK_THROW(y.backward(), ag::Error);     // nothing to differentiate
  }
  BOOST_TEST(ag::grad_enabled());
  auto z = x * x;
  BOOST_TEST(z.requires_grad());
}

BOOST_AUTO_TEST_CASE(nested_no_grad_guards_restore_the_outer_mode) {
  {
    ag::NoGrad outer;
    {
      ag::NoGrad inner;
      BOOST_TEST(!ag::grad_enabled());
    }
    BOOST_TEST(!ag::grad_enabled());  // still inside the outer guard
  }
  BOOST_TEST(ag::grad_enabled());

  ag::set_grad_enabled(false);
  {
    ag::NoGrad ng;
  }
  BOOST_TEST(!ag::grad_enabled());  // restored to the mode before the guard, not to "on"
  ag::set_grad_enabled(true);
  BOOST_TEST(ag::grad_enabled());
}

// ---- retain_grad ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(retain_grad_keeps_a_non_leaf_gradient_others_are_dropped) {
  // h = 2x, m = h*h, y = 3m: dy/dm = 3, dy/dh = 6h = 12x, dy/dx = 24x.
  auto x = leaf(1.5);
  auto h = x * 2.0;
  h.retain_grad();
  auto m = h * h;
  auto y = m * 3.0;
  y.backward();
  BOOST_TEST(h.has_grad());
  BOOST_TEST(h.grad().item() == 18.0, tt::tolerance(1e-6));
  BOOST_TEST(!m.has_grad());  // not retained: dropped after backward
  BOOST_TEST(!y.has_grad());  // the root is a non-leaf too
  BOOST_TEST(x.grad().item() == 36.0, tt::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(retained_grad_is_not_fed_back_into_a_second_backward) {
  // y = x*x at x = 3, h = y retained. Two backward passes with retain_graph: x.grad must be
  // 6 + 6 = 12 and y.grad 1 + 1 = 2 (as PyTorch). The retained gradient of the first pass
  // must not be propagated again in the second.
  auto x = leaf(3.0);
  auto y = x * x;
  y.retain_grad();
  y.backward(/*retain_graph=*/true);
  BOOST_TEST(y.grad().item() == 1.0);
  BOOST_TEST(x.grad().item() == 6.0);
  y.backward();
  BOOST_TEST(y.grad().item() == 2.0);
  BOOST_TEST(x.grad().item() == 12.0);

  // the same with a retained intermediate: z = 2h, h = x*x
  auto a = leaf(3.0);
  auto h = a * a;
  h.retain_grad();
  auto z = h * 2.0;
  z.backward(/*retain_graph=*/true);
  z.backward();
  BOOST_TEST(h.grad().item() == 4.0);   // 2 + 2
  BOOST_TEST(a.grad().item() == 24.0);  // 12 + 12
}

// reshape and add hand their output's gradient on without a copy when nothing keeps it; kept
// (retain_grad) or added to a gradient the input already has, the results must not change.
BOOST_AUTO_TEST_CASE(add_passes_its_gradient_on_kept_or_accumulated) {
  auto a = ag::tensor({1, 2, 3}, {3}, {ag::f64, true});
  auto b = ag::tensor({10, 20, 30}, {3}, {ag::f64, true});
  {  // y = a + b, L = sum(y * y): dL/da = dL/db = 2y
    auto y = a + b;
    y.retain_grad();
    ag::sum(y * y).backward();
    check_values(y.grad().to_vector(), {22, 44, 66});
    check_values(a.grad().to_vector(), {22, 44, 66});
    check_values(b.grad().to_vector(), {22, 44, 66});
  }
  a.zero_grad();
  {  // a + a, and b broadcast from [1]: d/da sum((a + a) * 3) = 6; d/dc sum(a + c) = 3
    auto c = ag::tensor({5}, {1}, {ag::f64, true});
    (ag::sum((a + a) * 3.0) + ag::sum(a + c)).backward();
    check_values(a.grad().to_vector(), {7, 7, 7});
    check_values(c.grad().to_vector(), {3});
  }
}

BOOST_AUTO_TEST_CASE(reshape_passes_its_gradient_on_kept_or_accumulated) {
  auto x = ag::tensor({1, 2, 3, 4, 5, 6}, {2, 3}, {ag::f64, true});
  {  // moved: d/dx sum(reshape(x)^2) = 2x
    auto y = ag::reshape(x, {3, 2});
    ag::sum(y * y).backward();
    check_values(x.grad().to_vector(), {2, 4, 6, 8, 10, 12});
    BOOST_TEST(ag::shape_str(x.grad().shape()) == "[2,3]");
  }
  x.zero_grad();
  {  // retained: y keeps its gradient, x gets the same values in its own shape
    auto y = ag::reshape(x, {6});
    y.retain_grad();
    ag::sum(y * y).backward();
    check_values(y.grad().to_vector(), {2, 4, 6, 8, 10, 12});
    check_values(x.grad().to_vector(), {2, 4, 6, 8, 10, 12});
  }
  x.zero_grad();
  {  // accumulated: x also reaches the loss directly (3x from 1.5 x^2), and through two reshapes
    auto y = ag::reshape(ag::reshape(x, {3, 2}), {6});
    (ag::sum(y * y) + ag::sum(x * x * 1.5)).backward();
    check_values(x.grad().to_vector(), {5, 10, 15, 20, 25, 30});
  }
}

// ---- non-scalar outputs --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(backward_with_grad_output_on_a_non_scalar) {
  auto x = ag::tensor({1, 2, 3}, {3}, {ag::f32, true});
  auto y = x * x;  // dy_i/dx_i = 2 x_i
  y.backward(ag::tensor({1, 10, 100}, {3}));
  check_values(x.grad().to_vector(), {2, 40, 600});
}

BOOST_AUTO_TEST_CASE(backward_without_grad_output_on_a_non_scalar_throws) {
  auto x = ag::tensor({1, 2, 3}, {3}, {ag::f32, true});
  BOOST_CHECK_THROW((x * x).backward(), ag::Error);
  // a one-element tensor of any rank is fine
  auto w = ag::tensor({2}, {1, 1}, {ag::f32, true});
  (w * w).backward();
  BOOST_TEST(w.grad().item() == 4.0);
}

// ---- detach and dtype conversion -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(detach_cuts_the_graph) {
  auto x = leaf(3.0);
  auto d = (x * 2.0).detach();
  BOOST_TEST(!d.requires_grad());
  BOOST_TEST(d.is_leaf());
  BOOST_TEST(d.item() == 6.0);
  auto y = x * d;  // d is a constant here: dy/dx = d = 6
  y.backward();
  BOOST_TEST(x.grad().item() == 6.0);
}

BOOST_AUTO_TEST_CASE(conversion_to_float64_is_differentiable) {
  auto x = ag::tensor({1, -2}, {2}, {ag::f32, true});
  auto xd = x.to(ag::f64);
  BOOST_TEST((xd.dtype() == ag::f64));
  BOOST_TEST(xd.requires_grad());
  BOOST_TEST(std::string(xd.op_name()) == "to");
  auto y = ag::sum(xd * xd * 3.0);  // dy/dx = 6x
  BOOST_TEST((y.dtype() == ag::f64));
  y.backward();
  BOOST_TEST((x.grad().dtype() == ag::f32));  // flows back as float32
  check_values(x.grad().to_vector(), {6, -12});
  // same-dtype conversion is the identity
  BOOST_TEST(x.to(ag::f32).node() == x.node());
}

// ---- to_dot --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(to_dot_shows_ops_and_one_edge_per_input) {
  auto a = ag::tensor({1, 2}, {2}, {ag::f32, true});
  auto b = ag::tensor({3, 4}, {2});
  a.set_label("a");
  auto m = a * b;          // edges: a -> mul, b -> mul
  auto t = ag::tanh(m);    // mul -> tanh
  auto y = ag::sum(t + a); // tanh -> add, a -> add, add -> sum
  const std::string dot = ag::to_dot(y);
  BOOST_TEST_MESSAGE(dot);
  BOOST_TEST(dot.find("digraph") != std::string::npos);
  BOOST_TEST(dot.find("mul") != std::string::npos);
  BOOST_TEST(dot.find("tanh") != std::string::npos);
  BOOST_TEST(dot.find("add") != std::string::npos);
  BOOST_TEST(dot.find("sum") != std::string::npos);
  BOOST_TEST(dot.find("\"a") != std::string::npos);  // the label
  BOOST_TEST(count_substr(dot, "->") == 6u);
}

// ---- broadcasting in backward --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(broadcast_add_unbroadcasts_gradients_to_input_shapes) {
  auto x = ag::zeros({3, 1}, {ag::f32, true});
  auto y = ag::zeros({1, 4}, {ag::f32, true});
  auto z = x + y;
  BOOST_TEST(ag::shape_str(z.shape()) == "[3,4]");
  ag::sum(z).backward();
  BOOST_TEST(ag::shape_str(x.grad().shape()) == "[3,1]");
  BOOST_TEST(ag::shape_str(y.grad().shape()) == "[1,4]");
  check_values(x.grad().to_vector(), {4, 4, 4});
  check_values(y.grad().to_vector(), {3, 3, 3, 3});
}

BOOST_AUTO_TEST_CASE(bias_added_to_a_batch_gets_summed_gradient) {
  auto x = ag::ones({2, 3, 4}, {ag::f32, true});
  auto bias = ag::zeros({4}, {ag::f32, true});
  ag::sum(x + bias).backward();
  BOOST_TEST(ag::shape_str(bias.grad().shape()) == "[4]");
  check_values(bias.grad().to_vector(), {6, 6, 6, 6});
  check_values(x.grad().to_vector(), std::vector<double>(24, 1.0));
}

BOOST_AUTO_TEST_CASE(broadcast_mul_unbroadcasts_with_values) {
  // z = x[3,1] * y[1,2]; dL/dx_i = sum_j y_j, dL/dy_j = sum_i x_i
  auto x = ag::tensor({1, 2, 3}, {3, 1}, {ag::f64, true});
  auto y = ag::tensor({10, 20}, {1, 2}, {ag::f64, true});
  ag::sum(x * y).backward();
  check_values(x.grad().to_vector(), {30, 30, 30});
  check_values(y.grad().to_vector(), {6, 6});
}

// ---- dtypes --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(float32_and_float64_both_work) {
  for (ag::Dtype d : {ag::f32, ag::f64}) {
    BOOST_TEST_CONTEXT("dtype " << ag::dtype_name(d)) {
      auto x = ag::tensor({0.5, -1.0, 2.0}, {3}, {d, true});
      auto c = ag::tensor({2, 2, 2}, {3}, {d, false});
      auto y = ag::sum(ag::exp(x) * c + ag::tanh(x) - x / c);
      BOOST_TEST((y.dtype() == d));
      BOOST_TEST(y.requires_grad());
      y.backward();
      BOOST_TEST((x.grad().dtype() == d));
      // dy/dx = 2 exp(x) + (1 - tanh^2 x) - 1/2
      std::vector<double> want;
      for (double v : {0.5, -1.0, 2.0}) want.push_back(2 * std::exp(v) + 1 - std::pow(std::tanh(v), 2) - 0.5);
      check_values(x.grad().to_vector(), want, d == ag::f32 ? 1e-5 : 1e-12);
      BOOST_TEST(!c.has_grad());  // constants get no gradient

      auto k = ag::exp(c);  // only constants: no graph
      BOOST_TEST((k.dtype() == d));
      BOOST_TEST(!k.requires_grad());
      auto m = ag::matmul(ag::reshape(x, {1, 3}), ag::reshape(c, {3, 1}));
      BOOST_TEST((m.dtype() == d));
      BOOST_TEST(m.requires_grad());
    }
  }
}

// ag/array_config.hpp: data and gradients start on a 64-byte boundary, whatever their size.
BOOST_AUTO_TEST_CASE(arrays_are_cache_line_aligned) {
  auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % ag::kArrayAlignment == 0; };
  ag::Generator gen(1);
  for (std::size_t n : {1, 3, 17, 1000, 1 << 20}) {
    ag::Tensor x = ag::randn({n}, gen, {.requires_grad = true});
    ag::Tensor y = ag::tanh(x) * 2.0;
    ag::sum(y).backward();
    BOOST_TEST(aligned(x.data<float>().data()), "data of " << n);
    BOOST_TEST(aligned(y.data<float>().data()), "op output of " << n);
    BOOST_TEST(aligned(x.grad_array()->ptr<float>()), "gradient of " << n);
    BOOST_TEST(aligned(ag::zeros({n, 3}, {ag::f64}).data<double>().data()), "float64 of " << n);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(anomaly)

// log(0) = -inf forward; its backward 1/x = inf. Anomaly mode names 'log' and its shapes.
BOOST_AUTO_TEST_CASE(names_log_for_a_nan_from_log_of_zero) {
  ag::Tensor x = ag::tensor({1.0, 0.0, 2.0}, {3}, {.requires_grad = true});
  ag::Tensor y = ag::sum(ag::log(x) * 2.0);
  {
    ag::DetectAnomaly guard;
    try {
      ag::Tensor(y).backward(true);
      BOOST_FAIL("expected an anomaly error");
    } catch (const ag::Error& e) {
      const std::string m = e.what();
      BOOST_TEST_MESSAGE(m);
      BOOST_TEST(m.find("backward of 'log'") != std::string::npos, m);
      BOOST_TEST(m.find("[3]") != std::string::npos, m);
    }
  }
  BOOST_TEST(!ag::anomaly_detection_enabled());
  x.zero_grad();
  y.backward();  // without anomaly mode the Inf simply flows into x.grad
  BOOST_TEST(std::isinf(x.grad().flat(1)));
}

BOOST_AUTO_TEST_CASE(quiet_on_finite_gradients) {
  ag::DetectAnomaly guard;
  ag::Tensor x = ag::tensor({1.0, 3.0}, {2}, {.requires_grad = true});
  ag::sum(ag::log(x)).backward();
  BOOST_TEST(x.grad().flat(1) == 1.0 / 3.0, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_SUITE_END()
