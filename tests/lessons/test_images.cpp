// Lesson 20's image task (ctest -R images): determinism, balanced labels, hand-checked pixels and
// labels, shapes inside the image, and that neither one region nor the distractors give the label away.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <vector>

#include "../common/expect_error.hpp"
#include "common/images.hpp"

using lab::PlacedShape;
using lab::ShapeKind;

namespace {

// The accuracy of predicting each image's label by the majority label, in `fit`, of the images
// that share its key: the best any rule reading only that key can do, measured on `test`.
template <class Key>
double majority_rule_accuracy(const lab::ShapeImages& fit, const lab::ShapeImages& test, Key key) {
  std::map<int, std::pair<int, int>> counts;  // key -> (label 0, label 1)
  for (const auto& s : fit.scenes) (s.label ? counts[key(s)].second : counts[key(s)].first) += 1;
  int right = 0;
  for (const auto& s : test.scenes) {
    const auto& c = counts[key(s)];
    right += (c.second > c.first ? 1 : 0) == s.label;
  }
  return double(right) / double(test.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(images)

BOOST_AUTO_TEST_CASE(deterministic_for_a_seed) {
  const lab::ShapeImages a = lab::make_shape_pairs(20, 7), b = lab::make_shape_pairs(20, 7), c = lab::make_shape_pairs(20, 8);
  BOOST_TEST(a.images.to_vector() == b.images.to_vector());
  BOOST_TEST(a.labels.values == b.labels.values);
  BOOST_TEST(a.images.to_vector() != c.images.to_vector());
  BOOST_TEST((a.images.shape() == ag::Shape{20, 1, 32, 32}));
  BOOST_TEST((a.labels.shape == ag::Shape{20}));
}

BOOST_AUTO_TEST_CASE(labels_balanced) {
  const lab::ShapeImages set = lab::make_shape_pairs(1000, 3);
  BOOST_TEST(std::count(set.labels.values.begin(), set.labels.values.end(), 1) == 500);
  BOOST_TEST(std::count(set.labels.values.begin(), set.labels.values.end(), 0) == 500);
}

// Pixels of hand-placed shapes, checked one by one.
BOOST_AUTO_TEST_CASE(render_known_pixels) {
  const std::vector<float> img = lab::render({{ShapeKind::plus, 0, 0, true}, {ShapeKind::square, 10, 12, false}});
  auto at = [&](std::size_t row, std::size_t col) { return img[row * 32 + col]; };
  BOOST_TEST(at(3, 0) == 1.0f);   // the plus's arms, two pixels wide
  BOOST_TEST(at(2, 6) == 1.0f);
  BOOST_TEST(at(0, 3) == 1.0f);
  BOOST_TEST(at(6, 2) == 1.0f);
  BOOST_TEST(at(0, 0) == 0.0f);   // its corner is empty
  BOOST_TEST(at(4, 4) == 0.0f);
  BOOST_TEST(at(12, 10) == 0.45f);  // the square's outline, a distractor: gray
  BOOST_TEST(at(18, 16) == 0.45f);
  BOOST_TEST(at(15, 13) == 0.0f);  // its inside is empty
  float total = 0;
  for (float v : img) total += v;
  BOOST_TEST(total == 24 * 1.0f + 24 * 0.45f, boost::test_tools::tolerance(1e-5f));  // 24 pixels each
  // a circle is an outline, a triangle has its apex in row 1 (one pixel) and seven pixels in row 6
  const auto circle = lab::shape_bitmap(ShapeKind::circle), tri = lab::shape_bitmap(ShapeKind::triangle);
  BOOST_TEST(!circle[3 * 7 + 3]);
  BOOST_TEST(circle[0 * 7 + 3]);
  BOOST_TEST(!circle[0]);
  BOOST_TEST(std::count(tri.begin(), tri.begin() + 7, true) == 0);
  BOOST_TEST(std::count(tri.begin() + 7, tri.begin() + 14, true) == 1);
  BOOST_TEST(std::count(tri.begin() + 42, tri.end(), true) == 7);
  // Every kind lights 24 pixels: brightness alone cannot tell kinds apart.
  for (ShapeKind k : {ShapeKind::square, ShapeKind::circle, ShapeKind::triangle, ShapeKind::plus}) {
    const auto b = lab::shape_bitmap(k);
    BOOST_TEST(std::count(b.begin(), b.end(), true) == 24, lab::shape_name(k));
  }
}

BOOST_AUTO_TEST_CASE(labels_of_hand_made_scenes) {
  BOOST_TEST(lab::same_kind_label({{ShapeKind::square, 2, 5, true}, {ShapeKind::square, 22, 10, true}}) == 1);
  BOOST_TEST(lab::same_kind_label({{ShapeKind::square, 2, 5, true}, {ShapeKind::circle, 22, 10, true}}) == 0);
  // distractors do not count, even of the marked kind
  BOOST_TEST(lab::same_kind_label({{ShapeKind::plus, 2, 5, true}, {ShapeKind::plus, 12, 5, false},
                                   {ShapeKind::triangle, 22, 10, true}}) == 0);
  BOOST_TEST(lab::same_kind_label({{ShapeKind::circle, 2, 5, true}, {ShapeKind::plus, 12, 5, false},
                                   {ShapeKind::circle, 22, 10, true}}) == 1);
}

// Every generated scene: the label is the marked pair's, the marked shapes sit in their thirds,
// every shape inside the image, no two touching, and the image is its scene drawn (plus noise).
BOOST_AUTO_TEST_CASE(generated_scenes_are_what_they_say) {
  const lab::ShapeImages set = lab::make_shape_pairs(400, 11);
  const auto pixels = set.images.to_vector();
  for (std::size_t i = 0; i < set.size(); ++i) {
    const auto& s = set.scenes[i];
    BOOST_TEST_REQUIRE(s.shapes.size() == 4u);
    BOOST_TEST(s.label == lab::same_kind_label(s.shapes));
    BOOST_TEST(s.label == set.labels.values[i]);
    BOOST_TEST(s.shapes[0].marked);
    BOOST_TEST(s.shapes[1].marked);
    BOOST_TEST(s.shapes[0].x + 7 <= 11u);  // left third: columns 0..10
    BOOST_TEST(s.shapes[1].x >= 21u);      // right third: columns 21..31
    for (std::size_t a = 0; a < 4; ++a) {
      BOOST_TEST(s.shapes[a].x + 7 <= 32u);
      BOOST_TEST(s.shapes[a].y + 7 <= 32u);
      BOOST_TEST(s.shapes[a].marked == (a < 2));
      for (std::size_t b = a + 1; b < 4; ++b) {
        const auto& p = s.shapes[a];
        const auto& q = s.shapes[b];
        const bool apart = p.x + 8 <= q.x || q.x + 8 <= p.x || p.y + 8 <= q.y || q.y + 8 <= p.y;
        BOOST_TEST(apart, "image " << i << ": shapes " << a << " and " << b << " touch");
      }
    }
    const std::vector<float> clean = lab::render(s.shapes);
    double worst = 0;
    for (std::size_t p = 0; p < clean.size(); ++p) {
      const double v = pixels[i * 1024 + p];
      BOOST_TEST((v >= 0.0 && v <= 1.0));
      worst = std::max(worst, std::abs(v - double(clean[p])));
    }
    BOOST_TEST(worst < 0.35);  // noise of std 0.05: 7 standard deviations
  }
}

// No shortcut: the left marked kind, the right marked kind, the two distractors' kinds, or where
// the marked shapes sit, each alone predicts the label no better than a coin on held-out images;
// the pair of marked kinds predicts it exactly.
BOOST_AUTO_TEST_CASE(no_single_region_or_distractor_shortcut) {
  const lab::ShapeImages fit = lab::make_shape_pairs(8000, 1), test = lab::make_shape_pairs(8000, 2);
  const auto kind = [](const PlacedShape& p) { return int(p.kind); };
  const double left = majority_rule_accuracy(fit, test, [&](const lab::ShapeScene& s) { return kind(s.shapes[0]); });
  const double right = majority_rule_accuracy(fit, test, [&](const lab::ShapeScene& s) { return kind(s.shapes[1]); });
  const double distractors =
      majority_rule_accuracy(fit, test, [&](const lab::ShapeScene& s) { return 4 * kind(s.shapes[2]) + kind(s.shapes[3]); });
  const double left_and_distractors = majority_rule_accuracy(
      fit, test, [&](const lab::ShapeScene& s) { return 16 * kind(s.shapes[0]) + 4 * kind(s.shapes[2]) + kind(s.shapes[3]); });
  const double places = majority_rule_accuracy(fit, test, [&](const lab::ShapeScene& s) {
    return int(s.shapes[0].y / 4) * 8 + int(s.shapes[1].y / 4);
  });
  // How many pixels are bright (the marked shapes' pixels, counted in the rendered image): with
  // kinds of unequal size (24, 37, 25 and 13 pixels) this alone told 11 of 12 labels.
  const double bright_count = majority_rule_accuracy(fit, test, [&](const lab::ShapeScene& s) {
    const std::vector<float> img = lab::render(s.shapes);
    return int(std::count(img.begin(), img.end(), 1.0f));
  });
  const double pair = majority_rule_accuracy(fit, test, [&](const lab::ShapeScene& s) { return 4 * kind(s.shapes[0]) + kind(s.shapes[1]); });
  BOOST_TEST_MESSAGE("majority-rule accuracy: left " << left << ", right " << right << ", distractors " << distractors
                                                     << ", left + distractors " << left_and_distractors << ", places " << places
                                                     << ", bright-pixel count " << bright_count
                                                     << ", the marked pair " << pair);
  for (double a : {left, right, distractors, left_and_distractors, places, bright_count}) BOOST_TEST(std::abs(a - 0.5) < 0.03);
  BOOST_TEST(pair == 1.0);
}

// Patches that hold a marked pixel: a plus at (0, 0) and one at (25, 25), 4 x 4 patches.
BOOST_AUTO_TEST_CASE(marked_patches_known) {
  lab::ShapeScene scene{{{ShapeKind::plus, 0, 0, true}, {ShapeKind::plus, 25, 25, true}, {ShapeKind::circle, 12, 12, false}}, 1};
  const std::vector<bool> hit = lab::marked_patches(scene, 4);
  BOOST_TEST_REQUIRE(hit.size() == 64u);
  std::vector<std::size_t> on;
  for (std::size_t i = 0; i < 64; ++i)
    if (hit[i]) on.push_back(i);
  // (row, column): (0, 0), (0, 1), (1, 0) (the plus's arms at columns and rows 2-3 miss (1, 1));
  // (6, 6), (6, 7), (7, 6), (7, 7) (its arms at 27-28 straddle the patch boundary at 28)
  BOOST_TEST((on == std::vector<std::size_t>{0, 1, 8, 54, 55, 62, 63}));
}

BOOST_AUTO_TEST_CASE(image_batch_rows) {
  const lab::ShapeImages set = lab::make_shape_pairs(10, 5);
  const auto [x, y] = lab::image_batch(set, {3, 7});
  BOOST_TEST((x.shape() == ag::Shape{2, 1, 32, 32}));
  const auto all = set.images.to_vector(), got = x.to_vector();
  BOOST_TEST(std::equal(got.begin(), got.begin() + 1024, all.begin() + 3 * 1024));
  BOOST_TEST(std::equal(got.begin() + 1024, got.end(), all.begin() + 7 * 1024));
  BOOST_TEST((y.values == std::vector<std::int64_t>{set.labels.values[3], set.labels.values[7]}));
}

BOOST_AUTO_TEST_CASE(errors) {
  expect_error([] { lab::make_shape_pairs(7, 1); }, {"make_shape_pairs", "n = 7"});
  expect_error([] { lab::render({{ShapeKind::circle, 26, 0, true}}); }, {"render", "circle", "(26, 0)"});
  expect_error([] { lab::same_kind_label({{ShapeKind::circle, 0, 0, true}}); }, {"same_kind_label", "1 marked"});
  expect_error([] { lab::marked_patches({}, 5); }, {"marked_patches", "patch 5"});
  expect_error([] { lab::image_batch(lab::make_shape_pairs(2, 1), {2}); }, {"image_batch", "image 2"});
}

BOOST_AUTO_TEST_SUITE_END()
