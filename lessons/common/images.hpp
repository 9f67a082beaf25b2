#pragma once
// A small image task generated in code (lesson 20): "are the two marked shapes the same?"
//
// Each image is 32 x 32 grayscale (values in [0, 1], background 0 plus a little noise) with four
// shapes of 7 x 7 pixels, each one of four kinds (square outline, circle outline, triangle, plus),
// each of exactly 24 pixels, so that counting bright pixels says nothing about the kinds:
//   - two MARKED shapes, drawn white (1.0): one in the left third of the image (columns 0 to 10),
//     one in the right third (columns 21 to 31), at random rows and columns inside their third;
//     every shape's top-left corner on a multiple of ImageTaskOptions::grid (default 2: the left
//     one starts at column 0, 2 or 4, the right one at 22 or 24; 4: on the patch grid of a ViT
//     with 4 x 4 patches, columns 0 or 4 and 24);
//   - two unmarked distractors, drawn gray (0.45), anywhere else (any third), of random kinds.
// No two shapes touch (a gap of at least one pixel). The label is 1 when the two marked shapes
// are of the same kind, else 0.
//
// Why a model must look at BOTH far regions: the labels are drawn first, balanced (exactly n/2 of
// each, in a shuffled order); the left marked kind is uniform, and the right one is the same kind
// (label 1) or a uniform other kind (label 0). So each marked shape on its own is uniform whatever
// the label (the left one is independent of it, and so is the right one), and the distractors
// are drawn independently of it, and every kind lights as many pixels: nothing but the pair of
// marked shapes, 12 or more columns apart, says what the label is. A model that reads one region
// scores 50% at best.
//
// Deterministic for a seed: make_shape_pairs(n, seed) draws every image from one generator seeded
// with derive_seed(seed, kTrainStream); a held-out set is the same call with another seed.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ag/tensor.hpp"

namespace lab {

enum class ShapeKind { square, circle, triangle, plus };
inline constexpr std::size_t kShapeKinds = 4;
inline constexpr std::size_t kImageSize = 32;   // pixels per side
inline constexpr std::size_t kShapeSize = 7;    // each shape's box, pixels per side
inline constexpr float kMarkedValue = 1.0f;     // marked shapes: white
inline constexpr float kDistractorValue = 0.45f;  // distractors: gray
inline constexpr std::size_t kLeftEnd = 11;     // the left third: columns 0 .. 10
inline constexpr std::size_t kRightStart = 21;  // the right third: columns 21 .. 31
const char* shape_name(ShapeKind k);            // "square", "circle", "triangle", "plus"

// The shape's 7 x 7 bitmap, row by row: true where it is drawn.
std::array<bool, kShapeSize * kShapeSize> shape_bitmap(ShapeKind k);

struct PlacedShape {
  ShapeKind kind = ShapeKind::square;
  std::size_t x = 0, y = 0;  // the box's top-left pixel (column, row)
  bool marked = false;
};

struct ImageTaskOptions {
  std::size_t distractors = 2;  // unmarked shapes per image
  // Shapes' top-left corners on multiples of `grid` pixels (4: each shape fills 2 x 2 patches of
  // 4 x 4 pixels, the same way wherever it sits); 1: any pixel.
  std::size_t grid = 2;
  double noise = 0.05;          // std of the Gaussian pixel noise (clamped to [0, 1] after)
};

// One image's content. shapes[0] is the left marked shape, shapes[1] the right one, then the distractors.
struct ShapeScene {
  std::vector<PlacedShape> shapes;
  std::int64_t label = 0;
};

// 1 when the two marked shapes are of the same kind (the label). Errors (ag::Error): not exactly two marked shapes.
std::int64_t same_kind_label(const std::vector<PlacedShape>& shapes);

// Draws the shapes (no noise) into a kImageSize^2 image, row-major; a shape's pixels take its
// value (marked or distractor), overwriting. Errors: a shape whose box leaves the image.
std::vector<float> render(const std::vector<PlacedShape>& shapes);

struct ShapeImages {
  ag::Tensor images{};                // [n, 1, 32, 32] float32
  ag::Indices labels{};               // [n]
  std::vector<ShapeScene> scenes{};   // what is in each image
  std::size_t size() const { return scenes.size(); }
};

// n images (n even: the labels are exactly balanced). Errors: n odd or 0.
ShapeImages make_shape_pairs(std::size_t n, std::uint64_t seed, const ImageTaskOptions& o = {});

// Rows `idx` of a set: images [B, 1, 32, 32], labels [B].
std::pair<ag::Tensor, ag::Indices> image_batch(const ShapeImages& set, const std::vector<std::size_t>& idx);

// The patches (patch x patch pixels, row-major over the (32 / patch)^2 grid) that hold at least one
// drawn pixel of a marked shape: where a model must look. Errors: 32 not a multiple of patch.
std::vector<bool> marked_patches(const ShapeScene& scene, std::size_t patch);

}  // namespace lab
