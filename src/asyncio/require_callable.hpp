// require_callable.hpp: the check every call that schedules a user's std::function makes first.
#pragma once

#include <functional>

namespace greenlet::asyncio::detail {

// require_callable(fn, call) throws greenlet::error (errc::bad_arguments) for an empty fn, naming
// `call` ("call_soon()"...), as asyncio's TypeError "a callable object was expected by
// call_soon()". Scheduled, an empty function only threw std::bad_function_call into the exception
// handler when it ran, far from the mistake (and add_reader()'s, on every readiness, for ever).
void require_callable(const std::function<void()>& fn, const char* call);

}  // namespace greenlet::asyncio::detail
