#include "archive/format.h"

#include <openssl/sha.h>
#include <zstd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "base/coding.h"
#include "base/crc32c.h"

namespace tidemark::archive {
namespace {

constexpr char kChunkMagic[8] = {'T', 'M', 'C', 'H', 'U', 'N', 'K', '1'};
constexpr char kBaseMagic[8] = {'T', 'M', 'B', 'A', 'S', 'E', '0', '1'};
constexpr size_t kEntryHeader = 8 + 8 + 8 + 4;

void PutU32(std::string* s, uint32_t v) {
  char b[4];
  EncodeFixed32(b, v);
  s->append(b, 4);
}
void PutU64(std::string* s, uint64_t v) {
  char b[8];
  EncodeFixed64(b, v);
  s->append(b, 8);
}

Status Corrupt(std::string_view object, const std::string& what) {
  return CorruptionError("archive: object " + std::string(object) + ": " + what);
}

Result<std::string> Compress(std::string_view raw, int level) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

Status Decompress(std::string_view object, std::string_view comp, uint64_t raw_bytes,
                  std::string* out) {
  if (raw_bytes > (4ull << 30)) return Corrupt(object, "implausible uncompressed size");
  out->assign(raw_bytes, '\0');
  size_t n = ZSTD_decompress(out->data(), out->size(), comp.data(), comp.size());
  if (ZSTD_isError(n)) {
    return Corrupt(object, std::string("zstd body does not decompress: ") + ZSTD_getErrorName(n));
  }
  if (n != raw_bytes) return Corrupt(object, "decompressed size differs from the header");
  return Status::Ok();
}

// Checks the trailer; returns the digest.
Result<Digest> CheckTrailer(std::string_view object, std::string_view bytes, size_t min_size) {
  if (bytes.size() < min_size + kTrailerSize) {
    return Corrupt(object, "truncated (" + std::to_string(bytes.size()) + " bytes)");
  }
  Digest d = Sha256(bytes.substr(0, bytes.size() - kTrailerSize));
  if (std::memcmp(d.data(), bytes.data() + bytes.size() - kTrailerSize, kTrailerSize) != 0) {
    return Corrupt(object, "SHA-256 trailer mismatch (corrupted or truncated)");
  }
  return d;
}

bool ParseU64(std::string_view s, uint64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t r = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    r = r * 10 + static_cast<uint64_t>(c - '0');
  }
  *v = r;
  return true;
}

bool ParseHex(std::string_view s, uint64_t* v) {
  if (s.size() != 16) return false;
  uint64_t r = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    r = (r << 4) | static_cast<uint64_t>(d);
  }
  *v = r;
  return true;
}

std::string Pad(uint64_t v, int width) {
  char b[32];
  std::snprintf(b, sizeof b, "%0*" PRIu64, width, v);
  return b;
}

// "tl-<hex>/<kind>/<rest>" -> timeline, rest.
bool SplitTimelinePath(std::string_view name, std::string_view kind, uint64_t* tl,
                       std::string_view* rest) {
  if (name.size() < 3 + 16 + 1 || name.substr(0, 3) != "tl-") return false;
  if (!ParseHex(name.substr(3, 16), tl)) return false;
  std::string_view r = name.substr(19);
  std::string prefix = "/" + std::string(kind) + "/";
  if (r.substr(0, prefix.size()) != prefix) return false;
  *rest = r.substr(prefix.size());
  return true;
}

}  // namespace

Digest Sha256(std::string_view data) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return d;
}

std::string DigestHex(const Digest& d) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

std::string TimelineHex(uint64_t timeline) {
  char b[17];
  std::snprintf(b, sizeof b, "%016" PRIx64, timeline);
  return b;
}

Result<EncodedChunk> EncodeChunk(uint64_t timeline, const std::vector<wal::Entry>& entries,
                                 const std::optional<Digest>& prev, int zstd_level) {
  if (entries.empty()) return InvalidArgumentError("archive: empty chunk");
  std::string raw;
  size_t total = 0;
  for (const auto& e : entries) total += kEntryHeader + e.payload.size();
  raw.reserve(total);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (i > 0 && e.index != entries[i - 1].index + 1) {
      return InvalidArgumentError("archive: chunk entries are not contiguous");
    }
    PutU64(&raw, e.index);
    PutU64(&raw, e.term);
    PutU64(&raw, static_cast<uint64_t>(e.unix_nanos));
    PutU32(&raw, static_cast<uint32_t>(e.payload.size()));
    raw.append(e.payload);
  }
  TM_ASSIGN_OR_RETURN(std::string comp, Compress(raw, zstd_level));
  EncodedChunk c;
  ChunkHeader& h = c.header;
  h.flags = prev ? 0 : kChunkFlagChainStart;
  h.timeline = timeline;
  h.first_index = entries.front().index;
  h.last_index = entries.back().index;
  h.first_unix_nanos = entries.front().unix_nanos;
  h.last_unix_nanos = entries.back().unix_nanos;
  h.entry_count = static_cast<uint32_t>(entries.size());
  if (prev) h.prev_digest = *prev;
  h.raw_bytes = raw.size();
  h.compressed_bytes = comp.size();
  std::string& b = c.bytes;
  b.reserve(kChunkHeaderSize + comp.size() + kTrailerSize);
  b.append(kChunkMagic, 8);
  PutU32(&b, h.version);
  PutU32(&b, h.flags);
  PutU64(&b, h.timeline);
  PutU64(&b, h.first_index);
  PutU64(&b, h.last_index);
  PutU64(&b, static_cast<uint64_t>(h.first_unix_nanos));
  PutU64(&b, static_cast<uint64_t>(h.last_unix_nanos));
  PutU32(&b, h.entry_count);
  b.append(reinterpret_cast<const char*>(h.prev_digest.data()), 32);
  PutU64(&b, h.raw_bytes);
  PutU64(&b, h.compressed_bytes);
  PutU32(&b, crc32c::Value(b));
  b.append(comp);
  c.digest = Sha256(b);
  b.append(reinterpret_cast<const char*>(c.digest.data()), 32);
  return c;
}

Result<DecodedChunk> DecodeChunk(std::string_view object, std::string_view bytes,
                                 bool decode_entries) {
  TM_ASSIGN_OR_RETURN(Digest digest, CheckTrailer(object, bytes, kChunkHeaderSize));
  if (std::memcmp(bytes.data(), kChunkMagic, 8) != 0) return Corrupt(object, "bad chunk magic");
  const char* p = bytes.data() + 8;
  DecodedChunk d;
  d.digest = digest;
  ChunkHeader& h = d.header;
  h.version = DecodeFixed32(p); p += 4;
  h.flags = DecodeFixed32(p); p += 4;
  h.timeline = DecodeFixed64(p); p += 8;
  h.first_index = DecodeFixed64(p); p += 8;
  h.last_index = DecodeFixed64(p); p += 8;
  h.first_unix_nanos = static_cast<int64_t>(DecodeFixed64(p)); p += 8;
  h.last_unix_nanos = static_cast<int64_t>(DecodeFixed64(p)); p += 8;
  h.entry_count = DecodeFixed32(p); p += 4;
  std::memcpy(h.prev_digest.data(), p, 32); p += 32;
  h.raw_bytes = DecodeFixed64(p); p += 8;
  h.compressed_bytes = DecodeFixed64(p); p += 8;
  uint32_t crc = DecodeFixed32(p);
  if (crc != crc32c::Value(bytes.substr(0, kChunkHeaderSize - 4))) {
    return Corrupt(object, "chunk header CRC mismatch");
  }
  if (h.version != 1) {
    return FailedPreconditionError("archive: object " + std::string(object) +
                                   ": chunk format version " + std::to_string(h.version) +
                                   " is newer than this binary understands");
  }
  if (h.last_index < h.first_index || h.entry_count != h.last_index - h.first_index + 1) {
    return Corrupt(object, "inconsistent index range / entry count in header");
  }
  if (kChunkHeaderSize + h.compressed_bytes + kTrailerSize != bytes.size()) {
    return Corrupt(object, "object size does not match the header (truncated or extended)");
  }
  if (!decode_entries) return d;
  std::string raw;
  TM_RETURN_IF_ERROR(Decompress(object, bytes.substr(kChunkHeaderSize, h.compressed_bytes),
                                h.raw_bytes, &raw));
  size_t off = 0;
  d.entries.reserve(h.entry_count);
  for (uint32_t i = 0; i < h.entry_count; ++i) {
    if (raw.size() - off < kEntryHeader) return Corrupt(object, "entry header past end of body");
    wal::Entry e;
    e.index = DecodeFixed64(raw.data() + off);
    e.term = DecodeFixed64(raw.data() + off + 8);
    e.unix_nanos = static_cast<int64_t>(DecodeFixed64(raw.data() + off + 16));
    uint32_t len = DecodeFixed32(raw.data() + off + 24);
    off += kEntryHeader;
    if (raw.size() - off < len) return Corrupt(object, "entry payload past end of body");
    e.payload.assign(raw.data() + off, len);
    off += len;
    if (e.index != h.first_index + i) return Corrupt(object, "entry index out of sequence");
    d.entries.push_back(std::move(e));
  }
  if (off != raw.size()) return Corrupt(object, "trailing bytes after the last entry");
  return d;
}

std::string EncodeBaseHeader(const BaseHeader& header) {
  std::string b;
  b.reserve(kBaseHeaderSize);
  b.append(kBaseMagic, 8);
  PutU32(&b, header.version);
  PutU64(&b, header.timeline);
  PutU64(&b, header.index);
  PutU64(&b, static_cast<uint64_t>(header.revision));
  PutU64(&b, static_cast<uint64_t>(header.unix_nanos));
  PutU64(&b, header.raw_bytes);
  PutU64(&b, header.compressed_bytes);
  PutU32(&b, crc32c::Value(b));
  return b;
}

Result<BaseHeader> DecodeBaseHeader(std::string_view object, std::string_view bytes) {
  if (bytes.size() < kBaseHeaderSize) {
    return Corrupt(object, "truncated (" + std::to_string(bytes.size()) + " bytes)");
  }
  if (std::memcmp(bytes.data(), kBaseMagic, 8) != 0) {
    return Corrupt(object, "bad base magic (bytes [0, 8))");
  }
  const char* p = bytes.data() + 8;
  BaseHeader h;
  h.version = DecodeFixed32(p); p += 4;
  h.timeline = DecodeFixed64(p); p += 8;
  h.index = DecodeFixed64(p); p += 8;
  h.revision = static_cast<int64_t>(DecodeFixed64(p)); p += 8;
  h.unix_nanos = static_cast<int64_t>(DecodeFixed64(p)); p += 8;
  h.raw_bytes = DecodeFixed64(p); p += 8;
  h.compressed_bytes = DecodeFixed64(p); p += 8;
  if (DecodeFixed32(p) != crc32c::Value(bytes.substr(0, kBaseHeaderSize - 4))) {
    return Corrupt(object, "base header CRC mismatch (header bytes [0, " +
                               std::to_string(kBaseHeaderSize - 4) + "), CRC at byte offset " +
                               std::to_string(kBaseHeaderSize - 4) + ")");
  }
  if (h.version != 1) {
    return FailedPreconditionError("archive: object " + std::string(object) +
                                   ": base format version is newer than this binary understands");
  }
  return h;
}

Result<std::string> EncodeBase(const BaseHeader& header, std::string_view snapshot,
                               int zstd_level) {
  TM_ASSIGN_OR_RETURN(std::string comp, Compress(snapshot, zstd_level));
  BaseHeader h = header;
  h.raw_bytes = snapshot.size();
  h.compressed_bytes = comp.size();
  std::string b = EncodeBaseHeader(h);
  b.reserve(kBaseHeaderSize + comp.size() + kTrailerSize);
  b.append(comp);
  Digest d = Sha256(b);
  b.append(reinterpret_cast<const char*>(d.data()), 32);
  return b;
}

Result<DecodedBase> DecodeBase(std::string_view object, std::string_view bytes,
                               bool decode_body) {
  TM_ASSIGN_OR_RETURN(Digest digest, CheckTrailer(object, bytes, kBaseHeaderSize));
  (void)digest;
  DecodedBase d;
  TM_ASSIGN_OR_RETURN(d.header, DecodeBaseHeader(object, bytes));
  const BaseHeader& h = d.header;
  if (kBaseHeaderSize + h.compressed_bytes + kTrailerSize != bytes.size()) {
    return Corrupt(object, "object size does not match the header (truncated or extended)");
  }
  if (!decode_body) return d;
  TM_RETURN_IF_ERROR(Decompress(object, bytes.substr(kBaseHeaderSize, h.compressed_bytes),
                                h.raw_bytes, &d.snapshot));
  return d;
}

std::string TimelineDir(uint64_t timeline) { return "tl-" + TimelineHex(timeline) + "/"; }

std::string ChunkName(uint64_t timeline, uint64_t first) {
  return TimelineDir(timeline) + "log/" + Pad(first, 20) + ".tmlog";
}

std::string BaseName(uint64_t timeline, uint64_t index, int64_t revision, int64_t unix_nanos) {
  return TimelineDir(timeline) + "base/" + Pad(index, 20) + "-" +
         Pad(static_cast<uint64_t>(revision), 20) + "-" +
         Pad(static_cast<uint64_t>(unix_nanos / 1000000), 13) + ".tmbase";
}

std::string TimelineRecordName(int64_t created_unix_ms, uint64_t timeline) {
  return "timelines/" + Pad(static_cast<uint64_t>(created_unix_ms), 13) + "-" +
         TimelineHex(timeline) + ".json";
}

std::string GapName(uint64_t timeline, uint64_t from, uint64_t to) {
  return TimelineDir(timeline) + "gap/" + Pad(from, 20) + "-" + Pad(to, 20) + ".json";
}

bool ParseGapName(std::string_view name, uint64_t* timeline, uint64_t* from, uint64_t* to) {
  std::string_view rest;
  if (!SplitTimelinePath(name, "gap", timeline, &rest)) return false;
  if (rest.size() != 20 + 1 + 20 + 5 || rest.substr(41) != ".json" || rest[20] != '-') return false;
  return ParseU64(rest.substr(0, 20), from) && ParseU64(rest.substr(21, 20), to);
}

std::string HashKVName(uint64_t timeline, uint64_t index, int64_t revision) {
  return TimelineDir(timeline) + "hashkv/" + Pad(index, 20) + "-" +
         Pad(static_cast<uint64_t>(revision), 20) + ".json";
}

bool ParseHashKVName(std::string_view name, uint64_t* timeline, uint64_t* index,
                     int64_t* revision) {
  std::string_view rest;
  if (!SplitTimelinePath(name, "hashkv", timeline, &rest)) return false;
  if (rest.size() != 20 + 1 + 20 + 5 || rest.substr(41) != ".json" || rest[20] != '-') return false;
  uint64_t rev = 0;
  if (!ParseU64(rest.substr(0, 20), index) || !ParseU64(rest.substr(21, 20), &rev)) return false;
  *revision = static_cast<int64_t>(rev);
  return true;
}

std::string ManifestName(uint64_t timeline) { return TimelineDir(timeline) + "manifest.json"; }
std::string HeartbeatName(uint64_t timeline) { return TimelineDir(timeline) + "heartbeat.json"; }

bool ParseChunkName(std::string_view name, uint64_t* timeline, uint64_t* first) {
  std::string_view rest;
  if (!SplitTimelinePath(name, "log", timeline, &rest)) return false;
  if (rest.size() != 20 + 6 || rest.substr(20) != ".tmlog") return false;
  return ParseU64(rest.substr(0, 20), first);
}

bool ParseBaseName(std::string_view name, uint64_t* timeline, uint64_t* index, int64_t* revision,
                   int64_t* unix_ms) {
  std::string_view rest;
  if (!SplitTimelinePath(name, "base", timeline, &rest)) return false;
  if (rest.size() != 20 + 1 + 20 + 1 + 13 + 7 || rest.substr(55) != ".tmbase") return false;
  uint64_t rev = 0, ms = 0;
  if (!ParseU64(rest.substr(0, 20), index) || !ParseU64(rest.substr(21, 20), &rev) ||
      !ParseU64(rest.substr(42, 13), &ms)) {
    return false;
  }
  *revision = static_cast<int64_t>(rev);
  *unix_ms = static_cast<int64_t>(ms);
  return true;
}

bool ParseTimelineRecordName(std::string_view name, int64_t* created_ms, uint64_t* timeline) {
  if (name.substr(0, 10) != "timelines/") return false;
  std::string_view rest = name.substr(10);
  if (rest.size() != 13 + 1 + 16 + 5 || rest.substr(30) != ".json") return false;
  uint64_t ms = 0;
  if (!ParseU64(rest.substr(0, 13), &ms) || !ParseHex(rest.substr(14, 16), timeline)) return false;
  *created_ms = static_cast<int64_t>(ms);
  return true;
}

Result<int64_t> ParseRfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM)
  auto bad = [&] {
    return InvalidArgumentError("time " + std::string(s) +
                                ": expected RFC 3339, e.g. 2026-11-21T10:00:00.123Z");
  };
  if (s.size() < 20) return bad();
  int Y, M, D, h, m, sec;
  if (std::sscanf(std::string(s.substr(0, 19)).c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d", &Y, &M,
                  &D, &h, &m, &sec) != 6) {
    return bad();
  }
  size_t i = 19;
  int64_t frac_nanos = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int64_t scale = 100000000;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      frac_nanos += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return bad();
  }
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh = std::atoi(std::string(s.substr(i + 1, 2)).c_str());
    int om = std::atoi(std::string(s.substr(i + 4, 2)).c_str());
    offset_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return bad();
  }
  if (i != s.size()) return bad();
  std::tm tm{};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset_s;
  return secs * 1000000000 + frac_nanos;
}

std::string FormatRfc3339(int64_t unix_nanos) {
  time_t secs = static_cast<time_t>(unix_nanos / 1000000000);
  int ms = static_cast<int>((unix_nanos % 1000000000) / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char b[64];
  std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return b;
}

}  // namespace tidemark::archive
