#pragma once
// lab/: network namespaces, commands and sockets made inside them, all cleaned up on exit.
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace rstscope::lab {

// Set by SIGINT/SIGTERM while the lab runs; every wait in the lab checks it.
extern std::atomic<bool> interrupted;

// Runs a program (no shell) and waits at most `timeout_ms`. Returns its exit status, or -1.
// Standard output and error go to `output` when given.
int run_command(const std::vector<std::string>& argv, std::string* output = nullptr,
                int timeout_ms = 10'000);

// Sleeps up to `ms`, returning early (false) when interrupted.
bool sleep_ms(int ms);

// One network namespace, created by `ip netns add` and deleted when this object goes away.
class Namespace {
 public:
  Namespace() = default;
  ~Namespace();
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;

  bool create(const std::string& name, std::string& error);
  void remove();
  const std::string& name() const { return name_; }
  int fd() const { return fd_; }

  // Runs `argv` inside the namespace (ip netns exec).
  int exec(const std::vector<std::string>& argv, std::string* output = nullptr) const;
  // Runs `work` on a thread that has joined this namespace; sockets it makes stay in it.
  void run_inside(const std::function<void()>& work) const;
  // A socket created inside the namespace (-1 on failure).
  int socket(int domain, int type, int protocol) const;
  // Writes a sysctl of this namespace, e.g. ("net.ipv4.ip_forward", "1").
  bool sysctl(const std::string& key, const std::string& value) const;
  // Runs an nft script inside the namespace.
  bool nft(const std::string& script, std::string* output = nullptr) const;

 private:
  std::string name_;
  int fd_ = -1;
};

// Deletes namespaces named `prefix`<pid>-... whose process no longer exists.
void remove_stale_namespaces(const std::string& prefix);

// Installs SIGINT/SIGTERM handlers that set `interrupted`; restores the old ones when destroyed.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

}  // namespace rstscope::lab
