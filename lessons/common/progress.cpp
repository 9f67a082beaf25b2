// Progress bar (see progress.hpp).
#include "common/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace lab {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

namespace {
std::string format_metric(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (!std::isfinite(v))
    std::snprintf(buf, sizeof buf, "%g", v);
  else if (a != 0 && (a < 1e-3 || a >= 1e5))
    std::snprintf(buf, sizeof buf, "%.3e", v);
  else
    std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}
}  // namespace

Progress::Progress(std::int64_t total, std::string label, ProgressOptions o)
    : total_(std::max<std::int64_t>(total, 1)), label_(std::move(label)), o_(o),
      out_(o.out ? o.out : &std::cout), start_(Clock::now()), last_draw_(start_) {
  switch (o_.mode) {
    case ProgressOptions::Mode::tty: tty_ = true; break;
    case ProgressOptions::Mode::plain: tty_ = false; break;
    case ProgressOptions::Mode::automatic: tty_ = out_ == &std::cout && ::isatty(STDOUT_FILENO); break;
  }
  o_.plain_percent = std::clamp(o_.plain_percent, 1, 100);
  next_plain_step_ = std::max<std::int64_t>(1, total_ * o_.plain_percent / 100);
}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {
  }
}

double Progress::elapsed_seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

void Progress::update(std::int64_t step, const Metrics& metrics) {
  if (finished_) return;
  step_ = std::clamp<std::int64_t>(step, 0, total_);
  for (const auto& [name, value] : metrics) {
    auto it = std::find_if(metrics_.begin(), metrics_.end(), [&](const auto& m) { return m.first == name; });
    if (it == metrics_.end())
      metrics_.emplace_back(name, value);
    else
      it->second = value;
  }
  if (step_ >= total_) {  // the last step always shows, and ends the bar
    finish();
    return;
  }
  const double since = std::chrono::duration<double>(Clock::now() - last_draw_).count();
  if (tty_) {
    if (last_width_ == 0 || since >= o_.redraw_seconds) draw_tty();  // first update shows at once
  } else if (step_ >= next_plain_step_ || since >= o_.plain_every_seconds) {
    draw_plain();
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_) {
    draw_tty();
    *out_ << '\n' << std::flush;
  } else {
    draw_plain();
  }
}

std::string Progress::render(bool with_bar) const {
  std::ostringstream os;
  const double frac = static_cast<double>(step_) / static_cast<double>(total_);
  if (!label_.empty()) os << label_ << ' ';
  if (with_bar) {
    const int filled = static_cast<int>(frac * o_.bar_width);
    os << '[' << std::string(filled, '#') << std::string(o_.bar_width - filled, '.') << "] ";
  }
  const std::string total = std::to_string(total_);
  std::string step = std::to_string(step_);
  if (step.size() < total.size()) step.insert(0, total.size() - step.size(), ' ');
  char pct[16];
  std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(frac * 100));
  os << step << '/' << total << "  " << pct;
  for (const auto& [name, value] : metrics_) os << "  " << name << ' ' << format_metric(value);
  const double el = elapsed_seconds();
  const double rate = el > 0 ? step_ / el : 0.0;
  char r[32];
  if (rate >= 100)
    std::snprintf(r, sizeof r, "%.0f it/s", rate);
  else if (rate >= 1)
    std::snprintf(r, sizeof r, "%.1f it/s", rate);
  else
    std::snprintf(r, sizeof r, "%.2f it/s", rate);
  os << "  " << r << "  " << format_duration(el);
  if (step_ < total_) os << " < " << (step_ > 0 ? format_duration(el / step_ * (total_ - step_)) : "?");
  return os.str();
}

void Progress::draw_tty() {
  std::string line = render(true);
  const std::size_t width = line.size();
  if (width < last_width_) line.append(last_width_ - width, ' ');  // wipe a longer previous line
  last_width_ = width;
  *out_ << '\r' << line << std::flush;
  last_draw_ = Clock::now();
}

void Progress::draw_plain() {
  *out_ << render(false) << '\n' << std::flush;
  ++lines_;
  last_draw_ = Clock::now();
  while (next_plain_step_ <= step_) next_plain_step_ += std::max<std::int64_t>(1, total_ * o_.plain_percent / 100);
}

}  // namespace lab
