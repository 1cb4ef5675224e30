#include "lease/lessor.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "base/coding.h"
#include "storage/iterator.h"

namespace tidemark::lease {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr char kPrefix[] = "lease/";
constexpr char kPrefixEnd[] = "lease0";  // '/' + 1
constexpr char kRecordPrefix[] = "lease/l/";
constexpr char kAttachPrefix[] = "lease/k/";
constexpr size_t kTagLen = 8;  // "lease/l/" and "lease/k/"
constexpr char kRecordVersion1 = 1;  // ttl
constexpr char kRecordVersion2 = 2;  // ttl, grant index

void PutBigEndian64(std::string* dst, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) dst->push_back(static_cast<char>(v >> shift));
}

uint64_t GetBigEndian64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

int64_t SaturatingDeadline(int64_t now_ns, int64_t ttl_s) {
  if (ttl_s > (INT64_MAX - now_ns) / kNanosPerSecond) return INT64_MAX;
  return now_ns + ttl_s * kNanosPerSecond;
}

}  // namespace

std::string LeaseRecordKey(int64_t id) {
  std::string k(kRecordPrefix);
  PutBigEndian64(&k, static_cast<uint64_t>(id));
  return k;
}

std::string AttachmentKey(int64_t id, const std::string& user_key) {
  std::string k(kAttachPrefix);
  PutBigEndian64(&k, static_cast<uint64_t>(id));
  k += user_key;
  return k;
}

Lessor::Lessor(storage::Engine* engine, Options options)
    : engine_(engine), options_(options), clock_(options.clock) {}

Lessor::~Lessor() { Stop(); }

Result<std::unique_ptr<Lessor>> Lessor::Open(storage::Engine* engine, Options options) {
  std::unique_ptr<Lessor> l(new Lessor(engine, options));
  TM_RETURN_IF_ERROR(l->Load());
  return l;
}

Status Lessor::Load() {
  storage::ReadOptions ro;
  ro.lower_bound = std::string(kPrefix);
  ro.upper_bound = std::string(kPrefixEnd);
  auto it = engine_->NewIterator(storage::kMetaCf, ro);
  std::map<int64_t, Lease> loaded;
  std::vector<std::pair<int64_t, std::string>> attachments;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view k = it->key();
    std::string_view v = it->value();
    if (k.size() < kTagLen + 8) {
      return CorruptionError("lease: short meta key " + std::string(k));
    }
    const int64_t id = static_cast<int64_t>(GetBigEndian64(k.substr(kTagLen)));
    if (k.substr(0, kTagLen) == kRecordPrefix) {
      const bool v1 = v.size() == 9 && v[0] == kRecordVersion1;
      const bool v2 = v.size() == 17 && v[0] == kRecordVersion2;
      if (k.size() != kTagLen + 8 || (!v1 && !v2)) {
        return CorruptionError("lease: record of lease " + std::to_string(id) +
                               " does not decode (meta key " + std::string(k.substr(0, kTagLen)) +
                               "<id>, " + std::to_string(v.size()) + " value bytes)");
      }
      loaded[id].ttl = static_cast<int64_t>(DecodeFixed64(v.data() + 1));
      if (v2) loaded[id].grant_index = DecodeFixed64(v.data() + 9);
    } else if (k.substr(0, kTagLen) == kAttachPrefix) {
      attachments.emplace_back(id, std::string(k.substr(kTagLen + 8)));
    }
    // Unknown "lease/" sub-prefixes are ignored (forward compatibility).
  }
  TM_RETURN_IF_ERROR(it->status());
  for (auto& [id, key] : attachments) {
    auto l = loaded.find(id);
    if (l == loaded.end()) {
      return CorruptionError("lease: key attached to missing lease " + std::to_string(id));
    }
    l->second.keys.insert(std::move(key));
  }
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  leases_ = std::move(loaded);
  for (auto& [id, l] : leases_) {
    l.deadline_ns = SaturatingDeadline(now, l.ttl);
    PushLocked(id, l);
  }
  return Status::Ok();
}

void Lessor::Start(ExpireFn fn) {
  expire_fn_ = std::move(fn);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lease-expiry");
    Run();
  });
}

void Lessor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Lessor::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(options_.check_interval_ms),
                 [&] { return stopping_; });
    if (stopping_) break;
    std::vector<Expired> expired = PopExpiredLocked();
    if (expired.empty()) continue;
    lock.unlock();
    expire_fn_(expired);
    lock.lock();
  }
}

int64_t Lessor::EffectiveTTL(int64_t ttl) const {
  return std::max(ttl, options_.min_ttl_seconds);
}

bool Lessor::Exists(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return leases_.count(id) > 0;
}

std::optional<uint64_t> Lessor::GrantIndex(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  return it->second.grant_index;
}

std::vector<std::string> Lessor::Keys(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return {};
  return {it->second.keys.begin(), it->second.keys.end()};
}

Result<int64_t> Lessor::Renew(int64_t id) {
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end() || it->second.expiring || it->second.deadline_ns <= now) {
    return NotFoundError("lease: not found or expired");
  }
  it->second.deadline_ns = SaturatingDeadline(now, it->second.ttl);
  PushLocked(id, it->second);
  return it->second.ttl;
}

std::optional<LeaseInfo> Lessor::TimeToLive(int64_t id, bool with_keys) const {
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  LeaseInfo info;
  info.id = id;
  info.granted_ttl = it->second.ttl;
  info.remaining_ttl = std::max<int64_t>(0, (it->second.deadline_ns - now) / kNanosPerSecond);
  if (with_keys) info.keys.assign(it->second.keys.begin(), it->second.keys.end());
  return info;
}

std::vector<int64_t> Lessor::Leases() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> ids;
  ids.reserve(leases_.size());
  for (const auto& [id, l] : leases_) ids.push_back(id);
  return ids;
}

size_t Lessor::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leases_.size();
}

void Lessor::WriteTo(const Delta& delta, storage::WriteBatch* batch) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& op : delta.ops()) {
    switch (op.kind) {
      case Delta::Kind::kGrant: {
        std::string v(1, kRecordVersion2);
        PutFixed64(&v, static_cast<uint64_t>(op.ttl));
        PutFixed64(&v, op.grant_index);
        batch->Put(storage::kMetaCf, LeaseRecordKey(op.id), v);
        break;
      }
      case Delta::Kind::kRevoke: {
        batch->Delete(storage::kMetaCf, LeaseRecordKey(op.id));
        auto it = leases_.find(op.id);
        if (it != leases_.end()) {
          for (const auto& k : it->second.keys) {
            batch->Delete(storage::kMetaCf, AttachmentKey(op.id, k));
          }
        }
        break;
      }
      case Delta::Kind::kAttach:
        batch->Put(storage::kMetaCf, AttachmentKey(op.id, op.key), "");
        break;
      case Delta::Kind::kDetach:
        batch->Delete(storage::kMetaCf, AttachmentKey(op.id, op.key));
        break;
    }
  }
}

void Lessor::Publish(const Delta& delta) {
  const int64_t now = clock_->MonotonicNanos();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& op : delta.ops()) {
    switch (op.kind) {
      case Delta::Kind::kGrant: {
        Lease& l = leases_[op.id];
        l.ttl = op.ttl;
        l.grant_index = op.grant_index;
        l.deadline_ns = SaturatingDeadline(now, op.ttl);
        PushLocked(op.id, l);
        break;
      }
      case Delta::Kind::kRevoke:
        leases_.erase(op.id);
        break;
      case Delta::Kind::kAttach: {
        auto it = leases_.find(op.id);
        if (it != leases_.end()) it->second.keys.insert(op.key);
        break;
      }
      case Delta::Kind::kDetach: {
        auto it = leases_.find(op.id);
        if (it != leases_.end()) it->second.keys.erase(op.key);
        break;
      }
    }
  }
}

void Lessor::ExpireFinished(int64_t id, bool ok) {
  if (ok) return;  // the lease is gone (or was already revoked)
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  it->second.expiring = false;
  PushLocked(id, it->second);
}

std::vector<Lessor::Expired> Lessor::CheckExpiredLeases() {
  std::lock_guard<std::mutex> lock(mu_);
  return PopExpiredLocked();
}

std::vector<int64_t> Lessor::CheckExpired() {
  std::vector<int64_t> ids;
  for (const Expired& e : CheckExpiredLeases()) ids.push_back(e.id);
  return ids;
}

void Lessor::PushLocked(int64_t id, const Lease& l) { heap_.push({l.deadline_ns, id}); }

std::vector<Lessor::Expired> Lessor::PopExpiredLocked() {
  const int64_t now = clock_->MonotonicNanos();
  std::vector<Expired> ids;
  while (!heap_.empty() && heap_.top().deadline_ns <= now &&
         ids.size() < options_.max_expire_per_check) {
    HeapItem item = heap_.top();
    heap_.pop();
    auto it = leases_.find(item.id);
    if (it == leases_.end() || it->second.expiring || it->second.deadline_ns != item.deadline_ns) {
      continue;  // stale item: revoked, already handed out, or renewed
    }
    it->second.expiring = true;
    ids.push_back(Expired{item.id, it->second.grant_index});
  }
  return ids;
}

}  // namespace tidemark::lease
