// event_loop.cpp: the event_loop facade and the per-thread loop accessors.
#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/asyncio/sync_errors.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "asyncio/done_callbacks.hpp"
#include "asyncio/require_callable.hpp"
#include "greenlet/detail/value_repr.hpp"
#include "greenlet/errors.hpp"

namespace greenlet::asyncio {

namespace {

thread_local std::shared_ptr<event_loop> current_loop;

class asyncio_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "asyncio"; }
  std::string message(int code) const override {
    switch (static_cast<asyncio_errc>(code)) {
      case asyncio_errc::cancelled: return "cancelled";
      case asyncio_errc::timeout: return "timed out";
      case asyncio_errc::invalid_state: return "invalid state";
      case asyncio_errc::no_running_loop: return "no running event loop";
      case asyncio_errc::loop_running: return "event loop already running";
      case asyncio_errc::loop_closed: return "event loop is closed";
      case asyncio_errc::wrong_loop: return "future of another loop";
      case asyncio_errc::deadlock: return "deadlock";
      case asyncio_errc::not_in_task: return "not in a task";
      case asyncio_errc::stranded_task: return "stranded task";
      case asyncio_errc::primitive_destroyed: return "primitive destroyed while a task waited on it";
      case asyncio_errc::sendfile_not_available: return "sendfile not available";
      case asyncio_errc::resolver_recursion: return "lookup from within the loop's resolver";
    }
    return "unknown asyncio error";
  }
};

// flag_from_environment(name) is the default of an option left unset: on if the environment
// variable `name` is set, neither empty nor "0". Read by each new loop: GREENLET_ASYNCIO_DEBUG
// (asyncio's PYTHONASYNCIODEBUG) and GREENLET_ASYNCIO_COMPACT_TASKS.
bool flag_from_environment(const char* name) noexcept {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' && std::string_view(value) != "0";
}

}  // namespace

const std::error_category& category() noexcept {
  static const asyncio_category instance;
  return instance;
}

event_loop::event_loop(options opts) {
  // Tasks always get separate stacks: the loop, futures and locks keep
  // pointers to objects on suspended tasks' stacks, which stack copying
  // (stack_mode::shared) moves away while a task is suspended.
  if (opts.task_stack.mode == stack_mode::shared) {
    throw ValueError(
        "event_loop::options::task_stack: tasks cannot use stack_mode::shared (the loop refers to "
        "objects on suspended tasks' stacks); leave mode as inherit or separate, and use "
        "{.size = 16 * 1024, .guard_page = false} for many small tasks");
  }
  opts.task_stack.mode = stack_mode::separate;
  core_.reset(new detail::loop_core());
  core_->facade = this;
  core_->virtual_time = opts.virtual_time;
  core_->task_stack = opts.task_stack;
  core_->compact_tasks = opts.compact_tasks.value_or(flag_from_environment("GREENLET_ASYNCIO_COMPACT_TASKS"));
  core_->task_tracebacks = opts.task_tracebacks;
  core_->debug = opts.debug.value_or(flag_from_environment("GREENLET_ASYNCIO_DEBUG"));
}

event_loop::event_loop(detail::loop_core* core, adopt_core_t) noexcept : core_(core) { core_->facade = this; }

event_loop::~event_loop() {
  if (!core_->on_owner_thread() && !core_->owner_exited()) {
    // Closing here would free the tasks' state while their thread may
    // still unwind them into it.
    core_->facade = nullptr;
    detail::drop_elsewhere(core_.release());
    return;
  }
  if (core_->running && core_->stand_in == nullptr) {
    // Destroyed by its own run (a callback or task let go of it): the run
    // still uses the core, and its code may still ask for the loop
    // (get_running_loop(), the handler's argument, a TaskGroup's futures).
    // A stand-in takes over this object's reference; run_forever() deletes
    // it, closing the loop, as it returns.
    detail::loop_core* core = core_.release();
    core->facade = nullptr;
    core->stand_in = new (std::exchange(core->stand_in_room, nullptr)) event_loop(core, adopt_core_t{});
    return;
  }
  if (!core_->closed && !core_->running) {
    try {
      core_->close();
    } catch (...) {
    }
  }
  core_->facade = nullptr;
}

// take_threadsafe_posts() moves what call_soon_threadsafe() posted into the ready queue before
// call_soon() appends: asyncio has one ready queue, so a call_soon_threadsafe() made before a
// call_soon() (on this thread, or on another that handed over to this one) runs first. The loop
// takes the posts only at the start of an iteration, which ran them after callbacks scheduled
// later. Checked on the loop's thread first: the posts may be taken there only.
namespace {
void take_threadsafe_posts(detail::loop_core& core) {
  core.check_loop_thread();
  if (core.threadsafe_pending.load(std::memory_order_acquire)) [[unlikely]]
    core.drain_threadsafe();
}
}  // namespace

// The callbacks users schedule capture the caller's context values
// (context_to_capture(): null, nothing to copy, while no variable is set).
Handle event_loop::call_soon(std::function<void()> fn) {
  detail::require_callable(fn, "call_soon()");
  take_threadsafe_posts(*core_);
  detail::callback_node* n = core_->call_soon(std::move(fn));
  if (const auto* vars = ::greenlet::detail::context_to_capture()) [[unlikely]]
    detail::give_context(n, *vars);
  detail::retain(n);
  return Handle(n);
}

Handle event_loop::call_soon(std::function<void()> fn, const ::greenlet::context& ctx) {
  detail::require_callable(fn, "call_soon()");
  take_threadsafe_posts(*core_);
  detail::callback_node* n = core_->call_soon(std::move(fn), ctx.data());
  detail::retain(n);
  return Handle(n);
}

Handle event_loop::call_later(double delay, std::function<void()> fn) {
  detail::require_callable(fn, "call_later()");
  return call_at(time() + delay, std::move(fn));
}

Handle event_loop::call_later(double delay, std::function<void()> fn, const ::greenlet::context& ctx) {
  detail::require_callable(fn, "call_later()");
  return call_at(time() + delay, std::move(fn), ctx);
}

Handle event_loop::call_at(double when, std::function<void()> fn) {
  detail::require_callable(fn, "call_at()");
  detail::callback_node* n = core_->call_at(when, std::move(fn));
  if (const auto* vars = ::greenlet::detail::context_to_capture()) [[unlikely]]
    detail::give_context(n, *vars);
  detail::retain(n);
  return Handle(n);
}

Handle event_loop::call_at(double when, std::function<void()> fn, const ::greenlet::context& ctx) {
  detail::require_callable(fn, "call_at()");
  detail::callback_node* n = core_->call_at(when, std::move(fn), ctx.data());
  detail::retain(n);
  return Handle(n);
}

void event_loop::call_soon_threadsafe(std::function<void()> fn) {
  detail::require_callable(fn, "call_soon_threadsafe()");
  core_->call_soon_threadsafe(std::move(fn), ::greenlet::detail::captured_context());
}

void event_loop::call_soon_threadsafe(std::function<void()> fn, const ::greenlet::context& ctx) {
  detail::require_callable(fn, "call_soon_threadsafe()");
  core_->call_soon_threadsafe(std::move(fn), ctx.data());
}

void event_loop::run_forever() { core_->run_forever(); }

void event_loop::set_debug(bool enabled) {
  core_->check_loop_thread();
  core_->debug = enabled;
}

void event_loop::set_slow_callback_duration(double seconds) {
  core_->check_loop_thread();
  if (!(seconds >= 0)) {  // NaN too
    throw ValueError("event_loop::set_slow_callback_duration(" + detail::python_float_repr(seconds) +
                     "): the threshold must be a number of seconds >= 0 (0 reports every callback, "
                     "infinity none)");
  }
  core_->slow_callback_duration = seconds;
}

void event_loop::set_debug_log(std::function<void(std::string_view line)> log) {
  core_->check_loop_thread();
  core_->debug_log = std::move(log);
}

void event_loop::close() {
  core_->check_close_thread();
  core_->close();
}

void event_loop::set_exception_handler(detail::exception_handler handler) {
  core_->handler = handler ? std::make_shared<const detail::exception_handler>(std::move(handler)) : nullptr;
}

void event_loop::default_exception_handler(const exception_context& context) {
  std::string line = "asyncio: " + context.message;
  if (!context.source.empty()) line += "\n  in " + context.source;
  // Python's log of it prints the exception's traceback, then the exception.
  if (!context.stack.empty()) {
    line += "\n  Traceback (most recent call last):";
    for (const stack_frame& f : context.stack) line += "\n    " + format_frame(f);
  }
  if (context.exception) line += "\n  exception: " + describe_exception(context.exception);
  std::fprintf(stderr, "%s\n", line.c_str());
}

std::shared_ptr<event_loop> new_event_loop(event_loop::options opts) { return std::make_shared<event_loop>(opts); }

void set_event_loop(std::shared_ptr<event_loop> loop) { current_loop = std::move(loop); }

event_loop& get_running_loop() {
  detail::loop_core& core = detail::require_running_loop();
  if (core.facade == nullptr) {
    throw RuntimeError(asyncio_errc::no_running_loop, "the running event loop is being destroyed");
  }
  return *core.facade;
}

event_loop& get_event_loop() {
  if (detail::loop_core* core = detail::running_loop(); core != nullptr && core->facade != nullptr) {
    return *core->facade;
  }
  if (!current_loop || current_loop->is_closed()) current_loop = new_event_loop();
  return *current_loop;
}

namespace detail {

void require_callable(const std::function<void()>& fn, const char* call) {
  if (!fn) {
    throw ::greenlet::error(::greenlet::errc::bad_arguments,
                            std::string("a callable object was expected by ") + call +
                                ", got an empty std::function: give it a function to run");
  }
}

void run_until_complete_done(void* loop, void* future) {
  release(static_cast<future_state*>(future));
  static_cast<loop_core*>(loop)->stop();
}

void run_until_done(loop_core* core, future_state* target) {
  if (target == nullptr) throw_empty_handle("Future/Task");
  if (target->loop() != core) {
    throw RuntimeError(asyncio_errc::wrong_loop, "run_until_complete() got a future attached to a different loop");
  }
  if (core->running) {
    throw RuntimeError(asyncio_errc::loop_running,
                       "This event loop is already running: a task cannot run its own loop; await "
                       "instead");
  }
  if (!target->done()) {
    retain(target);
    const std::uint64_t id = target->add_fast_callback(&run_until_complete_done, core);
    struct restore {
      loop_core* core;
      future_state* target;
      std::uint64_t id;
      future_state* previous;
      ~restore() {
        target->remove_done_callback(id);
        core->target = previous;
        release(target);
      }
    } guard{core, target, id, core->target};
    core->target = target;
    core->run_forever();
  }
  if (!target->done()) {
    throw RuntimeError(asyncio_errc::invalid_state, "Event loop stopped before Future completed.");
  }
}

}  // namespace detail

}  // namespace greenlet::asyncio
