// BasicPrefetcher: order, errors, and the memory budget (objects fetched or
// in flight, ahead of a slow consumer).

#include "archive/prefetcher.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace tidemark::archive {
namespace {

constexpr uint64_t kMiB = 1u << 20;

std::vector<std::string> Names(size_t n) {
  std::vector<std::string> v;
  for (size_t i = 0; i < n; ++i) v.push_back("obj-" + std::to_string(i));
  return v;
}

// Objects that claim `size` bytes (nothing is allocated). `alive` counts
// objects whose fetch has started and that the consumer has not taken yet.
struct Fake {
  uint64_t size;
  std::atomic<int>* alive;
  std::atomic<int>* started;
  Result<std::pair<std::string, uint64_t>> operator()(const std::string& name) const {
    alive->fetch_add(1);
    started->fetch_add(1);
    return std::make_pair(name, size);
  }
};

using Obj = std::pair<std::string, uint64_t>;

uint64_t SizeOf(const Obj& o) { return o.second; }

// Takes every object in order, but before each Take waits until the workers
// have run as far ahead as `ahead` objects (or started everything), so the
// budget, not the consumer's speed, is what stops them. Returns the most
// objects alive at once.
int ConsumeSlowly(BasicPrefetcher<Obj>* p, size_t n, int ahead, std::atomic<int>* alive,
                  std::atomic<int>* started) {
  int most = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (alive->load() < ahead && started->load() < static_cast<int>(n)) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "workers stopped at " << alive->load() << " objects ahead, before " << i;
        break;
      }
      std::this_thread::yield();
    }
    most = std::max(most, alive->load());
    auto r = p->Take(i);
    EXPECT_TRUE(r.ok());
    if (r.ok()) EXPECT_EQ(r->first, "obj-" + std::to_string(i));
    alive->fetch_sub(1);
  }
  return most;
}

TEST(PrefetcherTest, EveryObjectInOrder) {
  std::atomic<int> alive{0}, started{0};
  const size_t n = 200;
  BasicPrefetcher<Obj> p(Names(n), Fake{1000, &alive, &started},
                         SizeOf);
  for (size_t i = 0; i < n; ++i) {
    auto r = p.Take(i);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->first, "obj-" + std::to_string(i));
  }
  EXPECT_EQ(started.load(), static_cast<int>(n));
}

TEST(PrefetcherTest, BudgetBoundsWhatIsFetchedAhead) {
  // 10 MiB objects, 32 MiB budget, 4 threads, window 16: the first object
  // is fetched alone, then at most 3 are fetched or in flight; without the
  // budget the window would allow 16.
  std::atomic<int> alive{0}, started{0};
  const size_t n = 40;
  PrefetchLimits limits{.threads = 4, .window = 16, .budget_bytes = 32 * kMiB};
  BasicPrefetcher<Obj> p(Names(n), Fake{10 * kMiB, &alive, &started},
                         SizeOf, limits);
  const int most = ConsumeSlowly(&p, n, 3, &alive, &started);
  EXPECT_EQ(most, 3);
  EXPECT_LE(p.peak_held_bytes(), 3 * 10 * kMiB);
  EXPECT_EQ(started.load(), static_cast<int>(n));
}

TEST(PrefetcherTest, WindowBoundsSmallObjects) {
  std::atomic<int> alive{0}, started{0};
  const size_t n = 60;
  PrefetchLimits limits{.threads = 4, .window = 8, .budget_bytes = 64 * kMiB};
  BasicPrefetcher<Obj> p(Names(n), Fake{1024, &alive, &started},
                         SizeOf, limits);
  // The budget allows far more; the window stops the workers 8 objects
  // after the last one taken.
  const int most = ConsumeSlowly(&p, n, 8, &alive, &started);
  EXPECT_EQ(most, 8);
}

TEST(PrefetcherTest, ObjectsLargerThanTheBudgetStillGetThrough) {
  std::atomic<int> alive{0}, started{0};
  const size_t n = 10;
  PrefetchLimits limits{.threads = 3, .window = 16, .budget_bytes = 8 * kMiB};
  BasicPrefetcher<Obj> p(Names(n), Fake{100 * kMiB, &alive, &started},
                         SizeOf, limits);
  const int most = ConsumeSlowly(&p, n, 1, &alive, &started);
  EXPECT_EQ(most, 1);  // one at a time
  EXPECT_EQ(started.load(), static_cast<int>(n));
}

TEST(PrefetcherTest, ErrorsArriveInTheirPlace) {
  BasicPrefetcher<Obj> p(
      Names(20),
      [](const std::string& name) -> Result<Obj> {
        if (name == "obj-7") return NotFoundError("no such object: " + name);
        return std::make_pair(name, uint64_t{10});
      },
      SizeOf);
  for (size_t i = 0; i < 20; ++i) {
    auto r = p.Take(i);
    if (i == 7) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().message(), "no such object: obj-7");
    } else {
      ASSERT_TRUE(r.ok()) << i;
    }
  }
}

TEST(PrefetcherTest, DestroyedBeforeEverythingIsTaken) {
  std::atomic<int> alive{0}, started{0};
  {
    BasicPrefetcher<Obj> p(Names(100), Fake{1 * kMiB, &alive, &started},
                           SizeOf);
    ASSERT_TRUE(p.Take(0).ok());
  }  // joins its workers without hanging
  EXPECT_LT(started.load(), 100);
}

}  // namespace
}  // namespace tidemark::archive
