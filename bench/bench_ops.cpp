// The matmul op against a direct cblas_sgemm call (issue 3: "at least 90% of cblas at 512 and
// 1024; under 2 microseconds of overhead at 64").
//
//   matmul/ours/<n>    ag::matmul(a, b) on existing [n, n] float32 tensors, under ag::NoGrad
//                      (the op's real cost: checks, the output's allocation, the gemm call)
//   matmul/cblas/<n>   the engine's gemm (cblas_sgemm, one thread per call, the product split
//                      over the engine's threads as the op does) into a preallocated [n, n] buffer
//   matmul_overhead/64 both at n = 64, alternating inside one loop (op, gemm, gemm, op, ...):
//                      counters op_us, gemm_us and overhead_us (the median of the per-pair
//                      differences, robust to the machine's load); also printed at the end.
//   matmul_paired/<n>  the same pairing at 512 and 1024 (min time 1 s): counters ours/cblas and
//                      both GFLOP/s from the medians, the fraction least disturbed by the load.
//   layer_gemm/<name>  the engine's gemm on each shape of bench_steps' transformer_layer step (rows
//                      B T = 4,096, d_model 128, 4 heads of 32, FFN 512: the projections and their
//                      two backward gemms, and attention's 128 x 128 x 32 products per batch and
//                      head, the 128 of them side by side as the step runs them; the GFLOP/s
//                      counter is per shape's whole batch); at the end, the MFU that step would
//                      reach if it did nothing but these gemms at these rates, against the 1024^3
//                      rate of the same run: the ceiling of its MFU with this BLAS.
// n = 64, 128, 512, 1024. Each matmul benchmark has a "GFLOP/s" counter = 2 n^3 / wall time.
// It is computed from the wall clock here rather than with Counter::kIsRate, which divides by
// the main thread's CPU time: wrong with worker threads and on a loaded machine.
// bench_summary reads the counter and prints ours/cblas per n.
//
// Threads: the engine's count ($ATTNLAB_NUM_THREADS, else $OPENBLAS_NUM_THREADS, else the
// cores; OpenBLAS itself runs on one thread per call): run with OPENBLAS_NUM_THREADS=2 (the
// 2-core machine). The count in use is printed and stored in the JSON context.
//
// Defaults added unless given on the command line: --benchmark_repetitions=5,
// --benchmark_report_aggregates_only=true (the median is what bench_summary reads) and
// --benchmark_min_time=0.2. The first line printed names the Highway target chosen at run time.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "ag/ag.hpp"
#include "internal.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Operands {
  ag::Tensor a, b;
  std::vector<float> c;  // cblas's output
};

Operands make_operands(std::size_t n) {
  ag::Generator gen(1234 + n);
  Operands o{ag::randn({n, n}, gen), ag::randn({n, n}, gen), std::vector<float>(n * n)};
  return o;
}

// The engine's gemm as the op calls it: cblas_sgemm on one thread per call, a product this large
// split over the engine's threads (Note [threads] in kernels.hpp).
void raw_sgemm(Operands& o, std::size_t n) {
  ag::detail::gemm(false, false, n, n, n, 1.0f, o.a.data<float>().data(), o.b.data<float>().data(), 0.0f, o.c.data());
}

void set_gflops(benchmark::State& st, std::size_t n, double wall_seconds) {
  const double flops = 2.0 * double(n) * double(n) * double(n) * double(st.iterations());
  st.counters["GFLOP/s"] = wall_seconds > 0 ? flops / wall_seconds / 1e9 : 0.0;
}

void bm_ours(benchmark::State& st, std::size_t n) {
  Operands o = make_operands(n);
  ag::NoGrad no_grad;
  { ag::Tensor warm = ag::matmul(o.a, o.b); }
  const auto t0 = Clock::now();
  for (auto _ : st) {
    ag::Tensor c = ag::matmul(o.a, o.b);
    benchmark::DoNotOptimize(c.node());
  }
  set_gflops(st, n, seconds_since(t0));
}

void bm_cblas(benchmark::State& st, std::size_t n) {
  Operands o = make_operands(n);
  raw_sgemm(o, n);
  const auto t0 = Clock::now();
  for (auto _ : st) {
    raw_sgemm(o, n);
    benchmark::DoNotOptimize(o.c.data());
    benchmark::ClobberMemory();
  }
  set_gflops(st, n, seconds_since(t0));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Every pair of every repetition of matmul_paired/<n> (microseconds), summarised by main.
struct Pairs {
  std::vector<double> op_us, gemm_us, diff_us;
};
std::map<std::size_t, Pairs> g_pairs;

// The op and the raw gemm alternately (op, gemm, gemm, op, ...) on the same operands; each call
// timed alone, so the medians drop the calls the machine's load interrupted.
void bm_paired(benchmark::State& st, std::size_t n) {
  Operands o = make_operands(n);
  ag::NoGrad no_grad;
  { ag::Tensor warm = ag::matmul(o.a, o.b); }
  raw_sgemm(o, n);
  std::vector<double> op, gemm, diff;
  bool op_first = true;
  for (auto _ : st) {
    double t_op = 0, t_gemm = 0;
    for (int k = 0; k < 2; ++k) {
      const bool do_op = (k == 0) == op_first;
      const auto t0 = Clock::now();
      if (do_op) {
        ag::Tensor c = ag::matmul(o.a, o.b);
        benchmark::DoNotOptimize(c.node());
      } else {
        raw_sgemm(o, n);
        benchmark::DoNotOptimize(o.c.data());
        benchmark::ClobberMemory();
      }
      (do_op ? t_op : t_gemm) = seconds_since(t0) * 1e6;
    }
    op_first = !op_first;
    if (op.size() < (1u << 16)) {
      op.push_back(t_op);
      gemm.push_back(t_gemm);
      diff.push_back(t_op - t_gemm);
    }
  }
  const double flops = 2.0 * double(n) * double(n) * double(n);
  st.counters["op_us"] = median(op);
  st.counters["gemm_us"] = median(gemm);
  st.counters["overhead_us"] = median(diff);
  st.counters["ours_GFLOP/s"] = flops / median(op) / 1e3;
  st.counters["cblas_GFLOP/s"] = flops / median(gemm) / 1e3;
  st.counters["ours/cblas"] = median(gemm) / median(op);
  Pairs& p = g_pairs[n];
  p.op_us.insert(p.op_us.end(), op.begin(), op.end());
  p.gemm_us.insert(p.gemm_us.end(), gemm.begin(), gemm.end());
  p.diff_us.insert(p.diff_us.end(), diff.begin(), diff.end());
}

// The gemms of one transformer_layer step (bench_steps.cpp: B 32, T 128, D 128, H 4, FFN 512,
// naive attention), as (M, N, K, transposes) and how many times a step calls each.
struct LayerGemm {
  const char* name;
  int M, N, K;
  bool ta, tb;
  int calls;
};
constexpr int kRows = 32 * 128, kHeads = 32 * 4;
constexpr LayerGemm kLayerGemms[] = {
    // forward, y = x W^T, and backward, dx = dy W and dW = dy^T x, for in_proj, out_proj, linear1, linear2
    {"in_proj", kRows, 384, 128, false, true, 1},   {"in_proj_dx", kRows, 128, 384, false, false, 1},
    {"in_proj_dW", 384, 128, kRows, true, false, 1}, {"out_proj", kRows, 128, 128, false, true, 1},
    {"out_proj_dx", kRows, 128, 128, false, false, 1}, {"out_proj_dW", 128, 128, kRows, true, false, 1},
    {"linear1", kRows, 512, 128, false, true, 1},   {"linear1_dx", kRows, 128, 512, false, false, 1},
    {"linear1_dW", 512, 128, kRows, true, false, 1}, {"linear2", kRows, 128, 512, false, true, 1},
    {"linear2_dx", kRows, 512, 128, false, false, 1}, {"linear2_dW", 128, 512, kRows, true, false, 1},
    // attention per batch and head: S = q k^T, O = P v, and their backward (dq, dk, dP, dv)
    {"scores", 128, 128, 32, false, true, kHeads},  {"weights_v", 128, 32, 128, false, false, kHeads},
    {"scores_dq", 128, 32, 128, false, false, kHeads}, {"scores_dk", 128, 32, 128, true, false, kHeads},
    {"weights_v_dP", 128, 128, 32, false, true, kHeads}, {"weights_v_dv", 128, 32, 128, true, false, kHeads},
};
std::map<std::string, std::vector<double>> g_layer_runs;  // name -> GFLOP/s of every repetition

void bm_layer_gemm(benchmark::State& st, const LayerGemm& g) {
  const std::size_t sa = std::size_t(g.M) * g.K, sb = std::size_t(g.K) * g.N, sc = std::size_t(g.M) * g.N;  // a batch: one of each per call
  std::vector<float> a(sa * g.calls, 0.5f), b(sb * g.calls, 0.25f), c(sc * g.calls);
  // as the step runs them: one product split over the threads, or a batch's products side by side
  const std::size_t M = std::size_t(g.M), N = std::size_t(g.N), K = std::size_t(g.K);
  auto run = [&] {
    ag::detail::gemm_batch(std::size_t(g.calls), M * N * K, true,
                           [&](std::size_t i) { ag::detail::gemm(g.ta, g.tb, M, N, K, 1.0f, &a[i * sa], &b[i * sb], 0.0f, &c[i * sc]); });
  };
  run();
  const auto t0 = Clock::now();
  for (auto _ : st) {
    run();
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const double rate = 2.0 * g.M * g.N * double(g.K) * g.calls * double(st.iterations()) / seconds_since(t0) / 1e9;
  st.counters["GFLOP/s"] = rate;
  g_layer_runs[g.name].push_back(rate);
}

bool has_flag(int argc, char** argv, const char* prefix) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], prefix, std::strlen(prefix)) == 0) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("Highway target: %s\n", ag::simd_target());
  std::printf("OpenBLAS: %s, one thread per call; the engine's threads: %zu (OPENBLAS_NUM_THREADS=%s)\n", openblas_get_corename(),
              ag::get_num_threads(),
              std::getenv("OPENBLAS_NUM_THREADS") ? std::getenv("OPENBLAS_NUM_THREADS") : "unset");
  std::fflush(stdout);

  std::vector<char*> args(argv, argv + argc);
  char reps[] = "--benchmark_repetitions=5", aggr[] = "--benchmark_report_aggregates_only=true",
       min_time[] = "--benchmark_min_time=0.2";
  if (!has_flag(argc, argv, "--benchmark_repetitions")) args.push_back(reps);
  if (!has_flag(argc, argv, "--benchmark_report_aggregates_only") && !has_flag(argc, argv, "--benchmark_display_aggregates_only"))
    args.push_back(aggr);
  if (!has_flag(argc, argv, "--benchmark_min_time")) args.push_back(min_time);
  int n_args = int(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n_args, args.data());
  if (benchmark::ReportUnrecognizedArguments(n_args, args.data())) return 1;
  benchmark::AddCustomContext("highway_target", ag::simd_target());
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("threads", std::to_string(ag::get_num_threads()));

  for (std::size_t n : {64, 128, 512, 1024}) {
    const std::string size = std::to_string(n);
    benchmark::RegisterBenchmark(("matmul/cblas/" + size).c_str(), [n](benchmark::State& st) { bm_cblas(st, n); });
    benchmark::RegisterBenchmark(("matmul/ours/" + size).c_str(), [n](benchmark::State& st) { bm_ours(st, n); });
  }
  // The overhead at 64 (issue 3: under 2 us), and the paired fractions at 512 and 1024.
  benchmark::RegisterBenchmark("matmul_overhead/64", [](benchmark::State& st) { bm_paired(st, 64); });
  for (std::size_t n : {512, 1024})
    benchmark::RegisterBenchmark(("matmul_paired/" + std::to_string(n)).c_str(), [n](benchmark::State& st) { bm_paired(st, n); })
        ->MinTime(1.0);

  for (const LayerGemm& g : kLayerGemms)
    benchmark::RegisterBenchmark((std::string("layer_gemm/") + g.name).c_str(), [&g](benchmark::State& st) { bm_layer_gemm(st, g); });

  struct Keep1024 : benchmark::ConsoleReporter {  // the 1024^3 sgemm rate of this run, for the ceiling
    double gflops = 0;
    void ReportRuns(const std::vector<Run>& runs) override {
      for (const Run& r : runs)
        if (r.run_name.str() == "matmul/cblas/1024" && r.aggregate_name == "median") gflops = r.counters.at("GFLOP/s");
      ConsoleReporter::ReportRuns(runs);
    }
  } reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  // The layer's step done by these gemms alone, at these rates: sum of flops / sum of times.
  double flops = 0, seconds = 0;
  bool every_shape = true;
  for (const LayerGemm& g : kLayerGemms) {
    const auto& runs = g_layer_runs[g.name];
    if (runs.empty()) { every_shape = false; continue; }
    const double f = 2.0 * g.M * g.N * double(g.K) * g.calls;
    flops += f;
    seconds += f / (median(runs) * 1e9);
  }
  if (every_shape && reporter.gflops > 0)
    std::printf("\ntransformer_layer's gemms alone: %.2f GFLOP in %.1f ms (%.1f GFLOP/s): an MFU ceiling of %.0f%% of the "
                "1024^3 rate (%.1f GFLOP/s)\n",
                flops / 1e9, seconds * 1e3, flops / seconds / 1e9, 100.0 * flops / seconds / 1e9 / reporter.gflops, reporter.gflops);
  if (!g_pairs.empty()) std::printf("\nmatmul op vs raw sgemm, alternating pairs (medians over every repetition):\n");
  for (const auto& [n, p] : g_pairs) {
    const double op = median(p.op_us), gemm = median(p.gemm_us), flops = 2.0 * double(n) * double(n) * double(n);
    std::printf("  n=%-5zu %6zu pairs: op %10.2f us (%6.1f GFLOP/s), sgemm %10.2f us (%6.1f GFLOP/s), ours/cblas %.3f, "
                "overhead %.2f us\n",
                n, p.op_us.size(), op, flops / op / 1e3, gemm, flops / gemm / 1e3, gemm / op, median(p.diff_us));
  }
  benchmark::Shutdown();
  return 0;
}
