#pragma once
// SHA-256 for provenance: every output row names the hash of its inputs and protocol.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lungvol {

// Streaming SHA-256 by libcrypto (EVP): it uses the CPU's SHA extensions where present, about
// 6x the speed of a portable implementation, which matters when hashing every input series.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::string hex_digest();  // finishes the hash

 private:
  void* ctx_;  // EVP_MD_CTX, kept out of this header
};

std::string sha256_hex(const std::string& bytes);
std::string sha256_file(const std::string& path);  // throws Error(kInput) when unreadable
// Hash over a list of files, e.g. a DICOM series: SHA-256 of the files' hex digests in the
// order given (files hashed in parallel). Names and folders do not enter the hash; io passes a
// series' files in slice order (by position along the slice normal), so renaming or moving
// files leaves a series' hash unchanged.
std::string sha256_files(std::vector<std::string> paths);

}  // namespace lungvol
