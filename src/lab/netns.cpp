#include "lab/netns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <mutex>

extern char** environ;

namespace rstscope::lab {

std::atomic<bool> interrupted{false};

namespace {
void on_signal(int) { interrupted.store(true); }
}  // namespace

int run_command(const std::vector<std::string>& argv, std::string* output, int timeout_ms) {
  if (argv.empty()) return -1;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    if (output) *output = fmt::format("cannot run {}: {}", argv[0], std::strerror(spawned));
    return -1;
  }
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd waiter{pipe_fds[0], POLLIN, 0};
    if (::poll(&waiter, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    const ssize_t got = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (got <= 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(pipe_fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (output) *output = std::move(text);
  if (timed_out || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool sleep_ms(int ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (interrupted.load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 20)));
  }
  return !interrupted.load();
}

Namespace::~Namespace() { remove(); }

bool Namespace::create(const std::string& name, std::string& error) {
  remove();
  std::string output;
  if (run_command({"ip", "netns", "add", name}, &output) != 0) {
    error = fmt::format("'ip netns add {}' failed: {}", name, output);
    return false;
  }
  name_ = name;
  fd_ = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    error = fmt::format("cannot open namespace {}: {}", name, std::strerror(errno));
    remove();
    return false;
  }
  exec({"ip", "link", "set", "lo", "up"});
  return true;
}

void Namespace::remove() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!name_.empty()) {
    run_command({"ip", "netns", "delete", name_});
    name_.clear();
  }
}

int Namespace::exec(const std::vector<std::string>& argv, std::string* output) const {
  std::vector<std::string> full{"ip", "netns", "exec", name_};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_command(full, output);
}

void Namespace::run_inside(const std::function<void()>& work) const {
  std::thread worker([&] {
    if (::setns(fd_, CLONE_NEWNET) != 0) return;
    work();
  });
  worker.join();
}

int Namespace::socket(int domain, int type, int protocol) const {
  int result = -1;
  run_inside([&] { result = ::socket(domain, type | SOCK_CLOEXEC, protocol); });
  return result;
}

bool Namespace::sysctl(const std::string& key, const std::string& value) const {
  return exec({"sysctl", "-q", "-w", key + "=" + value}) == 0;
}

bool Namespace::nft(const std::string& script, std::string* output) const {
  return exec({"nft", script}, output) == 0;
}

void remove_stale_namespaces(const std::string& prefix) {
  DIR* dir = ::opendir("/var/run/netns");
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      stale.push_back(name);
  }
  ::closedir(dir);
  for (const std::string& name : stale) run_command({"ip", "netns", "delete", name});
}

namespace {
std::mutex guard_mutex;
int guard_count = 0;
struct sigaction old_int {}, old_term {};
}  // namespace

InterruptGuard::InterruptGuard() {
  const std::lock_guard lock(guard_mutex);
  if (guard_count++ > 0) return;
  interrupted.store(false);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
}

InterruptGuard::~InterruptGuard() {
  const std::lock_guard lock(guard_mutex);
  if (--guard_count > 0) return;
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
}

}  // namespace rstscope::lab
