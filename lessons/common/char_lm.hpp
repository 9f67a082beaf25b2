#pragma once
// Character-level language modelling, shared by the lessons that train a GPT on text (14, and
// the position and decoding lessons after it): the corpus, its vocabulary, batches of windows and
// the loss over a text. Shape legend: B windows, T characters per window, V vocabulary.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "nn/gpt.hpp"
#include "nn/optim.hpp"

namespace lab {

// The distinct characters of a text, sorted, as ids 0..V-1.
struct Vocab {
  std::string chars;                                  // id -> character
  std::vector<int> id = std::vector<int>(256, -1);    // character -> id, -1 if not in the text
  explicit Vocab(const std::string& text);
  std::size_t size() const { return chars.size(); }
  // Errors: a character that is not in the vocabulary.
  std::vector<std::int64_t> encode(const std::string& s) const;
  std::string decode(const std::vector<std::int64_t>& ids) const;
};

// The words of a text: runs of letters, lower-cased, in order.
std::vector<std::string> words(const std::string& text);

// A corpus as ids, split as nanoGPT splits it: the first 90% to train on, the last 10% held out.
struct CharCorpus {
  std::string text;
  Vocab vocab;
  std::vector<std::int64_t> train, heldout;
};
// The repository's tiny Shakespeare (data/tinyshakespeare.txt, 1,115,394 characters), or `path`
// when given. Errors: a file that cannot be read, or one too short to split.
CharCorpus load_char_corpus(const std::filesystem::path& path = {});
// The unigram baseline (nats per character): the held-out text's cross-entropy under the
// training text's character frequencies (add-one smoothed). A model below it uses context.
double unigram_loss(const CharCorpus& corpus);
std::filesystem::path shakespeare_path();  // data/tinyshakespeare.txt in this source tree

// B windows of T + 1 ids starting at `starts`: inputs ids [s, s+T), targets ids [s+1, s+T+1).
struct Batch {
  ag::Indices inputs, targets;  // [B, T] each
};
Batch make_batch(const std::vector<std::int64_t>& ids, const std::vector<std::size_t>& starts, std::size_t T);
// B window starts drawn uniformly from [0, size - T - 1] (nanoGPT's get_batch).
std::vector<std::size_t> random_starts(std::size_t size, std::size_t T, std::size_t B, ag::Generator& gen);
// The windows that cover a text once: starts 0, T, 2T, ... (every character predicted once).
std::vector<std::size_t> all_windows(std::size_t size, std::size_t T);
// `count` of those windows spread evenly over the text: a fixed sample of a long text, e.g. as
// large as the held-out text, to compare the two without reading all of the longer one.
std::vector<std::size_t> spread_windows(std::size_t size, std::size_t T, std::size_t count);

// Mean cross-entropy (nats per character) over the windows at `starts`, in eval mode under
// ag::NoGrad, `batch` windows per forward; the model's training mode is restored.
double mean_loss(nn::GPT& model, const std::vector<std::int64_t>& ids, const std::vector<std::size_t>& starts, std::size_t T,
                 std::size_t batch = 64);

// nanoGPT's optimisation of a character GPT: batches of random windows, AdamW over
// nn::weight_decay_groups (decay on matrices and embeddings only) with betas (0.9, beta2),
// linear warmup then cosine to min_lr (nn::CosineSchedule), gradient clipping at 1.0.
struct TrainRecipe {
  std::size_t batch = 12;
  std::int64_t iters = 2000, warmup = 100;
  double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, beta2 = 0.99;
};
class CharTrainer {
 public:
  CharTrainer(nn::GPT& model, const TrainRecipe& recipe);
  // One iteration on `batch` random windows of `train` (drawn from gen) -> the minibatch's mean loss.
  double step(const std::vector<std::int64_t>& train, ag::Generator& gen);
  nn::AdamW& optimizer() { return opt_; }  // for checkpoints (nn::save_training_state)

 private:
  nn::GPT& model_;
  TrainRecipe recipe_;
  nn::AdamW opt_;
  nn::CosineSchedule schedule_;
};

}  // namespace lab
