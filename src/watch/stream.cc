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
  outbox_.clear();
  bytes_ = 0;
}

bool Stream::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

void Stream::EnqueueControl(Response r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  bytes_ += r.ApproxBytes();
  outbox_.push_back(std::move(r));
  PumpLocked();
}

bool Stream::TryEnqueueData(Response& r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return true;  // dropped: nobody is listening any more
  if (bytes_ >= max_outbox_bytes_) {
    was_full_ = true;
    return false;
  }
  bytes_ += r.ApproxBytes();
  outbox_.push_back(std::move(r));
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
  size_t b = r.ApproxBytes();
  bytes_ = bytes_ > b ? bytes_ - b : 0;
  in_flight_ = true;
  sink_->Deliver(std::move(r));
}

}  // namespace tidemark::watch
