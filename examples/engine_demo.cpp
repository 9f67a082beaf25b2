// A two-minute tour of the engine: build a small expression, differentiate it, check the
// gradient against central differences, and print the graph. Run: ./lab run demo
#include <iostream>

#include "ag/ag.hpp"

int main() try {
  ag::Generator gen(0);
  // One neuron: y = tanh(w . x + b), loss = (y - 1)^2
  ag::Tensor x = ag::tensor({0.5, -1.0, 2.0}, {3}).set_label("x");
  ag::Tensor w = ag::randn({3}, gen, {.requires_grad = true}).set_label("w");
  ag::Tensor b = ag::scalar(0.1, {.requires_grad = true}).set_label("b");
  ag::Tensor y = ag::tanh(ag::sum(w * x) + b);
  ag::Tensor loss = ag::pow(y - 1.0, 2.0);
  std::cout << "to_dot(loss):\n" << ag::to_dot(loss) << "\n";
  loss.backward();
  std::cout << "loss = " << loss.item() << "\n";
  std::cout << "dloss/db = " << b.grad().item() << "  (by hand: 2 (y - 1) (1 - y^2) = "
            << 2 * (y.item() - 1) * (1 - y.item() * y.item()) << ")\n";

  auto r = ag::gradcheck([&](const std::vector<ag::Tensor>& in) {
    return ag::pow(ag::tanh(ag::sum(in[0] * x.to(ag::f64)) + in[1]) - 1.0, 2.0);
  }, {w, b});
  std::cout << r.report << "\n";
  return r.ok ? 0 : 1;
} catch (const ag::Error& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 2;
}
