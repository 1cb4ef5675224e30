#include "archive/s3_object_store.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "archive/format.h"

namespace tidemark::archive {
namespace {

std::once_flag g_curl_init;

std::string Hex(const Digest& d) { return DigestHex(d); }

// SigV4 URI encoding (RFC 3986 unreserved kept); '/' kept when !encode_slash.
std::string UriEncode(std::string_view s, bool encode_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encode_slash)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string XmlUnescape(std::string s) {
  const std::pair<const char*, char> kEnt[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  for (auto [ent, ch] : kEnt) {
    size_t pos = 0;
    while ((pos = s.find(ent, pos)) != std::string::npos) {
      s.replace(pos, std::strlen(ent), 1, ch);
      ++pos;
    }
  }
  return s;
}

// Text of every <tag>...</tag> in order.
std::vector<std::string> XmlAll(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string::npos) {
    size_t start = pos + open.size();
    size_t end = xml.find(close, start);
    if (end == std::string::npos) break;
    out.push_back(XmlUnescape(xml.substr(start, end - start)));
    pos = end + close.size();
  }
  return out;
}

struct Response {
  long status = 0;
  std::string body;
  std::string etag;
  CURLcode curl = CURLE_OK;
  std::string curl_error;
};

struct UploadState {
  std::string_view data;
  size_t offset = 0;
};

// Get: the body into memory, allocated once at the announced Content-Length
// (not grown by doubling, which could hold twice an 8 MiB chunk).
struct BodySink {
  std::string* body = nullptr;
  CURL* handle = nullptr;
  bool sized = false;
};

size_t WriteCb(char* ptr, size_t size, size_t n, void* ud) {
  auto* b = static_cast<BodySink*>(ud);
  if (!b->sized) {
    b->sized = true;
    curl_off_t len = -1;
    if (curl_easy_getinfo(b->handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) == CURLE_OK &&
        len > 0 && len <= (curl_off_t{1} << 32)) {
      b->body->reserve(b->body->size() + static_cast<size_t>(len));
    }
  }
  b->body->append(ptr, size * n);
  return size * n;
}

// GetToFile: a 2xx response body goes to the file as it arrives (never
// whole in memory); any other body (an S3 XML error) to `error_body`.
struct FileSink {
  int fd = -1;
  CURL* handle = nullptr;
  uint64_t offset = 0;
  int error = 0;  // errno of a failed local write (the transfer is aborted)
  std::string* error_body = nullptr;
};

size_t FileWriteCb(char* ptr, size_t size, size_t n, void* ud) {
  auto* f = static_cast<FileSink*>(ud);
  const size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(f->handle, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) {
    if (f->error_body->size() < (64u << 10)) f->error_body->append(ptr, len);
    return len;
  }
  size_t done = 0;
  while (done < len) {
    ssize_t w = ::pwrite(f->fd, ptr + done, len - done, static_cast<off_t>(f->offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      f->error = errno;
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    done += static_cast<size_t>(w);
    f->offset += static_cast<uint64_t>(w);
  }
  return len;
}

size_t ReadCb(char* buf, size_t size, size_t n, void* ud) {
  auto* u = static_cast<UploadState*>(ud);
  size_t len = std::min(size * n, u->data.size() - u->offset);
  std::memcpy(buf, u->data.data() + u->offset, len);
  u->offset += len;
  return len;
}

size_t HeaderCb(char* buf, size_t size, size_t n, void* ud) {
  std::string line(buf, size * n);
  if (line.size() > 5 && strncasecmp(line.c_str(), "etag:", 5) == 0) {
    std::string v = line.substr(5);
    while (!v.empty() && (v.front() == ' ')) v.erase(v.begin());
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    *static_cast<std::string*>(ud) = v;
  }
  return size * n;
}

class S3Store final : public ObjectStore {
 public:
  explicit S3Store(S3Config c) : c_(std::move(c)) {
    std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (c_.endpoint.empty()) c_.endpoint = "https://s3." + c_.region + ".amazonaws.com";
    while (!c_.endpoint.empty() && c_.endpoint.back() == '/') c_.endpoint.pop_back();
    sigv4_ = "aws:amz:" + c_.region + ":s3";
    userpwd_ = c_.access_key + ":" + c_.secret_key;
  }

  Status Put(const std::string& name, std::string_view data) override {
    if (data.size() > c_.multipart_threshold) {
      return PutMultipart(name, data.size(), [&](uint64_t off, uint64_t len, std::string* out) {
        out->assign(data.substr(off, len));
        return Status::Ok();
      });
    }
    Response r = Do("PUT", Key(name), "", data, {});
    return Check(r, "PUT", name);
  }

  // Up to multipart_threshold: read whole (<= 16 MiB) and PUT. Above: one
  // part in memory at a time (part_size, 8 MiB).
  Status PutFile(const std::string& name, const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return LocalError("open", path);
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st;
    if (::fstat(fd, &st) != 0) return LocalError("stat", path);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    auto read_at = [&](uint64_t off, uint64_t len, std::string* out) -> Status {
      out->resize(len);
      size_t done = 0;
      while (done < len) {
        ssize_t n = ::pread(fd, out->data() + done, len - done, static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return LocalError("read", path);
        if (n == 0) return IoError("archive: " + path + " shrank while being uploaded");
        done += static_cast<size_t>(n);
      }
      return Status::Ok();
    };
    if (size > c_.multipart_threshold) return PutMultipart(name, size, read_at);
    std::string data;
    TM_RETURN_IF_ERROR(read_at(0, size, &data));
    return Put(name, data);
  }

  Status GetToFile(const std::string& name, const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return LocalError("create", path);
    FileSink sink;
    sink.fd = fd;
    Response r = Do("GET", Key(name), "", {}, {}, &sink);
    const int close_rc = ::close(fd);
    if (sink.error != 0) {
      errno = sink.error;
      return LocalError("write", path);
    }
    if (r.status == 404) return NotFoundError("archive: object " + name + " not found in " + url());
    TM_RETURN_IF_ERROR(Check(r, "GET", name));
    if (close_rc != 0) return LocalError("close", path);
    return Status::Ok();
  }

  Status PutIfAbsent(const std::string& name, std::string_view data) override {
    Response r = Do("PUT", Key(name), "", data, {"If-None-Match: *"});
    if (r.status == 412 || r.status == 409) {
      return FailedPreconditionError("archive: object " + name + " already exists in " + url());
    }
    return Check(r, "PUT", name);
  }

  Result<std::string> Get(const std::string& name) override {
    Response r = Do("GET", Key(name), "", {}, {});
    if (r.status == 404) return NotFoundError("archive: object " + name + " not found in " + url());
    TM_RETURN_IF_ERROR(Check(r, "GET", name));
    return std::move(r.body);
  }

  Status Delete(const std::string& name) override {
    Response r = Do("DELETE", Key(name), "", {}, {});
    if (r.status == 404) return Status::Ok();
    return Check(r, "DELETE", name);
  }

  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    std::string token;
    const std::string full = KeyPrefix() + prefix;
    for (int page = 0; page < 100000; ++page) {
      // Canonical query: parameters sorted by name, values URI-encoded.
      std::string q;
      if (!token.empty()) q += "continuation-token=" + UriEncode(token, true) + "&";
      q += "list-type=2&prefix=" + UriEncode(full, true);
      Response r = Do("GET", "", q, {}, {});
      TM_RETURN_IF_ERROR(Check(r, "LIST", prefix));
      auto keys = XmlAll(r.body, "Key");
      auto sizes = XmlAll(r.body, "Size");
      for (size_t i = 0; i < keys.size(); ++i) {
        ObjectInfo o;
        o.name = keys[i].substr(std::min(keys[i].size(), KeyPrefix().size()));
        o.size = i < sizes.size() ? std::strtoull(sizes[i].c_str(), nullptr, 10) : 0;
        out.push_back(std::move(o));
      }
      auto trunc = XmlAll(r.body, "IsTruncated");
      auto next = XmlAll(r.body, "NextContinuationToken");
      if (trunc.empty() || trunc[0] != "true" || next.empty()) break;
      token = next[0];
    }
    std::sort(out.begin(), out.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.name < b.name; });
    return out;
  }

  std::string url() const override {
    return "s3://" + c_.bucket + (c_.prefix.empty() ? "" : "/" + c_.prefix);
  }

 private:
  std::string KeyPrefix() const { return c_.prefix.empty() ? "" : c_.prefix + "/"; }
  std::string Key(const std::string& name) const { return KeyPrefix() + name; }

  std::string UrlFor(const std::string& key, const std::string& query) const {
    std::string base;
    if (c_.path_style) {
      base = c_.endpoint + "/" + c_.bucket;
    } else {
      auto scheme_end = c_.endpoint.find("://");
      base = c_.endpoint.substr(0, scheme_end + 3) + c_.bucket + "." +
             c_.endpoint.substr(scheme_end + 3);
    }
    std::string u = base + "/" + UriEncode(key, false);
    if (!query.empty()) u += "?" + query;
    return u;
  }

  Status Check(const Response& r, const char* op, const std::string& name) const {
    if (r.curl != CURLE_OK) {
      return UnavailableError(std::string("archive: S3 ") + op + " " + name + " on " + url() +
                              ": " + r.curl_error);
    }
    if (r.status >= 200 && r.status < 300) return Status::Ok();
    std::string code = XmlAll(r.body, "Code").empty() ? "" : XmlAll(r.body, "Code")[0];
    std::string msg = std::string("archive: S3 ") + op + " " + name + " on " + url() +
                      ": HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code);
    if (r.status >= 500 || r.status == 429) return UnavailableError(msg);
    return IoError(msg);
  }

  static Status LocalError(const char* what, const std::string& path) {
    return IoError(std::string("archive: ") + what + " " + path + ": " + std::strerror(errno));
  }

  // `sink`: stream a 2xx response body into a file (GetToFile); each attempt
  // starts the file over.
  Response Do(const char* method, const std::string& key, const std::string& query,
              std::string_view body, const std::vector<std::string>& extra_headers,
              FileSink* sink = nullptr) {
    Response r;
    int64_t backoff_ms = 100;
    for (int attempt = 1; attempt <= c_.max_attempts; ++attempt) {
      if (sink != nullptr) {
        sink->offset = 0;
        sink->error = 0;
        if (::ftruncate(sink->fd, 0) != 0) {
          sink->error = errno;
          break;
        }
      }
      r = Once(method, key, query, body, extra_headers, sink);
      if (sink != nullptr && sink->error != 0) break;  // local disk: not retried
      bool retry = r.curl != CURLE_OK || r.status >= 500 || r.status == 429;
      if (!retry || attempt == c_.max_attempts) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms *= 2;
    }
    return r;
  }

  Response Once(const char* method, const std::string& key, const std::string& query,
                std::string_view body, const std::vector<std::string>& extra_headers,
                FileSink* sink) {
    thread_local std::unique_ptr<CURL, void (*)(CURL*)> handle(curl_easy_init(), curl_easy_cleanup);
    CURL* h = handle.get();
    curl_easy_reset(h);
    Response r;
    BodySink body_sink{&r.body, h};
    char errbuf[CURL_ERROR_SIZE] = {0};
    const std::string u = UrlFor(key, query);
    curl_easy_setopt(h, CURLOPT_URL, u.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (sink != nullptr) {
      // A large object may take longer than any fixed limit: fail only when
      // the transfer stalls (under 1 byte/s for timeout_seconds).
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c_.timeout_seconds);
    } else {
      curl_easy_setopt(h, CURLOPT_TIMEOUT, c_.timeout_seconds);
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4_.c_str());
    curl_easy_setopt(h, CURLOPT_USERPWD, userpwd_.c_str());
    if (sink != nullptr) {
      sink->handle = h;
      sink->error_body = &r.body;
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, FileWriteCb);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    } else {
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteCb);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, &body_sink);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, HeaderCb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r.etag);
    struct curl_slist* hdrs = nullptr;
    // curl 7.88 signs every listed header and does not add the payload hash.
    hdrs = curl_slist_append(hdrs, ("x-amz-content-sha256: " + Hex(Sha256(body))).c_str());
    if (!c_.session_token.empty()) {
      hdrs = curl_slist_append(hdrs, ("x-amz-security-token: " + c_.session_token).c_str());
    }
    for (const auto& eh : extra_headers) hdrs = curl_slist_append(hdrs, eh.c_str());
    UploadState up{body, 0};
    const std::string m = method;
    if (m == "PUT") {
      hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadCb);
      curl_easy_setopt(h, CURLOPT_READDATA, &up);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size()));
      hdrs = curl_slist_append(hdrs, "Expect:");
    } else if (m == "POST") {
      hdrs = curl_slist_append(hdrs, "Content-Type: application/xml");
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    } else if (m == "DELETE") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }  // GET: default
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    r.curl = curl_easy_perform(h);
    if (r.curl != CURLE_OK) {
      r.curl_error = errbuf[0] ? errbuf : curl_easy_strerror(r.curl);
    } else {
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    }
    curl_slist_free_all(hdrs);
    return r;
  }

  // Multipart upload of `total` bytes; `read_part(offset, len, out)` provides
  // each part in turn, so only one part is in memory. The part size grows
  // past part_size when needed to stay within S3's 10,000 parts.
  using PartReader = std::function<Status(uint64_t offset, uint64_t len, std::string* out)>;
  Status PutMultipart(const std::string& name, uint64_t total, const PartReader& read_part) {
    const std::string key = Key(name);
    Response r = Do("POST", key, "uploads=", "", {});
    TM_RETURN_IF_ERROR(Check(r, "CreateMultipartUpload", name));
    auto ids = XmlAll(r.body, "UploadId");
    if (ids.empty()) return IoError("archive: S3 CreateMultipartUpload " + name + ": no UploadId");
    const std::string upload_id = ids[0];
    const uint64_t part_size = std::max<uint64_t>(c_.part_size, (total + 9999) / 10000);
    std::string complete = "<CompleteMultipartUpload>";
    int part = 0;
    std::string piece;
    for (uint64_t off = 0; off < total; off += part_size) {
      ++part;
      Status s = read_part(off, std::min<uint64_t>(part_size, total - off), &piece);
      Response pr;
      if (s.ok()) {
        pr = Do("PUT", key,
                "partNumber=" + std::to_string(part) + "&uploadId=" + UriEncode(upload_id, true),
                piece, {});
        s = Check(pr, "UploadPart", name);
      }
      if (!s.ok()) {
        Do("DELETE", key, "uploadId=" + UriEncode(upload_id, true), "", {});
        return s;
      }
      complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" + pr.etag +
                  "</ETag></Part>";
    }
    piece.clear();
    piece.shrink_to_fit();
    complete += "</CompleteMultipartUpload>";
    r = Do("POST", key, "uploadId=" + UriEncode(upload_id, true), complete, {});
    Status s = Check(r, "CompleteMultipartUpload", name);
    // S3 may answer 200 with an <Error> body.
    if (s.ok() && r.body.find("<Error>") != std::string::npos) {
      s = IoError("archive: S3 CompleteMultipartUpload " + name + ": " + r.body.substr(0, 300));
    }
    if (!s.ok()) Do("DELETE", key, "uploadId=" + UriEncode(upload_id, true), "", {});
    return s;
  }

  S3Config c_;
  std::string sigv4_;
  std::string userpwd_;
};

}  // namespace

Status ParseS3Url(const std::string& url, std::string* bucket, std::string* prefix) {
  if (url.rfind("s3://", 0) != 0) return InvalidArgumentError("not an s3:// URL: " + url);
  std::string rest = url.substr(5);
  auto slash = rest.find('/');
  *bucket = rest.substr(0, slash);
  *prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  while (!prefix->empty() && prefix->back() == '/') prefix->pop_back();
  while (!prefix->empty() && prefix->front() == '/') prefix->erase(prefix->begin());
  if (bucket->empty()) return InvalidArgumentError("archive-url " + url + ": missing bucket");
  return Status::Ok();
}

Result<std::unique_ptr<ObjectStore>> NewS3ObjectStore(S3Config config) {
  auto env = [](const char* n) {
    const char* v = std::getenv(n);
    return std::string(v ? v : "");
  };
  // Credentials are taken as a unit from ONE source: the configuration
  // (flags / config file) if it names an access key id or secret, else the
  // environment. Mixing (a key id from a flag with AWS_SESSION_TOKEN of other
  // credentials from the environment) would sign with a wrong combination.
  if (config.access_key.empty() && config.secret_key.empty() && config.session_token.empty()) {
    config.access_key = env("AWS_ACCESS_KEY_ID");
    config.secret_key = env("AWS_SECRET_ACCESS_KEY");
    config.session_token = env("AWS_SESSION_TOKEN");
    if (config.access_key.empty() || config.secret_key.empty()) {
      return InvalidArgumentError(
          "archive: S3 credentials missing: give --archive-s3-access-key-id and "
          "--archive-s3-secret-access-key (or the same keys in the config file), or set "
          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
  } else if (config.access_key.empty() || config.secret_key.empty()) {
    return InvalidArgumentError(
        std::string("archive: S3 credentials incomplete: ") +
        (config.access_key.empty() ? "--archive-s3-secret-access-key given without "
                                     "--archive-s3-access-key-id"
                                   : "--archive-s3-access-key-id given without "
                                     "--archive-s3-secret-access-key") +
        " (flags or config file; the environment is not mixed in)");
  }
  if (config.part_size < (5u << 20)) config.part_size = 5u << 20;
  return std::unique_ptr<ObjectStore>(new S3Store(std::move(config)));
}

}  // namespace tidemark::archive
