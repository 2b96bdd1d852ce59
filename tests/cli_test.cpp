// The rstscope binary as a user runs it: exit statuses, errors, formats, stdin, -o.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};

std::string quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) lines.push_back(line);
  return lines;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "rstscope-cli-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
  }
  void TearDown() override {
    const std::string command = "rm -rf " + quote(directory_);
    EXPECT_EQ(std::system(command.c_str()), 0);
  }

  std::string path(const std::string& name) const { return directory_ + "/" + name; }

  // Runs rstscope with `arguments` (already shell-quoted), stdin from `input` if given.
  RunResult run(const std::string& arguments, const std::string& input = "") const {
    const std::string err_path = path("stderr.txt");
    std::string command = quote(RSTSCOPE_BINARY) + " " + arguments + " 2>" + quote(err_path);
    command += " <" + quote(input.empty() ? std::string("/dev/null") : input);
    RunResult result;
    std::FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return result;
    char buffer[65536];
    size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, got);
    const int status = pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.err = read_file(err_path);
    return result;
  }

  std::string directory_;
};

std::string pop3_capture() {
  return std::string(RSTSCOPE_SOURCE_DIR) + "/../shared/captures/zeek__pop3.pcap";
}

TEST_F(CliTest, MissingFileExitsTwoWithOneLineNamingIt) {
  const std::string missing = path("no-such-capture.pcap");
  const RunResult result = run("analyze --no-progress " + quote(missing));
  EXPECT_EQ(result.status, 2) << result.err;
  const auto lines = lines_of(result.err);
  ASSERT_EQ(lines.size(), 1u) << result.err;
  EXPECT_NE(lines[0].find(missing), std::string::npos) << result.err;
}

TEST_F(CliTest, FileThatIsNotACaptureExitsTwo) {
  const std::string bogus = path("notes.pcap");
  write_file(bogus, "these are meeting notes, not packets\n");
  const RunResult result = run("analyze --no-progress " + quote(bogus));
  EXPECT_EQ(result.status, 2) << result.err;
  EXPECT_NE(result.err.find(bogus), std::string::npos) << result.err;
}

TEST_F(CliTest, UnknownFailOnNameExitsTwo) {
  const std::string bogus = path("unused.pcap");
  write_file(bogus, "");
  const RunResult result = run("analyze --no-progress --fail-on refused,no_such_cause " +
                               quote(bogus));
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("no_such_cause"), std::string::npos) << result.err;
}

TEST_F(CliTest, BadFormatIsUsageErrorTwo) {
  const RunResult result = run("analyze --format yaml " + quote(pop3_capture()));
  EXPECT_EQ(result.status, 2);
}

TEST_F(CliTest, TimeoutsOutOfRangeAreUsageErrors) {
  // Idle times are measured in 32 bits of about a millisecond: 23 days at most.
  for (const char* option : {"--idle-timeout 1e30", "--idle-timeout 2000001", "--idle-timeout 0",
                             "--horizon 1e30", "--horizon -1"}) {
    const RunResult result = run(std::string("analyze --no-progress ") + option + " " + quote(pop3_capture()));
    EXPECT_EQ(result.status, 2) << option;
    EXPECT_NE(result.err.find(std::string(option).substr(0, std::string(option).find(' '))), std::string::npos)
        << option << ": " << result.err;
  }
  // live takes the same analysis options, checked the same way before it opens anything.
  for (const char* option : {"--idle-timeout 0", "--horizon -1", "--max-waiting-resets 0", "--max-connections 0"}) {
    const RunResult result = run(std::string("live -i lo --count 1 ") + option);
    EXPECT_EQ(result.status, 2) << option;
    EXPECT_NE(result.err.find(std::string(option).substr(0, std::string(option).find(' '))), std::string::npos)
        << option << ": " << result.err;
  }
  if (!exists(pop3_capture())) GTEST_SKIP() << "sample capture absent";
  EXPECT_EQ(run("analyze --no-progress --idle-timeout 2000000 --horizon 2000000 " + quote(pop3_capture())).status, 0);
}

TEST_F(CliTest, HugeConnectionCapIsAnErrorOrWorksButNeverCrashes) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer ends the process on an allocation it cannot serve instead of throwing";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  GTEST_SKIP() << "AddressSanitizer ends the process on an allocation it cannot serve instead of throwing";
#endif
#endif
  if (!exists(pop3_capture())) GTEST_SKIP() << "sample capture absent";
  // A billion connections' state is reserved up front: where the machine cannot, a clear error.
  for (const char* threads : {"1", "2"}) {
    const RunResult result = run(std::string("analyze --no-progress --threads ") + threads +
                                 " --max-connections 1000000000 " + quote(pop3_capture()));
    if (result.status == 2) {
      EXPECT_NE(result.err.find("--max-connections"), std::string::npos) << result.err;
    } else {
      EXPECT_EQ(result.status, 0) << threads << " threads: " << result.err;
    }
  }
}

TEST_F(CliTest, JsonLinesOnPop3Capture) {
  if (!exists(pop3_capture())) GTEST_SKIP() << "sample capture absent";
  const RunResult result = run("analyze --no-progress --format json " + quote(pop3_capture()));
  ASSERT_EQ(result.status, 0) << result.err;
  const auto lines = lines_of(result.out);
  ASSERT_FALSE(lines.empty());
  size_t resets = 0;
  for (const std::string& line : lines) {
    ASSERT_EQ(line.rfind("{\"type\":\"", 0), 0u) << line;
    ASSERT_EQ(line.back(), '}') << line;
    if (line.rfind("{\"type\":\"reset\"", 0) == 0) ++resets;
  }
  EXPECT_EQ(resets, 6u) << result.out;
  EXPECT_EQ(lines.back().rfind("{\"type\":\"stats\"", 0), 0u) << lines.back();
}

TEST_F(CliTest, FailOnAFoundCauseExitsOne) {
  if (!exists(pop3_capture())) GTEST_SKIP() << "sample capture absent";
  const RunResult result =
      run("analyze --no-progress --format json --fail-on refused " + quote(pop3_capture()));
  EXPECT_EQ(result.status, 1) << result.err;
}

TEST_F(CliTest, InputErrorWinsOverFailOn) {
  if (!exists(pop3_capture())) GTEST_SKIP() << "sample capture absent";
  const RunResult result = run("analyze --no-progress --format json --fail-on refused " +
                               quote(pop3_capture()) + " " + quote(path("missing.pcap")));
  EXPECT_EQ(result.status, 2) << result.err;
  // What could be read is still reported.
  EXPECT_NE(result.out.find("{\"type\":\"reset\""), std::string::npos);
}

TEST_F(CliTest, StandardInputGivesTheSameReportAsTheFile) {
  if (!exists(pop3_capture())) GTEST_SKIP() << "sample capture absent";
  const RunResult from_file = run("analyze --no-progress --format json " + quote(pop3_capture()));
  const RunResult from_stdin = run("analyze --no-progress --format json -", pop3_capture());
  ASSERT_EQ(from_file.status, 0) << from_file.err;
  ASSERT_EQ(from_stdin.status, 0) << from_stdin.err;
  auto file_lines = lines_of(from_file.out);
  auto stdin_lines = lines_of(from_stdin.out);
  ASSERT_EQ(file_lines.size(), stdin_lines.size());
  // The statistics differ only in the wall-clock time the run took.
  const auto strip_wall = [](std::string& line) {
    const size_t at = line.find(",\"wall_seconds\":");
    if (at != std::string::npos) line.erase(at);
  };
  strip_wall(file_lines.back());
  strip_wall(stdin_lines.back());
  EXPECT_EQ(file_lines, stdin_lines);
}

TEST_F(CliTest, CsvHasHeaderAndOneRowPerReset) {
  if (!exists(pop3_capture())) GTEST_SKIP() << "sample capture absent";
  const RunResult result = run("analyze --no-progress --format csv " + quote(pop3_capture()));
  ASSERT_EQ(result.status, 0) << result.err;
  const auto lines = lines_of(result.out);
  ASSERT_EQ(lines.size(), 7u) << result.out;
  EXPECT_EQ(lines[0].rfind("frame,ts,src,sport,dst,dport,", 0), 0u);
}

TEST_F(CliTest, TextReportIsPlainWhenNotATerminal) {
  if (!exists(pop3_capture())) GTEST_SKIP() << "sample capture absent";
  const RunResult result = run("analyze --no-progress " + quote(pop3_capture()));
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out.find('\x1b'), std::string::npos);
  EXPECT_NE(result.out.find("Resets by cause"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("212.227.15.188:110"), std::string::npos) << result.out;
}

TEST_F(CliTest, OutputRefusesToOverwriteWithoutForce) {
  const std::string target = path("report.json");
  write_file(target, "precious\n");
  const std::string capture = exists(pop3_capture()) ? pop3_capture() : path("missing.pcap");
  const RunResult refused =
      run("analyze --no-progress --format json -o " + quote(target) + " " + quote(capture));
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_EQ(read_file(target), "precious\n");

  if (!exists(pop3_capture())) return;
  const RunResult forced = run("analyze --no-progress --format json --force -o " +
                               quote(target) + " " + quote(capture));
  EXPECT_EQ(forced.status, 0) << forced.err;
  EXPECT_TRUE(forced.out.empty());
  EXPECT_NE(read_file(target).find("{\"type\":\"stats\""), std::string::npos);
}

TEST_F(CliTest, LiveWithoutInterfaceIsUsageError) {
  const RunResult result = run("live");
  EXPECT_EQ(result.status, 2);
}

TEST_F(CliTest, LiveRotationWithoutWriteIsUsageError) {
  const RunResult result = run("live -i lo -C 1 --count 1");
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("-C needs -w"), std::string::npos) << result.err;
}

TEST_F(CliTest, LiveRefusesAnUnknownUserForPrivilegeDrop) {
  if (geteuid() != 0) GTEST_SKIP() << "opening an interface needs root";
  const RunResult result = run("live -i lo --count 1 -Z no_such_user_for_rstscope");
  if (result.err.find("lo: ") != std::string::npos) GTEST_SKIP() << "cannot capture: " << result.err;
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("no_such_user_for_rstscope"), std::string::npos) << result.err;
}

TEST_F(CliTest, LiveRefusesToReplaceAnExistingCaptureWithoutForce) {
  if (geteuid() != 0) GTEST_SKIP() << "opening an interface needs root";
  const std::string existing = path("kept.pcap");
  {
    std::ofstream out(existing);
    out << "the user's capture";
  }
  const RunResult result = run("live -i lo --count 1 --duration 2 -w " + quote(existing));
  if (result.err.find("lo: ") != std::string::npos) GTEST_SKIP() << "cannot capture: " << result.err;
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("already exists; add --force"), std::string::npos) << result.err;
  EXPECT_EQ(read_file(existing), "the user's capture");
}

}  // namespace
