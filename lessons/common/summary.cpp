// Results tables (see summary.hpp).
#include "common/summary.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ag/error.hpp"

namespace lab {

std::string thousands(std::size_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string in_seeds(std::size_t k, std::size_t n, const std::string& unit) {
  if (k == n) return "in every " + unit + " (" + std::to_string(k) + " of " + std::to_string(n) + ")";
  return "in " + std::to_string(k) + " of " + std::to_string(n) + " " + unit + "s";
}

std::string format_number(double v, int digits) {
  digits = std::clamp(digits, 1, 17);
  char buf[64];
  const double a = std::fabs(v);
  if (!std::isfinite(v)) {
    std::snprintf(buf, sizeof buf, "%g", v);
  } else if (a == 0) {
    std::snprintf(buf, sizeof buf, "0");
  } else if (a < 1e-3 || a >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
  } else {
    const int int_digits = static_cast<int>(std::floor(std::log10(a))) + 1;  // 812.3 -> 3, 0.05 -> -1
    const int decimals = std::max(0, digits - int_digits);
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

Cell::Cell(double v, int digits) : text(format_number(v, digits)), numeric(true) {}

Table::Table(std::string title, std::vector<std::string> columns)
    : title_(std::move(title)), columns_(std::move(columns)) {
  if (columns_.empty()) ag::fail("Table: no columns");
}

Table& Table::row(std::vector<Cell> cells) {
  if (cells.size() != columns_.size())
    ag::fail("Table::row: ", cells.size(), " cells for ", columns_.size(), " columns in \"", title_, "\"");
  rows_.push_back(std::move(cells));
  return *this;
}

// A column is right-aligned when every non-empty cell in it is a number.
double SeedStats::median() const {
  if (values.empty()) ag::fail("SeedStats::median: no values");
  std::vector<double> v = values;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
double SeedStats::min() const {
  if (values.empty()) ag::fail("SeedStats::min: no values");
  return *std::min_element(values.begin(), values.end());
}
double SeedStats::max() const {
  if (values.empty()) ag::fail("SeedStats::max: no values");
  return *std::max_element(values.begin(), values.end());
}
std::string SeedStats::range(int digits) const { return format_number(min(), digits) + " to " + format_number(max(), digits); }
std::string SeedStats::all(int digits) const {
  std::string s;
  for (double v : values) s += (s.empty() ? "" : ", ") + format_number(v, digits);
  return s;
}

std::vector<bool> Table::numeric_columns() const {
  std::vector<bool> num(columns_.size(), !rows_.empty());
  for (const auto& r : rows_)
    for (std::size_t c = 0; c < r.size(); ++c)
      if (!r[c].numeric && !r[c].text.empty()) num[c] = false;
  return num;
}

namespace {
// Display width of UTF-8 text (counts code points, not bytes: "σ" is one column).
std::size_t width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string pad(const std::string& s, std::size_t w, bool right) {
  const std::size_t n = width(s);
  const std::string fill(w > n ? w - n : 0, ' ');
  return right ? fill + s : s + fill;
}

std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}
}  // namespace

std::string Table::text() const {
  const auto num = numeric_columns();
  std::vector<std::size_t> w(columns_.size());
  for (std::size_t c = 0; c < columns_.size(); ++c) w[c] = width(columns_[c]);
  for (const auto& r : rows_)
    for (std::size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], width(r[c].text));
  std::ostringstream os;
  std::size_t total = 0;
  for (auto x : w) total += x;
  total += 2 * (w.size() - 1);
  if (!title_.empty()) os << title_ << "\n";
  for (std::size_t c = 0; c < columns_.size(); ++c) os << (c ? "  " : "") << pad(columns_[c], w[c], num[c]);
  os << "\n";
  std::string rule;
  for (std::size_t i = 0; i < total; ++i) rule += "─";
  os << rule << "\n";
  for (const auto& r : rows_) {
    for (std::size_t c = 0; c < r.size(); ++c) os << (c ? "  " : "") << pad(r[c].text, w[c], num[c]);
    os << "\n";
  }
  return os.str();
}

std::string Table::markdown(bool with_title) const {
  const auto num = numeric_columns();
  std::ostringstream os;
  if (with_title && !title_.empty()) os << "## " << title_ << "\n\n";
  os << "|";
  for (const auto& c : columns_) os << " " << md_escape(c) << " |";
  os << "\n|";
  for (std::size_t c = 0; c < columns_.size(); ++c) os << (num[c] ? "---:|" : "---|");
  os << "\n";
  for (const auto& r : rows_) {
    os << "|";
    for (const auto& cell : r) os << " " << md_escape(cell.text) << " |";
    os << "\n";
  }
  return os.str();
}

void Table::save_markdown(const std::filesystem::path& file, bool append) const {
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
  }
  const bool had_text = append && std::filesystem::exists(file) && std::filesystem::file_size(file) > 0;
  std::ofstream f(file, append ? std::ios::app : std::ios::trunc);
  if (!f) ag::fail("Table::save_markdown: cannot write '", file.string(), "'");
  if (had_text) f << "\n";
  f << markdown();
}

}  // namespace lab
