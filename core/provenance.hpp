#pragma once
#include <string>

namespace lungvol {

// UTC time as ISO 8601, e.g. 2026-11-22T10:00:00Z.
std::string utc_timestamp();
std::string host_name();
int set_thread_count(int threads);  // OpenMP; 0 = all cores; returns the count in force
int thread_count();

}  // namespace lungvol
