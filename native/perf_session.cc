// Opens the perf events and rings of one trace and runs its reader thread: epoll on every
// ring plus a wake eventfd, drain records in bounded slices, batch them, offer batches to the
// sink without blocking. A full sink stops the draining, so the kernel counts the overflow.
#include "perf_session.h"

#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <unordered_map>

#include "errors.h"

namespace rxtrace {

namespace {

// epoll data for the wake eventfd; ring entries carry their index.
constexpr uint64_t kWakeTag = ~uint64_t{0};
// Each record in a batch is prefixed by [u32 cpu][u32 0].
constexpr size_t kPrefixBytes = 8;
// perf_event_header.size is a u16, so one record never exceeds this.
constexpr size_t kMaxRecordBytes = kPrefixBytes + 0xffff;
// PERF_FORMAT_LOST (Linux 6.0), spelled out: older uapi headers lack it.
constexpr uint64_t kPerfFormatLost = 1U << 4;
// A record type of our own (perf's types are small numbers): `count` identical samples of one
// drain, as { header; u64 count; u64 lastTime; [u32 cpu][u32 0] first sample verbatim }.
constexpr uint32_t kRecordAggregate = 0x10001;
// Hits an event counted with no sample written and no loss reported: { header; u64 id; u64 n; }.
constexpr uint32_t kRecordUnsampled = 0x10002;
// Sample layout (TID|TIME|CPU|RAW), from the record start: time at +16, raw_size at +32, raw at +36.
constexpr size_t kSampleTimeOff = 16;
constexpr size_t kSampleRawSizeOff = 32;
constexpr size_t kSampleRawOff = 36;
// Distinct aggregates one drain of one ring may hold before it stops to deliver them.
constexpr size_t kMaxAggregates = 4096;
// A stalled reader (JS queue full) is woken by RoomAvailable() as soon as JS takes a batch;
// this timeout is only a backstop should a wake-up never come.
constexpr int kStallRetryMs = 50;
// How often a quiet ring's counted hits are set against its samples (ReconcileLost, mid-trace).
constexpr int kReconcileMs = 1000;

int PerfEventOpen(perf_event_attr* attr, int cpu) {
  return static_cast<int>(
      syscall(SYS_perf_event_open, attr, /*pid=*/-1, cpu, /*group_fd=*/-1, PERF_FLAG_FD_CLOEXEC));
}

int CeilMs(std::chrono::steady_clock::duration d) {
  if (d <= std::chrono::steady_clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    Reset();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void UniqueFd::Reset() {
  if (fd_ >= 0) {
    // Not retried on EINTR: on Linux the fd is released even then.
    ::close(fd_);
    fd_ = -1;
  }
}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    Reset();
    addr_ = o.addr_;
    len_ = o.len_;
    o.addr_ = nullptr;
    o.len_ = 0;
  }
  return *this;
}

void Mapping::Reset() {
  if (addr_ != nullptr) {
    ::munmap(addr_, len_);
    addr_ = nullptr;
    len_ = 0;
  }
}

Batch::Batch(size_t capacity)
    : data_(static_cast<uint8_t*>(std::malloc(capacity))), capacity_(data_ ? capacity : 0) {}

Batch::~Batch() { std::free(data_); }

uint8_t* Batch::Extend(size_t n) {
  if (data_ == nullptr || capacity_ - size_ < n) return nullptr;
  uint8_t* p = data_ + size_;
  size_ += n;
  return p;
}

uint8_t* Batch::Release() {
  uint8_t* p = data_;
  data_ = nullptr;
  size_ = 0;
  capacity_ = 0;
  return p;
}

PerfSession::PerfSession(SessionOptions options)
    : options_(std::move(options)),
      pageSize_(static_cast<size_t>(sysconf(_SC_PAGESIZE))),
      lost_(std::make_unique<std::atomic<uint64_t>[]>(options_.cpus.size())),
      tally_(options_.cpus.size()) {
  for (const EventSpec& ev : options_.events) anyAggregate_ = anyAggregate_ || ev.aggregate;
  // Any throw below unwinds the members: every fd opened so far closes, every ring unmaps.
  wake_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) throw SysError(errno, "eventfd");
  epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throw SysError(errno, "epoll_create1");
  epoll_event wakeEv{};
  wakeEv.events = EPOLLIN;
  wakeEv.data.u64 = kWakeTag;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &wakeEv) != 0) {
    throw SysError(errno, "epoll_ctl");
  }

  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.sample_period = 1;  // every hit is a sample: we count drops, we don't sample them
  attr.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW;
  attr.disabled = 1;  // enabled by start(), once a reader exists
  attr.watermark = 1;  // wake on bytes, not on sample count
  attr.wakeup_watermark = options_.wakeupBytes;
  attr.use_clockid = 1;  // sample times comparable with clock_gettime in JS
  attr.clockid = CLOCK_MONOTONIC;
  // The kernel writes a ring's PERF_RECORD_LOST only in front of that ring's next record, so
  // loss on a cpu that goes quiet would never be reported. read() with PERF_FORMAT_LOST
  // gives each event's total, which ReconcileLost checks at close.
  attr.read_format = kPerfFormatLost;

  const size_t mmapBytes = (size_t{1} + options_.ringPages) * pageSize_;
  fds_.reserve(options_.cpus.size() * options_.events.size());
  rings_.reserve(options_.cpus.size());

  for (size_t ci = 0; ci < options_.cpus.size(); ++ci) {
    const int cpu = options_.cpus[ci];
    int ringFd = -1;
    for (const EventSpec& ev : options_.events) {
      attr.config = ev.id;
      const int64_t id = static_cast<int64_t>(ev.id);
      UniqueFd fd(PerfEventOpen(&attr, cpu));
      if (!fd && errno == EINVAL && attr.read_format != 0) {
        // Before 6.0 an unknown read_format bit is EINVAL: trace without the close-time check.
        attr.read_format = 0;
        fd = UniqueFd(PerfEventOpen(&attr, cpu));
      }
      if (!fd) throw SysError(errno, "perf_event_open", cpu, id);
      const int raw = fd.get();
      fds_.push_back(PerfFd{std::move(fd), ev.id, cpu, attr.read_format != 0});

      if (ringFd < 0) {
        // PROT_WRITE makes the ring non-overwriting: the kernel honours our data_tail and
        // emits PERF_RECORD_LOST instead of overwriting unread records.
        void* addr = mmap(nullptr, mmapBytes, PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0);
        if (addr == MAP_FAILED) {
          throw SysError(errno, "mmap", cpu, id, std::to_string(mmapBytes) + " bytes",
                         static_cast<int64_t>(mmapBytes));
        }
        Mapping map(addr, mmapBytes);
        auto* meta = static_cast<perf_event_mmap_page*>(addr);
        // data_offset/data_size exist since 4.1; older kernels leave them 0.
        const uint64_t dataOffset = meta->data_offset ? meta->data_offset : pageSize_;
        const uint64_t dataSize =
            meta->data_size ? meta->data_size : uint64_t{options_.ringPages} * pageSize_;
        rings_.push_back(Ring{cpu, ci, std::move(map), meta,
                              static_cast<uint8_t*>(addr) + dataOffset, dataSize});
        epoll_event ringEv{};
        ringEv.events = EPOLLIN;
        ringEv.data.u64 = rings_.size() - 1;
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ringEv) != 0) {
          throw SysError(errno, "epoll_ctl", cpu, id);
        }
        ringFd = raw;
      } else if (ioctl(raw, PERF_EVENT_IOC_SET_OUTPUT, ringFd) != 0) {
        throw SysError(errno, "ioctl(PERF_EVENT_IOC_SET_OUTPUT)", cpu, id);
      }

      if (!ev.filter.empty() && ioctl(raw, PERF_EVENT_IOC_SET_FILTER, ev.filter.c_str()) != 0) {
        throw SysError(errno, "ioctl(PERF_EVENT_IOC_SET_FILTER)", cpu, id,
                       "filter \"" + ev.filter + "\"");
      }
    }
  }
}

PerfSession::~PerfSession() {
  // Never blocks on the sink (abandon), so this is safe from any JS-thread context.
  RequestStop(true);
  Join();
}

void PerfSession::Enable() {
  for (size_t i = 0; i < fds_.size(); ++i) {
    if (ioctl(fds_[i].fd.get(), PERF_EVENT_IOC_ENABLE, 0) != 0) {
      const int err = errno;
      for (size_t j = 0; j < i; ++j) ioctl(fds_[j].fd.get(), PERF_EVENT_IOC_DISABLE, 0);
      throw SysError(err, "ioctl(PERF_EVENT_IOC_ENABLE)", fds_[i].cpu,
                     static_cast<int64_t>(fds_[i].eventId));
    }
  }
}

void PerfSession::Disable() {
  for (auto& f : fds_) ioctl(f.fd.get(), PERF_EVENT_IOC_DISABLE, 0);
}

void PerfSession::StartReader(BatchSink* sink) {
  reader_ = std::thread([this, sink] { Run(sink); });
}

void PerfSession::Wake() {
  if (!wake_) return;
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the reader is woken either way.
  if (::write(wake_.get(), &one, sizeof one) < 0) {
  }
}

void PerfSession::RequestStop(bool abandon) {
  if (abandon) abandon_.store(true, std::memory_order_release);
  stop_.store(true, std::memory_order_release);
  Wake();
}

void PerfSession::SetPaused(bool paused) {
  paused_.store(paused, std::memory_order_release);
  Wake();
}

void PerfSession::RoomAvailable() { Wake(); }

void PerfSession::Join() {
  if (reader_.joinable()) reader_.join();
}

void PerfSession::CloseFds() {
  rings_.clear();  // munmap first, then close the fds the rings came from
  fds_.clear();
  epoll_.Reset();
  wake_.Reset();
}

StatsSnapshot PerfSession::Stats() const {
  StatsSnapshot s;
  s.samples = samples_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.stalls = stalls_.load(std::memory_order_relaxed);
  s.otherRecords = other_.load(std::memory_order_relaxed);
  s.aggregated = aggregated_.load(std::memory_order_relaxed);
  s.failures = failures_.load(std::memory_order_relaxed);
  s.unsampled = unsampled_.load(std::memory_order_relaxed);
  s.lostPerCpu.resize(options_.cpus.size());
  for (size_t i = 0; i < s.lostPerCpu.size(); ++i) {
    s.lostPerCpu[i] = lost_[i].load(std::memory_order_relaxed);
  }
  return s;
}

const EventSpec* PerfSession::AggregateSpec(uint16_t commonType) const {
  for (const EventSpec& ev : options_.events) {
    if (ev.id == commonType) return ev.aggregate ? &ev : nullptr;
  }
  return nullptr;
}

bool PerfSession::DrainRing(Ring& ring, Batch& batch, size_t budget) {
  // Acquire pairs with the kernel's barrier before it publishes data_head: every record
  // below head is completely written. Only this thread writes data_tail.
  const uint64_t head = __atomic_load_n(&ring.meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = __atomic_load_n(&ring.meta->data_tail, __ATOMIC_RELAXED);
  const uint64_t mask = ring.dataSize - 1;
  uint64_t used = 0, samples = 0, lost = 0, other = 0, aggregated = 0;

  // Aggregation state lives for one drain of one ring: the records go out with this batch, so
  // nothing is held back between passes, and `cpu` stays the ring's. The containers are members
  // (their memory is reused); a throw from them (bad_alloc) leaves data_tail where it was, so
  // the ring keeps every record of this drain, and Run() ends the trace with an error.
  std::vector<Aggregate>& aggs = aggs_;
  std::unordered_map<std::string, size_t>& aggIndex = aggIndex_;
  std::string& key = aggKey_;
  std::vector<uint8_t>& scratch = scratch_;
  aggs.clear();
  aggIndex.clear();
  aggFirst_.clear();
  size_t aggBytes = 0;  // what the aggregates will take in the batch
  // Room is checked before a record is consumed, counting what the aggregates will take: once
  // data_tail moves past a record, it must reach JS (the ring keeps what does not fit).
  const auto fits = [&](size_t n) { return batch.size() + aggBytes + n <= batch.capacity(); };

  // A throw in the loop (bad_alloc from the aggregation containers) leaves data_tail where it
  // was: the ring keeps this drain's records, so the batch must not keep the copies made of
  // them. What the batch held before stays: those records are consumed and go to JS.
  const size_t batchStart = batch.size();
  try {
    while (tail < head && used < budget && batch.size() + aggBytes < options_.batchBytes) {
      const uint64_t off = tail & mask;
      perf_event_header hdr;
      // Records are 8-byte aligned, so the 8-byte header never wraps.
      std::memcpy(&hdr, ring.data + off, sizeof hdr);
      if (hdr.size < sizeof hdr || (hdr.size & 7) != 0 || hdr.size > head - tail) {
        // A torn or corrupt ring: skip what is published rather than misparse or spin.
        ++other;
        tail = head;
        break;
      }
      if (anyAggregate_ && hdr.type == PERF_RECORD_SAMPLE && hdr.size >= kSampleRawOff + 2 &&
          size_t{hdr.size} + 32 <= 0xffff) {
        // The record in one piece: in place, or copied out when it wraps past the ring's end.
        const uint8_t* rec = ring.data + off;
        if (off + hdr.size > ring.dataSize) {
          scratch.resize(hdr.size);
          const uint64_t first = ring.dataSize - off;
          std::memcpy(scratch.data(), ring.data + off, first);
          std::memcpy(scratch.data() + first, ring.data, hdr.size - first);
          rec = scratch.data();
        }
        uint32_t rawSize;
        uint16_t commonType;
        std::memcpy(&rawSize, rec + kSampleRawSizeOff, sizeof rawSize);
        std::memcpy(&commonType, rec + kSampleRawOff, sizeof commonType);
        const EventSpec* spec = rawSize >= 2 && kSampleRawOff + rawSize <= hdr.size ? AggregateSpec(commonType) : nullptr;
        if (spec != nullptr) {
          const uint8_t* raw = rec + kSampleRawOff;
          key.assign(reinterpret_cast<const char*>(&commonType), sizeof commonType);
          key.append(reinterpret_cast<const char*>(&rawSize), sizeof rawSize);
          for (const auto& [at, len] : spec->aggregateKey) {
            // A range past the end of this sample's raw data keys on what is there (rawSize is in the key).
            if (at >= rawSize) continue;
            key.append(reinterpret_cast<const char*>(raw + at), std::min<size_t>(len, rawSize - at));
          }
          uint64_t time;
          std::memcpy(&time, rec + kSampleTimeOff, sizeof time);
          auto it = aggIndex.find(key);
          if (it != aggIndex.end()) {
            Aggregate& a = aggs[it->second];
            ++a.count;
            a.lastTime = std::max(a.lastTime, time);
          } else {
            // Deliver these first; the ring keeps the rest.
            if (aggs.size() >= kMaxAggregates || !fits(kPrefixBytes + 32 + hdr.size)) break;
            if (options_.faultAfterAggregated != 0 &&
                aggregated_.load(std::memory_order_relaxed) + aggregated >= options_.faultAfterAggregated) {
              throw std::bad_alloc();  // the test hook (SessionOptions::faultAfterAggregated)
            }
            aggIndex.emplace(key, aggs.size());
            aggs.push_back(Aggregate{1, time, aggFirst_.size(), hdr.size});
            aggFirst_.insert(aggFirst_.end(), rec, rec + hdr.size);
            aggBytes += kPrefixBytes + 32 + hdr.size;
          }
          ++samples;
          ++aggregated;
          tail += hdr.size;
          used += hdr.size;
          continue;
        }
      }
      if (hdr.type == PERF_RECORD_SAMPLE || hdr.type == PERF_RECORD_LOST) {
        if (!fits(kPrefixBytes + hdr.size)) break;  // cannot happen: capacity = batchBytes + one record
        uint8_t* dst = batch.Extend(kPrefixBytes + hdr.size);
        const uint32_t prefix[2] = {static_cast<uint32_t>(ring.cpu), 0};
        std::memcpy(dst, prefix, sizeof prefix);
        // The body may wrap past the end of the ring: copy it in two pieces.
        const uint64_t first = std::min<uint64_t>(hdr.size, ring.dataSize - off);
        std::memcpy(dst + kPrefixBytes, ring.data + off, first);
        if (first < hdr.size) std::memcpy(dst + kPrefixBytes + first, ring.data, hdr.size - first);
        if (hdr.type == PERF_RECORD_SAMPLE) {
          ++samples;
        } else if (hdr.size >= 24) {
          uint64_t n;  // { header; u64 id; u64 lost; }
          std::memcpy(&n, dst + kPrefixBytes + 16, sizeof n);
          lost += n;
        }
      } else {
        ++other;  // THROTTLE/UNTHROTTLE and friends: nothing for JS
      }
      tail += hdr.size;
      used += hdr.size;
    }
  } catch (...) {
    batch.Truncate(batchStart);
    throw;
  }

  // Release: our reads of the records happen before the kernel may overwrite them.
  __atomic_store_n(&ring.meta->data_tail, tail, __ATOMIC_RELEASE);
  // Every aggregate's room was checked (fits) before its first sample was consumed.
  if (!aggs.empty()) {
    const uint32_t prefix[2] = {static_cast<uint32_t>(ring.cpu), 0};
    for (const Aggregate& a : aggs) {
      uint8_t* dst = batch.Extend(kPrefixBytes + 32 + a.firstSize);
      const perf_event_header h{kRecordAggregate, 0, static_cast<uint16_t>(32 + a.firstSize)};
      std::memcpy(dst, prefix, sizeof prefix);
      std::memcpy(dst + kPrefixBytes, &h, sizeof h);
      std::memcpy(dst + kPrefixBytes + 8, &a.count, sizeof a.count);
      std::memcpy(dst + kPrefixBytes + 16, &a.lastTime, sizeof a.lastTime);
      std::memcpy(dst + kPrefixBytes + 24, prefix, sizeof prefix);
      std::memcpy(dst + kPrefixBytes + 32, aggFirst_.data() + a.firstAt, a.firstSize);
    }
  }
  if (aggregated) aggregated_.fetch_add(aggregated, std::memory_order_relaxed);
  if (samples) samples_.fetch_add(samples, std::memory_order_relaxed);
  tally_[ring.cpuIndex].samples += samples;
  tally_[ring.cpuIndex].lostRecords += lost;
  if (lost) lost_[ring.cpuIndex].fetch_add(lost, std::memory_order_relaxed);
  if (other) other_.fetch_add(other, std::memory_order_relaxed);
  return tail < head;
}

bool PerfSession::ReadCounts(const Ring& ring, uint64_t& counted, uint64_t& kernelLost, bool& allReadLost) const {
  counted = kernelLost = 0;
  allReadLost = true;
  for (const PerfFd& f : fds_) {
    if (f.cpu != ring.cpu) continue;
    uint64_t values[2] = {0, 0};  // { value; lost; } with PERF_FORMAT_LOST, { value; } without
    const ssize_t want = f.readsLost ? sizeof values : sizeof values[0];
    if (::read(f.fd.get(), values, want) != want) return false;
    counted += values[0];
    kernelLost += values[1];
    allReadLost = allReadLost && f.readsLost;
  }
  return true;
}

void PerfSession::ReconcileLost(Batch& batch, bool final) {
  // One of our records behind the cpu prefix: { header; u64 id; u64 n; }, the shape of the
  // kernel's PERF_RECORD_LOST.
  auto append = [&](const Ring& ring, uint32_t type, uint64_t n) -> bool {
    uint8_t* dst = batch.Extend(kPrefixBytes + 24);
    if (dst == nullptr) return false;
    const uint32_t prefix[2] = {static_cast<uint32_t>(ring.cpu), 0};
    const perf_event_header hdr{type, 0, 24};
    uint64_t id = 0;
    for (const PerfFd& f : fds_) {
      if (f.cpu == ring.cpu) {
        ioctl(f.fd.get(), PERF_EVENT_IOC_ID, &id);
        break;
      }
    }
    std::memcpy(dst, prefix, sizeof prefix);
    std::memcpy(dst + kPrefixBytes, &hdr, sizeof hdr);
    std::memcpy(dst + kPrefixBytes + 8, &id, sizeof id);
    std::memcpy(dst + kPrefixBytes + 16, &n, sizeof n);
    return true;
  };
  for (const Ring& ring : rings_) {
    // Every hit of this ring's events: what read() counts (filtered hits only) is each sample
    // written, each sample lost to a full ring, and (measured on 6.18) hits the kernel counted
    // but wrote no sample for and reported nowhere else.
    uint64_t counted, kernelLost;
    bool allReadLost;
    if (!ReadCounts(ring, counted, kernelLost, allReadLost)) continue;  // no count: claim nothing
    RingTally& t = tally_[ring.cpuIndex];
    if (!final) {
      // Exact only when nothing moved: no hit since the last check (a second ago), so every
      // sample of the hits counted was written long ago, and none is left unread. A loss the
      // kernel has counted but not yet put in a record is told apart only with PERF_FORMAT_LOST.
      const bool moved = counted != t.lastCounted;
      t.lastCounted = counted;
      const uint64_t head = __atomic_load_n(&ring.meta->data_head, __ATOMIC_ACQUIRE);
      if (moved || head != ring.meta->data_tail || !allReadLost) continue;
    } else if (kernelLost > t.lostRecords) {
      // The kernel writes a ring's PERF_RECORD_LOST only in front of its next record: at the
      // end there is none, so the loss it still holds is reported here.
      if (!append(ring, PERF_RECORD_LOST, kernelLost - t.lostRecords)) return;
      lost_[ring.cpuIndex].fetch_add(kernelLost - t.lostRecords, std::memory_order_relaxed);
      t.lostRecords = kernelLost;
    }
    const uint64_t accounted = t.samples + std::max(kernelLost, t.lostRecords) + t.unsampled;
    if (counted > accounted) {
      const uint64_t n = counted - accounted;
      if (!append(ring, kRecordUnsampled, n)) return;
      t.unsampled += n;
      lost_[ring.cpuIndex].fetch_add(n, std::memory_order_relaxed);
      unsampled_.fetch_add(n, std::memory_order_relaxed);
    }
  }
}

void PerfSession::Run(BatchSink* sink) {
  prctl(PR_SET_NAME, "rxtrace-reader", 0, 0, 0);
  bool sinkOpen = sink->Started() != BatchSink::Result::kClosing;
  // rxtrace runs inside other people's daemons: an exception escaping this thread would be
  // std::terminate() for the whole process. Instead the trace ends and JS gets an error.
  // A fixed buffer: the exception (and its what()) is gone after the catch, and copying the
  // text into a std::string could itself fail for want of memory.
  char failure[160] = {};
  try {
    if (sinkOpen) Loop(sink, sinkOpen);
  } catch (const std::exception& e) {
    std::snprintf(failure, sizeof failure, "%s", e.what());
    if (failure[0] == '\0') std::snprintf(failure, sizeof failure, "exception");
  } catch (...) {
    std::snprintf(failure, sizeof failure, "unknown exception");
  }
  if (failure[0] != '\0') {
    Disable();
    failures_.fetch_add(1, std::memory_order_relaxed);
    // What the batch holds was consumed from the rings (DrainRing dropped the copies of the
    // failed drain): it must reach JS before the error does.
    if (sinkOpen && batch_ && !batch_->empty() && !abandon_.load(std::memory_order_acquire)) {
      const size_t bytes = batch_->size();
      if (sink->Deliver(batch_, /*blocking=*/true) == BatchSink::Result::kOk) {
        batches_.fetch_add(1, std::memory_order_relaxed);
        bytes_.fetch_add(bytes, std::memory_order_relaxed);
      } else {
        sinkOpen = false;
      }
    }
    batch_.reset();
    if (sinkOpen && sink->Failed(failure) == BatchSink::Result::kClosing) sinkOpen = false;
  }
  if (sinkOpen) sink->Done();
}

void PerfSession::Loop(BatchSink* sink, bool& sinkOpen) {
  using Clock = std::chrono::steady_clock;
  const auto flushAfter = std::chrono::milliseconds(options_.flushMs);
  const size_t batchCapacity = options_.batchBytes + kMaxRecordBytes;
  const size_t nrings = rings_.size();
  // A slice per ring per pass, so one hot cpu cannot starve the others' rings.
  uint64_t largestRing = 0;
  for (const Ring& r : rings_) largestRing = std::max(largestRing, r.dataSize);
  const size_t budget = std::max<size_t>(pageSize_, largestRing / 4);

  std::unique_ptr<Batch>& batch = batch_;  // a member, so that Run() can deliver it on a failure
  bool pending = false;  // a due batch is waiting for room in the JS queue
  bool more = false;     // a ring still held data when its slice ran out
  size_t firstRing = 0;  // rotates so no ring is always served first

  // Offers the batch; false if it is still ours (queue full, or the sink went away).
  auto deliver = [&](bool blocking) -> bool {
    const size_t bytes = batch->size();
    switch (sink->Deliver(batch, blocking)) {
      case BatchSink::Result::kOk:
        pending = false;
        batches_.fetch_add(1, std::memory_order_relaxed);
        bytes_.fetch_add(bytes, std::memory_order_relaxed);
        return true;
      case BatchSink::Result::kFull:
        pending = true;
        stalls_.fetch_add(1, std::memory_order_relaxed);
        return false;
      case BatchSink::Result::kClosing:
        break;
    }
    sinkOpen = false;
    pending = false;
    batch.reset();
    return false;
  };

  // One pass over every ring, each limited to `budget` bytes. Returns false when it had to
  // stop early (no memory, queue full, sink gone).
  auto drainPass = [&](bool blocking, Clock::time_point opened) -> bool {
    more = false;
    for (size_t k = 0; k < nrings && sinkOpen; ++k) {
      Ring& ring = rings_[(firstRing + k) % nrings];
      if (!batch) {
        batch.reset(new (std::nothrow) Batch(batchCapacity));
        if (!batch || !batch->ok()) {
          batch.reset();
          more = true;
          return false;
        }
      }
      const bool wasEmpty = batch->empty();
      if (DrainRing(ring, *batch, budget)) more = true;
      if (wasEmpty && !batch->empty()) batch->opened = opened;
      if (batch->size() >= options_.batchBytes && !deliver(blocking)) {
        more = true;
        return false;
      }
    }
    firstRing = nrings ? (firstRing + 1) % nrings : 0;
    return sinkOpen;
  };

  auto nextReconcile = Clock::now() + std::chrono::milliseconds(kReconcileMs);
  std::array<epoll_event, 64> events;
  while (sinkOpen && !stop_.load(std::memory_order_acquire)) {
    const bool paused = paused_.load(std::memory_order_acquire);
    const Clock::time_point pollStart = Clock::now();
    int timeout;
    if (pending) {
      timeout = kStallRetryMs;
    } else if (more && !paused) {
      timeout = 0;
    } else if (batch && !batch->empty()) {
      timeout = CeilMs(batch->opened + flushAfter - pollStart);
    } else {
      // Below the watermark a ring never wakes us: this timeout is what drains it.
      timeout = static_cast<int>(options_.flushMs);
    }

    const int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) break;  // only with a bad fd: nothing sensible left to do
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeTag) {
        uint64_t v;
        if (::read(wake_.get(), &v, sizeof v) < 0) {
        }
      }
    }
    if (stop_.load(std::memory_order_acquire)) break;

    // Backpressure: while a due batch cannot be queued, leave the rings alone. They fill,
    // and the kernel turns the overflow into PERF_RECORD_LOST: counted, never buffered here.
    if (pending && !deliver(false)) continue;
    if (!paused_.load(std::memory_order_acquire)) {
      // A batch ages from the start of the wait that found its first record: after a quiet
      // ring's timeout that record may already be flushMs old, so it goes out at once.
      if (!drainPass(false, pollStart)) continue;
    }
    // Hits counted and never sampled, on a ring gone quiet (see ReconcileLost): said within
    // seconds, not only at close, for tracers that run for days inside a daemon.
    if (!pending && !paused_.load(std::memory_order_acquire) && sinkOpen && Clock::now() >= nextReconcile) {
      nextReconcile = Clock::now() + std::chrono::milliseconds(kReconcileMs);
      if (!batch) batch.reset(new (std::nothrow) Batch(batchCapacity));
      if (batch && batch->ok()) {
        const bool wasEmpty = batch->empty();
        ReconcileLost(*batch, /*final=*/false);
        if (wasEmpty && !batch->empty()) batch->opened = Clock::now() - flushAfter;  // out now
      } else {
        batch.reset();
      }
    }
    if (!pending && batch && !batch->empty() && Clock::now() - batch->opened >= flushAfter) {
      deliver(false);
    }
  }

  // Disable first, then drain: whatever the kernel recorded before the disable is delivered,
  // and nothing is recorded after the last look at the rings.
  Disable();
  if (sinkOpen && !abandon_.load(std::memory_order_acquire)) {
    if (!pending || deliver(true)) {
      // The rings no longer grow, so this ends; the bound is a guard against a broken ring.
      size_t passes = 0;
      const size_t maxPasses = 4 + 2 * (largestRing / budget);
      bool drained = false;
      do {
        if (!drainPass(true, Clock::now())) break;
        drained = !more;
      } while (!drained && ++passes < maxPasses && !abandon_.load(std::memory_order_acquire));
      // Only once every LOST record the rings hold has been counted.
      if (drained && sinkOpen) {
        if (!batch) batch.reset(new (std::nothrow) Batch(batchCapacity));
        if (batch && batch->ok()) ReconcileLost(*batch, /*final=*/true);
      }
      if (sinkOpen && batch && !batch->empty() && !abandon_.load(std::memory_order_acquire)) {
        deliver(true);
      }
    }
  }
  batch.reset();
}

}  // namespace rxtrace
