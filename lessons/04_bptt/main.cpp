// Lesson 04: recurrence and backpropagation through time (BPTT).
//
// A tanh RNN written as a plain loop over time steps, the graph that loop builds, and the
// gradient that flows back through it. Shape legend:
//   B  sequences in a batch   T  time steps   V  symbols (8; inputs are one-hot)   H  hidden units
//
//   1) Train: an nn::RNNCell stepped by hand over first-token recall with T = 8.
//   2) The graph: the unrolled loop for T = 3, listed and written with ag::to_dot.
//   3) BPTT by hand: the backward recurrence run step by step in float64 gives the engine's
//      gradients to rounding error.
//   4) The size of the graph: nodes reachable from the loss for T = 10 ... 200: linear in T.
#include <cmath>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
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
ag::Tensor forward_unrolled(const RecallRNN& m, const ag::Tensor& x, std::vector<ag::Tensor>* hs = nullptr) {
  const std::size_t B = x.size(0), T = x.size(1);
  nn::RecurrentState s{ag::zeros({B, H}, {x.dtype()}), ag::Tensor()};  // h_0 = 0
  if (hs) hs->push_back(s.h);
  for (std::size_t t = 0; t < T; ++t) {
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
};
GraphSize graph_size(const ag::Tensor& root) {
  GraphSize g;
  std::unordered_set<const ag::Node*> seen{root.node()};
  std::vector<const ag::Node*> stack{root.node()};
  while (!stack.empty()) {
    const ag::Node* n = stack.back();
    stack.pop_back();
    ++g.nodes;
    if (!n->leaf) ++g.ops;
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

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("04_bptt", "a tanh RNN unrolled by hand; backpropagation through time; the graph grows linearly in T");
  int seq_len = 8;
  cli.app().add_option("--T", seq_len, "length of the recall sequences used for training")->check(CLI::Range(2, 1000));
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;

    // ---- 1) Train the unrolled RNN on first-token recall -------------------------------------
    const std::int64_t steps = args.steps_or(400, 150);
    lab::RecallTask task({.T = seq_len, .batch_size = 64, .vocab = int(V), .seed = args.seed});
    ag::Generator gen(lab::derive_seed(args.seed, 4));
    RecallRNN model(gen);
    nn::Adam opt(model.parameters(), {.lr = 3e-3});
    std::cout << "Lesson 04: a tanh RNN (H = " << H << ") unrolled by hand over first-token recall, T = " << seq_len
              << " (chance accuracy " << task.chance_accuracy() << ")\n";
    lab::CurveLog loss_log(args.path("train_loss.csv"), {"loss"});
    lab::CurveLog eval_log(args.path("eval_accuracy.csv"), {"accuracy"});
    auto evaluate = [&] {
      ag::NoGrad ng;
      return accuracy(forward_unrolled(model, task.eval_set().one_hot), task.eval_set().targets);
    };
    eval_log.log(0, {evaluate()});
    lab::Progress bar(steps, "train");
    double acc = 0;
    for (std::int64_t step = 1; step <= steps; ++step) {
      const lab::RecallBatch b = task.next_batch();
      opt.zero_grad();
      const ag::Tensor loss = ag::cross_entropy(forward_unrolled(model, b.one_hot), b.targets);
      loss.backward();  // BPTT: the engine walks the unrolled graph backward
      opt.step();
      loss_log.log(double(step), {loss.item()});
      if (step % 10 == 0 || step == steps) eval_log.log(double(step), {acc = evaluate()});
      bar.update(step, {{"loss", loss.item()}, {"eval acc", acc}});
    }
    bar.finish();
    lab::PlotOptions po_train{.title = "Unrolled tanh RNN, first-token recall (T = " + std::to_string(seq_len) + ")",
                              .ylabel = "held-out accuracy", .ymin = 0, .ymax = 1.25,
                              .hlines = {{task.chance_accuracy(), "chance (1/8)"}}};
    lab::plot(args.path("training.png"), lab::series(eval_log.path(), {"accuracy"}), po_train);
    lab::plot(args.path("train_loss.png"), lab::series(loss_log.path(), {"loss"}),
              {.title = "Training loss (cross-entropy)", .ylabel = "loss", .logy = true});
    checks.expect(acc > 0.9, "the RNN unrolled by hand learns recall at T = " + std::to_string(seq_len) +
                                 ": held-out accuracy " + lab::format_number(acc) + " > 0.9 (chance 0.125)");

    // ---- 2) The graph of the unrolled loop, T = 3 ---------------------------------------------
    model.cell.weight_ih.set_label("W_ih"), model.cell.weight_hh.set_label("W_hh");
    model.cell.bias_ih.set_label("b_ih"), model.cell.bias_hh.set_label("b_hh");
    model.readout.parameters()[0].set_label("W_out"), model.readout.parameters()[1].set_label("b_out");
    {
      ag::Generator g3(lab::derive_seed(args.seed, 5));
      const lab::RecallBatch small = task.sample(g3, 2);
      ag::Tensor x3 = ag::slice(small.one_hot, 1, 0, 3).detach();
      x3.requires_grad_().set_label("x");  // so the graph shows where each x_t comes from
      std::vector<ag::Tensor> hs;
      ag::Tensor loss3 = ag::cross_entropy(forward_unrolled(model, x3, &hs), small.targets);
      for (std::size_t t = 0; t < hs.size(); ++t) hs[t].set_label("h" + std::to_string(t));
      loss3.set_label("loss");
      std::cout << "\nThe graph of the loop for T = 3 (B = 2), every node after its inputs:\n";
      list_graph(loss3, std::cout);
      std::ofstream(args.path("graph_T3.dot")) << ag::to_dot(loss3);
      std::cout << "written to " << args.path("graph_T3.dot").string();
      if (std::system("command -v dot >/dev/null 2>&1") == 0) {
        const std::string cmd = "dot -Tpng -Gdpi=72 '" + args.path("graph_T3.dot").string() + "' -o '" + args.path("graph_T3.png").string() + "'";
        if (std::system(cmd.c_str()) == 0) std::cout << " and graph_T3.png";
      } else {
        std::cout << " (render it with: dot -Tpng graph_T3.dot -o graph_T3.png)";
      }
      std::cout << "\nW_hh is one node used by " << hs.size() - 1 << " linear ops: backward adds one term per step into its .grad\n";
    }

    // ---- 3) BPTT by hand, in float64, against the engine --------------------------------------
    model.to(ag::f64);
    {
      ag::Generator gb(lab::derive_seed(args.seed, 6));
      const lab::RecallBatch b = task.sample(gb, 16);
      const ag::Tensor x = b.one_hot.to(ag::f64).detach();
      std::vector<ag::Tensor> hs;
      const ag::Tensor loss = ag::cross_entropy(forward_unrolled(model, x, &hs), b.targets);
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

      lab::Table t("BPTT by hand vs the engine (relative difference, float64)", {"gradient", "rel. difference"});
      t.row({"dL/dW_hh", err_hh}).row({"dL/dW_ih", err_ih}).row({"dL/db", err_b}).row({"dL/dh_t, every t", err_dh});
      std::cout << "\n";
      t.print();
      t.save_markdown(args.path("report.md"));
      checks.expect(std::max({err_hh, err_ih, err_b, err_dh}) < 1e-12,
                    "BPTT by hand (delta_t = g_t (1 - h_t^2), g_{t-1} = delta_t W_hh) equals the engine's gradients to < 1e-12");
    }

    // ---- 4) The size of the unrolled graph vs T ----------------------------------------------
    model.to(ag::f32);
    lab::CurveLog size_log(args.path("graph_size.csv"), {"nodes", "ops", "megabytes", "cpu_ms_forward_backward"}, "T");
    lab::Table ts("The graph behind the loss (B = 64, H = 64, float32)", {"T", "nodes", "ops", "MB held", "CPU ms fwd+bwd"});
    std::vector<std::size_t> nodes_at;
    std::vector<int> Ts;
    for (int T = 10; T <= 200; T += 10) Ts.push_back(T);
    lab::Progress size_bar(std::int64_t(Ts.size()), "graph size");
    ag::Generator gs(lab::derive_seed(args.seed, 7));
    for (int T : Ts) {
      lab::RecallTask long_task({.T = T, .batch_size = 64, .vocab = int(V), .seed = args.seed, .eval_size = 1});
      const lab::RecallBatch b = long_task.next_batch(gs);
      const ag::Tensor loss = ag::cross_entropy(forward_unrolled(model, b.one_hot), b.targets);
      const GraphSize g = graph_size(loss);
      // Forward + backward in CPU time (std::clock: other programs sharing the cores do not count),
      // the fastest of 3 runs.
      double ms = 1e300;
      for (int rep = 0; rep < 3; ++rep) {
        const std::clock_t c0 = std::clock();
        model.cell.zero_grad(), model.readout.zero_grad();
        ag::cross_entropy(forward_unrolled(model, b.one_hot), b.targets).backward();
        ms = std::min(ms, 1000.0 * double(std::clock() - c0) / CLOCKS_PER_SEC);
      }
      nodes_at.push_back(g.nodes);
      size_log.log(T, {double(g.nodes), double(g.ops), g.megabytes, ms});
      if (T % 50 == 0 || T == 10) ts.row({T, g.nodes, g.ops, g.megabytes, ms});
      size_bar.tick();
    }
    size_bar.finish();
    std::cout << "\n";
    ts.print();
    ts.save_markdown(args.path("report.md"), true);
    const std::size_t per_step = (nodes_at[1] - nodes_at[0]) / 10, fixed = nodes_at[0] - per_step * 10;
    bool linear = true;
    for (std::size_t i = 0; i < Ts.size(); ++i) linear = linear && nodes_at[i] == fixed + per_step * std::size_t(Ts[i]);
    const std::string fit = std::to_string(per_step) + " T + " + std::to_string(fixed);
    std::cout << "nodes = " << fit << " for every T measured\n\n";
    lab::PlotOptions po_size{.title = "The unrolled graph grows linearly with the sequence length",
                             .xlabel = "sequence length T", .ylabel = "nodes reachable from the loss", .ymin = 0};
    const std::vector<lab::Series> size_curve{
        {.csv = size_log.path(), .y = "nodes", .title = "nodes = " + fit, .x = "T", .style = "linespoints"}};
    lab::plot(args.path("graph_size.png"), size_curve, po_size);
    lab::plot_terminal(size_curve, po_size);

    checks.expect(linear, "the graph has exactly " + fit + " nodes for T = 10, 20, ..., 200: linear in T");
    checks.expect(per_step == 5, "each time step adds 5 nodes: select x_t, linear (input), linear (recurrent), add, tanh");
    return checks.report();
  });
}
