// The JS class PerfCounters (src/native.ts) over rxtrace::PerfCounters: counting mode's
// per-tracepoint counts, read synchronously. Kept apart from addon.cc so that file only binds it.
#pragma once

#include "napi_config.h"

namespace rxtrace {

/** The PerfCounters constructor, for the addon's exports. */
Napi::Function DefinePerfCounters(Napi::Env env);

}  // namespace rxtrace
