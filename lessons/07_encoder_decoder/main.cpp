// Lesson 07: the encoder-decoder, and the bottleneck of its one fixed vector.
//
// An RNN encoder reads the input sequence into its last hidden state, H = 64 numbers; an RNN
// decoder writes the output from that vector alone (Sutskever et al. 2014; Cho et al. 2014).
// Trained to reverse sequences of 4 to 24 letters, the model is nearly perfect on short ones
// and fails on long ones: accuracy falls with length, because every symbol has to squeeze
// through the same 64 numbers. Five models (seeds 0 to 4) are trained, and every claim is
// read from all five. Lesson 08 runs the same experiment with attention.
//
// Writes into --out (default runs/07_encoder_decoder/):
//   loss_seed<k>.csv, loss.png                  training cross-entropy of each seed
//   accuracy_vs_length.csv / .png               per held-out length: median and range over the seeds
//   accuracy_vs_length_seeds.csv                the same, one row per seed and length
//   accuracy_by_position_L<L>.csv, accuracy_by_position.png   accuracy of each output step
//   report.md                                   the tables
//   chapter/                                    what the chapter (README.md) quotes
//
// The experiment itself (task, model, training loop, scoring) is common/reversal_experiment.hpp,
// shared with lesson 08 so both lessons run it identically.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/reversal_experiment.hpp"

namespace {

using reversal::LengthScore, reversal::SeedRun, reversal::median_range, reversal::seeds_phrase;
using lab::format_number;

// One held-out example decoded: the input, what it should be, what the model wrote, and a ^
// under each wrong symbol.
std::string example(nn::Seq2Seq& model, const reversal::Setup& s, int L, std::uint64_t seed) {
  const lab::ReversalTask task = reversal::eval_task(s, L, seed);
  const lab::Seq2SeqBatch& ev = task.eval_set();
  const auto d = model.greedy_decode(ev.src, lab::BOS, std::size_t(L) + 1, lab::PAD);
  const lab::CharVocab& v = task.vocab();
  const std::string in = v.decode(ev.src, 0), want = v.decode(ev.dec_target, 0), got = v.decode(d.ids, 0);
  std::string marks;
  for (std::size_t i = 0; i < want.size(); ++i) marks += i < got.size() && got[i] == want[i] ? ' ' : '^';
  while (!marks.empty() && marks.back() == ' ') marks.pop_back();
  if (marks.empty()) marks = "(no mistakes)";
  return "  L = " + std::to_string(L) + "\n    input   " + in + "\n    target  " + want + "\n    output  " + got +
         "\n            " + marks + "\n";
}

// "L = 4..6"
std::string lengths(int a, int b) { return "L = " + std::to_string(a) + ".." + std::to_string(b); }

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("07_encoder_decoder", "RNN encoder-decoder without attention on sequence reversal: accuracy falls with length");
  const reversal::Setup normal = reversal::Setup::full(), quick = reversal::Setup::quick(3, 300);
  cli.steps_help("Adam steps per model (per seed), one batch of 64 sequences each (default " +
                 std::to_string(normal.steps) + "; --quick " + std::to_string(quick.steps) + ")");
  reversal::SetupOptions options;
  options.add(cli.app(), normal, quick);
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const reversal::Setup setup = options.setup(args, args.quick ? quick : normal);
    const lab::Chapter chapter(args);
    std::cout << "Sequence reversal with a GRU encoder-decoder without attention: " << reversal::describe(setup, args.seed)
              << "\n\n";

    // 1) Train one model per seed (teacher forcing, cross-entropy on every output step, padding
    //    ignored); decode the held-out sequences of every length greedily and score them.
    const std::vector<SeedRun> runs = reversal::train_seeds(setup, /*attention=*/false, args, "loss");
    const std::size_t n = runs.size();
    const int lo = setup.eval_min, hi = setup.eval_max;
    nn::Seq2Seq& shown_model = *runs.front().trained.model;  // seed args.seed: the examples

    // 2) Accuracy against length: every seed, and the median and range of the seeds.
    lab::CurveLog each(args.path("accuracy_vs_length_seeds.csv"), {"seed", "token_acc", "exact_acc", "letters_acc", "letters_other"},
                       "length");
    for (const auto& r : runs)
      for (const auto& sc : r.scores) each.log(sc.L, {double(r.seed), sc.token_acc, sc.exact_acc, sc.letters_acc, sc.letters_other});
    lab::CurveLog acc(args.path("accuracy_vs_length.csv"),
                      {"token_median", "token_min", "token_max", "exact_median", "exact_min", "exact_max", "letters_median",
                       "letters_other_median"},
                      "length");
    lab::Table table("Reversal without attention: held-out accuracy by input length (" +
                         std::to_string(setup.eval_per_length) + " sequences per length and seed; median and range over " +
                         std::to_string(n) + " seeds)",
                     {"L", "symbols right", "range", "whole sequence right", "range", "letters, any order", "unrelated input"});
    lab::Table chapter_table("", {"L", "symbols right", "range over seeds", "whole sequence right", "range over seeds"});
    for (int L = lo; L <= hi; ++L) {
      const auto tok = reversal::at_length(runs, L, &LengthScore::token_acc);
      const auto ex = reversal::at_length(runs, L, &LengthScore::exact_acc);
      const auto let = reversal::at_length(runs, L, &LengthScore::letters_acc);
      const auto other = reversal::at_length(runs, L, &LengthScore::letters_other);
      acc.log(L, {tok.median(), tok.min(), tok.max(), ex.median(), ex.min(), ex.max(), let.median(), other.median()});
      table.row({L, tok.median(), tok.range(), ex.median(), ex.range(), let.median(), other.median()});
      if ((L <= 12 && (L - lo) % 2 == 0) || L % 4 == 0 || L == hi)
        chapter_table.row({L, lab::Cell(tok.median(), 3), tok.range(), lab::Cell(ex.median(), 3), ex.range()});
    }

    // 3) Within one sequence: the accuracy of each output step, for a short, a middle and a long L.
    std::vector<int> shown = {std::max(lo, hi / 3), std::max(lo, 2 * hi / 3), hi};
    shown.erase(std::unique(shown.begin(), shown.end()), shown.end());
    std::vector<lab::Series> position_series;
    for (int L : shown) {
      const std::string name = "accuracy_by_position_L" + std::to_string(L) + ".csv";
      lab::CurveLog pos(args.path(name), {"median", "min", "max"}, "output_step");
      for (int t = 0; t < L; ++t) {
        const auto st = reversal::over_seeds(runs, [&](const SeedRun& r) { return reversal::at(r.scores, L).by_position[t]; });
        pos.log(double(t + 1), {st.median(), st.min(), st.max()});
      }
      position_series.push_back({.csv = pos.path(), .y = "median",
                                 .title = "L = " + std::to_string(L) + " (median of " + std::to_string(n) + " seeds)",
                                 .x = "output_step", .style = "linespoints"});
    }

    // 4) Plots: the loss of each seed, the key curve (accuracy vs length), accuracy along the output.
    std::vector<lab::Series> loss_series;
    for (const auto& r : runs)
      loss_series.push_back({.csv = args.path("loss_seed" + std::to_string(r.seed) + ".csv"), .y = "loss",
                             .title = "seed " + std::to_string(r.seed), .width = 1.5});
    lab::plot(args.path("loss.png"), loss_series,
              {.title = "Training loss (no attention), one curve per seed", .ylabel = "cross-entropy per symbol (mean of 25 steps)", .logy = true});
    const double chance = 1.0 / setup.symbols;
    const std::string of_n = " (median of " + std::to_string(n) + " seeds)";
    const lab::PlotOptions acc_plot{.title = "Reversal without attention: accuracy vs input length",
                                    .xlabel = "input length L",
                                    .ylabel = "accuracy (held-out, greedy decoding)",
                                    .ymin = 0, .ymax = 1.05,
                                    .xmin = lo - 1.0, .xmax = hi + 1.0,
                                    .hlines = {{chance, "chance per symbol (1/" + std::to_string(setup.symbols) + ")"}},
                                    .key = "below",  // the curves fill the plot: the legend goes under it
                                    .height = 620};
    const std::vector<lab::Series> acc_series = {
        {.csv = acc.path(), .y = "token_median", .title = "symbols right" + of_n, .x = "length",
         .style = "linespoints lc rgb '#1f77b4' pt 7 ps 0.8"},
        {.csv = each.path(), .y = "token_acc", .title = "symbols right, each seed", .x = "length",
         .style = "points lc rgb '#1f77b4' pt 1 ps 0.8", .width = 1},
        {.csv = acc.path(), .y = "letters_median", .title = "letters present in any order" + of_n, .x = "length",
         .style = "linespoints lc rgb '#2ca02c' pt 4 ps 0.8", .dash = 2},
        {.csv = acc.path(), .y = "letters_other_median", .title = "letters shared with an unrelated input" + of_n,
         .x = "length", .style = "lines lc rgb '#2ca02c'", .width = 1.5, .dash = 3},
        {.csv = acc.path(), .y = "exact_median", .title = "whole sequence right" + of_n, .x = "length",
         .style = "linespoints lc rgb '#d62728' pt 5 ps 0.8"},
        {.csv = each.path(), .y = "exact_acc", .title = "whole sequence right, each seed", .x = "length",
         .style = "points lc rgb '#d62728' pt 2 ps 0.8", .width = 1}};
    lab::plot(args.path("accuracy_vs_length.png"), acc_series, acc_plot);
    lab::plot(args.path("accuracy_by_position.png"), position_series,
              {.title = "Accuracy of each output step (output step 1 = the last input symbol)",
               .xlabel = "output step t", .ylabel = "accuracy (held-out)", .ymin = 0, .ymax = 1.15,
               .hlines = {{chance, "chance"}}});
    chapter.figure("accuracy_vs_length.png");
    chapter.figure("accuracy_by_position.png");

    // 5) What the model writes (seed args.seed), and the tables.
    std::string examples;
    for (int L : shown) examples += example(shown_model, setup, L, args.seed);
    std::cout << "\nHeld-out examples of seed " << args.seed << " (greedy decoding; ^ marks a wrong symbol):\n"
              << examples << "\n";
    table.print();
    table.save_markdown(args.path("report.md"));

    // The claims are about the lengths it was trained on (--eval-max may reach beyond them).
    const int top = std::min(hi, setup.max_len), mid = (lo + top) / 2;
    const auto short_acc = reversal::mean_over(runs, lo, lo + 2, &LengthScore::token_acc);
    const auto mid_acc = reversal::mean_over(runs, mid - 1, mid + 1, &LengthScore::token_acc);
    const auto long_acc = reversal::mean_over(runs, top - 2, top, &LengthScore::token_acc);
    const auto long_exact = reversal::mean_over(runs, top - 2, top, &LengthScore::exact_acc);
    const auto long_letters = reversal::mean_over(runs, top - 2, top, &LengthScore::letters_acc);
    const auto long_other = reversal::mean_over(runs, top - 2, top, &LengthScore::letters_other);
    // Along the output of the longest trained length: step 1, the two halves.
    const auto by_pos = [&](const SeedRun& r) -> const std::vector<double>& { return reversal::at(r.scores, top).by_position; };
    const std::size_t half = std::size_t(top) / 2;
    const auto step1 = reversal::over_seeds(runs, [&](const SeedRun& r) { return by_pos(r)[0]; });
    const auto first_half = reversal::over_seeds(runs, [&](const SeedRun& r) {
      const auto& p = by_pos(r);
      double s = 0;
      for (std::size_t t = 0; t < half; ++t) s += p[t];
      return s / double(half);
    });
    const auto second_half = reversal::over_seeds(runs, [&](const SeedRun& r) {
      const auto& p = by_pos(r);
      double s = 0;
      for (std::size_t t = half; t < p.size(); ++t) s += p[t];
      return s / double(p.size() - half);
    });
    std::size_t step1_best = 0, halves_ok = 0, falls = 0, letters_ahead = 0, short_learned = 0, exact_low = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const auto& p = by_pos(runs[k]);
      step1_best += std::max_element(p.begin(), p.end()) == p.begin();
      halves_ok += first_half.values[k] > second_half.values[k];
      falls += short_acc.values[k] > mid_acc.values[k] && mid_acc.values[k] > long_acc.values[k];
      letters_ahead += long_letters.values[k] > long_other.values[k] + 0.1;
      short_learned += short_acc.values[k] > 0.9;
      exact_low += long_exact.values[k] < 0.5 * long_acc.values[k];
    }
    // Exercise 3: are the mistakes independent? A whole sequence would then be right with p^L.
    // Tested where mistakes are common (p near 1 tests nothing): at the first lengths where the
    // median token accuracy falls below 0.9 and below 0.8.
    const auto first_below = [&](double level) {
      for (int L = lo; L <= top; ++L)
        if (reversal::at_length(runs, L, &LengthScore::token_acc).median() < level) return L;
      return top;
    };
    std::vector<int> bunch_Ls = {first_below(0.9), first_below(0.8)};
    if (bunch_Ls[1] <= bunch_Ls[0]) bunch_Ls[1] = std::min(top, bunch_Ls[0] + 1);
    if (bunch_Ls[1] <= bunch_Ls[0]) bunch_Ls[0] = std::max(lo, bunch_Ls[1] - 1);
    std::size_t bunched = 0;
    for (const auto& r : runs) {
      bool all = true;
      for (int L : bunch_Ls) all = all && reversal::at(r.scores, L).exact_acc > std::pow(reversal::at(r.scores, L).token_acc, L);
      bunched += all;
    }

    lab::Table summary("Summary (median and range over " + std::to_string(n) + " seeds)", {"figure", "median", "range"});
    const auto sum_row = [&](const std::string& what, const lab::SeedStats& st) { summary.row({what, st.median(), st.range()}); };
    const auto final_loss = reversal::over_seeds(runs, [](const SeedRun& r) { return r.trained.final_loss; });
    const auto first_loss = reversal::over_seeds(runs, [](const SeedRun& r) { return r.trained.first_loss; });
    const auto cpu = reversal::over_seeds(runs, [](const SeedRun& r) { return r.trained.cpu_seconds; });
    sum_row("training loss, first 25 steps", first_loss);
    sum_row("training loss, last 50 steps", final_loss);
    sum_row("token accuracy, " + lengths(lo, lo + 2), short_acc);
    sum_row("token accuracy, " + lengths(mid - 1, mid + 1), mid_acc);
    sum_row("token accuracy, " + lengths(top - 2, top), long_acc);
    sum_row("letters in any order, " + lengths(top - 2, top), long_letters);
    sum_row("the same, against an unrelated input", long_other);
    sum_row("whole sequences, " + lengths(top - 2, top), long_exact);
    sum_row("L = " + std::to_string(top) + ": accuracy of output step 1", step1);
    sum_row("L = " + std::to_string(top) + ": accuracy, first half of the output", first_half);
    sum_row("L = " + std::to_string(top) + ": accuracy, second half of the output", second_half);
    sum_row("training CPU seconds per model", cpu);
    std::cout << "\n";
    summary.print();
    summary.save_markdown(args.path("report.md"), /*append=*/true);

    std::cout << "\n";
    lab::PlotOptions term_plot = acc_plot;
    term_plot.ymax = 1.1;
    lab::plot_terminal({acc_series[0], acc_series[4]}, term_plot);
    std::cout << "Plots and CSV in " << args.out.string() << "/\n";

    // 6) The claims of the lesson, over every seed. Each line ends with the medians it compares
    //    and, in brackets, their range over the seeds.
    const auto mr = [](const lab::SeedStats& st) { return format_number(st.median(), 3) + " [" + st.range() + "]"; };
    const std::string at_long = "at " + lengths(top - 2, top), at_top = "at L = " + std::to_string(top);
    lab::Checks checks;
    checks.expect(short_learned == n, "short sequences are learned: token accuracy at " + lengths(lo, lo + 2) +
                                          " is above 0.9 in " + seeds_phrase(short_learned, n) + ": " + short_acc.all());
    checks.expect(falls == n, "accuracy falls with length, short > middle > long, in " + seeds_phrase(falls, n) + ": " +
                                  mr(short_acc) + " > " + mr(mid_acc) + " > " + mr(long_acc));
    checks.expect(exact_low == n, "whole sequences fall faster: " + at_long +
                                      " fewer than half as many sequences are entirely right as symbols are right, in " +
                                      seeds_phrase(exact_low, n) + ": " + mr(long_exact) + " vs " + mr(long_acc));
    checks.expect(letters_ahead == n, at_long + ", the output shares more of its letters (in any order) with its own input "
                                                "than with an unrelated one, by > 0.1, in " +
                                          seeds_phrase(letters_ahead, n) + ": " + mr(long_letters) + " vs " + mr(long_other));
    checks.expect(step1_best == n, at_top + ", output step 1 (the last symbol read) is the most accurate step in " +
                                       seeds_phrase(step1_best, n) + ": " + mr(step1));
    checks.expect(halves_ok == n, at_top + ", the first half of the output is more accurate than the second in " +
                                      seeds_phrase(halves_ok, n) + ": " + mr(first_half) + " vs " + mr(second_half));
    checks.expect(bunched == n, "mistakes bunch up: at L = " + std::to_string(bunch_Ls[0]) + " and " +
                                    std::to_string(bunch_Ls[1]) +
                                    " (where the median p first falls below 0.9 and 0.8) more sequences are entirely right "
                                    "than p^L (p = token accuracy) predicts, in " + seeds_phrase(bunched, n));

    // 7) What the chapter quotes.
    chapter.text("setup", "The run below: " + reversal::describe(setup, args.seed) + ". The model has " +
                              reversal::grouped(long(shown_model.num_parameters())) + " parameters.");
    chapter.text("first_loss", "The run's first logged value, the mean loss over steps 1 to 25, is " +
                                   format_number(first_loss.median(), 3) + " (median over the seeds; range " +
                                   first_loss.range() + ").");
    chapter.table("accuracy", chapter_table);
    chapter.text("examples", "```\n" + examples + "```");
    {
      // The longest L up to which the median seed gets at least 95% of the symbols right.
      int good = lo - 1;
      for (int L = lo; L <= top && reversal::at_length(runs, L, &LengthScore::token_acc).median() >= 0.95; ++L) good = L;
      int half_exact = lo - 1;  // ... and at least half of the sequences
      for (int L = lo; L <= top && reversal::at_length(runs, L, &LengthScore::exact_acc).median() >= 0.5; ++L) half_exact = L;
      int none_from = top + 1;  // from this L on, no seed gets more than 1% of the sequences right
      while (none_from > lo && reversal::at_length(runs, none_from - 1, &LengthScore::exact_acc).max() <= 0.01) --none_from;
      std::ostringstream s;
      s << "In the median seed, at least 95% of the symbols come back right ";
      if (good >= lo) s << "up to L = " << good << ". ";
      else s << "at no length. ";
      s << "After that the model loses ground steadily: ";
      for (std::size_t i = 0; i < shown.size(); ++i)
        s << (i == 0 ? "" : i + 1 == shown.size() ? " and " : ", ")
          << format_number(reversal::at_length(runs, shown[i], &LengthScore::token_acc).median(), 3)
          << (i == 0 ? " of the symbols" : "") << " at L = " << shown[i];
      s << ", where chance is " << format_number(chance, 2) << ". This holds in " << seeds_phrase(falls, n)
        << ": the mean token accuracy over " << lengths(lo, lo + 2) << ", " << lengths(mid - 1, mid + 1) << " and "
        << lengths(top - 2, top) << " is, as medians with the range over the seeds in parentheses, " << median_range(short_acc)
        << ", " << median_range(mid_acc) << " and " << median_range(long_acc) << ". Whole sequences fall much faster: ";
      if (half_exact >= lo) s << "at least half of them come back exactly right up to L = " << half_exact;
      else s << "fewer than half come back exactly right at every length";
      if (none_from <= top) s << ", and from L = " << none_from << " on no seed gets more than 1% of them right.";
      else s << ".";
      chapter.text("reading", s.str());
    }
    chapter.text("letters", "At " + lengths(top - 2, top) + " the output contains " + median_range(long_letters) +
                                " of the input's letters in some position, where an unrelated input of the same length"
                                " shares " + median_range(long_other) + " of its letters with it, and " +
                                median_range(long_acc) + " of the symbols are in the right place (medians and ranges over"
                                " the seeds). The output holds more of its own input's letters than of an unrelated"
                                " input's, by more than 0.1, in " + seeds_phrase(letters_ahead, n) + ".");
    {
      std::ostringstream s;
      s << "At L = " << top << ", output step 1 is right for a median " << format_number(step1.median(), 3)
        << " of the sequences (range over the seeds " << step1.range() << "), and it is the most accurate step in "
        << seeds_phrase(step1_best, n) << ". The steps after it are worse: ";
      for (int t = 1; t < std::min(6, top); ++t)
        s << (t == 1 ? "" : ", ")
          << format_number(reversal::over_seeds(runs, [&](const SeedRun& r) { return by_pos(r)[std::size_t(t)]; }).median(), 3);
      s << " for steps 2 to " << std::min(6, top) << " (medians). Over the first half of the output the median accuracy is "
        << format_number(first_half.median(), 3) << ", over the second half " << format_number(second_half.median(), 3)
        << ", just above chance (" << format_number(chance, 2) << "); the first half is ahead in " << seeds_phrase(halves_ok, n)
        << ".";
      chapter.text("by_position", s.str());
    }
    {
      std::ostringstream s;
      s << "*Answer:* ";
      for (std::size_t i = 0; i < bunch_Ls.size(); ++i) {
        const int L = bunch_Ls[i];
        const double p = reversal::at_length(runs, L, &LengthScore::token_acc).median();
        const double e = reversal::at_length(runs, L, &LengthScore::exact_acc).median();
        s << (i == 0 ? "at" : "; at") << " L = " << L << ", the median `p = " << format_number(p, 3) << "` predicts `"
          << format_number(p, 3) << "^" << L << " = " << format_number(std::pow(p, L), 2) << "`, but the median seed gets "
          << format_number(e, 3) << " of the sequences exactly right";
      }
      s << ". Each seed's own figures beat its `p^L` at both lengths in " << seeds_phrase(bunched, n) << ".";
      chapter.text("exercise3", s.str());
    }
    chapter.text("cpu", "Each model trained in " + format_number(cpu.median(), 2) + " s of CPU (median over the seeds).",
                 lab::Timing::yes);
    chapter.text("checks", reversal::checks_block(checks));
    return checks.report();
  });
}
