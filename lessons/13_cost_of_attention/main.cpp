// Lesson 13: the cost of attention.
//
// Naive attention builds the whole n x n matrix of weights: its time and memory grow as n^2.
// Tiled attention with an online softmax (Milakov & Gimelshein 2018; FlashAttention, Dao et al.
// 2022, and its backward from FlashAttention-2, Dao 2023) visits the keys one block at a time
// and never holds that matrix: the same output and the same gradients, with memory that grows
// as n. The engine has it as one op, ag::tiled_attention (autograd/src/ops_attention.cpp:
// forward_slice, backward_slice); this lesson measures it against the naive
// nn::scaled_dot_product_attention, then measures a whole training step against the sequence
// length. Local-window attention is cheaper still, but it is an approximation: it is only good
// when the true weights are local.
//
// Shape legend: n queries = keys (the sequence length), d width of one head (64),
//               B tile size of the tiled op (64 queries x 64 keys), w window half-width.
//
// Two kinds of measurement, kept apart in the chapter:
// - memory is counted, not sampled: this program replaces malloc and free (section 0) and adds up
//   the bytes every allocation asked for, so the peak of a step is the same number on every run;
// - time is CPU time of this thread (median of several runs): it differs from run to run and from
//   machine to machine, and the chapter's timing sections are not compared by the chapters test.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/cpu_time.hpp"
#include "common/heap_count.hpp"
#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

extern "C" void openblas_set_num_threads(int);  // OpenBLAS is linked through the engine

// 0) Counting the heap: common/heap_count.hpp (this program links it; see lessons/CMakeLists.txt).

namespace {

using ag::Tensor;
using lab::median_ms;
constexpr std::size_t kD = 64;  // d: width of one head
std::size_t g_block = 64;       // B: queries and keys per tile of ag::tiled_attention (--block)

// ---------------------------------------------------------------------------------------------
// 1) The two attentions: out = softmax(q k^T / sqrt(d)) v for one head; q, k, v: [n, d] -> [n, d].

// Naive: ag::attention_weights makes the weights A = softmax(q k^T / sqrt(d)), [n, n], then
// matmul(A, v). The graph keeps A for backward, and backward makes dA and dS, also [n, n].
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  return nn::scaled_dot_product_attention(q, k, v).output;
}

// Tiled: one op. Its forward walks [B, B] tiles with an online softmax and keeps only the output
// and each row's log-sum-exp L, [n]; its backward recomputes each tile's weights from L. No array
// of n x n floats exists at any moment, forward or backward.
Tensor tiled_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  return ag::tiled_attention(q, k, v, Tensor(), {.block = g_block});
}

// Exercise 3: causal attention, query i sees keys j <= i only.
Tensor naive_causal(const Tensor& q, const Tensor& k, const Tensor& v) {
  return nn::scaled_dot_product_attention(q, k, v, nn::causal_mask(q.shape()[0])).output;
}
Tensor tiled_causal(const Tensor& q, const Tensor& k, const Tensor& v) {
  return ag::tiled_attention(q, k, v, Tensor(), {.causal = true, .block = g_block});
}

using Attention = Tensor (*)(const Tensor&, const Tensor&, const Tensor&);

// q, k, v: three [n, d] tensors that require grad; the same numbers for the same n and seed.
std::vector<Tensor> make_qkv(std::size_t n, std::uint64_t seed) {
  ag::Generator g(seed + n);
  std::vector<Tensor> qkv;
  for (int i = 0; i < 3; ++i) qkv.push_back(ag::randn({n, kD}, g, {.requires_grad = true}));
  return qkv;
}

// Attention's share of one training step: the forward, which builds the graph and so keeps what
// backward will need, and, if asked, the backward of sum(out), which fills q, k, v's .grad.
void attention_step(Attention attend, const std::vector<Tensor>& qkv, bool backward) {
  for (Tensor t : qkv) t.zero_grad();  // Tensor is a handle: this frees the leaf's gradient
  const Tensor out = attend(qkv[0], qkv[1], qkv[2]);
  if (backward) ag::sum(out).backward();
}

// What each needs at the peak of forward + backward, worked out by hand (bytes, float32):
// - naive: three n x n arrays alive together, the weights A (kept by the forward), dA (from
//   matmul's backward) and dS (the scratch of attention_weights' backward); and four [n, d]
//   arrays, the output O, dv (from matmul's backward), dq and dk. The gradient dO of the output
//   is freed as soon as matmul's backward has used it, before attention_weights' backward runs.
// - tiled: five [n, d] arrays, O, dO (alive while the op's own backward runs), dq, dk, dv; and
//   L [n] and two [B, B] tiles, P and dS.
double nd_bytes(std::size_t n, int arrays) { return arrays * double(n) * double(kD) * sizeof(float); }
double naive_bytes_by_hand(std::size_t n) { return nd_bytes(n, 4) + 3.0 * double(n) * double(n) * sizeof(float); }
double tiled_bytes_by_hand(std::size_t n) { return nd_bytes(n, 5) + double(n + 2 * g_block * g_block) * sizeof(float); }

// The peak bytes of one attention step on q, k, v of length n (the step runs once first, so that
// what is made once per process, OpenBLAS's buffers say, is not counted).
std::int64_t step_bytes(Attention attend, std::size_t n, bool backward, std::uint64_t seed) {
  const std::vector<Tensor> qkv = make_qkv(n, seed);
  attention_step(attend, qkv, true);
  for (Tensor t : qkv) t.zero_grad();
  return heap::peak_growth([&] { attention_step(attend, qkv, backward); });
}

// ---------------------------------------------------------------------------------------------
// 2) Time: CPU time of this thread, the median of a few repetitions.

// thread_cpu_clock and median_ms: common/cpu_time.hpp.

// The n x n arrays a graph holds after the forward pass: walk back from the output and list the
// op of every node whose data is [n, n] (for the naive attention: "attention_weights").
std::vector<std::string> square_arrays_in_graph(const Tensor& out, std::size_t n) {
  std::vector<ag::Node*> stack{out.node()};
  std::set<ag::Node*> seen;
  std::vector<std::string> ops;
  while (!stack.empty()) {
    ag::Node* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->data.shape() == ag::Shape{n, n}) ops.insert(ops.begin(), node->op);
    for (const auto& in : node->inputs) stack.push_back(in.get());
  }
  return ops;
}

double max_abs_diff(const std::vector<double>& x, const std::vector<double>& y) {
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}
double max_abs_diff(const Tensor& a, const Tensor& b) { return max_abs_diff(a.to_vector(), b.to_vector()); }

// The largest difference between the outputs and between the gradients of two attentions.
std::pair<double, double> agreement(Attention a, Attention b, std::size_t n, std::uint64_t seed) {
  const std::vector<Tensor> qkv = make_qkv(n, seed);
  Tensor out[2];
  std::vector<double> grads[2];
  const Attention f[2] = {a, b};
  for (int m = 0; m < 2; ++m) {
    for (Tensor t : qkv) t.zero_grad();
    out[m] = f[m](qkv[0], qkv[1], qkv[2]);
    ag::sum(out[m]).backward();
    for (const Tensor& t : qkv) {
      const auto g = t.grad().to_vector();
      grads[m].insert(grads[m].end(), g.begin(), g.end());
    }
  }
  return {max_abs_diff(out[0], out[1]), max_abs_diff(grads[0], grads[1])};
}

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : ", ") + w;
  return s.empty() ? "none" : s;
}
std::string mb(double bytes, int digits = 4) { return lab::format_number(bytes / 1e6, digits); }

// ---------------------------------------------------------------------------------------------
// 3) The online softmax in plain C++, one query row at a time (float64): what forward_slice does
// for a tile, written out. rescale = false skips the shrink factor c (exercise 2).
struct RowResult {
  std::vector<double> out;  // [dv]
  double L = 0;             // log-sum-exp of the row's scores
};
RowResult online_softmax_row(const double* s, const double* v, std::size_t n, std::size_t dv, std::size_t block, bool rescale) {
  double m = -INFINITY, l = 0;
  std::vector<double> o(dv, 0.0);
  for (std::size_t j0 = 0; j0 < n; j0 += block) {
    const std::size_t j1 = std::min(n, j0 + block);
    double m_new = m;
    for (std::size_t j = j0; j < j1; ++j) m_new = std::max(m_new, s[j]);
    const double c = rescale ? std::exp(m - m_new) : 1.0;  // exp(-inf) = 0 on the first block
    l *= c;
    for (double& x : o) x *= c;
    for (std::size_t j = j0; j < j1; ++j) {
      const double p = std::exp(s[j] - m_new);
      l += p;
      for (std::size_t e = 0; e < dv; ++e) o[e] += p * v[j * dv + e];
    }
    m = m_new;
  }
  for (double& x : o) x /= l;
  return {o, m + std::log(l)};
}

// Attention of q, k, v [n, d] (float32 tensors) by online_softmax_row, row by row.
std::vector<double> online_attention(const std::vector<Tensor>& qkv, std::size_t block, bool rescale) {
  const std::vector<double> q = qkv[0].to_vector(), k = qkv[1].to_vector(), v = qkv[2].to_vector();
  const std::size_t n = qkv[0].size(0);
  const double scale = 1.0 / std::sqrt(double(kD));
  std::vector<double> out, s(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double dot = 0;
      for (std::size_t e = 0; e < kD; ++e) dot += q[i * kD + e] * k[j * kD + e];
      s[j] = dot * scale;
    }
    const RowResult r = online_softmax_row(s.data(), v.data(), n, kD, block, rescale);
    out.insert(out.end(), r.out.begin(), r.out.end());
  }
  return out;
}

// The chapter's worked example: one query, d = 1, blocks of 2, scores [1, 3 | 2, 5], values
// [10, 20 | 30, 40]; every intermediate number, computed.
std::string worked_example() {
  const double s[4] = {1, 3, 2, 5}, v[4] = {10, 20, 30, 40};
  auto f = [](double x, int digits = 5) { return lab::format_number(x, digits); };
  const double m1 = 3, l1 = std::exp(1 - m1) + std::exp(3 - m1), o1 = std::exp(1 - m1) * 10 + std::exp(3 - m1) * 20;
  const double m2 = 5, c = std::exp(m1 - m2), l2 = c * l1 + std::exp(2 - m2) + std::exp(5 - m2),
               o2 = c * o1 + std::exp(2 - m2) * 30 + std::exp(5 - m2) * 40;
  const RowResult r = online_softmax_row(s, v, 4, 1, 2, true);
  double direct_num = 0, direct_den = 0;
  for (int j = 0; j < 4; ++j) direct_num += std::exp(s[j] - 5) * v[j], direct_den += std::exp(s[j] - 5);
  std::ostringstream t;
  t << "```\n"
    << "block 1: m = 3, l = e^-2 + e^0 = " << f(l1) << ",          o = " << f(std::exp(-2.0), 4) << "·10 + 1·20 = " << f(o1) << "\n"
    << "block 2: m_new = 5, c = e^(3-5) = " << f(c, 4) << "\n"
    << "         l = " << f(c, 4) << "·" << f(l1) << " + e^-3 + e^0 = " << f(l2) << ",   o = " << f(c, 4) << "·" << f(o1) << " + "
    << f(std::exp(-3.0), 3) << "·30 + 1·40 = " << f(o2) << "\n"
    << "out = " << f(o2) << " / " << f(l2) << " = " << f(o2 / l2) << ",   L = 5 + log " << f(l2) << " = " << f(r.L) << "\n"
    << "direct:  softmax([1,3,2,5]) · [10,20,30,40] = (" << f(std::exp(-4.0), 3) << "·10 + " << f(std::exp(-2.0), 4) << "·20 + "
    << f(std::exp(-3.0), 3) << "·30 + 1·40) / " << f(direct_den) << " = " << f(direct_num / direct_den) << "\n"
    << "online_softmax_row (main.cpp), the same numbers in a loop: out = " << f(r.out[0]) << ", L = " << f(r.L) << "\n"
    << "from L alone (section 3): p_1 = exp(1 - L) = " << f(std::exp(1 - r.L), 4) << " = " << f(std::exp(-4.0), 3) << " / "
    << f(l2) << "\n"
    << "```";
  return t.str();
}

// ---------------------------------------------------------------------------------------------
// 4) Local-window attention: query i may attend to keys j with |i - j| <= w only.

// [n, n] band mask: true (blocked) where |i - j| > w.
ag::Mask band_mask(std::size_t n, std::size_t w) {
  std::vector<std::uint8_t> blocked(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) blocked[i * n + j] = (i > j ? i - j : j - i) > w;
  return ag::Mask({n, n}, std::move(blocked));
}

// ||a - b|| / ||b|| over all elements.
double relative_error(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) num += (x[i] - y[i]) * (x[i] - y[i]), den += y[i] * y[i];
  return std::sqrt(num / den);
}

// ---------------------------------------------------------------------------------------------
// 5) A whole training step against the sequence length T: forward, backward, Adam, zero_grad.
// One sequence (batch 1), so that the heights compare cost per sequence; the loss is the mean
// square of every position's output (with the RNN's last state alone, its gradient would vanish
// through time into float32's subnormal numbers, which x86 processors handle many times slower):
//   tanh RNN: input 64, hidden 128 (lessons 04-06), T steps one after another;
//   a post-LN Transformer encoder layer (lesson 11): D = 128, 4 heads, FFN 512, naive attention;
//   the same layer with TransformerOptions::attention = nn::AttentionImpl::tiled.
struct StepModel {
  virtual ~StepModel() = default;
  std::unique_ptr<nn::Adam> opt;
  virtual Tensor loss() = 0;
  void step() {
    const Tensor l = loss();
    l.backward();
    opt->step();
    opt->zero_grad();
  }
};
struct RnnModel : StepModel {
  ag::Generator gen;
  nn::Recurrent rnn;
  Tensor x;
  RnnModel(std::size_t T, std::uint64_t seed) : gen(seed), rnn(nn::CellKind::tanh_rnn, 64, 128, gen) {
    x = ag::randn({1, T, 64}, gen);
    opt = std::make_unique<nn::Adam>(rnn.parameters());
  }
  Tensor loss() override {  // every step's output counts, as every position does for the layer
    const Tensor out = rnn.forward(x).output;  // [1, T, 128]
    return ag::mean(out * out);
  }
};
struct LayerModel : StepModel {
  ag::Generator gen;
  nn::TransformerEncoderLayer layer;
  Tensor x;
  LayerModel(std::size_t T, nn::AttentionImpl impl, std::uint64_t seed)
      : gen(seed),
        layer(nn::TransformerOptions{.d_model = 128, .num_heads = 4, .dim_feedforward = 512, .dropout = 0.0, .norm_first = false,
                                     .attention = impl},
              gen) {
    x = ag::randn({1, T, 128}, gen);
    opt = std::make_unique<nn::Adam>(layer.parameters());
  }
  Tensor loss() override {
    const Tensor out = layer.forward(x);
    return ag::mean(out * out);
  }
};
constexpr std::size_t kLayerHeads = 4;

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("13_cost_of_attention",
               "O(n^2) attention measured; tiled attention (online softmax, ag::tiled_attention); local windows; a whole training step");
  cli.no_steps();
  bool full = false;
  std::size_t block = 64;
  cli.app().add_flag("--full", full, "longer sequences: n and T up to 4096 (about a minute of CPU time and 0.85 GB of memory)");
  cli.app().add_option("--block", block, "queries and keys per tile of ag::tiled_attention in the one-head measurements (the layer keeps its own)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    openblas_set_num_threads(1);  // one core for every kernel, naive and tiled alike
    g_block = block;
    const lab::Chapter chapter(args);
    lab::Checks checks, timing_checks;  // the second: claims about timings, with wide margins
    ag::Generator gen(args.seed);
    std::vector<std::size_t> sizes = {64, 128, 256, 512};
    if (!args.quick) sizes.insert(sizes.end(), {1024, 2048});
    if (full && !args.quick) sizes.push_back(4096);
    const std::size_t n_max = sizes.back();
    std::cout << "Lesson 13: the cost of attention (d = " << kD << ", one head, float32, one core, tiles of " << g_block << " x "
              << g_block << ")\n";
    chapter.text("worked_example", worked_example());

    // Index [method][pass] in every table below: method 0 naive, 1 tiled; pass 0 forward, 1 forward + backward.
    const Attention methods[2] = {naive_attention, tiled_attention};
    const char* method_name[2] = {"naive", "tiled"};
    const char* pass_name[2] = {"forward", "forward + backward"};

    // ---- part 1a: memory, counted (the same numbers on every run) ----
    std::vector<double> ns, mem[2][2];
    for (std::size_t n : sizes) {
      ns.push_back(double(n));
      for (int m = 0; m < 2; ++m)
        for (int pass = 0; pass < 2; ++pass) mem[m][pass].push_back(double(step_bytes(methods[m], n, pass == 1, args.seed)));
    }

    // ---- part 1b: time, and naive vs tiled outputs and gradients on the same numbers ----
    std::vector<double> ms[2][2], out_diffs, grad_diffs;
    std::vector<std::string> square_ops[2];
    {
      lab::Progress bar(std::int64_t(sizes.size()), "time");
      for (std::size_t n : sizes) {
        const int reps = n <= 256 ? 15 : n <= 1024 ? 7 : 5;
        const std::vector<Tensor> qkv = make_qkv(n, args.seed + 1000);
        for (int m = 0; m < 2; ++m) {
          for (int pass = 0; pass < 2; ++pass)
            ms[m][pass].push_back(median_ms([&] { attention_step(methods[m], qkv, pass == 1); }, reps));
          square_ops[m] = square_arrays_in_graph(methods[m](qkv[0], qkv[1], qkv[2]), n);
        }
        const auto [d_out, d_grad] = agreement(naive_attention, tiled_attention, n, args.seed + 1000);
        out_diffs.push_back(d_out);
        grad_diffs.push_back(d_grad);
        bar.tick({{"n", double(n)}, {"naive ms", ms[0][1].back()}, {"tiled ms", ms[1][1].back()}});
      }
    }

    // ---- the tables, the fitted exponents, the CSV files ----
    lab::CurveLog time_log(args.path("time.csv"),
                           {"naive_fwd_ms", "naive_fwd_bwd_ms", "tiled_fwd_ms", "tiled_fwd_bwd_ms", "n2_guide_ms"}, "n");
    lab::CurveLog mem_log(args.path("memory.csv"),
                          {"naive_fwd_MB", "naive_fwd_bwd_MB", "tiled_fwd_MB", "tiled_fwd_bwd_MB", "naive_fwd_bwd_by_hand_MB",
                           "tiled_fwd_bwd_by_hand_MB"},
                          "n");
    for (std::size_t i = 0; i < ns.size(); ++i) {
      const double r = ns[i] / ns.back(), guide = ms[0][1].back() * r * r;  // slope 2 through the last naive point
      time_log.log(ns[i], {ms[0][0][i], ms[0][1][i], ms[1][0][i], ms[1][1][i], guide});
      mem_log.log(ns[i], {mem[0][0][i] / 1e6, mem[0][1][i] / 1e6, mem[1][0][i] / 1e6, mem[1][1][i] / 1e6,
                          naive_bytes_by_hand(std::size_t(ns[i])) / 1e6, tiled_bytes_by_hand(std::size_t(ns[i])) / 1e6});
    }
    const std::size_t fit = 3;  // fit exponents on the three largest sizes: small n is all overhead
    const double from = ns[ns.size() > fit ? ns.size() - fit : 0];
    double p_time[2][2], p_mem[2][2];
    for (int m = 0; m < 2; ++m)
      for (int pass = 0; pass < 2; ++pass) {
        p_time[m][pass] = lab::loglog_slope(ns, ms[m][pass], from);
        p_mem[m][pass] = lab::loglog_slope(ns, mem[m][pass], from);
      }
    const double worst_out = *std::max_element(out_diffs.begin(), out_diffs.end());
    const double worst_grad = *std::max_element(grad_diffs.begin(), grad_diffs.end());
    const std::string fit_range = "n = " + std::to_string(std::size_t(from)) + " to " + std::to_string(n_max);

    lab::Table tt("Time: naive vs tiled attention (d = 64, float32, one core; median ms of CPU time)",
                  {"n", "naive fwd", "naive fwd+bwd", "tiled fwd", "tiled fwd+bwd"});
    for (std::size_t i = 0; i < ns.size(); ++i) tt.row({long(ns[i]), ms[0][0][i], ms[0][1][i], ms[1][0][i], ms[1][1][i]});
    lab::Table agree("Tiled against naive on the same q, k, v (float32)", {"n", "max |out diff|", "max |grad diff|"});
    for (std::size_t i = 0; i < ns.size(); ++i) agree.row({long(ns[i]), lab::Cell(out_diffs[i], 2), lab::Cell(grad_diffs[i], 2)});
    lab::Table mt("Memory: the most bytes held at once during the step, counted, in MB",
                  {"n", "one n x n array", "naive fwd", "naive fwd+bwd", "by hand", "tiled fwd", "tiled fwd+bwd", "by hand"});
    for (std::size_t i = 0; i < ns.size(); ++i) {
      const std::size_t n = std::size_t(ns[i]);
      mt.row({long(n), lab::Cell(double(n * n * sizeof(float)) / 1e6, 3), mem[0][0][i] / 1e6, mem[0][1][i] / 1e6,
              naive_bytes_by_hand(n) / 1e6, mem[1][0][i] / 1e6, mem[1][1][i] / 1e6, tiled_bytes_by_hand(n) / 1e6});
    }
    lab::Table time_fits("Fitted exponents p in time ~ n^p (" + fit_range + ")", {"pass", "naive", "tiled"});
    lab::Table mem_fits("Fitted exponents p in peak memory ~ n^p (" + fit_range + ")", {"pass", "naive", "tiled"});
    for (int pass = 0; pass < 2; ++pass) {
      time_fits.row({pass_name[pass], lab::Cell(p_time[0][pass], 3), lab::Cell(p_time[1][pass], 3)});
      mem_fits.row({pass_name[pass], lab::Cell(p_mem[0][pass], 3), lab::Cell(p_mem[1][pass], 3)});
    }
    for (const lab::Table* t : {&tt, &agree, &time_fits, &mt, &mem_fits}) {
      std::cout << "\n";
      t->print();
      t->save_markdown(args.path("report.md"), t != &tt);
    }
    chapter.table("time", tt, lab::Timing::yes);
    chapter.table("time_fits", time_fits, lab::Timing::yes);
    chapter.table("agreement", agree);
    chapter.table("memory", mt);
    chapter.table("memory_fits", mem_fits);
    std::string graph_lines;
    for (int m = 0; m < 2; ++m)
      graph_lines += "Arrays of n x n floats in the graph after the " + std::string(method_name[m]) + " forward: " +
                     std::to_string(square_ops[m].size()) + " (made by: " + join(square_ops[m]) + ")\n";
    std::cout << "\n" << graph_lines
              << "The naive backward adds two more, dA (matmul's backward) and dS (attention_weights' backward);\n"
                 "the tiled backward recomputes the weights one " << g_block << " x " << g_block << " tile at a time from L.\n";
    chapter.text("graph_arrays", "```\n" + graph_lines + "```");
    const std::size_t last = ns.size() - 1;
    chapter.text("memory_reading",
                 "At n = " + std::to_string(n_max) + " the naive forward holds `A` and `O`: " + mb(mem[0][0][last], 3) +
                     " MB. Its backward adds `dA` and `dS` while `A` is alive, and of the `[n, d]` arrays it holds four, `O`, "
                     "`dv`, `dq`, `dk`: " + mb(mem[0][1][last], 3) + " MB counted, " + mb(naive_bytes_by_hand(n_max), 3) +
                     " MB by hand. The tiled forward holds `O` and `L`: " + mb(mem[1][0][last], 3) +
                     " MB. Its backward holds five `[n, d]` arrays (`O`, `dO`, `dq`, `dk`, `dv`) plus `L` and two tiles: " +
                     mb(mem[1][1][last], 3) +
                     " MB counted, " + mb(tiled_bytes_by_hand(n_max), 3) + " MB by hand, **" +
                     lab::format_number(mem[0][1][last] / mem[1][1][last], 2) + " times less** than naive. Naive memory grows "
                     "with slope " + lab::format_number(p_mem[0][1], 3) + ", heading to 2; tiled with slope " +
                     lab::format_number(p_mem[1][1], 3) + ", linearly.");

    // ---- part 2: local-window attention, error vs window size ----
    // Two kinds of inputs: random q, k (attention spread over every key), and "local" q, k that
    // carry a position code (a sinusoidal encoding, scaled), so each query prefers its neighbours,
    // as in text. v is random in both.
    const std::size_t nw = args.quick ? 256 : 512;
    const Tensor v = ag::randn({nw, kD}, gen);
    const Tensor q_rand = ag::randn({nw, kD}, gen), k_rand = ag::randn({nw, kD}, gen);
    const Tensor pe = nn::SinusoidalPositionalEncoding(kD, nw).table();  // [n, d]
    const Tensor q_local = pe * 2.0 + ag::randn({nw, kD}, gen) * 0.5, k_local = pe * 2.0 + ag::randn({nw, kD}, gen) * 0.5;
    lab::CurveLog win_log(args.path("window.csv"), {"random_qk", "local_qk", "random_mass_outside", "local_mass_outside"}, "w");
    lab::Table wt("Local-window attention, n = " + std::to_string(nw) + ": what the window drops, and the error it makes",
                  {"window w", "keys per query", "weight outside, random", "weight outside, local", "rel. error, random",
                   "rel. error, local"});
    double err_local_16 = 0, err_rand_16 = 0, out_local_16 = 0, out_rand_16 = 0, err_full = 1;
    {
      ag::NoGrad ng;
      const auto full_rand = nn::scaled_dot_product_attention(q_rand, k_rand, v);
      const auto full_local = nn::scaled_dot_product_attention(q_local, k_local, v);
      // The share of the full attention weight that falls outside the window, averaged over queries.
      auto mass_outside = [nw](const Tensor& weights, const ag::Mask& mask) {
        const float* a = weights.data<float>().data();
        double out = 0;
        for (std::size_t i = 0; i < nw * nw; ++i) out += mask[i] ? a[i] : 0.0;
        return out / double(nw);
      };
      for (std::size_t w = 1; w < nw; w *= 2) {
        const ag::Mask mask = band_mask(nw, w);
        const double er = relative_error(nn::scaled_dot_product_attention(q_rand, k_rand, v, mask).output, full_rand.output);
        const double el = relative_error(nn::scaled_dot_product_attention(q_local, k_local, v, mask).output, full_local.output);
        const double mr = mass_outside(full_rand.weights, mask), ml = mass_outside(full_local.weights, mask);
        win_log.log(double(w), {er, el, mr, ml});
        wt.row({long(w), long(std::min(2 * w + 1, nw)), lab::Cell(mr, 3), lab::Cell(ml, 3), lab::Cell(er, 3), lab::Cell(el, 3)});
        if (w == 16) err_rand_16 = er, err_local_16 = el, out_rand_16 = mr, out_local_16 = ml;
      }
      // a window as wide as the sequence is no approximation at all
      const ag::Mask none = band_mask(nw, nw);
      err_full = std::max(relative_error(nn::scaled_dot_product_attention(q_rand, k_rand, v, none).output, full_rand.output),
                          relative_error(nn::scaled_dot_product_attention(q_local, k_local, v, none).output, full_local.output));
    }
    std::cout << "\n";
    wt.print();
    std::cout << "(w = " << nw << ", every key in the window: relative error " << lab::format_number(err_full, 3) << ")\n";
    wt.save_markdown(args.path("report.md"), true);
    chapter.table("window", wt);
    chapter.text("window_reading",
                 "With local `q, k`, a window of 16 on each side keeps " + lab::format_number(100 * (1 - out_local_16), 3) +
                     "% of the weight, and the output is within " + lab::format_number(100 * err_local_16, 2) +
                     "%. With random `q, k` the same window throws away " + lab::format_number(100 * out_rand_16, 3) +
                     "% of the weight, and the error (" + lab::format_number(err_rand_16, 3) +
                     ") is larger than the output itself. Random attention averages hundreds of values, so its output is small, "
                     "while a window averages only a few. The approximation is only as good as the locality of the real "
                     "weights. Only `w = n` (every key) makes it exact (error " + lab::format_number(err_full, 3) + ").");

    // ---- part 3: a whole training step against T ----
    std::vector<std::size_t> lengths = {32, 64, 128, 256, 512};
    if (!args.quick) lengths.insert(lengths.end(), {1024, 2048});
    if (full && !args.quick) lengths.push_back(4096);
    const char* model_name[3] = {"tanh RNN", "layer, naive attention", "layer, tiled attention"};
    std::vector<double> Ts, step_ms[3], step_mem[3];
    {
      lab::Progress bar(std::int64_t(lengths.size() * 3), "whole step");
      for (std::size_t T : lengths) {
        Ts.push_back(double(T));
        for (int m = 0; m < 3; ++m) {
          // Memory: the most bytes in use during a step, less what was in use before the model
          // existed: weights, gradients, Adam's moments, the input, and whatever the step holds.
          const std::int64_t before = heap::reset_peak();
          std::unique_ptr<StepModel> model;
          if (m == 0) model = std::make_unique<RnnModel>(T, args.seed + 2);
          else model = std::make_unique<LayerModel>(T, m == 1 ? nn::AttentionImpl::naive : nn::AttentionImpl::tiled, args.seed + 1);
          model->step();  // Adam's moments exist from the first step on
          heap::reset_peak();
          model->step();
          step_mem[m].push_back(double(heap::peak() - before));
          step_ms[m].push_back(median_ms([&] { model->step(); }, T >= 1024 ? 3 : 5));
          bar.tick({{"T", double(T)}, {"ms", step_ms[m].back()}});
        }
      }
    }
    const double T_from = Ts[Ts.size() > fit ? Ts.size() - fit : 0];
    double p_step_time[3], p_step_mem[3];
    for (int m = 0; m < 3; ++m) {
      p_step_time[m] = lab::loglog_slope(Ts, step_ms[m], T_from);
      p_step_mem[m] = lab::loglog_slope(Ts, step_mem[m], T_from);
    }
    const std::string T_range = "T = " + std::to_string(std::size_t(T_from)) + " to " + std::to_string(lengths.back());
    lab::CurveLog layer_log(args.path("layer_cost.csv"),
                            {"rnn_ms", "naive_ms", "tiled_ms", "rnn_MB", "naive_MB", "tiled_MB", "naive_attention_by_hand_MB",
                             "slope1_guide_ms", "slope2_guide_ms"},
                            "T");
    lab::Table lt("One training step (batch 1): median ms of CPU time", {"T", model_name[0], model_name[1], model_name[2]});
    lab::Table lm("One training step (batch 1): the most MB in use at once, counted (weights and Adam's state included)",
                  {"T", model_name[0], model_name[1], model_name[2], "naive: A, dA, dS by hand"});
    for (std::size_t i = 0; i < Ts.size(); ++i) {
      // At the naive step's peak (its backward): A and dA of every head, dS of one head at a time.
      const double attn = (2.0 * kLayerHeads + 1) * Ts[i] * Ts[i] * sizeof(float);
      const double r = Ts[i] / Ts.back();
      layer_log.log(Ts[i], {step_ms[0][i], step_ms[1][i], step_ms[2][i], step_mem[0][i] / 1e6, step_mem[1][i] / 1e6,
                            step_mem[2][i] / 1e6, attn / 1e6, step_ms[0].back() * r, step_ms[1].back() * r * r});
      lt.row({long(Ts[i]), step_ms[0][i], step_ms[1][i], step_ms[2][i]});
      lm.row({long(Ts[i]), step_mem[0][i] / 1e6, step_mem[1][i] / 1e6, step_mem[2][i] / 1e6, attn / 1e6});
    }
    lab::Table lft("Fitted exponents p in time ~ T^p (" + T_range + ")", {model_name[0], model_name[1], model_name[2]});
    lft.row({lab::Cell(p_step_time[0], 3), lab::Cell(p_step_time[1], 3), lab::Cell(p_step_time[2], 3)});
    lab::Table lfm("Fitted exponents p in memory ~ T^p (" + T_range + ")", {model_name[0], model_name[1], model_name[2]});
    lfm.row({lab::Cell(p_step_mem[0], 3), lab::Cell(p_step_mem[1], 3), lab::Cell(p_step_mem[2], 3)});
    for (const lab::Table* t : {&lt, &lft, &lm, &lfm}) {
      std::cout << "\n";
      t->print();
      t->save_markdown(args.path("report.md"), true);
    }
    chapter.table("layer_time", lt, lab::Timing::yes);
    chapter.table("layer_time_fits", lft, lab::Timing::yes);
    chapter.table("layer_memory", lm);
    chapter.table("layer_memory_fits", lfm);
    {
      const std::size_t L = Ts.size() - 1;
      const double gap_hi = step_mem[1][L] - step_mem[2][L], gap_lo = step_mem[1][L - 1] - step_mem[2][L - 1];
      const double attn = (2.0 * kLayerHeads + 1) * Ts[L] * Ts[L] * sizeof(float);
      chapter.text("layer_reading",
                   "At T = " + std::to_string(std::size_t(Ts[L])) + " a step of the naive layer holds " + mb(step_mem[1][L], 3) +
                       " MB at its peak, the tiled layer " + mb(step_mem[2][L], 3) + " MB and the RNN " + mb(step_mem[0][L], 3) +
                       " MB. The naive layer's attention arrays alone are " + mb(attn, 3) +
                       " MB by hand. What the naive layer needs beyond the tiled one grows " +
                       lab::format_number(gap_hi / gap_lo, 3) + " times from T = " + std::to_string(std::size_t(Ts[L - 1])) +
                       " to " + std::to_string(std::size_t(Ts[L])) + ", as a `T²` term does (4 per doubling) and a linear "
                       "one cannot (2). The tiled layer's memory "
                       "grows with exponent " + lab::format_number(p_step_mem[2], 3) + " and the RNN's with " +
                       lab::format_number(p_step_mem[0], 3) + ": linearly, and below 1 because the weights and Adam's state are "
                       "a constant share, larger at small T.");
    }

    // ---- the exercises' answers, measured here ----
    // 1. Block size: the same output, other memory (and time) at the largest n.
    const std::size_t n_ex = n_max;
    std::vector<std::size_t> blocks = {16, 64, 512};
    lab::Table bt("Tiled attention at n = " + std::to_string(n_ex) + " with other tiles", {"block B", "max |out diff| vs naive",
                                                                                            "max |grad diff| vs naive", "fwd+bwd MB, counted", "by hand"});
    lab::Table btt("Tiled attention at n = " + std::to_string(n_ex) + " with other tiles: median ms of CPU time",
                   {"block B", "fwd+bwd ms"});
    std::vector<double> block_mem;
    double block_worst = 0;
    for (std::size_t b : blocks) {
      const std::size_t saved = g_block;
      g_block = b;
      const auto [d_out, d_grad] = agreement(naive_attention, tiled_attention, n_ex, args.seed + 1000);
      block_worst = std::max(block_worst, d_out);
      block_mem.push_back(double(step_bytes(tiled_attention, n_ex, true, args.seed)));
      const std::vector<Tensor> qkv = make_qkv(n_ex, args.seed + 1000);
      const double t = median_ms([&] { attention_step(tiled_attention, qkv, true); }, 5);
      bt.row({long(b), lab::Cell(d_out, 2), lab::Cell(d_grad, 2), block_mem.back() / 1e6, tiled_bytes_by_hand(n_ex) / 1e6});
      btt.row({long(b), t});
      g_block = saved;
    }
    chapter.table("answer1", bt);
    chapter.table("answer1_time", btt, lab::Timing::yes);
    // 2. The online softmax without its shrink factor c, against the naive attention.
    const std::size_t n_row = 256;
    double err_with = 0, err_without = 0;
    {
      const std::vector<Tensor> qkv = make_qkv(n_row, args.seed + 1000);
      ag::NoGrad ng;
      const std::vector<double> naive = naive_attention(qkv[0], qkv[1], qkv[2]).to_vector();
      err_with = max_abs_diff(online_attention(qkv, 64, true), naive);
      err_without = max_abs_diff(online_attention(qkv, 64, false), naive);
      const double s[4] = {1, 3, 2, 5}, vv[4] = {10, 20, 30, 40};
      chapter.text("answer2",
                   "*Measured:* `online_softmax_row` (main.cpp) with `c = 1` gives " +
                       lab::format_number(online_softmax_row(s, vv, 4, 1, 2, false).out[0], 5) + " instead of " +
                       lab::format_number(online_softmax_row(s, vv, 4, 1, 2, true).out[0], 5) +
                       " on the worked example. On random `q, k, v` at n = " + std::to_string(n_row) +
                       " (blocks of 64), its largest difference from the naive attention is " + lab::format_number(err_without, 3) +
                       " without `c` and " + lab::format_number(err_with, 2) + " with it.");
    }
    // 3. Causal attention: the tiled op skips the tiles above the diagonal, the naive one masks them.
    const auto [c_out, c_grad] = agreement(naive_causal, tiled_causal, n_ex, args.seed + 1000);
    double causal_ms[2][2];  // [method][causal]
    {
      const std::vector<Tensor> qkv = make_qkv(n_ex, args.seed + 1000);
      const Attention plain[2] = {naive_attention, tiled_attention}, causal[2] = {naive_causal, tiled_causal};
      for (int m = 0; m < 2; ++m) {
        causal_ms[m][0] = median_ms([&] { attention_step(plain[m], qkv, true); }, 5);
        causal_ms[m][1] = median_ms([&] { attention_step(causal[m], qkv, true); }, 5);
      }
    }
    chapter.text("answer3", "*Measured:* with the causal mask the outputs still agree to " + lab::format_number(c_out, 2) +
                                " and the gradients to " + lab::format_number(c_grad, 2) + " (n = " + std::to_string(n_ex) + ").");
    lab::Table ct("Forward + backward at n = " + std::to_string(n_ex) + ", median ms of CPU time", {"", "naive", "tiled"});
    ct.row({"every key", causal_ms[0][0], causal_ms[1][0]});
    ct.row({"causal", causal_ms[0][1], causal_ms[1][1]});
    chapter.table("answer3_time", ct, lab::Timing::yes);

    // ---- plots ----
    // One colour per method (naive purple, tiled green); solid for forward + backward, dashed for
    // the forward alone; what was worked out by hand as large grey rings around the counted points.
    const double x_lo = 0.8 * ns.front(), x_hi = 1.25 * ns.back();
    if (lab::plot(args.path("time.png"),
                  {{time_log.path(), "naive_fwd_bwd_ms", "naive, forward + backward", "n", "linespoints lc 1"},
                   {time_log.path(), "tiled_fwd_bwd_ms", "tiled, forward + backward", "n", "linespoints lc 2"},
                   {time_log.path(), "naive_fwd_ms", "naive, forward", "n", "linespoints dt 2 lc 1"},
                   {time_log.path(), "tiled_fwd_ms", "tiled, forward", "n", "linespoints dt 2 lc 2"},
                   {time_log.path(), "n2_guide_ms", "slope 2 (time ~ n^2)", "n", "lines dt 3 lc rgb 'gray30'"}},
                  {.title = "Attention time vs sequence length (log-log)", .xlabel = "sequence length n",
                   .ylabel = "milliseconds of CPU time (median)", .logx = true, .logy = true,
                   .ymax = 20 * std::max(ms[0][1].back(), ms[1][1].back()), .xmin = x_lo, .xmax = x_hi,
                   .key = "top left"}))  // headroom above the curves for the legend
      chapter.figure("time.png");
    if (lab::plot(args.path("memory.png"),
                  {{mem_log.path(), "naive_fwd_bwd_by_hand_MB", "by hand: 3 n x n (A, dA, dS) + 4 n d (O, dv, dq, dk)", "n", "points pt 6 ps 2.5 lc rgb 'gray40'"},
                   {mem_log.path(), "tiled_fwd_bwd_by_hand_MB", "by hand: 5 n d (O, dO, dq, dk, dv) + L + 2 tiles", "n",
                    "points pt 4 ps 2.5 lc rgb 'gray40'"},
                   {mem_log.path(), "naive_fwd_bwd_MB", "naive, forward + backward (counted)", "n", "linespoints lc 1"},
                   {mem_log.path(), "tiled_fwd_bwd_MB", "tiled, forward + backward (counted)", "n", "linespoints lc 2"},
                   {mem_log.path(), "naive_fwd_MB", "naive, forward (counted)", "n", "linespoints dt 2 lc 1"},
                   {mem_log.path(), "tiled_fwd_MB", "tiled, forward (counted)", "n", "linespoints dt 2 lc 2"}},
                  {.title = "Attention memory vs sequence length (log-log)", .xlabel = "sequence length n",
                   .ylabel = "MB held at once (counted)", .logx = true, .logy = true,
                   .ymax = 50 * naive_bytes_by_hand(n_max) / 1e6, .xmin = x_lo, .xmax = x_hi, .key = "top left"}))
      chapter.figure("memory.png");
    if (lab::plot(args.path("window.png"),
                  {{win_log.path(), "random_qk", "random q, k (no locality)", "w", "linespoints"},
                   {win_log.path(), "local_qk", "q, k with a position code (local)", "w", "linespoints"}},
                  {.title = "Local-window attention, n = " + std::to_string(nw) + ": error vs window (log-log)",
                   .xlabel = "window half-width w (query i sees keys i-w .. i+w)",
                   .ylabel = "relative error ||O_w - O|| / ||O||", .logx = true, .logy = true}))
      chapter.figure("window.png");
    const double t_lo = 0.8 * Ts.front(), t_hi = 1.25 * Ts.back();
    if (lab::plot(args.path("layer_time.png"),
                  {{layer_log.path(), "rnn_ms", "tanh RNN", "T", "linespoints lc 1"},
                   {layer_log.path(), "naive_ms", "Transformer layer, naive attention (wide: tiled runs on top)", "T",
                    "linespoints lc 2", 5},
                   {layer_log.path(), "tiled_ms", "Transformer layer, tiled attention", "T", "linespoints lc 3"},
                   {layer_log.path(), "slope1_guide_ms", "slope 1 (through the RNN)", "T", "lines dt 3 lc rgb 'gray50'"},
                   {layer_log.path(), "slope2_guide_ms", "slope 2 (through naive)", "T", "lines dt 2 lc rgb 'gray30'"}},
                  {.title = "One training step (batch 1) against sequence length (log-log)", .xlabel = "sequence length T",
                   .ylabel = "milliseconds of CPU time (median)", .logx = true, .logy = true,
                   .ymax = 30 * std::max(step_ms[1].back(), step_ms[0].back()), .xmin = t_lo, .xmax = t_hi, .key = "top left"}))
      chapter.figure("layer_time.png");
    if (lab::plot(args.path("layer_memory.png"),
                  {{layer_log.path(), "rnn_MB", "tanh RNN", "T", "linespoints lc 1"},
                   {layer_log.path(), "naive_MB", "Transformer layer, naive attention (wide: tiled runs on top at small T)", "T",
                    "linespoints lc 2", 5},
                   {layer_log.path(), "tiled_MB", "Transformer layer, tiled attention", "T", "linespoints lc 3"},
                   {layer_log.path(), "naive_attention_by_hand_MB", "by hand: A and dA of 4 heads, dS of one ((2H + 1) T^2 floats)", "T",
                    "points pt 6 ps 2.5 lc rgb 'gray40'"}},
                  {.title = "One training step (batch 1): memory held at once (log-log)", .xlabel = "sequence length T",
                   .ylabel = "MB (counted)", .logx = true, .logy = true, .ymax = 30 * step_mem[1].back() / 1e6, .xmin = t_lo,
                   .xmax = t_hi, .key = "top left"}))
      chapter.figure("layer_memory.png");
    std::cout << "\nMemory of attention, forward + backward, vs n (log-log):\n";
    lab::plot_terminal({{mem_log.path(), "naive_fwd_bwd_MB", "naive", "n", "linespoints"},
                        {mem_log.path(), "tiled_fwd_bwd_MB", "tiled", "n", "linespoints"}},
                       {.xlabel = "n", .ylabel = "MB", .logx = true, .logy = true, .xmin = x_lo, .xmax = x_hi});
    std::cout << "Wrote " << args.out.string() << "/{time,memory,window,layer_time,layer_memory}.{csv,png,svg}, report.md, chapter/\n";

    // ---- checks: the lesson's claims ----
    // Counted bytes are exact, so the memory claims are checked tightly; timings vary with the
    // machine and its load, so their claims have wide margins (linear time would give a ratio of
    // 4 for 4 times the length, quadratic 16).
    checks.expect(heap::exact(), "every allocation was counted (the table of live blocks never filled)");
    checks.expect(worst_out < 1e-5, "tiled attention gives the naive output to 1e-5 at every n (max |diff| = " +
                                        lab::format_number(worst_out, 2) + ")");
    checks.expect(worst_grad < 1e-4, "and the naive gradients dq, dk, dv to 1e-4 (max |diff| = " + lab::format_number(worst_grad, 2) + ")");
    checks.expect(square_ops[0].size() == 1 && square_ops[1].empty(),
                  "the naive graph keeps an n x n array (" + join(square_ops[0]) + "), the tiled graph none");
    const double naive_lo = args.quick ? 1.5 : 1.8;
    checks.expect(p_mem[0][1] > naive_lo && p_mem[0][1] < 2.05,
                  "naive memory (forward + backward) is quadratic: exponent " + lab::format_number(p_mem[0][1], 3) + " in [" +
                      lab::format_number(naive_lo, 2) + ", 2.05]");
    checks.expect(p_mem[1][1] > 0.85 && p_mem[1][1] < 1.05,
                  "tiled memory (forward + backward) is linear: exponent " + lab::format_number(p_mem[1][1], 3) + " in [0.85, 1.05]");
    const double hand_err = std::max(std::abs(mem[0][1][last] / naive_bytes_by_hand(n_max) - 1),
                                     std::abs(mem[1][1][last] / tiled_bytes_by_hand(n_max) - 1));
    checks.expect(hand_err < 0.02, "at n = " + std::to_string(n_max) + " the counted peaks are the ones worked out by hand, within " +
                                       lab::format_number(100 * hand_err, 2) + "% (< 2%)");
    const double ratio = args.quick ? 3 : 10;
    checks.expect(mem[1][1][last] * ratio < mem[0][1][last],
                  "at n = " + std::to_string(n_max) + " tiled forward + backward needs < 1/" + lab::format_number(ratio, 2) +
                      " of the naive peak memory (" + mb(mem[1][1][last], 3) + " vs " + mb(mem[0][1][last], 3) + " MB)");
    checks.expect(err_full < 1e-6, "a window covering every key is exact (error " + lab::format_number(err_full, 3) + ")");
    checks.expect(err_local_16 < 0.5 * err_rand_16, "a window of 16 approximates local attention far better than random attention (" +
                                                        lab::format_number(err_local_16, 3) + " vs " + lab::format_number(err_rand_16, 3) + ")");
    // The naive layer's extra memory over the tiled one is its attention arrays: it grows as T^2.
    const std::size_t L = Ts.size() - 1;
    const double gap_hi = step_mem[1][L] - step_mem[2][L], gap_lo = step_mem[1][L - 1] - step_mem[2][L - 1];
    checks.expect(gap_lo > 0 && gap_hi / gap_lo > 3.5,
                  "a training step's memory: what the naive layer needs beyond the tiled one grows x" +
                      lab::format_number(gap_hi / std::max(gap_lo, 1.0), 3) + " from T = " + std::to_string(std::size_t(Ts[L - 1])) +
                      " to " + std::to_string(std::size_t(Ts[L])) + " (> 3.5; as T^2, where linear growth would give 2)");
    if (!args.quick)
      checks.expect(p_step_mem[1] > 1.5 && p_step_mem[2] < 1.05 && p_step_mem[0] < 1.05,
                    "a training step's memory: the naive layer's exponent " + lab::format_number(p_step_mem[1], 3) +
                        " > 1.5, the tiled layer's " + lab::format_number(p_step_mem[2], 3) + " and the RNN's " +
                        lab::format_number(p_step_mem[0], 3) + " < 1.05 (" + T_range + ")");
    checks.expect(block_worst < 1e-5 && block_mem[2] > block_mem[1],
                  "tiles of 16, 64 and 512 give the same output (" + lab::format_number(block_worst, 2) +
                      "); tiles of 512 take more memory than tiles of 64");
    checks.expect(err_with < 1e-5 && err_without > 0.1, "the online softmax needs its shrink factor c: error " +
                                                            lab::format_number(err_with, 2) + " with it, " +
                                                            lab::format_number(err_without, 3) + " without");
    checks.expect(c_out < 1e-5 && c_grad < 1e-4, "causal: tiled and naive agree (out " + lab::format_number(c_out, 2) + ", grad " +
                                                      lab::format_number(c_grad, 2) + ")");

    const std::size_t quarter = ns.size() >= 3 ? ns.size() - 3 : 0;  // the n four times smaller than the largest
    for (int m = 0; m < 2; ++m) {
      const double grow = ms[m][1].back() / ms[m][1][quarter];
      timing_checks.expect(grow > 6, std::string(method_name[m]) + " time (forward + backward) grows faster than n: x" +
                                         lab::format_number(grow, 3) + " from n = " + std::to_string(std::size_t(ns[quarter])) +
                                         " to " + std::to_string(n_max) + " (> 6; linear would be 4, quadratic 16)");
    }
    if (!args.quick) {
      timing_checks.expect(p_step_time[1] > p_step_time[0] + 0.4,
                           "a training step's time: the naive layer's exponent " + lab::format_number(p_step_time[1], 3) +
                               " exceeds the RNN's " + lab::format_number(p_step_time[0], 3) + " by > 0.4 (" + T_range + ")");
      timing_checks.expect(causal_ms[1][1] < 0.8 * causal_ms[1][0],
                           "causal tiled attention skips work: " + lab::format_number(causal_ms[1][1], 3) + " ms against " +
                               lab::format_number(causal_ms[1][0], 3) + " ms for every key (< 0.8 x)");
    }

    std::ostringstream report, timing_report;
    const int status = checks.report(report), timing_status = timing_checks.report(timing_report);
    std::string timing_text = timing_report.str();
    if (const auto at = timing_text.find("Checks:"); at != std::string::npos)
      timing_text.replace(at, 7, "Checks on timings (CPU time varies with the machine and its load, hence the wide margins):");
    std::cout << report.str() << timing_text;
    chapter.text("checks", "```" + report.str() + "```");
    chapter.text("timing_checks", "```" + timing_text + "```", lab::Timing::yes);
    return status || timing_status ? 1 : 0;
  });
}
