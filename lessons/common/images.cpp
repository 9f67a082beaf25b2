#include "common/images.hpp"

#include <algorithm>
#include <cmath>

#include "ag/error.hpp"
#include "common/tasks.hpp"

namespace lab {

const char* shape_name(ShapeKind k) {
  switch (k) {
    case ShapeKind::square: return "square";
    case ShapeKind::circle: return "circle";
    case ShapeKind::triangle: return "triangle";
    case ShapeKind::plus: return "plus";
  }
  return "?";
}

std::array<bool, kShapeSize * kShapeSize> shape_bitmap(ShapeKind k) {
  constexpr int S = int(kShapeSize), c = S / 2;  // centre 3
  std::array<bool, kShapeSize * kShapeSize> b{};
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      bool on = false;
      switch (k) {
        // Every kind has 24 pixels: a model cannot tell kinds apart by how much of the image is lit.
        case ShapeKind::square: on = x == 0 || y == 0 || x == S - 1 || y == S - 1; break;  // outline
        case ShapeKind::circle: {                                                             // outline, radius ~2.2 to 3.2
          const int r2 = (x - c) * (x - c) + (y - c) * (y - c);
          on = r2 >= 5 && r2 <= 10;
          break;
        }
        case ShapeKind::triangle: on = y >= 1 && std::abs(x - c) <= y / 2; break;  // filled, apex up, rows 1 to 6
        case ShapeKind::plus: on = x == 2 || x == 3 || y == 2 || y == 3; break;     // two pixels wide
      }
      b[std::size_t(y * S + x)] = on;
    }
  return b;
}

std::int64_t same_kind_label(const std::vector<PlacedShape>& shapes) {
  std::vector<ShapeKind> marked;
  for (const auto& s : shapes)
    if (s.marked) marked.push_back(s.kind);
  if (marked.size() != 2) ag::fail("same_kind_label: ", marked.size(), " marked shapes (there must be exactly 2)");
  return marked[0] == marked[1] ? 1 : 0;
}

std::vector<float> render(const std::vector<PlacedShape>& shapes) {
  std::vector<float> img(kImageSize * kImageSize, 0.0f);
  for (const auto& s : shapes) {
    if (s.x + kShapeSize > kImageSize || s.y + kShapeSize > kImageSize)
      ag::fail("render: a ", shape_name(s.kind), " at (", s.x, ", ", s.y, ") leaves the ", kImageSize, " x ", kImageSize, " image");
    const auto bitmap = shape_bitmap(s.kind);
    for (std::size_t y = 0; y < kShapeSize; ++y)
      for (std::size_t x = 0; x < kShapeSize; ++x)
        if (bitmap[y * kShapeSize + x]) img[(s.y + y) * kImageSize + s.x + x] = s.marked ? kMarkedValue : kDistractorValue;
  }
  return img;
}

namespace {

// Two boxes touch unless a gap of at least one pixel separates them.
bool touch(const PlacedShape& a, const PlacedShape& b) {
  const auto apart = [](std::size_t p, std::size_t q) { return p + kShapeSize + 1 <= q || q + kShapeSize + 1 <= p; };
  return !(apart(a.x, b.x) || apart(a.y, b.y));
}

ShapeKind random_kind(ag::Generator& gen) { return ShapeKind(gen.integer(0, std::int64_t(kShapeKinds) - 1)); }

ShapeScene make_scene(std::int64_t label, const ImageTaskOptions& o, ag::Generator& gen) {
  ShapeScene scene;
  scene.label = label;
  const auto g = std::int64_t(o.grid);
  const auto last = std::int64_t(kImageSize - kShapeSize) / g;  // the last corner, in grid steps
  // a corner on the grid in [lo, hi] pixels
  const auto corner = [&](std::int64_t lo, std::int64_t hi) { return std::size_t(g * gen.integer((lo + g - 1) / g, hi / g)); };
  const ShapeKind left = random_kind(gen);
  ShapeKind right = left;
  if (label == 0) {  // a uniform other kind
    const auto k = gen.integer(0, std::int64_t(kShapeKinds) - 2);
    right = ShapeKind(k >= std::int64_t(left) ? k + 1 : k);
  }
  const auto end = std::int64_t(kImageSize - kShapeSize);
  scene.shapes.push_back({left, corner(0, std::int64_t(kLeftEnd - kShapeSize)), corner(0, end), true});
  scene.shapes.push_back({right, corner(std::int64_t(kRightStart), end), corner(0, end), true});
  for (std::size_t d = 0; d < o.distractors; ++d) {
    for (int attempt = 0;; ++attempt) {
      if (attempt == 10000) ag::fail("make_shape_pairs: no room for ", o.distractors, " distractors");
      const PlacedShape s{random_kind(gen), std::size_t(g * gen.integer(0, last)), std::size_t(g * gen.integer(0, last)), false};
      if (std::none_of(scene.shapes.begin(), scene.shapes.end(), [&](const PlacedShape& t) { return touch(s, t); })) {
        scene.shapes.push_back(s);
        break;
      }
    }
  }
  return scene;
}

}  // namespace

ShapeImages make_shape_pairs(std::size_t n, std::uint64_t seed, const ImageTaskOptions& o) {
  if (n == 0 || n % 2 != 0) ag::fail("make_shape_pairs: n = ", n, " (an even number of images, half of each label)");
  if (o.grid == 0 || o.grid > kLeftEnd - kShapeSize) ag::fail("make_shape_pairs: grid ", o.grid, " (1 to ", kLeftEnd - kShapeSize, ")");
  ag::Generator gen(derive_seed(seed, kTrainStream));
  std::vector<std::int64_t> labels(n);
  for (std::size_t i = 0; i < n; ++i) labels[i] = std::int64_t(i % 2);
  std::shuffle(labels.begin(), labels.end(), gen.engine());
  ShapeImages set;
  xt::xarray<float> pixels = xt::zeros<float>({n, std::size_t(1), kImageSize, kImageSize});
  for (std::size_t i = 0; i < n; ++i) {
    set.scenes.push_back(make_scene(labels[i], o, gen));
    const std::vector<float> img = render(set.scenes.back().shapes);
    float* out = pixels.data() + i * kImageSize * kImageSize;
    for (std::size_t p = 0; p < img.size(); ++p)
      out[p] = float(std::clamp(double(img[p]) + (o.noise > 0 ? gen.normal(0.0, o.noise) : 0.0), 0.0, 1.0));
  }
  set.images = ag::Tensor::from(std::move(pixels));
  set.labels = ag::Indices(labels);
  return set;
}

std::pair<ag::Tensor, ag::Indices> image_batch(const ShapeImages& set, const std::vector<std::size_t>& idx) {
  constexpr std::size_t P = kImageSize * kImageSize;
  xt::xarray<float> x = xt::zeros<float>({idx.size(), std::size_t(1), kImageSize, kImageSize});
  std::vector<std::int64_t> y;
  const float* src = set.images.data<float>().data();
  for (std::size_t b = 0; b < idx.size(); ++b) {
    if (idx[b] >= set.size()) ag::fail("image_batch: image ", idx[b], " of a set of ", set.size());
    std::copy(src + idx[b] * P, src + (idx[b] + 1) * P, x.data() + b * P);
    y.push_back(set.labels.values[idx[b]]);
  }
  return {ag::Tensor::from(std::move(x)), ag::Indices(y)};
}

std::vector<bool> marked_patches(const ShapeScene& scene, std::size_t patch) {
  if (patch == 0 || kImageSize % patch != 0) ag::fail("marked_patches: ", kImageSize, " is not a multiple of patch ", patch);
  const std::size_t G = kImageSize / patch;
  std::vector<bool> hit(G * G, false);
  for (const auto& s : scene.shapes) {
    if (!s.marked) continue;
    const auto bitmap = shape_bitmap(s.kind);
    for (std::size_t y = 0; y < kShapeSize; ++y)
      for (std::size_t x = 0; x < kShapeSize; ++x)
        if (bitmap[y * kShapeSize + x]) hit[((s.y + y) / patch) * G + (s.x + x) / patch] = true;
  }
  return hit;
}

}  // namespace lab
