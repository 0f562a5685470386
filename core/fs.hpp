#pragma once
// Output files appear whole or not at all: written under a temporary name, flushed, renamed.
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace lungvol {

void write_text_atomic(const std::string& path, const std::string& content);
// Calls `write` with a stream to a temporary file next to `path`, then renames it.
void write_stream_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
// Lets a writer that needs a file name (ITK, DCMTK) write to a temporary name first.
void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string& tmp_path)>& write);
void ensure_directory(const std::string& dir);  // throws Error(kOutput)
std::string read_text_file(const std::string& path);  // throws Error(kInput)

// An output folder that appears whole or not at all: its content is written into a temporary
// folder beside it (".<name>.lungvol-tmp-<pid>-<n>") and swapped in by commit(), atomically
// where the file system can exchange two folders (Linux renameat2), else by two renames. An
// existing folder is replaced as a whole, so no file of an earlier run survives; it must be
// empty or hold only names `replaceable` accepts (what lungvol itself writes there), otherwise
// Error(kOutput) naming the foreign entries: lungvol never deletes files it did not write.
// Without commit() (an error, an interruption) the temporary folder and the parent folders this
// object created are removed. Temporary folders of processes that no longer run are removed
// when the next one is made beside them. Errors name `final_dir`, never the temporary name.
class StagedDirectory {
 public:
  StagedDirectory(const std::string& final_dir,
                  const std::function<bool(const std::string& entry_name)>& replaceable);
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;

  const std::string& path() const { return temp_; }        // write here
  const std::string& final_path() const { return final_; }
  bool replaces_existing() const { return existed_; }
  void commit();
  // Removes the temporary folder now (as the destructor would).
  void discard();
  // `message` with the temporary folder's path replaced by the final one.
  std::string with_final_path(const std::string& message) const;

 private:
  std::string final_, temp_;
  std::vector<std::string> created_parents_;  // deepest last
  bool existed_ = false, done_ = false;
};

}  // namespace lungvol
