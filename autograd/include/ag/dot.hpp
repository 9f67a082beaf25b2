#pragma once
// ag::to_dot: the graph that produced a tensor, as Graphviz text (render with `dot -Tpng`).
#include <string>

#include "ag/tensor.hpp"

namespace ag {

std::string to_dot(const Tensor& root);

}  // namespace ag
