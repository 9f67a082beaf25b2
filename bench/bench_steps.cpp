// Training-step benchmarks (issue 7): one step = forward + backward + Adam update + zero_grad,
// float32, on the configs the lessons train.
//
//   transformer_layer  post-LN nn::TransformerEncoderLayer, d_model 128, 4 heads, FFN 512 (ReLU),
//                      dropout 0; input [32, 128, 128]; loss = mean(out^2)
//   tanh_rnn           nn::RNN input 64, hidden 128; input [32, 100, 64]; loss = mean(h_last^2)
//   lstm               nn::LSTM, the same shapes and loss
//   bahdanau_seq2seq   nn::Seq2Seq (GRU encoder, hidden 128, over 30 source tokens; a 30-step
//                      GRUCell decoder with additive attention, the context concatenated to the
//                      decoder input; vocab 32, embedding 64), batch 32, cross-entropy
//   sdpa               nn::scaled_dot_product_attention forward + backward only (no optimizer) on
//                      q, k, v [32, 4, 256, 32] requiring grad; loss = sum(output); grads dropped
//   matmul             ag::matmul forward (NoGrad), 1024 x 1024 by 1024 x 1024: the sgemm rate that
//                      model FLOPs utilisation (MFU) is measured against, in the same run
//   gpt2_small         GPT-2 124M (nn::GPT: 12 layers, 12 heads, d_model 768, vocabulary 50,257 padded
//                      to 50,304, 1,024 learned positions, tied embedding and head, GELU tanh, pre-LN,
//                      causal); ids [4, 64]; cross-entropy; AdamW lr 1e-4, betas (0.9, 0.999),
//                      eps 1e-8, weight decay 0
//   char_gpt           lesson 14's nanogpt-cpu model (4 layers, 4 heads, d_model 128, block 64,
//                      vocabulary 65, untied head); ids [12, 64]; cross-entropy; the same AdamW
//   curve_*            (only with --curves, instead of the above) cost against T: see "cost curves"
//   steady_state_rss   (only with --rss-flat) 1,000 tanh_rnn steps; RSS from /proc/self/statm
//                      after step 100 and after step 1000, and the growth in % (target: < 5%)
//
// Model FLOPs per step (the "GFLOP/s" counter is them over the median step; MFU divides that by
// the matmul config's GFLOP/s, both from the same run). PaLM's accounting (Chowdhery et al. 2022,
// appendix B), for a config reading `tokens` = B T positions per step:
//   6 N tokens        every weight matrix: a multiply-add (2 FLOPs) per weight per token forward,
//                     twice that backward (the input's gradient and the weight's). N counts the
//                     parameters that multiply activations: matrices and biases, a tied embedding
//                     once (as the output head); not a lookup table (position table, untied input embedding)
//   + 12 L B T^2 D    attention's two matmuls (q k^T and weights v): 2 B T^2 D each forward per layer,
//                     twice that backward; a causal mask's skipped half is counted, as the kernels
//                     compute it
// Recurrent configs: 6 N B T with N the cell's weights (input and recurrent). Bahdanau: the
// encoder's GRU over S, the decoder cell and output over T, the key projection over S, the query
// projection over T, and 12 B T S H for the scores' v . tanh and the context. sdpa: 12 B H T^2 d
// (forward 4, backward 8). gpt2_small: N = 124,475,904 parameters less the 786,432 of the position
// table = 123,689,472; 6 N x 256 tokens = 189.99 GFLOP, attention 12 x 12 x 4 x 64^2 x 768 = 1.81 GFLOP:
// 191.80 GFLOP per step. Element-wise work (norms, softmax, GELU, Adam) is not counted: MFU says
// how close a step gets to spending all its time in matmul at the machine's sgemm rate.
//
// Each config builds its model once, runs --warmup steps (default 3), then times --steps steps
// (default 25) one by one; the reported time (manual time) is the MEDIAN step, with counters
// ms_per_step (median), mean_ms, min_ms, max_ms, steps, and memory: peak_rss_MB
// (getrusage ru_maxrss at the end), base_rss_MB (RSS when main started, before any model) and
// working_set_MB = peak - base, the figure to hold against PyTorch's peak minus its RSS after
// `import torch` (bench/torch_reference.py).
//
// Peak RSS is per process, so by default (no --benchmark_filter) this program runs every config
// in its own child process (itself, with --benchmark_filter=^<config>/), merges the children's
// JSON into --benchmark_out (names cleaned to the bare config name), and prints a summary
// table. With --benchmark_filter given, it runs in this process (peak RSS is then the peak over
// everything run so far). ./lab bench steps runs the default mode.
//
// Threads: the engine reads $ATTNLAB_NUM_THREADS, else $OPENBLAS_NUM_THREADS (OpenBLAS itself runs
// on one thread per call, the engine splitting the work: Note [threads] in kernels.hpp), so set
// OPENBLAS_NUM_THREADS=2 (the machine's 2 cores; issue 7 compares at 2 threads, and PyTorch runs
// with torch.set_num_threads(2)). The count in use is printed and kept in the JSON.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ag/ag.hpp"
#include "common/curves.hpp"
#include "common/summary.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using ag::Tensor;

int g_warmup = 3;
int g_steps = 25;
int g_rss_steps = 1000;
double g_base_rss_mb = 0;  // RSS when main started

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Current resident set size from /proc/self/statm (pages), in MB.
double current_rss_mb() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// Peak resident set size of this process (getrusage: kilobytes on Linux), in MB.
double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// ---- the configs -------------------------------------------------------------------------------

struct Config {
  virtual ~Config() = default;
  virtual void step() = 0;
  virtual double flops() const { return 0; }  // model FLOPs per step (see the header)
};

// The scalars of the parameters that multiply activations (not lookups): see the header.
std::size_t matmul_params(const nn::Module& m, const std::vector<std::string>& lookups = {}) {
  std::size_t n = 0;
  for (const auto& [name, p] : m.named_parameters())
    if (std::find(lookups.begin(), lookups.end(), name) == lookups.end()) n += p.numel();
  return n;
}

// Adam on every parameter; a step ends with the update and zero_grad, as in the PyTorch loop.
struct Trained : Config {
  std::unique_ptr<nn::Adam> opt;
  void finish(const Tensor& loss) {
    loss.backward();
    opt->step();
    opt->zero_grad();
  }
};

struct TransformerLayer : Trained {
  ag::Generator gen{1};
  nn::TransformerEncoderLayer layer;
  Tensor x;
  explicit TransformerLayer(std::size_t B = 32, std::size_t T = 128, nn::AttentionImpl impl = nn::AttentionImpl::naive,
                            std::optional<std::size_t> window = {})
      : layer(nn::TransformerOptions{.d_model = 128, .num_heads = 4, .dim_feedforward = 512, .dropout = 0.0,
                                     .norm_first = false, .attention = impl, .window = window},
              gen) {
    x = ag::randn({B, T, 128}, gen);
    opt = std::make_unique<nn::Adam>(layer.parameters());
    impl_ = window ? nn::AttentionImpl::linear : impl;  // a window: no model-FLOPs count
  }
  void step() override {
    const Tensor out = layer.forward(x);
    finish(ag::mean(out * out));
  }
  double flops() const override {
    const double B = double(x.size(0)), T = double(x.size(1)), D = double(x.size(2));
    if (impl_ != nn::AttentionImpl::naive && impl_ != nn::AttentionImpl::tiled) return 0;  // windows and linear: another count
    return 6.0 * double(matmul_params(layer)) * B * T + 12.0 * B * T * T * D;
  }
  nn::AttentionImpl impl_ = nn::AttentionImpl::naive;
};

struct RecurrentConfig : Trained {
  ag::Generator gen{2};
  nn::Recurrent rnn;
  Tensor x;
  explicit RecurrentConfig(nn::CellKind kind, std::size_t T = 100) : rnn(kind, 64, 128, gen) {
    x = ag::randn({32, T, 64}, gen);
    opt = std::make_unique<nn::Adam>(rnn.parameters());
  }
  void step() override {
    const nn::RecurrentOutput r = rnn.forward(x);
    const Tensor& h = r.last.back().h;
    finish(ag::mean(h * h));
  }
  double flops() const override { return 6.0 * double(matmul_params(rnn)) * double(x.size(0)) * double(x.size(1)); }
};

struct BahdanauSeq2Seq : Trained {
  static constexpr std::size_t B = 32, S = 30, T = 30, V = 32;
  ag::Generator gen{3};
  nn::Seq2Seq model{V, V, nn::Seq2SeqOptions{.embed_dim = 64, .hidden_size = 128, .attention = true}, gen};
  ag::Indices src, tgt_in, tgt_out;
  BahdanauSeq2Seq() {
    auto ids = [&](std::size_t len) {
      std::vector<std::int64_t> v(B * len);
      for (auto& id : v) id = gen.integer(0, std::int64_t(V) - 1);
      return ag::Indices(v, {B, len});
    };
    src = ids(S);
    tgt_in = ids(T);
    tgt_out = ids(T);
    opt = std::make_unique<nn::Adam>(model.parameters());
  }
  void step() override {
    const auto out = model.forward(src, tgt_in);  // logits [B, T, V]
    finish(ag::cross_entropy(out.logits, tgt_out));
  }
  double flops() const override {
    constexpr double E = 64, H = 128;
    const double encoder = 3 * H * (E + H) + 6 * H, decoder = 3 * H * (E + 2 * H) + 6 * H, out = double(V) * 2 * H + double(V);
    const double keys = H * H + H, query = H * H;
    return 6.0 * B * (double(S) * (encoder + keys) + double(T) * (decoder + out + query)) + 12.0 * B * T * S * H;
  }
};

struct Sdpa : Config {
  ag::Generator gen{4};
  Tensor q, k, v;
  Sdpa() {
    const ag::Shape s{32, 4, 256, 32};
    q = ag::randn(s, gen, {.requires_grad = true});
    k = ag::randn(s, gen, {.requires_grad = true});
    v = ag::randn(s, gen, {.requires_grad = true});
  }
  void step() override {
    ag::sum(nn::scaled_dot_product_attention(q, k, v).output).backward();
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
  }
  double flops() const override { return 12.0 * 32 * 4 * 256.0 * 256.0 * 32; }
};

// A GPT training step: forward, cross-entropy over every position, backward, AdamW, zero_grad.
struct GPTStep : Trained {
  ag::Generator gen{6};
  nn::GPTOptions o;
  nn::GPT model;
  std::size_t B, T;
  ag::Indices ids, targets;
  GPTStep(const nn::GPTOptions& options, std::size_t batch, std::size_t length)
      : o(options), model(options, gen), B(batch), T(length) {
    auto draw = [&] {
      std::vector<std::int64_t> v(B * T);
      for (auto& id : v) id = gen.integer(0, std::int64_t(o.vocab_size) - 1);
      return v;
    };
    ids = ag::Indices(draw(), {B, T});
    targets = ag::Indices(draw(), {B * T});
    opt = std::make_unique<nn::AdamW>(model.parameters(), nn::AdamWOptions{.lr = 1e-4, .betas = {0.9, 0.999}, .eps = 1e-8, .weight_decay = 0.0});
  }
  void step() override {
    // [B, T, V] logits with [B T] targets: cross_entropy takes them as they are (a reshape would copy
    // them, where PyTorch's view is free)
    finish(ag::cross_entropy(model.forward(ids), targets));
  }
  double flops() const override {
    // The position table is a lookup; so is an untied input embedding (its head is counted).
    std::vector<std::string> lookups = {"pos_emb.weight"};
    if (!o.tie_weights) lookups.push_back("tok_emb.weight");
    const double tokens = double(B * T);
    return 6.0 * double(matmul_params(model, lookups)) * tokens + 12.0 * double(o.num_layers) * double(B) * double(T) * double(T) * double(o.d_model);
  }
};

nn::GPTOptions gpt2_small() {
  return {.vocab_size = 50304, .block_size = 1024, .d_model = 768, .num_heads = 12, .num_layers = 12, .tie_weights = true};
}
nn::GPTOptions char_gpt() { return {.vocab_size = 65, .block_size = 64, .d_model = 128, .num_heads = 4, .num_layers = 4}; }

struct Matmul : Config {
  static constexpr std::size_t n = 1024;
  ag::Generator gen{5};
  Tensor a = ag::randn({n, n}, gen), b = ag::randn({n, n}, gen);
  void step() override {
    ag::NoGrad no_grad;
    const Tensor c = ag::matmul(a, b);
    benchmark::DoNotOptimize(c.node());
  }
  double flops() const override { return 2.0 * double(n) * double(n) * double(n); }
};

struct ConfigInfo {
  std::string name;
  std::function<std::unique_ptr<Config>()> make;
};

const std::vector<ConfigInfo>& configs() {
  static const std::vector<ConfigInfo> all = {
      {"transformer_layer", [] { return std::make_unique<TransformerLayer>(); }},
      {"tanh_rnn", [] { return std::make_unique<RecurrentConfig>(nn::CellKind::tanh_rnn); }},
      {"lstm", [] { return std::make_unique<RecurrentConfig>(nn::CellKind::lstm); }},
      {"bahdanau_seq2seq", [] { return std::make_unique<BahdanauSeq2Seq>(); }},
      {"sdpa", [] { return std::make_unique<Sdpa>(); }},
      {"matmul", [] { return std::make_unique<Matmul>(); }},
      {"char_gpt", [] { return std::make_unique<GPTStep>(char_gpt(), 12, 64); }},
      {"gpt2_small", [] { return std::make_unique<GPTStep>(gpt2_small(), 4, 64); }},
  };
  return all;
}

// ---- cost curves (--curves): step time and peak memory against the sequence length T ---------
// The same step (forward + backward + Adam + zero_grad) for T = 32 ... 4096:
//   tanh_rnn           as above (batch 32), T steps
//   transformer_naive  the transformer_layer above with batch 4 (at T = 4096 its step peaks at 2.4 GB)
//   transformer_tiled  the same layer with AttentionImpl::tiled (ag::tiled_attention)
//   transformer_window the tiled layer with a sliding window of 256 keys on each side (lesson 18)
//   transformer_linear the layer with AttentionImpl::linear (elu + 1 linear attention; lesson 18)
// The first three stop at T = 4096 (naive attention's [4, 4, T, T] arrays take 268 MB each there,
// 1 GB at 8192); the two linear-time kinds go on to 16,384.
// Each point runs in its own process, 2 warm-up + 10 timed steps unless --steps / --warmup say
// otherwise. The fitted exponent p (cost ~ T^p) is reported over all lengths and over the three
// largest. Why go past 1024: the layer's projections and FFN cost ~24 D^2 T flops, its attention
// ~4 D T^2, so attention leads only once T > 6 D = 768; below that the layer looks linear.
constexpr std::size_t kCurveLengths[] = {32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
constexpr const char* kCurveModels[] = {"tanh_rnn", "transformer_naive", "transformer_tiled", "transformer_window", "transformer_linear"};
constexpr std::size_t kCurveWindow = 256;
// The longest T each model is measured at.
std::size_t curve_longest(const std::string& model) {
  return model == "transformer_window" || model == "transformer_linear" ? 16384 : 4096;
}

std::string curve_name(const std::string& model, std::size_t T) { return "curve_" + model + "_T" + std::to_string(T); }

const std::vector<ConfigInfo>& curve_configs() {
  static const std::vector<ConfigInfo> all = [] {
    std::vector<ConfigInfo> v;
    for (const std::string model : kCurveModels)
      for (const std::size_t T : kCurveLengths) {
        if (T > curve_longest(model)) continue;
        std::function<std::unique_ptr<Config>()> make;
        if (model == "tanh_rnn") make = [T] { return std::make_unique<RecurrentConfig>(nn::CellKind::tanh_rnn, T); };
        else {
          const auto impl = model == "transformer_naive"    ? nn::AttentionImpl::naive
                            : model == "transformer_linear" ? nn::AttentionImpl::linear
                                                            : nn::AttentionImpl::tiled;
          const std::optional<std::size_t> window = model == "transformer_window" ? std::optional(kCurveWindow) : std::nullopt;
          make = [T, impl, window] { return std::make_unique<TransformerLayer>(4, T, impl, window); };
        }
        v.push_back({curve_name(model, T), make});
      }
    return v;
  }();
  return all;
}

void set_memory_counters(benchmark::State& st) {
  const double peak = peak_rss_mb();
  st.counters["peak_rss_MB"] = peak;
  st.counters["base_rss_MB"] = g_base_rss_mb;
  st.counters["working_set_MB"] = peak - g_base_rss_mb;
}

// One benchmark iteration = the whole measurement: build, warm up, time each step.
void bm_config(benchmark::State& st, const ConfigInfo& info) {
  for (auto _ : st) {
    try {
      std::unique_ptr<Config> c = info.make();
      for (int i = 0; i < g_warmup; ++i) c->step();
      std::vector<double> ms;
      ms.reserve(std::size_t(g_steps));
      for (int i = 0; i < g_steps; ++i) {
        const auto t0 = Clock::now();
        c->step();
        ms.push_back(seconds_since(t0) * 1e3);
      }
      const double med = median(ms);
      st.SetIterationTime(med / 1e3);
      st.counters["ms_per_step"] = med;
      st.counters["mean_ms"] = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
      st.counters["min_ms"] = *std::min_element(ms.begin(), ms.end());
      st.counters["max_ms"] = *std::max_element(ms.begin(), ms.end());
      st.counters["steps"] = double(ms.size());
      if (c->flops() > 0) {
        st.counters["model_GFLOP"] = c->flops() / 1e9;
        st.counters["GFLOP/s"] = c->flops() / (med / 1e3) / 1e9;
      }
      set_memory_counters(st);
    } catch (const std::exception& e) {
      st.SkipWithError(e.what());
      break;
    }
  }
}

// No allocation growth: the tanh_rnn step --rss-steps times (default 1000); RSS after step 100
// (allocator pools and Adam's state in place by then) and after the last step.
void bm_steady_state_rss(benchmark::State& st) {
  for (auto _ : st) {
    try {
      RecurrentConfig c(nn::CellKind::tanh_rnn);
      const int total = std::max(g_rss_steps, 101);
      double at100 = 0, max_after100 = 0;
      std::vector<double> ms;
      ms.reserve(std::size_t(total));
      for (int i = 1; i <= total; ++i) {
        const auto t0 = Clock::now();
        c.step();
        ms.push_back(seconds_since(t0) * 1e3);
        if (i >= 100 && i % 50 == 0) max_after100 = std::max(max_after100, current_rss_mb());
        if (i == 100) at100 = current_rss_mb();
      }
      const double at_end = current_rss_mb();
      const double med = median(ms);
      st.SetIterationTime(med / 1e3);
      st.counters["steps"] = double(total);
      st.counters["ms_per_step"] = med;
      st.counters["rss_step100_MB"] = at100;
      st.counters["rss_last_MB"] = at_end;
      st.counters["rss_max_after100_MB"] = max_after100;
      st.counters["growth_pct"] = at100 > 0 ? 100.0 * (at_end - at100) / at100 : 0.0;
      set_memory_counters(st);
    } catch (const std::exception& e) {
      st.SkipWithError(e.what());
      break;
    }
  }
}

void register_all() {
  std::vector<const ConfigInfo*> all;
  for (const auto& info : configs()) all.push_back(&info);
  for (const auto& info : curve_configs()) all.push_back(&info);
  for (const ConfigInfo* p : all)
    benchmark::RegisterBenchmark(p->name.c_str(), [p](benchmark::State& st) { bm_config(st, *p); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("steady_state_rss", bm_steady_state_rss)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
}

// ---- command line ------------------------------------------------------------------------------

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string load_string() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
  return buf;
}

// "tanh_rnn/iterations:1/manual_time" -> "tanh_rnn"
std::string clean_name(const std::string& name) {
  const auto slash = name.find('/');
  return slash == std::string::npos ? name : name.substr(0, slash);
}

// A child's console output: its result line only (the parent printed the context once; the
// line names its counters). Colour only on a terminal.
class QuietConsoleReporter : public benchmark::ConsoleReporter {
 public:
  QuietConsoleReporter() : benchmark::ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Color : OO_None) {}
  bool ReportContext(const Context&) override { return true; }

 protected:
  void PrintHeader(const Run&) override {}
};

int run_in_process(std::vector<std::string> args, bool child) {
  if (!child) {
    std::printf("Highway target: %s\n", ag::simd_target());
    std::printf("threads: %zu (OPENBLAS_NUM_THREADS=%s; OpenBLAS one per call); load average: %s\n", ag::get_num_threads(),
                std::getenv("OPENBLAS_NUM_THREADS") ? std::getenv("OPENBLAS_NUM_THREADS") : "unset", load_string().c_str());
    std::fflush(stdout);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int argc = int(argv.size());
  argv.push_back(nullptr);
  benchmark::Initialize(&argc, argv.data());
  if (benchmark::ReportUnrecognizedArguments(argc, argv.data())) return 1;
  benchmark::AddCustomContext("highway_target", ag::simd_target());
  benchmark::AddCustomContext("threads", std::to_string(ag::get_num_threads()));
  benchmark::AddCustomContext("load_average_start", load_string());
  benchmark::AddCustomContext("warmup_steps", std::to_string(g_warmup));
  benchmark::AddCustomContext("measured_steps", std::to_string(g_steps));
  register_all();
  if (child) {
    QuietConsoleReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  return 0;
}

// Runs `exe args...` and waits; returns its exit status (or 128 + signal).
int run_child(const std::vector<std::string>& args) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    std::perror("bench_steps: execv");
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// --curves: the CSV (T, then ms and MB per model), two log-log plots and the fitted exponents.
void report_curves(const nlohmann::json& merged, const std::filesystem::path& out_json) {
  const std::filesystem::path dir = out_json.empty() ? std::filesystem::path(".") : out_json.parent_path();
  const std::filesystem::path csv = dir / "curves.csv";
  std::vector<std::string> columns;
  for (const std::string m : kCurveModels) columns.push_back(m + "_ms");
  for (const std::string m : kCurveModels) columns.push_back(m + "_MB");
  std::vector<double> Ts;
  std::vector<std::vector<double>> ms(std::size(kCurveModels)), mb(std::size(kCurveModels));
  {
    lab::CurveLog log(csv, columns, "T");
    for (const std::size_t T : kCurveLengths) {
      Ts.push_back(double(T));
      std::vector<double> row(columns.size(), lab::kMissing);
      for (std::size_t m = 0; m < std::size(kCurveModels); ++m)
        for (const auto& b : merged["benchmarks"])
          if (b["name"] == curve_name(kCurveModels[m], T) && !(b.contains("error_occurred") && b["error_occurred"].get<bool>())) {
            row[m] = b.value("ms_per_step", lab::kMissing);
            row[std::size(kCurveModels) + m] = b.value("working_set_MB", lab::kMissing);
          }
      for (std::size_t m = 0; m < std::size(kCurveModels); ++m) ms[m].push_back(row[m]), mb[m].push_back(row[std::size(kCurveModels) + m]);
      log.log(double(T), row);
    }
  }
  // A model's last measured point (T, y), for the guides; its third-largest T, for the fits.
  auto last_point = [&](const std::vector<double>& y) {
    for (std::size_t i = y.size(); i-- > 0;)
      if (std::isfinite(y[i])) return std::pair{Ts[i], y[i]};
    return std::pair{Ts.back(), lab::kMissing};
  };
  auto third_largest = [&](const std::vector<double>& y) {
    std::vector<double> have;
    for (std::size_t i = 0; i < y.size(); ++i)
      if (std::isfinite(y[i])) have.push_back(Ts[i]);
    return have.size() >= 3 ? have[have.size() - 3] : Ts.front();
  };
  // Dashed guides of slope 1 and 2, through the last point of a curve, to read the slopes against.
  const std::filesystem::path guides = dir / "curves_guides.csv";
  {
    const auto [t1, y1] = last_point(ms[0]);  // time: slope 1 through the RNN, 2 through naive
    const auto [t2, y2] = last_point(ms[1]);
    const auto [m1, z1] = last_point(mb[2]);  // memory: slope 1 through tiled, 2 through naive
    const auto [m2, z2] = last_point(mb[1]);
    lab::CurveLog log(guides, {"time_T1", "time_T2", "memory_T1", "memory_T2"}, "T");
    for (const double T : Ts) log.log(T, {y1 * T / t1, y2 * (T / t2) * (T / t2), z1 * T / m1, z2 * (T / m2) * (T / m2)});
  }
  const char* titles[] = {"tanh RNN (batch 32)", "Transformer layer, naive attention (batch 4)",
                          "Transformer layer, tiled attention (batch 4)", "Transformer layer, window 256 (batch 4)",
                          "Transformer layer, linear attention (batch 4)"};
  static_assert(std::size(titles) == std::size(kCurveModels));
  lab::Table fits("Fitted exponent p in cost ~ T^p (all lengths / each model's three largest)",
                  {"model", "time p", "time p, three largest", "memory p", "memory p, three largest", "from T"});
  std::vector<lab::Series> time_series, memory_series;
  for (std::size_t m = 0; m < std::size(kCurveModels); ++m) {
    const double from = third_largest(ms[m]);  // the three largest lengths: the leading term shows
    const double pt = lab::loglog_slope(Ts, ms[m]), pt_hi = lab::loglog_slope(Ts, ms[m], from);
    const double pm = lab::loglog_slope(Ts, mb[m]), pm_hi = lab::loglog_slope(Ts, mb[m], from);
    fits.row({titles[m], lab::Cell(pt, 3), lab::Cell(pt_hi, 3), lab::Cell(pm, 3), lab::Cell(pm_hi, 3), long(from)});
    const std::string model = kCurveModels[m];
    char legend[160];
    std::snprintf(legend, sizeof legend, "%s: p = %.2f", titles[m], pt_hi);
    time_series.push_back({csv, model + "_ms", legend, "T", "linespoints"});
    std::snprintf(legend, sizeof legend, "%s: p = %.2f", titles[m], pm_hi);
    memory_series.push_back({csv, model + "_MB", legend, "T", "linespoints"});
  }
  time_series.push_back({guides, "time_T1", "slope 1 (through the RNN)", "T", "lines dt 3 lc rgb 'gray50'"});
  time_series.push_back({guides, "time_T2", "slope 2 (through naive)", "T", "lines dt 2 lc rgb 'gray30'"});
  memory_series.push_back({guides, "memory_T1", "slope 1 (through tiled)", "T", "lines dt 3 lc rgb 'gray50'"});
  memory_series.push_back({guides, "memory_T2", "slope 2 (through naive)", "T", "lines dt 2 lc rgb 'gray30'"});
  std::printf("\n");
  fits.print();
  fits.save_markdown(dir / "curves.md", true);
  lab::plot(dir / "curves_time.png", time_series,
            {.title = "One training step against sequence length (p fitted on each model's three largest T)",
             .xlabel = "sequence length T", .ylabel = "median ms per step", .logx = true, .logy = true,
             .key = "top left Left reverse"});
  lab::plot(dir / "curves_memory.png", memory_series,
            {.title = "Peak working set of a training step (p fitted on each model's three largest T)",
             .xlabel = "sequence length T", .ylabel = "MB (peak RSS - RSS at start)", .logx = true, .logy = true,
             .key = "top left Left reverse"});
  std::printf("written: curves.csv, curves_guides.csv, curves.md, curves_time.png, curves_memory.png in %s\n", dir.c_str());
}

// The default: one child process per config, then one merged JSON and a summary table.
int run_forked(const std::string& argv0, const std::vector<std::string>& passthrough, const std::string& out_path,
               bool rss_flat, bool curves) {
  std::printf("Highway target: %s\n", ag::simd_target());
  std::printf("threads: %zu (OPENBLAS_NUM_THREADS=%s; OpenBLAS one per call); load average: %s\n", ag::get_num_threads(),
              std::getenv("OPENBLAS_NUM_THREADS") ? std::getenv("OPENBLAS_NUM_THREADS") : "unset", load_string().c_str());
  std::printf("one process per config; %d warm-up + %d timed steps each%s\n", g_warmup, g_steps,
              rss_flat ? "; plus steady_state_rss" : " (--rss-flat adds the 1,000-step RSS check)");
  const std::string load_start = load_string();

  char tmpl[] = "/tmp/bench_steps.XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("bench_steps: mkdtemp");
    return 1;
  }
  const std::filesystem::path tmp(tmpl);
  std::vector<std::string> names;
  for (const auto& c : curves ? curve_configs() : configs()) names.push_back(c.name);
  if (rss_flat) names.push_back("steady_state_rss");

  nlohmann::json merged;
  merged["benchmarks"] = nlohmann::json::array();
  std::vector<std::string> failed;
  for (const auto& name : names) {
    const std::string json_path = (tmp / (name + ".json")).string();
    std::vector<std::string> args = {argv0, "--child", "--benchmark_filter=^" + name + "/",
                                     "--benchmark_out=" + json_path, "--benchmark_out_format=json",
                                     "--steps=" + std::to_string(g_steps), "--warmup=" + std::to_string(g_warmup)};
    args.insert(args.end(), passthrough.begin(), passthrough.end());
    const int rc = run_child(args);
    std::ifstream in(json_path);
    nlohmann::json doc;
    bool ok = rc == 0 && bool(in);
    if (ok) {
      try {
        doc = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception&) {
        ok = false;
      }
    }
    if (!ok || doc.value("benchmarks", nlohmann::json::array()).empty()) {
      failed.push_back(name + " (exit " + std::to_string(rc) + ")");
      continue;
    }
    if (!merged.contains("context")) merged["context"] = doc["context"];
    for (auto b : doc["benchmarks"]) {
      if (b.contains("error_occurred") && b["error_occurred"].get<bool>()) failed.push_back(name + ": " + b.value("error_message", ""));
      b["name"] = clean_name(b.value("name", name));
      b["run_name"] = clean_name(b.value("run_name", name));
      merged["benchmarks"].push_back(b);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  if (!merged.contains("context")) merged["context"] = nlohmann::json::object();
  merged["context"]["load_average_start"] = load_start;
  merged["context"]["load_average_end"] = load_string();
  merged["context"]["process_per_config"] = "true";
  if (!out_path.empty()) {
    std::ofstream out(out_path);
    out << merged.dump(2) << "\n";
  }

  // The summary table.
  std::printf("\n%-18s %11s %9s %9s %9s %6s %10s %10s %12s\n", "config", "median ms", "mean ms", "min ms", "max ms", "steps",
              "peak MB", "base MB", "working MB");
  const nlohmann::json* steady = nullptr;
  double sgemm_rate = 0;  // the matmul config's GFLOP/s: MFU's denominator
  for (const auto& b : merged["benchmarks"])
    if (b["name"] == "matmul" && b.contains("GFLOP/s")) sgemm_rate = b["GFLOP/s"].get<double>();
  for (const auto& b : merged["benchmarks"]) {
    if (b.contains("error_occurred") && b["error_occurred"].get<bool>()) continue;
    if (b["name"] == "steady_state_rss") {
      steady = &b;
      continue;
    }
    std::printf("%-18s %11.2f %9.2f %9.2f %9.2f %6.0f %10.1f %10.1f %12.1f", b["name"].get<std::string>().c_str(),
                b.value("ms_per_step", 0.0), b.value("mean_ms", 0.0), b.value("min_ms", 0.0), b.value("max_ms", 0.0),
                b.value("steps", 0.0), b.value("peak_rss_MB", 0.0), b.value("base_rss_MB", 0.0), b.value("working_set_MB", 0.0));
    if (b.contains("GFLOP/s")) {
      std::printf("   %.1f GFLOP/s", b["GFLOP/s"].get<double>());
      if (sgemm_rate > 0 && b["name"] != "matmul") std::printf(", MFU %.0f%% of sgemm", 100.0 * b["GFLOP/s"].get<double>() / sgemm_rate);
    }
    std::printf("\n");
  }
  if (steady) {
    const auto& b = *steady;
    std::printf("\nsteady-state RSS, tanh_rnn over %.0f steps: %.1f MB after step 100, %.1f MB after the last (max %.1f MB "
                "after step 100), growth %+.2f%% (target: within 5%%)\n",
                b.value("steps", 0.0), b.value("rss_step100_MB", 0.0), b.value("rss_last_MB", 0.0),
                b.value("rss_max_after100_MB", 0.0), b.value("growth_pct", 0.0));
  }
  if (curves) report_curves(merged, out_path);
  std::printf("load average: %s at start, %s at end\n", load_start.c_str(), load_string().c_str());
  for (const auto& f : failed) std::fprintf(stderr, "bench_steps: FAILED %s\n", f.c_str());
  return failed.empty() ? 0 : 1;
}

bool parse_int_flag(const std::string& arg, const char* prefix, int& value) {
  if (!starts_with(arg, prefix)) return false;
  value = std::atoi(arg.c_str() + std::strlen(prefix));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  g_base_rss_mb = current_rss_mb();
  bool child = false, in_process = false, rss_flat = false, has_filter = false, curves = false, steps_given = false;
  std::string out_path;
  std::vector<std::string> bench_args = {argv[0]};  // for Google Benchmark (in-process)
  std::vector<std::string> passthrough;              // for the children (forked mode)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--child") {
      child = true;
    } else if (a == "--in-process") {
      in_process = true;
    } else if (a == "--rss-flat") {
      rss_flat = true;
    } else if (a == "--curves") {
      curves = true;
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: %s [--steps=N] [--warmup=N] [--rss-flat] [--rss-steps=N] [--curves] [--in-process] [Google Benchmark flags]\n"
          "  default: every config in its own process (peak RSS per config), merged into --benchmark_out\n"
          "  --benchmark_filter=REGEX or --in-process: run here, in this process\n"
          "  --rss-flat: also run steady_state_rss (tanh_rnn for --rss-steps steps, default 1000)\n"
          "  --curves: instead, time and peak memory against T = 32..4096 for the tanh RNN and the Transformer\n"
          "            layer with naive and tiled attention; curves.csv, curves.md and log-log plots beside --benchmark_out\n"
          "  set OPENBLAS_NUM_THREADS=2 in the environment (2 cores)\n",
          argv[0]);
      return 0;
    } else if (parse_int_flag(a, "--steps=", g_steps) || parse_int_flag(a, "--warmup=", g_warmup) ||
               parse_int_flag(a, "--rss-steps=", g_rss_steps)) {
      steps_given = steps_given || !starts_with(a, "--rss-steps=");
      passthrough.push_back(a);
    } else {
      bench_args.push_back(a);
      if (starts_with(a, "--benchmark_filter=") || starts_with(a, "--benchmark_list_tests")) has_filter = true;
      if (starts_with(a, "--benchmark_out=")) out_path = a.substr(std::strlen("--benchmark_out="));
      else if (!starts_with(a, "--benchmark_out_format=")) passthrough.push_back(a);
    }
  }
  if (curves && !steps_given) g_steps = 10, g_warmup = 2;  // 24 points, the largest of them slow
  g_steps = std::max(g_steps, 1);
  g_warmup = std::max(g_warmup, 0);
  if (child || in_process || has_filter) return run_in_process(bench_args, child);
  return run_forked(argv[0], passthrough, out_path, rss_flat, curves);
}
