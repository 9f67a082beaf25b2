// The shared lesson command line (see cli.hpp).
#include "common/cli.hpp"

#include "ag/grad_mode.hpp"

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <system_error>

#include "ag/error.hpp"

namespace lab {

Cli::Cli(std::string name, std::string description)
    : name_(std::move(name)), app_(std::move(description), "lesson_" + name_), out_("runs/" + name_) {
  args_.name = name_;
  app_.option_defaults()->always_capture_default();  // --help shows every option's default
  app_.add_flag("--quick", args_.quick, "run in seconds: smaller models, fewer steps (smoke tests use it)");
  app_.add_option("--seed", args_.seed, "seed of every random generator in the run")->capture_default_str();
  app_.add_option("--out", out_, "output directory for CSV, PNG, SVG and report.md (created)")->capture_default_str();
  steps_ = app_.add_option("--steps", args_.steps, "training steps (>= 0); 0 = the lesson's default");
  app_.add_flag("--detect-anomaly", args_.detect_anomaly, "check for NaN/Inf during backward");
  app_.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "error: " + std::string(e.what()) + "\nRun with --help to see the options.\n";
  });
}

void Cli::steps_help(const std::string& description) {
  if (steps_) steps_->description(description + "; 0 = the default");
}

void Cli::no_steps() {
  if (steps_) app_.remove_option(steps_);
  steps_ = nullptr;
}

ParseOutcome Cli::try_parse(int argc, const char* const* argv) {
  ParseOutcome r;
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out, err;
    const int code = app_.exit(e, out, err);
    r.run = false;
    // --help (CLI11's Success) exits 0; every real parse error exits 2 whatever CLI11's own code.
    r.exit_code = code == static_cast<int>(CLI::ExitCodes::Success) ? 0 : 2;
    r.message = r.exit_code == 0 ? out.str() : err.str();
    return r;
  }
  if (args_.steps < 0) {
    r.exit_code = 2;
    r.message = "error: --steps must be >= 0 (got " + std::to_string(args_.steps) + ")\nRun with --help to see the options.\n";
    return r;
  }
  args_.out = out_;
  std::error_code ec;
  std::filesystem::create_directories(args_.out, ec);
  if (ec) {
    r.exit_code = 2;
    r.message = "error: --out: cannot create directory '" + out_ + "': " + ec.message() + "\n";
    return r;
  }
  r.run = true;
  r.args = args_;
  if (args_.detect_anomaly) ag::set_anomaly_detection(true);  // backward stops at the first NaN/Inf
  return r;
}

LessonArgs Cli::parse(int argc, const char* const* argv) {
  ParseOutcome r = try_parse(argc, argv);
  if (!r.run) {
    (r.exit_code == 0 ? std::cout : std::cerr) << r.message << std::flush;
    std::exit(r.exit_code);
  }
  return r.args;
}

int run_lesson(const std::function<int()>& body) {
  try {
    return body();
  } catch (const ag::Error& e) {
    std::cout << std::flush;
    std::cerr << "\nerror: " << e.what() << "\n";
  } catch (const CLI::Error& e) {
    std::cout << std::flush;
    std::cerr << "\nerror: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cout << std::flush;
    std::cerr << "\nerror: " << e.what() << "\n";
  }
  return 2;
}

int run_lesson(int argc, const char* const* argv, Cli& cli, const std::function<int(const LessonArgs&)>& body) {
  ParseOutcome r = cli.try_parse(argc, argv);
  if (!r.run) {
    (r.exit_code == 0 ? std::cout : std::cerr) << r.message << std::flush;
    return r.exit_code;
  }
  return run_lesson([&] { return body(r.args); });
}

}  // namespace lab
