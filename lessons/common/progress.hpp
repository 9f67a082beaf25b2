#pragma once
// A progress bar for loops longer than a second.
//
//   lab::Progress bar(steps, "train rnn");
//   for (std::int64_t s = 1; s <= steps; ++s) {
//     ...
//     bar.update(s, {{"loss", loss}, {"acc", acc}});
//   }
//   bar.finish();  // also done by the destructor
//
// On a terminal it redraws one line in place with \r, at most ~10 times a second:
//   train rnn [########........]  512/1000  51%  loss 0.1234  acc 0.912  48.2 it/s  0:10 < 0:10
// When stdout is not a terminal (CI logs, pipes, files) it prints a plain line each time another
// 10% is done, or after `plain_every_seconds` without a line, so a log gets a dozen lines, not a
// thousand.
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace lab {

using Metrics = std::vector<std::pair<std::string, double>>;

struct ProgressOptions {
  enum class Mode { automatic, tty, plain };
  Mode mode = Mode::automatic;       // automatic: tty when the stream is std::cout on a terminal
  std::ostream* out = nullptr;       // nullptr = std::cout
  double redraw_seconds = 0.1;       // tty: at most one redraw per interval
  int plain_percent = 10;            // plain: one line per this many percent done
  double plain_every_seconds = 30;   // plain: and one at least this often
  int bar_width = 20;
};

class Progress {
 public:
  Progress(std::int64_t total, std::string label = "", ProgressOptions o = {});
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // step = steps done so far (1..total). Metrics keep their last value until updated again.
  void update(std::int64_t step, const Metrics& metrics = {});
  void tick(const Metrics& metrics = {}) { update(step_ + 1, metrics); }  // one more step
  void finish();  // draws the final state and ends the line; idempotent

  bool is_tty() const { return tty_; }
  double elapsed_seconds() const;
  std::int64_t lines_printed() const { return lines_; }  // plain mode: lines so far

 private:
  std::string render(bool with_bar) const;
  void draw_tty();
  void draw_plain();

  using Clock = std::chrono::steady_clock;
  std::int64_t total_, step_ = 0;
  std::string label_;
  ProgressOptions o_;
  std::ostream* out_;
  bool tty_ = false, finished_ = false;
  Metrics metrics_;
  Clock::time_point start_, last_draw_;
  std::int64_t next_plain_step_ = 0;
  std::int64_t lines_ = 0;
  std::size_t last_width_ = 0;
};

// "1:05", "12:00:03": h:mm:ss or m:ss.
std::string format_duration(double seconds);

}  // namespace lab
