// Lesson 13: the cost of attention.
//
// Naive attention builds the whole n x n matrix of weights: its time and memory grow as n^2.
// Tiled attention with an online softmax (Milakov & Gimelshein 2018; FlashAttention, Dao et al.
// 2022, and its backward from FlashAttention-2, Dao 2023) visits the keys one block at a time
// and never holds that matrix: the same output and the same gradients, with memory that grows
// as n. The engine has it as one op, ag::tiled_attention (autograd/src/ops_attention.cpp:
// forward_slice, backward_slice); this lesson measures it against the naive
// nn::scaled_dot_product_attention. Local-window attention is cheaper still, but it is an
// approximation: it is only good when the true weights are local.
//
// Shape legend: n queries = keys (the sequence length), d width of one head (64),
//               B tile size of the tiled op (64 queries x 64 keys), w window half-width.
#include <fcntl.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"

extern "C" void openblas_set_num_threads(int);  // OpenBLAS is linked through the engine

namespace {

using ag::Tensor;
constexpr std::size_t kD = 64;      // d: width of one head
constexpr std::size_t kBlock = 64;  // B: queries and keys per tile of ag::tiled_attention

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
  return ag::tiled_attention(q, k, v, Tensor(), {.block = kBlock});
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
  for (Tensor t : qkv) t.zero_grad();  // Tensor is a handle: this clears the leaf's gradient
  const Tensor out = attend(qkv[0], qkv[1], qkv[2]);
  if (backward) ag::sum(out).backward();
}

// What each needs at the peak of forward + backward, worked out by hand (bytes, float32):
// - both: five [n, d] arrays, the output O, its gradient dO, and dq, dk, dv;
// - naive, on top: three n x n arrays alive together, the weights A (kept by the forward), dA
//   (from matmul's backward) and dS (the scratch of attention_weights' backward);
// - tiled, on top: L [n] and two [B, B] tiles, P and dS (32 KB, whatever n is).
double nd_bytes(std::size_t n) { return 5.0 * double(n) * double(kD) * sizeof(float); }
double naive_bytes_by_hand(std::size_t n) { return nd_bytes(n) + 3.0 * double(n) * double(n) * sizeof(float); }
double tiled_bytes_by_hand(std::size_t n) { return nd_bytes(n) + double(n + 2 * kBlock * kBlock) * sizeof(float); }

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
// process so each configuration starts clean:
//   setup()       makes the inputs; the lesson's also runs the step once, so that first-use
//                 costs (OpenBLAS touching its buffers) are paid before the measurement,
//   malloc_trim   gives every freed page back to the kernel: the engine keeps freed memory in
//                 its heap for reuse (autograd/src/tensor.cpp: Note [allocation]), which would
//                 hide the second run's arrays,
//   clear_refs    "5" resets the peak counter VmHWM to the current size (Linux >= 4.0),
//   run()         works, and the growth of VmHWM is what its arrays needed at their peak.
// The kernel updates these counters in batches, so even a run that does nothing "grows" by a
// few hundred KB; measure that (an empty run) and subtract it.
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
    auto state = setup();
    malloc_trim(0);
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

// The median of three such measurements, as the counters jitter by a few hundred KB either way.
template <class Setup, class Run>
double median_peak_growth_bytes(Setup setup, Run run) {
  double b[3];
  for (double& x : b) x = peak_growth_bytes(setup, run);
  std::sort(b, b + 3);
  return b[0] < 0 ? -1 : b[1];  // -1: not measured (no /proc, or fork failed)
}

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

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : ", ") + w;
  return s.empty() ? "none" : s;
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
  lab::Cli cli("13_cost_of_attention",
               "O(n^2) attention measured; tiled attention (online softmax, ag::tiled_attention); local windows");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    openblas_set_num_threads(1);  // one core for every kernel, naive and tiled alike
    ag::Generator gen(args.seed);
    const std::vector<std::size_t> sizes =
        args.quick ? std::vector<std::size_t>{64, 128, 256, 512} : std::vector<std::size_t>{64, 128, 256, 512, 1024, 2048};
    const std::size_t n_max = sizes.back();
    std::cout << "Lesson 13: the cost of attention (d = " << kD << ", one head, float32, one core, tiles of " << kBlock
              << " x " << kBlock << ")\n";

    // Index [method][pass] in every table below: method 0 naive, 1 tiled; pass 0 forward, 1 forward + backward.
    const Attention methods[2] = {naive_attention, tiled_attention};
    const char* method_name[2] = {"naive", "tiled"};
    const char* pass_name[2] = {"forward", "forward + backward"};

    // ---- part 1: memory, each configuration in its own child process ----
    // The child makes q, k, v for this n and runs the step once, then clears the gradients that
    // run left, so the measured run has to allocate everything again. An empty run gives the
    // counters' own offset, subtracted from every measurement.
    auto setup_for = [&](Attention attend, std::size_t n) {
      return [&args, attend, n] {
        std::vector<Tensor> qkv = make_qkv(n, args.seed);
        attention_step(attend, qkv, true);
        for (Tensor t : qkv) t.zero_grad();
        return qkv;
      };
    };
    const double offset = median_peak_growth_bytes(setup_for(naive_attention, 64), [](std::vector<Tensor>&) {});
    std::vector<double> mem[2][2];  // peak growth in bytes, per n, less the offset
    {
      lab::Progress bar(std::int64_t(sizes.size()), "memory");
      for (std::size_t n : sizes) {
        for (int m = 0; m < 2; ++m)
          for (int pass = 0; pass < 2; ++pass) {
            const double bytes = median_peak_growth_bytes(setup_for(methods[m], n), [&, m, pass](std::vector<Tensor>& qkv) {
              attention_step(methods[m], qkv, pass == 1);
            });
            mem[m][pass].push_back(bytes < 0 || offset < 0 ? -1.0 : std::max(bytes - offset, 0.0));
          }
        bar.tick();
      }
    }
    bool rss_measured = true;
    for (auto& per_method : mem)
      for (auto& per_pass : per_method)
        for (double b : per_pass) rss_measured = rss_measured && b >= 0;

    // ---- part 2: time, and naive vs tiled outputs and gradients on the same numbers ----
    std::vector<double> ns, ms[2][2], out_diffs, grad_diffs, square_mb;
    std::vector<std::string> square_ops[2];
    {
      lab::Progress bar(std::int64_t(sizes.size()), "time");
      for (std::size_t n : sizes) {
        const int reps = n <= 256 ? 15 : n <= 1024 ? 7 : 5;
        const std::vector<Tensor> qkv = make_qkv(n, args.seed + 1000);
        Tensor outs[2];
        std::vector<Tensor> grads[2];
        for (int m = 0; m < 2; ++m) {
          for (int pass = 0; pass < 2; ++pass)
            ms[m][pass].push_back(median_ms([&] { attention_step(methods[m], qkv, pass == 1); }, reps));
          for (const Tensor& t : qkv) grads[m].push_back(t.grad());  // left by the last forward + backward
          outs[m] = methods[m](qkv[0], qkv[1], qkv[2]);
          square_ops[m] = square_arrays_in_graph(outs[m], n);
        }
        out_diffs.push_back(max_abs_diff(outs[1], outs[0]));
        double g = 0;
        for (int i = 0; i < 3; ++i) g = std::max(g, max_abs_diff(grads[1][i], grads[0][i]));
        grad_diffs.push_back(g);
        ns.push_back(double(n));
        square_mb.push_back(double(n) * double(n) * sizeof(float) / 1e6);
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
    auto mb = [&](double bytes) { return rss_measured ? std::max(bytes, 0.0) / 1e6 : 0.0; };
    for (std::size_t i = 0; i < ns.size(); ++i) {
      const double r = ns[i] / ns.back(), guide = ms[0][1].back() * r * r;  // slope 2 through the last naive point
      time_log.log(ns[i], {ms[0][0][i], ms[0][1][i], ms[1][0][i], ms[1][1][i], guide});
      mem_log.log(ns[i], {mb(mem[0][0][i]), mb(mem[0][1][i]), mb(mem[1][0][i]), mb(mem[1][1][i]),
                          naive_bytes_by_hand(std::size_t(ns[i])) / 1e6, tiled_bytes_by_hand(std::size_t(ns[i])) / 1e6});
    }
    const std::size_t fit = 3;  // fit exponents on the three largest sizes: small n is all overhead
    const double from = ns[ns.size() > fit ? ns.size() - fit : 0];
    auto at_least_a_page = [](std::vector<double> b) {  // the counters can jitter to 0 on tiny runs
      for (double& x : b) x = std::max(x, 4096.0);
      return b;
    };
    double p_time[2][2], p_mem[2][2];
    for (int m = 0; m < 2; ++m)
      for (int pass = 0; pass < 2; ++pass) {
        p_time[m][pass] = lab::loglog_slope(ns, ms[m][pass], from);
        p_mem[m][pass] = rss_measured ? lab::loglog_slope(ns, at_least_a_page(mem[m][pass]), from) : 0.0;
      }
    const double worst_out = *std::max_element(out_diffs.begin(), out_diffs.end());
    const double worst_grad = *std::max_element(grad_diffs.begin(), grad_diffs.end());

    lab::Table tt("Time: naive vs tiled attention (d = 64, float32, one core; median ms of CPU time)",
                  {"n", "naive fwd", "naive fwd+bwd", "tiled fwd", "tiled fwd+bwd", "max |out diff|", "max |grad diff|"});
    for (std::size_t i = 0; i < ns.size(); ++i)
      tt.row({long(ns[i]), ms[0][0][i], ms[0][1][i], ms[1][0][i], ms[1][1][i], lab::Cell(out_diffs[i], 3),
              lab::Cell(grad_diffs[i], 3)});
    lab::Table mt("Memory: growth of the peak resident set in MB (each run in its own process; median of 3, less an empty "
                  "run's " + lab::format_number(offset / 1e6, 2) + " MB)",
                  {"n", "one n x n array", "naive fwd", "naive fwd+bwd", "tiled fwd", "tiled fwd+bwd"});
    for (std::size_t i = 0; i < ns.size(); ++i)
      mt.row({long(ns[i]), square_mb[i], mb(mem[0][0][i]), mb(mem[0][1][i]), mb(mem[1][0][i]), mb(mem[1][1][i])});
    lab::Table fits("Fitted exponents p in cost ~ n^p (three largest n)", {"quantity", "naive", "tiled"});
    for (int pass = 0; pass < 2; ++pass)
      fits.row({std::string("time, ") + pass_name[pass], p_time[0][pass], p_time[1][pass]});
    for (int pass = 0; pass < 2; ++pass)
      fits.row({std::string("peak memory, ") + pass_name[pass], p_mem[0][pass], p_mem[1][pass]});
    std::cout << "\n";
    tt.print();
    std::cout << "\n";
    mt.print();
    std::cout << "\n";
    fits.print();
    std::cout << "\n";
    for (int m = 0; m < 2; ++m)
      std::cout << "Arrays of n x n floats in the graph after the " << method_name[m] << " forward: " << square_ops[m].size()
                << " (made by: " << join(square_ops[m]) << ")\n";
    std::cout << "The naive backward adds two more, dA (matmul's backward) and dS (attention_weights' backward);\n"
                 "the tiled backward recomputes the weights one " << kBlock << " x " << kBlock << " tile at a time from L.\n";
    tt.save_markdown(args.path("report.md"));
    mt.save_markdown(args.path("report.md"), true);
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
    // One colour per method (naive purple, tiled green); solid for forward + backward, dashed for
    // the forward alone; what was worked out by hand as large grey rings around the measured points.
    const double x_lo = 0.8 * ns.front(), x_hi = 1.25 * ns.back();
    lab::plot(args.path("time.png"),
              {{time_log.path(), "naive_fwd_bwd_ms", "naive, forward + backward", "n", "linespoints lc 1"},
               {time_log.path(), "tiled_fwd_bwd_ms", "tiled, forward + backward", "n", "linespoints lc 2"},
               {time_log.path(), "naive_fwd_ms", "naive, forward", "n", "linespoints dt 2 lc 1"},
               {time_log.path(), "tiled_fwd_ms", "tiled, forward", "n", "linespoints dt 2 lc 2"},
               {time_log.path(), "n2_guide_ms", "slope 2 (time ~ n^2)", "n", "lines dt 3 lc rgb 'gray30'"}},
              {.title = "Attention time vs sequence length (log-log)", .xlabel = "sequence length n",
               .ylabel = "milliseconds of CPU time (median)", .logx = true, .logy = true,
               .ymax = 20 * std::max(ms[0][1].back(), ms[1][1].back()), .xmin = x_lo, .xmax = x_hi,
               .key = "top left"});  // headroom above the curves for the legend
    std::vector<lab::Series> mem_series{
        {mem_log.path(), "naive_fwd_bwd_by_hand_MB", "by hand: 3 n x n (A, dA, dS) + 5 n d", "n", "points pt 6 ps 2.5 lc rgb 'gray40'"},
        {mem_log.path(), "tiled_fwd_bwd_by_hand_MB", "by hand: 5 n d (O, dO, dq, dk, dv) + L", "n", "points pt 4 ps 2.5 lc rgb 'gray40'"}};
    if (rss_measured)
      for (const lab::Series& s : std::vector<lab::Series>{
               {mem_log.path(), "naive_fwd_bwd_MB", "naive, forward + backward (measured)", "n", "linespoints lc 1"},
               {mem_log.path(), "tiled_fwd_bwd_MB", "tiled, forward + backward (measured)", "n", "linespoints lc 2"},
               {mem_log.path(), "naive_fwd_MB", "naive, forward (measured)", "n", "linespoints dt 2 lc 1"},
               {mem_log.path(), "tiled_fwd_MB", "tiled, forward (measured)", "n", "linespoints dt 2 lc 2"}})
        mem_series.push_back(s);
    lab::plot(args.path("memory.png"), mem_series,
              {.title = "Attention memory vs sequence length (log-log)", .xlabel = "sequence length n",
               .ylabel = "MB (growth of the peak resident set)", .logx = true, .logy = true,
               .ymax = 50 * naive_bytes_by_hand(n_max) / 1e6, .xmin = x_lo, .xmax = x_hi, .key = "top left"});
    lab::plot(args.path("window.png"),
              {{win_log.path(), "random_qk", "random q, k (no locality)", "w", "linespoints"},
               {win_log.path(), "local_qk", "q, k with a position code (local)", "w", "linespoints"}},
              {.title = "Local-window attention, n = " + std::to_string(nw) + ": error vs window (log-log)",
               .xlabel = "window half-width w (query i sees keys i-w .. i+w)",
               .ylabel = "relative error ||O_w - O|| / ||O||", .logx = true, .logy = true});
    if (rss_measured) {  // the time curves of the two lie on top of each other; the memory ones do not
      std::cout << "\nPeak memory of forward + backward vs n (log-log):\n";
      lab::plot_terminal({{mem_log.path(), "naive_fwd_bwd_MB", "naive", "n", "linespoints"},
                          {mem_log.path(), "tiled_fwd_bwd_MB", "tiled", "n", "linespoints"}},
                         {.xlabel = "n", .ylabel = "MB", .logx = true, .logy = true,
                          .ymax = 20 * naive_bytes_by_hand(n_max) / 1e6, .xmin = x_lo, .xmax = x_hi, .key = "top left"});
    }
    std::cout << "Wrote " << args.out.string() << "/{time,memory,window}.{csv,png,svg} and report.md\n";

    // ---- checks: the lesson's claims ----
    // In --quick mode the largest n is 512, still near the sizes where fixed costs hide the
    // exponents; its bands are wider.
    lab::Checks checks;
    checks.expect(worst_out < 1e-5, "tiled attention gives the naive output to 1e-5 at every n (max |diff| = " +
                                        lab::format_number(worst_out, 3) + ")");
    checks.expect(worst_grad < 1e-4, "and the naive gradients dq, dk, dv to 1e-4 (max |diff| = " +
                                         lab::format_number(worst_grad, 3) + ")");
    const double t_lo = args.quick ? 1.2 : 1.5;
    for (int m = 0; m < 2; ++m)
      checks.expect(p_time[m][1] > t_lo && p_time[m][1] < 2.5,
                    std::string(method_name[m]) + " time (forward + backward) is quadratic: exponent " +
                        lab::format_number(p_time[m][1], 3) + " in [" + lab::format_number(t_lo, 2) + ", 2.5]");
    checks.expect(square_ops[0].size() == 1 && square_ops[1].empty(),
                  "the naive graph keeps an n x n array (" + join(square_ops[0]) + "), the tiled graph none");
    if (rss_measured) {
      const double m_lo = args.quick ? 1.2 : 1.5;
      checks.expect(p_mem[0][1] > m_lo && p_mem[0][1] < 2.5,
                    "naive memory (forward + backward) is quadratic: exponent " + lab::format_number(p_mem[0][1], 3) +
                        " in [" + lab::format_number(m_lo, 2) + ", 2.5]");
      checks.expect(p_mem[1][1] > 0.5 && p_mem[1][1] < 1.4,
                    "tiled memory (forward + backward) is linear: exponent " + lab::format_number(p_mem[1][1], 3) +
                        " in [0.5, 1.4]");
      const double ratio = args.quick ? 3 : 10;
      checks.expect(mem[1][1].back() * ratio < mem[0][1].back(),
                    "at n = " + std::to_string(n_max) + " tiled forward + backward needs < 1/" + lab::format_number(ratio, 2) +
                        " of the naive peak memory (" + lab::format_number(mem[1][1].back() / 1e6, 3) + " vs " +
                        lab::format_number(mem[0][1].back() / 1e6, 3) + " MB)");
    }
    checks.expect(err_full < 1e-6, "a window covering every key is exact (error " + lab::format_number(err_full, 3) + ")");
    checks.expect(err_local_16 < err_rand_16, "a window of 16 approximates local attention better than random attention");
    return checks.report();
  });
}
