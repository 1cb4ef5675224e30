#include "mvcc/codec.h"

#include <fmt/format.h>

namespace tidemark::mvcc::codec {

void PutBE64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  dst->append(buf, 8);
}

void PutBE32(std::string* dst, uint32_t v) {
  char buf[4];
  for (int i = 3; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  dst->append(buf, 4);
}

uint64_t GetBE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  }
  return v;
}

uint32_t GetBE32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  }
  return v;
}

void PutVarint64(std::string* dst, uint64_t v) {
  while (v >= 0x80) {
    dst->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  dst->push_back(static_cast<char>(v));
}

bool GetVarint64(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0, i = 0; shift <= 63 && i < static_cast<int>(in->size()); shift += 7, ++i) {
    uint64_t byte = static_cast<uint8_t>((*in)[i]);
    if (shift == 63 && byte > 1) {
      return false;  // would overflow 64 bits
    }
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      in->remove_prefix(i + 1);
      *v = result;
      return true;
    }
  }
  return false;
}

// ---- kv CF keys ------------------------------------------------------------

void AppendEscaped(std::string* dst, std::string_view user_key) {
  for (char c : user_key) {
    dst->push_back(c);
    if (c == '\x00') {
      dst->push_back('\xff');
    }
  }
}

std::string KeyPrefix(std::string_view user_key) {
  std::string out;
  out.reserve(user_key.size() + 2 + kRevBytes);
  AppendEscaped(&out, user_key);
  out.append(kTerminator, 2);
  return out;
}

std::string KvKey(std::string_view user_key, int64_t revision) {
  std::string out = KeyPrefix(user_key);
  // Bitwise NOT of a non-negative revision: newer versions sort first.
  PutBE64(&out, ~static_cast<uint64_t>(revision));
  return out;
}

std::string PastKey(std::string_view prefix) {
  std::string out(prefix);
  out.back() = '\x02';
  return out;
}

std::string EscapedBound(std::string_view range_end) {
  std::string out;
  out.reserve(range_end.size() + 1);
  AppendEscaped(&out, range_end);
  return out;
}

Result<KvKeyParts> SplitKvKey(std::string_view raw) {
  if (raw.size() < 2 + kRevBytes || raw[raw.size() - kRevBytes - 2] != '\x00' ||
      raw[raw.size() - kRevBytes - 1] != '\x01') {
    return CorruptionError(fmt::format("mvcc: malformed kv key {}", EscapeForLog(raw)));
  }
  KvKeyParts parts;
  parts.prefix = raw.substr(0, raw.size() - kRevBytes);
  parts.revision = static_cast<int64_t>(~GetBE64(raw.data() + raw.size() - kRevBytes));
  return parts;
}

Result<std::string> UnescapePrefix(std::string_view prefix) {
  std::string out;
  out.reserve(prefix.size());
  size_t n = prefix.size() - 2;  // drop the terminator (SplitKvKey checked it)
  for (size_t i = 0; i < n; ++i) {
    out.push_back(prefix[i]);
    if (prefix[i] == '\x00') {
      if (i + 1 >= n || prefix[i + 1] != '\xff') {
        return CorruptionError(fmt::format("mvcc: bad key escape in {}", EscapeForLog(prefix)));
      }
      ++i;
    }
  }
  return out;
}

// ---- kv CF values ----------------------------------------------------------

std::string EncodeLive(const KeyValue& kv) {
  std::string out;
  out.reserve(1 + 30 + kv.value.size());
  out.push_back(static_cast<char>(kRecordLive));
  PutVarint64(&out, static_cast<uint64_t>(kv.create_revision));
  PutVarint64(&out, static_cast<uint64_t>(kv.version));
  PutVarint64(&out, static_cast<uint64_t>(kv.lease));
  out.append(kv.value);
  return out;
}

std::string EncodeTombstone() {
  return std::string(1, static_cast<char>(kRecordTombstone));
}

Result<bool> IsTombstone(std::string_view record) {
  if (record.empty()) {
    return CorruptionError("mvcc: empty kv record");
  }
  auto kind = static_cast<uint8_t>(record[0]);
  if (kind == kRecordLive) {
    return false;
  }
  if (kind == kRecordTombstone) {
    return true;
  }
  return CorruptionError(fmt::format("mvcc: unknown kv record kind 0x{:02x}", kind));
}

Status DecodeLive(std::string_view record, bool skip_value, KeyValue* kv) {
  if (record.empty() || static_cast<uint8_t>(record[0]) != kRecordLive) {
    return CorruptionError("mvcc: expected a live kv record");
  }
  record.remove_prefix(1);
  uint64_t create = 0;
  uint64_t version = 0;
  uint64_t lease = 0;
  if (!GetVarint64(&record, &create) || !GetVarint64(&record, &version) ||
      !GetVarint64(&record, &lease)) {
    return CorruptionError("mvcc: truncated kv record header");
  }
  kv->create_revision = static_cast<int64_t>(create);
  kv->version = static_cast<int64_t>(version);
  kv->lease = static_cast<int64_t>(lease);
  if (skip_value) {
    kv->value.clear();
  } else {
    kv->value.assign(record.data(), record.size());
  }
  return Status::Ok();
}

// ---- history CF ------------------------------------------------------------

std::string HistoryKey(int64_t revision, uint32_t sub) {
  std::string out;
  out.reserve(12);
  PutBE64(&out, static_cast<uint64_t>(revision));
  PutBE32(&out, sub);
  return out;
}

std::string HistoryValue(EventType type, std::string_view user_key) {
  std::string out;
  out.reserve(1 + user_key.size());
  out.push_back(static_cast<char>(type == EventType::kPut ? kHistoryPut : kHistoryDelete));
  out.append(user_key);
  return out;
}

std::string HistoryInlinePutValue(const KeyValue& kv) {
  std::string out;
  out.push_back(static_cast<char>(kHistoryInlinePut));
  PutVarint64(&out, kv.key.size());
  out.append(kv.key);
  out.append(EncodeLive(kv));
  return out;
}

Result<HistoryEntry> DecodeHistory(std::string_view raw_key, std::string_view raw_value) {
  if (raw_key.size() != 12 || raw_value.empty()) {
    return CorruptionError(fmt::format("mvcc: malformed history entry {}", EscapeForLog(raw_key)));
  }
  HistoryEntry e;
  e.revision = static_cast<int64_t>(GetBE64(raw_key.data()));
  e.sub = GetBE32(raw_key.data() + 8);
  auto kind = static_cast<uint8_t>(raw_value[0]);
  if (kind == kHistoryPut) {
    e.type = EventType::kPut;
  } else if (kind == kHistoryDelete) {
    e.type = EventType::kDelete;
  } else if (kind == kHistoryInlinePut) {
    std::string_view in = raw_value.substr(1);
    uint64_t key_len = 0;
    if (!GetVarint64(&in, &key_len) || key_len > in.size()) {
      return CorruptionError(
          fmt::format("mvcc: bad inline history put at revision {}", e.revision));
    }
    KeyValue kv;
    kv.key.assign(in.data(), key_len);
    kv.mod_revision = e.revision;
    TM_RETURN_IF_ERROR(DecodeLive(in.substr(key_len), /*skip_value=*/false, &kv));
    e.type = EventType::kPut;
    e.key = kv.key;
    e.inline_kv = std::move(kv);
    return e;
  } else {
    return CorruptionError(
        fmt::format("mvcc: unknown history kind 0x{:02x} at revision {}", kind, e.revision));
  }
  e.key.assign(raw_value.data() + 1, raw_value.size() - 1);
  return e;
}

// ---- meta CF ---------------------------------------------------------------

std::string EncodeU64(uint64_t v) {
  std::string out;
  PutBE64(&out, v);
  return out;
}

Result<uint64_t> DecodeU64(std::string_view raw, std::string_view what) {
  if (raw.size() != 8) {
    return CorruptionError(fmt::format("mvcc: meta {} has {} bytes, want 8", what, raw.size()));
  }
  return GetBE64(raw.data());
}

std::string EscapeForLog(std::string_view key) {
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

}  // namespace tidemark::mvcc::codec
