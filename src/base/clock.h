#pragma once
// Injectable time source, so lease, archive and WAL tests never sleep.
//
//  * NowNanos(): wall-clock time, nanoseconds since the Unix epoch. May jump
//    (NTP steps); use it only for timestamps that are shown to users or stored
//    (e.g. the WAL entry's unix_nanos used for restore-by-time).
//  * MonotonicNanos(): a clock that never goes backwards, with an arbitrary
//    origin; use it for timeouts, TTLs and rate limits.
//
// Thread safety: every Clock method may be called from any thread.
// Ownership: Clock::System() returns a process-wide singleton that is never
// destroyed; other clocks are owned by whoever creates them and must outlive
// their users.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tidemark {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowNanos() const = 0;
  virtual int64_t MonotonicNanos() const = 0;

  // The real clock (SystemClock). Never null.
  static Clock* System();
};

class SystemClock final : public Clock {
 public:
  int64_t NowNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

inline Clock* Clock::System() {
  static SystemClock clock;  // trivially destructible state; safe at exit
  return &clock;
}

// A clock that moves only when told to. Advance() moves both readings; the
// wall clock can also be stepped on its own (SetNowNanos) to simulate NTP
// jumps, while the monotonic reading can only move forward.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_nanos = 1'700'000'000'000'000'000, int64_t monotonic_nanos = 0)
      : now_(now_nanos), monotonic_(monotonic_nanos) {}

  int64_t NowNanos() const override { return now_.load(std::memory_order_acquire); }
  int64_t MonotonicNanos() const override { return monotonic_.load(std::memory_order_acquire); }

  // Moves both clocks forward by `nanos` (must be >= 0; negative is ignored).
  void Advance(int64_t nanos) {
    if (nanos <= 0)
      return;
    now_.fetch_add(nanos, std::memory_order_acq_rel);
    monotonic_.fetch_add(nanos, std::memory_order_acq_rel);
  }
  template <typename Rep, typename Period>
  void Advance(std::chrono::duration<Rep, Period> d) {
    Advance(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }

  // Steps the wall clock (may go backwards); the monotonic clock is unchanged.
  void SetNowNanos(int64_t now_nanos) { now_.store(now_nanos, std::memory_order_release); }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> monotonic_;
};

}  // namespace tidemark
