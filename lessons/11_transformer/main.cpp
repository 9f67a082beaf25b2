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
//    without it (a constant lr at the schedule's peak): four recipes, same data, same initial
//    weights, repeated for several seeds (each seed: its own data, initial weights and held-out set);
// 3) exact-match accuracy on 1,000 held-out dates, greedy decoding: median and range over the seeds;
// 4) what the decoder's cross-attention heads look at, per head (the first seed's pre-LN model).
//
// Files in --out: loss.csv, lr.csv, exact_match.csv (medians over the seeds), seeds.csv (every
// run's final figures), loss.png, lr.png, exact_match.png, cross_attention_{1,2}.png (+ one CSV
// per head), report.md, and chapter/ (what README.md quotes).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "common/resume.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

// The four ways we train the same model.
struct Recipe {
  std::string name;   // column name in the CSV files
  std::string label;  // legend
  bool pre_ln;        // TransformerOptions::norm_first
  bool warmup;        // the Vaswani schedule, or a constant lr at its peak
};

const std::vector<Recipe> kRecipes = {{"post_ln", "post-LN + warmup", false, true},
                                      {"pre_ln", "pre-LN + warmup", true, true},
                                      {"post_ln_const", "post-LN, constant lr (no warmup)", false, false},
                                      {"pre_ln_const", "pre-LN, constant lr (no warmup)", true, false}};
enum { kPostWarm = 0, kPreWarm = 1, kPostConst = 2, kPreConst = 3 };

// What every run trains with.
struct Setup {
  std::int64_t steps = 600, eval_every = 50;
  lab::DateOptions task{};  // its seed is replaced by each run's seed
  nn::TransformerOptions base{};
  nn::WarmupSchedule schedule{64, 200, 1.0};
  double peak = 0;
  double label_smoothing = 0.1;  // Vaswani et al. 2017, section 5.4
};

struct Run {
  std::unique_ptr<nn::TransformerSeq2Seq> model;
  std::vector<double> loss, lr;  // per step
  std::vector<double> exact;     // per evaluation (every eval_every steps, 200 held-out dates)
  double final_exact = 0;        // on the whole held-out set, greedy decoding
  double final_exact_beam = 0;   // the same with a beam of kBeam
  std::size_t greedy_wrong = 0;  // held-out dates greedy decoding gets wrong
  std::size_t model_errors = 0;  // of them, those whose right answer the model finds less probable
  double tail = 0;               // mean loss over the last 30 steps
  std::int64_t diverged_at = 0;  // the step whose loss was not finite (0: never); the run stops there
};

// dec_target [B, T] -> flat [B*T] (IGNORE where padded), for cross_entropy on logits [B*T, V].
ag::Indices flat(const ag::Indices& ids) { return ag::Indices(ids.values, {ids.size()}); }

// The loss of a model that knows exactly what ISO dates look like but ignores the source: the
// entropy of the dates DateTask draws (year, then month, then day, each uniform), in nats.
// Spread over the 11 predictions of a target (10 characters + EOS, the EOS and dashes being
// certain), it is the per-character loss of such a model.
double date_entropy(const lab::DateOptions& o) {
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
  return h;
}

constexpr std::size_t kBeam = 4;  // the beam search's width, beside greedy decoding

// Share of the set decoded exactly right (T = 10 characters + EOS): greedy decoding (beam = 1),
// or beam search with that many beams (plain log-probabilities: every answer has 11 tokens).
double exact_match(nn::TransformerSeq2Seq& model, const lab::DateTask& task, const lab::Seq2SeqBatch& set, std::size_t beam = 1) {
  model.eval();
  const ag::Indices out = beam == 1 ? model.greedy_decode(set.src, lab::BOS, 11, lab::PAD)
                                    : model.beam_search(set.src, lab::BOS, {.beam_size = beam, .max_len = 11, .eos = lab::EOS}, lab::PAD).ids;
  model.train();
  std::size_t right = 0;
  for (std::size_t b = 0; b < set.size(); ++b) right += task.tgt_vocab().decode(out, b) == task.tgt_vocab().decode(set.dec_target, b);
  return double(right) / double(set.size());
}

// Of the dates greedy decoding gets wrong, the model errors: those whose right answer the model
// finds less probable than greedy's wrong one, so that no search, however wide, would return it.
// The rest are search errors, which a wider search can fix (Stahlberg & Byrne 2019's split).
std::pair<std::size_t, std::size_t> greedy_errors(nn::TransformerSeq2Seq& model, const lab::DateTask& task, const lab::Seq2SeqBatch& set) {
  ag::NoGrad no_grad;
  model.eval();
  const ag::Indices greedy = model.greedy_decode(set.src, lab::BOS, 11, lab::PAD);  // [N, 11]
  const std::size_t N = set.size();
  // log p(y | x) of each row of y [N, 11] up to its EOS, teacher-forced: the decoder reads BOS, y_1 .. y_10.
  auto log_probs = [&](const ag::Indices& y) {
    return nn::sequence_log_probs(model.forward(set.src, nn::shift_right(y, lab::BOS), lab::PAD), y, lab::EOS);
  };
  const std::vector<double> p_greedy = log_probs(greedy), p_right = log_probs(set.dec_target);  // dates: 10 characters + EOS, no padding
  model.train();
  std::size_t wrong = 0, model_errors = 0;
  for (std::size_t b = 0; b < N; ++b)
    if (task.tgt_vocab().decode(greedy, b) != task.tgt_vocab().decode(set.dec_target, b)) {
      ++wrong;
      model_errors += p_right[b] < p_greedy[b];
    }
  return {wrong, model_errors};
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

// One recipe, one seed: `steps` Adam steps on the seed's batches from the seed's initial weights.
// The curves of exact match are measured every eval_every steps on 200 held-out dates.
// What a resumed run must share with the saved one (load_training_state refuses any difference).
nn::Metadata run_config(const Recipe& r, const Setup& s, std::uint64_t seed) {
  const nn::TransformerOptions& b = s.base;
  return {{"recipe", r.name},
          {"seed", std::to_string(seed)},
          {"steps", std::to_string(s.steps)},
          {"eval_every", std::to_string(s.eval_every)},
          {"batch", std::to_string(s.task.batch_size)},
          {"years", std::to_string(s.task.min_year) + "-" + std::to_string(s.task.max_year)},
          {"d_model", std::to_string(b.d_model)},
          {"num_heads", std::to_string(b.num_heads)},
          {"dim_feedforward", std::to_string(b.dim_feedforward)},
          {"warmup", std::to_string(s.schedule.warmup)},
          {"label_smoothing", lab::encode_doubles({s.label_smoothing})},
          {"factor", lab::encode_doubles({s.schedule.factor})}};
}

Run train(const Recipe& r, const Setup& s, std::uint64_t seed, const std::string& label, lab::ResumableRun& saver) {
  lab::DateOptions to = s.task;
  to.seed = seed;
  lab::DateTask task(to);  // the same batches for every recipe of this seed
  const lab::Seq2SeqBatch curve_set = head_of(task.eval_set(), 200);
  const std::int64_t V = std::int64_t(task.tgt_vocab().size());
  nn::TransformerOptions o = s.base;
  o.norm_first = r.pre_ln;
  ag::Generator gen(lab::derive_seed(seed, 7));  // the same initial weights for every recipe of this seed
  Run run;
  run.model = std::make_unique<nn::TransformerSeq2Seq>(task.src_vocab().size(), task.tgt_vocab().size(), o, 2, 2, gen);
  nn::TransformerSeq2Seq& model = *run.model;
  nn::Adam opt(model.parameters(), {.lr = s.peak, .betas = {0.9, 0.98}, .eps = 1e-9});
  // --save-every / --resume: the state holds the batch stream and the curves so far.
  nn::TrainingState state{.step = 0, .generators = {{"batches", &task.train_stream()}}, .config = run_config(r, s, seed), .extra = {}};
  if (saver.restore(model, opt, state)) {
    run.loss = lab::decode_doubles(state.extra.at("loss"));
    run.lr = lab::decode_doubles(state.extra.at("lr"));
    run.exact = lab::decode_doubles(state.extra.at("exact"));
  }
  lab::Progress bar(s.steps, label, {.plain_percent = 50});
  for (std::int64_t step = state.step + 1; step <= s.steps; ++step) {
    const lab::Seq2SeqBatch b = task.next_batch();
    const ag::Tensor logits = model.forward(b.src, b.dec_in, lab::PAD);  // [B, T, V]
    const ag::Tensor flat_logits = ag::reshape(logits, {-1, V});
    // Trained on the smoothed loss; logged as the plain cross-entropy of the same batch, in nats
    // per character, the quantity the source-blind line is measured in (the smoothed loss of even
    // a perfect model stays above 0). IGNORE at pads in both.
    opt.zero_grad();
    ag::cross_entropy(flat_logits, flat(b.dec_target), {.label_smoothing = s.label_smoothing}).backward();
    const ag::Tensor loss = ag::cross_entropy(flat_logits.detach(), flat(b.dec_target));
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.set_lr(r.warmup ? s.schedule.lr(opt.steps() + 1) : s.peak);
    opt.step();
    run.loss.push_back(loss.item());
    run.lr.push_back(opt.lr());
    if (!std::isfinite(loss.item())) {
      run.diverged_at = step;
      break;
    }
    if (step % s.eval_every == 0) run.exact.push_back(exact_match(model, task, curve_set));
    bar.update(step, {{"loss", loss.item()}, {"lr", opt.lr()}, {"exact", run.exact.empty() ? 0.0 : run.exact.back()}});
    if (saver.due(step, s.steps)) {
      state.step = step;
      state.extra = {{"loss", lab::encode_doubles(run.loss)}, {"lr", lab::encode_doubles(run.lr)}, {"exact", lab::encode_doubles(run.exact)}};
      saver.save(model, opt, state);
    }
  }
  bar.finish();
  run.final_exact = exact_match(model, task, task.eval_set());
  run.final_exact_beam = exact_match(model, task, task.eval_set(), kBeam);
  std::tie(run.greedy_wrong, run.model_errors) = greedy_errors(model, task, task.eval_set());
  const std::size_t n = std::min<std::size_t>(30, run.loss.size());
  for (std::size_t i = run.loss.size() - n; i < run.loss.size(); ++i) run.tail += run.loss[i] / double(n);
  return run;
}

// How sharp is each cross-attention head of the last decoder layer? Over a set of dates and their
// output characters (teacher-forced): the mean largest weight and the mean entropy of a row.
struct Sharpness {
  std::vector<double> max_weight, entropy;  // per head
  double worst_row_error = 0;               // |sum of a row - 1|, the worst row
};
Sharpness sharpness(nn::TransformerSeq2Seq& model, const lab::Seq2SeqBatch& set) {
  model.eval();
  {
    ag::NoGrad no_grad;
    model.forward(set.src, set.dec_in, lab::PAD);
  }
  model.train();
  const ag::Tensor cross = model.decoder->layers.back()->last_cross_attention();  // [B, H, T, S]
  const std::vector<double> cv = cross.to_vector();
  const std::size_t B = cross.size(0), H = cross.size(1), Tt = cross.size(2), S = cross.size(3);
  Sharpness out;
  for (std::size_t h = 0; h < H; ++h) {
    double max_sum = 0, ent_sum = 0;
    std::size_t rows = 0;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < std::size_t(set.tgt_lengths[b]); ++t, ++rows) {
        const double* row = cv.data() + ((b * H + h) * Tt + t) * S;
        double m = 0, e = 0, sum = 0;
        for (std::size_t j = 0; j < S; ++j) {
          m = std::max(m, row[j]);
          if (row[j] > 0) e -= row[j] * std::log(row[j]);
          sum += row[j];
        }
        max_sum += m, ent_sum += e;
        out.worst_row_error = std::max(out.worst_row_error, std::abs(sum - 1.0));
      }
    out.max_weight.push_back(max_sum / double(rows));
    out.entropy.push_back(ent_sum / double(rows));
  }
  return out;
}

// The median over the seeds of values[seed][i]; a value past the end of a run that diverged
// counts as +infinity (worse than any finite loss), NaN as well; the result is kMissing when the
// median is not finite.
double median_at(const std::vector<const std::vector<double>*>& values, std::size_t i, bool hold_last) {
  lab::SeedStats st;
  for (const auto* v : values) {
    double x = i < v->size() ? (*v)[i] : hold_last && !v->empty() ? v->back() : std::numeric_limits<double>::infinity();
    if (!std::isfinite(x)) x = std::numeric_limits<double>::infinity();
    st.add(x);
  }
  const double m = st.median();
  return std::isfinite(m) ? m : lab::kMissing;
}

std::string percent(double share) { return lab::format_number(100.0 * share, 3) + "%"; }
std::string percent_range(const lab::SeedStats& st) { return percent(st.min()) + " to " + percent(st.max()); }
// "in every seed", "in no seed", "in 3 of 5 seeds"
std::string in_seeds(std::size_t count, std::size_t K) {
  return count == K ? "in every seed" : count == 0 ? "in no seed" : "in " + std::to_string(count) + " of " + std::to_string(K) + " seeds";
}
std::string char_label(char c) { return c == ' ' ? "_" : std::string(1, c); }

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("11_transformer", "The Transformer on date normalisation: pre-LN vs post-LN, the warmup schedule, attention per head");
  cli.steps_help("training steps of each recipe and seed (default 600; --quick 150)");
  std::int64_t warmup = 200, seeds = 5, batch = 32;
  double factor = 1.0;
  auto* warmup_opt = cli.app().add_option("--warmup", warmup, "warmup steps of the schedule (--quick: 50)")
                         ->check(CLI::Range(1, 1000000))
                         ->capture_default_str();
  auto* factor_opt = cli.app().add_option("--factor", factor, "the schedule's factor: peak lr = factor / sqrt(d_model * warmup) (--quick: 0.5)")
                         ->check(CLI::Range(1e-6, 100.0))
                         ->capture_default_str();
  auto* seeds_opt = cli.app().add_option("--seeds", seeds, "seeds per recipe: --seed, --seed + 1, ... (--quick: 2)")
                        ->check(CLI::Range(1, 100))
                        ->capture_default_str();
  cli.app().add_option("--batch", batch, "dates per training batch")->check(CLI::Range(1, 4096))->capture_default_str();
  double label_smoothing = 0.1;
  cli.app().add_option("--label-smoothing", label_smoothing, "cross_entropy's label_smoothing in training (Vaswani et al.: 0.1)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  lab::ResumeOptions resume;
  lab::add_resume_options(cli, resume);
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const lab::Chapter chapter(args);
    // --quick: 150 steps, a 50-step warmup with the factor that keeps the same peak lr, 2 seeds.
    if (args.quick && warmup_opt->count() == 0) warmup = 50;
    if (args.quick && factor_opt->count() == 0) factor = 0.5;
    if (args.quick && seeds_opt->count() == 0) seeds = 2;
    Setup s;
    s.steps = args.steps_or(600, 150);
    s.task = {.batch_size = int(batch), .seed = args.seed, .eval_size = args.quick ? 200 : 1000};
    s.base = {.d_model = 64, .num_heads = 4, .dim_feedforward = 256, .dropout = 0.0};
    s.schedule = nn::WarmupSchedule(std::int64_t(s.base.d_model), warmup, factor);
    s.peak = s.schedule.lr(warmup);
    s.label_smoothing = label_smoothing;
    const std::size_t K = std::size_t(seeds);

    lab::DateTask probe(s.task);
    std::cout << "Date normalisation: \"" << lab::DateTask::format({1999, 9, 23}, lab::DateFormat::MonthDayYear) << "\" -> \""
              << lab::DateTask::iso({1999, 9, 23}) << "\", four input formats, years 1900-2099\n"
              << "TransformerSeq2Seq: d_model " << s.base.d_model << ", " << s.base.num_heads << " heads, FFN " << s.base.dim_feedforward
              << ", 2 encoder + 2 decoder layers, batch " << batch << ", Adam(0.9, 0.98, eps 1e-9), clip 1.0, label smoothing "
              << label_smoothing << ", " << s.steps << " steps\n"
              << "Warmup schedule: factor " << factor << ", warmup " << warmup << ", peak lr " << lab::format_number(s.peak)
              << " at step " << warmup << "\n"
              << "4 recipes x " << K << " seeds (" << args.seed << " to " << args.seed + K - 1 << ")\n\n";
    {
      const double lr1 = s.schedule.lr(1), lr4 = s.schedule.lr(4 * warmup);
      chapter.text("schedule_example",
                   "With D = " + std::to_string(s.base.d_model) + ", warmup = " + std::to_string(warmup) + ", factor = " +
                       lab::format_number(factor) + ": `lr(1) = " + lab::format_number(lr1, 3) + "`, the peak `lr(" +
                       std::to_string(warmup) + ") = " + lab::format_number(s.peak, 3) + "`, and `lr(" + std::to_string(4 * warmup) +
                       ") = " + lab::format_number(lr4, 3) + "`, half the peak at four times the warmup.");
    }
    const double entropy = date_entropy(s.task), blind = entropy / 11;
    chapter.text("blind", "**A reference line.** A model that knows exactly what an ISO date looks like but ignores the source pays the entropy of a "
                          "random date (year among " + std::to_string(s.task.max_year - s.task.min_year + 1) +
                          ", month among 12, day among 28-31), " + lab::format_number(entropy, 4) +
                          " nats, spread over 11 predictions: **" + lab::format_number(blind, 4) +
                          " nats per character**. A loss near that line means the decoder has learned the format and "
                          "nothing from the source.");

    // ---- train: every recipe for every seed ------------------------------------------------------
    // runs[recipe][k] is the run of seed args.seed + k. Only the first seed's pre-LN + warmup model
    // is kept (the heatmaps); each run's sharpness is measured as it ends.
    std::vector<std::vector<Run>> runs(kRecipes.size());
    std::vector<Sharpness> sharp(K);  // per seed, of the pre-LN + warmup model
    std::unique_ptr<nn::TransformerSeq2Seq> shown_model;
    for (std::size_t k = 0; k < K; ++k) {
      const std::uint64_t seed = args.seed + k;
      for (std::size_t i = 0; i < kRecipes.size(); ++i) {
        lab::ResumableRun saver(args, resume, kRecipes[i].name + "_seed" + std::to_string(seed));
        Run run = train(kRecipes[i], s, seed, kRecipes[i].label + ", seed " + std::to_string(seed), saver);
        if (i == kPreWarm) {
          lab::DateOptions to = s.task;
          to.seed = seed;
          sharp[k] = sharpness(*run.model, head_of(lab::DateTask(to).eval_set(), 200));
          if (k == 0) shown_model = std::move(run.model);
        }
        run.model.reset();
        runs[i].push_back(std::move(run));
      }
    }

    // ---- the seeds, side by side -------------------------------------------------------------------
    auto stats = [&](std::size_t i, auto value) {
      lab::SeedStats st;
      for (const Run& run : runs[i]) st.add(value(run));
      return st;
    };
    auto exact_of = [](const Run& r) { return r.final_exact; };
    auto tail_of = [](const Run& r) { return std::isfinite(r.tail) ? r.tail : std::numeric_limits<double>::infinity(); };
    lab::Table seed_table("Date normalisation after " + std::to_string(s.steps) + " steps, " + std::to_string(s.task.eval_size) +
                              " held-out dates per seed, " + std::to_string(K) + " seeds",
                          {"recipe", "exact match: median", "min to max", "seeds >= 90%", "loss (last 30 steps): median", "min to max",
                           "diverged"});
    for (std::size_t i = 0; i < kRecipes.size(); ++i) {
      const lab::SeedStats e = stats(i, exact_of), l = stats(i, tail_of);
      std::size_t diverged = 0;
      for (const Run& run : runs[i]) diverged += run.diverged_at ? 1 : 0;
      seed_table.row({kRecipes[i].label, e.median(), e.range(), std::to_string(e.count([](double v) { return v >= 0.9; })) + " of " +
                      std::to_string(K), l.median(), l.range(), std::to_string(diverged) + " of " + std::to_string(K)});
    }
    seed_table.print();
    seed_table.save_markdown(args.path("report.md"));
    chapter.table("seeds", seed_table);
    {
      lab::CurveLog per_seed(args.path("seeds.csv"), {"recipe", "exact_match", "exact_match_beam", "tail_loss", "diverged_at"}, "seed");
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t i = 0; i < kRecipes.size(); ++i)
          per_seed.log(double(args.seed + k), {double(i), runs[i][k].final_exact, runs[i][k].final_exact_beam, runs[i][k].tail,
                                               double(runs[i][k].diverged_at)});
    }
    // Greedy decoding against a beam of kBeam, the same models and held-out dates.
    lab::Table beam_table("Exact match on the held-out dates: greedy decoding and a beam of " + std::to_string(kBeam) + ", " +
                              std::to_string(K) + " seeds",
                          {"recipe", "greedy: median", "min to max", "beam of " + std::to_string(kBeam) + ": median", "min to max",
                           "seeds: beam better / same / worse", "greedy's wrong dates, all seeds", "of them, the right date less probable"});
    for (std::size_t i = 0; i < kRecipes.size(); ++i) {
      const lab::SeedStats g = stats(i, exact_of), b = stats(i, [](const Run& r) { return r.final_exact_beam; });
      std::size_t better = 0, worse = 0, wrong = 0, model_errors = 0;
      for (const Run& run : runs[i]) {
        better += run.final_exact_beam > run.final_exact, worse += run.final_exact_beam < run.final_exact;
        wrong += run.greedy_wrong, model_errors += run.model_errors;
      }
      beam_table.row({kRecipes[i].label, g.median(), g.range(), b.median(), b.range(),
                      std::to_string(better) + " / " + std::to_string(K - better - worse) + " / " + std::to_string(worse),
                      long(wrong), std::to_string(model_errors) + " (" + lab::format_number(100.0 * double(model_errors) / double(std::max<std::size_t>(wrong, 1)), 3) + "%)"});
    }
    std::cout << "\n";
    beam_table.print();
    beam_table.save_markdown(args.path("report.md"), true);
    chapter.table("beam", beam_table);
    {
      long gained = 0, lost = 0, models = 0;  // dates, over every model
      for (const auto& recipe_runs : runs)
        for (const Run& run : recipe_runs) {
          const long d = std::lround((run.final_exact_beam - run.final_exact) * double(s.task.eval_size));
          gained += std::max(d, 0L), lost += std::max(-d, 0L), ++models;
        }
      chapter.text("beam_reading", "Over the " + std::to_string(models) + " models, " + lab::thousands(std::size_t(s.task.eval_size)) +
                                       " held-out dates each: in the models the beam of " + std::to_string(kBeam) +
                                       " helps, it gets " + std::to_string(gained) + " more dates right in all than greedy decoding; in the "
                                       "models it hurts, " + std::to_string(lost) + " fewer.");
    }
    std::cout << "  A model that knows what an ISO date looks like but ignores the source scores " << lab::format_number(blind)
              << " per character.\n";

    // The median loss of each recipe at a few steps: the shape of the curves, in numbers.
    std::vector<std::int64_t> marks = {1, 50, 100, 200, 300, s.steps};
    marks.erase(std::remove_if(marks.begin(), marks.end(), [&](std::int64_t m) { return m > s.steps; }), marks.end());
    marks.erase(std::unique(marks.begin(), marks.end()), marks.end());
    std::vector<std::string> mark_cols = {"recipe"};
    for (std::int64_t m : marks) mark_cols.push_back("step " + std::to_string(m));
    lab::Table by_step("Training loss, median over the seeds of the mean over 10 steps ending at", mark_cols);
    auto window_mean = [](const std::vector<double>& loss, std::int64_t end) {  // steps end-9 .. end (1-based)
      if (std::int64_t(loss.size()) < end) return std::numeric_limits<double>::infinity();  // diverged before
      double sum = 0;
      const std::int64_t from = std::max<std::int64_t>(1, end - 9);
      for (std::int64_t t = from; t <= end; ++t) sum += loss[std::size_t(t - 1)];
      return sum / double(end - from + 1);
    };
    for (std::size_t i = 0; i < kRecipes.size(); ++i) {
      std::vector<lab::Cell> row = {kRecipes[i].label};
      for (std::int64_t m : marks) {
        const double v = stats(i, [&](const Run& r) { return window_mean(r.loss, m); }).median();
        row.push_back(std::isfinite(v) ? lab::Cell(v, 3) : lab::Cell("diverged"));
      }
      by_step.row(row);
    }
    std::cout << "\n";
    by_step.print();
    by_step.save_markdown(args.path("report.md"), true);
    chapter.table("loss_by_step", by_step);

    // ---- curves: medians over the seeds ---------------------------------------------------------
    std::vector<std::string> names;
    for (const Recipe& r : kRecipes) names.push_back(r.name);
    lab::CurveLog loss_log(args.path("loss.csv"), names), exact_log(args.path("exact_match.csv"), names);
    lab::CurveLog lr_log(args.path("lr.csv"), {"warmup", "constant"});
    std::vector<std::vector<const std::vector<double>*>> loss_of(kRecipes.size()), exact_curve_of(kRecipes.size());
    for (std::size_t i = 0; i < kRecipes.size(); ++i)
      for (const Run& run : runs[i]) loss_of[i].push_back(&run.loss), exact_curve_of[i].push_back(&run.exact);
    for (std::int64_t t = 1; t <= s.steps; ++t) {
      std::vector<double> l;
      for (std::size_t i = 0; i < kRecipes.size(); ++i) l.push_back(median_at(loss_of[i], std::size_t(t - 1), false));
      loss_log.log(double(t), l);
      lr_log.log(double(t), {s.schedule.lr(t), s.peak});
    }
    for (std::int64_t e = 1; e * s.eval_every <= s.steps; ++e) {
      std::vector<double> v;  // a run that diverged keeps its last exact match
      for (std::size_t i = 0; i < kRecipes.size(); ++i) v.push_back(median_at(exact_curve_of[i], std::size_t(e - 1), true));
      exact_log.log(double(e * s.eval_every), v);
    }
    auto curves = [&](const lab::CurveLog& log, const std::string& style) {
      std::vector<lab::Series> ss;
      for (const Recipe& r : kRecipes) ss.push_back({log.path(), r.name, r.label, "step", style});
      return ss;
    };
    const std::string of_seeds = "median of " + std::to_string(K) + " seed" + (K > 1 ? "s" : "");
    if (lab::plot(args.path("lr.png"),
                  {{lr_log.path(), "warmup", "Vaswani schedule (factor " + lab::format_number(factor) + ", warmup " + std::to_string(warmup) + ")"},
                   {lr_log.path(), "constant", "constant, at the schedule's peak"}},
                  {.title = "Learning rate per step: factor * d^-0.5 * min(step^-0.5, step * warmup^-1.5)", .ylabel = "learning rate",
                   .ymin = 0, .ymax = 1.3 * s.peak}))
      chapter.figure("lr.png");
    std::vector<lab::Series> loss_series = curves(loss_log, "lines");
    loss_series[kPostWarm].width = 4;  // the two warmup curves run close together: the wider one shows under the other
    if (lab::plot(args.path("loss.png"), loss_series,
                  {.title = "Date normalisation: training loss per step (" + of_seeds + ")",
                   .ylabel = "cross-entropy per character (log scale)", .logy = true, .hlines = {{blind, "ignoring the source"}}}))
      chapter.figure("loss.png");
    std::vector<lab::Series> exact_series = curves(exact_log, "linespoints");
    exact_series[kPostWarm].width = 4;
    if (lab::plot(args.path("exact_match.png"), exact_series,
                  {.title = "Date normalisation: exact match on 200 held-out dates (greedy decoding, " + of_seeds + ")",
                   .ylabel = "share of dates exactly right", .ymin = 0, .ymax = 1.45}))
      chapter.figure("exact_match.png");

    // ---- what the first seed's pre-LN model does, and where its heads look --------------------------
    nn::TransformerSeq2Seq& model = *shown_model;
    model.eval();
    const std::vector<std::pair<lab::Date, lab::DateFormat>> shown = {{{1999, 9, 23}, lab::DateFormat::MonthDayYear},
                                                                      {{2024, 2, 29}, lab::DateFormat::Dotted},
                                                                      {{1987, 12, 5}, lab::DateFormat::DayMonthYear},
                                                                      {{2061, 7, 14}, lab::DateFormat::YearMonthDay}};
    const lab::Seq2SeqBatch ex = probe.encode(shown);
    const ag::Indices decoded = model.greedy_decode(ex.src, lab::BOS, 11, lab::PAD);
    std::ostringstream examples;
    examples << "The pre-LN + warmup model of seed " << args.seed << " on four dates it may never have seen:\n";
    for (std::size_t b = 0; b < shown.size(); ++b) {
      const std::string in = lab::DateTask::format(shown[b].first, shown[b].second), out = probe.tgt_vocab().decode(decoded, b);
      examples << "  " << in << std::string(20 - std::min<std::size_t>(20, in.size()), ' ') << " -> " << out
               << (out == lab::DateTask::iso(shown[b].first) ? "   right" : "   WRONG") << "\n";
    }
    std::cout << "\n" << examples.str();
    chapter.text("examples", "```\n" + examples.str() + "```");
    {
      ag::NoGrad no_grad;
      model.forward(ex.src, ex.dec_in, lab::PAD);  // teacher forcing: row t reads the right prefix
    }
    const ag::Tensor cross_ex = model.decoder->layers.back()->last_cross_attention();  // [B, H, T, S]
    const std::size_t H = cross_ex.size(1);
    // For each output character of example b, the source character each head weighs most.
    std::vector<std::vector<std::vector<std::size_t>>> top(2);  // [example][output row][head] -> source position
    for (std::size_t b : {std::size_t(0), std::size_t(1)}) {
      const std::string in = lab::DateTask::format(shown[b].first, shown[b].second), iso = lab::DateTask::iso(shown[b].first);
      std::vector<std::string> xt, yt;
      for (char c : in) xt.push_back(char_label(c));
      for (char c : iso) yt.push_back(std::string(1, c));
      yt.push_back("<eos>");
      // [B, H, T, S] -> this example, its real rows and columns: one [|iso|+1, |in|] per head
      const ag::Tensor w = ag::slice(ag::slice(ag::select(cross_ex, 0, std::int64_t(b)), 1, 0, std::int64_t(yt.size())), 2, 0,
                                     std::int64_t(xt.size()));
      std::vector<ag::Tensor> panels;
      std::vector<std::string> titles;
      for (std::size_t h = 0; h < H; ++h) {
        panels.push_back(ag::select(w, 0, std::int64_t(h)));
        titles.push_back("head " + std::to_string(h + 1));
      }
      const std::string png = "cross_attention_" + std::to_string(b + 1) + ".png";
      if (lab::heatmap_grid(args.path(png), panels, titles,
                            {.title = "Cross-attention of the last decoder layer: \"" + in + "\"", .xlabel = "source character (key)",
                             .ylabel = "output character (query)", .xticks = xt, .yticks = yt, .zmin = 0, .zmax = 1,
                             .width = 900, .height = 640},
                            2) &&
          b == 0)
        chapter.figure(png);
      // The table: one row per output character, per head the source character with the largest weight.
      const std::vector<double> v = w.to_vector();
      const std::size_t R = yt.size(), C = xt.size();
      std::vector<std::string> cols = {"output"};
      for (std::size_t h = 0; h < H; ++h) cols.push_back("head " + std::to_string(h + 1));
      lab::Table t("Where each head looks most in \"" + in + "\" (source character, position from 1, weight)", cols);
      top[b].assign(R, std::vector<std::size_t>(H));
      for (std::size_t r = 0; r < R; ++r) {
        std::vector<lab::Cell> row = {"`" + yt[r] + "`"};
        for (std::size_t h = 0; h < H; ++h) {
          const double* p = v.data() + (h * R + r) * C;
          const std::size_t j = std::size_t(std::max_element(p, p + C) - p);
          top[b][r][h] = j;
          row.push_back("`" + xt[j] + "` " + std::to_string(j + 1) + " (" + lab::format_number(p[j], 2) + ")");
        }
        t.row(row);
      }
      std::cout << "\n";
      t.print();
      t.save_markdown(args.path("report.md"), true);
      chapter.table("top_" + std::to_string(b + 1), t);
    }

    // Reading the first table: which part of the source do the year, month and day digits look at?
    // In "september 23, 1999" the year is the last 4 characters, the day the other digits, the
    // month the letters.
    std::size_t year_from_year = 0, month_from_name = 0, day_from_day = 0, month0_at_digit = 0;
    const std::size_t month_cells = 2 * H;
    {
      const std::string in = lab::DateTask::format(shown[0].first, shown[0].second);
      auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
      for (std::size_t h = 0; h < H; ++h) {
        for (std::size_t r : {0, 1, 2, 3}) year_from_year += top[0][r][h] + 4 >= in.size() ? 1 : 0;
        for (std::size_t r : {5, 6}) month_from_name += std::isalpha(static_cast<unsigned char>(in[top[0][r][h]])) ? 1 : 0;
        for (std::size_t r : {8, 9}) day_from_day += is_digit(in[top[0][r][h]]) && top[0][r][h] + 4 < in.size() ? 1 : 0;
      }
      chapter.text("top_1_reading",
                   "Counted from the table: the four year digits look most at the year at the end of the source in " +
                       std::to_string(year_from_year) + " of their " + std::to_string(4 * H) + " cells (4 digits x " +
                       std::to_string(H) + " heads), the two day digits at the day's digits in " + std::to_string(day_from_day) +
                       " of " + std::to_string(2 * H) + ", and the two month digits at a letter of the month's name in " +
                       std::to_string(month_from_name) + " of " + std::to_string(month_cells) + ".");
    }
    {
      // Exercise 3: "29.2.2024", the month's 0 (row 5), which is not in the source.
      const std::string in = lab::DateTask::format(shown[1].first, shown[1].second);
      std::string where;
      std::size_t dots = 0;
      for (std::size_t h = 0; h < H; ++h) {
        const std::size_t j = top[1][5][h];
        dots += in[j] == '.' ? 1 : 0;
        month0_at_digit += in[j] >= '0' && in[j] <= '9' ? 1 : 0;
        where += std::string(h ? (h + 1 == H ? " and " : ", ") : "") + "head " + std::to_string(h + 1) + " at `" + char_label(in[j]) +
                 "` (position " + std::to_string(j + 1) + ")";
      }
      chapter.text("answer3", "*Answer:* when it writes the month's `0` (the sixth row), " + where + ": " + std::to_string(dots) +
                                  " of the " + std::to_string(H) + " heads look most at a dot.");
    }

    // How sharp is each head? Uniform over a source of 8 to 18 characters would give 0.06 to 0.12.
    lab::Table sharp_table("Cross-attention of the last decoder layer (pre-LN + warmup, seed " + std::to_string(args.seed) +
                               "), 200 held-out dates",
                           {"head", "mean largest weight", "mean entropy (nats)"});
    for (std::size_t h = 0; h < H; ++h) sharp_table.row({h + 1, sharp[0].max_weight[h], sharp[0].entropy[h]});
    std::cout << "\n";
    sharp_table.print();
    sharp_table.save_markdown(args.path("report.md"), true);
    chapter.table("sharpness", sharp_table);
    lab::SeedStats sharpest, bluntest;
    double worst_row_error = 0;
    for (const Sharpness& sh : sharp) {
      sharpest.add(*std::max_element(sh.max_weight.begin(), sh.max_weight.end()));
      bluntest.add(*std::min_element(sh.max_weight.begin(), sh.max_weight.end()));
      worst_row_error = std::max(worst_row_error, sh.worst_row_error);
    }
    chapter.text("sharpness_seeds",
                 "Over the " + std::to_string(K) + " seeds' pre-LN + warmup models, the sharpest head puts a median " +
                     percent(sharpest.median()) + " of its weight on a single source character (" + percent_range(sharpest) +
                     " over the seeds), and the least sharp one " + percent(bluntest.median()) + " (" + percent_range(bluntest) +
                     "), against 6-12% for a uniform spread over a source of 8 to 18 characters.");

    // ---- the chapter's sentences about the seeds --------------------------------------------------
    const lab::SeedStats post_w = stats(kPostWarm, exact_of), pre_w = stats(kPreWarm, exact_of),
                         post_c = stats(kPostConst, exact_of), pre_c = stats(kPreConst, exact_of);
    const lab::SeedStats post_c_tail = stats(kPostConst, tail_of), pre_c_tail = stats(kPreConst, tail_of),
                         post_w_tail = stats(kPostWarm, tail_of);
    const std::string of_K = " of " + std::to_string(K) + " seeds";
    chapter.text("headline", "By the end you will have trained an encoder-decoder Transformer to turn `september 23, 1999` into "
                             "`1999-09-23` (" + percent(pre_w.median()) + " of " + std::to_string(s.task.eval_size) +
                             " unseen dates exactly right after " + std::to_string(s.steps) + " steps, the median of " +
                             std::to_string(K) + " seeds), watched the 2017 layout (post-LN) stall when the learning rate starts "
                             "high while the pre-LN layout trains anyway, and read off each cross-attention head which source "
                             "characters it copies from.");
    // Post-LN without warmup from step 100 on: how close it stays to the source-blind line.
    lab::SeedStats late_mean;
    for (const Run& run : runs[kPostConst]) {
      double sum = 0;
      std::size_t n = 0;
      for (std::size_t t = std::min<std::size_t>(99, run.loss.size()); t < run.loss.size(); ++t) sum += run.loss[t], ++n;
      late_mean.add(n ? sum / double(n) : std::numeric_limits<double>::infinity());
    }
    std::size_t pre_ahead = 0, pre_const_learns = 0;  // per seed: pre-LN ends above post-LN (with warmup); pre-LN learns without
    for (std::size_t k = 0; k < K; ++k) {
      pre_ahead += runs[kPreWarm][k].final_exact > runs[kPostWarm][k].final_exact ? 1 : 0;
      pre_const_learns += tail_of(runs[kPreConst][k]) < 0.75 * tail_of(runs[kPostConst][k]) ? 1 : 0;
    }
    chapter.text("stall",
                 "From step 100 to " + std::to_string(s.steps) + " the loss of post-LN without warmup averages " +
                     lab::format_number(late_mean.median(), 3) + " (the median over the seeds; " + late_mean.range() +
                     "), against " + lab::format_number(blind, 4) + " for the source-blind line, and its exact match is 0 " +
                     in_seeds(post_c.count([](double v) { return v == 0; }), K) + ". Pre-LN without warmup learns " +
                     in_seeds(pre_const_learns, K) + " (its loss ends below three quarters of post-LN's), but less "
                     "reliably than with the schedule: its exact match ranges from " + percent_range(pre_c) + " (median " +
                     percent(pre_c.median()) + "). With the schedule, post-LN reaches " + percent(post_w.median()) + " (" +
                     percent_range(post_w) + ") and pre-LN " + percent(pre_w.median()) + " (" + percent_range(pre_w) +
                     "); pre-LN ends higher " + in_seeds(pre_ahead, K) + ".");

    // ---- checks: the chapter's claims, over every seed ---------------------------------------------
    std::vector<double> lr;
    for (std::int64_t t = 1; t <= s.steps; ++t) lr.push_back(s.schedule.lr(t));
    const std::vector<double>& lr_used = runs[kPostWarm][0].lr;  // what the optimiser was given
    bool rises = true, falls = true, same = lr_used.size() == lr.size() || runs[kPostWarm][0].diverged_at;
    for (std::size_t i = 0; i < lr_used.size(); ++i) same = same && lr_used[i] == lr[i];
    for (std::size_t i = 1; i < lr.size(); ++i) {  // lr[i] is the lr of step i + 1
      if (std::int64_t(i) < warmup) rises = rises && lr[i] > lr[i - 1];
      else falls = falls && lr[i] <= lr[i - 1];
    }
    checks.expect(same && std::abs(s.schedule.lr(1) - s.peak / double(warmup)) < 1e-12 * s.peak && rises && falls,
                  "schedule: lr rises linearly from peak/warmup = " + lab::format_number(s.schedule.lr(1)) + " to the peak " +
                      lab::format_number(s.peak) + " at step " + std::to_string(warmup) + ", then falls as 1/sqrt(step)");
    std::size_t warm_beats = 0, pre_beats = 0;
    for (std::size_t k = 0; k < K; ++k) {
      warm_beats += tail_of(runs[kPostWarm][k]) < 0.5 * tail_of(runs[kPostConst][k]) ? 1 : 0;
      pre_beats += tail_of(runs[kPreConst][k]) < 0.75 * tail_of(runs[kPostConst][k]) ? 1 : 0;
    }
    checks.expect(warm_beats == K, "post-LN: with warmup the loss is < 0.5 x without, in " + std::to_string(warm_beats) + of_K +
                                       " (medians " + lab::format_number(post_w_tail.median()) + " and " +
                                       lab::format_number(post_c_tail.median()) + ")");
    checks.expect(pre_beats == K, "without warmup, pre-LN's loss is < 0.75 x post-LN's, in " + std::to_string(pre_beats) + of_K +
                                      " (medians " + lab::format_number(pre_c_tail.median()) + " and " +
                                      lab::format_number(post_c_tail.median()) + ")");
    checks.expect(worst_row_error < 1e-5, "cross-attention rows sum to 1 (worst error " + lab::format_number(worst_row_error) + ")");
    const std::size_t stalled = post_c.count([](double v) { return v < 0.01; });
    checks.expect(stalled == K && late_mean.min() > 0.85 * blind && late_mean.max() < 1.2 * blind,
                  "without warmup post-LN stalls at the source-blind line " + in_seeds(stalled, K) +
                      ": exact match < 1%, mean loss from step 100 on within [0.85, 1.2] x " + lab::format_number(blind, 4) +
                      " (" + late_mean.range() + ")");
    if (!args.quick) {
      checks.expect(pre_c.min() > 0.2, "without warmup pre-LN learns in every seed: exact match " + percent_range(pre_c) + " (> 20%)");
      checks.expect(pre_w.min() > 0.75 && post_w.min() > 0.75,
                    "with warmup both layouts learn in every seed: exact match pre-LN " + percent_range(pre_w) + ", post-LN " +
                        percent_range(post_w) + " (> 75%)");
      checks.expect(pre_w.median() > post_w.median() && pre_w.median() > pre_c.median(),
                    "pre-LN + warmup has the best median exact match (" + percent(pre_w.median()) + " against " +
                        percent(post_w.median()) + " post-LN + warmup and " + percent(pre_c.median()) + " pre-LN without warmup)");
      // The shape of the curves (the loss table): pre-LN without warmup drops fastest at first, then falls behind.
      auto at_step = [&](std::size_t i, std::int64_t t) { return stats(i, [&](const Run& r) { return window_mean(r.loss, t); }).median(); };
      const std::int64_t late = std::min<std::int64_t>(300, s.steps);
      checks.expect(at_step(kPreConst, 50) < std::min({at_step(kPostWarm, 50), at_step(kPreWarm, 50), at_step(kPostConst, 50)}) &&
                        at_step(kPreConst, late) > std::max(at_step(kPostWarm, late), at_step(kPreWarm, late)),
                    "pre-LN without warmup has the lowest median loss at step 50 (" + lab::format_number(at_step(kPreConst, 50), 3) +
                        ") and a higher one than both warmup recipes at step " + std::to_string(late) + " (" +
                        lab::format_number(at_step(kPreConst, late), 3) + ")");
      checks.expect(sharpest.min() > 0.5, "in every seed the sharpest cross-attention head puts > 0.5 of its weight on one source "
                                          "character, on average (" + sharpest.range() + ")");
      // What the prose says of the heatmap: the year and the month digits *mostly* look at the year
      // and at the month's name, the day digits at least half the time at the day.
      checks.expect(2 * year_from_year > 4 * H && 2 * day_from_day >= 2 * H && 2 * month_from_name > month_cells,
                    "\"" + lab::DateTask::format(shown[0].first, shown[0].second) + "\": the year digits look most at the year in " +
                        std::to_string(year_from_year) + " of " + std::to_string(4 * H) + " cells (> 1/2), the day digits at the day in " +
                        std::to_string(day_from_day) + " of " + std::to_string(2 * H) + " (>= 1/2), the month digits at a letter in " +
                        std::to_string(month_from_name) + " of " + std::to_string(month_cells) + " (> 1/2)");
      checks.expect(month0_at_digit == 0, "\"" + lab::DateTask::format(shown[1].first, shown[1].second) +
                                              "\": for the month's 0 no head looks most at a digit (" +
                                              std::to_string(month0_at_digit) + " of " + std::to_string(H) + " do)");
    }

    std::cout << "\nTraining loss, " << of_seeds << " (log scale; the source-blind line is at " << lab::format_number(blind, 4)
              << ";\nwhere the two warmup curves meet, the # of pre-LN hides the * of post-LN):\n";
    lab::plot_terminal(curves(loss_log, "lines"), {.ylabel = "loss", .logy = true}, std::cout, 80, 26);
    std::cout << "Wrote " << args.out.string() << "/: loss.csv, lr.csv, exact_match.csv, seeds.csv, loss.png, lr.png, exact_match.png, "
              << "cross_attention_1.png, cross_attention_2.png (and .svg, .gp, one CSV per head), report.md, chapter/\n";
    std::ostringstream report;
    const int status = checks.report(report);
    std::cout << report.str();
    chapter.text("checks", "```" + report.str() + "```");
    return status;
  });
}
