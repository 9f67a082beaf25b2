// Lesson 15: attention is not explanation (Jain & Wallace 2019; Wiegreffe & Pinter 2019).
//
// A classifier that pools its token vectors with attention gives a weight per token, and the
// heatmap of those weights is easy to read as "the model looked here, so this is why". This
// lesson trains such a classifier, then changes its attention weights by hand -- permutes them,
// flattens them, moves the mass to other tokens -- and measures how much the prediction moves.
// Often it barely does: very different heatmaps, the same answer.
//
// The model, with h_t the vector of token t (an embedding, or a recurrent state):
//   s_t = u . tanh(W h_t + b)              a score per token (additive attention, lesson 08)
//   a   = softmax(s)                        the attention weights, sum to 1
//   logits = W_o (sum_t a_t h_t) + b_o      two classes
// Because the weights sum to 1, logits = sum_t a_t g_t with g_t = W_o h_t + b_o: the output is
// a weighted average of per-token logit vectors, and attention only chooses the mix. Any other
// mix of tokens whose g_t agree gives the same answer.
//
// Shape legend: B batch, T tokens per sentence (12), D embedding width, H encoder width.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

using ag::Tensor;
constexpr std::size_t kT = 12;

// ---------------------------------------------------------------------------------------------
// 1) A sentiment-like task. Sentences of 12 words: 1 to 3 words of the label's polarity, fewer of
//    the other polarity, the rest neutral. The label is the majority polarity.
const std::vector<std::string> kWords = {
    // 0..3 positive, 4..7 negative, 8.. neutral
    "good", "great", "love", "fine", "bad", "awful", "hate", "poor", "the", "a", "film", "plot", "actor",
    "was", "is", "and", "very", "it", "movie", "story", "but", "this", "scene", "music", "ending", "cast"};
constexpr std::int64_t kPositive = 0, kNegative = 4, kNeutral = 8;

struct Dataset {
  ag::Indices tokens;          // [N, T]
  std::vector<std::int64_t> labels;  // N, 1 = positive
};

// label_noise: the share of labels flipped at random (training only). Real labels are noisy; with
// none, the models grow arbitrarily confident and every output saturates at 0 or 1.
Dataset make_data(std::size_t n, ag::Generator& gen, double label_noise = 0.0) {
  Dataset d;
  std::vector<std::int64_t> ids;
  const auto neutral = std::int64_t(kWords.size()) - kNeutral;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t label = gen.integer(0, 1);
    const std::int64_t k = gen.integer(1, 3), k_other = gen.integer(0, k - 1);
    std::vector<std::int64_t> s(kT);
    for (auto& w : s) w = kNeutral + gen.integer(0, neutral - 1);
    std::vector<std::size_t> pos(kT);
    std::iota(pos.begin(), pos.end(), 0);
    std::shuffle(pos.begin(), pos.end(), gen.engine());
    const std::int64_t mine = label ? kPositive : kNegative, other = label ? kNegative : kPositive;
    for (std::int64_t j = 0; j < k; ++j) s[pos[j]] = mine + gen.integer(0, 3);
    for (std::int64_t j = 0; j < k_other; ++j) s[pos[k + j]] = other + gen.integer(0, 3);
    ids.insert(ids.end(), s.begin(), s.end());
    d.labels.push_back(gen.uniform() < label_noise ? 1 - label : label);
  }
  d.tokens = ag::Indices(ids, {n, kT});
  return d;
}

// ---------------------------------------------------------------------------------------------
// 2) The classifier: token vectors h, attention pooling, a linear readout.
//    "bag": h_t = embedding of token t (no token sees another);
//    "BiGRU": h_t = [forward GRU state; backward GRU state] at t (each h_t mixes the whole
//    sentence, as in Jain & Wallace's BiLSTM models).
class AttentionClassifier : public nn::Module {
 public:
  AttentionClassifier(bool recurrent, std::size_t D, ag::Generator& gen) : recurrent_(recurrent) {
    embed = register_module("embed", std::make_shared<nn::Embedding>(kWords.size(), D, gen));
    std::size_t H = D;
    if (recurrent) {
      fwd = register_module("fwd", std::make_shared<nn::GRU>(D, D, gen));
      bwd = register_module("bwd", std::make_shared<nn::GRU>(D, D, gen));
      H = 2 * D;
    }
    score_proj = register_module("score_proj", std::make_shared<nn::Linear>(H, H, gen));
    score_u = register_module("score_u", std::make_shared<nn::Linear>(H, 1, gen, false));
    readout = register_module("readout", std::make_shared<nn::Linear>(H, 2, gen));
  }
  // tokens [B, T] -> h [B, T, H]
  Tensor encode(const ag::Indices& tokens) const {
    const Tensor e = embed->forward(tokens);  // [B, T, D]
    if (!recurrent_) return e;
    const std::size_t B = tokens.shape[0], T = tokens.shape[1];
    std::vector<std::int64_t> rev(tokens.values.size());  // the sentence read right to left
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < T; ++t) rev[b * T + t] = tokens.values[b * T + (T - 1 - t)];
    const Tensor right_to_left = bwd->forward(embed->forward(ag::Indices(rev, tokens.shape))).output;  // [B, T, D]
    std::vector<Tensor> back(T);
    for (std::size_t t = 0; t < T; ++t) back[t] = ag::select(right_to_left, 1, std::int64_t(T - 1 - t));
    return ag::concat({fwd->forward(e).output, ag::stack(back, 1)}, -1);  // [B, T, 2D]
  }
  // h [B, T, H] -> attention weights a [B, T]
  Tensor attention(const Tensor& h) const {
    const Tensor s = ag::squeeze((*score_u)(ag::tanh((*score_proj)(h))), -1);  // [B, T]
    return ag::softmax(s, -1);
  }
  // h [B, T, H], a [B, T] -> logits [B, 2]
  Tensor classify(const Tensor& h, const Tensor& a) const {
    const Tensor context = ag::squeeze(ag::matmul(ag::unsqueeze(a, 1), h), 1);  // sum_t a_t h_t: [B, H]
    return (*readout)(context);
  }
  std::string describe() const override { return recurrent_ ? "BiGRU + attention" : "embeddings + attention"; }

  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::GRU> fwd, bwd;
  std::shared_ptr<nn::Linear> score_proj, score_u, readout;

 private:
  bool recurrent_;
};

// ---------------------------------------------------------------------------------------------
// 3) Perturbing the attention. For one sentence we keep a [T] and the per-token evidence
//    r_t = g_t[1] - g_t[0] (the log-odds token t would give on its own): for any weights a',
//    P(positive | a') = sigmoid(sum_t a'_t r_t). So trying a new heatmap costs T multiply-adds.
struct Explained {
  std::vector<double> a;  // attention [T]
  std::vector<double> r;  // evidence per token [T]
  double p = 0;           // P(positive) with the model's own attention
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double prob(const std::vector<double>& a, const std::vector<double>& r) {
  double z = 0;
  for (std::size_t t = 0; t < a.size(); ++t) z += a[t] * r[t];
  return sigmoid(z);
}
// Total variation distance between two distributions: the share of the mass that moved.
double tvd(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t t = 0; t < a.size(); ++t) s += std::abs(a[t] - b[t]);
  return 0.5 * s;
}

struct Perturbed {
  double permute_dp = 0;      // median |dp| over random permutations of a
  double uniform_dp = 0;      // |dp| with a' = 1/T
  double erase_top_dp = 0;    // |dp| with the most-attended token's weight removed (renormalised)
  double erase_rand_dp = 0;   // the same for a random other token
  double adv_tvd = 0;         // the largest TVD(a, a') found with |dp| <= eps
  std::vector<double> adv_a;  // that a'
};

// (c) the adversarial search: from random alternatives c (every one-hot, every "a with one token
// removed", random permutations, random draws from a flat Dirichlet), move a toward c as far as
// the output stays within eps of the original, and return the a' farthest from a.
Perturbed perturb(const Explained& x, double eps, int permutations, int random_draws, ag::Generator& gen) {
  Perturbed out;
  const std::size_t T = x.a.size();
  auto dp = [&](const std::vector<double>& a2) { return std::abs(prob(a2, x.r) - x.p); };
  // Walk from a toward the candidate c, a' = a + lam (c - a), as far as the output allows. The
  // log-odds are linear in lam, z(lam) = z_a + lam (z_c - z_a), and P is monotone in z, so the
  // largest lam with |P(a') - P(a)| <= eps has a closed form; TVD(a, a') = lam TVD(a, c).
  const double z_a = std::log(x.p / (1.0 - x.p));
  auto consider = [&](const std::vector<double>& c) {
    double z_c = 0;
    for (std::size_t t = 0; t < T; ++t) z_c += c[t] * x.r[t];
    const double p_c = sigmoid(z_c);
    double lam = 1.0;
    if (std::abs(p_c - x.p) > eps) {
      const double target = std::clamp(x.p + (p_c > x.p ? eps : -eps), 1e-12, 1.0 - 1e-12);
      lam = std::clamp((std::log(target / (1.0 - target)) - z_a) / (z_c - z_a), 0.0, 1.0);
    }
    const double d = lam * tvd(x.a, c);
    if (d > out.adv_tvd) {
      out.adv_tvd = d;
      for (std::size_t t = 0; t < T; ++t) out.adv_a[t] = x.a[t] + lam * (c[t] - x.a[t]);
    }
  };
  out.adv_a = x.a;
  // (a) permutations
  std::vector<double> dps;
  for (int i = 0; i < permutations; ++i) {
    std::vector<double> a2 = x.a;
    std::shuffle(a2.begin(), a2.end(), gen.engine());
    dps.push_back(dp(a2));
    consider(a2);
  }
  std::nth_element(dps.begin(), dps.begin() + std::ptrdiff_t(dps.size() / 2), dps.end());
  out.permute_dp = dps[dps.size() / 2];
  // (b) uniform
  const std::vector<double> flat(T, 1.0 / double(T));
  out.uniform_dp = dp(flat);
  consider(flat);
  // erasing one token: the top one, and a random other one
  auto erase = [&](std::size_t t) {
    std::vector<double> a2 = x.a;
    const double keep = 1.0 - a2[t];
    a2[t] = 0;
    for (auto& w : a2) w /= keep;
    return a2;
  };
  const std::size_t top = std::size_t(std::max_element(x.a.begin(), x.a.end()) - x.a.begin());
  std::size_t other = std::size_t(gen.integer(0, std::int64_t(T) - 2));
  if (other >= top) ++other;
  out.erase_top_dp = dp(erase(top));
  out.erase_rand_dp = dp(erase(other));
  // (c) more alternatives for the adversarial search
  for (std::size_t t = 0; t < T; ++t) {
    std::vector<double> one_hot(T, 0.0);
    one_hot[t] = 1.0;
    consider(one_hot);
    consider(erase(t));
  }
  for (int i = 0; i < random_draws; ++i) {
    std::vector<double> a2(T);
    double sum = 0;
    for (auto& w : a2) sum += (w = -std::log(1.0 - gen.uniform()));  // Exp(1) draws -> Dirichlet(1, ..., 1)
    for (auto& w : a2) w /= sum;
    consider(a2);
  }
  return out;
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}
double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double share_below(const std::vector<double>& v, double x) {
  return double(std::count_if(v.begin(), v.end(), [x](double y) { return y <= x; })) / double(v.size());
}
// The share of sentences whose best adversarial twin moved at least x of the mass (to 1e-3).
double share_twin_at_least(const std::vector<double>& adv_tvd, double x) { return 1.0 - share_below(adv_tvd, x - 1e-3); }

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("15_attention_not_explanation", "Perturb a classifier's attention weights and measure how much its output moves");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    ag::Generator gen(args.seed);
    const std::int64_t steps = args.steps_or(600, 200);
    const std::size_t B = 64, D = 32, n_eval = args.quick ? 400 : 1000;
    const double eps = 0.01;  // "nearly the same output": |dp| <= 0.01
    const int permutations = 20, random_draws = args.quick ? 100 : 300;
    ag::Generator data_gen(lab::derive_seed(args.seed, lab::kTrainStream)), eval_gen(lab::derive_seed(args.seed, lab::kEvalStream));
    const Dataset eval = make_data(n_eval, eval_gen);
    std::cout << "Lesson 15: attention is not explanation. Sentences of " << kT << " words; label = the majority polarity.\n"
              << "Example: ";
    for (std::size_t t = 0; t < kT; ++t) std::cout << kWords[std::size_t(eval.tokens.values[t])] << " ";
    std::cout << "-> " << (eval.labels[0] ? "positive" : "negative") << "\n";

    lab::CurveLog change_log(args.path("output_change.csv"),
                             {"bag_permute", "bag_uniform", "bigru_permute", "bigru_uniform"}, "threshold");
    lab::CurveLog loss_log(args.path("loss.csv"), {"bag", "bigru"});
    lab::Table table("What happens to the output when the attention is changed (held-out, " + std::to_string(n_eval) +
                         " sentences; dp = |change in P(positive)|)",
                     {"model", "accuracy", "median dp, permuted", "median dp, uniform", "share dp<=0.01, permuted",
                      "mean dp, erase top token", "mean dp, erase other token", "share adversarial (TVD>=0.5, dp<=0.01)",
                      "mean adversarial TVD"});
    struct Summary {
      std::string name;
      double accuracy, adv_share, erase_top, erase_other, permute_dp;
    };
    std::vector<Summary> summaries;
    std::vector<std::vector<double>> permute_all(2), uniform_all(2), losses_all(2), adv_all(2);

    for (int m = 0; m < 2; ++m) {
      const bool recurrent = m == 1;
      const std::string slug = recurrent ? "bigru" : "bag";
      AttentionClassifier model(recurrent, D, gen);
      nn::Adam opt(model.parameters(), {.lr = 1e-2});
      std::vector<double> losses;
      {
        lab::Progress bar(steps, std::string("train ") + model.describe());
        for (std::int64_t step = 1; step <= steps; ++step) {
          const Dataset batch = make_data(B, data_gen, 0.1);  // 10% of training labels flipped
          opt.zero_grad();
          const Tensor h = model.encode(batch.tokens);
          const Tensor loss = ag::cross_entropy(model.classify(h, model.attention(h)), ag::Indices(batch.labels));
          loss.backward();
          nn::clip_grad_norm(model.parameters(), 1.0);
          opt.step();
          losses.push_back(loss.item());
          bar.update(step, {{"loss", loss.item()}});
        }
      }
      losses_all[m] = losses;

      // The held-out sentences: attention a, per-token evidence r = g[1] - g[0], and the output.
      std::vector<Explained> xs(n_eval);
      std::size_t correct = 0;
      {
        ag::NoGrad ng;
        const Tensor h = model.encode(eval.tokens);   // [N, T, H]
        const Tensor a = model.attention(h);           // [N, T]
        const Tensor g = (*model.readout)(h);          // [N, T, 2]: the logits each token would give alone
        const Tensor logits = model.classify(h, a);    // [N, 2]
        const auto av = a.to_vector(), gv = g.to_vector(), lv = logits.to_vector();
        for (std::size_t i = 0; i < n_eval; ++i) {
          for (std::size_t t = 0; t < kT; ++t) {
            xs[i].a.push_back(av[i * kT + t]);
            xs[i].r.push_back(gv[(i * kT + t) * 2 + 1] - gv[(i * kT + t) * 2]);
          }
          xs[i].p = sigmoid(lv[i * 2 + 1] - lv[i * 2]);
          correct += (xs[i].p > 0.5) == (eval.labels[i] == 1);
        }
      }
      const double accuracy = double(correct) / double(n_eval);

      // Perturb every sentence's attention.
      std::vector<Perturbed> ps;
      {
        lab::Progress bar(std::int64_t(n_eval), "perturb " + slug);
        for (const auto& x : xs) {
          ps.push_back(perturb(x, eps, permutations, random_draws, gen));
          bar.tick();
        }
      }
      std::vector<double> perm, unif, erase_top, erase_rand, adv;
      for (const auto& p : ps) {
        perm.push_back(p.permute_dp), unif.push_back(p.uniform_dp), erase_top.push_back(p.erase_top_dp);
        erase_rand.push_back(p.erase_rand_dp), adv.push_back(p.adv_tvd);
      }
      permute_all[m] = perm, uniform_all[m] = unif, adv_all[m] = adv;
      const double adv_share = share_twin_at_least(adv, 0.5);
      table.row({model.describe(), accuracy, median(perm), median(unif), share_below(perm, eps), mean(erase_top),
                 mean(erase_rand), adv_share, mean(adv)});
      summaries.push_back({model.describe(), accuracy, adv_share, mean(erase_top), mean(erase_rand), median(perm)});

      // One sentence drawn as heatmaps: the model's attention, the adversarial one, uniform. Of the
      // correctly classified sentences with an adversarial twin at TVD >= 0.7, show the one whose
      // trained attention is most peaked (the most convincing-looking heatmap), preferring twins
      // that put their weight on a neutral word.
      std::size_t pick = 0;
      double best = -1;
      for (std::size_t i = 0; i < n_eval; ++i) {
        if (ps[i].adv_tvd < 0.7 || (xs[i].p > 0.5) != (eval.labels[i] == 1)) continue;
        const auto& adv_a = ps[i].adv_a;
        const std::size_t adv_top = std::size_t(std::max_element(adv_a.begin(), adv_a.end()) - adv_a.begin());
        const bool neutral = eval.tokens.values[i * kT + adv_top] >= kNeutral;
        const double score = *std::max_element(xs[i].a.begin(), xs[i].a.end()) + (neutral ? 1.0 : 0.0);
        if (score > best) pick = i, best = score;
      }
      const Explained& x = xs[pick];
      const std::vector<double> flat(kT, 1.0 / double(kT));
      std::vector<std::string> ticks;
      for (std::size_t t = 0; t < kT; ++t) ticks.push_back(kWords[std::size_t(eval.tokens.values[pick * kT + t])]);
      auto label = [](const std::string& what, double p) { return what + " (P+ = " + lab::format_number(p, 3) + ")"; };
      lab::write_matrix_csv(args.path("example_" + slug + ".csv"), {x.a, ps[pick].adv_a, flat});
      lab::heatmap(args.path("example_" + slug + ".png"), args.path("example_" + slug + ".csv"),
                   {.title = model.describe() + ": three heatmaps, one sentence", .xlabel = "token",
                    .xticks = ticks,
                    .yticks = {label("trained attention", x.p), label("adversarial", prob(ps[pick].adv_a, x.r)),
                               label("uniform", prob(flat, x.r))},
                    .zmin = 0.0, .zmax = 1.0, .width = 1200, .height = 420});
      std::cout << "\n" << model.describe() << ", sentence " << pick << ":\n  token     ";
      for (const auto& w : ticks) std::printf("%7s", w.c_str());
      std::cout << "\n  attention ";
      for (double v : x.a) std::printf("%7.3f", v);
      std::cout << "\n  adversary ";
      for (double v : ps[pick].adv_a) std::printf("%7.3f", v);
      std::cout << "\n  evidence  ";
      for (double v : x.r) std::printf("%7.2f", v);
      std::cout << "   (log-odds r_t each token gives on its own)\n  P(positive): trained " << lab::format_number(x.p, 4)
                << ", adversarial " << lab::format_number(prob(ps[pick].adv_a, x.r), 4) << ", TVD between the heatmaps "
                << lab::format_number(ps[pick].adv_tvd, 3) << "\n";
    }

    // Cumulative shares: for each threshold x, the share of sentences whose output moved by <= x.
    for (double e = -4; e <= 0.001; e += 0.125) {
      const double x = std::pow(10.0, e);
      change_log.log(x, {share_below(permute_all[0], x), share_below(uniform_all[0], x), share_below(permute_all[1], x),
                         share_below(uniform_all[1], x)});
    }

    // The training loss of both models, averaged over 10 steps.
    auto mean_of_10 = [](const std::vector<double>& v, std::size_t from) {
      return std::accumulate(v.begin() + std::ptrdiff_t(from), v.begin() + std::ptrdiff_t(from + 10), 0.0) / 10.0;
    };
    for (std::size_t i = 0; i + 10 <= losses_all[0].size(); i += 10)
      loss_log.log(double(i + 10), {mean_of_10(losses_all[0], i), mean_of_10(losses_all[1], i)});
    // The adversarial curve: the share of sentences that have a heatmap at least x away (TVD) from
    // the trained one with nearly the same output (|dp| <= eps).
    lab::CurveLog adv_log(args.path("adversarial.csv"), {"bag", "bigru"}, "tvd");
    for (int i = 0; i <= 20; ++i) {
      const double x = 0.05 * i;
      adv_log.log(x, {share_twin_at_least(adv_all[0], x), share_twin_at_least(adv_all[1], x)});
    }
    std::cout << "\n";
    table.print();
    table.save_markdown(args.path("report.md"));

    lab::PlotOptions po{.title = "How far does the output move when the attention is replaced?",
                        .xlabel = "x = change in P(positive)", .ylabel = "share of sentences with change <= x",
                        .logx = true, .ymin = 0.0, .ymax = 1.4};
    const std::vector<lab::Series> change_series{
        {change_log.path(), "bag_permute", "embeddings + attention: permuted", "threshold"},
        {change_log.path(), "bag_uniform", "embeddings + attention: uniform", "threshold"},
        {change_log.path(), "bigru_permute", "BiGRU + attention: permuted", "threshold"},
        {change_log.path(), "bigru_uniform", "BiGRU + attention: uniform", "threshold"}};
    lab::plot(args.path("output_change.png"), change_series, po);
    lab::plot(args.path("adversarial.png"),
              {{adv_log.path(), "bag", "embeddings + attention", "tvd", "linespoints"},
               {adv_log.path(), "bigru", "BiGRU + attention", "tvd", "linespoints"}},
              {.title = "A different heatmap, the same output (|change in P(positive)| <= 0.01)",
               .xlabel = "x = share of the attention mass moved (TVD)",
               .ylabel = "share of sentences with such a heatmap", .ymin = 0.0, .ymax = 1.3});
    std::cout << "\nShare of sentences whose output moves by <= x when the attention is permuted:\n";
    lab::plot_terminal({change_series[0], change_series[2]}, po);
    std::cout << "Wrote " << args.out.string() << "/{output_change,adversarial,example_bag,example_bigru}.png and report.md\n";

    lab::Checks checks;
    checks.expect(summaries[0].accuracy > 0.9 && summaries[1].accuracy > 0.9,
                  "both classifiers learn the task (held-out accuracy " + lab::format_number(summaries[0].accuracy, 3) + " and " +
                      lab::format_number(summaries[1].accuracy, 3) + " > 0.9)");
    for (int m = 0; m < 2; ++m)
      checks.expect(summaries[m].adv_share > 0.2, summaries[m].name + ": for " + lab::format_number(100 * summaries[m].adv_share, 3) +
                                                      "% (> 20%) of sentences a heatmap with half the mass moved gives the same output");
    for (int m = 0; m < 2; ++m)
      checks.expect(summaries[m].erase_top > 3 * summaries[m].erase_other,
                    summaries[m].name + ": erasing the most-attended token moves the output > 3x more than erasing another (" +
                        lab::format_number(summaries[m].erase_top, 3) + " vs " + lab::format_number(summaries[m].erase_other, 3) + ")");
    checks.expect(summaries[1].permute_dp < summaries[0].permute_dp,
                  "a contextual encoder (BiGRU) makes the output less sensitive to permuted attention");
    return checks.report();
  });
}
