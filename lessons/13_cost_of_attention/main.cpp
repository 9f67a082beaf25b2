// Lesson 13: the cost of attention.
//
// Naive attention builds the whole n x n matrix of scores; its time and memory grow as n^2.
// A tiled attention with an online softmax (Milakov & Gimelshein 2018; the forward pass of
// FlashAttention, Dao et al. 2022) visits the keys one block at a time and never holds that
// matrix: the same output, with extra memory that grows as n. Local-window attention is cheaper
// still, but it is an approximation: it is only good when the true weights are local.
//
// Shape legend: n queries = keys (the sequence length), d width of one head (64),
//               Bk keys per block of the tiled kernel (64), w window half-width.
#include <fcntl.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"

extern "C" void openblas_set_num_threads(int);  // OpenBLAS is linked through the engine

namespace {

using ag::Tensor;
constexpr std::size_t kD = 64;      // d: width of one head
constexpr std::size_t kBlock = 64;  // Bk: keys per block of the tiled kernel

// ---------------------------------------------------------------------------------------------
// 1) The tiled attention with an online softmax, on raw float arrays.
//
// For each query row i, softmax(s_i) v needs the row's max (for stability) and its sum of
// exponentials before any weight is known. The online softmax keeps both as running values and
// fixes up what it has accumulated whenever the max grows:
//   for each block of keys j in [j0, j0 + Bk):
//     s_ij   = q_i . k_j / sqrt(d)                             scores of this block only: [n, Bk]
//     m_new  = max(m_i, max_j s_ij)                             running max of row i
//     c      = exp(m_i - m_new)                                 how much the old terms shrink
//     l_i    = c l_i + sum_j exp(s_ij - m_new)                  running sum of exponentials
//     o_i    = c o_i + sum_j exp(s_ij - m_new) v_j              running unnormalised output
//     m_i    = m_new
//   out_i = o_i / l_i
// Extra memory: the block of scores [n, Bk] plus m and l [n]: n (Bk + 2) floats, linear in n.
//
// out: [n, d]; q, k, v: [n, d] row-major; block = Bk.
void tiled_attention_forward(float* out, const float* q, const float* k, const float* v, std::size_t n,
                             std::size_t d, std::size_t block) {
  const float scale = 1.0f / std::sqrt(float(d));
  std::vector<float> s(n * block);                                         // scores of one block
  std::vector<float> m(n, -std::numeric_limits<float>::infinity()), l(n, 0.0f);  // running max, sum
  std::fill(out, out + n * d, 0.0f);
  for (std::size_t j0 = 0; j0 < n; j0 += block) {
    const std::size_t bk = std::min(block, n - j0);
    for (std::size_t i = 0; i < n; ++i) {
      const float* qi = q + i * d;
      float* si = s.data() + i * block;
      float* oi = out + i * d;
      // 1) scores of row i against the block, and their max
      float block_max = -std::numeric_limits<float>::infinity();
      for (std::size_t j = 0; j < bk; ++j) {
        const float* kj = k + (j0 + j) * d;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;  // four partial sums: independent, so the loop pipelines
        const std::size_t d4 = d - d % 4;
        std::size_t t = 0;
        for (; t < d4; t += 4) {
          a0 += qi[t] * kj[t];
          a1 += qi[t + 1] * kj[t + 1];
          a2 += qi[t + 2] * kj[t + 2];
          a3 += qi[t + 3] * kj[t + 3];
        }
        for (; t < d; ++t) a0 += qi[t] * kj[t];
        si[j] = (a0 + a1 + a2 + a3) * scale;
        block_max = std::max(block_max, si[j]);
      }
      // 2) the new running max; shrink what was accumulated against the old one
      const float m_new = std::max(m[i], block_max);
      const float c = std::exp(m[i] - m_new);  // exp(-inf) = 0 on the first block
      l[i] *= c;
      for (std::size_t t = 0; t < d; ++t) oi[t] *= c;
      // 3) add this block's terms
      for (std::size_t j = 0; j < bk; ++j) {
        const float p = std::exp(si[j] - m_new);
        l[i] += p;
        const float* vj = v + (j0 + j) * d;
        for (std::size_t t = 0; t < d; ++t) oi[t] += p * vj[t];
      }
      m[i] = m_new;
    }
  }
  // 4) normalise once, at the end
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t t = 0; t < d; ++t) out[i * d + t] /= l[i];
}

// The analytic extra memory of the tiled kernel: the block of scores and m, l (bytes).
double tiled_extra_bytes(std::size_t n) { return double(n * (kBlock + 2) * sizeof(float)); }

// ---------------------------------------------------------------------------------------------
// 2) Measuring: time (median of a few repetitions) and memory (peak resident set growth).

// A std::chrono clock that counts only this thread's CPU time. Other engineers' programs share
// the two cores; a wall clock would charge their time to whichever run they interrupted (and more
// often to the long runs, bending the fitted exponents). With OpenBLAS on one thread, this
// thread's CPU time is the whole cost of the kernel.
struct thread_cpu_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<thread_cpu_clock>;
  static constexpr bool is_steady = true;
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return time_point(duration(std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec));
  }
};

// Median over `reps` runs of f(), in milliseconds of CPU time, after one warm-up run.
template <class F>
double median_ms(F&& f, int reps) {
  f();  // warm-up: first-touch page faults, OpenBLAS buffers
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = thread_cpu_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(thread_cpu_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

// A field of /proc/self/status in bytes ("VmRSS": resident now, "VmHWM": the peak so far), or -1.
// Read into a buffer on the stack, so that reading it allocates nothing.
double status_bytes(const char* field) {
  char buf[8192];
  const int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return -1;
  const ssize_t got = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (got <= 0) return -1;
  buf[got] = 0;
  const char* line = std::strstr(buf, field);
  return line ? 1024.0 * std::strtod(line + std::strlen(field) + 1, nullptr) : -1;
}

// How much the peak resident memory grows while run() works, in bytes, measured in a child
// process so each configuration starts clean: setup() makes the inputs, then the peak counter is
// reset (writing "5" to /proc/self/clear_refs, Linux >= 4.0), then run() works and the new peak
// is read. Large blocks go to fresh mmap()ed pages, so freed memory is not silently reused.
// The kernel updates these counters in batches: expect about +-0.3 MB of jitter.
template <class Setup, class Run>
double peak_growth_bytes(Setup setup, Run run) {
  malloc_trim(0);
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::cout << std::flush;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {  // child
    close(fds[0]);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    auto state = setup();
    const int fd = open("/proc/self/clear_refs", O_WRONLY);
    const bool reset = fd >= 0 && write(fd, "5", 1) == 1;
    if (fd >= 0) close(fd);
    const double base = status_bytes(reset ? "VmHWM" : "VmRSS");
    run(state);
    const double growth = status_bytes("VmHWM") - base;
    if (write(fds[1], &growth, sizeof growth) != sizeof growth) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  double growth = -1;
  if (read(fds[0], &growth, sizeof growth) != sizeof growth) growth = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return growth;
}

// The n x n arrays a graph holds after the forward pass: walk back from the output and list the
// op of every node whose data is [n, n] (e.g. "matmul" for the scores, "softmax" for the weights).
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

double max_abs_diff(const float* a, const float* b, std::size_t size) {
  double m = 0;
  for (std::size_t i = 0; i < size; ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

// ---------------------------------------------------------------------------------------------
// 3) Local-window attention: query i may attend to keys j with |i - j| <= w only.

// [n, n] band mask: 1 (blocked) where |i - j| > w, as nn::scaled_dot_product_attention wants.
Tensor band_mask(std::size_t n, std::size_t w) {
  Tensor mask = ag::zeros({n, n});
  float* p = mask.data<float>().data();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) p[i * n + j] = (i > j ? i - j : j - i) > w ? 1.0f : 0.0f;
  return mask;
}

// ||a - b|| / ||b|| over all elements.
double relative_error(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) num += (x[i] - y[i]) * (x[i] - y[i]), den += y[i] * y[i];
  return std::sqrt(num / den);
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("13_cost_of_attention", "O(n^2) attention measured; tiled attention with an online softmax; local windows");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    openblas_set_num_threads(1);  // one core for every kernel, naive and tiled alike
    ag::Generator gen(args.seed);
    const std::vector<std::size_t> sizes =
        args.quick ? std::vector<std::size_t>{64, 128, 256, 512} : std::vector<std::size_t>{64, 128, 256, 512, 1024, 2048};
    const std::size_t n_max = sizes.back();
    std::cout << "Lesson 13: the cost of attention (d = " << kD << ", one head, float32, one core)\n";

    // ---- part 1: memory, each configuration in its own child process ----
    {  // warm up once in this process, so no child pays for OpenBLAS's first-use buffers
      Tensor x = ag::randn({n_max, kD}, gen, {.requires_grad = true});
      ag::sum(nn::scaled_dot_product_attention(x, x, x).output).backward();
    }
    std::vector<double> naive_mem, tiled_mem;
    {
      lab::Progress bar(std::int64_t(sizes.size()), "memory");
      for (std::size_t n : sizes) {
        auto make_naive = [&, n] {
          ag::Generator g(args.seed + n);
          std::vector<Tensor> qkv;
          for (int i = 0; i < 3; ++i) qkv.push_back(ag::randn({n, kD}, g, {.requires_grad = true}));
          Tensor x = ag::randn({16, kD}, g, {.requires_grad = true});  // warm up the child on a tiny input
          ag::sum(nn::scaled_dot_product_attention(x, x, x).output).backward();
          return qkv;
        };
        naive_mem.push_back(peak_growth_bytes(make_naive, [](std::vector<Tensor>& qkv) {
          const Tensor out = nn::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).output;
          ag::sum(out).backward();
        }));
        auto make_raw = [&, n] {
          ag::Generator g(args.seed + n);
          std::vector<float> qkv(3 * n * kD);
          for (auto& x : qkv) x = float(g.normal());
          std::vector<float> out(16 * kD);  // warm up the child on a tiny input
          tiled_attention_forward(out.data(), qkv.data(), qkv.data(), qkv.data(), 16, kD, kBlock);
          return qkv;
        };
        tiled_mem.push_back(peak_growth_bytes(make_raw, [n](std::vector<float>& qkv) {
          std::vector<float> out(n * kD);
          tiled_attention_forward(out.data(), qkv.data(), qkv.data() + n * kD, qkv.data() + 2 * n * kD, n, kD, kBlock);
        }));
        bar.tick();
      }
    }
    const bool rss_measured = std::all_of(naive_mem.begin(), naive_mem.end(), [](double b) { return b >= 0; });

    // ---- part 2: time, and naive vs tiled outputs ----
    lab::CurveLog time_log(args.path("time.csv"), {"naive_fwd_bwd_ms", "naive_fwd_ms", "tiled_fwd_ms", "n2_guide_ms"}, "n");
    lab::CurveLog mem_log(args.path("memory.csv"),
                          {"naive_weights_MB", "naive_graph_nxn_MB", "naive_peak_rss_MB", "tiled_extra_MB", "tiled_peak_rss_MB"}, "n");
    std::vector<double> ns, t_fb, t_f, t_tiled, diffs, weights_mb;
    std::vector<std::string> square_ops;
    {
      lab::Progress bar(std::int64_t(sizes.size()), "time");
      for (std::size_t n : sizes) {
        const int reps = n <= 256 ? 15 : n <= 1024 ? 7 : 5;
        Tensor q = ag::randn({n, kD}, gen, {.requires_grad = true});
        Tensor k = ag::randn({n, kD}, gen, {.requires_grad = true});
        Tensor v = ag::randn({n, kD}, gen, {.requires_grad = true});
        // naive, forward and backward: the graph holds the n x n scores and weights
        t_fb.push_back(median_ms([&] {
          for (Tensor* p : {&q, &k, &v}) p->zero_grad();
          ag::sum(nn::scaled_dot_product_attention(q, k, v).output).backward();
        }, reps));
        // naive, forward only (no graph), for a like-for-like comparison with the tiled forward
        Tensor naive_out;
        t_f.push_back(median_ms([&] {
          ag::NoGrad ng;
          naive_out = nn::scaled_dot_product_attention(q, k, v).output;
        }, reps));
        // tiled forward on the same numbers
        std::vector<float> tiled_out(n * kD);
        const float *qp = q.data<float>().data(), *kp = k.data<float>().data(), *vp = v.data<float>().data();
        t_tiled.push_back(median_ms([&] { tiled_attention_forward(tiled_out.data(), qp, kp, vp, n, kD, kBlock); }, reps));
        diffs.push_back(max_abs_diff(tiled_out.data(), naive_out.data<float>().data(), n * kD));
        {
          const Tensor out = nn::scaled_dot_product_attention(q, k, v).output;
          square_ops = square_arrays_in_graph(out, n);
        }
        ns.push_back(double(n));
        weights_mb.push_back(double(n) * double(n) * sizeof(float) / 1e6);
        bar.tick({{"n", double(n)}, {"naive ms", t_fb.back()}});
      }
    }
    for (std::size_t i = 0; i < ns.size(); ++i) {
      const double guide = t_fb.back() * (ns[i] / ns.back()) * (ns[i] / ns.back());  // slope 2 through the last point
      time_log.log(ns[i], {t_fb[i], t_f[i], t_tiled[i], guide});
      auto mb = [&](double b) { return rss_measured ? std::max(b, 0.0) / 1e6 : 0.0; };
      mem_log.log(ns[i], {weights_mb[i], double(square_ops.size()) * weights_mb[i], mb(naive_mem[i]),
                          tiled_extra_bytes(std::size_t(ns[i])) / 1e6, mb(tiled_mem[i])});
    }
    const std::size_t fit = 3;  // fit exponents on the three largest sizes: small n is all overhead
    const double from = ns[ns.size() > fit ? ns.size() - fit : 0];
    const double p_fb = lab::loglog_slope(ns, t_fb, from), p_f = lab::loglog_slope(ns, t_f, from),
                 p_tiled = lab::loglog_slope(ns, t_tiled, from);
    auto at_least_a_page = [](std::vector<double> b) {  // the counters can jitter to 0 on tiny runs
      for (double& x : b) x = std::max(x, 4096.0);
      return b;
    };
    const double p_mem_naive = rss_measured ? lab::loglog_slope(ns, at_least_a_page(naive_mem), from) : 0.0;
    const double p_mem_tiled = rss_measured ? lab::loglog_slope(ns, at_least_a_page(tiled_mem), from) : 0.0;
    const double worst_diff = *std::max_element(diffs.begin(), diffs.end());

    lab::Table table("Naive vs tiled attention (d = 64, float32, one core; time = median of reps)",
                     {"n", "naive fwd+bwd ms", "naive fwd ms", "tiled fwd ms", "n x n MB", "naive peak MB", "tiled peak MB",
                      "max |tiled - naive|"});
    for (std::size_t i = 0; i < ns.size(); ++i)
      table.row({long(ns[i]), t_fb[i], t_f[i], t_tiled[i], weights_mb[i], rss_measured ? naive_mem[i] / 1e6 : 0.0,
                 rss_measured ? tiled_mem[i] / 1e6 : 0.0, lab::Cell(diffs[i], 3)});
    lab::Table fits("Fitted exponents p in cost ~ n^p (three largest n)", {"quantity", "p"});
    fits.row({"naive time, forward + backward", p_fb});
    fits.row({"naive time, forward", p_f});
    fits.row({"tiled time, forward", p_tiled});
    fits.row({"naive peak memory (measured)", p_mem_naive});
    fits.row({"tiled peak memory (measured)", p_mem_tiled});
    std::cout << "\n";
    table.print();
    std::cout << "\n";
    fits.print();
    std::string ops_list;
    for (const auto& op : square_ops) ops_list += (ops_list.empty() ? "" : ", ") + op;
    std::cout << "\nAfter the forward pass the graph holds " << square_ops.size() << " arrays of n x n floats (made by: "
              << ops_list << "); backward adds their gradients.\n";
    table.save_markdown(args.path("report.md"));
    fits.save_markdown(args.path("report.md"), true);

    // ---- part 3: local-window attention, error vs window size ----
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
    double err_local_16 = 0, err_rand_16 = 0, err_full = 1;
    {
      ag::NoGrad ng;
      const auto full_rand = nn::scaled_dot_product_attention(q_rand, k_rand, v);
      const auto full_local = nn::scaled_dot_product_attention(q_local, k_local, v);
      // The share of the full attention weight that falls outside the window, averaged over queries.
      auto mass_outside = [nw](const Tensor& weights, const Tensor& mask) {
        const float *a = weights.data<float>().data(), *m = mask.data<float>().data();
        double out = 0;
        for (std::size_t i = 0; i < nw * nw; ++i) out += m[i] != 0 ? a[i] : 0.0;
        return out / double(nw);
      };
      std::vector<std::size_t> windows;
      for (std::size_t w = 1; w < nw; w *= 2) windows.push_back(w);
      lab::Progress bar(std::int64_t(windows.size() + 1), "windows");
      for (std::size_t w : windows) {
        const Tensor mask = band_mask(nw, w);
        const double er = relative_error(nn::scaled_dot_product_attention(q_rand, k_rand, v, mask).output, full_rand.output);
        const double el = relative_error(nn::scaled_dot_product_attention(q_local, k_local, v, mask).output, full_local.output);
        const double mr = mass_outside(full_rand.weights, mask), ml = mass_outside(full_local.weights, mask);
        win_log.log(double(w), {er, el, mr, ml});
        wt.row({long(w), long(std::min(2 * w + 1, nw)), mr, ml, er, el});
        if (w == 16) err_rand_16 = er, err_local_16 = el;
        bar.tick();
      }
      // a window as wide as the sequence is no approximation at all
      const Tensor none = band_mask(nw, nw);
      err_full = std::max(relative_error(nn::scaled_dot_product_attention(q_rand, k_rand, v, none).output, full_rand.output),
                          relative_error(nn::scaled_dot_product_attention(q_local, k_local, v, none).output, full_local.output));
      bar.tick();
    }
    std::cout << "\n";
    wt.print();
    std::cout << "(w = " << nw << ", every key in the window: relative error " << lab::format_number(err_full, 3) << ")\n";
    wt.save_markdown(args.path("report.md"), true);

    // ---- plots ----
    const double x_lo = 0.8 * ns.front(), x_hi = 1.25 * ns.back();
    lab::plot(args.path("time.png"),
              {{time_log.path(), "naive_fwd_bwd_ms", "naive, forward + backward", "n", "linespoints"},
               {time_log.path(), "naive_fwd_ms", "naive, forward", "n", "linespoints"},
               {time_log.path(), "tiled_fwd_ms", "tiled (online softmax), forward", "n", "linespoints"},
               {time_log.path(), "n2_guide_ms", "slope 2 (time ~ n^2)", "n", "lines dt 3"}},
              {.title = "Attention time vs sequence length (log-log)", .xlabel = "sequence length n",
               .ylabel = "milliseconds of CPU time (median)", .logx = true, .logy = true,
               .ymax = 20 * t_fb.back(), .xmin = x_lo, .xmax = x_hi});  // headroom above the curves for the legend
    std::vector<lab::Series> mem_series{
        {mem_log.path(), "naive_graph_nxn_MB", "naive: n x n arrays in the graph (analytic)", "n", "linespoints"},
        {mem_log.path(), "tiled_extra_MB", "tiled: block of scores + m, l (analytic)", "n", "linespoints"}};
    if (rss_measured) {
      mem_series.push_back({mem_log.path(), "naive_peak_rss_MB", "naive fwd+bwd: peak RSS growth (measured)", "n", "linespoints"});
      mem_series.push_back({mem_log.path(), "tiled_peak_rss_MB", "tiled fwd: peak RSS growth (measured)", "n", "linespoints"});
    }
    lab::plot(args.path("memory.png"), mem_series,
              {.title = "Attention memory vs sequence length (log-log)", .xlabel = "sequence length n", .ylabel = "MB",
               .logx = true, .logy = true, .ymax = 50 * std::max(double(square_ops.size()) * weights_mb.back(), naive_mem.back() / 1e6),
               .xmin = x_lo, .xmax = x_hi});
    lab::plot(args.path("window.png"),
              {{win_log.path(), "random_qk", "random q, k (no locality)", "w", "linespoints"},
               {win_log.path(), "local_qk", "q, k with a position code (local)", "w", "linespoints"}},
              {.title = "Local-window attention, n = " + std::to_string(nw) + ": error vs window (log-log)",
               .xlabel = "window half-width w (query i sees keys i-w .. i+w)",
               .ylabel = "relative error ||O_w - O|| / ||O||", .logx = true, .logy = true});
    std::cout << "\nTime vs n (log-log):\n";
    lab::plot_terminal({{time_log.path(), "naive_fwd_bwd_ms", "naive fwd+bwd", "n", "linespoints"},
                        {time_log.path(), "tiled_fwd_ms", "tiled fwd", "n", "linespoints"}},
                       {.xlabel = "n", .ylabel = "ms", .logx = true, .logy = true, .ymax = 20 * t_fb.back(),
                        .xmin = x_lo, .xmax = x_hi});
    std::cout << "Wrote " << args.out.string() << "/{time,memory,window}.{csv,png,svg} and report.md\n";

    // ---- checks ----
    lab::Checks checks;
    checks.expect(worst_diff < 1e-5, "tiled attention equals naive attention to 1e-5 at every n (max |diff| = " +
                                         lab::format_number(worst_diff, 3) + ")");
    if (args.quick)
      checks.expect(p_fb > 1.2, "naive time grows faster than linearly (exponent " + lab::format_number(p_fb, 3) + " > 1.2)");
    else
      checks.expect(p_fb > 1.5 && p_fb < 2.5,
                    "naive time is quadratic: exponent " + lab::format_number(p_fb, 3) + " in [1.5, 2.5] for large n");
    checks.expect(!square_ops.empty(), "the naive graph materialises n x n arrays (" + std::to_string(square_ops.size()) + ")");
    if (rss_measured) {
      checks.expect(tiled_mem.back() * 5 < naive_mem.back(),
                    "at n = " + std::to_string(n_max) + " the tiled forward needs < 1/5 of the naive peak memory");
      checks.expect(p_mem_tiled < 1.4, "tiled memory grows no faster than linearly (exponent " + lab::format_number(p_mem_tiled, 3) + " < 1.4)");
    }
    checks.expect(err_full < 1e-6, "a window covering every key is exact (error " + lab::format_number(err_full, 3) + ")");
    checks.expect(err_local_16 < err_rand_16, "a window of 16 approximates local attention better than random attention");
    return checks.report();
  });
}
