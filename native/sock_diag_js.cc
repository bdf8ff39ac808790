// The JS boundary of SockDiag: the SockDiag class of src/native.ts. query() runs on the libuv
// pool (AsyncWorker) and resolves with one ArrayBuffer of reply messages per request; a dump is
// short and bounded by its own timeout, so a dedicated thread would buy nothing here.
#include "sock_diag_js.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "sock_diag.h"

namespace rxtrace {
namespace {

class QueryWorker : public Napi::AsyncWorker {
 public:
  QueryWorker(Napi::Env env, std::shared_ptr<SockDiag> core, uint64_t key, std::string nsPath,
              std::vector<std::vector<uint8_t>> requests)
      : Napi::AsyncWorker(env, "rxtrace:sock_diag"),
        deferred_(Napi::Promise::Deferred::New(env)),
        core_(std::move(core)),
        key_(key),
        nsPath_(std::move(nsPath)),
        requests_(std::move(requests)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      replies_ = core_->Query(key_, nsPath_, requests_);
    } catch (const SysError& e) {
      error_ = std::make_unique<SysError>(e);
    } catch (const std::exception& e) {
      error_ = std::make_unique<SysError>(ENOMEM, "sock_diag", -1, -1, e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (error_) {
      deferred_.Reject(ToJsError(env, *error_).Value());
      return;
    }
    Napi::Array out = Napi::Array::New(env, replies_.size());
    for (size_t i = 0; i < replies_.size(); ++i) {
      Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, replies_[i].size());
      if (!replies_[i].empty()) std::memcpy(ab.Data(), replies_[i].data(), replies_[i].size());
      out.Set(static_cast<uint32_t>(i), ab);
    }
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<SockDiag> core_;
  uint64_t key_;
  std::string nsPath_;
  std::vector<std::vector<uint8_t>> requests_;
  std::vector<std::vector<uint8_t>> replies_;
  std::unique_ptr<SysError> error_;
};

class JsSockDiag : public Napi::ObjectWrap<JsSockDiag> {
 public:
  explicit JsSockDiag(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<JsSockDiag>(info), core_(std::make_shared<SockDiag>()) {}

  // query(key: number, nsPath: string, requests: ArrayBuffer[]): Promise<ArrayBuffer[]>
  Napi::Value Query(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsArray()) {
      throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "query(key: number, nsPath: string, requests: ArrayBuffer[])");
    }
    const double k = info[0].As<Napi::Number>().DoubleValue();
    if (!(k >= 0) || k > 9007199254740991.0) throw CodedRangeError(env, "ERR_OUT_OF_RANGE", "key must be a safe non-negative integer");
    const Napi::Array arr = info[2].As<Napi::Array>();
    std::vector<std::vector<uint8_t>> reqs;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const Napi::Value v = arr.Get(i);
      if (!v.IsArrayBuffer()) throw CodedTypeError(env, "ERR_INVALID_ARG_TYPE", "requests[" + std::to_string(i) + "] is not an ArrayBuffer");
      Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
      const auto* p = static_cast<const uint8_t*>(ab.Data());
      reqs.emplace_back(p, p + ab.ByteLength());
    }
    auto* w = new QueryWorker(env, core_, static_cast<uint64_t>(k), info[1].As<Napi::String>().Utf8Value(), std::move(reqs));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  void Forget(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw CodedTypeError(info.Env(), "ERR_INVALID_ARG_TYPE", "forget(key: number)");
    core_->Forget(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
  }

  void Close(const Napi::CallbackInfo&) { core_->CloseAll(); }

  Napi::Value OpenCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(core_->OpenCount()));
  }

 private:
  // Shared with queries in flight: the object may be collected while one still runs.
  std::shared_ptr<SockDiag> core_;
};

}  // namespace

Napi::Function DefineSockDiag(Napi::Env env) {
  return JsSockDiag::DefineClass(env, "SockDiag",
                                 {
                                     JsSockDiag::InstanceMethod<&JsSockDiag::Query>("query"),
                                     JsSockDiag::InstanceMethod<&JsSockDiag::Forget>("forget"),
                                     JsSockDiag::InstanceMethod<&JsSockDiag::Close>("close"),
                                     JsSockDiag::InstanceMethod<&JsSockDiag::OpenCount>("openCount"),
                                 });
}

}  // namespace rxtrace
