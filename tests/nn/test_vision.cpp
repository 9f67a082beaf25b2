// nn::VisionTransformer, nn::patchify and nn::attention_rollout (ctest -R vision): float64
// gradient checks of the whole model and of the patch split, known values, and the errors.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "../common/check_values.hpp"
#include "../common/expect_error.hpp"
#include "nn/nn.hpp"

using namespace ag;

namespace {

Tensor input(const Shape& s, std::uint64_t seed) {
  Generator g(seed);
  return randn(s, g, {f64});
}

// A tiny ViT: 8 x 8 images of 2 channels, 4 x 4 patches (N = 4), D = 8, 2 heads, 2 layers, 3 classes.
nn::VisionTransformerOptions tiny() {
  return {.image_size = 8, .patch_size = 4, .in_channels = 2, .num_classes = 3, .d_model = 8, .num_heads = 2,
          .num_layers = 2, .dim_feedforward = 16, .dropout = 0.0};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vision)

// Every parameter's gradient (patch embedding, class token, positions, both layers, the final
// norm, the head) and the images' own, against central differences in float64.
BOOST_AUTO_TEST_CASE(gradcheck_vision_transformer) {
  Generator gen(1);
  nn::VisionTransformer vit(tiny(), gen);
  vit.to(f64);
  vit.eval();
  {
    // the class token starts at 0 (torchvision's): move it so the check is not at a special point
    NoGrad ng;
    for (auto& v : vit.class_token.data<double>()) v = gen.normal(0.0, 0.5);
  }
  std::vector<Tensor> inputs = vit.parameters();
  const std::size_t P = inputs.size();
  inputs.push_back(input({2, 2, 8, 8}, 2));
  const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return vit.forward(in[P]); }, inputs);
  BOOST_TEST_MESSAGE("VisionTransformer: " << r.elements_checked << " elements, max rel error " << r.max_rel_error);
  BOOST_TEST(r.ok, r.report);
  BOOST_TEST(P == vit.named_parameters().size());
  // and through the rollout of its attention, to the images
  const GradcheckResult ro = gradcheck([&](const std::vector<Tensor>& in) {
    vit.forward(in[0]);
    return nn::attention_rollout(vit.attention());
  }, {input({2, 2, 8, 8}, 3)});
  BOOST_TEST(ro.ok, ro.report);
}

BOOST_AUTO_TEST_CASE(gradcheck_patchify) {
  const GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return nn::patchify(in[0], 2); },
                                      {input({2, 3, 4, 6}, 4)});
  BOOST_TEST(r.ok, r.report);
}

// A hand-made image, pixel (c, y, x) = 100 c + 10 y + x, split into 2 x 2 patches.
BOOST_AUTO_TEST_CASE(patchify_known_values) {
  std::vector<double> v;
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) v.push_back(100 * c + 10 * y + x);
  const Tensor p = nn::patchify(tensor(v, {1, 2, 4, 4}, {f64}), 2);
  BOOST_TEST((p.shape() == Shape{1, 4, 8}));
  check_values(p.to_vector(), {0,  1,  10, 11, 100, 101, 110, 111,    // patch 0: rows 0-1, columns 0-1
                               2,  3,  12, 13, 102, 103, 112, 113,    // patch 1: rows 0-1, columns 2-3
                               20, 21, 30, 31, 120, 121, 130, 131,    // patch 2: rows 2-3, columns 0-1
                               22, 23, 32, 33, 122, 123, 132, 133},   // patch 3
               0.0);
  // a non-square image: 2 x 4 pixels, 2 x 2 patches -> 2 patches side by side
  const Tensor q = nn::patchify(tensor({1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4}, {f64}), 2);
  check_values(q.to_vector(), {1, 2, 5, 6, 3, 4, 7, 8}, 0.0);
}

// conv_proj(patchify(x)) is a convolution with kernel p and stride p: computed here with loops.
BOOST_AUTO_TEST_CASE(patch_embedding_is_a_strided_convolution) {
  Generator gen(5);
  nn::VisionTransformer vit(tiny(), gen);
  vit.to(f64);
  const Tensor x = input({2, 2, 8, 8}, 6);
  const std::vector<double> got = (*vit.conv_proj)(nn::patchify(x, 4)).to_vector();  // [2, 4, 8]
  const auto w = vit.conv_proj->weight.to_vector(), b = vit.conv_proj->bias.to_vector(), img = x.to_vector();
  std::vector<double> want;
  for (int n = 0; n < 2; ++n)
    for (int gy = 0; gy < 2; ++gy)
      for (int gx = 0; gx < 2; ++gx)
        for (int d = 0; d < 8; ++d) {
          double s = b[d];
          for (int c = 0; c < 2; ++c)
            for (int i = 0; i < 4; ++i)
              for (int j = 0; j < 4; ++j)
                s += w[d * 32 + c * 16 + i * 4 + j] * img[((n * 2 + c) * 8 + gy * 4 + i) * 8 + gx * 4 + j];
          want.push_back(s);
        }
  check_values(got, want, 1e-12);
}

BOOST_AUTO_TEST_CASE(forward_shapes_and_attention) {
  Generator gen(7);
  nn::VisionTransformer vit(tiny(), gen);
  BOOST_TEST(vit.attention().empty());
  const Tensor logits = vit(input({3, 2, 8, 8}, 8).to(f32));
  BOOST_TEST((logits.shape() == Shape{3, 3}));
  const std::vector<Tensor> att = vit.attention();
  BOOST_TEST_REQUIRE(att.size() == 2u);
  for (const Tensor& a : att) {
    BOOST_TEST((a.shape() == Shape{3, 2, 5, 5}));  // [B, heads, N+1, N+1]
    const auto v = a.to_vector();
    for (std::size_t row = 0; row < v.size() / 5; ++row) {
      double s = 0;
      for (std::size_t k = 0; k < 5; ++k) s += v[row * 5 + k];
      BOOST_TEST(s == 1.0, boost::test_tools::tolerance(1e-5));
    }
  }
  BOOST_TEST(vit.num_patches() == 4u);
  BOOST_TEST((vit.pos_embedding.shape() == Shape{1, 5, 8}));
  BOOST_TEST((vit.class_token.shape() == Shape{1, 1, 8}));
  BOOST_TEST(vit.describe().find("4 patches") != std::string::npos);
}

// One layer: 0.5 A + 0.5 I, rows renormalised. Rows of A that do not sum to 1 show the renormalisation.
BOOST_AUTO_TEST_CASE(rollout_one_layer_known_values) {
  // two heads whose mean is [[0.2, 0.2], [0.5, 0.1]]
  const Tensor a = tensor({0.1, 0.3, 0.6, 0.0, 0.3, 0.1, 0.4, 0.2}, {1, 2, 2, 2}, {f64});
  // 0.5 mean + 0.5 I = [[0.6, 0.1], [0.25, 0.55]], row sums 0.7 and 0.8
  check_values(nn::attention_rollout({a}).to_vector(), {0.6 / 0.7, 0.1 / 0.7, 0.25 / 0.8, 0.55 / 0.8}, 1e-14);
  // residual_weight 0: the head mean itself, renormalised
  check_values(nn::attention_rollout({a}, 0.0).to_vector(), {0.5, 0.5, 0.5 / 0.6, 0.1 / 0.6}, 1e-14);
}

// Two layers multiply from the first: rollout = A'_2 A'_1 (A'_1 A'_2 would give 0.5 everywhere).
BOOST_AUTO_TEST_CASE(rollout_two_layers_known_values) {
  const Tensor a1 = tensor({1.0, 0.0, 0.5, 0.5}, {1, 2, 2}, {f64});  // A'_1 = [[1, 0], [0.25, 0.75]]
  const Tensor a2 = tensor({0.0, 1.0, 1.0, 0.0}, {1, 2, 2}, {f64});  // A'_2 = [[0.5, 0.5], [0.5, 0.5]]
  check_values(nn::attention_rollout({a1, a2}).to_vector(), {0.625, 0.375, 0.625, 0.375}, 1e-14);
}

BOOST_AUTO_TEST_CASE(rollout_of_identity_is_identity_and_rows_sum_to_one) {
  std::vector<double> eye(2 * 3 * 4 * 4, 0.0);
  for (std::size_t bh = 0; bh < 6; ++bh)
    for (std::size_t i = 0; i < 4; ++i) eye[bh * 16 + i * 4 + i] = 1.0;
  const Tensor id = tensor(eye, {2, 3, 4, 4}, {f64});
  std::vector<double> want(2 * 16, 0.0);
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t i = 0; i < 4; ++i) want[b * 16 + i * 4 + i] = 1.0;
  check_values(nn::attention_rollout({id, id, id}).to_vector(), want, 1e-15);
  // random softmax weights over 3 layers: every row of the rollout sums to 1, every entry in [0, 1]
  std::vector<Tensor> layers;
  for (std::uint64_t s = 0; s < 3; ++s) layers.push_back(softmax(input({2, 3, 4, 4}, 10 + s), -1));
  const auto r = nn::attention_rollout(layers).to_vector();
  for (std::size_t row = 0; row < 8; ++row) {
    double s = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      BOOST_TEST(r[row * 4 + k] >= 0.0);
      s += r[row * 4 + k];
    }
    BOOST_TEST(s == 1.0, boost::test_tools::tolerance(1e-14));
  }
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_shapes) {
  expect_error([] { nn::patchify(input({2, 8, 8}, 1), 4); }, {"patchify", "[2,8,8]", "[B, C, H, W]"});
  expect_error([] { nn::patchify(input({1, 1, 8, 7}, 1), 4); }, {"patchify", "[1,1,8,7]", "4 x 4"});
  expect_error([] { nn::patchify(input({1, 1, 8, 8}, 1), 0); }, {"patchify", "patch size 0"});
  Generator gen(9);
  nn::VisionTransformer vit(tiny(), gen);
  vit.to(f64);
  expect_error([&] { vit(input({1, 3, 8, 8}, 1)); }, {"VisionTransformer", "[B, 2, 8, 8]", "[1,3,8,8]"});
  expect_error([&] { vit(input({1, 2, 16, 16}, 1)); }, {"VisionTransformer", "[1,2,16,16]"});
  expect_error([&] { vit(input({2, 8, 8}, 1)); }, {"VisionTransformer", "[2,8,8]"});
  expect_error([&] { nn::VisionTransformer({.image_size = 10, .patch_size = 4}, gen); },
               {"VisionTransformer", "image_size 10", "patch_size 4"});
  expect_error([&] { nn::VisionTransformer({.d_model = 10, .num_heads = 4}, gen); },
               {"VisionTransformer", "d_model 10", "num_heads 4"});
  expect_error([&] { nn::VisionTransformer({.patch_size = 0}, gen); }, {"VisionTransformer", "patch_size 0"});
  expect_error([] { nn::attention_rollout({}); }, {"attention_rollout", "no layers"});
  expect_error([] { nn::attention_rollout({input({2, 3, 4}, 1)}); }, {"attention_rollout", "[2,3,4]"});
  expect_error([] { nn::attention_rollout({input({2, 4}, 1)}); }, {"attention_rollout", "[2,4]"});
  expect_error([] { nn::attention_rollout({input({1, 2, 3, 3}, 1), input({1, 2, 4, 4}, 2)}); },
               {"attention_rollout", "layer 1", "[1,2,4,4]", "[1,2,3,3]"});
  expect_error([] { nn::attention_rollout({input({1, 3, 3}, 1)}, 1.5); }, {"attention_rollout", "residual_weight 1.5"});
}

BOOST_AUTO_TEST_SUITE_END()
