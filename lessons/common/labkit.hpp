#pragma once
// The lab kit: everything a lesson needs besides the engine and nn, in one include.
//   tasks.hpp     synthetic long-range tasks: adding, first-token recall, reversal, dates
//   cli.hpp       lab::Cli / lab::LessonArgs (--quick --seed --out --steps), lab::run_lesson
//   progress.hpp  lab::Progress, a progress bar (in place on a terminal, plain lines in logs)
//   curves.hpp    lab::CurveLog (CSV), lab::plot / plot_terminal / heatmap (gnuplot)
//   summary.hpp   lab::Table, results tables printed and saved as Markdown
//   chapter.hpp   lab::Chapter, the tables and sentences a chapter quotes, written by the run
#include "ag/ag.hpp"
#include "common/cli.hpp"
#include "common/curves.hpp"
#include "common/progress.hpp"
#include "common/summary.hpp"
#include "common/tasks.hpp"
#include "common/checks.hpp"
#include "common/models.hpp"
#include "common/chapter.hpp"
