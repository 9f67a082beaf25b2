// to_dot: the graph behind a tensor as Graphviz text. Boxes are ops, ellipses are leaves;
// edges run from inputs to the op that consumed them (the direction of the forward pass).
#include <sstream>
#include <unordered_map>

#include "ag/dot.hpp"

namespace ag {

std::string to_dot(const Tensor& root) {
  std::ostringstream os;
  os << "digraph attnlab {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n";
  std::unordered_map<const Node*, std::size_t> id;
  std::vector<const Node*> stack{root.node()};
  id[root.node()] = 0;
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    const std::size_t me = id[n];
    std::string label = n->label.empty() ? std::string(n->op) : n->label + (n->leaf ? "" : std::string("\\n") + n->op);
    label += "\\n" + shape_str(n->data.shape());
    if (n->data.size() == 1) {
      std::ostringstream v;
      v << (n->data.dtype() == f32 ? double(n->data.ptr<float>()[0]) : n->data.ptr<double>()[0]);
      label += " = " + v.str();
    }
    os << "  n" << me << " [label=\"" << label << "\", shape=" << (n->leaf ? "ellipse" : "box")
       << (n->requires_grad ? "" : ", style=dashed") << (n == root.node() ? ", penwidth=2" : "") << "];\n";
    for (const auto& in : n->inputs) {
      if (!in) continue;
      auto [it, fresh] = id.emplace(in.get(), id.size());
      if (fresh) stack.push_back(in.get());
      os << "  n" << it->second << " -> n" << me << ";\n";
    }
  }
  os << "}\n";
  return os.str();
}

}  // namespace ag
