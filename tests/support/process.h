// Child processes for integration tests: started with posix_spawn, output to a file, ended
// only by PID (never by name). The destructor kills a process still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace layerswarm::test {

class Process {
 public:
  // Starts argv[0] (searched in PATH) with stdout and stderr appended to `log_file`.
  // Throws std::runtime_error when it cannot be started.
  Process(std::vector<std::string> argv, std::string log_file);
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&&) = delete;
  Process(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_file() const { return log_file_; }
  std::string log() const;
  bool running();
  // Sends SIGTERM and waits up to `timeout`; returns the exit status, or nullopt when it had to
  // be killed (or died from a signal).
  std::optional<int> terminate(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  void kill();
  // Waits for the process to exit on its own.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::string log_file_;
  std::optional<int> status_;
};

// Runs a command to completion (at most `timeout`, then killed). Returns the exit status, or
// -1 when killed. Output goes to `log_file`.
int run_command(const std::vector<std::string>& argv, const std::string& log_file,
                std::chrono::milliseconds timeout = std::chrono::seconds(120));

// Waits until `file` holds a line containing `needle`; returns that line ("" on timeout).
std::string wait_for_line(const std::string& file, const std::string& needle,
                          std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Counts the lines of `text` that contain every one of `needles`.
int count_lines(const std::string& text, const std::vector<std::string>& needles);

}  // namespace layerswarm::test
