// ThreadSanitizer harness for the reader thread of native/perf_session.cc, without node: node
// and V8 are not instrumented, so under TSan they report races of their own and can crash, and
// they would hide ours. This drives the real PerfSession (real perf events, real rings, a real
// UDP drop storm on loopback) through a BatchSink that behaves like the TSFN queue of addon.cc:
// bounded (kFull when full, so the reader stalls), drained by a consumer thread that calls
// RoomAvailable() after each batch (as CallJs does), while a third thread pauses and resumes.
// Scenarios: plain, aggregated, a failing reader (the test hook), and an abandoning stop
// mid-storm. Every batch is parsed: counts must add up, nothing may be delivered twice.
// Built and run by scripts/tsan.sh (needs root: perf_event_open, SO_RCVBUFFORCE).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "../../native/errors.h"
#include "../../native/perf_session.h"

// errors.cc also holds the N-API conversion; the harness needs only what perf_session.cc uses.
namespace rxtrace {
SysError::SysError(int err, std::string syscall, int cpu, int64_t eventId, const std::string& detail, int64_t bytes)
    : std::runtime_error(syscall + ": " + std::strerror(err) + (detail.empty() ? "" : " (" + detail + ")")),
      err_(err), syscall_(std::move(syscall)), cpu_(cpu), eventId_(eventId), bytes_(bytes) {}
}  // namespace rxtrace

using namespace rxtrace;
using namespace std::chrono_literals;

namespace {

int failures = 0;
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);          \
      std::fputc('\n', stderr);                   \
      ++failures;                                 \
    }                                             \
  } while (0)

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

/** Like the TSFN queue: bounded, kFull when full, a consumer thread that frees room. */
class QueueSink : public BatchSink {
 public:
  explicit QueueSink(size_t bound) : bound_(bound) {}
  PerfSession* session = nullptr;

  Result Started() override { return Result::kOk; }
  Result Deliver(std::unique_ptr<Batch>& batch, bool blocking) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (q_.size() >= bound_) {
      if (!blocking) return Result::kFull;
      room_.wait(lock, [&] { return q_.size() < bound_; });
    }
    q_.push_back(std::move(batch));
    ready_.notify_one();
    return Result::kOk;
  }
  Result Failed(const char* what) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    failure_ = what;
    return Result::kOk;
  }
  void Done() override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    ready_.notify_one();
  }

  /** The consumer thread: parse each batch, slowly now and then, and say there is room. */
  void Consume() {
    size_t n = 0;
    for (;;) {
      std::unique_ptr<Batch> b;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [&] { return done_ || !q_.empty(); });
        if (q_.empty()) return;
        b = std::move(q_.front());
        q_.pop_front();
        room_.notify_one();
      }
      session->RoomAvailable();  // as CallJs does, once it took a batch
      Parse(*b);
      if (++n % 7 == 0) std::this_thread::sleep_for(3ms);  // a slow JS now and then: stalls
    }
  }

  void Parse(const Batch& b) {
    const uint8_t* p = b.data();
    size_t off = 0;
    while (off + 16 <= b.size()) {
      uint32_t type;
      uint16_t size;
      std::memcpy(&type, p + off + 8, 4);
      std::memcpy(&size, p + off + 14, 2);
      if (type == 9) samples++;                                   // PERF_RECORD_SAMPLE
      if (type == 0x10001) {                                      // aggregate
        uint64_t count;
        std::memcpy(&count, p + off + 16, 8);
        samples += count;
      }
      if (type == 2) {                                            // PERF_RECORD_LOST
        uint64_t n;
        std::memcpy(&n, p + off + 24, 8);
        lost += n;
      }
      off += 8 + size;
    }
    CHECK(off == b.size(), "a batch does not frame: %zu of %zu bytes", off, b.size());
  }

  std::string failure() {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }

  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> lost{0};

 private:
  size_t bound_;
  std::mutex mu_;
  std::condition_variable ready_, room_;
  std::deque<std::unique_ptr<Batch>> q_;
  bool done_ = false;
  std::string failure_;
};

struct Scenario {
  const char* name;
  bool aggregate;
  uint64_t faultAfter;
  bool abandon;
};

uint64_t SocketDrops(int port) {
  char hex[8];
  std::snprintf(hex, sizeof hex, ":%04X ", port);
  std::istringstream in(ReadFile("/proc/net/udp"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(std::string("0100007F") + hex) == std::string::npos) continue;
    std::istringstream f(line);
    std::string tok, last;
    while (f >> tok) last = tok;
    return std::stoull(last);
  }
  return 0;
}

void Run(const Scenario& sc, uint64_t id, const std::string& portField, const std::vector<int>& cpus) {
  // A socket that never reads, with the smallest buffer: nearly every datagram is a drop.
  const int rx = socket(AF_INET, SOCK_DGRAM, 0);
  int one = 1;
  setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(rx, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(rx, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  const uint64_t drops0 = SocketDrops(port);

  SessionOptions o;
  EventSpec ev;
  ev.id = id;
  ev.filter = portField + " == " + std::to_string(port);
  if (sc.aggregate) ev.aggregate = true;  // key on the tracepoint alone
  o.events.push_back(ev);
  o.cpus = cpus;
  o.ringPages = 8;  // small rings: the stalls turn into kernel-side loss quickly
  o.wakeupBytes = 4096;
  o.flushMs = 5;
  o.batchBytes = 16384;
  o.faultAfterAggregated = sc.faultAfter;

  PerfSession session(o);
  QueueSink sink(2);
  sink.session = &session;
  session.Enable();
  session.StartReader(&sink);
  std::thread consumer([&] { sink.Consume(); });
  std::atomic<bool> storming{true};
  std::thread pauser([&] {
    for (int i = 0; storming.load(); ++i) {
      session.SetPaused(i % 2 == 0);
      std::this_thread::sleep_for(2ms);
    }
    session.SetPaused(false);
  });
  const int tx = socket(AF_INET, SOCK_DGRAM, 0);
  const char payload[16] = {};
  const auto end = std::chrono::steady_clock::now() + 600ms;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 64; ++i) sendto(tx, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  storming = false;
  pauser.join();
  std::this_thread::sleep_for(50ms);
  session.RequestStop(sc.abandon);
  session.Join();
  consumer.join();
  const StatsSnapshot st = session.Stats();
  session.CloseFds();
  const uint64_t drops = SocketDrops(port) - drops0;
  close(tx);
  close(rx);

  uint64_t lost = 0;
  for (uint64_t l : st.lostPerCpu) lost += l;
  std::printf("%-12s drops %7llu  delivered %7llu  lost %7llu  stalls %5llu  aggregated %7llu  failures %llu%s%s\n", sc.name,
              (unsigned long long)drops, (unsigned long long)sink.samples.load(), (unsigned long long)lost,
              (unsigned long long)st.stalls, (unsigned long long)st.aggregated, (unsigned long long)st.failures,
              sink.failure().empty() ? "" : "  failure: ", sink.failure().c_str());
  CHECK(drops > 1000, "%s: the storm made only %llu drops", sc.name, (unsigned long long)drops);
  CHECK(sink.samples <= drops, "%s: delivered %llu > the kernel's %llu drops", sc.name, (unsigned long long)sink.samples.load(), (unsigned long long)drops);
  if (sc.faultAfter) {
    CHECK(st.failures == 1 && sink.failure() == "std::bad_alloc", "%s: the failure was not reported", sc.name);
  } else {
    CHECK(st.failures == 0, "%s: unexpected failure %s", sc.name, sink.failure().c_str());
  }
  if (!sc.abandon && !sc.faultAfter) {
    // A normal stop drains everything: each drop was delivered or counted lost.
    CHECK(sink.samples + lost == drops, "%s: delivered %llu + lost %llu != drops %llu", sc.name,
          (unsigned long long)sink.samples.load(), (unsigned long long)lost, (unsigned long long)drops);
    // Aggregated batches are small: there the pauses, not the queue, make the rings overflow.
    if (!sc.aggregate) CHECK(st.stalls > 0, "%s: the queue never filled (no stall exercised)", sc.name);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string tracefs = argc > 1 ? argv[1] : "/sys/kernel/tracing";
  const std::string dir = tracefs + "/events/udp/udp_fail_queue_rcv_skb";
  const uint64_t id = std::stoull(ReadFile(dir + "/id"));
  // dport since 6.10, lport before: the layout from the format file, as src/format reads it.
  const std::string portField = ReadFile(dir + "/format").find(" dport;") != std::string::npos ? "dport" : "lport";
  std::vector<int> cpus;
  for (int c = 0; c < sysconf(_SC_NPROCESSORS_ONLN); ++c) cpus.push_back(c);
  const Scenario scenarios[] = {
      {"plain", false, 0, false},
      {"aggregated", true, 0, false},
      {"failing", true, 200, false},
      {"abandoned", true, 0, true},
  };
  for (const Scenario& sc : scenarios) Run(sc, id, portField, cpus);
  if (failures) std::fprintf(stderr, "reader_harness: %d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
