"""A SigV4-VERIFYING reverse proxy for the S3 tests (s3rver itself does not
check SigV4 signatures). Each request's signature is recomputed here, from
the AWS SigV4 specification, independently of libcurl (canonical request
with the query re-canonicalised: sorted, RFC 3986 encoded), over exactly the
headers the client signed; the payload hash header must also equal the
SHA-256 of the body received. A mismatch is answered 403
SignatureDoesNotMatch (logged); a match is forwarded to s3rver unchanged.

s3rver also ignores conditional writes, which real S3 honours (`If-None-Match: *`
on PUT: 412 PreconditionFailed if the key exists). The proxy enforces that for
signed PUTs (existence checked with a HEAD upstream; conditional PUTs are
serialised so two racing writers cannot both pass), so the archive's
create-only chunk names and its second-writer fencing can be tested on S3.
Loopback only.

Run: /usr/bin/python3 sigv4_proxy.py LISTEN_PORT UPSTREAM_PORT SECRET"""
import http.client
import http.server
import re
import sys
import threading

import hashlib
import hmac
from urllib.parse import quote, unquote

LISTEN, UPSTREAM, SECRET = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
bad = 0
lock = threading.Lock()
conditional = threading.Lock()  # serialises If-None-Match PUTs (check + write)

AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d+)/([^/]+)/s3/aws4_request, "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]+)")


def enc(v):
    return quote(v, safe="-_.~")


def canonical_query(q):
    if not q:
        return ""
    pairs = []
    for part in q.split("&"):
        k, _, v = part.partition("=")
        pairs.append((enc(unquote(k)), enc(unquote(v))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def verify(method, path, headers, body):
    m = AUTH_RE.match(headers.get("Authorization", ""))
    if not m:
        return "no SigV4 Authorization header"
    key, day, region, signed, sig = m.groups()
    payload = headers.get("x-amz-content-sha256", "")
    if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 does not match the body"
    upath, _, q = path.partition("?")
    names = signed.split(";")
    if names != sorted(names) or "host" not in names:
        return "bad SignedHeaders"
    canon_headers = "".join(f"{n}:{' '.join(str(headers.get(n, '')).split())}\n" for n in names)
    canonical = "\n".join([method, upath, canonical_query(q), canon_headers, signed, payload])
    amzdate = headers["X-Amz-Date"]
    scope = f"{day}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    k = hm(hm(hm(hm(("AWS4" + SECRET).encode(), day), region), "s3"), "aws4_request")
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if want != sig:
        return f"signature mismatch; canonical request was:\n{canonical}"
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        global bad
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if len(body) < n:
            # The client died mid-upload (a test SIGKILLs the server): the
            # body is cut short, which says nothing about its signature.
            self.close_connection = True
            return
        err = verify(self.command, self.path, self.headers, body)
        if err:
            with lock:
                bad += 1
            sys.stderr.write(f"REJECTED {self.command} {self.path}: {err}\n")
            sys.stderr.flush()
            self.error(403, "SignatureDoesNotMatch")
            return
        if self.command == "PUT" and self.headers.get("If-None-Match", "").strip() == "*":
            with conditional:
                h = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
                h.request("HEAD", self.path.split("?")[0])
                exists = h.getresponse().status == 200
                h.close()
                if exists:
                    self.error(412, "PreconditionFailed")
                    return
                self.forward(body)
            return
        self.forward(body)

    def error(self, status, code):
        msg = f"<Error><Code>{code}</Code></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        self.wfile.write(msg)

    def forward(self, body):
        c = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


if __name__ == "__main__":
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", LISTEN), Handler)
    print("sigv4 proxy listening", flush=True)
    srv.serve_forever()
