#pragma once
// SHA-256 for provenance: every output row names the hash of its inputs and protocol.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lungvol {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::string hex_digest();  // finishes the hash

 private:
  void block(const std::uint8_t* p);
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(const std::string& bytes);
std::string sha256_file(const std::string& path);  // throws Error(kInput) when unreadable
// Hash over a set of files, e.g. a DICOM series: SHA-256 of the files' hex digests in sorted
// path order (files hashed in parallel).
std::string sha256_files(std::vector<std::string> paths);

}  // namespace lungvol
