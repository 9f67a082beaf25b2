#include "nn/beam_search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace nn {

namespace {

constexpr double kNone = -std::numeric_limits<double>::infinity();

double length_penalty(std::size_t n, double alpha) { return alpha == 0 ? 1.0 : std::pow((5.0 + double(n)) / 6.0, alpha); }

struct Hypothesis {
  std::vector<std::int64_t> tokens;  // after BOS
  double log_prob = kNone;
};

}  // namespace

ag::Indices repeat_rows(const ag::Indices& ids, std::size_t k) {
  if (ids.shape.size() != 2) ag::fail("repeat_rows: ids should be [B, S], got ", ag::shape_str(ids.shape));
  const std::size_t B = ids.shape[0], S = ids.shape[1];
  std::vector<std::int64_t> out;
  out.reserve(B * k * S);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t j = 0; j < k; ++j) out.insert(out.end(), ids.values.begin() + std::ptrdiff_t(b * S), ids.values.begin() + std::ptrdiff_t((b + 1) * S));
  return ag::Indices(std::move(out), {B * k, S});
}

ag::Indices shift_right(const ag::Indices& ids, std::int64_t bos) {
  if (ids.shape.size() != 2) ag::fail("shift_right: ids should be [B, T], got ", ag::shape_str(ids.shape));
  const std::size_t B = ids.shape[0], T = ids.shape[1];
  std::vector<std::int64_t> out;
  out.reserve(B * T);
  for (std::size_t b = 0; b < B && T; ++b) {
    out.push_back(bos);
    out.insert(out.end(), ids.values.begin() + std::ptrdiff_t(b * T), ids.values.begin() + std::ptrdiff_t(b * T + T - 1));
  }
  return ag::Indices(std::move(out), {B, T});
}

std::vector<double> sequence_log_probs(const ag::Tensor& logits, const ag::Indices& ids, std::int64_t eos) {
  if (ids.shape.size() != 2 || logits.dim() != 3 || logits.shape()[0] != ids.shape[0] || logits.shape()[1] != ids.shape[1])
    ag::fail("sequence_log_probs: logits ", ag::shape_str(logits.shape()), " should be [B, T, V] for ids ", ag::shape_str(ids.shape));
  const std::size_t B = ids.shape[0], T = ids.shape[1], V = logits.shape()[2];
  const std::vector<double> lp = ag::log_softmax(logits, -1).to_vector();
  std::vector<double> out(B, 0.0);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t t = 0; t < T; ++t) {
      const std::int64_t y = ids.values[b * T + t];
      if (y < 0 || std::size_t(y) >= V) ag::fail("sequence_log_probs: token ", y, " at [", b, ", ", t, "] is outside the vocabulary of ", V);
      out[b] += lp[(b * T + t) * V + std::size_t(y)];
      if (y == eos) break;
    }
  return out;
}

ag::Tensor take_rows(const ag::Tensor& x, const std::vector<std::size_t>& rows) {
  if (x.dim() < 1) ag::fail("take_rows: x should have a first axis, got ", ag::shape_str(x.shape()));
  const std::size_t R = x.shape()[0], rest = R ? x.numel() / R : 0;
  std::vector<std::int64_t> ids;
  for (std::size_t r : rows) {
    if (r >= R) ag::fail("take_rows: row ", r, " of x ", ag::shape_str(x.shape()));
    ids.push_back(std::int64_t(r));
  }
  std::vector<std::int64_t> shape(x.shape().begin(), x.shape().end());
  shape[0] = std::int64_t(rows.size());
  // An embedding lookup is a gather of rows: x as the table [R, rest].
  return ag::embedding(x.reshape({std::int64_t(R), std::int64_t(rest)}), ag::Indices(ids)).reshape(shape);
}

void check_beam_search(std::size_t batch, const BeamSearchOptions& o) {
  if (batch == 0 || o.beam_size == 0 || o.max_len == 0)
    ag::fail("beam_search: batch ", batch, ", beam_size ", o.beam_size, " and max_len ", o.max_len, " should all be at least 1");
  if (!(o.length_penalty >= 0) || !std::isfinite(o.length_penalty))
    ag::fail("beam_search: length_penalty ", o.length_penalty, " should be finite and >= 0");
}

BeamSearchResult beam_search(std::size_t batch, std::int64_t bos, const BeamSearchOptions& o, const NextLogProbs& next) {
  check_beam_search(batch, o);
  const std::size_t B = batch, k = o.beam_size, N = B * k;
  // live[b * k + j]: beam j of example b. At the start only beam 0 is live (all start alike).
  std::vector<Hypothesis> live(N);
  for (std::size_t b = 0; b < B; ++b) live[b * k].log_prob = 0;
  std::vector<std::vector<Hypothesis>> finished(B);
  std::vector<bool> done(B, false);
  std::vector<std::size_t> parents(N);
  for (std::size_t r = 0; r < N; ++r) parents[r] = r;
  auto score = [&](const Hypothesis& h) { return h.log_prob / length_penalty(h.tokens.size(), o.length_penalty); };

  for (std::size_t t = 0; t < o.max_len; ++t) {
    std::vector<std::int64_t> prefixes;
    prefixes.reserve(N * (t + 1));
    for (const Hypothesis& h : live) {
      prefixes.push_back(bos);
      prefixes.insert(prefixes.end(), h.tokens.begin(), h.tokens.end());
      prefixes.resize(prefixes.size() + t - h.tokens.size(), bos);  // a dead beam's row: filler, never read
    }
    const ag::Tensor lp = next(parents, ag::Indices(std::move(prefixes), {N, t + 1}));
    if (lp.dim() != 2 || lp.shape()[0] != N || (o.eos >= 0 && lp.shape()[1] <= std::size_t(o.eos)))
      ag::fail("beam_search: next() gave ", ag::shape_str(lp.shape()), " for ", N, " rows; it should be [", N, ", V]",
               o.eos >= 0 ? " with V above eos " + std::to_string(o.eos) : std::string());
    const std::size_t V = lp.shape()[1];
    const std::vector<double> logp = lp.to_vector();
    for (std::size_t i = 0; i < logp.size(); ++i)
      if (std::isnan(logp[i]) && live[i / V].log_prob != kNone)
        ag::fail("beam_search: next() gave NaN in row ", i / V, " (example ", i / V / k, ", beam ", i / V % k, ") at step ", t);
    std::vector<Hypothesis> next_live(N);
    for (std::size_t b = 0; b < B; ++b) {
      if (done[b]) {
        for (std::size_t j = 0; j < k; ++j) parents[b * k + j] = b * k + j;
        continue;
      }
      // The 2k best extensions (ties: the lower beam, then the lower token, first).
      struct Candidate {
        double log_prob;
        std::size_t beam, token;
      };
      std::vector<Candidate> cands;
      for (std::size_t j = 0; j < k; ++j) {
        const Hypothesis& h = live[b * k + j];
        if (h.log_prob == kNone) continue;
        for (std::size_t v = 0; v < V; ++v) cands.push_back({h.log_prob + logp[(b * k + j) * V + v], j, v});
      }
      const std::size_t keep = std::min(cands.size(), 2 * k);
      std::partial_sort(cands.begin(), cands.begin() + std::ptrdiff_t(keep), cands.end(), [](const Candidate& x, const Candidate& y) {
        return x.log_prob != y.log_prob ? x.log_prob > y.log_prob : x.beam != y.beam ? x.beam < y.beam : x.token < y.token;
      });
      std::size_t filled = 0;
      for (std::size_t c = 0; c < keep && filled < k; ++c) {
        if (cands[c].log_prob == kNone) break;  // a token the model rules out
        Hypothesis h = live[b * k + cands[c].beam];
        h.tokens.push_back(std::int64_t(cands[c].token));
        h.log_prob = cands[c].log_prob;
        if (std::int64_t(cands[c].token) == o.eos) {
          finished[b].push_back(std::move(h));
        } else {
          parents[b * k + filled] = b * k + cands[c].beam;
          next_live[b * k + filled] = std::move(h);
          ++filled;
        }
      }
      for (std::size_t j = filled; j < k; ++j) parents[b * k + j] = b * k + j;  // dead rows
      // Done when no live hypothesis can still beat the best finished one.
      if (!finished[b].empty()) {
        double best = kNone, bound = kNone;
        for (const Hypothesis& h : finished[b]) best = std::max(best, score(h));
        for (std::size_t j = 0; j < filled; ++j)
          bound = std::max(bound, next_live[b * k + j].log_prob / length_penalty(o.max_len, o.length_penalty));
        done[b] = best >= bound;
      }
    }
    live = std::move(next_live);
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
  }

  BeamSearchResult r;
  r.ids = ag::Indices(std::vector<std::int64_t>(B * o.max_len, o.eos >= 0 ? o.eos : 0), {B, o.max_len});
  for (std::size_t b = 0; b < B; ++b) {
    if (!done[b])  // ran to max_len: its live hypotheses end there
      for (std::size_t j = 0; j < k; ++j)
        if (live[b * k + j].log_prob != kNone) finished[b].push_back(live[b * k + j]);
    const Hypothesis* best = nullptr;
    for (const Hypothesis& h : finished[b])
      if (!best || score(h) > score(*best)) best = &h;  // ties: the first found
    if (!best) ag::fail("beam_search: example ", b, " has no hypothesis with a finite log-probability");
    std::copy(best->tokens.begin(), best->tokens.end(), r.ids.values.begin() + std::ptrdiff_t(b * o.max_len));
    r.lengths.push_back(best->tokens.size());
    r.log_probs.push_back(best->log_prob);
    r.scores.push_back(score(*best));
  }
  return r;
}

}  // namespace nn
