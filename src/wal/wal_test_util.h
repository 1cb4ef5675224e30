#pragma once
// Helpers shared by the wal tests. Test-only; not part of tm_wal.

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/coding.h"
#include "fs/file_system.h"
#include "wal/wal.h"

namespace tidemark::wal::testutil {

// Deterministic payload of `size` bytes that identifies (index, generation).
inline std::string MakePayload(uint64_t index, uint64_t generation, size_t size) {
  std::string p = "i" + std::to_string(index) + "g" + std::to_string(generation) + ":";
  uint64_t x = index * 0x9E3779B97F4A7C15ull ^ (generation + 1) * 0xC2B2AE3D27D4EB4Full;
  while (p.size() < size) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    p.push_back(static_cast<char>('a' + (x >> 59)));
  }
  p.resize(size);
  return p;
}

inline Entry MakeEntry(uint64_t index, size_t payload_size = 32, uint64_t generation = 0) {
  Entry e;
  e.index = index;
  e.term = 0;
  e.unix_nanos = 1'700'000'000'000'000'000 + static_cast<int64_t>(index);
  e.payload = MakePayload(index, generation, payload_size);
  return e;
}

// All durable entries from `first` on.
inline std::vector<Entry> ReadAll(const Wal& wal, uint64_t first) {
  std::vector<Entry> out;
  Status s = wal.ReadFrom(first, [&out](const Entry& e) {
    out.push_back(e);
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// Seed from $TM_TEST_SEED, else random; printed so a failure can be replayed.
inline uint64_t TestSeed() {
  const char* env = std::getenv("TM_TEST_SEED");  // NOLINT(concurrency-mt-unsafe): tests only
  uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 0) : std::random_device{}();
  std::printf("[ seed     ] TM_TEST_SEED=%llu\n", static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

// Overwrites bytes of a file in place (through the real file system).
inline void PokeFile(fs::FileSystem* fs, const std::string& path, uint64_t offset,
                     const std::string& bytes) {
  auto f = fs->ReopenWritableFile(path, offset);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Append(bytes).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
}

inline std::string ReadBytes(fs::FileSystem* fs, const std::string& path) {
  auto r = fs::ReadFileToString(fs, path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::string();
}

}  // namespace tidemark::wal::testutil
