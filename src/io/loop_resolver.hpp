// loop_resolver.hpp: the resolver set_resolver() gives a loop, as the
// library's lookups (resolve.cpp) ask it, and the checks every resolver's
// answer goes through.
#pragma once

#include <netdb.h>

#include <optional>
#include <string>
#include <vector>

#include "greenlet/detail/loop_core.hpp"
#include "greenlet/io/names.hpp"
#include "io/resolve.hpp"

namespace greenlet::asyncio::detail {

// resolver_answer is a resolver's answer once checked: what getaddrinfo() returns, and the same
// addresses as socket addresses for the library's own lookups.
struct resolver_answer {
  std::vector<addrinfo_entry> entries;
  std::vector<resolved_address> addresses;
};

// check_resolver_answer(who, host, service, hints, entries) is the answer a resolver (`who`, as
// messages name it: "the loop's resolver", "connect_options.resolver") gave for host, checked
// and filtered as set_resolver() says: numeric addresses, family 0 filled in from the address,
// type and protocol 0 from the hints, answers of another family, type or protocol than the hints'
// dropped. Throws ValueError (a name, or a family not the address's), gaierror (EAI_NONAME: no
// answer left).
resolver_answer check_resolver_answer(const std::string& who, const std::string& host, const std::string& service,
                                      const addrinfo_hints& hints, std::vector<addrinfo_entry> entries);

// ask_loop_resolver(core, host, service, hints) is the answer of core's loop's resolver for the
// name host, checked by check_resolver_answer(); nullopt if the loop has none. Throws as that,
// RuntimeError (asked from within itself in the same task), and what the resolver throws.
std::optional<resolver_answer> ask_loop_resolver(loop_core* core, const std::string& host, const std::string& service,
                                                 const addrinfo& hints);

}  // namespace greenlet::asyncio::detail
