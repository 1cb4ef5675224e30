#include "watch/stream.h"

namespace tidemark::watch {

size_t Response::ApproxBytes() const {
  size_t n = 64 + cancel_reason.size();
  for (const auto& e : events) {
    n += 48 + e->kv.key.size() + e->kv.value.size();
    if (with_prev_kv && e->prev_kv) n += 32 + e->prev_kv->key.size() + e->prev_kv->value.size();
  }
  return n;
}

void Stream::AttachSink(Sink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  sink_ = sink;
  PumpLocked();
}

void Stream::Close(bool notify) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  closed_ = true;
  if (notify && sink_ != nullptr) sink_->Close();
  sink_ = nullptr;
  front_seq_ += outbox_.size();
  outbox_.clear();
  sizes_.clear();
  mergeable_.clear();
  bytes_ = 0;
}

bool Stream::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

void Stream::EnqueueControl(Response r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  const size_t b = r.ApproxBytes();
  bytes_ += b;
  outbox_.push_back(std::move(r));
  sizes_.push_back(b);
  mergeable_.clear();  // nothing queued before this reply may take later events
  PumpLocked();
}

bool Stream::TryEnqueueData(Response& r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return true;  // dropped: nobody is listening any more
  if (bytes_ >= max_outbox_bytes_) {
    was_full_ = true;
    return false;
  }
  const size_t b = r.ApproxBytes();
  if (in_flight_ || sink_ == nullptr) {
    auto it = mergeable_.find(r.watch_id);
    if (it != mergeable_.end() && it->second >= front_seq_) {
      const size_t pos = static_cast<size_t>(it->second - front_seq_);
      Response& prev = outbox_[pos];
      if (sizes_[pos] + b <= max_merge_bytes_ && prev.with_prev_kv == r.with_prev_kv &&
          prev.allow_fragment == r.allow_fragment) {
        prev.events.insert(prev.events.end(), std::make_move_iterator(r.events.begin()),
                           std::make_move_iterator(r.events.end()));
        prev.revision = r.revision;
        sizes_[pos] += b;
        bytes_ += b;
        return true;
      }
    }
  }
  bytes_ += b;
  outbox_.push_back(std::move(r));
  sizes_.push_back(b);
  mergeable_[outbox_.back().watch_id] = front_seq_ + outbox_.size() - 1;
  PumpLocked();
  return true;
}

bool Stream::HasRoom() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_ || bytes_ < max_outbox_bytes_;
}

bool Stream::WriteDone() {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ = false;
  PumpLocked();
  if (was_full_ && bytes_ < max_outbox_bytes_ / 2) {
    was_full_ = false;
    return true;
  }
  return false;
}

size_t Stream::pending_responses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outbox_.size() + (in_flight_ ? 1 : 0);
}

size_t Stream::pending_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

void Stream::PumpLocked() {
  if (in_flight_ || closed_ || sink_ == nullptr || outbox_.empty()) return;
  Response r = std::move(outbox_.front());
  outbox_.pop_front();
  const size_t b = sizes_.front();
  sizes_.pop_front();
  ++front_seq_;
  if (outbox_.empty()) mergeable_.clear();
  bytes_ = bytes_ > b ? bytes_ - b : 0;
  in_flight_ = true;
  sink_->Deliver(std::move(r));
}

}  // namespace tidemark::watch
