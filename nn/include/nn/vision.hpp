#pragma once
// Attention on images: the Vision Transformer (ViT; Dosovitskiy et al. 2021, "An Image is Worth
// 16x16 Words") and attention rollout (Abnar & Zuidema 2020), which follows the attention of the
// class token back through every layer to the image patches.
// Shape legend: B batch, C channels, H = W = image_size pixels, p patch_size, G = H / p patches
// per side, N = G^2 patches, D d_model, K classes, L layers, heads: num_heads.
//
// The ViT (the paper's eq. 1 to 4, section 3.1), with torchvision's names (vit_b_16 and friends):
//   x_p  = patchify(images, p)                        [B, N, C p^2]   the patches, row by row
//   z_0  = [class_token; x_p W_E^T + b_E] + pos_embedding   [B, N+1, D]  (eq. 1)
//   z_L  = encoder(z_0)                               L pre-LN layers + a final LayerNorm (eq. 2, 3, 4)
//   y    = head(z_L[:, 0])                            [B, K]          the class token's output
// The patch embedding is a Linear on flattened patches, `conv_proj`: exactly torchvision's
// conv_proj, a Conv2d(C, D, kernel_size = p, stride = p), whose weight [D, C, p, p] flattened is
// this Linear's weight [D, C p^2] (patchify orders each patch's features as c, row, column).
// Parameters: conv_proj.weight/bias, class_token [1, 1, D], pos_embedding [1, N+1, D],
// encoder.layers.<i>..., encoder.norm (torchvision: encoder.ln), head.weight/bias (torchvision:
// heads.head).
#include <string>
#include <vector>

#include "nn/transformer.hpp"

namespace nn {

struct VisionTransformerOptions {
  std::size_t image_size = 32;  // H = W
  std::size_t patch_size = 4;   // p; image_size must be a multiple of it
  std::size_t in_channels = 1;  // C
  std::size_t num_classes = 2;  // K
  std::size_t d_model = 64;     // D (torchvision: hidden_dim)
  std::size_t num_heads = 4;
  std::size_t num_layers = 3;
  std::size_t dim_feedforward = 128;  // torchvision: mlp_dim
  double dropout = 0.0;               // in every encoder layer (attention weights, residual branches)
  double layer_norm_eps = 1e-6;       // torchvision's ViT uses 1e-6
};

// The non-overlapping p x p patches of images [B, C, H, W] -> [B, N, C p^2], N = (H / p)(W / p):
// patch n = r (W / p) + c is the one at patch row r, patch column c (row-major), and its features
// are ordered (channel, row in the patch, column in the patch). Built from ag::reshape and
// ag::permute ([B, C, H/p, p, W/p, p] -> [B, H/p, W/p, C, p, p]), so it is differentiable.
// Errors (ag::Error, naming patchify and the shape): images not 4-D, p = 0, H or W not a multiple of p.
Tensor patchify(const Tensor& images, std::size_t patch_size);

class VisionTransformer : public Module {
 public:
  // Initialisation (torchvision's, but for the head): conv_proj.weight ~ N(0, 1 / (C p^2)) and its
  // bias 0, class_token 0, pos_embedding ~ N(0, 0.02^2), the encoder's layers as PyTorch's
  // defaults. The head keeps Linear's default (torchvision zeroes it, which also trains; a
  // non-zero head lets a gradient check reach every parameter). The encoder's feed-forward uses
  // GELU (erf), as torchvision's MLPBlock. Errors: a zero size, image_size not a multiple of
  // patch_size, d_model not divisible by num_heads.
  VisionTransformer(const VisionTransformerOptions& o, ag::Generator& gen);

  // images [B, C, H, W] -> logits [B, K]. Keeps each layer's attention weights (attention()).
  // Errors: images not [B, C, image_size, image_size] with C = in_channels.
  Tensor forward(const Tensor& images);
  Tensor operator()(const Tensor& images) { return forward(images); }
  // The encoder's output z_L [B, N+1, D] (position 0: the class token), before the head.
  Tensor features(const Tensor& images);
  // The attention weights of every layer in the last forward, first layer first, each
  // [B, heads, N+1, N+1] (rows: queries, row 0 the class token; columns: keys, column 0 the class
  // token, column 1 + n patch n). Empty before the first forward. Errors: a layer that kept no
  // weights (an attention kind other than naive).
  std::vector<Tensor> attention() const;

  std::size_t num_patches() const { return grid_ * grid_; }  // N
  std::size_t grid() const { return grid_; }                 // G = image_size / patch_size
  const VisionTransformerOptions& options() const { return o_; }
  std::string describe() const override;

  std::shared_ptr<Linear> conv_proj;  // D <- C p^2
  Tensor class_token;                 // [1, 1, D]
  Tensor pos_embedding;               // [1, N+1, D]
  std::shared_ptr<Dropout> dropout;   // on z_0 (torchvision's encoder.dropout)
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<Linear> head;       // K <- D

 private:
  VisionTransformerOptions o_;
  std::size_t grid_ = 0;
};

// Attention rollout (Abnar & Zuidema 2020, section 3): how much each input token reaches each
// output token through L layers of attention AND the residual connections around them.
// per_layer: L weight tensors [B, heads, T, T] (or [B, T, T], one head), first layer first (as
// VisionTransformer::attention() returns them). For each layer the heads are averaged,
// A_l = mean over heads; the residual is added as an identity, A'_l = (1 - r) A_l + r I
// (r = residual_weight; the paper's 0.5 A + 0.5 I), and each row is renormalised to sum to 1; then
//   rollout = A'_L A'_{L-1} ... A'_1                     [B, T, T]
// (the paper's recursion Ã(l_i) = A(l_i) Ã(l_{i-1}), Ã(l_1) = A(l_1)). Row 0 of a ViT's rollout
// is the class token's attention to every input token. Rows sum to 1. Differentiable (ag ops).
// Errors (naming attention_rollout and the shapes): no layers, a tensor not 3- or 4-D or not
// square in its last two axes, layers of different shapes, residual_weight outside [0, 1].
Tensor attention_rollout(const std::vector<Tensor>& per_layer, double residual_weight = 0.5);

}  // namespace nn
