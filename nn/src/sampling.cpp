#include "nn/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace nn {

std::vector<double> sampling_distribution(const std::vector<double>& logits, const SamplingOptions& o) {
  const std::size_t V = logits.size();
  if (V == 0) ag::fail("sampling: empty logits");
  if (!(o.temperature > 0.0) || !std::isfinite(o.temperature))
    ag::fail("sampling: temperature must be finite and > 0, got ", o.temperature, " (use greedy for the most likely token)");
  if (!(o.top_p > 0.0 && o.top_p <= 1.0)) ag::fail("sampling: top_p must be in (0, 1], got ", o.top_p);
  for (double l : logits)
    if (std::isnan(l)) ag::fail("sampling: a logit is NaN (", V, " logits)");
  // Token ids from the most likely down; ties keep the lower id first.
  std::vector<std::size_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return logits[a] > logits[b]; });
  std::vector<double> p(V, 0.0);
  if (o.greedy) {
    p[order[0]] = 1.0;
    return p;
  }
  // softmax(logits / temperature) over the tokens that top-k keeps, from the largest logit
  const std::size_t keep_k = o.top_k == 0 ? V : std::min(o.top_k, V);
  const double top = logits[order[0]] / o.temperature;
  double sum = 0;
  for (std::size_t r = 0; r < keep_k; ++r) sum += (p[order[r]] = std::exp(logits[order[r]] / o.temperature - top));
  for (std::size_t r = 0; r < keep_k; ++r) p[order[r]] /= sum;
  // top-p: keep tokens in order while the probability kept so far is below top_p
  if (o.top_p < 1.0) {
    double kept = 0;
    std::size_t r = 0;
    while (r < keep_k && (r == 0 || kept < o.top_p)) kept += p[order[r++]];
    for (std::size_t c = r; c < keep_k; ++c) p[order[c]] = 0.0;
    for (std::size_t c = 0; c < r; ++c) p[order[c]] /= kept;
  }
  return p;
}

std::int64_t sample_token(const std::vector<double>& logits, const SamplingOptions& o, ag::Generator& gen) {
  const std::vector<double> p = sampling_distribution(logits, o);
  if (o.greedy) return std::int64_t(std::max_element(p.begin(), p.end()) - p.begin());
  const double u = gen.uniform();
  double acc = 0;
  std::size_t last = 0;  // the last token that can be drawn (rounding can leave acc a hair below u)
  for (std::size_t c = 0; c < p.size(); ++c) {
    if (p[c] == 0.0) continue;
    last = c;
    if ((acc += p[c]) > u) return std::int64_t(c);
  }
  return std::int64_t(last);
}

ag::Indices sample(const ag::Tensor& logits, const SamplingOptions& o, ag::Generator& gen) {
  if (!logits.defined() || (logits.dim() != 1 && logits.dim() != 2))
    ag::fail("sample: logits must be [V] or [B, V], got ", logits.defined() ? ag::shape_str(logits.shape()) : "an undefined tensor");
  const std::size_t V = logits.shape().back(), B = logits.dim() == 2 ? logits.shape()[0] : 1;
  const std::vector<double> all = logits.to_vector();
  std::vector<std::int64_t> ids(B);
  for (std::size_t b = 0; b < B; ++b)
    ids[b] = sample_token(std::vector<double>(all.begin() + std::ptrdiff_t(b * V), all.begin() + std::ptrdiff_t((b + 1) * V)), o, gen);
  return ag::Indices(ids, {B});
}

}  // namespace nn
