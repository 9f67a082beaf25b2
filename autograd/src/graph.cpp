// The graph and the backward pass; plus the layout helpers every op file uses.
//
// Note [backward order]: backward() collects the nodes that need a gradient by a depth-first
// walk with an explicit stack (an RNN unrolled over 1,000 steps, or a chain of 100,000 ops,
// would overflow the call stack if this recursed), then runs their rules in reverse
// post-order, so a node's rule runs only after every consumer has added into its .grad.
// Inputs are kept in a std::vector, so the order, and hence every floating-point sum, is the
// same from run to run. The recursive version it replaces:
//     visit(n): if seen(n) return; for i in n.inputs: visit(i); order.push(n)
#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "ag/ops.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"

namespace ag {

Node::~Node() {
  // Release the chain of inputs iteratively: a node whose last owner is this chain is
  // emptied here, so no destructor below ever recurses.
  std::vector<std::shared_ptr<Node>> pending = std::move(inputs);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n && n.use_count() == 1) {
      for (auto& in : n->inputs) pending.push_back(std::move(in));
      n->inputs.clear();
      n->backward = nullptr;
    }
  }
}

template <class T>
xt::xarray<T>* Node::input_grad(std::size_t i) {
  Node& in = *inputs[i];
  if (!in.requires_grad) return nullptr;
  if (!in.grad) in.grad = Array(in.data.dtype(), in.data.shape());
  return &in.grad->as<T>();
}
template <class T>
xt::xarray<T>* Node::input_grad(std::size_t i, bool& fresh) {
  Node& in = *inputs[i];
  fresh = false;
  if (!in.requires_grad) return nullptr;
  if (!in.grad) {
    in.grad = Array::empty(in.data.dtype(), in.data.shape());
    fresh = true;
  }
  return &in.grad->as<T>();
}
template xt::xarray<float>* Node::input_grad<float>(std::size_t);
template xt::xarray<double>* Node::input_grad<double>(std::size_t);
template xt::xarray<float>* Node::input_grad<float>(std::size_t, bool&);
template xt::xarray<double>* Node::input_grad<double>(std::size_t, bool&);

void Node::accumulate(std::size_t i, const Array& g) {
  Node& in = *inputs[i];
  if (!in.requires_grad) return;
  // Each of these makes the one new array it needs (no copy of g on the way).
  if (g.shape() != in.data.shape()) return accumulate(i, detail::reduce_to_shape(g, in.data.shape()));
  if (g.dtype() != in.data.dtype()) return accumulate(i, g.to(in.data.dtype()));
  if (!in.grad) {
    in.grad = g;
    return;
  }
  dispatch(g.dtype(), [&](auto t) {
    using T = decltype(t);
    kernels::acc(in.grad->ptr<T>(), g.ptr<T>(), g.size());
  });
}

void Node::accumulate(std::size_t i, Array&& g) {
  Node& in = *inputs[i];
  if (!in.requires_grad) return;
  if (g.shape() != in.data.shape()) {
    Array summed = detail::reduce_to_shape(g, in.data.shape());
    if (summed.shape() != in.data.shape())  // an op's backward rule is wrong: say which
      fail(op, " backward: gradient of shape ", shape_str(g.shape()), " for input ", i, " of shape ",
           shape_str(in.data.shape()));
    g = std::move(summed);
  }
  if (g.dtype() != in.data.dtype()) g = g.to(in.data.dtype());
  if (!in.grad) {
    in.grad = std::move(g);
    return;
  }
  dispatch(g.dtype(), [&](auto t) {
    using T = decltype(t);
    kernels::acc(in.grad->ptr<T>(), g.ptr<T>(), g.size());
  });
}

namespace {

// Depth-first post-order of the nodes reachable from root that require grad (Note [backward order]).
// The order owns its nodes: backward() frees each node's inputs as it goes, and an
// intermediate result that nobody else holds must survive until its own rule has run.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<std::shared_ptr<Node>, std::size_t>> stack;  // node, next input to visit
  stack.emplace_back(root, 0);
  seen.insert(root.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (node->graph_freed)
      fail("backward: the graph through '", node->op, "' (output ", shape_str(node->data.shape()),
           ") was already freed by an earlier backward(); pass retain_graph = true to the first "
           "backward() to go through it twice");
    if (next < node->inputs.size()) {
      const std::shared_ptr<Node>& in = node->inputs[next++];
      if (in && in->requires_grad && seen.insert(in.get()).second) stack.emplace_back(in, 0);
    } else {
      order.push_back(std::move(node));
      stack.pop_back();
    }
  }
  return order;
}

// Anomaly mode: after op n's rule ran, every gradient it touched must be finite. Rules run in
// order and each is checked, so the first non-finite gradient seen was made by this rule.
void check_gradients_of(const Node& n) {
  for (std::size_t i = 0; i < n.inputs.size(); ++i) {
    const Node* in = n.inputs[i].get();
    if (!in || !in->requires_grad || !in->grad) continue;
    const bool finite = dispatch(in->grad->dtype(), [&](auto t) {
      using T = decltype(t);
      const T* g = in->grad->ptr<T>();
      for (std::size_t j = 0; j < in->grad->size(); ++j)
        if (!std::isfinite(g[j])) return false;
      return true;
    });
    if (finite) continue;
    std::string inputs;
    for (const auto& x : n.inputs) inputs += (inputs.empty() ? "" : ", ") + (x ? shape_str(x->data.shape()) : "?");
    fail("anomaly: the backward of '", n.op, "' produced a NaN or Inf in the gradient of its input ", i, " (",
         shape_str(in->data.shape()), "); forward: ", n.op, "(", inputs, ") -> ", shape_str(n.data.shape()),
         (n.label.empty() ? "" : " '" + n.label + "'"));
  }
}

void run_backward(const std::shared_ptr<Node>& root, Array seed, bool retain_graph) {
  if (!root->requires_grad)
    fail("backward: the tensor (from '", root->op, "') does not require grad; nothing to differentiate");
  std::vector<std::shared_ptr<Node>> order = topological_order(root);
  // A non-leaf's .grad kept by retain_grad() comes from earlier passes: set it aside, so that
  // the node's rule propagates only this pass's gradient, and add it back after the rule ran.
  std::unordered_map<Node*, Array> earlier;
  for (const auto& n : order) {
    if (n->leaf || !n->grad) continue;
    earlier.emplace(n.get(), std::move(*n->grad));
    n->grad.reset();
  }
  if (root->grad) {
    dispatch(seed.dtype(), [&](auto t) {
      using T = decltype(t);
      kernels::acc(root->grad->ptr<T>(), seed.ptr<T>(), seed.size());
    });
  } else {
    root->grad = std::move(seed);
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = it->get();
    if (n->leaf) continue;
    if (n->grad && n->backward) {
      n->backward(*n);
      if (anomaly_detection_enabled()) check_gradients_of(*n);
    }
    if (!n->retains_grad) {
      n->grad.reset();
    } else if (auto e = earlier.find(n); e != earlier.end()) {
      if (!n->grad) {
        n->grad = std::move(e->second);
      } else {
        dispatch(n->data.dtype(), [&](auto t) {
          using T = decltype(t);
          kernels::acc(n->grad->ptr<T>(), e->second.ptr<T>(), e->second.size());
        });
      }
    }
    if (!retain_graph) {  // release what only backward needed, as early as possible
      n->backward = nullptr;
      n->inputs.clear();
      n->graph_freed = true;
      it->reset();  // every consumer of this node has already run
    }
  }
}

}  // namespace

void Tensor::backward(bool retain_graph) const {
  if (numel() != 1)
    fail("backward: a gradient can be created implicitly only for a one-element output, got shape ",
         shape_str(shape()), "; pass grad_output");
  Array seed(dtype(), shape());
  seed.fill(1.0);
  run_backward(node_ptr(), std::move(seed), retain_graph);
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  detail::check_defined("backward", grad_output);
  if (grad_output.shape() != shape() || grad_output.dtype() != dtype())
    fail("backward: grad_output ", shape_str(grad_output.shape()), " ", dtype_name(grad_output.dtype()),
         " does not match the output ", shape_str(shape()), " ", dtype_name(dtype()));
  run_backward(node_ptr(), grad_output.array(), retain_graph);
}

namespace detail {

Tensor make_result(const char* op, Array data, std::vector<Tensor> inputs, BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->data = std::move(data);
  node->op = op;
  node->leaf = false;
  bool needs = false;
  if (grad_enabled())
    for (const auto& t : inputs) needs = needs || t.requires_grad();
  if (needs) {
    node->requires_grad = true;
    node->inputs.reserve(inputs.size());
    for (auto& t : inputs) node->inputs.push_back(t.node_ptr());
    node->backward = std::move(backward);
  }
  return Tensor(std::move(node));
}

void check_defined(const char* op, const Tensor& t) {
  if (!t.defined()) fail(op, ": got an undefined tensor");
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a);
  check_defined(op, b);
  if (a.dtype() != b.dtype())
    fail(op, ": dtypes differ: ", shape_str(a.shape()), " ", dtype_name(a.dtype()), " and ", shape_str(b.shape()),
         " ", dtype_name(b.dtype()), " (convert one with .to())");
}

std::size_t normalize_axis(const char* op, int axis, const Shape& shape, std::size_t extra) {
  const int n = int(shape.size() + extra);
  if (axis < -n || axis >= n)
    fail(op, ": axis ", axis, " is out of range for shape ", shape_str(shape), " (", shape.size(),
         shape.size() == 1 ? " dimension" : " dimensions", "; valid axes ", -n, "..", n - 1, ")");
  return std::size_t(axis < 0 ? axis + n : axis);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t nd = std::max(a.size(), b.size());
  Shape out(nd);
  for (std::size_t i = 0; i < nd; ++i) {
    const std::size_t da = i < nd - a.size() ? 1 : a[i - (nd - a.size())];
    const std::size_t db = i < nd - b.size() ? 1 : b[i - (nd - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, ": shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast (", da, " vs ", db,
           " at axis ", i, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Strides contiguous_strides(const Shape& shape) {
  Strides s(shape.size());
  std::ptrdiff_t acc = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= std::ptrdiff_t(shape[i]);
  }
  return s;
}

Strides broadcast_strides(const Shape& in, const Shape& out) {
  const Strides cs = contiguous_strides(in);
  Strides s(out.size(), 0);
  const std::size_t lead = out.size() - in.size();
  for (std::size_t i = 0; i < in.size(); ++i) s[lead + i] = in[i] == 1 ? 0 : cs[i];
  return s;
}

namespace {
// row(strided_row, contiguous_row, len, step) for each row (along the last axis) of a contiguous
// array of `shape` and the place it has in a strided one: the strided entries at
// strided_row[j * step], the contiguous ones at contiguous_row[j]. With `by_blocks` (no two rows
// share an entry) blocks along the first axis run on the threads (Note [threads]).
template <class S, class C, class Row>
void for_each_strided_row(S* strided, const Strides& strides, C* contiguous, const Shape& shape, bool by_blocks, Row row) {
  const Strides cs = contiguous_strides(shape);
  auto rows_in = [&](std::size_t b0, std::size_t b1) {  // entries [b0, b1) along the first axis
    Shape block = shape;
    if (!block.empty()) block[0] = b1 - b0;
    S* sp = strided + (block.empty() ? 0 : std::ptrdiff_t(b0) * strides[0]);
    C* cp = contiguous + (block.empty() ? 0 : std::ptrdiff_t(b0) * cs[0]);
    for_each_row<2>(block, {&strides, &cs}, [&](auto off, std::size_t len, auto inner) { row(sp + off[0], cp + off[1], len, inner[0]); });
  };
  const std::size_t n = shape.empty() ? 1 : shape[0];
  if (by_blocks && shape.size() >= 2) kernels::parallel_for(n, shape_numel(shape) / std::max<std::size_t>(n, 1), 1, rows_in);
  else rows_in(0, n);
}
}  // namespace

void gather_strided(Array& dst, const Array& src, std::ptrdiff_t offset, const Strides& strides) {
  dispatch(dst.dtype(), [&](auto t) {
    using T = decltype(t);
    for_each_strided_row(src.ptr<T>() + offset, strides, dst.ptr<T>(), dst.shape(), true,
                         [](const T* sr, T* dr, std::size_t len, std::ptrdiff_t step) {
      if (step == 1) std::copy(sr, sr + len, dr);
      else for (std::size_t j = 0; j < len; ++j) dr[j] = sr[std::ptrdiff_t(j) * step];
    });
  });
}

void scatter_add_strided(Array& dst, std::ptrdiff_t offset, const Strides& strides, const Array& src, bool one_to_one) {
  dispatch(dst.dtype(), [&](auto t) {
    using T = decltype(t);
    for_each_strided_row(dst.ptr<T>() + offset, strides, src.ptr<T>(), src.shape(), one_to_one,
                         [](T* dr, const T* sr, std::size_t len, std::ptrdiff_t step) {
      if (step == 1) kernels::acc(dr, sr, len);
      else if (step == 0) *dr += kernels::sum(sr, len);
      else for (std::size_t j = 0; j < len; ++j) dr[std::ptrdiff_t(j) * step] += sr[j];
    });
  });
}

void scatter_strided(Array& dst, std::ptrdiff_t offset, const Strides& strides, const Array& src) {
  dispatch(dst.dtype(), [&](auto t) {
    using T = decltype(t);
    for_each_strided_row(dst.ptr<T>() + offset, strides, src.ptr<T>(), src.shape(), true,
                         [](T* dr, const T* sr, std::size_t len, std::ptrdiff_t step) {
      if (step == 1) kernels::add_scalar(dr, sr, T(0), len);  // + 0: the bits of 0 + src
      else for (std::size_t j = 0; j < len; ++j) dr[std::ptrdiff_t(j) * step] = sr[j] + T(0);
    });
  });
}

Array reduce_to_shape(const Array& g, const Shape& target) {
  bool compatible = target.size() <= g.dim();
  for (std::size_t i = 0; compatible && i < target.size(); ++i) {
    const std::size_t t = target[i], d = g.shape()[g.dim() - target.size() + i];
    compatible = t == d || t == 1;
  }
  if (!compatible)
    fail("unbroadcast: cannot sum a gradient of shape ", shape_str(g.shape()), " to ", shape_str(target));
  Array out(g.dtype(), target);
  scatter_add_strided(out, 0, broadcast_strides(target, g.shape()), g);
  return out;
}

Array permute_array(const Array& x, const std::vector<std::size_t>& perm) {
  Shape out_shape(perm.size());
  const Strides xs = contiguous_strides(x.shape());
  Strides read(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) {
    out_shape[i] = x.shape()[perm[i]];
    read[i] = xs[perm[i]];
  }
  Array out = Array::empty(x.dtype(), out_shape);
  gather_strided(out, x, 0, read);
  return out;
}

}  // namespace detail
}  // namespace ag
