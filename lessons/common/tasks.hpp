#pragma once
// Synthetic tasks: the data of lessons 05, 06, 07, 08, 11, 12 and 19.
//
// Shape legend
//   B  batch size (sequences in a batch)
//   T  time steps of an input sequence (adding, recall); decoder steps (seq2seq)
//   S  source length of a seq2seq batch (the longest source in the batch)
//   V  vocabulary size
//
// Every task is deterministic for its seed and has two random streams that never share a
// generator:
//   - the training stream, seeded with derive_seed(seed, kTrainStream): next_batch() draws a
//     fresh batch from it on every call (or pass your own ag::Generator to next_batch(gen));
//   - the held-out evaluation set, drawn once at construction from a generator seeded with
//     derive_seed(seed, kEvalStream), so it is the same set every run and every call.
//
// Usage:
//   lab::AddingTask task({.T = 100, .batch_size = 32, .seed = args.seed});
//   for (int step = 0; step < steps; ++step) {
//     lab::AddingBatch b = task.next_batch();      // b.inputs [B,T,2], b.targets [B,1]
//     ...
//   }
//   const lab::AddingBatch& ev = task.eval_set();  // 1000 fixed sequences
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ag/tensor.hpp"

namespace lab {

// A well-mixed 64-bit seed for random stream `stream` of a task seeded with `seed` (SplitMix64).
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);
inline constexpr std::uint64_t kTrainStream = 1;
inline constexpr std::uint64_t kEvalStream = 2;

// ---------------------------------------------------------------------------------------------
// The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015).
//
// Each of the T steps is a pair [value, marker]: value ~ U(0, 1), marker in {0, 1}. Exactly two
// markers are 1, one at a position in [0, T/2) and one in [T/2, T). The target is the sum of the
// two marked values. Loss: MSE.
//
// Baseline: the target is the sum of two U(0,1) values, mean 1 and variance 1/12 + 1/12 = 1/6,
// so always predicting 1.0 scores MSE = 1/6 ≈ 0.167. A model has learned something only once it
// is clearly below that line (Le et al. call 0.167 the level to beat).
struct AddingOptions {
  int T = 50;              // sequence length (>= 2)
  int batch_size = 32;     // B of next_batch()
  std::uint64_t seed = 0;  // task seed (training stream and evaluation set both derive from it)
  int eval_size = 1000;    // sequences in eval_set()
  ag::Dtype dtype = ag::f32;
};

struct AddingBatch {
  ag::Tensor inputs{};   // [B, T, 2]: [..., 0] = value, [..., 1] = marker
  ag::Tensor targets{};  // [B, 1]: the sum of the two marked values
  std::size_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
};

class AddingTask {
 public:
  static constexpr double kBaselineMSE = 1.0 / 6.0;  // MSE of always predicting 1.0

  explicit AddingTask(AddingOptions o = {});
  AddingBatch next_batch();                                  // from the task's training stream
  // The generator of the training stream: its state is the stream's position (saved by a
  // resumable run, nn::TrainingState::generators).
  ag::Generator& train_stream() { return train_; }
  AddingBatch next_batch(ag::Generator& gen) const;          // B = options().batch_size
  AddingBatch sample(ag::Generator& gen, int count) const;   // B = count
  const AddingBatch& eval_set() const { return eval_; }
  const AddingOptions& options() const { return o_; }

 private:
  AddingOptions o_;
  ag::Generator train_;
  AddingBatch eval_;
};

// ---------------------------------------------------------------------------------------------
// First-token recall: T tokens drawn uniformly from V = 8 symbols; the target is the first token.
// The signal the model needs sits T-1 steps before the end: a pure long-range memory test.
// Loss: cross-entropy over V classes; chance accuracy = 1/V = 0.125.
struct RecallOptions {
  int T = 50;              // sequence length (>= 1)
  int batch_size = 32;
  int vocab = 8;           // V: symbols 0..V-1
  std::uint64_t seed = 0;
  int eval_size = 1000;
  ag::Dtype dtype = ag::f32;  // dtype of one_hot
};

struct RecallBatch {
  ag::Indices tokens{};   // [B, T] token ids in [0, V): for an embedding
  ag::Tensor one_hot{};   // [B, T, V] the same tokens one-hot: for an RNN fed vectors
  ag::Indices targets{};  // [B] = tokens[:, 0]
  std::size_t size() const { return targets.size(); }
};

class RecallTask {
 public:
  static constexpr double kChanceAccuracy = 1.0 / 8.0;  // for the default V = 8

  explicit RecallTask(RecallOptions o = {});
  RecallBatch next_batch();
  // The generator of the training stream: its state is the stream's position (saved by a
  // resumable run, nn::TrainingState::generators).
  ag::Generator& train_stream() { return train_; }
  RecallBatch next_batch(ag::Generator& gen) const;
  RecallBatch sample(ag::Generator& gen, int count) const;
  const RecallBatch& eval_set() const { return eval_; }
  const RecallOptions& options() const { return o_; }
  double chance_accuracy() const { return 1.0 / o_.vocab; }

 private:
  RecallOptions o_;
  ag::Generator train_;
  RecallBatch eval_;
};

// ---------------------------------------------------------------------------------------------
// Key/value retrieval (lesson 19): N pairs (key, value) and a query key; the target is the value
// stored under the query. The N keys of a sequence are distinct symbols drawn from K; values are
// drawn uniformly from V (they may repeat); the query is the key of a uniformly chosen pair. The
// answer sits at one position: a model must find it (guessing the row's most common value does a
// little better than 1/V, since values repeat; reading a random pair scores 1/N + (1 - 1/N)/V).
// Loss: cross-entropy over V classes; chance_accuracy() = 1/V, a guess that ignores the input.
//   keys 3 9 1 4, values 0 5 5 2, query 1  ->  target 5 (position 2)
struct RetrievalOptions {
  int pairs = 16;          // N (1 <= N <= keys)
  int keys = 32;           // K: key symbols 0..K-1
  int values = 16;         // V: value symbols 0..V-1
  int batch_size = 32;
  std::uint64_t seed = 0;
  int eval_size = 1000;
};

struct RetrievalBatch {
  ag::Indices keys{};      // [B, N] distinct within a row, in [0, K)
  ag::Indices values{};    // [B, N] in [0, V)
  ag::Indices query{};     // [B] = keys[b, position[b]]
  ag::Indices position{};  // [B] where the query's pair sits
  ag::Indices targets{};   // [B] = values[b, position[b]]
  std::size_t size() const { return targets.size(); }
  std::size_t pairs() const { return size() ? keys.size() / size() : 0; }
};

class RetrievalTask {
 public:
  explicit RetrievalTask(RetrievalOptions o = {});
  RetrievalBatch next_batch();  // from the task's training stream
  RetrievalBatch next_batch(ag::Generator& gen) const;
  RetrievalBatch sample(ag::Generator& gen, int count) const;
  const RetrievalBatch& eval_set() const { return eval_; }
  const RetrievalOptions& options() const { return o_; }
  double chance_accuracy() const { return 1.0 / o_.values; }

 private:
  RetrievalOptions o_;
  ag::Generator train_;
  RetrievalBatch eval_;
};

// ---------------------------------------------------------------------------------------------
// Sequence-to-sequence batches (reversal, dates).
//
// Special token ids, shared by every vocabulary:
inline constexpr std::int64_t PAD = 0;
inline constexpr std::int64_t BOS = 1;
inline constexpr std::int64_t EOS = 2;
inline constexpr std::int64_t kFirstSymbol = 3;  // the first ordinary symbol's id
// Padding positions of dec_target hold IGNORE, cross_entropy's default ignore_index, so
//   ag::cross_entropy(logits.reshape({B*T, V}), flat(dec_target))
// skips them with no extra mask. src and dec_in are padded with PAD (a real id, for embeddings).
inline constexpr std::int64_t IGNORE = -100;

// One padded batch, teacher-forcing layout. For the target "c b a" (ids 5 4 3):
//   dec_in     = BOS 5 4 3 PAD ...   (what the decoder reads at each step)
//   dec_target = 5 4 3 EOS -100 ...  (what it must predict at the same step)
struct Seq2SeqBatch {
  ag::Indices src{};          // [B, S] source ids, PAD after src_lengths[b]
  ag::Indices dec_in{};       // [B, T] BOS + target, PAD after tgt_lengths[b]
  ag::Indices dec_target{};   // [B, T] target + EOS, IGNORE after tgt_lengths[b]
  std::vector<std::int64_t> src_lengths{};  // [B] true source lengths
  std::vector<std::int64_t> tgt_lengths{};  // [B] target length + 1 (the EOS step) = decoder steps
  std::size_t size() const { return src_lengths.size(); }
};

// Pads and lays out a batch from unpadded id sequences (ordinary symbols only, no specials):
// S = the longest source, T = the longest target + 1.
Seq2SeqBatch make_seq2seq_batch(const std::vector<std::vector<std::int64_t>>& sources,
                                const std::vector<std::vector<std::int64_t>>& targets);

// A character vocabulary: PAD=0, BOS=1, EOS=2, then one id per character, in the given order.
class CharVocab {
 public:
  explicit CharVocab(std::string chars);  // distinct characters
  std::int64_t size() const { return kFirstSymbol + static_cast<std::int64_t>(chars_.size()); }
  std::int64_t id(char c) const;          // throws ag::Error for a character not in the vocabulary
  char ch(std::int64_t id) const;         // '?' for specials and unknown ids
  const std::string& chars() const { return chars_; }

  std::vector<std::int64_t> encode(std::string_view s) const;  // no BOS/EOS added
  // ids -> text: skips PAD, BOS and IGNORE, stops at the first EOS.
  std::string decode(std::span<const std::int64_t> ids) const;
  std::string decode(const ag::Indices& ids, std::size_t row) const;  // row b of [B, T] ids

 private:
  std::string chars_;
  std::int64_t lookup_[256];
};

// ---------------------------------------------------------------------------------------------
// Sequence reversal: the source is L symbols, the target is the same symbols in reverse order.
// Symbols are shown as the letters a, b, c, ... (ids 3, 4, 5, ...), so vocab().decode() gives
// "abc" for ids 3 4 5. L is fixed (min_len == max_len) or drawn uniformly in [min_len, max_len]
// per sequence, with padding to the batch's longest.
struct ReversalOptions {
  int min_len = 8;
  int max_len = 8;
  int symbols = 10;        // ordinary symbols (1..62); vocabulary size = symbols + 3
  int batch_size = 32;
  std::uint64_t seed = 0;
  int eval_size = 1000;
};

class ReversalTask {
 public:
  explicit ReversalTask(ReversalOptions o = {});
  Seq2SeqBatch next_batch();
  // The generator of the training stream: its state is the stream's position (saved by a
  // resumable run, nn::TrainingState::generators).
  ag::Generator& train_stream() { return train_; }
  Seq2SeqBatch next_batch(ag::Generator& gen) const;
  Seq2SeqBatch sample(ag::Generator& gen, int count) const;
  const Seq2SeqBatch& eval_set() const { return eval_; }
  const ReversalOptions& options() const { return o_; }
  const CharVocab& vocab() const { return vocab_; }  // the same for source and target
  std::int64_t vocab_size() const { return vocab_.size(); }

 private:
  ReversalOptions o_;
  CharVocab vocab_;
  ag::Generator train_;
  Seq2SeqBatch eval_;
};

// ---------------------------------------------------------------------------------------------
// Date normalisation: a date in one of four human formats -> ISO 8601.
//   DayMonthYear   "3 may 1999"
//   MonthDayYear   "may 3, 1999"
//   Dotted         "3.5.1999"
//   YearMonthDay   "1999 may 3"
// all -> "1999-05-03". Month names are full and lower case ("september"). Source and target
// have their own character vocabularies (src_vocab(), tgt_vocab()).
enum class DateFormat { DayMonthYear, MonthDayYear, Dotted, YearMonthDay };

struct DateOptions {
  int min_year = 1900;
  int max_year = 2099;
  int batch_size = 32;
  std::uint64_t seed = 0;
  int eval_size = 1000;
};

struct Date {
  int year = 2000, month = 1, day = 1;  // month 1..12, day 1..31
};

class DateTask {
 public:
  explicit DateTask(DateOptions o = {});
  Seq2SeqBatch next_batch();
  // The generator of the training stream: its state is the stream's position (saved by a
  // resumable run, nn::TrainingState::generators).
  ag::Generator& train_stream() { return train_; }
  Seq2SeqBatch next_batch(ag::Generator& gen) const;
  Seq2SeqBatch sample(ag::Generator& gen, int count) const;
  const Seq2SeqBatch& eval_set() const { return eval_; }
  const DateOptions& options() const { return o_; }
  const CharVocab& src_vocab() const { return src_; }
  const CharVocab& tgt_vocab() const { return tgt_; }

  static std::string format(const Date& d, DateFormat f);  // human text
  static std::string iso(const Date& d);                   // "1999-05-03"
  // A batch from given dates and formats (same length): for hand-picked examples.
  Seq2SeqBatch encode(const std::vector<std::pair<Date, DateFormat>>& examples) const;

 private:
  Date random_date(ag::Generator& gen) const;
  DateOptions o_;
  CharVocab src_, tgt_;
  ag::Generator train_;
  Seq2SeqBatch eval_;
};

// ---------------------------------------------------------------------------------------------
// Scoring classification

// How many rows of logits [N, C] have their largest entry (the first one, on ties) at the
// target class: the numerator of the accuracy.
std::size_t count_correct(const ag::Tensor& logits, const ag::Indices& targets);

}  // namespace lab
