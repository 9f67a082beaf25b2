#pragma once
// --save-every and --resume for the lessons whose training runs are long (nn::save_training_state
// underneath), so that a run killed at 80% continues where it stopped and ends exactly as if it
// had never stopped: the same losses, the same parameters, the same figures.
//
//   lab::ResumeOptions resume;
//   lab::add_resume_options(cli, resume);           // before parsing
//   ...
//   lab::ResumableRun saver(args, resume, "seed0");  // one training run of the lesson
//   nn::TrainingState state{.generators = {{"stream", &gen}}, .config = {{"d_model", "128"}, ...}};
//   if (saver.restore(model, opt, state)) { ...read state.extra back... }
//   for (std::int64_t step = state.step + 1; step <= steps; ++step) {
//     ...train one step...
//     state.step = step;
//     if (saver.due(step, steps)) { ...put the curves into state.extra...; saver.save(model, opt, state); }
//   }
//
// Files: <out>/checkpoints/<run>.safetensors, one per run, rewritten atomically at each save.
// `--resume DIR` reads DIR/checkpoints/<run>.safetensors where it exists (a run without one
// starts from scratch; a finished run is not trained again) and refuses a state saved with other
// options. For the resume test, ATTNLAB_KILL_AFTER_SAVE=N makes the process kill itself with
// SIGKILL right after it saves at step N (stdout flushed first, so the log shows where): no
// destructor, file flush or exit handler runs, as after `kill -9`.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "nn/checkpoint.hpp"

namespace nn {
class Module;
class Optimizer;
}  // namespace nn

namespace lab {

struct ResumeOptions {
  std::int64_t save_every = 0;        // --save-every N: save each run's state every N steps and at its end (0: never)
  std::filesystem::path resume_dir{};  // --resume DIR: continue the runs saved under DIR/checkpoints
};

// Adds --save-every and --resume to the lesson's command line.
void add_resume_options(Cli& cli, ResumeOptions& options);

class ResumableRun {
 public:
  // name: this run within the lesson ("seed0"), which names its file.
  ResumableRun(const LessonArgs& args, const ResumeOptions& options, std::string name);

  // When --resume names a directory with a state for this run: loads it into model, optimizer
  // and state (nn::load_training_state: an ag::Error when it was saved with other options),
  // prints where it resumes, and returns true. Otherwise changes nothing and returns false.
  bool restore(nn::Module& model, nn::Optimizer& optimizer, nn::TrainingState& state);
  // Whether to save after `step` of `last`: every --save-every steps, and after the last one.
  bool due(std::int64_t step, std::int64_t last) const;
  // Writes the state (then honours ATTNLAB_KILL_AFTER_SAVE).
  void save(nn::Module& model, const nn::Optimizer& optimizer, const nn::TrainingState& state) const;

  std::filesystem::path file() const { return file_; }

 private:
  const ResumeOptions& options_;
  std::filesystem::path file_;    // where this run saves
  std::filesystem::path resume_;  // where it resumes from (empty: it does not)
};

// Numbers for TrainingState::extra, as text that reads back to the same bits ("0.1 2.5e-07 3"):
// a run's curves so far, restored exactly on resume. decode_doubles throws ag::Error on bad text.
std::string encode_doubles(const std::vector<double>& values);
std::vector<double> decode_doubles(const std::string& text);

}  // namespace lab
