#include "core/hash.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>

#include "core/error.hpp"

namespace lungvol {
namespace {
EVP_MD_CTX* as_ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

[[noreturn]] void fail(const char* what) {
  throw Error(ExitCode::kProcessing, std::string("SHA-256 (libcrypto): ") + what + " failed");
}
}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) fail("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(as_ctx(ctx_), EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(as_ctx(ctx_));
    fail("EVP_DigestInit_ex");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(as_ctx(ctx_)); }

void Sha256::update(const void* data, std::size_t n) {
  if (n > 0 && EVP_DigestUpdate(as_ctx(ctx_), data, n) != 1) fail("EVP_DigestUpdate");
}

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(as_ctx(ctx_), md, &len) != 1) fail("EVP_DigestFinal_ex");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 0xf]);
  }
  return out;
}

std::string sha256_hex(const std::string& bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

namespace {
void hash_file_into(Sha256& h, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ExitCode::kInput, "cannot read '" + path + "'");
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    h.update(buf, static_cast<std::size_t>(in.gcount()));
  }
}
}  // namespace

std::string sha256_file(const std::string& path) {
  Sha256 h;
  hash_file_into(h, path);
  return h.hex_digest();
}

std::string sha256_files(std::vector<std::string> paths) {
  // The files are hashed in parallel; the series hash is the SHA-256 of their hex digests
  // in the order given, so it does not depend on the thread count (nor on file names).
  std::vector<std::string> digests(paths.size());
  std::string error;
#pragma omp parallel for schedule(dynamic, 4)
  for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(paths.size()); ++i) {
    try {
      digests[std::size_t(i)] = sha256_file(paths[std::size_t(i)]);
    } catch (const Error& e) {
#pragma omp critical(lungvol_sha256_files)
      if (error.empty()) error = e.what();
    }
  }
  if (!error.empty()) throw Error(ExitCode::kInput, error);
  Sha256 h;
  for (const auto& d : digests) h.update(d);
  return h.hex_digest();
}

}  // namespace lungvol
