// task_factory.cpp: custom task factories (event_loop::set_task_factory(fn)), asyncio's
// factory(loop, coro, **kwargs): task_request and the call create_task() makes through it.
#include <memory>
#include <string>
#include <utility>

#include "greenlet/asyncio/any_task.hpp"
#include "greenlet/asyncio/event_loop.hpp"
#include "greenlet/detail/task_state.hpp"
#include "greenlet/fiber/greenlet.hpp"

namespace greenlet::asyncio {

AnyTask task_request::create() {
  if (made_ != nullptr) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "task_request::create(): this request's task was made already; a factory makes one task "
                       "per request (call create() once, or not at all and let create_task() call it)");
  }
  loop_->check_loop_thread();
  loop_->check_open();
  if (context != nullptr && context->entered()) ::greenlet::detail::throw_context_entered();
  detail::task_state* state = make_(fn_, loop_, *this);
  made_ = state;  // held from here, so that a start() that throws lets go of it (~task_request())
  state->start_in(loop_, context, detail::first_step_for(eager_start));
  return AnyTask(state);
}

task_request::~task_request() {
  if (made_ != nullptr) detail::release(made_->future());
}

namespace detail {

task_state* run_task_factory(loop_core* loop, task_request& request) {
  // A copy: the factory may set another factory (or none) while it runs.
  const std::shared_ptr<const custom_task_factory> factory = loop->task_factory_fn;
  (*factory)(*loop->facade, request);
  if (request.made_ == nullptr) request.create();
  return std::exchange(request.made_, nullptr);
}

}  // namespace detail

void event_loop::set_task_factory(task_factory factory) {
  core_->check_loop_thread();
  if (factory.fn_ != nullptr && !*factory.fn_) {
    throw ::greenlet::error(::greenlet::errc::bad_arguments,
                            "set_task_factory(): task factory must be a callable or nullptr, got an empty "
                            "std::function: give it a function, or nullptr for the default factory");
  }
  core_->eager_tasks = factory.eager();
  core_->task_factory_fn = std::move(factory.fn_);
}

}  // namespace greenlet::asyncio
