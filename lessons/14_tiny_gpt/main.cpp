// Lesson 14: a tiny GPT.
//
// A decoder-only Transformer (Radford et al. 2018, 2019) reads characters and predicts the next
// one at every position. The causal mask lets position t see 0..t only, so one forward pass over
// a window of T characters gives T predictions, each from its own past. Trained on 14 KB of
// Shakespeare (corpus.txt), it then writes text one character at a time, sampling from
// softmax(logits / temperature).
//
// A claim about training is read from several seeds (--seeds, default 5): each trains its own
// model from its own initial weights, batches and dropout, and the chapter quotes the median and
// the range; the first seed's curves and samples are the ones shown.
//
// Shape legend: B batch, T context length, D model width, H heads, L layers, V vocabulary
// (the distinct characters of the corpus).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/labkit.hpp"
#include "common/resume.hpp"
#include "nn/init.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace {

using ag::Tensor;

// ---------------------------------------------------------------------------------------------
// 1) The data: characters <-> ids, a training part and a held-out part.

struct Vocab {
  std::string chars;             // id -> character, sorted
  std::vector<int> id = std::vector<int>(256, -1);  // character -> id, -1 if unknown
  explicit Vocab(const std::string& text) {
    std::set<unsigned char> seen(text.begin(), text.end());
    for (unsigned char c : seen) id[c] = int(chars.size()), chars.push_back(char(c));
  }
  std::size_t size() const { return chars.size(); }
  std::vector<std::int64_t> encode(const std::string& s) const {
    std::vector<std::int64_t> out;
    for (unsigned char c : s) out.push_back(id[c]);
    return out;
  }
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) ag::fail("cannot read the corpus '", p.string(), "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The corpus sits next to this source file: look where a learner runs from (the repository root,
// or the build directory), then beside the source file this program was compiled from.
std::filesystem::path find_corpus() {
  const std::filesystem::path beside_source = std::filesystem::path(__FILE__).parent_path() / "corpus.txt";
  for (const std::filesystem::path& p : {std::filesystem::path("lessons/14_tiny_gpt/corpus.txt"),
                                        std::filesystem::path("../lessons/14_tiny_gpt/corpus.txt"), beside_source})
    if (std::filesystem::exists(p)) return p;
  ag::fail("corpus.txt not found: run from the repository root (./lab run 14) or pass --corpus PATH");
}

// B windows of T + 1 ids starting at `starts`: inputs are ids [s, s+T), targets ids [s+1, s+T+1).
struct Batch {
  ag::Indices inputs, targets;  // [B, T] each
};
Batch make_batch(const std::vector<std::int64_t>& ids, const std::vector<std::size_t>& starts, std::size_t T) {
  std::vector<std::int64_t> x, y;
  for (std::size_t s : starts)
    for (std::size_t t = 0; t < T; ++t) x.push_back(ids[s + t]), y.push_back(ids[s + t + 1]);
  const ag::Shape shape{starts.size(), T};
  return {ag::Indices(x, shape), ag::Indices(y, shape)};
}

// ---------------------------------------------------------------------------------------------
// 2) The model: token embedding + learned positions -> L pre-LN blocks with a causal mask ->
//    final LayerNorm -> Linear to V logits. nn::TransformerEncoder with norm_first = true is
//    exactly GPT-2's block stack (self-attention and MLP, each as x + f(LN(x)), then a last LN).
struct GPTOptions {
  std::size_t vocab = 0, context = 64, d_model = 64, heads = 4, layers = 2;
  double dropout = 0.1;
  bool causal = true;  // false: no mask, every position sees the whole window (exercise 1)
};

class TinyGPT : public nn::Module {
 public:
  TinyGPT(const GPTOptions& o, ag::Generator& gen) : o_(o) {
    tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(o.vocab, o.d_model, gen));
    pos_emb = register_module("pos_emb", std::make_shared<nn::LearnedPositionalEncoding>(o.d_model, o.context, gen));
    nn::TransformerOptions t{.d_model = o.d_model, .num_heads = o.heads, .dim_feedforward = 4 * o.d_model,
                             .dropout = o.dropout, .activation = nn::Activation::gelu_tanh, .norm_first = true};  // GPT-2's GELU
    blocks = register_module("blocks", std::make_shared<nn::TransformerEncoder>(t, o.layers, gen));  // ends in LN
    lm_head = register_module("lm_head", std::make_shared<nn::Linear>(o.d_model, o.vocab, gen));
    ag::NoGrad ng;
    nn::normal_(tok_emb->weight, gen, 0.0, 0.02);  // GPT-2's init: token embeddings ~ N(0, 0.02^2)
    for (std::size_t T = 1; T <= o.context; ++T) masks_.push_back(nn::causal_mask(T));
  }
  // ids: [B, T] with T <= context -> logits [B, T, V]
  Tensor forward(const ag::Indices& ids) {
    const std::size_t T = ids.shape[1];
    Tensor x = pos_emb->forward(tok_emb->forward(ids));  // [B, T, D]
    x = blocks->forward(x, o_.causal ? masks_[T - 1] : ag::Mask{});  // position t attends to 0..t only
    return lm_head->forward(x);                          // [B, T, V]
  }
  std::string describe() const override { return "TinyGPT"; }
  const GPTOptions& options() const { return o_; }

  std::shared_ptr<nn::Embedding> tok_emb;
  std::shared_ptr<nn::LearnedPositionalEncoding> pos_emb;
  std::shared_ptr<nn::TransformerEncoder> blocks;
  std::shared_ptr<nn::Linear> lm_head;

 private:
  GPTOptions o_;
  std::vector<ag::Mask> masks_;  // causal masks [T, T] for T = 1..context
};

// Mean cross-entropy (nats per character) of the windows of `ids` that start at `starts`
// (T + 1 ids each), under ag::NoGrad in eval mode (no dropout).
double evaluate(TinyGPT& model, const std::vector<std::int64_t>& ids, const std::vector<std::size_t>& starts,
                std::size_t T, std::size_t batch = 64) {
  ag::NoGrad ng;
  model.eval();
  double total = 0;
  for (std::size_t i = 0; i < starts.size(); i += batch) {
    std::vector<std::size_t> chunk(starts.begin() + std::ptrdiff_t(i),
                                   starts.begin() + std::ptrdiff_t(std::min(starts.size(), i + batch)));
    const Batch b = make_batch(ids, chunk, T);
    total += ag::cross_entropy(model.forward(b.inputs), b.targets).item() * double(chunk.size());
  }
  model.train();
  return total / double(starts.size());
}
// The windows that cover a text once: starts 0, T, 2T, ... (every character predicted once).
std::vector<std::size_t> all_windows(std::size_t size, std::size_t T) {
  std::vector<std::size_t> starts;
  for (std::size_t s = 0; s + T + 1 <= size; s += T) starts.push_back(s);
  return starts;
}
// `count` windows spread evenly over a text: a fixed sample of the training text, as large as the
// held-out text, to draw the training curve without evaluating all of it at every point.
std::vector<std::size_t> spread_windows(std::size_t size, std::size_t T, std::size_t count) {
  const std::vector<std::size_t> all = all_windows(size, T);
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < count && i < all.size(); ++i) starts.push_back(all[i * all.size() / count]);
  return starts;
}

// ---------------------------------------------------------------------------------------------
// 3) Sampling: feed the last <= T characters, turn the last position's logits into
//    p = softmax(logits / temperature), draw the next character, append, repeat.
//    temperature < 1 sharpens p (safer, more repetitive), > 1 flattens it (bolder, more errors).
std::string sample(TinyGPT& model, const Vocab& vocab, const std::string& prompt, std::size_t length,
                   double temperature, ag::Generator& gen) {
  ag::NoGrad ng;
  model.eval();
  const std::size_t T = model.options().context;
  std::vector<std::int64_t> ids = vocab.encode(prompt);
  std::string out = prompt;
  for (std::size_t i = 0; i < length; ++i) {
    const std::size_t from = ids.size() > T ? ids.size() - T : 0;
    const std::vector<std::int64_t> window(ids.begin() + std::ptrdiff_t(from), ids.end());
    const Tensor logits = model.forward(ag::Indices(window, {1, window.size()}));  // [1, t, V]
    const Tensor last = ag::select(ag::select(logits, 0, 0), 0, std::int64_t(window.size()) - 1);  // [V]
    const std::vector<double> p = ag::softmax(last * (1.0 / temperature)).to_vector();
    double u = gen.uniform(), acc = 0;
    std::size_t next = p.size() - 1;
    for (std::size_t c = 0; c < p.size(); ++c)
      if ((acc += p[c]) > u) {
        next = c;
        break;
      }
    ids.push_back(std::int64_t(next));
    out.push_back(vocab.chars[next]);
  }
  model.train();
  return out;
}

// The words of a text (runs of letters, lower-cased), in order.
std::vector<std::string> word_list(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) w.push_back(char(std::tolower(static_cast<unsigned char>(c))));
    else if (!w.empty()) out.push_back(w), w.clear();
  }
  return out;
}
// The share of the words of `text` that also occur in the corpus: a crude measure of how much of
// a sample is real (Shakespeare's) English.
double known_word_share(const std::string& text, const std::set<std::string>& corpus_words) {
  const std::vector<std::string> words = word_list(text);
  std::size_t known = 0;
  for (const auto& w : words) known += corpus_words.count(w);
  return words.empty() ? 0.0 : double(known) / double(words.size());
}

// ---------------------------------------------------------------------------------------------
// 4) One training run (one seed): AdamW, 5% warmup then cosine decay, clipping; the curves; the
//    samples at three temperatures.
struct Text {
  std::vector<std::int64_t> train, heldout;
  double uniform = 0, unigram = 0;  // the two reference losses (nats per character)
};
struct TrainOptions {
  GPTOptions model;
  std::size_t batch = 16;
  std::int64_t steps = 600, eval_every = 50;
  std::size_t sample_length = 400;
};
struct CurvePoint {
  std::int64_t step;
  double minibatch, train, heldout;  // minibatch: smoothed training loss (dropout on); train, heldout: eval mode
};
struct Sampled {
  double temperature;
  std::string text;   // prompt + sample
  double known = 0;   // the share of its words that occur in the corpus
  std::size_t distinct = 0;  // distinct characters it uses
};
struct SeedRun {
  std::uint64_t seed = 0;
  std::size_t parameters = 0;
  std::vector<CurvePoint> curve;
  double train_loss = 0, heldout_loss = 0;  // after training, on the whole texts, eval mode
  std::int64_t below_unigram = -1;          // the first evaluated step with held-out < unigram (-1: never)
  std::int64_t late_from = 0;               // the step that starts the last third of training
  double late_train_drop = 0, late_heldout_drop = 0;  // how much each fell over the last third
  std::vector<Sampled> samples;
};

const std::vector<double> kTemperatures = {0.5, 1.0, 1.5};
const std::string kPrompt = "MENENIUS:\n";

// What a resumed run must share with the saved one (load_training_state refuses any difference).
nn::Metadata run_config(const TrainOptions& o, const Text& text, std::uint64_t seed) {
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a of the training text: the same corpus
  for (auto id : text.train) hash = (hash ^ std::uint64_t(id)) * 1099511628211ull;
  const GPTOptions& m = o.model;
  return {{"vocab", std::to_string(m.vocab)},     {"context", std::to_string(m.context)}, {"d_model", std::to_string(m.d_model)},
          {"heads", std::to_string(m.heads)},     {"layers", std::to_string(m.layers)},   {"dropout", lab::encode_doubles({m.dropout})},
          {"causal", m.causal ? "true" : "false"}, {"batch", std::to_string(o.batch)},     {"steps", std::to_string(o.steps)},
          {"eval_every", std::to_string(o.eval_every)}, {"seed", std::to_string(seed)},  {"corpus_fnv1a", std::to_string(hash)}};
}

SeedRun train_seed(const TrainOptions& o, const Text& text, const Vocab& vocab, const std::set<std::string>& corpus_words,
                   std::uint64_t seed, const std::string& label, lab::ResumableRun& saver) {
  SeedRun r;
  r.seed = seed;
  ag::Generator gen(seed);  // initial weights, dropout seeds, batches, samples
  TinyGPT model(o.model, gen);
  r.parameters = model.num_parameters();
  const std::size_t T = o.model.context;
  const std::vector<std::size_t> heldout_windows = all_windows(text.heldout.size(), T);
  const std::vector<std::size_t> train_sample = spread_windows(text.train.size(), T, heldout_windows.size());

  nn::AdamW opt(model.parameters(), {.lr = 3e-3, .weight_decay = 0.01});
  nn::CosineSchedule schedule(3e-3, o.steps, o.steps / 20, 3e-4);
  double minibatch = 0, heldout = 0;
  // --save-every / --resume: the state holds gen (the batches and samples still to come) and the
  // curve so far; the model's dropout generators are found by the model itself.
  nn::TrainingState state{.step = 0, .generators = {{"stream", &gen}}, .config = run_config(o, text, seed), .extra = {}};
  if (saver.restore(model, opt, state)) {
    const std::vector<double> curve = lab::decode_doubles(state.extra.at("curve"));
    for (std::size_t i = 0; i + 3 < curve.size(); i += 4) r.curve.push_back({std::int64_t(curve[i]), curve[i + 1], curve[i + 2], curve[i + 3]});
    minibatch = lab::decode_doubles(state.extra.at("minibatch")).at(0);
    heldout = lab::decode_doubles(state.extra.at("heldout")).at(0);
    r.below_unigram = std::stoll(state.extra.at("below_unigram"));
  } else {
    minibatch = evaluate(model, text.train, train_sample, T), heldout = evaluate(model, text.heldout, heldout_windows, T);
    r.curve.push_back({0, minibatch, minibatch, heldout});
  }
  lab::Progress bar(o.steps, label);
  for (std::int64_t step = state.step + 1; step <= o.steps; ++step) {
    std::vector<std::size_t> starts(o.batch);
    for (auto& s : starts) s = std::size_t(gen.integer(0, std::int64_t(text.train.size() - T - 1)));
    const Batch b = make_batch(text.train, starts, T);
    opt.zero_grad();
    const Tensor loss = ag::cross_entropy(model.forward(b.inputs), b.targets);  // mean over B * T predictions
    loss.backward();
    nn::clip_grad_norm(model.parameters(), 1.0);
    opt.set_lr(schedule.lr(opt.steps() + 1));
    opt.step();
    minibatch = 0.9 * minibatch + 0.1 * loss.item();  // smoothed for the curve
    // Evaluate every 10 steps up to step 100 (where the loss falls fastest), then every eval_every.
    if ((step <= 100 && step % 10 == 0) || step % o.eval_every == 0 || step == o.steps) {
      heldout = evaluate(model, text.heldout, heldout_windows, T);
      r.curve.push_back({step, minibatch, evaluate(model, text.train, train_sample, T), heldout});
      if (r.below_unigram < 0 && heldout < text.unigram) r.below_unigram = step;
    }
    bar.update(step, {{"loss", minibatch}, {"held-out", heldout}});
    if (saver.due(step, o.steps)) {
      std::vector<double> curve;
      for (const auto& c : r.curve) curve.insert(curve.end(), {double(c.step), c.minibatch, c.train, c.heldout});
      state.step = step;
      state.extra = {{"curve", lab::encode_doubles(curve)}, {"below_unigram", std::to_string(r.below_unigram)},
                     {"minibatch", lab::encode_doubles({minibatch})}, {"heldout", lab::encode_doubles({heldout})}};
      saver.save(model, opt, state);
    }
  }
  bar.finish();
  r.train_loss = evaluate(model, text.train, all_windows(text.train.size(), T), T);
  r.heldout_loss = heldout;
  // The last third of training: from the first evaluated step at or after 2/3 of the steps.
  const CurvePoint* from = &r.curve.back();
  for (const auto& c : r.curve)
    if (3 * c.step >= 2 * o.steps) {
      from = &c;
      break;
    }
  r.late_from = from->step;
  r.late_train_drop = from->train - r.curve.back().train;
  r.late_heldout_drop = from->heldout - r.curve.back().heldout;

  for (double temperature : kTemperatures) {
    Sampled s{temperature, sample(model, vocab, kPrompt, o.sample_length, temperature, gen)};
    s.known = known_word_share(s.text.substr(kPrompt.size()), corpus_words);
    s.distinct = std::set<char>(s.text.begin(), s.text.end()).size();
    r.samples.push_back(s);
  }
  return r;
}

// 14592 -> "14,592"
std::string thousands(std::size_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}
std::string fmt(double v, int digits = 3) { return lab::format_number(v, digits); }
// "1.99 (1.95 to 2.03)": the median and the range of one measurement over the seeds.
std::string median_range(const lab::SeedStats& s, int digits = 3) { return fmt(s.median(), digits) + " (" + s.range(digits) + ")"; }
// 20 -> "20", 22.5 -> "22.5" (the median step of an even number of seeds)
std::string steps_text(double step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", step);
  return buf;
}
std::string temperature_text(double t) {  // 0.5 -> "0.5", 1 -> "1.0"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", t);
  return buf;
}
// "in 4 of 5 seeds" / "in every seed (5 of 5)"
std::string in_seeds(std::size_t k, std::size_t n) {
  if (k == n) return "in every seed (" + std::to_string(k) + " of " + std::to_string(n) + ")";
  return "in " + std::to_string(k) + " of " + std::to_string(n) + " seeds";
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
  lab::Cli cli("14_tiny_gpt", "A character-level GPT trained on 14 KB of Shakespeare; samples at three temperatures");
  cli.steps_help("training steps of each seed's model (default 600; --quick 120)");
  std::string corpus_path;
  std::size_t seeds = 0, context = 64;
  bool no_mask = false;
  cli.app().add_option("--corpus", corpus_path, "text file to train on (default: lessons/14_tiny_gpt/corpus.txt)");
  cli.app().add_option("--seeds", seeds, "models trained, each from its own seed (seed, seed+1, ...); 0 = 5, --quick 3")
      ->check(CLI::Range(0, 100));
  cli.app().add_option("--context", context, "context length T: the characters the model sees (exercise 2)")
      ->check(CLI::Range(2, 1024));
  cli.app().add_flag("--no-mask", no_mask, "train and sample without the causal mask (exercise 1)");
  lab::ResumeOptions resume;
  lab::add_resume_options(cli, resume);
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    const std::string corpus = read_file(corpus_path.empty() ? find_corpus() : std::filesystem::path(corpus_path));
    const Vocab vocab(corpus);
    const std::vector<std::int64_t> ids = vocab.encode(corpus);
    const std::size_t split = ids.size() * 9 / 10;  // first 90% to train on, the last 10% held out
    Text text;
    text.train.assign(ids.begin(), ids.begin() + std::ptrdiff_t(split));
    text.heldout.assign(ids.begin() + std::ptrdiff_t(split), ids.end());
    text.uniform = std::log(double(vocab.size()));
    {  // the unigram baseline: predict every character from its frequency in the training text
      std::vector<double> freq(vocab.size(), 1.0);  // add-one smoothing
      for (auto i : text.train) freq[std::size_t(i)] += 1;
      const double total = std::accumulate(freq.begin(), freq.end(), 0.0);
      for (auto i : text.heldout) text.unigram -= std::log(freq[std::size_t(i)] / total);
      text.unigram /= double(text.heldout.size());
    }
    if (text.heldout.size() < context + 1) ag::fail("--context ", context, " is longer than the held-out text");
    const std::vector<std::string> corpus_word_list = word_list(corpus);
    const std::set<std::string> corpus_words(corpus_word_list.begin(), corpus_word_list.end());

    TrainOptions o;
    o.model = {.vocab = vocab.size(), .context = context, .d_model = args.quick ? 32u : 64u, .heads = 4, .layers = 2,
               .dropout = 0.1, .causal = !no_mask};
    o.steps = args.steps_or(600, 120);
    o.eval_every = args.quick ? 20 : 50;
    o.sample_length = args.quick ? 100 : 400;
    const std::size_t n_seeds = seeds ? seeds : (args.quick ? 3 : 5);
    const double ln2 = std::log(2.0);

    std::cout << "Lesson 14: a tiny GPT on " << corpus.size() << " characters (" << text.train.size() << " to train on, "
              << text.heldout.size() << " held out), V = " << vocab.size() << " characters\n"
              << "model: D = " << o.model.d_model << ", H = " << o.model.heads << ", L = " << o.model.layers
              << ", context T = " << o.model.context << (no_mask ? ", NO causal mask" : "") << "; " << n_seeds
              << " seeds of " << o.steps << " steps each\n"
              << "uniform guess: " << fmt(text.uniform, 4) << " nats/char; unigram frequencies: " << fmt(text.unigram, 4)
              << " nats/char\n";

    std::vector<SeedRun> runs;
    for (std::size_t k = 0; k < n_seeds; ++k) {
      const std::uint64_t seed = args.seed + k;
      lab::ResumableRun saver(args, resume, "seed" + std::to_string(seed));
      runs.push_back(train_seed(o, text, vocab, corpus_words, seed,
                                "seed " + std::to_string(seed) + " (" + std::to_string(k + 1) + "/" + std::to_string(n_seeds) + ")", saver));
      const SeedRun& r = runs.back();
      std::cout << "seed " << seed << ": train " << fmt(r.train_loss, 4) << ", held-out " << fmt(r.heldout_loss, 4)
                << " nats/char\n";
    }
    const SeedRun& main_run = runs.front();  // the curves and samples shown

    // ---- the first seed's samples ----
    std::ofstream samples_file(args.path("samples.txt"));
    for (const auto& s : main_run.samples) {
      std::cout << "\n---- seed " << main_run.seed << ", temperature " << s.temperature << " ----\n" << s.text << "\n";
      samples_file << "---- seed " << main_run.seed << ", temperature " << s.temperature << " ----\n" << s.text << "\n\n";
    }

    // ---- over the seeds ----
    lab::SeedStats train_loss, heldout_loss, gap, below, late_train, late_heldout;
    std::vector<lab::SeedStats> known(kTemperatures.size()), distinct(kTemperatures.size());
    for (const auto& r : runs) {
      train_loss.add(r.train_loss), heldout_loss.add(r.heldout_loss), gap.add(r.heldout_loss - r.train_loss);
      below.add(r.below_unigram < 0 ? double(o.steps + 1) : double(r.below_unigram));
      late_train.add(r.late_train_drop), late_heldout.add(r.late_heldout_drop);
      for (std::size_t i = 0; i < kTemperatures.size(); ++i)
        known[i].add(r.samples[i].known), distinct[i].add(double(r.samples[i].distinct));
    }
    const std::size_t n = runs.size();
    const std::string seeds_word = std::to_string(n) + (n == 1 ? " seed" : " seeds");

    lab::Table t("Tiny GPT after " + std::to_string(o.steps) + " steps (loss in nats per character; " + seeds_word + ")",
                 {"model", "train loss", "held-out loss", "held-out bits/char"});
    t.row({"uniform over V", text.uniform, text.uniform, text.uniform / ln2});
    t.row({"unigram frequencies", "", text.unigram, text.unigram / ln2});
    t.row({"tiny GPT, seed " + std::to_string(main_run.seed) + " (the curves and samples)", main_run.train_loss,
           main_run.heldout_loss, main_run.heldout_loss / ln2});
    t.row({"tiny GPT, median of " + seeds_word, train_loss.median(), heldout_loss.median(), heldout_loss.median() / ln2});
    t.row({"tiny GPT, range over " + seeds_word, train_loss.range(), heldout_loss.range(),
           fmt(heldout_loss.min() / ln2) + " to " + fmt(heldout_loss.max() / ln2)});

    lab::Table ps("Each seed (eval mode; the last third of training starts at step " + std::to_string(main_run.late_from) + ")",
                  {"seed", "held-out < unigram from step", "train loss", "held-out loss", "gap", "last third: train fell by",
                   "held-out fell by"});
    for (const auto& r : runs)
      ps.row({long(r.seed), r.below_unigram < 0 ? lab::Cell("never") : lab::Cell(long(r.below_unigram)), r.train_loss,
              r.heldout_loss, r.heldout_loss - r.train_loss, r.late_train_drop, r.late_heldout_drop});

    lab::Table st("Samples: " + std::to_string(o.sample_length) + " characters after \"MENENIUS:\\n\"",
                  {"temperature", "known words, seed " + std::to_string(main_run.seed), "known words, median (range)",
                   "distinct chars, seed " + std::to_string(main_run.seed), "distinct chars, median (range)"});
    for (std::size_t i = 0; i < kTemperatures.size(); ++i)
      st.row({temperature_text(kTemperatures[i]), main_run.samples[i].known, median_range(known[i]), long(main_run.samples[i].distinct),
              median_range(distinct[i], 2)});
    std::cout << "\n";
    t.print();
    std::cout << "\n";
    ps.print();
    std::cout << "\n";
    st.print();
    t.save_markdown(args.path("report.md"));
    ps.save_markdown(args.path("report.md"), true);
    st.save_markdown(args.path("report.md"), true);

    // ---- curves: the first seed's in loss.csv, every seed's in seeds.csv (one block per seed) ----
    {
      lab::CurveLog log(args.path("loss.csv"), {"minibatch", "train", "heldout", "uniform", "unigram"});
      for (const auto& c : main_run.curve) log.log(double(c.step), {c.minibatch, c.train, c.heldout, text.uniform, text.unigram});
      std::ofstream f(args.path("seeds.csv"));
      f << "step,train,heldout\n";  // a blank line between seeds: gnuplot draws each seed as its own line
      f << std::setprecision(9);
      for (std::size_t k = 1; k < runs.size(); ++k) {
        if (k > 1) f << "\n";
        for (const auto& c : runs[k].curve) f << c.step << "," << c.train << "," << c.heldout << "\n";
      }
    }
    const std::filesystem::path loss_csv = args.path("loss.csv"), seeds_csv = args.path("seeds.csv");
    lab::PlotOptions po{.title = "Tiny GPT on Shakespeare: loss per character", .xlabel = "step",
                        .ylabel = "cross-entropy (nats per character)", .ymin = 0.0, .ymax = text.uniform + 3.0};
    // (the legend sits in the empty band above the uniform line)
    const std::string s0 = "seed " + std::to_string(main_run.seed);
    std::vector<lab::Series> curves{
        {loss_csv, "minibatch", s0 + ": minibatch loss (dropout on, smoothed)", "step", "lines lc rgb '#999999'", 1.5},
        {loss_csv, "train", s0 + ": training text", "step", "lines lc rgb '#1f5fa8'", 2.5},
        {loss_csv, "heldout", s0 + ": held-out text", "step", "lines lc rgb '#c0392b'", 2.5}};
    if (runs.size() > 1) {
      const std::string others =
          runs.size() == 2 ? "seed " + std::to_string(runs[1].seed)
                           : "seeds " + std::to_string(runs[1].seed) + (runs.size() == 3 ? " and " : " to ") +
                                 std::to_string(runs.back().seed);
      curves.push_back({seeds_csv, "train", others + ": training text", "step", "lines lc rgb '#8fb3de'", 1});
      curves.push_back({seeds_csv, "heldout", others + ": held-out text", "step", "lines lc rgb '#e6a19a'", 1});
    }
    curves.push_back({loss_csv, "uniform", "uniform guess, log V", "step", "lines lc rgb '#555555'", 1.5, 2});
    curves.push_back({loss_csv, "unigram", "character frequencies (unigram)", "step", "lines lc rgb '#555555'", 1.5, 4});
    lab::plot(args.path("loss.png"), curves, po);
    std::cout << "\nLoss per character, seed " << main_run.seed << " (eval mode):\n";
    lab::plot_terminal({{loss_csv, "train", "training text"},
                        {loss_csv, "heldout", "held-out text"},
                        {loss_csv, "unigram", "unigram baseline"}},
                       po);
    std::cout << "Wrote " << args.out.string() << "/{loss.csv,seeds.csv,loss.png,loss.svg,samples.txt,report.md}\n";

    // ---- the claims, checked ----
    Claims claims;
    const std::size_t beats_unigram = heldout_loss.count([&](double v) { return v < text.unigram; });
    const std::size_t well_below = heldout_loss.count([&](double v) { return v < 0.75 * text.uniform; });
    const std::size_t early = below.count([&](double v) { return v <= double(o.steps) / 4; });
    const std::size_t gap_open = gap.count([](double v) { return v > 0; });
    std::size_t train_faster = 0, cooler_known = 0, hotter_distinct = 0;
    for (const auto& r : runs) {
      train_faster += r.late_train_drop > r.late_heldout_drop;
      cooler_known += r.samples.front().known > r.samples.back().known;
      hotter_distinct += r.samples.back().distinct > r.samples.front().distinct;
    }
    claims.expect(well_below == n, "held-out loss " + median_range(heldout_loss) + " is below 75% of the uniform log V = " +
                                       fmt(text.uniform) + " " + in_seeds(well_below, n));
    claims.expect(beats_unigram == n && early == n,
                  "the model beats character frequencies alone (" + fmt(text.unigram) + ") on held-out text " +
                      in_seeds(beats_unigram, n) + ", within the first quarter of training " + in_seeds(early, n));
    // In --quick (120 steps) both losses still fall at nearly the same rate: there the second half
    // of this claim is checked in most seeds rather than in every one.
    claims.expect(gap_open == n && (args.quick ? 2 * train_faster > n : train_faster == n),
                  "the training text ends with a lower loss than the held-out text " + in_seeds(gap_open, n) +
                      ", and over the last third of training its loss falls further " + in_seeds(train_faster, n));
    claims.expect(cooler_known == n && hotter_distinct == n,
                  "temperature 0.5 writes more corpus words than 1.5 " + in_seeds(cooler_known, n) +
                      "; 1.5 uses more distinct characters " + in_seeds(hotter_distinct, n));

    // ---- what the chapter quotes ----
    lab::Chapter chapter(args);
    chapter.text("data", "The corpus (`corpus.txt`, " + thousands(corpus.size()) + " characters) has `V = " +
                             std::to_string(vocab.size()) + "` distinct characters, each mapped to an id. The first 90% (" +
                             thousands(text.train.size()) + " characters) is for training, the last 10% (" +
                             thousands(text.heldout.size()) + " characters) is held out.");
    chapter.text("baselines", "The loss is in nats per character. Two reference points: guessing uniformly over `V` costs `log " +
                                  std::to_string(vocab.size()) + " = " + fmt(text.uniform) + "` nats (" +
                                  fmt(text.uniform / ln2) + " bits), and predicting each character from its frequency in "
                                  "the training text alone (a unigram model) costs " + fmt(text.unigram) +
                                  " nats on the held-out text. A model below " + fmt(text.unigram) +
                                  " has learned something about *context*.");
    chapter.text("model_size", "With `D = " + std::to_string(o.model.d_model) + "`, `H = " + std::to_string(o.model.heads) +
                                   "`, `L = " + std::to_string(o.model.layers) + "`, `T = " + std::to_string(o.model.context) +
                                   "` and `V = " + std::to_string(vocab.size()) + "` the model has " +
                                   thousands(main_run.parameters) + " parameters.");
    chapter.table("losses", t);
    chapter.table("seeds", ps);
    chapter.text("reading",
                 "- **It learns context quickly.** The held-out loss drops below the unigram line by step " +
                     steps_text(below.median()) + " (median; " + steps_text(below.min()) + " to " + steps_text(below.max()) +
                     " over the seeds): within the first quarter of training " + in_seeds(early, n) + ". It ends at " +
                     median_range(heldout_loss) + " nats, " + std::to_string(int(std::lround(100 * heldout_loss.median() / text.uniform))) +
                     "% of the uniform guess.\n"
                     "- **Then it starts to memorise.** At the end the training text's loss is lower than the held-out "
                     "text's " + in_seeds(gap_open, n) + ", by " + median_range(gap) + " nats. Over the last third of training "
                     "(from step " + std::to_string(main_run.late_from) + ") the training text's loss falls by " +
                     median_range(late_train) + ", the held-out text's by " + median_range(late_heldout) +
                     ": the training text improves more " + in_seeds(train_faster, n) + ".");
    std::string samples_md;
    for (const auto& s : main_run.samples)
      samples_md += "`τ = " + temperature_text(s.temperature) + "`:\n\n```\n" + s.text + "\n```\n\n";
    chapter.text("samples", samples_md);
    chapter.table("temperature", st);
    chapter.text("temperature_reading",
                 "The share of sampled words that occur in the corpus falls from " + fmt(known.front().median()) +
                     " at `τ = 0.5` to " + fmt(known.back().median()) + " at `τ = 1.5` (medians), lower at 1.5 than at 0.5 " +
                     in_seeds(cooler_known, n) + ". The number of distinct characters rises the other way, from " +
                     fmt(distinct.front().median(), 2) + " to " + fmt(distinct.back().median(), 2) + " of " +
                     std::to_string(vocab.size()) + "; more at 1.5 than at 0.5 " + in_seeds(hotter_distinct, n) + ".");
    // Exercise 3: gzip -9 (gzip 1.12) compresses the training text to 5,923 bytes and the whole corpus to
    // 6,535: the held-out text costs it 612 more bytes given the training text, 3.35 bits per character.
    if (corpus_path.empty()) {
      const double gzip_bits = 612.0 * 8.0 / double(text.heldout.size());
      const std::size_t below_gzip = heldout_loss.count([&](double v) { return v / ln2 < gzip_bits; });
      chapter.text("gzip", "The tiny GPT's held-out " + fmt(heldout_loss.median() / ln2) + " bits per character (median; " +
                               fmt(heldout_loss.min() / ln2) + " to " + fmt(heldout_loss.max() / ln2) + ") is " +
                               (below_gzip == n ? "below" : below_gzip == 0 ? "above" : "around") + " gzip's " +
                               fmt(gzip_bits) + " " + in_seeds(below_gzip, n) + ". The model's " +
                               thousands(main_run.parameters) + " float32 parameters take " +
                               thousands(main_run.parameters * 4 / 1000) + " KB.");
    }
    chapter.text("checks", claims.block());
    chapter.figure("loss.png");
    return claims.checks.report();
  });
}
