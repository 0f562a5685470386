#pragma once
// A tiny facade so libraries never include spdlog directly.
#include <string>

#include <fmt/format.h>

namespace lungvol::log {

enum class Level { kDebug, kInfo, kWarn, kError, kOff };

void set_level(Level level);
Level level_from_string(const std::string& name);  // debug|info|warn|error|off
void write(Level level, const std::string& message);

// A prefix for every log line of the calling thread, e.g. "S01 day10" while a batch worker
// analyzes that scan, so that the lines of parallel scans can be told apart: "[S01 day10] ...".
// Restores the previous context when it goes out of scope.
class ScopedContext {
 public:
  explicit ScopedContext(std::string context);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

 private:
  std::string previous_;
};
// The calling thread's context ("" when none); for handing it on to helper threads.
const std::string& context();

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace lungvol::log
