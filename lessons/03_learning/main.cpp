// Lesson 03: learning. An MLP classifier on three interleaved spirals, trained twice from the
// same initial weights: once with SGD + momentum, once with Adam. Loss curves, accuracy, and the
// decision boundary each optimizer found, drawn over the plane with the training points.
//
// Shape legend: N points, 2 coordinates, H hidden units, C = 3 classes.
// The comparison runs for 5 seeds (new points, initial weights and minibatches each); the
// pictures show the first. The exercises' answers are measured over the same seeds.
// Files in --out: metrics.csv, loss.png/.svg/.gp, train_points.csv,
// boundary_{sgd,adam}.csv/.gp/.png/.svg, report.md, chapter/ (what README.md quotes).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <numbers>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

std::string num(double v) {  // 0.01 -> "0.01"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

constexpr int C = 3;  // classes = spiral arms

// ---- The data: three spirals ----------------------------------------------------------------
// Arm k, point i: radius r ~ U(0, 1), angle = k 2pi/3 + turns 2pi r + noise ~ N(0, noise^2)
// (radians); the point is (r sin(angle), r cos(angle)). No straight line separates the arms.
struct Spirals {
  ag::Tensor x;           // [N, 2]
  ag::Indices y;          // N labels in {0, 1, 2}
  std::vector<double> xy;  // the same coordinates, row-major, for the CSV files
};

Spirals make_spirals(int per_class, double turns, double noise, ag::Generator& gen) {
  Spirals s;
  std::vector<std::int64_t> labels;
  for (int k = 0; k < C; ++k)
    for (int i = 0; i < per_class; ++i) {
      const double r = gen.uniform(0.0, 1.0);
      const double angle = k * 2 * std::numbers::pi / C + turns * 2 * std::numbers::pi * r + gen.normal(0.0, noise);
      s.xy.push_back(r * std::sin(angle));
      s.xy.push_back(r * std::cos(angle));
      labels.push_back(k);
    }
  s.x = ag::tensor(s.xy, {labels.size(), 2});
  s.y = ag::Indices(labels);
  return s;
}

// ---- The model: 2 -> H -> H -> 3, ReLU ----------------------------------------------------
class MLP : public nn::Module {
 public:
  MLP(std::size_t hidden, ag::Generator& gen)
      : hidden_(hidden),
        fc1(register_module("fc1", std::make_shared<nn::Linear>(2, hidden, gen))),
        fc2(register_module("fc2", std::make_shared<nn::Linear>(hidden, hidden, gen))),
        fc3(register_module("fc3", std::make_shared<nn::Linear>(hidden, C, gen))) {}
  // x: [N, 2] -> logits [N, C] (unnormalised log-probabilities; cross_entropy applies log_softmax)
  ag::Tensor forward(const ag::Tensor& x) const { return (*fc3)(ag::relu((*fc2)(ag::relu((*fc1)(x))))); }
  std::string describe() const override {
    return "MLP(2 -> " + std::to_string(hidden_) + " -> " + std::to_string(hidden_) + " -> 3, ReLU)";
  }

 private:
  std::size_t hidden_;

 public:
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
};

std::vector<int> predict(const MLP& model, const ag::Tensor& x) {
  ag::NoGrad ng;
  const std::vector<double> logits = model.forward(x).to_vector();
  std::vector<int> cls(logits.size() / C);
  for (std::size_t n = 0; n < cls.size(); ++n)
    for (int c = 1; c < C; ++c)
      if (logits[n * C + c] > logits[n * C + cls[n]]) cls[n] = c;
  return cls;
}

double accuracy(const MLP& model, const Spirals& d) {
  const std::vector<int> cls = predict(model, d.x);
  double right = 0;
  for (std::size_t n = 0; n < cls.size(); ++n) right += cls[n] == d.y.values[n];
  return right / double(cls.size());
}

// The decision boundary: the predicted class on a G x G grid over [-1.2, 1.2]^2, drawn by gnuplot
// as an image, with the training points on top. Writes <name>.csv and <name>.gp; runs gnuplot
// on it for <name>.png and .svg when gnuplot is there.
void draw_boundary(const MLP& model, const std::filesystem::path& dir, const std::string& name,
                   const std::string& title, const std::filesystem::path& points_csv) {
  const int G = 161;
  const double lim = 1.2;
  std::vector<double> grid;
  for (int j = 0; j < G; ++j)
    for (int i = 0; i < G; ++i) {
      grid.push_back(-lim + 2 * lim * i / (G - 1));
      grid.push_back(-lim + 2 * lim * j / (G - 1));
    }
  const std::vector<int> cls = predict(model, ag::tensor(grid, {std::size_t(G * G), 2}));
  std::ofstream csv(dir / (name + ".csv"));
  csv << "x,y,class\n";
  for (std::size_t n = 0; n < cls.size(); ++n) csv << grid[2 * n] << ',' << grid[2 * n + 1] << ',' << cls[n] << '\n';
  csv.close();

  const std::string points = points_csv.filename().string();
  std::ofstream gp(dir / (name + ".gp"));
  gp << "# The decision boundary: rerun with `gnuplot " << name << ".gp` from this directory.\n"
     << "set terminal pngcairo size 760,600 font 'Sans,11' noenhanced\nset output '" << name << ".png'\n"
     << "set datafile separator comma\nset title '" << title << "'\n"
     << "set xlabel 'x_1'\nset ylabel 'x_2'\nset size ratio -1\n"
     << "set xrange [" << -lim << ":" << lim << "]\nset yrange [" << -lim << ":" << lim << "]\n"
     << "set palette defined (0 '#fbd5d5', 1 '#d0e2f4', 2 '#d5efd0')\nset cbrange [0:2]\nunset colorbox\n"
     << "set key outside right top vertical title 'training points'\n"
     << "plot '" << name << ".csv' skip 1 using 1:2:3 with image notitle, \\\n";
  const char* colours[C] = {"#d62728", "#1f77b4", "#2ca02c"};
  for (int k = 0; k < C; ++k)
    gp << "     '" << points << "' skip 1 using 1:($3 == " << k << " ? $2 : 1/0) with points pt 7 ps 0.7 lc rgb '"
       << colours[k] << "' title 'class " << k << "'" << (k + 1 < C ? ", \\\n" : "\n");
  gp << "set terminal svg size 760,600 dynamic font 'Sans,11' noenhanced background rgb 'white'\n"
     << "set output '" << name << ".svg'\nreplot\nunset output\n";
  gp.close();
  if (!lab::gnuplot_available()) return;  // the kit has already said so once
  const std::string cmd = "cd '" + dir.string() + "' && '" + lab::gnuplot_command() + "' '" + name + ".gp'";
  if (std::system(cmd.c_str()) != 0) std::cerr << "note: gnuplot failed on " << (dir / (name + ".gp")).string() << "\n";
}

// ---- One experiment: the same MLP trained by SGD + momentum and by Adam ---------------------
struct Config {
  std::size_t hidden = 64;
  double sgd_lr = 0.05, momentum = 0.9, adam_lr = 0.01, turns = 1.0, noise = 0.2;
  std::size_t batch = 32;
  std::int64_t steps = 2000;
};
enum Which { kSGD = 1, kAdam = 2, kBoth = 3 };

struct Outcome {  // one optimizer, one seed
  double train_loss = 0, test_loss = 0, train_acc = 0, test_acc = 0;
  std::int64_t first_below = -1;  // the first evaluated step with training loss < 0.1 (-1: never)
  std::shared_ptr<MLP> model;
};
struct Pair {
  Outcome sgd, adam;
  Spirals train;  // the training points (for the pictures)
  std::vector<std::vector<double>> history;  // with a log: one row per evaluation, {step, the log's 8 columns}
};

constexpr double kTargetLoss = 0.1;

// Trains both optimizers (or one, `which`) from the same initial weights on the same minibatches.
// Every steps/100 steps the loss on the whole training set is measured (and, with `log`, the
// test loss and both accuracies too).
Pair train_pair(const Config& c, std::uint64_t seed, Which which = kBoth, lab::CurveLog* log = nullptr) {
  // Data: 3 x 100 training points, 3 x 100 held-out test points.
  ag::Generator train_gen(lab::derive_seed(seed, 1)), test_gen(lab::derive_seed(seed, 2));
  Pair p;
  p.train = make_spirals(100, c.turns, c.noise, train_gen);
  const Spirals test = make_spirals(100, c.turns, c.noise, test_gen);
  const Spirals& train = p.train;

  // Two copies of one model: same seed, same initial weights.
  ag::Generator init_a(lab::derive_seed(seed, 3)), init_b(lab::derive_seed(seed, 3));
  p.sgd.model = std::make_shared<MLP>(c.hidden, init_a);
  p.adam.model = std::make_shared<MLP>(c.hidden, init_b);
  nn::SGD sgd(p.sgd.model->parameters(), {.lr = c.sgd_lr, .momentum = c.momentum});
  nn::Adam adam(p.adam.model->parameters(), {.lr = c.adam_lr});
  struct Run { Outcome& out; nn::Optimizer& opt; bool on; };
  Run runs[] = {{p.sgd, sgd, (which & kSGD) != 0}, {p.adam, adam, (which & kAdam) != 0}};

  auto full_loss = [](const MLP& m, const Spirals& d) { ag::NoGrad ng; return ag::cross_entropy(m.forward(d.x), d.y).item(); };
  auto evaluate = [&](std::int64_t step) {
    for (Run& r : runs) {
      if (!r.on) continue;
      r.out.train_loss = full_loss(*r.out.model, train);
      if (r.out.first_below < 0 && r.out.train_loss < kTargetLoss) r.out.first_below = step;
    }
    if (log) {
      const std::vector<double> row = {p.sgd.train_loss, p.adam.train_loss, full_loss(*p.sgd.model, test),
                                       full_loss(*p.adam.model, test), accuracy(*p.sgd.model, train), accuracy(*p.adam.model, train),
                                       accuracy(*p.sgd.model, test), accuracy(*p.adam.model, test)};
      log->log(double(step), row);
      p.history.push_back(row);
      p.history.back().insert(p.history.back().begin(), double(step));
    }
  };

  // Train: minibatches; one step = forward, loss, backward, update.
  const std::int64_t eval_every = std::max<std::int64_t>(1, c.steps / 100);
  ag::Generator batch_gen(lab::derive_seed(seed, 4));
  std::vector<std::size_t> order(train.y.size());
  std::size_t next = order.size();  // position in the current shuffled pass over the data
  evaluate(0);
  lab::Progress bar(c.steps, log ? "train SGD & Adam" : "seed " + std::to_string(seed));
  for (std::int64_t step = 1; step <= c.steps; ++step) {
    std::vector<double> bx;  // the minibatch: [B, 2] and B labels
    std::vector<std::int64_t> by;
    for (std::size_t i = 0; i < c.batch; ++i) {
      if (next == order.size()) {  // a new epoch: reshuffle
        std::iota(order.begin(), order.end(), 0);
        std::shuffle(order.begin(), order.end(), batch_gen.engine());
        next = 0;
      }
      const std::size_t n = order[next++];
      bx.insert(bx.end(), {train.xy[2 * n], train.xy[2 * n + 1]});
      by.push_back(train.y.values[n]);
    }
    const ag::Tensor xb = ag::tensor(bx, {c.batch, 2});
    const ag::Indices yb(by);
    for (Run& r : runs) {
      if (!r.on) continue;
      r.opt.zero_grad();
      ag::Tensor loss = ag::cross_entropy(r.out.model->forward(xb), yb);  // mean over the batch
      loss.backward();
      r.opt.step();
    }
    if (step % eval_every == 0) evaluate(step);
    bar.update(step, {{"sgd", p.sgd.train_loss}, {"adam", p.adam.train_loss}});
  }
  bar.finish();
  for (Run& r : runs) {
    if (!r.on) continue;
    r.out.test_loss = full_loss(*r.out.model, test);
    r.out.train_acc = accuracy(*r.out.model, train), r.out.test_acc = accuracy(*r.out.model, test);
  }
  return p;
}

// One optimizer over several seeds.
struct Stats {
  lab::SeedStats train_loss, test_loss, train_acc, test_acc, first_below;  // first_below: steps + 1 for "never"
  std::size_t reached = 0;  // seeds that got below loss 0.1
  void add(const Outcome& o, std::int64_t steps) {
    train_loss.add(o.train_loss), test_loss.add(o.test_loss), train_acc.add(o.train_acc), test_acc.add(o.test_acc);
    first_below.add(o.first_below >= 0 ? double(o.first_below) : double(steps + 1));
    reached += o.first_below >= 0 ? 1 : 0;
  }
  // Table cell: "step 540 (440 to 600)", "never in 2000 steps", "1360 (1040 to 1760) in 4 of 5 seeds".
  // Sentence (verb = true): "gets below 0.1 at step 540 (440 to 600)", "never gets below 0.1 in 2000 steps",
  // "gets below 0.1 in 4 of 5 seeds (at step 1360, 1040 to 1760 there)".
  std::string reach_text(std::int64_t steps, bool verb = false) const {
    const std::size_t n = first_below.size();
    if (reached == 0) return verb ? "never gets below 0.1 in " + std::to_string(steps) + " steps" : "never in " + std::to_string(steps) + " steps";
    lab::SeedStats got;  // the seeds that got there
    for (double v : first_below.values)
      if (v <= double(steps)) got.add(v);
    const std::string when = lab::format_number(got.median(), 3) + (got.size() > 1 ? (reached == n ? " (" : ", ") + got.range() : "");
    if (reached == n) return (verb ? "gets below 0.1 at step " : "step ") + when + (got.size() > 1 ? ")" : "");
    const std::string of = std::to_string(reached) + " of " + std::to_string(n) + " seeds";
    return verb ? "gets below 0.1 in " + of + " (at step " + when + (reached > 1 ? " there)" : ")") : "step " + when + " in " + of;
  }
};

// "0.0330 (0.0210 to 0.0450)"
std::string med(const lab::SeedStats& s, int digits = 3) { return lab::format_number(s.median(), digits) + " (" + s.range(digits) + ")"; }
std::string pct_median(const lab::SeedStats& s) { return lab::format_number(100 * s.median(), 3) + "%"; }
std::string span(const lab::SeedStats& s) {  // "96.3% to 99.0%"
  return lab::format_number(100 * s.min(), 3) + "% to " + lab::format_number(100 * s.max(), 3) + "%";
}
std::string pct(const lab::SeedStats& s) {
  lab::SeedStats p;
  for (double v : s.values) p.add(100 * v);
  return lab::format_number(p.median(), 3) + "% (" + p.range(3) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("03_learning", "Lesson 03: an MLP on three spirals, SGD with momentum vs Adam");
  Config c;
  cli.app().add_option("--hidden", c.hidden, "hidden units per layer")->check(CLI::Range(1, 4096))->capture_default_str();
  cli.app().add_option("--sgd-lr", c.sgd_lr, "SGD learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  cli.app().add_option("--momentum", c.momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999))->capture_default_str();
  cli.app().add_option("--turns", c.turns, "turns of each spiral arm")->check(CLI::Range(0.0, 10.0))->capture_default_str();
  cli.app().add_option("--noise", c.noise, "noise on the angle (radians)")->check(CLI::Range(0.0, 10.0))->capture_default_str();
  cli.app().add_option("--batch", c.batch, "minibatch size (300 = full batch)")->check(CLI::Range(1, 300))->capture_default_str();
  cli.app().add_option("--adam-lr", c.adam_lr, "Adam learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  cli.steps_help("training steps of each run (default 2000; --quick 400)");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const lab::Chapter chapter(args);
    c.steps = args.steps_or(2000, 400);
    const std::int64_t steps = c.steps;
    const int seeds = 5;

    // ---- 1. The first seed, with every curve and picture -------------------------------------
    {
      ag::Generator g(0);
      std::cout << MLP(c.hidden, g).tree() << "\n";
    }
    lab::CurveLog log(args.path("metrics.csv"), {"sgd_train_loss", "adam_train_loss", "sgd_test_loss", "adam_test_loss",
                                                 "sgd_train_acc", "adam_train_acc", "sgd_test_acc", "adam_test_acc"});
    const Pair first = train_pair(c, args.seed, kBoth, &log);
    lab::CurveLog points(args.path("train_points.csv"), {"y", "class"}, "x");
    for (std::size_t n = 0; n < first.train.y.size(); ++n)
      points.log(first.train.xy[2 * n], {first.train.xy[2 * n + 1], double(first.train.y.values[n])});

    lab::PlotOptions po{.title = "Three spirals, MLP 2-" + std::to_string(c.hidden) + "-" + std::to_string(c.hidden) +
                                 "-3, minibatches of " + std::to_string(c.batch) + ": cross-entropy",
                        .ylabel = "loss", .logy = true, .hlines = {{std::log(3.0), "chance: ln 3"}}};
    const std::vector<lab::Series> s = {
        {log.path(), "sgd_train_loss", "SGD, lr " + num(c.sgd_lr) + ", momentum " + num(c.momentum) + ": train"},
        {log.path(), "adam_train_loss", "Adam, lr " + num(c.adam_lr) + ": train"},
        {log.path(), "sgd_test_loss", "SGD: test", "step", "lines dt 2 lc 1"},
        {log.path(), "adam_test_loss", "Adam: test", "step", "lines dt 2 lc 2"}};
    if (lab::plot(args.path("loss.png"), s, po)) chapter.figure("loss.png");
    draw_boundary(*first.sgd.model, args.out, "boundary_sgd", "SGD + momentum: predicted class after " + std::to_string(steps) + " steps", points.path());
    draw_boundary(*first.adam.model, args.out, "boundary_adam", "Adam: predicted class after " + std::to_string(steps) + " steps", points.path());
    for (const char* png : {"boundary_sgd.png", "boundary_adam.png"})
      if (std::filesystem::exists(args.path(png))) chapter.figure(png);
    lab::PlotOptions pt = po;
    pt.ymax = 10;
    lab::plot_terminal({s[0], s[1]}, pt);

    lab::Table t("Seed " + std::to_string(args.seed) + ", after " + std::to_string(steps) + " steps of " + std::to_string(c.batch) +
                     " points (300 training points, 300 test points)",
                 {"optimizer", "final loss", "train acc", "test acc", "steps to loss < 0.1"});
    for (const auto& [name, o] : {std::pair<const char*, const Outcome&>{"SGD + momentum", first.sgd}, {"Adam", first.adam}})
      t.row({name, lab::Cell(o.train_loss, 3), o.train_acc, o.test_acc, o.first_below >= 0 ? lab::Cell(o.first_below) : lab::Cell("never")});
    std::cout << "\n";
    t.print();
    t.save_markdown(args.path("report.md"));
    chapter.table("first_seed", t);

    // ---- 2. The same comparison for 5 seeds: new points, initial weights and minibatches ----
    Stats sgd_s, adam_s;
    std::size_t adam_first = 0;  // seeds where Adam gets below 0.1 before SGD does
    for (int k = 0; k < seeds; ++k) {
      const Pair p = k == 0 ? first : train_pair(c, args.seed + std::uint64_t(k));
      sgd_s.add(p.sgd, steps), adam_s.add(p.adam, steps);
      adam_first += p.adam.first_below >= 0 && (p.sgd.first_below < 0 || p.adam.first_below < p.sgd.first_below) ? 1 : 0;
    }
    lab::Table ts(std::to_string(seeds) + " seeds (--seed " + std::to_string(args.seed) + " to " + std::to_string(args.seed + seeds - 1) +
                      "): median (range)",
                  {"optimizer", "final loss", "train acc", "test acc", "first below loss 0.1"});
    ts.row({"SGD + momentum", med(sgd_s.train_loss), pct(sgd_s.train_acc), pct(sgd_s.test_acc), sgd_s.reach_text(steps)});
    ts.row({"Adam", med(adam_s.train_loss), pct(adam_s.train_acc), pct(adam_s.test_acc), adam_s.reach_text(steps)});
    std::cout << "\n";
    ts.print();
    ts.save_markdown(args.path("report.md"), true);
    chapter.table("seeds", ts);

    // ---- 3. The claims, for every seed ------------------------------------------------------
    // They hold in --quick mode (400 steps) too.
    const double sgd_bar = 0.8;
    const std::size_t n = std::size_t(seeds);
    std::size_t below = 0, adam_good = 0, sgd_good = 0;
    for (int k = 0; k < seeds; ++k) {
      below += sgd_s.train_loss.values[k] < 0.5 && adam_s.train_loss.values[k] < 0.5;
      adam_good += adam_s.train_acc.values[k] >= 0.95 && adam_s.test_acc.values[k] >= 0.9;
      sgd_good += sgd_s.train_acc.values[k] >= sgd_bar;
    }
    auto of = [&](std::size_t m) { return " (" + std::to_string(m) + " of " + std::to_string(n) + " seeds)"; };
    checks.expect(below == n, "both optimizers take the loss far below chance (ln 3 = 1.10) in every seed" + of(below));
    checks.expect(adam_good == n, "Adam: >= 95% of the training points, >= 90% of the test points, in every seed" + of(adam_good));
    checks.expect(sgd_good == n, "SGD + momentum: >= " + lab::format_number(100 * sgd_bar, 2) + "% of the training points in every seed" + of(sgd_good));
    checks.expect(adam_first == n, "Adam gets below loss 0.1 in fewer steps than SGD + momentum in every seed" + of(adam_first));

    {  // the chapter's reading, from the first seed's curves and the five seeds
      const std::vector<double>* at100 = nullptr;
      for (const auto& row : first.history)
        if (row[0] <= 100) at100 = &row;
      double jump = 1, jump_step = 0;  // Adam's largest rise of the training loss between two evaluations
      for (std::size_t i = 1; i < first.history.size(); ++i)
        if (first.history[i][2] / first.history[i - 1][2] > jump) jump = first.history[i][2] / first.history[i - 1][2], jump_step = first.history[i][0];
      std::ostringstream r;
      r << "**Reading it.** Both curves start at chance (" << lab::format_number(first.history.front()[1], 4) << " vs `ln 3 = 1.099`). ";
      if (at100)
        r << "Adam falls much faster: after " << std::int64_t((*at100)[0]) << " steps its training loss is "
          << lab::format_number((*at100)[2], 2) << " (" << lab::format_number(100 * (*at100)[6], 2)
          << "% of the training points right) while SGD's is " << lab::format_number((*at100)[1], 2) << " ("
          << lab::format_number(100 * (*at100)[5], 2) << "%). ";
      r << "Over the " << seeds << " seeds, Adam is the first below loss 0.1 in " << adam_first << " of " << seeds << ". Adam "
        << adam_s.reach_text(steps, true) << "; SGD " << sgd_s.reach_text(steps, true)
        << ". This is the per-parameter step size at work. Early on, most weights have small gradients, which SGD turns "
           "into small steps, while Adam moves each of them by about `η`. Later both keep going down, but not smoothly. The "
           "loss is measured on all 300 points, while each step sees only 32, so the curves are jagged. Adam has spikes "
           "where one step overshoots (the largest in the picture: the loss rises "
        << lab::format_number(jump, 2) << "-fold at step " << std::int64_t(jump_step)
        << "), and it recovers within a few dozen steps. The dashed test losses flatten out while the training losses keep "
           "falling: at the end (medians over the seeds) Adam's test loss is "
        << lab::format_number(adam_s.test_loss.median(), 2) << " against a training loss of "
        << lab::format_number(adam_s.train_loss.median(), 2) << ", SGD's " << lab::format_number(sgd_s.test_loss.median(), 2)
        << " against " << lab::format_number(sgd_s.train_loss.median(), 2)
        << ". The gap is the model fitting the noise of its 300 training points, which does not carry over to new points. "
           "Accuracy hardly suffers: "
        << "the median share of test points classified correctly is " << lab::format_number(100 * adam_s.test_acc.median(), 3)
        << "% for Adam (" << span(adam_s.test_acc) << ") and " << lab::format_number(100 * sgd_s.test_acc.median(), 3) << "% for SGD ("
        << span(sgd_s.test_acc) << ").";
      chapter.text("reading", r.str());
    }

    // ---- 4. The exercises' answers, over the same 5 seeds (the chapter quotes them) ----------
    if (!args.quick) {
      auto over_seeds = [&](const Config& cfg, Which which, Stats& sgd_out, Stats& adam_out, std::size_t* adam_faster) {
        for (int k = 0; k < seeds; ++k) {
          const Pair p = train_pair(cfg, args.seed + std::uint64_t(k), which);
          if (which & kSGD) sgd_out.add(p.sgd, cfg.steps);
          if (which & kAdam) adam_out.add(p.adam, cfg.steps);
          // "Adam first" against this config's SGD, or against the default SGD when SGD did not run
          const std::int64_t sgd_first = which & kSGD ? p.sgd.first_below
                                                      : (sgd_s.first_below.values[k] <= double(steps) ? std::int64_t(sgd_s.first_below.values[k]) : -1);
          if (adam_faster && (which & kAdam))
            *adam_faster += p.adam.first_below >= 0 && (sgd_first < 0 || p.adam.first_below < sgd_first) ? 1 : 0;
        }
      };
      {  // 1. Adam at lr 0.001
        Config e = c;
        e.adam_lr = 0.001;
        Stats unused, adam1;
        std::size_t faster = 0;
        over_seeds(e, kAdam, unused, adam1, &faster);
        const std::string who = faster == 0 ? "Adam is now the slower one in every seed"
                                : "Adam is now the slower one in " + std::to_string(std::size_t(seeds) - faster) + " of " + std::to_string(seeds) + " seeds";
        chapter.text("answer1", "*Answer:* " + who + ". Over the " + std::to_string(seeds) + " seeds it " + adam1.reach_text(steps, true) +
                                    "; SGD " + sgd_s.reach_text(steps, true) + ". Adam ends at loss " + med(adam1.train_loss) +
                                    ", with a median test accuracy of " + pct_median(adam1.test_acc) + ". The last check (\"Adam gets "
                                    "below loss 0.1 in fewer steps\") holds in " + std::to_string(faster) + " of " + std::to_string(seeds) +
                                    " seeds" + (faster < std::size_t(seeds) ? ", and the lesson exits with status 1" : "") + ". Adam's step is about `η` per weight, so a 10× "
                                    "smaller `η` means 10× smaller steps. \"Adam is faster\" is a statement about a learning "
                                    "rate, not about Adam.");
      }
      {  // 2. momentum 0 at lr 0.05, then at lr 0.5
        Config e = c, f = c;
        e.momentum = 0, f.momentum = 0, f.sgd_lr = 0.5;
        Stats plain, big, unused;
        over_seeds(e, kSGD, plain, unused, nullptr);
        over_seeds(f, kSGD, big, unused, nullptr);
        chapter.text("answer2", "*Answer:* plain SGD at 0.05 " + plain.reach_text(steps, true) + ": it ends at loss " +
                                    med(plain.train_loss) + ", with a median of " + pct_median(plain.train_acc) + " of the training and " +
                                    pct_median(plain.test_acc) + " of the test points right. At `η = 0.5 = 0.05/(1 - 0.9)`, the step "
                                    "that momentum reaches on a steady gradient, it " + big.reach_text(steps, true) + " and ends at loss " +
                                    med(big.train_loss) + ", with medians of " + pct_median(big.train_acc) + " train and " +
                                    pct_median(big.test_acc) + " test. With momentum it " + sgd_s.reach_text(steps, true) +
                                    ". Most of momentum's gain is the larger step; what is left of the difference is momentum "
                                    "smoothing the noise of the minibatches.");
      }
      {  // 3. a small network; then a harder dataset
        Config e = c, f = c;
        e.hidden = 8, f.turns = 2;
        Stats sgd8, adam8, sgd_t2, adam_t2;
        std::size_t faster8 = 0;
        over_seeds(e, kBoth, sgd8, adam8, &faster8);
        over_seeds(f, kBoth, sgd_t2, adam_t2, nullptr);
        chapter.text("answer3", "*Answer:* the model can barely bend the plane enough. SGD + momentum ends at loss " +
                                    med(sgd8.train_loss) + " with a median test accuracy of " + pct_median(sgd8.test_acc) + ", Adam at " +
                                    med(adam8.train_loss) + " with " + pct_median(adam8.test_acc) + ". SGD " + sgd8.reach_text(steps, true) +
                                    "; Adam " + adam8.reach_text(steps, true) + ". The \"Adam is faster\" check holds in " +
                                    std::to_string(faster8) + " of " + std::to_string(seeds) + " seeds. For a harder dataset, "
                                    "`--turns 2` puts the arms closer together: SGD " + sgd_t2.reach_text(steps, true) + ", Adam " +
                                    adam_t2.reach_text(steps, true) + ", and the median test accuracy is " + pct_median(adam_t2.test_acc) +
                                    " for Adam and " + pct_median(sgd_t2.test_acc) + " for SGD (" + pct_median(adam_s.test_acc) +
                                    " and " + pct_median(sgd_s.test_acc) + " with one turn).");
      }
    }

    std::ostringstream report;
    const int status = checks.report(report);
    std::cout << report.str();
    chapter.text("checks", "```" + report.str() + "```");
    return status;
  });
}
