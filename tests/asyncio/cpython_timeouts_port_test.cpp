// cpython_timeouts_port_test.cpp: CPython's Lib/test/test_asyncio/test_timeouts.py (3.12, plus
// test_timeout_expiring and test_timeout_taskgroup of 3.13/3.14) method by method, as far as the
// C++ API expresses them. timeout_test.cpp holds the cases ported earlier (test_timeout_basic,
// _not_called's value, _disabled, _zero, the nested pair, a reschedule, a real cancel); each test
// here names its CPython method.
//
// Not expressible here: test_repr_* (Timeout has no repr), test_timeout_exception_cause (C++
// exceptions have no __cause__), test_timeout_already_entered / _double_enter / _not_entered /
// _finished (a Timeout is entered by its constructor, once, and lives only inside the body, so it
// cannot be re-entered or touched after its scope).
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::Boom;
using asyncio_test::virtual_time;

namespace {

using CPythonTimeouts = greenlet_test::GreenletTest;

struct KeyErr : std::runtime_error {  // KeyError
  KeyErr() : std::runtime_error("KeyError") {}
};

// test_timeout_at_basic: the deadline given is when(); expired() once it fired.
TEST_F(CPythonTimeouts, test_timeout_at_basic) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        const double deadline = loop.time() + 0.01;
        bool expired = false;
        std::optional<double> when;
        EXPECT_THROW(asyncio::timeout_at(deadline,
                                         [&](asyncio::Timeout& cm) {
                                           try {
                                             asyncio::sleep(10);
                                           } catch (...) {
                                             expired = cm.expired();
                                             when = cm.when();
                                             throw;
                                           }
                                         }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(expired);
        EXPECT_EQ(when, deadline);
      },
      virtual_time());
}

// test_nested_timeouts: two scopes with the same deadline: both expire, only the outer one
// raises TimeoutError; the inner lets the CancelledError through.
TEST_F(CPythonTimeouts, test_nested_timeouts) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        bool cancelled = false, cm1_expired = false, cm2_expired = false;
        const double deadline = loop.time() + 0.01;
        EXPECT_THROW(asyncio::timeout_at(deadline,
                                         [&](asyncio::Timeout& cm1) {
                                           try {
                                             asyncio::timeout_at(deadline, [&](asyncio::Timeout& cm2) {
                                               try {
                                                 asyncio::sleep(10);
                                               } catch (...) {
                                                 cm2_expired = cm2.expired();
                                                 throw;
                                               }
                                             });
                                           } catch (const asyncio::CancelledError&) {
                                             cancelled = true;
                                             cm1_expired = cm1.expired();
                                             throw;
                                           }
                                         }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(cancelled);
        EXPECT_TRUE(cm1_expired);
        EXPECT_TRUE(cm2_expired);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// test_waiter_cancelled: the body sees CancelledError at the deadline; the scope, TimeoutError.
TEST_F(CPythonTimeouts, test_waiter_cancelled) {
  asyncio::run(
      [] {
        bool cancelled = false;
        EXPECT_THROW(asyncio::timeout(0.01,
                                      [&] {
                                        try {
                                          asyncio::sleep(10);
                                        } catch (const asyncio::CancelledError&) {
                                          cancelled = true;
                                          throw;
                                        }
                                      }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(cancelled);
      },
      virtual_time());
}

// test_timeout_not_called: not expired, when() after the body's end time.
TEST_F(CPythonTimeouts, test_timeout_not_called) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        bool expired = true;
        std::optional<double> when;
        double t1 = 0;
        asyncio::timeout(10, [&](asyncio::Timeout& cm) {
          asyncio::sleep(0.01);
          t1 = loop.time();
          expired = cm.expired();
          when = cm.when();
        });
        EXPECT_FALSE(expired);
        ASSERT_TRUE(when.has_value());
        EXPECT_GT(*when, t1);
      },
      virtual_time());
}

// test_timeout_at_disabled
TEST_F(CPythonTimeouts, test_timeout_at_disabled) {
  asyncio::run(
      [] {
        bool expired = true;
        std::optional<double> when = 0.0;
        asyncio::timeout_at(std::nullopt, [&](asyncio::Timeout& cm) {
          asyncio::sleep(0.01);
          expired = cm.expired();
          when = cm.when();
        });
        EXPECT_FALSE(expired);
        EXPECT_FALSE(when.has_value());
      },
      virtual_time());
}

// test_timeout_zero: when() is the time of entry.
TEST_F(CPythonTimeouts, test_timeout_zero) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        const double t0 = loop.time();
        bool expired = false;
        std::optional<double> when;
        EXPECT_THROW(asyncio::timeout(0,
                                      [&](asyncio::Timeout& cm) {
                                        when = cm.when();
                                        try {
                                          asyncio::sleep(10);
                                        } catch (...) {
                                          expired = cm.expired();
                                          throw;
                                        }
                                      }),
                     asyncio::TimeoutError);
        const double t1 = loop.time();
        EXPECT_TRUE(expired);
        ASSERT_TRUE(when.has_value());
        EXPECT_LE(t0, *when);
        EXPECT_LE(*when, t1);
      },
      virtual_time());
}

// test_timeout_zero_sleep_zero: a zero timeout fires before a sleep(0) resumes the body.
TEST_F(CPythonTimeouts, test_timeout_zero_sleep_zero) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        const double t0 = loop.time();
        bool expired = false;
        std::optional<double> when;
        EXPECT_THROW(asyncio::timeout(0,
                                      [&](asyncio::Timeout& cm) {
                                        when = cm.when();
                                        try {
                                          asyncio::sleep(0);
                                        } catch (...) {
                                          expired = cm.expired();
                                          throw;
                                        }
                                      }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(expired);
        ASSERT_TRUE(when.has_value());
        EXPECT_LE(t0, *when);
        EXPECT_LE(*when, loop.time());
      },
      virtual_time());
}

// test_timeout_in_the_past_sleep_zero
TEST_F(CPythonTimeouts, test_timeout_in_the_past_sleep_zero) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        const double t0 = loop.time();
        bool expired = false;
        std::optional<double> when;
        EXPECT_THROW(asyncio::timeout(-11,
                                      [&](asyncio::Timeout& cm) {
                                        when = cm.when();
                                        try {
                                          asyncio::sleep(0);
                                        } catch (...) {
                                          expired = cm.expired();
                                          throw;
                                        }
                                      }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(expired);
        ASSERT_TRUE(when.has_value());
        EXPECT_GE(t0, *when);
      },
      virtual_time());
}

// test_foreign_exception_passed: the body's own exception goes through, not expired.
TEST_F(CPythonTimeouts, test_foreign_exception_passed) {
  asyncio::run(
      [] {
        bool expired = true;
        EXPECT_THROW(asyncio::timeout(0.01,
                                      [&](asyncio::Timeout& cm) {
                                        expired = cm.expired();
                                        throw KeyErr();
                                      }),
                     KeyErr);
        EXPECT_FALSE(expired);
        asyncio::sleep(0.1);  // the scope's timer is gone: no stray cancellation
      },
      virtual_time());
}

// test_foreign_exception_on_timeout: an exception raised while unwinding from the deadline's
// cancellation replaces it: no TimeoutError.
TEST_F(CPythonTimeouts, test_foreign_exception_on_timeout) {
  asyncio::run(
      [] {
        auto crash = [] {
          try {
            asyncio::sleep(1);
          } catch (...) {
          }
          throw Boom();  // `finally: 1/0`
        };
        EXPECT_THROW(asyncio::timeout(0.01, crash), Boom);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// test_foreign_cancel_doesnt_timeout_if_not_expired
TEST_F(CPythonTimeouts, test_foreign_cancel_doesnt_timeout_if_not_expired) {
  asyncio::run(
      [] {
        auto t = asyncio::create_task([] {
          bool expired = true;
          try {
            asyncio::timeout(10, [&](asyncio::Timeout& cm) {
              try {
                asyncio::current_task().cancel();
                asyncio::sleep(10);
              } catch (...) {
                expired = cm.expired();
                throw;
              }
            });
          } catch (const asyncio::CancelledError&) {
            EXPECT_FALSE(expired);
            throw;
          }
        });
        EXPECT_THROW(asyncio::await(t), asyncio::CancelledError);
        EXPECT_LT(asyncio::get_running_loop().time(), 1.0);
      },
      virtual_time());
}

// test_outer_task_is_not_cancelled
TEST_F(CPythonTimeouts, test_outer_task_is_not_cancelled) {
  asyncio::run(
      [] {
        auto task = asyncio::create_task(
            [] { EXPECT_THROW(asyncio::timeout(0.001, [] { asyncio::sleep(10); }), asyncio::TimeoutError); });
        asyncio::await(task);
        EXPECT_FALSE(task.cancelled());
        EXPECT_TRUE(task.done());
      },
      virtual_time());
}

// test_nested_timeouts_loop_busy: both deadlines pass while the loop is blocked; the inner scope's
// cancellation is not mistaken for the outer's, and the outer one ends the block well before the
// body's long sleep. Real time: a blocked loop is what the case is about.
TEST_F(CPythonTimeouts, test_nested_timeouts_loop_busy) {
  asyncio::run([] {
    auto& loop = asyncio::get_running_loop();
    const double t0 = loop.time();
    EXPECT_THROW(asyncio::timeout(0.1,
                                  [&] {  // (1)
                                    try {
                                      asyncio::timeout(0.01, [] {  // (2)
                                        std::this_thread::sleep_for(std::chrono::milliseconds(100));
                                        asyncio::sleep(1);
                                      });
                                    } catch (const asyncio::TimeoutError&) {
                                    }
                                    asyncio::sleep(10);  // interrupted by (1)
                                  }),
                 asyncio::TimeoutError);
    const double t1 = loop.time();
    EXPECT_LE(t0, t1);
    EXPECT_LE(t1, t0 + 1);
    EXPECT_EQ(asyncio::current_task().cancelling(), 0);
  });
}

// test_reschedule: another task moves the deadline of a scope that is waiting, then removes it;
// a real cancel() then ends the scope with CancelledError, not expired.
TEST_F(CPythonTimeouts, test_reschedule) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        auto fut = loop.create_future<asyncio::Timeout*>();
        const double deadline1 = loop.time() + 10;
        const double deadline2 = deadline1 + 20;
        bool expired = true;
        auto task = asyncio::create_task([&] {
          asyncio::timeout_at(deadline1, [&](asyncio::Timeout& cm) {
            fut.set_result(&cm);
            try {
              asyncio::sleep(50);
            } catch (...) {
              expired = cm.expired();
              throw;
            }
          });
        });
        asyncio::Timeout* cm = asyncio::await(fut);
        EXPECT_EQ(cm->when(), deadline1);
        cm->reschedule(deadline2);
        EXPECT_EQ(cm->when(), deadline2);
        cm->reschedule(std::nullopt);
        EXPECT_FALSE(cm->when().has_value());
        task.cancel();
        EXPECT_THROW(asyncio::await(task), asyncio::CancelledError);
        EXPECT_FALSE(expired);
        EXPECT_LT(loop.time(), 1.0);
      },
      virtual_time());
}

// test_nested_timeout_in_finally: a scope entered while the body handles the outer deadline's
// cancellation times out on its own (3.12's rule: back to the count at its entry), and the outer
// one still raises TimeoutError.
TEST_F(CPythonTimeouts, test_nested_timeout_in_finally) {
  asyncio::run(
      [] {
        bool inner_timed_out = false;
        EXPECT_THROW(asyncio::timeout(0.01,
                                      [&] {
                                        try {
                                          asyncio::sleep(1);
                                        } catch (...) {
                                          try {
                                            asyncio::timeout(0.01, [] { asyncio::sleep(10); });
                                          } catch (const asyncio::TimeoutError&) {
                                            inner_timed_out = true;
                                          }
                                          throw;
                                        }
                                      }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(inner_timed_out);
        EXPECT_NEAR(asyncio::get_running_loop().time(), 0.02, 1e-9);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// test_timeout_after_cancellation: a task that caught a cancellation without uncancel() (its
// count stays 1) still gets TimeoutError from a scope it enters afterwards (3.12; 3.11 gave
// CancelledError, docs/porting.md).
TEST_F(CPythonTimeouts, test_timeout_after_cancellation) {
  asyncio::run(
      [] {
        auto t = asyncio::create_task([] {
          try {
            asyncio::current_task().cancel();
            asyncio::sleep(1);  // work which will be cancelled
          } catch (const asyncio::CancelledError&) {
          }
          EXPECT_THROW(asyncio::timeout(0.0, [] { asyncio::sleep(1); }), asyncio::TimeoutError);  // some cleanup
          EXPECT_EQ(asyncio::current_task().cancelling(), 1);
        });
        asyncio::await(t);
      },
      virtual_time());
}

// test_cancel_in_timeout_after_cancellation: there, a cancel() inside the scope is CancelledError.
TEST_F(CPythonTimeouts, test_cancel_in_timeout_after_cancellation) {
  asyncio::run(
      [] {
        auto t = asyncio::create_task([] {
          try {
            asyncio::current_task().cancel();
            asyncio::sleep(1);
          } catch (const asyncio::CancelledError&) {
          }
          EXPECT_THROW(asyncio::timeout(1.0,
                                        [] {
                                          asyncio::current_task().cancel();
                                          asyncio::sleep(2);
                                        }),
                       asyncio::CancelledError);
        });
        asyncio::await(t);
        EXPECT_LT(asyncio::get_running_loop().time(), 1.0);
      },
      virtual_time());
}

// test_timeout_expiring (3.13): reschedule() between the deadline and the scope's end is refused.
TEST_F(CPythonTimeouts, test_timeout_expiring) {
  asyncio::run(
      [] {
        bool refused = false;
        EXPECT_THROW(asyncio::timeout(0.01,
                                      [&](asyncio::Timeout& cm) {
                                        EXPECT_THROW(asyncio::sleep(1), asyncio::CancelledError);
                                        try {
                                          cm.reschedule(asyncio::get_running_loop().time() + 0.02);
                                        } catch (const asyncio::RuntimeError&) {
                                          refused = true;
                                        }
                                        throw asyncio::CancelledError();  // leave as the cancellation would
                                      }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(refused);
      },
      virtual_time());
}

// test_timeout_without_task: a scope outside a task is refused (RuntimeError).
TEST_F(CPythonTimeouts, test_timeout_without_task) {
  auto loop = asyncio::new_event_loop(virtual_time());
  bool refused = false;
  loop->call_soon([&] {
    try {
      asyncio::timeout(0.01, [] {});
    } catch (const asyncio::RuntimeError&) {
      refused = true;
    }
  });
  asyncio_test::run_briefly(*loop);
  loop->close();
  EXPECT_TRUE(refused);
}

// test_timeout_taskgroup (3.14): the deadline fires while a TaskGroup's body handles an error; a
// child fails in its cleanup: the ExceptionGroup comes out of both scopes (no TimeoutError: the
// cancellation it would replace became the group), and no cancellation is left pending.
TEST_F(CPythonTimeouts, test_timeout_taskgroup) {
  asyncio::run(
      [] {
        try {
          asyncio::timeout(0.01, [] {
            asyncio::task_group([](asyncio::TaskGroup& tg) {
              tg.create_task([] {
                try {
                  asyncio::sleep(2);  // interrupted after 0.01 second
                } catch (...) {
                }
                throw Boom();  // crash in cleanup
              });
              try {
                throw std::invalid_argument("ValueError");
              } catch (...) {
                asyncio::sleep(1);  // `finally: await asyncio.sleep(1)`
                throw;
              }
            });
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          ASSERT_EQ(eg.exceptions().size(), 1u);
          EXPECT_EQ(asyncio_test::what_of(eg.exceptions()[0]), "division by zero");
        }
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
        asyncio::sleep(0.1);  // nothing pending
        EXPECT_NEAR(asyncio::get_running_loop().time(), 0.11, 1e-9);
      },
      virtual_time());
}

// An outside cancel() in the loop turn in which the deadline fires: the task's count is 2, the
// scope takes back only its own: CancelledError, the outside cancel is not swallowed (the
// "uncancel() <= count at entry" rule).
TEST_F(CPythonTimeouts, cancel_and_deadline_in_the_same_turn) {
  asyncio::run(
      [] {
        auto& loop = asyncio::get_running_loop();
        auto t = asyncio::create_task([] { asyncio::timeout(0.1, [] { asyncio::sleep(10); }); });
        loop.call_at(loop.time() + 0.1, [&] { t.cancel(); });  // after the scope's timer: same turn
        EXPECT_THROW(asyncio::await(t), asyncio::CancelledError);
        EXPECT_TRUE(t.cancelled());
      },
      virtual_time());
}

// A timeout whose deadline fires while its body already handles an outside CancelledError: the
// cleanup is interrupted, and the outside cancellation (not TimeoutError) comes out.
TEST_F(CPythonTimeouts, deadline_while_body_handles_outside_cancel) {
  asyncio::run(
      [] {
        std::vector<std::string> events;
        auto t = asyncio::create_task([&] {
          asyncio::timeout(0.2, [&] {
            try {
              asyncio::sleep(10);
            } catch (const asyncio::CancelledError&) {
              events.push_back("cancelled");
              try {
                asyncio::sleep(1);  // slow cleanup, cut by the deadline
              } catch (const asyncio::CancelledError&) {
                events.push_back("cleanup cut");
              }
              throw;
            }
          });
        });
        asyncio::sleep(0.1);
        t.cancel();
        EXPECT_THROW(asyncio::await(t), asyncio::CancelledError);
        EXPECT_EQ(events, (std::vector<std::string>{"cancelled", "cleanup cut"}));
        EXPECT_NEAR(asyncio::get_running_loop().time(), 0.2, 1e-9);
      },
      virtual_time());
}

// wait_for() inside a timeout() whose deadline comes first: the scope's TimeoutError, the awaited
// task cancelled (3.12's wait_for is a timeout() of its own; the outer deadline is not taken for
// wait_for's).
TEST_F(CPythonTimeouts, outer_timeout_around_wait_for) {
  asyncio::run(
      [] {
        asyncio::Task<> inner;
        EXPECT_THROW(asyncio::timeout(0.1,
                                      [&] {
                                        inner = asyncio::create_task([] { asyncio::sleep(10); });
                                        asyncio::wait_for(inner, 5.0);
                                      }),
                     asyncio::TimeoutError);
        EXPECT_TRUE(inner.cancelled());
        EXPECT_NEAR(asyncio::get_running_loop().time(), 0.1, 1e-9);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// wait_for()'s own deadline inside a longer timeout(): wait_for's TimeoutError, the scope is not
// expired and goes on.
TEST_F(CPythonTimeouts, wait_for_deadline_inside_timeout) {
  asyncio::run(
      [] {
        bool expired = true;
        asyncio::timeout(5.0, [&](asyncio::Timeout& cm) {
          EXPECT_THROW(asyncio::wait_for(asyncio::create_task([] { asyncio::sleep(10); }), 0.1), asyncio::TimeoutError);
          asyncio::sleep(0.1);
          expired = cm.expired();
        });
        EXPECT_FALSE(expired);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// A timeout() around a task_group() whose children outlive the deadline (`async with timeout(): async
// with TaskGroup()`): the group's wait is cancelled, the children with it, and the scope raises
// TimeoutError; the task is left with no cancellation.
TEST_F(CPythonTimeouts, timeout_around_task_group) {
  asyncio::run(
      [] {
        std::vector<asyncio::Task<>> children;
        EXPECT_THROW(asyncio::timeout(0.1,
                                      [&] {
                                        asyncio::task_group([&](asyncio::TaskGroup& tg) {
                                          children.push_back(tg.create_task([] { asyncio::sleep(10); }));
                                          children.push_back(tg.create_task([] { asyncio::sleep(20); }));
                                        });
                                      }),
                     asyncio::TimeoutError);
        for (auto& c : children) EXPECT_TRUE(c.cancelled());
        EXPECT_NEAR(asyncio::get_running_loop().time(), 0.1, 1e-9);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
        asyncio::sleep(0.1);
        EXPECT_NEAR(asyncio::get_running_loop().time(), 0.2, 1e-9);
      },
      virtual_time());
}

// A timeout() inside a group's child: its TimeoutError is that child's failure, which cancels the
// siblings and the body like any other.
TEST_F(CPythonTimeouts, timeout_inside_task_group_child) {
  asyncio::run(
      [] {
        bool sibling_cancelled = false;
        try {
          asyncio::task_group([&](asyncio::TaskGroup& tg) {
            tg.create_task([] { asyncio::timeout(0.1, [] { asyncio::sleep(10); }); });
            tg.create_task([&] {
              try {
                asyncio::sleep(10);
              } catch (const asyncio::CancelledError&) {
                sibling_cancelled = true;
                throw;
              }
            });
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          ASSERT_EQ(eg.exceptions().size(), 1u);
          EXPECT_THROW(std::rethrow_exception(eg.exceptions()[0]), asyncio::TimeoutError);
        }
        EXPECT_TRUE(sibling_cancelled);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

}  // namespace
