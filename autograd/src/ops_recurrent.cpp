// Fused recurrent cells: one step of a tanh RNN, LSTM or GRU as one op with its own backward.
//
// nn::recurrent_step writes the same cells out of engine ops (the readable definition; the tests
// check that both agree to rounding). Built from ops, an LSTM step makes ~15 nodes, and each
// keeps its output alive until backward: the gate slices, the activations, the products. The
// fused cell keeps only what its backward reads:
//   tanh RNN: nothing but h_t (tanh' = 1 - h_t^2)
//   LSTM:     the four activated gates [B, 4H], c_t and h_t
//   GRU:      r, z, n and h_n = (h_{t-1} W_hh^T + b_hh)[n block]: [B, 4H], and h_t
// Shape legend: B batch, T steps, H hidden size, G gates (1, 4, 3), GH = G * H.
//
// Every cell starts with the same pre-activations, gate block by gate block:
//   pre = xp_t + h_{t-1} W_hh^T + b_hh                                       [B, GH]
// so every backward ends the same way: a block of d(pre) flows to xp_t as it is, and through
// the gemm to W_hh, b_hh and h_{t-1} (StepGrad below). The GRU is the one exception: its n block
// sees h_n only through r * h_n, so that block flows to xp_t and to h_{t-1} with different values.
#include <algorithm>
#include <memory>

#include "ag/ops.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {
using detail::gemm;
using detail::make_result;

namespace {

// Input slots of every cell node: xp, h_prev, weight_hh, then the LSTM's c, then the bias if any.
constexpr std::size_t kXp = 0, kHprev = 1, kWeight = 2, kCell = 3;

// The sizes of one step, checked once when the op is made.
struct Step {
  std::size_t B = 0, H = 0, GH = 0;
  std::size_t xp_row = 0;     // distance between batch rows of xp: GH, or T * GH for [B, T, GH]
  std::size_t xp_offset = 0;  // where step t starts in row 0: t * GH
  bool has_bias = false;
  std::size_t bias_slot = 0;
};

Step check_step(const char* op, std::size_t gates, std::size_t bias_slot, const Tensor& xp, std::size_t t, const Tensor& h_prev,
                const Tensor& weight_hh, const Tensor& bias_hh) {
  detail::check_same_dtype(op, xp, h_prev);
  detail::check_same_dtype(op, xp, weight_hh);
  Step s;
  s.bias_slot = bias_slot;
  const auto describe = [&] {
    return std::string(" (xp ") + shape_str(xp.shape()) + ", h_prev " + shape_str(h_prev.shape()) + ", weight_hh " +
           shape_str(weight_hh.shape()) + (bias_hh.defined() ? ", bias_hh " + shape_str(bias_hh.shape()) : "") + ")";
  };
  if (h_prev.dim() != 2) fail(op, ": h_prev must be [batch, hidden]", describe());
  s.B = h_prev.shape()[0];
  s.H = h_prev.shape()[1];
  s.GH = gates * s.H;
  if (weight_hh.shape() != Shape{s.GH, s.H}) fail(op, ": weight_hh should be [", s.GH, ", ", s.H, "]", describe());
  if (xp.dim() == 2 && xp.shape() == Shape{s.B, s.GH}) {
    if (t != 0) fail(op, ": step ", t, " of a single-step input", describe());
    s.xp_row = s.GH;
  } else if (xp.dim() == 3 && xp.shape()[0] == s.B && xp.shape()[2] == s.GH) {
    if (t >= xp.shape()[1]) fail(op, ": step ", t, " out of range for ", xp.shape()[1], " steps", describe());
    s.xp_row = xp.shape()[1] * s.GH;
    s.xp_offset = t * s.GH;
  } else {
    fail(op, ": xp should be [", s.B, ", ", s.GH, "] or [", s.B, ", T, ", s.GH, "]", describe());
  }
  if (bias_hh.defined()) {
    detail::check_same_dtype(op, xp, bias_hh);
    if (bias_hh.shape() != Shape{s.GH}) fail(op, ": bias_hh should be [", s.GH, "]", describe());
    s.has_bias = true;
  }
  return s;
}

// The node's inputs: the given ones, then the bias when there is one (at s.bias_slot).
std::vector<Tensor> with_bias(std::vector<Tensor> inputs, const Step& s, const Tensor& bias_hh) {
  if (s.has_bias) inputs.push_back(bias_hh);
  return inputs;
}

// A step's batch rows in blocks, block(b0, b1) for rows [b0, b1), one block per thread (Note
// [threads] in kernels/kernels.hpp). The rows of a cell are independent until the weights'
// gradients sum over them, so one task runs a block's share of the step's gemm (one
// single-threaded BLAS call on its rows) and its element-wise work: one hand-off per step, and
// the element-wise work on every core, not on one while the others wait. From kGemmGrain
// multiply-adds in the step's gemm, as gemm splits itself; below, and on one thread, one block of
// every row: the same calls as the step written out in order, so the same bits.
template <class F>
void over_rows(const Step& s, F&& block) {
  const std::size_t threads =
      kernels::in_task() ? 1 : std::min({kernels::num_threads(), s.B, s.B * s.GH * s.H / detail::kGemmGrain});
  if (threads <= 1) return block(std::size_t(0), s.B);
  const std::size_t rows = (s.B + threads - 1) / threads;
  kernels::run_tasks((s.B + rows - 1) / rows, threads, [&](std::size_t i) { block(i * rows, std::min(s.B, (i + 1) * rows)); });
}

// Rows [b0, b1) of pre = xp_t + h_{t-1} W_hh^T + b_hh, into pre: [B, GH]
template <class T>
void pre_activations(const Step& s, const Tensor& xp, const Tensor& h_prev, const Tensor& weight_hh, const Tensor& bias_hh, T* pre,
                     std::size_t b0, std::size_t b1) {
  const T* x = xp.array().ptr<T>() + s.xp_offset;
  for (std::size_t b = b0; b < b1; ++b) {
    if (s.has_bias) kernels::add(pre + b * s.GH, x + b * s.xp_row, bias_hh.array().ptr<T>(), s.GH);
    else std::copy(x + b * s.xp_row, x + b * s.xp_row + s.GH, pre + b * s.GH);
  }
  if (b1 > b0 && s.GH && s.H)
    gemm(false, true, b1 - b0, s.GH, s.H, T(1), h_prev.array().ptr<T>() + b0 * s.H, weight_hh.array().ptr<T>(), T(1), pre + b0 * s.GH);
}

// Where a block of d(pre) goes. `d` is [B, n] for gate columns [c0, c0 + n). The gradient slots
// are taken when the rule starts (a new slot is made there, not inside a task).
template <class T>
struct StepGrad {
  const Step& s;
  xt::xarray<T>* gx;  // xp's slot, or nullptr when xp needs no gradient; the same for the others
  xt::xarray<T>* gh;
  xt::xarray<T>* gw;
  xt::xarray<T>* gb;
  const T* h_prev;
  const T* weight;

  StepGrad(Node& self, const Step& step)
      : s(step),
        gx(self.input_grad<T>(kXp)),
        gh(self.input_grad<T>(kHprev)),
        gw(self.input_grad<T>(kWeight)),
        gb(step.has_bias ? self.input_grad<T>(step.bias_slot) : nullptr),
        h_prev(self.inputs[kHprev]->data.ptr<T>()),
        weight(self.inputs[kWeight]->data.ptr<T>()) {}

  // Rows [b0, b1):  dxp[b, t, c0:c0+n] += d[b];  dh_{t-1}[b] += d[b] W[c0:c0+n]
  void to_input_and_hidden(const T* d, std::size_t c0, std::size_t n, std::size_t b0, std::size_t b1) {
    to_input(d, c0, n, b0, b1);
    to_hidden(d, c0, n, b0, b1);
  }
  void to_input(const T* d, std::size_t c0, std::size_t n, std::size_t b0, std::size_t b1) {
    if (!gx) return;
    T* dst = gx->data() + s.xp_offset + c0;
    for (std::size_t b = b0; b < b1; ++b) kernels::acc(dst + b * s.xp_row, d + b * n, n);
  }
  void to_hidden(const T* d, std::size_t c0, std::size_t n, std::size_t b0, std::size_t b1) {
    if (gh && b1 > b0 && n) gemm(false, false, b1 - b0, s.H, n, T(1), d + b0 * n, weight + c0 * s.H, T(1), gh->data() + b0 * s.H);
  }
  // Every row, after the blocks:  dW[c0:c0+n] += d^T h_{t-1};  db[c0:c0+n] += sum_b d (in row order)
  void to_weights(const T* d, std::size_t c0, std::size_t n) {
    if (!s.B || !n) return;
    if (gw) gemm(true, false, n, s.H, s.B, T(1), d, h_prev, T(1), gw->data() + c0 * s.H);
    if (gb) kernels::acc_rows(gb->data() + c0, d, s.B, n, n);
  }
};

}  // namespace

// ---- tanh RNN: h = tanh(pre) ------------------------------------------------------------------
Tensor rnn_cell(const Tensor& xp, std::size_t t, const Tensor& h_prev, const Tensor& weight_hh, const Tensor& bias_hh) {
  const Step s = check_step("rnn_cell", 1, 3, xp, t, h_prev, weight_hh, bias_hh);
  Array h = Array::empty(xp.dtype(), Shape{s.B, s.H});
  dispatch(xp.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* hn = h.ptr<T>();  // pre, then tanh(pre) in place
    over_rows(s, [&](std::size_t b0, std::size_t b1) {
      pre_activations<T>(s, xp, h_prev, weight_hh, bias_hh, hn, b0, b1);
      kernels::tanh(hn + b0 * s.H, hn + b0 * s.H, (b1 - b0) * s.H);
    });
  });
  return make_result("rnn_cell", std::move(h), with_bias({xp, h_prev, weight_hh}, s, bias_hh), [s](Node& self) {
    dispatch(self.data.dtype(), [&](auto tag) {
      using T = decltype(tag);
      Array d = Array::empty(self.data.dtype(), self.data.shape());  // d(pre) = dh * (1 - h^2)
      T* dp = d.ptr<T>();
      StepGrad<T> route{self, s};
      over_rows(s, [&](std::size_t b0, std::size_t b1) {
        const std::size_t k = b0 * s.H;
        std::fill(dp + k, dp + b1 * s.H, T(0));  // tanh_backward adds into it
        kernels::tanh_backward(dp + k, self.data.ptr<T>() + k, self.grad->ptr<T>() + k, (b1 - b0) * s.H);
        route.to_input_and_hidden(dp, 0, s.H, b0, b1);
      });
      route.to_weights(dp, 0, s.H);
    });
  });
}

// ---- LSTM -------------------------------------------------------------------------------------
// [i f g o] = [sigmoid tanh sigmoid](pre);  c = f c_{t-1} + i g;  h = o tanh(c)
// Two nodes, so that h_t and c_t are both tensors of their own: the c node owns the i, f, g
// blocks of the gradient, the h node the o block; they share the saved gates. Backward reaches
// the h node first (it reads c), so the c node's gradient is complete when its rule runs.
LstmState lstm_cell(const Tensor& xp, std::size_t t, const Tensor& h_prev, const Tensor& c_prev, const Tensor& weight_hh,
                    const Tensor& bias_hh) {
  const Step s = check_step("lstm_cell", 4, 4, xp, t, h_prev, weight_hh, bias_hh);
  detail::check_same_dtype("lstm_cell", xp, c_prev);
  if (c_prev.shape() != h_prev.shape())
    fail("lstm_cell: c_prev ", shape_str(c_prev.shape()), " should match h_prev ", shape_str(h_prev.shape()));
  const std::size_t B = s.B, H = s.H;
  auto gates = std::make_shared<Array>(Array::empty(xp.dtype(), Shape{B, 4 * H}));
  Array c = Array::empty(xp.dtype(), Shape{B, H}), h = Array::empty(xp.dtype(), Shape{B, H});
  dispatch(xp.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* a = gates->ptr<T>();  // pre, then the activated gates in place
    const T* cp = c_prev.array().ptr<T>();
    T *cn = c.ptr<T>(), *hn = h.ptr<T>();
    over_rows(s, [&](std::size_t b0, std::size_t b1) {
      pre_activations<T>(s, xp, h_prev, weight_hh, bias_hh, a, b0, b1);
      for (std::size_t b = b0; b < b1; ++b) {
        T* ab = a + b * 4 * H;
        kernels::sigmoid(ab, ab, 2 * H);                  // i, f
        kernels::tanh(ab + 2 * H, ab + 2 * H, H);         // g
        kernels::sigmoid(ab + 3 * H, ab + 3 * H, H);      // o
        for (std::size_t j = 0; j < H; ++j) cn[b * H + j] = ab[H + j] * cp[b * H + j] + ab[j] * ab[2 * H + j];
        kernels::tanh(hn + b * H, cn + b * H, H);
        kernels::mul(hn + b * H, hn + b * H, ab + 3 * H, H);
      }
    });
  });
  Tensor c_t = make_result("lstm_cell", std::move(c), with_bias({xp, h_prev, weight_hh, c_prev}, s, bias_hh),
                           [s, gates](Node& self) {
    dispatch(self.data.dtype(), [&](auto tag) {  // dc -> d(pre) of i, f, g and dc_{t-1}
      using T = decltype(tag);
      const std::size_t B = s.B, H = s.H;
      const T *a = gates->ptr<T>(), *dc = self.grad->ptr<T>(), *cp = self.inputs[kCell]->data.ptr<T>();
      Array d = Array::empty(self.data.dtype(), Shape{B, 3 * H});
      T* dp = d.ptr<T>();
      auto* gc = self.input_grad<T>(kCell);
      StepGrad<T> route{self, s};
      over_rows(s, [&](std::size_t b0, std::size_t b1) {
        for (std::size_t b = b0; b < b1; ++b)
          for (std::size_t j = 0; j < H; ++j) {
            const std::size_t k = b * H + j;
            const T i = a[b * 4 * H + j], f = a[b * 4 * H + H + j], g = a[b * 4 * H + 2 * H + j];
            dp[b * 3 * H + j] = dc[k] * g * i * (T(1) - i);
            dp[b * 3 * H + H + j] = dc[k] * cp[k] * f * (T(1) - f);
            dp[b * 3 * H + 2 * H + j] = dc[k] * i * (T(1) - g * g);
            if (gc) gc->data()[k] += dc[k] * f;  // dc_{t-1} = dc f
          }
        route.to_input_and_hidden(dp, 0, 3 * H, b0, b1);
      });
      route.to_weights(dp, 0, 3 * H);
    });
  });
  Tensor h_t = make_result("lstm_cell", std::move(h), with_bias({xp, h_prev, weight_hh, c_t}, s, bias_hh),
                           [s, gates](Node& self) {
    dispatch(self.data.dtype(), [&](auto tag) {  // dh -> d(pre) of o and dc
      using T = decltype(tag);
      const std::size_t B = s.B, H = s.H;
      const T *a = gates->ptr<T>(), *dh = self.grad->ptr<T>(), *c = self.inputs[kCell]->data.ptr<T>();
      Array tc = Array::empty(self.data.dtype(), Shape{B, H});  // tanh(c), recomputed rather than kept
      Array d = Array::empty(self.data.dtype(), Shape{B, H});
      T *dp = d.ptr<T>(), *th = tc.ptr<T>();
      auto* gc = self.input_grad<T>(kCell);
      StepGrad<T> route{self, s};
      over_rows(s, [&](std::size_t b0, std::size_t b1) {
        kernels::tanh(th + b0 * H, c + b0 * H, (b1 - b0) * H);
        for (std::size_t b = b0; b < b1; ++b)
          for (std::size_t j = 0; j < H; ++j) {
            const std::size_t k = b * H + j;
            const T o = a[b * 4 * H + 3 * H + j];
            dp[k] = dh[k] * th[k] * o * (T(1) - o);
            if (gc) gc->data()[k] += dh[k] * o * (T(1) - th[k] * th[k]);
          }
        route.to_input_and_hidden(dp, 3 * H, H, b0, b1);
      });
      route.to_weights(dp, 3 * H, H);
    });
  });
  return {h_t, c_t};
}

// ---- GRU --------------------------------------------------------------------------------------
// r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), n = tanh(x_n + r h_n), h = (1 - z) n + z h_{t-1}
// where [h_r h_z h_n] = h_{t-1} W_hh^T + b_hh. Saved: [r z n h_n], [B, 4H].
Tensor gru_cell(const Tensor& xp, std::size_t t, const Tensor& h_prev, const Tensor& weight_hh, const Tensor& bias_hh) {
  const Step s = check_step("gru_cell", 3, 3, xp, t, h_prev, weight_hh, bias_hh);
  const std::size_t B = s.B, H = s.H;
  Array saved = Array::empty(xp.dtype(), Shape{B, 4 * H}), h = Array::empty(xp.dtype(), Shape{B, H});
  dispatch(xp.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Array hp = Array::empty(xp.dtype(), Shape{B, 3 * H});  // h_{t-1} W_hh^T + b_hh
    T* hpp = hp.ptr<T>();
    const T* x = xp.array().ptr<T>() + s.xp_offset;
    const T* hprev = h_prev.array().ptr<T>();
    T *sv = saved.ptr<T>(), *hn = h.ptr<T>();
    over_rows(s, [&](std::size_t b0, std::size_t b1) {
      if (s.has_bias)
        for (std::size_t b = b0; b < b1; ++b) std::copy_n(bias_hh.array().ptr<T>(), 3 * H, hpp + b * 3 * H);
      if (b1 > b0 && H)
        gemm(false, true, b1 - b0, 3 * H, H, T(1), hprev + b0 * H, weight_hh.array().ptr<T>(), T(s.has_bias ? 1 : 0), hpp + b0 * 3 * H);
      for (std::size_t b = b0; b < b1; ++b) {
        const T *xb = x + b * s.xp_row, *hb = hpp + b * 3 * H;
        T* r = sv + b * 4 * H;  // r, z, n, h_n side by side
        kernels::add(r, xb, hb, 2 * H);
        kernels::sigmoid(r, r, 2 * H);
        T* n = r + 2 * H;
        std::copy_n(hb + 2 * H, H, r + 3 * H);                      // h_n
        for (std::size_t j = 0; j < H; ++j) n[j] = xb[2 * H + j] + r[j] * hb[2 * H + j];
        kernels::tanh(n, n, H);
        const T* z = r + H;
        for (std::size_t j = 0; j < H; ++j) hn[b * H + j] = (T(1) - z[j]) * n[j] + z[j] * hprev[b * H + j];
      }
    });
  });
  return make_result("gru_cell", std::move(h), with_bias({xp, h_prev, weight_hh}, s, bias_hh),
                     [s, saved = std::move(saved)](Node& self) {
    dispatch(self.data.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const std::size_t B = s.B, H = s.H;
      const T *sv = saved.ptr<T>(), *dh = self.grad->ptr<T>(), *hprev = self.inputs[kHprev]->data.ptr<T>();
      Array d = Array::empty(self.data.dtype(), Shape{B, 3 * H});  // d(pre) as xp sees it: [dr dz dn]
      Array dhn = Array::empty(self.data.dtype(), Shape{B, H});     // d(h_n) = dn_pre * r
      T *dp = d.ptr<T>(), *dn_h = dhn.ptr<T>();
      StepGrad<T> route{self, s};
      auto* gh = route.gh;
      over_rows(s, [&](std::size_t b0, std::size_t b1) {
        for (std::size_t b = b0; b < b1; ++b)
          for (std::size_t j = 0; j < H; ++j) {
            const std::size_t k = b * H + j;
            const T *row = sv + b * 4 * H;
            const T r = row[j], z = row[H + j], n = row[2 * H + j], hn = row[3 * H + j];
            const T dn_pre = dh[k] * (T(1) - z) * (T(1) - n * n);
            dp[b * 3 * H + j] = dn_pre * hn * r * (T(1) - r);
            dp[b * 3 * H + H + j] = dh[k] * (hprev[k] - n) * z * (T(1) - z);
            dp[b * 3 * H + 2 * H + j] = dn_pre;
            dn_h[k] = dn_pre * r;
            if (gh) gh->data()[k] += dh[k] * z;  // the direct path z h_{t-1}
          }
        route.to_input(dp, 0, 3 * H, b0, b1);
        for (std::size_t b = b0; b < b1; ++b) std::copy_n(dn_h + b * H, H, dp + b * 3 * H + 2 * H);  // h sees r h_n
        route.to_hidden(dp, 0, 3 * H, b0, b1);
      });
      route.to_weights(dp, 0, 3 * H);
    });
  });
}

}  // namespace ag
