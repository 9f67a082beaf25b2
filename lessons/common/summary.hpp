#pragma once
// A results table: printed with aligned columns, and saved as Markdown (a lesson's report.md).
//
//   lab::Table t("Adding problem: eval MSE after 2000 steps", {"model", "T", "MSE", "steps/s"});
//   t.row({"RNN", 100, 0.1652, 812.3});
//   t.row({"LSTM", 100, 0.0021, 390.0});
//   t.print();                                  // to stdout
//   t.save_markdown(args.path("report.md"));    // "## title" + a Markdown table
//
// Numbers are right-aligned and shown with 4 significant digits (integers as integers);
// text is left-aligned.
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace lab {

// One table cell: text, an integer or a floating-point number.
struct Cell {
  std::string text;
  bool numeric = false;

  Cell(std::string s) : text(std::move(s)) {}
  Cell(const char* s) : text(s) {}
  Cell(int v) : text(std::to_string(v)), numeric(true) {}
  Cell(long v) : text(std::to_string(v)), numeric(true) {}
  Cell(long long v) : text(std::to_string(v)), numeric(true) {}
  Cell(unsigned v) : text(std::to_string(v)), numeric(true) {}
  Cell(unsigned long v) : text(std::to_string(v)), numeric(true) {}
  Cell(unsigned long long v) : text(std::to_string(v)), numeric(true) {}
  Cell(double v, int digits = 4);
  Cell(float v) : Cell(static_cast<double>(v)) {}
};

// v with `digits` significant digits, without an exponent for 1e-3 <= |v| < 1e9:
// 0.16667 -> "0.1667", 812.345 -> "812.3", 12345.6 -> "12346", 2.5e-5 -> "2.500e-05".
std::string format_number(double v, int digits = 4);
// 1115394 -> "1,115,394"
std::string thousands(std::size_t n);
// How many runs a claim held in: "in every seed (5 of 5)" / "in 3 of 5 seeds" (unit "draw": draws).
std::string in_seeds(std::size_t k, std::size_t n, const std::string& unit = "seed");

// One measurement over several seeds: a claim about training is read from all of them, never from
// one seed's luck.
//
//   lab::SeedStats acc;
//   for (std::uint64_t s = 0; s < 5; ++s) acc.add(train(s).accuracy);
//   t.row({"T = 50", acc.median(), acc.range()});              // 0.815, "0.125 to 0.94"
//   checks.expect(acc.count([](double a) { return a < 0.2; }) == 5, "every seed at chance");
struct SeedStats {
  std::vector<double> values{};  // one per seed, in seed order

  void add(double v) { values.push_back(v); }
  std::size_t size() const { return values.size(); }
  double median() const;  // the middle value (the mean of the two middle ones for an even count)
  double min() const;
  double max() const;
  // How many seeds satisfy `pred`: "in 3 of 5 seeds".
  template <class Pred>
  std::size_t count(Pred pred) const {
    std::size_t n = 0;
    for (double v : values) n += pred(v) ? 1 : 0;
    return n;
  }
  std::string range(int digits = 3) const;  // "0.125 to 0.94": min to max, `digits` significant digits
  std::string all(int digits = 3) const;    // every seed's value: "0.125, 0.13, 0.94, 0.81, 0.5"
};

class Table {
 public:
  Table(std::string title, std::vector<std::string> columns);
  Table& row(std::vector<Cell> cells);  // as many cells as columns

  std::string text() const;      // title line, header, rule, rows; aligned for a terminal
  // "## title", blank line, a Markdown table (numbers right-aligned); the table alone without the title.
  std::string markdown(bool with_title = true) const;
  void print(std::ostream& out = std::cout) const { out << text() << std::flush; }
  // Writes markdown() to `file` (creating its directory); append = add after what is there.
  void save_markdown(const std::filesystem::path& file, bool append = false) const;

  const std::string& title() const { return title_; }
  std::size_t rows() const { return rows_.size(); }

 private:
  std::vector<bool> numeric_columns() const;
  std::string title_;
  std::vector<std::string> columns_;
  std::vector<std::vector<Cell>> rows_;
};

}  // namespace lab
