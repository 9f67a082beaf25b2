// parity_dump: attnlab's side of the PyTorch parity suite (./lab parity; tests/parity/torch_parity.py
// is the other side). Two modes:
//
//   parity_dump dump DIR   every case: deterministic float64 inputs, attnlab's outputs, an upstream
//                          gradient per output and the gradients it gives (of the inputs and of a
//                          module's parameters) -> DIR/<case>.safetensors; a module's parameters with
//                          nn::save -> DIR/<case>.state.safetensors (torch loads them with
//                          load_state_dict(strict=True)); the list of cases -> DIR/manifest.json
//   parity_dump load DIR   reads DIR/torch_manifest.json (written by torch_parity.py): for each case a
//                          module config, a torch state_dict saved as safetensors and inputs; builds the
//                          module, nn::load()s the state, runs forward and writes the outputs.
//
// Tensor names in a case file: "in.<x>" inputs, "idx.<x>" integer inputs (ids, class labels) stored
// as float64, "out.<y>" outputs, "gout.<y>" the upstream gradient of each output (the loss is
// sum_y sum(y * gout.y)), "grad.<x>" dloss/dx, "pgrad.<param>" dloss/dparam. Every case is in the
// manifest with its op (or module config) and attributes, and "xfail" naming the issue item when it
// shows a known difference from PyTorch (the script then expects it to differ).
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ag/ag.hpp"
#include "nn/checkpoint.hpp"
#include "nn/nn.hpp"
#include "nn/optim.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using ag::Shape;
using ag::Tensor;

namespace {

using Named = std::vector<std::pair<std::string, Tensor>>;

struct Ins {
  std::map<std::string, Tensor> t;
  std::map<std::string, ag::Indices> idx;
  const Tensor& operator[](const std::string& k) const {
    auto it = t.find(k);
    if (it == t.end()) ag::fail("parity_dump: no input '", k, "'");
    return it->second;
  }
  Tensor get(const std::string& k) const {  // undefined when absent
    auto it = t.find(k);
    return it == t.end() ? Tensor() : it->second;
  }
  // A mask input, saved as 0/1 float64 in the file: as the boolean mask it is (torch: x != 0);
  // none when absent. A float mask (added) is passed as the Tensor itself: get(k).
  ag::AttentionMask mask(const std::string& k) const {
    const Tensor m = get(k);
    return m.defined() ? ag::AttentionMask(ag::Mask::nonzero(m)) : ag::AttentionMask();
  }
  const ag::Indices& ids(const std::string& k) const {
    auto it = idx.find(k);
    if (it == idx.end()) ag::fail("parity_dump: no index input '", k, "'");
    return it->second;
  }
};
using Fn = std::function<Named(const Ins&)>;

// Names built with a stream: GCC 12 warns (-Wrestrict, a false positive) on "literal" + std::to_string(i).
template <class... Parts>
std::string str(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

std::uint64_t seed_of(const std::string& s) {  // FNV-1a: the same on every platform
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

Tensor uniform(const Shape& s, ag::Generator& g, double lo = -1, double hi = 1) {
  return (ag::rand(s, g, {ag::f64}) * (hi - lo) + lo).detach();
}
Tensor normal(const Shape& s, ag::Generator& g) { return ag::randn(s, g, {ag::f64}); }
Tensor mask01(const Shape& s, ag::Generator& g, double p_one = 0.4) {
  Tensor m = ag::rand(s, g, {ag::f64});
  for (auto& v : m.data<double>()) v = v < p_one ? 1.0 : 0.0;
  return m;
}
Tensor of(std::vector<double> v, const Shape& s) { return ag::tensor(v, s, {ag::f64}); }
// A Mask as the 0/1 float64 tensor the file holds (torch reads it back as x != 0).
Tensor zero_one(const ag::Mask& m) {
  std::vector<double> v(m.numel());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = m[i] ? 1.0 : 0.0;
  return ag::tensor(v, m.shape(), {ag::f64});
}
Tensor causal(std::size_t T) { return zero_one(nn::causal_mask(T)); }

Tensor indices_tensor(const ag::Indices& ids) {
  std::vector<double> v(ids.values.begin(), ids.values.end());
  return ag::tensor(v, ids.shape, {ag::f64});
}
ag::Indices tensor_indices(const Tensor& t) {
  std::vector<std::int64_t> v;
  for (double x : t.to_vector()) v.push_back(std::int64_t(std::llround(x)));
  return ag::Indices(v, t.shape());
}
ag::Indices random_ids(const Shape& s, std::int64_t n, ag::Generator& g) {
  std::vector<std::int64_t> v(ag::shape_numel(s));
  for (auto& x : v) x = g.integer(0, n - 1);
  return ag::Indices(v, s);
}

std::string file_name(const std::string& case_name) {
  std::string f;
  for (char c : case_name) f += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return f;
}

// ---- modules, built from a config (the same config torch_parity.py builds torch's module from) ----
struct Built {
  std::shared_ptr<nn::Module> module;
  Fn run;
};

nn::Activation activation_of(const std::string& a) {
  if (a == "relu") return nn::Activation::relu;
  if (a == "gelu") return nn::Activation::gelu;
  if (a == "gelu_tanh") return nn::Activation::gelu_tanh;
  if (a == "tanh") return nn::Activation::tanh;
  ag::fail("parity_dump: unknown activation '", a, "'");
}

nn::TransformerOptions transformer_options(const json& c) {
  nn::TransformerOptions o;
  o.d_model = c.at("d");
  o.num_heads = c.at("heads");
  o.dim_feedforward = c.at("ff");
  o.dropout = 0.0;
  o.activation = activation_of(c.value("activation", "relu"));
  o.norm_first = c.value("norm_first", false);
  o.attention = c.value("impl", "naive") == "tiled" ? nn::AttentionImpl::tiled : nn::AttentionImpl::naive;
  return o;
}

nn::CellKind cell_kind(const std::string& m) {
  if (m.rfind("RNN", 0) == 0) return nn::CellKind::tanh_rnn;
  if (m.rfind("LSTM", 0) == 0) return nn::CellKind::lstm;
  return nn::CellKind::gru;
}

Built build_module(const json& c, ag::Generator& gen) {
  const std::string m = c.at("module");
  if (m == "Linear") {
    auto l = std::make_shared<nn::Linear>(c.at("in"), c.at("out"), gen, c.value("bias", true));
    return {l, [l](const Ins& in) { return Named{{"y", (*l)(in["x"])}}; }};
  }
  if (m == "LayerNorm") {
    auto l = std::make_shared<nn::LayerNorm>(c.at("dim"), c.value("eps", 1e-5), c.value("affine", true));
    return {l, [l](const Ins& in) { return Named{{"y", (*l)(in["x"])}}; }};
  }
  if (m == "Embedding") {
    std::optional<std::int64_t> padding_idx;
    if (c.contains("padding_idx")) padding_idx = c.at("padding_idx").get<std::int64_t>();
    auto l = std::make_shared<nn::Embedding>(c.at("num"), c.at("dim"), gen, padding_idx);
    return {l, [l](const Ins& in) { return Named{{"y", (*l)(in.ids("ids"))}}; }};
  }
  if (m == "FeedForward") {
    auto l = std::make_shared<nn::FeedForward>(c.at("dim"), c.at("hidden"), gen, activation_of(c.at("activation")), 0.0);
    return {l, [l](const Ins& in) { return Named{{"y", (*l)(in["x"])}}; }};
  }
  if (m == "RNN" || m == "LSTM" || m == "GRU") {
    const nn::CellKind kind = cell_kind(m);
    nn::RecurrentOptions o{.num_layers = c.at("layers")};
    o.nonlinearity = c.value("nonlinearity", "tanh") == "relu" ? nn::RNNNonlinearity::relu : nn::RNNNonlinearity::tanh;
    o.dropout = c.value("dropout", 0.0);
    o.bidirectional = c.value("bidirectional", false);
    auto l = std::make_shared<nn::Recurrent>(kind, c.at("in"), c.at("hidden"), gen, o);
    return {l, [l, kind](const Ins& in) {
              std::vector<nn::RecurrentState> init;  // PyTorch's h_0 order: layer 0 forward, layer 0 reverse, layer 1 ...
              if (in.get("h0").defined())
                for (std::size_t i = 0; i < l->num_layers() * l->num_directions(); ++i) {
                  nn::RecurrentState s{ag::select(in["h0"], 0, i), {}};
                  if (kind == nn::CellKind::lstm) s.c = ag::select(in["c0"], 0, i);
                  init.push_back(s);
                }
              nn::RecurrentOutput o = (*l)(in["x"], init);
              std::vector<Tensor> hs, cs;
              for (auto& s : o.last) hs.push_back(s.h), cs.push_back(s.c);
              Named out{{"output", o.output}, {"h_n", ag::stack(hs, 0)}};
              if (kind == nn::CellKind::lstm) out.push_back({"c_n", ag::stack(cs, 0)});
              return out;
            }};
  }
  if (m == "RNNCell" || m == "LSTMCell" || m == "GRUCell") {
    const nn::CellKind kind = cell_kind(m);
    auto l = std::make_shared<nn::RecurrentCell>(kind, c.at("in"), c.at("hidden"), gen);
    return {l, [l, kind](const Ins& in) {
              nn::RecurrentState s = (*l)(in["x"], {in.get("h0"), in.get("c0")});
              Named out{{"h", s.h}};
              if (kind == nn::CellKind::lstm) out.push_back({"c", s.c});
              return out;
            }};
  }
  if (m == "MultiheadAttention") {
    auto l = std::make_shared<nn::MultiHeadAttention>(c.at("d"), c.at("heads"), gen, 0.0,
                                                      c.value("impl", "naive") == "tiled" ? nn::AttentionImpl::tiled
                                                                                         : nn::AttentionImpl::naive,
                                                      c.value("bias", true));
    const bool float_attn_mask = c.value("torch_mask", "") == "float";
    return {l, [l, float_attn_mask](const Ins& in) {
              const Tensor q = in["query"];
              const Tensor k = in.get("key").defined() ? in["key"] : q;
              const Tensor v = in.get("value").defined() ? in["value"] : k;
              // torch_mask "float": the attn_mask is a float mask (added), as torch is given it
              const ag::AttentionMask am = float_attn_mask ? ag::AttentionMask(in.get("attn_mask")) : in.mask("attn_mask");
              nn::AttentionOutput a = (*l)(q, k, v, in.mask("key_padding_mask"), am);
              Named out{{"output", a.output}};
              if (a.weights.defined()) out.push_back({"weights", a.weights});
              return out;
            }};
  }
  if (m == "TransformerEncoderLayer" || m == "TransformerEncoder") {
    const nn::TransformerOptions o = transformer_options(c);
    const std::optional<bool> final_norm = c.contains("final_norm") ? std::optional<bool>(c.at("final_norm").get<bool>()) : std::nullopt;
    if (m == "TransformerEncoderLayer") {
      auto l = std::make_shared<nn::TransformerEncoderLayer>(o, gen);
      return {l, [l](const Ins& in) {
                return Named{{"y", l->forward(in["src"], in.mask("src_mask"), in.mask("src_key_padding_mask"))}};
              }};
    }
    auto l = std::make_shared<nn::TransformerEncoder>(o, c.at("layers"), gen, final_norm);
    return {l, [l](const Ins& in) {
              return Named{{"y", l->forward(in["src"], in.mask("src_mask"), in.mask("src_key_padding_mask"))}};
            }};
  }
  if (m == "TransformerDecoderLayer" || m == "TransformerDecoder") {
    const nn::TransformerOptions o = transformer_options(c);
    const std::optional<bool> final_norm = c.contains("final_norm") ? std::optional<bool>(c.at("final_norm").get<bool>()) : std::nullopt;
    auto run = [](auto& l, const Ins& in) {
      return Named{{"y", l->forward(in["tgt"], in["memory"], in.mask("tgt_mask"), in.mask("tgt_key_padding_mask"),
                                    in.mask("memory_key_padding_mask"))}};
    };
    if (m == "TransformerDecoderLayer") {
      auto l = std::make_shared<nn::TransformerDecoderLayer>(o, gen);
      return {l, [l, run](const Ins& in) { return run(l, in); }};
    }
    auto l = std::make_shared<nn::TransformerDecoder>(o, c.at("layers"), gen, final_norm);
    return {l, [l, run](const Ins& in) { return run(l, in); }};
  }
  if (m == "AdditiveAttention" || m == "LuongAttention") {
    std::shared_ptr<nn::SourceAttention> l;
    if (m == "AdditiveAttention")
      l = std::make_shared<nn::AdditiveAttention>(c.at("query_dim"), c.at("key_dim"), c.at("hidden"), gen, c.value("key_bias", true));
    else
      l = std::make_shared<nn::LuongAttention>(c.at("query_dim"), c.at("key_dim"),
                                               c.at("score") == "dot" ? nn::LuongScore::dot : nn::LuongScore::general, gen);
    return {l, [l](const Ins& in) {
              nn::AttentionOutput a = l->forward(in["query"], in["keys"], in["values"], in.mask("key_padding_mask"));
              return Named{{"context", a.output}, {"weights", a.weights}};
            }};
  }
  if (m == "LearnedPositionalEncoding") {
    auto l = std::make_shared<nn::LearnedPositionalEncoding>(c.at("d"), c.at("max_len"), gen);
    return {l, [l](const Ins& in) { return Named{{"y", (*l)(in["x"])}}; }};
  }
  if (m == "SinusoidalPositionalEncoding") {
    auto l = std::make_shared<nn::SinusoidalPositionalEncoding>(c.at("d"), c.at("max_len"));
    return {l, [l](const Ins& in) { return Named{{"y", (*l)(in["x"])}}; }};
  }
  ag::fail("parity_dump: unknown module '", m, "'");
}

Ins read_inputs(const nn::NamedTensors& file) {
  Ins in;
  for (const auto& [name, t] : file) {
    if (name.rfind("in.", 0) == 0) in.t[name.substr(3)] = t;
    if (name.rfind("idx.", 0) == 0) in.idx[name.substr(4)] = tensor_indices(t);
  }
  return in;
}

// ---- the dump ------------------------------------------------------------------------------------
class Dumper {
 public:
  explicit Dumper(fs::path dir) : dir_(std::move(dir)) {}

  // The case's inputs as the function sees them (`in`: fresh leaves, those named in `grad` requiring
  // grad) and as the file stores them (`file`: "in.<name>", "idx.<name>").
  static void take_inputs(const Named& inputs, const std::vector<std::string>& grad,
                          const std::vector<std::pair<std::string, ag::Indices>>& ids, Ins& in, nn::NamedTensors& file) {
    for (const auto& [k, t0] : inputs) {
      Tensor t = t0.detach();
      for (const auto& g : grad)
        if (g == k) t.requires_grad_();
      in.t[k] = t;
      file.push_back({"in." + k, t0.detach()});
    }
    for (const auto& [k, v] : ids) {
      in.idx[k] = v;
      file.push_back({"idx." + k, indices_tensor(v)});
    }
  }

  // An op case: inputs (float64; those named in `grad` require grad), integer inputs, f -> outputs.
  void op(const std::string& name, const std::string& opname, json attrs, const Named& inputs,
          const std::vector<std::string>& grad, const Fn& f, const std::string& xfail = "",
          const std::vector<std::pair<std::string, ag::Indices>>& ids = {}) {
    Ins in;
    nn::NamedTensors file;
    take_inputs(inputs, grad, ids, in, file);
    Named outs = f(in);
    backward(name, outs, file);
    for (const auto& g : grad) {
      const Tensor& t = in[g];
      file.push_back({"grad." + g, t.has_grad() ? t.grad() : ag::zeros(t.shape(), {ag::f64})});
    }
    json e = entry(name, "op", xfail, file);
    e["op"] = opname;
    e["attrs"] = std::move(attrs);
    e["grad_inputs"] = grad;
    manifest_.push_back(e);
  }

  // A module case: the module built from cfg (seeded by the case name), converted to float64,
  // its parameters saved with nn::save for torch's load_state_dict(strict=True).
  void module(const std::string& name, const json& cfg, const Named& inputs, const std::vector<std::string>& grad,
              const std::string& xfail = "", const std::vector<std::pair<std::string, ag::Indices>>& ids = {}) {
    ag::Generator gen(seed_of(name));
    Built b = build_module(cfg, gen);
    b.module->to(ag::f64);
    b.module->eval();  // dropout is 0 anyway
    const std::string state = file_name(name) + ".state.safetensors";
    nn::save(*b.module, (dir_ / state).string());
    Ins in;
    nn::NamedTensors file;
    take_inputs(inputs, grad, ids, in, file);
    Named outs = b.run(in);
    backward(name, outs, file);
    for (const auto& g : grad) {
      const Tensor& t = in[g];
      file.push_back({"grad." + g, t.has_grad() ? t.grad() : ag::zeros(t.shape(), {ag::f64})});
    }
    for (const auto& [pname, p] : b.module->named_parameters())
      file.push_back({"pgrad." + pname, p.has_grad() ? p.grad() : ag::zeros(p.shape(), {ag::f64})});
    json e = entry(name, "module", xfail, file);
    e["cfg"] = cfg;
    e["state"] = state;
    e["grad_inputs"] = grad;
    manifest_.push_back(e);
  }

  // Any other case: its tensors as they are, its attributes for the script.
  void raw(const std::string& name, const std::string& kind, json attrs, const nn::NamedTensors& file,
           const std::string& xfail = "") {
    json e = entry(name, kind, xfail, file);
    e["attrs"] = std::move(attrs);
    manifest_.push_back(e);
  }

  void finish() {
    std::ofstream(dir_ / "manifest.json") << json{{"cases", manifest_}}.dump(1) << "\n";
    std::cout << "parity_dump: " << manifest_.size() << " cases -> " << dir_.string() << "\n";
  }

 private:
  void backward(const std::string& name, const Named& outs, nn::NamedTensors& file) {
    ag::Generator g(seed_of(name + "/upstream"));
    Tensor loss;
    for (const auto& [k, y] : outs) {
      file.push_back({"out." + k, y.detach()});
      const Tensor gout = normal(y.shape(), g);
      file.push_back({"gout." + k, gout});
      if (!y.requires_grad()) continue;
      const Tensor term = ag::sum(y * gout);
      loss = loss.defined() ? loss + term : term;
    }
    if (loss.defined()) loss.backward();
  }
  json entry(const std::string& name, const std::string& kind, const std::string& xfail, const nn::NamedTensors& file) {
    for (const auto& e : manifest_)
      if (e["name"] == name) ag::fail("parity_dump: two cases named '", name, "'");
    const std::string f = file_name(name) + ".safetensors";
    nn::save_safetensors((dir_ / f).string(), file);
    json e{{"name", name}, {"kind", kind}, {"file", f}};
    if (!xfail.empty()) e["xfail"] = xfail;
    return e;
  }
  fs::path dir_;
  json manifest_ = json::array();
};

const std::string XF_SCHEDULE =
    "attnlab's choice: a schedule's first update uses lr(1) (documented in nn/optim.hpp); torch's opt.step(); sched.step() loop uses lr(0)";
const std::string XF_BLOCKED_ROW =
    "attnlab's choice: a query whose every key is blocked gets zero weights in attnlab (documented in ops.hpp), NaN in torch";
const std::string XF_MAX_TIES =
    "attnlab's choice: max(x) sends the gradient to the first maximal element (documented in ops.hpp); torch's max() shares it evenly among ties";
const std::string XF_CE_IGNORED =
    "attnlab's choice: cross_entropy's mean over zero counted targets is 0 (commented in ops_nn.cpp); torch gives NaN";

// ---- op cases --------------------------------------------------------------------------------------
void op_cases(Dumper& d) {
  const std::vector<std::pair<Shape, Shape>> pairs = {{{3, 4}, {3, 4}}, {{2, 3, 4}, {4}}, {{3, 1}, {1, 4}},
                                                      {{2, 3, 4}, {3, 1}}, {{}, {2, 3}}, {{2, 1, 3}, {2, 4, 1}}};
  auto bin = [&](const std::string& op, double alo, double ahi, double blo, double bhi, Fn f) {
    for (const auto& [sa, sb] : pairs) {
      const std::string name = "op/" + op + "/" + ag::shape_str(sa) + "x" + ag::shape_str(sb);
      ag::Generator g(seed_of(name));
      d.op(name, op, json::object(), {{"a", uniform(sa, g, alo, ahi)}, {"b", uniform(sb, g, blo, bhi)}}, {"a", "b"}, f);
    }
  };
  bin("add", -2, 2, -2, 2, [](const Ins& x) { return Named{{"y", x["a"] + x["b"]}}; });
  bin("sub", -2, 2, -2, 2, [](const Ins& x) { return Named{{"y", x["a"] - x["b"]}}; });
  bin("mul", -2, 2, -2, 2, [](const Ins& x) { return Named{{"y", x["a"] * x["b"]}}; });
  bin("div", -2, 2, 0.5, 2, [](const Ins& x) { return Named{{"y", x["a"] / x["b"]}}; });
  bin("pow", 0.5, 2, -1.5, 2, [](const Ins& x) { return Named{{"y", ag::pow(x["a"], x["b"])}}; });

  for (const auto& [sc, sa, sb] : std::vector<std::tuple<Shape, Shape, Shape>>{{{3, 4}, {3, 4}, {3, 4}}, {{2, 3, 4}, {4}, {3, 1}}}) {
    const std::string name = "op/where/" + ag::shape_str(sc) + "," + ag::shape_str(sa) + "," + ag::shape_str(sb);
    ag::Generator g(seed_of(name));
    d.op(name, "where", json::object(), {{"cond", mask01(sc, g, 0.5)}, {"a", uniform(sa, g)}, {"b", uniform(sb, g)}}, {"a", "b"},
         [](const Ins& x) { return Named{{"y", ag::where(x["cond"], x["a"], x["b"])}}; });
  }
  for (const auto& [sx, sm] : std::vector<std::pair<Shape, Shape>>{{{3, 4}, {3, 4}}, {{2, 3, 4}, {3, 1}}}) {
    const std::string name = "op/masked_fill/" + ag::shape_str(sx) + "," + ag::shape_str(sm);
    ag::Generator g(seed_of(name));
    d.op(name, "masked_fill", {{"value", -3.25}}, {{"x", uniform(sx, g)}, {"mask", mask01(sm, g, 0.5)}}, {"x"},
         [](const Ins& x) { return Named{{"y", ag::masked_fill(x["x"], x.mask("mask").blocked, -3.25)}}; });
  }

  // scalar forms
  auto sc = [&](const std::string& op, double s, double lo, double hi, std::function<Tensor(const Tensor&)> f) {
    const std::string name = "op/" + op + "/" + std::to_string(s).substr(0, 5);
    ag::Generator g(seed_of(name));
    d.op(name, op, {{"s", s}}, {{"a", uniform({3, 5}, g, lo, hi)}}, {"a"}, [f](const Ins& x) { return Named{{"y", f(x["a"])}}; });
  };
  sc("add_scalar", 1.5, -2, 2, [](const Tensor& a) { return a + 1.5; });
  sc("mul_scalar", -0.75, -2, 2, [](const Tensor& a) { return a * -0.75; });
  sc("rsub_scalar", 2.5, -2, 2, [](const Tensor& a) { return ag::rsub(a, 2.5); });
  sc("rdiv_scalar", 3.0, 0.5, 2, [](const Tensor& a) { return ag::rdiv(a, 3.0); });
  sc("pow_scalar", 2.0, -2, 2, [](const Tensor& a) { return ag::pow(a, 2.0); });
  sc("pow_scalar", 3.0, -2, 2, [](const Tensor& a) { return ag::pow(a, 3.0); });
  sc("pow_scalar", 0.5, 0.2, 2, [](const Tensor& a) { return ag::pow(a, 0.5); });
  sc("pow_scalar", -1.5, 0.2, 2, [](const Tensor& a) { return ag::pow(a, -1.5); });

  // unary
  auto un = [&](const std::string& op, double lo, double hi, std::function<Tensor(const Tensor&)> f, json attrs = json::object(),
                const std::string& tag = "", const std::string& xfail = "") {
    for (const Shape& s : std::vector<Shape>{{}, {7}, {2, 3, 4}}) {
      const std::string name = "op/" + op + tag + "/" + ag::shape_str(s);
      ag::Generator g(seed_of(name));
      d.op(name, op, attrs, {{"x", uniform(s, g, lo, hi)}}, {"x"}, [f](const Ins& x) { return Named{{"y", f(x["x"])}}; }, xfail);
    }
  };
  un("neg", -2, 2, [](const Tensor& x) { return -x; });
  un("exp", -2, 2, [](const Tensor& x) { return ag::exp(x); });
  un("log", 0.1, 3, [](const Tensor& x) { return ag::log(x); });
  un("sqrt", 0.1, 3, [](const Tensor& x) { return ag::sqrt(x); });
  un("tanh", -3, 3, [](const Tensor& x) { return ag::tanh(x); });
  un("sigmoid", -4, 4, [](const Tensor& x) { return ag::sigmoid(x); });
  un("relu", -2, 2, [](const Tensor& x) { return ag::relu(x); });
  un("abs", -2, 2, [](const Tensor& x) { return ag::abs(x); });
  un("clamp", -2, 2, [](const Tensor& x) { return ag::clamp(x, -0.5, 0.75); }, {{"lo", -0.5}, {"hi", 0.75}});
  un("gelu_tanh", -4, 4, [](const Tensor& x) { return nn::activate(x, nn::Activation::gelu_tanh); }, {{"approximate", "tanh"}});
  // torch's default GELU is the exact erf form (known difference)
  un("gelu", -4, 4, [](const Tensor& x) { return ag::gelu(x); }, {{"approximate", "none"}});
  un("elu", -3, 3, [](const Tensor& x) { return ag::elu(x, 0.7); }, {{"alpha", 0.7}});

  // values where a derivative has a boundary (the subgradient torch picks)
  {
    const Tensor edge = of({-1.0, -0.5, 0.0, 0.5, 0.75, 1.0, 2.0}, {7});
    auto e = [&](const std::string& op, json attrs, std::function<Tensor(const Tensor&)> f, const std::string& xfail = "") {
      d.op("op/" + op + "/at_boundaries", op, attrs, {{"x", edge}}, {"x"}, [f](const Ins& x) { return Named{{"y", f(x["x"])}}; }, xfail);
    };
    e("relu", json::object(), [](const Tensor& x) { return ag::relu(x); });
    e("abs", json::object(), [](const Tensor& x) { return ag::abs(x); });
    e("clamp", {{"lo", -0.5}, {"hi", 0.75}}, [](const Tensor& x) { return ag::clamp(x, -0.5, 0.75); });
    const Tensor nonneg = of({0.0, 0.25, 1.0, 4.0}, {4});
    d.op("op/sqrt/at_zero", "sqrt", json::object(), {{"x", nonneg}}, {"x"}, [](const Ins& x) { return Named{{"y", ag::sqrt(x["x"])}}; });
    d.op("op/log/at_zero", "log", json::object(), {{"x", nonneg}}, {"x"}, [](const Ins& x) { return Named{{"y", ag::log(x["x"])}}; });
    d.op("op/pow_scalar/zero_exponent_at_zero", "pow_scalar", {{"s", 0.0}}, {{"a", of({0.0, 0.5, 2.0}, {3})}}, {"a"},
         [](const Ins& x) { return Named{{"y", ag::pow(x["a"], 0.0)}}; });
    d.op("op/pow/zero_exponent_at_zero", "pow", json::object(), {{"a", of({0.0, 0.5, 2.0}, {3})}, {"b", of({0.0, 0.0, 1.0}, {3})}},
         {"a"}, [](const Ins& x) { return Named{{"y", ag::pow(x["a"], x["b"])}}; });
  }
  // NaN in, NaN out (torch propagates it)
  {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Tensor x = of({-1.0, nan, 0.5, 2.0}, {4});
    d.op("op/relu/nan", "relu", json::object(), {{"x", x}}, {}, [](const Ins& i) { return Named{{"y", ag::relu(i["x"])}}; });
    d.op("op/clamp/nan", "clamp", {{"lo", -0.5}, {"hi", 0.75}}, {{"x", x}}, {},
         [](const Ins& i) { return Named{{"y", ag::clamp(i["x"], -0.5, 0.75)}}; });
    d.op("op/max/nan", "max", json::object(), {{"x", x}}, {}, [](const Ins& i) { return Named{{"y", ag::max(i["x"])}}; });
    d.op("op/max_axis/nan", "max_axis", {{"axis", 1}, {"keepdim", false}}, {{"x", of({-1.0, nan, 0.5, 2.0, 3.0, 1.0}, {2, 3})}}, {},
         [](const Ins& i) { return Named{{"y", ag::max(i["x"], 1)}}; });
  }

  // reductions
  {
    auto red = [&](const std::string& op, const Shape& s, json attrs, std::function<Tensor(const Tensor&)> f, const std::string& tag) {
      const std::string name = "op/" + op + "/" + ag::shape_str(s) + tag;
      ag::Generator g(seed_of(name));
      d.op(name, op, attrs, {{"x", uniform(s, g, -2, 2)}}, {"x"}, [f](const Ins& x) { return Named{{"y", f(x["x"])}}; });
    };
    red("sum", {2, 3, 4}, {{"axes", nullptr}}, [](const Tensor& x) { return ag::sum(x); }, "");
    red("sum", {2, 3, 4}, {{"axes", {0, 2}}, {"keepdim", false}}, [](const Tensor& x) { return ag::sum(x, {0, 2}); }, "/axes0,2");
    red("sum", {2, 3, 4}, {{"axes", {-1}}, {"keepdim", true}}, [](const Tensor& x) { return ag::sum(x, {-1}, true); }, "/axis-1_keepdim");
    red("mean", {2, 3, 4}, {{"axes", nullptr}}, [](const Tensor& x) { return ag::mean(x); }, "");
    red("mean", {2, 3, 4}, {{"axes", {1}}, {"keepdim", true}}, [](const Tensor& x) { return ag::mean(x, {1}, true); }, "/axis1_keepdim");
    red("mean", {2, 3, 4}, {{"axes", {0, -1}}, {"keepdim", false}}, [](const Tensor& x) { return ag::mean(x, {0, -1}); }, "/axes0,-1");
    red("max", {2, 3, 4}, json::object(), [](const Tensor& x) { return ag::max(x); }, "");
    red("max_axis", {2, 3, 4}, {{"axis", 1}, {"keepdim", false}}, [](const Tensor& x) { return ag::max(x, 1); }, "/axis1");
    red("max_axis", {2, 3, 4}, {{"axis", -1}, {"keepdim", true}}, [](const Tensor& x) { return ag::max(x, -1, true); }, "/axis-1_keepdim");
    // ties: which element(s) the gradient goes to
    const Tensor ties = of({1.0, 3.0, 3.0, -1.0, 2.0, 2.0}, {2, 3});
    d.op("op/max/ties", "max", json::object(), {{"x", ties}}, {"x"}, [](const Ins& x) { return Named{{"y", ag::max(x["x"])}}; },
         XF_MAX_TIES);
    d.op("op/max_axis/ties", "max_axis", {{"axis", 1}, {"keepdim", false}}, {{"x", ties}}, {"x"},
         [](const Ins& x) { return Named{{"y", ag::max(x["x"], 1)}}; });
  }

  // shape ops
  {
    auto sh = [&](const std::string& op, const Shape& s, json attrs, std::function<Tensor(const Tensor&)> f, const std::string& tag = "") {
      const std::string name = "op/" + op + "/" + ag::shape_str(s) + tag;
      ag::Generator g(seed_of(name));
      d.op(name, op, attrs, {{"x", uniform(s, g)}}, {"x"}, [f](const Ins& x) { return Named{{"y", f(x["x"])}}; });
    };
    sh("reshape", {2, 3, 4}, {{"shape", {4, -1}}}, [](const Tensor& x) { return ag::reshape(x, {4, -1}); });
    sh("flatten", {2, 3, 4, 2}, {{"start", 1}, {"end", 2}}, [](const Tensor& x) { return ag::flatten(x, 1, 2); });
    sh("unsqueeze", {2, 3}, {{"axis", 1}}, [](const Tensor& x) { return ag::unsqueeze(x, 1); });
    sh("unsqueeze", {2, 3}, {{"axis", -1}}, [](const Tensor& x) { return ag::unsqueeze(x, -1); }, "/axis-1");
    sh("squeeze", {2, 1, 3}, {{"axis", 1}}, [](const Tensor& x) { return ag::squeeze(x, 1); });
    sh("transpose", {2, 3, 4}, {{"dim0", 0}, {"dim1", 2}}, [](const Tensor& x) { return ag::transpose(x, 0, 2); });
    sh("permute", {2, 3, 4}, {{"dims", {2, 0, 1}}}, [](const Tensor& x) { return ag::permute(x, {2, 0, 1}); });
    sh("slice", {4, 7}, {{"axis", 1}, {"start", 1}, {"stop", 6}, {"step", 2}}, [](const Tensor& x) { return ag::slice(x, 1, 1, 6, 2); });
    sh("slice", {5, 3}, {{"axis", 0}, {"start", 2}, {"stop", 5}, {"step", 1}}, [](const Tensor& x) { return ag::slice(x, 0, 2, 5); }, "/axis0");
    sh("select", {2, 3, 4}, {{"axis", 1}, {"index", 2}}, [](const Tensor& x) { return ag::select(x, 1, 2); });
    sh("expand", {3, 1}, {{"shape", {2, 3, 4}}}, [](const Tensor& x) { return ag::expand(x, {2, 3, 4}); });
    for (int axis : {0, 1, -1}) {
      const std::string name = "op/concat/axis" + std::to_string(axis);
      ag::Generator g(seed_of(name));
      d.op(name, "concat", {{"axis", axis}, {"n", 3}},
           {{"x0", uniform({2, 3}, g)}, {"x1", uniform(axis == 0 ? Shape{1, 3} : Shape{2, 2}, g)}, {"x2", uniform(axis == 0 ? Shape{3, 3} : Shape{2, 1}, g)}},
           {"x0", "x1", "x2"}, [axis](const Ins& x) { return Named{{"y", ag::concat({x["x0"], x["x1"], x["x2"]}, axis)}}; });
      const std::string sname = "op/stack/axis" + std::to_string(axis);
      ag::Generator g2(seed_of(sname));
      d.op(sname, "stack", {{"axis", axis}, {"n", 3}}, {{"x0", uniform({2, 3}, g2)}, {"x1", uniform({2, 3}, g2)}, {"x2", uniform({2, 3}, g2)}},
           {"x0", "x1", "x2"}, [axis](const Ins& x) { return Named{{"y", ag::stack({x["x0"], x["x1"], x["x2"]}, axis)}}; });
    }
  }

  // linear algebra
  for (const auto& [sa, sb] : std::vector<std::pair<Shape, Shape>>{{{3, 4}, {4, 5}}, {{2, 3, 4}, {4, 5}}, {{2, 1, 3, 4}, {3, 4, 2}},
                                                                  {{4}, {4, 5}}, {{3, 4}, {4}}, {{4}, {4}}, {{2, 3, 4}, {4}}}) {
    const std::string name = "op/matmul/" + ag::shape_str(sa) + "x" + ag::shape_str(sb);
    ag::Generator g(seed_of(name));
    d.op(name, "matmul", json::object(), {{"a", uniform(sa, g)}, {"b", uniform(sb, g)}}, {"a", "b"},
         [](const Ins& x) { return Named{{"y", ag::matmul(x["a"], x["b"])}}; });
  }
  {  // operands that are transposes (gemm flags, no copies)
    ag::Generator g(seed_of("op/matmul/transposed"));
    d.op("op/matmul/transposed_a", "matmul_tt", {{"ta", true}, {"tb", false}}, {{"a", uniform({4, 3}, g)}, {"b", uniform({4, 5}, g)}}, {"a", "b"},
         [](const Ins& x) { return Named{{"y", ag::matmul(ag::transpose(x["a"], 0, 1), x["b"])}}; });
    d.op("op/matmul/transposed_b_batched", "matmul_tt", {{"ta", false}, {"tb", true}},
         {{"a", uniform({2, 3, 4}, g)}, {"b", uniform({2, 5, 4}, g)}}, {"a", "b"},
         [](const Ins& x) { return Named{{"y", ag::matmul(x["a"], ag::transpose(x["b"], -1, -2))}}; });
    d.op("op/matmul/transposed_both", "matmul_tt", {{"ta", true}, {"tb", true}}, {{"a", uniform({2, 4, 3}, g)}, {"b", uniform({5, 4}, g)}},
         {"a", "b"}, [](const Ins& x) { return Named{{"y", ag::matmul(ag::transpose(x["a"], -1, -2), ag::transpose(x["b"], 0, 1))}}; });
  }
  for (const auto& [sx, bias] : std::vector<std::pair<Shape, bool>>{{{5, 4}, true}, {{2, 3, 4}, true}, {{2, 3, 4}, false}}) {
    const std::string name = "op/linear/" + ag::shape_str(sx) + (bias ? "" : "/no_bias");
    ag::Generator g(seed_of(name));
    Named in{{"x", uniform(sx, g)}, {"weight", uniform({3, 4}, g)}};
    if (bias) in.push_back({"bias", uniform({3}, g)});
    std::vector<std::string> gr{"x", "weight"};
    if (bias) gr.push_back("bias");
    d.op(name, "linear", json::object(), in, gr, [](const Ins& x) { return Named{{"y", ag::linear(x["x"], x["weight"], x.get("bias"))}}; });
  }

  // fused recurrent cells: one step t of precomputed input projections
  for (const auto& [cell, G] : std::vector<std::pair<std::string, std::size_t>>{{"rnn_cell", 1}, {"lstm_cell", 4}, {"gru_cell", 3}}) {
    const std::string name = "op/" + cell;
    ag::Generator g(seed_of(name));
    const std::size_t B = 2, T = 3, H = 4;
    Named in{{"xp", uniform({B, T, G * H}, g)}, {"h", uniform({B, H}, g)}, {"weight_hh", uniform({G * H, H}, g, -0.5, 0.5)},
             {"bias_hh", uniform({G * H}, g)}};
    std::vector<std::string> gr{"xp", "h", "weight_hh", "bias_hh"};
    if (cell == "lstm_cell") in.push_back({"c", uniform({B, H}, g)}), gr.push_back("c");
    d.op(name, cell, {{"t", 1}}, in, gr, [cell = cell](const Ins& x) {
      if (cell == "rnn_cell") return Named{{"h", ag::rnn_cell(x["xp"], 1, x["h"], x["weight_hh"], x["bias_hh"])}};
      if (cell == "gru_cell") return Named{{"h", ag::gru_cell(x["xp"], 1, x["h"], x["weight_hh"], x["bias_hh"])}};
      ag::LstmState s = ag::lstm_cell(x["xp"], 1, x["h"], x["c"], x["weight_hh"], x["bias_hh"]);
      return Named{{"h", s.h}, {"c", s.c}};
    });
  }

  for (const std::string cell : {"rnn_cell", "lstm_cell", "gru_cell"}) {  // bias_hh undefined
    const std::size_t G = cell == "rnn_cell" ? 1 : cell == "lstm_cell" ? 4 : 3, B = 3, H = 2;
    const std::string name = "op/" + cell + "/no_bias_hh";
    ag::Generator g(seed_of(name));
    Named in{{"xp", uniform({B, G * H}, g)}, {"h", uniform({B, H}, g)}, {"weight_hh", uniform({G * H, H}, g)}};
    std::vector<std::string> gr{"xp", "h", "weight_hh"};
    if (cell == "lstm_cell") in.push_back({"c", uniform({B, H}, g)}), gr.push_back("c");
    d.op(name, cell, {{"t", 0}, {"two_d", true}}, in, gr, [cell](const Ins& x) {
      if (cell == "rnn_cell") return Named{{"h", ag::rnn_cell(x["xp"], 0, x["h"], x["weight_hh"], {})}};
      if (cell == "gru_cell") return Named{{"h", ag::gru_cell(x["xp"], 0, x["h"], x["weight_hh"], {})}};
      ag::LstmState st = ag::lstm_cell(x["xp"], 0, x["h"], x["c"], x["weight_hh"], {});
      return Named{{"h", st.h}, {"c", st.c}};
    });
  }

  // neural-network ops
  for (int axis : {-1, 0, 1}) {
    for (const std::string op : {"softmax", "log_softmax"}) {
      const std::string name = "op/" + op + "/axis" + std::to_string(axis);
      ag::Generator g(seed_of(name));
      d.op(name, op, {{"axis", axis}}, {{"x", uniform({2, 3, 5}, g, -3, 3)}}, {"x"}, [op, axis](const Ins& x) {
        return Named{{"y", op == "softmax" ? ag::softmax(x["x"], axis) : ag::log_softmax(x["x"], axis)}};
      });
    }
  }
  {  // large logits, exactly representable offsets (issue 13 section 4)
    const double big = std::ldexp(1.0, 40);
    const Tensor x = of({big + 1.5, big + 1.0, big}, {1, 3});
    d.op("op/log_softmax/large_offset", "log_softmax", {{"axis", -1}}, {{"x", x}}, {"x"},
         [](const Ins& i) { return Named{{"y", ag::log_softmax(i["x"], -1)}}; });
    d.op("op/softmax/large_offset", "softmax", {{"axis", -1}}, {{"x", x}}, {"x"}, [](const Ins& i) { return Named{{"y", ag::softmax(i["x"], -1)}}; });
    d.op("op/cross_entropy/large_offset", "cross_entropy", {{"reduction", "mean"}, {"ignore_index", -100}}, {{"logits", x}}, {"logits"},
         [](const Ins& i) { return Named{{"y", ag::cross_entropy(i["logits"], i.ids("targets"))}}; }, "",
         {{"targets", ag::Indices({2})}});
  }
  for (const auto& [shape, offset, base] : {std::tuple<Shape, std::size_t, double>{{2, 3, 5, 8}, 0, 10000.0},
                                             {{2, 3, 5, 8}, 17, 10000.0}, {{7, 6}, 3, 500.0}}) {
    const std::string name = "op/rope/" + ag::shape_str(shape) + "_offset" + std::to_string(offset);
    ag::Generator g(seed_of(name));
    d.op(name, "rope", {{"offset", offset}, {"base", base}}, {{"x", uniform(shape, g)}}, {"x"},
         [offset = offset, base = base](const Ins& x) { return Named{{"y", ag::rope(x["x"], offset, base)}}; });
  }
  for (bool affine : {true, false}) {
    const std::string name = std::string("op/layer_norm/") + (affine ? "affine" : "plain");
    ag::Generator g(seed_of(name));
    Named in{{"x", uniform({2, 3, 6}, g, -2, 2)}};
    if (affine) in.push_back({"weight", uniform({6}, g)}), in.push_back({"bias", uniform({6}, g)});
    std::vector<std::string> gr{"x"};
    if (affine) gr.push_back("weight"), gr.push_back("bias");
    d.op(name, "layer_norm", {{"eps", 1e-5}}, in, gr,
         [](const Ins& x) { return Named{{"y", ag::layer_norm(x["x"], x.get("weight"), x.get("bias"), 1e-5)}}; });
  }
  {
    Tensor x = of({1.5, 1.5, 1.5, 1.5, -1, 0, 2, 3}, {2, 4});  // row 0 constant: variance 0
    ag::Generator g(seed_of("op/layer_norm/constant_row"));
    d.op("op/layer_norm/constant_row_eps1e-3", "layer_norm", {{"eps", 1e-3}}, {{"x", x}, {"weight", uniform({4}, g)}, {"bias", uniform({4}, g)}},
         {"x", "weight", "bias"}, [](const Ins& i) { return Named{{"y", ag::layer_norm(i["x"], i["weight"], i["bias"], 1e-3)}}; });
    d.op("op/cross_entropy/mean_all_ignored", "cross_entropy", {{"reduction", "mean"}, {"ignore_index", 1}}, {{"logits", uniform({2, 3}, g)}},
         {"logits"}, [](const Ins& i) { return Named{{"y", ag::cross_entropy(i["logits"], i.ids("targets"), {.ignore_index = 1})}}; },
         XF_CE_IGNORED,
         {{"targets", ag::Indices({1, 1})}});
    // where() picking sqrt only where x > 0: the other branch's NaN derivative (both frameworks: 0 * NaN)
    d.op("op/where/sqrt_branch", "where_sqrt", json::object(), {{"x", of({-1.0, 0.25, 4.0, -0.5}, {4})}}, {"x"}, [](const Ins& i) {
      const Tensor pos = ag::tensor({0, 1, 1, 0}, {4}, {ag::f64});
      return Named{{"y", ag::where(pos, ag::sqrt(i["x"]), ag::zeros({4}, {ag::f64}))}};
    });
  }
  {
    ag::Generator g(seed_of("op/embedding"));
    d.op("op/embedding", "embedding", json::object(), {{"weight", uniform({6, 4}, g)}}, {"weight"},
         [](const Ins& x) { return Named{{"y", ag::embedding(x["weight"], x.ids("ids"))}}; }, "",
         {{"ids", ag::Indices({0, 3, 3, 5, 1, 3}, {2, 3})}});  // repeats: scatter-add
  }
  {
    ag::Generator g(seed_of("op/dropout"));
    d.op("op/dropout/eval", "dropout", {{"p", 0.3}, {"training", false}}, {{"x", uniform({4, 5}, g)}}, {"x"}, [](const Ins& x) {
      ag::Generator dg(1);
      return Named{{"y", ag::dropout(x["x"], 0.3, false, dg)}};
    });
    d.op("op/dropout/train", "dropout", {{"p", 0.3}, {"training", true}}, {{"x", uniform({4, 5}, g, 0.5, 1.5)}}, {"x"}, [](const Ins& x) {
      ag::Generator dg(1);
      return Named{{"y", ag::dropout(x["x"], 0.3, true, dg)}};
    });
  }
  for (const std::string red : {"mean", "sum", "none"}) {
    ag::Generator g(seed_of("op/cross_entropy/" + red));
    const ag::Reduction r = red == "mean" ? ag::Reduction::mean : red == "sum" ? ag::Reduction::sum : ag::Reduction::none;
    d.op("op/cross_entropy/" + red, "cross_entropy", {{"reduction", red}, {"ignore_index", -100}}, {{"logits", uniform({5, 4}, g, -3, 3)}},
         {"logits"}, [r](const Ins& x) { return Named{{"y", ag::cross_entropy(x["logits"], x.ids("targets"), {.reduction = r})}}; }, "",
         {{"targets", random_ids({5}, 4, g)}});
    d.op("op/cross_entropy/" + red + "/3d_ignore_index", "cross_entropy", {{"reduction", red}, {"ignore_index", 0}},
         {{"logits", uniform({2, 3, 4}, g, -3, 3)}}, {"logits"},
         [r](const Ins& x) { return Named{{"y", ag::cross_entropy(x["logits"], x.ids("targets"), {.ignore_index = 0, .reduction = r})}}; },
         "", {{"targets", ag::Indices({1, 0, 3, 2, 0, 1}, {2, 3})}});
    d.op("op/mse_loss/" + red, "mse_loss", {{"reduction", red}}, {{"pred", uniform({3, 4}, g)}, {"target", uniform({3, 4}, g)}},
         {"pred", "target"}, [r](const Ins& x) { return Named{{"y", ag::mse_loss(x["pred"], x["target"], r)}}; });
  }

  // cross_entropy with label smoothing and class weights (torch's weight=, label_smoothing=): every
  // reduction, 2-d and 3-d logits, with and without ignored rows, each option alone and both together
  for (const std::string red : {"mean", "sum", "none"}) {
    const ag::Reduction r = red == "mean" ? ag::Reduction::mean : red == "sum" ? ag::Reduction::sum : ag::Reduction::none;
    struct V {
      std::string tag;
      double ls;
      bool weight, ignore;
    };
    for (const V& v : std::vector<V>{{"label_smoothing", 0.1, false, false},
                                     {"weight", 0.0, true, false},
                                     {"label_smoothing_weight", 0.2, true, false},
                                     {"label_smoothing/3d_ignore_index", 0.1, false, true},
                                     {"weight/3d_ignore_index", 0.0, true, true},
                                     {"label_smoothing_weight/3d_ignore_index", 0.3, true, true}}) {
      const std::string name = "op/cross_entropy/" + red + "/" + v.tag;
      ag::Generator g(seed_of(name));
      const std::int64_t ignore = v.ignore ? 2 : -100;
      Named in{{"logits", v.ignore ? uniform({2, 3, 4}, g, -3, 3) : uniform({5, 4}, g, -3, 3)}};
      if (v.weight) in.push_back({"weight", uniform({4}, g, 0.2, 2.0)});
      // with ignored rows: targets 2 ignored (two of six); the others cover classes 0, 1, 3
      const ag::Indices targets = v.ignore ? ag::Indices({1, 2, 3, 0, 2, 1}, {2, 3}) : random_ids({5}, 4, g);
      const double ls = v.ls;
      d.op(name, "cross_entropy", {{"reduction", red}, {"ignore_index", ignore}, {"label_smoothing", ls}}, in, {"logits"},
           [r, ignore, ls](const Ins& x) {
             return Named{{"y", ag::cross_entropy(x["logits"], x.ids("targets"),
                                                  {.ignore_index = ignore, .reduction = r, .label_smoothing = ls, .weight = x.get("weight")})}};
           },
           "", {{"targets", targets}});
    }
  }
  {  // label smoothing 1: the uniform target distribution only
    ag::Generator g(seed_of("op/cross_entropy/mean/label_smoothing1"));
    d.op("op/cross_entropy/mean/label_smoothing1_weight", "cross_entropy", {{"reduction", "mean"}, {"ignore_index", -100}, {"label_smoothing", 1.0}},
         {{"logits", uniform({3, 5}, g, -3, 3)}, {"weight", uniform({5}, g, 0.2, 2.0)}}, {"logits"},
         [](const Ins& x) {
           return Named{{"y", ag::cross_entropy(x["logits"], x.ids("targets"), {.label_smoothing = 1.0, .weight = x["weight"]})}};
         },
         "", {{"targets", ag::Indices({4, 0, 2})}});
  }
  {  // every target ignored, with both options: attnlab's documented 0 (torch: 0 / 0 = NaN, as without them)
    ag::Generator g(seed_of("op/cross_entropy/mean_all_ignored_label_smoothing_weight"));
    d.op("op/cross_entropy/mean_all_ignored_label_smoothing_weight", "cross_entropy",
         {{"reduction", "mean"}, {"ignore_index", 1}, {"label_smoothing", 0.1}},
         {{"logits", uniform({2, 3}, g)}, {"weight", uniform({3}, g, 0.2, 2.0)}}, {"logits"},
         [](const Ins& x) {
           return Named{{"y", ag::cross_entropy(x["logits"], x.ids("targets"), {.ignore_index = 1, .label_smoothing = 0.1, .weight = x["weight"]})}};
         },
         XF_CE_IGNORED, {{"targets", ag::Indices({1, 1})}});
  }
  // embedding with padding_idx (torch's F.embedding(padding_idx=)): that row gets no gradient
  for (const std::int64_t p : {3, -1}) {
    const std::string name = p < 0 ? "op/embedding/padding_idx_negative" : "op/embedding/padding_idx";
    ag::Generator g(seed_of(name));
    d.op(name, "embedding", {{"padding_idx", p}}, {{"weight", uniform({6, 4}, g)}}, {"weight"},
         [p](const Ins& x) { return Named{{"y", ag::embedding(x["weight"], x.ids("ids"), p)}}; }, "",
         {{"ids", ag::Indices({0, 3, 5, 5, 1, 3}, {2, 3})}});  // row 3 (p = 3) and row 5 (p = -1) used twice
  }
  // relu's gradient where x is NaN: torch's threshold_backward passes the upstream gradient (NaN <= 0 is false)
  d.op("op/relu/nan_gradient", "relu", json::object(),
       {{"x", of({-1.0, std::numeric_limits<double>::quiet_NaN(), 0.0, 2.0, -std::numeric_limits<double>::quiet_NaN()}, {5})}}, {"x"},
       [](const Ins& i) { return Named{{"y", ag::relu(i["x"])}}; });
  // the two GELUs as ops of ag:: (the cases op/gelu/... use the default, op/gelu_tanh/... nn::activate)
  {
    ag::Generator g(seed_of("op/gelu/ag"));
    const Tensor x = uniform({2, 3, 4}, g, -5, 5);
    d.op("op/gelu/ag_none", "gelu", {{"approximate", "none"}}, {{"x", x}}, {"x"},
         [](const Ins& i) { return Named{{"y", ag::gelu(i["x"], ag::GeluApproximate::none)}}; });
    d.op("op/gelu_tanh/ag_tanh", "gelu_tanh", {{"approximate", "tanh"}}, {{"x", x}}, {"x"},
         [](const Ins& i) { return Named{{"y", ag::gelu(i["x"], ag::GeluApproximate::tanh)}}; });
  }

  // attention
  {
    ag::Generator g(seed_of("op/attention"));
    const std::size_t B = 2, H = 2, Tq = 5, Tk = 6, D = 4;
    const Tensor q = uniform({B, H, Tq, D}, g), k = uniform({B, H, Tk, D}, g), v = uniform({B, H, Tk, 3}, g);
    Tensor kpm = ag::zeros({B, 1, 1, Tk}, {ag::f64});
    kpm.data<double>()(1, 0, 0, 4) = kpm.data<double>()(1, 0, 0, 5) = 1;  // batch 1: the last two keys padded
    const Tensor cmask = causal(Tk);  // [6, 6]; queries 5 use the first 5 rows
    const Tensor cm = ag::slice(cmask, 0, 0, Tq).detach();
    d.op("op/attention_weights/no_mask", "attention_weights", {{"scale", 0.0}, {"mask", "none"}}, {{"q", q}, {"k", k}}, {"q", "k"},
         [](const Ins& x) { return Named{{"w", ag::attention_weights(x["q"], x["k"])}}; });
    d.op("op/attention_weights/scale_padding", "attention_weights", {{"scale", 0.7}, {"mask", "bool"}}, {{"q", q}, {"k", k}, {"mask", kpm}},
         {"q", "k"}, [](const Ins& x) { return Named{{"w", ag::attention_weights(x["q"], x["k"], x.mask("mask"), 0.7)}}; });
    d.op("op/attention_weights/causal", "attention_weights", {{"scale", 0.0}, {"mask", "bool"}}, {{"q", q}, {"k", k}, {"mask", cm}},
         {"q", "k"}, [](const Ins& x) { return Named{{"w", ag::attention_weights(x["q"], x["k"], x.mask("mask"))}}; });
    // a float mask: added to the scores, with its gradient (broadcast [Tq, Tk] and per batch [B, 1, 1, Tk])
    const Tensor fm = uniform({Tq, Tk}, g, -1, 1), fkpm = uniform({B, 1, 1, Tk}, g, -2, 2);
    d.op("op/attention_weights/float_mask_added", "attention_weights", {{"scale", 0.0}, {"mask", "float"}}, {{"q", q}, {"k", k}, {"mask", fm}},
         {"q", "k", "mask"}, [](const Ins& x) { return Named{{"w", ag::attention_weights(x["q"], x["k"], x["mask"])}}; });
    d.op("op/attention_weights/float_mask_per_batch", "attention_weights", {{"scale", 0.0}, {"mask", "float"}},
         {{"q", q}, {"k", k}, {"mask", fkpm}}, {"q", "k", "mask"},
         [](const Ins& x) { return Named{{"w", ag::attention_weights(x["q"], x["k"], x["mask"])}}; });
    // one query row with every key blocked
    Tensor rowmask = ag::zeros({Tq, Tk}, {ag::f64});
    for (std::size_t j = 0; j < Tk; ++j) rowmask.data<double>()(2, j) = 1;
    d.op("op/attention_weights/fully_blocked_row", "attention_weights", {{"scale", 0.0}, {"mask", "bool"}},
         {{"q", q}, {"k", k}, {"mask", rowmask}}, {"q", "k"},
         [](const Ins& x) { return Named{{"w", ag::attention_weights(x["q"], x["k"], x.mask("mask"))}}; }, XF_BLOCKED_ROW);
    for (std::size_t block : {64, 2}) {
      const std::string b = "/block" + std::to_string(block);
      d.op("op/tiled_attention/no_mask" + b, "tiled_attention", {{"scale", 0.0}, {"causal", false}, {"mask", "none"}},
           {{"q", q}, {"k", k}, {"v", v}}, {"q", "k", "v"},
           [block](const Ins& x) { return Named{{"y", ag::tiled_attention(x["q"], x["k"], x["v"], {}, {.block = block})}}; });
      d.op("op/tiled_attention/padding_scale" + b, "tiled_attention", {{"scale", 0.6}, {"causal", false}, {"mask", "bool"}},
           {{"q", q}, {"k", k}, {"v", v}, {"mask", kpm}}, {"q", "k", "v"}, [block](const Ins& x) {
             return Named{{"y", ag::tiled_attention(x["q"], x["k"], x["v"], x.mask("mask"), {.scale = 0.6, .block = block})}};
           });
      d.op("op/tiled_attention/float_mask_causal" + b, "tiled_attention", {{"scale", 0.0}, {"causal", true}, {"mask", "float"}},
           {{"q", q}, {"k", k}, {"v", v}, {"mask", fm}}, {"q", "k", "v", "mask"}, [block](const Ins& x) {
             return Named{{"y", ag::tiled_attention(x["q"], x["k"], x["v"], x["mask"], {.causal = true, .block = block})}};
           });
      d.op("op/tiled_attention/causal" + b, "tiled_attention", {{"scale", 0.0}, {"causal", true}, {"mask", "none"}},
           {{"q", q}, {"k", k}, {"v", v}}, {"q", "k", "v"}, [block](const Ins& x) {
             return Named{{"y", ag::tiled_attention(x["q"], x["k"], x["v"], {}, {.causal = true, .block = block})}};
           });
    }
    {
      ag::Generator g2(seed_of("op/attention/tall"));
      const Tensor qt = uniform({2, 7, 4}, g2), kt = uniform({2, 4, 4}, g2), vt = uniform({2, 4, 3}, g2);
      for (std::size_t block : {64, 3})
        d.op("op/tiled_attention/causal_more_queries_than_keys/block" + std::to_string(block), "tiled_attention",
             {{"scale", 0.0}, {"causal", true}, {"mask", "none"}}, {{"q", qt}, {"k", kt}, {"v", vt}}, {"q", "k", "v"}, [block](const Ins& x) {
               return Named{{"y", ag::tiled_attention(x["q"], x["k"], x["v"], {}, {.causal = true, .block = block})}};
             });
    }
    // Sliding windows with global tokens (torch: the band as a mask), and linear attention (torch:
    // the quadratic form with the [T, T] matrix), across tile and chunk boundaries.
    {
      ag::Generator g3(seed_of("op/attention/long"));
      const Tensor ql = uniform({2, 2, 70, 4}, g3), kl = uniform({2, 2, 70, 4}, g3), vl = uniform({2, 2, 70, 3}, g3);
      for (bool causal : {false, true})
        for (const std::vector<std::size_t>& globals : {std::vector<std::size_t>{}, std::vector<std::size_t>{0, 33}}) {
          const std::string name = std::string("op/tiled_attention/window5") + (causal ? "_causal" : "") + (globals.empty() ? "" : "_global_0_33");
          d.op(name + "/block16", "tiled_attention",
               {{"scale", 0.0}, {"causal", causal}, {"mask", "none"}, {"window", 5}, {"globals", globals}},
               {{"q", ql}, {"k", kl}, {"v", vl}}, {"q", "k", "v"}, [causal, globals](const Ins& x) {
                 return Named{{"y", ag::tiled_attention(x["q"], x["k"], x["v"], {},
                                                        {.causal = causal, .block = 16, .window = 5, .global_tokens = globals})}};
               });
        }
      const Tensor pq = uniform({2, 2, 70, 4}, g3, 0.05, 1.05), pk = uniform({2, 2, 70, 4}, g3, 0.05, 1.05);  // features >= 0
      for (bool causal : {false, true})
        d.op(std::string("op/linear_attention/") + (causal ? "causal" : "non_causal") + "/T70", "linear_attention", {{"causal", causal}},
             {{"q", pq}, {"k", pk}, {"v", vl}}, {"q", "k", "v"}, [causal](const Ins& x) {
               return Named{{"y", ag::linear_attention(x["q"], x["k"], x["v"], {.causal = causal})}};
             });
    }
    d.op("op/scaled_dot_product_attention/padding", "sdpa", {{"scale", 0.0}, {"mask", "bool"}},
         {{"q", q}, {"k", k}, {"v", v}, {"mask", kpm}}, {"q", "k", "v"}, [](const Ins& x) {
           nn::AttentionOutput a = nn::scaled_dot_product_attention(x["q"], x["k"], x["v"], x.mask("mask"));
           return Named{{"y", a.output}, {"w", a.weights}};
         });
  }
}

// ---- module cases ------------------------------------------------------------------------------------
void module_cases(Dumper& d) {
  auto gen_for = [](const std::string& name) { return ag::Generator(seed_of(name + "/inputs")); };
  {
    auto g = gen_for("module/Linear");
    d.module("module/Linear", {{"module", "Linear"}, {"in", 4}, {"out", 3}}, {{"x", uniform({2, 5, 4}, g)}}, {"x"});
    d.module("module/Linear/no_bias", {{"module", "Linear"}, {"in", 4}, {"out", 3}, {"bias", false}}, {{"x", uniform({5, 4}, g)}}, {"x"});
    d.module("module/Linear/1d_input", {{"module", "Linear"}, {"in", 4}, {"out", 3}}, {{"x", uniform({4}, g)}}, {"x"});
    d.module("module/LayerNorm/eps1e-2", {{"module", "LayerNorm"}, {"dim", 5}, {"eps", 1e-2}}, {{"x", uniform({3, 5}, g, -2, 2)}}, {"x"});
    d.module("module/LayerNorm", {{"module", "LayerNorm"}, {"dim", 6}, {"eps", 1e-5}}, {{"x", uniform({2, 3, 6}, g, -2, 2)}}, {"x"});
    d.module("module/Embedding", {{"module", "Embedding"}, {"num", 7}, {"dim", 4}}, {}, {}, "", {{"ids", ag::Indices({1, 6, 1, 0, 3, 1}, {2, 3})}});
    d.module("module/LayerNorm/no_affine", {{"module", "LayerNorm"}, {"dim", 6}, {"eps", 1e-5}, {"affine", false}},
             {{"x", uniform({2, 3, 6}, g, -2, 2)}}, {"x"});
    // padding_idx: the row starts at 0 and gets no gradient (torch: the same); -2 is row 5 of 7
    d.module("module/Embedding/padding_idx", {{"module", "Embedding"}, {"num", 7}, {"dim", 4}, {"padding_idx", 0}}, {}, {}, "",
             {{"ids", ag::Indices({1, 0, 1, 0, 3, 6}, {2, 3})}});
    d.module("module/Embedding/padding_idx_negative", {{"module", "Embedding"}, {"num", 7}, {"dim", 4}, {"padding_idx", -2}}, {}, {}, "",
             {{"ids", ag::Indices({5, 6, 1, 5, 3, 1}, {2, 3})}});
    d.module("module/FeedForward/relu", {{"module", "FeedForward"}, {"dim", 4}, {"hidden", 8}, {"activation", "relu"}},
             {{"x", uniform({2, 3, 4}, g)}}, {"x"});
    d.module("module/FeedForward/gelu", {{"module", "FeedForward"}, {"dim", 4}, {"hidden", 8}, {"activation", "gelu_tanh"}},
             {{"x", uniform({2, 3, 4}, g)}}, {"x"});
  }
  // recurrent: multi-layer with initial states, and from zeros
  for (const std::string m : {"RNN", "LSTM", "GRU"}) {
    const std::size_t B = 2, T = 4, I = 3, H = 5, L = 2;
    auto g = gen_for("module/" + m);
    Named in{{"x", uniform({B, T, I}, g)}, {"h0", uniform({L, B, H}, g)}};
    std::vector<std::string> gr{"x", "h0"};
    if (m == "LSTM") in.push_back({"c0", uniform({L, B, H}, g)}), gr.push_back("c0");
    d.module("module/" + m + "/2_layers_initial_state", {{"module", m}, {"in", I}, {"hidden", H}, {"layers", L}}, in, gr);
    d.module("module/" + m + "/1_layer_zero_state", {{"module", m}, {"in", I}, {"hidden", H}, {"layers", 1}}, {{"x", uniform({B, T, I}, g)}}, {"x"});
    Named cin{{"x", uniform({B, I}, g)}, {"h0", uniform({B, H}, g)}};
    std::vector<std::string> cgr{"x", "h0"};
    if (m == "LSTM") cin.push_back({"c0", uniform({B, H}, g)}), cgr.push_back("c0");
    d.module("module/" + m + "Cell", {{"module", m + "Cell"}, {"in", I}, {"hidden", H}}, cin, cgr);
    // bidirectional, 2 layers, initial states in torch's order [layer 0 fwd, layer 0 rev, layer 1 fwd, layer 1 rev]
    Named bin{{"x", uniform({B, T, I}, g)}, {"h0", uniform({2 * L, B, H}, g)}};
    if (m == "LSTM") bin.push_back({"c0", uniform({2 * L, B, H}, g)});
    const json bc{{"module", m}, {"in", I}, {"hidden", H}, {"layers", L}, {"bidirectional", true}};
    d.module("module/" + m + "/bidirectional_2_layers_initial_state", bc, bin, gr);
    d.module("module/" + m + "/bidirectional_1_layer_zero_state", {{"module", m}, {"in", I}, {"hidden", H}, {"layers", 1}, {"bidirectional", true}},
             {{"x", uniform({B, T, I}, g)}}, {"x"});
    // dropout between layers, eval mode: no dropout (torch's module in eval() too)
    json dc{{"module", m}, {"in", I}, {"hidden", H}, {"layers", L}, {"dropout", 0.4}};
    d.module("module/" + m + "/dropout_eval_2_layers", dc, in, gr);
    dc["bidirectional"] = true;
    d.module("module/" + m + "/dropout_eval_bidirectional_2_layers", dc, bin, gr);
    if (m == "RNN") {  // nonlinearity='relu'
      const json rc{{"module", m}, {"in", I}, {"hidden", H}, {"layers", L}, {"nonlinearity", "relu"}};
      d.module("module/RNN/relu_2_layers_initial_state", rc, in, gr);
      json rbc = rc;
      rbc["bidirectional"] = true;
      d.module("module/RNN/relu_bidirectional_2_layers_initial_state", rbc, bin, gr);
    }
  }
  // multi-head attention
  {
    const std::size_t B = 2, T = 5, S = 6, D = 8;
    auto g = gen_for("module/MultiheadAttention");
    const Tensor x = uniform({B, T, D}, g), mem = uniform({B, S, D}, g), val = uniform({B, S, D}, g);
    Tensor kpm_self = ag::zeros({B, T}, {ag::f64}), kpm_cross = ag::zeros({B, S}, {ag::f64});
    kpm_self.data<double>()(1, 4) = 1;
    kpm_cross.data<double>()(0, 5) = kpm_cross.data<double>()(1, 3) = kpm_cross.data<double>()(1, 4) = kpm_cross.data<double>()(1, 5) = 1;
    Tensor cross_mask = ag::zeros({T, S}, {ag::f64});  // [Tq, Tk], not square: query t may not see key t + 1
    for (std::size_t t = 0; t + 1 < S && t < T; ++t) cross_mask.data<double>()(t, t + 1) = 1;
    for (const std::string impl : {"naive", "tiled"}) {
      const json c{{"module", "MultiheadAttention"}, {"d", D}, {"heads", 2}, {"impl", impl}};
      const std::string p = "module/MultiheadAttention/" + impl + "/";
      d.module(p + "self", c, {{"query", x}}, {"query"});
      d.module(p + "self_causal_padding", c, {{"query", x}, {"key_padding_mask", kpm_self}, {"attn_mask", causal(T)}}, {"query"});
      d.module(p + "cross", c, {{"query", x}, {"key", mem}, {"value", val}}, {"query", "key", "value"});
      d.module(p + "cross_padding", c, {{"query", x}, {"key", mem}, {"value", val}, {"key_padding_mask", kpm_cross}}, {"query", "key", "value"});
      d.module(p + "cross_padding_attn_mask", c,
               {{"query", x}, {"key", mem}, {"value", val}, {"key_padding_mask", kpm_cross}, {"attn_mask", cross_mask}},
               {"query", "key", "value"});
    }
    // bias=False: no in_proj_bias, no out_proj.bias
    for (const std::string impl : {"naive", "tiled"}) {
      const json c{{"module", "MultiheadAttention"}, {"d", D}, {"heads", 2}, {"impl", impl}, {"bias", false}};
      const std::string p = "module/MultiheadAttention/" + impl + "/no_bias/";
      d.module(p + "self_causal_padding", c, {{"query", x}, {"key_padding_mask", kpm_self}, {"attn_mask", causal(T)}}, {"query"});
      d.module(p + "cross_padding", c, {{"query", x}, {"key", mem}, {"value", val}, {"key_padding_mask", kpm_cross}}, {"query", "key", "value"});
    }
    const json c{{"module", "MultiheadAttention"}, {"d", D}, {"heads", 2}};
    {  // torch's nn.Transformer.generate_square_subsequent_mask: float, 0 and -inf; blocks under either rule
      Tensor m = ag::zeros({T, T}, {ag::f64});
      for (std::size_t i = 0; i < T; ++i)
        for (std::size_t j = i + 1; j < T; ++j) m.data<double>()(i, j) = -std::numeric_limits<double>::infinity();
      json cf = c;
      cf["torch_mask"] = "float";
      d.module("module/MultiheadAttention/float_neg_inf_causal_mask", cf, {{"query", x}, {"attn_mask", m}, {"key_padding_mask", kpm_self}}, {"query"});
    }
    // float masks are added, with their gradient: a bias, and ALiBi's (-slope * distance, -inf on the future).
    // (A 0/1 float mask, which torch adds too, is refused by attnlab as ambiguous: tests/nn/test_modules.cpp.)
    json cf = c;
    cf["torch_mask"] = "float";  // torch is given the same float tensor
    d.module("module/MultiheadAttention/float_bias_mask_added", cf, {{"query", x}, {"attn_mask", uniform({T, T}, g, -1, 1)}},
             {"query", "attn_mask"});
    Tensor alibi = ag::zeros({T, T}, {ag::f64});
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j < T; ++j)
        alibi.data<double>()(i, j) = j > i ? -std::numeric_limits<double>::infinity() : -0.5 * double(i - j);
    d.module("module/MultiheadAttention/float_alibi_mask_with_padding", cf, {{"query", x}, {"attn_mask", alibi}, {"key_padding_mask", kpm_self}},
             {"query"});
  }
  // Transformer layers and stacks
  {
    const std::size_t B = 2, T = 5, S = 6, D = 8;
    auto g = gen_for("module/Transformer");
    const Tensor src = uniform({B, S, D}, g), tgt = uniform({B, T, D}, g), mem = uniform({B, S, D}, g);
    Tensor skpm = ag::zeros({B, S}, {ag::f64}), tkpm = ag::zeros({B, T}, {ag::f64});
    skpm.data<double>()(1, 5) = skpm.data<double>()(1, 4) = 1;
    tkpm.data<double>()(0, 4) = 1;
    for (bool pre : {false, true}) {
      const std::string ln = pre ? "pre_LN" : "post_LN";
      for (const std::string act : {"relu", "gelu_tanh"}) {
        json c{{"d", D}, {"heads", 2}, {"ff", 16}, {"norm_first", pre}, {"activation", act}};
        c["module"] = "TransformerEncoderLayer";
        d.module("module/TransformerEncoderLayer/" + ln + "/" + act, c,
                 {{"src", src}, {"src_mask", causal(S)}, {"src_key_padding_mask", skpm}}, {"src"});
        c["module"] = "TransformerDecoderLayer";
        d.module("module/TransformerDecoderLayer/" + ln + "/" + act, c,
                 {{"tgt", tgt}, {"memory", mem}, {"tgt_mask", causal(T)}, {"tgt_key_padding_mask", tkpm}, {"memory_key_padding_mask", skpm}},
                 {"tgt", "memory"});
      }
      json c{{"d", D}, {"heads", 2}, {"ff", 16}, {"norm_first", pre}, {"activation", "relu"}, {"layers", 2}};
      c["module"] = "TransformerEncoder";
      d.module("module/TransformerEncoder/" + ln + "/2_layers", c, {{"src", src}, {"src_mask", causal(S)}, {"src_key_padding_mask", skpm}}, {"src"});
      c["module"] = "TransformerDecoder";
      d.module("module/TransformerDecoder/" + ln + "/2_layers", c,
               {{"tgt", tgt}, {"memory", mem}, {"tgt_mask", causal(T)}, {"tgt_key_padding_mask", tkpm}, {"memory_key_padding_mask", skpm}},
               {"tgt", "memory"});
      c["impl"] = "tiled";
      c["module"] = "TransformerEncoder";
      d.module("module/TransformerEncoder/" + ln + "/2_layers_tiled", c, {{"src", src}, {"src_mask", causal(S)}, {"src_key_padding_mask", skpm}}, {"src"});
      // the final norm chosen apart from pre/post-LN: post-LN with one (torch's nn.Transformer), pre-LN without
      c["impl"] = "naive";
      c["final_norm"] = !pre;
      const std::string fn = pre ? "/2_layers_no_final_norm" : "/2_layers_final_norm";
      c["module"] = "TransformerEncoder";
      d.module("module/TransformerEncoder/" + ln + fn, c, {{"src", src}, {"src_mask", causal(S)}, {"src_key_padding_mask", skpm}}, {"src"});
      c["module"] = "TransformerDecoder";
      d.module("module/TransformerDecoder/" + ln + fn, c,
               {{"tgt", tgt}, {"memory", mem}, {"tgt_mask", causal(T)}, {"tgt_key_padding_mask", tkpm}, {"memory_key_padding_mask", skpm}},
               {"tgt", "memory"});
    }
    // torch's activation="gelu" is the erf form (known difference)
    const json c{{"module", "TransformerEncoderLayer"}, {"d", D}, {"heads", 2}, {"ff", 16}, {"norm_first", false}, {"activation", "gelu"}};
    d.module("module/TransformerEncoderLayer/post_LN/gelu", c, {{"src", src}}, {"src"});
    json cd = c;
    cd["module"] = "TransformerDecoderLayer";
    cd["norm_first"] = true;
    d.module("module/TransformerDecoderLayer/pre_LN/gelu", cd, {{"tgt", tgt}, {"memory", mem}, {"tgt_mask", causal(T)}}, {"tgt", "memory"});
  }
  {
    auto g = gen_for("module/other");
    Tensor kpm = ag::zeros({2, 5}, {ag::f64});
    kpm.data<double>()(1, 3) = kpm.data<double>()(1, 4) = 1;
    d.module("module/AdditiveAttention", {{"module", "AdditiveAttention"}, {"query_dim", 4}, {"key_dim", 3}, {"hidden", 6}},
             {{"query", uniform({2, 4}, g)}, {"keys", uniform({2, 5, 3}, g)}, {"values", uniform({2, 5, 3}, g)}, {"key_padding_mask", kpm}},
             {"query", "keys", "values"});
    // Luong et al.'s scores: concat (the additive score without the key bias), dot, general
    d.module("module/AdditiveAttention/concat", {{"module", "AdditiveAttention"}, {"query_dim", 4}, {"key_dim", 3}, {"hidden", 6}, {"key_bias", false}},
             {{"query", uniform({2, 4}, g)}, {"keys", uniform({2, 5, 3}, g)}, {"values", uniform({2, 5, 3}, g)}, {"key_padding_mask", kpm}},
             {"query", "keys", "values"});
    d.module("module/LuongAttention/dot", {{"module", "LuongAttention"}, {"query_dim", 4}, {"key_dim", 4}, {"score", "dot"}},
             {{"query", uniform({2, 4}, g)}, {"keys", uniform({2, 5, 4}, g)}, {"values", uniform({2, 5, 3}, g)}, {"key_padding_mask", kpm}},
             {"query", "keys", "values"});
    d.module("module/LuongAttention/general", {{"module", "LuongAttention"}, {"query_dim", 4}, {"key_dim", 3}, {"score", "general"}},
             {{"query", uniform({2, 4}, g)}, {"keys", uniform({2, 5, 3}, g)}, {"values", uniform({2, 5, 3}, g)}, {"key_padding_mask", kpm}},
             {"query", "keys", "values"});
    d.module("module/LearnedPositionalEncoding", {{"module", "LearnedPositionalEncoding"}, {"d", 6}, {"max_len", 10}},
             {{"x", uniform({2, 7, 6}, g)}}, {"x"});
    const Tensor x = uniform({2, 9, 6}, g);
    // the float32 table: the formula rounded to float32; a float64 model: the formula in float64
    nn::SinusoidalPositionalEncoding pe(6, 12);
    d.raw("module/SinusoidalPositionalEncoding/float32_table", "sinusoidal_table", {{"d", 6}, {"max_len", 12}, {"table", "float32"}},
          {{"table", pe.table().to(ag::f64).detach()}});
    d.module("module/SinusoidalPositionalEncoding/float64_model", {{"module", "SinusoidalPositionalEncoding"}, {"d", 6}, {"max_len", 12}, {"table", "float64"}},
             {{"x", x}}, {"x"});
  }
  {  // default initialisation of the LSTM biases (torch: every slice ~ U(-1/sqrt(H), 1/sqrt(H)))
    ag::Generator g(seed_of("init/LSTM"));
    nn::LSTM lstm(3, 5, g);
    d.raw("init/LSTM/forget_gate_bias", "init", {{"hidden", 5}},
          {{"bias_ih", lstm.bias_ih[0].to(ag::f64).detach()}, {"bias_hh", lstm.bias_hh[0].to(ag::f64).detach()}});
  }
}

// ---- optimizers and schedules -------------------------------------------------------------------
// Three parameters; p2 gets its first gradient at step 3 (state allocated lazily, as in torch).
//   loss_t = sum(tanh(p0 @ p1) * c_t) + 0.1 sum(p1^3) + [t >= 2] sum(exp(p2) * e_t)
void optimizer_case(Dumper& d, const std::string& name, const json& attrs,
                    const std::function<std::unique_ptr<nn::Optimizer>(std::vector<Tensor>)>& make) {
  ag::Generator g(seed_of(name));
  std::vector<Tensor> p{uniform({3, 4}, g), uniform({4, 2}, g), uniform({2, 2}, g)};
  nn::NamedTensors file;
  for (std::size_t i = 0; i < p.size(); ++i) p[i].requires_grad_(), file.push_back({str("p", i, ".init"), p[i].detach()});
  auto opt = make(p);
  const int steps = 5;
  const double clip = attrs.value("clip", 0.0);
  for (int t = 0; t < steps; ++t) {
    const Tensor c = uniform({3, 2}, g), e = uniform({2, 2}, g);
    file.push_back({str("c.", t), c});
    file.push_back({str("e.", t), e});
    opt->zero_grad();
    Tensor loss = ag::sum(ag::tanh(ag::matmul(p[0], p[1])) * c) + ag::sum(ag::pow(p[1], 3.0)) * 0.1;
    if (t >= 2) loss = loss + ag::sum(ag::exp(p[2]) * e);
    loss.backward();
    if (clip > 0) file.push_back({str("clip_norm.", t), ag::scalar(nn::clip_grad_norm(p, clip), {ag::f64})});
    opt->step();
    for (std::size_t i = 0; i < p.size(); ++i) file.push_back({str("p", i, ".step", t + 1), p[i].detach()});
  }
  for (auto& [k, v] : opt->state_dict()) file.push_back({"opt." + k, v.to(ag::f64).detach()});
  json a = attrs;
  a["steps"] = steps;
  d.raw(name, "optimizer", a, file);
}

void optimizer_cases(Dumper& d) {
  auto sgd = [&](const std::string& name, nn::SGDOptions o, double clip = 0) {
    optimizer_case(d, "optim/SGD/" + name,
                   {{"optimizer", "SGD"}, {"lr", o.lr}, {"momentum", o.momentum}, {"weight_decay", o.weight_decay},
                    {"nesterov", o.nesterov}, {"dampening", o.dampening}, {"clip", clip}},
                   [o](std::vector<Tensor> p) { return std::make_unique<nn::SGD>(p, o); });
  };
  sgd("plain", {.lr = 0.1});
  sgd("momentum", {.lr = 0.1, .momentum = 0.9});
  sgd("momentum_dampening", {.lr = 0.1, .momentum = 0.9, .dampening = 0.3});
  sgd("nesterov", {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  sgd("weight_decay", {.lr = 0.1, .weight_decay = 0.05});
  sgd("nesterov_weight_decay_clip", {.lr = 0.1, .momentum = 0.8, .weight_decay = 0.05, .nesterov = true}, 0.5);
  sgd("momentum_clip_not_reached", {.lr = 0.1, .momentum = 0.9}, 100.0);
  auto adam = [&](const std::string& name, nn::AdamOptions o, double clip = 0) {
    optimizer_case(d, "optim/Adam/" + name,
                   {{"optimizer", "Adam"}, {"lr", o.lr}, {"beta1", o.betas.first}, {"beta2", o.betas.second}, {"eps", o.eps},
                    {"weight_decay", o.weight_decay}, {"clip", clip}},
                   [o](std::vector<Tensor> p) { return std::make_unique<nn::Adam>(p, o); });
  };
  adam("default_lr0.05", {.lr = 0.05});
  adam("betas_eps", {.lr = 0.02, .betas = {0.8, 0.95}, .eps = 1e-6});
  adam("weight_decay", {.lr = 0.05, .weight_decay = 0.1});
  adam("clip", {.lr = 0.05}, 0.3);
  auto adamw = [&](const std::string& name, nn::AdamWOptions o) {
    optimizer_case(d, "optim/AdamW/" + name,
                   {{"optimizer", "AdamW"}, {"lr", o.lr}, {"beta1", o.betas.first}, {"beta2", o.betas.second}, {"eps", o.eps},
                    {"weight_decay", o.weight_decay}, {"clip", 0.0}},
                   [o](std::vector<Tensor> p) { return std::make_unique<nn::AdamW>(p, o); });
  };
  adamw("default_lr0.05", {.lr = 0.05});
  adamw("weight_decay0.3", {.lr = 0.05, .betas = {0.85, 0.99}, .weight_decay = 0.3});

  // schedules: the values lr(s), s = 0..N, and the rates a documented training loop uses
  auto sched = [&](const std::string& name, const json& attrs, const nn::Schedule& s, std::int64_t n) {
    std::vector<double> values, used;
    for (std::int64_t i = 0; i <= n; ++i) values.push_back(s.lr(i));
    Tensor w = ag::zeros({2}, {ag::f64, true});
    nn::SGD opt({w}, {.lr = 1.0});
    for (std::int64_t i = 0; i < n; ++i) {  // the loop of optim.hpp's header
      opt.zero_grad();
      ag::sum(w).backward();
      opt.set_lr(s.lr(opt.steps() + 1));
      used.push_back(opt.lr());
      opt.step();
    }
    json a = attrs;
    a["n"] = n;
    d.raw("schedule/" + name + "/values", "schedule_values", a, {{"lr", of(values, {values.size()})}});
    d.raw("schedule/" + name + "/training_loop", "schedule_loop", a, {{"lr_used", of(used, {used.size()})}}, XF_SCHEDULE);
  };
  sched("Warmup", {{"schedule", "Warmup"}, {"d_model", 16}, {"warmup", 4}, {"factor", 2.0}}, nn::WarmupSchedule(16, 4, 2.0), 10);
  sched("Cosine", {{"schedule", "Cosine"}, {"base_lr", 0.1}, {"total", 8}, {"warmup", 0}, {"min_lr", 0.01}}, nn::CosineSchedule(0.1, 8, 0, 0.01), 8);
  sched("Cosine_warmup", {{"schedule", "Cosine"}, {"base_lr", 0.1}, {"total", 10}, {"warmup", 3}, {"min_lr", 0.0}},
        nn::CosineSchedule(0.1, 10, 3, 0.0), 12);
}

// ---- load mode: torch state_dicts -> nn::load -> outputs -------------------------------------------
int load_mode(const fs::path& dir) {
  json m;
  std::ifstream(dir / "torch_manifest.json") >> m;
  int n = 0;
  for (const auto& c : m.at("cases")) {
    ag::Generator gen(1);
    Built b = build_module(c.at("cfg"), gen);
    b.module->to(ag::f64);
    b.module->eval();
    nn::load(*b.module, (dir / c.at("state").get<std::string>()).string());
    const Ins in = read_inputs(nn::load_safetensors((dir / c.at("inputs").get<std::string>()).string()));
    ag::NoGrad no_grad;
    nn::NamedTensors out;
    for (const auto& [k, y] : b.run(in)) out.push_back({"out." + k, y});
    nn::save_safetensors((dir / c.at("outputs").get<std::string>()).string(), out);
    ++n;
  }
  std::cout << "parity_dump load: " << n << " torch checkpoints evaluated\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "dump" && std::string(argv[1]) != "load")) {
    std::cerr << "usage: parity_dump dump DIR | parity_dump load DIR  (see tests/parity/torch_parity.py)\n";
    return 2;
  }
  try {
    const fs::path dir = argv[2];
    fs::create_directories(dir);
    if (std::string(argv[1]) == "load") return load_mode(dir);
    Dumper d(dir);
    op_cases(d);
    module_cases(d);
    optimizer_cases(d);
    d.finish();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "parity_dump: " << e.what() << "\n";
    return 1;
  }
}
