// loop_resolver.hpp: the resolver set_resolver() gives a loop, as the
// library's lookups (resolve.cpp) ask it.
#pragma once

#include <netdb.h>

#include <optional>
#include <string>
#include <vector>

#include "greenlet/detail/loop_core.hpp"
#include "greenlet/io/names.hpp"
#include "io/resolve.hpp"

namespace greenlet::asyncio::detail {

// loop_resolver_answer is a loop resolver's answer once checked: what getaddrinfo() returns, and
// the same addresses as socket addresses for the library's own lookups.
struct loop_resolver_answer {
  std::vector<addrinfo_entry> entries;
  std::vector<resolved_address> addresses;
};

// ask_loop_resolver(core, host, service, hints) is the answer of core's loop's resolver for the
// name host, checked and filtered as set_resolver() says; nullopt if the loop has none. Throws
// ValueError (a name, or a family not the address's, in an answer), gaierror (no answer left),
// RuntimeError (asked from within itself in the same task), and what the resolver throws.
std::optional<loop_resolver_answer> ask_loop_resolver(loop_core* core, const std::string& host,
                                                      const std::string& service, const addrinfo& hints);

}  // namespace greenlet::asyncio::detail
