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

// Anomaly detection: while on, backward() checks every gradient an op's rule produces and
// throws ag::Error naming the op (and its forward shapes) at the first NaN or Inf. Costs a pass
// over each gradient, so it is off by default. On for a scope with ag::DetectAnomaly, for a
// whole process with the environment variable ATTNLAB_DETECT_ANOMALY=1 (lessons: --detect-anomaly).
bool anomaly_detection_enabled();
void set_anomaly_detection(bool enabled);

class DetectAnomaly {
 public:
  DetectAnomaly();
  ~DetectAnomaly();
  DetectAnomaly(const DetectAnomaly&) = delete;
  DetectAnomaly& operator=(const DetectAnomaly&) = delete;

 private:
  bool previous_;
};

}  // namespace ag
