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
  if (wrapper_ != nullptr) state->set_wrapper(std::move(wrapper_));
  state->start_in(loop_, context, detail::first_step_for(eager_start));
  return AnyTask(state);
}

void task_request::wrap(std::shared_ptr<const task_wrapper> fn) {
  if (fn == nullptr || !*fn) {
    throw ::greenlet::error(::greenlet::errc::bad_arguments,
                            "task_request::wrap(): the wrapper must be a callable taking asyncio::task_body&, got "
                            "an empty one");
  }
  if (made_ != nullptr) {
    throw RuntimeError(asyncio_errc::invalid_state,
                       "task_request::wrap(): this request's task was made already, and its function is not "
                       "wrapped after that; call wrap() before create()");
  }
  if (wrapper_ == nullptr) {
    wrapper_ = std::move(fn);
    return;
  }
  // The new wrapper goes outside the one given before: its body runs the earlier wrapper, which
  // runs the task's own body.
  wrapper_ =
      std::make_shared<const task_wrapper>([inner = std::move(wrapper_), outer = std::move(fn)](task_body& body) {
        struct inner_call {
          const task_wrapper* wrapper;
          task_body* body;
        } call{inner.get(), &body};
        task_body inner_body(
            [](void* p) {
              auto* c = static_cast<inner_call*>(p);
              detail::run_wrapper(*c->wrapper, *c->body);
            },
            &call, /*record_escape=*/false);  // only the task's function's is used
        detail::run_wrapper(*outer, inner_body);
      });
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
