// new PerfCounters({ events: [{ id, filter? }], cpus }) opens and enables the counting fds;
// read() returns each event's count (summed over cpus) as a number; close() closes the fds.
// No thread and no callback: everything runs on the calling JS thread, so a worker that ends
// mid-count only has fds to close, which the destructor (run at env teardown) does.
#include "counters_addon.h"

#include <climits>
#include <cmath>
#include <memory>
#include <set>
#include <string>

#include "errors.h"
#include "perf_counters.h"

namespace rxtrace {
namespace {

class JsPerfCounters : public Napi::ObjectWrap<JsPerfCounters> {
 public:
  explicit JsPerfCounters(const Napi::CallbackInfo& info);
  static Napi::Function Define(Napi::Env env);

 private:
  Napi::Value Read(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  std::unique_ptr<PerfCounters> core_;
};

JsPerfCounters::JsPerfCounters(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsPerfCounters>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
  const Napi::Object o = info[0].As<Napi::Object>();

  std::vector<CounterSpec> events;
  const Napi::Value evv = o.Get("events");
  if (!evv.IsArray() || evv.As<Napi::Array>().Length() == 0) {
    throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "options.events must be a non-empty array");
  }
  const Napi::Array evs = evv.As<Napi::Array>();
  for (uint32_t i = 0; i < evs.Length(); ++i) {
    const std::string where = "options.events[" + std::to_string(i) + "]";
    const Napi::Value ev = evs.Get(i);
    if (!ev.IsObject()) throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", where + " must be an object");
    const Napi::Object eo = ev.As<Napi::Object>();
    const Napi::Value id = eo.Get("id");
    const double d = id.IsNumber() ? id.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) {
      throw CodedRangeError(env, "ERR_OUT_OF_RANGE", where + ".id must be a tracepoint id");
    }
    CounterSpec spec;
    spec.id = static_cast<uint64_t>(d);
    const Napi::Value filter = eo.Get("filter");
    if (filter.IsString()) {
      spec.filter = filter.As<Napi::String>().Utf8Value();
    } else if (!filter.IsUndefined() && !filter.IsNull()) {
      throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", where + ".filter must be a string");
    }
    events.push_back(std::move(spec));
  }

  const Napi::Value cv = o.Get("cpus");
  if (!cv.IsArray() || cv.As<Napi::Array>().Length() == 0) {
    throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "options.cpus must be a non-empty array");
  }
  const Napi::Array ca = cv.As<Napi::Array>();
  std::vector<int> cpus;
  std::set<int> seen;
  for (uint32_t i = 0; i < ca.Length(); ++i) {
    const Napi::Value c = ca.Get(i);
    const double d = c.IsNumber() ? c.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= INT_MAX) || std::floor(d) != d) {
      throw CodedRangeError(env, "ERR_OUT_OF_RANGE", "options.cpus[" + std::to_string(i) + "] must be a cpu number");
    }
    // A cpu listed twice would count every hit on it twice.
    if (!seen.insert(static_cast<int>(d)).second) {
      throw CodedRangeError(env, "ERR_INVALID_ARG_VALUE", "options.cpus lists cpu " + std::to_string(static_cast<int>(d)) + " twice");
    }
    cpus.push_back(static_cast<int>(d));
  }

  try {
    core_ = std::make_unique<PerfCounters>(std::move(events), std::move(cpus));
  } catch (const SysError& e) {
    throw ToJsError(env, e);  // PerfCounters closed whatever it had opened
  }
}

Napi::Value JsPerfCounters::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint64_t> counts;
  try {
    counts = core_->Read();
  } catch (const SysError& e) {
    throw ToJsError(env, e);
  }
  Napi::Array out = Napi::Array::New(env, counts.size());
  // A double holds every count below 2^53: 285 years at a million drops a second.
  for (size_t i = 0; i < counts.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(counts[i])));
  return out;
}

void JsPerfCounters::Close(const Napi::CallbackInfo&) { core_->Close(); }

Napi::Function JsPerfCounters::Define(Napi::Env env) {
  return DefineClass(env, "PerfCounters",
                     {
                         InstanceMethod<&JsPerfCounters::Read>("read"),
                         InstanceMethod<&JsPerfCounters::Close>("close"),
                     });
}

}  // namespace

Napi::Function DefinePerfCounters(Napi::Env env) { return JsPerfCounters::Define(env); }

}  // namespace rxtrace
