#pragma once
// Choosing the next token from a language model's logits: greedy, temperature, top-k and top-p
// (nucleus) sampling, seeded. Shape legend: B batch, V vocabulary.
//
// The order is Hugging Face's: logits / temperature, then top-k, then top-p, then renormalise and
// draw. One uniform number from the generator per token drawn (none when greedy), compared
// against the cumulative probabilities in token order, so a fixed seed gives fixed text.
#include <cstdint>
#include <vector>

#include "ag/ops.hpp"

namespace nn {

struct SamplingOptions {
  bool greedy = false;       // the most likely token (the lowest id among ties); no draw
  double temperature = 1.0;  // > 0: p = softmax(logits / temperature); < 1 sharpens, > 1 flattens
  std::size_t top_k = 0;     // keep the k most likely tokens (ties: lower id first); 0 keeps all
  // Nucleus sampling (Holtzman et al. 2020): keep the smallest set of most likely tokens whose
  // probability reaches top_p (at least one token); 1 keeps all. In (0, 1].
  double top_p = 1.0;
};

// The distribution a draw comes from after temperature, top-k and top-p, renormalised: [V], zeros
// where a token was cut (one 1 when greedy). logits: [V]. Errors: empty logits, temperature <= 0
// or not finite, top_p outside (0, 1], a logit that is NaN.
std::vector<double> sampling_distribution(const std::vector<double>& logits, const SamplingOptions& o = {});

// One token id from logits [V].
std::int64_t sample_token(const std::vector<double>& logits, const SamplingOptions& o, ag::Generator& gen);

// One token id per row of logits [B, V] (or [V]: one id). Errors: logits of other ranks, as above.
ag::Indices sample(const ag::Tensor& logits, const SamplingOptions& o, ag::Generator& gen);

}  // namespace nn
