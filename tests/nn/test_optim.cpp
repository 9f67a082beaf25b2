// Optimizers, gradient clipping and schedules: known values worked out by hand, convergence on
// a least-squares problem, and the errors a learner can run into.
#include <cmath>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/expect_error.hpp"
#include "ag/ag.hpp"
#include "nn/optim.hpp"

namespace {

// One parameter p (a scalar, p0 = 1) and the loss L = p^2, so dL/dp = 2p.
// Takes three optimizer steps and returns p after each.
std::vector<double> three_steps_on_p_squared(ag::Dtype dtype,
                                             const std::function<std::unique_ptr<nn::Optimizer>(std::vector<ag::Tensor>)>& make) {
  ag::Tensor p = ag::scalar(1.0, {dtype, true});
  auto opt = make({p});
  std::vector<double> out;
  for (int k = 0; k < 3; ++k) {
    opt->zero_grad();
    (p * p).backward();
    opt->step();
    out.push_back(p.item());
  }
  BOOST_TEST(opt->steps() == 3);
  return out;
}

double tol(ag::Dtype d) { return d == ag::f32 ? 2e-6 : 1e-12; }

void check_values(const std::vector<double>& got, const std::vector<double>& want, ag::Dtype d) {
  BOOST_REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST_INFO("step " << i + 1 << " (" << ag::dtype_name(d) << "): got " << got[i] << ", want " << want[i]);
    BOOST_TEST(std::abs(got[i] - want[i]) <= tol(d));
  }
}

const ag::Dtype kDtypes[] = {ag::f32, ag::f64};

}  // namespace

BOOST_AUTO_TEST_SUITE(optim)

// ---- known values ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(adam_three_steps_by_hand) {
  // lr = 0.1, betas = (0.9, 0.999), eps = 1e-8, L = p^2, p0 = 1, g = 2p.
  // step 1: g = 2;            m = 0.1*2 = 0.2;                   v = 0.001*4 = 0.004
  //         mhat = 0.2/(1-0.9) = 2;  vhat = 0.004/(1-0.999) = 4
  //         p = 1 - 0.1 * 2/(sqrt(4) + 1e-8) = 1 - 0.1*(1 - 5e-9) = 0.9000000005
  // step 2: g = 1.800000001;  m = 0.9*0.2 + 0.1*g = 0.3600000001;  v = 0.999*0.004 + 0.001*g^2 = 0.0072360000036
  //         mhat = m/(1-0.81) = 1.8947368426315789;  vhat = v/(1-0.998001) = 3.6198099067534288
  //         p = 0.9000000005 - 0.1 * 1.8947368426/(1.9025797824 + 1e-8) = 0.80041222869179285
  // step 3: g = 1.6008244573835857;  m = 0.48408244582835847;  v = 0.0097914029469538602
  //         mhat = m/(1-0.729) = 1.7862820879275225;  vhat = v/(1-0.997002999) = 3.2670669602558902
  //         p = 0.80041222869 - 0.1 * 1.78628208793/(1.80750295 + 1e-8) = 0.70158627294603026
  for (auto d : kDtypes)
    check_values(three_steps_on_p_squared(d, [](auto ps) { return std::make_unique<nn::Adam>(ps, nn::AdamOptions{.lr = 0.1}); }),
                 {0.90000000049999995, 0.80041222869179285, 0.70158627294603026}, d);
}

BOOST_AUTO_TEST_CASE(adam_weight_decay_three_steps_by_hand) {
  // Adam's weight decay is an L2 term in the gradient: g = 2p + 0.1 p.  lr = 0.1, wd = 0.1.
  // step 1: g = 2 + 0.1 = 2.1;  m = 0.21;  v = 0.001*4.41 = 0.00441;  mhat = 2.1;  vhat = 4.41
  //         p = 1 - 0.1 * 2.1/(2.1 + 1e-8) = 0.90000000047619044
  // step 2: g = 2.1 * 0.9000000005 = 1.890000001;  m = 0.9*0.21 + 0.1*g = 0.3780000001
  //         v = 0.999*0.00441 + 0.001*g^2 = 0.00797769000378;  mhat = m/0.19 = 1.9894736847368422
  //         vhat = v/0.001999 = 3.9908404221011078;  p = 0.80041222864319539
  // step 3: g = 2.1 * 0.80041222864 = 1.6808656801507103;  mhat = 1.8755961922696349;
  //         vhat = 3.6019413235046436;  p = 0.80041222864 - 0.1 * mhat/(sqrt(vhat) + 1e-8) = 0.7015862728718214
  for (auto d : kDtypes)
    check_values(three_steps_on_p_squared(
                     d, [](auto ps) { return std::make_unique<nn::Adam>(ps, nn::AdamOptions{.lr = 0.1, .weight_decay = 0.1}); }),
                 {0.90000000047619044, 0.80041222864319539, 0.7015862728718214}, d);
}

BOOST_AUTO_TEST_CASE(adamw_three_steps_by_hand) {
  // AdamW decays the weight itself before the Adam step: p = p - lr*wd*p.  lr = 0.1, wd = 0.1.
  // step 1: g = 2 (from p = 1);  p = 1 - 0.01*1 = 0.99;  m = 0.2, v = 0.004, mhat = 2, vhat = 4
  //         p = 0.99 - 0.1 * 2/(2 + 1e-8) = 0.89000000049999994
  // step 2: g = 2 * 0.8900000005 = 1.780000001;  p = 0.8900000005 * 0.99 = 0.881100000495
  //         m = 0.9*0.2 + 0.1*g = 0.3580000001;  v = 0.999*0.004 + 0.001*g^2 = 0.00716440000356
  //         mhat = m/0.19 = 1.8842105268421052;  vhat = v/0.001999 = 3.583991997778941
  //         p = 0.881100000495 - 0.1 * mhat/(sqrt(vhat) + 1e-8) = 0.7815718559365048
  // step 3: g = 1.5631437118730096;  p = 0.78157185594 * 0.99;  mhat = 1.7657356873701142
  //         vhat = 3.2034203083431008;  p = 0.6751012216400698
  for (auto d : kDtypes)
    check_values(three_steps_on_p_squared(
                     d, [](auto ps) { return std::make_unique<nn::AdamW>(ps, nn::AdamWOptions{.lr = 0.1, .weight_decay = 0.1}); }),
                 {0.89000000049999994, 0.7815718559365048, 0.6751012216400698}, d);
}

// Parameter groups (PyTorch's param_groups with their own weight_decay): one AdamW over two
// groups updates each parameter exactly as a separate AdamW with that group's decay, indexes
// state across the groups in order, and says so in its hyperparameters.
BOOST_AUTO_TEST_CASE(adamw_param_groups_decay_each_group_by_its_own_rate) {
  ag::Generator gen(3);
  auto fresh = [&](const ag::Shape& s) { return ag::Tensor::from(ag::randn(s, gen).array(), true); };
  const ag::Tensor w0 = fresh({3, 4}), e0 = fresh({5, 3}), b0 = fresh({4}), g0 = fresh({3});  // 2 matrices, 2 vectors
  auto copy = [](const ag::Tensor& t) { return ag::Tensor::from(t.array(), true); };
  const ag::Tensor w = copy(w0), e = copy(e0), b = copy(b0), g = copy(g0);
  const ag::Tensor w2 = copy(w0), e2 = copy(e0), b2 = copy(b0), g2 = copy(g0);
  const std::vector<nn::ParamGroup> groups = nn::weight_decay_groups({w, b, e, g}, 0.1);
  BOOST_TEST_REQUIRE(groups.size() == 2u);
  BOOST_TEST(groups[0].params.size() == 2u);  // w, e: dims >= 2, decayed
  BOOST_TEST(groups[0].weight_decay == 0.1);
  BOOST_TEST(groups[1].weight_decay == 0.0);  // b, g
  nn::AdamW grouped(groups, {.lr = 0.05});
  nn::AdamW decayed({w2, e2}, {.lr = 0.05, .weight_decay = 0.1}), plain({b2, g2}, {.lr = 0.05, .weight_decay = 0.0});
  auto loss = [](const ag::Tensor& w, const ag::Tensor& e, const ag::Tensor& b, const ag::Tensor& g) {
    return ag::sum(ag::tanh(ag::matmul(ag::matmul(e, w) + b, ag::transpose(w, 0, 1)) + g));  // [5, 3]
  };
  for (int step = 0; step < 4; ++step) {
    grouped.zero_grad(), decayed.zero_grad(), plain.zero_grad();
    loss(w, e, b, g).backward();
    loss(w2, e2, b2, g2).backward();
    grouped.step(), decayed.step(), plain.step();
  }
  for (auto [a, want] : {std::pair{w, w2}, {e, e2}, {b, b2}, {g, g2}}) BOOST_TEST(a.to_vector() == want.to_vector());
  BOOST_TEST(w.to_vector() != w0.to_vector());
  // state indexed across the groups: w (0), e (1), b (2), g (3)
  for (const auto& [name, t] : grouped.state_dict())
    if (name == "state.1.exp_avg") BOOST_TEST(t.shape() == e.shape());
  const auto h = grouped.hyperparameters();
  BOOST_TEST(h.at("weight_decay") == "0.1,0");
  BOOST_TEST(h.at("param_groups") == "2,2");
  BOOST_TEST(plain.hyperparameters().count("param_groups") == 0u);  // one list of parameters: as before
  expect_error([] { nn::AdamW(std::vector<nn::ParamGroup>{}, {}); }, {"AdamW", "empty parameter list"});
  expect_error([&] { nn::AdamW({{{w}, -1.0}}, {}); }, {"AdamW", "weight_decay"});
}

BOOST_AUTO_TEST_CASE(sgd_plain_and_weight_decay_by_hand) {
  // plain: p = p - 0.1 * 2p = 0.8 p:  0.8, 0.64, 0.512
  for (auto d : kDtypes)
    check_values(three_steps_on_p_squared(d, [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1}); }),
                 {0.8, 0.64, 0.512}, d);
  // weight decay 0.5: g = 2p + 0.5p = 2.5p;  p = p - 0.1 * 2.5 p = 0.75 p:  0.75, 0.5625, 0.421875
  for (auto d : kDtypes)
    check_values(three_steps_on_p_squared(
                     d, [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1, .weight_decay = 0.5}); }),
                 {0.75, 0.5625, 0.421875}, d);
}

BOOST_AUTO_TEST_CASE(sgd_momentum_by_hand) {
  // lr = 0.1, momentum = 0.9 (PyTorch: buf = g on the first step, then buf = 0.9 buf + g; p -= lr buf)
  // step 1: g = 2;     buf = 2;                     p = 1 - 0.2 = 0.8
  // step 2: g = 1.6;   buf = 0.9*2 + 1.6 = 3.4;     p = 0.8 - 0.34 = 0.46
  // step 3: g = 0.92;  buf = 0.9*3.4 + 0.92 = 3.98; p = 0.46 - 0.398 = 0.062
  for (auto d : kDtypes)
    check_values(three_steps_on_p_squared(
                     d, [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1, .momentum = 0.9}); }),
                 {0.8, 0.46, 0.062}, d);
}

BOOST_AUTO_TEST_CASE(sgd_nesterov_by_hand) {
  // lr = 0.1, momentum = 0.9, nesterov: buf as above, then the step uses g + 0.9 buf
  // step 1: g = 2;       buf = 2;                          d = 2 + 1.8 = 3.8;          p = 1 - 0.38 = 0.62
  // step 2: g = 1.24;    buf = 1.8 + 1.24 = 3.04;          d = 1.24 + 2.736 = 3.976;   p = 0.62 - 0.3976 = 0.2224
  // step 3: g = 0.4448;  buf = 2.736 + 0.4448 = 3.1808;    d = 0.4448 + 2.86272 = 3.30752;
  //         p = 0.2224 - 0.330752 = -0.108352
  for (auto d : kDtypes)
    check_values(three_steps_on_p_squared(d,
                                          [](auto ps) {
                                            return std::make_unique<nn::SGD>(
                                                ps, nn::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
                                          }),
                 {0.62, 0.2224, -0.108352}, d);
}

// ---- convergence -------------------------------------------------------------------------

// min_w mean((X w - y)^2) with X [64, 5], y = X w* exactly: every optimizer must reach w*.
BOOST_AUTO_TEST_CASE(least_squares_converges_with_each_optimizer) {
  struct Case {
    const char* name;
    std::function<std::unique_ptr<nn::Optimizer>(std::vector<ag::Tensor>)> make;
    int steps;
    double w_tol;
  };
  const std::vector<Case> cases = {
      {"SGD", [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1}); }, 600, 1e-3},
      {"SGD momentum", [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.05, .momentum = 0.9}); }, 300, 1e-3},
      {"SGD nesterov",
       [](auto ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true}); }, 300, 1e-3},
      {"Adam", [](auto ps) { return std::make_unique<nn::Adam>(ps, nn::AdamOptions{.lr = 0.05}); }, 600, 1e-3},
      // a small decoupled decay pulls w slightly towards 0: the tolerance allows for it
      {"AdamW", [](auto ps) { return std::make_unique<nn::AdamW>(ps, nn::AdamWOptions{.lr = 0.05, .weight_decay = 1e-4}); }, 600, 1e-2},
  };
  for (auto dtype : kDtypes) {
    ag::Generator gen(7);
    const ag::Tensor x = ag::randn({64, 5}, gen, {dtype});
    const ag::Tensor w_true = ag::tensor({1.0, -2.0, 0.5, 3.0, -1.5}, {5, 1}, {dtype});
    const ag::Tensor y = ag::matmul(x, w_true).detach();
    for (const auto& c : cases) {
      ag::Tensor w = ag::zeros({5, 1}, {dtype, true});
      ag::Tensor b = ag::zeros({1}, {dtype, true});
      auto opt = c.make({w, b});
      double loss = 0;
      for (int k = 0; k < c.steps; ++k) {
        opt->zero_grad();
        ag::Tensor l = ag::mse_loss(ag::matmul(x, w) + b, y);
        l.backward();
        opt->step();
        loss = l.item();
      }
      BOOST_TEST_INFO(c.name << " (" << ag::dtype_name(dtype) << "): final loss " << loss);
      BOOST_TEST(loss < 1e-4);
      for (std::size_t i = 0; i < 5; ++i) {
        BOOST_TEST_INFO(c.name << " (" << ag::dtype_name(dtype) << "): w[" << i << "] = " << w.flat(i) << ", want "
                               << w_true.flat(i));
        BOOST_TEST(std::abs(w.flat(i) - w_true.flat(i)) < c.w_tol);
      }
    }
  }
}

// ---- state, skipping, lr -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parameters_without_grad_are_skipped) {
  for (auto d : kDtypes) {
    ag::Tensor used = ag::scalar(1.0, {d, true});
    ag::Tensor unused = ag::tensor({3.0, 4.0}, {2}, {d, true});
    nn::Adam adam({used, unused}, {.lr = 0.1});
    nn::SGD sgd({used, unused}, {.lr = 0.1, .momentum = 0.9});
    for (nn::Optimizer* opt : {static_cast<nn::Optimizer*>(&adam), static_cast<nn::Optimizer*>(&sgd)}) {
      opt->zero_grad();
      (used * used).backward();
      opt->step();
      BOOST_TEST(unused.flat(0) == 3.0);
      BOOST_TEST(unused.flat(1) == 4.0);
    }
    BOOST_TEST(used.item() < 1.0);
    BOOST_TEST(used.dtype() == d);
  }
  // A parameter that gets its first gradient late starts Adam at its own step 1: its first move
  // is lr * g / (|g| + eps) = lr (bias correction of a fresh m and v), whatever the optimizer's count.
  ag::Tensor a = ag::scalar(1.0, {ag::f64, true}), late = ag::scalar(5.0, {ag::f64, true});
  nn::Adam opt({a, late}, {.lr = 0.1});
  for (int k = 0; k < 4; ++k) {
    opt.zero_grad();
    (a * a).backward();
    opt.step();
  }
  opt.zero_grad();
  (late * 3.0).backward();  // g = 3
  opt.step();
  BOOST_TEST(std::abs(late.item() - (5.0 - 0.1 * 3.0 / (3.0 + 1e-8))) < 1e-12);
  BOOST_TEST(opt.steps() == 5);
}

BOOST_AUTO_TEST_CASE(set_lr_and_zero_grad) {
  ag::Tensor p = ag::scalar(1.0, {ag::f64, true});
  nn::SGD opt({p}, {.lr = 0.1});
  BOOST_TEST(opt.lr() == 0.1);
  opt.set_lr(0.25);
  BOOST_TEST(opt.lr() == 0.25);
  (p * p).backward();
  BOOST_TEST(p.has_grad());
  opt.step();  // p = 1 - 0.25 * 2 = 0.5
  BOOST_TEST(p.item() == 0.5);
  opt.zero_grad();
  BOOST_TEST(!p.has_grad());
  expect_error([&] { opt.set_lr(-1.0); }, {"SGD", "learning rate", "-1"});
  expect_error([&] { opt.set_lr(NAN); }, {"SGD", "learning rate"});
}

BOOST_AUTO_TEST_CASE(schedule_drives_optimizer) {
  ag::Tensor p = ag::scalar(0.0, {ag::f64, true});
  nn::SGD opt({p}, {.lr = 1.0});
  nn::CosineSchedule sched(1.0, 10, 2);
  std::vector<double> lrs;
  for (int k = 0; k < 10; ++k) {
    opt.zero_grad();
    (p * 1.0).backward();  // g = 1, so p falls by exactly lr each step
    opt.set_lr(sched.lr(opt.steps() + 1));
    lrs.push_back(opt.lr());
    opt.step();
  }
  double sum = 0;
  for (double lr : lrs) sum += lr;
  BOOST_TEST(std::abs(p.item() + sum) < 1e-12);
  BOOST_TEST(lrs[0] == 0.5);  // step 1 of a 2-step warmup
  BOOST_TEST(lrs[1] == 1.0);  // the peak at step == warmup
  BOOST_TEST(lrs[9] == 0.0);  // step 10 == total: min_lr
}

// ---- errors ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(optimizer_errors) {
  expect_error([] { nn::SGD({}, {.lr = 0.1}); }, {"SGD", "empty parameter list"});
  expect_error([] { nn::Adam({}); }, {"Adam", "empty parameter list"});
  expect_error([] { nn::AdamW({}); }, {"AdamW", "empty parameter list"});
  expect_error([] { nn::SGD({ag::Tensor()}, {}); }, {"SGD", "parameter 0", "undefined"});

  ag::Tensor p = ag::zeros({2, 3}, {ag::f32, true});
  expect_error([&] { nn::SGD({p, p}, {}); }, {"SGD", "parameter 1", "more than once"});
  ag::Tensor q = p * 2.0;
  expect_error([&] { nn::Adam({q}); }, {"Adam", "not a leaf"});

  // options out of range
  expect_error([&] { nn::SGD({p}, {.lr = -0.1}); }, {"SGD", "learning rate", "-0.1"});
  expect_error([&] { nn::SGD({p}, {.lr = 0.1, .momentum = -1}); }, {"SGD", "momentum"});
  expect_error([&] { nn::SGD({p}, {.lr = 0.1, .nesterov = true}); }, {"SGD", "nesterov", "momentum > 0"});
  expect_error([&] { nn::Adam({p}, {.betas = {1.0, 0.999}}); }, {"Adam", "beta1", "[0, 1)"});
  expect_error([&] { nn::Adam({p}, {.betas = {0.9, 1.5}}); }, {"Adam", "beta2", "1.5"});
  expect_error([&] { nn::AdamW({p}, {.eps = -1}); }, {"AdamW", "eps"});
  expect_error([&] { nn::AdamW({p}, {.weight_decay = NAN}); }, {"AdamW", "weight_decay"});

  // a parameter that does not require grad
  ag::Tensor frozen = ag::zeros({4}, {ag::f32, false});
  nn::SGD sgd({p, frozen}, {.lr = 0.1});
  expect_error([&] { sgd.step(); }, {"SGD.step", "parameter 1", "[4]", "does not require grad"});

  // a gradient whose shape or dtype differs from the data: nothing is updated
  ag::Tensor a = ag::ones({2, 3}, {ag::f32, true});
  ag::Tensor b = ag::ones({3}, {ag::f32, true});
  nn::Adam adam({a, b});
  a.grad_array() = ag::Array(ag::f32, {2, 3});
  a.grad_array()->fill(1.0);
  b.grad_array() = ag::Array(ag::f32, {4});
  expect_error([&] { adam.step(); }, {"Adam.step", "parameter 1", "shape [3]", "gradient has shape [4]"});
  BOOST_TEST(a.flat(0) == 1.0);  // parameter 0 was not touched either
  BOOST_TEST(adam.steps() == 0);
  b.grad_array() = ag::Array(ag::f64, {3});
  expect_error([&] { adam.step(); }, {"Adam.step", "parameter 1", "float32", "gradient is float64"});

  // the dtype changed after the state was made
  ag::Tensor c = ag::ones({2}, {ag::f32, true});
  nn::Adam adam2({c});
  (c * c).sum().backward();
  adam2.step();
  c.node()->data = c.array().to(ag::f64);
  c.zero_grad();
  (c * c).sum().backward();
  expect_error([&] { adam2.step(); }, {"Adam.step", "float64", "state", "float32"});
}

// ---- clip_grad_norm ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(clip_grad_norm_scales_to_max_norm) {
  for (auto d : kDtypes) {
    ag::Tensor a = ag::zeros({2}, {d, true}), b = ag::zeros({1}, {d, true}), none = ag::zeros({3}, {d, true});
    // gradients (3, 0) and (4): total norm sqrt(9 + 16) = 5
    ((a * ag::tensor({3.0, 0.0}, {2}, {d})).sum() + (b * 4.0).sum()).backward();
    const double norm = nn::clip_grad_norm({a, b, none}, 1.0);
    BOOST_TEST(std::abs(norm - 5.0) < 1e-6);
    // scaled by 1 / (5 + 1e-6): the new norm is 1 up to 1e-6
    const double ga = a.grad().flat(0), gb = b.grad().flat(0);
    BOOST_TEST(std::abs(ga - 3.0 / (5.0 + 1e-6)) < 1e-6);
    BOOST_TEST(std::abs(gb - 4.0 / (5.0 + 1e-6)) < 1e-6);
    BOOST_TEST(std::abs(std::sqrt(ga * ga + gb * gb) - 1.0) < 1e-6);
    BOOST_TEST(a.grad().flat(1) == 0.0);
    BOOST_TEST(!none.has_grad());

    // below max_norm: untouched, the norm is still returned
    const double norm2 = nn::clip_grad_norm({a, b, none}, 10.0);
    BOOST_TEST(std::abs(norm2 - 1.0) < 1e-6);
    BOOST_TEST(a.grad().flat(0) == ga);
    BOOST_TEST(b.grad().flat(0) == gb);
  }
  // no gradients at all: norm 0
  ag::Tensor p = ag::zeros({2}, {ag::f32, true});
  BOOST_TEST(nn::clip_grad_norm({p}, 1.0) == 0.0);
  expect_error([&] { nn::clip_grad_norm({p}, -1.0); }, {"clip_grad_norm", "max_norm", "-1"});
  // a non-finite norm is reported when asked
  p.grad_array() = ag::Array(ag::f32, {2});
  p.grad_array()->fill(INFINITY);
  expect_error([&] { nn::clip_grad_norm({p}, 1.0, true); }, {"clip_grad_norm", "inf"});
  BOOST_TEST(std::isinf(nn::clip_grad_norm({p}, 1.0)));
}

BOOST_AUTO_TEST_CASE(clip_grad_norm_sums_in_double) {
  // 10^6 float32 gradients of 1e-3: total = sqrt(10^6 * 1e-6) = 1. Summed in double the error is
  // ~1e-11; a float32 running sum would be off by ~1e-3 (it stalls once the sum dwarfs each term).
  ag::Tensor p = ag::zeros({1000, 1000}, {ag::f32, true});
  p.grad_array() = ag::Array(ag::f32, {1000, 1000});
  p.grad_array()->fill(1e-3);
  const double expected = std::sqrt(1e6 * double(1e-3f) * double(1e-3f));
  BOOST_TEST(std::abs(nn::clip_grad_norm({p}, 10.0) - expected) < 1e-9);
}

// ---- schedules ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(warmup_schedule_closed_form) {
  const std::int64_t d_model = 512, warmup = 4000;
  const nn::WarmupSchedule s(d_model, warmup);
  const double scale = 1.0 / std::sqrt(512.0);
  // step 1: in the linear part, d^-0.5 * 1 * warmup^-1.5
  BOOST_TEST(std::abs(s.lr(1) - scale * std::pow(4000.0, -1.5)) < 1e-15);
  // step == warmup: both branches meet at d^-0.5 * warmup^-0.5, the peak
  const double peak = scale / std::sqrt(4000.0);
  BOOST_TEST(std::abs(s.lr(warmup) - peak) < 1e-15);
  // step 2*warmup: the decay part, d^-0.5 * (2 warmup)^-0.5 = peak / sqrt(2)
  BOOST_TEST(std::abs(s.lr(2 * warmup) - scale / std::sqrt(8000.0)) < 1e-15);
  BOOST_TEST(std::abs(s.lr(2 * warmup) - peak / std::sqrt(2.0)) < 1e-15);
  // the peak is at step == warmup, nowhere else higher
  std::int64_t argmax = 1;
  for (std::int64_t k = 1; k <= 3 * warmup; ++k)
    if (s.lr(k) > s.lr(argmax)) argmax = k;
  BOOST_TEST(argmax == warmup);
  BOOST_TEST(s.lr(0) == 0.0);
  // factor multiplies
  BOOST_TEST(std::abs(nn::WarmupSchedule(d_model, warmup, 2.0).lr(100) - 2.0 * s.lr(100)) < 1e-15);
  expect_error([] { nn::WarmupSchedule(512, 0); }, {"WarmupSchedule", "warmup", "0"});
  expect_error([] { nn::WarmupSchedule(0, 10); }, {"WarmupSchedule", "d_model"});
  expect_error([&] { (void)s.lr(-1); }, {"WarmupSchedule", "step", "-1"});
}

BOOST_AUTO_TEST_CASE(cosine_schedule_endpoints_and_midpoint) {
  // no warmup: base at 0, the mean of base and min half way, min at the end and after
  const nn::CosineSchedule s(1.0, 100, 0, 0.1);
  BOOST_TEST(s.lr(0) == 1.0);
  BOOST_TEST(std::abs(s.lr(50) - 0.55) < 1e-12);  // 0.1 + 0.9 * (1 + cos(pi/2)) / 2
  BOOST_TEST(std::abs(s.lr(25) - (0.1 + 0.9 * (1 + std::cos(std::numbers::pi / 4)) / 2)) < 1e-12);
  BOOST_TEST(s.lr(100) == 0.1);
  BOOST_TEST(s.lr(1000) == 0.1);
  for (std::int64_t k = 1; k <= 100; ++k) BOOST_TEST(s.lr(k) <= s.lr(k - 1));  // monotone

  // with warmup: linear from 0 to base at step == warmup, then the cosine over the rest
  const nn::CosineSchedule w(2e-3, 110, 10);
  BOOST_TEST(w.lr(0) == 0.0);
  BOOST_TEST(std::abs(w.lr(5) - 1e-3) < 1e-15);
  BOOST_TEST(w.lr(10) == 2e-3);  // the peak
  BOOST_TEST(std::abs(w.lr(60) - 1e-3) < 1e-15);  // half way through the cosine part: (base + 0) / 2
  BOOST_TEST(w.lr(110) == 0.0);
  std::int64_t argmax = 0;
  for (std::int64_t k = 0; k <= 110; ++k)
    if (w.lr(k) > w.lr(argmax)) argmax = k;
  BOOST_TEST(argmax == 10);

  BOOST_TEST(nn::ConstantSchedule(0.3).lr(12345) == 0.3);
  expect_error([] { nn::CosineSchedule(1.0, 0); }, {"CosineSchedule", "total_steps"});
  expect_error([] { nn::CosineSchedule(1.0, 10, 20); }, {"CosineSchedule", "warmup_steps", "20"});
  expect_error([] { nn::CosineSchedule(-1.0, 10); }, {"CosineSchedule", "base_lr"});
}

BOOST_AUTO_TEST_SUITE_END()
