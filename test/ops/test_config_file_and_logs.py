"""--config-file (YAML, etcd's flag names as keys, replaces the command-line
flags as in etcd) and structured JSON logs; SIGTERM ends the process cleanly."""
import json
import signal
import subprocess
import time

import grpc
from etcd3 import etcdrpc

from tmserver import binary, free_port


def test_yaml_config_file_and_json_logs(tmp_path):
    port = free_port()
    cfg = tmp_path / "tidemark.yaml"
    cfg.write_text(
        "name: from-yaml\n"
        f"data-dir: {tmp_path / 'data'}\n"
        f"listen-client-urls: http://127.0.0.1:{port}\n"
        "max-txn-ops: 2\n"
        "log-level: info\n")
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        # --name on the command line is ignored because a config file is given.
        proc = subprocess.Popen([binary(), "serve", "--config-file", str(cfg), "--name", "ignored"],
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        while True:
            try:
                members = etcdrpc.ClusterStub(ch).MemberList(etcdrpc.MemberListRequest(), timeout=1)
                break
            except grpc.RpcError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        assert members.members[0].name == "from-yaml"
        ops = [etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=b"k%d" % i, value=b"v"))
               for i in range(3)]
        try:
            etcdrpc.KVStub(ch).Txn(etcdrpc.TxnRequest(success=ops), timeout=5)
            raise AssertionError("3 ops accepted with max-txn-ops: 2")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.details() == "etcdserver: too many operations in txn request"
        ch.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    assert rc == 0
    lines = [l for l in log.read_text().splitlines() if l.strip()]
    assert lines, "no log output"
    for line in lines:
        entry = json.loads(line)  # every line is one JSON object
        assert {"level", "ts", "msg"} <= entry.keys(), line
    msgs = [json.loads(l)["msg"] for l in lines]
    assert "ready to serve client requests" in msgs
    assert "stopped" in msgs
