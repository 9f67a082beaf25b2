// Lesson 09: scaled dot-product attention.
//
//   Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + mask) V
//   Q: [Tq, d_k] queries, K: [Tk, d_k] keys, V: [Tk, d_v] values -> [Tq, d_v]; weights [Tq, Tk]
//
// 1) a worked example small enough to check by hand;
// 2) the saturation experiment: q, k ~ N(0, 1), for d_k = 4 ... 1024, the entropy of the
//    weights and the gradient reaching q, with and without the 1/sqrt(d_k) scale;
// 3) padding and causal masks: blocked weights are exactly zero, rows still sum to 1.
// Everything runs in float64 so that "exactly zero" and "sums to 1" are measured, not rounded.
// The saturation claims are measured for 5 seeds; chapter/ holds what README.md quotes, with the
// exercises' measured answers.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"

namespace {

constexpr ag::TensorOptions kF64{.dtype = ag::f64};

// One figure per query (row), then summaries over the queries.
std::vector<double> row_entropy(const ag::Tensor& w) {  // -sum_j w_j log w_j (nats), 0 log 0 = 0
  const std::size_t N = w.size(0), Tk = w.size(1);
  const std::vector<double> v = w.to_vector();
  std::vector<double> h(N, 0.0);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < Tk; ++j)
      if (v[i * Tk + j] > 0) h[i] -= v[i * Tk + j] * std::log(v[i * Tk + j]);
  return h;
}
std::vector<double> row_max(const ag::Tensor& w) {
  const std::size_t N = w.size(0), Tk = w.size(1);
  const std::vector<double> v = w.to_vector();
  std::vector<double> m(N, 0.0);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < Tk; ++j) m[i] = std::max(m[i], v[i * Tk + j]);
  return m;
}
std::vector<double> row_norm(const ag::Tensor& t) {  // L2 norm of each row
  const std::size_t N = t.size(0), d = t.size(1);
  const std::vector<double> v = t.to_vector();
  std::vector<double> n(N, 0.0);
  for (std::size_t i = 0; i < N; ++i) {
    for (std::size_t j = 0; j < d; ++j) n[i] += v[i * d + j] * v[i * d + j];
    n[i] = std::sqrt(n[i]);
  }
  return n;
}
double mean(const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0) / double(x.size()); }
double median(std::vector<double> x) {
  std::nth_element(x.begin(), x.begin() + std::ptrdiff_t(x.size() / 2), x.end());
  return x[x.size() / 2];
}
double share_above(const std::vector<double>& x, double t) {
  return double(std::count_if(x.begin(), x.end(), [&](double v) { return v > t; })) / double(x.size());
}

struct Saturation {
  double entropy;      // mean over queries
  double one_hot;      // share of queries whose largest weight is > 0.99
  double grad_median;  // median over queries of |dL/dq|
  double grad_mean;    // mean over queries of |dL/dq| (pulled up by the rare near-ties)
  double grad_p10;     // the 10th percentile over queries of |dL/dq|
};

// N queries against Tk keys, q, k, v ~ N(0, 1): attention weights with the given scale, and the
// gradient of L = sum(output * g) (g ~ N(0, 1), a stand-in for whatever comes from above)
// with respect to q, which is what reaches W_q in a real layer.
Saturation saturate(std::size_t N, std::size_t Tk, std::size_t d_k, double scale, std::uint64_t seed) {
  ag::Generator gen(seed);  // the same q, k, v, g for the scaled and the unscaled run
  ag::Tensor q = ag::randn({N, d_k}, gen, {.dtype = ag::f64, .requires_grad = true});
  const ag::Tensor k = ag::randn({Tk, d_k}, gen, kF64);
  const ag::Tensor v = ag::randn({Tk, 16}, gen, kF64);
  const ag::Tensor g = ag::randn({N, 16}, gen, kF64);
  const nn::AttentionOutput a = nn::scaled_dot_product_attention(q, k, v, {}, scale);
  ag::sum(a.output * g).backward();
  std::vector<double> grad = row_norm(q.grad());
  const double med = median(grad), avg = mean(grad);
  std::nth_element(grad.begin(), grad.begin() + std::ptrdiff_t(grad.size() / 10), grad.end());
  return {mean(row_entropy(a.weights)), share_above(row_max(a.weights), 0.99), med, avg, grad[grad.size() / 10]};
}

// Rows sum to 1 (within tol) and every blocked entry (mask true) is exactly 0.0.
struct MaskCheck {
  double worst_row_error = 0;
  std::size_t blocked = 0, nonzero_blocked = 0;
};
MaskCheck check_masked(const ag::Tensor& w, const ag::Mask& mask) {  // w, mask: [T, T]
  const std::size_t R = w.size(0), C = w.size(1);
  const std::vector<double> wv = w.to_vector();
  MaskCheck r;
  for (std::size_t i = 0; i < R; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < C; ++j) {
      s += wv[i * C + j];
      if (mask[i * C + j]) {
        ++r.blocked;
        if (wv[i * C + j] != 0.0) ++r.nonzero_blocked;
      }
    }
    r.worst_row_error = std::max(r.worst_row_error, std::abs(s - 1.0));
  }
  return r;
}

void print_matrix(const std::string& name, const ag::Tensor& m) {
  const std::size_t R = m.size(0), C = m.size(1);
  const std::vector<double> v = m.to_vector();
  std::cout << "  " << name << " =\n";
  for (std::size_t i = 0; i < R; ++i) {
    std::cout << "    [";
    for (std::size_t j = 0; j < C; ++j) std::cout << (j ? "  " : "") << std::setw(6) << std::fixed << std::setprecision(3) << v[i * C + j];
    std::cout << "]\n";
  }
  std::cout.unsetf(std::ios::fixed);
}

void print_mask(const std::string& name, const ag::Mask& m) {  // m: [R, C], 1 = blocked
  const std::size_t C = m.shape()[1];
  std::cout << "  " << name << " (1 = blocked) =\n";
  for (std::size_t i = 0; i < m.shape()[0]; ++i) {
    std::cout << "    [";
    for (std::size_t j = 0; j < C; ++j) std::cout << (j ? " " : "") << (m[i * C + j] ? 1 : 0);
    std::cout << "]\n";
  }
}

// ---- The exercises' answers (the chapter quotes them) --------------------------------------
void exercise_answers(const lab::Chapter& chapter, std::size_t N, std::size_t Tk, const std::vector<std::size_t>& dims,
                      std::uint64_t seed, const ag::Tensor& q, const ag::Tensor& k, const ag::Tensor& v, std::size_t T) {
  auto f2 = [](double x) { return lab::format_number(x, 2); };
  auto f3 = [](double x) { return lab::format_number(x, 3); };
  {  // 1. scale by 1/d_k instead of 1/sqrt(d_k), the same numbers as the table
    std::vector<Saturation> over;
    for (std::size_t d_k : dims) over.push_back(saturate(N, Tk, d_k, 1.0 / double(d_k), lab::derive_seed(seed, d_k)));
    const Saturation u_top = saturate(N, Tk, dims.back(), 1.0, lab::derive_seed(seed, dims.back()));
    const bool grad_check = u_top.grad_median < 0.05 * over.back().grad_median;
    chapter.text("answer1",
                 "*Answer:* now the scores' spread *shrinks* as `1/√d_k`, and the softmax goes flat instead of sharp. The "
                 "entropy climbs from " + f3(over.front().entropy) + " to " + lab::format_number(over.back().entropy, 4) +
                     " nats (`log " + std::to_string(Tk) + " = " + lab::format_number(std::log(double(Tk)), 4) +
                     "`: uniform, every key weighted alike). The median gradient falls from " + f2(over.front().grad_median) +
                     " at `d_k = " + std::to_string(dims.front()) + "` to " + f2(over.back().grad_median) + " at " +
                     std::to_string(dims.back()) + ", " + f2(over.front().grad_median / over.back().grad_median) +
                     " times smaller over a " + std::to_string(dims.back() / dims.front()) + "-fold increase in `d_k` (`√" +
                     std::to_string(dims.back() / dims.front()) + " = " +
                     lab::format_number(std::sqrt(double(dims.back() / dims.front())), 2) + "`). The gradient check then " +
                     (grad_check ? "still passes" : "fails") +
                     ". Over-scaling is as bad as not scaling: attention that cannot choose is an average.");
  }
  {  // 2. --keys 128
    const std::size_t keys = 128, d_k = dims.back();
    const Saturation s = saturate(N, keys, d_k, 1.0 / std::sqrt(double(d_k)), lab::derive_seed(seed, d_k));
    const Saturation u = saturate(N, keys, d_k, 1.0, lab::derive_seed(seed, d_k));
    const bool grad_check = u.grad_median < 0.05 * s.grad_median;
    chapter.text("answer2",
                 "*Answer:* the scaled entropy rises to " + f3(s.entropy) + " nats (`log 128 = " + f3(std::log(128.0)) +
                     "`), and the scaled gradient is " + f2(s.grad_median) + ". The unscaled weights still collapse (entropy " +
                     f2(u.entropy) + ", " + lab::format_number(100 * u.one_hot, 2) +
                     "% of the queries one-hot), but the median gradient is " + f2(u.grad_median) + ", only " +
                     f2(s.grad_median / u.grad_median) + " times below the scaled " + f2(s.grad_median) + ". The gradient check " +
                     (grad_check ? "still passes" : "fails (exit status 1)") +
                     ". With more keys the top two scores are closer together, so near-ties are more common and saturation "
                     "needs a larger `d_k` to be complete.");
  }
  {  // 3. lengths {8, 0}: every key of sequence 1 is padding
    const ag::Mask pad = nn::padding_mask({T, 0}, T).reshape({2, 1, T});
    const nn::AttentionOutput a = nn::scaled_dot_product_attention(q, k, v, pad);
    const std::vector<double> w = ag::select(a.weights, 0, 1).to_vector(), o = ag::select(a.output, 0, 1).to_vector();
    double wmax = 0, omax = 0, worst_row = 0;
    bool finite = true;
    for (double x : w) wmax = std::max(wmax, std::abs(x)), finite = finite && std::isfinite(x);
    for (double x : o) omax = std::max(omax, std::abs(x)), finite = finite && std::isfinite(x);
    for (std::size_t i = 0; i < T; ++i) {
      double sum = 0;
      for (std::size_t j = 0; j < T; ++j) sum += w[i * T + j];
      worst_row = std::max(worst_row, std::abs(sum - 1));
    }
    chapter.text("answer3",
                 std::string("*Answer:* every score in the row is −∞. The engine's softmax returns ") +
                     (finite && wmax == 0 ? "a row of zeros (not NaN)" : "something else than zeros") +
                     ": the largest weight of sequence 1 is " + lab::format_number(wmax) + " and its largest output " +
                     lab::format_number(omax) +
                     ", as the header `nn/attention.hpp` promises (\"a row with nothing allowed gets all zeros\"). The row-sum "
                     "check then fails with a worst error of " + (worst_row == 1 ? std::string("exactly 1") : lab::format_number(worst_row)) +
                     ". A real model must never ask for this, because a zero output row carries no information.");
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("09_scaled_dot_product", "Scaled dot-product attention: Q, K, V; softmax saturation without 1/sqrt(d_k); masks");
  cli.no_steps();  // nothing is trained here
  int keys = 32;
  cli.app().add_option("--keys", keys, "keys each query attends over in the saturation experiment")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const lab::Chapter chapter(args);
    auto f3 = [](double v) { return lab::format_number(v, 3); };

    // ---- 1) A worked example: one query, three keys, d_k = 2 --------------------------------
    std::cout << "1) One query, three keys (d_k = 2), by hand and by nn::scaled_dot_product_attention\n";
    const ag::Tensor q1 = ag::tensor({2, 0}, {1, 2}, kF64);
    const ag::Tensor k1 = ag::tensor({1, 0, 0, 1, 1, 1}, {3, 2}, kF64);
    const ag::Tensor v1 = ag::tensor({1, 0, 0, 1, 0, 0}, {3, 2}, kF64);
    const nn::AttentionOutput ex = nn::scaled_dot_product_attention(q1, k1, v1);
    print_matrix("scores q k^T / sqrt(2)", ag::matmul(q1, ag::transpose(k1, 0, 1)) / std::sqrt(2.0));
    print_matrix("weights", ex.weights);
    print_matrix("output = weights V", ex.output);
    // by hand: scores = [sqrt 2, 0, sqrt 2]; e^1.414 = 4.113; weights = [4.113, 1, 4.113] / 9.226
    const double by_hand = std::exp(std::sqrt(2.0)) / (2 * std::exp(std::sqrt(2.0)) + 1);
    checks.expect(std::abs(ex.weights.flat(0) - by_hand) < 1e-12 && std::abs(ex.output.flat(1) - (1 - 2 * by_hand)) < 1e-12,
                  "worked example: weights [0.446, 0.108, 0.446] and output [0.446, 0.108], as computed by hand");
    {  // the chapter's worked example, from the same numbers; and the weights without the sqrt(2)
      const double s2 = std::sqrt(2.0), e = std::exp(s2), sum = 2 * e + 1;
      const ag::Tensor raw = nn::scaled_dot_product_attention(q1, k1, v1, {}, 1.0).weights;
      std::ostringstream w;
      auto f4 = [](double x) { return lab::format_number(x, 4); };
      w << "```\nscores  = [2, 0, 2] / √2          = [" << f4(s2) << ", 0, " << f4(s2) << "]\n"
        << "exp     = [" << f4(e) << ", 1, " << f4(e) << "]        sum " << f4(sum) << "\n"
        << "weights = [" << f3(ex.weights.flat(0)) << ", " << f3(ex.weights.flat(1)) << ", " << f3(ex.weights.flat(2)) << "]\n"
        << "output  = " << f3(ex.weights.flat(0)) << "·v₁ + " << f3(ex.weights.flat(1)) << "·v₂ + " << f3(ex.weights.flat(2))
        << "·v₃ = [" << f3(ex.output.flat(0)) << ", " << f3(ex.output.flat(1)) << "]\n```\n\n"
        << "Without the `√2`, the scores would be `[2, 0, 2]` and the weights `[" << f3(raw.flat(0)) << ", " << f3(raw.flat(1))
        << ", " << f3(raw.flat(2)) << "]`: already sharper, with only two dimensions.";
      chapter.text("worked_example", w.str());
    }

    // ---- 2) Softmax saturation vs d_k ---------------------------------------------------------
    const std::size_t N = args.quick ? 1024 : 4096, Tk = std::size_t(keys);
    const std::vector<std::size_t> dims = {4, 16, 64, 256, 1024};
    std::cout << "\n2) Saturation: " << N << " queries x " << Tk << " keys, q, k ~ N(0, 1), float64\n";
    lab::CurveLog log(args.path("saturation.csv"),
                      {"entropy_scaled", "entropy_unscaled", "one_hot_scaled", "one_hot_unscaled", "grad_median_scaled",
                       "grad_median_unscaled", "grad_mean_scaled", "grad_mean_unscaled"},
                      "d_k");
    lab::Table table("Attention over " + std::to_string(Tk) + " keys, with (s) and without (u) the 1/sqrt(d_k) scale",
                     {"d_k", "std of q.k", "entropy s", "entropy u", "one-hot s", "one-hot u", "median |dL/dq| s",
                      "median |dL/dq| u"});
    std::vector<Saturation> scaled, unscaled;
    for (std::size_t d_k : dims) {
      const std::uint64_t seed = lab::derive_seed(args.seed, d_k);
      scaled.push_back(saturate(N, Tk, d_k, 1.0 / std::sqrt(double(d_k)), seed));
      unscaled.push_back(saturate(N, Tk, d_k, 1.0, seed));
      const Saturation &s = scaled.back(), &u = unscaled.back();
      log.log(double(d_k), {s.entropy, u.entropy, s.one_hot, u.one_hot, s.grad_median, u.grad_median, s.grad_mean, u.grad_mean});
      table.row({d_k, std::sqrt(double(d_k)), s.entropy, u.entropy, s.one_hot, u.one_hot, s.grad_median, u.grad_median});
    }
    table.print();
    table.save_markdown(args.path("report.md"));
    chapter.table("saturation", table);
    std::cout << "  entropy: mean over queries, in nats; uniform weights over " << Tk << " keys have log(" << Tk
              << ") = " << lab::format_number(std::log(double(Tk))) << ", one-hot weights 0.\n"
              << "  one-hot: share of queries whose largest weight is > 0.99.\n";

    lab::PlotOptions ent{.title = "Entropy of the attention weights (" + std::to_string(Tk) + " keys, q, k ~ N(0,1))",
                         .xlabel = "d_k (log scale)", .ylabel = "mean entropy (nats)", .logx = true, .ymin = 0, .ymax = 5, .xmin = 2, .xmax = 2048,
                         .hlines = {{std::log(double(Tk)), "uniform: log " + std::to_string(Tk)}}};
    const std::vector<lab::Series> ent_series = {
        {log.path(), "entropy_scaled", "scaled by 1/sqrt(d_k)", "d_k", "linespoints"},
        {log.path(), "entropy_unscaled", "unscaled", "d_k", "linespoints"}};
    if (lab::plot(args.path("entropy.png"), ent_series, ent)) chapter.figure("entropy.png");
    const bool drew_gradient = lab::plot(args.path("gradient.png"),
              {{log.path(), "grad_median_scaled", "scaled by 1/sqrt(d_k)", "d_k", "linespoints"},
               {log.path(), "grad_median_unscaled", "unscaled", "d_k", "linespoints"}},
              {.title = "Gradient reaching the query through the softmax", .xlabel = "d_k (log scale)",
               .ylabel = "median over queries of |dL/dq| (log scale)", .logx = true, .logy = true, .xmin = 2, .xmax = 2048});
    if (drew_gradient) chapter.figure("gradient.png");

    const Saturation &s_top = scaled.back(), &u_top = unscaled.back();
    double s_min = 1e300, s_max = 0, g_min = 1e300, g_max = 0;
    for (const auto& s : scaled) {
      s_min = std::min(s_min, s.entropy), s_max = std::max(s_max, s.entropy);
      g_min = std::min(g_min, s.grad_median), g_max = std::max(g_max, s.grad_median);
    }
    std::size_t peak = 0;  // where the unscaled median gradient is largest
    for (std::size_t i = 1; i < dims.size(); ++i)
      if (unscaled[i].grad_median > unscaled[peak].grad_median) peak = i;
    double scaled_one_hot = 0;
    for (const auto& s : scaled) scaled_one_hot = std::max(scaled_one_hot, s.one_hot);
    checks.expect(u_top.entropy < 0.1 * s_top.entropy,
                  "d_k = 1024: mean entropy unscaled " + lab::format_number(u_top.entropy) + " < 0.1 x scaled " +
                      lab::format_number(s_top.entropy));
    checks.expect(u_top.one_hot > 0.5 && s_top.one_hot < 0.01,
                  "d_k = 1024: one-hot rows (max weight > 0.99): unscaled " + lab::format_number(u_top.one_hot) +
                      " > 0.5, scaled " + lab::format_number(s_top.one_hot) + " < 0.01");
    checks.expect(u_top.grad_median < 0.05 * s_top.grad_median,
                  "d_k = 1024: median |dL/dq| unscaled " + lab::format_number(u_top.grad_median) + " < 0.05 x scaled " +
                      lab::format_number(s_top.grad_median) + " (the gradient vanishes)");
    checks.expect(s_max - s_min < 0.25,
                  "scaled: mean entropy stays within 0.25 nats across d_k = 4..1024 (" + lab::format_number(s_min) + " to " +
                      lab::format_number(s_max) + ")");
    checks.expect(peak > 0 && peak + 1 < dims.size(),
                  "unscaled: the median gradient first rises with d_k (peak at d_k = " + std::to_string(dims[peak]) +
                      "), then collapses");
    {
      const double pct = 100 * u_top.one_hot, pct64 = 100 * unscaled[2].one_hot;
      std::ostringstream r;
      r << "**Reading it.** With the scale, nothing depends on `d_k`. The entropy stays between " << f3(s_min) << " and "
        << f3(s_max) << " nats (a uniform spread over " << Tk << " keys would be `log " << Tk << " = " << f3(std::log(double(Tk)))
        << "`; " << (scaled_one_hot == 0 ? "no query is ever one-hot" : "hardly any query is one-hot")
        << "), and the median gradient reaching the query stays between " << lab::format_number(g_min, 2) << " and "
        << lab::format_number(g_max, 2) << ". Without the scale, the scores' spread grows as `√d_k`, from "
        << std::sqrt(double(dims.front())) << " to " << std::sqrt(double(dims.back())) << ". The entropy falls from "
        << f3(unscaled.front().entropy) << " to " << f3(u_top.entropy) << " nats, and at `d_k = " << dims.back() << "` "
        << lab::format_number(pct, 2) << "% of the queries put more than 99% of their weight on a single key. The gradient "
           "curve is the interesting one. It first *rises* ("
        << lab::format_number(unscaled.front().grad_median, 2) << " at `d_k = " << dims.front() << "`, "
        << lab::format_number(unscaled[peak].grad_median, 2) << " at " << dims[peak]
        << "): the unscaled gradient `Σ_j (dL/ds_j) k_j` carries keys of length `√d_k` and nothing divides them back down. "
           "Then the softmax saturates and the gradient collapses to "
        << lab::format_number(u_top.grad_median, 2) << " at `d_k = " << dims.back() << "`, "
        << lab::format_number(s_top.grad_median / u_top.grad_median, 2)
        << " times less than the scaled model's. We show the median over queries because the mean hides this. The few "
           "queries whose top two keys nearly tie still get a large gradient, since the keys are long and nothing scales them "
           "down. They pull the mean up to "
        << lab::format_number(u_top.grad_mean, 2) << " at `d_k = " << dims.back() << "` (in `saturation.csv`), "
        << (u_top.grad_mean > s_top.grad_mean ? "*above*" : "still below") << " the scaled model's "
        << lab::format_number(s_top.grad_mean, 2) << ", while a typical query gets almost nothing: a tenth of them get less than "
        << lab::format_number(u_top.grad_p10, 1)
        << ". A network in that state learns from a handful of near-ties, in huge steps, and hardly at all from the rest. "
           "Even the paper's `d_k = 64` per head would be uncomfortable without the `1/√d_k`: "
        << lab::format_number(pct64, 2) << "% of the rows are already one-hot there.";
      chapter.text("saturation_reading", r.str());
    }

    // The same claims for 5 seeds (this one and the next 4): new queries, keys, values.
    {
      const int seeds = 5;
      lab::SeedStats ratio, one_hot_u, entropy_ratio, spread;
      std::size_t hold = 0;
      for (int k = 0; k < seeds; ++k) {
        std::vector<Saturation> sk, uk;
        for (std::size_t d_k : dims) {
          const std::uint64_t seed = lab::derive_seed(args.seed + std::uint64_t(k), d_k);
          sk.push_back(k == 0 ? scaled[sk.size()] : saturate(N, Tk, d_k, 1.0 / std::sqrt(double(d_k)), seed));
          uk.push_back(k == 0 ? unscaled[uk.size()] : saturate(N, Tk, d_k, 1.0, seed));
        }
        double lo = 1e300, hi = 0;
        for (const auto& s : sk) lo = std::min(lo, s.entropy), hi = std::max(hi, s.entropy);
        const Saturation &s1 = sk.back(), &u1 = uk.back();
        ratio.add(u1.grad_median / s1.grad_median), one_hot_u.add(u1.one_hot), entropy_ratio.add(u1.entropy / s1.entropy);
        spread.add(hi - lo);
        hold += (u1.entropy < 0.1 * s1.entropy && u1.one_hot > 0.5 && s1.one_hot < 0.01 &&
                 u1.grad_median < 0.05 * s1.grad_median && hi - lo < 0.25)
                    ? 1
                    : 0;
      }
      checks.expect(hold == std::size_t(seeds), "the four saturation claims hold for " + std::to_string(hold) + " of " +
                                                    std::to_string(seeds) + " seeds");
      lab::Table st("d_k = 1024 over " + std::to_string(seeds) + " seeds (--seed " + std::to_string(args.seed) + " to " +
                        std::to_string(args.seed + seeds - 1) + ")",
                    {"figure", "median", "range", "claim"});
      st.row({"median |dL/dq|, unscaled / scaled", lab::Cell(ratio.median(), 3), ratio.range(), "< 0.05"});
      st.row({"one-hot share, unscaled", lab::Cell(one_hot_u.median(), 3), one_hot_u.range(), "> 0.5"});
      st.row({"entropy, unscaled / scaled", lab::Cell(entropy_ratio.median(), 3), entropy_ratio.range(), "< 0.1"});
      st.row({"scaled entropy, max - min over d_k", lab::Cell(spread.median(), 3), spread.range(), "< 0.25"});
      std::cout << "\n";
      st.print();
      st.save_markdown(args.path("report.md"), true);
      chapter.table("seeds", st);
      chapter.text("seeds_reading", "All four claims hold in " + std::to_string(hold) + " of " + std::to_string(seeds) +
                                        " seeds. The narrowest margin is the gradient ratio: at most " +
                                        lab::format_number(ratio.max(), 2) + " against the 0.05 threshold. It depends on "
                                        "the keys drawn for `d_k = 1024`.");
    }

    // ---- 3) Masks ------------------------------------------------------------------------------
    // Eight tokens of self-attention with random projections (d_k = 16): the pattern, not the
    // values, is the point. Sequence 0 is full length; sequence 1 has 5 tokens and 3 pads.
    std::cout << "\n3) Masks: 2 sequences of T = 8 tokens, the second padded after 5\n";
    const std::size_t T = 8, d = 16;
    const std::vector<std::size_t> lengths = {8, 5};
    ag::Generator gen(lab::derive_seed(args.seed, 99));
    const ag::Tensor q = ag::randn({2, T, d}, gen, kF64), k = ag::randn({2, T, d}, gen, kF64), v = ag::randn({2, T, d}, gen, kF64);

    const ag::Mask pad = nn::padding_mask(lengths, T);   // [B, T]: true at pads
    const ag::Mask pad_b = pad.reshape({2, 1, T});       // [B, 1, T]: every query row
    const ag::Mask causal = nn::causal_mask(T);          // [T, T]: true above the diagonal
    const ag::Mask both = pad_b | causal;                // [B, T, T]: blocked by either
    const auto w_pad = nn::scaled_dot_product_attention(q, k, v, pad_b).weights;
    const auto w_causal = nn::scaled_dot_product_attention(q, k, v, causal).weights;
    const auto w_both = nn::scaled_dot_product_attention(q, k, v, both).weights;

    const std::vector<std::string> words = {"the", "cat", "sat", "on", "the", "mat", "and", "purred"};
    const std::vector<std::string> padded = {"the", "cat", "sat", "on", "mat", "<pad>", "<pad>", "<pad>"};
    print_mask("causal_mask(8)", causal);
    print_matrix("causal weights, sequence 0", ag::select(w_causal, 0, 0));

    lab::HeatmapOptions hm{.xlabel = "key (attended to)", .ylabel = "query (attending)", .zmin = 0, .zmax = 1, .width = 640, .height = 560};
    hm.mark_zeros = true;  // a blocked weight (exactly 0) gets an x; a tiny weight does not
    hm.title = "Causal mask: query t sees keys 0..t (x = blocked, exactly 0)";
    hm.xticks = hm.yticks = words;
    lab::heatmap(args.path("causal.png"), ag::select(w_causal, 0, 0), hm);
    hm.title = "Padding mask: length 5 of 8 (x = blocked, exactly 0)";
    hm.xticks = hm.yticks = padded;
    lab::heatmap(args.path("padding.png"), ag::select(w_pad, 0, 1), hm);
    hm.title = "Causal + padding (x = blocked, exactly 0)";
    if (lab::heatmap(args.path("causal_padding.png"), ag::select(w_both, 0, 1), hm)) chapter.figure("causal_padding.png");

    lab::Table mt("Masked attention weights (float64)", {"mask", "sequence", "blocked entries", "blocked != 0", "worst |row sum - 1|"});
    MaskCheck worst;
    for (std::size_t b = 0; b < 2; ++b) {
      // sequence b's masks as [T, T]: its pad columns in every row, and with the causal triangle
      const ag::Mask pad_rows = nn::padding_mask({lengths[b]}, T).reshape({1, T}) | ag::Mask::full({T, T}, false);
      const std::vector<std::tuple<std::string, ag::Tensor, ag::Mask>> cases = {
          {"padding", ag::select(w_pad, 0, std::int64_t(b)), pad_rows},
          {"causal", ag::select(w_causal, 0, std::int64_t(b)), causal},
          {"causal + padding", ag::select(w_both, 0, std::int64_t(b)), pad_rows | causal}};
      for (const auto& [name, w, m] : cases) {
        const MaskCheck c = check_masked(w, m);
        mt.row({name, b, c.blocked, c.nonzero_blocked, c.worst_row_error});
        worst.blocked += c.blocked;
        worst.nonzero_blocked += c.nonzero_blocked;
        worst.worst_row_error = std::max(worst.worst_row_error, c.worst_row_error);
      }
    }
    mt.print();
    mt.save_markdown(args.path("report.md"), true);
    chapter.table("masks", mt);
    checks.expect(worst.blocked > 0 && worst.nonzero_blocked == 0,
                  "every masked weight is exactly 0.0 (" + std::to_string(worst.blocked) + " blocked entries)");
    checks.expect(worst.worst_row_error < 1e-12, "every row of weights sums to 1 (worst error " +
                                                     lab::format_number(worst.worst_row_error) + " < 1e-12)");
    // The smallest allowed weight in the picture: small, but not 0, so it gets no x.
    double smallest_allowed = 1;
    {
      const std::vector<double> wv = ag::select(w_both, 0, 1).to_vector();
      for (std::size_t i = 0; i < wv.size(); ++i)
        if (!both[T * T + i]) smallest_allowed = std::min(smallest_allowed, wv[i]);
    }
    checks.expect(smallest_allowed > 0, "no allowed weight in the picture is exactly 0, so only blocked cells carry an x");
    chapter.text("masks_reading",
                 "The picture is the weights of sequence 1 (5 real tokens, 3 pads) with both masks. Every blocked cell carries "
                 "an `x`: the upper triangle (the future) and the three pad columns on the right. They are exactly 0, which "
                 "is not the same as small: the smallest allowed weight in the picture is " +
                     lab::format_number(smallest_allowed, 2) + ", pale but without an `x`. Each row spreads its 1 over what is "
                     "left. All " + std::to_string(worst.blocked) + " blocked weights are exactly `0.0`, and every row sums to "
                     "1 to within float64 rounding (" + lab::format_number(worst.worst_row_error, 2) + ").");

    // ---- 3b) Float masks are added (PyTorch's rule) --------------------------------------------
    // The causal mask as a float mask, 0 where allowed and -inf where blocked, added to the
    // scores: the same weights to the bit. And a float mask of 0s and 1s is refused: added, its
    // 1s would block nothing.
    {
      const ag::Tensor causal_float = causal.additive(ag::f64);
      const auto w_added = nn::scaled_dot_product_attention(q, k, v, causal_float).weights;
      const std::vector<double> a = w_added.to_vector(), b = w_causal.to_vector();
      std::size_t differ = 0;
      for (std::size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
      std::string refusal = "(no error)";
      try {
        std::vector<double> ones(T * T);  // the causal mask as 0s and 1s (1 = "blocked"), as before PyTorch's rule
        for (std::size_t i = 0; i < ones.size(); ++i) ones[i] = causal[i] ? 1.0 : 0.0;
        nn::scaled_dot_product_attention(q, k, v, ag::tensor(ones, {T, T}, {kF64}));
      } catch (const ag::Error& e) {
        refusal = e.what();
      }
      std::cout << "\n  A float mask is added: causal_mask(8).additive(f64) (0 / -inf) gives weights that differ from the "
                   "Mask's in "
                << differ << " of " << a.size() << " entries.\n  A 0/1 float mask is refused: " << refusal << "\n";
      checks.expect(differ == 0, "the causal mask as a float mask (0 and -inf, added) gives the same weights to the bit (" +
                                     std::to_string(differ) + " of " + std::to_string(a.size()) + " differ)");
      checks.expect(refusal.find("holds only 0s and 1s") != std::string::npos,
                    "a float mask of 0s and 1s is refused with an error that says why");
      chapter.text("float_mask", "The causal mask written as a float mask, `causal_mask(8).additive(ag::f64)` (0 where allowed, "
                                 "−∞ where blocked) and added to the scores, gives weights that differ from the `ag::Mask`'s in " +
                                     std::to_string(differ) + " of " + std::to_string(a.size()) +
                                     " entries. The same mask as 0s and 1s in a float tensor is refused:\n\n```\n" + refusal +
                                     "\n```");
    }

    // ---- 4) The exercises' answers, measured (the chapter quotes them) ------------------------
    exercise_answers(chapter, N, Tk, dims, args.seed, q, k, v, T);

    std::cout << "\n";
    lab::plot_terminal(ent_series, ent);
    std::cout << "Wrote " << args.out.string() << "/: saturation.csv, entropy.png, gradient.png, causal.png, padding.png, "
              << "causal_padding.png (and .svg, .gp), report.md, chapter/\n";
    std::ostringstream report;
    const int status = checks.report(report);
    std::cout << report.str();
    chapter.text("checks", "```" + report.str() + "```");
    return status;
  });
}
