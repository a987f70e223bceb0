// exception_object_arg.hpp: what the "raise a copy of this exception object" overloads take.
#pragma once

#include <cstddef>
#include <exception>
#include <type_traits>

namespace greenlet::detail {

// exception_object_arg<E>: E is an exception object to copy into an std::exception_ptr, as the
// template overloads of throw_(), set_exception() and athrow() take. Neither an exception_ptr (the
// other overload) nor a null literal: throw_(nullptr) means "no exception" and goes to the
// exception_ptr overload, which says what that does; taken here, it raised a std::nullptr_t.
template <class E>
concept exception_object_arg =
    !std::is_same_v<std::decay_t<E>, std::exception_ptr> && !std::is_same_v<std::decay_t<E>, std::nullptr_t>;

}  // namespace greenlet::detail
