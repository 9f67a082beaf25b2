// Lesson 07: the encoder-decoder, and the bottleneck of its one fixed vector.
//
// An RNN encoder reads the input sequence into its last hidden state, H = 64 numbers; an RNN
// decoder writes the output from that vector alone (Sutskever et al. 2014; Cho et al. 2014).
// Trained to reverse sequences of 4 to 24 letters, the model is nearly perfect on short ones
// and fails on long ones: accuracy falls with length, because every symbol has to squeeze
// through the same 64 numbers. Lesson 08 runs the same experiment with attention.
//
// Writes into --out (default runs/07_encoder_decoder/):
//   loss.csv / .png                       training cross-entropy
//   accuracy_vs_length.csv / .png         per held-out length: token and whole-sequence accuracy
//   accuracy_by_position_L<L>.csv, accuracy_by_position.png   accuracy of each output step
//   report.md                             the tables
//
// The experiment itself (task, model, training loop, scoring) is reversal_experiment.hpp,
// shared with lesson 08 so both lessons run it identically.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "common/reversal_experiment.hpp"

namespace {

// One held-out example decoded: the input, what it should be, what the model wrote, and a ^
// under each wrong symbol.
void show_example(nn::Seq2Seq& model, const reversal::Setup& s, int L, std::uint64_t seed) {
  const lab::ReversalTask task = reversal::eval_task(s, L, seed);
  const lab::Seq2SeqBatch& ev = task.eval_set();
  const auto d = model.greedy_decode(ev.src, lab::BOS, std::size_t(L) + 1, lab::PAD);
  const lab::CharVocab& v = task.vocab();
  const std::string in = v.decode(ev.src, 0), want = v.decode(ev.dec_target, 0), got = v.decode(d.ids, 0);
  std::string marks;
  for (std::size_t i = 0; i < want.size(); ++i) marks += i < got.size() && got[i] == want[i] ? ' ' : '^';
  std::cout << "  L = " << L << "\n    input   " << in << "\n    target  " << want << "\n    output  " << got
            << "\n            " << marks << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("07_encoder_decoder", "RNN encoder-decoder without attention on sequence reversal: accuracy falls with length");
  reversal::SetupOptions options;
  options.add(cli.app());
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const reversal::Setup setup = options.setup(args);
    std::cout << "Sequence reversal, lengths " << setup.min_len << ".." << setup.max_len << ", " << setup.symbols
              << " symbols; GRU encoder-decoder without attention, H = " << setup.hidden << "; " << setup.steps
              << " Adam steps of batch " << setup.batch << "\n\n";

    // 1) Train: teacher forcing, cross-entropy on every output step (padding ignored).
    const reversal::Trained plain = reversal::train(setup, /*attention=*/false, args.seed, args.path("loss.csv"));

    // 2) Decode held-out sequences of each length greedily and score them.
    const std::vector<reversal::LengthScore> scores = reversal::score_by_length(*plain.model, setup, args.seed);
    lab::CurveLog acc(args.path("accuracy_vs_length.csv"), {"token_acc", "exact_acc"}, "length");
    for (const auto& r : scores) acc.log(r.L, {r.token_acc, r.exact_acc});

    // 3) Within one sequence: the accuracy of each output step, for a short, a middle and a long L.
    const int hi = setup.eval_max;
    std::vector<int> shown = {std::max(setup.eval_min, hi / 3), std::max(setup.eval_min, 2 * hi / 3), hi};
    shown.erase(std::unique(shown.begin(), shown.end()), shown.end());
    std::vector<lab::Series> position_series;
    for (int L : shown) {
      const std::string name = "accuracy_by_position_L" + std::to_string(L) + ".csv";
      lab::CurveLog pos(args.path(name), {"accuracy"}, "output_step");
      const auto& by_pos = scores[std::size_t(L - setup.eval_min)].by_position;
      for (std::size_t t = 0; t < by_pos.size(); ++t) pos.log(double(t + 1), {by_pos[t]});
      position_series.push_back({.csv = pos.path(), .y = "accuracy", .title = "L = " + std::to_string(L),
                                 .x = "output_step", .style = "linespoints"});
    }

    // 4) Plots: the loss, the key curve (accuracy vs length), accuracy along the output.
    lab::plot(args.path("loss.png"), lab::series(args.path("loss.csv"), {"loss"}),
              {.title = "Training loss (no attention)", .ylabel = "cross-entropy per symbol (mean of 25 steps)", .logy = true});
    const double chance = 1.0 / setup.symbols;
    const lab::PlotOptions acc_plot{.title = "Reversal without attention: accuracy vs input length",
                                    .xlabel = "input length L",
                                    .ylabel = "accuracy (held-out, greedy decoding)",
                                    .ymin = 0, .ymax = 1.15,  // headroom for the legend
                                    .xmin = setup.eval_min - 1.0, .xmax = hi + 1.0,
                                    .hlines = {{chance, "chance per symbol (1/" + std::to_string(setup.symbols) + ")"}}};
    const auto acc_series = std::vector<lab::Series>{
        {.csv = acc.path(), .y = "token_acc", .title = "symbols right", .x = "length", .style = "linespoints"},
        {.csv = acc.path(), .y = "exact_acc", .title = "whole sequence right", .x = "length", .style = "linespoints"}};
    lab::plot(args.path("accuracy_vs_length.png"), acc_series, acc_plot);
    lab::plot(args.path("accuracy_by_position.png"), position_series,
              {.title = "Accuracy of each output step (output step 1 = the last input symbol)",
               .xlabel = "output step t", .ylabel = "accuracy (held-out)", .ymin = 0, .ymax = 1.15,
               .hlines = {{chance, "chance"}}});

    // 5) What the model writes, and the figures.
    std::cout << "\nHeld-out examples (greedy decoding):\n";
    for (int L : shown) show_example(*plain.model, setup, L, args.seed);

    lab::Table table("Reversal without attention: held-out accuracy by input length (" +
                         std::to_string(setup.eval_per_length) + " sequences each)",
                     {"L", "symbols right", "whole sequence right"});
    for (const auto& r : scores) table.row({r.L, r.token_acc, r.exact_acc});
    std::cout << "\n";
    table.print();
    table.save_markdown(args.path("report.md"));

    // The claims are about the lengths it was trained on (--eval-max may reach beyond them).
    const int lo = setup.eval_min, top = std::min(hi, setup.max_len);
    const double short_acc = reversal::mean_over(scores, lo, lo + 2, &reversal::LengthScore::token_acc);
    const double long_acc = reversal::mean_over(scores, top - 2, top, &reversal::LengthScore::token_acc);
    const int mid = (lo + top) / 2;
    const double mid_acc = reversal::mean_over(scores, mid - 1, mid + 1, &reversal::LengthScore::token_acc);
    const auto& longest = scores[std::size_t(top - lo)].by_position;
    double first_half = 0, second_half = 0;
    const std::size_t half = longest.size() / 2;
    for (std::size_t t = 0; t < longest.size(); ++t) (t < half ? first_half : second_half) += longest[t];
    first_half /= double(half), second_half /= double(longest.size() - half);

    lab::Table summary("Summary", {"figure", "value"});
    summary.row({"training time (s)", plain.seconds});
    summary.row({"final training loss", plain.final_loss});
    summary.row({"token accuracy, L = " + std::to_string(lo) + ".." + std::to_string(lo + 2), short_acc});
    summary.row({"token accuracy, L = " + std::to_string(mid - 1) + ".." + std::to_string(mid + 1), mid_acc});
    summary.row({"token accuracy, L = " + std::to_string(top - 2) + ".." + std::to_string(top), long_acc});
    summary.row({"L = " + std::to_string(top) + ": accuracy, first half of the output", first_half});
    summary.row({"L = " + std::to_string(top) + ": accuracy, second half of the output", second_half});
    std::cout << "\n";
    summary.print();
    summary.save_markdown(args.path("report.md"), /*append=*/true);

    std::cout << "\n";
    lab::PlotOptions term_plot = acc_plot;
    term_plot.ymax = 1.5;  // a terminal plot's legend takes more of the height
    lab::plot_terminal(acc_series, term_plot);
    std::cout << "Plots and CSV in " << args.out.string() << "/\n";

    // 6) The claims of the lesson.
    lab::Checks checks;
    checks.expect(short_acc > 0.8, "short sequences are learned: token accuracy at L = " + std::to_string(lo) + ".." +
                                       std::to_string(lo + 2) + " is " + lab::format_number(short_acc) + " > 0.8");
    checks.expect(short_acc > mid_acc && mid_acc > long_acc,
                  "accuracy falls with length: short " + lab::format_number(short_acc) + " > middle " +
                      lab::format_number(mid_acc) + " > long " + lab::format_number(long_acc));
    checks.expect(short_acc - long_acc > 0.25, "the longest sequences lose more than 0.25 of token accuracy (" +
                                                   lab::format_number(short_acc - long_acc) + ")");
    checks.expect(first_half > second_half, "at L = " + std::to_string(top) + ", the first half of the output (" +
                                                lab::format_number(first_half) + ") is more accurate than the second (" +
                                                lab::format_number(second_half) + ")");
    return checks.report();
  });
}
