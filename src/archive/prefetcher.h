#pragma once
// BasicPrefetcher: fetches a list of named objects on a few worker threads
// ahead of one consumer that takes them in order, so a restore or verify is
// not one round trip per chunk in sequence. Each object goes through `fetch`
// on a worker thread (for a restore: Get, digest, decompression and parsing,
// which then run ahead of the apply thread, on another core).
//
// Memory bound: at most `window` objects ahead of the consumer, and a new
// fetch starts only while the fetched-but-not-taken objects plus those in
// flight (each estimated at the largest size seen so far) stay within
// `budget_bytes`. The first fetch runs alone (its size is the first
// estimate). When nothing is fetched or in flight, one fetch may start
// whatever its size, so an object larger than the budget still gets through.
// Held objects thus stay within about max(budget, largest object) (plus
// objects larger than every earlier one, while in flight); a fetch's
// transient buffers (compressed and decompressed copies) come on top.
//
// Threads: the constructor starts the workers; Take() from one consumer
// thread; the destructor stops and joins them (fetches in progress finish).
// Errors from `fetch` are handed to Take() as they are, in order.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"

namespace tidemark::archive {

struct PrefetchLimits {
  size_t threads = 8;
  size_t window = 16;                   // objects ahead of the consumer
  uint64_t budget_bytes = 64u << 20;    // fetched + in-flight bytes
};

template <typename T>
class BasicPrefetcher {
 public:
  using Fetch = std::function<Result<T>(const std::string& name)>;
  // Bytes a fetched object holds in memory until taken.
  using SizeOf = std::function<uint64_t(const T&)>;

  BasicPrefetcher(std::vector<std::string> names, Fetch fetch, SizeOf size_of,
                  PrefetchLimits limits = {})
      : fetch_(std::move(fetch)),
        size_of_(std::move(size_of)),
        limits_(limits),
        names_(std::move(names)),
        results_(names_.size()),
        sizes_(names_.size(), 0) {
    const size_t n = std::min(std::max<size_t>(limits_.threads, 1), names_.size());
    for (size_t i = 0; i < n; ++i) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  ~BasicPrefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  BasicPrefetcher(const BasicPrefetcher&) = delete;
  BasicPrefetcher& operator=(const BasicPrefetcher&) = delete;

  // Blocks until object i is fetched. Each i is taken once, in order.
  Result<T> Take(size_t i) {
    std::unique_lock<std::mutex> lock(mu_);
    consumed_ = i;
    cv_.notify_all();
    cv_.wait(lock, [&] { return results_[i].has_value(); });
    Result<T> r = std::move(*results_[i]);
    results_[i].reset();
    held_bytes_ -= sizes_[i];
    consumed_ = i + 1;  // the window counts objects after this one
    cv_.notify_all();
    return r;
  }

  // Most bytes held by fetched, not yet taken objects at any moment.
  uint64_t peak_held_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_held_bytes_;
  }

 private:
  bool MayStart() const {  // requires mu_
    if (next_ >= names_.size() || next_ >= consumed_ + limits_.window) return false;
    if (held_bytes_ == 0 && in_flight_ == 0) return true;
    if (!sized_) return false;  // the first fetch runs alone: it sets the estimate
    return held_bytes_ + (in_flight_ + 1) * largest_ <= limits_.budget_bytes;
  }

  void Work() {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || next_ >= names_.size() || MayStart(); });
        if (stop_ || next_ >= names_.size()) return;
        i = next_++;
        ++in_flight_;
      }
      Result<T> r = fetch_(names_[i]);
      const uint64_t size = r.ok() ? size_of_(*r) : 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        --in_flight_;
        sizes_[i] = size;
        held_bytes_ += size;
        peak_held_bytes_ = std::max(peak_held_bytes_, held_bytes_);
        largest_ = std::max(largest_, size);
        sized_ = true;
        results_[i].emplace(std::move(r));
      }
      cv_.notify_all();
    }
  }

  const Fetch fetch_;
  const SizeOf size_of_;
  const PrefetchLimits limits_;
  const std::vector<std::string> names_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::optional<Result<T>>> results_;  // guarded by mu_
  std::vector<uint64_t> sizes_;                    // guarded by mu_
  size_t next_ = 0;                                // guarded by mu_
  size_t consumed_ = 0;                            // guarded by mu_
  size_t in_flight_ = 0;                           // guarded by mu_
  uint64_t held_bytes_ = 0;                        // guarded by mu_
  uint64_t peak_held_bytes_ = 0;                   // guarded by mu_
  uint64_t largest_ = 0;                           // guarded by mu_
  bool sized_ = false;                             // a fetch finished; guarded by mu_
  bool stop_ = false;                              // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace tidemark::archive
