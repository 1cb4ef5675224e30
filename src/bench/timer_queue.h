#pragma once
// bench::TimerQueue: runs callbacks at (or soon after) given steady-clock
// times on one background thread ("bench-timer"). Used for client-side
// injected delays and by tests to fake slow servers.
//
// Thread safety: At() may be called from any thread, including from a
// callback. The destructor stops the thread; callbacks not yet due are
// dropped without running.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace tidemark::bench {

// Monotonic nanoseconds (steady_clock).
int64_t NowNs();

class TimerQueue {
 public:
  TimerQueue();
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  void At(int64_t when_ns, std::function<void()> fn);

 private:
  struct Item {
    int64_t when;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Item& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> items_;
  uint64_t seq_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tidemark::bench
