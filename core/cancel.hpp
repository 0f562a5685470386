#pragma once
// Cooperative interruption: Ctrl-C (SIGINT) or SIGTERM (e.g. a Slurm time limit) asks the
// running work to stop; long operations call throw_if_interrupted() between their stages, so a
// scan stops within seconds, removes its temporary output folder and leaves nothing half-done.
// A second signal ends the process at once (the default action).
#include <string>

namespace lungvol {

void request_interrupt();
bool interrupt_requested();
void clear_interrupt();
// Error(kInterrupted, "interrupted") when an interruption was requested.
void throw_if_interrupted();

// Installs the SIGINT / SIGTERM handlers for its lifetime: the first signal requests the
// interruption and prints `notice` on stderr (async-signal-safe), the second one terminates.
class InterruptHandler {
 public:
  explicit InterruptHandler(const std::string& notice);
  ~InterruptHandler();
  InterruptHandler(const InterruptHandler&) = delete;
  InterruptHandler& operator=(const InterruptHandler&) = delete;
};

}  // namespace lungvol
