// Apply-level lease semantics (etcd 3.4): grant rules, revoke/expire delete
// every attached key in one revision, attach/detach through Put, DeleteRange
// and Txn, persistence of attachments with the applied batch.
#include <gtest/gtest.h>

#include <memory>

#include "apply/applier.h"
#include "apply/errors.h"
#include "mvcc/store.h"
#include "storage/engine.h"

namespace tidemark::apply {
namespace {

class LeaseApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = storage::NewInMemoryEnv();
    Open();
  }
  void Open() {
    storage::Options o;
    o.env = env_;
    auto e = storage::Engine::Open("/lease-apply-test", o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    auto s = mvcc::Store::Open(engine_.get());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    lease::Lessor::Options lo;
    lo.clock = &clock_;
    auto l = lease::Lessor::Open(engine_.get(), lo);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    lessor_ = std::move(*l);
    applier_ = std::make_unique<Applier>(store_.get(), ApplyOptions{});
    applier_->set_lessor(lessor_.get());
    index_ = store_->applied_index();
  }
  void Reopen() {
    applier_.reset();
    lessor_.reset();
    store_->Close();
    store_.reset();
    ASSERT_TRUE(engine_->Close().ok());
    engine_.reset();
    Open();
  }
  Status Apply(const internal::InternalRequest& req, internal::InternalResponse* resp = nullptr,
               std::vector<mvcc::Event>* events = nullptr) {
    internal::InternalResponse local;
    std::vector<mvcc::Event> ev;
    bool fatal = false;
    Status s = applier_->Apply(++index_, req, resp ? resp : &local, events ? events : &ev, &fatal);
    EXPECT_FALSE(fatal) << s.ToString();
    return s;
  }
  Status Grant(int64_t id, int64_t ttl, etcdserverpb::LeaseGrantResponse* out = nullptr) {
    internal::InternalRequest r;
    r.mutable_lease_grant()->set_id(id);
    r.mutable_lease_grant()->set_ttl(ttl);
    internal::InternalResponse resp;
    Status s = Apply(r, &resp);
    if (out != nullptr) *out = resp.lease_grant();
    return s;
  }
  Status Revoke(int64_t id, std::vector<mvcc::Event>* events = nullptr, bool expire = false,
                uint64_t grant_index = 0) {
    internal::InternalRequest r;
    if (expire) {
      r.mutable_lease_expire()->set_id(id);
      r.mutable_lease_expire()->set_grant_index(grant_index);
    } else {
      r.mutable_lease_revoke()->set_id(id);
    }
    return Apply(r, nullptr, events);
  }
  Status Put(const std::string& k, int64_t lease, bool ignore_lease = false) {
    internal::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value("v");
    r.mutable_put()->set_lease(lease);
    r.mutable_put()->set_ignore_lease(ignore_lease);
    return Apply(r);
  }
  Status Delete(const std::string& k, const std::string& end = "") {
    internal::InternalRequest r;
    r.mutable_delete_range()->set_key(k);
    r.mutable_delete_range()->set_range_end(end);
    return Apply(r);
  }
  int64_t LeaseOf(const std::string& k) {
    etcdserverpb::RangeRequest r;
    r.set_key(k);
    etcdserverpb::RangeResponse resp;
    EXPECT_TRUE(applier_->Range(r, &resp).ok());
    return resp.kvs_size() == 0 ? -1 : resp.kvs(0).lease();
  }
  std::vector<std::string> Keys(int64_t id) { return lessor_->Keys(id); }

  ManualClock clock_;
  std::shared_ptr<storage::Env> env_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<lease::Lessor> lessor_;
  std::unique_ptr<Applier> applier_;
  uint64_t index_ = 0;
};

// An expiry found for one lease must not revoke a lease granted later under
// the same ID (client revoke + re-grant while the expiry was in flight).
TEST_F(LeaseApplyTest, ExpiryOfARevokedAndRegrantedIdIsIgnored) {
  ASSERT_TRUE(Grant(7, 5).ok());
  const uint64_t first = index_;
  EXPECT_EQ(lessor_->GrantIndex(7), first);
  clock_.Advance(std::chrono::seconds(6));
  const auto expired = lessor_->CheckExpiredLeases();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0], (lease::Lessor::Expired{7, first}));
  // The client revokes and grants 7 again before the expiry is applied.
  ASSERT_TRUE(Revoke(7).ok());
  ASSERT_TRUE(Grant(7, 60).ok());
  const uint64_t second = index_;
  ASSERT_TRUE(Put("k", 7).ok());
  const int64_t rev = store_->current_revision();
  ASSERT_TRUE(Revoke(7, nullptr, /*expire=*/true, first).ok());
  EXPECT_TRUE(lessor_->Exists(7));
  EXPECT_EQ(LeaseOf("k"), 7);
  EXPECT_EQ(store_->current_revision(), rev);  // nothing happened
  // Survives a restart with its grant index; its own expiry still works.
  Reopen();
  EXPECT_EQ(lessor_->GrantIndex(7), second);
  ASSERT_TRUE(Revoke(7, nullptr, /*expire=*/true, second).ok());
  EXPECT_FALSE(lessor_->Exists(7));
  EXPECT_EQ(LeaseOf("k"), -1);
  // Entries written before grant indexes existed (0) revoke as before.
  ASSERT_TRUE(Grant(8, 5).ok());
  ASSERT_TRUE(Revoke(8, nullptr, /*expire=*/true, 0).ok());
  EXPECT_FALSE(lessor_->Exists(8));
}

TEST_F(LeaseApplyTest, GrantRules) {
  etcdserverpb::LeaseGrantResponse out;
  ASSERT_TRUE(Grant(100, 1, &out).ok());
  EXPECT_EQ(out.id(), 100);
  EXPECT_EQ(out.ttl(), 2);  // raised to the minimum
  EXPECT_EQ(out.header().revision(), 1);
  EXPECT_EQ(store_->current_revision(), 1);  // a grant takes no revision
  Status s = Grant(100, 10);
  EXPECT_EQ(s.message(), kErrLeaseExist);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  s = Grant(101, lease::kMaxTTLSeconds + 1);
  EXPECT_EQ(s.message(), kErrLeaseTTLTooLarge);
  EXPECT_EQ(s.code(), Code::kOutOfRange);
  EXPECT_FALSE(lessor_->Exists(101));
  ASSERT_TRUE(Grant(102, lease::kMaxTTLSeconds).ok());
  EXPECT_EQ(store_->applied_index(), index_);  // failed grants consume their entry
}

TEST_F(LeaseApplyTest, PutWithUnknownLeaseFails) {
  Status s = Put("k", 5);
  EXPECT_EQ(s.message(), kErrLeaseNotFound);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(LeaseOf("k"), -1);
  s = Revoke(5);
  EXPECT_EQ(s.message(), kErrLeaseNotFound);
  EXPECT_TRUE(Revoke(5, nullptr, /*expire=*/true).ok());  // expiry of a gone lease: no-op
}

TEST_F(LeaseApplyTest, RevokeDeletesAllAttachedKeysInOneRevision) {
  ASSERT_TRUE(Grant(1, 60).ok());
  ASSERT_TRUE(Put("b", 1).ok());
  ASSERT_TRUE(Put("a", 1).ok());
  ASSERT_TRUE(Put("c", 0).ok());
  ASSERT_TRUE(Put("d", 1).ok());
  const int64_t rev = store_->current_revision();
  std::vector<mvcc::Event> events;
  ASSERT_TRUE(Revoke(1, &events).ok());
  EXPECT_EQ(store_->current_revision(), rev + 1);
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) {
    EXPECT_EQ(e.type, mvcc::EventType::kDelete);
    EXPECT_EQ(e.kv.mod_revision, rev + 1);
  }
  EXPECT_EQ(events[0].kv.key, "a");
  EXPECT_EQ(events[2].kv.key, "d");
  EXPECT_EQ(LeaseOf("a"), -1);
  EXPECT_EQ(LeaseOf("c"), 0);  // unleased key survives
  EXPECT_FALSE(lessor_->Exists(1));
}

TEST_F(LeaseApplyTest, RevokeWithoutKeysTakesNoRevision) {
  ASSERT_TRUE(Grant(1, 60).ok());
  const int64_t rev = store_->current_revision();
  ASSERT_TRUE(Revoke(1).ok());
  EXPECT_EQ(store_->current_revision(), rev);
  EXPECT_FALSE(lessor_->Exists(1));
}

TEST_F(LeaseApplyTest, ExpireActsLikeRevoke) {
  ASSERT_TRUE(Grant(1, 2).ok());
  ASSERT_TRUE(Put("k", 1).ok());
  const int64_t rev = store_->current_revision();
  ASSERT_TRUE(Revoke(1, nullptr, /*expire=*/true).ok());
  EXPECT_EQ(store_->current_revision(), rev + 1);
  EXPECT_EQ(LeaseOf("k"), -1);
}

TEST_F(LeaseApplyTest, AttachDetachRules) {
  ASSERT_TRUE(Grant(1, 60).ok());
  ASSERT_TRUE(Grant(2, 60).ok());
  ASSERT_TRUE(Put("k", 1).ok());
  EXPECT_EQ(Keys(1), std::vector<std::string>{"k"});
  ASSERT_TRUE(Put("k", 2).ok());  // moves to lease 2
  EXPECT_TRUE(Keys(1).empty());
  EXPECT_EQ(Keys(2), std::vector<std::string>{"k"});
  ASSERT_TRUE(Put("k", 0, /*ignore_lease=*/true).ok());  // keeps it
  EXPECT_EQ(LeaseOf("k"), 2);
  EXPECT_EQ(Keys(2), std::vector<std::string>{"k"});
  ASSERT_TRUE(Put("k", 0).ok());  // lease 0 detaches
  EXPECT_EQ(LeaseOf("k"), 0);
  EXPECT_TRUE(Keys(2).empty());
  ASSERT_TRUE(Put("x1", 1).ok());
  ASSERT_TRUE(Put("x2", 1).ok());
  ASSERT_TRUE(Delete("x1", "x3").ok());  // deletes detach
  EXPECT_TRUE(Keys(1).empty());
  // A revoke now deletes nothing and takes no revision.
  const int64_t rev = store_->current_revision();
  ASSERT_TRUE(Revoke(1).ok());
  EXPECT_EQ(store_->current_revision(), rev);
}

TEST_F(LeaseApplyTest, TxnAttachesAndDetaches) {
  ASSERT_TRUE(Grant(1, 60).ok());
  ASSERT_TRUE(Put("gone", 1).ok());
  internal::InternalRequest r;
  auto* t = r.mutable_txn();
  auto* p = t->add_success()->mutable_request_put();
  p->set_key("new");
  p->set_lease(1);
  t->add_success()->mutable_request_delete_range()->set_key("gone");
  ASSERT_TRUE(Apply(r).ok());
  EXPECT_EQ(Keys(1), std::vector<std::string>{"new"});
}

TEST_F(LeaseApplyTest, FailedTxnAttachesNothing) {
  ASSERT_TRUE(Grant(1, 60).ok());
  internal::InternalRequest r;
  auto* t = r.mutable_txn();
  auto* p = t->add_success()->mutable_request_put();
  p->set_key("a");
  p->set_lease(1);
  auto* q = t->add_success()->mutable_request_put();
  q->set_key("b");
  q->set_lease(9);  // unknown: the whole txn fails
  EXPECT_EQ(Apply(r).message(), kErrLeaseNotFound);
  EXPECT_TRUE(Keys(1).empty());
  EXPECT_EQ(LeaseOf("a"), -1);
}

TEST_F(LeaseApplyTest, LeasesAndAttachmentsSurviveRestart) {
  ASSERT_TRUE(Grant(1, 30).ok());
  ASSERT_TRUE(Put("a", 1).ok());
  ASSERT_TRUE(Put("b", 1).ok());
  ASSERT_TRUE(Put("b", 0).ok());
  Reopen();
  ASSERT_TRUE(lessor_->Exists(1));
  EXPECT_EQ(Keys(1), std::vector<std::string>{"a"});
  EXPECT_EQ(lessor_->TimeToLive(1, false)->granted_ttl, 30);
  ASSERT_TRUE(Revoke(1).ok());
  EXPECT_EQ(LeaseOf("a"), -1);
  EXPECT_EQ(LeaseOf("b"), 0);
  Reopen();
  EXPECT_FALSE(lessor_->Exists(1));
}

}  // namespace
}  // namespace tidemark::apply
