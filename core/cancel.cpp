#include "core/cancel.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "core/error.hpp"

namespace lungvol {
namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");
char g_notice[512] = {0};
struct sigaction g_old_int {}, g_old_term {};

extern "C" void on_signal(int sig) {
  if (g_interrupted.exchange(true)) {
    // Second signal: the default action (terminate), now.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  const std::size_t n = std::strlen(g_notice);
  if (n) {
    [[maybe_unused]] const auto w = ::write(STDERR_FILENO, g_notice, n);
  }
}

}  // namespace

void request_interrupt() { g_interrupted = true; }
bool interrupt_requested() { return g_interrupted.load(); }
void clear_interrupt() { g_interrupted = false; }

void throw_if_interrupted() {
  if (g_interrupted.load()) throw Error(ExitCode::kInterrupted, "interrupted");
}

InterruptHandler::InterruptHandler(const std::string& notice) {
  std::strncpy(g_notice, notice.c_str(), sizeof g_notice - 1);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptHandler::~InterruptHandler() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
}

}  // namespace lungvol
