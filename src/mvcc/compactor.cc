#include "mvcc/compactor.h"

#include <pthread.h>

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "base/log.h"
#include "mvcc/codec.h"
#include "storage/iterator.h"
#include "storage/write_batch.h"

namespace tidemark::mvcc {

namespace {

constexpr char kHaltedMessage[] = "mvcc: compaction halted for testing";

// A batch also ends after scanning this many entries per allowed deletion,
// so a pass over mostly-live data still yields regularly.
constexpr size_t kScanPerDelete = 16;

}  // namespace

Compactor::Compactor(storage::Engine* engine, size_t batch_limit, int64_t finished,
                     int halt_after_batches)
    : engine_(engine),
      batch_limit_(std::max<size_t>(batch_limit, 1)),
      halt_after_batches_(halt_after_batches),
      target_(finished),
      finished_(finished) {}

Compactor::~Compactor() {
  Stop();
}

void Compactor::Start() {
  std::lock_guard lock(mu_);
  if (running_ || thread_.joinable()) {
    return;
  }
  running_ = true;
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Compactor::Schedule(int64_t rev) {
  {
    std::lock_guard lock(mu_);
    target_ = std::max(target_, rev);
  }
  cv_.notify_all();
}

Status Compactor::Wait(int64_t rev) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return finished_ >= rev || !running_ || !error_.ok(); });
  if (finished_ >= rev) {
    return Status::Ok();
  }
  if (!error_.ok()) {
    return error_;
  }
  return UnavailableError(
      fmt::format("mvcc: compactor {} before finishing compaction at revision {} (done through {})",
                  halted_ ? "halted" : "not running", rev, finished_));
}

void Compactor::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();  // wakes the condition-variable wait too
    thread_.join();
  }
}

int64_t Compactor::finished() const {
  std::lock_guard lock(mu_);
  return finished_;
}

void Compactor::Run(const std::stop_token& stop) {
  pthread_setname_np(pthread_self(), "mvcc-compact");
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, stop, [&] { return target_ > finished_; });
    if (stop.stop_requested()) {
      break;
    }
    const int64_t target = target_;
    lock.unlock();
    Status s = Pass(target, stop);
    lock.lock();
    if (s.ok()) {
      finished_ = std::max(finished_, target);
      error_ = Status::Ok();
    } else if (s.code() == Code::kAborted) {
      halted_ = s.message() == kHaltedMessage;
      break;  // stopping (or halted for a test); the pass resumes after reopen
    } else {
      // Storage failures are not retried here; they surface through Wait()
      // and the pass reruns when the store is reopened.
      error_ = s;
      log::Error("mvcc compaction failed", {{"revision", target}, {"error", s.ToString()}});
      break;
    }
    cv_.notify_all();
  }
  running_ = false;
  cv_.notify_all();
}

Status Compactor::Pass(int64_t target, const std::stop_token& stop) {
  std::string cursor;      // next kv CF key to look at; empty = start
  std::string key_prefix;  // the user key being processed (escaped prefix)
  bool kept_one = false;   // its newest version <= target has been seen
  // A tombstone that is the newest version <= target is deleted only after
  // every older version of its key, in the same or a later batch. Deleting it
  // first would let a reader at a revision >= target see an older version
  // again between two batches.
  std::string tombstone;
  int batches = 0;
  while (true) {
    if (stop.stop_requested()) {
      return Status(Code::kAborted, "mvcc: compaction stopped");
    }
    storage::WriteBatch batch(engine_);
    bool done = false;
    {
      // A fresh iterator per batch: never pin old memtables/SSTs for a whole
      // pass. Entries written meanwhile have revisions > target and are
      // skipped anyway.
      auto it = engine_->NewIterator(storage::kKvCf);
      if (cursor.empty()) {
        it->SeekToFirst();
      } else {
        it->Seek(cursor);
      }
      size_t scanned = 0;
      for (; it->Valid() && batch.Count() < batch_limit_ && scanned < batch_limit_ * kScanPerDelete;
           it->Next(), ++scanned) {
        TM_ASSIGN_OR_RETURN(codec::KvKeyParts parts, codec::SplitKvKey(it->key()));
        if (parts.prefix != key_prefix) {
          if (!tombstone.empty()) {
            batch.Delete(storage::kKvCf, tombstone);  // key finished
          }
          tombstone.clear();
          key_prefix.assign(parts.prefix);
          kept_one = false;
        }
        if (parts.revision > target) {
          continue;  // newer than the compaction: keep
        }
        if (kept_one) {
          batch.Delete(storage::kKvCf, it->key());  // superseded
          continue;
        }
        kept_one = true;  // the version visible at `target`
        TM_ASSIGN_OR_RETURN(bool is_tombstone, codec::IsTombstone(it->value()));
        if (is_tombstone) {
          tombstone.assign(it->key());
        }
      }
      TM_RETURN_IF_ERROR(it->status());
      done = !it->Valid();
      if (!done) {
        cursor.assign(it->key());
      }
      if (done && !tombstone.empty()) {
        batch.Delete(storage::kKvCf, tombstone);
      }
    }
    if (!batch.empty()) {
      TM_RETURN_IF_ERROR(engine_->Write(batch));
    }
    ++batches;
    if (done) {
      break;
    }
    if (halt_after_batches_ >= 0 && batches >= halt_after_batches_) {
      return Status(Code::kAborted, kHaltedMessage);
    }
  }

  storage::WriteBatch finish(engine_);
  if (target > 1) {
    // Keep history AT target: a watch may start exactly at the compact revision.
    finish.DeleteRange(storage::kHistoryCf, codec::HistoryKey(0, 0), codec::HistoryKey(target, 0));
  }
  finish.Put(storage::kMetaCf, codec::kMetaCompactDone,
             codec::EncodeU64(static_cast<uint64_t>(target)));
  return engine_->Write(finish);
}

}  // namespace tidemark::mvcc
