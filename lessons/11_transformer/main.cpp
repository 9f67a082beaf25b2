// Lesson 11: the Transformer (Vaswani et al. 2017), trained on date normalisation.
//
// Shape legend: B batch, S source characters, T target characters (+ EOS), D d_model,
// H heads, V vocabulary.
//
//   "september 23, 1999" --encoder--> memory [B, S, D] --decoder (causal self-attention,
//   cross-attention to memory)--> logits [B, T, V] --> "1999-09-23"
//
// 1) the warmup schedule of the paper: lr(step) = factor * D^-0.5 * min(step^-0.5, step * warmup^-1.5);
// 2) the same model with post-LN (2017) and pre-LN layers, each trained with that schedule and
//    without it (a constant lr at the schedule's peak): four runs, same data, same initial weights;
// 3) exact-match accuracy on 1,000 held-out dates, greedy decoding;
// 4) what the decoder's cross-attention heads look at, per head.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

// The four ways we train the same model.
struct Recipe {
  std::string name;  // column name in the CSV files
  std::string label;  // legend
  bool pre_ln;        // TransformerOptions::norm_first
  bool warmup;        // the Vaswani schedule, or a constant lr at its peak
};

struct Run {
  std::unique_ptr<nn::TransformerSeq2Seq> model;
  std::vector<double> loss, lr;  // per step
  std::vector<double> exact;     // per evaluation
  double final_exact = 0;
  std::int64_t diverged_at = 0;  // the step whose loss was not finite (0: never); the run stops there
};

// dec_target [B, T] -> flat [B*T] (IGNORE where padded), for cross_entropy on logits [B*T, V].
ag::Indices flat(const ag::Indices& ids) { return ag::Indices(ids.values, {ids.size()}); }

// The loss of a model that knows exactly what ISO dates look like but ignores the source: the
// entropy of the dates DateTask draws (year, then month, then day, each uniform), in nats, spread
// over the 11 predictions of a target (10 characters + EOS, the EOS and dashes being certain).
double source_blind_loss(const lab::DateOptions& o) {
  auto days_in = [](int y, int m) {
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? (leap ? 29 : 28) : (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31;
  };
  const double years = o.max_year - o.min_year + 1;
  double h = 0;
  for (int y = o.min_year; y <= o.max_year; ++y)
    for (int m = 1; m <= 12; ++m) {
      const double p = 1.0 / (years * 12 * days_in(y, m));  // each of the month's days
      h -= days_in(y, m) * p * std::log(p);
    }
  return h / 11;
}

// Share of the set decoded exactly right by greedy decoding (T = 10 characters + EOS).
double exact_match(nn::TransformerSeq2Seq& model, const lab::DateTask& task, const lab::Seq2SeqBatch& set) {
  model.eval();
  const ag::Indices out = model.greedy_decode(set.src, lab::BOS, 11, lab::PAD);
  model.train();
  std::size_t right = 0;
  for (std::size_t b = 0; b < set.size(); ++b) right += task.tgt_vocab().decode(out, b) == task.tgt_vocab().decode(set.dec_target, b);
  return double(right) / double(set.size());
}

// The first n examples of a batch (the curves are measured on a part of the held-out set, the final
// figures on all of it).
lab::Seq2SeqBatch head_of(const lab::Seq2SeqBatch& set, std::size_t n) {
  n = std::min(n, set.size());
  auto rows = [&](const ag::Indices& ids) {
    const std::size_t W = ids.shape[1];
    return ag::Indices(std::vector<std::int64_t>(ids.values.begin(), ids.values.begin() + std::ptrdiff_t(n * W)), {n, W});
  };
  lab::Seq2SeqBatch out;
  out.src = rows(set.src);
  out.dec_in = rows(set.dec_in);
  out.dec_target = rows(set.dec_target);
  out.src_lengths.assign(set.src_lengths.begin(), set.src_lengths.begin() + std::ptrdiff_t(n));
  out.tgt_lengths.assign(set.tgt_lengths.begin(), set.tgt_lengths.begin() + std::ptrdiff_t(n));
  return out;
}

// Heads in a grid, `per_row` panels per row, a blank row/column between panels.
// w: [H, R, C] -> one matrix CSV and one heatmap.
void head_grid(const std::filesystem::path& png, const ag::Tensor& w, const std::vector<std::string>& xtokens,
               const std::vector<std::string>& ytokens, const std::string& title, std::size_t per_row) {
  const std::size_t H = w.size(0), R = w.size(1), C = w.size(2), rows = (H + per_row - 1) / per_row;
  const std::vector<double> v = w.to_vector();
  std::vector<std::vector<double>> m(rows * (R + 1) - 1, std::vector<double>(per_row * (C + 1) - 1, 0.0));
  for (std::size_t h = 0; h < H; ++h) {
    const std::size_t r0 = (h / per_row) * (R + 1), c0 = (h % per_row) * (C + 1);
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t c = 0; c < C; ++c) m[r0 + r][c0 + c] = v[(h * R + r) * C + c];
  }
  auto repeat = [](const std::vector<std::string>& t, std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) {
      out.insert(out.end(), t.begin(), t.end());
      if (i + 1 < n) out.push_back(" ");
    }
    return out;
  };
  std::filesystem::path csv = png;
  lab::write_matrix_csv(csv.replace_extension(".csv"), m);
  lab::heatmap(png, csv,
               {.title = title, .xlabel = "source character (key)", .ylabel = "output character (query)",
                .xticks = repeat(xtokens, per_row), .yticks = repeat(ytokens, rows), .zmin = 0, .zmax = 1,
                .width = 900, .height = 560});
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("11_transformer", "The Transformer on date normalisation: pre-LN vs post-LN, the warmup schedule, attention per head");
  std::int64_t warmup = 200;
  double factor = 1.0;
  auto* warmup_opt = cli.app().add_option("--warmup", warmup, "warmup steps of the schedule (--quick: 50)")
                         ->check(CLI::Range(1, 1000000))
                         ->capture_default_str();
  auto* factor_opt = cli.app().add_option("--factor", factor, "the schedule's factor: peak lr = factor / sqrt(d_model * warmup) (--quick: 0.5)")
                         ->check(CLI::Range(1e-6, 100.0))
                         ->capture_default_str();
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    // --quick: 150 steps of batch 32, a 50-step warmup with the factor that keeps the same peak lr.
    if (args.quick && warmup_opt->count() == 0) warmup = 50;
    if (args.quick && factor_opt->count() == 0) factor = 0.5;
    const std::int64_t steps = args.steps_or(600, 150);
    const std::int64_t eval_every = 50;  // on the first 200 held-out dates; the final figures use all of them
    const lab::DateOptions task_opts{.batch_size = args.quick ? 32 : 64, .seed = args.seed, .eval_size = args.quick ? 200 : 1000};
    const nn::TransformerOptions base{.d_model = 64, .num_heads = 4, .dim_feedforward = 256, .dropout = 0.0};
    const nn::WarmupSchedule schedule(std::int64_t(base.d_model), warmup, factor);
    const double peak = schedule.lr(warmup);

    lab::DateTask probe(task_opts);
    std::cout << "Date normalisation: \"" << lab::DateTask::format({1999, 9, 23}, lab::DateFormat::MonthDayYear) << "\" -> \""
              << lab::DateTask::iso({1999, 9, 23}) << "\", four input formats, years 1900-2099\n"
              << "TransformerSeq2Seq: d_model " << base.d_model << ", " << base.num_heads << " heads, FFN " << base.dim_feedforward
              << ", 2 encoder + 2 decoder layers, batch " << task_opts.batch_size << ", Adam(0.9, 0.98, eps 1e-9), clip 1.0, " << steps << " steps\n"
              << "Warmup schedule: factor " << factor << ", warmup " << warmup << ", peak lr " << lab::format_number(peak) << " at step "
              << warmup << "\n\n";

    const std::vector<Recipe> recipes = {{"post_ln", "post-LN + warmup", false, true},
                                         {"pre_ln", "pre-LN + warmup", true, true},
                                         {"post_ln_const", "post-LN, constant lr (no warmup)", false, false},
                                         {"pre_ln_const", "pre-LN, constant lr (no warmup)", true, false}};
    const std::int64_t V = std::int64_t(probe.tgt_vocab().size());
    std::vector<Run> runs(recipes.size());
    for (std::size_t i = 0; i < recipes.size(); ++i) {
      const Recipe& r = recipes[i];
      Run& run = runs[i];
      lab::DateTask task(task_opts);  // the same batches for every recipe
      const lab::Seq2SeqBatch curve_set = head_of(task.eval_set(), 200);
      nn::TransformerOptions o = base;
      o.norm_first = r.pre_ln;
      ag::Generator gen(lab::derive_seed(args.seed, 7));  // the same initial weights for every recipe
      run.model = std::make_unique<nn::TransformerSeq2Seq>(probe.src_vocab().size(), probe.tgt_vocab().size(), o, 2, 2, gen);
      nn::TransformerSeq2Seq& model = *run.model;
      nn::Adam opt(model.parameters(), {.lr = peak, .betas = {0.9, 0.98}, .eps = 1e-9});
      lab::Progress bar(steps, r.label);
      for (std::int64_t s = 1; s <= steps; ++s) {
        const lab::Seq2SeqBatch b = task.next_batch();
        const ag::Tensor logits = model.forward(b.src, b.dec_in, lab::PAD);  // [B, T, V]
        const ag::Tensor loss = ag::cross_entropy(ag::reshape(logits, {-1, V}), flat(b.dec_target));  // IGNORE at pads
        opt.zero_grad();
        loss.backward();
        nn::clip_grad_norm(model.parameters(), 1.0);
        opt.set_lr(r.warmup ? schedule.lr(opt.steps() + 1) : peak);
        opt.step();
        run.loss.push_back(loss.item());
        run.lr.push_back(opt.lr());
        if (!std::isfinite(loss.item())) {
          run.diverged_at = s;
          break;
        }
        if (s % eval_every == 0) run.exact.push_back(exact_match(model, task, curve_set));
        bar.update(s, {{"loss", loss.item()}, {"lr", opt.lr()}, {"exact", run.exact.empty() ? 0.0 : run.exact.back()}});
      }
      bar.finish();
      run.final_exact = exact_match(model, task, task.eval_set());
    }

    // ---- curves --------------------------------------------------------------------------------
    std::vector<std::string> names;
    for (const Recipe& r : recipes) names.push_back(r.name);
    lab::CurveLog loss_log(args.path("loss.csv"), names), exact_log(args.path("exact_match.csv"), names);
    lab::CurveLog lr_log(args.path("lr.csv"), {"warmup", "constant"});
    // A run that diverged stopped early: its curves hold their last value (NaN for the loss).
    auto at = [](const std::vector<double>& v, std::size_t i) { return i < v.size() ? v[i] : v.empty() ? lab::kMissing : v.back(); };
    for (std::int64_t s = 1; s <= steps; ++s) {
      std::vector<double> l;
      for (const Run& run : runs) l.push_back(at(run.loss, std::size_t(s - 1)));
      loss_log.log(double(s), l);
      lr_log.log(double(s), {at(runs[0].lr, std::size_t(s - 1)), at(runs[2].lr, std::size_t(s - 1))});
    }
    for (std::size_t k = 0; k < runs[0].exact.size(); ++k) {
      std::vector<double> e;
      for (const Run& run : runs) e.push_back(at(run.exact, k));
      exact_log.log(double((k + 1) * eval_every), e);
    }
    auto curves = [&](const lab::CurveLog& log, const std::string& style) {
      std::vector<lab::Series> ss;
      for (const Recipe& r : recipes) ss.push_back({log.path(), r.name, r.label, "step", style});
      return ss;
    };
    lab::plot(args.path("lr.png"),
              {{lr_log.path(), "warmup", "Vaswani schedule (factor " + lab::format_number(factor) + ", warmup " + std::to_string(warmup) + ")"},
               {lr_log.path(), "constant", "constant, at the schedule's peak"}},
              {.title = "Learning rate per step: factor * d^-0.5 * min(step^-0.5, step * warmup^-1.5)", .ylabel = "learning rate",
               .ymin = 0, .ymax = 1.3 * peak});
    const double blind = source_blind_loss(task_opts);
    const lab::PlotOptions loss_opts{.title = "Date normalisation: training loss", .ylabel = "cross-entropy per character (log scale)",
                                     .logy = true, .hlines = {{blind, "ignoring the source"}}};
    lab::plot(args.path("loss.png"), curves(loss_log, "lines"), loss_opts);
    lab::plot(args.path("exact_match.png"), curves(exact_log, "linespoints"),
              {.title = "Date normalisation: exact match on 200 held-out dates (greedy decoding)",
               .ylabel = "share of dates exactly right", .ymin = 0, .ymax = 1.45});

    lab::Table results("Date normalisation after " + std::to_string(steps) + " steps, " + std::to_string(task_opts.eval_size) +
                           " held-out dates",
                       {"recipe", "exact match", "loss (last 30 steps)", "parameters"});
    auto tail_loss = [](const Run& run) {
      const std::size_t n = std::min<std::size_t>(30, run.loss.size());
      double s = 0;
      for (std::size_t i = run.loss.size() - n; i < run.loss.size(); ++i) s += run.loss[i];
      return s / double(n);
    };
    for (std::size_t i = 0; i < runs.size(); ++i)
      results.row({recipes[i].label + (runs[i].diverged_at ? " (diverged at step " + std::to_string(runs[i].diverged_at) + ")" : ""),
                   runs[i].final_exact, tail_loss(runs[i]), runs[i].model->num_parameters()});
    results.print();
    results.save_markdown(args.path("report.md"));
    std::cout << "  A model that knows what an ISO date looks like but ignores the source scores " << lab::format_number(blind)
              << " per character.\n";

    // ---- what the trained model does, and where its heads look ----------------------------------------
    nn::TransformerSeq2Seq& model = *runs[1].model;  // pre-LN + warmup
    model.eval();
    const std::vector<std::pair<lab::Date, lab::DateFormat>> shown = {{{1999, 9, 23}, lab::DateFormat::MonthDayYear},
                                                                      {{2024, 2, 29}, lab::DateFormat::Dotted},
                                                                      {{1987, 12, 5}, lab::DateFormat::DayMonthYear},
                                                                      {{2061, 7, 14}, lab::DateFormat::YearMonthDay}};
    const lab::Seq2SeqBatch ex = probe.encode(shown);
    const ag::Indices decoded = model.greedy_decode(ex.src, lab::BOS, 11, lab::PAD);
    std::cout << "\nThe pre-LN model on four dates it may never have seen:\n";
    for (std::size_t b = 0; b < shown.size(); ++b) {
      const std::string in = lab::DateTask::format(shown[b].first, shown[b].second), out = probe.tgt_vocab().decode(decoded, b);
      std::cout << "  " << in << std::string(20 - std::min<std::size_t>(20, in.size()), ' ') << " -> " << out
                << (out == lab::DateTask::iso(shown[b].first) ? "   right" : "   WRONG") << "\n";
    }
    {
      ag::NoGrad no_grad;
      model.forward(ex.src, ex.dec_in, lab::PAD);  // teacher forcing: row t reads the right prefix
    }
    for (std::size_t b : {std::size_t(0), std::size_t(1)}) {
      const std::string in = lab::DateTask::format(shown[b].first, shown[b].second), iso = lab::DateTask::iso(shown[b].first);
      std::vector<std::string> xt, yt;
      for (char c : in) xt.push_back(c == ' ' ? "_" : std::string(1, c));
      for (char c : iso) yt.push_back(std::string(1, c));
      yt.push_back("<eos>");
      // [B, H, T, S] -> this example, its real rows and columns: [H, |iso|+1, |in|]
      const ag::Tensor w = ag::slice(ag::slice(ag::select(model.decoder->layers.back()->last_cross_attention(), 0, std::int64_t(b)), 1,
                                               0, std::int64_t(yt.size())),
                                     2, 0, std::int64_t(xt.size()));
      head_grid(args.path("cross_attention_" + std::to_string(b + 1) + ".png"), w, xt, yt,
                "Cross-attention of the last decoder layer, heads 1 2 / 3 4: \"" + in + "\"", 2);
    }

    // How sharp is each head? Mean over 200 held-out dates and their output characters of the
    // largest cross-attention weight (uniform over a source of 8 to 18 characters: 0.06 to 0.12).
    const lab::Seq2SeqBatch part = head_of(probe.eval_set(), 200);
    const std::size_t n_sharp = part.size(), S = part.src.shape[1], Tt = part.dec_in.shape[1];
    {
      ag::NoGrad no_grad;
      model.forward(part.src, part.dec_in, lab::PAD);
    }
    const ag::Tensor cross = model.decoder->layers.back()->last_cross_attention();  // [B, H, T, S]
    const std::vector<double> cv = cross.to_vector();
    const std::size_t H = cross.size(1);
    lab::Table sharp("Cross-attention of the last decoder layer (pre-LN + warmup), " + std::to_string(n_sharp) + " held-out dates",
                     {"head", "mean largest weight", "mean entropy (nats)"});
    double sharpest = 0, worst_row_error = 0;
    for (std::size_t h = 0; h < H; ++h) {
      double max_sum = 0, ent_sum = 0;
      std::size_t rows = 0;
      for (std::size_t b = 0; b < n_sharp; ++b)
        for (std::size_t t = 0; t < std::size_t(part.tgt_lengths[b]); ++t, ++rows) {
          const double* row = cv.data() + ((b * H + h) * Tt + t) * S;
          double m = 0, e = 0, sum = 0;
          for (std::size_t j = 0; j < S; ++j) {
            m = std::max(m, row[j]);
            if (row[j] > 0) e -= row[j] * std::log(row[j]);
            sum += row[j];
          }
          max_sum += m, ent_sum += e;
          worst_row_error = std::max(worst_row_error, std::abs(sum - 1.0));
        }
      sharp.row({h + 1, max_sum / double(rows), ent_sum / double(rows)});
      sharpest = std::max(sharpest, max_sum / double(rows));
    }
    sharp.print();
    sharp.save_markdown(args.path("report.md"), true);

    // ---- checks ----------------------------------------------------------------------------------
    const std::vector<double>& lr = runs[0].lr;
    const double lr_first = lr.front(), lr_peak = lr[std::size_t(std::min<std::int64_t>(warmup, std::int64_t(lr.size())) - 1)];
    bool rises = true, falls = true;
    for (std::size_t i = 1; i < lr.size(); ++i) {  // lr[i] is the lr of step i + 1
      if (std::int64_t(i) < warmup) rises = rises && lr[i] > lr[i - 1];
      else falls = falls && lr[i] <= lr[i - 1];
    }
    checks.expect((std::int64_t(lr.size()) < warmup || std::abs(lr_peak - peak) < 1e-12 * peak) && std::abs(lr_first - peak / double(warmup)) < 1e-12 * peak && rises && falls,
                  "schedule: lr rises linearly from peak/warmup = " + lab::format_number(lr_first) + " to the peak " +
                      lab::format_number(peak) + " at step " + std::to_string(warmup) + ", then falls as 1/sqrt(step)");
    const double post = tail_loss(runs[0]), post_const = tail_loss(runs[2]), pre_const = tail_loss(runs[3]);
    checks.expect(post < 0.5 * post_const, "post-LN: with warmup the loss (" + lab::format_number(post) + ") is < 0.5 x without (" +
                                               lab::format_number(post_const) + ")");
    checks.expect(pre_const < 0.75 * post_const, "without warmup, pre-LN trains (loss " + lab::format_number(pre_const) +
                                                     ") where post-LN stalls (" + lab::format_number(post_const) + ")");
    checks.expect(worst_row_error < 1e-5, "cross-attention rows sum to 1 (worst error " + lab::format_number(worst_row_error) + ")");
    if (!args.quick) {
      checks.expect(runs[1].final_exact > 0.9 && runs[0].final_exact > 0.8,
                    "with warmup: exact match pre-LN " + lab::format_number(runs[1].final_exact) + " > 0.9, post-LN " +
                        lab::format_number(runs[0].final_exact) + " > 0.8");
      checks.expect(runs[2].final_exact < 0.05 && runs[3].final_exact > 0.8,
                    "without warmup: exact match post-LN " + lab::format_number(runs[2].final_exact) + " < 0.05, pre-LN " +
                        lab::format_number(runs[3].final_exact) + " > 0.8");
      checks.expect(sharpest > 0.5, "the sharpest cross-attention head puts " + lab::format_number(sharpest) +
                                        " > 0.5 of its weight on one source character, on average");
    }

    std::cout << "\n";
    lab::plot_terminal(curves(loss_log, "lines"), loss_opts);
    std::cout << "Wrote " << args.out.string() << "/: loss.csv, lr.csv, exact_match.csv, loss.png, lr.png, exact_match.png, "
              << "cross_attention_1.png, cross_attention_2.png (and .svg, .gp), report.md\n";
    return checks.report();
  });
}
