#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace lungvol::log {
namespace {
// Logs go to stderr so that stdout stays clean for tables and JSON.
spdlog::logger& logger() {
  static auto instance = [] {
    auto l = spdlog::stderr_color_mt("lungvol");
    l->set_pattern("[%H:%M:%S] %^%l%$ %v");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *instance;
}
spdlog::level::level_enum to_spd(Level level) {
  switch (level) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
    case Level::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}
}  // namespace

void set_level(Level level) { logger().set_level(to_spd(level)); }

Level level_from_string(const std::string& name) {
  if (name == "debug") return Level::kDebug;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off" || name == "quiet") return Level::kOff;
  return Level::kInfo;
}

namespace {
thread_local std::string t_context;
}

ScopedContext::ScopedContext(std::string context) : previous_(std::move(t_context)) {
  t_context = std::move(context);
}
ScopedContext::~ScopedContext() { t_context = std::move(previous_); }
const std::string& context() { return t_context; }

void write(Level level, const std::string& message) {
  if (t_context.empty()) {
    logger().log(to_spd(level), message);
  } else {
    logger().log(to_spd(level), "[" + t_context + "] " + message);
  }
}

}  // namespace lungvol::log
