#include "archive/base_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tidemark::archive {
namespace {

constexpr size_t kIoBuffer = 1 << 20;  // 1 MiB reads for hashing / decompression input

Status CorruptObject(std::string_view object, const std::string& what) {
  return CorruptionError("archive: object " + std::string(object) + ": " + what);
}

Status Errno(const std::string& what, std::string_view path) {
  return IoError("archive: " + what + " " + std::string(path) + ": " + std::strerror(errno));
}

std::string Off(uint64_t v) { return std::to_string(v); }

// Reads exactly n bytes at `off` (fewer only at end of file: *got says how many).
Status PreadFull(int fd, char* buf, size_t n, uint64_t off, size_t* got, std::string_view what) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoError("archive: read " + std::string(what) + " at byte offset " + Off(off + done) +
                     ": " + std::strerror(errno));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  *got = done;
  return Status::Ok();
}

Status PwriteFull(int fd, const char* buf, size_t n, uint64_t off, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd, buf + done, n - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path);
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

// SHA-256 of bytes [0, n) of fd, read sequentially in 1 MiB pieces.
Status HashPrefix(int fd, uint64_t n, std::string_view what, Digest* out) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return InternalError("archive: SHA-256 context");
  }
  std::vector<char> buf(kIoBuffer);
  uint64_t off = 0;
  while (off < n) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), n - off));
    size_t got = 0;
    TM_RETURN_IF_ERROR(PreadFull(fd, buf.data(), want, off, &got, what));
    if (got != want) {
      return IoError("archive: " + std::string(what) + " shrank while being read (at byte offset " +
                     Off(off + got) + ")");
    }
    EVP_DigestUpdate(ctx.get(), buf.data(), got);
    off += got;
  }
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), out->data(), &len);
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------- readers

Result<size_t> StringByteReader::Read(char* buf, size_t n) {
  size_t k = std::min(n, data_.size());
  std::memcpy(buf, data_.data(), k);
  data_.remove_prefix(k);
  return k;
}

Result<std::string> ReadAll(ByteReader* in) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    TM_ASSIGN_OR_RETURN(size_t n, in->Read(buf, sizeof buf));
    if (n == 0) return out;
    out.append(buf, n);
  }
}

// ---------------------------------------------------------------- writer

BaseFileWriter::BaseFileWriter(std::string path, int fd, ZSTD_CCtx* cctx)
    : path_(std::move(path)), fd_(fd), cctx_(cctx), out_(ZSTD_CStreamOutSize()) {}

BaseFileWriter::~BaseFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  ZSTD_freeCCtx(cctx_);
}

Result<std::unique_ptr<BaseFileWriter>> BaseFileWriter::Create(const std::string& path,
                                                               int zstd_level) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  if (cctx == nullptr) return InternalError("archive: zstd: cannot create a compression context");
  size_t r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, zstd_level);
  if (ZSTD_isError(r)) {
    ZSTD_freeCCtx(cctx);
    return InternalError(std::string("archive: zstd: ") + ZSTD_getErrorName(r));
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    ZSTD_freeCCtx(cctx);
    return Errno("create", path);
  }
  std::unique_ptr<BaseFileWriter> w(new BaseFileWriter(path, fd, cctx));
  // Placeholder header: rewritten by Finish once the sizes are known.
  const std::string zeros(kBaseHeaderSize, '\0');
  TM_RETURN_IF_ERROR(w->Write(zeros.data(), zeros.size()));
  return w;
}

Status BaseFileWriter::Write(const char* data, size_t n) {
  TM_RETURN_IF_ERROR(PwriteFull(fd_, data, n, offset_, path_));
  offset_ += n;
  return Status::Ok();
}

Status BaseFileWriter::Compress(std::string_view piece, ZSTD_EndDirective mode) {
  ZSTD_inBuffer in{piece.data(), piece.size(), 0};
  for (;;) {
    ZSTD_outBuffer out{out_.data(), out_.size(), 0};
    size_t left = ZSTD_compressStream2(cctx_, &out, &in, mode);
    if (ZSTD_isError(left)) return InternalError(std::string("archive: zstd: ") + ZSTD_getErrorName(left));
    TM_RETURN_IF_ERROR(Write(out_.data(), out.pos));
    // continue: done once the input is consumed; end: once the frame is flushed.
    if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return Status::Ok();
  }
}

Status BaseFileWriter::Append(std::string_view piece) {
  if (finished_) return InternalError("archive: base file " + path_ + ": Append after Finish");
  raw_bytes_ += piece.size();
  return Compress(piece, ZSTD_e_continue);
}

Result<BaseFileInfo> BaseFileWriter::Finish(BaseHeader header) {
  if (finished_) return InternalError("archive: base file " + path_ + ": Finish called twice");
  finished_ = true;
  TM_RETURN_IF_ERROR(Compress({}, ZSTD_e_end));
  BaseFileInfo info;
  info.header = header;
  info.header.raw_bytes = raw_bytes_;
  info.header.compressed_bytes = offset_ - kBaseHeaderSize;
  const std::string h = EncodeBaseHeader(info.header);
  TM_RETURN_IF_ERROR(PwriteFull(fd_, h.data(), h.size(), 0, path_));
  // The trailer covers the header, which is only final now: one more pass.
  TM_RETURN_IF_ERROR(HashPrefix(fd_, offset_, path_, &info.digest));
  TM_RETURN_IF_ERROR(Write(reinterpret_cast<const char*>(info.digest.data()), kTrailerSize));
  info.size = offset_;
  return info;
}

// ---------------------------------------------------------------- pass 1

Result<CheckedBase> CheckBaseFile(std::string_view object, int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("stat", object);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // Same checks, same order, as DecodeBase (CheckTrailer first).
  if (size < kBaseHeaderSize + kTrailerSize) {
    return CorruptObject(object, "truncated (" + Off(size) + " bytes): the object ends at byte offset " +
                               Off(size) + ", before the end of its header and trailer (" +
                               Off(kBaseHeaderSize + kTrailerSize) + " bytes)");
  }
  CheckedBase c;
  c.size = size;
  const uint64_t body_end = size - kTrailerSize;
  TM_RETURN_IF_ERROR(HashPrefix(fd, body_end, object, &c.digest));
  char tail[kTrailerSize];
  char head[kBaseHeaderSize];
  size_t got = 0;
  TM_RETURN_IF_ERROR(PreadFull(fd, tail, kTrailerSize, body_end, &got, object));
  if (got != kTrailerSize) return IoError("archive: " + std::string(object) + " shrank while being read");
  TM_RETURN_IF_ERROR(PreadFull(fd, head, kBaseHeaderSize, 0, &got, object));
  if (got != kBaseHeaderSize) return IoError("archive: " + std::string(object) + " shrank while being read");
  auto header = DecodeBaseHeader(object, std::string_view(head, kBaseHeaderSize));
  if (std::memcmp(c.digest.data(), tail, kTrailerSize) != 0) {
    // Say where, as far as the header can tell.
    std::string where;
    if (!header.ok()) {
      where = "; the header (bytes [0, " + Off(kBaseHeaderSize) + ")) is damaged too";
    } else {
      const uint64_t want = kBaseHeaderSize + header->compressed_bytes + kTrailerSize;
      if (want > size) {
        where = "; the header says the object is " + Off(want) + " bytes: truncated at byte offset " +
                Off(size);
      } else if (want < size) {
        where = "; the header says the object is " + Off(want) +
                " bytes: extended, bytes from offset " + Off(want) + " on are not part of it";
      } else {
        where = "; the body (bytes [" + Off(kBaseHeaderSize) + ", " + Off(body_end) +
                ")) or the trailer is damaged";
      }
    }
    return CorruptObject(object, "SHA-256 trailer mismatch (corrupted or truncated): the SHA-256 of "
                           "bytes [0, " + Off(body_end) + ") differs from the trailer at byte offset " +
                           Off(body_end) + where);
  }
  if (!header.ok()) return header.status();
  c.header = *header;
  if (kBaseHeaderSize + c.header.compressed_bytes + kTrailerSize != size) {
    return CorruptObject(object, "object size does not match the header (truncated or extended): " +
                               Off(size) + " bytes, the header says " +
                               Off(kBaseHeaderSize + c.header.compressed_bytes + kTrailerSize) +
                               " (trailer expected at byte offset " +
                               Off(kBaseHeaderSize + c.header.compressed_bytes) + ")");
  }
  return c;
}

// ---------------------------------------------------------------- pass 2

BaseBodyReader::BaseBodyReader(std::string object, int fd, const BaseHeader& header)
    : object_(std::move(object)), fd_(fd), header_(header), dctx_(ZSTD_createDCtx()) {}

BaseBodyReader::~BaseBodyReader() { ZSTD_freeDCtx(dctx_); }

Status BaseBodyReader::Corrupt(const std::string& what) const {
  return CorruptObject(object_, what);
}

uint64_t BaseBodyReader::ObjectOffset() const {
  return kBaseHeaderSize + next_ - (in_.size - in_.pos);
}

Result<size_t> BaseBodyReader::Read(char* buf, size_t n) {
  if (dctx_ == nullptr) return InternalError("archive: zstd: cannot create a decompression context");
  if (n == 0) return size_t{0};
  ZSTD_outBuffer out{buf, n, 0};
  while (out.pos == 0 && !frame_done_) {
    if (in_.pos == in_.size && next_ < header_.compressed_bytes) {
      in_buf_.resize(kIoBuffer);
      const size_t want = static_cast<size_t>(
          std::min<uint64_t>(in_buf_.size(), header_.compressed_bytes - next_));
      size_t got = 0;
      TM_RETURN_IF_ERROR(PreadFull(fd_, in_buf_.data(), want, kBaseHeaderSize + next_, &got, object_));
      if (got != want) {
        return Corrupt("zstd body does not decompress: the file ends at byte offset " +
                       Off(kBaseHeaderSize + next_ + got));
      }
      in_ = ZSTD_inBuffer{in_buf_.data(), got, 0};
      next_ += got;
    }
    const size_t in_before = in_.pos;
    const size_t r = ZSTD_decompressStream(dctx_, &out, &in_);
    if (ZSTD_isError(r)) {
      return Corrupt(std::string("zstd body does not decompress: ") + ZSTD_getErrorName(r) +
                     " (near byte offset " + Off(ObjectOffset()) + ")");
    }
    if (r == 0) {
      frame_done_ = true;  // fully decoded and flushed
      if (in_.pos < in_.size || next_ < header_.compressed_bytes) {
        return Corrupt("zstd body does not decompress: bytes after the end of its frame at byte "
                       "offset " + Off(ObjectOffset()));
      }
    } else if (out.pos == 0 && in_.pos == in_before) {
      if (in_.pos < in_.size) {
        return Corrupt("zstd body does not decompress: no progress near byte offset " +
                       Off(ObjectOffset()));
      }
      if (next_ >= header_.compressed_bytes) {
        return Corrupt("zstd body does not decompress: the frame is cut short at byte offset " +
                       Off(ObjectOffset()));
      }
    }
  }
  raw_ += out.pos;
  if (raw_ > header_.raw_bytes) {
    return Corrupt("decompressed size differs from the header: more than its " +
                   Off(header_.raw_bytes) + " bytes (body byte " + Off(header_.raw_bytes) +
                   " decompressed from near object byte offset " + Off(ObjectOffset()) + ")");
  }
  if (out.pos == 0 && raw_ != header_.raw_bytes) {
    return Corrupt("decompressed size differs from the header: " + Off(raw_) +
                   " bytes, the header says " + Off(header_.raw_bytes));
  }
  return out.pos;
}

Status BaseBodyReader::Finish() {
  std::vector<char> scratch(64 << 10);
  for (;;) {
    TM_ASSIGN_OR_RETURN(size_t n, Read(scratch.data(), scratch.size()));
    if (n == 0) return Status::Ok();
  }
}

// ---------------------------------------------------------------- spool dir

Status ResetSpoolDir(const std::string& dir) {
  if (dir.empty()) return InvalidArgumentError("archive: empty spool dir");
  // mkdir -p
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir", prefix);
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Errno("opendir", dir);
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 6 && n.compare(n.size() - 6, 6, ".spool") == 0) stale.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : stale) {
    const std::string p = dir + "/" + n;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return Errno("unlink", p);
  }
  return Status::Ok();
}

}  // namespace tidemark::archive
