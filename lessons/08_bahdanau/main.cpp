// Lesson 08: Bahdanau (additive) attention removes the bottleneck of lesson 07.
//
// Lesson 07's reversal task, data, optimizer and step budget, run with two models per seed: the
// GRU encoder-decoder without attention (lesson 07's model, trained here again so the comparison
// needs no earlier run) and with additive attention (Bahdanau, Cho & Bengio 2015). At every
// output step the attentive decoder looks back at all encoder states and takes a weighted
// average of them; accuracy hardly depends on length any more, and the weights, drawn as a
// matrix, show where it looked: for reversal, the anti-diagonal.
//
// The default run is a smaller version of lesson 07's (lengths 4..16, 600 steps, 5 seeds: ten
// models in about three minutes of CPU); --full runs lesson 07's size (lengths 4..24, 1,500
// steps, 5 seeds), and its figures without attention are then lesson 07's exactly.
//
// Writes into --out (default runs/08_bahdanau/):
//   loss.png (loss_plain_seed<k>.csv, loss_attention_seed<k>.csv)   training cross-entropy
//   accuracy_vs_length.csv / .png     per held-out length, both models: median and range over the seeds
//   accuracy_vs_length_seeds.csv      the same, one row per seed and length
//   alignment.csv / .png              the attention weights of one held-out example (the first seed)
//   report.md                         the tables
//   chapter/                          what the chapter (README.md) quotes
#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/reversal_experiment.hpp"

namespace {

using reversal::LengthScore, reversal::SeedRun, reversal::seeds_phrase, reversal::grouped;
using lab::format_number;

// A token as a tick label: the letter, or <eos>.
std::string token(const lab::CharVocab& v, std::int64_t id) {
  return id == lab::EOS ? "<eos>" : id == lab::PAD ? "<pad>" : id == lab::BOS ? "<bos>" : std::string(1, v.ch(id));
}

// The weights a [T, S] as text: one row per output token, one character per source token,
// darker = more weight.
std::string alignment_text(const std::vector<double>& a, std::size_t T, std::size_t S, const std::vector<std::string>& out,
                           const std::vector<std::string>& src) {
  const std::string shades = " .:-=+*#%@";
  std::string text = "          source: ";
  for (const auto& s : src) text += s;
  text += "\n";
  for (std::size_t t = 0; t < T; ++t) {
    std::string row;
    for (std::size_t s = 0; s < S; ++s) row += shades[std::min<std::size_t>(9, std::size_t(a[t * S + s] * 10))];
    text += "  output " + std::string(6 - std::min<std::size_t>(6, out[t].size()), ' ') + out[t] + "  |" + row + "|\n";
  }
  return text;
}

std::string lengths(int a, int b) { return "L = " + std::to_string(a) + ".." + std::to_string(b); }


}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("08_bahdanau", "Bahdanau attention on sequence reversal: accuracy vs length beside lesson 07, and the alignment");
  const reversal::Setup normal = reversal::Setup::small(), full_setup = reversal::Setup::full(),
                        quick = reversal::Setup::quick(2, 200);
  bool full = false;
  cli.app().add_flag("--full", full,
                      "lesson 07's size: lengths 4..24, 1500 steps per model (about 8 minutes of CPU; the default is "
                      "lengths 4..16, 600 steps)");
  cli.steps_help("Adam steps per model (per seed, with and without attention), one batch of 64 sequences each (default " +
                 std::to_string(normal.steps) + "; --full " + std::to_string(full_setup.steps) + "; --quick " +
                 std::to_string(quick.steps) + ")");
  reversal::SetupOptions options;
  options.add(cli.app(), normal, quick, "--full " + std::to_string(full_setup.max_len));
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const reversal::Setup setup = options.setup(args, args.quick ? quick : full ? full_setup : normal);
    const lab::Chapter chapter(args);
    std::cout << "Sequence reversal with a GRU encoder-decoder, without and with attention: "
              << reversal::describe(setup, args.seed) << (full ? " (--full)" : "") << "\n\n";

    // 1) Train both kinds with each seed: the same batches, the same initial embeddings and encoder;
    //    score both on the same held-out sequences of each length.
    const std::vector<SeedRun> plain = reversal::train_seeds(setup, /*attention=*/false, args, "loss_plain");
    const std::vector<SeedRun> attn = reversal::train_seeds(setup, /*attention=*/true, args, "loss_attention");
    const std::size_t n = attn.size();
    const int lo = setup.eval_min, hi = setup.eval_max;
    using St = lab::SeedStats;

    // 2) Accuracy against length, both models; where the attention peaks.
    lab::CurveLog each(args.path("accuracy_vs_length_seeds.csv"),
                       {"seed", "plain_token", "plain_exact", "attention_token", "attention_exact", "attention_on_mirror",
                        "attention_after_mirror", "attention_near_mirror"},
                       "length");
    for (std::size_t k = 0; k < n; ++k)
      for (std::size_t i = 0; i < attn[k].scores.size(); ++i) {
        const auto &p = plain[k].scores[i], &a = attn[k].scores[i];
        each.log(a.L, {double(attn[k].seed), p.token_acc, p.exact_acc, a.token_acc, a.exact_acc, a.on_mirror,
                       a.after_mirror, a.near_mirror});
      }
    lab::CurveLog acc(args.path("accuracy_vs_length.csv"),
                      {"plain_token", "plain_exact", "attention_token", "attention_token_min", "attention_exact",
                       "attention_on_mirror", "attention_after_mirror", "attention_near_mirror"},
                      "length");
    lab::Table table("Held-out accuracy by input length (" + std::to_string(setup.eval_per_length) +
                         " sequences per length and seed; medians over " + std::to_string(n) +
                         " seeds); attention peak vs the mirrored source position s = L-1-t",
                     {"L", "no attn: symbols", "no attn: sequences", "attn: symbols", "attn: sequences", "peak on s",
                      "peak on s+1", "peak within 1"});
    lab::Table chapter_table("", {"L", "no attention: symbols", "range", "no attention: sequences", "attention: symbols",
                                  "range", "attention: sequences"});
    lab::Table align_table("", {"L", "peak on s = L−1−t", "peak on s + 1", "peak within one of s"});
    const auto chapter_row = [&](int L) { return (L - lo) % 4 == 0 || L == hi; };
    for (int L = lo; L <= hi; ++L) {
      const St pt = reversal::at_length(plain, L, &LengthScore::token_acc), pe = reversal::at_length(plain, L, &LengthScore::exact_acc);
      const St at = reversal::at_length(attn, L, &LengthScore::token_acc), ae = reversal::at_length(attn, L, &LengthScore::exact_acc);
      const St on = reversal::at_length(attn, L, &LengthScore::on_mirror), after = reversal::at_length(attn, L, &LengthScore::after_mirror);
      const St nr = reversal::at_length(attn, L, &LengthScore::near_mirror);
      acc.log(L, {pt.median(), pe.median(), at.median(), at.min(), ae.median(), on.median(), after.median(), nr.median()});
      table.row({L, pt.median(), pe.median(), at.median(), ae.median(), on.median(), after.median(), nr.median()});
      if (chapter_row(L)) {
        chapter_table.row({L, lab::Cell(pt.median(), 3), pt.range(), lab::Cell(pe.median(), 3), lab::Cell(at.median(), 3),
                           at.range(), lab::Cell(ae.median(), 3)});
        align_table.row({L, lab::Cell(on.median(), 3), lab::Cell(after.median(), 3), lab::Cell(nr.median(), 3)});
      }
    }
    // The claims are about the lengths it was trained on (--eval-max may reach beyond them).
    const int top = std::min(hi, setup.max_len);
    const St on_all = reversal::mean_over(attn, lo, top, &LengthScore::on_mirror);
    const St after_all = reversal::mean_over(attn, lo, top, &LengthScore::after_mirror);
    const St near_all = reversal::mean_over(attn, lo, top, &LengthScore::near_mirror);
    const St peak_all = reversal::mean_over(attn, lo, top, &LengthScore::peak_weight);
    align_table.row({"mean over " + lengths(lo, top), lab::Cell(on_all.median(), 3), lab::Cell(after_all.median(), 3),
                     lab::Cell(near_all.median(), 3)});

    // 3) One held-out example of the first seed, decoded with attention: its weights a [T, S] (T = L + 1 with <eos>).
    const int L = std::min(16, hi);
    const lab::ReversalTask example_task = reversal::eval_task(setup, L, args.seed);
    const lab::Seq2SeqBatch& ex = example_task.eval_set();
    const auto decoded = attn.front().trained.model->greedy_decode(ex.src, lab::BOS, std::size_t(L) + 1, lab::PAD);
    const ag::Tensor alignment = ag::select(decoded.attention, 0, 0);  // [T, S], example 0
    const std::vector<double> weights = alignment.to_vector();
    const lab::CharVocab& vocab = example_task.vocab();
    std::vector<std::string> src_tokens, out_tokens;
    for (int s = 0; s < L; ++s) src_tokens.push_back(token(vocab, ex.src.values[std::size_t(s)]));
    for (int t = 0; t <= L; ++t) out_tokens.push_back(token(vocab, decoded.ids.values[std::size_t(t)]));
    // Its rows: how many peak within one of the mirror, and the row whose weight is most spread out.
    int rows_near = 0, rows_sharp = 0, spread_row = 0;
    double spread_peak = 2;
    for (int t = 0; t < L; ++t) {
      const double* row = weights.data() + std::size_t(t * L);
      const int peak = int(std::max_element(row, row + L) - row);
      rows_near += std::abs(peak - (L - 1 - t)) <= 1;
      rows_sharp += row[peak] > 0.5;
      if (row[peak] < spread_peak) spread_peak = row[peak], spread_row = t;
    }

    // 4) Plots: the loss of the first seed's two models, accuracy vs length side by side, the heatmap.
    const std::string s0 = std::to_string(args.seed);
    lab::plot(args.path("loss.png"),
              {{.csv = args.path("loss_plain_seed" + s0 + ".csv"), .y = "loss", .title = "without attention (lesson 07's model), seed " + s0},
               {.csv = args.path("loss_attention_seed" + s0 + ".csv"), .y = "loss", .title = "with attention, seed " + s0}},
              {.title = "Training loss, same data and budget", .ylabel = "cross-entropy per symbol (mean of 25 steps)",
               .logy = true});
    const std::string of_n = " (median of " + std::to_string(n) + " seeds)";
    const lab::PlotOptions acc_plot{.title = "Reversal: accuracy vs input length, with and without attention",
                                    .xlabel = "input length L",
                                    .ylabel = "accuracy (held-out, greedy decoding)",
                                    .ymin = 0, .ymax = 1.45,  // headroom for the legend
                                    .xmin = lo - 1.0, .xmax = hi + 1.0};
    // The two attention curves lie on top of each other near 1: the first is drawn wide and solid,
    // the second thin and dashed on it, with its own markers, and the legend says so.
    const std::vector<lab::Series> acc_series = {
        {.csv = acc.path(), .y = "attention_token", .title = "attention: symbols right" + of_n, .x = "length",
         .style = "linespoints lc rgb '#1f77b4' pt 7 ps 1.2", .width = 5},
        {.csv = acc.path(), .y = "attention_exact",
         .title = "attention: whole sequences right (dashed, on top of the line above)", .x = "length",
         .style = "linespoints lc rgb '#ff7f0e' pt 2 ps 1.2", .width = 1.5, .dash = 2},
        {.csv = acc.path(), .y = "plain_token", .title = "no attention (lesson 07's model): symbols right" + of_n, .x = "length",
         .style = "linespoints lc rgb '#d62728' pt 5 ps 0.9"},
        {.csv = acc.path(), .y = "plain_exact", .title = "no attention: whole sequences right", .x = "length",
         .style = "linespoints lc rgb '#9467bd' pt 4 ps 0.9", .dash = 2}};
    lab::plot(args.path("accuracy_vs_length.png"), acc_series, acc_plot);
    lab::heatmap(args.path("alignment.png"), alignment,
                 {.title = "Attention weights of one held-out sequence (L = " + std::to_string(L) + ", seed " + s0 + ")",
                  .xlabel = "source (input) token s",
                  .ylabel = "output token t (greedy decoding)",
                  .xticks = src_tokens,
                  .yticks = out_tokens,
                  .zmin = 0, .zmax = 1,
                  .width = 700, .height = 700});
    chapter.figure("accuracy_vs_length.png");
    chapter.figure("alignment.png");

    // 5) What it printed, and where it looked.
    const std::string example_text = "One held-out example (L = " + std::to_string(L) + ", seed " + s0 + ")\n  input   " +
                                     vocab.decode(ex.src, 0) + "\n  target  " + vocab.decode(ex.dec_target, 0) +
                                     "\n  output  " + vocab.decode(decoded.ids, 0) + "\n";
    std::cout << "\n" << example_text
              << "\nIts attention weights (rows: output steps; columns: source tokens; darker = more weight):\n"
              << alignment_text(weights, std::size_t(L) + 1, std::size_t(L), out_tokens, src_tokens) << "\n";
    table.print();
    table.save_markdown(args.path("report.md"));

    const St attn_short = reversal::mean_over(attn, lo, lo + 2, &LengthScore::token_acc);
    const St attn_long = reversal::mean_over(attn, top - 2, top, &LengthScore::token_acc);
    const St plain_short = reversal::mean_over(plain, lo, lo + 2, &LengthScore::token_acc);
    const St plain_long = reversal::mean_over(plain, top - 2, top, &LengthScore::token_acc);
    const St attn_exact_long = reversal::mean_over(attn, top - 2, top, &LengthScore::exact_acc);
    const St plain_exact_long = reversal::mean_over(plain, top - 2, top, &LengthScore::exact_acc);
    const auto final_loss = [](const SeedRun& r) { return r.trained.final_loss; };
    const auto cpu = [](const SeedRun& r) { return r.trained.cpu_seconds; };
    const St plain_loss = reversal::over_seeds(plain, final_loss), attn_loss = reversal::over_seeds(attn, final_loss);
    const St plain_cpu = reversal::over_seeds(plain, cpu), attn_cpu = reversal::over_seeds(attn, cpu);
    // The lowest accuracy with attention at any trained length, in any seed.
    double attn_worst = 1, attn_worst_exact = 1;
    for (const auto& r : attn)
      for (const auto& sc : r.scores)
        if (sc.L <= top) attn_worst = std::min(attn_worst, sc.token_acc), attn_worst_exact = std::min(attn_worst_exact, sc.exact_acc);

    const long p_plain = long(plain.front().trained.model->num_parameters());
    const long p_attn = long(attn.front().trained.model->num_parameters());
    lab::Table summary("Summary (median and range over " + std::to_string(n) + " seeds)",
                       {"figure", "without attention", "range", "with attention", "range"});
    const auto row = [&](const std::string& what, const St& a, const St& b) {
      summary.row({what, a.median(), a.range(), b.median(), b.range()});
    };
    summary.row({"parameters", p_plain, "", p_attn, ""});
    row("training CPU seconds per model", plain_cpu, attn_cpu);
    row("training loss, last 50 steps", plain_loss, attn_loss);
    row("token accuracy, " + lengths(lo, lo + 2), plain_short, attn_short);
    row("token accuracy, " + lengths(top - 2, top), plain_long, attn_long);
    row("whole sequences, " + lengths(top - 2, top), plain_exact_long, attn_exact_long);
    summary.row({"attention peak on mirror s = L-1-t", "-", "", on_all.median(), on_all.range()});
    summary.row({"attention peak on s + 1 = L-t", "-", "", after_all.median(), after_all.range()});
    summary.row({"attention peak within one of the mirror", "-", "", near_all.median(), near_all.range()});
    summary.row({"largest weight of a row (mean)", "-", "", peak_all.median(), peak_all.range()});
    std::cout << "\n";
    summary.print();
    summary.save_markdown(args.path("report.md"), /*append=*/true);

    std::cout << "\n";
    lab::PlotOptions term_plot = acc_plot;
    term_plot.ymax = 1.1;
    lab::plot_terminal({acc_series[0], acc_series[2]}, term_plot);
    std::cout << "Plots and CSV in " << args.out.string() << "/ (the alignment heatmap: alignment.png)\n";

    // 6) The claims of the lesson, over every seed (paired: the two models of one seed saw the same data).
    std::size_t learned = 0, beats = 0, flat = 0, plain_falls = 0, near_ok = 0, shifted = 0, unshifted = 0, peaked = 0;
    for (std::size_t k = 0; k < n; ++k) {
      learned += attn_long.values[k] > 0.95;
      beats += attn_long.values[k] - plain_long.values[k] > 0.3;
      flat += attn_short.values[k] - attn_long.values[k] < 0.05;
      plain_falls += plain_short.values[k] - plain_long.values[k] > 0.25;
      near_ok += near_all.values[k] > 0.95;
      peaked += peak_all.values[k] > 0.5;
      shifted += after_all.values[k] > 0.7 && after_all.values[k] > on_all.values[k];
      unshifted += on_all.values[k] > after_all.values[k];
    }
    // Exercise 1: the fraction of steps that peak on the mirror is about 1/L (away from the longest lengths).
    const std::vector<int> ex1_Ls = {top / 2, 3 * top / 4};
    bool one_over_L = true;
    for (int l : ex1_Ls) {
      const double on = reversal::at_length(attn, l, &LengthScore::on_mirror).median();
      one_over_L = one_over_L && std::abs(on * l - 1) < 0.25;
    }
    const std::string long_Ls = lengths(top - 2, top), short_Ls = lengths(lo, lo + 2);
    // Each line ends with the medians it compares and, in brackets, their range over the seeds.
    const auto mr = [](const St& st) { return format_number(st.median(), 3) + " [" + st.range() + "]"; };
    lab::Checks checks;
    checks.expect(learned == n, "with attention, long sequences are learned: token accuracy at " + long_Ls +
                                    " is above 0.95 in " + seeds_phrase(learned, n) + ": " + attn_long.all());
    checks.expect(beats == n, "at " + long_Ls + " attention beats no attention by more than 0.3 in " + seeds_phrase(beats, n) +
                                  ": " + mr(attn_long) + " vs " + mr(plain_long));
    checks.expect(flat == n, "with attention, accuracy falls by less than 0.05 from " + short_Ls + " to " + long_Ls + " in " +
                                 seeds_phrase(flat, n) + ": " + mr(attn_short) + " to " + mr(attn_long));
    checks.expect(plain_falls == n, "without attention, accuracy falls by more than 0.25 from " + short_Ls + " to " + long_Ls +
                                        " in " + seeds_phrase(plain_falls, n) + ": " + mr(plain_short) + " to " + mr(plain_long));
    checks.expect(near_ok == n, "the alignment is the anti-diagonal: the attention peaks within one position of s = L-1-t at more "
                                "than 95% of the output steps in " + seeds_phrase(near_ok, n) + ": " + mr(near_all));
    checks.expect(peaked == n, "most of a row's weight goes to one cell: the largest weight of a row averages more than 0.5 in " +
                                   seeds_phrase(peaked, n) + ": " + mr(peak_all));
    checks.expect(10 * rows_near >= 9 * L, "the heatmap shows it: at least 90% of the example's letter rows peak within one "
                                           "position of the mirror: " + std::to_string(rows_near) + " of " + std::to_string(L));
    if (args.quick) {  // short sequences after 200 steps have not settled on the shift yet (see the chapter)
      checks.expect(unshifted == n, "(--quick) not shifted yet: more steps peak on s than on s + 1 in " +
                                        seeds_phrase(unshifted, n) + ": " + mr(on_all) + " vs " + mr(after_all));
    } else {
      checks.expect(shifted == n, "the diagonal is shifted by one: most steps (> 70%) peak on s + 1, not on s, in " +
                                      seeds_phrase(shifted, n) + ": " + mr(after_all) + " vs " + mr(on_all));
      checks.expect(one_over_L, "the fraction that peaks on s is within 25% of 1/L (median of the seeds) at L = " +
                                    std::to_string(ex1_Ls[0]) + " and " + std::to_string(ex1_Ls[1]));
    }

    // 7) What the chapter quotes.
    chapter.text("setup", "The run below: " + reversal::describe(setup, args.seed) + ", for each of the two models. They have " +
                              grouped(p_plain) + " (without attention) and " + grouped(p_attn) + " parameters (with).");
    chapter.table("accuracy", chapter_table);
    {
      std::ostringstream s;
      int plain_none_from = top + 1;  // from this L on, no seed without attention gets more than 1% of the sequences right
      while (plain_none_from > lo && reversal::at_length(plain, plain_none_from - 1, &LengthScore::exact_acc).max() <= 0.01)
        --plain_none_from;
      s << "With attention, length hardly matters. At every length from " << lo << " to " << top << ", in every seed, at least "
        << format_number(attn_worst, 3) << " of the symbols come back right and at least " << format_number(attn_worst_exact, 3)
        << " of the sequences exactly right (the lowest seed at its worst length). Without attention the median seed falls from "
        << format_number(plain_short.median(), 3) << " of the symbols at " << short_Ls << " to "
        << format_number(plain_long.median(), 3) << " at " << long_Ls << ", and whole sequences from "
        << format_number(reversal::at_length(plain, lo, &LengthScore::exact_acc).median(), 3) << " at L = " << lo << " to "
        << format_number(plain_exact_long.median(), 3) << " at " << long_Ls;
      if (plain_none_from <= top) s << " (no seed gets more than 1% right from L = " << plain_none_from << " on)";
      s << ". The training loss ends at " << format_number(attn_loss.median(), 3) << " with attention and "
        << format_number(plain_loss.median(), 3) << " without (medians over the seeds; ranges " << attn_loss.range() << " and "
        << plain_loss.range() << "; `loss.png` shows seed " << s0 << "). The model with attention has "
        << grouped(p_attn - p_plain) << " more parameters.";
      chapter.text("reading", s.str());
    }
    chapter.text("example", "```\n" + example_text + "```");
    {
      std::ostringstream s;
      const double* row = weights.data() + std::size_t(spread_row * L);
      std::vector<int> order(static_cast<std::size_t>(L));
      for (int i = 0; i < L; ++i) order[std::size_t(i)] = i;
      std::sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
      const int c1 = order[0], c2 = order[1];
      s << "In this example " << rows_sharp << " of the " << L << " letter rows put more than half of their weight on one cell, and "
        << rows_near << " of the " << L << " peak within one column of the mirrored position. Over all held-out sequences, the "
        << "largest weight of a row is " << format_number(peak_all.median(), 3) << " on average (median over the seeds; range "
        << peak_all.range() << "). "
        << "The most spread-out row of the example is output step "
        << spread_row + 1 << " (it writes `" << out_tokens[std::size_t(spread_row)] << "`): its two largest weights are "
        << format_number(row[c1], 2) << " and " << format_number(row[c2], 2) << ", on input positions " << c1 + 1 << " and "
        << c2 + 1;
      if (src_tokens[std::size_t(c1)] == src_tokens[std::size_t(c2)])
        s << ", which hold the same letter `" << src_tokens[std::size_t(c1)]
          << "`. When neighbouring columns hold the same letter, it matters less exactly where the decoder looks.";
      else
        s << " (letters `" << src_tokens[std::size_t(c1)] << "` and `" << src_tokens[std::size_t(c2)] << "`).";
      chapter.text("spread", s.str());
    }
    chapter.table("alignment", align_table);
    chapter.text("shift", "In " + seeds_phrase(shifted, n) + ", most output steps peak on `s + 1` and few on `s` itself: "
                              "averaged over " + lengths(lo, top) + ", the medians over the seeds are " +
                              format_number(after_all.median(), 3) + " and " + format_number(on_all.median(), 3) +
                              " (ranges " + after_all.range() + " and " + on_all.range() + ").");
    {
      std::ostringstream s;
      s << "*Answer:* about `1/L`: only the first output step peaks on its mirror, all the others one to the right. The run gives ";
      for (std::size_t i = 0; i < ex1_Ls.size(); ++i) {
        const int l = ex1_Ls[i];
        s << (i ? " and " : "") << format_number(reversal::at_length(attn, l, &LengthScore::on_mirror).median(), 3)
          << " at L = " << l << " (`1/L` = " << format_number(1.0 / l, 3) << ")";
      }
      const double on_top = reversal::at_length(attn, top, &LengthScore::on_mirror).median();
      s << ", medians over the seeds. At the longest trained length, L = " << top << ", it is "
        << format_number(on_top, 3) << " against `1/L` = " << format_number(1.0 / top, 3)
        << ": there, a few more steps than the first peak on the mirror itself.";
      chapter.text("exercise1", s.str());
    }
    chapter.text("cpu", "A model without attention trained in " + format_number(plain_cpu.median(), 2) + " s of CPU, one with attention in " +
                            format_number(attn_cpu.median(), 2) + " s (medians over the seeds): an attention step costs about " +
                            format_number(attn_cpu.median() / plain_cpu.median(), 2) + " times a plain one.",
                 lab::Timing::yes);
    chapter.text("checks", reversal::checks_block(checks));
    return checks.report();
  });
}
