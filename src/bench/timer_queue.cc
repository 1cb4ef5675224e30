#include "bench/timer_queue.h"

#include <pthread.h>

#include <chrono>

namespace tidemark::bench {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TimerQueue::TimerQueue() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "bench-timer");
    Loop();
  });
}

TimerQueue::~TimerQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TimerQueue::At(int64_t when_ns, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push(Item{when_ns, seq_++, std::move(fn)});
  }
  cv_.notify_all();
}

void TimerQueue::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (items_.empty()) {
      cv_.wait(lock);
      continue;
    }
    int64_t now = NowNs();
    if (items_.top().when > now) {
      cv_.wait_for(lock, std::chrono::nanoseconds(items_.top().when - now));
      continue;
    }
    std::function<void()> fn = std::move(const_cast<Item&>(items_.top()).fn);
    items_.pop();
    lock.unlock();
    fn();  // outside the lock: callbacks may call At()
    lock.lock();
  }
}

}  // namespace tidemark::bench
