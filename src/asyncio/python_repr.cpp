// python_repr.cpp: Python's repr() of a str and of an exception, for the
// repr() of futures and tasks (asyncio prints `exception=ValueError('boom')`),
// of a callback's Handle, for the report of a callback that throws, and an
// object's address as a repr shows its id() (locks and queues).
// Only printing calls these: nothing on an await or a step does.
#include <cxxabi.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "greenlet/asyncio/taskgroup.hpp"
#include "greenlet/concurrent/future.hpp"
#include "greenlet/detail/future_state.hpp"

#include "asyncio/member_list.hpp"
#include "asyncio/utf8.hpp"

namespace greenlet::asyncio::detail {

namespace {

// The code points above U+007F that Python's str.isprintable() refuses
// (Unicode 14, Python 3.11) and repr() therefore escapes, unassigned ones
// aside: controls, format characters, separators other than the space, and
// private use.
struct code_point_range {
  char32_t first, last;
};
constexpr code_point_range unprintable_ranges[] = {
    {0x80, 0xA0},       {0xAD, 0xAD},         {0x600, 0x605},     {0x61C, 0x61C},     {0x6DD, 0x6DD},
    {0x70F, 0x70F},     {0x890, 0x891},       {0x8E2, 0x8E2},     {0x1680, 0x1680},   {0x180E, 0x180E},
    {0x2000, 0x200F},   {0x2028, 0x202F},     {0x205F, 0x2064},   {0x2066, 0x206F},   {0x3000, 0x3000},
    {0xE000, 0xF8FF},   {0xFEFF, 0xFEFF},     {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
    {0x13430, 0x13438}, {0x1BCA0, 0x1BCA3},   {0x1D173, 0x1D17A}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F},
    {0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD},
};

bool printable_above_ascii(char32_t c) {
  for (const code_point_range& r : unprintable_ranges) {
    if (c < r.first) return true;
    if (c <= r.last) return false;
  }
  return true;
}

// append_escape(out, c) writes Python's escape for the code point c: \xhh,
// \uhhhh or \Uhhhhhhhh, the shortest that holds it.
void append_escape(std::string& out, char32_t c) {
  static constexpr char hex[] = "0123456789abcdef";
  int digits = 2;
  out += '\\';
  if (c <= 0xFF) {
    out += 'x';
  } else if (c <= 0xFFFF) {
    out += 'u';
    digits = 4;
  } else {
    out += 'U';
    digits = 8;
  }
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += hex[(c >> shift) & 0xF];
}

// class_name(type) is the demangled name of an exception's type as Python's
// repr shows a class: unqualified (namespaces and enclosing classes dropped)
// and without template arguments.
std::string class_name(const std::type_info* type) {
  if (type == nullptr) return "<unknown exception>";
  return ::greenlet::concurrent::detail::demangle(type->name());
}

// call_repr(name, message) is BaseException.__repr__ for one argument, or for
// none when message is empty and empty means "no message" for that type.
std::string call_repr(const std::string& name, std::string_view message, bool empty_means_none) {
  if (message.empty() && empty_means_none) return name + "()";
  return name + "(" + python_str_repr(message) + ")";
}

// exception_group_repr(group) lists the members as what() does: at most 15 and about 2,000
// characters of them, then "... and N more" (member_list.hpp); Python's repr lists them all, but
// a log line of megabytes for 100,000 failed tasks helps nobody.
std::string exception_group_repr(const ExceptionGroup& group) {
  const std::string members =
      bounded_member_list(group.exceptions(), ", ", exception_repr, [](std::size_t) { return ""; });
  return "ExceptionGroup(" + python_str_repr(group.message()) + ", [" + members + "])";
}

// full_name(mangled) is the demangled name, "(anonymous namespace)::" dropped: a lambda's type
// names the function it is in, as Python's "f.<locals>.<lambda>" does.
std::string full_name(const char* mangled) {
  int status = 0;
  char* text = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && text != nullptr ? text : mangled;
  std::free(text);
  static constexpr std::string_view anonymous = "(anonymous namespace)::";
  for (std::size_t at; (at = name.find(anonymous)) != std::string::npos;) name.erase(at, anonymous.size());
  return name;
}

}  // namespace

std::string callable_name(const std::function<void()>& fn) { return callable_type_name(fn.target_type()); }

std::string callable_type_name(const std::type_info& target) {
  if (target == typeid(void)) return "";  // an empty std::function's target_type()
  // A plain function's name is in no type, and its symbol is seldom exported (dladdr() finds an
  // executable's only with -rdynamic): say what it is.
  if (target == typeid(void (*)())) return "<function pointer>";
  return full_name(target.name());
}

std::string handle_repr(const callback_node& n, const std::string& callable) {
  const bool is_timer = n.kind != callback_node::kind_t::soon;
  std::string out = is_timer ? "<TimerHandle" : "<Handle";
  if (n.cancelled) out += " cancelled";
  if (is_timer) out += " when=" + python_float_repr(n.public_when());
  out += " " + (callable.empty() ? std::string("<callback>") : callable) + "()>";
  return out;
}

std::string python_str_repr(std::string_view text) {
  // As Python: single quotes, unless the text holds one and no double quote.
  const bool has_single = text.find('\'') != std::string_view::npos;
  const char quote = has_single && text.find('"') == std::string_view::npos ? '"' : '\'';
  std::string out;
  out.reserve(text.size() + 2);
  out += quote;
  for (std::size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      ++i;
      if (byte == static_cast<unsigned char>(quote) || byte == '\\') {
        out += '\\';
        out += static_cast<char>(byte);
      } else if (byte == '\t') {
        out += "\\t";
      } else if (byte == '\n') {
        out += "\\n";
      } else if (byte == '\r') {
        out += "\\r";
      } else if (byte < 0x20 || byte == 0x7F) {
        append_escape(out, byte);
      } else {
        out += static_cast<char>(byte);
      }
      continue;
    }
    const std::size_t start = i;
    const long c = decode_utf8(text, i);
    if (c < 0) {
      // Not UTF-8: a Python str cannot hold it; show the byte as \xhh.
      append_escape(out, byte);
      ++i;
    } else if (printable_above_ascii(static_cast<char32_t>(c))) {
      out.append(text.substr(start, i - start));
    } else {
      append_escape(out, static_cast<char32_t>(c));
    }
  }
  out += quote;
  return out;
}

std::string address_repr(const void* object) {
  // to_chars, not a stream: no locale, no allocation beyond the result.
  char buffer[2 + 2 * sizeof(std::uintptr_t)] = {'0', 'x'};
  const auto end = std::to_chars(buffer + 2, buffer + sizeof buffer, reinterpret_cast<std::uintptr_t>(object), 16).ptr;
  return std::string(buffer, end);
}

std::string exception_repr(const std::exception_ptr& e) {
  if (!e) return "None";
  try {
    std::rethrow_exception(e);
  } catch (const ExceptionGroup& group) {
    return exception_group_repr(group);
  } catch (const CancelledError& cancelled) {
    // what() stands "CancelledError" in for an empty message: show none.
    return call_repr("CancelledError", cancelled.message(), true);
  } catch (const TimeoutError& timeout) {
    // The default text stands for no message, as Python's TimeoutError().
    const std::string_view what = timeout.what();
    return call_repr(class_name(&typeid(timeout)), what == "timed out" ? "" : what, true);
  } catch (const ::greenlet::GreenletExit& exit) {
    const std::string_view what = exit.what();
    return call_repr(class_name(&typeid(exit)), what == "GreenletExit" ? "" : what, true);
  } catch (const std::exception& other) {
    return call_repr(class_name(&typeid(other)), other.what(), false);
  } catch (...) {
    // Not a std::exception: no message to show, only the type.
    return class_name(abi::__cxa_current_exception_type()) + "()";
  }
}

std::string exception_only(const std::exception_ptr& e) {
  if (!e) return "None";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    std::string line = class_name(&typeid(x));
    const std::string_view what = x.what();
    if (!what.empty()) {
      line += ": ";
      line += what;
    }
    return line;
  } catch (...) {
    return class_name(abi::__cxa_current_exception_type());
  }
}

}  // namespace greenlet::asyncio::detail
