// Lesson 17: generating fast, the KV cache.
//
// A GPT writes one token at a time. Without a cache every new token re-reads the whole text so
// far: token t costs a forward pass over t positions, and N tokens cost about N^2 / 2 position
// passes. Under the causal mask the keys and values of earlier positions never change, so a KV
// cache (nn::KVCache, one per layer) keeps them and token t costs one position's pass plus one
// row of attention over the t cached keys. This lesson measures that on the lesson 14 model:
// time per token against its position and tokens per second against the length, with and without
// the cache; what the cache costs in memory with multi-head, grouped-query and multi-query
// attention; and what greedy decoding, temperature, top-k and top-p sampling write from one prompt.
//
// Shape legend: B batch (1 here), T positions, L layers, H heads, H_kv key/value heads, d head width.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/char_lm.hpp"
#include "common/labkit.hpp"
#include "nn/gpt.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

const std::string kPrompt = "ROMEO:\n";

nn::GPTOptions model_options(std::size_t vocab, std::size_t kv_heads = 0) {
  // lesson 14's small model, with rotary positions: no table, so any length can be decoded
  return {.vocab_size = vocab, .block_size = 64, .d_model = 64, .num_heads = 4, .num_kv_heads = kv_heads, .num_layers = 2,
          .position = nn::PositionEncoding::rope};
}

// Greedy decoding of n tokens after the prompt; the time of each token (ms), and the text.
struct Decoded {
  std::vector<double> ms;  // per new token
  std::vector<std::int64_t> ids;
  double total_ms = 0;
};
Decoded decode(nn::GPT& model, const std::vector<std::int64_t>& prompt, std::size_t n, bool cached) {
  Decoded d;
  ag::Generator unused(0);  // greedy draws nothing
  Clock::time_point last = Clock::now();
  const Clock::time_point t0 = last;
  nn::GenerateOptions o{.sampling = {.greedy = true}, .use_cache = cached, .context = prompt.size() + n};
  o.on_token = [&](std::size_t) {
    d.ms.push_back(ms_since(last));
    last = Clock::now();
  };
  d.ids = model.generate(prompt, n, o, unused);
  d.total_ms = ms_since(t0);
  return d;
}

// The median of v[from, to): one token slowed by the machine does not move it.
double median_of(const std::vector<double>& v, std::size_t from, std::size_t to) {
  lab::SeedStats s;
  for (std::size_t i = from; i < to; ++i) s.add(v[i]);
  return s.median();
}

// Repetition: the share of the text's runs of 4 words that already occurred earlier in it.
double repetition(const std::string& text) {
  const std::vector<std::string> w = lab::words(text);
  if (w.size() < 5) return 0.0;
  std::set<std::string> seen;
  std::size_t repeated = 0, total = 0;
  for (std::size_t i = 0; i + 4 <= w.size(); ++i, ++total) {
    const std::string gram = w[i] + " " + w[i + 1] + " " + w[i + 2] + " " + w[i + 3];
    repeated += !seen.insert(gram).second;
  }
  return double(repeated) / double(total);
}

std::string fmt(double v, int digits = 3) { return lab::format_number(v, digits); }
// A KV cache's size, 2 L H_kv T d bytes_per_value, for configurations too large to build here.
double cache_bytes(std::size_t layers, std::size_t kv_heads, std::size_t T, std::size_t d, std::size_t bytes_per_value) {
  return 2.0 * double(layers) * double(kv_heads) * double(T) * double(d) * double(bytes_per_value);
}
std::string megabytes(double bytes) { return fmt(bytes / 1e6) + " MB"; }

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("17_kv_cache", "Generating with and without a KV cache: time per token, tokens per second, cache memory, sampling");
  cli.steps_help("training iterations of the model that writes (default 1000; --quick 100)");
  std::size_t repeats = 0;
  cli.app().add_option("--repeats", repeats, "timed runs of each length (the median is kept); 0 = 3")->check(CLI::Range(0, 20));
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const lab::CharCorpus corpus = lab::load_char_corpus();
    const std::size_t V = corpus.vocab.size();
    const std::vector<std::size_t> lengths = args.quick ? std::vector<std::size_t>{20, 40, 80} : std::vector<std::size_t>{50, 100, 200, 400, 800};
    const std::size_t n_repeats = repeats ? repeats : 3, n_draws = args.quick ? 3 : 5;
    const std::size_t sample_length = args.quick ? 100 : 300;

    // ---- 1) the model that writes: lesson 14's small GPT with RoPE, trained briefly ----
    ag::Generator gen(args.seed);
    nn::GPT model(model_options(V), gen);
    const lab::TrainRecipe recipe{.batch = 12, .iters = args.steps_or(1000, 100), .warmup = 50, .lr = 2e-3, .min_lr = 2e-4};
    {
      lab::CharTrainer trainer(model, recipe);
      lab::Progress bar(recipe.iters, "training");
      for (std::int64_t step = 1; step <= recipe.iters; ++step) bar.update(step, {{"loss", trainer.step(corpus.train, gen)}});
    }
    const double heldout = lab::mean_loss(model, corpus.heldout, lab::spread_windows(corpus.heldout.size(), 64, 256), 64);
    std::cout << "Lesson 17: " << model.describe() << ", " << lab::thousands(model.num_parameters()) << " parameters, trained "
              << recipe.iters << " iterations: held-out loss " << fmt(heldout, 4) << " nats/char\n";
    const std::vector<std::int64_t> prompt = corpus.vocab.encode(kPrompt);

    // ---- 2) the cost of a token, with and without the cache ----
    lab::Table speed("Greedy decoding after \"ROMEO:\\n\" (median of " + std::to_string(n_repeats) + " runs, one thread)",
                     {"new tokens", "without cache: tokens/s", "with cache: tokens/s", "speed-up"});
    std::map<std::size_t, double> speedup;
    std::vector<double> per_token_plain, per_token_cached;  // the longest runs, ms per token: the median over the runs at each position
    bool same_text = true;
    {
      lab::CurveLog rates(args.path("tokens_per_second.csv"), {"without_cache", "with_cache"}, "tokens");
      for (std::size_t n : lengths) {
        lab::SeedStats plain_ms, cached_ms;              // one per run
        std::vector<lab::SeedStats> plain_at(n), cached_at(n);  // one per position
        for (std::size_t r = 0; r < n_repeats; ++r) {
          const Decoded a = decode(model, prompt, n, false), b = decode(model, prompt, n, true);
          same_text = same_text && a.ids == b.ids;
          plain_ms.add(a.total_ms), cached_ms.add(b.total_ms);
          for (std::size_t i = 0; i < n; ++i) plain_at[i].add(a.ms[i]), cached_at[i].add(b.ms[i]);
        }
        if (n == lengths.back())
          for (std::size_t i = 0; i < n; ++i) per_token_plain.push_back(plain_at[i].median()), per_token_cached.push_back(cached_at[i].median());
        const double p = plain_ms.median(), c = cached_ms.median();
        speedup[n] = p / c;
        speed.row({long(n), 1000.0 * double(n) / p, 1000.0 * double(n) / c, fmt(p / c, 3) + "x"});
        rates.log(double(n), {1000.0 * double(n) / p, 1000.0 * double(n) / c});
        std::cout << n << " tokens: " << fmt(1000.0 * double(n) / p) << " tokens/s without the cache, " << fmt(1000.0 * double(n) / c)
                  << " with it\n";
      }
      lab::CurveLog per_token(args.path("ms_per_token.csv"), {"without_cache", "with_cache"}, "position");
      for (std::size_t i = 0; i < per_token_plain.size(); ++i)
        per_token.log(double(prompt.size() + i), {per_token_plain[i], per_token_cached[i]});
    }
    const std::size_t N = per_token_plain.size(), tenth = std::max<std::size_t>(1, N / 10);
    const double plain_first = median_of(per_token_plain, 0, tenth), plain_last = median_of(per_token_plain, N - tenth, N);
    const double cached_first = median_of(per_token_cached, 0, tenth), cached_last = median_of(per_token_cached, N - tenth, N);
    lab::Table growth("Time per token (ms), medians over the first and the last tenth of " + std::to_string(N) + " new tokens (each the median of " +
                          std::to_string(n_repeats) + " runs)",
                      {"", "first tenth", "last tenth", "last / first"});
    growth.row({"without cache", plain_first, plain_last, plain_last / plain_first});
    growth.row({"with cache", cached_first, cached_last, cached_last / cached_first});
    std::cout << "\n";
    speed.print();
    std::cout << "\n";
    growth.print();
    speed.save_markdown(args.path("report.md"));
    growth.save_markdown(args.path("report.md"), true);
    lab::plot(args.path("ms_per_token.png"),
              {{args.path("ms_per_token.csv"), "without_cache", "without the cache (re-reads every position)", "position",
                "lines lc rgb '#c0392b'", 1.5},
               {args.path("ms_per_token.csv"), "with_cache", "with the KV cache", "position", "lines lc rgb '#1f5fa8'", 1.5}},
              {.title = "Time to write each token (greedy, " + std::to_string(N) + " tokens after the prompt)",
               .xlabel = "position of the token", .ylabel = "ms per token", .ymin = 0.0, .key = "top left"});
    lab::plot(args.path("tokens_per_second.png"),
              {{args.path("tokens_per_second.csv"), "without_cache", "without the cache", "tokens",
                "linespoints lc rgb '#c0392b' pt 7 ps 0.8", 2},
               {args.path("tokens_per_second.csv"), "with_cache", "with the KV cache", "tokens",
                "linespoints lc rgb '#1f5fa8' pt 7 ps 0.8", 2}},
              {.title = "Tokens per second against the number written (greedy, one thread)", .xlabel = "new tokens",
               .ylabel = "tokens per second", .logx = true, .logy = true, .xmin = 0.8 * double(lengths.front()),
               .xmax = 1.25 * double(lengths.back()), .key = "bottom left"});
    std::cout << "\nTime per token, the longest run:\n";
    lab::plot_terminal(lab::series(args.path("ms_per_token.csv"), {"without_cache", "with_cache"}, "position"),
                       {.xlabel = "position", .ylabel = "ms", .ymin = 0.0});

    // ---- 3) cache memory: MHA, GQA, MQA ----
    const std::size_t T_mem = 1024;
    lab::Table memory("KV cache for " + std::to_string(T_mem) + " positions, batch 1",
                      {"model", "key/value heads", "bytes per position", "cache", "ms per token with the cache"});
    std::map<std::size_t, std::size_t> bytes_of;
    for (std::size_t kv : {4, 2, 1}) {
      ag::Generator g(args.seed + kv);
      nn::GPT variant(model_options(V, kv), g);  // untrained: the cost does not depend on the weights
      std::size_t bytes = 0;
      for (const auto& c : variant.make_cache(1, T_mem)) bytes += c.bytes();
      bytes_of[kv] = bytes;
      lab::SeedStats runs;
      for (std::size_t r = 0; r < n_repeats; ++r) runs.add(decode(variant, prompt, lengths.back(), true).total_ms);
      const std::string kind = kv == 4 ? "MHA" : kv == 1 ? "MQA" : "GQA";
      memory.row({"this lesson's (L = 2, H = 4, d = 16), " + kind, long(kv), long(bytes / T_mem), megabytes(double(bytes)),
                  runs.median() / double(lengths.back())});
    }
    // the same formula, 2 L H_kv T d bytes, for models too large to build here
    memory.row({"GPT-2 small (L = 12, H = 12, d = 64), float32", 12L, long(cache_bytes(12, 12, 1, 64, 4)),
                megabytes(cache_bytes(12, 12, T_mem, 64, 4)), ""});
    memory.row({"Llama-2-70B's shape (L = 80, H = 64, d = 128), float16, if it were MHA", 64L, long(cache_bytes(80, 64, 1, 128, 2)),
                megabytes(cache_bytes(80, 64, T_mem, 128, 2)), ""});
    memory.row({"Llama-2-70B as built: GQA, 8 key/value heads", 8L, long(cache_bytes(80, 8, 1, 128, 2)),
                megabytes(cache_bytes(80, 8, T_mem, 128, 2)), ""});
    std::cout << "\n";
    memory.print();
    memory.save_markdown(args.path("report.md"), true);

    // ---- 4) one prompt, four ways to choose ----
    struct Strategy {
      std::string name;
      nn::SamplingOptions o;
    };
    const std::vector<Strategy> strategies = {{"greedy", {.greedy = true}},
                                              {"temperature 0.8", {.temperature = 0.8}},
                                              {"top-k 10", {.top_k = 10}},
                                              {"top-p 0.9", {.top_p = 0.9}},
                                              {"temperature 1.0", {}}};
    lab::Table sampled("What each strategy writes: " + std::to_string(sample_length) + " characters after \"ROMEO:\\n\", " +
                           std::to_string(n_draws) + " draws each (greedy: one, it draws nothing)",
                       {"strategy", "repeated 4-word runs, median (range)", "distinct characters, median (range)"});
    std::map<std::string, lab::SeedStats> rep;
    std::string texts_md;
    for (const auto& s : strategies) {
      lab::SeedStats distinct;
      for (std::size_t k = 0; k < (s.o.greedy ? 1 : n_draws); ++k) {
        ag::Generator draw(args.seed + 100 + k);
        const std::string text = corpus.vocab.decode(model.generate(prompt, sample_length, {.sampling = s.o}, draw));
        rep[s.name].add(repetition(text.substr(kPrompt.size())));
        distinct.add(double(std::set<char>(text.begin(), text.end()).size()));
        if (k == 0) texts_md += "**" + s.name + "**:\n\n```\n" + text + "\n```\n\n";
      }
      sampled.row({s.name, fmt(rep[s.name].median()) + " (" + rep[s.name].range() + ")",
                   fmt(distinct.median(), 2) + " (" + distinct.range(2) + ")"});
    }
    std::cout << "\n";
    sampled.print();
    sampled.save_markdown(args.path("report.md"), true);

    // ---- the claims, checked ----
    lab::Checks checks;
    auto expect = [&](bool ok, const std::string& claim) { checks.expect(ok, claim); };
    expect(same_text, "with and without the cache, greedy decoding writes the same text at every length and in every run");
    const double plain_growth = plain_last / plain_first, cached_growth = cached_last / cached_first;
    expect(plain_growth >= 3 && plain_growth >= 3 * cached_growth,
           "without the cache a token's time grows with its position (last tenth / first tenth " + fmt(plain_growth) +
               "); with it, it grows " + fmt(plain_growth / cached_growth) + " times less (" + fmt(cached_growth) + ")");
    const std::size_t mid = lengths[lengths.size() / 2];
    expect(speedup[mid] >= 2, "at " + std::to_string(mid) + " new tokens the cache writes " + fmt(speedup[mid]) + " times as fast");
    expect(bytes_of[4] == 2 * bytes_of[2] && bytes_of[4] == 4 * bytes_of[1],
           "GQA with 2 key/value heads halves the cache, MQA quarters it (" + lab::thousands(bytes_of[4]) + ", " + lab::thousands(bytes_of[2]) +
               ", " + lab::thousands(bytes_of[1]) + " bytes)");
    std::size_t greedy_repeats_most = 0;
    for (std::size_t k = 0; k < n_draws; ++k) {
      bool most = true;
      for (const auto& s : strategies)
        if (!s.o.greedy) most = most && rep["greedy"].values[0] > rep[s.name].values[k];
      greedy_repeats_most += most;
    }
    expect(greedy_repeats_most == n_draws, "greedy decoding repeats itself more than every sampling strategy " +
                                               lab::in_seeds(greedy_repeats_most, n_draws, "draw") + " (greedy " + fmt(rep["greedy"].median()) +
                                               " of its 4-word runs repeated)");

    // ---- what the chapter quotes ----
    lab::Chapter chapter(args);
    chapter.text("model", "The model that writes is lesson 14's small GPT (`L = 2`, `H = 4`, `D = 64`, " +
                              lab::thousands(model.num_parameters()) + " parameters) with rotary positions, so that no position "
                              "table limits the length; trained for " + std::to_string(recipe.iters) +
                              " iterations, it reaches a held-out loss of " + fmt(heldout) + " nats per character.");
    chapter.table("speed", speed, lab::Timing::yes);
    chapter.table("growth", growth, lab::Timing::yes);
    chapter.table("memory", memory, lab::Timing::yes);
    chapter.table("sampled", sampled);
    chapter.text("texts", texts_md);
    chapter.text("checks", checks.markdown(), lab::Timing::yes);
    chapter.figure("ms_per_token.png");
    chapter.figure("tokens_per_second.png");
    std::cout << "Wrote " << args.out.string() << "/{ms_per_token,tokens_per_second}.{csv,png,svg}, report.md\n";
    return checks.report();
  });
}
