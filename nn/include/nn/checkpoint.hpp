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
class Optimizer;

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

// ---- the whole training state: resume a run exactly ----------------------------------------
// One safetensors file holds everything a training loop needs to go on as if it had never
// stopped, so that a run saved at step N, killed and resumed ends bit-identical to one that ran
// straight through:
//   "model.<name>"               the parameters (named_parameters(), as nn::save names them)
//   "optimizer.state.<i>.<key>"  the optimizer's state_dict(): exp_avg, exp_avg_sq, step (Adam,
//                                AdamW), momentum_buffer (SGD), as PyTorch's optimizer names them
//   __metadata__:
//     "format"                   "attnlab.training_state.v1"
//     "step"                     TrainingState::step (the loop's count of steps done)
//     "optimizer"                its name (Adam, AdamW, SGD); "optimizer.steps" its step count,
//                                which is also the schedule's position (lr(opt.steps() + 1))
//     "optimizer.<hyper>"        hyperparameters(): lr, betas, eps, weight_decay, momentum, ...
//     "rng.<name>"               each generator's state (std::mt19937_64's text form): the
//                                module's own (named_generators(): every Dropout) and the loop's
//                                (TrainingState::generators: its data stream, its sampling)
//     "config.<key>"             TrainingState::config: the options the run depends on
//     "extra.<key>"              TrainingState::extra: what the loop wants back (its curves so far)
// Written atomically (save_safetensors): a run killed while saving keeps its previous file.
struct TrainingState {
  std::int64_t step = 0;
  // The loop's own generators, by name: saved, and overwritten on load.
  std::vector<std::pair<std::string, ag::Generator*>> generators;
  // Options that must be the same to resume (model shape, task, steps, ...): load refuses a file
  // whose config differs. The model's parameter shapes and the optimizer's name and
  // hyperparameters (except lr, which schedules change) are checked without being listed here.
  Metadata config;
  // Anything else, saved and handed back by load.
  Metadata extra;
};

// Writes the state of `model` (non-const: the walk that finds its generators also serves load),
// `optimizer` (which must hold exactly model.parameters(), each once, in any order: parameter
// groups reorder them) and `state` to `path`.
void save_training_state(const std::string& path, Module& model, const Optimizer& optimizer, const TrainingState& state);

// Restores model parameters, optimizer state, step count and lr, every generator (the model's and
// state.generators), and sets state.step and state.extra from the file. state.config and the
// names in state.generators are what this run expects. Nothing changes, and the ag::Error lists
// every difference one per line, when the file is not a training state, when its config, its
// optimizer (name or hyperparameters other than lr) or its generators differ from this run's, or
// when its parameters do not match the model's (names, shapes, dtypes, as load() reports them):
//   load_training_state: 'runs/ckpt.safetensors' was saved with config.d_model = 128, this run has 64
void load_training_state(const std::string& path, Module& model, Optimizer& optimizer, TrainingState& state);

}  // namespace nn
