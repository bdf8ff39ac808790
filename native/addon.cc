// The JS boundary: the PerfSession class of src/native.ts over rxtrace::PerfSession, batch
// delivery through one bounded ThreadSafeFunction per session, promises for start/close,
// per-env state with a cleanup hook (workers, exit), clockOffsetNs and openSessionCount.
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "counters_addon.h"
#include "errors.h"
#include "napi_config.h"
#include "perf_session.h"
#include "sock_diag_js.h"
#include "tracefs_mount.h"
#include "fd_scan.h"

namespace rxtrace {
namespace {

class JsPerfSession;

/**
 * What one env (main thread or a worker) owns. Shared with each session, because at env
 * teardown Node may finalize the addon instance and the session wrappers in any order.
 */
struct EnvState {
  std::unordered_set<JsPerfSession*> sessions;  // sessions that may still hold fds or a thread
  bool tearingDown = false;  // JS can no longer be called: don't settle promises
  bool hookRan = false;

  static void CleanupHook(void* arg);
  size_t OpenCount() const;
};

// TSFN payload: a Batch (ownership passes to JS), or nullptr for "the reader runs".
void CallJs(Napi::Env env, Napi::Function onBatch, JsPerfSession* self, Batch* batch);
void OnTsfnFinalize(Napi::Env env, void* unused, JsPerfSession* self);
using Tsfn = Napi::TypedThreadSafeFunction<JsPerfSession, Batch, CallJs>;

std::shared_ptr<EnvState> EnvStateOf(Napi::Env env);

// ---- option parsing: throw the way Node's own APIs do (TypeError/RangeError with a code) ----

double GetNumber(Napi::Env env, const Napi::Object& o, const char* name, const std::string& where,
                 double min, double max) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) {
    throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", where + "." + name + " must be a number");
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || std::floor(d) != d) {
    throw CodedRangeError(env, "ERR_OUT_OF_RANGE",
                          where + "." + name + " must be an integer in [" +
                              std::to_string(static_cast<int64_t>(min)) + ", " +
                              std::to_string(static_cast<int64_t>(max)) + "]");
  }
  return d;
}

SessionOptions ParseOptions(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) {
    throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
  }
  const Napi::Object o = value.As<Napi::Object>();
  SessionOptions opts;

  const Napi::Value events = o.Get("events");
  if (!events.IsArray() || events.As<Napi::Array>().Length() == 0) {
    throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "options.events must be a non-empty array");
  }
  const Napi::Array evs = events.As<Napi::Array>();
  for (uint32_t i = 0; i < evs.Length(); ++i) {
    const std::string where = "options.events[" + std::to_string(i) + "]";
    const Napi::Value ev = evs.Get(i);
    if (!ev.IsObject()) throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", where + " must be an object");
    const Napi::Object eo = ev.As<Napi::Object>();
    EventSpec spec;
    spec.id = static_cast<uint64_t>(GetNumber(env, eo, "id", where, 0, 9007199254740991.0));
    const Napi::Value filter = eo.Get("filter");
    if (filter.IsString()) {
      spec.filter = filter.As<Napi::String>().Utf8Value();
    } else if (!filter.IsUndefined() && !filter.IsNull()) {
      throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", where + ".filter must be a string");
    }
    const Napi::Value agg = eo.Get("aggregateKey");
    if (agg.IsArray()) {
      // [[offset, length], …] into the raw data: the bytes that make two samples the same.
      const Napi::Array ranges = agg.As<Napi::Array>();
      spec.aggregate = true;
      for (uint32_t r = 0; r < ranges.Length(); ++r) {
        const Napi::Value pair = ranges.Get(r);
        const std::string at = where + ".aggregateKey[" + std::to_string(r) + "]";
        if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2) {
          throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", at + " must be [offset, length]");
        }
        const Napi::Array pa = pair.As<Napi::Array>();
        const Napi::Value a = pa.Get(uint32_t{0});
        const Napi::Value b = pa.Get(uint32_t{1});
        const double off = a.IsNumber() ? a.As<Napi::Number>().DoubleValue() : -1;
        const double len = b.IsNumber() ? b.As<Napi::Number>().DoubleValue() : -1;
        if (!(off >= 0 && off <= 0xffff && std::floor(off) == off && len >= 1 && len <= 0xffff && std::floor(len) == len)) {
          throw CodedRangeError(env, "ERR_OUT_OF_RANGE", at + " must hold integers in [0, 65535]");
        }
        spec.aggregateKey.emplace_back(static_cast<uint16_t>(off), static_cast<uint16_t>(len));
      }
    } else if (!agg.IsUndefined() && !agg.IsNull()) {
      throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", where + ".aggregateKey must be an array");
    }
    opts.events.push_back(std::move(spec));
  }

  const Napi::Value cpus = o.Get("cpus");
  if (!cpus.IsArray() || cpus.As<Napi::Array>().Length() == 0) {
    throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "options.cpus must be a non-empty array");
  }
  const Napi::Array ca = cpus.As<Napi::Array>();
  std::set<int> seen;
  for (uint32_t i = 0; i < ca.Length(); ++i) {
    const Napi::Value c = ca.Get(i);
    const double d = c.IsNumber() ? c.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= INT_MAX) || std::floor(d) != d) {
      throw CodedRangeError(env, "ERR_OUT_OF_RANGE",
                            "options.cpus[" + std::to_string(i) + "] must be a cpu number");
    }
    // A cpu listed twice would open two rings that both see every event.
    if (!seen.insert(static_cast<int>(d)).second) {
      throw CodedRangeError(env, "ERR_INVALID_ARG_VALUE",
                            "options.cpus lists cpu " + std::to_string(static_cast<int>(d)) + " twice");
    }
    opts.cpus.push_back(static_cast<int>(d));
  }

  opts.ringPages = static_cast<uint32_t>(GetNumber(env, o, "ringPages", "options", 1, 1 << 20));
  if ((opts.ringPages & (opts.ringPages - 1)) != 0) {
    // The kernel refuses other sizes with EINVAL at mmap; say it plainly instead.
    throw CodedRangeError(env, "ERR_OUT_OF_RANGE", "options.ringPages must be a power of two");
  }
  opts.wakeupBytes = static_cast<uint32_t>(GetNumber(env, o, "wakeupBytes", "options", 1, UINT32_MAX));
  opts.flushMs = static_cast<uint32_t>(GetNumber(env, o, "flushMs", "options", 1, 3600 * 1000));
  opts.batchBytes = static_cast<size_t>(GetNumber(env, o, "batchBytes", "options", 1, 1 << 30));
  opts.maxQueuedBatches =
      static_cast<size_t>(GetNumber(env, o, "maxQueuedBatches", "options", 1, 1 << 20));
  if (!o.Get("faultAfterAggregated").IsUndefined()) {
    opts.faultAfterAggregated = static_cast<uint64_t>(
        GetNumber(env, o, "faultAfterAggregated", "options", 0, 9007199254740991.0));
  }
  return opts;
}

// ---- promises settled outside JS calls ----

/** A new promise; throws (we are inside a JS call here) if even that fails. */
napi_value NewPromise(Napi::Env env, napi_deferred* deferred) {
  napi_value promise;
  const napi_status status = napi_create_promise(env, deferred, &promise);
  if (status != napi_ok) throw Napi::Error::New(env);
  return promise;
}

/** Settles a promise; failures are ignored: they only happen when JS can no longer run. */
void Settle(napi_env env, napi_deferred deferred, napi_value rejection = nullptr) {
  if (rejection != nullptr) {
    napi_reject_deferred(env, deferred, rejection);
    return;
  }
  napi_value undefined;
  if (napi_get_undefined(env, &undefined) == napi_ok) napi_resolve_deferred(env, deferred, undefined);
}

/** An Error with a code, without throwing: nullptr if it cannot be made. */
napi_value MakeError(napi_env env, const char* code, const char* message) {
  napi_value codeValue, messageValue, error;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codeValue) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &messageValue) != napi_ok ||
      napi_create_error(env, codeValue, messageValue, &error) != napi_ok) {
    return nullptr;
  }
  return error;
}

// ---- PerfSession (the JS class) ----

/**
 * Lifecycle: kOpen (fds open, no thread) → start() → kRunning → close() → kClosing →
 * TSFN finalizer → kClosed. From start() until the TSFN finalizer, the wrapper holds a
 * strong reference to its own JS object: the reader thread and the TSFN point at it, and a
 * running trace should not stop because the caller dropped its variable (like a socket).
 */
class JsPerfSession : public Napi::ObjectWrap<JsPerfSession>, public BatchSink {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit JsPerfSession(const Napi::CallbackInfo& info);
  ~JsPerfSession() override;

  // BatchSink: called on the reader thread.
  Result Started() override;
  Result Deliver(std::unique_ptr<Batch>& batch, bool blocking) override;
  Result Failed(const char* what) noexcept override;
  void Done() override;
  /** On the JS thread, once CallJs took a batch off the queue: a stalled reader may go on. */
  void RoomAvailable() {
    if (core_) core_->RoomAvailable();
  }

  /** Env cleanup hook: stop and join the reader, close every fd. Never calls JS. */
  void TeardownNow();
  bool FdsOpen() const { return core_ && core_->FdsOpen(); }

  void OnStarted(Napi::Env env);
  void OnFinalized(Napi::Env env);

 private:
  enum class State { kOpen, kRunning, kClosing, kClosed };

  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void SetPaused(const Napi::CallbackInfo& info);
  void JsRef(const Napi::CallbackInfo& info);
  void JsUnref(const Napi::CallbackInfo& info);
  Napi::Value GetStats(const Napi::CallbackInfo& info);
  void Unregister();

  std::shared_ptr<EnvState> envState_;
  std::unique_ptr<PerfSession> core_;
  Napi::FunctionReference onBatch_;  // until start() hands it to the TSFN
  Tsfn tsfn_;
  bool tsfnLive_ = false;
  bool refed_ = true;
  bool holdsSelf_ = false;
  State state_ = State::kOpen;
  // Raw napi_deferreds: they are settled from TSFN callbacks and finalizers, where a C++
  // exception (what Napi::Promise::Deferred throws on failure) would terminate the process.
  napi_deferred startDeferred_ = nullptr;
  std::vector<napi_deferred> closeWaiters_;
};

Napi::Function JsPerfSession::Define(Napi::Env env) {
  return DefineClass(env, "PerfSession",
                     {
                         InstanceMethod<&JsPerfSession::Start>("start"),
                         InstanceMethod<&JsPerfSession::SetPaused>("setPaused"),
                         InstanceMethod<&JsPerfSession::Close>("close"),
                         InstanceMethod<&JsPerfSession::JsRef>("ref"),
                         InstanceMethod<&JsPerfSession::JsUnref>("unref"),
                         InstanceMethod<&JsPerfSession::GetStats>("stats"),
                     });
}

JsPerfSession::JsPerfSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsPerfSession>(info) {
  Napi::Env env = info.Env();
  SessionOptions opts = ParseOptions(env, info[0]);
  if (!info[1].IsFunction()) {
    throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "onBatch must be a function");
  }
  onBatch_ = Napi::Persistent(info[1].As<Napi::Function>());
  envState_ = EnvStateOf(env);
  try {
    core_ = std::make_unique<PerfSession>(std::move(opts));
  } catch (const SysError& e) {
    // PerfSession's members have already closed whatever it had opened.
    throw ToJsError(env, e);
  }
  // Last, so a throw above never leaves a half-built session in the registry.
  envState_->sessions.insert(this);
}

JsPerfSession::~JsPerfSession() {
  // Collected without close(). A running session cannot get here (start() holds a strong
  // reference until the TSFN is gone), so there is no TSFN to wait for; stopping with
  // abandon never blocks on one anyway.
  if (core_) {
    core_->RequestStop(true);
    core_->Join();
    core_->CloseFds();
  }
  Unregister();
}

void JsPerfSession::Unregister() {
  if (envState_) envState_->sessions.erase(this);
}

Napi::Value JsPerfSession::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // A promise already rejected, for the failures before the reader exists. (One deferred made
  // up front would be left pending on the success path, which settles `started` instead.)
  const auto rejected = [&env](const Napi::Error& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  };
  if (state_ != State::kOpen) {
    return rejected(CodedError(env, "ERR_INVALID_STATE",
                               state_ == State::kRunning ? "PerfSession already started" : "PerfSession is closed"));
  }

  try {
    core_->Enable();
  } catch (const SysError& e) {
    return rejected(ToJsError(env, e));
  }

  napi_deferred started;
  napi_value promise;
  try {
    promise = NewPromise(env, &started);
  } catch (const Napi::Error&) {
    core_->Disable();
    throw;
  }

  try {
    // One call per batch; the queue bound is where a slow consumer turns into kernel loss.
    tsfn_ = Tsfn::New(env, onBatch_.Value(), "rxtrace-reader", core_->options().maxQueuedBatches,
                      /*initialThreadCount=*/1, this, OnTsfnFinalize, static_cast<void*>(nullptr));
  } catch (const Napi::Error& e) {
    core_->Disable();  // back to the state before start(); close() still works
    Settle(env, started, e.Value());
    return Napi::Value(env, promise);
  }
  tsfnLive_ = true;
  onBatch_.Reset();  // the TSFN holds the callback now; don't keep a second root to it
  if (!refed_) tsfn_.Unref(env);
  Ref();
  holdsSelf_ = true;
  startDeferred_ = started;
  state_ = State::kRunning;

  try {
    core_->StartReader(this);
  } catch (const std::system_error& e) {
    // No thread to release its share of the TSFN: do it here. The finalizer then closes
    // the fds and drops the self reference like after any close().
    startDeferred_ = nullptr;
    state_ = State::kClosing;
    tsfn_.Release();
    Settle(env, started, ToJsError(env, SysError(e.code().value(), "pthread_create")).Value());
  }
  return Napi::Value(env, promise);
}

Napi::Value JsPerfSession::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_deferred deferred;
  napi_value promise = NewPromise(env, &deferred);
  switch (state_) {
    case State::kOpen:
      // Never started: no thread, no TSFN. Close synchronously.
      core_->CloseFds();
      state_ = State::kClosed;
      Unregister();
      Settle(env, deferred);
      break;
    case State::kRunning:
      closeWaiters_.push_back(deferred);
      state_ = State::kClosing;
      core_->RequestStop(false);
      // An awaited close() must keep the process alive until it settles, even if unref()'d.
      if (tsfnLive_) tsfn_.Ref(env);
      break;
    case State::kClosing:
      closeWaiters_.push_back(deferred);  // settles with the first close()
      break;
    case State::kClosed:
      Settle(env, deferred);
      break;
  }
  return Napi::Value(env, promise);
}

void JsPerfSession::SetPaused(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) {
    throw CodedTypeError(info.Env(), "ERR_INVALID_ARG_TYPE", "paused must be a boolean");
  }
  core_->SetPaused(info[0].As<Napi::Boolean>().Value());
}

void JsPerfSession::JsRef(const Napi::CallbackInfo& info) {
  refed_ = true;
  if (tsfnLive_ && state_ == State::kRunning) tsfn_.Ref(info.Env());
}

void JsPerfSession::JsUnref(const Napi::CallbackInfo& info) {
  refed_ = false;
  // While closing, the TSFN stays referenced until close() settles (see Close).
  if (tsfnLive_ && state_ == State::kRunning) tsfn_.Unref(info.Env());
}

Napi::Value JsPerfSession::GetStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const StatsSnapshot s = core_->Stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("samples", Napi::Number::New(env, static_cast<double>(s.samples)));
  Napi::Array lost = Napi::Array::New(env, s.lostPerCpu.size());
  for (size_t i = 0; i < s.lostPerCpu.size(); ++i) {
    lost.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(s.lostPerCpu[i])));
  }
  out.Set("lostPerCpu", lost);
  out.Set("batches", Napi::Number::New(env, static_cast<double>(s.batches)));
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(s.bytes)));
  out.Set("stalls", Napi::Number::New(env, static_cast<double>(s.stalls)));
  out.Set("aggregated", Napi::Number::New(env, static_cast<double>(s.aggregated)));
  out.Set("otherRecords", Napi::Number::New(env, static_cast<double>(s.otherRecords)));
  out.Set("failures", Napi::Number::New(env, static_cast<double>(s.failures)));
  out.Set("unsampled", Napi::Number::New(env, static_cast<double>(s.unsampled)));
  return out;
}

// ---- BatchSink, on the reader thread ----

BatchSink::Result JsPerfSession::Started() {
  // The queue is empty at this point, so this never waits; blocking keeps "started" from
  // being dropped for want of room.
  const napi_status status = tsfn_.BlockingCall(nullptr);
  return status == napi_ok ? Result::kOk : Result::kClosing;
}

BatchSink::Result JsPerfSession::Deliver(std::unique_ptr<Batch>& batch, bool blocking) {
  const napi_status status = blocking ? tsfn_.BlockingCall(batch.get()) : tsfn_.NonBlockingCall(batch.get());
  switch (status) {
    case napi_ok:
      batch.release();  // CallJs owns it now
      return Result::kOk;
    case napi_queue_full:
      return Result::kFull;
    default:
      // napi_closing: the env is going away and the TSFN may be freed at any moment. The
      // thread must not touch it again, not even to Release() it.
      return Result::kClosing;
  }
}

BatchSink::Result JsPerfSession::Failed(const char* what) noexcept {
  // A batch with no records and the reason: CallJs turns it into onBatch(undefined, error).
  std::unique_ptr<Batch> note(new (std::nothrow) Batch(0));
  if (!note) return Result::kOk;  // no memory even for this: the trace still ends (Done)
  try {
    note->failure = what;
  } catch (...) {
    return Result::kOk;
  }
  return Deliver(note, /*blocking=*/true);
}

void JsPerfSession::Done() {
  // Last use of the TSFN by this thread. Once the queue is delivered, the TSFN finalizer
  // runs on the JS thread. A failure here (napi_invalid_arg) means the TSFN was already
  // closed by env teardown, which finalizes it anyway.
  const napi_status status = tsfn_.Release();
  (void)status;
}

// ---- JS thread callbacks ----

void JsPerfSession::OnStarted(Napi::Env env) {
  if (startDeferred_ != nullptr) {
    Settle(env, startDeferred_);
    startDeferred_ = nullptr;
  }
}

void JsPerfSession::OnFinalized(Napi::Env env) {
  // Normally the reader already delivered its last batch, released the TSFN and returned.
  // At env teardown the TSFN is finalized while the reader may still run: it must be gone
  // before this returns (Node frees the TSFN right after), hence stop-with-abandon + join.
  core_->RequestStop(true);
  core_->Join();
  core_->CloseFds();
  tsfnLive_ = false;
  tsfn_ = Tsfn();
  state_ = State::kClosed;
  Unregister();

  napi_deferred start = startDeferred_;
  startDeferred_ = nullptr;
  std::vector<napi_deferred> waiters;
  waiters.swap(closeWaiters_);
  // At env teardown nobody is left to see these promises: leave them pending.
  if (!envState_->tearingDown) {
    if (start != nullptr) {
      napi_value err = MakeError(env, "ERR_INVALID_STATE", "PerfSession closed before it started");
      if (err != nullptr) Settle(env, start, err);
    }
    for (napi_deferred d : waiters) Settle(env, d);
  }
  if (holdsSelf_) {
    holdsSelf_ = false;
    uint32_t refs;
    // From now on the JS object may be collected.
    napi_reference_unref(env, static_cast<napi_ref>(*this), &refs);
  }
}

void JsPerfSession::TeardownNow() {
  // Env cleanup hooks run in reverse order of registration, and each TSFN registered its own
  // hook after ours, so every TSFN is already closing: a reader waiting in BlockingCall has
  // returned with napi_closing, and this join cannot wait on the JS thread.
  core_->RequestStop(true);
  core_->Join();
  core_->CloseFds();
  state_ = State::kClosed;  // a pending TSFN finalizer finds nothing left to do
}

void CallJs(Napi::Env env, Napi::Function onBatch, JsPerfSession* self, Batch* data) {
  std::unique_ptr<Batch> batch(data);
  // A null env: the TSFN is being destroyed with items still queued. Just free them.
  if (static_cast<napi_env>(env) == nullptr) return;
  if (!batch) {
    self->OnStarted(env);
    return;
  }
  // This call took a batch off the TSFN queue: there is room for the reader again.
  self->RoomAvailable();
  if (onBatch.IsEmpty()) return;
  if (!batch->failure.empty()) {
    const std::string message = "the reader thread failed (" + batch->failure + ") and stopped tracing";
    napi_value error = MakeError(env, "ERR_READER_FAILED", message.c_str());
    napi_value args[2];
    if (error == nullptr || napi_get_undefined(env, &args[0]) != napi_ok) return;
    args[1] = error;
    napi_value undefined;
    if (napi_get_undefined(env, &undefined) != napi_ok) return;
    napi_call_function(env, undefined, onBatch, 2, args, nullptr);
    return;
  }
  // Everything below uses status-returning C calls: while a worker terminates, calls into
  // JS fail, and a C++ exception thrown from here would abort the whole process.
  const size_t size = batch->size();
  // The buffer is the batch's whole capacity (batchBytes plus room for one record); V8 counts
  // only `size` of it for an external ArrayBuffer. The rest is reported here and given back in
  // the finalizer (its hint), so that GC pressure reflects the memory really held.
  const int64_t unseen = static_cast<int64_t>(batch->capacity() - size);
  uint8_t* bytes = batch->Release();
  // Zero-copy: JS gets the reader's buffer, freed when the ArrayBuffer is collected.
  int64_t external;
  if (unseen > 0) napi_adjust_external_memory(env, unseen, &external);
  napi_value ab = nullptr;
  napi_status status = napi_create_external_arraybuffer(
      env, bytes, size,
      [](napi_env finalizeEnv, void* p, void* hint) {
        std::free(p);
        const int64_t n = static_cast<int64_t>(reinterpret_cast<intptr_t>(hint));
        int64_t left;
        if (n > 0) napi_adjust_external_memory(finalizeEnv, -n, &left);
      },
      reinterpret_cast<void*>(static_cast<intptr_t>(unseen)), &ab);
  // Refused before Node took the buffer: no finalizer will give the count back.
  if (unseen > 0 && (status == napi_no_external_buffers_allowed || status == napi_pending_exception ||
                     status == napi_cannot_run_js)) {
    napi_adjust_external_memory(env, -unseen, &external);
  }
  if (status == napi_no_external_buffers_allowed) {
    // V8 sandbox builds (Electron) refuse outside memory: copy instead.
    void* copy = nullptr;
    status = napi_create_arraybuffer(env, size, &copy, &ab);
    if (status == napi_ok) std::memcpy(copy, bytes, size);
    std::free(bytes);
  } else if (status == napi_pending_exception || status == napi_cannot_run_js) {
    std::free(bytes);  // refused up front (JS cannot run): the buffer is still ours
  }
  // Any other failure happens after Node took the buffer; it frees it.
  if (status != napi_ok) return;
  napi_value undefined;
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  // A throw in onBatch stays pending and Node reports it as an uncaught exception, like a
  // throwing event listener.
  napi_call_function(env, undefined, onBatch, 1, &ab, nullptr);
}

void OnTsfnFinalize(Napi::Env env, void*, JsPerfSession* self) { self->OnFinalized(env); }

// ---- per-env addon instance ----

void EnvState::CleanupHook(void* arg) {
  auto* state = static_cast<EnvState*>(arg);
  state->hookRan = true;
  state->tearingDown = true;
  // Copy: TeardownNow must not invalidate the iteration if it ever unregisters.
  const std::vector<JsPerfSession*> sessions(state->sessions.begin(), state->sessions.end());
  for (JsPerfSession* s : sessions) s->TeardownNow();
}

size_t EnvState::OpenCount() const {
  size_t n = 0;
  for (const JsPerfSession* s : sessions) n += s->FdsOpen() ? 1 : 0;
  return n;
}

class RxtraceAddon : public Napi::Addon<RxtraceAddon> {
 public:
  RxtraceAddon(Napi::Env env, Napi::Object exports)
      : env_(env), state_(std::make_shared<EnvState>()) {
    // A worker that terminates mid-trace, or the process exiting, stops every reader and
    // closes every fd of this env.
    if (napi_add_env_cleanup_hook(env, &EnvState::CleanupHook, state_.get()) != napi_ok) {
      throw Napi::Error::New(env, "napi_add_env_cleanup_hook failed");
    }
    DefineAddon(exports, {
                             InstanceValue("PerfSession", JsPerfSession::Define(env), napi_enumerable),
                             InstanceValue("PerfCounters", DefinePerfCounters(env), napi_enumerable),
                             InstanceValue("SockDiag", DefineSockDiag(env), napi_enumerable),
                             InstanceMethod<&RxtraceAddon::ClockOffsetNs>("clockOffsetNs", napi_enumerable),
                             InstanceMethod<&RxtraceAddon::OpenSessionCount>("openSessionCount",
                                                                             napi_enumerable),
                             InstanceMethod<&RxtraceAddon::PageSize>("pageSize", napi_enumerable),
                             InstanceMethod<&RxtraceAddon::OpenTracefs>("openTracefs", napi_enumerable),
                             InstanceMethod<&RxtraceAddon::SocketFdsOf>("socketFdsOf", napi_enumerable),
                         });
  }

  ~RxtraceAddon() {
    if (!state_->hookRan) napi_remove_env_cleanup_hook(env_, &EnvState::CleanupHook, state_.get());
  }

  const std::shared_ptr<EnvState>& state() const { return state_; }

 private:
  // CLOCK_REALTIME − CLOCK_MONOTONIC. The realtime read is bracketed by two monotonic reads;
  // the narrowest bracket of a few tries is the one least disturbed by preemption.
  Napi::Value ClockOffsetNs(const Napi::CallbackInfo& info) {
    auto ns = [](const timespec& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec; };
    int64_t bestGap = INT64_MAX, offset = 0;
    for (int i = 0; i < 7; ++i) {
      timespec m1, r, m2;
      clock_gettime(CLOCK_MONOTONIC, &m1);
      clock_gettime(CLOCK_REALTIME, &r);
      clock_gettime(CLOCK_MONOTONIC, &m2);
      const int64_t gap = ns(m2) - ns(m1);
      if (gap < bestGap) {
        bestGap = gap;
        offset = ns(r) - (ns(m1) + gap / 2);
      }
    }
    return Napi::BigInt::New(info.Env(), offset);
  }

  // The kernel page size: the unit of ring sizes, sockstat `mem` and udp_mem. sysconf cannot
  // fail for _SC_PAGESIZE on Linux.
  Napi::Value PageSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(sysconf(_SC_PAGESIZE)));
  }

  // A detached tracefs mount's fd (tracefs_mount.h); the caller closes it (fs.closeSync).
  Napi::Value OpenTracefs(const Napi::CallbackInfo& info) {
    try {
      return Napi::Number::New(info.Env(), OpenDetachedTracefs());
    } catch (const SysError& e) {
      throw ToJsError(info.Env(), e);
    }
  }

  // socketFdsOf('/proc/PID/fd') → { fds, inodes: Float64Array } (fd_scan.h). Synchronous: one
  // process's fds are a bounded piece of work, and the scan yields to the loop between processes.
  Napi::Value SocketFdsOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "socketFdsOf(fdDir: string)");
    try {
      const SocketFds got = ReadSocketFds(info[0].As<Napi::String>().Utf8Value());
      // Inodes fit a double exactly (they are at most 2^32 on every filesystem we read here).
      Napi::Float64Array inodes = Napi::Float64Array::New(env, got.inodes.size());
      for (size_t i = 0; i < got.inodes.size(); ++i) inodes[i] = static_cast<double>(got.inodes[i]);
      Napi::Object out = Napi::Object::New(env);
      out.Set("fds", Napi::Number::New(env, got.fds));
      out.Set("inodes", inodes);
      return out;
    } catch (const SysError& e) {
      throw ToJsError(env, e);
    }
  }

  Napi::Value OpenSessionCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(state_->OpenCount()));
  }

  napi_env env_;
  std::shared_ptr<EnvState> state_;
};

std::shared_ptr<EnvState> EnvStateOf(Napi::Env env) { return env.GetInstanceData<RxtraceAddon>()->state(); }

}  // namespace
}  // namespace rxtrace

// The registration macro pastes the class name into an identifier, so it needs a plain name.
using rxtrace::RxtraceAddon;
NODE_API_ADDON(RxtraceAddon)
