// Synthetic long-range tasks. See tasks.hpp for the shape legend and the seeding scheme.
#include "common/tasks.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <type_traits>

#include "ag/error.hpp"

namespace lab {

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  // SplitMix64 applied twice: nearby (seed, stream) pairs give unrelated 64-bit seeds.
  auto mix = [](std::uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  return mix(mix(seed) ^ (stream * 0xD1B54A32D192ED03ull));
}

namespace {

void require(bool ok, const char* task, const std::string& what) {
  if (!ok) ag::fail(task, ": ", what);
}

// A zero-filled tensor of dtype d; fill(p) writes its row-major elements through p (float* or double*).
template <class Fill>
ag::Tensor make_tensor(const ag::Shape& shape, ag::Dtype d, Fill&& fill) {
  ag::Array a(d, shape);
  ag::dispatch(d, [&](auto t) { fill(a.ptr<decltype(t)>()); });
  return ag::Tensor::from(std::move(a));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Adding problem

AddingTask::AddingTask(AddingOptions o)
    : o_(o), train_(derive_seed(o.seed, kTrainStream)) {
  require(o_.T >= 2, "AddingTask", "T must be >= 2 (got " + std::to_string(o_.T) + ")");
  require(o_.batch_size >= 1, "AddingTask", "batch_size must be >= 1");
  require(o_.eval_size >= 1, "AddingTask", "eval_size must be >= 1");
  ag::Generator eval_gen(derive_seed(o_.seed, kEvalStream));
  eval_ = sample(eval_gen, o_.eval_size);
}

AddingBatch AddingTask::next_batch() { return sample(train_, o_.batch_size); }
AddingBatch AddingTask::next_batch(ag::Generator& gen) const { return sample(gen, o_.batch_size); }

AddingBatch AddingTask::sample(ag::Generator& gen, int count) const {
  require(count >= 1, "AddingTask::sample", "count must be >= 1");
  const std::size_t B = count, T = o_.T, half = T / 2;
  AddingBatch out;
  std::vector<double> sums(B);
  out.inputs = make_tensor({B, T, 2}, o_.dtype, [&](auto* x) {
    using V = std::remove_pointer_t<decltype(x)>;
    for (std::size_t b = 0; b < B; ++b) {
      V* row = x + b * T * 2;
      for (std::size_t t = 0; t < T; ++t) row[2 * t] = static_cast<V>(gen.uniform(0.0, 1.0));
      // One marker in the first half [0, T/2), one in the second half [T/2, T).
      const auto first = static_cast<std::size_t>(gen.integer(0, static_cast<std::int64_t>(half) - 1));
      const auto second = static_cast<std::size_t>(gen.integer(half, T - 1));
      row[2 * first + 1] = 1;
      row[2 * second + 1] = 1;
      sums[b] = static_cast<double>(row[2 * first]) + static_cast<double>(row[2 * second]);
    }
  });
  out.targets = make_tensor({B, 1}, o_.dtype, [&](auto* y) {
    for (std::size_t b = 0; b < B; ++b) y[b] = static_cast<std::remove_pointer_t<decltype(y)>>(sums[b]);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// First-token recall

RecallTask::RecallTask(RecallOptions o) : o_(o), train_(derive_seed(o.seed, kTrainStream)) {
  require(o_.T >= 1, "RecallTask", "T must be >= 1");
  require(o_.vocab >= 2, "RecallTask", "vocab must be >= 2");
  require(o_.batch_size >= 1, "RecallTask", "batch_size must be >= 1");
  require(o_.eval_size >= 1, "RecallTask", "eval_size must be >= 1");
  ag::Generator eval_gen(derive_seed(o_.seed, kEvalStream));
  eval_ = sample(eval_gen, o_.eval_size);
}

RecallBatch RecallTask::next_batch() { return sample(train_, o_.batch_size); }
RecallBatch RecallTask::next_batch(ag::Generator& gen) const { return sample(gen, o_.batch_size); }

RecallBatch RecallTask::sample(ag::Generator& gen, int count) const {
  require(count >= 1, "RecallTask::sample", "count must be >= 1");
  const std::size_t B = count, T = o_.T, V = o_.vocab;
  std::vector<std::int64_t> tokens(B * T), targets(B);
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t t = 0; t < T; ++t) tokens[b * T + t] = gen.integer(0, static_cast<std::int64_t>(V) - 1);
    targets[b] = tokens[b * T];
  }
  ag::Tensor hot = make_tensor({B, T, V}, o_.dtype, [&](auto* h) {
    for (std::size_t i = 0; i < B * T; ++i) h[i * V + static_cast<std::size_t>(tokens[i])] = 1;
  });
  return RecallBatch{ag::Indices(std::move(tokens), {B, T}), hot, ag::Indices(std::move(targets), {B})};
}

// ---------------------------------------------------------------------------------------------
// Key/value retrieval

RetrievalTask::RetrievalTask(RetrievalOptions o) : o_(o), train_(derive_seed(o.seed, kTrainStream)) {
  require(o_.pairs >= 1 && o_.pairs <= o_.keys, "RetrievalTask",
          "pairs must be in [1, keys] (got pairs " + std::to_string(o_.pairs) + ", keys " + std::to_string(o_.keys) + ")");
  require(o_.values >= 2, "RetrievalTask", "values must be >= 2");
  require(o_.batch_size >= 1, "RetrievalTask", "batch_size must be >= 1");
  require(o_.eval_size >= 1, "RetrievalTask", "eval_size must be >= 1");
  ag::Generator eval_gen(derive_seed(o_.seed, kEvalStream));
  eval_ = sample(eval_gen, o_.eval_size);
}

RetrievalBatch RetrievalTask::next_batch() { return sample(train_, o_.batch_size); }
RetrievalBatch RetrievalTask::next_batch(ag::Generator& gen) const { return sample(gen, o_.batch_size); }

RetrievalBatch RetrievalTask::sample(ag::Generator& gen, int count) const {
  require(count >= 1, "RetrievalTask::sample", "count must be >= 1");
  const std::size_t B = count, N = o_.pairs, K = o_.keys;
  std::vector<std::int64_t> keys(B * N), values(B * N), query(B), position(B), targets(B);
  std::vector<std::int64_t> symbols(K);
  for (std::size_t b = 0; b < B; ++b) {
    // The first N steps of a Fisher-Yates shuffle: N distinct keys in random order.
    for (std::size_t k = 0; k < K; ++k) symbols[k] = std::int64_t(k);
    for (std::size_t i = 0; i < N; ++i) {
      std::swap(symbols[i], symbols[std::size_t(gen.integer(std::int64_t(i), std::int64_t(K) - 1))]);
      keys[b * N + i] = symbols[i];
      values[b * N + i] = gen.integer(0, o_.values - 1);
    }
    position[b] = gen.integer(0, std::int64_t(N) - 1);
    query[b] = keys[b * N + std::size_t(position[b])];
    targets[b] = values[b * N + std::size_t(position[b])];
  }
  return RetrievalBatch{ag::Indices(std::move(keys), {B, N}), ag::Indices(std::move(values), {B, N}),
                        ag::Indices(std::move(query), {B}), ag::Indices(std::move(position), {B}),
                        ag::Indices(std::move(targets), {B})};
}

// ---------------------------------------------------------------------------------------------
// Seq2seq layout and character vocabularies

Seq2SeqBatch make_seq2seq_batch(const std::vector<std::vector<std::int64_t>>& sources,
                                const std::vector<std::vector<std::int64_t>>& targets) {
  if (sources.size() != targets.size() || sources.empty())
    ag::fail("make_seq2seq_batch: need as many targets as sources, at least one (got ", sources.size(),
             " sources, ", targets.size(), " targets)");
  const std::size_t B = sources.size();
  std::size_t S = 1, T = 1;
  for (std::size_t b = 0; b < B; ++b) {
    S = std::max(S, sources[b].size());
    T = std::max(T, targets[b].size() + 1);
  }
  Seq2SeqBatch out;
  out.src = ag::Indices(std::vector<std::int64_t>(B * S, PAD), {B, S});
  out.dec_in = ag::Indices(std::vector<std::int64_t>(B * T, PAD), {B, T});
  out.dec_target = ag::Indices(std::vector<std::int64_t>(B * T, IGNORE), {B, T});
  for (std::size_t b = 0; b < B; ++b) {
    const auto& s = sources[b];
    const auto& y = targets[b];
    std::copy(s.begin(), s.end(), out.src.values.begin() + b * S);
    std::int64_t* in = out.dec_in.values.data() + b * T;
    std::int64_t* tg = out.dec_target.values.data() + b * T;
    in[0] = BOS;                                         // dec_in     = BOS y0 y1 ... y_{n-1}
    for (std::size_t t = 0; t < y.size(); ++t) {         // dec_target = y0  y1 ... y_{n-1} EOS
      in[t + 1] = y[t];
      tg[t] = y[t];
    }
    tg[y.size()] = EOS;
    out.src_lengths.push_back(static_cast<std::int64_t>(s.size()));
    out.tgt_lengths.push_back(static_cast<std::int64_t>(y.size() + 1));
  }
  return out;
}

CharVocab::CharVocab(std::string chars) : chars_(std::move(chars)) {
  std::fill(std::begin(lookup_), std::end(lookup_), std::int64_t{-1});
  for (std::size_t i = 0; i < chars_.size(); ++i) {
    const auto u = static_cast<unsigned char>(chars_[i]);
    if (lookup_[u] >= 0) ag::fail("CharVocab: character '", chars_[i], "' appears twice in \"", chars_, "\"");
    lookup_[u] = kFirstSymbol + static_cast<std::int64_t>(i);
  }
}

std::int64_t CharVocab::id(char c) const {
  const std::int64_t i = lookup_[static_cast<unsigned char>(c)];
  if (i < 0) ag::fail("CharVocab: character '", c, "' is not in the vocabulary \"", chars_, "\"");
  return i;
}

char CharVocab::ch(std::int64_t id) const {
  if (id < kFirstSymbol || id >= size()) return '?';
  return chars_[static_cast<std::size_t>(id - kFirstSymbol)];
}

std::vector<std::int64_t> CharVocab::encode(std::string_view s) const {
  std::vector<std::int64_t> ids;
  ids.reserve(s.size());
  for (char c : s) ids.push_back(id(c));
  return ids;
}

std::string CharVocab::decode(std::span<const std::int64_t> ids) const {
  std::string s;
  for (std::int64_t i : ids) {
    if (i == EOS) break;
    if (i == PAD || i == BOS || i == IGNORE) continue;
    s += ch(i);
  }
  return s;
}

std::string CharVocab::decode(const ag::Indices& ids, std::size_t row) const {
  if (ids.shape.size() != 2 || row >= ids.shape[0])
    ag::fail("CharVocab::decode: want row ", row, " of [B, T] ids, got shape ", ag::shape_str(ids.shape));
  const std::size_t T = ids.shape[1];
  return decode(std::span<const std::int64_t>(ids.values.data() + row * T, T));
}

// ---------------------------------------------------------------------------------------------
// Sequence reversal

namespace {
const char* kSymbolChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

std::string reversal_chars(int symbols) {
  if (symbols < 1 || symbols > 62) ag::fail("ReversalTask: symbols must be in [1, 62] (got ", symbols, ")");
  return std::string(kSymbolChars, static_cast<std::size_t>(symbols));
}
}  // namespace

ReversalTask::ReversalTask(ReversalOptions o)
    : o_(o), vocab_(reversal_chars(o.symbols)), train_(derive_seed(o.seed, kTrainStream)) {
  require(o_.min_len >= 1 && o_.max_len >= o_.min_len, "ReversalTask",
          "need 1 <= min_len <= max_len (got " + std::to_string(o_.min_len) + ", " + std::to_string(o_.max_len) + ")");
  require(o_.batch_size >= 1, "ReversalTask", "batch_size must be >= 1");
  require(o_.eval_size >= 1, "ReversalTask", "eval_size must be >= 1");
  ag::Generator eval_gen(derive_seed(o_.seed, kEvalStream));
  eval_ = sample(eval_gen, o_.eval_size);
}

Seq2SeqBatch ReversalTask::next_batch() { return sample(train_, o_.batch_size); }
Seq2SeqBatch ReversalTask::next_batch(ag::Generator& gen) const { return sample(gen, o_.batch_size); }

Seq2SeqBatch ReversalTask::sample(ag::Generator& gen, int count) const {
  require(count >= 1, "ReversalTask::sample", "count must be >= 1");
  std::vector<std::vector<std::int64_t>> src(count), tgt(count);
  for (int b = 0; b < count; ++b) {
    const auto L = static_cast<std::size_t>(gen.integer(o_.min_len, o_.max_len));
    src[b].resize(L);
    for (auto& s : src[b]) s = gen.integer(kFirstSymbol, kFirstSymbol + o_.symbols - 1);
    tgt[b].assign(src[b].rbegin(), src[b].rend());
  }
  return make_seq2seq_batch(src, tgt);
}

// ---------------------------------------------------------------------------------------------
// Date normalisation

namespace {
constexpr std::array<const char*, 12> kMonths = {"january", "february", "march",     "april",   "may",      "june",
                                                 "july",    "august",   "september", "october", "november", "december"};

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int days_in(int y, int m) {
  static constexpr int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : d[m - 1];
}

// Digits, separators, then every letter that occurs in a month name, in alphabetical order.
std::string date_source_chars() {
  std::string letters;
  for (const char* m : kMonths)
    for (const char* c = m; *c; ++c)
      if (letters.find(*c) == std::string::npos) letters += *c;
  std::sort(letters.begin(), letters.end());
  return std::string(" ,.0123456789") + letters;
}

void check_date(const Date& d) {
  if (d.month < 1 || d.month > 12 || d.day < 1 || d.day > days_in(d.year, d.month) || d.year < 0 || d.year > 9999)
    ag::fail("DateTask: invalid date ", d.year, "-", d.month, "-", d.day);
}
}  // namespace

DateTask::DateTask(DateOptions o)
    : o_(o), src_(date_source_chars()), tgt_("-0123456789"), train_(derive_seed(o.seed, kTrainStream)) {
  require(o_.min_year >= 1000 && o_.max_year <= 9999 && o_.min_year <= o_.max_year, "DateTask",
          "need 1000 <= min_year <= max_year <= 9999");
  require(o_.batch_size >= 1, "DateTask", "batch_size must be >= 1");
  require(o_.eval_size >= 1, "DateTask", "eval_size must be >= 1");
  ag::Generator eval_gen(derive_seed(o_.seed, kEvalStream));
  eval_ = sample(eval_gen, o_.eval_size);
}

std::string DateTask::format(const Date& d, DateFormat f) {
  check_date(d);
  const std::string day = std::to_string(d.day), year = std::to_string(d.year), month = kMonths[d.month - 1];
  switch (f) {
    case DateFormat::DayMonthYear: return day + " " + month + " " + year;
    case DateFormat::MonthDayYear: return month + " " + day + ", " + year;
    case DateFormat::Dotted: return day + "." + std::to_string(d.month) + "." + year;
    case DateFormat::YearMonthDay: return year + " " + month + " " + day;
  }
  ag::fail("DateTask::format: unknown format");
}

std::string DateTask::iso(const Date& d) {
  check_date(d);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.year, d.month, d.day);
  return buf;
}

Date DateTask::random_date(ag::Generator& gen) const {
  Date d{};
  d.year = static_cast<int>(gen.integer(o_.min_year, o_.max_year));
  d.month = static_cast<int>(gen.integer(1, 12));
  d.day = static_cast<int>(gen.integer(1, days_in(d.year, d.month)));
  return d;
}

Seq2SeqBatch DateTask::encode(const std::vector<std::pair<Date, DateFormat>>& examples) const {
  std::vector<std::vector<std::int64_t>> src, tgt;
  for (const auto& [d, f] : examples) {
    src.push_back(src_.encode(format(d, f)));
    tgt.push_back(tgt_.encode(iso(d)));
  }
  return make_seq2seq_batch(src, tgt);
}

Seq2SeqBatch DateTask::next_batch() { return sample(train_, o_.batch_size); }
Seq2SeqBatch DateTask::next_batch(ag::Generator& gen) const { return sample(gen, o_.batch_size); }

Seq2SeqBatch DateTask::sample(ag::Generator& gen, int count) const {
  require(count >= 1, "DateTask::sample", "count must be >= 1");
  std::vector<std::pair<Date, DateFormat>> ex;
  ex.reserve(count);
  for (int b = 0; b < count; ++b) {
    const Date d = random_date(gen);
    ex.emplace_back(d, static_cast<DateFormat>(gen.integer(0, 3)));
  }
  return encode(ex);
}

std::size_t count_correct(const ag::Tensor& logits, const ag::Indices& targets) {
  if (logits.dim() != 2 || logits.size(0) != targets.size())
    ag::fail("count_correct: logits ", ag::shape_str(logits.shape()), " should be [N, classes] for ", targets.size(), " targets");
  const std::size_t N = logits.size(0), C = logits.size(1);
  const std::vector<double> v = logits.to_vector();
  std::size_t right = 0;
  for (std::size_t n = 0; n < N; ++n) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < C; ++c)
      if (v[n * C + c] > v[n * C + best]) best = c;
    right += std::int64_t(best) == targets.values[n];
  }
  return right;
}

}  // namespace lab
