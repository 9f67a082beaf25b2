#pragma once
// Curves: CSV logs of a run, and plots of them drawn by gnuplot.
//
//   lab::CurveLog log(args.path("loss.csv"), {"train", "eval"});   // header: step,train,eval
//   log.log(step, {train_loss, eval_loss});                          // one row, flushed
//
//   lab::PlotOptions po{.title = "Adding problem, T = 100", .ylabel = "MSE", .logy = true,
//                       .hlines = {{lab::AddingTask::kBaselineMSE, "predict 1.0"}}};
//   lab::plot(args.path("loss.png"), lab::series(log.path(), {"train", "eval"}), po);
//   lab::plot_terminal(lab::series(log.path(), {"eval"}), po);      // ASCII plot on stdout
//
// plot() writes three files beside each other: loss.gp (the gnuplot script: edit it and rerun
// `gnuplot loss.gp` from that directory), loss.png (pngcairo) and loss.svg. Paths inside the
// script are relative to its directory.
//
// Without gnuplot on PATH nothing fails: the CSV files are written as usual, the script too,
// and one note says that gnuplot is missing (printed once per process). The gnuplot command can
// be changed with set_gnuplot() or the ATTNLAB_GNUPLOT environment variable.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "ag/tensor.hpp"

namespace lab {

// ---------------------------------------------------------------------------------------------
// CSV logs

// One CSV file per run: header `x,col1,col2,...` (x is "step" unless given), then one row per
// log() call, flushed at once so a crashed or interrupted run keeps its curve. A NaN value is
// written as "nan" and gnuplot skips it (a column not measured at that step).
class CurveLog {
 public:
  CurveLog(std::filesystem::path csv, std::vector<std::string> columns, std::string x = "step");
  void log(double x, const std::vector<double>& values);  // one value per column
  const std::filesystem::path& path() const { return path_; }
  const std::vector<std::string>& columns() const { return columns_; }
  std::int64_t rows() const { return rows_; }

 private:
  std::filesystem::path path_;
  std::vector<std::string> columns_;
  std::ofstream file_;
  std::int64_t rows_ = 0;
};

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// The column names in a CSV file's header line (throws ag::Error if it cannot be read).
std::vector<std::string> csv_header(const std::filesystem::path& csv);

// ---------------------------------------------------------------------------------------------
// Line plots

// One curve: column y against column x of a CSV file.
struct Series {
  std::filesystem::path csv{};
  std::string y{};              // column name
  std::string title{};          // legend entry; empty = the column name
  std::string x = "step";     // column name
  std::string style = "lines";  // gnuplot style: lines, linespoints, points
  double width = 2;             // line width (PNG/SVG); draw a curve that may hide another one wider
  int dash = 0;                 // gnuplot dash type (0 = solid, 2 = dashes, 3 = dots, ...)
};

// Least-squares slope of log y against log x over the points with lo <= x <= hi: the exponent
// p in y ~ x^p (a straight line of slope p on a log-log plot). Non-positive y count as 1e-30;
// points whose y is not finite (kMissing: not measured) are left out.
double loglog_slope(const std::vector<double>& x, const std::vector<double>& y, double lo = 0.0,
                    double hi = std::numeric_limits<double>::infinity());

// Series for several columns of one file: series(csv, {"rnn", "lstm"}), or for a metric-vs-T
// table: series(csv, {"rnn", "lstm"}, "T", "linespoints").
std::vector<Series> series(const std::filesystem::path& csv, const std::vector<std::string>& ys,
                           const std::string& x = "step", const std::string& style = "lines");

struct PlotOptions {
  std::string title{};
  std::string xlabel = "step";
  std::string ylabel{};
  bool logx = false;
  bool logy = false;
  double ymin = kMissing, ymax = kMissing;  // NaN = automatic
  double xmin = kMissing, xmax = kMissing;
  std::vector<std::pair<double, std::string>> hlines{};  // dashed reference lines: {y, legend}
  std::string key = "top right";                        // where the legend goes (gnuplot "set key ...")
  int width = 800, height = 500;                       // pixels (PNG and SVG)
};

// Writes <png without extension>.gp, .png and .svg. Returns true when gnuplot drew them.
// Throws ag::Error only for a caller's mistake: no series, or a column missing from its CSV.
bool plot(const std::filesystem::path& png, const std::vector<Series>& series, const PlotOptions& o);

// Draws the series as ASCII art (gnuplot's dumb terminal, cols x rows characters) on `out`, each
// series with its own character, the legend below the plot (rows includes it).
// Returns false, after one note, when gnuplot is missing.
bool plot_terminal(const std::vector<Series>& series, const PlotOptions& o, std::ostream& out = std::cout,
                   int cols = 80, int rows = 20);

// ---------------------------------------------------------------------------------------------
// Heatmaps (attention alignment matrices)

// Matrix CSV: one line per row, comma-separated, no header. Row r is drawn as the r-th line
// from the top (for attention: row = query / output token, column = key / input token).
void write_matrix_csv(const std::filesystem::path& csv, const std::vector<std::vector<double>>& m);
void write_matrix_csv(const std::filesystem::path& csv, const ag::Tensor& m);  // m [R, C]

struct HeatmapOptions {
  std::string title{};
  std::string xlabel{};  // e.g. "source"
  std::string ylabel{};  // e.g. "output"
  std::vector<std::string> xticks{};  // one label per column (tokens); empty = numbers
  std::vector<std::string> yticks{};  // one label per row
  std::string palette = "blues";    // blues (white -> dark blue), viridis, gray
  double zmin = kMissing, zmax = kMissing;  // colour range; NaN = automatic (use 0, 1 for weights)
  bool mark_zeros = false;  // draw an "x" on every cell that is exactly 0 (masked), unlike a tiny weight
  int width = 800, height = 600;
};

// Writes <png without extension>.gp, .png and .svg from a matrix CSV. True when drawn.
bool heatmap(const std::filesystem::path& png, const std::filesystem::path& matrix_csv, const HeatmapOptions& o);
// Writes the matrix m [R, C] to <png without extension>.csv, then draws it.
bool heatmap(const std::filesystem::path& png, const ag::Tensor& m, const HeatmapOptions& o);
// Several matrices (one per attention head, say), `per_row` panels per row, each with its own title
// (titles[i]), its tick labels and the colour range of o; o.title heads the whole picture, o.ylabel
// is written once per row. Each panel's matrix goes to <png without extension>_<i>.csv (i from 1).
//   lab::heatmap_grid(args.path("heads.png"), {w0, w1, w2, w3}, {"head 1", "head 2", "head 3", "head 4"},
//                     {.title = "Layer 1", .xlabel = "key", .ylabel = "query", .zmin = 0, .zmax = 1}, 2);
bool heatmap_grid(const std::filesystem::path& png, const std::vector<ag::Tensor>& panels,
                  const std::vector<std::string>& titles, const HeatmapOptions& o, std::size_t per_row);

// ---------------------------------------------------------------------------------------------
// gnuplot

// The gnuplot command used: set_gnuplot()'s, else $ATTNLAB_GNUPLOT, else "gnuplot".
// set_gnuplot("") returns to that default. Changing it re-arms the "missing" note.
void set_gnuplot(const std::string& command);
std::string gnuplot_command();
bool gnuplot_available();  // found on PATH (or, for a path, executable)

}  // namespace lab
