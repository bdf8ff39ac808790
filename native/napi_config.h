// The one way every addon file includes node-addon-api, so all translation units agree on its
// macros. Both exist so that no C++ exception ever reaches std::terminate() from a JS call:
// a stray std::exception becomes a JS Error, and so does nothing while the env terminates.
#pragma once

// A std::exception (bad_alloc, system_error) escaping a method becomes a JS Error.
#ifndef NODE_ADDON_API_CPP_EXCEPTIONS_ALL
#define NODE_ADDON_API_CPP_EXCEPTIONS_ALL
#endif
// While a worker terminates, napi calls fail and so does napi_throw: without this,
// node-addon-api rethrows from inside its own catch handler and the process aborts.
#ifndef NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#endif
#include <napi.h>
