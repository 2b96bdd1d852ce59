// `rstscope live` for real: it captures on the lab's client link while real connections are
// refused and aborted in the namespaces, and streams its verdicts as JSON.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "lab/lab.hpp"
#include "lab/topology.hpp"

namespace rstscope::lab {
namespace {

namespace fs = std::filesystem;

std::string run_and_read(const std::string& command) {
  std::string output;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, got);
  ::pclose(pipe);
  return output;
}

// Connects from the client namespace; returns the socket or -1.
int connect_from(const Namespace& ns, const char* address, uint16_t port) {
  const int fd = ns.socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval timeout{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  ::inet_pton(AF_INET, address, &to.sin_addr);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(Live, StreamsVerdictsFromARealInterface) {
  std::string why;
  if (!lab_supported(why)) GTEST_SKIP() << "live capture in namespaces is not possible here: " << why;
  Topology topology;
  std::string error;
  ASSERT_TRUE(topology.create(error)) << error;
  const fs::path folder = fs::temp_directory_path() / ("rstscope-live-" + std::to_string(::getpid()));
  fs::create_directories(folder);
  const fs::path written = folder / "seen.pcap";
  const bool nobody = ::getpwnam("nobody") != nullptr;
  if (nobody) ::chmod(folder.c_str(), 0777);  // the dropped user writes the pcap here

  const std::string command = "ip netns exec " + topology.client.name() + " " + RSTSCOPE_BINARY +
                              " live -i " + client_iface + " --format json --duration 4 -w " + written.string() +
                              // The analysis options as analyze has them: with room for one waiting
                              // RST, the others are judged as soon as the next one comes.
                              " --max-waiting-resets 1" +
                              (nobody ? " -Z nobody" : "") + " 2>&1";
  auto live = std::async(std::launch::async, [&] { return run_and_read(command); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // let it open the interface

  // Nothing listens on port 7 of the server: each connect is refused.
  for (int i = 0; i < 3; ++i) EXPECT_LT(connect_from(topology.client, server_v4, 7), 0);
  // A listener that aborts: SO_LINGER 0, then close.
  const int listener = topology.server.socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  const int on = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in here{};
  here.sin_family = AF_INET;
  here.sin_port = htons(2106);
  ::inet_pton(AF_INET, server_v4, &here.sin_addr);
  ASSERT_EQ(::bind(listener, reinterpret_cast<const sockaddr*>(&here), sizeof here), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  const int client = connect_from(topology.client, server_v4, 2106);
  ASSERT_GE(client, 0);
  const int accepted = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  const linger abort_now{1, 0};
  ::setsockopt(accepted, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
  ::close(accepted);

  const std::string output = live.get();
  ::close(client);
  ::close(listener);
  topology.destroy();
  std::printf("%s", output.c_str());

  size_t refused = 0, aborted = 0;
  bool stats = false;
  bool judged_early = false;
  for (size_t start = 0; start < output.size();) {
    const size_t end = output.find('\n', start);
    const std::string line = output.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (line.find("\"type\":\"reset\"") != std::string::npos) {
      if (line.find("\"cause\":\"refused\"") != std::string::npos) ++refused;
      if (line.find("\"cause\":\"abort\"") != std::string::npos) ++aborted;
    }
    if (line.find("\"type\":\"stats\"") != std::string::npos) {
      stats = line.find("\"kernel_dropped\"") != std::string::npos;
      judged_early = line.find("\"resets_judged_early\":0,") == std::string::npos &&
                     line.find("\"resets_judged_early\":") != std::string::npos;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  EXPECT_EQ(refused, 3u);
  EXPECT_EQ(aborted, 1u);
  EXPECT_TRUE(stats) << "the final statistics must carry the kernel's drop counters";
  EXPECT_TRUE(judged_early) << "--max-waiting-resets 1 must judge all but the newest RST early";

  // What live wrote with -w is a capture analyze reads to the same verdicts.
  ASSERT_TRUE(fs::exists(written));
  if (nobody) {
    struct stat info {};
    ASSERT_EQ(::stat(written.c_str(), &info), 0);
    EXPECT_EQ(info.st_uid, ::getpwnam("nobody")->pw_uid) << "the pcap is written after dropping root";
  }
  const std::string replay = run_and_read(std::string(RSTSCOPE_BINARY) + " analyze " + written.string() +
                                          " --format csv --no-progress");
  size_t replay_refused = 0;
  for (size_t at = replay.find(",refused,"); at != std::string::npos; at = replay.find(",refused,", at + 1)) {
    ++replay_refused;
  }
  EXPECT_EQ(replay_refused, 3u) << replay;
  fs::remove_all(folder);
}

// `rstscope host --capture`: the kernel's own reason joined to the RST on the wire.
TEST(Host, JoinsKernelReasonsWithTheWire) {
  std::string why;
  if (!lab_supported(why)) GTEST_SKIP() << "kernel tracing in namespaces is not possible here: " << why;
  Topology topology;
  std::string error;
  ASSERT_TRUE(topology.create(error)) << error;
  const std::string command = "ip netns exec " + topology.client.name() + " " + RSTSCOPE_BINARY +
                              " host --capture " + client_iface + " --format json --duration 3 2>&1";
  auto host = std::async(std::launch::async, [&] { return run_and_read(command); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  for (int i = 0; i < 3; ++i) EXPECT_LT(connect_from(topology.client, server_v4, 9), 0);
  const std::string output = host.get();
  topology.destroy();
  std::printf("%s", output.c_str());

  size_t joined_refusals = 0;
  bool summary = false;
  for (size_t start = 0; start < output.size();) {
    const size_t end = output.find('\n', start);
    const std::string line = output.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (line.find("\"type\":\"reset\"") != std::string::npos && line.find("\"sport\":9,") != std::string::npos &&
        line.find("\"cause\":\"refused\"") != std::string::npos &&
        line.find("\"kernel_reason\":\"NO_SOCKET\"") != std::string::npos) {
      ++joined_refusals;
    }
    if (line.find("\"type\":\"host\"") != std::string::npos) {
      summary = true;
      EXPECT_NE(line.find("\"disagreements\":0"), std::string::npos) << line;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  EXPECT_EQ(joined_refusals, 3u);
  EXPECT_TRUE(summary);
}

// The frames of a classic little-endian pcap file (the bundled sample).
std::vector<std::vector<uint8_t>> frames_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::vector<uint8_t>> frames;
  for (size_t at = 24; at + 16 <= bytes.size();) {
    uint32_t length = 0;
    std::memcpy(&length, bytes.data() + at + 8, 4);
    if (at + 16 + length > bytes.size()) break;
    frames.emplace_back(bytes.begin() + static_cast<ptrdiff_t>(at + 16),
                        bytes.begin() + static_cast<ptrdiff_t>(at + 16 + length));
    at += 16 + length;
  }
  return frames;
}

// A burst of frames at full speed, and a stop (SIGINT) the moment the last one is sent: the
// kernel hands frames over in blocks, and live must still count and analyse every frame sent
// before the stop, the last block's included, with none dropped.
TEST(Live, AnalysesEveryFrameOfABurstStoppedRightAfterIt) {
  std::string why;
  if (!lab_supported(why)) GTEST_SKIP() << "live capture in namespaces is not possible here: " << why;
  const fs::path sample = fs::path(RSTSCOPE_SOURCE_DIR) / "samples" / "mixed-resets.pcap";
  const std::vector<std::vector<uint8_t>> frames = frames_of(sample);
  ASSERT_GT(frames.size(), 100u);
  size_t sample_rsts = 0;
  for (const auto& frame : frames) {
    const auto segment = parse_frame(frame.data(), static_cast<uint32_t>(frame.size()));
    if (segment && (segment->flags & 0x04) != 0) ++sample_rsts;
  }
  ASSERT_GT(sample_rsts, 0u);

  Topology topology;
  std::string error;
  ASSERT_TRUE(topology.create(error)) << error;
  const fs::path report = fs::temp_directory_path() / ("rstscope-burst-" + std::to_string(::getpid()) + ".json");
  // The capture runs on the router's side of the server link; the frames come from the server's
  // side. Their addresses are the sample's; the router's stack drops them (not its MAC), the
  // capture sees them all.
  const pid_t live = ::fork();
  ASSERT_GE(live, 0);
  if (live == 0) {
    const int out = ::open(report.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || ::dup2(out, STDOUT_FILENO) < 0) ::_exit(127);
    ::execlp("ip", "ip", "netns", "exec", topology.router.name().c_str(), RSTSCOPE_BINARY, "live", "-i",
             router_server_iface, "--format", "json", "--duration", "60", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // let it open the interface

  const int sender = topology.server.socket(AF_PACKET, SOCK_RAW, 0);
  ASSERT_GE(sender, 0);
  unsigned index = 0;
  topology.server.run_inside([&] { index = if_nametoindex(server_iface); });
  ASSERT_NE(index, 0u);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(index);
  ASSERT_EQ(::bind(sender, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
  constexpr int rounds = 100;
  size_t sent = 0;
  for (int round = 0; round < rounds; ++round) {
    for (const auto& frame : frames) {
      if (::send(sender, frame.data(), frame.size(), 0) == static_cast<ssize_t>(frame.size())) ++sent;
    }
  }
  ::kill(live, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(live, &status, 0), live);
  ::close(sender);
  topology.destroy();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(sent, frames.size() * rounds);

  std::ifstream in(report);
  std::string line, stats;
  while (std::getline(in, line)) {
    if (line.find("\"type\":\"stats\"") != std::string::npos) stats = line;
  }
  fs::remove(report);
  ASSERT_FALSE(stats.empty()) << "no final statistics";
  auto number = [&](const std::string& key) {
    const size_t at = stats.find("\"" + key + "\":");
    return at == std::string::npos ? -1 : std::stoll(stats.substr(at + key.size() + 3));
  };
  // The lab's own links add a few frames of their own (neighbour discovery): TCP is what was sent.
  EXPECT_EQ(number("tcp"), static_cast<long long>(sent)) << stats;
  EXPECT_EQ(number("kernel_dropped"), 0) << stats;
  EXPECT_EQ(number("resets"), static_cast<long long>(sample_rsts * rounds)) << stats;
}

}  // namespace
}  // namespace rstscope::lab
