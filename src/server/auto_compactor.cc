#include "server/auto_compactor.h"

#include <cctype>
#include <cstdlib>

#include "base/log.h"

namespace tidemark::server {
namespace {
constexpr int64_t kSecond = 1000000000LL;
constexpr int64_t kHour = 3600 * kSecond;
constexpr int64_t kRevisionCheckInterval = 5 * 60 * kSecond;  // etcd's revision compactor
}  // namespace

Result<int64_t> ParseRetentionDuration(const std::string& text) {
  if (text.empty()) return InvalidArgumentError("empty duration");
  bool bare = true;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') bare = false;
  }
  if (bare) return static_cast<int64_t>(std::strtod(text.c_str(), nullptr) * kHour);
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (start == i) return InvalidArgumentError("bad duration \"" + text + "\"");
    double value = std::strtod(text.substr(start, i - start).c_str(), nullptr);
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(unit_start, i - unit_start);
    double mult;
    if (unit == "h") mult = static_cast<double>(kHour);
    else if (unit == "m") mult = 60.0 * kSecond;
    else if (unit == "s") mult = static_cast<double>(kSecond);
    else if (unit == "ms") mult = 1e6;
    else return InvalidArgumentError("bad duration unit \"" + unit + "\" in \"" + text + "\"");
    total += static_cast<int64_t>(value * mult);
  }
  return total;
}

Result<AutoCompactor> AutoCompactor::Create(const std::string& mode, const std::string& retention,
                                            const Clock* clock, RevisionFn current,
                                            RevisionFn compacted, CompactFn compact) {
  AutoCompactor c;
  c.clock_ = clock;
  c.current_ = std::move(current);
  c.compacted_ = std::move(compacted);
  c.compact_ = std::move(compact);
  if (mode == "periodic") {
    auto d = ParseRetentionDuration(retention);
    if (!d.ok()) {
      return InvalidArgumentError("--auto-compaction-retention: " + d.status().message());
    }
    if (*d <= 0) return c;
    c.periodic_ = true;
    c.retention_ns_ = *d;
    c.interval_ns_ = std::clamp<int64_t>(*d / 10, kSecond, kHour);
  } else if (mode == "revision") {
    char* end = nullptr;
    long long n = std::strtoll(retention.c_str(), &end, 10);
    if (retention.empty() || *end != '\0' || n < 0) {
      return InvalidArgumentError("--auto-compaction-retention: \"" + retention +
                                  "\" is not a number of revisions (mode revision)");
    }
    if (n == 0) return c;
    c.periodic_ = false;
    c.retention_revs_ = n;
    c.interval_ns_ = kRevisionCheckInterval;
  } else {
    return InvalidArgumentError("--auto-compaction-mode: \"" + mode +
                                "\" is not periodic or revision");
  }
  c.enabled_ = true;
  c.next_tick_ns_ = clock->MonotonicNanos() + c.interval_ns_;
  return c;
}

void AutoCompactor::Tick() {
  if (!enabled_) return;
  const int64_t now = clock_->MonotonicNanos();
  if (now < next_tick_ns_) return;
  next_tick_ns_ = now + interval_ns_;
  const int64_t current = current_();
  int64_t target = 0;
  if (periodic_) {
    samples_.emplace_back(now, current);
    // The newest sample at least `retention` old is the compaction point;
    // older samples are no longer needed.
    while (samples_.size() >= 2 && samples_[1].first <= now - retention_ns_) samples_.pop_front();
    if (samples_.front().first <= now - retention_ns_) target = samples_.front().second;
  } else {
    target = current - retention_revs_;
  }
  if (target > 0 && target > compacted_()) {
    log::Info("auto compaction", {{"revision", target},
                                  {"mode", std::string(periodic_ ? "periodic" : "revision")}});
    compact_(target);
  }
}

}  // namespace tidemark::server
