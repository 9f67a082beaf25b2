// chapter_sync: keeps a chapter's quoted figures equal to what its lesson's run produced.
//
//   chapter_sync update LESSON_DIR RUN_DIR   rewrite every generated section of LESSON_DIR/README.md
//                                            from RUN_DIR/chapter/NAME.md; copy the run's figures
//                                            (RUN_DIR/chapter/figures.txt) into LESSON_DIR
//   chapter_sync check LESSON_DIR RUN_DIR    exit 1, with the differences, when a section differs
//
// A generated section in a chapter (see lessons/common/chapter.hpp):
//
//   <!-- generated: NAME on AVX2 -->     "on" names the SIMD target of the run that wrote it
//   ...
//   <!-- end generated -->
//
// Sections that start with the timing marker are compared with every number masked: timings
// differ from run to run, their words and layout do not.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const char* kTimingMarker = "<!-- timings: not compared -->";  // as lab::kTimingMarker
const std::regex kBegin(R"(^<!-- generated: ([A-Za-z0-9_-]+)(?: on ([A-Za-z0-9_]+))? -->\s*$)");
const std::regex kEnd(R"(^<!-- end generated -->\s*$)");
const std::regex kNumber(R"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)");

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// One marked section of a chapter: its name, the target it was made on, the lines between the
// markers, and where those lines are in the file.
struct Section {
  std::string name, target;
  std::size_t begin = 0, end = 0;  // indices of the marker lines
  std::vector<std::string> body;
};

std::vector<Section> sections(const std::vector<std::string>& lines, const fs::path& file) {
  std::vector<Section> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    if (!std::regex_match(lines[i], m, kBegin)) {
      if (std::regex_match(lines[i], kEnd))
        throw std::runtime_error(file.string() + ":" + std::to_string(i + 1) + ": 'end generated' without a start");
      continue;
    }
    Section s{m[1], m[2], i, 0, {}};
    if (!seen.insert(s.name).second)
      throw std::runtime_error(file.string() + ": section '" + s.name + "' appears twice");
    std::size_t j = i + 1;
    for (; j < lines.size() && !std::regex_match(lines[j], kEnd); ++j) {
      if (std::regex_match(lines[j], kBegin))
        throw std::runtime_error(file.string() + ":" + std::to_string(j + 1) + ": section '" + s.name + "' is not closed");
      s.body.push_back(lines[j]);
    }
    if (j == lines.size()) throw std::runtime_error(file.string() + ": section '" + s.name + "' is not closed");
    s.end = j;
    out.push_back(s);
    i = j;
  }
  return out;
}

std::string mask_numbers(const std::string& text) { return std::regex_replace(text, kNumber, "#"); }

std::vector<double> numbers(const std::string& text) {
  std::vector<double> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kNumber); it != std::sregex_iterator(); ++it)
    out.push_back(std::strtod(it->str().c_str(), nullptr));
  return out;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// What differs between the chapter's section and the run's, for a person to read.
std::string explain(const Section& s, const std::string& chapter, const std::string& run, const std::string& run_target) {
  std::ostringstream os;
  os << "section '" << s.name << "' differs from the run";
  if (!s.target.empty() && s.target != run_target)
    os << " (the chapter's was made on " << s.target << ", this run is on " << run_target << ")";
  else if (!s.target.empty())
    os << " (both on " << run_target << ")";
  os << ":\n";
  const auto a = lines_of(chapter), b = lines_of(run);
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string la = i < a.size() ? a[i] : "", lb = i < b.size() ? b[i] : "";
    if (la == lb) continue;
    os << "    chapter: " << la << "\n    run:     " << lb << "\n";
  }
  const auto na = numbers(chapter), nb = numbers(run);
  if (na.size() == nb.size() && mask_numbers(chapter) == mask_numbers(run)) {
    double worst_abs = 0, worst_rel = 0;
    for (std::size_t i = 0; i < na.size(); ++i) {
      const double d = std::abs(na[i] - nb[i]);
      worst_abs = std::max(worst_abs, d);
      worst_rel = std::max(worst_rel, d / std::max(std::abs(na[i]), 1e-300));
    }
    os << "  only numbers differ: largest difference " << worst_abs << " (relative " << worst_rel << ")\n";
  }
  return os.str();
}

int run(const std::string& mode, const fs::path& lesson, const fs::path& run_dir) {
  const fs::path readme = lesson / "README.md", gen = run_dir / "chapter";
  if (!fs::is_directory(gen))
    throw std::runtime_error(gen.string() + " does not exist: run the lesson's default mode with --out " + run_dir.string());
  std::string run_target = "unknown";
  if (fs::exists(gen / "target.txt")) run_target = trimmed(read(gen / "target.txt"));
  std::vector<std::string> lines = lines_of(read(readme));
  const std::vector<Section> secs = sections(lines, readme);

  std::map<std::string, std::string> produced;  // name -> the run's text
  for (const auto& e : fs::directory_iterator(gen))
    if (e.path().extension() == ".md") produced[e.path().stem().string()] = read(e.path());

  int problems = 0;
  std::set<std::string> in_chapter;
  for (const auto& s : secs) {
    in_chapter.insert(s.name);
    if (!produced.count(s.name)) {
      std::cerr << readme.string() << ": section '" << s.name << "': the run wrote no chapter/" << s.name << ".md\n";
      ++problems;
    }
  }
  for (const auto& [name, text] : produced)
    if (!in_chapter.count(name)) {
      std::cerr << readme.string() << ": the run wrote chapter/" << name << ".md but the chapter has no section '" << name
                << "' (add <!-- generated: " << name << " --> ... <!-- end generated -->)\n";
      ++problems;
    }
  std::vector<std::string> figures = lines_of(fs::exists(gen / "figures.txt") ? read(gen / "figures.txt") : "");

  if (mode == "check") {
    for (const auto& s : secs) {
      if (!produced.count(s.name)) continue;
      const std::string chapter = trimmed(join(s.body)), got = trimmed(produced[s.name]);
      const bool timing = got.rfind(kTimingMarker, 0) == 0;
      if (timing ? mask_numbers(chapter) == mask_numbers(got) : chapter == got) continue;
      std::cerr << readme.string() << ": " << explain(s, chapter, got, run_target);
      ++problems;
    }
    for (const auto& f : figures)
      if (!f.empty() && !fs::exists(lesson / f)) {
        std::cerr << readme.string() << ": figure '" << f << "' is not committed next to the chapter (run ./lab docs)\n";
        ++problems;
      }
    if (problems) {
      std::cerr << problems << " difference(s) between " << readme.string() << " and the run in " << run_dir.string()
                << "\nTo bring the chapter up to date: ./lab docs " << lesson.filename().string().substr(0, 2) << "\n";
      return 1;
    }
    std::cout << readme.string() << ": " << secs.size() << " generated sections match the run (" << run_target << ")\n";
    return 0;
  }

  // update: rebuild the file from the end so that earlier indices stay valid
  for (auto it = secs.rbegin(); it != secs.rend(); ++it) {
    if (!produced.count(it->name)) continue;
    std::vector<std::string> body = lines_of(trimmed(produced[it->name]));
    body.insert(body.begin(), "<!-- generated: " + it->name + " on " + run_target + " -->");
    lines.erase(lines.begin() + std::ptrdiff_t(it->begin), lines.begin() + std::ptrdiff_t(it->end));
    lines.insert(lines.begin() + std::ptrdiff_t(it->begin), body.begin(), body.end());
  }
  const fs::path tmp = readme.string() + ".tmp";
  std::ofstream(tmp, std::ios::binary) << join(lines);
  fs::rename(tmp, readme);
  int copied = 0;
  for (const auto& f : figures) {
    if (f.empty()) continue;
    fs::copy_file(run_dir / f, lesson / f, fs::copy_options::overwrite_existing);
    ++copied;
  }
  std::cout << readme.string() << ": " << secs.size() << " sections rewritten, " << copied << " figures copied (" << run_target
            << ")\n";
  return problems ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || (std::string(argv[1]) != "update" && std::string(argv[1]) != "check")) {
    std::cerr << "usage: chapter_sync update|check LESSON_DIR RUN_DIR\n";
    return 2;
  }
  try {
    return run(argv[1], argv[2], argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "chapter_sync: " << e.what() << "\n";
    return 2;
  }
}
