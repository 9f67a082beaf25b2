// Lesson 08: Bahdanau (additive) attention removes the bottleneck of lesson 07.
//
// The same reversal task, data, seed, optimizer and step budget as lesson 07, run twice: the GRU
// encoder-decoder without attention (lesson 07's model, trained here again so the comparison
// needs no earlier run) and with additive attention (Bahdanau, Cho & Bengio 2015). At every
// output step the attentive decoder looks back at all encoder states and takes a weighted
// average of them; accuracy hardly depends on length any more, and the weights, drawn as a
// matrix, show where it looked: for reversal, the anti-diagonal.
//
// Writes into --out (default runs/08_bahdanau/):
//   loss.png (loss_plain.csv, loss_attention.csv)   training cross-entropy of both models
//   accuracy_vs_length.csv / .png                  per held-out length, both models side by side
//   alignment.csv / .png                           the attention weights of one held-out example
//   report.md                                      the tables
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "common/reversal_experiment.hpp"

namespace {

// A token as a tick label: the letter, or <eos>.
std::string token(const lab::CharVocab& v, std::int64_t id) {
  return id == lab::EOS ? "<eos>" : id == lab::PAD ? "<pad>" : id == lab::BOS ? "<bos>" : std::string(1, v.ch(id));
}

// The weights a [T, S] in the terminal: one row per output token, one character per source
// token, darker = more weight.
void print_alignment(const std::vector<double>& a, std::size_t T, std::size_t S, const std::vector<std::string>& out,
                     const std::vector<std::string>& src) {
  const std::string shades = " .:-=+*#%@";
  std::cout << "          source: ";
  for (const auto& s : src) std::cout << s;
  std::cout << "\n";
  for (std::size_t t = 0; t < T; ++t) {
    std::string row;
    for (std::size_t s = 0; s < S; ++s) row += shades[std::min<std::size_t>(9, std::size_t(a[t * S + s] * 10))];
    std::cout << "  output " << std::string(6 - std::min<std::size_t>(6, out[t].size()), ' ') << out[t] << "  |" << row
              << "|\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("08_bahdanau", "Bahdanau attention on sequence reversal: accuracy vs length beside lesson 07, and the alignment");
  reversal::SetupOptions options;
  options.add(cli.app());
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const reversal::Setup setup = options.setup(args);
    std::cout << "Sequence reversal, lengths " << setup.min_len << ".." << setup.max_len << ", " << setup.symbols
              << " symbols; GRU encoder-decoder, H = " << setup.hidden << ", without and with attention; "
              << setup.steps << " Adam steps of batch " << setup.batch << " each\n\n";

    // 1) Train both models with the same seed: the same batches, the same initial embeddings and encoder.
    const reversal::Trained plain = reversal::train(setup, /*attention=*/false, args.seed, args.path("loss_plain.csv"));
    const reversal::Trained attn = reversal::train(setup, /*attention=*/true, args.seed, args.path("loss_attention.csv"));

    // 2) Score both on the same held-out sequences of each length.
    const auto plain_scores = reversal::score_by_length(*plain.model, setup, args.seed);
    const auto attn_scores = reversal::score_by_length(*attn.model, setup, args.seed);
    lab::CurveLog acc(args.path("accuracy_vs_length.csv"),
                      {"plain_token", "plain_exact", "attention_token", "attention_exact", "attention_on_mirror",
                       "attention_after_mirror", "attention_near_mirror"},
                      "length");
    for (std::size_t i = 0; i < attn_scores.size(); ++i) {
      const auto &p = plain_scores[i], &a = attn_scores[i];
      acc.log(a.L, {p.token_acc, p.exact_acc, a.token_acc, a.exact_acc, a.on_mirror, a.after_mirror, a.near_mirror});
    }

    // 3) One held-out example, decoded with attention: its weights a [T, S] (T = L + 1 with <eos>).
    const int L = std::min(16, setup.eval_max);
    const lab::ReversalTask example_task = reversal::eval_task(setup, L, args.seed);
    const lab::Seq2SeqBatch& ex = example_task.eval_set();
    const auto decoded = attn.model->greedy_decode(ex.src, lab::BOS, std::size_t(L) + 1, lab::PAD);
    const ag::Tensor alignment = ag::select(decoded.attention, 0, 0);  // [T, S], example 0
    const lab::CharVocab& vocab = example_task.vocab();
    std::vector<std::string> src_tokens, out_tokens;
    for (int s = 0; s < L; ++s) src_tokens.push_back(token(vocab, ex.src.values[std::size_t(s)]));
    for (int t = 0; t <= L; ++t) out_tokens.push_back(token(vocab, decoded.ids.values[std::size_t(t)]));

    // 4) Plots: the loss of both models, accuracy vs length side by side, the alignment heatmap.
    lab::plot(args.path("loss.png"),
              {{.csv = args.path("loss_plain.csv"), .y = "loss", .title = "without attention (lesson 07)"},
               {.csv = args.path("loss_attention.csv"), .y = "loss", .title = "with attention"}},
              {.title = "Training loss, same data and budget", .ylabel = "cross-entropy per symbol (mean of 25 steps)",
               .logy = true});
    const lab::PlotOptions acc_plot{.title = "Reversal: accuracy vs input length, with and without attention",
                                    .xlabel = "input length L",
                                    .ylabel = "accuracy (held-out, greedy decoding)",
                                    .ymin = 0, .ymax = 1.3,  // headroom for the legend
                                    .xmin = setup.eval_min - 1.0, .xmax = setup.eval_max + 1.0};
    const std::vector<lab::Series> acc_series = {
        {.csv = acc.path(), .y = "attention_token", .title = "attention: symbols right", .x = "length", .style = "linespoints"},
        {.csv = acc.path(), .y = "attention_exact", .title = "attention: whole sequence right", .x = "length", .style = "linespoints"},
        {.csv = acc.path(), .y = "plain_token", .title = "no attention (07): symbols right", .x = "length", .style = "linespoints"},
        {.csv = acc.path(), .y = "plain_exact", .title = "no attention (07): whole sequence right", .x = "length", .style = "linespoints"}};
    lab::plot(args.path("accuracy_vs_length.png"), acc_series, acc_plot);
    lab::heatmap(args.path("alignment.png"), alignment,
                 {.title = "Attention weights of one held-out sequence (L = " + std::to_string(L) + ")",
                  .xlabel = "source (input) token s",
                  .ylabel = "output token t (greedy decoding)",
                  .xticks = src_tokens,
                  .yticks = out_tokens,
                  .zmin = 0, .zmax = 1,
                  .width = 700, .height = 700});

    // 5) What it printed, and where it looked.
    std::cout << "\nOne held-out example (L = " << L << ")\n  input   " << vocab.decode(ex.src, 0) << "\n  target  "
              << vocab.decode(ex.dec_target, 0) << "\n  output  " << vocab.decode(decoded.ids, 0)
              << "\n\nIts attention weights (rows: output steps; columns: source tokens; darker = more weight):\n";
    print_alignment(alignment.to_vector(), std::size_t(L) + 1, std::size_t(L), out_tokens, src_tokens);

    lab::Table table("Held-out accuracy by input length (" + std::to_string(setup.eval_per_length) +
                         " sequences each); attention peak vs the mirrored source position s = L-1-t",
                     {"L", "no attn: symbols", "no attn: sequences", "attn: symbols", "attn: sequences",
                      "peak on s", "peak on s+1", "peak within 1"});
    for (std::size_t i = 0; i < attn_scores.size(); ++i) {
      const auto &p = plain_scores[i], &a = attn_scores[i];
      table.row({a.L, p.token_acc, p.exact_acc, a.token_acc, a.exact_acc, a.on_mirror, a.after_mirror, a.near_mirror});
    }
    std::cout << "\n";
    table.print();
    table.save_markdown(args.path("report.md"));

    using reversal::LengthScore, reversal::mean_over;
    // The claims are about the lengths it was trained on (--eval-max may reach beyond them).
    const int lo = setup.eval_min, hi = std::min(setup.eval_max, setup.max_len);
    const double attn_short = mean_over(attn_scores, lo, lo + 2, &LengthScore::token_acc);
    const double attn_long = mean_over(attn_scores, hi - 2, hi, &LengthScore::token_acc);
    const double plain_short = mean_over(plain_scores, lo, lo + 2, &LengthScore::token_acc);
    const double plain_long = mean_over(plain_scores, hi - 2, hi, &LengthScore::token_acc);
    const double near = mean_over(attn_scores, lo, hi, &LengthScore::near_mirror);
    const double on = mean_over(attn_scores, lo, hi, &LengthScore::on_mirror);
    const double after = mean_over(attn_scores, lo, hi, &LengthScore::after_mirror);

    const std::string short_Ls = "L = " + std::to_string(lo) + ".." + std::to_string(lo + 2);
    const std::string long_Ls = "L = " + std::to_string(hi - 2) + ".." + std::to_string(hi);
    lab::Table summary("Summary", {"figure", "without attention", "with attention"});
    summary.row({"parameters", long(plain.model->num_parameters()), long(attn.model->num_parameters())});
    summary.row({"training time (s)", plain.seconds, attn.seconds});
    summary.row({"final training loss", plain.final_loss, attn.final_loss});
    summary.row({"token accuracy, " + short_Ls, plain_short, attn_short});
    summary.row({"token accuracy, " + long_Ls, plain_long, attn_long});
    summary.row({"attention peak on mirror s = L-1-t", "-", on});
    summary.row({"attention peak on s + 1 = L-t", "-", after});
    summary.row({"attention peak within one of the mirror", "-", near});
    std::cout << "\n";
    summary.print();
    summary.save_markdown(args.path("report.md"), /*append=*/true);

    std::cout << "\n";
    lab::PlotOptions term_plot = acc_plot;
    term_plot.ymax = 1.5;  // a terminal plot's legend takes more of the height
    lab::plot_terminal({acc_series[0], acc_series[2]}, term_plot);
    std::cout << "Plots and CSV in " << args.out.string() << "/ (the alignment heatmap: alignment.png)\n";

    // 6) The claims of the lesson.
    lab::Checks checks;
    checks.expect(attn_long > 0.85, "with attention, long sequences are learned: token accuracy at " + long_Ls + " is " +
                                        lab::format_number(attn_long) + " > 0.85");
    checks.expect(attn_long - plain_long > 0.3, "at " + long_Ls + " attention beats no attention by more than 0.3 (" +
                                                    lab::format_number(attn_long) + " vs " +
                                                    lab::format_number(plain_long) + ")");
    checks.expect(attn_short - attn_long < 0.1, "with attention, accuracy hardly falls with length: " +
                                                    lab::format_number(attn_short) + " at " + short_Ls + ", " +
                                                    lab::format_number(attn_long) + " at " + long_Ls);
    checks.expect(near > 0.9, "the alignment is the anti-diagonal: for " + lab::format_number(100 * near) +
                                  "% (> 90%) of output steps t the attention peaks within one position of s = L-1-t");
    return checks.report();
  });
}
