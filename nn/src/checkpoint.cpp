// safetensors checkpoints (format in checkpoint.hpp).
//
// Note [reading untrusted bytes]: the header is checked completely before any tensor is made:
// the header length against the file, every shape product against overflow, every data_offsets
// pair against the data section and against its dtype and shape, and the offsets together must
// tile the data section. Only then is memory allocated and copied, so the largest allocation is
// bounded by the file's own size and no read goes past the buffer.
#include "nn/checkpoint.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "ag/error.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"

namespace nn {

namespace {

using json = nlohmann::json;

constexpr std::uint64_t kMaxHeader = 100'000'000;  // as the reference implementation
constexpr const char* kMetadataKey = "__metadata__";

const char* st_dtype(ag::Dtype d) { return d == ag::f32 ? "F32" : "F64"; }
std::size_t itemsize(ag::Dtype d) { return d == ag::f32 ? 4 : 8; }

// Little-endian bytes <-> native values, element by element (a plain copy on little-endian hosts).
void copy_le(void* dst, const void* src, std::size_t nbytes, std::size_t item) {
  if (nbytes == 0) return;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(dst, src, nbytes);
  } else {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    for (std::size_t i = 0; i < nbytes; i += item)
      for (std::size_t b = 0; b < item; ++b) d[i + b] = s[i + item - 1 - b];
  }
}

const void* raw_data(const ag::Array& a) {
  return ag::dispatch(a.dtype(), [&](auto tag) -> const void* { return a.ptr<decltype(tag)>(); });
}
void* raw_data(ag::Array& a) {
  return ag::dispatch(a.dtype(), [&](auto tag) -> void* { return a.ptr<decltype(tag)>(); });
}

std::string errno_text() { return std::strerror(errno); }

// ---- parsing -----------------------------------------------------------------------------

struct Entry {
  std::string name;
  ag::Dtype dtype;
  ag::Shape shape;
  std::uint64_t begin, end;
};

// Every error while reading names the function and the file: "load_safetensors: 'x.st': ...".
struct Reader {
  const char* who;
  const std::string& source;
  template <class... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    ag::fail(who, ": '", source, "': ", std::forward<Parts>(parts)...);
  }
};

const char* json_type(const json& j) { return j.type_name(); }

// A short, safe description of a JSON value for an error message: scalars and small flat arrays
// as written (cut at 64 characters), anything else by size only (a hostile header may nest
// containers a million deep, and dump() recurses).
std::string brief(const json& j) {
  const bool flat = j.is_primitive() || (j.is_array() && j.size() <= 16 &&
                                         std::all_of(j.begin(), j.end(), [](const json& e) { return e.is_primitive(); }));
  if (!flat) return j.is_array() ? "[...] (" + std::to_string(j.size()) + " elements)" : "{...} (" + std::to_string(j.size()) + " keys)";
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 64) s = s.substr(0, 60) + "...";
  return s;
}

ag::Dtype parse_dtype(const Reader& r, const std::string& name, const json& j) {
  if (!j.is_string()) r.fail("tensor '", name, "': \"dtype\" must be a string such as \"F32\", got ", json_type(j), " ", brief(j));
  const std::string s = j.get<std::string>();
  if (s == "F32") return ag::f32;
  if (s == "F64") return ag::f64;
  static const std::set<std::string> known = {"BOOL", "U8",  "I8",  "I16", "U16",     "F16",     "BF16",    "I32",
                                              "U32",  "I64", "U64", "C64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",
                                              "F6_E2M3", "F6_E3M2", "F4_E2M1"};
  if (known.count(s))
    r.fail("tensor '", name, "' has dtype \"", s, "\", which attnlab does not support (it reads F32 and F64; ",
           "convert the tensor before saving, e.g. t.float() in PyTorch)");
  r.fail("tensor '", name, "' has unknown dtype \"", s, "\" (expected \"F32\" or \"F64\")");
}

// A JSON number that is a non-negative integer, as uint64.
std::uint64_t parse_count(const Reader& r, const std::string& name, const char* field, const json& j) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer())  // signed, so negative here
    r.fail("tensor '", name, "': \"", field, "\" holds ", brief(j), ", expected non-negative integers");
  r.fail("tensor '", name, "': \"", field, "\" must hold non-negative integers, got ", json_type(j), " ", brief(j));
}

const json& field(const Reader& r, const std::string& name, const json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end())
    r.fail("tensor '", name, "' has no \"", key, "\" (each tensor needs \"dtype\", \"shape\" and \"data_offsets\")");
  return *it;
}

Entry parse_entry(const Reader& r, const std::string& name, const json& e, std::uint64_t data_size) {
  if (!e.is_object()) r.fail("tensor '", name, "' must be a JSON object, got ", json_type(e));
  Entry out{name, parse_dtype(r, name, field(r, name, e, "dtype")), {}, 0, 0};

  const json& shape = field(r, name, e, "shape");
  if (!shape.is_array()) r.fail("tensor '", name, "': \"shape\" must be an array, got ", json_type(shape), " ", brief(shape));
  std::uint64_t numel = 1;
  for (const json& d : shape) {
    const std::uint64_t n = parse_count(r, name, "shape", d);
    if (n > std::uint64_t(SIZE_MAX) || __builtin_mul_overflow(numel, n, &numel))
      r.fail("tensor '", name, "': shape ", brief(shape), " has too many elements (the product overflows 64 bits)");
    out.shape.push_back(std::size_t(n));
  }
  std::uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, std::uint64_t(itemsize(out.dtype)), &nbytes))
    r.fail("tensor '", name, "': shape ", brief(shape), " is too large (its byte size overflows 64 bits)");

  const json& off = field(r, name, e, "data_offsets");
  if (!off.is_array() || off.size() != 2)
    r.fail("tensor '", name, "': \"data_offsets\" must be an array [begin, end], got ", json_type(off), " ", brief(off));
  out.begin = parse_count(r, name, "data_offsets", off[0]);
  out.end = parse_count(r, name, "data_offsets", off[1]);
  if (out.begin > out.end)
    r.fail("tensor '", name, "': data_offsets [", out.begin, ", ", out.end, "] have begin > end");
  if (out.end > data_size)
    r.fail("tensor '", name, "': data_offsets [", out.begin, ", ", out.end, "] go past the end of the data section (",
           data_size, " bytes; the file is truncated or the header is wrong)");
  if (out.end - out.begin != nbytes)
    r.fail("tensor '", name, "': data_offsets [", out.begin, ", ", out.end, "] span ", out.end - out.begin,
           " bytes, but shape ", ag::shape_str(out.shape), " of ", st_dtype(out.dtype), " needs ", nbytes, " bytes");
  return out;
}

Metadata parse_metadata(const Reader& r, const json& j) {
  if (!j.is_object()) r.fail("\"__metadata__\" must be an object of strings, got ", json_type(j), " ", brief(j));
  Metadata out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string())
      r.fail("\"__metadata__\" entry '", it.key(), "' must be a string, got ", json_type(it.value()), " ",
             brief(it.value()));
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

SafetensorsFile parse(std::string_view bytes, const char* who, const std::string& source) {
  const Reader r{who, source};
  // 1) the header length
  if (bytes.size() < 8)
    r.fail("the file is ", bytes.size(), " bytes, too short for the 8-byte header length (truncated, or not safetensors)");
  std::uint64_t n = 0;
  for (int b = 7; b >= 0; --b) n = (n << 8) | static_cast<unsigned char>(bytes[std::size_t(b)]);
  const std::uint64_t rest = bytes.size() - 8;
  if (n > rest)
    r.fail("the header length is ", n, " bytes but only ", rest, " bytes follow it (truncated, or not safetensors)");
  if (n > kMaxHeader) r.fail("the header length ", n, " is larger than the limit of ", kMaxHeader, " bytes");
  const std::string_view header = bytes.substr(8, std::size_t(n));
  const std::string_view data = bytes.substr(8 + std::size_t(n));

  // 2) the JSON header; duplicate keys are noted while parsing (a JSON object would keep only one)
  std::string duplicate;
  std::vector<std::string> order;  // the top-level keys in file order (a JSON object sorts them)
  std::set<std::string> top_keys, entry_keys;
  std::string current;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event != json::parse_event_t::key || !duplicate.empty()) return true;
    const std::string key = parsed.get<std::string>();
    if (depth == 1) {
      current = key;
      entry_keys.clear();
      if (!top_keys.insert(key).second) duplicate = "the name '" + key + "' appears twice";
      order.push_back(key);
    } else if (depth == 2 && !entry_keys.insert(key).second) {
      duplicate = "'" + current + "' has the key \"" + key + "\" twice";
    }
    return true;
  };
  json root;
  try {
    root = json::parse(header.begin(), header.end(), on_event);
  } catch (const json::exception& e) {
    r.fail("the header is not valid JSON (", e.what(), ")");
  }
  if (!duplicate.empty()) r.fail("the header is ambiguous: ", duplicate);
  if (!root.is_object()) r.fail("the header must be a JSON object, got ", json_type(root));

  // 3) every entry, checked against the data section
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const std::string& key : order) {
    const json& value = root.at(key);
    if (key == kMetadataKey) out.metadata = parse_metadata(r, value);
    else entries.push_back(parse_entry(r, key, value, data.size()));
  }

  // 4) the offsets tile the data section: sorted by offset, each begins where the previous ends
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t pos = 0;
  for (const Entry& e : entries) {
    if (e.begin != pos)
      r.fail("tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] ", e.begin < pos ? "overlap" : "leave a gap after",
             " the previous tensor, which ends at ", pos, " (tensors must be laid out one after another)");
    pos = e.end;
  }
  if (pos != data.size())
    r.fail("the tensors cover ", pos, " bytes of data but the data section has ", data.size(),
           " bytes (the header and the data disagree)");

  // 5) the tensors
  for (const Entry& e : entries) {
    ag::Array a(e.dtype, e.shape);
    copy_le(raw_data(a), data.data() + e.begin, std::size_t(e.end - e.begin), itemsize(e.dtype));
    out.tensors.emplace_back(e.name, ag::Tensor::from(std::move(a)));
  }
  return out;
}

// ---- files -------------------------------------------------------------------------------

std::string read_file(const std::string& path, const char* who) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) ag::fail(who, ": '", path, "' is a directory, expected a file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) ag::fail(who, ": cannot open '", path, "' (", errno_text(), ")");
  std::string bytes;
  char buf[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, got);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) ag::fail(who, ": error reading '", path, "'");
  return bytes;
}

// Writes bytes to path + ".tmp", flushes them to disk, renames over path (atomic on POSIX).
void write_file_atomic(const std::string& path, const std::string& bytes, const char* who) {
  const std::string tmp = path + ".tmp";
  auto fail_io = [&](const char* what) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    ag::fail(who, ": cannot ", what, " '", tmp, "' (", why, "); '", path, "' was not changed");
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) ag::fail(who, ": cannot open '", tmp, "' for writing (", errno_text(), "); '", path, "' was not changed");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      fail_io("write");
    }
    done += std::size_t(w);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    fail_io("flush");
  }
  if (::close(fd) != 0) fail_io("close");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    ag::fail(who, ": cannot rename '", tmp, "' to '", path, "' (", why, "); '", path, "' was not changed");
  }
  // Make the rename itself durable (best effort: not every file system lets a directory be synced).
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

// ---- public API --------------------------------------------------------------------------

std::string serialize_safetensors(const NamedTensors& tensors, const Metadata& metadata) {
  const char* who = "save_safetensors";
  // The header is written entry by entry, so the tensors keep their order (a JSON object would
  // sort its keys): {"__metadata__": {...}, "name": {"dtype", "shape", "data_offsets"}, ...}
  std::string text = "{";
  auto add = [&](const std::string& key, const auto& value) {
    try {
      if (text.size() > 1) text += ',';
      text += json(key).dump();
      text += ':';
      text += value.dump();
    } catch (const json::exception& e) {  // e.g. a name that is not valid UTF-8
      ag::fail(who, ": cannot write the header entry for '", key, "' (", e.what(), ")");
    }
  };
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    add(kMetadataKey, m);
  }
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    if (name.empty()) ag::fail(who, ": tensor ", i, " has an empty name");
    if (name == kMetadataKey) ag::fail(who, ": \"", kMetadataKey, "\" is reserved and cannot name a tensor");
    if (!names.insert(name).second) ag::fail(who, ": the name '", name, "' appears twice (names must be unique)");
    if (!t.defined()) ag::fail(who, ": tensor '", name, "' is undefined");
    const std::uint64_t nbytes = std::uint64_t(t.numel()) * itemsize(t.dtype());
    json shape = json::array();
    for (auto d : t.shape()) shape.push_back(std::uint64_t(d));
    nlohmann::ordered_json entry;  // the reference implementation's field order
    entry["dtype"] = st_dtype(t.dtype());
    entry["shape"] = std::move(shape);
    entry["data_offsets"] = {offset, offset + nbytes};
    add(name, entry);
    offset += nbytes;
  }
  text += "}";
  text.append((8 - text.size() % 8) % 8, ' ');  // pad: the data section starts 8-byte aligned

  std::string out;
  out.reserve(8 + text.size() + offset);
  const std::uint64_t n = text.size();
  for (int b = 0; b < 8; ++b) out.push_back(char((n >> (8 * b)) & 0xff));
  out += text;
  const std::size_t data_start = out.size();
  out.resize(data_start + offset);
  std::size_t pos = data_start;
  for (const auto& [name, t] : tensors) {
    const std::size_t nbytes = t.numel() * itemsize(t.dtype());
    copy_le(out.data() + pos, raw_data(t.array()), nbytes, itemsize(t.dtype()));
    pos += nbytes;
  }
  return out;
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& source) {
  return parse(bytes, "parse_safetensors", source);
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata), "save_safetensors");
}

NamedTensors load_safetensors(const std::string& path, Metadata* metadata) {
  const std::string bytes = read_file(path, "load_safetensors");
  SafetensorsFile f = parse(bytes, "load_safetensors", path);
  if (metadata) *metadata = std::move(f.metadata);
  return std::move(f.tensors);
}

void save(const Module& module, const std::string& path, const Metadata& metadata) {
  save_safetensors(path, module.named_parameters(), metadata);
}

namespace {

// Every mismatch between the module's parameters and the file's tensors `prefix + name`, one
// line each (`where` starts every line).
std::vector<std::string> match_parameters(const std::vector<std::pair<std::string, ag::Tensor>>& params,
                                          const std::map<std::string, const ag::Tensor*>& by_name, const std::string& prefix,
                                          const std::string& where) {
  std::vector<std::string> problems;
  std::set<std::string> wanted;
  for (const auto& [pname, p] : params) {
    const std::string name = prefix + pname;
    wanted.insert(name);
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      problems.push_back(where + "has no '" + name + "', which the model expects (shape " + ag::shape_str(p.shape()) + ", " +
                         ag::dtype_name(p.dtype()) + ")");
      continue;
    }
    const ag::Tensor& t = *it->second;
    if (t.shape() != p.shape())
      problems.push_back(where + "has '" + name + "' of shape " + ag::shape_str(t.shape()) + ", the model expects " +
                         ag::shape_str(p.shape()));
    else if (t.dtype() != p.dtype())
      problems.push_back(where + "has '" + name + "' as " + ag::dtype_name(t.dtype()) + ", the model expects " +
                         ag::dtype_name(p.dtype()) + " (convert the model with .to() first)");
  }
  for (const auto& [name, t] : by_name)
    if (name.rfind(prefix, 0) == 0 && !wanted.count(name))
      problems.push_back(where + "has '" + name + "' (shape " + ag::shape_str(t->shape()) + "), which the model does not have");
  return problems;
}

// Copies each file tensor into its parameter, in place: the parameter nodes (held by the module
// and by any optimizer) stay the same.
void copy_parameters(std::vector<std::pair<std::string, ag::Tensor>>& params, const std::map<std::string, const ag::Tensor*>& by_name,
                     const std::string& prefix) {
  for (auto& [name, p] : params) {
    const ag::Tensor& t = *by_name.at(prefix + name);
    const std::size_t nbytes = p.numel() * itemsize(p.dtype());
    if (nbytes) std::memcpy(raw_data(p.array()), raw_data(t.array()), nbytes);
  }
}

[[noreturn]] void fail_lines(const std::vector<std::string>& lines) {
  std::string msg;
  for (const auto& line : lines) msg += (msg.empty() ? "" : "\n") + line;
  throw ag::Error(msg);
}

}  // namespace

void load(Module& module, const std::string& path) {
  const NamedTensors file = load_safetensors(path);
  std::map<std::string, const ag::Tensor*> by_name;
  for (const auto& [name, t] : file) by_name[name] = &t;
  auto params = module.named_parameters();
  // every mismatch, one line each; nothing is copied unless there is none
  const auto problems = match_parameters(params, by_name, "", "load: checkpoint '" + path + "' ");
  if (!problems.empty()) fail_lines(problems);
  copy_parameters(params, by_name, "");
}

// ---- training state ------------------------------------------------------------------------

namespace {

constexpr const char* kTrainingFormat = "attnlab.training_state.v1";

// The generators a training state holds: the module's under "model.", then the loop's.
std::vector<std::pair<std::string, ag::Generator*>> all_generators(Module& model, const TrainingState& state, const char* who) {
  std::vector<std::pair<std::string, ag::Generator*>> out;
  for (auto& [name, g] : model.named_generators()) out.emplace_back("model." + name, g);
  std::set<std::string> seen;
  for (const auto& [name, g] : state.generators) {
    if (name.empty() || name.rfind("model.", 0) == 0 || !g)
      ag::fail(who, ": generator name '", name, "' must be non-empty, not start with 'model.' (the model's own), and point to a generator");
    if (!seen.insert(name).second) ag::fail(who, ": generator '", name, "' is listed twice");
    out.emplace_back(name, g);
  }
  return out;
}

void check_same_parameters(const Module& model, const Optimizer& optimizer, const char* who) {
  // In any order (parameter groups reorder them): the optimizer's state is saved and loaded by
  // its own indices, the same for the same construction.
  const auto mp = model.parameters();
  const auto& op = optimizer.parameters();
  std::set<const void*> model_nodes;
  for (const auto& p : mp) model_nodes.insert(p.node());
  bool same = mp.size() == op.size();
  for (std::size_t i = 0; same && i < op.size(); ++i) same = model_nodes.count(op[i].node()) > 0;
  if (!same)
    ag::fail(who, ": the optimizer must hold exactly the model's parameters, each once, in any order (it holds ", op.size(),
             " tensors, the model has ", mp.size(), ")");
}

}  // namespace

void save_training_state(const std::string& path, Module& model, const Optimizer& optimizer, const TrainingState& state) {
  const char* who = "save_training_state";
  check_same_parameters(model, optimizer, who);
  NamedTensors tensors;
  for (auto& [name, p] : model.named_parameters()) tensors.emplace_back("model." + name, p);
  for (auto& [name, t] : optimizer.state_dict()) tensors.emplace_back("optimizer." + name, t);
  Metadata meta{{"format", kTrainingFormat},
                {"step", std::to_string(state.step)},
                {"optimizer", optimizer.name()},
                {"optimizer.steps", std::to_string(optimizer.steps())}};
  for (const auto& [k, v] : optimizer.hyperparameters()) meta["optimizer." + k] = v;
  for (const auto& [name, g] : all_generators(model, state, who)) {
    std::ostringstream os;
    os << g->engine();
    meta["rng." + name] = os.str();
  }
  for (const auto& [k, v] : state.config) meta["config." + k] = v;
  for (const auto& [k, v] : state.extra) meta["extra." + k] = v;
  save_safetensors(path, tensors, meta);
}

void load_training_state(const std::string& path, Module& model, Optimizer& optimizer, TrainingState& state) {
  const char* who = "load_training_state";
  check_same_parameters(model, optimizer, who);
  Metadata meta;
  const NamedTensors file = load_safetensors(path, &meta);
  const std::string where = std::string(who) + ": '" + path + "' ";
  auto get = [&](const std::string& key) -> const std::string* {
    auto it = meta.find(key);
    return it == meta.end() ? nullptr : &it->second;
  };
  if (const std::string* f = get("format"); !f || *f != kTrainingFormat)
    ag::fail(where, "is not a training state (its metadata has format = '", f ? *f : std::string("(none)"), "', expected '",
             kTrainingFormat, "'); a model checkpoint loads with nn::load");

  std::vector<std::string> problems;
  // 1) the run's options
  auto compare = [&](const std::string& key, const std::string* saved, const std::string* ours) {
    if (saved && ours && *saved == *ours) return;
    problems.push_back(where + "was saved with " + key + " = " + (saved ? *saved : std::string("(not set)")) + ", this run has " +
                       (ours ? *ours : std::string("(not set)")));
  };
  std::set<std::string> keys;
  for (const auto& [k, v] : meta)
    if (k.rfind("config.", 0) == 0) keys.insert(k.substr(7));
  for (const auto& [k, v] : state.config) keys.insert(k);
  for (const std::string& k : keys) {
    auto it = state.config.find(k);
    compare("config." + k, get("config." + k), it == state.config.end() ? nullptr : &it->second);
  }
  const std::string opt_name = optimizer.name();
  compare("optimizer", get("optimizer"), &opt_name);
  for (const auto& [k, v] : optimizer.hyperparameters())
    if (k != "lr") compare("optimizer." + k, get("optimizer." + k), &v);
  // 2) the generators
  std::vector<std::pair<ag::Generator*, std::mt19937_64>> engines;
  std::set<std::string> expected;
  for (const auto& [name, g] : all_generators(model, state, who)) {
    expected.insert(name);
    const std::string* text = get("rng." + name);
    if (!text) {
      problems.push_back(where + "has no state for generator '" + name + "', which this run draws from");
      continue;
    }
    std::istringstream is(*text);
    std::mt19937_64 e;
    is >> e;
    if (!is) problems.push_back(where + "has an unreadable state for generator '" + name + "'");
    engines.emplace_back(g, e);
  }
  for (const auto& [k, v] : meta)
    if (k.rfind("rng.", 0) == 0 && !expected.count(k.substr(4)))
      problems.push_back(where + "has a generator '" + k.substr(4) + "' that this run does not have");
  // 3) the numbers
  std::int64_t step = 0, opt_steps = 0;
  double lr = 0;
  auto number = [&](const char* key, auto& out) {
    const std::string* text = get(key);
    const auto r = text ? std::from_chars(text->data(), text->data() + text->size(), out) : std::from_chars_result{};
    if (!text || r.ec != std::errc() || r.ptr != text->data() + text->size())
      problems.push_back(where + "has no readable '" + key + "' in its metadata");
  };
  number("step", step);
  number("optimizer.steps", opt_steps);
  number("optimizer.lr", lr);
  // 4) the tensors
  std::map<std::string, const ag::Tensor*> by_name;
  NamedTensors opt_state;
  for (const auto& [name, t] : file) {
    if (name.rfind("model.", 0) == 0)
      by_name[name] = &t;
    else if (name.rfind("optimizer.", 0) == 0)
      opt_state.emplace_back(name.substr(10), t);
    else
      problems.push_back(where + "has '" + name + "', which is neither model.* nor optimizer.*");
  }
  auto params = model.named_parameters();
  for (auto& line : match_parameters(params, by_name, "model.", where)) problems.push_back(line);
  if (!problems.empty()) fail_lines(problems);

  // Apply: the optimizer first (it checks its state and throws before changing anything).
  optimizer.load_state_dict(opt_state);
  optimizer.set_steps(opt_steps);
  optimizer.set_lr(lr);
  copy_parameters(params, by_name, "model.");
  for (auto& [g, e] : engines) g->engine() = e;
  state.step = step;
  state.extra.clear();
  for (const auto& [k, v] : meta)
    if (k.rfind("extra.", 0) == 0) state.extra[k.substr(6)] = v;
}

}  // namespace nn
