// safetensors checkpoints: bit-exact round trips, a file built byte by byte, every kind of
// damaged file (each an ag::Error with a message that says what is wrong), a fuzz pass that
// must never crash, module save/load, and atomic saves.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "common/expect_error.hpp"
#include "common/tmp_dir.hpp"
#include "ag/ag.hpp"
#include "nn/checkpoint.hpp"
#include "nn/init.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"

namespace fs = std::filesystem;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}
std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The 8-byte little-endian header length, then the header, then the data.
std::string u64_le(std::uint64_t n) {
  std::string out;
  for (int b = 0; b < 8; ++b) out.push_back(char((n >> (8 * b)) & 0xff));
  return out;
}
std::string make_file(const std::string& header, const std::string& data) { return u64_le(header.size()) + header + data; }

bool bit_equal(const ag::Tensor& a, const ag::Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  return ag::dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return a.numel() == 0 || std::memcmp(a.data<T>().data(), b.data<T>().data(), a.numel() * sizeof(T)) == 0;
  });
}

// A tensor of the shape with random values, plus the awkward ones where there is room.
ag::Tensor sample(const ag::Shape& shape, ag::Dtype d, ag::Generator& gen) {
  ag::Tensor t = nn::normal_(ag::zeros(shape, {d}), gen);
  const double specials[] = {std::numeric_limits<double>::quiet_NaN(), INFINITY, -INFINITY, -0.0, 1e-310, 1e-40};
  for (std::size_t i = 0; i < std::min<std::size_t>(t.numel(), 6); ++i)
    ag::dispatch(d, [&](auto tag) { t.data<decltype(tag)>().data()[i] = decltype(tag)(specials[i]); });
  return t;
}

// Modules for save/load: names "scale", "fc.weight" [out, in], "fc.bias" [out] (+ "head.weight").
struct Fc : nn::Module {
  ag::Tensor weight, bias;
  Fc(std::size_t in, std::size_t out, ag::Dtype d) {
    weight = register_parameter("weight", ag::zeros({out, in}, {d}));
    bias = register_parameter("bias", ag::zeros({out}, {d}));
  }
  std::string describe() const override { return "Fc(" + ag::shape_str(weight.shape()) + ")"; }
};
struct Tiny : nn::Module {
  ag::Tensor scale;
  std::shared_ptr<Fc> fc, head;
  explicit Tiny(std::size_t in = 4, std::size_t out = 4, ag::Dtype d = ag::f32, bool with_scale = true, bool with_head = false) {
    if (with_scale) scale = register_parameter("scale", ag::ones({}, {d}));
    fc = register_module("fc", std::make_shared<Fc>(in, out, d));
    if (with_head) head = register_module("head", std::make_shared<Fc>(out, 2, d));
  }
  std::string describe() const override { return "Tiny"; }
  void randomize(std::uint64_t seed) {
    ag::Generator gen(seed);
    for (auto& p : parameters()) nn::normal_(p, gen);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(round_trip_is_bit_exact) {
  TmpDir dir("ckpt");
  ag::Generator gen(1);
  const std::vector<ag::Shape> shapes = {{}, {0}, {7}, {3, 5}, {2, 0, 3}, {2, 3, 4}, {1, 1, 1, 1, 9}};
  nn::NamedTensors tensors;
  for (auto d : {ag::f32, ag::f64})
    for (std::size_t i = 0; i < shapes.size(); ++i)
      tensors.emplace_back(std::string(ag::dtype_name(d)) + ".t" + std::to_string(i), sample(shapes[i], d, gen));
  const nn::Metadata meta = {{"format", "pt"}, {"epoch", "3"}, {"note", "unicode: \xc3\xa9 \"quoted\""}};
  const std::string path = dir.file("all.safetensors");
  nn::save_safetensors(path, tensors, meta);

  nn::Metadata got_meta;
  const nn::NamedTensors got = nn::load_safetensors(path, &got_meta);
  BOOST_TEST(got_meta == meta);
  BOOST_REQUIRE(got.size() == tensors.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST_INFO(tensors[i].first << " " << ag::shape_str(tensors[i].second.shape()));
    BOOST_TEST(got[i].first == tensors[i].first);  // in the saved order
    BOOST_TEST(bit_equal(got[i].second, tensors[i].second));
    BOOST_TEST(!got[i].second.requires_grad());
  }

  // the layout: u64 N, N % 8 == 0, '{' first, the data right after, nothing else
  const std::string bytes = read_bytes(path);
  std::uint64_t n = 0;
  for (int b = 7; b >= 0; --b) n = (n << 8) | static_cast<unsigned char>(bytes[std::size_t(b)]);
  std::size_t data_bytes = 0;
  for (const auto& [name, t] : tensors) data_bytes += t.numel() * (t.dtype() == ag::f32 ? 4 : 8);
  BOOST_TEST(n % 8 == 0);
  BOOST_TEST(bytes[8] == '{');
  BOOST_TEST(bytes.size() == 8 + n + data_bytes);
  BOOST_TEST(!fs::exists(path + ".tmp"));

  // no tensors at all, no metadata
  nn::save_safetensors(dir.file("empty.safetensors"), {});
  nn::Metadata none = {{"stale", "x"}};
  BOOST_TEST(nn::load_safetensors(dir.file("empty.safetensors"), &none).empty());
  BOOST_TEST(none.empty());
}

BOOST_AUTO_TEST_CASE(hand_written_file_is_read) {
  // Keys out of offset order, no padding, metadata last: all legal.
  //   a: F32 [2]  = {1.0f, -2.5f}: 0x3F800000, 0xC0200000 -> little-endian bytes below, offsets [0, 8)
  //   b: F64 []   = 0.5: 0x3FE0000000000000, offsets [8, 16)
  const std::string header =
      R"({"b":{"dtype":"F64","shape":[],"data_offsets":[8,16]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"np"}})";
  const char data[] = {0x00, 0x00, char(0x80), 0x3F, 0x00, 0x00, 0x20, char(0xC0),
                       0x00, 0x00, 0x00,       0x00, 0x00, 0x00, char(0xE0), 0x3F};
  TmpDir dir("ckpt");
  const std::string path = dir.file("hand.safetensors");
  write_bytes(path, make_file(header, std::string(data, sizeof data)));
  nn::Metadata meta;
  const nn::NamedTensors got = nn::load_safetensors(path, &meta);
  BOOST_REQUIRE(got.size() == 2);
  BOOST_TEST(got[0].first == "a");  // file order: by offset
  BOOST_TEST(got[0].second.dtype() == ag::f32);
  BOOST_TEST(ag::shape_str(got[0].second.shape()) == "[2]");
  BOOST_TEST(got[0].second.flat(0) == 1.0);
  BOOST_TEST(got[0].second.flat(1) == -2.5);
  BOOST_TEST(got[1].first == "b");
  BOOST_TEST(got[1].second.dtype() == ag::f64);
  BOOST_TEST(got[1].second.dim() == 0u);
  BOOST_TEST(got[1].second.item() == 0.5);
  BOOST_TEST(meta.at("format") == "np");

  // and what we write for the same tensors is what the format says, byte for byte
  const std::string ours = nn::serialize_safetensors(
      {{"a", ag::tensor({1.0, -2.5}, {2}, {ag::f32})}, {"b", ag::scalar(0.5, {ag::f64})}});
  const std::string expected_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F64","shape":[],"data_offsets":[8,16]}})";
  std::string padded = expected_header;
  padded.append((8 - padded.size() % 8) % 8, ' ');
  BOOST_TEST(ours == make_file(padded, std::string(data, sizeof data)));
}

BOOST_AUTO_TEST_CASE(damaged_files_give_clear_errors) {
  const std::string f32x2(8, '\0');  // data for an F32 [2]
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
  };
  const std::string good_entry = entry("F32", "[2]", "[0,8]");
  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"empty file", "", {"0 bytes", "too short"}},
      {"5 bytes", std::string("\x10\x00\x00\x00\x00", 5), {"5 bytes", "too short"}},
      {"header length past the end", u64_le(1000) + "{}", {"header length is 1000", "only 2 bytes"}},
      {"header length 2^63", u64_le(std::uint64_t(1) << 63) + "{}", {"header length is 9223372036854775808"}},
      {"header length just 1 too long", u64_le(3) + "{}", {"header length is 3", "only 2 bytes"}},
      {"not JSON", make_file("{not json", ""), {"not valid JSON"}},
      {"JSON, not an object", make_file("[1,2]", ""), {"must be a JSON object", "array"}},
      {"entry not an object", make_file(R"({"a":5})", ""), {"tensor 'a'", "JSON object", "number"}},
      {"missing shape", make_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", f32x2), {"tensor 'a'", "no \"shape\""}},
      {"missing dtype", make_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", f32x2), {"tensor 'a'", "no \"dtype\""}},
      {"missing data_offsets", make_file(R"({"a":{"dtype":"F32","shape":[2]}})", f32x2), {"no \"data_offsets\""}},
      {"BF16", make_file(R"({"a":)" + entry("BF16", "[4]", "[0,8]") + "}", f32x2), {"tensor 'a'", "BF16", "does not support", "F32 and F64"}},
      {"I64", make_file(R"({"a":)" + entry("I64", "[1]", "[0,8]") + "}", f32x2), {"I64", "does not support"}},
      {"unknown dtype", make_file(R"({"a":)" + entry("Q7", "[2]", "[0,8]") + "}", f32x2), {"unknown dtype", "Q7"}},
      {"dtype not a string", make_file(R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", f32x2), {"\"dtype\" must be a string"}},
      {"shape not an array", make_file(R"({"a":)" + entry("F32", "\"2\"", "[0,8]") + "}", f32x2), {"\"shape\" must be an array"}},
      {"negative shape", make_file(R"({"a":)" + entry("F32", "[-2]", "[0,8]") + "}", f32x2), {"\"shape\"", "-2", "non-negative"}},
      {"fractional shape", make_file(R"({"a":)" + entry("F32", "[2.5]", "[0,8]") + "}", f32x2), {"\"shape\"", "non-negative integers"}},
      {"shape product overflows", make_file(R"({"a":)" + entry("F32", "[4294967296,4294967296,16]", "[0,8]") + "}", f32x2), {"overflow"}},
      {"byte size overflows", make_file(R"({"a":)" + entry("F64", "[4611686018427387904]", "[0,8]") + "}", f32x2), {"overflow"}},
      {"huge shape, small file", make_file(R"({"a":)" + entry("F32", "[1000000000000]", "[0,8]") + "}", f32x2), {"needs 4000000000000 bytes"}},
      {"offset past the end", make_file(R"({"a":)" + entry("F32", "[2]", "[0,1000]") + "}", f32x2), {"[0, 1000]", "past the end", "8 bytes"}},
      {"huge offset", make_file(R"({"a":)" + entry("F32", "[2]", "[18446744073709551608,18446744073709551615]") + "}", f32x2), {"past the end"}},
      {"begin > end", make_file(R"({"a":)" + entry("F32", "[2]", "[8,0]") + "}", f32x2), {"begin > end"}},
      {"size does not match shape", make_file(R"({"a":)" + entry("F32", "[3]", "[0,8]") + "}", f32x2), {"span 8 bytes", "[3]", "needs 12 bytes"}},
      {"offsets not a pair", make_file(R"({"a":)" + entry("F32", "[2]", "[0]") + "}", f32x2), {"[begin, end]"}},
      {"negative offset", make_file(R"({"a":)" + entry("F32", "[2]", "[-8,0]") + "}", f32x2), {"data_offsets", "non-negative"}},
      {"duplicate name", make_file(R"({"a":)" + good_entry + R"(,"a":)" + good_entry + "}", f32x2), {"'a' appears twice"}},
      {"duplicate field", make_file(R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", f32x2), {"\"dtype\" twice"}},
      {"overlapping tensors", make_file(R"({"a":)" + good_entry + R"(,"b":)" + good_entry + "}", f32x2), {"overlap"}},
      {"gap between tensors", make_file(R"({"a":)" + entry("F32", "[1]", "[0,4]") + R"(,"b":)" + entry("F32", "[1]", "[8,12]") + "}", std::string(12, '\0')), {"tensor 'b'", "gap"}},
      {"trailing bytes", make_file(R"({"a":)" + good_entry + "}", f32x2 + "xxxx"), {"cover 8 bytes", "has 12 bytes"}},
      {"truncated data", make_file(R"({"a":)" + good_entry + "}", f32x2.substr(0, 5)), {"past the end", "5 bytes"}},
      {"metadata not strings", make_file(R"({"__metadata__":{"epoch":3}})", ""), {"__metadata__", "'epoch'", "must be a string"}},
      {"deeply nested value", make_file(R"({"a":)" + std::string(100000, '[') + std::string(100000, ']') + "}", ""), {"tensor 'a'", "JSON object", "array"}},
      {"deeply nested shape", make_file(R"({"a":)" + entry("F32", std::string(100000, '[') + std::string(100000, ']'), "[0,0]") + "}", ""), {"\"shape\"", "(1 elements)"}},
      {"deeply nested, unclosed", make_file(std::string(1000000, '['), ""), {"not valid JSON"}},
      {"shape product overflows (message)", make_file(R"({"a":)" + entry("F32", "[4294967296,4294967296,16]", "[0,8]") + "}", f32x2), {"[4294967296,4294967296,16]"}},
      {"metadata not an object", make_file(R"({"__metadata__":"x"})", ""), {"__metadata__", "object"}},
  };
  TmpDir dir("ckpt");
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("case: " << c.what) {
      expect_error([&] { nn::parse_safetensors(c.bytes, "case.safetensors"); }, c.parts);
      // the same through a file: the error names the file
      const std::string path = dir.file("bad.safetensors");
      write_bytes(path, c.bytes);
      auto parts = c.parts;
      parts.push_back("load_safetensors: '" + path + "'");
      expect_error([&] { nn::load_safetensors(path); }, parts);
    }
  }
  expect_error([&] { nn::load_safetensors(dir.file("missing.safetensors")); },
               {"load_safetensors", "cannot open", "missing.safetensors", "No such file"});
  expect_error([&] { nn::load_safetensors(dir.path.string()); }, {"load_safetensors", "is a directory"});
}

BOOST_AUTO_TEST_CASE(every_truncation_and_random_damage_is_an_error_not_a_crash) {
  ag::Generator gen(2);
  const std::string good = nn::serialize_safetensors(
      {{"w", sample({3, 4}, ag::f32, gen)}, {"b", sample({4}, ag::f64, gen)}, {"s", sample({}, ag::f32, gen)}},
      {{"k", "v"}});
  BOOST_CHECK_NO_THROW(nn::parse_safetensors(good));
  // every prefix of the file is rejected with an ag::Error
  int errors = 0;
  for (std::size_t n = 0; n < good.size(); ++n) {
    try {
      nn::parse_safetensors(std::string_view(good).substr(0, n));
      BOOST_ERROR("a file truncated to " << n << " of " << good.size() << " bytes was accepted");
    } catch (const ag::Error&) {
      ++errors;
    }
  }
  BOOST_TEST(errors == int(good.size()));
  // random damage: flipped bytes anywhere, mostly in the header; it may load (data bytes), or
  // fail with ag::Error, but nothing else
  std::mt19937_64 rng(3);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string bad = good;
    const int flips = 1 + int(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      const std::size_t limit = (rng() % 4 == 0) ? bad.size() : std::min<std::size_t>(bad.size(), 8 + 200);
      const std::size_t at = rng() % limit;
      const char pool[] = "{}[]\",:0123456789-eE. FI6432_abc\x00\xff";
      bad[at] = (rng() % 2) ? pool[rng() % (sizeof pool - 1)] : char(rng() & 0xff);
    }
    try {
      nn::parse_safetensors(bad);
      ++loaded;
    } catch (const ag::Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      BOOST_ERROR("damaged file threw a non-ag::Error: " << e.what());
    }
  }
  BOOST_TEST_MESSAGE("random damage: " << loaded << " loaded, " << rejected << " rejected");
  BOOST_TEST(rejected > 0);
}

BOOST_AUTO_TEST_CASE(save_errors) {
  TmpDir dir("ckpt");
  const std::string path = dir.file("x.safetensors");
  const ag::Tensor t = ag::zeros({2});
  expect_error([&] { nn::save_safetensors(path, {{"a", t}, {"a", t}}); }, {"save_safetensors", "'a' appears twice"});
  expect_error([&] { nn::save_safetensors(path, {{"", t}}); }, {"save_safetensors", "empty name"});
  expect_error([&] { nn::save_safetensors(path, {{"__metadata__", t}}); }, {"save_safetensors", "reserved"});
  expect_error([&] { nn::save_safetensors(path, {{"u", ag::Tensor()}}); }, {"save_safetensors", "'u'", "undefined"});
  expect_error([&] { nn::save_safetensors(path, {{"bad\xff", t}}); }, {"save_safetensors", "header"});
  BOOST_TEST(!fs::exists(path));
  BOOST_TEST(!fs::exists(path + ".tmp"));
  const std::string nowhere = dir.file("no/such/dir/x.safetensors");
  expect_error([&] { nn::save_safetensors(nowhere, {{"a", t}}); }, {"save_safetensors", "cannot open", "No such file"});
}

BOOST_AUTO_TEST_CASE(module_save_load_round_trip) {
  for (auto d : {ag::f32, ag::f64}) {
    TmpDir dir("ckpt");
    const std::string path = dir.file("tiny.safetensors");
    Tiny a(3, 4, d);
    a.randomize(10);
    nn::save(a, path, {{"model", "Tiny"}});

    // the file holds PyTorch-style names
    nn::Metadata meta;
    const auto file = nn::load_safetensors(path, &meta);
    BOOST_REQUIRE(file.size() == 3);
    BOOST_TEST(file[0].first == "scale");
    BOOST_TEST(file[1].first == "fc.weight");
    BOOST_TEST(file[2].first == "fc.bias");
    BOOST_TEST(meta.at("model") == "Tiny");

    Tiny b(3, 4, d);
    b.randomize(20);
    const ag::Node* weight_node = b.fc->weight.node();
    nn::SGD opt(b.parameters(), {.lr = 0.5});  // made before the load: must keep working after it
    nn::load(b, path);
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) {
      BOOST_TEST_INFO(pa[i].first);
      BOOST_TEST(bit_equal(pa[i].second, pb[i].second));
    }
    BOOST_TEST(b.fc->weight.node() == weight_node);  // copied in place
    BOOST_TEST(b.fc->weight.requires_grad());
    // the optimizer still updates the very tensors the module uses
    const double before = b.fc->bias.flat(0);
    ag::sum(b.fc->bias).backward();  // d/d bias = 1
    opt.step();
    BOOST_TEST(std::abs(b.fc->bias.flat(0) - (before - 0.5)) < 1e-6);
  }
}

BOOST_AUTO_TEST_CASE(load_reports_every_mismatch_and_changes_nothing) {
  TmpDir dir("ckpt");
  const std::string path = dir.file("x.safetensors");
  Tiny saved(4, 3);  // fc.weight [3,4]
  saved.randomize(1);
  nn::save(saved, path);

  auto unchanged = [](Tiny& m, const std::vector<double>& before) {
    std::vector<double> now;
    for (auto& p : m.parameters())
      for (double x : p.to_vector()) now.push_back(x);
    BOOST_TEST(now == before, "a failed load changed the model");
  };
  auto values = [](Tiny& m) {
    std::vector<double> v;
    for (auto& p : m.parameters())
      for (double x : p.to_vector()) v.push_back(x);
    return v;
  };

  {  // shape: the exact message of the design
    Tiny m(4, 4);
    m.randomize(2);
    const auto before = values(m);
    expect_error([&] { nn::load(m, path); },
                 {"load: checkpoint '" + path + "' has 'fc.weight' of shape [3,4], the model expects [4,4]",
                  "'fc.bias' of shape [3], the model expects [4]"});
    unchanged(m, before);
  }
  {  // a name the model has and the file lacks
    Tiny m(4, 3, ag::f32, true, true);
    const auto before = values(m);
    expect_error([&] { nn::load(m, path); }, {"load: checkpoint '" + path + "' has no 'head.weight'", "which the model expects"});
    unchanged(m, before);
  }
  {  // a name the file has and the model lacks
    Tiny m(4, 3, ag::f32, false, false);
    const auto before = values(m);
    expect_error([&] { nn::load(m, path); }, {"load: checkpoint '" + path + "' has 'scale'", "which the model does not have"});
    unchanged(m, before);
  }
  {  // dtype
    Tiny m(4, 3, ag::f64);
    expect_error([&] { nn::load(m, path); }, {"has 'fc.weight' as float32, the model expects float64"});
  }
  {  // a file that is not a checkpoint at all
    write_bytes(dir.file("junk.safetensors"), "hello, world");
    Tiny m(4, 3);
    expect_error([&] { nn::load(m, dir.file("junk.safetensors")); }, {"junk.safetensors", "header length"});
  }
}

BOOST_AUTO_TEST_CASE(interrupted_save_leaves_the_old_checkpoint) {
  TmpDir dir("ckpt");
  const std::string path = dir.file("model.safetensors");
  Tiny good(4, 3);
  good.randomize(5);
  nn::save(good, path);
  const std::string good_bytes = read_bytes(path);

  // A save that crashed half way: it got as far as part of the temporary file, never to the rename.
  write_bytes(path + ".tmp", good_bytes.substr(0, good_bytes.size() / 2) + "garbage");
  Tiny restored(4, 3);
  nn::load(restored, path);
  BOOST_TEST(restored.fc->weight.to_vector() == good.fc->weight.to_vector());

  // The next save writes over the stale temporary file and replaces the checkpoint whole.
  Tiny newer(4, 3);
  newer.randomize(6);
  nn::save(newer, path);
  BOOST_TEST(!fs::exists(path + ".tmp"));
  nn::load(restored, path);
  BOOST_TEST(restored.fc->weight.to_vector() == newer.fc->weight.to_vector());

  // A save that fails at the rename (the target is a directory): the temporary file is removed.
  const std::string blocked = dir.file("blocked.safetensors");
  fs::create_directories(blocked);
  expect_error([&] { nn::save(newer, blocked); }, {"save_safetensors", "cannot rename", "blocked.safetensors"});
  BOOST_TEST(!fs::exists(blocked + ".tmp"));
  BOOST_TEST(fs::is_directory(blocked));
}

BOOST_AUTO_TEST_SUITE_END()
