// waiting.cpp: the waiting behind gather(), wait(), wait_for() and
// as_completed(), and asyncio::run's shutdown. Each waits on one private
// "outer" future that callbacks on the children complete.
#include <string>
#include <vector>

#include "greenlet/asyncio/tasks.hpp"

namespace greenlet::asyncio::detail {

namespace {

std::exception_ptr failure_of(future_state* f) {
  try {
    return f->exception();
  } catch (...) {
    return std::current_exception();  // CancelledError for a cancelled child
  }
}

// Registers `on_done` on every unfinished child; unregisters on the way
// out, so no callback outlives the waiting frame.
class child_callbacks {
 public:
  child_callbacks(const std::vector<future_state*>& children, std::function<void(future_state&)> on_done)
      : children_(children) {
    ids_.reserve(children.size());
    for (future_state* c : children) ids_.push_back(c->done() ? 0 : c->add_done_callback(on_done));
  }
  ~child_callbacks() {
    for (std::size_t i = 0; i < children_.size(); ++i) {
      if (ids_[i] != 0) children_[i]->remove_done_callback(ids_[i]);
    }
  }
  child_callbacks(const child_callbacks&) = delete;
  child_callbacks& operator=(const child_callbacks&) = delete;

 private:
  const std::vector<future_state*>& children_;
  std::vector<std::uint64_t> ids_;
};

bool satisfied(const std::vector<future_state*>& children, return_when when) {
  std::size_t done = 0;
  for (future_state* c : children) {
    if (!c->done()) continue;
    ++done;
    if (when == return_when::FIRST_COMPLETED) return true;
    if (when == return_when::FIRST_EXCEPTION && c->failed()) return true;
  }
  return done == children.size();
}

}  // namespace

void gather_wait(const std::vector<future_state*>& children, bool collect) {
  task_state& task = awaiting_task();
  if (!collect) {
    for (future_state* c : children) {
      if (c->done() && (c->cancelled() || c->failed())) std::rethrow_exception(failure_of(c));
    }
  }
  std::size_t remaining = 0;
  for (future_state* c : children) remaining += c->done() ? 0 : 1;
  if (remaining == 0) return;

  Future<> outer(new future_value<void>(task.loop));
  future_value<void>* out = outer.state();
  child_callbacks callbacks(children, [out, collect, &remaining](future_state& child) {
    if (out->done()) return;
    if (!collect && (child.cancelled() || child.failed())) {
      out->set_exception(failure_of(&child));
    } else if (--remaining == 0) {
      out->set_result();
    }
  });
  try {
    await_state(out);
  } catch (const CancelledError&) {
    // The gathering task was cancelled: so are the children, as asyncio does.
    for (future_state* c : children) c->cancel();
    throw;
  }
  out->check_result();
}

void wait_until(const std::vector<future_state*>& children, double timeout, return_when when) {
  task_state& task = awaiting_task();
  if (children.empty()) throw InvalidStateError("wait() needs at least one future");
  if (satisfied(children, when)) return;
  loop_core* loop = task.loop;
  Future<> outer(new future_value<void>(loop));
  future_value<void>* out = outer.state();
  child_callbacks callbacks(children, [out, &children, when](future_state&) {
    if (!out->done() && satisfied(children, when)) out->set_result();
  });
  callback_node* timer = nullptr;
  if (timeout >= 0) {
    timer = loop->call_at(loop->time() + timeout, [out] {
      if (!out->done()) out->set_result();
    });
  }
  struct cancel_timer {
    loop_core* loop;
    callback_node* timer;
    ~cancel_timer() {
      if (timer != nullptr) loop->cancel_node(timer);
    }
  } guard{loop, timer};
  await_state(out);
}

void finish_run(event_loop& loop) noexcept {
  loop_core* core = loop.core();
  try {
    if (!core->closed && core->task_count > 0) {
      std::vector<future_state*> pending;
      for (task_state* t = core->tasks_head; t != nullptr; t = t->next) {
        retain(t->future());
        pending.push_back(t->future());
      }
      for (future_state* f : pending) f->cancel("");
      struct release_all {
        std::vector<future_state*>& list;
        ~release_all() {
          for (future_state* f : list) release(f);
        }
      } guard{pending};
      Future<> all(new future_value<void>(core));
      std::size_t remaining = 0;
      for (future_state* f : pending) remaining += f->done() ? 0 : 1;
      if (remaining == 0) all.set_result();
      future_value<void>* out = all.state();
      child_callbacks callbacks(pending, [out, &remaining](future_state&) {
        if (--remaining == 0 && !out->done()) out->set_result();
      });
      run_until_done(core, out);
      for (future_state* f : pending) {
        if (f->failed()) {
          core->report({"unhandled exception during asyncio::run() shutdown", f->exception(), f->repr()});
        }
      }
    }
  } catch (...) {
    core->report({"error while cancelling the remaining tasks of asyncio::run()", std::current_exception(), ""});
  }
  try {
    loop.close();
  } catch (...) {
  }
  set_event_loop(nullptr);
}

}  // namespace greenlet::asyncio::detail
