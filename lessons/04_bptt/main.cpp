// Lesson 04: recurrence and backpropagation through time (BPTT).
//
// A tanh RNN written as a plain loop over time steps, the graph that loop builds, and the
// gradient that flows back through it. Shape legend:
//   B  sequences in a batch   T  time steps   V  symbols (8; inputs are one-hot)   H  hidden units
//
//   1) Train: an nn::RNNCell stepped by hand over first-token recall with T = 8, for 5 seeds.
//   2) The graph: the unrolled loop for T = 3, listed and written with ag::to_dot.
//   3) BPTT by hand: the backward recurrence run step by step in float64 gives the engine's
//      gradients to rounding error.
//   4) The size of the graph: nodes reachable from the loss for T = 10 ... 200: linear in T.
//   5) The exercises' answers, measured (truncated BPTT, LSTM and GRU node counts, dL/dx_t).
// chapter/ holds what README.md quotes.
#include <cmath>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

constexpr std::size_t V = 8;   // symbols of the recall task
constexpr std::size_t H = 64;  // hidden units

// The model: one RNN cell, and a linear readout of the last hidden state into V logits.
struct RecallRNN {
  nn::RNNCell cell;     // weight_ih [H, V], weight_hh [H, H], bias_ih [H], bias_hh [H]
  nn::Linear readout;   // weight [V, H], bias [V]
  explicit RecallRNN(ag::Generator& gen) : cell(V, H, gen), readout(H, V, gen) {}
  std::vector<ag::Tensor> parameters() const {
    std::vector<ag::Tensor> p = cell.parameters();
    for (const auto& q : readout.parameters()) p.push_back(q);
    return p;
  }
  void to(ag::Dtype d) { cell.to(d), readout.to(d); }
};

// The RNN unrolled by hand: the same cell (the same weights) called once per time step.
//   h_0 = 0;   h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh);   logits = h_T W_out^T + b_out
// x: [B, T, V] -> logits [B, V]. hs, when given, receives h_0 .. h_T (each [B, H]).
// detach_every = k > 0 cuts the graph every k steps (truncated BPTT, exercise 1).
ag::Tensor forward_unrolled(const RecallRNN& m, const ag::Tensor& x, std::vector<ag::Tensor>* hs = nullptr,
                            std::size_t detach_every = 0) {
  const std::size_t B = x.size(0), T = x.size(1);
  nn::RecurrentState s{ag::zeros({B, H}, {x.dtype()}), ag::Tensor()};  // h_0 = 0
  if (hs) hs->push_back(s.h);
  for (std::size_t t = 0; t < T; ++t) {
    if (detach_every > 0 && t > 0 && t % detach_every == 0) s.h = s.h.detach();
    // x_t: [B, V] -> h_t: [B, H], with the cell written as engine ops (nn::recurrent_step), so
    // that the graph shows every op; m.cell(x_t, s) runs the fused cell, one node per step.
    const ag::Tensor xp = ag::linear(ag::select(x, 1, std::int64_t(t)), m.cell.weight_ih, m.cell.bias_ih);
    s = nn::recurrent_step(nn::CellKind::tanh_rnn, xp, s, m.cell.weight_hh, m.cell.bias_hh);
    if (hs) hs->push_back(s.h);
  }
  return m.readout(s.h);
}

// The most likely class of each row of logits [B, V], compared with the targets.
double accuracy(const ag::Tensor& logits, const ag::Indices& targets) {
  return double(lab::count_correct(logits, targets)) / double(targets.size());
}

// The graph behind `root`: every node reachable through Node::inputs, found with an explicit
// stack (the same walk backward() does before it runs the rules in reverse).
struct GraphSize {
  std::size_t nodes = 0;  // ops and leaves
  std::size_t ops = 0;    // nodes made by an op (each has a backward rule to run)
  double megabytes = 0;   // the arrays those nodes hold: what the graph keeps alive for backward
  std::map<std::string, int> op_count{};  // how many nodes of each op
};
GraphSize graph_size(const ag::Tensor& root) {
  GraphSize g;
  std::unordered_set<const ag::Node*> seen{root.node()};
  std::vector<const ag::Node*> stack{root.node()};
  while (!stack.empty()) {
    const ag::Node* n = stack.back();
    stack.pop_back();
    ++g.nodes;
    if (!n->leaf) ++g.ops, ++g.op_count[n->op];
    g.megabytes += double(n->data.size() * (n->data.dtype() == ag::f32 ? 4 : 8)) / 1e6;
    for (const auto& in : n->inputs)
      if (in && seen.insert(in.get()).second) stack.push_back(in.get());
  }
  return g;
}

// The graph listed one line per node, "n14 = tanh(n13)", in a topological order: every node
// after its inputs (a depth-first post-order, as backward() computes it; inputs are visited
// last-first, so the list reads forward in time). Backward runs the rules bottom-up.
void list_graph(const ag::Tensor& root, std::ostream& out) {
  std::vector<const ag::Node*> order;
  std::unordered_map<const ag::Node*, std::size_t> id;
  std::vector<std::pair<const ag::Node*, std::size_t>> stack{{root.node(), 0}};
  std::unordered_set<const ag::Node*> seen{root.node()};
  while (!stack.empty()) {
    auto& [n, next] = stack.back();
    if (next < n->inputs.size()) {
      const ag::Node* in = n->inputs[n->inputs.size() - 1 - next++].get();
      if (in && seen.insert(in).second) stack.emplace_back(in, 0);
    } else {
      id[n] = order.size();
      order.push_back(n);
      stack.pop_back();
    }
  }
  for (const ag::Node* n : order) {
    std::string line = "  n" + std::to_string(id[n]) + " = ";
    if (n->leaf) {
      line += (n->label.empty() ? "leaf" : n->label) + " " + ag::shape_str(n->data.shape());
    } else {
      line += std::string(n->op) + "(";
      for (std::size_t i = 0; i < n->inputs.size(); ++i) line += (i ? ", n" : "n") + std::to_string(id[n->inputs[i].get()]);
      line += ") " + ag::shape_str(n->data.shape()) + (n->label.empty() ? "" : "   <- " + n->label);
    }
    out << line << "\n";
  }
}

// BPTT by hand for the tanh RNN. Start from g_T = dL/dh_T (taken from the engine: the readout
// and the loss are not the point here) and walk back in time:
//   a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh,   h_t = tanh(a_t)
//   delta_t  = dL/da_t = g_t * (1 - h_t^2)              [B, H]   (tanh' written with its output)
//   dW_hh   += delta_t^T h_{t-1}                         [H, H]   (one term per time step)
//   dW_ih   += delta_t^T x_t                             [H, V]
//   db      += sum over the batch of delta_t             [H]      (b_ih and b_hh alike)
//   g_{t-1}  = dL/dh_{t-1} = delta_t W_hh                [B, H]   (the step back in time)
struct HandGradients {
  ag::Tensor dW_hh, dW_ih, db;
  std::vector<ag::Tensor> dh;              // dL/dh_t, t = 0..T
  std::vector<double> step_contribution;   // ||delta_t^T h_{t-1}||, t = 1..T: each step's share of dW_hh
};
HandGradients bptt_by_hand(const nn::RNNCell& cell, const ag::Tensor& x, const std::vector<ag::Tensor>& hs,
                           const ag::Tensor& dL_dhT) {
  ag::NoGrad no_graph;
  const std::size_t T = x.size(1);
  const ag::Tensor W_hh = cell.weight_hh.detach();
  HandGradients r;
  r.dW_hh = ag::zeros(W_hh.shape(), {W_hh.dtype()});
  r.dW_ih = ag::zeros(cell.weight_ih.shape(), {W_hh.dtype()});
  r.db = ag::zeros(cell.bias_hh.shape(), {W_hh.dtype()});
  r.dh.assign(T + 1, ag::Tensor());
  r.step_contribution.assign(T, 0.0);
  ag::Tensor g = dL_dhT;
  for (std::size_t t = T; t >= 1; --t) {
    r.dh[t] = g;
    const ag::Tensor h = hs[t].detach(), h_prev = hs[t - 1].detach(), x_t = ag::select(x, 1, std::int64_t(t - 1));
    const ag::Tensor delta = g * (1.0 - h * h);
    const ag::Tensor contribution = ag::matmul(ag::transpose(delta, 0, 1), h_prev);
    r.dW_hh = r.dW_hh + contribution;
    r.dW_ih = r.dW_ih + ag::matmul(ag::transpose(delta, 0, 1), x_t);
    r.db = r.db + ag::sum(delta, {0});
    r.step_contribution[t - 1] = std::sqrt(ag::sum(contribution * contribution).item());
    g = ag::matmul(delta, W_hh);
  }
  r.dh[0] = g;
  return r;
}

// max |a - b| / max |b|: 1e-16 is float64 rounding.
double relative_difference(const ag::Tensor& a, const ag::Tensor& b) {
  const std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < va.size(); ++i) diff = std::max(diff, std::abs(va[i] - vb[i])), scale = std::max(scale, std::abs(vb[i]));
  return scale > 0 ? diff / scale : diff;
}

// ---- Training, one seed ---------------------------------------------------------------------
// Adam (lr 3e-3) on batches of 64 recall sequences; held-out accuracy every 10 steps.
struct Trained {
  std::unique_ptr<RecallRNN> model;
  std::vector<double> steps, accuracy;  // the held-out curve: step 0, 10, 20, ..., steps
  double final_accuracy = 0;
  std::int64_t first_90 = -1;  // the first evaluated step with accuracy >= 0.9
};
Trained train(std::uint64_t seed, int seq_len, std::int64_t steps, std::size_t detach_every = 0,
              lab::CurveLog* loss_log = nullptr, const std::string& label = "") {
  lab::RecallTask task({.T = seq_len, .batch_size = 64, .vocab = int(V), .seed = seed});
  ag::Generator gen(lab::derive_seed(seed, 4));
  Trained r;
  r.model = std::make_unique<RecallRNN>(gen);
  RecallRNN& model = *r.model;
  nn::Adam opt(model.parameters(), {.lr = 3e-3});
  auto evaluate = [&](std::int64_t step) {
    ag::NoGrad ng;
    const double acc = accuracy(forward_unrolled(model, task.eval_set().one_hot), task.eval_set().targets);
    r.steps.push_back(double(step)), r.accuracy.push_back(acc);
    if (r.first_90 < 0 && acc >= 0.9) r.first_90 = step;
    return acc;
  };
  double acc = evaluate(0);
  lab::Progress bar(steps, label);
  for (std::int64_t step = 1; step <= steps; ++step) {
    const lab::RecallBatch b = task.next_batch();
    opt.zero_grad();
    const ag::Tensor loss = ag::cross_entropy(forward_unrolled(model, b.one_hot, nullptr, detach_every), b.targets);
    loss.backward();  // BPTT: the engine walks the unrolled graph backward
    opt.step();
    if (loss_log) loss_log->log(double(step), {loss.item()});
    if (step % 10 == 0 || step == steps) acc = evaluate(step);
    bar.update(step, {{"loss", loss.item()}, {"eval acc", acc}});
  }
  bar.finish();
  r.final_accuracy = acc;
  return r;
}

// ||dL/dh_t||, t = 1..T, of a trained model on one batch, in float64 (the model is put back to float32).
std::vector<double> state_gradient_norms(RecallRNN& model, const lab::RecallBatch& b) {
  model.to(ag::f64);
  const ag::Tensor x = b.one_hot.to(ag::f64).detach();
  std::vector<ag::Tensor> hs;
  const ag::Tensor loss = ag::cross_entropy(forward_unrolled(model, x, &hs), b.targets);
  for (std::size_t t = 1; t < hs.size(); ++t) hs[t].retain_grad();
  loss.backward();
  std::vector<double> norms;
  for (std::size_t t = 1; t < hs.size(); ++t) norms.push_back(std::sqrt(ag::sum(hs[t].grad() * hs[t].grad()).item()));
  model.cell.zero_grad(), model.readout.zero_grad();
  model.to(ag::f32);
  return norms;
}

// The unrolled graph of any cell kind (exercise 2): the loop of forward_unrolled with the cell's
// ops spelled out (nn::recurrent_step), x a leaf as in section 4.
GraphSize unrolled_graph(nn::CellKind kind, std::size_t T) {
  ag::Generator gen(7);
  const nn::RecurrentCell cell(kind, V, H, gen);
  const nn::Linear readout(H, V, gen);
  const std::size_t B = 4;
  const ag::Tensor x = ag::randn({B, T, V}, gen).requires_grad_();
  nn::RecurrentState s{ag::zeros({B, H}), kind == nn::CellKind::lstm ? ag::zeros({B, H}) : ag::Tensor()};
  for (std::size_t t = 0; t < T; ++t) {
    const ag::Tensor xp = ag::linear(ag::select(x, 1, std::int64_t(t)), cell.weight_ih, cell.bias_ih);
    s = nn::recurrent_step(kind, xp, s, cell.weight_hh, cell.bias_hh);
  }
  return graph_size(ag::cross_entropy(readout(s.h), ag::Indices(std::vector<std::int64_t>(B, 0))));
}

// "5 T + 10": nodes = per_step T + fixed, read off two lengths (and checked by the caller).
struct LinearFit {
  std::size_t per_step = 0, fixed = 0;
  std::string text() const { return std::to_string(per_step) + " T + " + std::to_string(fixed); }
};
LinearFit fit(std::size_t nodes_a, std::size_t T_a, std::size_t nodes_b, std::size_t T_b) {
  const std::size_t per = (nodes_b - nodes_a) / (T_b - T_a);
  return {per, nodes_a - per * T_a};
}

// The ops one more time step adds: "select 1, linear 2, add 1, tanh 1".
std::string ops_per_step(nn::CellKind kind) {
  const GraphSize one = unrolled_graph(kind, 1), two = unrolled_graph(kind, 2);
  std::string out;
  for (const auto& [op, n] : two.op_count) {
    const int extra = n - (one.op_count.count(op) ? one.op_count.at(op) : 0);
    if (extra > 0) out += (out.empty() ? "" : ", ") + std::to_string(extra) + " `" + op + "`";
  }
  return out;
}

// The chapter's worked example: one unit, T = 2, h_t = tanh(w h_{t-1} + u x_t), w = 0.5, u = 1,
// x = (1, 0), h_0 = 0, L = h_2; by hand (the recurrence of bptt_by_hand), by the engine, and by
// central differences.
std::string worked_example() {
  const double w = 0.5, u = 1, x1 = 1, x2 = 0;
  auto forward = [&](double ww, double uu) { return std::tanh(ww * std::tanh(uu * x1) + uu * x2); };
  const double h1 = std::tanh(u * x1), h2 = std::tanh(w * h1 + u * x2);
  const double g2 = 1, d2 = g2 * (1 - h2 * h2), g1 = d2 * w, d1 = g1 * (1 - h1 * h1);
  const double dw = d2 * h1 + d1 * 0.0, du = d2 * x2 + d1 * x1;
  const double eps = 1e-6;
  const double cw = (forward(w + eps, u) - forward(w - eps, u)) / (2 * eps), cu = (forward(w, u + eps) - forward(w, u - eps)) / (2 * eps);
  // the engine, for the same two numbers
  const ag::TensorOptions leaf{.dtype = ag::f64, .requires_grad = true};
  ag::Tensor tw = ag::scalar(w, leaf), tu = ag::scalar(u, leaf);
  const ag::Tensor L = ag::tanh(tw * ag::tanh(tu * x1) + tu * x2);
  L.backward();
  auto f4 = [](double v) { return lab::format_number(v, 4); };
  std::ostringstream m;
  m << "- Forward: h_1 = tanh(1) = " << f4(h1) << "; h_2 = tanh(0.5 · " << f4(h1) << ") = tanh(" << f4(w * h1) << ") = " << f4(h2)
    << ".\n- Step 2: g_2 = 1, delta_2 = 1 · (1 − " << f4(h2) << "²) = " << f4(d2) << "; its term in dL/dw is delta_2 · h_1 = "
    << f4(d2 * h1) << ".\n- Back one step: g_1 = delta_2 · w = " << f4(g1) << ", delta_1 = " << f4(g1) << " · (1 − " << f4(h1)
    << "²) = " << f4(d1) << "; its term in dL/dw is delta_1 · h_0 = 0.\n- So dL/dw = " << f4(d2 * h1) << " + 0 = " << f4(dw)
    << ", and dL/du = delta_2 · x_2 + delta_1 · x_1 = " << f4(du) << ". Central differences give "
    << lab::format_number(cw, 5) << " and " << lab::format_number(cu, 5) << "; the engine's backward gives "
    << lab::format_number(tw.grad().item(), 5) << " and " << lab::format_number(tu.grad().item(), 5) << ".";
  return m.str();
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("04_bptt", "a tanh RNN unrolled by hand; backpropagation through time; the graph grows linearly in T");
  int seq_len = 8;
  cli.app().add_option("--T", seq_len, "length of the recall sequences used for training")->check(CLI::Range(2, 1000))->capture_default_str();
  cli.steps_help("training steps per seed (default 400; --quick 150)");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const lab::Chapter chapter(args);
    const int seeds = 5;
    chapter.text("worked_example", worked_example());

    // ---- 1) Train the unrolled RNN on first-token recall, 5 seeds ----------------------------
    // Seed args.seed + k: its own initial weights, training batches and held-out set.
    const std::int64_t steps = args.steps_or(400, 150);
    std::cout << "Lesson 04: a tanh RNN (H = " << H << ") unrolled by hand over first-token recall, T = " << seq_len
              << " (chance accuracy " << 1.0 / V << "), " << seeds << " seeds\n";
    lab::CurveLog loss_log(args.path("train_loss.csv"), {"loss"});  // the first seed's
    std::vector<Trained> runs;
    for (int k = 0; k < seeds; ++k)
      runs.push_back(train(args.seed + std::uint64_t(k), seq_len, steps, 0, k == 0 ? &loss_log : nullptr,
                           "train, seed " + std::to_string(args.seed + std::uint64_t(k))));
    std::vector<std::string> columns;
    for (int k = 0; k < seeds; ++k) columns.push_back("seed" + std::to_string(args.seed + std::uint64_t(k)));
    lab::CurveLog eval_log(args.path("eval_accuracy.csv"), columns);
    for (std::size_t i = 0; i < runs[0].steps.size(); ++i) {
      std::vector<double> row;
      for (const Trained& r : runs) row.push_back(r.accuracy[i]);
      eval_log.log(runs[0].steps[i], row);
    }
    lab::PlotOptions po_train{.title = "Unrolled tanh RNN, first-token recall (T = " + std::to_string(seq_len) + "), " +
                                       std::to_string(seeds) + " seeds",
                              .ylabel = "held-out accuracy", .ymin = 0, .ymax = 1.1, .hlines = {{1.0 / V, "chance (1/8)"}},
                              .key = "bottom right"};
    std::vector<lab::Series> curves;
    for (const std::string& c : columns) curves.push_back({eval_log.path(), c, "seed " + c.substr(4), "step", "lines", 1.5});
    if (lab::plot(args.path("training.png"), curves, po_train)) chapter.figure("training.png");
    lab::plot(args.path("train_loss.png"), lab::series(loss_log.path(), {"loss"}),
              {.title = "Training loss (cross-entropy), seed " + std::to_string(args.seed), .ylabel = "loss", .logy = true});

    lab::SeedStats start, first_90, final_acc;
    for (const Trained& r : runs) {
      start.add(r.accuracy.front()), final_acc.add(r.final_accuracy);
      first_90.add(r.first_90 >= 0 ? double(r.first_90) : double(steps + 1));
    }
    const double need = args.quick ? 0.5 : 0.9;  // --quick trains 150 steps: a weaker, still far-from-chance bar
    const std::size_t learned = final_acc.count([&](double a) { return a > need; });
    const std::size_t above_90 = final_acc.count([](double a) { return a > 0.9; });
    const std::size_t perfect = final_acc.count([](double a) { return a == 1.0; });
    lab::Table tt("Held-out accuracy, first-token recall, T = " + std::to_string(seq_len) + ", " + std::to_string(seeds) + " seeds",
                  {"", "median", "range"});
    tt.row({"at step 0", lab::Cell(start.median(), 3), start.range()});
    tt.row({"first step with accuracy >= 0.9", lab::Cell(first_90.median(), 2), first_90.range(2)});
    tt.row({"after " + std::to_string(steps) + " steps", lab::Cell(final_acc.median(), 4), final_acc.range(4)});
    std::cout << "\n";
    tt.print();
    tt.save_markdown(args.path("report.md"));
    chapter.table("training", tt);
    chapter.text("training_reading",
                 "The RNN learns to recall the first of 8 tokens over T = " + std::to_string(seq_len) + " in " +
                     std::to_string(above_90) + " of " + std::to_string(seeds) +
                     " seeds (held-out accuracy above 0.9; chance is 0.125), and " + std::to_string(perfect) + " of " +
                     std::to_string(seeds) + " end at exactly 1.000: from about chance at step 0 to 0.9 by step " +
                     lab::format_number(first_90.median(), 2) + " (median; " + first_90.range(2) + " over the seeds).");
    checks.expect(learned == std::size_t(seeds), "the RNN unrolled by hand learns recall at T = " + std::to_string(seq_len) +
                                                     ": held-out accuracy > " + lab::format_number(need, 1) +
                                                     " (chance 0.125) in " + std::to_string(learned) +
                                                     " of " + std::to_string(seeds) + " seeds");
    RecallRNN& model = *runs[0].model;  // the first seed's model is the one sections 2-4 look at
    lab::RecallTask task({.T = seq_len, .batch_size = 64, .vocab = int(V), .seed = args.seed});

    // ---- 2) The graph of the unrolled loop, T = 3 ---------------------------------------------
    model.cell.weight_ih.set_label("W_ih"), model.cell.weight_hh.set_label("W_hh");
    model.cell.bias_ih.set_label("b_ih"), model.cell.bias_hh.set_label("b_hh");
    model.readout.parameters()[0].set_label("W_out"), model.readout.parameters()[1].set_label("b_out");
    std::size_t nodes_T3 = 0;
    {
      ag::Generator g3(lab::derive_seed(args.seed, 5));
      const lab::RecallBatch small = task.sample(g3, 2);
      ag::Tensor x3 = ag::slice(small.one_hot, 1, 0, 3).detach();
      x3.requires_grad_().set_label("x");  // so the graph shows where each x_t comes from
      std::vector<ag::Tensor> hs;
      ag::Tensor loss3 = ag::cross_entropy(forward_unrolled(model, x3, &hs), small.targets);
      for (std::size_t t = 0; t < hs.size(); ++t) hs[t].set_label("h" + std::to_string(t));
      loss3.set_label("loss");
      nodes_T3 = graph_size(loss3).nodes;
      std::ostringstream listing;
      list_graph(loss3, listing);
      std::cout << "\nThe graph of the loop for T = 3 (B = 2), every node after its inputs:\n" << listing.str();
      chapter.text("graph_T3", "```\n" + listing.str() + "```");
      std::ofstream(args.path("graph_T3.dot")) << ag::to_dot(loss3);
      std::cout << "written to " << args.path("graph_T3.dot").string();
      if (std::system("command -v dot >/dev/null 2>&1") == 0) {
        const std::string cmd = "dot -Tpng -Gdpi=72 '" + args.path("graph_T3.dot").string() + "' -o '" + args.path("graph_T3.png").string() + "'";
        if (std::system(cmd.c_str()) == 0) std::cout << " and graph_T3.png", chapter.figure("graph_T3.png");
      } else {
        std::cout << " (render it with: dot -Tpng graph_T3.dot -o graph_T3.png)";
      }
      std::cout << "\nW_hh is one node used by " << hs.size() - 1 << " linear ops: backward adds one term per step into its .grad\n";
    }

    // ---- 3) BPTT by hand, in float64, against the engine --------------------------------------
    model.to(ag::f64);
    ag::Generator gb(lab::derive_seed(args.seed, 6));
    const lab::RecallBatch probe = task.sample(gb, 16);  // 16 fresh sequences
    {
      const ag::Tensor x = probe.one_hot.to(ag::f64).detach();
      std::vector<ag::Tensor> hs;
      const ag::Tensor loss = ag::cross_entropy(forward_unrolled(model, x, &hs), probe.targets);
      for (std::size_t t = 1; t < hs.size(); ++t) hs[t].retain_grad();  // keep dL/dh_t on these non-leaves
      model.cell.zero_grad();
      loss.backward();
      const HandGradients hand = bptt_by_hand(model.cell, x, hs, hs.back().grad());

      const double err_hh = relative_difference(hand.dW_hh, model.cell.weight_hh.grad());
      const double err_ih = relative_difference(hand.dW_ih, model.cell.weight_ih.grad());
      const double err_b = relative_difference(hand.db, model.cell.bias_hh.grad());
      double err_dh = 0;
      for (std::size_t t = 1; t < hs.size(); ++t) err_dh = std::max(err_dh, relative_difference(hand.dh[t], hs[t].grad()));

      lab::CurveLog contrib(args.path("step_contribution.csv"), {"norm"}, "t");
      lab::Table tc("Each step's term delta_t^T h_{t-1} in dL/dW_hh (trained model, float64)", {"t", "||term||", "||dL/dh_t||"});
      for (std::size_t t = 1; t < hs.size(); ++t) {
        const double dh = std::sqrt(ag::sum(hand.dh[t] * hand.dh[t]).item());
        contrib.log(double(t), {hand.step_contribution[t - 1]});
        tc.row({int(t), hand.step_contribution[t - 1], dh});
      }
      std::cout << "\n";
      tc.print();
      chapter.table("terms", tc);

      lab::Table t("BPTT by hand vs the engine (relative difference, float64)", {"gradient", "rel. difference"});
      t.row({"dL/dW_hh", lab::Cell(err_hh, 2)}).row({"dL/dW_ih", lab::Cell(err_ih, 2)}).row({"dL/db", lab::Cell(err_b, 2)});
      t.row({"dL/dh_t, every t", lab::Cell(err_dh, 2)});
      std::cout << "\n";
      t.print();
      t.save_markdown(args.path("report.md"), true);
      chapter.table("by_hand", t);
      checks.expect(std::max({err_hh, err_ih, err_b, err_dh}) < 1e-12,
                    "BPTT by hand (delta_t = g_t (1 - h_t^2), g_{t-1} = delta_t W_hh) equals the engine's gradients to < 1e-12");
      checks.expect(hand.step_contribution[0] == 0.0, "the t = 1 term of dL/dW_hh is exactly 0 (h_0 = 0)");

      // Where the output is most sensitive to the state: ||dL/dh_t|| for every seed's model.
      double lo = 1e300, hi = 0;
      for (std::size_t t = 1; t < hand.step_contribution.size(); ++t)
        lo = std::min(lo, hand.step_contribution[t]), hi = std::max(hi, hand.step_contribution[t]);
      model.to(ag::f32);
      std::size_t first_largest = 0;
      lab::SeedStats ratio;  // ||dL/dh_1|| / ||dL/dh_T||
      for (Trained& r : runs) {
        const std::vector<double> n = state_gradient_norms(*r.model, probe);
        first_largest += std::max_element(n.begin(), n.end()) == n.begin() ? 1 : 0;
        ratio.add(n.front() / n.back());
      }
      chapter.text("terms_reading",
                   "The table of terms (the first seed's trained model, 16 fresh sequences) shows `dW_hh` as a sum over time: "
                   "the t = 1 term is exactly 0 because `h_0 = 0`, the others are " + lab::format_number(lo, 2) + " to " +
                       lab::format_number(hi, 2) + " each. The column `||dL/dh_t||` is largest at t = 1 in " +
                       std::to_string(first_largest) + " of the " + std::to_string(seeds) + " seeds' models (`||dL/dh_1|| / ||dL/dh_" +
                       std::to_string(seq_len) + "||`: median " + lab::format_number(ratio.median(), 3) + ", " + ratio.range() +
                       "): the trained network carries the first token, so the output is most sensitive to the state right "
                       "after it.");
      checks.expect(first_largest * 2 > std::size_t(seeds), "||dL/dh_t|| is largest at t = 1 in most seeds (" +
                                                               std::to_string(first_largest) + " of " + std::to_string(seeds) + ")");
    }

    // ---- 4) The size of the unrolled graph vs T ----------------------------------------------
    // x is a leaf here, as in the T = 3 picture above, so that the two count the same nodes.
    lab::CurveLog size_log(args.path("graph_size.csv"), {"nodes", "ops", "megabytes", "cpu_ms_forward_backward"}, "T");
    lab::Table ts("The graph behind the loss (B = 64, H = 64, float32)", {"T", "nodes", "ops", "MB held"});
    lab::Table tms("Forward + backward, CPU time (the fastest of 3 runs)", {"T", "CPU ms"});
    std::vector<std::size_t> nodes_at;
    std::vector<double> mb_at;
    std::vector<int> Ts;
    for (int T = 10; T <= 200; T += 10) Ts.push_back(T);
    lab::Progress size_bar(std::int64_t(Ts.size()), "graph size");
    ag::Generator gs(lab::derive_seed(args.seed, 7));
    for (int T : Ts) {
      lab::RecallTask long_task({.T = T, .batch_size = 64, .vocab = int(V), .seed = args.seed, .eval_size = 1});
      const lab::RecallBatch b = long_task.next_batch(gs);
      const ag::Tensor x = b.one_hot.detach().requires_grad_();
      const ag::Tensor loss = ag::cross_entropy(forward_unrolled(model, x), b.targets);
      const GraphSize g = graph_size(loss);
      // Forward + backward in CPU time (std::clock: other programs sharing the cores do not count),
      // the fastest of 3 runs.
      double ms = 1e300;
      for (int rep = 0; rep < 3; ++rep) {
        const std::clock_t c0 = std::clock();
        model.cell.zero_grad(), model.readout.zero_grad();
        ag::cross_entropy(forward_unrolled(model, x), b.targets).backward();
        ms = std::min(ms, 1000.0 * double(std::clock() - c0) / CLOCKS_PER_SEC);
      }
      nodes_at.push_back(g.nodes), mb_at.push_back(g.megabytes);
      size_log.log(T, {double(g.nodes), double(g.ops), g.megabytes, ms});
      if (T % 50 == 0 || T == 10) ts.row({T, g.nodes, g.ops, lab::Cell(g.megabytes, 3)}), tms.row({T, lab::Cell(ms, 2)});
      size_bar.tick();
    }
    size_bar.finish();
    std::cout << "\n";
    ts.print();
    tms.print();
    ts.save_markdown(args.path("report.md"), true);
    chapter.table("graph_size", ts);
    chapter.table("graph_time", tms, lab::Timing::yes);
    const LinearFit f = fit(nodes_at[0], std::size_t(Ts[0]), nodes_at[1], std::size_t(Ts[1]));
    bool linear = true;
    for (std::size_t i = 0; i < Ts.size(); ++i) linear = linear && nodes_at[i] == f.fixed + f.per_step * std::size_t(Ts[i]);
    const double kb_per_step = (mb_at.back() - mb_at.front()) / double(Ts.back() - Ts.front());  // megabytes per step
    // The training graph: x needs no gradient there, so it is not a node.
    std::size_t training_nodes = 0;
    {
      const lab::RecallBatch b = task.sample(gs, 4);
      training_nodes = graph_size(ag::cross_entropy(forward_unrolled(model, b.one_hot), b.targets)).nodes;
    }
    std::cout << "nodes = " << f.text() << " for every T measured (" << nodes_T3 << " for the T = 3 graph above)\n\n";
    lab::PlotOptions po_size{.title = "The unrolled graph grows linearly with the sequence length",
                             .xlabel = "sequence length T", .ylabel = "nodes reachable from the loss", .ymin = 0};
    const std::vector<lab::Series> size_curve{
        {.csv = size_log.path(), .y = "nodes", .title = "nodes = " + f.text(), .x = "T", .style = "linespoints"}};
    if (lab::plot(args.path("graph_size.png"), size_curve, po_size)) chapter.figure("graph_size.png");
    lab::plot_terminal(size_curve, po_size);

    chapter.text("graph_formula",
                 "`nodes = " + f.text() + "` for every T from " + std::to_string(Ts.front()) + " to " + std::to_string(Ts.back()) +
                     ", and the T = 3 graph listed above has " + std::to_string(f.per_step) + " · 3 + " +
                     std::to_string(f.fixed) + " = " + std::to_string(nodes_T3) + " nodes. The " + std::to_string(f.fixed) +
                     " are the graph's fixed part: the four cell weights, `x`, `h_0`, the readout's weight and bias, the "
                     "readout `linear` and the loss. The " + std::to_string(f.per_step) +
                     " per step are the ones named above. In training, `x` needs no gradient, so it is not a node and the "
                     "graph has one node less: " + std::to_string(training_nodes) + " at T = " + std::to_string(seq_len) +
                     ".\n\nMemory follows: every node keeps its output, mostly `[64, 64]` floats, until backward has used it, "
                     "about " + lab::format_number(1000 * kb_per_step, 2) + " kB per step here.");
    checks.expect(linear, "the graph has exactly " + f.text() + " nodes for T = 10, 20, ..., 200: linear in T");
    checks.expect(f.per_step == 5, "each time step adds 5 nodes: select x_t, linear (input), linear (recurrent), add, tanh");
    checks.expect(nodes_T3 == f.fixed + 3 * f.per_step, "the T = 3 graph listed has " + std::to_string(nodes_T3) + " = " +
                                                            std::to_string(f.per_step) + " · 3 + " + std::to_string(f.fixed) + " nodes");
    checks.expect(training_nodes + 1 == f.fixed + f.per_step * std::size_t(seq_len),
                  "the training graph (x not a node) has one node less: " + std::to_string(training_nodes));

    // ---- 5) The exercises' answers, measured (the chapter quotes them) --------------------------
    {  // 1. truncated BPTT: the node count, and training with cuts every k steps
      const std::size_t k = 4;
      const lab::RecallBatch b = task.sample(gs, 4);
      const GraphSize cut = graph_size(ag::cross_entropy(forward_unrolled(model, b.one_hot.detach().requires_grad_(), nullptr, k), b.targets));
      std::string answer = "*Answer:* for T = " + std::to_string(seq_len) + ", k = " + std::to_string(k) +
                           ", the graph from the loss (with `x` a leaf, as in section 4) holds the last " +
                           std::to_string(std::size_t(seq_len) - (std::size_t(seq_len) - 1) / k * k) + " steps only: " +
                           std::to_string(cut.nodes) + " nodes (the detached state takes the place of `h_0`). ";
      if (!args.quick) {
        lab::SeedStats acc4, acc7;
        for (int s = 0; s < seeds; ++s) {
          const std::uint64_t seed = args.seed + std::uint64_t(s);
          acc4.add(train(seed, seq_len, steps, 4, nullptr, "truncated, k = 4, seed " + std::to_string(seed)).final_accuracy);
          acc7.add(train(seed, seq_len, steps, 7, nullptr, "truncated, k = 7, seed " + std::to_string(seed)).final_accuracy);
        }
        answer += "The forward pass still carries the first token, but no gradient reaches it, so the model cannot learn "
                  "to keep it. Held-out accuracy after " + std::to_string(steps) + " steps, over " + std::to_string(seeds) +
                  " seeds: median " + lab::format_number(acc4.median(), 3) + " (" + acc4.range() + ") with k = 4, " +
                  lab::format_number(acc7.median(), 3) + " (" + acc7.range() + ") with k = 7, and " +
                  lab::format_number(final_acc.median(), 4) + " (" + final_acc.range(4) + ") without cuts.";
        checks.expect(acc4.max() < final_acc.min(), "exercise 1: cutting the graph every 4 steps learns less in every seed");
      }
      chapter.text("answer1", answer);
    }
    {  // 2. LSTM and GRU: nodes per step
      auto count = [&](nn::CellKind kind) { return fit(unrolled_graph(kind, 10).nodes, 10, unrolled_graph(kind, 20).nodes, 20); };
      const LinearFit lstm = count(nn::CellKind::lstm), gru = count(nn::CellKind::gru), rnn = count(nn::CellKind::tanh_rnn);
      checks.expect(rnn.per_step == f.per_step && rnn.fixed == f.fixed, "exercise 2: the counting loop gives " + rnn.text() +
                                                                          " for the tanh cell, as section 4");
      chapter.text("answer2", "*Answer:* " + std::to_string(lstm.per_step) + " per step: " + ops_per_step(nn::CellKind::lstm) +
                                  " (two `linear`s and an `add` for the gates, 4 `slice`s to split them, 3 `sigmoid`s and a "
                                  "`tanh` for the gates, `c_t = f c_{t-1} + i g` and `h_t = o tanh(c_t)`). A GRU cell is " +
                                  std::to_string(gru.per_step) + " (" + ops_per_step(nn::CellKind::gru) + "). The graph is "
                                  "then " + lstm.text() + " nodes for the LSTM (the extra fixed node is `c_0`) and " + gru.text() +
                                  " for the GRU.");
    }
    {  // 3. the gradient reaching the inputs: dL/dx_t = delta_t W_ih
      model.to(ag::f64);
      const ag::Tensor x = probe.one_hot.to(ag::f64).detach().requires_grad_();
      std::vector<ag::Tensor> hs;
      const ag::Tensor loss = ag::cross_entropy(forward_unrolled(model, x, &hs), probe.targets);
      for (std::size_t t = 1; t < hs.size(); ++t) hs[t].retain_grad();
      loss.backward();
      double worst = 0;
      std::string norms;
      const ag::Tensor W_ih = model.cell.weight_ih.detach();
      for (std::size_t t = 1; t < hs.size(); ++t) {
        ag::NoGrad ng;
        const ag::Tensor h = hs[t].detach();
        const ag::Tensor delta = hs[t].grad() * (1.0 - h * h);  // dL/da_t
        const ag::Tensor dx = ag::matmul(delta, W_ih);          // dL/dx_t: [B, V]
        worst = std::max(worst, relative_difference(dx, ag::select(x.grad(), 1, std::int64_t(t - 1))));
        norms += (t > 1 ? ", " : "") + lab::format_number(std::sqrt(ag::sum(dx * dx).item()), 2);
      }
      model.to(ag::f32);
      checks.expect(worst < 1e-12, "exercise 3: dL/dx_t = delta_t W_ih equals the engine's x.grad() to < 1e-12");
      chapter.text("answer3", "*Answer:* relative difference " + lab::format_number(worst, 2) +
                                  " again. `||dL/dx_t||` for t = 1.." + std::to_string(seq_len) + " is " + norms +
                                  ": the quantity lesson 05 plots for T = 100.");
    }

    std::ostringstream report;
    const int status = checks.report(report);
    std::cout << report.str();
    chapter.text("checks", "```" + report.str() + "```");
    return status;
  });
}
