// Lesson 16: positions that generalise.
//
// Attention itself has no idea of order: permute the keys and values together and each query's
// output is the same. A model learns where a token is only from what it is given: a learned
// table of position vectors (GPT-2), the fixed sinusoids of Vaswani et al., rotations of q and k
// (RoPE; Su et al. 2021), a distance penalty on the scores (ALiBi; Press et al. 2022), or nothing
// but the causal mask (NoPE). This lesson trains the same small GPT (nn::GPT) five times, once
// per scheme, on windows of T = 64 characters of tiny Shakespeare, and scores each on held-out
// windows of 1, 2, 4 and 8 times that length: which schemes still work on inputs longer than any
// they were trained on?
//
// Shape legend: B windows, T training length, L evaluation length, D model width, H heads, V vocabulary.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "common/char_lm.hpp"
#include "common/labkit.hpp"
#include "nn/gpt.hpp"

namespace {

using ag::Tensor;
using nn::PositionEncoding;

const std::vector<PositionEncoding> kSchemes = {PositionEncoding::learned, PositionEncoding::sinusoidal, PositionEncoding::rope,
                                                PositionEncoding::alibi, PositionEncoding::none};
const std::vector<std::size_t> kMultiples = {1, 2, 4, 8};

// What the lesson calls each scheme.
std::string label(PositionEncoding p) {
  switch (p) {
    case PositionEncoding::learned: return "learned";
    case PositionEncoding::sinusoidal: return "sinusoidal";
    case PositionEncoding::rope: return "RoPE";
    case PositionEncoding::alibi: return "ALiBi";
    case PositionEncoding::none: return "none (NoPE)";
  }
  return "?";
}

// The mean held-out loss at each position 0..L-1 of `count` windows of length L spread over the
// held-out text (eval mode, no gradient): [L]. Errors: what the model raises (a learned table
// shorter than L).
std::vector<double> loss_per_position(nn::GPT& model, const std::vector<std::int64_t>& heldout, std::size_t L, std::size_t count) {
  ag::NoGrad ng;
  model.eval();
  const std::vector<std::size_t> starts = lab::spread_windows(heldout.size(), L, count);
  std::vector<double> sum(L, 0.0);
  const std::size_t per_batch = std::max<std::size_t>(1, 4096 / L);  // about 4096 characters per forward
  for (std::size_t i = 0; i < starts.size(); i += per_batch) {
    const std::vector<std::size_t> chunk(starts.begin() + std::ptrdiff_t(i),
                                         starts.begin() + std::ptrdiff_t(std::min(starts.size(), i + per_batch)));
    const lab::Batch b = lab::make_batch(heldout, chunk, L);
    const std::vector<double> losses =
        ag::cross_entropy(model.forward(b.inputs), b.targets, {.reduction = ag::Reduction::none}).to_vector();  // [B, L]
    for (std::size_t r = 0; r < chunk.size(); ++r)
      for (std::size_t t = 0; t < L; ++t) sum[t] += losses[r * L + t];
  }
  model.train();
  for (double& s : sum) s /= double(starts.size());
  return sum;
}

double mean(const std::vector<double>& v, std::size_t from = 0) {
  double s = 0;
  for (std::size_t i = from; i < v.size(); ++i) s += v[i];
  return s / double(v.size() - from);
}

// One trained model's scores: the mean loss of windows of each length (NaN where the model
// cannot take that length), and the per-position losses at the longest length.
struct Scores {
  std::vector<double> at_length;   // one per kMultiples
  std::vector<double> past_trained;  // positions T..L-1 only (NaN at 1x)
  std::vector<double> longest;     // per position, L = 8T (empty when the model cannot)
  std::string refusal;             // the error a learned table gives past its length
};

std::string fmt(double v, int digits = 3) { return std::isnan(v) ? "n/a" : lab::format_number(v, digits); }

// RoPE's relative property, in numbers: the score rope(q, m) . rope(k, n) for pairs of positions
// with the same distance m - n = 2, against (q + PE_m) . (k + PE_n) with sinusoidal vectors added.
struct RelativeDemo {
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  std::vector<double> rope, added;
};
RelativeDemo relative_demo() {
  ag::Generator gen(42);
  const std::size_t d = 16;
  const Tensor q = ag::randn({1, d}, gen, {ag::f64}), k = ag::randn({1, d}, gen, {ag::f64});
  nn::SinusoidalPositionalEncoding pe(d, 2048);
  RelativeDemo demo;
  demo.pairs = {{2, 0}, {9, 7}, {100, 98}, {1000, 998}};
  for (auto [m, n] : demo.pairs) {
    auto dot = [](const Tensor& a, const Tensor& b) { return ag::sum(a * b).item(); };
    demo.rope.push_back(dot(ag::rope(q, m), ag::rope(k, n)));
    const Tensor table = pe.table(ag::f64);
    demo.added.push_back(dot(q + ag::slice(table, 0, std::int64_t(m), std::int64_t(m + 1)),
                             k + ag::slice(table, 0, std::int64_t(n), std::int64_t(n + 1))));
  }
  return demo;
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("16_positions", "Learned, sinusoidal, RoPE, ALiBi and no positions: trained at one length, scored at up to 8 times it");
  cli.steps_help("training iterations of each model (default 1000; --quick 150)");
  std::size_t seeds = 0, train_length = 0;
  cli.app().add_option("--seeds", seeds, "models per scheme, each from its own seed; 0 = 3 (--quick 1)")->check(CLI::Range(0, 100));
  cli.app().add_option("--train-length", train_length, "T: the window length trained on (default 64; --quick 32)")
      ->check(CLI::Range(4, 256));
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const lab::CharCorpus corpus = lab::load_char_corpus();
    const std::size_t T = train_length ? train_length : (args.quick ? 32 : 64);
    const std::size_t n_seeds = seeds ? seeds : (args.quick ? 1 : 3);
    const std::size_t windows = args.quick ? 24 : 96;  // held-out windows per evaluation length
    const lab::TrainRecipe recipe{.batch = 12, .iters = args.steps_or(1000, 150), .warmup = 50, .lr = 2e-3, .min_lr = 2e-4};
    std::cout << "Lesson 16: positions that generalise. A GPT with L = 2, H = 4, D = 64, trained on windows of T = " << T
              << " characters of tiny Shakespeare (" << recipe.iters << " iterations, batch " << recipe.batch << "), " << n_seeds
              << (n_seeds == 1 ? " seed" : " seeds") << " per scheme; scored on " << windows << " held-out windows of ";
    for (std::size_t m : kMultiples) std::cout << m * T << (m == kMultiples.back() ? " characters\n" : ", ");

    // ---- train every scheme, score it at every length ----
    std::map<PositionEncoding, std::vector<Scores>> scores;
    for (PositionEncoding p : kSchemes)
      for (std::size_t k = 0; k < n_seeds; ++k) {
        const std::uint64_t seed = args.seed + k;
        ag::Generator gen(seed);
        nn::GPT model({.vocab_size = corpus.vocab.size(), .block_size = T, .d_model = 64, .num_heads = 4, .num_layers = 2,
                       .position = p},
                      gen);
        lab::CharTrainer trainer(model, recipe);
        lab::Progress bar(recipe.iters, label(p) + ", seed " + std::to_string(seed));
        double smoothed = 0;
        for (std::int64_t step = 1; step <= recipe.iters; ++step) {
          const double loss = trainer.step(corpus.train, gen);
          smoothed = step == 1 ? loss : 0.95 * smoothed + 0.05 * loss;
          bar.update(step, {{"loss", smoothed}});
        }
        bar.finish();
        Scores s;
        for (std::size_t m : kMultiples) {
          const std::size_t L = m * T;
          try {
            const std::vector<double> per = loss_per_position(model, corpus.heldout, L, windows);
            s.at_length.push_back(mean(per));
            s.past_trained.push_back(m == 1 ? std::nan("") : mean(per, T));
            if (m == kMultiples.back()) s.longest = per;
          } catch (const ag::Error& e) {  // a learned table has no row for position T
            s.at_length.push_back(std::nan("")), s.past_trained.push_back(std::nan(""));
            if (s.refusal.empty()) s.refusal = e.what();
          }
        }
        std::cout << label(p) << ", seed " << seed << ": held-out loss at";
        for (std::size_t i = 0; i < kMultiples.size(); ++i) std::cout << " " << kMultiples[i] * T << ": " << fmt(s.at_length[i], 4);
        std::cout << "\n";
        scores[p].push_back(s);
      }

    // ---- over the seeds ----
    auto stats = [&](PositionEncoding p, std::size_t i, bool past) {
      lab::SeedStats st;
      for (const auto& s : scores[p]) st.add(past ? s.past_trained[i] : s.at_length[i]);
      return st;
    };
    std::vector<std::string> columns{"positions"};
    for (std::size_t m : kMultiples) columns.push_back("L = " + std::to_string(m * T) + (m == 1 ? " (trained)" : ""));
    lab::Table t("Held-out loss (nats per character) of windows of length L, median (range) over " + std::to_string(n_seeds) +
                     (n_seeds == 1 ? " seed" : " seeds"),
                 columns);
    lab::Table past("The positions past the trained length only (T to L - 1): median (range)", columns);
    for (PositionEncoding p : kSchemes) {
      std::vector<lab::Cell> row{label(p)}, row_past{label(p)};
      for (std::size_t i = 0; i < kMultiples.size(); ++i) {
        const lab::SeedStats a = stats(p, i, false), b = stats(p, i, true);
        row.push_back(std::isnan(a.median()) ? std::string("cannot") : fmt(a.median()) + " (" + a.range() + ")");
        row_past.push_back(i == 0 ? std::string("") : std::isnan(b.median()) ? std::string("cannot") : fmt(b.median()) + " (" + b.range() + ")");
      }
      t.row(row);
      past.row(row_past);
    }
    t.print();
    std::cout << "\n";
    past.print();
    t.save_markdown(args.path("report.md"));
    past.save_markdown(args.path("report.md"), true);

    // ---- curves: loss against evaluation length (medians), and per position at 8T (first seed) ----
    // (the learned table has numbers at the trained length only: its own file, one row)
    const std::vector<PositionEncoding> extrapolating(kSchemes.begin() + 1, kSchemes.end());
    {
      std::vector<std::string> cols;
      for (PositionEncoding p : extrapolating) cols.push_back(nn::position_name(p));
      lab::CurveLog by_length(args.path("by_length.csv"), cols, "length");
      for (std::size_t i = 0; i < kMultiples.size(); ++i) {
        std::vector<double> row;
        for (PositionEncoding p : extrapolating) row.push_back(stats(p, i, false).median());
        by_length.log(double(kMultiples[i] * T), row);
      }
      lab::CurveLog learned(args.path("learned.csv"), {"learned"}, "length");
      learned.log(double(T), {stats(PositionEncoding::learned, 0, false).median()});
      // per position, averaged over bins of T / 8 positions so that the lines can be told apart
      lab::CurveLog per_position(args.path("per_position.csv"), cols, "position");
      const std::size_t L = kMultiples.back() * T, bin = std::max<std::size_t>(1, T / 8);
      for (std::size_t t0 = 0; t0 < L; t0 += bin) {
        std::vector<double> row;
        for (PositionEncoding p : extrapolating) {
          const std::vector<double>& per = scores[p].front().longest;
          double s = 0;
          for (std::size_t t = t0; t < t0 + bin && t < per.size(); ++t) s += per[t];
          row.push_back(s / double(std::min(bin, L - t0)));
        }
        per_position.log(double(t0) + double(bin - 1) / 2, row);
      }
    }
    const std::vector<std::string> colors = {"#7f7f7f", "#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad"};
    std::vector<lab::Series> length_series, position_series;
    for (std::size_t i = 0; i < kSchemes.size(); ++i) {
      const std::string name = nn::position_name(kSchemes[i]);
      length_series.push_back({args.path(kSchemes[i] == PositionEncoding::learned ? "learned.csv" : "by_length.csv"), name,
                               label(kSchemes[i]), "length", "linespoints lc rgb '" + colors[i] + "' pt 7 ps 0.8", 2.5});
      if (kSchemes[i] != PositionEncoding::learned)
        position_series.push_back({args.path("per_position.csv"), name, label(kSchemes[i]), "position",
                                   "lines lc rgb '" + colors[i] + "'", 2});
    }
    const double longest = double(kMultiples.back() * T);
    lab::plot(args.path("by_length.png"), length_series,
              {.title = "Trained on windows of " + std::to_string(T) + ", scored on longer ones (median over seeds)",
               .xlabel = "evaluation length L (characters)", .ylabel = "held-out loss (nats per character)", .logx = true,
               .xmin = 0.8 * double(T), .xmax = 1.25 * longest, .key = "top left"});
    lab::plot(args.path("per_position.png"), position_series,
              {.title = "Loss at each position of a window of " + std::to_string(kMultiples.back() * T) + " (trained on positions 0 to " +
                            std::to_string(T - 1) + "; first seed)",
               .xlabel = "position in the window", .ylabel = "held-out loss (nats per character)", .xmin = 0.0, .xmax = longest,
               .key = "top left"});
    std::cout << "\nHeld-out loss against evaluation length (medians):\n";
    lab::plot_terminal(lab::series(args.path("by_length.csv"), {"sinusoidal", "rope", "alibi", "none"}, "length", "linespoints"),
                       {.xlabel = "length", .ylabel = "loss", .logx = true});

    // ---- RoPE's relative property ----
    const RelativeDemo demo = relative_demo();
    lab::Table rel("Scores of one q and one k placed at positions m and n, m - n = 2 (float64)",
                   {"m", "n", "RoPE: rope(q, m) . rope(k, n)", "added sinusoids: (q + PE_m) . (k + PE_n)"});
    double rope_spread = 0, added_spread = 0;
    for (std::size_t i = 0; i < demo.pairs.size(); ++i) {
      char a[64], b[64];
      std::snprintf(a, sizeof a, "%.15f", demo.rope[i]);
      std::snprintf(b, sizeof b, "%.15f", demo.added[i]);
      rel.row({long(demo.pairs[i].first), long(demo.pairs[i].second), std::string(a), std::string(b)});
      rope_spread = std::max(rope_spread, std::abs(demo.rope[i] - demo.rope[0]));
      added_spread = std::max(added_spread, std::abs(demo.added[i] - demo.added[0]));
    }
    std::cout << "\n";
    rel.print();
    rel.save_markdown(args.path("report.md"), true);

    // ---- the claims, checked ----
    lab::Checks checks;
    auto expect = [&](bool ok, const std::string& claim) { checks.expect(ok, claim); };
    const std::size_t last = kMultiples.size() - 1;
    // learned: every seed refuses every length past its table
    std::size_t refused = 0;
    for (const auto& s : scores[PositionEncoding::learned]) refused += std::isnan(s.at_length[1]) && !s.refusal.empty();
    expect(refused == n_seeds, "a learned table of " + std::to_string(T) + " positions refuses longer windows with an error " +
                                   lab::in_seeds(refused, n_seeds));
    // every scheme learns at the trained length
    const double unigram = lab::unigram_loss(corpus);
    std::size_t learned_all = 0, total = 0;
    for (PositionEncoding p : kSchemes)
      for (const auto& s : scores[p]) learned_all += s.at_length[0] < unigram, ++total;
    expect(learned_all == total, "at the trained length every scheme beats character frequencies (" + fmt(unigram) + ") in " +
                                     std::to_string(learned_all) + " of " + std::to_string(total) + " models");
    // how much each scheme loses from 1x to 8x
    std::map<PositionEncoding, lab::SeedStats> rise;
    for (PositionEncoding p : kSchemes)
      for (const auto& s : scores[p]) rise[p].add(s.at_length[last] - s.at_length[0]);
    std::size_t alibi_least = 0;
    for (std::size_t k = 0; k < n_seeds; ++k) {
      bool least = true;
      for (PositionEncoding p : {PositionEncoding::sinusoidal, PositionEncoding::rope, PositionEncoding::none})
        least = least && rise[PositionEncoding::alibi].values[k] < rise[p].values[k];
      alibi_least += least;
    }
    expect(alibi_least == n_seeds, "from L = " + std::to_string(T) + " to " + std::to_string(kMultiples.back() * T) +
                                       " ALiBi's loss changes least of the schemes that can run there " + lab::in_seeds(alibi_least, n_seeds) +
                                       " (ALiBi " + fmt(rise[PositionEncoding::alibi].median()) + ", RoPE " +
                                       fmt(rise[PositionEncoding::rope].median()) + ", sinusoidal " +
                                       fmt(rise[PositionEncoding::sinusoidal].median()) + ", none " +
                                       fmt(rise[PositionEncoding::none].median()) + " nats, medians)");
    expect(rope_spread <= 1e-12 && added_spread > 1e-3,
           "RoPE's score depends only on m - n (largest difference " + fmt(rope_spread, 2) + "), added sinusoids' does not (" +
               fmt(added_spread, 2) + ")");

    // ---- what the chapter quotes ----
    lab::Chapter chapter(args);
    chapter.table("losses", t);
    chapter.table("past_trained", past);
    chapter.table("relative", rel);
    if (!scores[PositionEncoding::learned].front().refusal.empty())
      chapter.text("refusal", "```\n" + scores[PositionEncoding::learned].front().refusal + "\n```");
    std::string rises = "From `L = " + std::to_string(T) + "` to `L = " + std::to_string(kMultiples.back() * T) +
                        "` the held-out loss changes by (median; range over seeds):\n\n";
    for (PositionEncoding p : {PositionEncoding::alibi, PositionEncoding::none, PositionEncoding::rope, PositionEncoding::sinusoidal})
      rises += "- " + label(p) + ": " + fmt(rise[p].median()) + " (" + rise[p].range() + ") nats\n";
    chapter.text("rises", rises);
    chapter.text("checks", checks.markdown());
    chapter.figure("by_length.png");
    chapter.figure("per_position.png");
    std::cout << "Wrote " << args.out.string() << "/{by_length,per_position}.{csv,png,svg}, report.md\n";
    return checks.report();
  });
}
