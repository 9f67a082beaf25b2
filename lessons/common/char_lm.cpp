#include "common/char_lm.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#ifndef ATTNLAB_SOURCE_DIR
#error "ATTNLAB_SOURCE_DIR: the repository root, set by lessons/CMakeLists.txt"
#endif

namespace lab {

Vocab::Vocab(const std::string& text) {
  const std::set<unsigned char> seen(text.begin(), text.end());
  for (unsigned char c : seen) id[c] = int(chars.size()), chars.push_back(char(c));
}

std::vector<std::int64_t> Vocab::encode(const std::string& s) const {
  std::vector<std::int64_t> out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (id[c] < 0) ag::fail("Vocab: the character '", std::string(1, char(c)), "' (", int(c), ") is not in the corpus");
    out.push_back(id[c]);
  }
  return out;
}

std::string Vocab::decode(const std::vector<std::int64_t>& ids) const {
  std::string out;
  for (auto i : ids) out.push_back(chars.at(std::size_t(i)));
  return out;
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) w.push_back(char(std::tolower(static_cast<unsigned char>(c))));
    else if (!w.empty()) out.push_back(w), w.clear();
  }
  return out;
}

std::filesystem::path shakespeare_path() { return std::filesystem::path(ATTNLAB_SOURCE_DIR) / "data" / "tinyshakespeare.txt"; }

CharCorpus load_char_corpus(const std::filesystem::path& path) {
  const std::filesystem::path p = path.empty() ? shakespeare_path() : path;
  std::ifstream f(p, std::ios::binary);
  if (!f) ag::fail("cannot read the corpus '", p.string(), "'");
  std::stringstream ss;
  ss << f.rdbuf();
  CharCorpus c{ss.str(), Vocab(ss.str()), {}, {}};
  if (c.text.size() < 20) ag::fail("the corpus '", p.string(), "' has ", c.text.size(), " characters: too few to split");
  const std::vector<std::int64_t> ids = c.vocab.encode(c.text);
  const auto split = std::ptrdiff_t(ids.size() * 9 / 10);
  c.train.assign(ids.begin(), ids.begin() + split);
  c.heldout.assign(ids.begin() + split, ids.end());
  return c;
}

double unigram_loss(const CharCorpus& c) {
  std::vector<double> freq(c.vocab.size(), 1.0);  // add-one smoothing
  for (auto i : c.train) freq[std::size_t(i)] += 1;
  double total = 0, loss = 0;
  for (double f : freq) total += f;
  for (auto i : c.heldout) loss -= std::log(freq[std::size_t(i)] / total);
  return loss / double(c.heldout.size());
}

Batch make_batch(const std::vector<std::int64_t>& ids, const std::vector<std::size_t>& starts, std::size_t T) {
  std::vector<std::int64_t> x, y;
  x.reserve(starts.size() * T), y.reserve(starts.size() * T);
  for (std::size_t s : starts)
    for (std::size_t t = 0; t < T; ++t) x.push_back(ids.at(s + t)), y.push_back(ids.at(s + t + 1));
  const ag::Shape shape{starts.size(), T};
  return {ag::Indices(x, shape), ag::Indices(y, shape)};
}

std::vector<std::size_t> random_starts(std::size_t size, std::size_t T, std::size_t B, ag::Generator& gen) {
  if (size < T + 2) ag::fail("random_starts: a text of ", size, " ids has no window of ", T + 1);
  std::vector<std::size_t> starts(B);
  for (auto& s : starts) s = std::size_t(gen.integer(0, std::int64_t(size - T - 1)));
  return starts;
}

std::vector<std::size_t> all_windows(std::size_t size, std::size_t T) {
  std::vector<std::size_t> starts;
  for (std::size_t s = 0; s + T + 1 <= size; s += T) starts.push_back(s);
  return starts;
}

std::vector<std::size_t> spread_windows(std::size_t size, std::size_t T, std::size_t count) {
  const std::vector<std::size_t> all = all_windows(size, T);
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < count && i < all.size(); ++i) starts.push_back(all[i * all.size() / std::min(count, all.size())]);
  return starts;
}

double mean_loss(nn::GPT& model, const std::vector<std::int64_t>& ids, const std::vector<std::size_t>& starts, std::size_t T,
                 std::size_t batch) {
  if (starts.empty()) ag::fail("mean_loss: no windows");
  ag::NoGrad ng;
  const bool was_training = model.is_training();
  model.eval();
  double total = 0;
  for (std::size_t i = 0; i < starts.size(); i += batch) {
    const std::vector<std::size_t> chunk(starts.begin() + std::ptrdiff_t(i),
                                         starts.begin() + std::ptrdiff_t(std::min(starts.size(), i + batch)));
    const Batch b = make_batch(ids, chunk, T);
    total += ag::cross_entropy(model.forward(b.inputs), b.targets).item() * double(chunk.size());
  }
  model.train(was_training);
  return total / double(starts.size());
}

CharTrainer::CharTrainer(nn::GPT& model, const TrainRecipe& r)
    : model_(model),
      recipe_(r),
      opt_(nn::weight_decay_groups(model.parameters(), r.weight_decay), {.lr = r.lr, .betas = {0.9, r.beta2}}),
      schedule_(r.lr, r.iters, r.warmup, r.min_lr) {}

double CharTrainer::step(const std::vector<std::int64_t>& train, ag::Generator& gen) {
  const std::size_t T = model_.options().block_size;
  const Batch b = make_batch(train, random_starts(train.size(), T, recipe_.batch, gen), T);
  opt_.zero_grad();
  const ag::Tensor loss = ag::cross_entropy(model_.forward(b.inputs), b.targets);  // mean over B * T predictions
  loss.backward();
  nn::clip_grad_norm(model_.parameters(), 1.0);
  opt_.set_lr(schedule_.lr(opt_.steps() + 1));
  opt_.step();
  return loss.item();
}

}  // namespace lab
