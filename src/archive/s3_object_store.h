#pragma once
// S3ObjectStore: the archive target on an S3-compatible service, over
// libcurl with CURLOPT_AWS_SIGV4 (no SDK). URL form: s3://bucket/prefix.
//
// Requests: PutObject (single PUT up to multipart_threshold, else
// CreateMultipartUpload / UploadPart / CompleteMultipartUpload), GetObject,
// DeleteObject, ListObjectsV2 (paginated). PutIfAbsent sends
// `If-None-Match: *` (honoured by AWS S3 since 2024-08 and MinIO; NOT by
// s3rver, which overwrites). Every request carries x-amz-content-sha256 with
// the real payload hash, and is retried (max_attempts, exponential backoff
// from 100 ms) on transport errors, 5xx and 429/503 SlowDown.
// Large objects with bounded memory: PutFile reads one part (part_size,
// grown past it only to stay within 10,000 parts) from the file at a time;
// GetToFile streams the body into the file (a retry starts it over; no
// overall time limit, only a stall limit of timeout_seconds).
//
// Addressing: path-style http(s)://endpoint/bucket/key (default; the only
// one s3rver supports with an IP host) or virtual-hosted bucket.endpoint.
// Credentials: access_key/secret_key/session_token from the config (flags or
// config file) when any of them is set, else AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment -- one
// source as a unit, never mixed.
//
// Thread-safety: all methods may be called concurrently (one curl easy
// handle per calling thread, reused for keep-alive).

#include <memory>
#include <string>

#include "archive/object_store.h"

namespace tidemark::archive {

struct S3Config {
  std::string bucket;
  std::string prefix;    // without leading/trailing '/'; may be empty
  std::string endpoint;  // "http://127.0.0.1:9000"; empty = https://s3.<region>.amazonaws.com
  std::string region = "us-east-1";
  bool path_style = true;
  std::string access_key, secret_key, session_token;
  uint64_t multipart_threshold = 16u << 20;
  uint64_t part_size = 8u << 20;  // >= 5 MiB (S3 minimum for all parts but the last)
  int max_attempts = 4;
  long timeout_seconds = 60;
};

Result<std::unique_ptr<ObjectStore>> NewS3ObjectStore(S3Config config);

// "s3://bucket/some/prefix" -> bucket, prefix. kInvalidArgument otherwise.
Status ParseS3Url(const std::string& url, std::string* bucket, std::string* prefix);

}  // namespace tidemark::archive
