#include "server/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <vector>

#include "base/log.h"

namespace tidemark::server {
namespace {

constexpr int kSniffTimeoutMs = 10000;
constexpr char kH2Preface[] = "PRI * HTTP/2.0";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void CloseFd(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace

SharedListener::~SharedListener() { Stop(); }

Status SharedListener::Bind(const std::string& host, int port) {
  struct addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  struct addrinfo* res = nullptr;
  std::string port_str = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port_str.c_str(), &hints, &res);
  if (rc != 0) {
    return InvalidArgumentError("listen: cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::string last_err = "no address";
  for (auto* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_err = std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
      last_err = std::strerror(errno);
      ::close(fd);
      continue;
    }
    struct sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    listen_fd_ = fd;
    break;
  }
  freeaddrinfo(res);
  if (listen_fd_ < 0) {
    return Status(Code::kIoError, "listen: cannot bind " + host + ":" + port_str + ": " + last_err);
  }
  if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return IoError(std::string("listen: pipe: ") + std::strerror(errno));
  }
  return Status::Ok();
}

void SharedListener::Start(Handlers handlers) {
  handlers_ = std::move(handlers);
  accept_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "accept");
    AcceptLoop();
  });
}

void SharedListener::Stop() {
  if (stopping_.exchange(true)) return;
  if (wake_pipe_[1] >= 0) {
    char c = 1;
    (void)!::write(wake_pipe_[1], &c, 1);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  CloseFd(listen_fd_);
  listen_fd_ = -1;
  // Proxy threads notice `stopping_` within their poll interval.
  for (int i = 0; i < 200 && live_proxies_.load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CloseFd(wake_pipe_[0]);
  CloseFd(wake_pipe_[1]);
  wake_pipe_[0] = wake_pipe_[1] = -1;
}

void SharedListener::AcceptLoop() {
  std::map<int, int64_t> sniffing;  // fd -> deadline
  std::vector<pollfd> pfds;
  while (!stopping_.load()) {
    pfds.clear();
    pfds.push_back({listen_fd_, POLLIN, 0});
    pfds.push_back({wake_pipe_[0], POLLIN, 0});
    for (auto& [fd, _] : sniffing) pfds.push_back({fd, POLLIN, 0});
    int n = ::poll(pfds.data(), pfds.size(), 500);
    if (n < 0 && errno != EINTR) {
      log::Error("accept loop poll failed", {{"error", std::string(std::strerror(errno))}});
      break;
    }
    if (stopping_.load()) break;
    if (pfds[0].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sniffing[fd] = NowMs() + kSniffTimeoutMs;
      }
    }
    int64_t now = NowMs();
    for (size_t i = 2; i < pfds.size(); ++i) {
      int fd = pfds[i].fd;
      bool ready = pfds[i].revents & (POLLIN | POLLHUP | POLLERR);
      if (!ready) {
        if (now > sniffing[fd]) {
          sniffing.erase(fd);
          ::close(fd);
        }
        continue;
      }
      char buf[sizeof(kH2Preface) - 1];
      ssize_t got = ::recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
      if (got <= 0) {
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          sniffing.erase(fd);
          ::close(fd);
        }
        continue;
      }
      // Decide as soon as the bytes seen so far rule one protocol out.
      bool maybe_h2 = std::memcmp(buf, kH2Preface, static_cast<size_t>(got)) == 0;
      if (maybe_h2 && static_cast<size_t>(got) < sizeof buf) continue;  // need more bytes
      sniffing.erase(fd);
      if (maybe_h2) {
        // gRPC's TCP endpoint expects a non-blocking socket (a blocking one
        // stalls its poller under load).
        int flags = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        handlers_.grpc(fd);
      } else {
        live_proxies_.fetch_add(1);
        std::thread([this, fd] {
          Proxy(fd);
          live_proxies_.fetch_sub(1);
        }).detach();
      }
    }
  }
  for (auto& [fd, _] : sniffing) ::close(fd);
}

void SharedListener::Proxy(int client_fd) {
  int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(handlers_.http_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (up < 0 || ::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    log::Error("http proxy: cannot reach internal HTTP server",
               {{"error", std::string(std::strerror(errno))}});
    CloseFd(up);
    ::close(client_fd);
    return;
  }
  int one = 1;
  setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pollfd pfds[2] = {{client_fd, POLLIN, 0}, {up, POLLIN, 0}};
  bool open[2] = {true, true};
  char buf[64 * 1024];
  while (!stopping_.load() && (open[0] || open[1])) {
    pfds[0].events = open[0] ? POLLIN : 0;
    pfds[1].events = open[1] ? POLLIN : 0;
    int n = ::poll(pfds, 2, 200);
    if (n < 0 && errno != EINTR) break;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int from = pfds[i].fd;
      int to = pfds[1 - i].fd;
      ssize_t r = ::recv(from, buf, sizeof buf, 0);
      if (r <= 0) {
        // Half-close: pass EOF on, keep reading the other direction.
        open[i] = false;
        ::shutdown(to, SHUT_WR);
        if (r < 0 || !open[1 - i]) done = true;
        continue;
      }
      for (ssize_t off = 0; off < r;) {
        ssize_t w = ::send(to, buf + off, static_cast<size_t>(r - off), MSG_NOSIGNAL);
        if (w <= 0) {
          done = true;
          break;
        }
        off += w;
      }
    }
    if (done) break;
  }
  ::close(up);
  ::close(client_fd);
}

}  // namespace tidemark::server
