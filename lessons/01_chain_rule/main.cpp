// Lesson 01: the chain rule and the graph.
//
// One small expression, L = tanh(w*x + b) * x, is built with the engine, differentiated by hand
// (each step printed) and by the engine (one backward()), and the two are compared. The graph
// the engine recorded is written as Graphviz text (graph.dot) and drawn to graph.png when `dot`
// is installed. Then the same expression over 201 values of x at once: the engine's dL/dx next
// to the hand-derived formula (chain_rule.png).
//
// Files in --out: nodes.csv (value and gradient of every node), graph.dot (+ graph.png),
// curve.csv + chain_rule.png/.svg/.gp, report.md, and chapter/ (what README.md quotes).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "common/labkit.hpp"
#include "nn/nn.hpp"

namespace {

// "name = formula = value", the columns aligned.
void say(const std::string& lhs, const std::string& rule, double value) {
  std::printf("  %-7s = %-28s = %+.6f\n", lhs.c_str(), rule.c_str(), value);
}

// A value as the chapter writes it: up to 6 decimals, no trailing zeros (-1.2, 0.952109, 1).
std::string dec(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}
std::string paren(double v) { return v < 0 ? "(" + dec(v) + ")" : dec(v); }  // "(-0.8)"

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
  return n;
}

bool on_path(const char* program) {
  return std::system(("command -v " + std::string(program) + " >/dev/null 2>&1").c_str()) == 0;
}

// Exercises 1-3 of the chapter, done with the engine: each builds its own variant of the expression.
void exercise_answers(const lab::Chapter& chapter, double xv, double wv, double bv, double L0) {
  const ag::TensorOptions leaf{.dtype = ag::f64, .requires_grad = true};
  {  // 1. b = 0.7
    const double b1 = 0.7;
    ag::Tensor x = ag::scalar(xv, leaf), w = ag::scalar(wv, leaf), b = ag::scalar(b1, leaf);
    ag::Tensor z = w * x + b;
    z.retain_grad();
    const ag::Tensor h = ag::tanh(z);
    (h * x).backward();
    const double hv = h.item(), dz = z.grad().item();
    chapter.text("answer1", "*Answer:* `z = " + dec(z.item()) + "`, `h = tanh(" + dec(z.item()) + ") = " + dec(hv) +
                                "`, `1 - h² = " + dec(1 - hv * hv) + "`, `dL/dz = " + dec(xv) + " · " + dec(1 - hv * hv) + " = " +
                                dec(dz) + "`, and `dL/dx = " + dec(hv) + " + " + dec(dz) + " · " + paren(wv) + " = " +
                                dec(x.grad().item()) + "`. The table should show the same value in both columns.");
  }
  {  // 2. L = h * x.detach()
    ag::Tensor x = ag::scalar(xv, leaf), w = ag::scalar(wv, leaf), b = ag::scalar(bv, leaf);
    const ag::Tensor L = ag::tanh(w * x + b) * x.detach();
    const std::string dot = ag::to_dot(L);  // before backward(), which frees the graph
    L.backward();
    chapter.text("answer2", "*Answer:* only `dL/dx` changes: it loses the direct path and becomes `dL/dx'' = " +
                                dec(x.grad().item()) + "` (`w` gets " + dec(w.grad().item()) + " and `b` " + dec(b.grad().item()) +
                                ", as before). The values and the other gradients stay the same. The node-table check and the "
                                "\"two paths\" check fail. `graph.dot` now shows " + std::to_string(count(dot, "style=dashed")) +
                                " dashed leaf (value " + dec(xv) + ", no name) feeding `L`. Dashed means "
                                "it does not require a gradient, so no gradient flows back along that edge.");
  }
  {  // 3. L = (h * x)^2
    ag::Tensor x = ag::scalar(xv, leaf), w = ag::scalar(wv, leaf), b = ag::scalar(bv, leaf);
    const ag::Tensor L = ag::pow(ag::tanh(w * x + b) * x, 2.0);
    const std::string dot = ag::to_dot(L);
    L.backward();
    chapter.text("answer3", "*Answer:* every gradient is multiplied by `2 · " + paren(L0) + " = " + dec(2 * L0) +
                                "`. For example, `dL/dx` becomes `" + dec(x.grad().item()) + "` and `dL/dw` becomes `" +
                                dec(w.grad().item()) + "`. The graph gains one box (" + std::to_string(count(dot, "shape=box")) +
                                " instead of 4), `" + (dot.find("pow_scalar") != std::string::npos ? "pow_scalar" : "pow") +
                                "`. The exponent is a plain number stored in the op, not a node.");
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("01_chain_rule", "Lesson 01: the chain rule and the graph, by hand and by the engine");
  cli.steps_help("not training steps here: the number of x values on the dL/dx curve (default 201; --quick 41)");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const lab::Chapter chapter(args);
    const ag::TensorOptions leaf{.dtype = ag::f64, .requires_grad = true};  // float64: exact to ~1e-16

    // ---- 1. Forward: build the graph ----------------------------------------------------
    // L = tanh(w*x + b) * x. x is used twice, so two paths lead from x to L.
    const double xv = 1.5, wv = -0.8, bv = 0.5;
    ag::Tensor x = ag::scalar(xv, leaf).set_label("x");
    ag::Tensor w = ag::scalar(wv, leaf).set_label("w");
    ag::Tensor b = ag::scalar(bv, leaf).set_label("b");
    ag::Tensor u = (w * x).set_label("u");
    ag::Tensor z = (u + b).set_label("z");
    ag::Tensor h = ag::tanh(z).set_label("h");
    ag::Tensor L = (h * x).set_label("L");
    for (ag::Tensor* t : {&u, &z, &h}) t->retain_grad();  // keep the gradients of inner nodes too

    std::cout << "Forward pass, L = tanh(w*x + b) * x:\n";
    say("x", "(input)", xv);
    say("w", "(input)", wv);
    say("b", "(input)", bv);
    say("u", "w * x", u.item());
    say("z", "u + b", z.item());
    say("h", "tanh(z)", h.item());
    say("L", "h * x", L.item());

    // The graph, as the engine recorded it: ellipses are leaves, boxes are ops.
    const std::string dot = ag::to_dot(L);
    std::ofstream(args.path("graph.dot")) << dot;
    std::string drawn = "graph.dot written; install graphviz to draw it (dot -Tpng graph.dot -o graph.png)";
    if (on_path("dot")) {
      const std::string cmd = "dot -Tpng '" + args.path("graph.dot").string() + "' -o '" + args.path("graph.png").string() + "'";
      const bool ok = std::system(cmd.c_str()) == 0;
      drawn = ok ? "graph drawn by graphviz: " + args.path("graph.png").string() : "graphviz failed; graph.dot is there";
      if (ok) chapter.figure("graph.png");
    }
    std::cout << "\n" << drawn << "\n";

    // ---- 2. Backward by hand: local derivative times the gradient from above ------------
    const double H = h.item();
    std::cout << "\nBackward pass by hand, from L back to the leaves (dL/dv for every node v):\n";
    const double dL = 1.0;
    say("dL/dL", "1", dL);
    const double dh = dL * xv;                 // L = h * x   ->  dL/dh = x
    say("dL/dh", "dL/dL * x", dh);
    const double dx_direct = dL * H;           //               dL/dx (direct path) = h
    say("dL/dx'", "dL/dL * h   (path x -> L)", dx_direct);
    const double dz = dh * (1 - H * H);        // h = tanh(z) ->  dh/dz = 1 - tanh(z)^2 = 1 - h^2
    say("dL/dz", "dL/dh * (1 - h^2)", dz);
    const double du = dz * 1.0;                // z = u + b   ->  dz/du = 1
    say("dL/du", "dL/dz * 1", du);
    const double db = dz * 1.0;                //                dz/db = 1
    say("dL/db", "dL/dz * 1", db);
    const double dw = du * xv;                 // u = w * x   ->  du/dw = x
    say("dL/dw", "dL/du * x", dw);
    const double dx_via_u = du * wv;           //                du/dx = w
    say("dL/dx''", "dL/du * w   (path x -> u)", dx_via_u);
    const double dx = dx_direct + dx_via_u;    // x feeds two nodes: the two paths add up
    say("dL/dx", "dL/dx' + dL/dx''", dx);

    // ---- 3. Backward by the engine: one call --------------------------------------------
    L.backward();

    struct Row { const char* name; const char* op; ag::Tensor t; double by_hand; };
    const Row rows[] = {{"L", "mul", L, dL}, {"h", "tanh", h, dh}, {"z", "add", z, dz}, {"u", "mul", u, du},
                        {"b", "leaf", b, db}, {"w", "leaf", w, dw}, {"x", "leaf", x, dx}};
    lab::Table table("dL/dv for every node v: by hand and by the engine (float64)",
                     {"node", "op", "value", "by hand", "by engine", "|difference|"});
    std::ofstream csv(args.path("nodes.csv"));
    csv << "node,op,value,grad_by_hand,grad_by_engine\n";
    csv.precision(17);
    double worst = 0;
    for (const Row& r : rows) {
      // The root's gradient is the seed 1 (the engine does not keep it for a non-leaf unless
      // retain_grad() was called before backward, so we write it down).
      const double engine = r.t.has_grad() ? r.t.grad().item() : 1.0;
      worst = std::max(worst, std::abs(engine - r.by_hand));
      table.row({r.name, r.op, lab::Cell(r.t.item(), 6), lab::Cell(r.by_hand, 8), lab::Cell(engine, 8),
                 lab::Cell(std::abs(engine - r.by_hand), 2)});
      csv << r.name << ',' << r.op << ',' << r.t.item() << ',' << r.by_hand << ',' << engine << '\n';
    }
    std::cout << "\n";
    table.print();
    table.save_markdown(args.path("report.md"));
    chapter.table("nodes", table);

    // The worked example of the chapter ("The idea"), written from the same numbers.
    {
      std::ostringstream m;
      m << "| node | value | dL/d(node) |\n|---|---|---|\n"
        << "| u = w·x | " << dec(u.item()) << " | " << dec(du) << " |\n"
        << "| z = u + b | " << dec(z.item()) << " | " << dec(dz) << " |\n"
        << "| h = tanh z | " << dec(H) << " | " << dec(dh) << " |\n"
        << "| L = h·x | " << dec(L.item()) << " | " << dec(dL) << " |\n"
        << "| w | " << dec(wv) << " | " << dec(du) << " · " << dec(xv) << " = " << dec(dw) << " |\n"
        << "| b | " << dec(bv) << " | " << dec(db) << " |\n"
        << "| x | " << dec(xv) << " | " << dec(dx_direct) << " + " << dec(du) << " · " << paren(wv) << " = " << dec(dx_direct)
        << (dx_via_u < 0 ? " - " : " + ") << dec(std::abs(dx_via_u)) << " = **" << dec(dx) << "** |\n\n"
        << "`1 - h² = 1 - " << dec(H * H) << " = " << dec(1 - H * H) << "`, and `" << dec(xv) << " · " << dec(1 - H * H)
        << " = " << dec(dz) << "`. The gradient of `x` is a sum, because `x` reaches `L` along two paths.\n\n"
        << "**What a gradient means.** `dL/dx = " << lab::format_number(dx) << "` predicts that nudging `x` by `δ` changes `L` by about `"
        << lab::format_number(dx) << " δ`.";
      chapter.text("worked_example", m.str());
    }

    // ---- 4. What a gradient means: nudge x and watch L --------------------------------------
    // L(x + delta) - L(x) ~ dL/dx * delta for a small delta (lesson 02 makes this precise).
    auto L_of = [&](double xx) { return std::tanh(wv * xx + bv) * xx; };
    const double delta = 1e-4;
    const double predicted = dx * delta, actual = L_of(xv + delta) - L_of(xv);
    char nudge[160];
    std::snprintf(nudge, sizeof nudge, "Nudge x by %.0e: L changes by %+.9e; dL/dx * %.0e predicts %+.9e", delta, actual, delta, predicted);
    std::cout << "\n" << nudge << "\n";
    chapter.text("nudge", std::string("```\n") + nudge + "\n```");

    // ---- 5. The same expression for many x at once -----------------------------------------
    // x holds n values; L = sum(tanh(w*x + b) * x) has dL/dx_i = the derivative at x_i, so one
    // backward gives the whole curve. w and b are shared scalars: they broadcast over x.
    const std::int64_t n = args.steps_or(201, 41);
    std::vector<double> grid(n);
    for (std::int64_t i = 0; i < n; ++i) grid[i] = -3.0 + 6.0 * double(i) / double(n - 1);  // [-3, 3]
    ag::Tensor xs = ag::tensor(grid, {std::size_t(n)}, leaf);
    ag::Tensor w2 = ag::scalar(wv, leaf), b2 = ag::scalar(bv, leaf);
    ag::Tensor ys = ag::tanh(w2 * xs + b2) * xs;
    ag::sum(ys).backward();
    const std::vector<double> xv_all = xs.to_vector(), yv_all = ys.to_vector(), gv_all = xs.grad().to_vector();
    lab::CurveLog curve(args.path("curve.csv"), {"L", "dLdx_engine", "dLdx_by_hand"}, "x");
    lab::CurveLog marks(args.path("curve_marks.csv"), {"dLdx_by_hand"}, "x");  // every 10th point, for the plot
    double worst_curve = 0;
    for (std::size_t i = 0; i < xv_all.size(); ++i) {
      const double xi = xv_all[i], hi = std::tanh(wv * xi + bv);
      const double hand = hi + xi * (1 - hi * hi) * wv;  // the formula of section 2, at x_i
      worst_curve = std::max(worst_curve, std::abs(hand - gv_all[i]));
      curve.log(xi, {yv_all[i], gv_all[i], hand});
      if (i % 10 == 0) marks.log(xi, {hand});
    }
    // Where L peaks (dL/dx crosses 0) and where L falls fastest (dL/dx is most negative), on the grid.
    const std::size_t peak = std::size_t(std::max_element(yv_all.begin(), yv_all.end()) - yv_all.begin());
    const std::size_t steepest = std::size_t(std::min_element(gv_all.begin(), gv_all.end()) - gv_all.begin());
    lab::CurveLog worked(args.path("worked_example.csv"), {"L", "dLdx"}, "x");  // the point of sections 1-3
    worked.log(xv, {L.item(), x.grad().item()});
    lab::PlotOptions po{.title = "L(x) = tanh(w x + b) x  with w = -0.8, b = 0.5", .xlabel = "x", .ylabel = "value",
                        .ymin = -3, .ymax = 2.5};
    std::vector<lab::Series> s = {{curve.path(), "L", "L(x)", "x"},
                                  {curve.path(), "dLdx_engine", "dL/dx, engine", "x"},
                                  {marks.path(), "dLdx_by_hand", "dL/dx, by hand", "x", "points pt 6 ps 1.2"},
                                  {worked.path(), "dLdx", "the worked example, x = 1.5", "x", "points pt 7 ps 1.6"}};
    if (lab::plot(args.path("chain_rule.png"), s, po)) chapter.figure("chain_rule.png");
    std::cout << "\n";
    lab::plot_terminal({s[0], s[1]}, po);

    lab::Table summary("Summary", {"figure", "value"});
    summary.row({"worst |engine - hand| over the 7 nodes", lab::Cell(worst, 2)});
    summary.row({"worst |engine - hand| over the curve (" + std::to_string(n) + " x values)", lab::Cell(worst_curve, 2)});
    summary.row({"dL/dx = path via L + path via u", lab::Cell(dx, 8)});
    summary.row({"nudge: actual change / predicted change", lab::Cell(actual / predicted, 6)});
    std::cout << "\n";
    summary.print();
    summary.save_markdown(args.path("report.md"), true);

    // ---- 6. The claims -------------------------------------------------------------------
    std::size_t edges = 0, boxes = 0;
    for (std::size_t p = dot.find("->"); p != std::string::npos; p = dot.find("->", p + 2)) ++edges;
    for (std::size_t p = dot.find("shape=box"); p != std::string::npos; p = dot.find("shape=box", p + 9)) ++boxes;
    checks.expect(worst < 1e-14, "the engine's gradients equal the hand-derived ones at every node (< 1e-14)");
    checks.expect(std::abs(x.grad().item() - (dx_direct + dx_via_u)) < 1e-14,
                  "dL/dx is the sum of its two paths (x -> L and x -> u)");
    checks.expect(worst_curve < 1e-12, "over the whole curve the engine's dL/dx equals the formula (< 1e-12)");
    checks.expect(std::abs(actual / predicted - 1) < 1e-3, "nudging x by 1e-4 changes L by dL/dx * 1e-4 (within 0.1%)");
    checks.expect(edges == 7 && boxes == 4, "graph.dot holds 4 ops and 7 edges (x feeds two of them)");
    checks.expect(gv_all[peak - 1] > 0 && gv_all[peak + 1] < 0, "dL/dx changes sign where L(x) peaks (x = " + dec(xv_all[peak]) + ")");

    chapter.text("reading",
                 "**Reading it.** Hand and engine agree to within " + lab::format_number(worst, 2) +
                     " at every node: rounding in the last digit or two of a float64 (its unit roundoff is 1.1e-16). The tiny "
                     "differences come only from the order of the floating-point operations. Over the whole curve (" +
                     std::to_string(n) + " values of `x`) the worst difference is " + lab::format_number(worst_curve, 2) +
                     ". The nudge predicts the change in `L` with a ratio actual / predicted of " +
                     lab::format_number(actual / predicted, 6) +
                     ". What is left over is the curvature of `L`, which a first derivative ignores: an error of order `δ²`. "
                     "On the curve, `dL/dx` crosses zero where `L(x)` peaks (near `x = " + dec(xv_all[peak]) +
                     "`), and it is most negative where `L` falls fastest (near `x = " + dec(xv_all[steepest]) + "`).");

    // ---- 7. The exercises' answers, measured with the engine (the chapter quotes them) -------
    exercise_answers(chapter, xv, wv, bv, L.item());

    std::ostringstream report;
    const int status = checks.report(report);
    std::cout << report.str();
    chapter.text("checks", "```" + report.str() + "```");
    return status;
  });
}
