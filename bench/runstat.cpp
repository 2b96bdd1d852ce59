// rstscope-runstat: runs a command and reports its wall time and peak resident memory.
//
//   rstscope-runstat [-o FILE] -- COMMAND [ARGS...]
//
// Writes one line "wall_seconds max_rss_kb exit_status" to FILE (default: standard error).
// The command keeps this process's standard input, output and error. The peak RSS is the
// child's own ru_maxrss from wait4(), so nothing but the command itself is measured.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  const char* report_path = nullptr;
  int first = 1;
  while (first < argc && std::strcmp(argv[first], "--") != 0) {
    if (std::strcmp(argv[first], "-o") == 0 && first + 1 < argc) {
      report_path = argv[first + 1];
      first += 2;
    } else {
      break;
    }
  }
  if (first < argc && std::strcmp(argv[first], "--") == 0) ++first;
  if (first >= argc) {
    std::fputs("usage: rstscope-runstat [-o FILE] -- COMMAND [ARGS...]\n", stderr);
    return 2;
  }
  const auto started = std::chrono::steady_clock::now();
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("fork");
    return 1;
  }
  if (child == 0) {
    ::execvp(argv[first], argv + first);
    std::fprintf(stderr, "rstscope-runstat: cannot run %s: %s\n", argv[first], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  pid_t waited;
  do {
    waited = ::wait4(child, &status, 0, &usage);
  } while (waited < 0 && errno == EINTR);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (waited < 0) {
    std::perror("wait4");
    return 1;
  }
  const int exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::FILE* report = report_path != nullptr ? std::fopen(report_path, "w") : stderr;
  if (report == nullptr) {
    std::perror(report_path);
    return 1;
  }
  std::fprintf(report, "%.3f %ld %d\n", seconds, usage.ru_maxrss, exit_status);
  if (report != stderr) std::fclose(report);
  return exit_status;
}
