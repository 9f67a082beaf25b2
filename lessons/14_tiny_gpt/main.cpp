// Lesson 14: a tiny GPT.
//
// A decoder-only Transformer (Radford et al. 2018, 2019) reads characters and predicts the next
// one at every position. The causal mask lets position t see 0..t only, so one forward pass over
// a window of T characters gives T predictions, each from its own past. Trained on 14 KB of
// Shakespeare (corpus.txt), it then writes text one character at a time, sampling from
// softmax(logits / temperature).
//
// Shape legend: B batch, T context length, D model width, H heads, L layers, V vocabulary
// (the distinct characters of the corpus).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/labkit.hpp"
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
};

class TinyGPT : public nn::Module {
 public:
  TinyGPT(const GPTOptions& o, ag::Generator& gen) : o_(o) {
    tok_emb = register_module("tok_emb", std::make_shared<nn::Embedding>(o.vocab, o.d_model, gen));
    pos_emb = register_module("pos_emb", std::make_shared<nn::LearnedPositionalEncoding>(o.d_model, o.context, gen));
    nn::TransformerOptions t{.d_model = o.d_model, .num_heads = o.heads, .dim_feedforward = 4 * o.d_model,
                             .dropout = o.dropout, .activation = nn::Activation::gelu, .norm_first = true};
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
    x = blocks->forward(x, masks_[T - 1]);               // position t attends to 0..t only
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
  std::vector<Tensor> masks_;  // causal masks [T, T] for T = 1..context
};

// Mean cross-entropy (nats per character) over fixed windows of the held-out text.
double evaluate(TinyGPT& model, const std::vector<std::int64_t>& ids, std::size_t T, std::size_t batch) {
  ag::NoGrad ng;
  model.eval();
  std::vector<std::size_t> starts;
  for (std::size_t s = 0; s + T + 1 <= ids.size(); s += T) starts.push_back(s);  // every character once
  double total = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < starts.size(); i += batch) {
    std::vector<std::size_t> chunk(starts.begin() + i, starts.begin() + std::min(starts.size(), i + batch));
    const Batch b = make_batch(ids, chunk, T);
    total += ag::cross_entropy(model.forward(b.inputs), b.targets).item() * double(chunk.size());
    count += chunk.size();
  }
  model.train();
  return total / double(count);
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

// The words of a text (runs of letters, lower-cased).
std::set<std::string> words_of(const std::string& text) {
  std::set<std::string> out;
  std::string w;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) w.push_back(char(std::tolower(static_cast<unsigned char>(c))));
    else if (!w.empty()) out.insert(w), w.clear();
  }
  return out;
}
// The share of the words of `text` that also occur in the corpus: a crude measure of how much of
// a sample is real (Shakespeare's) English.
double known_word_share(const std::string& text, const std::set<std::string>& corpus_words) {
  std::size_t known = 0, total = 0;
  std::string w;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w.push_back(char(std::tolower(static_cast<unsigned char>(c))));
    } else if (!w.empty()) {
      ++total, known += corpus_words.count(w);
      w.clear();
    }
  }
  return total ? double(known) / double(total) : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  lab::Cli cli("14_tiny_gpt", "A character-level GPT trained on 14 KB of Shakespeare; samples at three temperatures");
  std::string corpus_path;
  cli.app().add_option("--corpus", corpus_path, "text file to train on (default: lessons/14_tiny_gpt/corpus.txt)");
  return lab::run_lesson(argc, argv, cli, [&](const lab::LessonArgs& args) {
    ag::Generator gen(args.seed);
    const std::string text = read_file(corpus_path.empty() ? find_corpus() : std::filesystem::path(corpus_path));
    const Vocab vocab(text);
    const std::vector<std::int64_t> ids = vocab.encode(text);
    const std::size_t split = ids.size() * 9 / 10;  // first 90% to train on, the last 10% held out
    const std::vector<std::int64_t> train(ids.begin(), ids.begin() + std::ptrdiff_t(split));
    const std::vector<std::int64_t> heldout(ids.begin() + std::ptrdiff_t(split), ids.end());
    const double uniform = std::log(double(vocab.size()));

    // The unigram baseline: predict every character from its frequency in the training text.
    double unigram = 0;
    {
      std::vector<double> freq(vocab.size(), 1.0);  // add-one smoothing
      for (auto i : train) freq[std::size_t(i)] += 1;
      const double total = std::accumulate(freq.begin(), freq.end(), 0.0);
      for (auto i : heldout) unigram -= std::log(freq[std::size_t(i)] / total);
      unigram /= double(heldout.size());
    }

    const GPTOptions o{.vocab = vocab.size(), .context = 64, .d_model = args.quick ? 32u : 64u, .heads = 4,
                       .layers = 2, .dropout = 0.1};
    const std::size_t B = 16;
    const std::int64_t steps = args.steps_or(1000, 120);
    const std::int64_t eval_every = args.quick ? 20 : 50;
    TinyGPT model(o, gen);
    std::cout << "Lesson 14: a tiny GPT on " << text.size() << " characters (" << train.size() << " to train on, "
              << heldout.size() << " held out), V = " << vocab.size() << " characters\n"
              << "model: D = " << o.d_model << ", H = " << o.heads << ", L = " << o.layers << ", context T = " << o.context
              << ", " << model.num_parameters() << " parameters\n"
              << "uniform guess: " << lab::format_number(uniform) << " nats/char; unigram frequencies: "
              << lab::format_number(unigram) << " nats/char\n";

    // ---- training: random windows of the training text, AdamW, warmup then cosine decay ----
    nn::AdamW opt(model.parameters(), {.lr = 3e-3, .weight_decay = 0.01});
    nn::CosineSchedule schedule(3e-3, steps, steps / 20, 3e-4);
    lab::CurveLog log(args.path("loss.csv"), {"train", "heldout", "uniform", "unigram"});
    lab::Progress bar(steps, "train");
    double train_avg = evaluate(model, train, o.context, 64), heldout_loss = evaluate(model, heldout, o.context, 64);
    log.log(0, {train_avg, heldout_loss, uniform, unigram});
    for (std::int64_t step = 1; step <= steps; ++step) {
      std::vector<std::size_t> starts(B);
      for (auto& s : starts) s = std::size_t(gen.integer(0, std::int64_t(train.size() - o.context - 1)));
      const Batch b = make_batch(train, starts, o.context);
      opt.zero_grad();
      const Tensor loss = ag::cross_entropy(model.forward(b.inputs), b.targets);  // mean over B * T predictions
      loss.backward();
      nn::clip_grad_norm(model.parameters(), 1.0);
      opt.set_lr(schedule.lr(opt.steps() + 1));
      opt.step();
      train_avg = 0.9 * train_avg + 0.1 * loss.item();  // smoothed for the curve
      if (step % eval_every == 0 || step == steps) {
        heldout_loss = evaluate(model, heldout, o.context, 64);
        log.log(double(step), {train_avg, heldout_loss, uniform, unigram});
      }
      bar.update(step, {{"loss", train_avg}, {"held-out", heldout_loss}});
    }
    bar.finish();
    const double train_loss = evaluate(model, train, o.context, 64);

    // ---- samples at three temperatures ----
    const std::set<std::string> corpus_words = words_of(text);
    const std::size_t sample_len = args.quick ? 100 : 400;
    const std::string prompt = "MENENIUS:\n";
    std::ofstream samples_file(args.path("samples.txt"));
    lab::Table st("Samples: " + std::to_string(sample_len) + " characters after \"MENENIUS:\\n\"",
                  {"temperature", "known words", "distinct chars used"});
    bool only_known_chars = true;
    for (double temperature : {0.5, 1.0, 1.5}) {
      const std::string s = sample(model, vocab, prompt, sample_len, temperature, gen);
      for (unsigned char c : s) only_known_chars = only_known_chars && vocab.id[c] >= 0;
      const double share = known_word_share(s.substr(prompt.size()), corpus_words);
      st.row({lab::format_number(temperature, 2), share, long(std::set<char>(s.begin(), s.end()).size())});
      std::cout << "\n---- temperature " << temperature << " ----\n" << s << "\n";
      samples_file << "---- temperature " << temperature << " ----\n" << s << "\n\n";
    }

    // ---- results ----
    lab::Table t("Tiny GPT after " + std::to_string(steps) + " steps (loss in nats per character)",
                 {"model", "train loss", "held-out loss", "held-out bits/char"});
    t.row({"uniform over V", uniform, uniform, uniform / std::log(2.0)});
    t.row({"unigram frequencies", "", unigram, unigram / std::log(2.0)});
    t.row({"tiny GPT", train_loss, heldout_loss, heldout_loss / std::log(2.0)});
    std::cout << "\n";
    t.print();
    std::cout << "\n";
    st.print();
    t.save_markdown(args.path("report.md"));
    st.save_markdown(args.path("report.md"), true);

    lab::PlotOptions po{.title = "Tiny GPT on Shakespeare: loss per character", .xlabel = "step",
                        .ylabel = "cross-entropy (nats per character)", .ymin = 0.0, .ymax = uniform + 1.5};
    lab::plot(args.path("loss.png"),
              {{log.path(), "train", "train (smoothed)"},
               {log.path(), "heldout", "held-out"},
               {log.path(), "uniform", "uniform guess, log V", "step", "lines dt 2"},
               {log.path(), "unigram", "character frequencies (unigram)", "step", "lines dt 2"}},
              po);
    std::cout << "\nLoss per character (train smoothed, held-out):\n";
    lab::plot_terminal(lab::series(log.path(), {"train", "heldout", "unigram"}), po);
    std::cout << "Wrote " << args.out.string() << "/{loss.csv,loss.png,loss.svg,samples.txt,report.md}\n";

    lab::Checks checks;
    checks.expect(heldout_loss < 0.75 * uniform, "held-out loss " + lab::format_number(heldout_loss, 3) +
                                                     " is well below the uniform log V = " + lab::format_number(uniform, 3) +
                                                     " (< 75% of it)");
    checks.expect(heldout_loss < unigram, "the model beats character frequencies alone on held-out text");
    checks.expect(only_known_chars, "every sampled character is one of the corpus's " + std::to_string(vocab.size()));
    return checks.report();
  });
}
