#pragma once
// What a chapter (lessons/NN_topic/README.md) quotes from its lesson's run, written by the run
// itself so that the chapter can never drift from the program:
//
//   lab::Chapter chapter(args);                 // writes into args.out / "chapter/"
//   chapter.table("recall", t_recall);          // chapter/recall.md: the table as Markdown
//   chapter.text("latch", "Changing x_1 drops accuracy to " + lab::format_number(a) + ".");
//   chapter.figure("recall.png");               // a PNG of the run that the chapter shows
//
// In the chapter, each quoted piece sits between two markers that name it:
//
//   <!-- generated: recall -->
//   ...replaced on every `./lab docs`...
//   <!-- end generated -->
//
// `./lab docs [NN...]` runs each lesson's default mode, rewrites every marked section from the
// run's chapter/NAME.md and copies the listed figures next to the chapter (chapter_sync update).
// The `chapters` tests run the same default mode and fail when a marked section differs from
// what the run produced (chapter_sync check). Timings differ from run to run: a section written
// with Timing::yes keeps its numbers out of that comparison (its words and layout are still
// compared). The SIMD target the run used (ag::simd_target()) goes into chapter/target.txt, so a
// difference can be traced to a machine with other vector units.
#include <filesystem>
#include <map>
#include <string>

#include "common/cli.hpp"
#include "common/summary.hpp"

namespace lab {

enum class Timing { no, yes };  // yes: the section's numbers are wall-clock timings

class Chapter {
 public:
  explicit Chapter(const LessonArgs& args);

  // A table, without its title (the chapter's prose introduces it), as a Markdown table.
  void table(const std::string& name, const Table& t, Timing timing = Timing::no) const;
  // Any Markdown text (a sentence with measured numbers, a list, a code block of output).
  void text(const std::string& name, const std::string& markdown, Timing timing = Timing::no) const;
  // A figure the chapter shows: `png` is a file name in the run's output directory.
  void figure(const std::string& png) const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// The lesson's own directory in the source tree (lessons/NN_topic), for what a run reads from
// beside its chapter: e.g. the committed output of a run too long for CI, which the chapter quotes.
std::filesystem::path lesson_source_dir(const LessonArgs& args);

// The "## title" sections of a Markdown file (a committed report.md): title -> the text below
// it, up to the next one. A chapter quotes a long run's committed report through these.
std::map<std::string, std::string> markdown_sections(const std::filesystem::path& file);

// The marker that starts a section whose numbers are timings (the first line of its file).
inline constexpr const char* kTimingMarker = "<!-- timings: not compared -->";

}  // namespace lab
