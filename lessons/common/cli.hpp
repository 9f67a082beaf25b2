#pragma once
// The command line every lesson shares, parsed with CLI11.
//
//   --quick            run in seconds (the smoke tests use it)
//   --seed N           the seed of every generator in the run (default 0)
//   --out DIR          where CSV, PNG, SVG and report.md go (default runs/NN_topic/, created)
//   --steps N          training steps; 0 = the lesson's default (a lesson says what it counts with
//                      steps_help(), or refuses the flag with no_steps())
//   --detect-anomaly   backward() stops at the first NaN/Inf gradient and names the op (ag::DetectAnomaly)
//   --help
//
// A lesson adds its own options before parsing, then runs its body inside run_lesson(), which
// turns errors into a message and exit status 2 instead of an abort:
//
//   int main(int argc, char** argv) {
//     lab::Cli cli("12_showdown", "RNN vs LSTM vs Transformer on long-range tasks");
//     int max_T = 200;
//     cli.app().add_option("--max-T", max_T, "longest sequence")->check(CLI::Range(2, 100000));
//     return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
//       ...                                    // args.quick, args.seed, args.out / "loss.csv"
//       return 0;
//     });
//   }
//
// Prefer CLI::Range(lo, hi) to CLI::PositiveNumber / NonNegativeNumber: in CLI11 2.1 those print
// "not in range 0.000000 to 1797693134862315708145274237317043567980...".
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace lab {

struct LessonArgs {
  std::string name{};           // "12_showdown"
  bool quick = false;
  std::uint64_t seed = 0;
  std::filesystem::path out{};  // exists once parse() returns
  std::int64_t steps = 0;       // 0 = the lesson's default
  bool detect_anomaly = false;

  // --steps if given, else the lesson's default for a full or a --quick run.
  std::int64_t steps_or(std::int64_t full_default, std::int64_t quick_default) const {
    return steps > 0 ? steps : (quick ? quick_default : full_default);
  }
  // A file in the output directory: args.path("loss.csv").
  std::filesystem::path path(const std::string& file) const { return out / file; }
};

// What try_parse() found: either run the lesson with `args`, or stop with `exit_code`
// (0 after --help, 2 after a bad value) and show `message`.
struct ParseOutcome {
  bool run = false;
  int exit_code = 0;
  std::string message{};  // help text, or "error: ..." with a hint; empty when run
  LessonArgs args{};
};

class Cli {
 public:
  // name: the lesson's directory name ("12_showdown"), which names the default --out.
  Cli(std::string name, std::string description);

  CLI::App& app() { return app_; }  // add lesson-specific options here, before parsing
  // What --steps means in this lesson, for --help: cli.steps_help("training steps per run (800; --quick 60)").
  void steps_help(const std::string& description);
  // For a lesson that trains nothing: --steps is refused as an unknown option instead of ignored.
  void no_steps();

  // Parses and creates the output directory. On --help prints the help and exits 0; on a bad
  // value prints the message and exits 2 (std::exit: call it before the lesson owns resources).
  LessonArgs parse(int argc, const char* const* argv);
  // The same without printing or exiting (tests, and run_lesson()).
  ParseOutcome try_parse(int argc, const char* const* argv);

 private:
  std::string name_;
  CLI::App app_;
  LessonArgs args_;
  std::string out_;
  CLI::Option* steps_ = nullptr;
};

// Runs body and returns its exit status; an ag::Error, CLI::Error or other std::exception
// becomes "error: <message>" on stderr and status 2.
int run_lesson(const std::function<int()>& body);
// Parses argv with cli (status 0 after --help, 2 after a bad value, message printed), then runs
// body(args) as above.
int run_lesson(int argc, const char* const* argv, Cli& cli, const std::function<int(const LessonArgs&)>& body);

}  // namespace lab
