#include "nn/vision.hpp"

#include <cmath>

#include "nn/init.hpp"

namespace nn {

Tensor patchify(const Tensor& images, std::size_t p) {
  if (images.dim() != 4)
    ag::fail("patchify: images should be [B, C, H, W], got ", ag::shape_str(images.shape()));
  if (p == 0) ag::fail("patchify: patch size 0 (images ", ag::shape_str(images.shape()), ")");
  const auto& s = images.shape();
  const std::size_t B = s[0], C = s[1], H = s[2], W = s[3];
  if (H % p != 0 || W % p != 0)
    ag::fail("patchify: images ", ag::shape_str(s), " are not a whole number of ", p, " x ", p, " patches (H = ", H,
             " and W = ", W, " must be multiples of ", p, ")");
  const auto i = [](std::size_t v) { return std::int64_t(v); };
  // [B, C, H/p, p, W/p, p] -> [B, H/p, W/p, C, p, p] -> [B, N, C p p]
  const Tensor grid = ag::reshape(images, {i(B), i(C), i(H / p), i(p), i(W / p), i(p)});
  const Tensor patches = ag::permute(grid, {0, 2, 4, 1, 3, 5});
  return ag::reshape(patches, {i(B), i((H / p) * (W / p)), i(C * p * p)});
}

VisionTransformer::VisionTransformer(const VisionTransformerOptions& o, ag::Generator& gen) : o_(o) {
  if (o.image_size == 0 || o.patch_size == 0 || o.in_channels == 0 || o.num_classes == 0 || o.d_model == 0 ||
      o.num_heads == 0 || o.dim_feedforward == 0)
    ag::fail("VisionTransformer: every size must be at least 1 (image_size ", o.image_size, ", patch_size ", o.patch_size,
             ", in_channels ", o.in_channels, ", num_classes ", o.num_classes, ", d_model ", o.d_model, ", num_heads ",
             o.num_heads, ", dim_feedforward ", o.dim_feedforward, ")");
  if (o.image_size % o.patch_size != 0)
    ag::fail("VisionTransformer: image_size ", o.image_size, " is not a multiple of patch_size ", o.patch_size);
  if (o.d_model % o.num_heads != 0)
    ag::fail("VisionTransformer: d_model ", o.d_model, " is not divisible by num_heads ", o.num_heads);
  grid_ = o.image_size / o.patch_size;
  const std::size_t patch_dim = o.in_channels * o.patch_size * o.patch_size;
  conv_proj = register_module("conv_proj", std::make_shared<Linear>(patch_dim, o.d_model, gen));
  class_token = register_parameter("class_token", ag::zeros({1, 1, o.d_model}));
  pos_embedding = register_parameter("pos_embedding", ag::zeros({1, num_patches() + 1, o.d_model}));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout, std::uint64_t(gen.integer(0, 1 << 30))));
  const TransformerOptions t{.d_model = o.d_model, .num_heads = o.num_heads, .dim_feedforward = o.dim_feedforward,
                             .dropout = o.dropout, .activation = Activation::gelu, .norm_first = true,
                             .layer_norm_eps = o.layer_norm_eps};
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(t, o.num_layers, gen, true));
  head = register_module("head", std::make_shared<Linear>(o.d_model, o.num_classes, gen));
  ag::NoGrad ng;
  normal_(conv_proj->weight, gen, 0.0, std::sqrt(1.0 / double(patch_dim)));
  zeros_(conv_proj->bias);
  normal_(pos_embedding, gen, 0.0, 0.02);
}

Tensor VisionTransformer::features(const Tensor& images) {
  const auto& s = images.shape();
  if (images.dim() != 4 || s[1] != o_.in_channels || s[2] != o_.image_size || s[3] != o_.image_size)
    ag::fail(describe(), ": images should be [B, ", o_.in_channels, ", ", o_.image_size, ", ", o_.image_size, "], got ",
             ag::shape_str(s));
  const std::size_t B = s[0];
  const Tensor x = (*conv_proj)(patchify(images, o_.patch_size));                        // [B, N, D]
  const Tensor cls = ag::expand(class_token, {B, 1, o_.d_model});                       // [B, 1, D]
  const Tensor z0 = ag::concat({cls, x}, 1) + pos_embedding;                            // [B, N+1, D]
  return encoder->forward((*dropout)(z0));                                              // [B, N+1, D]
}

Tensor VisionTransformer::forward(const Tensor& images) {
  return (*head)(ag::select(features(images), 1, 0));  // the class token's output -> [B, K]
}

std::vector<Tensor> VisionTransformer::attention() const {
  std::vector<Tensor> w;
  for (std::size_t i = 0; i < encoder->layers.size(); ++i) {
    const Tensor a = encoder->layers[i]->last_attention();
    if (!a.defined()) {
      if (i == 0) return {};  // no forward yet
      // A rollout over fewer than all layers would be silently wrong.
      ag::fail("VisionTransformer::attention: layer ", i, " kept no weights (only naive attention keeps them)");
    }
    w.push_back(a);
  }
  return w;
}

std::string VisionTransformer::describe() const {
  return "VisionTransformer(image " + std::to_string(o_.image_size) + ", patch " + std::to_string(o_.patch_size) + ", " +
         std::to_string(num_patches()) + " patches, d_model " + std::to_string(o_.d_model) + ", " +
         std::to_string(o_.num_layers) + " layers)";
}

Tensor attention_rollout(const std::vector<Tensor>& per_layer, double r) {
  if (per_layer.empty()) ag::fail("attention_rollout: no layers");
  if (!(r >= 0.0 && r <= 1.0)) ag::fail("attention_rollout: residual_weight ", r, " is outside [0, 1]");
  const ag::Shape& first = per_layer.front().shape();
  Tensor rollout, eye;
  for (std::size_t l = 0; l < per_layer.size(); ++l) {
    const Tensor& a = per_layer[l];
    const auto& s = a.shape();
    if ((a.dim() != 3 && a.dim() != 4) || s[a.dim() - 1] != s[a.dim() - 2])
      ag::fail("attention_rollout: layer ", l, "'s weights should be [B, heads, T, T] or [B, T, T], got ", ag::shape_str(s));
    if (s != first)
      ag::fail("attention_rollout: layer ", l, "'s weights ", ag::shape_str(s), " differ from layer 0's ", ag::shape_str(first));
    const Tensor mean = a.dim() == 4 ? ag::mean(a, {1}) : a;  // [B, T, T]
    if (!eye.defined()) {
      const std::size_t T = s.back();
      std::vector<double> v(T * T, 0.0);
      for (std::size_t i = 0; i < T; ++i) v[i * T + i] = 1.0;
      eye = ag::tensor(v, {T, T}, {a.dtype()});
    }
    Tensor with_residual = mean * (1.0 - r) + eye * r;
    with_residual = with_residual / ag::sum(with_residual, {-1}, true);  // rows sum to 1
    rollout = rollout.defined() ? ag::matmul(with_residual, rollout) : with_residual;
  }
  return rollout;
}

}  // namespace nn
