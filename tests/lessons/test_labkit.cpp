// The rest of the lab kit: CSV curves and gnuplot plots, the lesson command line, the progress
// bar and the results table.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/labkit.hpp"

namespace fs = std::filesystem;

namespace {

// A fresh directory under the system's temporary directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("attnlab_labkit_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& f) const { return path / f; }
};

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool is_png(const fs::path& p) {
  const std::string s = read(p);
  return s.size() > 100 && s.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

// Restores the default gnuplot command even when a test fails.
struct GnuplotGuard {
  ~GnuplotGuard() { lab::set_gnuplot(""); }
};

fs::path write_curves(const TempDir& dir) {
  lab::CurveLog log(dir / "loss.csv", {"train", "eval"});
  for (int s = 1; s <= 50; ++s) log.log(s, {1.0 / s, 1.2 / s + 0.01});
  return log.path();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(labkit)

// ---- curves --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(curvelog_writes_parseable_csv) {
  TempDir dir;
  lab::CurveLog log(dir / "sub" / "run.csv", {"loss", "acc"});
  for (int s = 0; s < 10; ++s) {
    log.log(s * 100, {std::exp(-0.3 * s), 0.1 * s});
    // Flushed as it goes: the row is on disk before the log is closed.
    std::ifstream f(log.path());
    std::string line;
    int n = 0;
    while (std::getline(f, line)) ++n;
    BOOST_TEST(n == s + 2);
  }
  BOOST_TEST(log.rows() == 10);
  std::ifstream f(log.path());
  std::string line;
  std::getline(f, line);
  BOOST_TEST(line == "step,loss,acc");
  BOOST_TEST(lab::csv_header(log.path()) == (std::vector<std::string>{"step", "loss", "acc"}));
  int rows = 0;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<double> v;
    while (std::getline(ss, cell, ',')) {
      std::size_t used = 0;
      v.push_back(std::stod(cell, &used));
      BOOST_TEST(used == cell.size());
    }
    BOOST_REQUIRE(v.size() == 3u);
    for (double x : v) BOOST_TEST(std::isfinite(x));
    BOOST_TEST(v[0] == rows * 100.0);
    BOOST_TEST(v[1] == std::exp(-0.3 * rows), boost::test_tools::tolerance(1e-8));
    ++rows;
  }
  BOOST_TEST(rows == 10);
  BOOST_CHECK_THROW(log.log(1, {1.0}), ag::Error);
  BOOST_CHECK_THROW(lab::CurveLog(dir / "bad.csv", {"a,b"}), ag::Error);
}

BOOST_AUTO_TEST_CASE(plot_writes_png_svg_and_script) {
  TempDir dir;
  const fs::path csv = write_curves(dir);
  lab::PlotOptions po{.title = "test curves", .ylabel = "loss", .logy = true, .hlines = {{0.167, "baseline"}}};
  auto ss = lab::series(csv, {"train", "eval"});
  ss[1].title = "held-out";
  const bool drawn = lab::plot(dir / "loss.png", ss, po);
  BOOST_TEST(fs::exists(dir / "loss.gp"));
  const std::string script = read(dir / "loss.gp");
  BOOST_TEST(script.find("'loss.csv'") != std::string::npos);  // relative to the script
  BOOST_TEST(script.find("set logscale y") != std::string::npos);
  BOOST_TEST(script.find("held-out") != std::string::npos);
  if (!lab::gnuplot_available()) {
    BOOST_WARN_MESSAGE(false, "gnuplot not installed: PNG not checked");
    BOOST_TEST(!drawn);
    return;
  }
  BOOST_TEST(drawn);
  BOOST_TEST(is_png(dir / "loss.png"));
  const std::string svg = read(dir / "loss.svg");
  BOOST_TEST(svg.find("<svg") != std::string::npos);
  // The script reruns from its own directory.
  BOOST_CHECK_THROW(lab::plot(dir / "x.png", lab::series(csv, {"nope"}), po), ag::Error);
  BOOST_CHECK_THROW(lab::plot(dir / "x.png", {}, po), ag::Error);
}

BOOST_AUTO_TEST_CASE(plot_metric_vs_T) {
  TempDir dir;
  lab::CurveLog log(dir / "vs_T.csv", {"rnn", "lstm"}, "T");
  for (int T : {10, 20, 50, 100, 200}) log.log(T, {0.9 - T / 400.0, 0.95});
  const bool drawn = lab::plot(dir / "vs_T.png", lab::series(log.path(), {"rnn", "lstm"}, "T", "linespoints"),
                               {.title = "accuracy vs T", .xlabel = "T", .ylabel = "accuracy", .logx = true,
                                .ymin = 0, .ymax = 1});
  BOOST_TEST(read(dir / "vs_T.gp").find("using \"T\":\"rnn\" with linespoints") != std::string::npos);
  if (lab::gnuplot_available()) BOOST_TEST((drawn && is_png(dir / "vs_T.png")));
}

BOOST_AUTO_TEST_CASE(plot_terminal_draws_frame) {
  TempDir dir;
  const fs::path csv = write_curves(dir);
  std::ostringstream out;
  const bool drawn = lab::plot_terminal(lab::series(csv, {"train"}), {.title = "loss"}, out, 70, 18);
  if (!lab::gnuplot_available()) {
    BOOST_WARN_MESSAGE(false, "gnuplot not installed: terminal plot not checked");
    return;
  }
  BOOST_TEST(drawn);
  const std::string s = out.str();
  BOOST_TEST_MESSAGE(s);
  // The dumb terminal's frame: corners '+' joined by a row of '-', and '|' sides.
  BOOST_TEST(s.find("+-----") != std::string::npos);
  BOOST_TEST(s.find('|') != std::string::npos);
  BOOST_TEST(s.find("train") != std::string::npos);
  int lines = 0;
  for (char c : s) lines += c == '\n';
  BOOST_TEST((lines >= 15 && lines <= 20));
}

BOOST_AUTO_TEST_CASE(heatmap_writes_png) {
  TempDir dir;
  // Attention-like rows (each sums to 1), tokens with characters gnuplot might misread.
  std::vector<double> w = {0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.05, 0.15, 0.8, 0.3, 0.3, 0.4};
  ag::Tensor m = ag::tensor(w, {4, 3});
  lab::HeatmapOptions ho{.title = "alignment", .xlabel = "source", .ylabel = "output",
                         .xticks = {"it's", "a_b", "<eos>"}, .yticks = {"x", "y", "z", "^"}, .zmin = 0, .zmax = 1};
  const bool drawn = lab::heatmap(dir / "attn.png", m, ho);
  BOOST_TEST(fs::exists(dir / "attn.csv"));
  BOOST_TEST(read(dir / "attn.csv").substr(0, 12) == "0.7,0.2,0.1\n");
  BOOST_TEST(read(dir / "attn.gp").find("'it''s' 0") != std::string::npos);
  if (lab::gnuplot_available()) {
    BOOST_TEST(drawn);
    BOOST_TEST(is_png(dir / "attn.png"));
    BOOST_TEST(fs::exists(dir / "attn.svg"));
  }
  ho.palette = "viridis";
  ho.xticks = {};
  lab::write_matrix_csv(dir / "m2.csv", std::vector<std::vector<double>>{{1, 2}, {3, 4}, {5, 6}, {7, 8}});
  const bool drawn2 = lab::heatmap(dir / "m2.png", dir / "m2.csv", ho);
  if (lab::gnuplot_available()) BOOST_TEST((drawn2 && is_png(dir / "m2.png")));
  ho.xticks = {"only one"};
  BOOST_CHECK_THROW(lab::heatmap(dir / "m3.png", dir / "m2.csv", ho), ag::Error);
}

BOOST_AUTO_TEST_CASE(missing_gnuplot_still_writes_csv) {
  GnuplotGuard guard;
  TempDir dir;
  lab::set_gnuplot((dir / "no" / "such" / "gnuplot").string());
  BOOST_TEST(!lab::gnuplot_available());
  fs::path csv;
  BOOST_CHECK_NO_THROW(csv = write_curves(dir));
  BOOST_TEST(fs::file_size(csv) > 0u);
  bool drawn = true;
  BOOST_CHECK_NO_THROW(drawn = lab::plot(dir / "loss.png", lab::series(csv, {"train"}), {}));
  BOOST_TEST(!drawn);
  BOOST_TEST(!fs::exists(dir / "loss.png"));
  BOOST_TEST(fs::exists(dir / "loss.gp"));
  std::ostringstream out;
  BOOST_CHECK_NO_THROW(drawn = lab::plot_terminal(lab::series(csv, {"train"}), {}, out));
  BOOST_TEST(!drawn);
  BOOST_CHECK_NO_THROW(drawn = lab::heatmap(dir / "h.png", ag::tensor({1, 2, 3, 4}, {2, 2}), {}));
  BOOST_TEST(!drawn);
  BOOST_TEST(fs::exists(dir / "h.csv"));

  // The environment variable is honoured too (set_gnuplot("") defers to it).
  lab::set_gnuplot("");
  ::setenv("ATTNLAB_GNUPLOT", "/nonexistent/gnuplot", 1);
  BOOST_TEST(lab::gnuplot_command() == "/nonexistent/gnuplot");
  BOOST_CHECK_NO_THROW(drawn = lab::plot(dir / "loss2.png", lab::series(csv, {"eval"}), {}));
  BOOST_TEST(!drawn);
  ::unsetenv("ATTNLAB_GNUPLOT");
  BOOST_TEST(lab::gnuplot_command() == "gnuplot");
}

// ---- command line --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(cli_parses_common_options) {
  TempDir dir;
  const std::string out = (dir / "X").string();
  lab::Cli cli("99_test", "a test lesson");
  int width = 8;
  cli.app().add_option("--width", width, "a lesson option");
  const char* argv[] = {"lesson", "--quick", "--seed", "3", "--out", out.c_str(), "--steps", "10", "--width", "16"};
  auto r = cli.try_parse(10, argv);
  BOOST_TEST(r.run);
  BOOST_TEST(r.message.empty());
  BOOST_TEST(r.args.quick);
  BOOST_TEST(r.args.seed == 3u);
  BOOST_TEST(r.args.out == fs::path(out));
  BOOST_TEST(fs::is_directory(out));  // created
  BOOST_TEST(r.args.steps == 10);
  BOOST_TEST(!r.args.detect_anomaly);
  BOOST_TEST(r.args.name == "99_test");
  BOOST_TEST(width == 16);
  BOOST_TEST(r.args.steps_or(1000, 50) == 10);
  BOOST_TEST(r.args.path("loss.csv") == fs::path(out) / "loss.csv");

  lab::Cli cli2("99_test", "a test lesson");
  const char* argv2[] = {"lesson", "--out", out.c_str(), "--detect-anomaly"};
  auto r2 = cli2.try_parse(4, argv2);
  BOOST_TEST(r2.run);
  BOOST_TEST(!r2.args.quick);
  BOOST_TEST(r2.args.seed == 0u);
  BOOST_TEST(r2.args.steps == 0);
  BOOST_TEST(r2.args.detect_anomaly);
  BOOST_TEST(r2.args.steps_or(1000, 50) == 1000);
}

BOOST_AUTO_TEST_CASE(cli_bad_value_exits_2) {
  TempDir dir;
  const std::string out = (dir / "X").string();
  {
    lab::Cli cli("99_test", "a test lesson");
    const char* argv[] = {"lesson", "--out", out.c_str(), "--steps", "abc"};
    auto r = cli.try_parse(5, argv);
    BOOST_TEST(!r.run);
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST_MESSAGE(r.message);
    BOOST_TEST(r.message.find("--steps") != std::string::npos);
    BOOST_TEST(r.message.find("abc") != std::string::npos);
  }
  {
    lab::Cli cli("99_test", "a test lesson");
    const char* argv[] = {"lesson", "--out", out.c_str(), "--steps", "-5"};
    BOOST_TEST(cli.try_parse(5, argv).exit_code == 2);
  }
  {
    lab::Cli cli("99_test", "a test lesson");
    const char* argv[] = {"lesson", "--no-such-option"};
    auto r = cli.try_parse(2, argv);
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.message.find("no-such-option") != std::string::npos);
  }
  {
    lab::Cli cli("99_test", "a test lesson");
    const char* argv[] = {"lesson", "--help"};
    auto r = cli.try_parse(2, argv);
    BOOST_TEST(!r.run);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.message.find("--quick") != std::string::npos);
    BOOST_TEST(r.message.find("--detect-anomaly") != std::string::npos);
  }
  {  // run_lesson: the same code, and the body never runs
    lab::Cli cli("99_test", "a test lesson");
    const char* argv[] = {"lesson", "--out", out.c_str(), "--seed", "x"};
    bool ran = false;
    const int code = lab::run_lesson(5, argv, cli, [&](const lab::LessonArgs&) {
      ran = true;
      return 0;
    });
    BOOST_TEST(code == 2);
    BOOST_TEST(!ran);
  }
}

BOOST_AUTO_TEST_CASE(run_lesson_turns_errors_into_status_2) {
  TempDir dir;
  const std::string out = (dir / "X").string();
  BOOST_TEST(lab::run_lesson([] { return 0; }) == 0);
  BOOST_TEST(lab::run_lesson([] { return 3; }) == 3);
  BOOST_TEST(lab::run_lesson([]() -> int { ag::fail("matmul: shapes [2,3] and [2,3] do not align"); }) == 2);
  BOOST_TEST(lab::run_lesson([]() -> int { throw std::runtime_error("boom"); }) == 2);
  lab::Cli cli("99_test", "a test lesson");
  const char* argv[] = {"lesson", "--out", out.c_str(), "--quick"};
  std::uint64_t seed = 99;
  const int code = lab::run_lesson(4, argv, cli, [&](const lab::LessonArgs& a) {
    seed = a.seed;
    ag::matmul(ag::zeros({2, 3}), ag::zeros({2, 3}));  // a shape error inside the lesson
    return 0;
  });
  BOOST_TEST(code == 2);
  BOOST_TEST(seed == 0u);
}

// ---- progress ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(progress_plain_prints_bounded_lines) {
  std::ostringstream out;
  {
    lab::Progress bar(1000, "train", {.mode = lab::ProgressOptions::Mode::plain, .out = &out});
    BOOST_TEST(!bar.is_tty());
    for (int s = 1; s <= 1000; ++s) bar.update(s, {{"loss", 1.0 / s}, {"acc", s / 1000.0}});
  }
  const std::string s = out.str();
  BOOST_TEST_MESSAGE(s);
  int lines = 0;
  for (char c : s) lines += c == '\n';
  BOOST_TEST((lines >= 5 && lines <= 12), lines << " lines");
  BOOST_TEST(s.find('\r') == std::string::npos);
  BOOST_TEST(s.find("1000/1000") != std::string::npos);
  BOOST_TEST(s.find("loss 0.0010") != std::string::npos);
  BOOST_TEST(s.find("acc 1.0000") != std::string::npos);
  BOOST_TEST(s.find("it/s") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(progress_tty_redraws_in_place) {
  std::ostringstream out;
  lab::Progress bar(200, "fit", {.mode = lab::ProgressOptions::Mode::tty, .out = &out, .redraw_seconds = 0.0});
  for (int s = 1; s <= 100; ++s) bar.tick({{"loss", 0.5}});
  const std::string mid = out.str();
  BOOST_TEST(mid.find('\n') == std::string::npos);  // all in one line so far
  BOOST_TEST(mid.find('\r') != std::string::npos);
  BOOST_TEST(mid.find("[##########..........]") != std::string::npos);  // 50%
  BOOST_TEST(mid.find(" < ") != std::string::npos);                       // an ETA
  bar.update(200);
  const std::string end = out.str();
  BOOST_TEST(end.back() == '\n');
  BOOST_TEST(end.find("200/200") != std::string::npos);
  bar.finish();  // idempotent
  BOOST_TEST(out.str() == end);

  // Throttled: with the default 0.1 s interval, a fast loop draws only a few times.
  std::ostringstream out2;
  {
    lab::Progress fast(100000, "", {.mode = lab::ProgressOptions::Mode::tty, .out = &out2});
    for (int s = 1; s <= 100000; ++s) fast.update(s);
  }
  int draws = 0;
  for (char c : out2.str()) draws += c == '\r';
  BOOST_TEST(draws < 50);
  BOOST_TEST(lab::format_duration(65) == "1:05");
  BOOST_TEST(lab::format_duration(3600 * 2 + 3) == "2:00:03");
}

// ---- results table -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(table_prints_and_saves_markdown) {
  TempDir dir;
  lab::Table t("Adding problem", {"model", "T", "MSE"});
  t.row({"RNN", 100, 0.16667}).row({"LSTM", 1000, 0.0000123});
  BOOST_CHECK_THROW(t.row({"too few"}), ag::Error);
  const std::string text = t.text();
  BOOST_TEST_MESSAGE(text);
  std::istringstream is(text);
  std::string title, header, rule, r1, r2;
  std::getline(is, title);
  std::getline(is, header);
  std::getline(is, rule);
  std::getline(is, r1);
  std::getline(is, r2);
  BOOST_TEST(title == "Adding problem");
  BOOST_TEST(r1 == "RNN     100     0.1667");
  BOOST_TEST(r2 == "LSTM   1000  1.230e-05");
  BOOST_TEST(header == "model     T        MSE");
  const std::string md = t.markdown();
  BOOST_TEST(md.find("## Adding problem\n\n| model | T | MSE |\n|---|---:|---:|\n| RNN | 100 | 0.1667 |") == 0u);
  t.save_markdown(dir / "report.md");
  lab::Table t2("Second", {"a"});
  t2.row({1.5});
  t2.save_markdown(dir / "report.md", true);
  const std::string report = read(dir / "report.md");
  BOOST_TEST(report.find("## Adding problem") == 0u);
  BOOST_TEST(report.find("\n\n## Second\n") != std::string::npos);
  BOOST_TEST(lab::format_number(812.345) == "812.3");
  BOOST_TEST(lab::format_number(12345.6) == "12346");
  BOOST_TEST(lab::format_number(0.05) == "0.05000");
  BOOST_TEST(lab::format_number(0) == "0");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- SeedStats, lab::Chapter and chapter_sync: chapters that quote their runs ----------------

BOOST_AUTO_TEST_SUITE(chapter_kit)

BOOST_AUTO_TEST_CASE(seed_stats_median_range_count) {
  lab::SeedStats s;
  for (double v : {0.94, 0.125, 0.5, 0.13, 0.815}) s.add(v);
  BOOST_TEST(s.size() == 5u);
  BOOST_TEST(s.median() == 0.5);
  BOOST_TEST(s.min() == 0.125);
  BOOST_TEST(s.max() == 0.94);
  BOOST_TEST(s.range() == "0.125 to 0.940");
  BOOST_TEST(s.all() == "0.940, 0.125, 0.500, 0.130, 0.815");
  BOOST_TEST(s.count([](double v) { return v < 0.2; }) == 2u);
  s.add(0.2);
  BOOST_TEST(s.median() == (0.2 + 0.5) / 2);  // even count: mean of the two middle values
  BOOST_CHECK_THROW(lab::SeedStats{}.median(), ag::Error);
}

namespace {
// A lesson directory with a chapter quoting two sections, and a run directory written by lab::Chapter.
struct ChapterFixture {
  TempDir dir;
  fs::path lesson = dir / "05_demo", run = dir / "run";
  ChapterFixture() {
    fs::create_directories(lesson);
    std::ofstream(lesson / "README.md") << "# Demo\n\nThe table:\n\n<!-- generated: accuracy -->\nold\n<!-- end generated -->\n\n"
                                        << "Time:\n<!-- generated: speed -->\n<!-- end generated -->\nEnd.\n";
    write_run(0.815, 12.5);
  }
  void write_run(double acc, double seconds) {
    lab::LessonArgs args;
    args.out = run;
    fs::create_directories(run);
    lab::Chapter chapter(args);
    lab::Table t("ignored title", {"T", "accuracy"});
    t.row({50, acc});
    chapter.table("accuracy", t);
    chapter.text("speed", "One run takes " + lab::format_number(seconds) + " s.", lab::Timing::yes);
    std::ofstream(run / "curve.png") << "png";
    chapter.figure("curve.png");
  }
  int sync(const std::string& mode) const {
    const std::string cmd = std::string(CHAPTER_SYNC) + " " + mode + " '" + lesson.string() + "' '" + run.string() + "' 2>/dev/null >/dev/null";
    const int status = std::system(cmd.c_str());
    return WEXITSTATUS(status);
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(update_then_check) {
  ChapterFixture f;
  BOOST_TEST(f.sync("check") == 1);  // "old" is not what the run wrote; the figure is not copied yet
  BOOST_TEST(f.sync("update") == 0);
  const std::string text = read(f.lesson / "README.md");
  BOOST_TEST(text.find("| 50 | 0.8150 |") != std::string::npos, text);
  BOOST_TEST(text.find("<!-- generated: accuracy on " + std::string(ag::simd_target()) + " -->") != std::string::npos, text);
  BOOST_TEST(text.find("ignored title") == std::string::npos);
  BOOST_TEST(text.find("End.") != std::string::npos);  // the rest of the chapter is kept
  BOOST_TEST(fs::exists(f.lesson / "curve.png"));
  BOOST_TEST(f.sync("check") == 0);
}

BOOST_AUTO_TEST_CASE(a_changed_figure_fails_a_changed_timing_does_not) {
  ChapterFixture f;
  BOOST_REQUIRE(f.sync("update") == 0);
  f.write_run(0.815, 99.0);  // only the timing changed
  BOOST_TEST(f.sync("check") == 0);
  f.write_run(0.816, 12.5);  // a measured figure changed
  BOOST_TEST(f.sync("check") == 1);
}

BOOST_AUTO_TEST_CASE(sections_must_match_one_to_one) {
  ChapterFixture f;
  BOOST_REQUIRE(f.sync("update") == 0);
  lab::LessonArgs args;
  args.out = f.run;
  lab::Chapter(args).text("accuracy", "x");  // a fresh Chapter clears the run's sections: 'speed' is gone
  BOOST_TEST(f.sync("check") == 1);
  std::ofstream(f.lesson / "README.md") << "<!-- generated: accuracy -->\nunclosed\n";
  BOOST_TEST(f.sync("check") == 2);  // a malformed chapter is an error, not a difference
}

BOOST_AUTO_TEST_CASE(chapter_rejects_bad_names_and_missing_figures) {
  TempDir d;
  lab::LessonArgs args;
  args.out = d.path;
  lab::Chapter chapter(args);
  BOOST_CHECK_THROW(chapter.text("has space", "x"), ag::Error);
  BOOST_CHECK_THROW(chapter.figure("absent.png"), ag::Error);
  BOOST_TEST(read(chapter.dir() / "target.txt") == std::string(ag::simd_target()) + "\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(heatmaps)

BOOST_AUTO_TEST_CASE(heatmap_grid_titles_every_panel_and_marks_zeros) {
  BOOST_REQUIRE(lab::gnuplot_available());  // ./lab installs gnuplot-nox
  TempDir d;
  const ag::Tensor a = ag::tensor({1.0, 0.0, 0.25, 0.75}, {2, 2}), b = ag::tensor({0.5, 0.5, 0.0, 1.0}, {2, 2});
  BOOST_TEST(lab::heatmap_grid(d / "heads.png", {a, b, a}, {"head 1", "head 2", "head 3"},
                               {.title = "Layer 1", .xlabel = "key", .ylabel = "query", .xticks = {"a", "b"},
                                .yticks = {"c", "d"}, .zmin = 0, .zmax = 1, .mark_zeros = true},
                               2));
  BOOST_TEST(is_png(d / "heads.png"));
  BOOST_TEST(fs::exists(d / "heads.svg"));
  for (int i = 1; i <= 3; ++i) BOOST_TEST(fs::exists(d / ("heads_" + std::to_string(i) + ".csv")));
  const std::string gp = read(d / "heads.gp");
  BOOST_TEST(gp.find("set multiplot layout 2,2 title 'Layer 1'") != std::string::npos, gp);
  for (const char* t : {"set title 'head 1'", "set title 'head 2'", "set title 'head 3'"}) BOOST_TEST(gp.find(t) != std::string::npos);
  BOOST_TEST(gp.find("set label 'x' at 1,0") != std::string::npos, gp);  // a's exact zero, row 0 column 1
  BOOST_CHECK_THROW(lab::heatmap_grid(d / "bad.png", {a, b}, {"only one title"}, {}, 2), ag::Error);
  BOOST_CHECK_THROW(lab::heatmap_grid(d / "bad.png", {}, {}, {}, 2), ag::Error);
}

BOOST_AUTO_TEST_SUITE_END()
