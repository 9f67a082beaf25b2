#pragma once
// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors), which
// Python's safetensors, PyTorch and NumPy read, so a model trained here can be inspected there:
//
//   [8 bytes]  N, the header length, unsigned 64-bit little-endian
//   [N bytes]  a JSON object, padded with spaces to a multiple of 8:
//              {"__metadata__": {"key": "value", ...},            (optional, strings only)
//               "fc.weight": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]}, ...}
//   [rest]     the tensors' raw little-endian bytes, row-major, one after another;
//              data_offsets = [begin, end) relative to the start of this section.
//
// attnlab writes and reads F32 and F64. Reading checks everything against the file's size
// before touching the data (a damaged or hostile file gives an ag::Error, never a crash or a
// huge allocation); offsets must tile the data section exactly, as the reference implementation
// requires. Saving is atomic: the bytes go to path + ".tmp", are flushed to disk, and the file
// is then renamed over path, so a crash mid-save leaves the previous checkpoint intact.
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ag/tensor.hpp"

namespace nn {

class Module;

using NamedTensors = std::vector<std::pair<std::string, ag::Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  NamedTensors tensors;  // in file order (by data offset)
  Metadata metadata;
};

// Writes the tensors (in this order) and the metadata to `path` atomically. Names must be
// unique, non-empty and not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});
// Reads a file; the tensors are new leaves (requires_grad = false). metadata, when given, receives
// the "__metadata__" entries.
NamedTensors load_safetensors(const std::string& path, Metadata* metadata = nullptr);

// The same in memory: the bytes of a file, and a file's bytes parsed (`source` names them in errors).
std::string serialize_safetensors(const NamedTensors& tensors, const Metadata& metadata = {});
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& source = "<memory>");

// A module's named_parameters() ("fc.weight", ...), as PyTorch's state_dict names them.
void save(const Module& module, const std::string& path, const Metadata& metadata = {});
// Reads `path` and copies each tensor into the module's parameter of that name, in place (the
// parameter nodes stay the same, so optimizers and shared references keep working). Every
// parameter must be in the file, with the same shape and dtype, and the file must hold nothing
// else; otherwise nothing is copied and the ag::Error lists each mismatch, one per line:
//   load: checkpoint 'x.safetensors' has 'fc.weight' of shape [3,4], the model expects [4,4]
void load(Module& module, const std::string& path);

}  // namespace nn
