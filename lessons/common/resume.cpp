#include "common/resume.hpp"

#include <charconv>
#include <csignal>
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "ag/error.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"

namespace lab {

void add_resume_options(Cli& cli, ResumeOptions& o) {
  cli.app()
      .add_option("--save-every", o.save_every,
                  "save each training run's whole state every N steps and at its end, in <out>/checkpoints/ (0: never)")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 40));
  cli.app().add_option("--resume", o.resume_dir,
                       "continue the runs saved in DIR/checkpoints/ by an earlier --save-every run with the same options");
}

ResumableRun::ResumableRun(const LessonArgs& args, const ResumeOptions& options, std::string name)
    : options_(options), file_(args.out / "checkpoints" / (name + ".safetensors")) {
  if (!options.resume_dir.empty()) {
    if (!std::filesystem::is_directory(options.resume_dir))
      ag::fail("--resume: '", options.resume_dir.string(), "' is not a directory (give the --out of the run to continue)");
    resume_ = options.resume_dir / "checkpoints" / (name + ".safetensors");
  }
}

bool ResumableRun::restore(nn::Module& model, nn::Optimizer& optimizer, nn::TrainingState& state) {
  if (resume_.empty() || !std::filesystem::exists(resume_)) return false;
  nn::load_training_state(resume_.string(), model, optimizer, state);
  std::cout << "resuming " << file_.stem().string() << " from " << resume_.string() << " after step " << state.step << "\n";
  return true;
}

bool ResumableRun::due(std::int64_t step, std::int64_t last) const {
  return options_.save_every > 0 && (step % options_.save_every == 0 || step == last);
}

void ResumableRun::save(nn::Module& model, const nn::Optimizer& optimizer, const nn::TrainingState& state) const {
  std::filesystem::create_directories(file_.parent_path());
  nn::save_training_state(file_.string(), model, optimizer, state);
  if (const char* kill = std::getenv("ATTNLAB_KILL_AFTER_SAVE"); kill && std::to_string(state.step) == kill) {
    std::cout << std::flush;
    std::raise(SIGKILL);
  }
}

std::string encode_doubles(const std::vector<double>& values) {
  std::string out;
  char buf[32];
  for (double v : values) {
    const auto r = std::to_chars(buf, buf + sizeof buf, v);  // the shortest text that reads back exactly
    if (!out.empty()) out += ' ';
    out.append(buf, r.ptr);
  }
  return out;
}

std::vector<double> decode_doubles(const std::string& text) {
  std::vector<double> out;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    if (*p == ' ') {
      ++p;
      continue;
    }
    double v = 0;
    const auto r = std::from_chars(p, end, v);
    if (r.ec != std::errc()) ag::fail("decode_doubles: not a number at '", std::string(p, std::min<std::size_t>(20, std::size_t(end - p))), "'");
    out.push_back(v);
    p = r.ptr;
  }
  return out;
}

}  // namespace lab
