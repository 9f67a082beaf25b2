#pragma once
// Beam search for encoder-decoders (Sutskever et al. 2014, section 3.1; the length penalty of
// Wu et al. 2016, section 7): keep the k most probable partial outputs of each example instead
// of the one greedy decoding keeps. Shape legend: B batch, k beam size, N = B k rows (row
// b k + j: example b, beam j), V vocabulary, t tokens decoded so far.
//
// Each step, every live hypothesis y_1..t of an example is extended by every token, scored by
// log p(y_1..t+1) = log p(y_1..t) + log p(y_t+1 | y_1..t, x); the 2k best extensions are walked in
// order: one ending in EOS is finished, the others fill the k beams of the next step (2k: at most
// k of them can end, one per beam, so k always go on). A hypothesis is compared with others by
//   score(Y) = log p(Y) / lp(|Y|),   lp(n) = ((5 + n) / 6)^alpha      (Wu et al. 2016, eq. 14)
// |Y| counting EOS; alpha = 0 compares plain log-probabilities, alpha > 0 favours longer outputs.
// An example stops when its best finished score cannot be beaten: log p only falls as tokens are
// added, so no live hypothesis can score above log p(now) / lp(max_len). At max_len the live
// hypotheses count as finished. The search is exact within its beams: stopping early never
// changes the answer. With k = 1 and alpha = 0 it is greedy decoding (ties go to the lower token
// id, as there), stopped at EOS; in float32 two logits a hair apart can round to the same
// log-probability, and then the lower id wins where greedy's argmax of the logits might not.
//
// Unlike Hugging Face's and fairseq's searches, every EOS extension among the 2k best is kept as
// finished (they keep those within the top k only): this can only raise the score returned.
#include <cstdint>
#include <functional>
#include <vector>

#include "ag/ops.hpp"

namespace nn {

struct BeamSearchOptions {
  std::size_t beam_size = 4;  // k >= 1
  std::size_t max_len = 50;   // tokens decoded at most, EOS included; >= 1
  std::int64_t eos = -1;      // the end token; < 0: none, every hypothesis runs max_len tokens
  // alpha >= 0 in Wu et al.'s lp(n) = ((5 + n) / 6)^alpha (their coverage penalty is left out).
  // Hugging Face's length_penalty is an exponent too, but of the plain length (score = log p / n^alpha,
  // n counting the start token): the same alpha ranks differently there.
  double length_penalty = 0;
};

struct BeamSearchResult {
  ag::Indices ids;                   // [B, max_len]: each example's best hypothesis; EOS repeated after its end
  std::vector<std::size_t> lengths;  // [B] its tokens, EOS included
  std::vector<double> log_probs;     // [B] log p(Y | x), the sum over its tokens (EOS included)
  std::vector<double> scores;        // [B] log p / lp(length): what the search maximised
};

// The model's next-token log-probabilities for every row: [N, V] (a float Tensor; its rows sum to
// 1 in probability). parents[r]: the row of the previous step that row r continues (a recurrent
// state is reordered with it: take_rows; the identity at the first step); prefixes: [N, t + 1],
// each row's tokens so far after BOS. Rows of dead beams (at the first step, every beam but the
// first; later, the beams of an example already done) hold BOS as filler, and their answers are
// never read.
using NextLogProbs = std::function<ag::Tensor(const std::vector<std::size_t>& parents, const ag::Indices& prefixes)>;

// Errors (ag::Error, "beam_search: ..."): batch 0, beam_size 0, max_len 0, length_penalty < 0 or
// not finite (check_beam_search raises these before any work), a next() result that is not
// [N, V] (V > eos) or holds NaN, an example with no hypothesis of finite log-probability (every
// token ruled out with -inf).
BeamSearchResult beam_search(std::size_t batch, std::int64_t bos, const BeamSearchOptions& o, const NextLogProbs& next);
void check_beam_search(std::size_t batch, const BeamSearchOptions& o);

// Each row of ids [B, S] k times in a row: [B k, S] (an encoder input for B k beams).
// Errors: ids not 2-D.
ag::Indices repeat_rows(const ag::Indices& ids, std::size_t k);
// Teacher forcing's decoder input for the outputs ids [B, T]: BOS, then each row's first T - 1
// tokens: [B, T]. Errors: ids not 2-D.
ag::Indices shift_right(const ag::Indices& ids, std::int64_t bos);
// log p(Y | x) of each row of ids [B, T], from the logits [B, T, V] of the model run teacher-forced
// on shift_right(ids, bos): the sum over t of log_softmax(logits)[b, t, y_t], up to and including
// the row's first eos (eos < 0: every token). The log_probs a search reports, found independently,
// and how to score an output the search did not return (the right answer, say). [B] in float64.
// Errors: logits not [B, T, V] for ids [B, T], a token outside [0, V).
std::vector<double> sequence_log_probs(const ag::Tensor& logits, const ag::Indices& ids, std::int64_t eos);
// x's rows in the order `rows`: [rows.size(), ...] (a gather along axis 0; differentiable).
// Errors: x 0-D, a row past x's first axis.
ag::Tensor take_rows(const ag::Tensor& x, const std::vector<std::size_t>& rows);

}  // namespace nn
