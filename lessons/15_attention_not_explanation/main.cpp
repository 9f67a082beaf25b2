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
#include <array>
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
  std::vector<double> adv_tvd_at;  // the same search with each tolerance of `other_eps` (exercise 2)
};

// (c) the adversarial search: from random alternatives c (every one-hot, every "a with one token
// removed", random permutations, random draws from a flat Dirichlet), move a toward c as far as
// the output stays within eps of the original, and return the a' farthest from a. The same walk
// is also measured with each tolerance in other_eps (only how far it goes, not the a').
Perturbed perturb(const Explained& x, double eps, const std::vector<double>& other_eps, int permutations, int random_draws,
                  ag::Generator& gen) {
  Perturbed out;
  out.adv_tvd_at.assign(other_eps.size(), 0.0);
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
    auto largest_lam = [&](double tolerance) {
      if (std::abs(p_c - x.p) <= tolerance) return 1.0;
      const double target = std::clamp(x.p + (p_c > x.p ? tolerance : -tolerance), 1e-12, 1.0 - 1e-12);
      return std::clamp((std::log(target / (1.0 - target)) - z_a) / (z_c - z_a), 0.0, 1.0);
    };
    const double distance = tvd(x.a, c);
    const double lam = largest_lam(eps);
    if (lam * distance > out.adv_tvd) {
      out.adv_tvd = lam * distance;
      for (std::size_t t = 0; t < T; ++t) out.adv_a[t] = x.a[t] + lam * (c[t] - x.a[t]);
    }
    for (std::size_t i = 0; i < other_eps.size(); ++i)
      out.adv_tvd_at[i] = std::max(out.adv_tvd_at[i], largest_lam(other_eps[i]) * distance);
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

// ---------------------------------------------------------------------------------------------
// 4) Leave-one-out (exercise 3): remove each word from the sentence in turn (T - 1 words left),
//    run the whole model again and measure |dp|. Kendall's tau between that ranking and the
//    attention's says whether the heatmap orders the words the way the model's output does.
// For every sentence i and position t: P(positive) of the sentence without word t ([N][T]).
std::vector<std::vector<double>> leave_one_out(const AttentionClassifier& model, const ag::Indices& tokens) {
  ag::NoGrad ng;
  const std::size_t N = tokens.shape[0], T = tokens.shape[1];
  std::vector<std::vector<double>> p(N, std::vector<double>(T));
  for (std::size_t k = 0; k < T; ++k) {
    std::vector<std::int64_t> ids;
    for (std::size_t i = 0; i < N; ++i)
      for (std::size_t t = 0; t < T; ++t)
        if (t != k) ids.push_back(tokens.values[i * T + t]);
    const Tensor h = model.encode(ag::Indices(ids, {N, T - 1}));
    const std::vector<double> logits = model.classify(h, model.attention(h)).to_vector();  // [N, 2]
    for (std::size_t i = 0; i < N; ++i) p[i][k] = sigmoid(logits[i * 2 + 1] - logits[i * 2]);
  }
  return p;
}
// Kendall's tau-a: (concordant - discordant pairs) / all pairs; 1 = the same order, 0 = unrelated.
double kendall_tau(const std::vector<double>& x, const std::vector<double>& y) {
  double c = 0, d = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    for (std::size_t j = i + 1; j < x.size(); ++j) {
      const double s = (x[i] - x[j]) * (y[i] - y[j]);
      c += s > 0, d += s < 0;
    }
  return (c - d) / (double(x.size()) * double(x.size() - 1) / 2.0);
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

// ---------------------------------------------------------------------------------------------
// 5) One model trained from one seed, and everything measured on it.
struct Settings {
  std::int64_t steps = 600;
  std::size_t batch = 64, dim = 32, n_eval = 1000;
  double eps = 0.01;                                 // "nearly the same output": |dp| <= 0.01
  std::vector<double> other_eps = {0.001, 0.05};     // exercise 2
  int permutations = 20, random_draws = 300;
  double label_noise = 0.1;                          // the share of training labels flipped
};
// One sentence drawn as heatmaps (the first seed's).
struct Example {
  std::size_t index = 0;
  std::vector<std::string> words;
  std::vector<int> polarity;  // +1 positive word, -1 negative, 0 neutral
  Explained x;
  std::vector<double> adv_a;
  double p_adv = 0, p_uniform = 0, tvd = 0;
};
struct ModelRun {
  std::string name, slug;
  double accuracy = 0, permute_median = 0, uniform_median = 0, permute_within_eps = 0, erase_top = 0, erase_other = 0,
         adv_share = 0, adv_mean = 0, adv_share_09 = 0;
  std::vector<double> adv_share_other_eps;  // at Settings::other_eps
  double loo_tau = 0;                        // mean Kendall tau, attention vs leave-one-out |dp|
  double loo_vs_erase = 0;                   // largest |P(leave word t out) - P(erase weight t)| over all sentences and t
  std::vector<double> permute, uniform, adv;  // per sentence
  std::vector<double> losses;                 // per training step
  Example example;
};

ModelRun run_model(bool recurrent, const Settings& s, const Dataset& eval, ag::Generator& gen,
                   ag::Generator& data_gen, const std::string& label) {
  AttentionClassifier model(recurrent, s.dim, gen);
  ModelRun r;
  r.name = model.describe();
  r.slug = recurrent ? "bigru" : "bag";
  nn::Adam opt(model.parameters(), {.lr = 1e-2});
  {
    lab::Progress bar(s.steps, "train " + r.slug + ", " + label);
    for (std::int64_t step = 1; step <= s.steps; ++step) {
      const Dataset batch = make_data(s.batch, data_gen, s.label_noise);
      opt.zero_grad();
      const Tensor h = model.encode(batch.tokens);
      const Tensor loss = ag::cross_entropy(model.classify(h, model.attention(h)), ag::Indices(batch.labels));
      loss.backward();
      nn::clip_grad_norm(model.parameters(), 1.0);
      opt.step();
      r.losses.push_back(loss.item());
      bar.update(step, {{"loss", loss.item()}});
    }
  }

  // The held-out sentences: attention a, per-token evidence r = g[1] - g[0], and the output.
  const std::size_t N = s.n_eval;
  std::vector<Explained> xs(N);
  std::size_t correct = 0;
  {
    ag::NoGrad ng;
    const Tensor h = model.encode(eval.tokens);   // [N, T, H]
    const Tensor a = model.attention(h);           // [N, T]
    const Tensor g = (*model.readout)(h);          // [N, T, 2]: the logits each token would give alone
    const Tensor logits = model.classify(h, a);    // [N, 2]
    const auto av = a.to_vector(), gv = g.to_vector(), lv = logits.to_vector();
    for (std::size_t i = 0; i < N; ++i) {
      for (std::size_t t = 0; t < kT; ++t) {
        xs[i].a.push_back(av[i * kT + t]);
        xs[i].r.push_back(gv[(i * kT + t) * 2 + 1] - gv[(i * kT + t) * 2]);
      }
      xs[i].p = sigmoid(lv[i * 2 + 1] - lv[i * 2]);
      correct += (xs[i].p > 0.5) == (eval.labels[i] == 1);
    }
  }
  r.accuracy = double(correct) / double(N);

  // Perturb every sentence's attention.
  std::vector<Perturbed> ps;
  {
    lab::Progress bar(std::int64_t(N), "perturb " + r.slug + ", " + label);
    for (const auto& x : xs) {
      ps.push_back(perturb(x, s.eps, s.other_eps, s.permutations, s.random_draws, gen));
      bar.tick();
    }
  }
  std::vector<double> erase_top, erase_rand;
  std::vector<std::vector<double>> adv_other(s.other_eps.size());
  for (const auto& p : ps) {
    r.permute.push_back(p.permute_dp), r.uniform.push_back(p.uniform_dp), r.adv.push_back(p.adv_tvd);
    erase_top.push_back(p.erase_top_dp), erase_rand.push_back(p.erase_rand_dp);
    for (std::size_t i = 0; i < s.other_eps.size(); ++i) adv_other[i].push_back(p.adv_tvd_at[i]);
  }
  r.permute_median = median(r.permute), r.uniform_median = median(r.uniform);
  r.permute_within_eps = share_below(r.permute, s.eps);
  r.erase_top = mean(erase_top), r.erase_other = mean(erase_rand);
  r.adv_share = share_twin_at_least(r.adv, 0.5), r.adv_share_09 = share_twin_at_least(r.adv, 0.9), r.adv_mean = mean(r.adv);
  for (const auto& v : adv_other) r.adv_share_other_eps.push_back(share_twin_at_least(v, 0.5));

  // Leave-one-out against the attention ranking (and, for comparison, against erasing the weight).
  {
    const auto loo = leave_one_out(model, eval.tokens);
    std::vector<double> taus;
    for (std::size_t i = 0; i < N; ++i) {
      std::vector<double> dp(kT);
      for (std::size_t t = 0; t < kT; ++t) {
        dp[t] = std::abs(loo[i][t] - xs[i].p);
        std::vector<double> erased = xs[i].a;
        const double keep = 1.0 - erased[t];
        erased[t] = 0;
        for (auto& w : erased) w /= keep;
        r.loo_vs_erase = std::max(r.loo_vs_erase, std::abs(loo[i][t] - prob(erased, xs[i].r)));
      }
      taus.push_back(kendall_tau(xs[i].a, dp));
    }
    r.loo_tau = mean(taus);
  }

  // One sentence drawn as heatmaps: the model's attention, the adversarial one, uniform. Of the
  // correctly classified sentences with an adversarial twin at TVD >= 0.7, show the one whose
  // trained attention is most peaked (the most convincing-looking heatmap), preferring twins
  // that put their weight on a neutral word.
  double best = -1;
  for (std::size_t i = 0; i < N; ++i) {
    if (ps[i].adv_tvd < 0.7 || (xs[i].p > 0.5) != (eval.labels[i] == 1)) continue;
    const auto& adv_a = ps[i].adv_a;
    const std::size_t adv_top = std::size_t(std::max_element(adv_a.begin(), adv_a.end()) - adv_a.begin());
    const bool neutral = eval.tokens.values[i * kT + adv_top] >= kNeutral;
    const double score = *std::max_element(xs[i].a.begin(), xs[i].a.end()) + (neutral ? 1.0 : 0.0);
    if (score > best) r.example.index = i, best = score;
  }
  Example& e = r.example;
  e.x = xs[e.index];
  e.adv_a = ps[e.index].adv_a;
  e.tvd = ps[e.index].adv_tvd;
  e.p_adv = prob(e.adv_a, e.x.r);
  e.p_uniform = prob(std::vector<double>(kT, 1.0 / double(kT)), e.x.r);
  for (std::size_t t = 0; t < kT; ++t) {
    const std::int64_t w = eval.tokens.values[e.index * kT + t];
    e.words.push_back(kWords[std::size_t(w)]);
    e.polarity.push_back(w < kNegative ? 1 : w < kNeutral ? -1 : 0);
  }
  return r;
}

std::string fmt(double v, int digits = 3) { return lab::format_number(v, digits); }
std::string percent(double share) {  // 0.391 -> "39.1%"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * share);
  return buf;
}
std::string plain(double v) {  // 0.001 -> "0.001", 0.05 -> "0.05"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
std::string percent_range(const lab::SeedStats& s) { return percent(s.min()) + " to " + percent(s.max()); }
std::string fixed(double v, const char* format) {  // "%.2f", "%+.2f"; no "-0.00"
  char buf[32];
  std::snprintf(buf, sizeof buf, format, std::abs(v) < 0.005 ? 0.0 : v);
  return buf;
}
std::string median_range(const lab::SeedStats& s, int digits = 3) { return fmt(s.median(), digits) + " (" + s.range(digits) + ")"; }

// The example as a Markdown table (token, trained weight, adversarial weight, evidence) and as text.
std::string example_table(const Example& e) {
  std::string s = "| |";
  for (const auto& w : e.words) s += " `" + w + "` |";
  s += "\n|---|";
  for (std::size_t t = 0; t < e.words.size(); ++t) s += "---:|";
  auto row = [&](const std::string& name, const std::vector<double>& v, const char* format) {
    s += "\n| " + name + " |";
    for (double x : v) s += " " + fixed(x, format) + " |";
  };
  row("trained attention", e.x.a, "%.2f");
  row("adversarial", e.adv_a, "%.2f");
  row("evidence r_t", e.x.r, "%+.2f");
  return s + "\n";
}
std::size_t argmax(const std::vector<double>& v) { return std::size_t(std::max_element(v.begin(), v.end()) - v.begin()); }
const char* polarity_word(int p) { return p > 0 ? "a positive word" : p < 0 ? "a negative word" : "a neutral word"; }

std::string example_text(const ModelRun& m) {
  const Example& e = m.example;
  const std::size_t top = argmax(e.x.a), adv_top = argmax(e.adv_a);
  const double r_min = *std::min_element(e.x.r.begin(), e.x.r.end()), r_max = *std::max_element(e.x.r.begin(), e.x.r.end());
  std::string s = example_table(e) + "\nThe trained weights put " + fixed(e.x.a[top], "%.2f") + " on `" + e.words[top] +
                  "` (" + polarity_word(e.polarity[top]) + ", position " + std::to_string(top + 1) + ", evidence " +
                  fixed(e.x.r[top], "%+.2f") + "). The adversarial weights put " + fixed(e.adv_a[adv_top], "%.2f") + " on `" +
                  e.words[adv_top] + "` (" + polarity_word(e.polarity[adv_top]) + ", position " +
                  std::to_string(adv_top + 1) + ", evidence " + fixed(e.x.r[adv_top], "%+.2f") +
                  "), which the trained weights gave " + fixed(e.x.a[adv_top], "%.3f") + ". P(positive) is " + fmt(e.x.p) +
                  " against " + fmt(e.p_adv) + ", with " + percent(e.tvd) + " of the mass moved; uniform weights give " +
                  fmt(e.p_uniform) + ". The evidence across the sentence runs from " + fixed(r_min, "%+.2f") + " to " +
                  fixed(r_max, "%+.2f") + ".\n";
  return s;
}

// The claims a run checks, kept as text too so the chapter can quote what the run printed.
struct Claims {
  lab::Checks checks;
  std::vector<std::string> lines;
  void expect(bool ok, const std::string& claim) {
    checks.expect(ok, claim);
    lines.push_back(std::string(ok ? "[ok]   " : "[FAIL] ") + claim);
  }
  std::string block() const {
    std::string s = "```\n";
    for (const auto& l : lines) s += l + "\n";
    return s + "```\n";
  }
};

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("15_attention_not_explanation", "Perturb a classifier's attention weights and measure how much its output moves");
  cli.steps_help("training steps of each model, one batch of 64 fresh sentences each (default 600; --quick 200)");
  std::size_t seeds = 5;
  Settings s;
  cli.app().add_option("--seeds", seeds, "pairs of models trained, each pair from its own seed (seed, seed+1, ...)")
      ->check(CLI::Range(1, 100));
  cli.app().add_option("--label-noise", s.label_noise, "share of training labels flipped at random (exercise 1)")
      ->check(CLI::Range(0.0, 0.5));
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    s.steps = args.steps_or(600, 200);
    s.n_eval = args.quick ? 400 : 1000;
    s.random_draws = args.quick ? 100 : 300;
    const std::size_t n = seeds;

    std::vector<std::array<ModelRun, 2>> runs;  // [seed][bag, BiGRU]
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint64_t seed = args.seed + k;
      ag::Generator gen(seed);  // initial weights of both models, then the perturbations
      ag::Generator data_gen(lab::derive_seed(seed, lab::kTrainStream)), eval_gen(lab::derive_seed(seed, lab::kEvalStream));
      const Dataset eval = make_data(s.n_eval, eval_gen);
      if (k == 0) {
        std::cout << "Lesson 15: attention is not explanation. Sentences of " << kT
                  << " words; label = the majority polarity. " << n << " seeds, each training both models.\nExample: ";
        for (std::size_t t = 0; t < kT; ++t) std::cout << kWords[std::size_t(eval.tokens.values[t])] << " ";
        std::cout << "-> " << (eval.labels[0] ? "positive" : "negative") << "\n";
      }
      const std::string label = "seed " + std::to_string(seed) + " (" + std::to_string(k + 1) + "/" + std::to_string(n) + ")";
      ModelRun bag = run_model(false, s, eval, gen, data_gen, label);
      ModelRun bigru = run_model(true, s, eval, gen, data_gen, label);
      runs.push_back({std::move(bag), std::move(bigru)});
      std::cout << "seed " << seed << ": twins at TVD >= 0.5 for " << percent(runs.back()[0].adv_share) << " (bag) and "
                << percent(runs.back()[1].adv_share) << " (BiGRU) of sentences\n";
    }
    const auto& first = runs.front();

    // ---- the first seed's examples, as heatmaps and as text ----
    for (const ModelRun& m : first) {
      const Example& e = m.example;
      const std::vector<double> flat(kT, 1.0 / double(kT));
      auto label = [](const std::string& what, double p) { return what + " (P+ = " + lab::format_number(p, 3) + ")"; };
      lab::write_matrix_csv(args.path("example_" + m.slug + ".csv"), {e.x.a, e.adv_a, flat});
      lab::heatmap(args.path("example_" + m.slug + ".png"), args.path("example_" + m.slug + ".csv"),
                   {.title = m.name + ": three heatmaps, one sentence (seed " + std::to_string(args.seed) + ")",
                    .xlabel = "token", .xticks = e.words,
                    .yticks = {label("trained attention", e.x.p), label("adversarial", e.p_adv), label("uniform", e.p_uniform)},
                    .zmin = 0.0, .zmax = 1.0, .width = 1200, .height = 420});
      std::cout << "\n" << m.name << ", seed " << args.seed << ", held-out sentence " << e.index << ":\n  token     ";
      for (const auto& w : e.words) std::printf("%7s", w.c_str());
      std::cout << "\n  attention ";
      for (double v : e.x.a) std::printf("%7.3f", v);
      std::cout << "\n  adversary ";
      for (double v : e.adv_a) std::printf("%7.3f", v);
      std::cout << "\n  evidence  ";
      for (double v : e.x.r) std::printf("%7.2f", v);
      std::cout << "   (log-odds r_t each token gives on its own)\n  P(positive): trained " << fmt(e.x.p, 4)
                << ", adversarial " << fmt(e.p_adv, 4) << ", TVD between the heatmaps " << fmt(e.tvd) << "\n";
    }

    // ---- over the seeds ----
    struct Stats {
      lab::SeedStats accuracy, permute, uniform, permute_within, erase_top, erase_other, erase_ratio, adv, adv_mean, adv_09,
          loo_tau, loo_vs_erase;
      std::vector<lab::SeedStats> adv_eps;  // at 0.001, 0.01, 0.05
    };
    std::array<Stats, 2> st;
    for (int m = 0; m < 2; ++m) {
      st[m].adv_eps.resize(3);
      for (const auto& run : runs) {
        const ModelRun& r = run[m];
        st[m].accuracy.add(r.accuracy), st[m].permute.add(r.permute_median), st[m].uniform.add(r.uniform_median);
        st[m].permute_within.add(r.permute_within_eps), st[m].erase_top.add(r.erase_top);
        st[m].erase_other.add(r.erase_other), st[m].erase_ratio.add(r.erase_top / r.erase_other);
        st[m].adv.add(r.adv_share), st[m].adv_mean.add(r.adv_mean), st[m].adv_09.add(r.adv_share_09);
        st[m].loo_tau.add(r.loo_tau), st[m].loo_vs_erase.add(r.loo_vs_erase);
        st[m].adv_eps[0].add(r.adv_share_other_eps[0]), st[m].adv_eps[1].add(r.adv_share);
        st[m].adv_eps[2].add(r.adv_share_other_eps[1]);
      }
    }
    const std::string seeds_word = std::to_string(n) + (n == 1 ? " seed" : " seeds");
    lab::Table table("What happens to the output when the attention is changed: median (range) over " + seeds_word + ", " +
                         std::to_string(s.n_eval) + " held-out sentences each; dp = |change in P(positive)|",
                     {"measure", first[0].name, first[1].name});
    auto row = [&](const std::string& what, auto get, int digits = 3) {
      table.row({what, median_range(get(st[0]), digits), median_range(get(st[1]), digits)});
    };
    row("held-out accuracy", [](Stats& x) -> lab::SeedStats& { return x.accuracy; });
    row("median dp, permuted", [](Stats& x) -> lab::SeedStats& { return x.permute; });
    row("median dp, uniform", [](Stats& x) -> lab::SeedStats& { return x.uniform; });
    row("share with median permuted dp <= 0.01", [](Stats& x) -> lab::SeedStats& { return x.permute_within; });
    row("mean dp, erase top token", [](Stats& x) -> lab::SeedStats& { return x.erase_top; });
    row("mean dp, erase another token", [](Stats& x) -> lab::SeedStats& { return x.erase_other; });
    row("ratio of the two", [](Stats& x) -> lab::SeedStats& { return x.erase_ratio; });
    row("share with a twin at TVD >= 0.5", [](Stats& x) -> lab::SeedStats& { return x.adv; });
    row("share with a twin at TVD >= 0.9", [](Stats& x) -> lab::SeedStats& { return x.adv_09; });
    row("mean twin TVD", [](Stats& x) -> lab::SeedStats& { return x.adv_mean; });
    std::cout << "\n";
    table.print();
    table.save_markdown(args.path("report.md"));

    lab::Table eps_table("Exercise 2: the share of sentences with a twin at TVD >= 0.5, by tolerance (median (range) over " +
                             seeds_word + ")",
                         {"tolerance |dp| <=", first[0].name, first[1].name});
    const std::vector<double> eps_values = {s.other_eps[0], s.eps, s.other_eps[1]};
    for (std::size_t i = 0; i < 3; ++i)
      eps_table.row({plain(eps_values[i]), median_range(st[0].adv_eps[i]), median_range(st[1].adv_eps[i])});
    lab::Table loo_table("Exercise 3: leave-one-out against the attention ranking (median (range) over " + seeds_word + ")",
                         {"measure", first[0].name, first[1].name});
    loo_table.row({"mean Kendall tau, attention vs leave-one-out |dp|", median_range(st[0].loo_tau), median_range(st[1].loo_tau)});
    loo_table.row({"largest |P(leave word out) - P(erase its weight)|", median_range(st[0].loo_vs_erase, 2),
                   median_range(st[1].loo_vs_erase, 2)});
    std::cout << "\n";
    eps_table.print();
    std::cout << "\n";
    loo_table.print();
    eps_table.save_markdown(args.path("report.md"), true);
    loo_table.save_markdown(args.path("report.md"), true);

    // ---- curves (the first seed's; the adversarial curve of every seed) ----
    lab::CurveLog change_log(args.path("output_change.csv"),
                             {"bag_permute", "bag_uniform", "bigru_permute", "bigru_uniform"}, "threshold");
    double bigru_gap = 0;  // how far apart the BiGRU's permuted and uniform curves get
    for (double e = -4; e <= 0.001; e += 0.125) {
      const double x = std::pow(10.0, e);
      const double bp = share_below(first[1].permute, x), bu = share_below(first[1].uniform, x);
      change_log.log(x, {share_below(first[0].permute, x), share_below(first[0].uniform, x), bp, bu});
      bigru_gap = std::max(bigru_gap, std::abs(bp - bu));
    }
    {
      // The training loss of both models, averaged over 10 steps.
      lab::CurveLog loss_log(args.path("loss.csv"), {"bag", "bigru"});
      auto mean_of_10 = [](const std::vector<double>& v, std::size_t from) {
        return std::accumulate(v.begin() + std::ptrdiff_t(from), v.begin() + std::ptrdiff_t(from + 10), 0.0) / 10.0;
      };
      for (std::size_t i = 0; i + 10 <= first[0].losses.size(); i += 10)
        loss_log.log(double(i + 10), {mean_of_10(first[0].losses, i), mean_of_10(first[1].losses, i)});
    }
    // The adversarial curve: the share of sentences that have a heatmap at least x away (TVD) from
    // the trained one with nearly the same output (|dp| <= eps). adversarial_seeds.csv holds the
    // other seeds, one block each (gnuplot draws each block as its own line).
    {
      lab::CurveLog adv_log(args.path("adversarial.csv"), {"bag", "bigru"}, "tvd");
      for (int i = 0; i <= 20; ++i)
        adv_log.log(0.05 * i, {share_twin_at_least(first[0].adv, 0.05 * i), share_twin_at_least(first[1].adv, 0.05 * i)});
      std::ofstream f(args.path("adversarial_seeds.csv"));
      f << "tvd,bag,bigru\n";
      for (std::size_t k = 1; k < runs.size(); ++k) {
        if (k > 1) f << "\n";
        for (int i = 0; i <= 20; ++i)
          f << lab::format_number(0.05 * i, 6) << "," << lab::format_number(share_twin_at_least(runs[k][0].adv, 0.05 * i), 9)
            << "," << lab::format_number(share_twin_at_least(runs[k][1].adv, 0.05 * i), 9) << "\n";
      }
    }

    lab::PlotOptions po{.title = "How far does the output move when the attention is replaced? (seed " +
                                 std::to_string(args.seed) + ")",
                        .xlabel = "x = change in P(positive)", .ylabel = "share of sentences with change <= x",
                        .logx = true, .ymin = 0.0, .ymax = 1.4, .key = "top left"};
    // The BiGRU's two curves nearly coincide: the permuted one wide and pale, the uniform one
    // dashed on top of it, and the legend says so.
    const bool bigru_coincide = bigru_gap < 0.1;
    const std::string on_top = bigru_coincide ? " (lies on the permuted curve: at most " + fmt(bigru_gap, 1) + " apart)" : "";
    const std::vector<lab::Series> change_series{
        {change_log.path(), "bag_permute", "embeddings + attention: permuted", "threshold", "lines lc rgb '#c0392b'", 2.5},
        {change_log.path(), "bag_uniform", "embeddings + attention: uniform", "threshold", "lines lc rgb '#c0392b'", 2.5, 2},
        {change_log.path(), "bigru_permute", "BiGRU + attention: permuted", "threshold", "lines lc rgb '#9ecae1'", 7},
        {change_log.path(), "bigru_uniform", "BiGRU + attention: uniform" + on_top, "threshold", "lines lc rgb '#08519c'", 2, 2}};
    lab::plot(args.path("output_change.png"), change_series, po);
    const std::string others = runs.size() < 2   ? ""
                               : runs.size() == 2 ? "seed " + std::to_string(args.seed + 1)
                                                  : "seeds " + std::to_string(args.seed + 1) + " to " +
                                                        std::to_string(args.seed + runs.size() - 1);
    std::vector<lab::Series> adv_series{
        {args.path("adversarial.csv"), "bag", "embeddings + attention, seed " + std::to_string(args.seed), "tvd",
         "linespoints pt 7 ps 0.8 lc rgb '#c0392b'", 2.5},
        {args.path("adversarial.csv"), "bigru", "BiGRU + attention, seed " + std::to_string(args.seed), "tvd",
         "linespoints pt 5 ps 0.8 lc rgb '#08519c'", 2.5}};
    if (runs.size() > 1) {
      adv_series.push_back({args.path("adversarial_seeds.csv"), "bag", "embeddings + attention, " + others, "tvd",
                            "lines lc rgb '#e6a19a'", 1});
      adv_series.push_back({args.path("adversarial_seeds.csv"), "bigru", "BiGRU + attention, " + others, "tvd",
                            "lines lc rgb '#8fb3de'", 1});
    }
    lab::plot(args.path("adversarial.png"), adv_series,
              {.title = "A different heatmap, the same output (|change in P(positive)| <= 0.01)",
               .xlabel = "x = share of the attention mass moved (TVD)",
               .ylabel = "share of sentences with such a heatmap", .ymin = 0.0, .ymax = 1.3});
    std::cout << "\nShare of sentences whose output moves by <= x when the attention is permuted (seed " << args.seed << "):\n";
    lab::plot_terminal({change_series[0], change_series[2]}, po);
    std::cout << "Wrote " << args.out.string() << "/{output_change,adversarial,example_bag,example_bigru}.png and report.md\n";

    // ---- the claims, checked ----
    Claims claims;
    auto all = [&](const lab::SeedStats& v, auto pred) { return v.count(pred) == n; };
    const std::size_t learn = st[0].accuracy.count([](double a) { return a > 0.9; }) +
                              st[1].accuracy.count([](double a) { return a > 0.9; });
    claims.expect(learn == 2 * n, "both classifiers learn the task (median held-out accuracy " + fmt(st[0].accuracy.median()) +
                                      " and " + fmt(st[1].accuracy.median()) + "): above 0.9 for both models " +
                                      lab::in_seeds(learn / 2, n));
    for (int m = 0; m < 2; ++m) {
      const std::size_t k = st[m].adv.count([](double v) { return v > 0.2; });
      claims.expect(k == n, first[m].name + ": a heatmap with half the mass moved gives the same output for " +
                                percent(st[m].adv.median()) + " of sentences (median), for over 20% " + lab::in_seeds(k, n));
    }
    std::size_t more_twins = 0, less_sensitive = 0;
    for (const auto& run : runs) {
      more_twins += run[1].adv_share > run[0].adv_share;
      less_sensitive += run[1].permute_median < run[0].permute_median;
    }
    claims.expect(2 * more_twins > n, "the BiGRU has more such twins than the bag model " + lab::in_seeds(more_twins, n));
    for (int m = 0; m < 2; ++m) {
      const std::size_t k = st[m].erase_ratio.count([](double v) { return v > 3; });
      claims.expect(k == n, first[m].name + ": erasing the most-attended token moves the output " +
                                fmt(st[m].erase_ratio.median(), 2) + "x more than erasing another (median), over 3x " +
                                lab::in_seeds(k, n));
    }
    claims.expect(2 * less_sensitive > n,
                  "a contextual encoder (BiGRU) makes the output less sensitive to permuted attention " +
                      lab::in_seeds(less_sensitive, n));
    claims.expect(all(st[0].loo_vs_erase, [](double v) { return v < 1e-4; }),
                  "embeddings + attention: leaving a word out gives the output of erasing its weight (largest difference " +
                      fmt(st[0].loo_vs_erase.max(), 2) + ")");

    // ---- what the chapter quotes ----
    lab::Chapter chapter(args);
    chapter.text("example_bag", example_text(first[0]));
    chapter.text("example_bigru", example_text(first[1]));
    chapter.table("results", table);
    chapter.text("reading",
                 "- **Many heatmaps, one answer.** For " + percent(st[0].adv.median()) + " of sentences (bag; " +
                     percent_range(st[0].adv) + " over the seeds) and " + percent(st[1].adv.median()) + " (BiGRU; " +
                     percent_range(st[1].adv) + "), the search finds a heatmap with at least half the mass moved and the "
                     "output within 0.01. The BiGRU has more such twins " + lab::in_seeds(more_twins, n) +
                     ", and its curve stays higher out to TVD 0.9 (" + percent(st[1].adv_09.median()) +
                     " of sentences still have a twin that moved 90% of the mass, against " + percent(st[0].adv_09.median()) +
                     " for the bag). When every state has read the whole sentence, many positions carry the same evidence, "
                     "and the weights can sit on any of them. This is Jain & Wallace's finding for BiLSTMs.\n"
                     "- **But the weights are not noise.** Shuffling them moves the output by a median " +
                     fmt(st[0].permute.median()) + " (bag) and " + fmt(st[1].permute.median()) +
                     " (BiGRU), flattening them by " + fmt(st[0].uniform.median()) + " and " + fmt(st[1].uniform.median()) +
                     ". " + (st[0].permute_within.max() == 0
                                ? std::string("In the bag model no sentence's median shuffle stays within 0.01, in any seed")
                                : "In the bag model the share of sentences whose median shuffle stays within 0.01 is " +
                                      median_range(st[0].permute_within)) +
                     ". Removing the most-attended token moves P " +
                     fmt(st[0].erase_ratio.median(), 2) + "x more than removing another token (bag, " +
                     fmt(st[0].erase_top.median()) + " vs " + fmt(st[0].erase_other.median()) + "), and " +
                     fmt(st[1].erase_ratio.median(), 2) + "x more for the BiGRU (" + fmt(st[1].erase_top.median()) + " vs " +
                     fmt(st[1].erase_other.median()) + "; medians). The trained weights do rank the tokens that matter. "
                     "This is Wiegreffe & Pinter's point: the adversarial twins are found one sentence at a time, with "
                     "the rest of the model frozen. They are not weights any trained model would produce.\n"
                     "- **The BiGRU is less sensitive to its own attention** (median shuffle " + fmt(st[1].permute.median()) +
                     " vs " + fmt(st[0].permute.median()) + "; less " + lab::in_seeds(less_sensitive, n) +
                     "). Its evidence is spread along the sentence, so where the weight sits matters less.\n");
    chapter.text("checks", claims.block());
    std::size_t bag_more_eps_sensitive = 0, bag_higher_tau = 0;
    for (const auto& run : runs) {
      const auto growth = [](const ModelRun& r) { return r.adv_share_other_eps[1] / std::max(r.adv_share_other_eps[0], 1e-9); };
      bag_more_eps_sensitive += growth(run[0]) > growth(run[1]);
      bag_higher_tau += run[0].loo_tau > run[1].loo_tau;
    }
    chapter.table("exercise_eps", eps_table);
    chapter.text("exercise_eps_reading",
                 "From a tolerance of " + plain(s.other_eps[0]) + " to " + plain(s.other_eps[1]) + " the bag model's share grows " +
                     fmt(st[0].adv_eps[2].median() / st[0].adv_eps[0].median(), 2) + "-fold (medians), the BiGRU's " +
                     fmt(st[1].adv_eps[2].median() / st[1].adv_eps[0].median(), 2) +
                     "-fold; the bag's grows by the larger factor " + lab::in_seeds(bag_more_eps_sensitive, n) + ".");
    chapter.table("exercise_loo", loo_table);
    chapter.text("exercise_loo_reading", "Kendall's tau is higher for the bag model than for the BiGRU " +
                                             lab::in_seeds(bag_higher_tau, n) + ".");
    for (const char* png : {"example_bag.png", "example_bigru.png", "adversarial.png", "output_change.png"})
      chapter.figure(png);
    return claims.checks.report();
  });
}
