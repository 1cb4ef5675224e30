#pragma once
// Archive object formats and names (docs/formats/archive.md is normative).
//
//   chunk ("TMCHUNK1"): a run of committed WAL entries [first, last], zstd
//     compressed, hash-chained to the previous chunk of its timeline by
//     prev_digest, ending in a SHA-256 trailer over every byte before it.
//   base  ("TMBASE01"): a full logical snapshot (docs/formats/snapshot.md)
//     of the store at WAL index `index`, zstd compressed, SHA-256 trailer.
//
// All functions are pure and thread-safe. Decoding never trusts its input:
// every failure is kCorruption with a message naming `object` (the object
// name passed in) and what is wrong.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "wal/entry.h"

namespace tidemark::archive {

using Digest = std::array<uint8_t, 32>;  // SHA-256

Digest Sha256(std::string_view data);
std::string DigestHex(const Digest& d);
std::string TimelineHex(uint64_t timeline);

inline constexpr size_t kChunkHeaderSize = 8 + 4 + 4 + 8 * 3 + 8 * 2 + 4 + 32 + 8 + 8 + 4;
inline constexpr size_t kTrailerSize = 32;
inline constexpr uint32_t kChunkFlagChainStart = 1;  // no predecessor (timeline start / gap)

struct ChunkHeader {
  uint32_t version = 1;
  uint32_t flags = 0;
  uint64_t timeline = 0;
  uint64_t first_index = 0;
  uint64_t last_index = 0;
  int64_t first_unix_nanos = 0;
  int64_t last_unix_nanos = 0;
  uint32_t entry_count = 0;
  Digest prev_digest{};  // digest of the previous chunk; zero with kChunkFlagChainStart
  uint64_t raw_bytes = 0;         // uncompressed body size
  uint64_t compressed_bytes = 0;  // zstd frame size
};

struct EncodedChunk {
  ChunkHeader header;
  std::string bytes;  // the whole object
  Digest digest{};    // == trailer == SHA-256(bytes without trailer)
};

// Encodes `entries` (non-empty, contiguous indexes) as one chunk object.
// `prev` is nullopt for a chain start.
Result<EncodedChunk> EncodeChunk(uint64_t timeline, const std::vector<wal::Entry>& entries,
                                 const std::optional<Digest>& prev, int zstd_level = 3);

struct DecodedChunk {
  ChunkHeader header;
  Digest digest{};
  std::vector<wal::Entry> entries;  // empty when decode_entries was false
};

// Verifies size, trailer digest, header CRC and (if decode_entries) the body:
// decompressed size, entry count, contiguous indexes matching the header.
Result<DecodedChunk> DecodeChunk(std::string_view object, std::string_view bytes,
                                 bool decode_entries = true);

struct BaseHeader {
  uint32_t version = 1;
  uint64_t timeline = 0;
  uint64_t index = 0;       // WAL index the snapshot reflects (store applied index)
  int64_t revision = 0;     // store revision at that index
  int64_t unix_nanos = 0;   // wall time the snapshot was taken (>= commit time of `index`)
  uint64_t raw_bytes = 0;
  uint64_t compressed_bytes = 0;
};
inline constexpr size_t kBaseHeaderSize = 8 + 4 + 8 * 6 + 4;

// Builds a whole base object in memory (small snapshots and tests; the
// archiver streams bases through a file instead: archive/base_file.h, same
// bytes).
Result<std::string> EncodeBase(const BaseHeader& header, std::string_view snapshot,
                               int zstd_level = 3);
struct DecodedBase {
  BaseHeader header;
  std::string snapshot;  // the TMSNAP01 bytes (empty when !decode_body)
};
// Checks and decodes a whole base object held in memory (see
// archive/base_file.h for the bounded-memory reader of base files).
Result<DecodedBase> DecodeBase(std::string_view object, std::string_view bytes,
                               bool decode_body = true);

// The kBaseHeaderSize-byte header of a base object: every field of `header`
// (raw_bytes and compressed_bytes included) and the CRC32C.
std::string EncodeBaseHeader(const BaseHeader& header);
// Parses the first kBaseHeaderSize bytes of a base object (`header` must
// hold at least that many) and checks magic, header CRC and version.
// kCorruption naming `object` and the byte range; kFailedPrecondition for a
// newer format version.
Result<BaseHeader> DecodeBaseHeader(std::string_view object, std::string_view header);

// ---- object names (relative to the archive root) ----
std::string TimelineDir(uint64_t timeline);  // "tl-<16 hex>/"
// Chunks are named by their FIRST index only, and created with PutIfAbsent:
// two writers continuing a timeline from the same point collide on the name,
// so they can never interleave silently (the loser is fenced).
std::string ChunkName(uint64_t timeline, uint64_t first);
std::string BaseName(uint64_t timeline, uint64_t index, int64_t revision, int64_t unix_nanos);
std::string TimelineRecordName(int64_t created_unix_ms, uint64_t timeline);
std::string ManifestName(uint64_t timeline);
// Gap record: entries [from, to] of the timeline are not in any chunk.
std::string GapName(uint64_t timeline, uint64_t from, uint64_t to);
bool ParseGapName(std::string_view name, uint64_t* timeline, uint64_t* from, uint64_t* to);
std::string HeartbeatName(uint64_t timeline);
// HashKV record: the store's HashKV at `revision`, state after entry `index`.
std::string HashKVName(uint64_t timeline, uint64_t index, int64_t revision);
bool ParseHashKVName(std::string_view name, uint64_t* timeline, uint64_t* index,
                     int64_t* revision);

// Parsers return false when `name` is not of that kind.
bool ParseChunkName(std::string_view name, uint64_t* timeline, uint64_t* first);
bool ParseBaseName(std::string_view name, uint64_t* timeline, uint64_t* index, int64_t* revision,
                   int64_t* unix_ms);
bool ParseTimelineRecordName(std::string_view name, int64_t* created_ms, uint64_t* timeline);

// RFC 3339 with optional fraction ("2026-11-21T10:00:00.123Z", "+01:00"
// offsets) <-> Unix nanoseconds (ms precision kept on output).
Result<int64_t> ParseRfc3339(std::string_view s);
std::string FormatRfc3339(int64_t unix_nanos);

}  // namespace tidemark::archive
