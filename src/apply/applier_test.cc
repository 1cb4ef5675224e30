// Apply-level semantics of etcd 3.4 (Put, DeleteRange, Txn, Compact, alarms)
// and the stateless validation done before proposing.
#include "apply/applier.h"

#include <gtest/gtest.h>

#include <memory>

#include "apply/errors.h"
#include "mvcc/store.h"
#include "storage/engine.h"
#include "storage/write_batch.h"

namespace tidemark::apply {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::TxnRequest;

class ApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = storage::NewInMemoryEnv();
    Open();
  }
  void Open() {
    storage::Options o;
    o.env = env_;
    auto e = storage::Engine::Open("/applier-test", o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    auto s = mvcc::Store::Open(engine_.get());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    applier_ = std::make_unique<Applier>(store_.get(), ApplyOptions{});
    auto l = lease::Lessor::Open(engine_.get(), lease::Lessor::Options{});
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    lessor_ = std::move(*l);
    applier_->set_lessor(lessor_.get());
    if (!lessor_->Exists(42)) {  // lease 42 exists in every test
      lease::Delta d;
      d.Grant(42, 60);
      storage::WriteBatch b(engine_.get());
      lessor_->WriteTo(d, &b);
      ASSERT_TRUE(engine_->Write(b).ok());
      lessor_->Publish(d);
    }
    ASSERT_TRUE(applier_->LoadAlarms().ok());
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

  Status Apply(const internal::InternalRequest& req, internal::InternalResponse* resp = nullptr) {
    internal::InternalResponse local;
    std::vector<mvcc::Event> events;
    bool fatal = false;
    Status s = applier_->Apply(++index_, req, resp ? resp : &local, &events, &fatal);
    EXPECT_FALSE(fatal) << s.ToString();
    return s;
  }
  Status Put(const std::string& k, const std::string& v, int64_t lease = 0) {
    internal::InternalRequest r;
    r.mutable_put()->set_key(k);
    r.mutable_put()->set_value(v);
    r.mutable_put()->set_lease(lease);
    return Apply(r);
  }
  Status Txn(const TxnRequest& t, etcdserverpb::TxnResponse* out = nullptr) {
    internal::InternalRequest r;
    *r.mutable_txn() = t;
    internal::InternalResponse resp;
    Status s = Apply(r, &resp);
    if (out != nullptr) *out = resp.txn();
    return s;
  }
  std::string Get(const std::string& k) {
    etcdserverpb::RangeRequest r;
    r.set_key(k);
    etcdserverpb::RangeResponse resp;
    EXPECT_TRUE(applier_->Range(r, &resp).ok());
    return resp.kvs_size() == 0 ? "<none>" : resp.kvs(0).value();
  }

  std::shared_ptr<storage::Env> env_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<lease::Lessor> lessor_;
  std::unique_ptr<Applier> applier_;
  uint64_t index_ = 0;
};

Compare* AddCompare(TxnRequest* t, const std::string& key, Compare::CompareTarget target,
                    Compare::CompareResult result) {
  auto* c = t->add_compare();
  c->set_key(key);
  c->set_target(target);
  c->set_result(result);
  return c;
}

void AddPut(google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>* ops,
            const std::string& k, const std::string& v) {
  auto* p = ops->Add()->mutable_request_put();
  p->set_key(k);
  p->set_value(v);
}

TEST_F(ApplierTest, PutAssignsRevisionsAndConsumesFailedEntries) {
  internal::InternalRequest r;
  r.mutable_put()->set_key("a");
  r.mutable_put()->set_value("1");
  internal::InternalResponse resp;
  ASSERT_TRUE(Apply(r, &resp).ok());
  EXPECT_EQ(resp.put().header().revision(), 2);
  // A missing lease fails, consumes the index, and changes nothing.
  Status s = Put("b", "x", /*lease=*/7);
  EXPECT_EQ(s.message(), kErrLeaseNotFound);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(store_->current_revision(), 2);
  EXPECT_EQ(store_->applied_index(), index_);
  ASSERT_TRUE(Put("b", "x", 42).ok());
  EXPECT_EQ(store_->current_revision(), 3);
}

TEST_F(ApplierTest, IgnoreValueAndLease) {
  internal::InternalRequest r;
  r.mutable_put()->set_key("k");
  r.mutable_put()->set_ignore_value(true);
  EXPECT_EQ(Apply(r).message(), kErrKeyNotFound);
  ASSERT_TRUE(Put("k", "v1", 42).ok());
  internal::InternalResponse resp;
  r.mutable_put()->set_prev_kv(true);
  ASSERT_TRUE(Apply(r, &resp).ok());
  EXPECT_EQ(Get("k"), "v1");
  EXPECT_EQ(resp.put().prev_kv().value(), "v1");
  etcdserverpb::RangeRequest rr;
  rr.set_key("k");
  etcdserverpb::RangeResponse out;
  ASSERT_TRUE(applier_->Range(rr, &out).ok());
  EXPECT_EQ(out.kvs(0).lease(), 0);  // lease 0 without ignore_lease detaches
  EXPECT_EQ(out.kvs(0).version(), 2);
  ASSERT_TRUE(Put("k", "v2", 42).ok());
  internal::InternalRequest keep;
  keep.mutable_put()->set_key("k");
  keep.mutable_put()->set_value("v3");
  keep.mutable_put()->set_ignore_lease(true);
  ASSERT_TRUE(Apply(keep).ok());
  out.Clear();
  ASSERT_TRUE(applier_->Range(rr, &out).ok());
  EXPECT_EQ(out.kvs(0).lease(), 42);
  EXPECT_EQ(out.kvs(0).value(), "v3");
}

TEST_F(ApplierTest, ValidationMatchesEtcd) {
  etcdserverpb::PutRequest p;
  EXPECT_EQ(applier_->ValidatePut(p).message(), kErrEmptyKey);
  p.set_key("k");
  p.set_ignore_value(true);
  p.set_value("v");
  EXPECT_EQ(applier_->ValidatePut(p).message(), kErrValueProvided);
  p.clear_value();
  p.set_ignore_lease(true);
  p.set_lease(5);
  EXPECT_EQ(applier_->ValidatePut(p).message(), kErrLeaseProvided);

  TxnRequest t;
  for (int i = 0; i < 129; ++i) AddPut(t.mutable_success(), "k" + std::to_string(i), "v");
  EXPECT_EQ(applier_->ValidateTxn(t).message(), kErrTooManyOps);
  t.mutable_success()->RemoveLast();
  EXPECT_TRUE(applier_->ValidateTxn(t).ok());

  TxnRequest empty_op;
  empty_op.add_success();
  EXPECT_EQ(applier_->ValidateTxn(empty_op).message(), kErrKeyNotFound);

  TxnRequest empty_cmp;
  AddCompare(&empty_cmp, "", Compare::VERSION, Compare::EQUAL);
  EXPECT_EQ(applier_->ValidateTxn(empty_cmp).message(), kErrEmptyKey);
}

TEST_F(ApplierTest, DuplicateKeyRules) {
  TxnRequest two_puts;
  AddPut(two_puts.mutable_success(), "a", "1");
  AddPut(two_puts.mutable_success(), "a", "2");
  EXPECT_EQ(applier_->ValidateTxn(two_puts).message(), kErrDuplicateKey);

  TxnRequest put_in_delete;
  auto* d = put_in_delete.add_success()->mutable_request_delete_range();
  d->set_key("a");
  d->set_range_end("c");
  AddPut(put_in_delete.mutable_success(), "b", "1");
  EXPECT_EQ(applier_->ValidateTxn(put_in_delete).message(), kErrDuplicateKey);

  // Success and failure lists are independent.
  TxnRequest branches;
  AddPut(branches.mutable_success(), "a", "1");
  AddPut(branches.mutable_failure(), "a", "2");
  EXPECT_TRUE(applier_->ValidateTxn(branches).ok());

  // A nested txn's then/else may write the same key, but not one the outer list writes.
  TxnRequest nested;
  auto* inner = nested.add_success()->mutable_request_txn();
  AddPut(inner->mutable_success(), "x", "1");
  AddPut(inner->mutable_failure(), "x", "2");
  EXPECT_TRUE(applier_->ValidateTxn(nested).ok());
  AddPut(nested.mutable_success(), "x", "3");
  EXPECT_EQ(applier_->ValidateTxn(nested).message(), kErrDuplicateKey);

  // Two overlapping deletes are fine.
  TxnRequest dels;
  for (int i = 0; i < 2; ++i) {
    auto* dd = dels.add_success()->mutable_request_delete_range();
    dd->set_key("a");
    dd->set_range_end("z");
  }
  EXPECT_TRUE(applier_->ValidateTxn(dels).ok());
}

TEST_F(ApplierTest, CompareTargetsAndMissingKeys) {
  ASSERT_TRUE(Put("k", "v", 42).ok());  // rev 2
  struct Case {
    Compare::CompareTarget target;
    Compare::CompareResult result;
    int64_t operand;
    std::string value;
    bool want;
  } cases[] = {
      {Compare::VERSION, Compare::EQUAL, 1, "", true},
      {Compare::VERSION, Compare::GREATER, 0, "", true},
      {Compare::CREATE, Compare::EQUAL, 2, "", true},
      {Compare::MOD, Compare::LESS, 3, "", true},
      {Compare::MOD, Compare::NOT_EQUAL, 2, "", false},
      {Compare::LEASE, Compare::EQUAL, 42, "", true},
      {Compare::VALUE, Compare::EQUAL, 0, "v", true},
      {Compare::VALUE, Compare::GREATER, 0, "u", true},
      {Compare::VALUE, Compare::LESS, 0, "u", false},
  };
  for (const auto& c : cases) {
    TxnRequest t;
    auto* cmp = AddCompare(&t, "k", c.target, c.result);
    switch (c.target) {
      case Compare::VERSION: cmp->set_version(c.operand); break;
      case Compare::CREATE: cmp->set_create_revision(c.operand); break;
      case Compare::MOD: cmp->set_mod_revision(c.operand); break;
      case Compare::LEASE: cmp->set_lease(c.operand); break;
      default: cmp->set_value(c.value); break;
    }
    etcdserverpb::TxnResponse out;
    ASSERT_TRUE(Txn(t, &out).ok());
    EXPECT_EQ(out.succeeded(), c.want) << Compare::CompareTarget_Name(c.target) << " "
                                       << Compare::CompareResult_Name(c.result);
    // Read-only txn: the revision does not move.
    EXPECT_EQ(out.header().revision(), 2);
  }
  // Missing key: VALUE compares are always false; others see zeros.
  TxnRequest missing_value;
  AddCompare(&missing_value, "nope", Compare::VALUE, Compare::NOT_EQUAL)->set_value("x");
  etcdserverpb::TxnResponse out;
  ASSERT_TRUE(Txn(missing_value, &out).ok());
  EXPECT_FALSE(out.succeeded());
  TxnRequest missing_create;
  AddCompare(&missing_create, "nope", Compare::CREATE, Compare::EQUAL)->set_create_revision(0);
  ASSERT_TRUE(Txn(missing_create, &out).ok());
  EXPECT_TRUE(out.succeeded());
}

TEST_F(ApplierTest, TxnOpsShareOneRevisionAndSeeEarlierWrites) {
  TxnRequest t;
  AddPut(t.mutable_success(), "a", "1");
  AddPut(t.mutable_success(), "b", "2");
  auto* r = t.add_success()->mutable_request_range();
  r->set_key("a");
  r->set_range_end("c");
  etcdserverpb::TxnResponse out;
  ASSERT_TRUE(Txn(t, &out).ok());
  EXPECT_TRUE(out.succeeded());
  EXPECT_EQ(out.header().revision(), 2);
  ASSERT_EQ(out.responses_size(), 3);
  const auto& rr = out.responses(2).response_range();
  ASSERT_EQ(rr.kvs_size(), 2);
  EXPECT_EQ(rr.kvs(0).mod_revision(), 2);
  EXPECT_EQ(rr.kvs(1).mod_revision(), 2);
  EXPECT_EQ(store_->current_revision(), 2);
}

TEST_F(ApplierTest, TxnStateErrorsOnlyForTheBranchThatRuns) {
  ASSERT_TRUE(Put("a", "1").ok());
  // The failure branch has a future-revision range; the success branch runs.
  TxnRequest t;
  AddCompare(&t, "a", Compare::VERSION, Compare::EQUAL)->set_version(1);
  AddPut(t.mutable_success(), "b", "ok");
  t.add_failure()->mutable_request_range()->set_key("a");
  t.mutable_failure(0)->mutable_request_range()->set_revision(100);
  ASSERT_TRUE(Txn(t).ok());
  EXPECT_EQ(Get("b"), "ok");
  // Now make the failing branch run: nothing of it may be applied.
  TxnRequest u;
  AddCompare(&u, "a", Compare::VERSION, Compare::EQUAL)->set_version(5);
  AddPut(u.mutable_failure(), "c", "must-not-exist");
  u.add_failure()->mutable_request_range()->set_key("a");
  u.mutable_failure(1)->mutable_request_range()->set_revision(100);
  int64_t before = store_->current_revision();
  EXPECT_EQ(Txn(u).message(), kErrFutureRev);
  EXPECT_EQ(Get("c"), "<none>");
  EXPECT_EQ(store_->current_revision(), before);
}

TEST_F(ApplierTest, NestedTxnComparesSeeStateBeforeTheTxn) {
  // etcd 3.4 evaluates every compare (nested too) before executing ops.
  TxnRequest t;
  AddPut(t.mutable_success(), "n", "1");
  auto* inner = t.add_success()->mutable_request_txn();
  AddCompare(inner, "n", Compare::VERSION, Compare::EQUAL)->set_version(0);
  AddPut(inner->mutable_success(), "inner", "saw-missing");
  AddPut(inner->mutable_failure(), "inner", "saw-present");
  etcdserverpb::TxnResponse out;
  ASSERT_TRUE(Txn(t, &out).ok());
  EXPECT_EQ(Get("inner"), "saw-missing");
  EXPECT_TRUE(out.responses(1).response_txn().succeeded());
}

TEST_F(ApplierTest, CompactErrors) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put("k", std::to_string(i)).ok());  // rev 2..6
  internal::InternalRequest c;
  c.mutable_compaction()->set_revision(10);
  EXPECT_EQ(Apply(c).message(), "mvcc: required revision is a future revision");
  c.mutable_compaction()->set_revision(4);
  ASSERT_TRUE(Apply(c).ok());
  EXPECT_EQ(Apply(c).message(), "mvcc: required revision has been compacted");
  EXPECT_EQ(store_->applied_index(), index_);
  etcdserverpb::RangeRequest r;
  r.set_key("k");
  r.set_revision(3);
  etcdserverpb::RangeResponse out;
  EXPECT_EQ(applier_->Range(r, &out).code(), Code::kOutOfRange);
  r.set_revision(4);
  EXPECT_TRUE(applier_->Range(r, &out).ok());
  EXPECT_EQ(out.kvs(0).value(), "2");
}

TEST_F(ApplierTest, AlarmsPersistAcrossReopen) {
  internal::InternalRequest a;
  a.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  a.mutable_alarm()->set_memberid(9);
  a.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
  ASSERT_TRUE(Apply(a).ok());
  EXPECT_TRUE(applier_->HasAlarm(etcdserverpb::NOSPACE));
  ASSERT_TRUE(engine_->Flush().ok());
  Reopen();
  EXPECT_TRUE(applier_->HasAlarm(etcdserverpb::NOSPACE));
  a.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
  index_ = store_->applied_index();
  ASSERT_TRUE(Apply(a).ok());
  EXPECT_FALSE(applier_->HasAlarm(etcdserverpb::NOSPACE));
}

}  // namespace
}  // namespace tidemark::apply
