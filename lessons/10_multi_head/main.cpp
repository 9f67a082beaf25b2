// Lesson 10: multi-head self-attention, and why it needs positions.
//
// Shape legend: B batch, T tokens, D model width, H heads, d = D / H per head, V vocabulary.
//
// 1) Heads: MultiHeadAttention splits D into H heads of width d, attends in each, concatenates.
// 2) Without positions, self-attention is permutation-equivariant: shuffle the input tokens and
//    the outputs shuffle the same way, nothing else changes (measured in float64).
// 3) So a task that needs order cannot be learned without positions: reversal with a small
//    encoder-only Transformer, trained with no positions, sinusoidal and learned positions.
// 4) Per-head attention maps of the trained model: the anti-diagonal of reversal.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

// ---- the model of part 3 --------------------------------------------------------------------
enum class Positions { none, sinusoidal, learned };
const char* positions_name(Positions p) {
  return p == Positions::none ? "none" : p == Positions::sinusoidal ? "sinusoidal" : "learned";
}

// ids [B, T] -> embedding [B, T, D] (+ positions) -> 2 pre-LN encoder layers -> Linear -> [B, T, V]:
// one prediction per position, no decoder. Position t must output the token at T-1-t.
class Reverser : public nn::Module {
 public:
  // Every variant draws its embedding, encoder and readout from a generator seeded `seed`, so the
  // three start from the same weights; only the positions differ.
  // learned_std: the learned table's initial spread. The library draws it ~ N(0, 0.02^2) (GPT-2's
  // choice, where the token embeddings are as small); our token embeddings are ~ N(0, 1), so the
  // default here rescales the table to N(0, 1) too: neither starts louder than the other.
  Reverser(std::size_t vocab, std::size_t T, Positions p, const nn::TransformerOptions& o, std::uint64_t seed,
           double learned_std = 1.0)
      : p_(p) {
    ag::Generator gen(seed), pos_gen(seed + 1);
    embed = register_module("embed", std::make_shared<nn::Embedding>(vocab, o.d_model, gen));  // ~ N(0, 1)
    if (p == Positions::sinusoidal)
      sinusoidal = register_module("positions", std::make_shared<nn::SinusoidalPositionalEncoding>(o.d_model, T));
    if (p == Positions::learned)
      learned = register_module("positions", std::make_shared<nn::LearnedPositionalEncoding>(o.d_model, T, pos_gen));
    if (learned)
      for (float& w : learned->weight.data<float>()) w *= float(learned_std / 0.02);
    encoder = register_module("encoder", std::make_shared<nn::TransformerEncoder>(o, 2, gen));
    readout = register_module("readout", std::make_shared<nn::Linear>(o.d_model, vocab, gen));
  }
  ag::Tensor forward(const ag::Indices& ids) {
    ag::Tensor x = (*embed)(ids);             // [B, T, D]
    if (sinusoidal) x = (*sinusoidal)(x);     // + PE[t]
    if (learned) x = (*learned)(x);           // + P[t]
    return (*readout)(encoder->forward(x));  // [B, T, V]
  }
  std::string describe() const override { return std::string("Reverser(positions=") + positions_name(p_) + ")"; }

  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::SinusoidalPositionalEncoding> sinusoidal;
  std::shared_ptr<nn::LearnedPositionalEncoding> learned;
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Linear> readout;

 private:
  Positions p_;
};

// The reversal targets of a fixed-length batch, flattened: target[b*T + t] = src[b, T-1-t].
ag::Indices reversed(const ag::Indices& src) {
  const std::size_t B = src.shape[0], T = src.shape[1];
  std::vector<std::int64_t> v(B * T);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < T; ++t) v[b * T + t] = src.values[b * T + (T - 1 - t)];
  return ag::Indices(v, {B * T});  // flat, as cross_entropy wants for logits [B*T, V]
}

struct Accuracy {
  double token = 0, sequence = 0;  // share of positions right; share of whole sequences right
};
Accuracy evaluate(Reverser& model, const ag::Indices& src) {
  ag::NoGrad no_grad;
  const ag::Indices target = reversed(src);  // [B*T]
  const std::vector<double> logits = model.forward(src).to_vector();  // [B, T, V]
  const std::size_t B = src.shape[0], T = src.shape[1], V = logits.size() / (B * T);
  std::size_t tokens = 0, sequences = 0;
  for (std::size_t b = 0; b < B; ++b) {
    std::size_t right = 0;
    for (std::size_t t = 0; t < T; ++t) {
      const double* row = logits.data() + (b * T + t) * V;
      const auto best = std::int64_t(std::max_element(row, row + V) - row);
      right += best == target.values[b * T + t];
    }
    tokens += right;
    sequences += right == T;
  }
  return {double(tokens) / double(B * T), double(sequences) / double(B)};
}

// The best an order-blind model can do. At position t it sees its own token x_t and the bag of
// all tokens, but not t. The target x_{T-1-t} is then equally likely to be any of the other T-1
// tokens, so the best guess is the most frequent symbol among them, right with probability
// (its count) / (T-1). For odd T, one position in T is the middle, whose target is x_t itself;
// that makes the guess "the most frequent symbol of the whole bag", right (count) / T of the time.
// Averaged over every position of every sequence in src [B, T].
double order_blind_ceiling(const ag::Indices& src) {
  const std::size_t B = src.shape[0], T = src.shape[1];
  const bool odd = T % 2 == 1;
  double total = 0;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < T; ++t) {
      std::vector<int> count(256, 0);
      for (std::size_t u = 0; u < T; ++u)
        if (odd || u != t) ++count[std::size_t(src.values[b * T + u])];
      total += double(*std::max_element(count.begin(), count.end())) / double(odd ? T : T - 1);
    }
  return total / double(B * T);
}

// ---- part 2: permutation equivariance ----------------------------------------------------------
// The permutation matrix P [T, T] with (P x)[t] = x[perm[t]]. Its entries are 0 and 1, so in float64
// P x copies x exactly.
ag::Tensor permutation_matrix(const std::vector<std::size_t>& perm) {
  const std::size_t T = perm.size();
  std::vector<double> p(T * T, 0.0);
  for (std::size_t t = 0; t < T; ++t) p[t * T + perm[t]] = 1.0;
  return ag::tensor(p, {T, T}, {.dtype = ag::f64});
}

// max |f(P x) - P f(x)| over every element.
template <class F>
double equivariance_error(F&& f, const ag::Tensor& x, const ag::Tensor& P) {
  ag::NoGrad no_grad;
  const std::vector<double> a = f(ag::matmul(P, x)).to_vector(), b = ag::matmul(P, f(x)).to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// ---- heatmaps of several heads side by side ------------------------------------------------------
// w: [H, R, C] -> one picture, heads left to right with a blank column between them.
void head_panels(const std::filesystem::path& png, const ag::Tensor& w, const std::vector<std::string>& xtokens,
                 const std::vector<std::string>& ytokens, const std::string& title) {
  const std::size_t H = w.size(0), R = w.size(1), C = w.size(2);
  const std::vector<double> v = w.to_vector();
  std::vector<std::vector<double>> m(R, std::vector<double>(H * (C + 1) - 1, 0.0));
  std::vector<std::string> xticks;
  for (std::size_t h = 0; h < H; ++h) {
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t c = 0; c < C; ++c) m[r][h * (C + 1) + c] = v[(h * R + r) * C + c];
    xticks.insert(xticks.end(), xtokens.begin(), xtokens.end());
    if (h + 1 < H) xticks.push_back(" ");
  }
  std::filesystem::path csv = png;
  lab::write_matrix_csv(csv.replace_extension(".csv"), m);
  lab::heatmap(png, csv,
               {.title = title, .xlabel = "key (input position), heads 1 to " + std::to_string(H) + " left to right",
                .ylabel = "query (output position)", .xticks = xticks, .yticks = ytokens, .zmin = 0, .zmax = 1,
                .width = 1000, .height = 340});
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("10_multi_head", "Multi-head self-attention: permutation equivariance, and positions on a task that needs order");
  double learned_std = 1.0;
  int length = 10;
  cli.app().add_option("--length", length, "tokens to reverse (T)")->check(CLI::Range(2, 200))->capture_default_str();
  cli.app()
      .add_option("--learned-std", learned_std, "initial std of the learned position table (the library's is 0.02)")
      ->check(CLI::Range(1e-6, 100.0))
      ->capture_default_str();
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const std::size_t D = 64, H = 4, T = std::size_t(length);

    // ---- 1) Heads ------------------------------------------------------------------------------
    std::cout << "1) Heads: D = " << D << " split into H = " << H << " heads of d = " << D / H << "\n";
    ag::Generator gen(lab::derive_seed(args.seed, 1));
    nn::MultiHeadAttention mha(D, H, gen);
    mha.to(ag::f64);
    mha.eval();
    const ag::Tensor x = ag::randn({2, T, D}, gen, {.dtype = ag::f64});
    const nn::AttentionOutput a = mha(x, x, x);
    std::cout << "  x " << ag::shape_str(x.shape()) << " -> output " << ag::shape_str(a.output.shape()) << ", weights per head "
              << ag::shape_str(a.weights.shape()) << "  (" << mha.num_parameters() << " parameters: W_q, W_k, W_v, W_o and biases)\n";

    // ---- 2) Permutation equivariance --------------------------------------------------------------
    std::vector<std::size_t> perm(T);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), gen.engine());
    const ag::Tensor P = permutation_matrix(perm);
    std::cout << "\n2) Shuffle the " << T << " tokens with the permutation [";
    for (std::size_t t = 0; t < T; ++t) std::cout << (t ? " " : "") << perm[t];
    std::cout << "] and compare f(P x) with P f(x), float64\n";

    nn::TransformerOptions layer_opts{.d_model = D, .num_heads = H, .dim_feedforward = 128, .dropout = 0.0, .norm_first = true};
    nn::TransformerEncoderLayer layer(layer_opts, gen);
    layer.to(ag::f64);
    layer.eval();
    nn::SinusoidalPositionalEncoding pe(D, T);
    const double e_mha = equivariance_error([&](const ag::Tensor& in) { return mha(in, in, in).output; }, x, P);
    const double e_layer = equivariance_error([&](const ag::Tensor& in) { return layer.forward(in); }, x, P);
    const double e_pos = equivariance_error([&](const ag::Tensor& in) { return layer.forward(pe(in)); }, x, P);
    lab::Table eq("Permutation equivariance: max |f(P x) - P f(x)| over a " + ag::shape_str(x.shape()) + " input",
                  {"f", "max difference", "equivariant?"});
    eq.row({"MultiHeadAttention (self)", e_mha, e_mha < 1e-6 ? "yes" : "no"});
    eq.row({"TransformerEncoderLayer", e_layer, e_layer < 1e-6 ? "yes" : "no"});
    eq.row({"sinusoidal positions + layer", e_pos, e_pos < 1e-6 ? "yes" : "no"});
    eq.print();
    eq.save_markdown(args.path("report.md"));
    checks.expect(e_mha < 1e-6, "self-attention without positions is permutation-equivariant: max difference " +
                                    lab::format_number(e_mha) + " < 1e-6 (float64)");
    checks.expect(e_layer < 1e-6, "so is a whole encoder layer (attention, FFN, LayerNorm, residuals): " +
                                      lab::format_number(e_layer) + " < 1e-6");
    checks.expect(e_pos > 1e-2, "adding positions breaks it: max difference " + lab::format_number(e_pos) + " > 0.01");

    // ---- 3) Reversal needs order ------------------------------------------------------------------
    const std::int64_t steps = args.steps_or(400, 150);
    const std::int64_t eval_every = args.quick ? 25 : 10;
    const lab::ReversalOptions task_opts{.min_len = int(T), .max_len = int(T), .symbols = 10, .batch_size = 64,
                                         .seed = args.seed, .eval_size = args.quick ? 500 : 1000};
    std::cout << "\n3) Reversal of " << T << " tokens (10 symbols), encoder-only: position t must output token T-1-t.\n"
              << "   d_model " << D << ", " << H << " heads, 2 pre-LN layers, batch 64, Adam lr 1e-3, " << steps << " steps\n";
    const std::vector<Positions> variants = {Positions::none, Positions::sinusoidal, Positions::learned};
    lab::CurveLog loss_log(args.path("loss.csv"), {"none", "sinusoidal", "learned"});
    lab::CurveLog acc_log(args.path("accuracy.csv"), {"none", "sinusoidal", "learned"});
    std::vector<std::vector<double>> losses(variants.size()), accs(variants.size());
    std::vector<std::unique_ptr<Reverser>> models;
    std::vector<Accuracy> final_acc;
    for (std::size_t i = 0; i < variants.size(); ++i) {
      lab::ReversalTask task(task_opts);
      models.push_back(std::make_unique<Reverser>(task.vocab_size(), T, variants[i], layer_opts, lab::derive_seed(args.seed, 2),
                                                learned_std));
      Reverser& model = *models.back();
      nn::Adam opt(model.parameters(), {.lr = 1e-3});
      lab::Progress bar(steps, std::string("positions: ") + positions_name(variants[i]));
      for (std::int64_t s = 1; s <= steps; ++s) {
        const lab::Seq2SeqBatch b = task.next_batch();
        const ag::Tensor logits = model.forward(b.src);  // [B, T, V]
        const ag::Tensor loss = ag::cross_entropy(ag::reshape(logits, {-1, std::int64_t(task.vocab_size())}), reversed(b.src));
        opt.zero_grad();
        loss.backward();
        nn::clip_grad_norm(model.parameters(), 1.0);
        opt.step();
        losses[i].push_back(loss.item());
        if (s % eval_every == 0 || s == 1) {
          accs[i].push_back(evaluate(model, task.eval_set().src).token);
          bar.update(s, {{"loss", loss.item()}, {"token acc", accs[i].back()}});
        } else {
          bar.update(s, {{"loss", loss.item()}});
        }
      }
      bar.finish();
      final_acc.push_back(evaluate(model, task.eval_set().src));
    }
    for (std::int64_t s = 1; s <= steps; ++s)
      loss_log.log(double(s), {losses[0][s - 1], losses[1][s - 1], losses[2][s - 1]});
    for (std::size_t k = 0; k < accs[0].size(); ++k)
      acc_log.log(k == 0 ? 1.0 : double(k * eval_every), {accs[0][k], accs[1][k], accs[2][k]});

    lab::Table results("Reversal of " + std::to_string(T) + " tokens after " + std::to_string(steps) + " steps (held-out set)",
                       {"positions", "token accuracy", "exact match", "final loss"});
    for (std::size_t i = 0; i < variants.size(); ++i)
      results.row({positions_name(variants[i]), final_acc[i].token, final_acc[i].sequence, losses[i].back()});
    const double ceiling = order_blind_ceiling(lab::ReversalTask(task_opts).eval_set().src);
    results.print();
    results.save_markdown(args.path("report.md"), true);
    std::cout << "  Chance token accuracy: 0.1. The best order-blind guess (the most frequent symbol among the other tokens) scores "
              << lab::format_number(ceiling) << " on this held-out set.\n";

    const std::string what = "Reversal of " + std::to_string(T) + " tokens";
    lab::PlotOptions po{.title = what + ": held-out token accuracy", .xlabel = "step", .ylabel = "token accuracy",
                        .ymin = 0, .ymax = 1.3,
                        .hlines = {{0.1, "chance"}, {ceiling, "best order-blind guess"}}};
    const std::vector<lab::Series> acc_series = {{acc_log.path(), "none", "no positions", "step", "linespoints"},
                                                 {acc_log.path(), "sinusoidal", "sinusoidal", "step", "linespoints"},
                                                 {acc_log.path(), "learned", "learned", "step", "linespoints"}};
    lab::plot(args.path("accuracy.png"), acc_series, po);
    lab::plot(args.path("loss.png"),
              {{loss_log.path(), "none", "no positions"}, {loss_log.path(), "sinusoidal"}, {loss_log.path(), "learned"}},
              {.title = what + ": training loss", .ylabel = "cross-entropy (log scale)", .logy = true});

    checks.expect(final_acc[0].token < ceiling + 0.03, "no positions: token accuracy " + lab::format_number(final_acc[0].token) +
                                                       " does not beat the best order-blind guess " + lab::format_number(ceiling) +
                                                       " (+ 0.03)");
    const double need = args.quick ? 0.9 : 0.95;
    for (std::size_t i = 1; i < variants.size(); ++i)
      checks.expect(final_acc[i].token > need, std::string(positions_name(variants[i])) + " positions: token accuracy " +
                                                   lab::format_number(final_acc[i].token) + " > " + lab::format_number(need));

    // ---- 4) What the heads look at --------------------------------------------------------------------
    // One held-out sequence through the two trained models with positions; every layer's weights per head.
    lab::ReversalTask show_task(task_opts);
    const lab::Seq2SeqBatch& ev = show_task.eval_set();
    const ag::Indices one(std::vector<std::int64_t>(ev.src.values.begin(), ev.src.values.begin() + std::ptrdiff_t(T)), {1, T});
    std::vector<std::string> tokens;
    for (std::int64_t id : one.values) tokens.push_back(std::string(1, show_task.vocab().ch(id)));
    std::vector<std::string> rows;
    for (std::size_t t = 0; t < T; ++t) rows.push_back(std::to_string(t) + ": " + tokens[T - 1 - t]);
    for (std::size_t i = 1; i < variants.size(); ++i) {
      Reverser& model = *models[i];
      ag::NoGrad no_grad;
      model.forward(one);
      for (std::size_t l = 0; l < model.encoder->layers.size(); ++l) {
        const std::string name = std::string("heads_") + positions_name(variants[i]) + "_layer" + std::to_string(l + 1) + ".png";
        head_panels(args.path(name), ag::select(model.encoder->layers[l]->last_attention(), 0, 0), tokens, rows,
                    std::string("Self-attention per head, layer ") + std::to_string(l + 1) + ", " + positions_name(variants[i]) +
                        " positions (row t outputs the token at " + std::to_string(T - 1) + "-t)");
      }
    }
    // The sinusoidal table itself, for the first 50 positions.
    nn::SinusoidalPositionalEncoding table(D, 50);
    lab::heatmap(args.path("sinusoidal_table.png"), table.table(),
                 {.title = "Sinusoidal positions: PE[t, i]", .xlabel = "dimension i", .ylabel = "position t", .palette = "viridis",
                  .zmin = -1, .zmax = 1, .width = 640, .height = 560});

    std::cout << "\n";
    lab::plot_terminal(acc_series, po);
    std::cout << "Wrote " << args.out.string() << "/: loss.csv, accuracy.csv, accuracy.png, loss.png, heads_*.png, "
              << "sinusoidal_table.png (and .svg, .gp), report.md\n";
    return checks.report();
  });
}
