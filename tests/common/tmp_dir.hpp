#pragma once
// TmpDir dir("ckpt"): a fresh directory for one test case (<tmp>/attnlab_ckpt_<pid>_<n>), removed
// with everything in it when the test case ends. dir.file("x.safetensors") names a file in it.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

struct TmpDir {
  std::filesystem::path path;
  explicit TmpDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("attnlab_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TmpDir(const TmpDir&) = delete;
  TmpDir& operator=(const TmpDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};
