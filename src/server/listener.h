#pragma once
// One client port for gRPC and HTTP/1.x, as etcd serves both on :2379.
//
// SharedListener accepts TCP connections itself and sniffs the first bytes:
// a connection that opens with the HTTP/2 client preface ("PRI * HTTP/2.0")
// is handed to the gRPC server (grpc::AddInsecureChannelFromFd); anything
// else is HTTP/1.x and is proxied byte-for-byte to the internal HTTP server
// listening on a private loopback port. A connection that sends nothing for
// `sniff_timeout_ms` is closed.
//
// Threads: one "accept" thread (poll loop over the listening socket and the
// connections still being sniffed) and one short-lived thread per proxied
// HTTP connection. Start/Stop are called by the owner thread only.

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "base/status.h"

namespace tidemark::server {

class SharedListener {
 public:
  struct Handlers {
    std::function<void(int fd)> grpc;   // takes ownership of fd
    int http_port = 0;                  // internal HTTP/1 server on 127.0.0.1
  };

  SharedListener() = default;
  ~SharedListener();
  SharedListener(const SharedListener&) = delete;
  SharedListener& operator=(const SharedListener&) = delete;

  // Binds host:port (port 0 picks a free one). Errors name the address.
  Status Bind(const std::string& host, int port);
  int port() const { return port_; }
  void Start(Handlers handlers);
  // Stops accepting; open proxied connections are shut down.
  void Stop();

 private:
  void AcceptLoop();
  void Proxy(int client_fd);

  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  int port_ = 0;
  Handlers handlers_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> live_proxies_{0};
  std::thread accept_thread_;
};

}  // namespace tidemark::server
