// asyncio/runner.hpp: asyncio.Runner (Python 3.11): several top-level
// calls on one event loop, which asyncio::run() would each give a new one.
//
//   asyncio::Runner runner;                  // with asyncio.Runner() as runner:
//   runner.run(connect);                     //     runner.run(connect())
//   auto answer = runner.run(ask_question);  //     answer = runner.run(ask_question())
//   // ~Runner: leftover tasks cancelled, async generators closed, the default executor shut down, loop closed
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/task.hpp"
#include "greenlet/asyncio/tasks.hpp"
#include "greenlet/fiber/context.hpp"

// Everything this header declares is public API: exported even though the library
// is built with -fvisibility=hidden (see CMakeLists.txt).
#pragma GCC visibility push(default)

namespace greenlet::asyncio {

// Runner owns an event loop, made on first use (run() or get_loop()) and
// set as the thread's event loop, and runs functions on it until closed.
// Tasks one run() leaves pending keep going in the next run(). Every run()
// runs its function in the same context, copied when the loop was made, so
// a context_var set by one run() is seen by the next, as in Python. A
// thread's object, not copyable or movable.
class Runner {
 public:
  // Runner(opts) makes a runner whose loop will be made with opts. Throws nothing but std::bad_alloc.
  explicit Runner(event_loop::options opts = {}) : opts_(std::move(opts)) {}
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  // ~Runner() is close(). Throws nothing.
  ~Runner() { close(); }

  // run(main) runs main() as a task on the runner's loop until it is done
  // and returns its result (or throws its exception: CancelledError if it
  // was cancelled). Throws RuntimeError (loop_running) when a loop already
  // runs on this thread (await instead), RuntimeError (loop_closed) once the
  // runner is closed, and what run_until_complete() throws.
  template <class F>
  decltype(auto) run(F&& main) {
    if constexpr (!detail::task_function<F>) {
      detail::reject_uncallable_functor<detail::task_function<F>, F>();
      static_assert(detail::task_function<F> || detail::has_call_operator<F>,
                    "Runner::run(main): main must be a callable taking no arguments, not the result of a call: "
                    "write runner.run([] { return amain(); }), not runner.run(amain())");
    } else {
      check_can_run();
      event_loop& loop = get_loop();
      return loop.run_until_complete(loop.create_task(std::forward<F>(main), {}, *context_));
    }
  }

  // get_loop() is the runner's loop, made now if need be. The reference stays valid until the
  // runner is destroyed: after close() it is the closed loop (is_closed() true). Throws
  // RuntimeError (loop_closed) once the runner is closed.
  event_loop& get_loop();

  // close() ends the loop as asyncio::run() ends its own: the tasks still
  // pending are cancelled (and waited for), async generators closed, the
  // default executor shut down, the loop closed and unset as the thread's
  // loop. Later calls do nothing; run() and get_loop() then throw. Throws
  // nothing (failures go to the loop's exception handler). Not from
  // inside run().
  void close() noexcept;

 private:
  void check_can_run() const;

  event_loop::options opts_;
  std::shared_ptr<event_loop> loop_;
  std::optional<::greenlet::context> context_;
  bool closed_ = false;
};

}  // namespace greenlet::asyncio

#pragma GCC visibility pop
