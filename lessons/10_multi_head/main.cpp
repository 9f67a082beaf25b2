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
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>
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

// ---- part 3: one variant trained on one seed ----------------------------------------------------
struct Trained {
  std::unique_ptr<Reverser> model;
  std::vector<double> losses;                 // every step
  std::vector<double> curve_steps, curve_acc;  // held-out token accuracy every eval_every steps (a subset)
  Accuracy final{};                           // on the whole held-out set
  std::int64_t first_99 = -1;                 // the first evaluated step with token accuracy >= 0.99
};

// The first `count` sequences of a batch of sources [B, T].
ag::Indices first_rows(const ag::Indices& src, std::size_t count) {
  const std::size_t T = src.shape[1];
  count = std::min(count, src.shape[0]);
  return ag::Indices(std::vector<std::int64_t>(src.values.begin(), src.values.begin() + std::ptrdiff_t(count * T)), {count, T});
}

// Adam (lr 1e-3), gradients clipped to norm 1, batches of 64. Every variant of one seed starts from
// the same weights (only the positions differ) and sees the same batches.
Trained train_variant(Positions p, const nn::TransformerOptions& o, const lab::ReversalOptions& task_opts, std::int64_t steps,
                      std::int64_t eval_every, std::size_t curve_size, double learned_std, const std::string& label) {
  lab::ReversalTask task(task_opts);
  const std::size_t T = std::size_t(task_opts.max_len);
  Trained r;
  r.model = std::make_unique<Reverser>(task.vocab_size(), T, p, o, lab::derive_seed(task_opts.seed, 2), learned_std);
  Reverser& model = *r.model;
  const ag::Indices curve_src = first_rows(task.eval_set().src, curve_size);
  nn::Adam opt(model.parameters(), {.lr = 1e-3});
  lab::Progress bar(steps, label);
  for (std::int64_t s = 1; s <= steps; ++s) {
    const lab::Seq2SeqBatch b = task.next_batch();
    const ag::Tensor logits = model.forward(b.src);  // [B, T, V]
    const ag::Tensor loss = ag::cross_entropy(ag::reshape(logits, {-1, std::int64_t(task.vocab_size())}), reversed(b.src));
    opt.zero_grad();
    loss.backward();
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    r.losses.push_back(loss.item());
    if (s % eval_every == 0 || s == 1) {
      const double acc = evaluate(model, curve_src).token;
      r.curve_steps.push_back(double(s)), r.curve_acc.push_back(acc);
      if (r.first_99 < 0 && acc >= 0.99) r.first_99 = s;
      bar.update(s, {{"loss", loss.item()}, {"token acc", acc}});
    } else {
      bar.update(s, {{"loss", loss.item()}});
    }
  }
  bar.finish();
  r.final = evaluate(model, task.eval_set().src);
  return r;
}

// ---- part 4: how much of each head's attention lies on the anti-diagonal ----------------------------
// Row t of a head's weights [T, T] should look at key T-1-t to reverse. For every layer and head:
// the weight on (t, T-1-t), averaged over the rows and the sequences of src [B, T].
std::vector<std::vector<double>> antidiagonal_mass(Reverser& model, const ag::Indices& src) {
  ag::NoGrad no_grad;
  model.forward(src);
  std::vector<std::vector<double>> out;
  for (const auto& layer : model.encoder->layers) {
    const ag::Tensor w = layer->last_attention();  // [B, H, T, T]
    const std::size_t B = w.size(0), Hh = w.size(1), T = w.size(2);
    const std::vector<double> v = w.to_vector();
    std::vector<double> per_head(Hh, 0.0);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t h = 0; h < Hh; ++h)
        for (std::size_t t = 0; t < T; ++t) per_head[h] += v[((b * Hh + h) * T + t) * T + (T - 1 - t)];
    for (double& m : per_head) m /= double(B * T);
    out.push_back(per_head);
  }
  return out;
}

// ---- The exercises' answers (the chapter quotes them) ---------------------------------------------
// The expected order-blind ceiling for T tokens drawn from `symbols` symbols, by simulation
// (a fixed generator: the same number every run).
double expected_ceiling(int T, int symbols, int samples = 100000) {
  ag::Generator g(12345);
  std::vector<std::int64_t> v;
  for (int i = 0; i < samples * T; ++i) v.push_back(std::int64_t(g.uniform(0.0, double(symbols))));
  return order_blind_ceiling(ag::Indices(v, {std::size_t(samples), std::size_t(T)}));
}

template <class TaskOptions>
void exercise_answers(const lab::Chapter& chapter, lab::Checks& checks, const lab::LessonArgs& args, const nn::TransformerOptions& o,
                      std::int64_t steps, int seeds, const lab::SeedStats& learned_token, TaskOptions task_options) {
  {  // 1. the library's learned-position init, N(0, 0.02^2), for the same seeds and steps
    if (!args.quick) {
      lab::SeedStats acc;
      std::size_t plateau = 0;
      for (int k = 0; k < seeds; ++k) {
        const std::uint64_t seed = args.seed + std::uint64_t(k);
        const lab::ReversalOptions opts = task_options(seed, 10);
        const double ceiling = order_blind_ceiling(lab::ReversalTask(opts).eval_set().src);
        const Trained r = train_variant(Positions::learned, o, opts, steps, steps, 10, 0.02, "learned, std 0.02, seed " + std::to_string(seed));
        acc.add(r.final.token);
        plateau += r.final.token < ceiling + 0.05 ? 1 : 0;
      }
      chapter.text("answer1", "*Answer:* after " + std::to_string(steps) + " steps the learned model is still on the order-blind "
                              "plateau in " + std::to_string(plateau) + " of " + std::to_string(seeds) + " seeds: token accuracy " +
                                  lab::format_number(acc.median(), 3) + " (" + acc.range() + "), against " +
                                  lab::format_number(learned_token.median(), 4) + " (" + learned_token.range(4) +
                                  ") with the table drawn as large as the token embeddings.");
      checks.expect(acc.median() < learned_token.min(), "exercise 1: a learned table drawn from N(0, 0.02^2) learns less in " +
                                                            std::to_string(steps) + " steps than one drawn from N(0, 1)");
    }
  }
  {  // 2 and 3: the order-blind ceilings for other lengths
    const double c3 = expected_ceiling(3, 10), c10 = expected_ceiling(10, 10), c20 = expected_ceiling(20, 10);
    const double h3 = order_blind_ceiling(lab::ReversalTask(task_options(args.seed, 3)).eval_set().src);
    const double h20 = order_blind_ceiling(lab::ReversalTask(task_options(args.seed, 20)).eval_set().src);
    chapter.text("ceiling", "For T = 10 tokens drawn from 10 symbols, that guess is right `E[max count among 9]/9 ≈ " +
                                lab::format_number(c10, 3) + "` of the time (measured on 100,000 random sequences).");
    chapter.text("answer2", "*Answer:* the order-blind ceiling falls to " + lab::format_number(c20, 3) + " (" +
                                lab::format_number(h20, 4) + " on the held-out set; " + lab::format_number(c10, 3) +
                                " for T = 10), because among 19 tokens the most common symbol is a smaller share than among 9.");
    chapter.text("answer3", "*Answer:* the middle position's target is its own token, and the model cannot tell whether it is "
                            "the middle. For T = 3 the best guess is therefore the most frequent symbol of the *whole* bag (see "
                            "`order_blind_ceiling`), right `(its count)/3` of the time. Three tokens from 10 symbols are all "
                            "different with probability 0.72 (score 1/3), contain exactly one pair with probability 0.27 (2/3) "
                            "and are all equal with probability 0.01 (1), so the ceiling is 0.72/3 + 0.27·2/3 + 0.01 = 0.43. "
                            "Simulated: " + lab::format_number(c3, 3) + "; on the lesson's held-out set of 1,000 sequences: " +
                                lab::format_number(h3, 4) + ".");
    checks.expect(std::abs(c3 - 0.43) < 0.005, "exercise 3: the T = 3 ceiling is 0.43 (simulated " + lab::format_number(c3, 3) + ")");
  }
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("10_multi_head", "Multi-head self-attention: permutation equivariance, and positions on a task that needs order");
  double learned_std = 1.0;
  int length = 10, seeds = 5;
  cli.app().add_option("--length", length, "tokens to reverse (T)")->check(CLI::Range(2, 200))->capture_default_str();
  cli.app()
      .add_option("--learned-std", learned_std, "initial std of the learned position table (the library's is 0.02)")
      ->check(CLI::Range(1e-6, 100.0))
      ->capture_default_str();
  cli.app().add_option("--seeds", seeds, "seeds to train (--seed, --seed + 1, ...); the pictures show the first")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  cli.steps_help("training steps of each model (default 400; --quick 150)");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    lab::Checks checks;
    const lab::Chapter chapter(args);
    const std::size_t D = 64, H = 4, T = std::size_t(length);
    auto f2 = [](double v) { return lab::format_number(v, 2); };
    auto f4 = [](double v) { return lab::format_number(v, 4); };

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
    chapter.table("equivariance", eq);
    checks.expect(e_mha < 1e-6, "self-attention without positions is permutation-equivariant: max difference " +
                                    lab::format_number(e_mha) + " < 1e-6 (float64)");
    checks.expect(e_layer < 1e-6, "so is a whole encoder layer (attention, FFN, LayerNorm, residuals): " +
                                      lab::format_number(e_layer) + " < 1e-6");
    checks.expect(e_pos > 1e-2, "adding positions breaks it: max difference " + lab::format_number(e_pos) + " > 0.01");
    const double ulp = std::numeric_limits<double>::epsilon();
    chapter.text("equivariance_reading",
                 "**Reading it.** Shuffling the " + std::to_string(T) + " tokens changes the multi-head layer's and the whole "
                 "encoder layer's outputs by nothing but rounding: " + lab::format_number(e_mha, 2) + " and " +
                     lab::format_number(e_layer, 2) + ", " + lab::format_number(e_mha / ulp, 2) + " and " +
                     lab::format_number(e_layer / ulp, 2) + " units of float64's machine epsilon. Add sinusoidal positions first "
                     "and the same shuffle changes the outputs by " + lab::format_number(e_pos, 2) + ".");

    // ---- 3) Reversal needs order: three variants, `seeds` seeds ---------------------------------------
    const std::int64_t steps = args.steps_or(400, 150);
    const std::int64_t eval_every = args.quick ? 25 : 10;
    const std::size_t curve_size = 200;  // held-out sequences behind the accuracy curves
    auto task_options = [&](std::uint64_t seed, int len) {
      return lab::ReversalOptions{.min_len = len, .max_len = len, .symbols = 10, .batch_size = 64, .seed = seed,
                                  .eval_size = args.quick ? 500 : 1000};
    };
    std::cout << "\n3) Reversal of " << T << " tokens (10 symbols), encoder-only: position t must output token T-1-t.\n"
              << "   d_model " << D << ", " << H << " heads, 2 pre-LN layers, batch 64, Adam lr 1e-3, " << steps << " steps, "
              << seeds << " seeds\n";
    const std::vector<Positions> variants = {Positions::none, Positions::sinusoidal, Positions::learned};
    const std::size_t NV = variants.size();
    std::vector<std::unique_ptr<Reverser>> first_models;  // the first seed's, for the pictures
    std::vector<lab::SeedStats> token(NV), exact(NV), final_loss(NV), first_99(NV);
    lab::SeedStats ceilings, none_gap;  // the order-blind ceiling of each seed's held-out set; none's accuracy minus it
    // anti-diagonal mass per variant and layer: the mean over the heads, and the largest head, one value per seed
    std::vector<std::vector<lab::SeedStats>> diag_mean(NV), diag_max(NV);
    std::vector<std::vector<std::vector<double>>> first_diag(NV);  // the first seed's, per layer and head
    std::size_t learned_first = 0, none_below = 0;  // seeds: learned at 0.99 before sinusoidal; none under ceiling + 0.03
    const double need = args.quick ? 0.9 : 0.95;
    std::size_t positional_good = 0;  // seeds where both positional variants score > need
    for (int k = 0; k < seeds; ++k) {
      const std::uint64_t seed = args.seed + std::uint64_t(k);
      const lab::ReversalOptions task_opts = task_options(seed, length);
      const lab::ReversalTask probe(task_opts);
      const double ceiling = order_blind_ceiling(probe.eval_set().src);
      ceilings.add(ceiling);
      std::vector<Trained> runs;
      for (Positions p : variants)
        runs.push_back(train_variant(p, layer_opts, task_opts, steps, eval_every, curve_size, learned_std,
                                     std::string(positions_name(p)) + ", seed " + std::to_string(seed)));
      bool good = true;
      for (std::size_t i = 0; i < NV; ++i) {
        token[i].add(runs[i].final.token), exact[i].add(runs[i].final.sequence), final_loss[i].add(runs[i].losses.back());
        first_99[i].add(runs[i].first_99 >= 0 ? double(runs[i].first_99) : double(steps + 1));
        if (i > 0) good = good && runs[i].final.token > need;
        const auto diag = antidiagonal_mass(*runs[i].model, first_rows(probe.eval_set().src, curve_size));
        if (diag_mean[i].empty()) diag_mean[i].resize(diag.size()), diag_max[i].resize(diag.size());
        for (std::size_t l = 0; l < diag.size(); ++l) {
          diag_mean[i][l].add(std::accumulate(diag[l].begin(), diag[l].end(), 0.0) / double(diag[l].size()));
          diag_max[i][l].add(*std::max_element(diag[l].begin(), diag[l].end()));
        }
        if (k == 0) first_diag[i] = diag;
      }
      positional_good += good ? 1 : 0;
      none_gap.add(runs[0].final.token - ceiling);
      none_below += runs[0].final.token < ceiling + 0.03 ? 1 : 0;
      learned_first += runs[2].first_99 >= 0 && (runs[1].first_99 < 0 || runs[2].first_99 < runs[1].first_99) ? 1 : 0;

      if (k == 0) {  // the first seed: curves, tables and pictures
        lab::CurveLog loss_log(args.path("loss.csv"), {"none", "sinusoidal", "learned"});
        lab::CurveLog acc_log(args.path("accuracy.csv"), {"none", "sinusoidal", "learned"});
        for (std::int64_t s = 1; s <= steps; ++s)
          loss_log.log(double(s), {runs[0].losses[s - 1], runs[1].losses[s - 1], runs[2].losses[s - 1]});
        for (std::size_t e = 0; e < runs[0].curve_steps.size(); ++e)
          acc_log.log(runs[0].curve_steps[e], {runs[0].curve_acc[e], runs[1].curve_acc[e], runs[2].curve_acc[e]});
        lab::Table results("Reversal of " + std::to_string(T) + " tokens after " + std::to_string(steps) + " steps, seed " +
                               std::to_string(seed) + " (held-out set)",
                           {"positions", "token accuracy", "exact match", "final loss", "first at 0.99"});
        for (std::size_t i = 0; i < NV; ++i)
          results.row({positions_name(variants[i]), runs[i].final.token, runs[i].final.sequence, lab::Cell(runs[i].losses.back(), 3),
                       runs[i].first_99 >= 0 ? lab::Cell(runs[i].first_99) : lab::Cell("never")});
        results.print();
        results.save_markdown(args.path("report.md"), true);
        chapter.table("results_first", results);
        std::cout << "  Chance token accuracy: 0.1. The best order-blind guess (the most frequent symbol among the other tokens) scores "
                  << lab::format_number(ceiling) << " on this held-out set.\n";

        const std::string what = "Reversal of " + std::to_string(T) + " tokens";
        lab::PlotOptions po{.title = what + ": held-out token accuracy, seed " + std::to_string(seed), .xlabel = "step",
                            .ylabel = "token accuracy", .ymin = 0, .ymax = 1.05,
                            .hlines = {{0.1, "chance"}, {ceiling, "best order-blind guess"}}, .key = "bottom right"};
        // The learned curve is drawn dashed on top of a wider sinusoidal one: where they coincide, both stay visible.
        const std::vector<lab::Series> acc_series = {
            {acc_log.path(), "none", "no positions", "step", "linespoints", 2},
            {acc_log.path(), "sinusoidal", "sinusoidal", "step", "linespoints", 4},
            {acc_log.path(), "learned", "learned (dashed)", "step", "linespoints", 2, 2}};
        if (lab::plot(args.path("accuracy.png"), acc_series, po)) chapter.figure("accuracy.png");
        lab::plot(args.path("loss.png"),
                  {{loss_log.path(), "none", "no positions"}, {loss_log.path(), "sinusoidal"}, {loss_log.path(), "learned"}},
                  {.title = what + ": training loss, seed " + std::to_string(seed), .ylabel = "cross-entropy (log scale)", .logy = true});
        std::cout << "\n";
        lab::PlotOptions pt = po;
        pt.hlines = {};  // the no-position curve lies on the ceiling line: the terminal would draw one over the other
        lab::plot_terminal({{acc_log.path(), "none", "none", "step", "lines"},
                            {acc_log.path(), "sinusoidal", "sinusoidal", "step", "lines"},
                            {acc_log.path(), "learned", "learned", "step", "lines"}},
                           pt, std::cout, 80, 24);
        for (auto& r : runs) first_models.push_back(std::move(r.model));
      }
    }

    lab::Table rs("Reversal of " + std::to_string(T) + " tokens after " + std::to_string(steps) + " steps, " + std::to_string(seeds) +
                      " seeds (--seed " + std::to_string(args.seed) + " to " + std::to_string(args.seed + std::uint64_t(seeds) - 1) +
                      "): median (range)",
                  {"positions", "token accuracy", "exact match", "first at 0.99"});
    for (std::size_t i = 0; i < NV; ++i) {
      const std::size_t reached = first_99[i].count([&](double v) { return v <= double(steps); });
      std::string when = "never";
      if (reached == first_99[i].size())
        when = "step " + lab::format_number(first_99[i].median(), 2) + " (" + first_99[i].range(2) + ")";
      else if (reached > 0)
        when = "in " + std::to_string(reached) + " of " + std::to_string(seeds) + " seeds";
      rs.row({positions_name(variants[i]), f4(token[i].median()) + " (" + token[i].range(4) + ")",
              f4(exact[i].median()) + " (" + exact[i].range(4) + ")", when});
    }
    std::cout << "\n";
    rs.print();
    rs.save_markdown(args.path("report.md"), true);
    chapter.table("results_seeds", rs);

    const std::size_t n = std::size_t(seeds);
    auto of = [&](std::size_t m) { return " in " + std::to_string(m) + " of " + std::to_string(n) + " seeds"; };
    checks.expect(none_below == n, "no positions: token accuracy does not beat the best order-blind guess (+ 0.03)" + of(none_below));
    checks.expect(positional_good == n, "sinusoidal and learned positions: token accuracy > " + lab::format_number(need, 2) + of(positional_good));
    {
      std::ostringstream r;
      r << "Over the " << seeds << " seeds, the model without positions ends at token accuracy " << f4(token[0].median()) << " ("
        << token[0].range(4) << "), against order-blind ceilings of " << ceilings.range(4)
        << " on the seeds' held-out sets: its accuracy minus the ceiling is " << lab::format_number(none_gap.median(), 2) << " ("
        << none_gap.range(2) << "). It learned everything it *can* learn: which symbol is most common. It gets "
        << (exact[0].max() == 0 ? "no" : "hardly any") << " whole sequence right. With positions both models solve the task: token "
        << "accuracy " << f4(token[1].median()) << " (" << token[1].range(4) << ") with sinusoidal positions and " << f4(token[2].median())
        << " (" << token[2].range(4) << ") with learned ones, exact match " << f4(exact[1].median()) << " and " << f4(exact[2].median())
        << ". Learned positions reach 0.99 first in " << learned_first << " of " << seeds << " seeds.";
      chapter.text("results_reading", r.str());
    }
    checks.expect(exact[0].max() < 0.05, "no positions: (almost) no whole sequence right: exact match <= " + f2(exact[0].max()));

    // ---- 4) What the heads look at --------------------------------------------------------------------
    // One held-out sequence through the first seed's two models with positions; every layer's weights per head.
    lab::ReversalTask show_task(task_options(args.seed, length));
    const ag::Indices one = first_rows(show_task.eval_set().src, 1);
    std::vector<std::string> tokens, rows, titles;
    for (std::int64_t id : one.values) tokens.push_back(std::string(1, show_task.vocab().ch(id)));
    for (std::size_t t = 0; t < T; ++t) rows.push_back(std::to_string(t) + ": " + tokens[T - 1 - t]);
    for (std::size_t h = 0; h < H; ++h) titles.push_back("head " + std::to_string(h + 1));
    for (std::size_t i = 1; i < NV; ++i) {
      Reverser& model = *first_models[i];
      ag::NoGrad no_grad;
      model.forward(one);
      for (std::size_t l = 0; l < model.encoder->layers.size(); ++l) {
        const std::string name = std::string("heads_") + positions_name(variants[i]) + "_layer" + std::to_string(l + 1) + ".png";
        const ag::Tensor w = ag::select(model.encoder->layers[l]->last_attention(), 0, 0);  // [H, T, T]
        std::vector<ag::Tensor> panels;
        std::vector<std::string> panel_titles;
        for (std::size_t h = 0; h < H; ++h) {
          panels.push_back(ag::select(w, 0, std::int64_t(h)));
          panel_titles.push_back(titles[h] + ": " + f2(first_diag[i][l][h]) + " on the anti-diagonal");
        }
        lab::HeatmapOptions ho{.title = "Layer " + std::to_string(l + 1) + ", " + positions_name(variants[i]) +
                                        " positions: row t outputs token " + std::to_string(T - 1) + "-t. Per head: its mean weight on "
                                        "the anti-diagonal (" + std::to_string(curve_size) + " sequences)",
                               .xlabel = "key (input position)", .ylabel = "query (output position)", .xticks = tokens,
                               .yticks = rows, .zmin = 0, .zmax = 1, .width = 900, .height = 860};
        if (lab::heatmap_grid(args.path(name), panels, panel_titles, ho, 2) &&
            (name == "heads_sinusoidal_layer2.png" || name == "heads_learned_layer1.png"))
          chapter.figure(name);
      }
    }
    {
      lab::Table dt("Attention on the anti-diagonal (t, " + std::to_string(T - 1) + "-t), " + std::to_string(curve_size) +
                        " held-out sequences, " + std::to_string(seeds) + " seeds: median (range)",
                    {"positions", "layer", "mean over the heads", "the most anti-diagonal head"});
      for (std::size_t i = 0; i < NV; ++i)
        for (std::size_t l = 0; l < diag_mean[i].size(); ++l)
          dt.row({positions_name(variants[i]), int(l + 1), f2(diag_mean[i][l].median()) + " (" + diag_mean[i][l].range(2) + ")",
                  f2(diag_max[i][l].median()) + " (" + diag_max[i][l].range(2) + ")"});
      std::cout << "\n";
      dt.print();
      dt.save_markdown(args.path("report.md"), true);
      chapter.table("antidiagonal", dt);
      {  // the chapter's reading of the heads
        const double s1 = diag_mean[1][0].median(), s2 = diag_mean[1][1].median();
        const double l1 = diag_mean[2][0].median(), l2 = diag_mean[2][1].median();
        std::string seq;
        for (const auto& tk : tokens) seq += (seq.empty() ? "" : " ") + tk;
        std::ostringstream r;
        r << "The heatmaps show one held-out sequence of the first seed, `" << seq << "`. Row t is output position t, labelled "
          << "with the token it must produce (`" << rows.front() << "` … `" << rows.back() << "`). Each panel's title gives that "
          << "head's mean weight on the anti-diagonal over " << curve_size << " held-out sequences, and the table gives the "
          << "same share for every seed (the mean over a layer's " << H << " heads, and the most anti-diagonal head; a head "
          << "that ignored positions would put about 1/" << T << " there, as the model without positions does). ";
        if (s2 > 0.5 && s1 < 0.3)
          r << "In the sinusoidal model, the heads of layer 2 have learned the reversal: they put " << f2(s2) << " of their "
            << "weight on the anti-diagonal (median over the seeds; " << diag_mean[1][1].range(2) << ") and copy that token. "
            << "Its first layer puts only " << f2(s1) << " there: it prepares the positions rather than reading them. ";
        else
          r << "In the sinusoidal model the heads put " << f2(s1) << " of their weight on the anti-diagonal in layer 1 and "
            << f2(s2) << " in layer 2 (medians over the seeds). ";
        if (l1 > 0.5)
          r << "The learned-position model does the reversal already in layer 1 (" << f2(l1) << "; " << f2(l2)
            << " in layer 2): the table is free to be whatever makes the anti-diagonal easy, while the sinusoids have to be "
               "transformed by a layer first.";
        else
          r << "The learned-position model puts " << f2(l1) << " there in layer 1 and " << f2(l2) << " in layer 2.";
        r << " Several heads doing the same job is redundancy, not a flaw: reversal needs only one kind of lookup.";
        chapter.text("heads_reading", r.str());
      }
      // A uniform row puts 1/T on each key: the anti-diagonal share of an order-blind model.
      checks.expect(std::max(diag_max[0][0].max(), diag_max[0][1].max()) < 0.5,
                    "no positions: no head concentrates on the anti-diagonal (largest share " +
                        f2(std::max(diag_max[0][0].max(), diag_max[0][1].max())) + " < 0.5)");
      for (std::size_t i = 1; i < NV; ++i) {
        double best = 0;  // per seed: the better layer's mean over heads; the claim is about the worst seed
        lab::SeedStats per_seed;
        for (std::size_t s = 0; s < std::size_t(seeds); ++s)
          per_seed.add(std::max(diag_mean[i][0].values[s], diag_mean[i][1].values[s]));
        best = per_seed.min();
        checks.expect(best > 0.5, std::string(positions_name(variants[i])) +
                                      " positions: in every seed one layer's heads put > 0.5 of their weight on the anti-diagonal (" +
                                      f2(best) + " in the worst seed)");
      }
    }

    // The sinusoidal table itself, for the first 50 positions.
    nn::SinusoidalPositionalEncoding table(D, 50);
    lab::heatmap(args.path("sinusoidal_table.png"), table.table(),
                 {.title = "Sinusoidal positions: PE[t, i]", .xlabel = "dimension i", .ylabel = "position t", .palette = "viridis",
                  .zmin = -1, .zmax = 1, .width = 640, .height = 560});

    // ---- 5) The exercises' answers (the chapter quotes them) -------------------------------------------
    exercise_answers(chapter, checks, args, layer_opts, steps, seeds, token[2], [&](std::uint64_t s, int len) { return task_options(s, len); });

    std::cout << "Wrote " << args.out.string() << "/: loss.csv, accuracy.csv, accuracy.png, loss.png, heads_*.png, "
              << "sinusoidal_table.png (and .svg, .gp), report.md, chapter/\n";
    std::ostringstream report;
    const int status = checks.report(report);
    std::cout << report.str();
    chapter.text("checks", "```" + report.str() + "```");
    return status;
  });
}
