// Each function reproduces one cause of DESIGN.md's table with real kernel sockets.
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fmt/format.h>

#include "lab/scenario.hpp"

namespace rstscope::lab {

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Endpoint endpoint(const char* ip, uint16_t port) {
  Endpoint result;
  const Address address = parse_ip(ip);
  if (address.is_v6()) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    std::memcpy(&v6->sin6_addr, address.bytes.data(), 16);
    result.length = sizeof(sockaddr_in6);
    result.family = AF_INET6;
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&result.address);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    std::memcpy(&v4->sin_addr, address.bytes.data(), 4);
    result.length = sizeof(sockaddr_in);
  }
  return result;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Fd listen_on(const Namespace& ns, const char* ip, uint16_t port, int backlog, int rcvbuf) {
  const Endpoint where = endpoint(ip, port);
  Fd fd(ns.socket(where.family, SOCK_STREAM, 0));
  if (!fd.valid()) return fd;
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (rcvbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&where.address), where.length) != 0 ||
      ::listen(fd.get(), backlog) != 0)
    fd.reset();
  return fd;
}

Fd start_connect(const Namespace& ns, const char* ip, uint16_t port) {
  const Endpoint where = endpoint(ip, port);
  Fd fd(ns.socket(where.family, SOCK_STREAM | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return fd;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&where.address), where.length) != 0 &&
      errno != EINPROGRESS)
    fd.reset();
  return fd;
}

bool wait_writable(int fd, int timeout_ms) {
  pollfd waiter{fd, POLLOUT, 0};
  return ::poll(&waiter, 1, timeout_ms) > 0 && (waiter.revents & POLLOUT) != 0;
}

Fd connect_to(const Namespace& ns, const char* ip, uint16_t port, int& error_code, int timeout_ms) {
  Fd fd = start_connect(ns, ip, port);
  error_code = 0;
  if (!fd.valid()) {
    error_code = errno;
    return fd;
  }
  if (!wait_writable(fd.get(), timeout_ms)) {
    error_code = ETIMEDOUT;
    fd.reset();
    return fd;
  }
  socklen_t length = sizeof error_code;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error_code, &length);
  if (error_code != 0) fd.reset();
  return fd;
}

Fd accept_one(int listener, int timeout_ms) {
  pollfd waiter{listener, POLLIN, 0};
  if (::poll(&waiter, 1, timeout_ms) <= 0) return Fd();
  return Fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
}

bool send_text(int fd, const std::string& text) {
  return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

long receive(int fd, std::string& into, int timeout_ms) {
  pollfd waiter{fd, POLLIN, 0};
  if (::poll(&waiter, 1, timeout_ms) <= 0) return -ETIMEDOUT;
  char buffer[65536];
  const ssize_t got = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
  if (got < 0) return -errno;
  into.append(buffer, static_cast<size_t>(got));
  return got;
}

void set_linger_zero(int fd) {
  const linger option{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, sizeof option);
}

uint16_t local_port(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return address.ss_family == AF_INET6
             ? ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port)
             : ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
}

void Context::add_extra(std::string origin, const Address& src, uint16_t sport, const Address& dst,
                        uint16_t dport, Expectation expectation) {
  TruthRow row;
  row.origin = std::move(origin);
  row.record.ts_ns = now_ns();
  row.record.src = src;
  row.record.sport = sport;
  row.record.dst = dst;
  row.record.dport = dport;
  row.expected = expectation.expected;
  row.indistinct = std::move(expectation.indistinct);
  row.why_indistinct = std::move(expectation.why);
  extra.push_back(std::move(row));
}

namespace {

std::string errno_name(int code) { return code == 0 ? "connected" : std::strerror(code); }

// An established connection client -> server with one request and one response exchanged.
struct Pair {
  Fd client, server;
};
bool open_pair(Context& ctx, Fd& listener, Pair& pair, const char* ip = server_v4) {
  int code = 0;
  pair.client = connect_to(ctx.net.client, ip, ctx.port, code);
  if (!pair.client.valid()) return ctx.fail(fmt::format("connect to {}:{}: {}", ip, ctx.port, errno_name(code)));
  pair.server = accept_one(listener.get());
  if (!pair.server.valid()) return ctx.fail("accept timed out");
  return true;
}
bool exchange(Context& ctx, Pair& pair) {
  std::string got;
  if (!send_text(pair.client.get(), "GET /lab HTTP/1.1\r\n\r\n")) return ctx.fail("client send failed");
  if (receive(pair.server.get(), got, 1000) <= 0) return ctx.fail("server saw no request");
  if (!send_text(pair.server.get(), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
    return ctx.fail("server send failed");
  got.clear();
  if (receive(pair.client.get(), got, 1000) <= 0) return ctx.fail("client saw no response");
  return true;
}

Expectation only(Cause cause) { return {cause, {}, {}}; }

// After a RST from the path, the client's side is gone while the server's is not: when the server
// speaks again (its FIN at the end), the client's kernel answers NO_SOCKET, a half-open reset.
Expectation after_path_reset(const host::KernelReset& record) {
  if (record.reason == "NO_SOCKET") return only(Cause::half_open);
  return only(Cause::unexplained);
}

}  // namespace

// 3.1: nothing listens on the port; the server's kernel answers the SYN with RST/ACK.
void run_refused(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) { return only(Cause::refused); };
  int code = 0;
  connect_to(ctx.net.client, server_v4, ctx.port, code);
  ctx.did(fmt::format("connect {}:{} with nothing listening: {}", server_v4, ctx.port, errno_name(code)));
  connect_to(ctx.net.client, server_v6, ctx.port, code);
  ctx.did(fmt::format("connect [{}]:{} with nothing listening: {}", server_v6, ctx.port, errno_name(code)));
}

// 3.6: the service listens on 198.51.100.2 only; the client dials 198.51.100.3 of the same host.
void run_refused_wrong_address(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) {
    return Expectation{Cause::refused_wrong_address,
                       {Cause::refused},
                       "only the same port accepting on another address of the same host tells "
                       "them apart"};
  };
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair good;
  if (!open_pair(ctx, listener, good) || !exchange(ctx, good)) return;
  ctx.did(fmt::format("server listens on {}:{} only; a connection to it works", server_v4, ctx.port));
  int code = 0;
  connect_to(ctx.net.client, server_other_v4, ctx.port, code);
  ctx.did(fmt::format("connect {}:{} (the same host's other address): {}", server_other_v4, ctx.port,
                      errno_name(code)));
}

// 3.2: the server closes with SO_LINGER 0 after answering: RST instead of FIN.
void run_abort(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) { return only(Cause::abort); };
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair pair;
  if (!open_pair(ctx, listener, pair) || !exchange(ctx, pair)) return;
  set_linger_zero(pair.server.get());
  pair.server.reset();
  ctx.did("request and response exchanged; the server closed with SO_LINGER {on, 0}");
  std::string got;
  const long status = receive(pair.client.get(), got, 1000);
  ctx.did(fmt::format("client read: {}", status < 0 ? std::strerror(static_cast<int>(-status)) : "data/EOF"));
}

// 3.2: the server closes while the client's request is still unread.
void run_abort_unread_data(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) {
    return Expectation{Cause::abort_unread_data, {Cause::abort},
                       "whether the application read the data is not on the wire"};
  };
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair pair;
  if (!open_pair(ctx, listener, pair)) return;
  send_text(pair.client.get(), std::string(300, 'q'));
  sleep_ms(100);
  pair.server.reset();
  ctx.did("client sent 300 bytes; the server closed without reading them");
  std::string got;
  receive(pair.client.get(), got, 1000);
}

// 3.2: the server closed (FIN sent, receive side shut); the client then sends data.
void run_data_after_close(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) { return only(Cause::data_after_close); };
  // Keep the orphan a full FIN-WAIT-2 socket (not a TIME-WAIT mini socket) as on most servers
  // with a long tcp_fin_timeout: then the kernel says TCP_ABORT_ON_DATA.
  ctx.net.server.sysctl("net.ipv4.tcp_fin_timeout", "120");
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair pair;
  if (!open_pair(ctx, listener, pair) || !exchange(ctx, pair)) return;
  pair.server.reset();
  std::string got;
  const long eof = receive(pair.client.get(), got, 1000);
  ctx.did(fmt::format("server closed after one exchange; client read {}", eof == 0 ? "EOF" : "something else"));
  send_text(pair.client.get(), "late request after the server's FIN\n");
  ctx.did("client sent more data after the server's FIN");
  receive(pair.client.get(), got, 1000);
}

// 3.3: the server loses the connection silently (its RST is dropped on the way), then the
// client's next segment meets no socket.
void run_half_open(Context& ctx) {
  ctx.expect = [](const host::KernelReset& record) {
    if (record.reason == "TCP_STATE") return only(Cause::abort);  // dropped by the router
    return only(Cause::half_open);
  };
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair pair;
  if (!open_pair(ctx, listener, pair) || !exchange(ctx, pair)) return;
  const std::string table = fmt::format("rs_half_{}", ctx.port);
  if (!ctx.net.router.nft(fmt::format(
          "add table inet {0}; add chain inet {0} pass {{ type filter hook forward priority 0; }}; "
          "add rule inet {0} pass tcp sport {1} tcp flags rst drop",
          table, ctx.port)))
    return void(ctx.fail("nft rule failed"));
  set_linger_zero(pair.server.get());
  pair.server.reset();
  sleep_ms(100);
  ctx.net.router.nft(fmt::format("delete table inet {}", table));
  ctx.did("the server lost the connection (its abort RST dropped in the router): a crash or restart");
  send_text(pair.client.get(), "are you there?\n");
  ctx.did("client sent data on the connection it still holds");
  std::string got;
  receive(pair.client.get(), got, 1000);
}

// 3.4: accept queue full with tcp_abort_on_overflow=1. The final ACKs of two handshakes are held
// back while two more connections fill the queue (via SYN cookies); the held ones then overflow.
void run_listen_overflow(Context& ctx) {
  ctx.expect = [](const host::KernelReset& record) {
    // Closing the listener at the end aborts the connections still queued (TCP_STATE).
    if (record.reason == "TCP_STATE") return only(Cause::abort);
    return only(Cause::listen_overflow);
  };
  ctx.net.server.sysctl("net.ipv4.tcp_abort_on_overflow", "1");
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 1);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  const std::string table = fmt::format("rs_ovf_{}", ctx.port);
  if (!ctx.net.router.nft(fmt::format(
          "add table inet {0}; add chain inet {0} pass {{ type filter hook forward priority 0; }}; "
          "add rule inet {0} pass tcp dport {1} tcp flags == ack drop",
          table, ctx.port)))
    return void(ctx.fail("nft rule failed"));
  std::vector<Fd> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(start_connect(ctx.net.client, server_v4, ctx.port));
    if (clients.back().valid()) wait_writable(clients.back().get(), 1000);
  }
  ctx.net.router.nft(fmt::format("delete table inet {}", table));
  ctx.did("server listens with backlog 1 and never accepts; tcp_abort_on_overflow=1");
  ctx.did("4 clients connect; the first two handshakes' final ACKs are held back in the router");
  // The later connections complete first and fill the accept queue; then the first two overflow.
  for (int i = 3; i >= 0; --i) {
    if (clients[static_cast<size_t>(i)].valid())
      send_text(clients[static_cast<size_t>(i)].get(), fmt::format("hello from client {}\n", i));
    sleep_ms(50);
  }
  ctx.did("each client sent its first request");
  sleep_ms(300);
}

// 3.5: the client is in TIME-WAIT; an old duplicate from the server arrives, the client ACKs it,
// and the server, which has no socket any more, resets the TIME-WAIT connection.
void run_time_wait_assassination(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) {
    return Expectation{Cause::time_wait_assassination, {Cause::half_open},
                       "the RST has the shape of a half-open reset; only the FIN exchange before it "
                       "shows TIME-WAIT"};
  };
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair pair;
  if (!open_pair(ctx, listener, pair) || !exchange(ctx, pair)) return;
  const uint16_t client_port = local_port(pair.client.get());
  pair.client.reset();  // active close: the client goes to TIME-WAIT
  std::string got;
  receive(pair.server.get(), got, 1000);
  pair.server.reset();
  sleep_ms(100);
  ctx.did("client closed first, server closed after: client in TIME-WAIT, server closed");
  // The server's last data segment, replayed as the old duplicate.
  std::optional<WireSegment> old;
  for (const WireSegment& segment : ctx.wire->segments())
    if (segment.sport == ctx.port && segment.dport == client_port && segment.payload_len > 0) old = segment;
  if (!old) return void(ctx.fail("no server data segment captured to replay"));
  WireSegment replay = *old;
  replay.ttl = 64;
  replay.flags = 0x18;  // PSH, ACK
  std::string error;
  if (!inject_tcp_v4(ctx.net.server, replay, std::string(replay.payload_len, 'x'), error))
    return void(ctx.fail(error));
  ctx.did(fmt::format("replayed the server's old segment seq={} ({} bytes) toward the TIME-WAIT client",
                      replay.seq, replay.payload_len));
  sleep_ms(200);
}

// 3.7: a firewall in the path resets the connection when a request is too large.
void run_middlebox(Context& ctx) {
  ctx.expect = after_path_reset;
  const std::string table = fmt::format("rs_mbox_{}", ctx.port);
  if (!ctx.net.router.nft(fmt::format(
          "add table inet {0}; add chain inet {0} pass {{ type filter hook forward priority 0; }}; "
          "add rule inet {0} pass tcp dport {1} meta length > 400 reject with tcp reset",
          table, ctx.port)))
    return void(ctx.fail("nft rule failed"));
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  Pair pair;
  if (listener.valid() && open_pair(ctx, listener, pair) && exchange(ctx, pair)) {
    ctx.did("router firewall: 'tcp dport P meta length > 400 reject with tcp reset'");
    send_text(pair.client.get(), std::string(1000, 'B'));
    ctx.did("client sent a 1000-byte request; the router answered it with a RST");
    ctx.add_extra("firewall", parse_ip(server_v4), ctx.port, parse_ip(client_v4),
                  local_port(pair.client.get()),
                  {Cause::middlebox, {Cause::forged},
                   "a RST from the path is an injection either way; only intent differs"});
    std::string got;
    receive(pair.client.get(), got, 1000);
  }
  ctx.net.router.nft(fmt::format("delete table inet {}", table));
}

// 3.7: a stateful firewall forgets an idle flow, then rejects its next segment.
void run_idle_timeout(Context& ctx) {
  ctx.expect = after_path_reset;
  const std::string table = fmt::format("rs_idle_{}", ctx.port);
  if (!ctx.net.router.nft(fmt::format(
          "add table inet {0}; add chain inet {0} pass {{ type filter hook forward priority 0; }}; "
          "add rule inet {0} pass tcp dport {1} ct state established accept; "
          "add rule inet {0} pass tcp dport {1} tcp flags & (syn | ack) == syn accept; "
          "add rule inet {0} pass tcp dport {1} reject with tcp reset",
          table, ctx.port)))
    return void(ctx.fail("nft rule failed"));
  // The router's conntrack forgets established flows after 2 s of silence.
  ctx.net.router.sysctl("net.netfilter.nf_conntrack_tcp_timeout_established", "2");
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  Pair pair;
  if (listener.valid() && open_pair(ctx, listener, pair) && exchange(ctx, pair)) {
    ctx.did("router: conntrack established timeout 2 s; mid-flow packets of unknown flows are rejected");
    sleep_ms(3000);
    ctx.did("connection idle for 3 s");
    send_text(pair.client.get(), "still there?\n");
    ctx.did("client sent after the idle period; the router answered with a RST");
    ctx.add_extra("firewall", parse_ip(server_v4), ctx.port, parse_ip(client_v4),
                  local_port(pair.client.get()),
                  {Cause::idle_timeout, {Cause::middlebox, Cause::forged},
                   "all three come from the path; only the silence before it says idle"});
    std::string got;
    receive(pair.client.get(), got, 1000);
  }
  ctx.net.router.nft(fmt::format("delete table inet {}", table));
}

// 3.8: the server never reads; its small window fills, the client persists, then the server
// gives up and closes with the data unread.
void run_buffer_overflow(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) {
    return Expectation{Cause::buffer_overflow, {Cause::abort_unread_data},
                       "the kernel reports a close with unread data; the zero window before it is "
                       "what makes it a buffer overflow"};
  };
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16, 4096);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair pair;
  if (!open_pair(ctx, listener, pair)) return;
  const std::string chunk(4096, 'D');
  size_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < deadline && !interrupted.load()) {
    const ssize_t n = ::send(pair.client.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) sent += static_cast<size_t>(n);
    else sleep_ms(20);
  }
  ctx.did(fmt::format("server SO_RCVBUF 4096 and never reads; client queued {} bytes; zero window "
                      "and persist probes for 1.5 s", sent));
  pair.server.reset();
  ctx.did("the server gave up and closed with its receive buffer full");
  std::string got;
  receive(pair.client.get(), got, 500);
}

// Keep-alive probes go unanswered (the router drops the server's replies).
void run_keepalive_timeout(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) { return only(Cause::keepalive_timeout); };
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair pair;
  if (!open_pair(ctx, listener, pair) || !exchange(ctx, pair)) return;
  const int one = 1, idle = 1, interval = 1, count = 2;
  ::setsockopt(pair.client.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(pair.client.get(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(pair.client.get(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(pair.client.get(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  const std::string table = fmt::format("rs_ka_{}", ctx.port);
  if (!ctx.net.router.nft(fmt::format(
          "add table inet {0}; add chain inet {0} pass {{ type filter hook forward priority 0; }}; "
          "add rule inet {0} pass tcp sport {1} drop",
          table, ctx.port)))
    return void(ctx.fail("nft rule failed"));
  ctx.did("client keep-alive idle 1 s, interval 1 s, 2 probes; the router drops the server's replies");
  std::string got;
  const long status = receive(pair.client.get(), got, 6000);
  ctx.did(fmt::format("client read: {}", status < 0 ? std::strerror(static_cast<int>(-status)) : "data/EOF"));
  ctx.net.router.nft(fmt::format("delete table inet {}", table));
}

// 5: an attacker in the router injects RSTs toward the server in the client's name: one in the
// window but not exact (the server sends a challenge ACK), then one exact (the server drops the
// connection). The real client keeps sending and meets the server's NO_SOCKET reset.
void run_forged(Context& ctx) {
  ctx.expect = [](const host::KernelReset&) {
    return Expectation{Cause::half_open, {Cause::forged},
                       "the server really lost the connection; the forged RST before it is why"};
  };
  Fd listener = listen_on(ctx.net.server, server_v4, ctx.port, 16);
  if (!listener.valid()) return void(ctx.fail("listen failed"));
  Pair pair;
  if (!open_pair(ctx, listener, pair) || !exchange(ctx, pair)) return;
  const uint16_t client_port = local_port(pair.client.get());
  const Address client = parse_ip(client_v4), server = parse_ip(server_v4);
  // What the server expects next from the client, and the server's own next seq.
  const auto next_seqs = [&](uint32_t& client_next, uint32_t& server_next) {
    bool seen_client = false, seen_server = false;
    for (const WireSegment& s : ctx.wire->segments()) {
      const uint32_t length = s.payload_len + ((s.flags & 0x03) != 0 ? 1u : 0u);
      if (s.src == client && s.sport == client_port && s.dport == ctx.port) {
        client_next = s.seq + length;
        seen_client = true;
      } else if (s.src == server && s.sport == ctx.port && s.dport == client_port) {
        server_next = s.seq + length;
        seen_server = true;
      }
    }
    return seen_client && seen_server;
  };
  const Expectation forged{Cause::forged, {}, {}};
  std::string got, error;
  for (int step = 0; step < 12 && !interrupted.load(); ++step) {
    send_text(pair.client.get(), fmt::format("chunk {}\n", step));
    sleep_ms(60);
    receive(pair.server.get(), got, 10);
    if (step != 3 && step != 6) continue;
    uint32_t client_next = 0, server_next = 0;
    if (!next_seqs(client_next, server_next)) return void(ctx.fail("no segments captured to forge from"));
    WireSegment rst;
    rst.src = client;
    rst.sport = client_port;
    rst.dst = server;
    rst.dport = ctx.port;
    rst.ack = server_next;
    rst.flags = 0x14;  // RST, ACK
    rst.ttl = 64;
    rst.seq = step == 3 ? client_next + 5000 : client_next;
    if (!inject_tcp_v4(ctx.net.router, rst, {}, error)) return void(ctx.fail(error));
    ctx.add_extra("forger", client, client_port, server, ctx.port, forged);
    ctx.did(fmt::format("router injected a RST as the client, seq {} ({})", rst.seq,
                        step == 3 ? "in window, not exact: expect a challenge ACK" : "exact: accepted"));
  }
  ctx.did("the client kept sending a chunk every 60 ms throughout");
}

}  // namespace rstscope::lab
