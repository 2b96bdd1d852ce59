#pragma once
// Internal to lab/: what a scenario gets to work with, and the socket helpers it uses.
#include <netinet/in.h>
#include <sys/socket.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lab/lab.hpp"
#include "lab/topology.hpp"

namespace rstscope::lab {

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

struct Endpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
  int family = AF_INET;
};
Endpoint endpoint(const char* ip, uint16_t port);

// What the kernel's RSTs in a scenario must be explained as.
struct Expectation {
  Cause expected = Cause::unexplained;
  std::vector<Cause> indistinct;
  std::string why;
};

struct Context {
  Topology& net;
  uint16_t port;               // the scenario's service port; every connection uses it
  std::string out_dir;
  ScenarioResult& result;
  // Classifies each RST the kernel sent in this scenario.
  std::function<Expectation(const host::KernelReset&)> expect;
  std::vector<TruthRow> extra;  // RSTs made outside the kernel's TCP sockets
  // The scenario's capture (client side; the router's server side for forged).
  WireCapture* wire = nullptr;

  void did(std::string line) { result.actions.push_back(std::move(line)); }
  bool fail(std::string message) {
    if (result.error.empty()) result.error = std::move(message);
    return false;
  }
  // A RST the lab itself caused outside a kernel socket (firewall or forger).
  void add_extra(std::string origin, const Address& src, uint16_t sport, const Address& dst,
                 uint16_t dport, Expectation expectation);
  // A pattern the analyzer must find in `pcap` (the scenario's own capture when empty).
  void expect_pattern(std::string type, std::string why, std::string pcap = {});
};

// Socket helpers: all bounded in time, all sockets made in the given namespace.
Fd listen_on(const Namespace& ns, const char* ip, uint16_t port, int backlog, int rcvbuf = 0);
// `before_connect`, when set, prepares the socket (say, its TCP-MD5 key) and says whether it could.
Fd connect_to(const Namespace& ns, const char* ip, uint16_t port, int& error_code,
              int timeout_ms = 2000, const std::function<bool(int)>& before_connect = {});
Fd start_connect(const Namespace& ns, const char* ip, uint16_t port,  // non-blocking
                 const std::function<bool(int)>& before_connect = {});
Fd accept_one(int listener, int timeout_ms = 2000);
bool send_text(int fd, const std::string& text);
// Reads what arrives within `timeout_ms`; returns bytes read, 0 on EOF, -errno on error.
long receive(int fd, std::string& into, int timeout_ms);
bool wait_writable(int fd, int timeout_ms);
void set_linger_zero(int fd);
uint16_t local_port(int fd);
int64_t now_ns();

// The scenarios, each in its own function.
void run_refused(Context& ctx);
void run_refused_wrong_address(Context& ctx);
void run_abort(Context& ctx);
void run_abort_unread_data(Context& ctx);
void run_data_after_close(Context& ctx);
void run_half_open(Context& ctx);
void run_half_open_restart(Context& ctx);
void run_listen_overflow(Context& ctx);
void run_time_wait_assassination(Context& ctx);
void run_middlebox(Context& ctx);
void run_idle_timeout(Context& ctx);
void run_buffer_overflow(Context& ctx);
void run_keepalive_timeout(Context& ctx);
void run_forged(Context& ctx);
// Section 5 and the attacks around forged resets.
void run_forged_exact(Context& ctx);
void run_forged_unsigned(Context& ctx);
void run_forged_in_window(Context& ctx);
void run_forged_out_of_window(Context& ctx);
void run_blind_sweep(Context& ctx);
void run_rst_burst(Context& ctx);
void run_syn_flood(Context& ctx);

}  // namespace rstscope::lab
