// The SockDiag class for JS (native/sock_diag_js.cc), registered by addon.cc.
#pragma once

#include "napi_config.h"

namespace rxtrace {

Napi::Function DefineSockDiag(Napi::Env env);

}  // namespace rxtrace
