#pragma once
// The claims a lesson makes, checked at the end of every run (and so in the smoke tests):
//
//   lab::Checks checks;
//   checks.expect(ratio < 1e-3, "the gradient reaching x_1 is < 1e-3 of the one reaching x_T");
//   return checks.report();   // prints one line per claim; 1 if any failed, else 0
#include <iostream>
#include <string>
#include <vector>

namespace lab {

class Checks {
 public:
  void expect(bool ok, const std::string& claim) { results_.emplace_back(ok, claim); }
  bool all_passed() const {
    for (const auto& r : results_)
      if (!r.first) return false;
    return true;
  }
  int report(std::ostream& out = std::cout) const {
    if (results_.empty()) return 0;
    out << "\nChecks:\n";
    for (const auto& [ok, claim] : results_) out << "  " << (ok ? "[ok]   " : "[FAIL] ") << claim << "\n";
    return all_passed() ? 0 : 1;
  }
  // The same lines as a Markdown code block, for a chapter to quote what the run printed.
  std::string markdown() const {
    std::string s = "```\n";
    for (const auto& [ok, claim] : results_) s += std::string(ok ? "[ok]   " : "[FAIL] ") + claim + "\n";
    return s + "```\n";
  }

 private:
  std::vector<std::pair<bool, std::string>> results_;
};

}  // namespace lab
