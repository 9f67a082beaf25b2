// Lesson 02: tensors, broadcasting, gradient checking.
//
//   1. Unbroadcast: a bias b [3] added to a batch X [4, 3] receives the gradient summed over
//      the batch, because the forward copied it to every row.
//   2. Central differences, (L(x + eps) - L(x - eps)) / (2 eps), in float32 and float64 for eps
//      from 1e-1 down to 1e-12: the error falls as eps^2 (truncation), then rises as u / eps
//      (rounding); the bottom of the V sits near u^(1/3) (u = unit roundoff of the dtype).
//   3. ag::gradcheck on an op written here, softplus, with its own backward: it passes, and a
//      version with a sign error in the backward fails.
//
// Files in --out: unbroadcast.csv, epsilon.csv, epsilon_marks.csv, epsilon.png/.svg/.gp, report.md,
// and chapter/ (the tables and sentences README.md quotes, with the exercises' measured answers).
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"

namespace {

// ---- An op the learner writes: softplus -------------------------------------------------
// softplus(x) = log(1 + e^x)                  (a smooth ReLU), computed stably as
//             = max(x, 0) + log(1 + e^-|x|)
// d softplus(x) / dx = e^x / (1 + e^x) = 1 / (1 + e^-x) = sigmoid(x).
// An op is a node: its data, its inputs, and a backward rule that reads dL/d(output) from
// self.grad and adds dL/d(input) into the input with accumulate().
// `buggy` flips a sign in the backward (sigmoid(-x) instead of sigmoid(x)), for gradcheck to catch.
ag::Tensor softplus(const ag::Tensor& x, bool buggy = false) {
  auto node = std::make_shared<ag::Node>();
  node->op = buggy ? "softplus_buggy" : "softplus";
  node->leaf = false;
  node->data = ag::Array(x.dtype(), x.shape());
  ag::dispatch(x.dtype(), [&](auto t) {  // T = float or double
    using T = decltype(t);
    const T* in = x.array().ptr<T>();
    T* out = node->data.ptr<T>();
    for (std::size_t i = 0; i < x.numel(); ++i) out[i] = std::max(in[i], T(0)) + std::log1p(std::exp(-std::abs(in[i])));
  });
  if (ag::grad_enabled() && x.requires_grad()) {
    node->requires_grad = true;
    node->inputs = {x.node_ptr()};
    node->backward = [buggy](ag::Node& self) {
      ag::dispatch(self.data.dtype(), [&](auto t) {
        using T = decltype(t);
        const T* in = self.inputs[0]->data.ptr<T>();
        const T* dy = self.grad->ptr<T>();  // dL/dy, shaped like the output
        ag::Array dx(self.data.dtype(), self.data.shape());
        T* d = dx.ptr<T>();
        const T sign = buggy ? T(-1) : T(1);
        for (std::size_t i = 0; i < dx.size(); ++i) d[i] = dy[i] / (T(1) + std::exp(-sign * in[i]));  // dy * sigmoid(x)
        self.accumulate(0, std::move(dx));
      });
    };
  }
  return ag::Tensor(node);
}

void print_matrix(const std::string& name, const ag::Tensor& m) {
  const std::vector<double> v = m.to_vector();
  const std::size_t cols = m.dim() == 2 ? m.size(1) : m.numel(), rows = m.numel() / cols;
  std::printf("  %s %s =\n", name.c_str(), ag::shape_str(m.shape()).c_str());
  for (std::size_t r = 0; r < rows; ++r) {
    std::printf("    [");
    for (std::size_t c = 0; c < cols; ++c) std::printf("%7.2f", v[r * cols + c]);
    std::printf(" ]\n");
  }
}

// ---- The V: finite-difference error against eps -------------------------------------------
// A tiny layer, L(x) = sum(tanh(W x + c)), x: [8], W: [8, 8], c: [8], drawn from `gen`. Its exact
// gradient comes from one float64 backward. For each eps and each coordinate i:
//   central:  g_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)    error ~ eps^2 L'''/6 + u L/eps
//   forward:  g_i ~ (L(x + eps e_i) - L(x)) / eps                   error ~ eps L''/2    + u L/eps
// and the error is the worst absolute error over the 8 coordinates divided by the largest
// gradient, max_i |numeric_i - g_i| / max_i |g_i|: relative to the gradient's scale, so that
// a coordinate whose gradient happens to be tiny does not swamp the picture.
struct VCurve {
  std::vector<double> eps, e32, e64, efw;  // one per eps: central float32, central float64, forward float64
};

VCurve measure_v(ag::Generator& gen, int points) {
  const std::size_t D = 8;
  const ag::Tensor W64 = ag::randn({D, D}, gen, {ag::f64}) * (1.0 / std::sqrt(double(D)));
  const ag::Tensor c64 = ag::randn({D}, gen, {ag::f64}) * 0.5;
  const ag::Tensor x64 = ag::randn({D}, gen, {ag::f64});
  auto layer = [](const ag::Tensor& W, const ag::Tensor& c, const ag::Tensor& x) { return ag::sum(ag::tanh(ag::matmul(W, x) + c)); };
  ag::Tensor xg = x64.detach().requires_grad_();
  layer(W64, c64, xg).backward();
  const std::vector<double> exact = xg.grad().to_vector();

  // The relative error of a finite-difference gradient in dtype T with step eps.
  auto fd_error = [&](auto t, double eps, bool central) {
    using T = decltype(t);
    const ag::Dtype dt = ag::dtype_of<T>();
    const ag::Tensor W = W64.to(dt), c = c64.to(dt);
    ag::Tensor x = x64.to(dt);
    T* p = x.data<T>().data();
    ag::NoGrad ng;
    const double L0 = layer(W, c, x).item();
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < D; ++i) {
      const T orig = p[i];
      p[i] = orig + T(eps);
      const double Lp = layer(W, c, x).item();
      p[i] = orig - T(eps);
      const double Lm = layer(W, c, x).item();
      p[i] = orig;
      const double numeric = central ? (Lp - Lm) / (2 * eps) : (Lp - L0) / eps;
      worst = std::max(worst, std::abs(numeric - exact[i]));
      scale = std::max(scale, std::abs(exact[i]));
    }
    return worst / scale;
  };

  VCurve v;
  for (int k = 0; k < points; ++k) {  // eps evenly spaced in log10 from 1e-1 to 1e-12
    const double eps = std::pow(10.0, -1.0 - 11.0 * k / double(points - 1));
    v.eps.push_back(eps);
    v.e32.push_back(fd_error(float{}, eps, true));
    v.e64.push_back(fd_error(double{}, eps, true));
    v.efw.push_back(fd_error(double{}, eps, false));
  }
  return v;
}

// Unit roundoff u: the largest relative rounding error of one operation (half an ulp of 1).
const double u32 = std::numeric_limits<float>::epsilon() / 2, u64 = std::numeric_limits<double>::epsilon() / 2;

// Where each V bottoms out, its slopes, and the claims the chapter makes about it.
struct VSummary {
  std::size_t m32 = 0, m64 = 0, mfw = 0;  // index of the best eps
  double trunc32 = 0, round32 = 0, trunc64 = 0, round64 = 0, truncfw = 0, roundfw = 0;
  double at32 = 0, at64 = 0, atfw = 0;  // the error at eps = 1e-6 (the nearest eps measured)
  std::vector<std::pair<bool, std::string>> claims;
  bool all_hold() const {
    for (const auto& c : claims)
      if (!c.first) return false;
    return true;
  }
};

VSummary summarise(const VCurve& v) {
  auto argmin = [](const std::vector<double>& e) { return std::size_t(std::min_element(e.begin(), e.end()) - e.begin()); };
  auto at = [&](const std::vector<double>& e, double eps) {  // the value at the eps nearest to `eps`
    std::size_t best = 0;
    for (std::size_t i = 0; i < v.eps.size(); ++i)
      if (std::abs(std::log10(v.eps[i] / eps)) < std::abs(std::log10(v.eps[best] / eps))) best = i;
    return e[best];
  };
  VSummary s;
  s.m32 = argmin(v.e32), s.m64 = argmin(v.e64), s.mfw = argmin(v.efw);
  // slope = d log(error) / d log(eps), fitted on the truncation side (eps in [1e-2, 1e-1]) and on
  // the rounding side (float32: eps in [1e-6, 1e-3]; float64: eps in [1e-12, 1e-7]).
  s.trunc32 = lab::loglog_slope(v.eps, v.e32, 1e-2, 1e-1), s.round32 = lab::loglog_slope(v.eps, v.e32, 1e-6, 1e-3);
  s.trunc64 = lab::loglog_slope(v.eps, v.e64, 1e-2, 1e-1), s.round64 = lab::loglog_slope(v.eps, v.e64, 1e-12, 1e-7);
  s.truncfw = lab::loglog_slope(v.eps, v.efw, 1e-2, 1e-1), s.roundfw = lab::loglog_slope(v.eps, v.efw, 1e-12, 1e-9);
  s.at32 = at(v.e32, 1e-6), s.at64 = at(v.e64, 1e-6), s.atfw = at(v.efw, 1e-6);
  const double decades32 = std::abs(std::log10(v.eps[s.m32] / std::cbrt(u32)));
  const double decades64 = std::abs(std::log10(v.eps[s.m64] / std::cbrt(u64)));
  s.claims = {
      {decades64 <= 1.0, "float64 central difference: the best eps is within a decade of u^(1/3) = 4.8e-6"},
      {decades32 <= 1.0, "float32 central difference: the best eps is within a decade of u^(1/3) = 3.9e-3"},
      {v.e64[s.m64] < 1e-8 && v.e32[s.m32] > 1e-6, "at its best, float64 is accurate to < 1e-8, float32 only to > 1e-6"},
      {s.at32 > 1e-2, "float32 at gradcheck's eps = 1e-6 is off by more than 1%"},
      {std::abs(s.trunc64 - 2) < 0.2, "truncation side: the float64 error falls as eps^2 (fitted slope 2 +- 0.2)"},
      {std::abs(s.round32 + 1) < 0.4 && std::abs(s.round64 + 1) < 0.4, "rounding side: both errors grow as 1/eps (fitted slope -1 +- 0.4)"},
      {v.e32.back() == 1.0, "float32 at the smallest eps: x + eps == x, the numeric gradient is 0 and the error exactly 1"}};
  return s;
}

// ---- Exercise 3's answer: SiLU, y = x sigmoid(x), with its backward written by hand ----------
// `forget_product_rule` hands back sigmoid(x) alone, the mistake the exercise asks about.
ag::Tensor silu(const ag::Tensor& x, bool forget_product_rule = false) {
  auto node = std::make_shared<ag::Node>();
  node->op = "silu";
  node->leaf = false;
  node->data = ag::Array(x.dtype(), x.shape());
  ag::dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* in = x.array().ptr<T>();
    T* out = node->data.ptr<T>();
    for (std::size_t i = 0; i < x.numel(); ++i) out[i] = in[i] / (T(1) + std::exp(-in[i]));
  });
  if (ag::grad_enabled() && x.requires_grad()) {
    node->requires_grad = true;
    node->inputs = {x.node_ptr()};
    node->backward = [forget_product_rule](ag::Node& self) {
      ag::dispatch(self.data.dtype(), [&](auto t) {
        using T = decltype(t);
        const T* in = self.inputs[0]->data.ptr<T>();
        const T* dy = self.grad->ptr<T>();
        ag::Array dx(self.data.dtype(), self.data.shape());
        T* d = dx.ptr<T>();
        for (std::size_t i = 0; i < dx.size(); ++i) {
          const T sg = T(1) / (T(1) + std::exp(-in[i]));
          d[i] = dy[i] * (forget_product_rule ? sg : sg + in[i] * sg * (T(1) - sg));
        }
        self.accumulate(0, std::move(dx));
      });
    };
  }
  return ag::Tensor(node);
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("02_gradcheck", "Lesson 02: tensors, broadcasting, gradient checking");
  cli.steps_help("not training steps here: the number of eps values on the V (default 45; --quick 23)");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const lab::Chapter chapter(args);
    ag::Generator gen(args.seed);

    // ---- 1. Unbroadcast: a bias added to a batch ------------------------------------------
    // Y = X + b with X: [4, 3] (4 examples, 3 features), b: [3]. The forward copies b into
    // every row; so in the backward each copy sends its gradient back and they add up:
    //   dL/db_j = sum_i dL/dY_ij         (sum over the batch axis)
    std::cout << "1. Unbroadcast: Y = X + b, X [4,3], b [3], L = sum(Y * G) so that dL/dY = G\n";
    ag::Tensor X = ag::tensor({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2}, {4, 3}, {.requires_grad = true});
    ag::Tensor b = ag::tensor({0.5, -0.5, 1.0}, {3}, {.requires_grad = true});
    ag::Tensor G = ag::tensor({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {4, 3});  // a chosen upstream gradient
    ag::Tensor Y = X + b;
    ag::sum(Y * G).backward();
    print_matrix("X", X);
    print_matrix("b", b);
    print_matrix("dL/dY = G", G);
    print_matrix("dL/db (engine)", b.grad());
    print_matrix("dL/dX (engine)", X.grad());
    const std::vector<double> gb = b.grad().to_vector(), gv = G.to_vector();
    lab::CurveLog ub(args.path("unbroadcast.csv"), {"dLdb_engine", "column_sum_of_G"}, "feature");
    bool sums_match = ag::shape_str(b.grad().shape()) == "[3]";
    for (std::size_t j = 0; j < 3; ++j) {
      const double col = gv[j] + gv[3 + j] + gv[6 + j] + gv[9 + j];
      std::printf("  feature %zu: dL/db = %g = %g + %g + %g + %g (the column of G)\n", j, gb[j], gv[j], gv[3 + j],
                  gv[6 + j], gv[9 + j]);
      ub.log(double(j), {gb[j], col});
      sums_match = sums_match && gb[j] == col;
    }
    checks.expect(sums_match, "the bias [3] gets dL/dY [4,3] summed over the batch axis: [22, 26, 30]");
    {
      std::ostringstream u;
      u << "Section 1 prints `X`, `b` and `G`, then `dL/db (engine) " << ag::shape_str(b.grad().shape()) << " = [ " << gb[0] << " "
        << gb[1] << " " << gb[2] << " ]`: the column sums of `G`, with the shape of `b`. `dL/dX` is `G` itself.";
      chapter.text("unbroadcast", u.str());
    }

    // ---- 2. Central differences: float32 vs float64 ----------------------------------------
    // measure_v (above): the error of central and forward differences on a small tanh layer, for
    // eps from 1e-1 down to 1e-12, in float32 and float64.
    std::cout << "\n2. Central differences on L(x) = sum(tanh(W x + c)), x [8], in float32 and float64\n";
    const int points = int(args.steps_or(45, 23));  // eps values, evenly spaced in log10 from 1e-1 to 1e-12
    const VCurve v = measure_v(gen, points);
    const std::vector<double>&epss = v.eps, &e32 = v.e32, &e64 = v.e64, &efw = v.efw;
    lab::CurveLog eps_log(args.path("epsilon.csv"), {"central_float32", "central_float64", "forward_float64"}, "eps");
    for (std::size_t k = 0; k < epss.size(); ++k) eps_log.log(epss[k], {e32[k], e64[k], efw[k]});

    // Vertical marks at u^(1/3), where theory puts the bottom of each V (a two-point line each).
    lab::CurveLog marks(args.path("epsilon_marks.csv"), {"float32", "float64"}, "y");
    for (double y : {1e-12, 10.0}) marks.log(y, {std::cbrt(u32), std::cbrt(u64)});

    lab::PlotOptions po{.title = "Finite-difference gradient of sum(tanh(W x + c)): error vs step eps",
                        .xlabel = "eps (step)", .ylabel = "max |numeric - exact| / max |exact|", .logx = true, .logy = true,
                        .ymin = 1e-12, .ymax = 1e5};  // headroom above 1 for the legend
    const std::vector<lab::Series> s = {
        {eps_log.path(), "central_float32", "central difference, float32", "eps", "linespoints pt 7 ps 0.6"},
        {eps_log.path(), "central_float64", "central difference, float64", "eps", "linespoints pt 7 ps 0.6"},
        {eps_log.path(), "forward_float64", "forward difference, float64", "eps", "lines dt 2"},
        {marks.path(), "y", "u^(1/3), float32", "float32", "lines dt 3 lc rgb '#9400d3'"},
        {marks.path(), "y", "u^(1/3), float64", "float64", "lines dt 3 lc rgb '#009e73'"}};
    if (lab::plot(args.path("epsilon.png"), s, po)) chapter.figure("epsilon.png");
    // In the terminal, plain lines: each series is drawn with its own character.
    lab::PlotOptions pt = po;
    pt.ymax = 1e3;
    lab::plot_terminal({{eps_log.path(), "central_float32", "central, float32", "eps", "lines"},
                        {eps_log.path(), "central_float64", "central, float64", "eps", "lines"}},
                       pt, std::cout, 80, 24);

    const VSummary vs = summarise(v);
    const std::size_t m32 = vs.m32, m64 = vs.m64, mfw = vs.mfw;
    lab::Table t("Where the V bottoms out (measured) and where theory puts it", {"method", "dtype", "u", "best eps",
                 "theory", "best error", "error @ 1e-6", "slope, trunc.", "slope, round."});
    t.row({"central", "float32", lab::Cell(u32, 2), lab::Cell(epss[m32], 2), "u^(1/3)=" + lab::format_number(std::cbrt(u32), 2),
           lab::Cell(e32[m32], 2), lab::Cell(vs.at32, 2), lab::Cell(vs.trunc32, 3), lab::Cell(vs.round32, 3)});
    t.row({"central", "float64", lab::Cell(u64, 2), lab::Cell(epss[m64], 2), "u^(1/3)=" + lab::format_number(std::cbrt(u64), 2),
           lab::Cell(e64[m64], 2), lab::Cell(vs.at64, 2), lab::Cell(vs.trunc64, 3), lab::Cell(vs.round64, 3)});
    t.row({"forward", "float64", lab::Cell(u64, 2), lab::Cell(epss[mfw], 2), "u^(1/2)=" + lab::format_number(std::sqrt(u64), 2),
           lab::Cell(efw[mfw], 2), lab::Cell(vs.atfw, 2), lab::Cell(vs.truncfw, 3), lab::Cell(vs.roundfw, 3)});
    std::cout << "\n";
    t.print();
    t.save_markdown(args.path("report.md"));
    chapter.table("v_table", t);
    for (const auto& [ok, claim] : vs.claims) checks.expect(ok, claim);

    {  // the chapter's reading of the V, from the same numbers
      auto f2 = [](double x) { return lab::format_number(x, 2); };
      auto factor = [](double a, double b) { return std::max(a / b, b / a); };  // "within a factor"
      const double peak32 = *std::max_element(e32.begin(), e32.end());
      std::ostringstream r;
      r << "**Reading it.** Start on the right, at `eps = 0.1`. Both central curves lie on top of each other, because there the "
           "error is pure truncation and does not depend on the dtype. They fall with slope "
        << lab::format_number(vs.trunc64, 3) << " (float64) and " << lab::format_number(vs.trunc32, 3)
        << " (float32) as `eps` shrinks. The float32 curve turns first: at `eps = " << f2(epss[m32]) << "` it hits its floor of "
        << f2(e32[m32]) << ", and from there rounding wins and it climbs with slope " << f2(vs.round32)
        << ". The float64 curve keeps falling for " << lab::format_number(std::log10(epss[m32] / epss[m64]), 2)
        << " more decades and bottoms out at `eps = " << f2(epss[m64]) << "` with an error of " << f2(e64[m64])
        << ". The minima sit within a factor " << f2(factor(epss[m32], std::cbrt(u32))) << " (float32) and "
        << f2(factor(epss[m64], std::cbrt(u64))) << " (float64) of the predicted `u^(1/3)` (dotted verticals). The best errors are "
        << f2(e32[m32] / std::pow(u32, 2.0 / 3)) << " and " << f2(e64[m64] / std::pow(u64, 2.0 / 3))
        << " times `u^(2/3)`. The forward difference (dashed) falls only with slope " << lab::format_number(vs.truncfw, 3)
        << ", so even in float64 its best is " << f2(efw[mfw]) << ", at `eps = " << f2(epss[mfw]) << "`, near `u^(1/2)`.\n\n"
        << "Then look at float32 below `eps ≈ 1e-7`. The error climbs as high as " << f2(peak32)
        << ", then flattens at exactly 1. `x + eps` rounds to the nearest float32. Once "
           "`eps` falls below the spacing of float32 numbers near `x` (about 1.2e-7 for `|x|` near 1), the step you asked for is "
           "not the step you got. Soon `x + eps == x` and the numeric gradient is exactly 0, which is an error of 100%. At "
           "gradcheck's `eps = 1e-6`, float32 is off by "
        << lab::format_number(100 * vs.at32, 2) << "% while float64 is off by " << f2(vs.at64)
        << ". That is why `ag::gradcheck` runs in float64.";
      chapter.text("v_reading", r.str());
    }

    // ---- 3. gradcheck on an op you write ---------------------------------------------------
    // ag::gradcheck converts the inputs to float64, runs one backward and compares every
    // element of every input's gradient with a central difference (eps = 1e-6, in float64:
    // the bottom of the float64 V above).
    std::cout << "\n3. gradcheck on softplus, an op written in this lesson (forward and backward by hand)\n";
    const ag::Tensor xin = ag::randn({5, 4}, gen) * 3.0;
    const auto good = ag::gradcheck([](const std::vector<ag::Tensor>& in) { return softplus(in[0]); }, {xin});
    const auto bad = ag::gradcheck([](const std::vector<ag::Tensor>& in) { return softplus(in[0], true); }, {xin});
    // The op inside a small layer with a broadcast bias: the unbroadcast of section 1 is checked too.
    const ag::Tensor Xb = ag::randn({6, 4}, gen), Wl = ag::randn({3, 4}, gen), bl = ag::randn({3}, gen);
    const auto layer_check = ag::gradcheck(
        [](const std::vector<ag::Tensor>& in) { return ag::sum(softplus(ag::matmul(in[0], ag::transpose(in[1], 0, 1)) + in[2])); },
        {Xb, Wl, bl});
    std::cout << "  softplus:                      " << good.report << "\n";
    std::cout << "  softplus with a sign bug:      " << bad.report << "\n";
    std::cout << "  sum(softplus(X W^T + b)):      " << layer_check.report << "\n";
    lab::Table gt("gradcheck (float64, eps = 1e-6)", {"function", "elements", "max abs error", "max rel error", "verdict"});
    gt.row({"softplus(x), x [5,4]", good.elements_checked, lab::Cell(good.max_abs_error, 2), lab::Cell(good.max_rel_error, 2), good.ok ? "passed" : "FAILED"});
    gt.row({"softplus with a sign bug", bad.elements_checked, lab::Cell(bad.max_abs_error, 2), lab::Cell(bad.max_rel_error, 2), bad.ok ? "passed" : "FAILED"});
    gt.row({"sum(softplus(X W^T + b))", layer_check.elements_checked, lab::Cell(layer_check.max_abs_error, 2),
            lab::Cell(layer_check.max_rel_error, 2), layer_check.ok ? "passed" : "FAILED"});
    std::cout << "\n";
    gt.print();
    gt.save_markdown(args.path("report.md"), true);
    chapter.table("gradcheck_table", gt);
    chapter.text("gradcheck_reading",
                 "The buggy backward is caught: at the worst element it gave `" + lab::format_number(bad.analytic, 3) +
                     "` where the central difference says `" + lab::format_number(bad.numeric, 3) +
                     "`. The third check puts softplus inside a layer with the broadcast bias of section 1, so unbroadcast is "
                     "gradient-checked too. Note the correct softplus's worst *relative* error, " +
                     lab::format_number(good.max_rel_error, 2) + ". It occurs at an element whose derivative is only " +
                     lab::format_number(good.analytic, 2) +
                     ". The rounding error of a central difference scales with `|L|`, not with the derivative being measured, so "
                     "small derivatives get large relative errors. This is why gradcheck also has an absolute floor, `atol`.");
    checks.expect(good.ok && good.max_abs_error < 1e-8, "gradcheck passes softplus (max abs error < 1e-8)");
    checks.expect(!bad.ok, "gradcheck catches the sign bug in softplus's backward");
    checks.expect(layer_check.ok, "gradcheck passes sum(softplus(X W^T + b)) for X, W and the broadcast b");

    // ---- 4. The exercises' answers, measured (the chapter quotes them) -----------------------
    if (!args.quick) {
      // 1. The V for --seed 1 .. 12 (after this run's seed): W, c, x drawn as that run draws them.
      lab::SeedStats best64, err64, best32, err32;
      std::size_t hold = 0;
      const int seeds = 12;
      for (int k = 1; k <= seeds; ++k) {
        ag::Generator g(args.seed + std::uint64_t(k));
        const VCurve vk = measure_v(g, points);
        const VSummary sk = summarise(vk);
        best64.add(vk.eps[sk.m64]), err64.add(vk.e64[sk.m64]), best32.add(vk.eps[sk.m32]), err32.add(vk.e32[sk.m32]);
        hold += sk.all_hold() ? 1 : 0;
      }
      checks.expect(hold == std::size_t(seeds), "the claims about the V hold for the next " + std::to_string(seeds) + " seeds too");
      chapter.text("answer1", "*Answer:* it moves a little, because `|L| / |L'''|` changes, but it stays near `u^(1/3)`. Over seeds " +
                                  std::to_string(args.seed + 1) + "-" + std::to_string(args.seed + seeds) +
                                  " the float64 minima are at " + best64.range(2) + " with errors of " + err64.range(2) +
                                  ", and the float32 minima at " + best32.range(2) + " with errors of " + err32.range(2) +
                                  ". The checks about the V pass for " + std::to_string(hold) + " of the " + std::to_string(seeds) +
                                  " seeds.");
    }
    {  // 2. Y = X * s with s [4, 1]: dL/ds[i] = sum_j G[i, j] X[i, j]
      ag::Tensor s_row = ag::ones({4, 1}, {.requires_grad = true});
      ag::sum((X.detach() * s_row) * G).backward();
      const std::vector<double> gs = s_row.grad().to_vector();
      std::string col = "[";
      for (std::size_t i = 0; i < gs.size(); ++i) col += (i ? ", [" : "[") + lab::format_number(gs[i], 3) + "]";
      chapter.text("answer2", "*Answer:* `s[i]` multiplies the whole row `i`, so `dL/ds[i] = Σ_j G[i, j]·X[i, j]`. With the "
                              "lesson's `X` and `G` that is `" + col + "]`, with shape `" + ag::shape_str(s_row.grad().shape()) + "`.");
    }
    {  // 3. SiLU, right and with the product rule forgotten
      const auto right = ag::gradcheck([](const std::vector<ag::Tensor>& in) { return silu(in[0]); }, {xin});
      const auto wrong = ag::gradcheck([](const std::vector<ag::Tensor>& in) { return silu(in[0], true); }, {xin});
      double biggest = 0, where = 0;  // the missing term x s(x) (1 - s(x)) over x in [-6, 6]
      for (int i = 0; i <= 12000; ++i) {
        const double x = -6 + i * 1e-3, sg = 1 / (1 + std::exp(-x)), term = x * sg * (1 - sg);
        if (std::abs(term) > biggest) biggest = std::abs(term), where = x;
      }
      checks.expect(right.ok && !wrong.ok, "exercise 3: gradcheck passes SiLU and catches the forgotten product rule");
      chapter.text("answer3", std::string("*Answer:* the correct backward ") + (right.ok ? "passes" : "FAILS") +
                                  " with a max abs error of " + lab::format_number(right.max_abs_error, 2) +
                                  ". A backward that forgets the product rule and returns only `σ(x)` " + (wrong.ok ? "passes" : "fails") +
                                  ", with a max rel error of " + lab::format_number(wrong.max_rel_error, 2) +
                                  ". The missing term `x·σ(x)(1 - σ(x))` is as large as " + lab::format_number(biggest, 2) +
                                  " (at `|x| = " + lab::format_number(std::abs(where), 2) +
                                  "`), and for negative `x` the true derivative is close to 0, so the relative error is of order 1.");
    }

    std::ostringstream report;
    const int status = checks.report(report);
    std::cout << report.str();
    chapter.text("checks", "```" + report.str() + "```");
    return status;

  });
}
