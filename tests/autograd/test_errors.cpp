// Misuse: every case must throw ag::Error (not some other exception, not a crash) with a
// message that names the op and shows the shapes involved, so that a learner can find the
// mistake from the message alone.
#include <functional>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/expect_error.hpp"
#include "ag/ag.hpp"

namespace {

ag::Tensor t(const ag::Shape& shape, ag::Dtype d = ag::f32, bool requires_grad = false) {
  return ag::zeros(shape, {d, requires_grad});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(matmul_misaligned_exact_message) {
  auto a = t({32, 64}), b = t({32, 64});
  try {
    ag::matmul(a, b);
    BOOST_ERROR("matmul of [32,64] by [32,64] did not throw");
  } catch (const ag::Error& e) {
    BOOST_TEST_MESSAGE("ag::Error: " << e.what());
    BOOST_TEST(std::string(e.what()) == "matmul: shapes [32,64] and [32,64] do not align (64 != 32)");
  }
  expect_error([] { ag::matmul(t({2, 3, 4}), t({5, 6})); }, {"matmul", "[2,3,4]", "[5,6]", "4 != 5"});
  expect_error([] { ag::matmul(t({3}), t({4})); }, {"matmul", "[1,3]", "[4,1]"});  // vectors as [1,K] and [K,1]
  expect_error([] { ag::matmul(t({}), t({3})); }, {"matmul", "[]", "[3]"});
}

// The batch dims [2] and [3] do not broadcast: the message must show the operands' shapes,
// not just their batch dims.
BOOST_AUTO_TEST_CASE(matmul_batch_dims_that_do_not_broadcast) {
  expect_error([] { ag::matmul(t({2, 2, 3}), t({3, 3, 4})); }, {"matmul", "[2,2,3]", "[3,3,4]"});
}

BOOST_AUTO_TEST_CASE(binary_ops_with_non_broadcastable_shapes) {
  expect_error([] { ag::add(t({2, 3}), t({4})); }, {"add", "[2,3]", "[4]", "broadcast"});
  expect_error([] { ag::mul(t({2, 3}), t({3, 2})); }, {"mul", "[2,3]", "[3,2]"});
  expect_error([] { ag::sub(t({5}), t({4})); }, {"sub", "[5]", "[4]"});
  expect_error([] { ag::div(t({5}), t({4})); }, {"div", "[5]", "[4]"});
  expect_error([] { ag::where(t({3}), t({2}), t({2})); }, {"where", "[3]", "[2]"});
}

BOOST_AUTO_TEST_CASE(dtype_mismatch) {
  expect_error([] { ag::add(t({2}), t({2}, ag::f64)); }, {"add", "[2]", "float32", "float64"});
  expect_error([] { ag::matmul(t({2, 2}), t({2, 2}, ag::f64)); }, {"matmul", "[2,2]", "float32", "float64"});
  expect_error([] { ag::concat({t({2}), t({2}, ag::f64)}, 0); }, {"concat", "float32", "float64"});
  expect_error([] { t({2}).data<double>(); }, {"float32", "float64"});  // wrong typed access
  expect_error([] { t({2}, ag::f32, true).backward(t({2}, ag::f64)); }, {"backward", "[2]", "float64"});
}

BOOST_AUTO_TEST_CASE(axis_out_of_range) {
  expect_error([] { ag::sum(t({2, 3}), {2}); }, {"sum", "axis 2", "2 dimensions"});
  expect_error([] { ag::sum(t({2, 3}), {-3}); }, {"sum", "axis -3"});
  expect_error([] { ag::sum(t({2, 3}), {1, -1}); }, {"sum", "twice", "[2,3]"});
  expect_error([] { ag::softmax(t({4, 5}), 2); }, {"softmax", "axis 2"});
  expect_error([] { ag::transpose(t({4, 5}), 0, 2); }, {"transpose", "axis 2"});
  expect_error([] { ag::max(t({4}), 1); }, {"max", "axis 1", "1 dimension"});
}

// error.hpp promises "the shapes involved"; an axis error only gives the number of dimensions.
BOOST_AUTO_TEST_CASE(axis_out_of_range_messages_name_the_shape) {
  expect_error([] { ag::sum(t({2, 3}), {2}); }, {"sum", "[2,3]"});
  expect_error([] { ag::softmax(t({4, 5}), 2); }, {"softmax", "[4,5]"});
  expect_error([] { ag::transpose(t({4, 5}), 0, 2); }, {"transpose", "[4,5]"});
}

BOOST_AUTO_TEST_CASE(reshape_to_wrong_size) {
  expect_error([] { ag::reshape(t({2, 3}), {4}); }, {"reshape", "[2,3]", "[4]", "6 elements"});
  expect_error([] { ag::reshape(t({2, 3}), {4, -1}); }, {"reshape", "[2,3]", "-1"});
  expect_error([] { ag::reshape(t({2, 3}), {-2, -3}); }, {"reshape", "[2,3]", "negative"});
}

BOOST_AUTO_TEST_CASE(reshape_with_two_inferred_sizes) {
  expect_error([] { ag::reshape(t({2, 3}), {-1, -1}); }, {"reshape", "only one -1", "[2,3]"});
}

BOOST_AUTO_TEST_CASE(split_and_merge_heads_bad_shapes) {
  expect_error([] { ag::split_heads(t({2, 3}), 1, 3); }, {"split_heads", "[2,3]"});
  expect_error([] { ag::split_heads(t({2, 3, 12}), 2, 4, 8); }, {"split_heads", "2 heads of width 4", "from feature 8", "16", "[2,3,12]"});
  expect_error([] { ag::split_heads(t({2, 3, 12}), 0, 4); }, {"split_heads", "at least 1", "[2,3,12]"});
  expect_error([] { ag::merge_heads(t({2, 3, 4})); }, {"merge_heads", "[2,3,4]"});
}

BOOST_AUTO_TEST_CASE(select_index_out_of_range) {
  expect_error([] { ag::select(t({2, 3}), 0, 2); }, {"select", "index 2", "[2,3]"});
  expect_error([] { ag::select(t({2, 3}), 1, -4); }, {"select", "index -4", "[2,3]"});
}

BOOST_AUTO_TEST_CASE(concat_mismatched_shapes) {
  expect_error([] { ag::concat({t({2, 3}), t({3, 4})}, 0); }, {"concat", "[2,3]", "[3,4]"});
  expect_error([] { ag::concat({t({2, 3}), t({2, 3, 1})}, 1); }, {"concat", "[2,3]", "[2,3,1]"});
  expect_error([] { ag::concat({}, 0); }, {"concat"});
}

BOOST_AUTO_TEST_CASE(stack_mismatched_shapes) {
  expect_error([] { ag::stack({t({2, 3}), t({2, 4})}, 0); }, {"stack", "[2,3]", "[2,4]"});
  expect_error([] { ag::stack({}, 0); }, {"stack"});
}

BOOST_AUTO_TEST_CASE(embedding_index_out_of_range) {
  expect_error([] { ag::embedding(t({10, 4}), ag::Indices({3, 10})); }, {"embedding", "index 10", "[10,4]"});
  expect_error([] { ag::embedding(t({10, 4}), ag::Indices({-1})); }, {"embedding", "index -1", "[10,4]"});
  expect_error([] { ag::embedding(t({10}), ag::Indices({1})); }, {"embedding", "[10]"});
}

BOOST_AUTO_TEST_CASE(cross_entropy_target_out_of_range) {
  expect_error([] { ag::cross_entropy(t({2, 3}), ag::Indices({0, 3})); }, {"cross_entropy", "target 3", "[2,3]"});
  expect_error([] { ag::cross_entropy(t({2, 3}), ag::Indices({-1, 0})); }, {"cross_entropy", "target -1", "[2,3]"});
}

BOOST_AUTO_TEST_CASE(cross_entropy_targets_shape_mismatch) {
  expect_error([] { ag::cross_entropy(t({2, 3}), ag::Indices({0, 1, 2})); }, {"cross_entropy", "[3]", "[2,3]"});
  expect_error([] { ag::cross_entropy(t({2, 4, 3}), ag::Indices({0, 1, 2, 0}, {4, 1})); },
               {"cross_entropy", "[4,1]", "[2,4,3]", "[2,4]"});
}

BOOST_AUTO_TEST_CASE(layer_norm_weight_wrong_shape) {
  expect_error([] { ag::layer_norm(t({2, 4}), t({3}), t({4})); }, {"layer_norm", "weight", "[3]", "[2,4]"});
  expect_error([] { ag::layer_norm(t({2, 4}), t({4}), t({1, 4})); }, {"layer_norm", "bias", "[1,4]", "[2,4]"});
}

BOOST_AUTO_TEST_CASE(mse_loss_shape_mismatch) {
  expect_error([] { ag::mse_loss(t({4, 1}), t({4})); }, {"mse_loss", "[4,1]", "[4]"});
}

BOOST_AUTO_TEST_CASE(item_on_a_non_scalar) {
  expect_error([] { t({2, 3}).item(); }, {"item", "[2,3]"});
  expect_error([] { t({2}).flat(2); }, {"flat", "[2]"});
}

BOOST_AUTO_TEST_CASE(backward_on_a_non_scalar_without_grad_output) {
  expect_error([] { ag::mul(t({2, 3}, ag::f32, true), 2.0).backward(); }, {"backward", "[2,3]", "grad_output"});
  expect_error([] { ag::mul(t({2, 3}, ag::f32, true), 2.0).backward(t({3, 2})); }, {"backward", "[3,2]", "[2,3]"});
  expect_error([] { ag::mul(t({2}), 2.0).backward(t({2})); }, {"backward", "does not require grad"});
}

BOOST_AUTO_TEST_CASE(requires_grad_on_a_non_leaf) {
  expect_error([] { ag::mul(t({2}, ag::f32, true), 2.0).requires_grad_(); }, {"requires_grad_", "leaf", "mul_scalar"});
}

BOOST_AUTO_TEST_CASE(expand_to_an_incompatible_shape) {
  expect_error([] { ag::expand(t({3}), {2, 4}); }, {"expand", "[3]", "[2,4]"});
  expect_error([] { ag::expand(t({2, 3}), {3}); }, {"expand", "[2,3]", "[3]"});
}

BOOST_AUTO_TEST_CASE(squeeze_an_axis_that_is_not_one) {
  expect_error([] { ag::squeeze(t({2, 1}), 0); }, {"squeeze", "axis 0", "[2,1]"});
}

BOOST_AUTO_TEST_CASE(slice_with_step_zero) {
  expect_error([] { ag::slice(t({5, 2}), 0, 0, 5, 0); }, {"slice", "step", "[5,2]"});
}

BOOST_AUTO_TEST_CASE(dropout_probability_out_of_range) {
  ag::Generator gen(0);
  expect_error([&] { ag::dropout(t({4}), 1.5, true, gen); }, {"dropout", "1.5"});
  expect_error([&] { ag::dropout(t({4}), -0.1, false, gen); }, {"dropout", "-0.1"});
}

BOOST_AUTO_TEST_CASE(clamp_with_lo_above_hi) {
  expect_error([] { ag::clamp(t({3}), 2, 1); }, {"clamp", "lo", "hi"});
}

BOOST_AUTO_TEST_CASE(use_of_an_undefined_tensor) {
  expect_error([] { ag::add(ag::Tensor(), t({2})); }, {"add", "undefined"});
  expect_error([] { ag::tanh(ag::Tensor()); }, {"tanh", "undefined"});
  expect_error([] { ag::sum(ag::Tensor()); }, {"sum", "undefined"});
  expect_error([] { ag::Tensor().shape(); }, {"undefined"});
  expect_error([] { ag::Tensor().backward(); }, {"undefined"});
}

BOOST_AUTO_TEST_CASE(tensor_with_wrong_value_count) {
  expect_error([] { ag::tensor({1, 2, 3, 4, 5}, {2, 3}); }, {"tensor", "5 values", "[2,3]"});
}

BOOST_AUTO_TEST_CASE(indices_with_wrong_value_count) {
  expect_error([] { ag::Indices({1, 2, 3}, {2, 2}); }, {"Indices", "3 values", "[2,2]"});
}

BOOST_AUTO_TEST_CASE(backward_twice_through_a_freed_graph) {
  auto x = t({2}, ag::f32, true);
  auto y = ag::sum(ag::tanh(x));
  y.backward();
  expect_error([&] { y.backward(); }, {"backward", "sum", "[]", "retain_graph"});
}

BOOST_AUTO_TEST_CASE(other_shape_op_misuse) {
  expect_error([] { ag::permute(t({2, 3}), {0}); }, {"permute", "[2,3]"});
  expect_error([] { ag::permute(t({2, 3}), {1, 1}); }, {"permute", "repeated", "[2,3]"});
  expect_error([] { ag::flatten(t({2, 3, 4}), 2, 1); }, {"flatten", "[2,3,4]"});
  expect_error([] { ag::masked_fill(t({2, 3}), t({2, 3, 1}), 0.0); }, {"masked_fill", "[2,3]", "[2,3,1]"});
  expect_error([] { ag::mean(t({0})); }, {"mean", "[0]", "empty"});
  expect_error([] { ag::max(t({2, 0}), 1); }, {"max", "[2,0]", "empty"});
  expect_error([] { ag::arange(0, 1, 0); }, {"arange", "step"});
}

BOOST_AUTO_TEST_SUITE_END()
