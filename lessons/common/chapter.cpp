// What a chapter quotes from its lesson's run (see chapter.hpp).
#include "common/chapter.hpp"

#include <fstream>
#include <system_error>

#include "ag/error.hpp"
#include "ag/tensor.hpp"

namespace lab {

namespace {
void write_file(const std::filesystem::path& file, const std::string& text, bool append = false) {
  std::ofstream f(file, append ? std::ios::app : std::ios::trunc);
  if (!f) ag::fail("Chapter: cannot write '", file.string(), "'");
  f << text;
}
bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}
}  // namespace

Chapter::Chapter(const LessonArgs& args) : dir_(args.out / "chapter") {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);  // nothing stale from an earlier run of another mode
  std::filesystem::create_directories(dir_, ec);
  if (ec) ag::fail("Chapter: cannot create '", dir_.string(), "': ", ec.message());
  write_file(dir_ / "target.txt", std::string(ag::simd_target()) + "\n");
  write_file(dir_ / "figures.txt", "");
}

void Chapter::text(const std::string& name, const std::string& markdown, Timing timing) const {
  if (!valid_name(name)) ag::fail("Chapter: section name '", name, "' must be letters, digits, '_' or '-'");
  std::string body = timing == Timing::yes ? std::string(kTimingMarker) + "\n" : std::string();
  body += markdown;
  if (body.empty() || body.back() != '\n') body += '\n';
  write_file(dir_ / (name + ".md"), body);
}

void Chapter::table(const std::string& name, const Table& t, Timing timing) const {
  text(name, t.markdown(/*with_title=*/false), timing);
}

void Chapter::figure(const std::string& png) const {
  if (!std::filesystem::exists(dir_.parent_path() / png))
    ag::fail("Chapter::figure: '", png, "' is not in '", dir_.parent_path().string(), "'");
  write_file(dir_ / "figures.txt", png + "\n", /*append=*/true);
}

std::filesystem::path lesson_source_dir(const LessonArgs& args) {
  return std::filesystem::path(ATTNLAB_SOURCE_DIR) / "lessons" / args.name;
}

std::map<std::string, std::string> markdown_sections(const std::filesystem::path& file) {
  std::ifstream f(file);
  std::map<std::string, std::string> out;
  std::string line, title;
  while (std::getline(f, line)) {
    if (line.rfind("## ", 0) == 0) title = line.substr(3), out[title];
    else if (!title.empty()) out[title] += line + "\n";
  }
  return out;
}

}  // namespace lab
