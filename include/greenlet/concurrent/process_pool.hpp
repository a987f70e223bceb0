// concurrent/process_pool.hpp: ProcessPoolExecutor and the serializer
// trait for the arguments and results that cross into worker processes.
#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "greenlet/concurrent/future.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::concurrent {

// serializer<T> turns a T into bytes and back for the process boundary:
//   static void write(std::string& out, const T& value);
//   static T read(std::string_view& in);  // consumes what it reads
// Provided for trivially copyable types, std::string and std::vector of
// serializable types; specialize it for your own. Specializations are
// stateless: reentrant, callable from any thread.
template <class T, class = void>
struct serializer;

// serializer<T> for trivially copyable T writes and reads T's bytes as they are (same build on
// both sides, as the workers are forked). Stateless: reentrant, any thread.
template <class T>
struct serializer<T, std::enable_if_t<std::is_trivially_copyable_v<T>>> {
  // write(out, value) appends value's bytes to out. Throws std::bad_alloc only; reentrant (any
  // thread, distinct buffers).
  static void write(std::string& out, const T& value) { out.append(reinterpret_cast<const char*>(&value), sizeof(T)); }
  // read(in) consumes sizeof(T) bytes of in and returns the T. Throws RemoteError if in is too
  // short; reentrant.
  static T read(std::string_view& in) {
    if (in.size() < sizeof(T)) throw RemoteError("truncated message from a worker process");
    T value;
    std::memcpy(&value, in.data(), sizeof(T));
    in.remove_prefix(sizeof(T));
    return value;
  }
};

// serializer<std::string> writes a 64-bit length, then the characters. Stateless: reentrant, any
// thread.
template <>
struct serializer<std::string> {
  // write(out, value) appends value's length and characters to out. Throws std::bad_alloc only;
  // reentrant.
  static void write(std::string& out, const std::string& value) {
    serializer<std::uint64_t>::write(out, value.size());
    out += value;
  }
  // read(in) consumes a length and that many characters of in. Throws RemoteError if in is too
  // short, std::bad_alloc; reentrant.
  static std::string read(std::string_view& in) {
    auto size = serializer<std::uint64_t>::read(in);
    if (in.size() < size) throw RemoteError("truncated message from a worker process");
    std::string value(in.substr(0, size));
    in.remove_prefix(size);
    return value;
  }
};

// serializer<std::vector<T>> writes a 64-bit count, then each element with serializer<T>.
// Stateless: reentrant, any thread.
template <class T>
struct serializer<std::vector<T>, std::enable_if_t<!std::is_trivially_copyable_v<std::vector<T>>>> {
  // write(out, value) appends the count and each element to out. Throws what serializer<T>::write
  // throws; reentrant.
  static void write(std::string& out, const std::vector<T>& value) {
    serializer<std::uint64_t>::write(out, value.size());
    for (const T& item : value) serializer<T>::write(out, item);
  }
  // read(in) consumes a count and that many elements of in. Throws RemoteError if in is too short,
  // and what serializer<T>::read throws; reentrant.
  static std::vector<T> read(std::string_view& in) {
    auto size = serializer<std::uint64_t>::read(in);
    std::vector<T> value;
    value.reserve(size);
    for (std::uint64_t i = 0; i < size; ++i) value.push_back(serializer<T>::read(in));
    return value;
  }
};

namespace detail {

// A registered function reads its arguments and writes its result.
using process_entry = std::function<std::string(std::string_view args)>;
void register_process_entry(const std::string& name, process_entry entry);

// process_job is one submitted call as the pool's parent side sees it.
struct process_job {
  std::string name;
  std::string args;
  std::shared_ptr<future_core> future;
  std::function<void(std::string_view result)> complete;  // decodes and sets the result
};

class process_pool;

}  // namespace detail

// process_function<R(A...)> names a function registered for worker
// processes; ProcessPoolExecutor::submit() takes it and checks the types.
template <class Signature>
class process_function;
// process_function<R(A...)> is the typed name register_process_function() returns. A plain value:
// copy it freely; read-only sharing between threads is safe.
template <class R, class... A>
class process_function<R(A...)> {
 public:
  // process_function(name) names a function registered with register_process_function(); the name
  // is checked when a worker runs it. Throws std::bad_alloc only.
  explicit process_function(std::string name) : name_(std::move(name)) {}
  // name() is the registered name. Throws nothing; any thread.
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
};

// register_process_function(name, fn) makes fn callable in worker
// processes by that name. Call it before any ProcessPoolExecutor starts
// (the workers are forked copies of this process). Lambdas without captures
// pass with a unary +: register_process_function("sq", +[](int x) { return x * x; }).
// Registering a name again replaces it. Throws std::bad_alloc only;
// thread-safe (a locked registry).
template <class R, class... A>
process_function<R(A...)> register_process_function(const std::string& name, R (*fn)(A...)) {
  detail::register_process_entry(name, [fn](std::string_view in) {
    (void)in;  // unused by functions without arguments
    std::tuple<std::decay_t<A>...> args{serializer<std::decay_t<A>>::read(in)...};
    std::string out;
    if constexpr (std::is_void_v<R>) {
      std::apply(fn, std::move(args));
    } else {
      serializer<std::decay_t<R>>::write(out, std::apply(fn, std::move(args)));
    }
    return out;
  });
  return process_function<R(A...)>(name);
}

// ProcessPoolExecutor is concurrent.futures.ProcessPoolExecutor with fork():
// max_workers processes (default: the number of cores) are forked in the
// constructor and run registered functions; arguments and results cross as
// bytes (serializer<T>). An exception a function throws comes back as
// RemoteError with its type and message. A worker that dies breaks the
// pool, busy or idle, at once (a watcher thread notices and reaps it), as
// CPython's does: every future the pool holds, running on any worker or
// queued, fails with BrokenProcessPool saying which worker died and how,
// the other workers are killed, and submit() raises BrokenProcessPool. The destructor is shutdown(wait=true); run on
// one of the pool's own threads (the last handle dropped in a done callback) it cannot wait: those threads finish the
// accepted work, and the last of them closes the sockets and reaps the worker processes. Thread-safe.
class ProcessPoolExecutor {
 public:
  // ProcessPoolExecutor(max_workers) forks max_workers worker processes (0: the number of cores),
  // from a short-lived thread of its own: the workers start with a full-size stack and no greenlet
  // or event-loop state, wherever the pool is made (inside a task too). Throws std::system_error if
  // socketpair(), fork() or starting that thread fails. The executor may then be used from any
  // thread.
  explicit ProcessPoolExecutor(std::size_t max_workers = 0);
  ~ProcessPoolExecutor();
  ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;

  // submit(fn, args...) calls the registered fn(args...) in a worker. The
  // result comes back as a value: a function returning const T& gives a
  // Future<T>. Throws RuntimeError after shutdown(), BrokenProcessPool once broken,
  // what serializer<A>::write throws. Thread-safe.
  template <class R, class... A, class... U>
  Future<std::remove_cvref_t<R>> submit(const process_function<R(A...)>& fn, U&&... args) {
    static_assert(sizeof...(A) == sizeof...(U), "submit(): wrong number of arguments");
    // The result crosses as bytes: a function returning a reference gives a Future of the value.
    using T = std::remove_cvref_t<R>;
    auto state = std::make_shared<detail::future_value<T>>();
    detail::process_job job;
    job.name = fn.name();
    ((serializer<std::decay_t<A>>::write(job.args, static_cast<const std::decay_t<A>&>(args))), ...);
    job.future = state;
    job.complete = [raw = state.get()](std::string_view in) {
      if constexpr (std::is_void_v<R>) {
        raw->set_result();
      } else {
        raw->set_result(serializer<T>::read(in));
      }
    };
    enqueue(std::move(job));
    return Future<T>(std::move(state));
  }

  // shutdown(wait, cancel_futures) as ThreadPoolExecutor's; the workers exit
  // once the accepted work is done. It may be called again and from several
  // threads at once: each call with wait=true returns only once the work is
  // done, the sockets closed and the workers reaped. Throws RuntimeError for
  // wait=true inside an event-loop task, or from one of the pool's own
  // threads (a done callback runs on the thread that finished the job); the
  // shutdown then still takes effect and the accepted work still runs.
  // Thread-safe.
  void shutdown(bool wait = true, bool cancel_futures = false);
  // max_workers() is the number of worker processes. Throws nothing; thread-safe.
  std::size_t max_workers() const noexcept;
  // pids() lists the worker processes (for tests and monitoring). Throws std::bad_alloc only;
  // thread-safe.
  std::vector<int> pids() const;

 private:
  void enqueue(detail::process_job job);
  std::shared_ptr<detail::process_pool> impl_;
};

}  // namespace greenlet::concurrent

#pragma GCC visibility pop
