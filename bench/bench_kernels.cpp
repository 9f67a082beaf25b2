// Every kernel of kernels.hpp: the Highway SIMD version (dispatched at run time) against its
// scalar twin in scalar.hpp, compiled here as plain C++ (no -march, as the rest of the project).
//
// Names are <kernel>/<simd|scalar>/<f32|f64>/<size>: size is n for elementwise kernels (4096 and
// 1048576) and rows x cols for row kernels (32x128 and 1024x1024), e.g. exp/simd/f32/4096 or
// softmax_rows/scalar/f32/32x128. Counters: items/s (elements; rows x cols for row kernels) and
// bytes/s (bytes the kernel reads and writes). bench_summary pairs simd with scalar from the JSON.
// The first line printed names the Highway target chosen at run time.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/scalar.hpp"

namespace k = ag::kernels;
namespace ks = ag::kernels::scalar;

namespace {

constexpr std::size_t kSmall = 4096, kLarge = 1048576;
struct Shape { std::size_t rows, cols; };
constexpr Shape kSmallRows{32, 128}, kLargeRows{1024, 1024};

template <class T>
std::vector<T> random_values(std::size_t n, double lo, double hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uni(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = T(uni(rng));
  return v;
}

template <class T> const char* type_name() { return sizeof(T) == 4 ? "f32" : "f64"; }

std::string bench_name(const char* kernel, bool simd, const char* type, const std::string& size) {
  return std::string(kernel) + (simd ? "/simd/" : "/scalar/") + type + "/" + size;
}

// Counts elements and the bytes moved (`streams` arrays of n elements read or written).
template <class T>
void set_counters(benchmark::State& st, std::size_t n, int streams) {
  st.SetItemsProcessed(std::int64_t(st.iterations()) * std::int64_t(n));
  st.SetBytesProcessed(std::int64_t(st.iterations()) * std::int64_t(n * sizeof(T) * streams));
}

// Registers the simd and the scalar version of a kernel at the two elementwise sizes; `make`
// turns a size into the benchmark body (which owns its data).
template <class T, class Make>
void register_pair(const char* kernel, Make make) {
  for (std::size_t n : {kSmall, kLarge}) {
    for (bool simd : {true, false}) {
      benchmark::RegisterBenchmark(bench_name(kernel, simd, type_name<T>(), std::to_string(n)).c_str(),
                                   make(simd, n));
    }
  }
}
template <class T, class Make>
void register_rows(const char* kernel, Make make) {
  for (Shape s : {kSmallRows, kLargeRows}) {
    for (bool simd : {true, false}) {
      const std::string size = std::to_string(s.rows) + "x" + std::to_string(s.cols);
      benchmark::RegisterBenchmark(bench_name(kernel, simd, type_name<T>(), size).c_str(), make(simd, s));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Benchmark bodies by signature.

// y = f(x)
template <class T>
void map(const char* kernel, void (*simd)(T*, const T*, std::size_t), void (*scalar)(T*, const T*, std::size_t),
         double lo, double hi) {
  register_pair<T>(kernel, [=](bool use_simd, std::size_t n) {
    return [=](benchmark::State& st) {
      const auto x = random_values<T>(n, lo, hi, 1);
      std::vector<T> y(n);
      const auto f = use_simd ? simd : scalar;
      for (auto _ : st) {
        f(y.data(), x.data(), n);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, n, 2);
    };
  });
}

// out = f(a, b) or dst += f(a, b); `accumulates` counts the read of dst
template <class T>
void zip(const char* kernel, void (*simd)(T*, const T*, const T*, std::size_t),
         void (*scalar)(T*, const T*, const T*, std::size_t), double a_lo, double a_hi, double b_lo, double b_hi,
         bool accumulates) {
  register_pair<T>(kernel, [=](bool use_simd, std::size_t n) {
    return [=](benchmark::State& st) {
      const auto a = random_values<T>(n, a_lo, a_hi, 1), b = random_values<T>(n, b_lo, b_hi, 2);
      auto out = random_values<T>(n, -1, 1, 3);
      const auto f = use_simd ? simd : scalar;
      for (auto _ : st) {
        f(out.data(), a.data(), b.data(), n);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, n, accumulates ? 4 : 3);
    };
  });
}

// out = f(a, s) or dst += s * src
template <class T>
void with_scalar(const char* kernel, void (*simd)(T*, const T*, T, std::size_t),
                 void (*scalar)(T*, const T*, T, std::size_t), bool accumulates) {
  register_pair<T>(kernel, [=](bool use_simd, std::size_t n) {
    return [=](benchmark::State& st) {
      const auto a = random_values<T>(n, -1, 1, 1);
      auto out = random_values<T>(n, -1, 1, 3);
      const auto f = use_simd ? simd : scalar;
      for (auto _ : st) {
        f(out.data(), a.data(), T(0.5), n);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, n, accumulates ? 3 : 2);
    };
  });
}

// dst += src
template <class T>
void acc_bench() {
  register_pair<T>("acc", [](bool use_simd, std::size_t n) {
    return [=](benchmark::State& st) {
      const auto src = random_values<T>(n, -1, 1, 1);
      auto dst = random_values<T>(n, -1, 1, 2);
      const auto f = use_simd ? &k::acc<T> : &ks::acc<T>;
      for (auto _ : st) {
        f(dst.data(), src.data(), n);
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, n, 3);
    };
  });
}

// sum(x), max(x)
template <class T>
void reduce(const char* kernel, T (*simd)(const T*, std::size_t), T (*scalar)(const T*, std::size_t)) {
  register_pair<T>(kernel, [=](bool use_simd, std::size_t n) {
    return [=](benchmark::State& st) {
      const auto x = random_values<T>(n, -1, 1, 1);
      const auto f = use_simd ? simd : scalar;
      for (auto _ : st) benchmark::DoNotOptimize(f(x.data(), n));
      set_counters<T>(st, n, 1);
    };
  });
}

// y = f(x) by rows (softmax, log_softmax); every 4th row is causally masked (-inf past the diagonal)
template <class T>
void rows_map(const char* kernel, void (*simd)(T*, const T*, std::size_t, std::size_t),
              void (*scalar)(T*, const T*, std::size_t, std::size_t)) {
  register_rows<T>(kernel, [=](bool use_simd, Shape s) {
    return [=](benchmark::State& st) {
      auto x = random_values<T>(s.rows * s.cols, -5, 5, 1);
      for (std::size_t r = 0; r < s.rows; r += 4)
        for (std::size_t j = r % s.cols + 1; j < s.cols; ++j) x[r * s.cols + j] = -std::numeric_limits<T>::infinity();
      std::vector<T> y(x.size());
      const auto f = use_simd ? simd : scalar;
      for (auto _ : st) {
        f(y.data(), x.data(), s.rows, s.cols);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, x.size(), 2);
    };
  });
}

// dx += f(y, dy) by rows
template <class T>
void rows_backward(const char* kernel, void (*simd)(T*, const T*, const T*, std::size_t, std::size_t),
                   void (*scalar)(T*, const T*, const T*, std::size_t, std::size_t), bool log_y) {
  register_rows<T>(kernel, [=](bool use_simd, Shape s) {
    return [=](benchmark::State& st) {
      const auto x = random_values<T>(s.rows * s.cols, -5, 5, 1), dy = random_values<T>(x.size(), -1, 1, 2);
      std::vector<T> y(x.size()), dx(x.size(), T(0));
      if (log_y) ks::log_softmax_rows(y.data(), x.data(), s.rows, s.cols);
      else ks::softmax_rows(y.data(), x.data(), s.rows, s.cols);
      const auto f = use_simd ? simd : scalar;
      for (auto _ : st) {
        f(dx.data(), y.data(), dy.data(), s.rows, s.cols);
        benchmark::DoNotOptimize(dx.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, x.size(), 4);
    };
  });
}

template <class T>
void layer_norm_bench() {
  register_rows<T>("layer_norm_rows", [](bool use_simd, Shape s) {
    return [=](benchmark::State& st) {
      const auto x = random_values<T>(s.rows * s.cols, -3, 3, 1);
      const auto gamma = random_values<T>(s.cols, 0.5, 2, 2), beta = random_values<T>(s.cols, -1, 1, 3);
      std::vector<T> y(x.size()), mean(s.rows), rstd(s.rows);
      const auto f = use_simd ? &k::layer_norm_rows<T> : &ks::layer_norm_rows<T>;
      for (auto _ : st) {
        f(y.data(), mean.data(), rstd.data(), x.data(), gamma.data(), beta.data(), s.rows, s.cols, T(1e-5));
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, x.size(), 2);
    };
  });
}

template <class T>
void layer_norm_backward_bench() {
  register_rows<T>("layer_norm_backward_rows", [](bool use_simd, Shape s) {
    return [=](benchmark::State& st) {
      const auto x = random_values<T>(s.rows * s.cols, -3, 3, 1), dy = random_values<T>(x.size(), -1, 1, 2);
      const auto gamma = random_values<T>(s.cols, 0.5, 2, 3);
      std::vector<T> y(x.size()), mean(s.rows), rstd(s.rows), dx(x.size(), T(0)), dgamma(s.cols), dbeta(s.cols);
      ks::layer_norm_rows(y.data(), mean.data(), rstd.data(), x.data(), gamma.data(), static_cast<const T*>(nullptr), s.rows, s.cols,
                          T(1e-5));
      const auto f = use_simd ? &k::layer_norm_backward_rows<T> : &ks::layer_norm_backward_rows<T>;
      for (auto _ : st) {
        f(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), mean.data(), rstd.data(), gamma.data(), s.rows,
          s.cols);
        benchmark::DoNotOptimize(dx.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, x.size(), 3);
    };
  });
}

template <class T>
void adam_bench() {
  register_pair<T>("adam_update", [](bool use_simd, std::size_t n) {
    return [=](benchmark::State& st) {
      auto param = random_values<T>(n, -1, 1, 1), m = random_values<T>(n, -0.1, 0.1, 2);
      auto v = random_values<T>(n, 0, 0.01, 3);
      const auto grad = random_values<T>(n, -1, 1, 4);
      k::AdamParams p;
      p.weight_decay = 0.01;
      p.decoupled = true;
      p.step = 10;
      const auto f = use_simd ? &k::adam_update<T> : &ks::adam_update<T>;
      for (auto _ : st) {
        f(param.data(), m.data(), v.data(), grad.data(), n, p);
        benchmark::DoNotOptimize(param.data());
        benchmark::ClobberMemory();
      }
      set_counters<T>(st, n, 7);
    };
  });
}

// Every kernel for T; `all` false registers only the main ones (for double).
template <class T>
void register_all(bool all) {
  map<T>("exp", k::exp<T>, ks::exp<T>, -10, 10);
  map<T>("tanh", k::tanh<T>, ks::tanh<T>, -5, 5);
  rows_map<T>("softmax_rows", k::softmax_rows<T>, ks::softmax_rows<T>);
  layer_norm_bench<T>();
  zip<T>("add", k::add<T>, ks::add<T>, -1, 1, -1, 1, false);
  if (!all) return;
  map<T>("log", k::log<T>, ks::log<T>, 1e-3, 1e3);
  map<T>("sigmoid", k::sigmoid<T>, ks::sigmoid<T>, -10, 10);
  map<T>("relu", k::relu<T>, ks::relu<T>, -1, 1);
  map<T>("gelu", k::gelu<T>, ks::gelu<T>, -5, 5);
  zip<T>("tanh_backward", k::tanh_backward<T>, ks::tanh_backward<T>, -1, 1, -1, 1, true);
  zip<T>("sigmoid_backward", k::sigmoid_backward<T>, ks::sigmoid_backward<T>, 0, 1, -1, 1, true);
  zip<T>("relu_backward", k::relu_backward<T>, ks::relu_backward<T>, -1, 1, -1, 1, true);
  zip<T>("gelu_backward", k::gelu_backward<T>, ks::gelu_backward<T>, -5, 5, -1, 1, true);
  zip<T>("sub", k::sub<T>, ks::sub<T>, -1, 1, -1, 1, false);
  zip<T>("mul", k::mul<T>, ks::mul<T>, -1, 1, -1, 1, false);
  zip<T>("div", k::div<T>, ks::div<T>, -1, 1, 0.5, 2, false);
  with_scalar<T>("add_scalar", k::add_scalar<T>, ks::add_scalar<T>, false);
  with_scalar<T>("mul_scalar", k::mul_scalar<T>, ks::mul_scalar<T>, false);
  acc_bench<T>();
  with_scalar<T>("acc_scaled", k::acc_scaled<T>, ks::acc_scaled<T>, true);
  zip<T>("acc_mul", k::acc_mul<T>, ks::acc_mul<T>, -1, 1, -1, 1, true);
  zip<T>("acc_div", k::acc_div<T>, ks::acc_div<T>, -1, 1, 0.5, 2, true);
  reduce<T>("sum", k::sum<T>, ks::sum<T>);
  reduce<T>("max", k::max<T>, ks::max<T>);
  rows_map<T>("log_softmax_rows", k::log_softmax_rows<T>, ks::log_softmax_rows<T>);
  rows_backward<T>("softmax_backward_rows", k::softmax_backward_rows<T>, ks::softmax_backward_rows<T>, false);
  rows_backward<T>("log_softmax_backward_rows", k::log_softmax_backward_rows<T>, ks::log_softmax_backward_rows<T>, true);
  layer_norm_backward_bench<T>();
  adam_bench<T>();
}

}  // namespace

// BENCHMARK_MAIN, plus: the Highway target first (also in the JSON context), and a shorter
// default --benchmark_min_time (0.2 s per benchmark; ~250 of them) unless one is given.
int main(int argc, char** argv) {
  std::printf("Highway target: %s\n", k::simd_target());
  std::fflush(stdout);
  std::vector<char*> args(argv, argv + argc);
  bool has_min_time = false;
  for (int i = 1; i < argc; ++i) has_min_time |= std::strncmp(argv[i], "--benchmark_min_time", 20) == 0;
  char min_time[] = "--benchmark_min_time=0.2";
  if (!has_min_time) args.push_back(min_time);
  int n_args = int(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&n_args, args.data());
  if (benchmark::ReportUnrecognizedArguments(n_args, args.data())) return 1;
  benchmark::AddCustomContext("highway_target", k::simd_target());
  register_all<float>(true);
  register_all<double>(false);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
