// check_run DIR: the smoke tests' verdict on a lesson's output directory. Every CSV must parse,
// have a header and at least one row, and hold only finite numbers (empty cells allowed); every
// PNG must start with the PNG signature. Exit 1 with the reason otherwise.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: check_run DIR\n";
    return 2;
  }
  int csvs = 0, pngs = 0;
  for (const auto& e : fs::recursive_directory_iterator(argv[1])) {
    const auto ext = e.path().extension();
    if (ext == ".png") {
      std::ifstream f(e.path(), std::ios::binary);
      char sig[8] = {};
      f.read(sig, 8);
      if (std::string(sig + 1, 3) != "PNG") {
        std::cerr << e.path() << ": not a PNG\n";
        return 1;
      }
      ++pngs;
    }
    if (ext != ".csv") continue;
    std::ifstream f(e.path());
    std::string line;
    int rows = -1;
    while (std::getline(f, line)) {
      if (++rows == 0) continue;  // header
      std::stringstream ss(line);
      std::string cell;
      while (std::getline(ss, cell, ',')) {
        if (cell.empty()) continue;
        char* end = nullptr;
        const double v = std::strtod(cell.c_str(), &end);
        if (end == cell.c_str()) continue;  // a text cell (labels)
        if (!std::isfinite(v)) {
          std::cerr << e.path() << " row " << rows << ": non-finite value '" << cell << "'\n";
          return 1;
        }
      }
    }
    if (rows < 1) {
      std::cerr << e.path() << ": no data rows\n";
      return 1;
    }
    ++csvs;
  }
  if (csvs == 0) {
    std::cerr << argv[1] << ": no CSV written\n";
    return 1;
  }
  std::cout << argv[1] << ": " << csvs << " CSV, " << pngs << " PNG, all finite\n";
  return 0;
}
