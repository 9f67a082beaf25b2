#pragma once
// Gradient recording mode. Inside an ag::NoGrad scope ops build no graph (evaluation,
// optimizer updates, initialisation).

namespace ag {

bool grad_enabled();
void set_grad_enabled(bool enabled);

// RAII guard: `{ ag::NoGrad ng; auto y = model(x); }` records nothing.
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

}  // namespace ag
