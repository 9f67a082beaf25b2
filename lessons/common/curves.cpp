// CSV logs and gnuplot plots (see curves.hpp).
#include "common/curves.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>

#include "ag/error.hpp"

namespace fs = std::filesystem;

namespace lab {

// ---------------------------------------------------------------------------------------------
// CSV

namespace {

// 9 significant digits by default: enough for any float32 value, readable for doubles.
std::string number(double v, int digits = 9) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

void check_name(const std::string& name, const char* who) {
  if (name.empty() || name.find_first_of(",\"'\n\r") != std::string::npos)
    ag::fail(who, ": column name \"", name, "\" must be non-empty, without commas, quotes or newlines");
}

void make_parent(const fs::path& file) {
  if (file.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
  }
}

}  // namespace

CurveLog::CurveLog(fs::path csv, std::vector<std::string> columns, std::string x)
    : path_(std::move(csv)), columns_(std::move(columns)) {
  check_name(x, "CurveLog");
  for (const auto& c : columns_) check_name(c, "CurveLog");
  make_parent(path_);
  file_.open(path_, std::ios::out | std::ios::trunc);
  if (!file_) ag::fail("CurveLog: cannot write '", path_.string(), "'");
  file_ << x;
  for (const auto& c : columns_) file_ << ',' << c;
  file_ << '\n' << std::flush;
}

void CurveLog::log(double x, const std::vector<double>& values) {
  if (values.size() != columns_.size())
    ag::fail("CurveLog::log: ", values.size(), " values for ", columns_.size(), " columns in '", path_.string(), "'");
  std::string line = number(x);
  for (double v : values) line += ',' + number(v);
  file_ << line << '\n' << std::flush;
  ++rows_;
}

std::vector<std::string> csv_header(const fs::path& csv) {
  std::ifstream f(csv);
  std::string line;
  if (!f || !std::getline(f, line)) ag::fail("csv_header: cannot read '", csv.string(), "'");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> names;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) names.push_back(cell);
  return names;
}

double loglog_slope(const std::vector<double>& x, const std::vector<double>& y, double lo, double hi) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (x[i] < lo * (1 - 1e-9) || x[i] > hi * (1 + 1e-9)) continue;  // the tolerance keeps the ends in
    if (!std::isfinite(y[i])) continue;                                 // a point not measured (kMissing)
    const double a = std::log(x[i]), b = std::log(std::max(y[i], 1e-30));
    sx += a, sy += b, sxx += a * a, sxy += a * b, n += 1;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

std::vector<Series> series(const fs::path& csv, const std::vector<std::string>& ys, const std::string& x,
                           const std::string& style) {
  std::vector<Series> out;
  for (const auto& y : ys) out.push_back(Series{csv, y, "", x, style});
  return out;
}

// ---------------------------------------------------------------------------------------------
// gnuplot: finding it, running it

namespace {

std::mutex g_mutex;
std::string g_command;         // set_gnuplot()'s, or empty
bool g_missing_noted = false;  // the "gnuplot not found" note was printed

bool executable(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

bool find_program(const std::string& cmd) {
  if (cmd.empty()) return false;
  if (cmd.find('/') != std::string::npos) return executable(cmd);
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (executable(fs::path(dir.empty() ? "." : dir) / cmd)) return true;
  return false;
}

void note_missing() {
  const std::string cmd = gnuplot_command();
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_missing_noted) return;
  g_missing_noted = true;
  std::cerr << "note: gnuplot not found ('" << cmd
            << "'): CSV and .gp files are written, plots are not drawn (install gnuplot-nox to draw them)\n";
}

struct RunResult {
  int status = -1;  // exit status, or -1 when it could not run
  std::string out, err;
};

// Runs `program script` in directory `dir`, capturing stdout and stderr (no shell involved).
RunResult run_gnuplot(const std::string& program, const fs::path& script, const fs::path& dir) {
  RunResult r;
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0) return r;
  if (::pipe(err_pipe) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return r;
  }
  if (pid == 0) {  // child: only async-signal-safe calls until exec
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (!dir.empty() && ::chdir(dir.c_str()) != 0) ::_exit(126);
    const char* argv[] = {program.c_str(), script.c_str(), nullptr};
    ::execvp(argv[0], const_cast<char* const*>(argv));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs gnuplot on a script file. Never throws: a missing gnuplot or a failed script prints one
// line and returns false. `captured` receives gnuplot's stdout (the dumb terminal's drawing).
bool run_script(const fs::path& script, std::string* captured = nullptr) {
  const std::string cmd = gnuplot_command();
  if (!find_program(cmd)) {
    note_missing();
    return false;
  }
  const fs::path abs = fs::absolute(script);
  RunResult r = run_gnuplot(cmd, abs.filename(), abs.parent_path());
  if (r.status == 127) {
    note_missing();
    return false;
  }
  if (r.status != 0) {
    std::string first = r.err.substr(0, r.err.find_first_of('\n', r.err.find_first_not_of(" \n")));
    std::cerr << "note: gnuplot failed on " << script.string() << " (status " << r.status << ")"
              << (first.empty() ? "" : ": ") << first << "\n";
    return false;
  }
  if (captured) *captured = std::move(r.out);
  return true;
}

// A gnuplot single-quoted string: only ' needs escaping (as '').
std::string q(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\n') {
      out += ' ';
      continue;
    }
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// The path of `file` as written in a script that runs in `dir` (absolute when dir is empty).
std::string rel(const fs::path& file, const fs::path& dir) {
  if (dir.empty()) return fs::absolute(file).generic_string();
  std::error_code ec;
  fs::path r = fs::relative(fs::absolute(file), fs::absolute(dir), ec);
  return (ec || r.empty() ? fs::absolute(file) : r).generic_string();
}

std::string range(double lo, double hi) {
  if (std::isnan(lo) && std::isnan(hi)) return "";
  std::string r = "[";
  r += std::isnan(lo) ? std::string("*") : number(lo);
  r += ':';
  r += std::isnan(hi) ? std::string("*") : number(hi);
  r += ']';
  return r;
}

void write_file(const fs::path& p, const std::string& text) {
  make_parent(p);
  std::ofstream f(p, std::ios::out | std::ios::trunc);
  if (!f) ag::fail("cannot write '", p.string(), "'");
  f << text;
}

const char* kFont = "font 'Sans,11'";

// The axes, labels and `plot` command of a line plot, for a script that runs in `dir`.
// `key` overrides o.key (the terminal puts the legend below the plot, where no curve can overwrite it).
std::string line_plot_body(const std::vector<Series>& ss, const PlotOptions& o, const fs::path& dir,
                           const std::string& key = "") {
  const bool terminal = !key.empty();
  if (ss.empty()) ag::fail("plot: no series to draw");
  for (const auto& s : ss) {
    const auto names = csv_header(s.csv);
    for (const std::string* col : {&s.x, &s.y}) {
      if (std::find(names.begin(), names.end(), *col) == names.end()) {
        std::string have;
        for (const auto& n : names) have += (have.empty() ? "" : ",") + n;
        ag::fail("plot: column '", *col, "' is not in '", s.csv.string(), "' (columns: ", have, ")");
      }
    }
  }
  std::ostringstream g;
  g << "set datafile separator comma\n";
  if (!o.title.empty()) g << "set title " << q(o.title) << "\n";
  if (!o.xlabel.empty()) g << "set xlabel " << q(o.xlabel) << "\n";
  if (!o.ylabel.empty()) g << "set ylabel " << q(o.ylabel) << "\n";
  g << "set key " << (key.empty() ? o.key : key) << "\n";
  if (o.logx) g << "set logscale x\n";
  if (o.logy) g << "set logscale y\n";
  if (auto r = range(o.xmin, o.xmax); !r.empty()) g << "set xrange " << r << "\n";
  if (auto r = range(o.ymin, o.ymax); !r.empty()) g << "set yrange " << r << "\n";
  g << "plot ";
  bool first = true;
  for (const auto& s : ss) {
    if (!first) g << ", \\\n     ";
    first = false;
    g << q(rel(s.csv, dir)) << " using \"" << s.x << "\":\"" << s.y << "\" with " << s.style << " lw " << number(s.width);
    if (s.dash > 0) g << " dt " << s.dash;
    // On the terminal a space keeps each title off its sample characters (`*** title`).
    g << " title " << q((terminal ? " " : "") + (s.title.empty() ? s.y : s.title));
  }
  for (const auto& [y, label] : o.hlines)
    g << ", \\\n     " << number(y) << " with lines dt 2 lw 1.5 lc rgb '#555555' title " << q((terminal ? " " : "") + label);
  g << "\n";
  return g.str();
}

std::string header_comment(const fs::path& script, const char* who) {
  return "# Written by attnlab's " + std::string(who) + ". Edit and rerun from this directory:\n#   gnuplot " +
         script.filename().string() + "\n";
}

// Draws `body` to name.png and name.svg through the script name.gp.
bool draw_files(const fs::path& png, const std::string& body, int width, int height, const char* who) {
  fs::path base = png;
  base.replace_extension();
  const fs::path script = fs::path(base).concat(".gp");
  const std::string png_name = fs::path(base).concat(".png").filename().string();
  const std::string svg_name = fs::path(base).concat(".svg").filename().string();
  std::ostringstream g;
  g << header_comment(script, who);
  g << "set terminal pngcairo size " << width << "," << height << " " << kFont << " noenhanced\n";
  g << "set output " << q(png_name) << "\n";
  g << body;
  g << "set terminal svg size " << width << "," << height << " dynamic " << kFont
    << " noenhanced background rgb 'white'\n";
  g << "set output " << q(svg_name) << "\nreplot\nunset output\n";
  write_file(script, g.str());
  return run_script(script);
}

}  // namespace

void set_gnuplot(const std::string& command) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_command = command;
  g_missing_noted = false;
}

std::string gnuplot_command() {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_command.empty()) return g_command;
  }
  const char* env = std::getenv("ATTNLAB_GNUPLOT");
  return env && *env ? env : "gnuplot";
}

bool gnuplot_available() { return find_program(gnuplot_command()); }

// ---------------------------------------------------------------------------------------------
// Line plots

bool plot(const fs::path& png, const std::vector<Series>& ss, const PlotOptions& o) {
  const fs::path dir = png.has_parent_path() ? png.parent_path() : fs::path(".");
  return draw_files(png, "set grid\n" + line_plot_body(ss, o, dir), o.width, o.height, "lab::plot");
}

bool plot_terminal(const std::vector<Series>& ss, const PlotOptions& o, std::ostream& out, int cols, int rows) {
  // A throwaway script in the temporary directory, with absolute CSV paths.
  static std::atomic<int> counter{0};
  const fs::path script = fs::temp_directory_path() / ("attnlab_plot_" + std::to_string(::getpid()) + "_" +
                                                       std::to_string(counter++) + ".gp");
  std::string text = "set terminal dumb size " + std::to_string(cols) + "," + std::to_string(rows) + " noenhanced\n";
  text += line_plot_body(ss, o, fs::path(), "outside below Left reverse samplen 2 width 3");
  write_file(script, text);
  std::string drawing;
  const bool ok = run_script(script, &drawing);
  std::error_code ec;
  fs::remove(script, ec);
  drawing.erase(std::remove(drawing.begin(), drawing.end(), '\f'), drawing.end());  // dumb's form feed
  if (ok) out << drawing << std::flush;
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Heatmaps

namespace {
void write_matrix(const fs::path& csv, const std::vector<std::vector<double>>& m, int digits) {
  std::string text;
  for (const auto& row : m) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c) text += ',';
      text += number(row[c], digits);
    }
    text += '\n';
  }
  write_file(csv, text);
}
}  // namespace

void write_matrix_csv(const fs::path& csv, const std::vector<std::vector<double>>& m) { write_matrix(csv, m, 9); }

void write_matrix_csv(const fs::path& csv, const ag::Tensor& m) {
  if (!m.defined() || m.dim() != 2) ag::fail("write_matrix_csv: want a matrix [R, C], got ", m.defined() ? ag::shape_str(m.shape()) : "an undefined tensor");
  const std::size_t R = m.size(0), C = m.size(1);
  const std::vector<double> v = m.to_vector();
  std::vector<std::vector<double>> rows(R, std::vector<double>(C));
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t c = 0; c < C; ++c) rows[r][c] = v[r * C + c];
  // float32 data with 7 digits: 0.7f is written "0.7", not "0.699999988".
  write_matrix(csv, rows, m.dtype() == ag::f32 ? 7 : 9);
}

namespace {
// A matrix CSV's size and the cells that hold exactly 0.
struct MatrixInfo {
  std::size_t rows = 0, cols = 0;
  std::vector<std::pair<std::size_t, std::size_t>> zeros;
};
MatrixInfo read_matrix_info(const fs::path& matrix_csv) {
  std::ifstream f(matrix_csv);
  if (!f) ag::fail("heatmap: cannot read '", matrix_csv.string(), "'");
  MatrixInfo m;
  for (std::string line; std::getline(f, line);) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::size_t c = 0;
    for (std::string cell; std::getline(ss, cell, ','); ++c)
      if (std::strtod(cell.c_str(), nullptr) == 0.0) m.zeros.emplace_back(m.rows, c);
    m.cols = std::max(m.cols, c);
    ++m.rows;
  }
  if (m.rows == 0) ag::fail("heatmap: '", matrix_csv.string(), "' holds no rows");
  return m;
}

std::string palette(const std::string& name) {
  if (name == "viridis") return "set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', 1 '#fde725')\n";
  if (name == "gray") return "set palette defined (0 'white', 1 'black')\n";
  if (name == "blues") return "set palette defined (0 '#f7fbff', 0.5 '#6baed6', 1 '#08306b')\n";
  ag::fail("heatmap: unknown palette '", name, "' (blues, viridis, gray)");
}

// The commands that draw one matrix (title, labels, ticks, marks, plot), for a script run in `dir`.
std::string heatmap_body(const fs::path& matrix_csv, const HeatmapOptions& o, const fs::path& dir) {
  const MatrixInfo m = read_matrix_info(matrix_csv);
  const std::size_t R = m.rows, C = m.cols;
  if (!o.xticks.empty() && o.xticks.size() != C)
    ag::fail("heatmap: ", o.xticks.size(), " x tick labels for ", C, " columns");
  if (!o.yticks.empty() && o.yticks.size() != R)
    ag::fail("heatmap: ", o.yticks.size(), " y tick labels for ", R, " rows");
  std::ostringstream g;
  g << "set title " << q(o.title) << "\n";
  g << "set xlabel " << q(o.xlabel) << "\nset ylabel " << q(o.ylabel) << "\n";
  // Row 0 at the top, as a matrix is printed.
  g << "set xrange [-0.5:" << C - 0.5 << "]\nset yrange [" << R - 0.5 << ":-0.5]\n";
  auto tics = [&](const char* axis, const std::vector<std::string>& labels) {
    if (labels.empty()) {
      g << "set " << axis << "tics autofreq\n";
      return;
    }
    g << "set " << axis << "tics (";
    for (std::size_t i = 0; i < labels.size(); ++i) g << (i ? ", " : "") << q(labels[i]) << " " << i;
    g << ")";
    if (std::string(axis) == "x" && labels.size() > 12) g << " rotate by 90 right";
    g << "\n";
  };
  tics("x", o.xticks);
  tics("y", o.yticks);
  g << "unset label\n";
  if (o.mark_zeros)  // a weight of exactly 0 (a masked cell) must not look like a tiny weight
    for (const auto& [r, c] : m.zeros)
      g << "set label " << q("x") << " at " << c << "," << r << " center front textcolor rgb '#c0392b'\n";
  g << "plot " << q(rel(matrix_csv, dir)) << " matrix with image notitle\n";
  return g.str();
}

std::string heatmap_setup(const HeatmapOptions& o) {
  std::ostringstream g;
  g << "set datafile separator comma\n" << palette(o.palette);
  if (auto r = range(o.zmin, o.zmax); !r.empty()) g << "set cbrange " << r << "\n";
  g << "set tics scale 0\nset size ratio -1\n";
  return g.str();
}
}  // namespace

bool heatmap(const fs::path& png, const fs::path& matrix_csv, const HeatmapOptions& o) {
  const fs::path dir = png.has_parent_path() ? png.parent_path() : fs::path(".");
  const std::string body = heatmap_setup(o) + heatmap_body(matrix_csv, o, dir);
  return draw_files(png, body, o.width, o.height, "lab::heatmap");
}

bool heatmap_grid(const fs::path& png, const std::vector<ag::Tensor>& panels, const std::vector<std::string>& titles,
                  const HeatmapOptions& o, std::size_t per_row) {
  if (panels.empty()) ag::fail("heatmap_grid: no panels");
  if (titles.size() != panels.size())
    ag::fail("heatmap_grid: ", titles.size(), " titles for ", panels.size(), " panels");
  if (per_row == 0) ag::fail("heatmap_grid: per_row must be >= 1");
  const fs::path dir = png.has_parent_path() ? png.parent_path() : fs::path(".");
  fs::path base = png;
  base.replace_extension();
  const std::size_t rows = (panels.size() + per_row - 1) / per_row, cols = std::min(per_row, panels.size());
  std::ostringstream body;
  body << "set multiplot layout " << rows << "," << cols << " title " << q(o.title) << "\n";
  for (std::size_t i = 0; i < panels.size(); ++i) {
    std::string suffix = "_";  // (not "_" + to_string(): GCC 12 warns falsely about that)
    suffix += std::to_string(i + 1);
    suffix += ".csv";
    const fs::path csv = fs::path(base).concat(suffix);
    write_matrix_csv(csv, panels[i]);
    HeatmapOptions panel = o;
    panel.title = titles[i];
    panel.ylabel = i % per_row == 0 ? o.ylabel : "";  // the y label once per row, the ticks on every panel
    body << heatmap_body(csv, panel, dir);
  }
  body << "unset multiplot\n";
  // multiplot cannot be replotted: the script draws it once per terminal.
  const fs::path script = fs::path(base).concat(".gp");
  std::ostringstream g;
  g << header_comment(script, "lab::heatmap_grid") << heatmap_setup(o);
  g << "set terminal pngcairo size " << o.width << "," << o.height << " " << kFont << " noenhanced\n";
  g << "set output " << q(fs::path(base).concat(".png").filename().string()) << "\n" << body.str() << "unset output\n";
  g << "set terminal svg size " << o.width << "," << o.height << " dynamic " << kFont << " noenhanced background rgb 'white'\n";
  g << "set output " << q(fs::path(base).concat(".svg").filename().string()) << "\n" << body.str() << "unset output\n";
  write_file(script, g.str());
  return run_script(script);
}

bool heatmap(const fs::path& png, const ag::Tensor& m, const HeatmapOptions& o) {
  fs::path csv = png;
  csv.replace_extension(".csv");
  write_matrix_csv(csv, m);
  return heatmap(png, csv, o);
}

}  // namespace lab
