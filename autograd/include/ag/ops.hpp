#pragma once
// Every differentiable op of attnlab. Binary element-wise ops broadcast as NumPy does; their
// backward sums the gradient back to each input's shape. Axes may be negative (from the end).
// Shape legend used in comments: B batch, T time, D features, C classes, V vocabulary.
#include <cstdint>
#include <optional>
#include <vector>

#include "ag/mask.hpp"
#include "ag/tensor.hpp"

namespace ag {

// ---- element-wise, binary (broadcasting) -------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// a^b. Gradients as PyTorch's, also at the boundaries: d/da is 0 where b = 0 (a^0 is the
// constant 1, even at a = 0); d/db = a^b log a, taken as 0 at a = 0 with b >= 0.
Tensor pow(const Tensor& a, const Tensor& b);
// cond != 0 picks a, else b; cond carries no gradient.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with value wherever mask is true (PyTorch's masked_fill with a bool mask) or, for a Tensor
// mask, nonzero. mask broadcasts to x; no gradient flows to filled places.
Tensor masked_fill(const Tensor& x, const Mask& mask, double value);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- element-wise with a scalar ----------------------------------------------------------
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor rsub(const Tensor& a, double s);  // s - a
Tensor rdiv(const Tensor& a, double s);  // s / a
Tensor pow(const Tensor& a, double exponent);  // d/da = exponent a^(exponent-1); 0 for exponent 0

// ---- element-wise, unary -----------------------------------------------------------------
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);  // relu(NaN) = NaN (a diverged run stays visible); gradient 0 at x <= 0
// ELU (Clevert et al. 2016): x for x > 0, alpha (exp(x) - 1) otherwise; PyTorch's F.elu. Gradient
// 1 for x > 0, alpha exp(x) otherwise. elu(x) + 1 > 0 is linear attention's feature map.
Tensor elu(const Tensor& x, double alpha = 1.0);
// GELU (Hendrycks & Gimpel 2016), with PyTorch's names:
//   none (PyTorch's default, F.gelu(x)):  x Phi(x) = x/2 (1 + erf(x / sqrt 2))
//   tanh (F.gelu(x, approximate="tanh"), GPT-2):  x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// The two differ by up to ~5e-4 (at |x| near 2): a checkpoint moved between frameworks must keep
// its approximation.
enum class GeluApproximate { none, tanh };
Tensor gelu(const Tensor& x, GeluApproximate approximate = GeluApproximate::none);
Tensor abs(const Tensor& x);   // gradient sign(x), 0 at 0
Tensor clamp(const Tensor& x, double lo, double hi);  // gradient 1 inside [lo, hi], 0 outside

// ---- reductions --------------------------------------------------------------------------
Tensor sum(const Tensor& x);  // all elements -> shape []
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor max(const Tensor& x);  // gradient goes to the first maximal element
Tensor max(const Tensor& x, int axis, bool keepdim = false);

// ---- shape -------------------------------------------------------------------------------
Tensor reshape(const Tensor& x, std::vector<std::int64_t> shape);  // one entry may be -1
Tensor flatten(const Tensor& x, int start_axis = 0, int end_axis = -1);
Tensor unsqueeze(const Tensor& x, int axis);
Tensor squeeze(const Tensor& x, int axis);  // the axis must have size 1
Tensor transpose(const Tensor& x, int dim0, int dim1);
Tensor permute(const Tensor& x, const std::vector<int>& dims);
Tensor slice(const Tensor& x, int axis, std::int64_t start, std::int64_t stop, std::int64_t step = 1);
Tensor select(const Tensor& x, int axis, std::int64_t index);  // removes the axis
Tensor concat(const std::vector<Tensor>& xs, int axis);
Tensor stack(const std::vector<Tensor>& xs, int axis);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast to shape
// Multi-head attention's head split and merge (Vaswani et al. 2017, 3.2.2), each one copy where
// the composed form takes three (H heads, d their width, C = x's features; legend below):
// split_heads: x [B, T, C] -> [B, n, T, d], the n heads in features [offset, offset + n d), equal to
//   permute(reshape(slice(x, -1, offset, offset + n d), {B, T, n, d}), {0, 2, 1, 3});
//   a fused qkv projection [B, T, 3D] gives q, k and v with offsets 0, D and 2D.
//   Errors: x not 3-d, n or d zero, offset + n d > C.
// merge_heads: o [B, H, T, d] -> [B, T, H d], equal to reshape(permute(o, {0, 2, 1, 3}), {B, T, H d}).
//   Errors: o not 4-d.
Tensor split_heads(const Tensor& x, std::size_t num_heads, std::size_t head_dim, std::size_t offset = 0);
Tensor merge_heads(const Tensor& o);

// ---- linear algebra ----------------------------------------------------------------------
// a: [..., M, K], b: [..., K, N] -> [..., M, N]; batch dims broadcast. 1-D operands are
// treated as in NumPy (a vector on the left is a row, on the right a column, then dropped).
Tensor matmul(const Tensor& a, const Tensor& b);
// y = x W^T + b, the affine map of nn::Linear in one gemm (W's transpose is a gemm flag).
// x: [..., in], weight: [out, in] (PyTorch's layout), bias: [out] or undefined -> [..., out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// ---- recurrent cells (fused: one step, with its own backward) --------------------------------
// One step t of a cell whose input projections xp = x W_ih^T + b_ih are already computed for
// every step: xp [B, T, G*H] (or [B, G*H] with t = 0), h_prev / c_prev [B, H], weight_hh
// [G*H, H], bias_hh [G*H] or undefined; gate order as PyTorch (LSTM i f g o, GRU r z n).
// The same maths as nn::recurrent_step's composition of ops, keeping only what backward needs.
Tensor rnn_cell(const Tensor& xp, std::size_t t, const Tensor& h_prev, const Tensor& weight_hh, const Tensor& bias_hh);
struct LstmState {
  Tensor h, c;
};
LstmState lstm_cell(const Tensor& xp, std::size_t t, const Tensor& h_prev, const Tensor& c_prev, const Tensor& weight_hh,
                    const Tensor& bias_hh);
Tensor gru_cell(const Tensor& xp, std::size_t t, const Tensor& h_prev, const Tensor& weight_hh, const Tensor& bias_hh);

// ---- neural-network ops ------------------------------------------------------------------
Tensor softmax(const Tensor& x, int axis = -1);
Tensor log_softmax(const Tensor& x, int axis = -1);
// Normalises over the last axis, then scales by weight [D] and shifts by bias [D] when defined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// weight: [V, D], ids: any shape S with values in [0, V) -> [S..., D]. Backward: scatter-add.
// padding_idx (PyTorch's; -V <= p < V, negative counts from the end): that row gets no gradient.
Tensor embedding(const Tensor& weight, const Indices& ids, std::optional<std::int64_t> padding_idx = {});
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

enum class Reduction { mean, sum, none };
struct CrossEntropyOptions {
  std::int64_t ignore_index = -100;  // targets equal to it contribute nothing (padding)
  Reduction reduction = Reduction::mean;  // mean over the targets that are not ignored
  // Label smoothing (Szegedy et al. 2016; Vaswani et al. 2017 use 0.1), in [0, 1]: the target
  // distribution is (1 - label_smoothing) on the class plus label_smoothing / C on every class.
  double label_smoothing = 0.0;
  // A weight per class, [C] (any dtype, no gradient): PyTorch's `weight`. Row r's loss is scaled by
  // weight[target_r] (its smoothing term by each class's weight), and the mean divides by the sum
  // of weight[target_r] over the rows not ignored instead of their count.
  Tensor weight{};
};
// logits: [N, C] or [..., C]; targets: N (or ...) class ids. Fused log_softmax + NLL, PyTorch's
// torch.nn.functional.cross_entropy: with q the smoothed target distribution and w the weights,
//   loss_r = (1 - ls) w[y_r] (-log p_r[y_r]) + (ls / C) sum_c w[c] (-log p_r[c]).
// Errors: targets out of range, weight not [C], label_smoothing outside [0, 1].
Tensor cross_entropy(const Tensor& logits, const Indices& targets, CrossEntropyOptions o = {});
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::mean);

// ---- attention -----------------------------------------------------------------------------
// softmax(q k^T * scale + mask) over the keys, in one op: the attention weights [..., Tq, Tk].
// The same as softmax(masked_fill(matmul(q * scale, transpose(k)) + bias, blocked, -inf)) without
// keeping the scores (only the weights, which backward needs); its backward works one [Tq, Tk]
// slice at a time. q: [..., Tq, d], k: [..., Tk, d] with equal batch dims; mask as for
// tiled_attention below; scale 0 -> 1/sqrt(d). A row with every key blocked gets zero weights.
Tensor attention_weights(const Tensor& q, const Tensor& k, const AttentionMask& mask = {}, double scale = 0);

// softmax(q k^T * scale + mask) v without ever holding the [..., Tq, Tk] matrix of weights: keys
// are visited block by block with an online softmax (FlashAttention), forward and backward.
// q: [..., Tq, d], k: [..., Tk, d], v: [..., Tk, dv] -> [..., Tq, dv]; the batch dims "..."
// (e.g. [B, H]) must be equal. mask (optional; PyTorch's rule, ag/mask.hpp): an ag::Mask blocks
// where true, a float Tensor is added to the scores and gets a gradient; either broadcasts to
// [..., Tq, Tk] (e.g. key padding [B, 1, 1, Tk], or [Tq, Tk]). causal blocks key j > query i.
// A query row with every key blocked gives output 0 and zero gradients (no NaN).
// Errors: shapes that do not fit, a mask that does not broadcast, a float mask of only 0s and 1s
// (ambiguous: see AttentionMask), block 0, a scale that is not finite, global tokens without a
// window or past the keys.
// Saved for backward: the output and each row's max and log-sum [..., Tq]; extra memory O(block * T).
struct TiledAttentionOptions {
  double scale = 0;        // 0 -> 1/sqrt(d)
  bool causal = false;     // block key j > query i's position (query_offset + i)
  std::size_t block = 64;  // queries and keys per tile
  // The position of query row 0 among the keys: query row i is at position query_offset + i,
  // key row j at j. 0 (the default) aligns both at the top left; Tk - Tq aligns the last query
  // with the last key, as in incremental decoding with a KV cache (nn::KVCache). Causality and
  // ALiBi's distances use these positions.
  std::size_t query_offset = 0;
  // ALiBi (Press et al. 2022): adds -m_h * (i - j) to the score of query i for key j in head h
  // (-m_h * |i - j| when alibi_symmetric; i, j positions), computed tile by tile: no [Tq, Tk] bias is ever held.
  // One slope per head, the last batch dim of q (e.g. H of [B, H, Tq, d]); empty: no ALiBi.
  // nn::alibi_slopes(H) gives the paper's. No gradient (the slopes are constants).
  std::vector<double> alibi_slopes = {};
  bool alibi_symmetric = false;
  // Sliding-window attention (local attention; Beltagy et al. 2020, Mistral's sliding window): the
  // query at position i sees only keys j with |i - j| <= window, so i - window .. i under causal
  // (FlashAttention's window_size = (window, window)). Tiles wholly outside the band are skipped,
  // forward and backward: time and memory grow as T * window, not T^2. Unset: every key.
  std::optional<std::size_t> window = {};
  // Global tokens (Longformer; Beltagy et al. 2020, section 3.1), with a window only: these
  // positions attend to every key and every query attends to them (causality still applies).
  // Each must be a key position (< Tk); the same positions for every slice.
  std::vector<std::size_t> global_tokens = {};
};
Tensor tiled_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask = {},
                       TiledAttentionOptions o = {});

// Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs", eqs. 4-9): with the
// softmax's exp(q . k) replaced by a kernel phi(q) . phi(k), the sums regroup and no [Tq, Tk]
// matrix is ever formed. Takes the feature maps themselves (the paper's phi(x) = elu(x) + 1 is
// applied by the caller, nn::MultiHeadAttention with AttentionImpl::linear):
//   non-causal: out_i = phi_q_i^T S / (phi_q_i^T z + eps),  S = sum_j phi_k_j v_j^T  [d, dv],
//                                                            z = sum_j phi_k_j       [d]
//   causal:     the same with S_i, z_i summed over j <= i only (running prefix sums: an RNN whose
//               state is the d x dv matrix S_i)
// phi_q: [..., Tq, d], phi_k: [..., Tk, d], v: [..., Tk, dv] -> [..., Tq, dv], batch dims equal;
// causal needs Tq = Tk. The features should be non-negative (the weights phi_q . phi_k then are);
// this is not checked. Time O(T d dv), memory O(T (d + dv)): the causal form runs in chunks of
// 64 rows (a [64, 64] tile inside a chunk, the running S between chunks), and its backward
// recomputes the running sums forward and backward instead of keeping S_i per position.
// eps (the paper's 1e-6) keeps a row whose features are all 0 finite (its output is then 0);
// with eps = 0 such a row is 0 / 0 = NaN. Errors: shapes that do not fit, causal with Tq != Tk,
// eps < 0 or not finite.
struct LinearAttentionOptions {
  bool causal = false;
  double eps = 1e-6;
};
Tensor linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, LinearAttentionOptions o = {});

// Rotary position embedding (RoPE; Su et al. 2021, eq. 34): row t of x [..., T, d] (d even) is
// at position offset + t; its feature pairs (i, i + d/2) are rotated by the angle
// position * base^(-2i/d), i < d/2. The "halves" pairing of GPT-NeoX and Llama (see
// ops_rope.cpp, Note [rope pairing]); applied to q and k, q_m . k_n depends on n - m only.
// Position 0 is the identity. Backward: the inverse rotation. Errors: x with fewer than 2
// dims, an odd d, base not finite or <= 1.
Tensor rope(const Tensor& x, std::size_t offset = 0, double base = 10000.0);

// ---- operators ---------------------------------------------------------------------------
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return rsub(a, s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& a) { return rdiv(a, s); }

}  // namespace ag
