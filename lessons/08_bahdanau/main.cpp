// Lesson 08: Bahdanau (additive) attention removes the bottleneck of lesson 07.
//
// Lesson 07's reversal task, data, optimizer and step budget, run with three models per seed (and
// two more for the scores, below): the
// GRU encoder-decoder without attention (lesson 07's model, trained here again so the comparison
// needs no earlier run), with additive attention (Bahdanau, Cho & Bengio 2015), and with
// attention over the paper's own bidirectional encoder, whose annotation at s has read the source
// from both ends (nn::Seq2SeqOptions::bidirectional_encoder). At every output step the attentive
// decoder looks back at all encoder states and takes a weighted average of them; accuracy hardly
// depends on length any more, and the weights, drawn as a matrix, show where it looked: for
// reversal, the anti-diagonal (shifted by one with one direction, not with two). Two more models
// per seed swap the additive score for Luong et al.'s (2015) dot and general scores: accuracy
// against length and the cost of a step, score against score.
//
// The default run is a smaller version of lesson 07's (lengths 4..16, 600 steps, 5 seeds:
// twenty-five models in about four minutes of CPU); --full runs lesson 07's size (lengths 4..24, 1,500
// steps, 5 seeds), and its figures without attention are then lesson 07's exactly.
//
// Writes into --out (default runs/08_bahdanau/):
//   loss.png (loss_plain_seed<k>.csv, loss_attention_seed<k>.csv, loss_bidirectional_seed<k>.csv)
//   accuracy_vs_length.csv / .png     per held-out length, the first three models: median and range over the seeds
//   accuracy_vs_length_seeds.csv      the same, one row per seed and length
//   alignment.csv / .png              the attention weights of one held-out example (the first seed)
//   alignment_bidirectional.csv / .png  the same example, the bidirectional model
//   bidirectional.png                 where the attention peaks, one direction against two
//   scores.png, scores_vs_length.csv  accuracy vs length with the additive, dot and general scores
//   report.md                         the tables
//   chapter/                          what the chapter (README.md) quotes
#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/reversal_experiment.hpp"

namespace {

// Two models at the ceiling differ by a few symbols of the held-out set: "at least as accurate"
// allows that much (a token accuracy of 0.998 against 1.000 is a tie).
constexpr double kCeilingNoise = 0.002;

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
                      "lesson 07's size: lengths 4..24, 1500 steps per model (about 12 minutes of CPU; the default is "
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
    // The third model: attention over Bahdanau et al.'s bidirectional encoder (same batches, same
    // embeddings and forward encoder as the other two of its seed).
    reversal::Setup bi_setup = setup;
    bi_setup.bidirectional = true;
    const std::vector<SeedRun> bi = reversal::train_seeds(bi_setup, /*attention=*/true, args, "loss_bidirectional");
    // Two more: Luong et al.'s dot and general scores in place of the additive one, in the same
    // wiring (the same batches, embeddings and encoder as the others of their seed).
    reversal::Setup dot_setup = setup, general_setup = setup;
    dot_setup.score = nn::AttentionScore::dot;
    general_setup.score = nn::AttentionScore::general;
    const std::vector<SeedRun> dot = reversal::train_seeds(dot_setup, /*attention=*/true, args, "loss_dot");
    const std::vector<SeedRun> general = reversal::train_seeds(general_setup, /*attention=*/true, args, "loss_general");
    const std::size_t n = attn.size();
    const int lo = setup.eval_min, hi = setup.eval_max;
    using St = lab::SeedStats;

    // 2) Accuracy against length, both models; where the attention peaks.
    lab::CurveLog each(args.path("accuracy_vs_length_seeds.csv"),
                       {"seed", "plain_token", "plain_exact", "attention_token", "attention_exact", "attention_on_mirror",
                        "attention_after_mirror", "attention_near_mirror", "bidirectional_token", "bidirectional_exact",
                        "bidirectional_on_mirror", "bidirectional_after_mirror", "bidirectional_near_mirror"},
                       "length");
    for (std::size_t k = 0; k < n; ++k)
      for (std::size_t i = 0; i < attn[k].scores.size(); ++i) {
        const auto &p = plain[k].scores[i], &a = attn[k].scores[i], &b = bi[k].scores[i];
        each.log(a.L, {double(attn[k].seed), p.token_acc, p.exact_acc, a.token_acc, a.exact_acc, a.on_mirror,
                       a.after_mirror, a.near_mirror, b.token_acc, b.exact_acc, b.on_mirror, b.after_mirror, b.near_mirror});
      }
    lab::CurveLog acc(args.path("accuracy_vs_length.csv"),
                      {"plain_token", "plain_exact", "attention_token", "attention_token_min", "attention_exact",
                       "attention_on_mirror", "attention_after_mirror", "attention_near_mirror", "attention_peak_weight",
                       "bidirectional_token", "bidirectional_token_min", "bidirectional_exact", "bidirectional_on_mirror",
                       "bidirectional_after_mirror", "bidirectional_near_mirror", "bidirectional_peak_weight"},
                      "length");
    lab::Table table("Held-out accuracy by input length (" + std::to_string(setup.eval_per_length) +
                         " sequences per length and seed; medians over " + std::to_string(n) +
                         " seeds); attention peak vs the mirrored source position s = L-1-t",
                     {"L", "no attn: symbols", "no attn: sequences", "attn: symbols", "attn: sequences", "peak on s",
                      "peak on s+1", "peak within 1", "bidir: symbols", "bidir: sequences", "bidir: peak on s"});
    lab::Table chapter_table("", {"L", "no attention: symbols", "range", "no attention: sequences", "attention: symbols",
                                  "range", "attention: sequences"});
    lab::Table align_table("", {"L", "peak on s = L−1−t", "peak on s + 1", "peak within one of s"});
    lab::Table bi_table("", {"L", "one direction: symbols", "range", "sequences", "bidirectional: symbols", "range", "sequences",
                             "peak on s: one direction", "bidirectional"});
    const auto chapter_row = [&](int L) { return (L - lo) % 4 == 0 || L == hi; };
    for (int L = lo; L <= hi; ++L) {
      const St pt = reversal::at_length(plain, L, &LengthScore::token_acc), pe = reversal::at_length(plain, L, &LengthScore::exact_acc);
      const St at = reversal::at_length(attn, L, &LengthScore::token_acc), ae = reversal::at_length(attn, L, &LengthScore::exact_acc);
      const St on = reversal::at_length(attn, L, &LengthScore::on_mirror), after = reversal::at_length(attn, L, &LengthScore::after_mirror);
      const St nr = reversal::at_length(attn, L, &LengthScore::near_mirror);
      const St bt = reversal::at_length(bi, L, &LengthScore::token_acc), be = reversal::at_length(bi, L, &LengthScore::exact_acc);
      const St bon = reversal::at_length(bi, L, &LengthScore::on_mirror);
      acc.log(L, {pt.median(), pe.median(), at.median(), at.min(), ae.median(), on.median(), after.median(), nr.median(),
                  reversal::at_length(attn, L, &LengthScore::peak_weight).median(), bt.median(), bt.min(), be.median(),
                  bon.median(), reversal::at_length(bi, L, &LengthScore::after_mirror).median(),
                  reversal::at_length(bi, L, &LengthScore::near_mirror).median(),
                  reversal::at_length(bi, L, &LengthScore::peak_weight).median()});
      table.row({L, pt.median(), pe.median(), at.median(), ae.median(), on.median(), after.median(), nr.median(), bt.median(),
                 be.median(), bon.median()});
      if (chapter_row(L)) {
        chapter_table.row({L, lab::Cell(pt.median(), 3), pt.range(), lab::Cell(pe.median(), 3), lab::Cell(at.median(), 3),
                           at.range(), lab::Cell(ae.median(), 3)});
        align_table.row({L, lab::Cell(on.median(), 3), lab::Cell(after.median(), 3), lab::Cell(nr.median(), 3)});
        bi_table.row({L, lab::Cell(at.median(), 3), at.range(), lab::Cell(ae.median(), 3), lab::Cell(bt.median(), 3), bt.range(),
                      lab::Cell(be.median(), 3), lab::Cell(on.median(), 3), lab::Cell(bon.median(), 3)});
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
    // The same example through the first seed's bidirectional model: how many letter rows peak on the mirror itself.
    const auto bi_decoded = bi.front().trained.model->greedy_decode(ex.src, lab::BOS, std::size_t(L) + 1, lab::PAD);
    const ag::Tensor bi_alignment = ag::select(bi_decoded.attention, 0, 0);  // [T, S]
    const std::vector<double> bi_weights = bi_alignment.to_vector();
    std::vector<std::string> bi_out_tokens;
    for (int t = 0; t <= L; ++t) bi_out_tokens.push_back(token(vocab, bi_decoded.ids.values[std::size_t(t)]));
    int bi_rows_on = 0, bi_rows_sharp = 0, uni_rows_on = 0;
    for (int t = 0; t < L; ++t) {
      const double* row = bi_weights.data() + std::size_t(t * L);
      const int peak = int(std::max_element(row, row + L) - row);
      bi_rows_on += peak == L - 1 - t;
      bi_rows_sharp += row[peak] > 0.5;
      const double* urow = weights.data() + std::size_t(t * L);
      uni_rows_on += int(std::max_element(urow, urow + L) - urow) == L - 1 - t;
    }

    // 4) Plots: the loss of the first seed's two models, accuracy vs length side by side, the heatmap.
    const std::string s0 = std::to_string(args.seed);
    lab::plot(args.path("loss.png"),
              {{.csv = args.path("loss_plain_seed" + s0 + ".csv"), .y = "loss", .title = "without attention (lesson 07's model), seed " + s0},
               {.csv = args.path("loss_attention_seed" + s0 + ".csv"), .y = "loss", .title = "with attention, seed " + s0},
               {.csv = args.path("loss_bidirectional_seed" + s0 + ".csv"), .y = "loss",
                .title = "with attention, bidirectional encoder, seed " + s0}},
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
    lab::heatmap(args.path("alignment_bidirectional.png"), bi_alignment,
                 {.title = "The same sequence, bidirectional encoder (seed " + s0 + ")",
                  .xlabel = "source (input) token s",
                  .ylabel = "output token t (greedy decoding)",
                  .xticks = src_tokens,
                  .yticks = bi_out_tokens,
                  .zmin = 0, .zmax = 1,
                  .width = 700, .height = 700});
    lab::plot(args.path("bidirectional.png"),
              {{.csv = acc.path(), .y = "attention_after_mirror", .title = "one direction: peak on s + 1", .x = "length",
                .style = "linespoints lc rgb '#1f77b4' pt 7 ps 1.0"},
               {.csv = acc.path(), .y = "attention_on_mirror", .title = "one direction: peak on s = L-1-t", .x = "length",
                .style = "linespoints lc rgb '#1f77b4' pt 6 ps 1.0", .dash = 2},
               {.csv = acc.path(), .y = "bidirectional_on_mirror", .title = "bidirectional: peak on s = L-1-t", .x = "length",
                .style = "linespoints lc rgb '#2ca02c' pt 5 ps 1.0"},
               {.csv = acc.path(), .y = "bidirectional_after_mirror", .title = "bidirectional: peak on s + 1", .x = "length",
                .style = "linespoints lc rgb '#2ca02c' pt 4 ps 1.0", .dash = 2},
               {.csv = acc.path(), .y = "attention_peak_weight", .title = "one direction: largest weight of a row (mean)",
                .x = "length", .style = "linespoints lc rgb '#7f7f7f' pt 9 ps 1.0", .width = 1.5, .dash = 3},
               {.csv = acc.path(), .y = "bidirectional_peak_weight", .title = "bidirectional: largest weight of a row (mean)",
                .x = "length", .style = "linespoints lc rgb '#000000' pt 11 ps 1.0", .width = 1.5, .dash = 3}},
              {.title = "Where the attention peaks, one-direction vs bidirectional encoder" + of_n,
               .xlabel = "input length L",
               .ylabel = "fraction of output steps / weight",
               .ymin = 0, .ymax = 1.6,  // headroom for the legend
               .xmin = lo - 1.0, .xmax = hi + 1.0});
    chapter.figure("accuracy_vs_length.png");
    chapter.figure("alignment.png");
    chapter.figure("alignment_bidirectional.png");
    chapter.figure("bidirectional.png");

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
    // The bidirectional encoder, the same figures.
    const St bi_short = reversal::mean_over(bi, lo, lo + 2, &LengthScore::token_acc);
    const St bi_long = reversal::mean_over(bi, top - 2, top, &LengthScore::token_acc);
    const St bi_exact_long = reversal::mean_over(bi, top - 2, top, &LengthScore::exact_acc);
    const St bi_loss = reversal::over_seeds(bi, final_loss), bi_cpu = reversal::over_seeds(bi, cpu);
    const St bi_on = reversal::mean_over(bi, lo, top, &LengthScore::on_mirror);
    const St bi_after = reversal::mean_over(bi, lo, top, &LengthScore::after_mirror);
    const St bi_near = reversal::mean_over(bi, lo, top, &LengthScore::near_mirror);
    const St bi_peak = reversal::mean_over(bi, lo, top, &LengthScore::peak_weight);
    const auto ms_per_step = [&](const St& cpu_seconds) { return 1000 * cpu_seconds.median() / double(setup.steps); };
    // The lowest accuracy with attention at any trained length, in any seed.
    double attn_worst = 1, attn_worst_exact = 1;
    for (const auto& r : attn)
      for (const auto& sc : r.scores)
        if (sc.L <= top) attn_worst = std::min(attn_worst, sc.token_acc), attn_worst_exact = std::min(attn_worst_exact, sc.exact_acc);

    const long p_plain = long(plain.front().trained.model->num_parameters());
    const long p_attn = long(attn.front().trained.model->num_parameters());
    const long p_bi = long(bi.front().trained.model->num_parameters());
    long p_reverse = 0, p_init = 0;  // the bidirectional model's new parameters: the reverse GRU, W_s
    for (const auto& [name, t] : bi.front().trained.model->named_parameters()) {
      if (name.find("_reverse") != std::string::npos) p_reverse += long(t.numel());
      if (name.rfind("init_proj.", 0) == 0) p_init += long(t.numel());
    }
    lab::Table summary("Summary (median and range over " + std::to_string(n) + " seeds)",
                       {"figure", "without attention", "range", "with attention", "range", "attention, bidirectional", "range"});
    const auto row = [&](const std::string& what, const St& a, const St& b, const St& c) {
      summary.row({what, a.median(), a.range(), b.median(), b.range(), c.median(), c.range()});
    };
    summary.row({"parameters", p_plain, "", p_attn, "", p_bi, ""});
    row("training CPU seconds per model", plain_cpu, attn_cpu, bi_cpu);
    row("training loss, last 50 steps", plain_loss, attn_loss, bi_loss);
    row("token accuracy, " + lengths(lo, lo + 2), plain_short, attn_short, bi_short);
    row("token accuracy, " + lengths(top - 2, top), plain_long, attn_long, bi_long);
    row("whole sequences, " + lengths(top - 2, top), plain_exact_long, attn_exact_long, bi_exact_long);
    summary.row({"attention peak on mirror s = L-1-t", "-", "", on_all.median(), on_all.range(), bi_on.median(), bi_on.range()});
    summary.row({"attention peak on s + 1 = L-t", "-", "", after_all.median(), after_all.range(), bi_after.median(), bi_after.range()});
    summary.row({"attention peak within one of the mirror", "-", "", near_all.median(), near_all.range(), bi_near.median(),
                 bi_near.range()});
    summary.row({"largest weight of a row (mean)", "-", "", peak_all.median(), peak_all.range(), bi_peak.median(), bi_peak.range()});
    std::cout << "\n";
    summary.print();
    summary.save_markdown(args.path("report.md"), /*append=*/true);

    // 5b) The three scores side by side: accuracy against length, the loss, the cost of a step.
    struct ScoreRuns {
      nn::AttentionScore score;
      const std::vector<SeedRun>& runs;
    };
    const std::vector<ScoreRuns> by_score = {{nn::AttentionScore::additive, attn}, {nn::AttentionScore::dot, dot},
                                             {nn::AttentionScore::general, general}};
    lab::CurveLog score_csv(args.path("scores_vs_length.csv"),
                            {"additive_token", "additive_token_min", "dot_token", "dot_token_min", "general_token", "general_token_min",
                             "additive_exact", "dot_exact", "general_exact"},
                            "length");
    lab::Table score_table("", {"L", "additive: symbols", "range", "dot: symbols", "range", "general: symbols", "range"});
    for (int l = lo; l <= hi; ++l) {
      std::vector<double> row;
      for (const auto& [score, runs] : by_score) {
        const St t = reversal::at_length(runs, l, &LengthScore::token_acc);
        row.insert(row.end(), {t.median(), t.min()});
      }
      for (const auto& [score, runs] : by_score) row.push_back(reversal::at_length(runs, l, &LengthScore::exact_acc).median());
      score_csv.log(l, row);
      if (chapter_row(l)) {
        std::vector<lab::Cell> cells = {l};
        for (const auto& [score, runs] : by_score) {
          const St t = reversal::at_length(runs, l, &LengthScore::token_acc);
          cells.insert(cells.end(), {lab::Cell(t.median(), 3), t.range()});
        }
        score_table.row(cells);
      }
    }
    lab::plot(args.path("scores.png"),
              {{.csv = score_csv.path(), .y = "additive_token", .title = "additive (Bahdanau): symbols right" + of_n, .x = "length",
                .style = "linespoints lc rgb '#1f77b4' pt 7 ps 1.2", .width = 5},
               {.csv = score_csv.path(), .y = "dot_token", .title = "dot (Luong): symbols right" + of_n, .x = "length",
                .style = "linespoints lc rgb '#ff7f0e' pt 5 ps 1.0", .width = 2.5},
               {.csv = score_csv.path(), .y = "general_token", .title = "general (Luong): symbols right" + of_n, .x = "length",
                .style = "linespoints lc rgb '#2ca02c' pt 9 ps 1.0", .width = 1.5, .dash = 2},
               {.csv = score_csv.path(), .y = "dot_exact", .title = "dot: whole sequences right", .x = "length",
                .style = "linespoints lc rgb '#ff7f0e' pt 4 ps 0.8", .width = 1, .dash = 3},
               {.csv = score_csv.path(), .y = "general_exact", .title = "general: whole sequences right", .x = "length",
                .style = "linespoints lc rgb '#2ca02c' pt 8 ps 0.8", .width = 1, .dash = 3}},
              {.title = "Reversal with attention: the additive score against Luong's dot and general",
               .xlabel = "input length L",
               .ylabel = "accuracy (held-out, greedy decoding)",
               .ymin = 0.8, .ymax = 1.01,  // the differences are a few hundredths
               .xmin = lo - 1.0, .xmax = hi + 1.0,
               .key = "bottom left"});
    chapter.figure("scores.png");
    lab::Table score_summary("", {"score", "attention parameters", "training loss, last 50 steps", "range",
                                  "symbols right, " + lengths(top - 2, top), "range", "sequences right, " + lengths(top - 2, top)});
    lab::Table score_cost("", {"score", "ms per training step", "times additive"});
    std::map<nn::AttentionScore, St> score_long, score_loss;
    for (const auto& [score, runs] : by_score) {
      score_long[score] = reversal::mean_over(runs, top - 2, top, &LengthScore::token_acc);
      score_loss[score] = reversal::over_seeds(runs, final_loss);
      const St exact = reversal::mean_over(runs, top - 2, top, &LengthScore::exact_acc);
      score_summary.row({nn::score_name(score), long(runs.front().trained.model->attention->num_parameters()),
                         lab::Cell(score_loss[score].median(), 3), score_loss[score].range(), lab::Cell(score_long[score].median(), 3),
                         score_long[score].range(), lab::Cell(exact.median(), 3)});
      const St secs = reversal::over_seeds(runs, cpu);
      score_cost.row({nn::score_name(score), lab::Cell(ms_per_step(secs), 3), lab::Cell(secs.median() / attn_cpu.median(), 2)});
    }
    std::cout << "\nThe additive score against Luong's dot and general (medians over the seeds):\n";
    score_summary.print();
    score_cost.print();
    score_summary.save_markdown(args.path("report.md"), /*append=*/true);
    score_cost.save_markdown(args.path("report.md"), /*append=*/true);

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
    // The bidirectional encoder against one direction, paired by seed.
    std::size_t bi_learned = 0, bi_not_worse = 0, bi_on_self = 0, bi_lower_loss = 0;
    for (std::size_t k = 0; k < n; ++k) {
      bi_learned += bi_long.values[k] > 0.95;
      bi_not_worse += bi_long.values[k] >= attn_long.values[k] - kCeilingNoise;
      bi_on_self += bi_on.values[k] > 0.9 && bi_after.values[k] < 0.05;
      bi_lower_loss += bi_loss.values[k] < attn_loss.values[k];
    }
    // Exercise 4: lengths never trained on (max_len + 4 and + 8), the two attention models of each seed.
    const std::vector<int> unseen = {setup.max_len + 4, setup.max_len + 8};
    std::vector<St> unseen_uni(unseen.size()), unseen_bi(unseen.size()), unseen_bi_near(unseen.size());
    std::size_t bi_extrapolates = 0;  // seeds where the bidirectional model is ahead at every unseen length
    for (std::size_t k = 0; k < n; ++k) {
      bool ahead = true;
      for (std::size_t i = 0; i < unseen.size(); ++i) {
        const LengthScore u = reversal::score_length(*attn[k].trained.model, setup, unseen[i], attn[k].seed);
        const LengthScore b = reversal::score_length(*bi[k].trained.model, setup, unseen[i], bi[k].seed);
        unseen_uni[i].add(u.token_acc), unseen_bi[i].add(b.token_acc), unseen_bi_near[i].add(b.on_mirror);
        ahead = ahead && b.token_acc > u.token_acc;
      }
      bi_extrapolates += ahead;
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

    checks.expect(bi_learned == n, "with the bidirectional encoder, long sequences are learned too: token accuracy at " + long_Ls +
                                       " is above 0.95 in " + seeds_phrase(bi_learned, n) + ": " + bi_long.all());
    checks.expect(bi_not_worse == n, "at " + long_Ls + " the bidirectional encoder is at least as accurate as one direction (to within " +
                                         format_number(kCeilingNoise, 1) + ") in " +
                                         seeds_phrase(bi_not_worse, n) + ": " + mr(bi_long) + " vs " + mr(attn_long));
    checks.expect(bi_lower_loss == n, "the bidirectional model ends training with a lower loss than one direction in " +
                                          seeds_phrase(bi_lower_loss, n) + ": " + mr(bi_loss) + " vs " + mr(attn_loss));
    checks.expect(bi_on_self == n, "with the bidirectional encoder the shift is gone: more than 90% of the steps peak on s itself "
                                   "and fewer than 5% on s + 1 in " + seeds_phrase(bi_on_self, n) + ": " + mr(bi_on) + " vs " +
                                       mr(bi_after));
    checks.expect(bi_extrapolates == n, "beyond the trained lengths, at L = " + std::to_string(unseen[0]) + " and " +
                                            std::to_string(unseen[1]) + ", the bidirectional model is ahead of one direction in " +
                                            seeds_phrase(bi_extrapolates, n) + ": " + mr(unseen_bi[0]) + " vs " + mr(unseen_uni[0]) +
                                            ", " + mr(unseen_bi[1]) + " vs " + mr(unseen_uni[1]));
    checks.expect(10 * bi_rows_on >= 9 * L, "its heatmap shows it: at least 90% of the example's letter rows peak on the mirror "
                                            "itself: " + std::to_string(bi_rows_on) + " of " + std::to_string(L));

    // The scores, paired by seed at the longest trained lengths.
    std::size_t luong_learned = 0, additive_ahead = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const double a = score_long[nn::AttentionScore::additive].values[k], d = score_long[nn::AttentionScore::dot].values[k],
                   g = score_long[nn::AttentionScore::general].values[k];
      luong_learned += d > 0.9 && g > 0.9;
      additive_ahead += a > d && a > g;
    }
    const St& dot_long = score_long[nn::AttentionScore::dot];
    const St& general_long = score_long[nn::AttentionScore::general];
    checks.expect(luong_learned == n, "Luong's dot and general scores learn reversal too: token accuracy at " + long_Ls +
                                          " above 0.9 in " + seeds_phrase(luong_learned, n) + ": dot " + mr(dot_long) + ", general " +
                                          mr(general_long));
    if (!args.quick)  // after 200 steps on short sequences every score is at the ceiling
      checks.expect(attn_long.median() > dot_long.median() && attn_long.median() > general_long.median(),
                    "the additive score has the best median accuracy of the three at " + long_Ls + " (ahead of both in " +
                        seeds_phrase(additive_ahead, n) + "): " + mr(attn_long) + " vs dot " + mr(dot_long) + ", general " + mr(general_long));

    // 7) What the chapter quotes.
    chapter.text("setup", "The run below: " + reversal::describe(setup, args.seed) + ", for each model. The first three have " +
                              grouped(p_plain) + " (without attention), " + grouped(p_attn) + " (with attention) and " +
                              grouped(p_bi) + " parameters (with attention over the bidirectional encoder).");
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
    chapter.text("bi_setup", "It has " + grouped(p_bi - p_attn) +
                                 " parameters more than the one-direction model with attention: the backward GRU's " + grouped(p_reverse) +
                                 ", `W_s` and its bias " + grouped(p_init) + ", and " + grouped(p_bi - p_attn - p_reverse - p_init) +
                                 " for the wider inputs of `W_k`, the decoder cell and the output layer.");
    chapter.table("bi_accuracy", bi_table);
    {
      std::ostringstream s;
      // Over every seed and trained length: how many held-out symbols and sequences each kind got wrong.
      const auto wrong = [&](const std::vector<SeedRun>& runs, double LengthScore::*field, bool symbols) {
        long w = 0, total = 0;
        for (const auto& r : runs)
          for (const auto& sc : r.scores)
            if (sc.L <= top) {
              const long count = long(setup.eval_per_length) * (symbols ? sc.L : 1);
              w += std::lround((1 - sc.*field) * double(count)), total += count;
            }
        return std::pair{w, total};
      };
      const auto [bw, symbols_total] = wrong(bi, &LengthScore::token_acc, true);
      const long uw = wrong(attn, &LengthScore::token_acc, true).first;
      const auto [bsw, seq_total] = wrong(bi, &LengthScore::exact_acc, false);
      const long usw = wrong(attn, &LengthScore::exact_acc, false).first;
      s << "Over all " << n << " seeds and the lengths " << lo << " to " << top << " together, the held-out sets hold "
        << grouped(symbols_total) << " symbols in " << grouped(seq_total) << " sequences. The bidirectional models wrote "
        << grouped(bw) << " wrong symbols, and " << grouped(bsw) << " sequences came back not exactly right (a wrong or missing "
        << "end counts too); the one-direction models " << grouped(uw) << " and " << grouped(usw) << ". At " << long_Ls        << " the bidirectional model is at least as accurate as its one-direction twin (to within "
        << format_number(kCeilingNoise, 1) << ") in " << seeds_phrase(bi_not_worse, n)
        << ". Both are close to the ceiling, so accuracy cannot say much more; the training loss can: it ends at "
        << format_number(bi_loss.median(), 3) << " with two directions and " << format_number(attn_loss.median(), 3)
        << " with one (medians; ranges " << bi_loss.range() << " and " << attn_loss.range() << "), lower in "
        << seeds_phrase(bi_lower_loss, n) << ".";
      chapter.text("bi_reading", s.str());
    }
    chapter.text("bi_shift", "In " + seeds_phrase(bi_on_self, n) + ", the bidirectional model's steps peak on `s` itself: averaged over " +
                                 lengths(lo, top) + ", the medians over the seeds are " + format_number(bi_on.median(), 3) +
                                 " on `s` and " + format_number(bi_after.median(), 3) + " on `s + 1` (ranges " + bi_on.range() +
                                 " and " + bi_after.range() + "; one direction: " + format_number(on_all.median(), 3) + " and " +
                                 format_number(after_all.median(), 3) + "). The largest weight of a row averages " +
                                 format_number(bi_peak.median(), 3) + " (range " + bi_peak.range() + ", one direction " +
                                 format_number(peak_all.median(), 3) + "). In the example, " + std::to_string(bi_rows_on) +
                                 " of the " + std::to_string(L) + " letter rows peak on the mirror itself (one direction: " +
                                 std::to_string(uni_rows_on) + ") and " + std::to_string(bi_rows_sharp) +
                                 " put more than half of their weight on one cell (one direction: " + std::to_string(rows_sharp) + ").");
    {
      std::ostringstream s;
      s << "*Answer* (medians of the seeds, and their range): the bidirectional models hold up longer. Token accuracy at ";
      for (std::size_t i = 0; i < unseen.size(); ++i)
        s << (i ? " and at " : "") << "L = " << unseen[i] << " is " << reversal::median_range(unseen_bi[i])
          << " with two directions against " << reversal::median_range(unseen_uni[i]) << " with one";
      s << "; the bidirectional model is ahead at both lengths in " << seeds_phrase(bi_extrapolates, n)
        << ". Its weights peak on the mirror itself at " << format_number(unseen_bi_near[0].median(), 3) << " and "
        << format_number(unseen_bi_near[1].median(), 3) << " of the steps there (at the trained lengths: "
        << format_number(bi_on.median(), 3) << "). Its accuracy falls all the same, as the one-direction model's does in "
        << "exercise 2: no model has seen sequences that long.";
      chapter.text("exercise4", s.str());
    }
    chapter.text("bi_cpu", "Per Adam step of 64 sequences (medians over the seeds): " + format_number(ms_per_step(plain_cpu), 2) +
                               " ms without attention, " + format_number(ms_per_step(attn_cpu), 2) + " ms with attention, " +
                               format_number(ms_per_step(bi_cpu), 2) + " ms with attention over the bidirectional encoder, " +
                               format_number(bi_cpu.median() / attn_cpu.median(), 2) + " times the one-direction model's.",
                 lab::Timing::yes);
    chapter.table("scores", score_table);
    chapter.table("scores_summary", score_summary);
    chapter.text("scores_reading",
                 "At " + long_Ls + " the additive score gets " + format_number(attn_long.median(), 3) + " of the symbols right, dot " +
                     format_number(dot_long.median(), 3) + " and general " + format_number(general_long.median(), 3) +
                     " (medians over the seeds); the additive score is ahead of both in " + seeds_phrase(additive_ahead, n) +
                     ", and every score keeps above 0.9 in " + seeds_phrase(luong_learned, n) + ". Training ends at a loss of " +
                     format_number(score_loss[nn::AttentionScore::additive].median(), 3) + " (additive), " +
                     format_number(score_loss[nn::AttentionScore::dot].median(), 3) + " (dot) and " +
                     format_number(score_loss[nn::AttentionScore::general].median(), 3) + " (general).");
    chapter.table("scores_cost", score_cost, lab::Timing::yes);
    chapter.text("checks", reversal::checks_block(checks));
    return checks.report();
  });
}
