#pragma once
// Server resource figures from /proc, for a server whose PID is known
// (Linux only): CPU time (user + system, all threads) and peak RSS.
//
// Errors: kNotFound if the process does not exist (or /proc is not there),
// kCorruption if the file does not parse. Thread-safe.

#include <cstdint>
#include <string>

#include "base/status.h"

namespace tidemark::bench {

// The 1-minute load average (/proc/loadavg); -1 if unreadable.
double LoadAvg1();
// utime + stime of `pid` in seconds (resolution: one clock tick, 10 ms).
Result<double> ProcCpuSeconds(int pid);
// VmHWM (peak resident set size) of `pid` in bytes.
Result<uint64_t> ProcPeakRssBytes(int pid);
// The PID of the process that listens on TCP `port` (loopback or any
// address), found through /proc/net/tcp{,6} socket inodes and /proc/*/fd.
// kNotFound if none is visible to us.
Result<int> FindListeningPid(int port);

}  // namespace tidemark::bench
