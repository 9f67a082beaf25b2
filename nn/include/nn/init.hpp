#pragma once
// nn initialisers: fill a tensor in place, as torch.nn.init does, with an explicit, seeded
// ag::Generator. Each works for float32 and float64, runs under ag::NoGrad (no graph is
// recorded) and returns its argument, so it composes with register_parameter:
//
//   weight = register_parameter("weight", nn::xavier_uniform_(ag::zeros({out, in}), gen));
//
// Shapes follow PyTorch: a weight is [out, in, k...] (Linear [out, in], Conv [out, in, kh, kw]),
// so for a tensor of dim >= 2
//   receptive = size(2) * size(3) * ...   (1 for a matrix)
//   fan_in    = size(1) * receptive        (inputs that feed one output)
//   fan_out   = size(0) * receptive        (outputs that one input feeds)
// A zero-element tensor is left as it is (as PyTorch, which only warns).
#include <cstdint>

#include "ag/tensor.hpp"

namespace nn {

// ---- fans and gains ----------------------------------------------------------------------
struct Fans {
  std::int64_t fan_in = 0;
  std::int64_t fan_out = 0;
};
// PyTorch's _calculate_fan_in_and_fan_out; the tensor must have at least 2 dimensions.
Fans calculate_fans(const ag::Tensor& t);

enum class FanMode { fan_in, fan_out };  // kaiming: keep the variance of the forward (fan_in) or backward (fan_out) pass
enum class Nonlinearity { linear, sigmoid, tanh, relu, leaky_relu, selu };

// The recommended gain for a nonlinearity (torch.nn.init.calculate_gain):
//   linear, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);  leaky_relu: sqrt(2 / (1 + slope^2));  selu: 3/4.
// `param` is the negative slope of leaky_relu (ignored otherwise).
double calculate_gain(Nonlinearity nonlinearity, double param = 0.01);

// ---- plain distributions -----------------------------------------------------------------
// t ~ U[lo, hi)    (lo <= hi)
ag::Tensor uniform_(ag::Tensor t, ag::Generator& gen, double lo = 0.0, double hi = 1.0);
// t ~ N(mean, std^2)    (std >= 0)
ag::Tensor normal_(ag::Tensor t, ag::Generator& gen, double mean = 0.0, double std = 1.0);
// t = value
ag::Tensor constant_(ag::Tensor t, double value);
ag::Tensor zeros_(ag::Tensor t);  // t = 0
ag::Tensor ones_(ag::Tensor t);   // t = 1

// ---- Xavier / Glorot (Glorot & Bengio 2010): keep the variance equal forward and backward ----
// t ~ U[-a, a],  a = gain * sqrt(6 / (fan_in + fan_out))      (std = gain * sqrt(2 / (fan_in + fan_out)))
ag::Tensor xavier_uniform_(ag::Tensor t, ag::Generator& gen, double gain = 1.0);
// t ~ N(0, std^2),  std = gain * sqrt(2 / (fan_in + fan_out))
ag::Tensor xavier_normal_(ag::Tensor t, ag::Generator& gen, double gain = 1.0);

// ---- Kaiming / He (He et al. 2015): keep the variance through (leaky) ReLU layers ----------
// fan = fan_in or fan_out (mode), gain = calculate_gain(nonlinearity, a), a = negative slope
// t ~ U[-b, b],  b = gain * sqrt(3 / fan)                     (std = gain / sqrt(fan))
ag::Tensor kaiming_uniform_(ag::Tensor t, ag::Generator& gen, double a = 0.0, FanMode mode = FanMode::fan_in,
                            Nonlinearity nonlinearity = Nonlinearity::leaky_relu);
// t ~ N(0, std^2),  std = gain / sqrt(fan)
ag::Tensor kaiming_normal_(ag::Tensor t, ag::Generator& gen, double a = 0.0, FanMode mode = FanMode::fan_in,
                           Nonlinearity nonlinearity = Nonlinearity::leaky_relu);

// ---- orthogonal (Saxe et al. 2013) ------------------------------------------------------
// View t as a matrix [rows = size(0), cols = numel / rows]; draw A ~ N(0, 1) of that shape
// (transposed when rows < cols so that it is tall), factor A = Q R (Householder QR), make the
// factorisation unique by flipping the columns of Q where R's diagonal is negative (PyTorch's
// sign correction, so Q is Haar-distributed), transpose back, multiply by gain. Then
//   rows >= cols: W^T W = gain^2 I (orthonormal columns);  rows <= cols: W W^T = gain^2 I.
ag::Tensor orthogonal_(ag::Tensor t, ag::Generator& gen, double gain = 1.0);

// ---- recurrent weights with a chosen spectral radius -----------------------------------------
// t: [k * H, H] (k = 1 for a plain RNN's weight_hh [H, H]; 4 for an LSTM's, 3 for a GRU's stacked
// gates). Each [H, H] block is an independent orthogonal matrix times spectral_scale, so every
// eigenvalue of each block has modulus spectral_scale and every singular value equals it: a
// linear recurrence h <- W h then shrinks (< 1), keeps (= 1) or grows (> 1) every direction at
// exactly that rate. spectral_scale >= 0.
ag::Tensor scaled_recurrent_(ag::Tensor t, ag::Generator& gen, double spectral_scale);

}  // namespace nn
