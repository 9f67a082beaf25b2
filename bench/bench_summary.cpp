// bench_summary FILE.json: a short table from a Google Benchmark JSON file (--benchmark_out=...).
//
//   - names <kernel>/<simd|scalar>/<rest> (bench_kernels): for each kernel/rest with both
//     implementations, the two times and the speed-up scalar/simd;
//   - names matmul/<impl>/<n> (bench_ops): GFLOP/s per implementation (the "GFLOP/s" counter if
//     present, else 2 n^3 / time) and the ratio of each one to cblas.
// With repetitions, the median aggregate is used when present, else the fastest repetition.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

struct Run {
  double ns = 0;          // real time per iteration
  double gflops = -1;     // the "GFLOP/s" counter, if any
  bool from_median = false;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

double to_ns(double t, const std::string& unit) {
  if (unit == "us") return t * 1e3;
  if (unit == "ms") return t * 1e6;
  if (unit == "s") return t * 1e9;
  return t;  // "ns"
}

std::string format_time(double ns) {
  char buf[32];
  if (ns < 1e3) std::snprintf(buf, sizeof buf, "%.1f ns", ns);
  else if (ns < 1e6) std::snprintf(buf, sizeof buf, "%.2f us", ns / 1e3);
  else if (ns < 1e9) std::snprintf(buf, sizeof buf, "%.2f ms", ns / 1e6);
  else std::snprintf(buf, sizeof buf, "%.2f s", ns / 1e9);
  return buf;
}

// The runs by benchmark name (aggregate suffixes like "_median" removed), in file order.
std::vector<std::pair<std::string, Run>> read_runs(const nlohmann::json& doc) {
  std::vector<std::pair<std::string, Run>> runs;
  std::map<std::string, std::size_t> index;
  for (const auto& b : doc.value("benchmarks", nlohmann::json::array())) {
    const std::string run_type = b.value("run_type", "iteration");
    const std::string aggregate = b.value("aggregate_name", "");
    if (run_type == "aggregate" && aggregate != "median") continue;
    if (b.contains("error_occurred") && b["error_occurred"].get<bool>()) continue;
    // "run_name" is the name without the aggregate suffix (older files: strip it ourselves)
    std::string name = b.value("run_name", b.value("name", ""));
    if (run_type == "aggregate" && name.size() > 7 && name.ends_with("_median")) name.resize(name.size() - 7);
    Run run;
    run.ns = to_ns(b.value("real_time", 0.0), b.value("time_unit", "ns"));
    if (b.contains("GFLOP/s")) run.gflops = b["GFLOP/s"].get<double>();
    run.from_median = run_type == "aggregate";
    auto it = index.find(name);
    if (it == index.end()) {
      index[name] = runs.size();
      runs.emplace_back(name, run);
    } else {
      Run& old = runs[it->second].second;
      if (run.from_median || (!old.from_median && run.ns < old.ns)) old = run;
    }
  }
  return runs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s BENCHMARK.json\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "bench_summary: cannot open %s\n", argv[1]);
    return 1;
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "bench_summary: %s is not valid JSON: %s\n", argv[1], e.what());
    return 1;
  }
  const auto runs = read_runs(doc);
  const auto context = doc.value("context", nlohmann::json::object());
  std::printf("%s", argv[1]);
  if (context.contains("highway_target")) std::printf("  (Highway target: %s)", context["highway_target"].get<std::string>().c_str());
  std::printf("\n");

  // 1) simd vs scalar: key = the name without its implementation part
  std::vector<std::string> keys;
  std::map<std::string, std::map<std::string, Run>> by_key;
  // 2) matmul: n -> impl -> run
  std::vector<std::string> matmul_sizes, matmul_impls;
  std::map<std::string, std::map<std::string, Run>> matmul;
  for (const auto& [name, run] : runs) {
    const auto parts = split(name, '/');
    if (parts.size() == 3 && parts[0] == "matmul") {
      const std::string& impl = parts[1];
      const std::string& n = parts[2];
      if (!matmul.count(n)) matmul_sizes.push_back(n);
      if (std::find(matmul_impls.begin(), matmul_impls.end(), impl) == matmul_impls.end()) matmul_impls.push_back(impl);
      matmul[n][impl] = run;
    } else if (parts.size() >= 3 && (parts[1] == "simd" || parts[1] == "scalar")) {
      std::string key = parts[0];
      for (std::size_t i = 2; i < parts.size(); ++i) key += (i == 2 ? " " : "/") + parts[i];
      if (!by_key.count(key)) keys.push_back(key);
      by_key[key][parts[1]] = run;
    }
  }

  bool any = false;
  for (const auto& key : keys) {
    const auto& impls = by_key[key];
    if (!impls.count("simd") || !impls.count("scalar")) continue;
    if (!any) std::printf("\n%-40s %12s %12s %13s\n", "kernel type/size", "scalar", "simd", "scalar/simd");
    any = true;
    const double scalar = impls.at("scalar").ns, simd = impls.at("simd").ns;
    std::printf("%-40s %12s %12s %12.1fx\n", key.c_str(), format_time(scalar).c_str(), format_time(simd).c_str(),
                scalar / simd);
  }

  if (!matmul_sizes.empty()) {
    // cblas is the baseline column; every other implementation gets a ratio to it
    std::stable_partition(matmul_impls.begin(), matmul_impls.end(), [](const std::string& s) { return s != "cblas"; });
    std::printf("\nmatmul GFLOP/s\n%-8s", "n");
    for (const auto& impl : matmul_impls) std::printf(" %10s", impl.c_str());
    const bool has_cblas = std::find(matmul_impls.begin(), matmul_impls.end(), "cblas") != matmul_impls.end();
    if (has_cblas)
      for (const auto& impl : matmul_impls)
        if (impl != "cblas") std::printf(" %14s", (impl + "/cblas").c_str());
    std::printf("\n");
    for (const auto& n : matmul_sizes) {
      std::printf("%-8s", n.c_str());
      std::map<std::string, double> gflops;
      for (const auto& impl : matmul_impls) {
        const auto it = matmul[n].find(impl);
        if (it == matmul[n].end()) {
          std::printf(" %10s", "-");
          continue;
        }
        double g = it->second.gflops;
        if (g < 0) {  // no counter: 2 n^3 flops for an n x n by n x n product
          const double size = std::atof(n.c_str());
          g = 2 * size * size * size / it->second.ns;
        }
        gflops[impl] = g;
        std::printf(" %10.1f", g);
      }
      if (has_cblas)
        for (const auto& impl : matmul_impls) {
          if (impl == "cblas") continue;
          if (gflops.count(impl) && gflops.count("cblas") && gflops["cblas"] > 0)
            std::printf(" %13.2fx", gflops[impl] / gflops["cblas"]);
          else
            std::printf(" %14s", "-");
        }
      std::printf("\n");
    }
    any = true;
  }
  if (!any) std::printf("(no simd/scalar pairs or matmul/<impl>/<n> benchmarks in this file)\n");
  return 0;
}
