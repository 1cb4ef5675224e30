#pragma once
// Byte encodings of the MVCC column families (docs/formats/storage.md is the
// normative description; keep the two in sync).
//
//   kv CF       key   = Escape(user_key) 0x00 0x01 BE64(~revision)
//               value = record (kind byte, then fields; see EncodeLive)
//   history CF  key   = BE64(revision) BE32(sub)
//               value = kind byte (1 put, 2 delete) user_key
//   meta CF     key   = "mvcc/<name>", value = BE64 unless noted
//
// Escape() maps 0x00 to 0x00 0xFF and leaves other bytes alone; together with
// the 0x00 0x01 terminator this keeps byte-wise order of user keys, including
// keys that are prefixes of each other, and all versions of one key are
// adjacent, newest first.
//
// Thread safety: pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "mvcc/types.h"

namespace tidemark::mvcc::codec {

// ---- primitives ------------------------------------------------------------

void PutBE64(std::string* dst, uint64_t v);
void PutBE32(std::string* dst, uint32_t v);
uint64_t GetBE64(const char* p);
uint32_t GetBE32(const char* p);
void PutVarint64(std::string* dst, uint64_t v);
// Parses a varint from the front of *in and advances it. False if malformed.
bool GetVarint64(std::string_view* in, uint64_t* v);

// ---- kv CF keys ------------------------------------------------------------

inline constexpr size_t kRevBytes = 8;
inline constexpr char kTerminator[] = {'\x00', '\x01'};

void AppendEscaped(std::string* dst, std::string_view user_key);
// Escape(user_key) 0x00 0x01: the common prefix of all versions of a key.
std::string KeyPrefix(std::string_view user_key);
// The kv CF key of (user_key, revision).
std::string KvKey(std::string_view user_key, int64_t revision);
// Sorts after every version of the key whose prefix is `prefix`, and before
// every greater user key (prefix with its last byte 0x01 replaced by 0x02).
std::string PastKey(std::string_view prefix);
// An exclusive iterator bound that admits exactly the user keys < range_end.
std::string EscapedBound(std::string_view range_end);

// Splits a raw kv CF key. kCorruption if malformed.
struct KvKeyParts {
  std::string_view prefix;  // Escape(user_key) 0x00 0x01
  int64_t revision = 0;
};
Result<KvKeyParts> SplitKvKey(std::string_view raw);
// Recovers the user key from a prefix produced by KeyPrefix().
Result<std::string> UnescapePrefix(std::string_view prefix);

// ---- kv CF values ----------------------------------------------------------

inline constexpr uint8_t kRecordLive = 0x01;       // a version with a value
inline constexpr uint8_t kRecordTombstone = 0x02;  // the key was deleted here

// Live record: 0x01 varint(create_revision) varint(version) varint(lease)
// value-bytes...   Tombstone record: the single byte 0x02.
std::string EncodeLive(const KeyValue& kv);
std::string EncodeTombstone();
// True if the record is a tombstone; kCorruption for unknown kinds.
Result<bool> IsTombstone(std::string_view record);
// Fills kv's create_revision, version, lease and (unless skip_value) value.
// kCorruption on a malformed or tombstone record.
Status DecodeLive(std::string_view record, bool skip_value, KeyValue* kv);

// ---- history CF ------------------------------------------------------------

inline constexpr uint8_t kHistoryPut = 0x01;
inline constexpr uint8_t kHistoryDelete = 0x02;
// A put whose kv entry was overwritten later in the same txn (the same key
// written twice at one revision): the version travels inline.
inline constexpr uint8_t kHistoryInlinePut = 0x03;

std::string HistoryKey(int64_t revision, uint32_t sub);
// 0x01|0x02 user_key
std::string HistoryValue(EventType type, std::string_view user_key);
// 0x03 varint(len(key)) key live-record (EncodeLive(kv))
std::string HistoryInlinePutValue(const KeyValue& kv);
struct HistoryEntry {
  int64_t revision = 0;
  uint32_t sub = 0;
  EventType type = EventType::kPut;
  std::string key;
  std::optional<KeyValue> inline_kv;  // set for kHistoryInlinePut
};
Result<HistoryEntry> DecodeHistory(std::string_view raw_key, std::string_view raw_value);

// ---- meta CF ---------------------------------------------------------------

inline constexpr char kMetaFormat[] = "mvcc/format";                 // BE32 format version
inline constexpr char kMetaAppliedIndex[] = "mvcc/applied_index";    // BE64
inline constexpr char kMetaCurrentRev[] = "mvcc/current_revision";   // BE64
inline constexpr char kMetaCompactRev[] = "mvcc/compact_revision";   // BE64 (scheduled)
inline constexpr char kMetaCompactDone[] = "mvcc/compact_finished";  // BE64 (physically done)
inline constexpr char kMetaKeyCount[] = "mvcc/key_count";            // BE64 live keys
// Present while a bulk replay defers the three records above
// (StoreOptions::defer_meta_writes); Store::Open refuses such a store.
inline constexpr char kMetaDeferred[] = "mvcc/meta_deferred";        // empty
inline constexpr uint32_t kFormatVersion = 1;

std::string EncodeU64(uint64_t v);
// kCorruption (naming `what`) if `raw` is not 8 bytes.
Result<uint64_t> DecodeU64(std::string_view raw, std::string_view what);

// Printable form of a user key for error messages (non-printables as \xNN).
std::string EscapeForLog(std::string_view key);

}  // namespace tidemark::mvcc::codec
