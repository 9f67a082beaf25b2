// Lesson 03: learning. An MLP classifier on three interleaved spirals, trained twice from the
// same initial weights: once with SGD + momentum, once with Adam. Loss curves, accuracy, and the
// decision boundary each optimizer found, drawn over the plane with the training points.
//
// Shape legend: N points, 2 coordinates, H hidden units, C = 3 classes.
// Files in --out: loss.csv, accuracy.csv, loss.png/.svg/.gp, train_points.csv,
// boundary_{sgd,adam}.csv/.gp/.png/.svg, report.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <numbers>
#include <numeric>
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

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("03_learning", "Lesson 03: an MLP on three spirals, SGD with momentum vs Adam");
  std::size_t hidden = 64;
  double sgd_lr = 0.05, momentum = 0.9, adam_lr = 0.01, turns = 1.0, noise = 0.2;
  std::size_t batch = 32;
  cli.app().add_option("--hidden", hidden, "hidden units per layer")->check(CLI::Range(1, 4096))->capture_default_str();
  cli.app().add_option("--sgd-lr", sgd_lr, "SGD learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  cli.app().add_option("--momentum", momentum, "SGD momentum")->check(CLI::Range(0.0, 0.999))->capture_default_str();
  cli.app().add_option("--turns", turns, "turns of each spiral arm")->check(CLI::Range(0.0, 10.0))->capture_default_str();
  cli.app().add_option("--noise", noise, "noise on the angle (radians)")->check(CLI::Range(0.0, 10.0))->capture_default_str();
  cli.app().add_option("--batch", batch, "minibatch size (300 = full batch)")->check(CLI::Range(1, 300))->capture_default_str();
  cli.app().add_option("--adam-lr", adam_lr, "Adam learning rate")->check(CLI::Range(0.0, 100.0))->capture_default_str();
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const std::int64_t steps = args.steps_or(2000, 400);
    const std::int64_t eval_every = std::max<std::int64_t>(1, steps / 100);

    // ---- 1. Data: 3 x 100 training points, 3 x 100 held-out test points ---------------------
    ag::Generator train_gen(lab::derive_seed(args.seed, 1)), test_gen(lab::derive_seed(args.seed, 2));
    const Spirals train = make_spirals(100, turns, noise, train_gen), test = make_spirals(100, turns, noise, test_gen);
    lab::CurveLog points(args.path("train_points.csv"), {"y", "class"}, "x");
    for (std::size_t n = 0; n < train.y.size(); ++n) points.log(train.xy[2 * n], {train.xy[2 * n + 1], double(train.y.values[n])});

    // ---- 2. Two copies of one model: same seed, same initial weights ------------------------
    ag::Generator init_a(lab::derive_seed(args.seed, 3)), init_b(lab::derive_seed(args.seed, 3));
    MLP sgd_model(hidden, init_a), adam_model(hidden, init_b);
    std::cout << sgd_model.tree() << "\n";
    nn::SGD sgd(sgd_model.parameters(), {.lr = sgd_lr, .momentum = momentum});
    nn::Adam adam(adam_model.parameters(), {.lr = adam_lr});

    // ---- 3. Train: minibatches; one step = forward, loss, backward, update -----------------
    // Both optimizers see the same minibatches in the same order. Every `eval_every` steps the
    // loss and accuracy on the whole training set and on the test set are measured.
    lab::CurveLog log(args.path("metrics.csv"), {"sgd_train_loss", "adam_train_loss", "sgd_test_loss", "adam_test_loss",
                                                 "sgd_train_acc", "adam_train_acc", "sgd_test_acc", "adam_test_acc"});
    struct Run { const char* name; MLP& model; nn::Optimizer& opt; double train_loss = 0; std::int64_t first_below = -1; };
    Run runs[] = {{"SGD + momentum", sgd_model, sgd}, {"Adam", adam_model, adam}};
    const double target_loss = 0.1;  // the step at which each run first gets below it (whole training set)
    auto full_loss = [](const MLP& m, const Spirals& d) { ag::NoGrad ng; return ag::cross_entropy(m.forward(d.x), d.y).item(); };
    auto evaluate = [&](std::int64_t step) {
      for (Run& r : runs) {
        r.train_loss = full_loss(r.model, train);
        if (r.first_below < 0 && r.train_loss < target_loss) r.first_below = step;
      }
      log.log(double(step), {runs[0].train_loss, runs[1].train_loss, full_loss(sgd_model, test), full_loss(adam_model, test),
                             accuracy(sgd_model, train), accuracy(adam_model, train), accuracy(sgd_model, test),
                             accuracy(adam_model, test)});
    };
    ag::Generator batch_gen(lab::derive_seed(args.seed, 4));
    std::vector<std::size_t> order(train.y.size());
    std::size_t next = order.size();  // position in the current shuffled pass over the data
    evaluate(0);
    lab::Progress bar(steps, "train SGD & Adam");
    for (std::int64_t step = 1; step <= steps; ++step) {
      std::vector<double> bx;  // the minibatch: [B, 2] and B labels
      std::vector<std::int64_t> by;
      for (std::size_t i = 0; i < batch; ++i) {
        if (next == order.size()) {  // a new epoch: reshuffle
          std::iota(order.begin(), order.end(), 0);
          std::shuffle(order.begin(), order.end(), batch_gen.engine());
          next = 0;
        }
        const std::size_t n = order[next++];
        bx.insert(bx.end(), {train.xy[2 * n], train.xy[2 * n + 1]});
        by.push_back(train.y.values[n]);
      }
      const ag::Tensor xb = ag::tensor(bx, {batch, 2});
      const ag::Indices yb(by);
      for (Run& r : runs) {
        r.opt.zero_grad();
        ag::Tensor loss = ag::cross_entropy(r.model.forward(xb), yb);  // mean over the batch
        loss.backward();
        r.opt.step();
      }
      if (step % eval_every == 0) evaluate(step);
      bar.update(step, {{"sgd", runs[0].train_loss}, {"adam", runs[1].train_loss}});
    }
    bar.finish();

    // ---- 4. Curves, boundaries, figures ---------------------------------------------------
    lab::PlotOptions po{.title = "Three spirals, MLP 2-" + std::to_string(hidden) + "-" + std::to_string(hidden) +
                                 "-3, minibatches of " + std::to_string(batch) + ": cross-entropy",
                        .ylabel = "loss", .logy = true, .hlines = {{std::log(3.0), "chance: ln 3"}}};
    const std::vector<lab::Series> s = {
        {log.path(), "sgd_train_loss", "SGD, lr " + num(sgd_lr) + ", momentum " + num(momentum) + ": train"},
        {log.path(), "adam_train_loss", "Adam, lr " + num(adam_lr) + ": train"},
        {log.path(), "sgd_test_loss", "SGD: test", "step", "lines dt 2 lc 1"},
        {log.path(), "adam_test_loss", "Adam: test", "step", "lines dt 2 lc 2"}};
    lab::plot(args.path("loss.png"), s, po);
    draw_boundary(sgd_model, args.out, "boundary_sgd", "SGD + momentum: predicted class after " + std::to_string(steps) + " steps", points.path());
    draw_boundary(adam_model, args.out, "boundary_adam", "Adam: predicted class after " + std::to_string(steps) + " steps", points.path());
    lab::PlotOptions pt = po;
    pt.ymax = 1000;  // room for the legend above the chance line
    lab::plot_terminal({s[0], s[1]}, pt);

    const double sgd_train = accuracy(sgd_model, train), sgd_test = accuracy(sgd_model, test);
    const double adam_train = accuracy(adam_model, train), adam_test = accuracy(adam_model, test);
    lab::Table t("After " + std::to_string(steps) + " steps of " + std::to_string(batch) + " points (300 training points, 300 test points)",
                 {"optimizer", "final loss", "train acc", "test acc", "steps to loss < 0.1"});
    for (const Run& r : runs) {
      const bool is_sgd = &r == &runs[0];
      t.row({r.name, lab::Cell(r.train_loss, 3), is_sgd ? sgd_train : adam_train, is_sgd ? sgd_test : adam_test,
             r.first_below > 0 ? lab::Cell(r.first_below) : lab::Cell("never")});
    }
    std::cout << "\n";
    t.print();
    t.save_markdown(args.path("report.md"));

    // ---- 5. The claims --------------------------------------------------------------------
    checks.expect(runs[0].train_loss < 0.5 && runs[1].train_loss < 0.5, "both optimizers take the loss far below chance (ln 3 = 1.10)");
    checks.expect(adam_train >= 0.95 && adam_test >= 0.9, "Adam: >= 95% of the training points, >= 90% of the test points");
    checks.expect(sgd_train >= 0.8, "SGD + momentum: >= 80% of the training points");
    checks.expect(runs[1].first_below > 0 && (runs[0].first_below < 0 || runs[1].first_below < runs[0].first_below),
                  "Adam gets below loss 0.1 in fewer steps than SGD + momentum");
    return checks.report();
  });
}
