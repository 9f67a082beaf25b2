// The synthetic tasks of the lab kit: determinism, held-out sets, shapes, and the meaning of
// every element (markers, targets, BOS/EOS/PAD placement, dates).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "common/tasks.hpp"

namespace {

std::vector<std::vector<double>> rows_of(const ag::Tensor& t) {  // [B, ...] -> B flat rows
  const auto v = t.to_vector();
  const std::size_t B = t.size(0), n = v.size() / B;
  std::vector<std::vector<double>> rows(B);
  for (std::size_t b = 0; b < B; ++b) rows[b].assign(v.begin() + b * n, v.begin() + (b + 1) * n);
  return rows;
}

std::vector<std::vector<std::int64_t>> rows_of(const ag::Indices& t) {
  const std::size_t B = t.shape[0], n = t.values.size() / B;
  std::vector<std::vector<std::int64_t>> rows(B);
  for (std::size_t b = 0; b < B; ++b) rows[b].assign(t.values.begin() + b * n, t.values.begin() + (b + 1) * n);
  return rows;
}

bool same(const lab::Seq2SeqBatch& a, const lab::Seq2SeqBatch& b) {
  return a.src.values == b.src.values && a.src.shape == b.src.shape && a.dec_in.values == b.dec_in.values &&
         a.dec_target.values == b.dec_target.values && a.src_lengths == b.src_lengths &&
         a.tgt_lengths == b.tgt_lengths;
}

// A reference parser for the four human date formats -> ISO, written independently of the task.
std::string parse_date(const std::string& s) {
  static const std::vector<std::string> months = {"january", "february", "march",     "april",   "may",      "june",
                                                  "july",    "august",   "september", "october", "november", "december"};
  std::vector<std::string> words;
  std::string w;
  for (char c : s) {
    if (c == ' ' || c == ',' || c == '.') {
      if (!w.empty()) words.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) words.push_back(w);
  if (words.size() != 3) return "bad: " + s;
  int day = 0, month = 0, year = 0;
  auto month_of = [&](const std::string& m) {
    auto it = std::find(months.begin(), months.end(), m);
    return it == months.end() ? 0 : static_cast<int>(it - months.begin()) + 1;
  };
  if (s.find('.') != std::string::npos) {  // 3.5.1999
    day = std::stoi(words[0]);
    month = std::stoi(words[1]);
    year = std::stoi(words[2]);
  } else if (month_of(words[0])) {  // may 3, 1999
    month = month_of(words[0]);
    day = std::stoi(words[1]);
    year = std::stoi(words[2]);
  } else if (words[0].size() == 4) {  // 1999 may 3
    year = std::stoi(words[0]);
    month = month_of(words[1]);
    day = std::stoi(words[2]);
  } else {  // 3 may 1999
    day = std::stoi(words[0]);
    month = month_of(words[1]);
    year = std::stoi(words[2]);
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  return buf;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tasks)

BOOST_AUTO_TEST_CASE(derive_seed_separates_streams) {
  std::set<std::uint64_t> seen;
  for (std::uint64_t seed = 0; seed < 100; ++seed)
    for (std::uint64_t stream : {lab::kTrainStream, lab::kEvalStream}) seen.insert(lab::derive_seed(seed, stream));
  BOOST_TEST(seen.size() == 200u);
  BOOST_TEST(lab::derive_seed(0, lab::kTrainStream) != 0u);
}

// ---- adding problem ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(adding_shapes_and_dtype) {
  lab::AddingTask task({.T = 17, .batch_size = 5, .seed = 1, .eval_size = 40});
  auto b = task.next_batch();
  BOOST_TEST(ag::shape_str(b.inputs.shape()) == "[5,17,2]");
  BOOST_TEST(ag::shape_str(b.targets.shape()) == "[5,1]");
  BOOST_TEST(b.inputs.dtype() == ag::f32);
  BOOST_TEST(b.size() == 5u);
  BOOST_TEST(ag::shape_str(task.eval_set().inputs.shape()) == "[40,17,2]");
  BOOST_TEST(!b.inputs.requires_grad());

  lab::AddingTask t64({.T = 8, .batch_size = 3, .dtype = ag::f64});
  auto c = t64.next_batch();
  BOOST_TEST(c.inputs.dtype() == ag::f64);
  BOOST_TEST(c.targets.dtype() == ag::f64);
  BOOST_CHECK_THROW(lab::AddingTask({.T = 1}), ag::Error);
}

BOOST_AUTO_TEST_CASE(adding_markers_and_target) {
  for (int T : {2, 3, 10, 51}) {
    lab::AddingTask task({.T = T, .batch_size = 64, .seed = 7, .eval_size = 16});
    ag::Generator gen(3);
    auto b = task.next_batch(gen);
    const auto xs = rows_of(b.inputs);
    const auto ys = b.targets.to_vector();
    const int half = T / 2;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      std::vector<int> marked;
      double sum = 0;
      for (int t = 0; t < T; ++t) {
        const double v = xs[i][2 * t], m = xs[i][2 * t + 1];
        BOOST_TEST((v >= 0.0 && v < 1.0));
        BOOST_TEST((m == 0.0 || m == 1.0));
        if (m == 1.0) {
          marked.push_back(t);
          sum += v;
        }
      }
      BOOST_REQUIRE_MESSAGE(marked.size() == 2u, "T=" << T << " row " << i << ": " << marked.size() << " markers");
      BOOST_TEST(marked[0] < half, "first marker at " << marked[0] << ", want < " << half);
      BOOST_TEST((marked[1] >= half && marked[1] < T));
      BOOST_TEST(ys[i] == sum, boost::test_tools::tolerance(1e-6));
    }
  }
}

BOOST_AUTO_TEST_CASE(adding_deterministic_for_seed) {
  lab::AddingTask a({.T = 20, .batch_size = 4, .seed = 42, .eval_size = 10});
  lab::AddingTask b({.T = 20, .batch_size = 4, .seed = 42, .eval_size = 10});
  lab::AddingTask c({.T = 20, .batch_size = 4, .seed = 43, .eval_size = 10});
  for (int step = 0; step < 3; ++step) {
    auto ba = a.next_batch(), bb = b.next_batch(), bc = c.next_batch();
    BOOST_TEST(ba.inputs.to_vector() == bb.inputs.to_vector());
    BOOST_TEST(ba.targets.to_vector() == bb.targets.to_vector());
    BOOST_TEST(ba.inputs.to_vector() != bc.inputs.to_vector());
  }
  // Successive batches of one stream differ; an explicit generator repeats.
  ag::Generator g1(5), g2(5);
  BOOST_TEST(a.next_batch(g1).inputs.to_vector() == a.next_batch(g2).inputs.to_vector());
  BOOST_TEST(a.next_batch().inputs.to_vector() != a.next_batch().inputs.to_vector());
  BOOST_TEST(a.eval_set().inputs.to_vector() == b.eval_set().inputs.to_vector());
  BOOST_TEST(a.eval_set().inputs.to_vector() != c.eval_set().inputs.to_vector());
}

BOOST_AUTO_TEST_CASE(adding_eval_fixed_and_disjoint) {
  lab::AddingTask task({.T = 12, .batch_size = 50, .seed = 0, .eval_size = 100});
  const auto eval_before = task.eval_set().inputs.to_vector();
  std::set<std::vector<double>> train_rows;
  for (int step = 0; step < 20; ++step)
    for (auto& r : rows_of(task.next_batch().inputs)) train_rows.insert(r);
  BOOST_TEST(task.eval_set().inputs.to_vector() == eval_before);  // training does not move it
  int shared = 0;
  for (auto& r : rows_of(task.eval_set().inputs)) shared += static_cast<int>(train_rows.count(r));
  BOOST_TEST(shared == 0);
  // The evaluation set is not the training stream's first draw either.
  ag::Generator train(lab::derive_seed(0, lab::kTrainStream));
  BOOST_TEST(task.sample(train, 100).inputs.to_vector() != eval_before);
  ag::Generator evalg(lab::derive_seed(0, lab::kEvalStream));
  BOOST_TEST(task.sample(evalg, 100).inputs.to_vector() == eval_before);
}

BOOST_AUTO_TEST_CASE(adding_baseline_mse) {
  // Always predicting 1.0: MSE = Var(u1 + u2) = 1/6 ≈ 0.167.
  lab::AddingTask task({.T = 10, .seed = 11, .eval_size = 1, .dtype = ag::f64});
  ag::Generator gen(123);
  const auto y = task.sample(gen, 100000).targets.to_vector();
  double se = 0;
  for (double v : y) se += (v - 1.0) * (v - 1.0);
  const double mse = se / y.size();
  BOOST_TEST_MESSAGE("baseline MSE on 100k samples: " << mse);
  BOOST_TEST(std::abs(mse - 0.167) < 0.005);
  BOOST_TEST(std::abs(mse - lab::AddingTask::kBaselineMSE) < 0.005);
}

// ---- first-token recall --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(recall_shapes_and_targets) {
  lab::RecallTask task({.T = 30, .batch_size = 16, .seed = 2, .eval_size = 50});
  auto b = task.next_batch();
  BOOST_TEST(ag::shape_str(b.tokens.shape) == "[16,30]");
  BOOST_TEST(ag::shape_str(b.one_hot.shape()) == "[16,30,8]");
  BOOST_TEST(ag::shape_str(b.targets.shape) == "[16]");
  BOOST_TEST(b.one_hot.dtype() == ag::f32);
  BOOST_TEST(task.chance_accuracy() == 0.125);
  BOOST_TEST(lab::RecallTask::kChanceAccuracy == 0.125);
  const auto hot = b.one_hot.to_vector();
  std::set<std::int64_t> symbols;
  for (std::size_t i = 0; i < 16; ++i) {
    BOOST_TEST(b.targets.values[i] == b.tokens.values[i * 30]);
    for (std::size_t t = 0; t < 30; ++t) {
      const std::int64_t tok = b.tokens.values[i * 30 + t];
      BOOST_TEST((tok >= 0 && tok < 8));
      symbols.insert(tok);
      for (std::int64_t v = 0; v < 8; ++v) BOOST_TEST(hot[(i * 30 + t) * 8 + v] == (v == tok ? 1.0 : 0.0));
    }
  }
  BOOST_TEST(symbols.size() == 8u);  // 480 draws cover all 8 symbols
  BOOST_TEST(ag::shape_str(task.eval_set().tokens.shape) == "[50,30]");
  lab::RecallTask t64({.T = 4, .dtype = ag::f64});
  BOOST_TEST(t64.next_batch().one_hot.dtype() == ag::f64);
}

BOOST_AUTO_TEST_CASE(recall_deterministic_and_eval) {
  lab::RecallTask a({.T = 20, .seed = 9, .eval_size = 64}), b({.T = 20, .seed = 9, .eval_size = 64}),
      c({.T = 20, .seed = 10, .eval_size = 64});
  BOOST_TEST(a.next_batch().tokens.values == b.next_batch().tokens.values);
  BOOST_TEST(a.next_batch().tokens.values != c.next_batch().tokens.values);
  BOOST_TEST(a.eval_set().tokens.values == b.eval_set().tokens.values);
  BOOST_TEST(a.eval_set().tokens.values != c.eval_set().tokens.values);
  std::set<std::vector<std::int64_t>> train;
  for (int i = 0; i < 20; ++i)
    for (auto& r : rows_of(a.next_batch().tokens)) train.insert(r);
  int shared = 0;
  for (auto& r : rows_of(a.eval_set().tokens)) shared += static_cast<int>(train.count(r));
  BOOST_TEST(shared == 0);
  BOOST_TEST(a.eval_set().tokens.values == b.eval_set().tokens.values);
  // Near chance frequency of each first token in the evaluation set.
  lab::RecallTask big({.T = 2, .seed = 1, .eval_size = 8000});
  std::vector<int> counts(8);
  for (auto t : big.eval_set().targets.values) ++counts[t];
  for (int c8 : counts) BOOST_TEST(std::abs(c8 / 8000.0 - 0.125) < 0.02);
}

// ---- key/value retrieval -------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(retrieval_layout_and_targets) {
  lab::RetrievalTask task({.pairs = 6, .keys = 10, .values = 4, .batch_size = 50, .seed = 3, .eval_size = 40});
  const auto b = task.next_batch();
  BOOST_TEST(ag::shape_str(b.keys.shape) == "[50,6]");
  BOOST_TEST(ag::shape_str(b.values.shape) == "[50,6]");
  BOOST_TEST(ag::shape_str(b.query.shape) == "[50]");
  BOOST_TEST(b.size() == 50u);
  BOOST_TEST(b.pairs() == 6u);
  BOOST_TEST(task.chance_accuracy() == 0.25);
  std::set<std::int64_t> positions, values;
  for (std::size_t i = 0; i < 50; ++i) {
    const std::vector<std::int64_t> row(b.keys.values.begin() + i * 6, b.keys.values.begin() + (i + 1) * 6);
    BOOST_TEST(std::set<std::int64_t>(row.begin(), row.end()).size() == 6u);  // distinct keys
    for (std::size_t n = 0; n < 6; ++n) {
      BOOST_TEST((row[n] >= 0 && row[n] < 10));
      const std::int64_t v = b.values.values[i * 6 + n];
      BOOST_TEST((v >= 0 && v < 4));
      values.insert(v);
    }
    const std::int64_t p = b.position.values[i];
    BOOST_TEST((p >= 0 && p < 6));
    positions.insert(p);
    BOOST_TEST(b.query.values[i] == row[std::size_t(p)]);
    BOOST_TEST(b.targets.values[i] == b.values.values[i * 6 + std::size_t(p)]);
    // The query matches exactly one key, so the target is defined by the query alone.
    BOOST_TEST(std::count(row.begin(), row.end(), b.query.values[i]) == 1);
  }
  BOOST_TEST(positions.size() == 6u);
  BOOST_TEST(values.size() == 4u);
  BOOST_TEST(task.eval_set().size() == 40u);
  BOOST_CHECK_THROW(lab::RetrievalTask({.pairs = 11, .keys = 10}), ag::Error);
  BOOST_CHECK_THROW(lab::RetrievalTask({.values = 1}), ag::Error);
}

BOOST_AUTO_TEST_CASE(retrieval_deterministic_and_uniform) {
  lab::RetrievalTask a({.seed = 5, .eval_size = 4000}), b({.seed = 5, .eval_size = 4000}), c({.seed = 6, .eval_size = 4000});
  BOOST_TEST(a.next_batch().keys.values == b.next_batch().keys.values);
  BOOST_TEST(a.eval_set().values.values == b.eval_set().values.values);
  BOOST_TEST(a.eval_set().keys.values != c.eval_set().keys.values);
  // Every position and every value equally likely: nothing but the query tells the answer.
  std::vector<int> at(16), val(16);
  for (std::size_t i = 0; i < 4000; ++i) ++at[std::size_t(a.eval_set().position.values[i])], ++val[std::size_t(a.eval_set().targets.values[i])];
  for (int k = 0; k < 16; ++k) {
    BOOST_TEST(std::abs(at[k] / 4000.0 - 1.0 / 16) < 0.02);
    BOOST_TEST(std::abs(val[k] / 4000.0 - 1.0 / 16) < 0.02);
  }
}

// ---- sequence reversal ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(reversal_layout_fixed_length) {
  lab::ReversalTask task({.min_len = 6, .max_len = 6, .batch_size = 8, .seed = 4, .eval_size = 20});
  BOOST_TEST(task.vocab_size() == 13);
  auto b = task.next_batch();
  BOOST_TEST(ag::shape_str(b.src.shape) == "[8,6]");
  BOOST_TEST(ag::shape_str(b.dec_in.shape) == "[8,7]");
  BOOST_TEST(ag::shape_str(b.dec_target.shape) == "[8,7]");
  const auto src = rows_of(b.src), din = rows_of(b.dec_in), dtg = rows_of(b.dec_target);
  for (std::size_t i = 0; i < 8; ++i) {
    BOOST_TEST(b.src_lengths[i] == 6);
    BOOST_TEST(b.tgt_lengths[i] == 7);
    std::vector<std::int64_t> rev(src[i].rbegin(), src[i].rend());
    for (auto s : src[i]) BOOST_TEST((s >= lab::kFirstSymbol && s < 13));
    BOOST_TEST(din[i][0] == lab::BOS);
    BOOST_TEST(std::vector<std::int64_t>(din[i].begin() + 1, din[i].end()) == rev);
    BOOST_TEST(std::vector<std::int64_t>(dtg[i].begin(), dtg[i].begin() + 6) == rev);
    BOOST_TEST(dtg[i][6] == lab::EOS);
    // decode: letters, reversed
    std::string s = task.vocab().decode(b.src, i), t = task.vocab().decode(b.dec_target, i);
    BOOST_TEST(std::string(s.rbegin(), s.rend()) == t);
    BOOST_TEST(task.vocab().decode(b.dec_in, i) == t);
  }
}

BOOST_AUTO_TEST_CASE(reversal_variable_length_padding) {
  lab::ReversalTask task({.min_len = 2, .max_len = 9, .symbols = 5, .batch_size = 64, .seed = 1, .eval_size = 10});
  auto b = task.next_batch();
  const std::int64_t S = *std::max_element(b.src_lengths.begin(), b.src_lengths.end());
  BOOST_TEST(b.src.shape[1] == static_cast<std::size_t>(S));
  BOOST_TEST(b.dec_in.shape[1] == static_cast<std::size_t>(S + 1));
  std::set<std::int64_t> lengths(b.src_lengths.begin(), b.src_lengths.end());
  BOOST_TEST(lengths.size() > 3u);
  const auto src = rows_of(b.src), din = rows_of(b.dec_in), dtg = rows_of(b.dec_target);
  for (std::size_t i = 0; i < 64; ++i) {
    const auto L = static_cast<std::size_t>(b.src_lengths[i]);
    BOOST_TEST((L >= 2 && L <= 9));
    BOOST_TEST(b.tgt_lengths[i] == static_cast<std::int64_t>(L + 1));
    for (std::size_t t = 0; t < src[i].size(); ++t) {
      if (t < L) {
        BOOST_TEST((src[i][t] >= lab::kFirstSymbol && src[i][t] < lab::kFirstSymbol + 5));
        BOOST_TEST(dtg[i][t] == src[i][L - 1 - t]);
        BOOST_TEST(din[i][t + 1] == src[i][L - 1 - t]);
      } else {
        BOOST_TEST(src[i][t] == lab::PAD);
      }
    }
    BOOST_TEST(din[i][0] == lab::BOS);
    BOOST_TEST(dtg[i][L] == lab::EOS);
    for (std::size_t t = L + 1; t < dtg[i].size(); ++t) {
      BOOST_TEST(dtg[i][t] == lab::IGNORE);
      BOOST_TEST(din[i][t] == lab::PAD);
    }
  }
  BOOST_TEST(lab::IGNORE == -100);  // cross_entropy's default ignore_index
}

BOOST_AUTO_TEST_CASE(reversal_deterministic_and_eval) {
  lab::ReversalTask a({.min_len = 3, .max_len = 12, .seed = 5, .eval_size = 200}),
      b({.min_len = 3, .max_len = 12, .seed = 5, .eval_size = 200}),
      c({.min_len = 3, .max_len = 12, .seed = 6, .eval_size = 200});
  BOOST_TEST(same(a.next_batch(), b.next_batch()));
  BOOST_TEST(!same(a.next_batch(), c.next_batch()));
  BOOST_TEST(same(a.eval_set(), b.eval_set()));
  BOOST_TEST(!same(a.eval_set(), c.eval_set()));
  const auto before = a.eval_set().src.values;
  for (int i = 0; i < 5; ++i) a.next_batch();
  BOOST_TEST(a.eval_set().src.values == before);
  BOOST_TEST(a.eval_set().size() == 200u);
  BOOST_CHECK_THROW(lab::ReversalTask({.min_len = 5, .max_len = 4}), ag::Error);
  BOOST_CHECK_THROW(lab::ReversalTask({.symbols = 0}), ag::Error);
}

// ---- dates ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(dates_hand_examples) {
  using lab::DateFormat;
  const lab::Date d{1999, 5, 3};
  BOOST_TEST(lab::DateTask::format(d, DateFormat::DayMonthYear) == "3 may 1999");
  BOOST_TEST(lab::DateTask::format(d, DateFormat::MonthDayYear) == "may 3, 1999");
  BOOST_TEST(lab::DateTask::format(d, DateFormat::Dotted) == "3.5.1999");
  BOOST_TEST(lab::DateTask::format(d, DateFormat::YearMonthDay) == "1999 may 3");
  BOOST_TEST(lab::DateTask::iso(d) == "1999-05-03");
  BOOST_TEST(lab::DateTask::iso({2024, 12, 31}) == "2024-12-31");
  BOOST_TEST(lab::DateTask::format({2000, 2, 29}, DateFormat::MonthDayYear) == "february 29, 2000");
  BOOST_CHECK_THROW(lab::DateTask::iso({1900, 2, 29}), ag::Error);  // 1900 is not a leap year
  BOOST_CHECK_THROW(lab::DateTask::iso({1999, 13, 1}), ag::Error);

  lab::DateTask task({.seed = 0, .eval_size = 10});
  auto b = task.encode({{d, DateFormat::DayMonthYear},
                        {d, DateFormat::MonthDayYear},
                        {d, DateFormat::Dotted},
                        {{1987, 11, 23}, DateFormat::YearMonthDay}});
  BOOST_TEST(task.src_vocab().decode(b.src, 0) == "3 may 1999");
  BOOST_TEST(task.src_vocab().decode(b.src, 1) == "may 3, 1999");
  BOOST_TEST(task.src_vocab().decode(b.src, 2) == "3.5.1999");
  BOOST_TEST(task.src_vocab().decode(b.src, 3) == "1987 november 23");
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(task.tgt_vocab().decode(b.dec_target, i) == "1999-05-03");
  BOOST_TEST(task.tgt_vocab().decode(b.dec_target, 3) == "1987-11-23");
  BOOST_TEST(task.tgt_vocab().decode(b.dec_in, 3) == "1987-11-23");
  BOOST_TEST(b.src_lengths[1] == 11);
  BOOST_TEST(b.src.shape[1] == 16u);  // "1987 november 23"
  BOOST_TEST(b.dec_target.shape[1] == 11u);  // 10 characters + EOS
  BOOST_TEST(b.dec_in.values[0] == lab::BOS);
  BOOST_TEST(b.dec_target.values[10] == lab::EOS);
  BOOST_TEST(task.tgt_vocab().size() == 14);  // PAD BOS EOS - 0..9
}

BOOST_AUTO_TEST_CASE(dates_encode_decode_roundtrip) {
  lab::DateTask task({.batch_size = 200, .seed = 3, .eval_size = 10});
  const auto& sv = task.src_vocab();
  for (const std::string s : {"3 may 1999", "december 25, 2012", "1.1.1900", "2099 august 9"})
    BOOST_TEST(sv.decode(sv.encode(s)) == s);
  BOOST_CHECK_THROW(sv.encode("3 MAY 1999"), ag::Error);
  // Ids: specials first, decode stops at EOS and skips PAD/BOS/IGNORE.
  const auto& tv = task.tgt_vocab();
  std::vector<std::int64_t> ids = {lab::BOS, tv.id('1'), lab::PAD, tv.id('-'), lab::IGNORE, lab::EOS, tv.id('9')};
  BOOST_TEST(tv.decode(ids) == "1-");
  BOOST_TEST(tv.ch(lab::PAD) == '?');

  // Every random example: the source, read by an independent parser, gives the target.
  auto b = task.next_batch();
  std::set<int> formats_seen;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const std::string src = sv.decode(b.src, i), tgt = tv.decode(b.dec_target, i);
    BOOST_TEST(parse_date(src) == tgt, "source \"" << src << "\"");
    BOOST_TEST(tgt.size() == 10u);
    BOOST_TEST(b.src_lengths[i] == static_cast<std::int64_t>(src.size()));
    const int year = std::stoi(tgt.substr(0, 4));
    BOOST_TEST((year >= 1900 && year <= 2099));
    formats_seen.insert(src.find('.') != std::string::npos ? 0 : src.find(',') != std::string::npos ? 1
                                                            : std::isdigit(static_cast<unsigned char>(src[0])) && src[4] == ' ' ? 2 : 3);
  }
  BOOST_TEST(formats_seen.size() >= 3u);
}

BOOST_AUTO_TEST_CASE(dates_deterministic_and_eval) {
  lab::DateTask a({.seed = 1, .eval_size = 100}), b({.seed = 1, .eval_size = 100}), c({.seed = 2, .eval_size = 100});
  BOOST_TEST(same(a.next_batch(), b.next_batch()));
  BOOST_TEST(!same(a.next_batch(), c.next_batch()));
  BOOST_TEST(same(a.eval_set(), b.eval_set()));
  BOOST_TEST(!same(a.eval_set(), c.eval_set()));
  std::set<std::string> train;
  for (int i = 0; i < 10; ++i) {
    auto t = a.next_batch();
    for (std::size_t r = 0; r < t.size(); ++r) train.insert(a.src_vocab().decode(t.src, r));
  }
  ag::Generator eval_gen(lab::derive_seed(1, lab::kEvalStream));
  BOOST_TEST(same(a.sample(eval_gen, 100), a.eval_set()));
  ag::Generator train_gen(lab::derive_seed(1, lab::kTrainStream));
  BOOST_TEST(!same(a.sample(train_gen, 100), a.eval_set()));
}

BOOST_AUTO_TEST_CASE(seq2seq_batch_from_ids) {
  auto b = lab::make_seq2seq_batch({{3, 4, 5}, {6}}, {{7}, {8, 9}});
  BOOST_TEST(b.src.values == (std::vector<std::int64_t>{3, 4, 5, 6, 0, 0}));
  BOOST_TEST(b.dec_in.values == (std::vector<std::int64_t>{1, 7, 0, 1, 8, 9}));
  BOOST_TEST(b.dec_target.values == (std::vector<std::int64_t>{7, 2, -100, 8, 9, 2}));
  BOOST_TEST(b.tgt_lengths == (std::vector<std::int64_t>{2, 3}));
  BOOST_CHECK_THROW(lab::make_seq2seq_batch({{3}}, {}), ag::Error);
}

BOOST_AUTO_TEST_CASE(count_correct_takes_the_first_largest_logit) {
  // rows: class 2 largest; a tie between 0 and 1 (the first wins); class 1 largest
  const ag::Tensor logits = ag::tensor({0.1, 0.2, 0.9, 0.5, 0.5, 0.0, -1.0, 3.0, 2.0}, {3, 3});
  BOOST_TEST(lab::count_correct(logits, ag::Indices({2, 0, 1})) == 3u);
  BOOST_TEST(lab::count_correct(logits, ag::Indices({2, 1, 0})) == 1u);
  BOOST_CHECK_THROW(lab::count_correct(logits, ag::Indices({2, 0})), ag::Error);
}

BOOST_AUTO_TEST_SUITE_END()
