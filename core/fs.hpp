#pragma once
// Output files appear whole or not at all: written under a temporary name, flushed, renamed.
#include <functional>
#include <ostream>
#include <string>

namespace lungvol {

void write_text_atomic(const std::string& path, const std::string& content);
// Calls `write` with a stream to a temporary file next to `path`, then renames it.
void write_stream_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
// Lets a writer that needs a file name (ITK, DCMTK) write to a temporary name first.
void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string& tmp_path)>& write);
void ensure_directory(const std::string& dir);  // throws Error(kOutput)
std::string read_text_file(const std::string& path);  // throws Error(kInput)

}  // namespace lungvol
