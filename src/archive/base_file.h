#pragma once
// Base snapshot objects (TMBASE01, docs/formats/archive.md) as LOCAL FILES,
// written and read with memory bounded by a constant whatever the snapshot
// size: two zstd contexts (a few MiB at level 3) and 1 MiB I/O buffers.
// The bytes are exactly those of EncodeBase/DecodeBase (format.h), which
// build and read whole objects in memory; either side reads the other's.
//
//   write:  BaseFileWriter::Create(path)   placeholder header
//           Append(piece)...               TMSNAP01 bytes -> streaming zstd -> file
//           Finish(header)                 end the frame, pwrite the real header
//                                          (raw/compressed sizes now known), read
//                                          the file once to compute the SHA-256
//                                          trailer, append it
//   read:   CheckBaseFile(object, fd)      pass 1: size, SHA-256 trailer, magic,
//                                          header CRC, version, size vs header
//           BaseBodyReader                 pass 2: the TMSNAP01 bytes, decompressed
//                                          as they are read; Finish() checks the size
//
// Errors: kCorruption naming the object and the byte offset (or range) of
// the problem; kFailedPrecondition for a newer format version; kIoError for
// local file failures, naming the file. Nothing here fsyncs: durability is
// ObjectStore::PutFile's job.
// Thread-safety: each object is used by one thread at a time; the free
// functions are thread-safe.

#include <zstd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "archive/format.h"
#include "base/status.h"

namespace tidemark::archive {

// A sequential source of bytes (the TMSNAP01 stream of a base, for
// RestoreSink::LoadBase).
class ByteReader {
 public:
  virtual ~ByteReader() = default;
  // Reads up to `n` (> 0) bytes into `buf`: the count read, 0 only at the
  // end of the stream. Errors name the object and the byte offset.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

// A ByteReader over bytes in memory (tests, small snapshots). `data` must
// outlive the reader.
class StringByteReader final : public ByteReader {
 public:
  explicit StringByteReader(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override;

 private:
  std::string_view data_;
};

// Reads `in` to its end into a string (tests and small snapshots only: the
// point of ByteReader is not to do this).
Result<std::string> ReadAll(ByteReader* in);

struct BaseFileInfo {
  BaseHeader header;  // as written (raw_bytes / compressed_bytes filled in)
  uint64_t size = 0;  // bytes of the whole object, trailer included
  Digest digest{};    // the trailer
};

class BaseFileWriter {
 public:
  // Creates (or truncates) `path`, mode 0644, and reserves the header.
  // kIoError naming the path.
  static Result<std::unique_ptr<BaseFileWriter>> Create(const std::string& path,
                                                        int zstd_level = 3);
  ~BaseFileWriter();  // closes the file; never removes it (the caller owns `path`)
  BaseFileWriter(const BaseFileWriter&) = delete;
  BaseFileWriter& operator=(const BaseFileWriter&) = delete;

  // Compresses and appends the next bytes of the TMSNAP01 stream; at most
  // one zstd output buffer is held. kIoError / kInternal (zstd).
  Status Append(std::string_view piece);
  // Ends the zstd frame and completes the object: `header` with raw_bytes
  // and compressed_bytes replaced by what was appended, then the SHA-256
  // trailer over [0, 64 + n), computed by reading the file once. Call once;
  // no Append after it.
  Result<BaseFileInfo> Finish(BaseHeader header);

 private:
  BaseFileWriter(std::string path, int fd, ZSTD_CCtx* cctx);
  Status Write(const char* data, size_t n);
  Status Compress(std::string_view in, ZSTD_EndDirective mode);

  const std::string path_;
  int fd_;
  ZSTD_CCtx* cctx_;
  std::vector<char> out_;     // one zstd output buffer
  uint64_t raw_bytes_ = 0;
  uint64_t offset_ = 0;       // file offset of the next write
  bool finished_ = false;
};

struct CheckedBase {
  BaseHeader header;
  uint64_t size = 0;  // object bytes (trailer included)
  Digest digest{};
};

// Pass 1 over an open base file: every check of DecodeBase(..., false)
// (size, SHA-256 trailer, magic, header CRC, version, size vs header), in
// the same order, reading the file once sequentially (pread; the fd's
// offset is unused). `object` names the object in errors.
Result<CheckedBase> CheckBaseFile(std::string_view object, int fd);

// Pass 2: the TMSNAP01 bytes of a base file checked by CheckBaseFile,
// decompressed as they are read. Detects a body that does not decompress,
// decompresses to more or fewer than header.raw_bytes, or has bytes after
// its zstd frame (each naming the object byte offset). `fd` must stay open
// while the reader is used.
class BaseBodyReader final : public ByteReader {
 public:
  BaseBodyReader(std::string object, int fd, const BaseHeader& header);
  ~BaseBodyReader() override;
  BaseBodyReader(const BaseBodyReader&) = delete;
  BaseBodyReader& operator=(const BaseBodyReader&) = delete;

  Result<size_t> Read(char* buf, size_t n) override;
  // Reads whatever is left (e.g. the snapshot's padding after its end
  // record) and checks that the body decompressed to exactly raw_bytes.
  Status Finish();
  uint64_t raw_read() const { return raw_; }

 private:
  Status Corrupt(const std::string& what) const;
  uint64_t ObjectOffset() const;  // object offset of the next compressed byte

  const std::string object_;
  const int fd_;
  const BaseHeader header_;
  ZSTD_DCtx* dctx_;
  std::vector<char> in_buf_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  uint64_t next_ = 0;   // body offset of the next byte to pread
  uint64_t raw_ = 0;    // decompressed bytes returned so far
  bool frame_done_ = false;
};

// The spool directory where the archiver builds base objects before they
// are uploaded (and where restores may download them): creates `dir` (and
// its parents) if missing and removes every "*.spool" file in it, the
// leftovers of a process that died while building or fetching a base. The
// caller must own `dir`. kIoError naming the path.
Status ResetSpoolDir(const std::string& dir);

}  // namespace tidemark::archive
