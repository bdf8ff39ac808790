// The kernel side of a trace, free of N-API: open one perf event per (tracepoint, cpu), one
// mmap'd ring per cpu (other events SET_OUTPUT into it), filters, enable/disable, and the
// reader thread that drains the rings into batches and offers them to a BatchSink.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct perf_event_mmap_page;

namespace rxtrace {

/** A file descriptor that closes itself. Move-only. */
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

/** An mmap'd region that unmaps itself. Move-only. */
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t len) : addr_(addr), len_(len) {}
  Mapping(Mapping&& o) noexcept : addr_(o.addr_), len_(o.len_) { o.addr_ = nullptr; o.len_ = 0; }
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { Reset(); }

  void* get() const { return addr_; }
  void Reset();

 private:
  void* addr_ = nullptr;
  size_t len_ = 0;
};

struct EventSpec {
  uint64_t id = 0;     // tracefs events/<sys>/<name>/id, perf attr.config
  std::string filter;  // empty: no filter
  // Count instead of copy: samples of this event with the same cpu and the same bytes at these
  // (offset, length) ranges of the raw data are delivered as one aggregate record per drain.
  bool aggregate = false;
  std::vector<std::pair<uint16_t, uint16_t>> aggregateKey;
};

struct SessionOptions {
  std::vector<EventSpec> events;
  std::vector<int> cpus;
  uint32_t ringPages = 64;        // data pages per ring, a power of two
  uint32_t wakeupBytes = 16384;   // attr.wakeup_watermark
  uint32_t flushMs = 50;          // deliver a partial batch after this long
  size_t batchBytes = 256 * 1024; // deliver a batch once it holds this much
  size_t maxQueuedBatches = 16;   // TSFN queue bound (used by the sink, not here)
  // Test hook (0 = off): the aggregate path throws std::bad_alloc after this many aggregated
  // samples, so that tests can see a failing reader end the trace with an error, not terminate.
  uint64_t faultAfterAggregated = 0;
};

/**
 * Records on their way to JS, in the layout of src/native.ts: per record [u32 cpu][u32 0]
 * then the perf record verbatim. Owns a malloc'd buffer until Release() hands it over.
 */
class Batch {
 public:
  explicit Batch(size_t capacity);
  ~Batch();
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  bool ok() const { return data_ != nullptr; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const uint8_t* data() const { return data_; }
  /** Room for n more bytes at the end; the caller fills them. Capacity is checked by Drain. */
  uint8_t* Extend(size_t n);
  /** Drops what was added after the batch held `size` bytes. */
  void Truncate(size_t size) { size_ = size < size_ ? size : size_; }
  size_t capacity() const { return capacity_; }
  /** Gives the buffer away (to be free()d by the new owner). */
  uint8_t* Release();

  std::chrono::steady_clock::time_point opened;  // when its first record was drained
  // Set (with no records) on the batch that tells JS the reader thread failed: see Failed().
  std::string failure;

 private:
  uint8_t* data_;
  size_t size_ = 0;
  size_t capacity_;
};

/** Where the reader thread sends its output. Implemented over a TSFN in addon.cc. */
class BatchSink {
 public:
  enum class Result {
    kOk,       // taken
    kFull,     // queue full: the caller keeps the batch and retries later
    kClosing,  // the sink is gone (env teardown): never call it again, not even Done()
  };
  virtual ~BatchSink() = default;
  /** First call from the thread: it runs. */
  virtual Result Started() = 0;
  /** On kOk the sink owns *batch (batch is null afterwards); otherwise it stays with the caller. */
  virtual Result Deliver(std::unique_ptr<Batch>& batch, bool blocking) = 0;
  /**
   * The thread failed (an exception, e.g. bad_alloc) and ends: the events are disabled and
   * nothing more is delivered. Done() follows, unless this returned kClosing. Must not throw.
   */
  virtual Result Failed(const char* what) noexcept = 0;
  /** Last call from the thread, unless a call returned kClosing. */
  virtual void Done() = 0;
};

struct StatsSnapshot {
  uint64_t samples = 0;
  uint64_t batches = 0;
  uint64_t bytes = 0;
  uint64_t stalls = 0;
  uint64_t otherRecords = 0;
  uint64_t aggregated = 0;  // samples counted into aggregate records instead of copied
  uint64_t failures = 0;    // the reader thread ended on an exception (0 or 1)
  uint64_t unsampled = 0;   // of the lost: hits counted with no sample written (ReconcileLost)
  std::vector<uint64_t> lostPerCpu;  // in options.cpus order
};

/**
 * One trace: every fd and ring, and the reader thread. The constructor opens everything or
 * throws SysError with nothing left open. The destructor stops the thread and closes all.
 * Threading: Enable/StartReader/Join/CloseFds/Stats are called from the JS thread;
 * RequestStop and SetPaused from any thread.
 */
class PerfSession {
 public:
  explicit PerfSession(SessionOptions options);
  ~PerfSession();
  PerfSession(const PerfSession&) = delete;
  PerfSession& operator=(const PerfSession&) = delete;

  /** PERF_EVENT_IOC_ENABLE on every fd; on failure disables what it enabled and throws. */
  void Enable();
  /** PERF_EVENT_IOC_DISABLE on every fd, ignoring errors. */
  void Disable();
  /** Spawns the reader thread, which calls sink->Started() once it runs. Throws std::system_error. */
  void StartReader(BatchSink* sink);
  /**
   * Ask the thread to finish. Normal stop: disable the events, drain what the rings hold,
   * add a LOST record for any loss the kernel never got to report (see ReconcileLost),
   * deliver it all (blocking), then Done(). abandon=true: disable and exit without delivering
   * and without blocking on the sink, for teardown paths where the JS thread is waiting.
   */
  void RequestStop(bool abandon);
  void Join();
  /** Unmap every ring and close every fd. Only after Join(). Idempotent. */
  void CloseFds();
  bool FdsOpen() const { return !fds_.empty(); }
  bool ReaderStarted() const { return reader_.joinable(); }
  void SetPaused(bool paused);
  /** From the JS thread: the sink has room again (a queued batch was taken). Wakes a stalled reader. */
  void RoomAvailable();
  StatsSnapshot Stats() const;
  const SessionOptions& options() const { return options_; }

 private:
  struct PerfFd {
    UniqueFd fd;
    uint64_t eventId;
    int cpu;
    bool readsLost;  // opened with PERF_FORMAT_LOST (6.0+): read() reports its lost samples
  };
  struct Ring {
    int cpu;
    size_t cpuIndex;
    Mapping map;
    perf_event_mmap_page* meta;
    uint8_t* data;
    uint64_t dataSize;  // a power of two
  };

  /** The thread: Loop() inside a catch-all, so that no exception reaches std::terminate. */
  void Run(BatchSink* sink);
  /** Drains until stopped; sinkOpen turns false once the sink said kClosing. */
  void Loop(BatchSink* sink, bool& sinkOpen);
  void Wake();
  /** Copies whole records from one ring into batch; false once the ring is empty. */
  bool DrainRing(Ring& ring, Batch& batch, size_t budget);
  /** The aggregation spec for a sample's tracepoint id (raw bytes 0-1), or null to copy it. */
  const EventSpec* AggregateSpec(uint16_t commonType) const;
  /**
   * Sets each ring's counted hits (read() on its fds) against the samples drained from it and
   * the losses reported, and appends an UNSAMPLED record for hits the kernel counted but neither
   * wrote nor reported lost. `final` (after the disable and the last drain): every ring, and a
   * LOST record for loss the ring never reported. Mid-trace: only a ring whose count has not
   * moved since the last call and that holds nothing unread (so no sample is still in flight).
   */
  void ReconcileLost(Batch& batch, bool final);
  /** The sum of read() over a ring's fds: hits counted and (PERF_FORMAT_LOST) samples lost. */
  bool ReadCounts(const Ring& ring, uint64_t& counted, uint64_t& kernelLost, bool& allReadLost) const;

  /** One aggregate of a drain: how many samples, the last one's time, where its first sample is in aggFirst_. */
  struct Aggregate {
    uint64_t count;
    uint64_t lastTime;
    size_t firstAt;
    size_t firstSize;
  };

  SessionOptions options_;
  size_t pageSize_;
  // Declaration order is teardown order in reverse: rings unmap before their fds close.
  std::vector<PerfFd> fds_;
  std::vector<Ring> rings_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd in the epoll set: stop, pause changes
  std::thread reader_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> abandon_{false};
  std::atomic<bool> paused_{false};

  // Written by the reader thread, read by stats() on the JS thread.
  std::atomic<uint64_t> samples_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> stalls_{0};
  std::atomic<uint64_t> other_{0};
  std::atomic<uint64_t> aggregated_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> unsampled_{0};
  bool anyAggregate_ = false;
  // Aggregation state of the drain in progress, reader thread only. Members rather than locals,
  // so that a drain reuses their memory instead of allocating (and maybe failing) every time.
  std::vector<Aggregate> aggs_;
  std::unordered_map<std::string, size_t> aggIndex_;
  std::vector<uint8_t> aggFirst_;  // the first sample of each aggregate, back to back
  std::string aggKey_;
  std::vector<uint8_t> scratch_;   // a record that wraps past the ring's end, in one piece
  std::unique_ptr<Batch> batch_;   // the batch being filled (reader thread only)
  std::unique_ptr<std::atomic<uint64_t>[]> lost_;
  // Per ring, reader thread only: what ReconcileLost sets against the ring's counted hits.
  struct RingTally {
    uint64_t samples = 0;      // drained, aggregated ones included
    uint64_t lostRecords = 0;  // PERF_RECORD_LOST counts drained, and those ReconcileLost added
    uint64_t unsampled = 0;    // UNSAMPLED counts appended
    uint64_t lastCounted = ~uint64_t{0};  // the count at the previous mid-trace check
  };
  std::vector<RingTally> tally_;
};

}  // namespace rxtrace
