// Generation (issue 15): greedy decoding of N new tokens with nn::GPT::generate, with and without
// the KV cache, one thread (run with OPENBLAS_NUM_THREADS=1 for the per-token picture of lesson
// 17, or 2 as the other benchmarks).
//
// The model has lesson 14's nanogpt-cpu shape (4 layers, 4 heads, d_model 128, vocabulary 65)
// with rotary positions, so that no position table bounds the length; untrained weights (the
// cost does not depend on them). The prompt is 8 tokens.
//
//   generate/with_cache/<N>      N = 64, 200, 400: counter tokens_per_s = N / wall time
//   generate/without_cache/<N>
//   generate_paired/<N>          N = 200: both in one loop, alternating; counter speedup = the
//                                median of the per-pair ratios (without / with), robust to load
//
// Reference (issue 15): a 124M-parameter GPT-2 on a laptop CPU writes 27 tokens/s without a cache
// and 144 with one for 200 new tokens: 5.3x.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nn/gpt.hpp"

namespace {

using Clock = std::chrono::steady_clock;

nn::GPT& model() {
  static std::unique_ptr<nn::GPT> m = [] {
    ag::Generator gen(0);
    return std::make_unique<nn::GPT>(nn::GPTOptions{.vocab_size = 65, .block_size = 64, .d_model = 128, .num_heads = 4,
                                                    .num_layers = 4, .position = nn::PositionEncoding::rope},
                                     gen);
  }();
  return *m;
}

const std::vector<std::int64_t> kPrompt = {18, 47, 56, 57, 58, 1, 15, 47};

double generate_seconds(std::size_t n, bool cached) {
  ag::Generator unused(0);
  const auto t0 = Clock::now();
  benchmark::DoNotOptimize(
      model().generate(kPrompt, n, {.sampling = {.greedy = true}, .use_cache = cached, .context = kPrompt.size() + n}, unused));
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void bm_generate(benchmark::State& st, std::size_t n, bool cached) {
  double seconds = 0;
  for (auto _ : st) seconds += generate_seconds(n, cached);
  st.counters["tokens_per_s"] = seconds > 0 ? double(n) * double(st.iterations()) / seconds : 0.0;
}

void bm_paired(benchmark::State& st, std::size_t n) {
  std::vector<double> ratios;
  for (auto _ : st) ratios.push_back(generate_seconds(n, false) / generate_seconds(n, true));
  std::sort(ratios.begin(), ratios.end());
  st.counters["speedup"] = ratios.empty() ? 0.0 : ratios[ratios.size() / 2];
}

bool has_flag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("Highway target: %s; model: %s, %zu parameters\n", ag::simd_target(), model().describe().c_str(),
              model().num_parameters());
  std::fflush(stdout);
  std::vector<char*> args(argv, argv + argc);
  char reps[] = "--benchmark_repetitions=3", aggr[] = "--benchmark_report_aggregates_only=true";
  if (!has_flag(argc, argv, "--benchmark_repetitions")) args.push_back(reps);
  if (!has_flag(argc, argv, "--benchmark_report_aggregates_only") && !has_flag(argc, argv, "--benchmark_display_aggregates_only"))
    args.push_back(aggr);
  int n_args = int(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n_args, args.data());
  if (benchmark::ReportUnrecognizedArguments(n_args, args.data())) return 1;
  benchmark::AddCustomContext("highway_target", ag::simd_target());
  for (std::size_t n : {64, 200, 400}) {
    const std::string size = std::to_string(n);
    benchmark::RegisterBenchmark(("generate/with_cache/" + size).c_str(), [n](benchmark::State& st) { bm_generate(st, n, true); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("generate/without_cache/" + size).c_str(), [n](benchmark::State& st) { bm_generate(st, n, false); })
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("generate_paired/200", [](benchmark::State& st) { bm_paired(st, 200); })->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
