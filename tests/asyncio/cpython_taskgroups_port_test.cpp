// cpython_taskgroups_port_test.cpp: CPython's Lib/test/test_asyncio/test_taskgroups.py (3.12, and
// the 3.13 cases of gh-116720 this port follows, docs/porting.md) method by method, as far as the
// C++ API expresses them. taskgroup_test.cpp holds the cases ported earlier (test_taskgroup_01/02,
// the scoped form); each test here names its CPython method. Python's ZeroDivisionError is Boom,
// MyExc is MyExc, a BaseException subclass (MyBaseExc) is a type not derived from std::exception.
//
// Not expressible here: test_taskgroup_already_entered / test_taskgroup_double_enter /
// test_taskgroup_not_entered (a TaskGroup is entered by its constructor, once), test_taskgroup_20 /
// _21 (no KeyboardInterrupt or SystemExit: the kill, GreenletExit, is TaskGroupKill in
// taskgroup_test.cpp), test_taskgroup_task_context (task_context_arg_test.cpp).
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "asyncio_test_support.hpp"

namespace asyncio = greenlet::asyncio;
using asyncio_test::Boom;
using asyncio_test::virtual_time;

namespace {

using CPythonTaskGroups = greenlet_test::GreenletTest;

struct MyExc : std::runtime_error {
  MyExc() : std::runtime_error("MyExc") {}
};
struct TypeErr : std::runtime_error {  // TypeError
  TypeErr() : std::runtime_error("TypeError") {}
};
struct ValueErr : std::runtime_error {  // ValueError(t)
  explicit ValueErr(double t) : std::runtime_error(std::to_string(t)) {}
};
struct MyBaseExc {};  // a BaseException: not a std::exception

// kind(e) names the type of the exception e holds, as get_error_types() takes type(exc).
std::string kind(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const asyncio::ExceptionGroup&) {
    return "ExceptionGroup";
  } catch (const Boom&) {
    return "Boom";
  } catch (const MyExc&) {
    return "MyExc";
  } catch (const TypeErr&) {
    return "TypeErr";
  } catch (const ValueErr&) {
    return "ValueErr";
  } catch (const MyBaseExc&) {
    return "MyBaseExc";
  } catch (const asyncio::CancelledError&) {
    return "CancelledError";
  } catch (const asyncio::RuntimeError&) {
    return "RuntimeError";
  } catch (const std::exception& x) {
    return typeid(x).name();
  } catch (...) {
    return "?";
  }
}

// kinds(eg) is the type of each member, in order (CPython's get_error_types() takes a set; the
// order here is the order they happened: children's failures first, then the body's).
std::vector<std::string> kinds(const asyncio::ExceptionGroup& eg) {
  std::vector<std::string> out;
  for (const auto& e : eg.exceptions()) out.push_back(kind(e));
  return out;
}

// group_of(e) is the ExceptionGroup e holds, or fails the test.
const asyncio::ExceptionGroup* group_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const asyncio::ExceptionGroup& eg) {
    return &eg;  // the exception object lives as long as e
  } catch (...) {
  }
  ADD_FAILURE() << "not an ExceptionGroup: " << kind(e);
  return nullptr;
}

void crash_after(double t) {
  asyncio::sleep(t);
  throw ValueErr(t);
}

// test_taskgroup_03: a child cancelled by hand inside the group: everything goes on.
TEST_F(CPythonTaskGroups, test_taskgroup_03) {
  asyncio::run(
      [] {
        asyncio::Task<int> t1, t2;
        asyncio::task_group([&](asyncio::TaskGroup& g) {
          t1 = g.create_task([] {
            asyncio::sleep(1);
            return 42;
          });
          asyncio::sleep(0.15);
          t1.cancel();
          t2 = g.create_task([] {
            asyncio::sleep(0.2);
            return 11;
          });
        });
        EXPECT_TRUE(t1.cancelled());
        EXPECT_EQ(t2.result(), 11);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// test_taskgroup_04: a failing child cancels its sibling; the code after the group does not run.
TEST_F(CPythonTaskGroups, test_taskgroup_04) {
  int num = 0;
  bool t2_cancel = false;
  asyncio::run(
      [&] {
        asyncio::Task<> t2;
        auto runner = [&] {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            g.create_task([] {
              asyncio::sleep(0.1);
              throw Boom();
            });
            t2 = g.create_task([&] {
              try {
                asyncio::sleep(1);
              } catch (const asyncio::CancelledError&) {
                t2_cancel = true;
                throw;
              }
              num += 1;
            });
          });
          num += 10;
        };
        try {
          asyncio::await(asyncio::create_task(runner));
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom"}));
        }
        EXPECT_TRUE(t2.cancelled());
      },
      virtual_time());
  EXPECT_EQ(num, 0);
  EXPECT_TRUE(t2_cancel);
}

// test_cancel_children_on_child_error: three failing children, a sibling and the body are
// cancelled; the group holds the failures only.
TEST_F(CPythonTaskGroups, test_cancel_children_on_child_error) {
  int num = 0;
  bool t2_cancel = false, runner_cancel = false;
  asyncio::run(
      [&] {
        auto foo1 = [] {
          asyncio::sleep(0.1);
          throw Boom();
        };
        auto runner = [&] {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            g.create_task(foo1);
            g.create_task(foo1);
            g.create_task(foo1);
            g.create_task([&] {
              try {
                asyncio::sleep(5);
              } catch (const asyncio::CancelledError&) {
                t2_cancel = true;
                throw;
              }
              num += 1;
            });
            try {
              asyncio::sleep(10);
            } catch (const asyncio::CancelledError&) {
              runner_cancel = true;
              throw;
            }
          });
          num += 10;
        };
        try {
          asyncio::await(asyncio::create_task(runner));
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          // The three are due in the same loop turn: all fail before the first one's callback.
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom", "Boom", "Boom"}));
        }
      },
      virtual_time());
  EXPECT_EQ(num, 0);
  EXPECT_TRUE(t2_cancel);
  EXPECT_TRUE(runner_cancel);
}

// test_cancellation: the task running the group is cancelled while the group waits at its end: the
// children are cancelled, and the task's own CancelledError (with cancel()'s message) comes out.
TEST_F(CPythonTaskGroups, test_cancellation) {
  int num = 0;
  asyncio::run(
      [&] {
        auto r = asyncio::create_task([&] {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            for (int i = 0; i < 5; ++i) {
              g.create_task([&] {
                try {
                  asyncio::sleep(5);
                } catch (const asyncio::CancelledError&) {
                  num += 1;
                  throw;
                }
              });
            }
          });
        });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel("test");
        try {
          asyncio::await(r);
          ADD_FAILURE() << "no CancelledError";
        } catch (const asyncio::CancelledError& e) {
          EXPECT_EQ(e.message(), "test");
        }
        EXPECT_TRUE(r.cancelled());
      },
      virtual_time());
  EXPECT_EQ(num, 5);
}

// test_taskgroup_07: the same with the body still running: it is interrupted too.
TEST_F(CPythonTaskGroups, test_taskgroup_07) {
  int num = 0;
  asyncio::run(
      [&] {
        auto r = asyncio::create_task([&] {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            for (int i = 0; i < 5; ++i) {
              g.create_task([&] {
                try {
                  asyncio::sleep(5);
                } catch (const asyncio::CancelledError&) {
                  num += 1;
                  throw;
                }
              });
            }
            try {
              asyncio::sleep(10);
            } catch (const asyncio::CancelledError&) {
              num += 10;
              throw;
            }
          });
        });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel();
        EXPECT_THROW(asyncio::await(r), asyncio::CancelledError);
      },
      virtual_time());
  EXPECT_EQ(num, 15);
}

// test_taskgroup_08 (3.12: errors have priority over the cancellation; 3.11 raised
// CancelledError): children that fail while being cancelled give an ExceptionGroup.
TEST_F(CPythonTaskGroups, test_taskgroup_08) {
  asyncio::run(
      [] {
        auto r = asyncio::create_task([] {
          asyncio::task_group([](asyncio::TaskGroup& g) {
            for (int i = 0; i < 5; ++i) {
              g.create_task([] {
                try {
                  asyncio::sleep(10);
                } catch (...) {
                  throw Boom();  // `finally: 1 / 0`
                }
              });
            }
            asyncio::sleep(10);
          });
        });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel();
        try {
          asyncio::await(r);
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>(5, "Boom")));
        }
      },
      virtual_time());
}

// test_taskgroup_09: the body fails after a suspension: children cancelled, ExceptionGroup.
TEST_F(CPythonTaskGroups, test_taskgroup_09) {
  asyncio::run(
      [] {
        asyncio::Task<int> t1, t2;
        try {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            t1 = g.create_task([] {
              asyncio::sleep(1);
              return 42;
            });
            t2 = g.create_task([] {
              asyncio::sleep(2);
              return 11;
            });
            asyncio::sleep(0.1);
            throw Boom();
          });
          ADD_FAILURE() << "ExceptionGroup was not raised";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom"}));
        }
        EXPECT_TRUE(t1.cancelled());
        EXPECT_TRUE(t2.cancelled());
      },
      virtual_time());
}

// test_taskgroup_10: the body fails before the children ever ran: they are cancelled unstarted.
TEST_F(CPythonTaskGroups, test_taskgroup_10) {
  bool ran = false;
  asyncio::run(
      [&] {
        asyncio::Task<int> t1, t2;
        try {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            t1 = g.create_task([&] {
              ran = true;
              asyncio::sleep(1);
              return 42;
            });
            t2 = g.create_task([&] {
              ran = true;
              asyncio::sleep(2);
              return 11;
            });
            throw Boom();
          });
          ADD_FAILURE() << "ExceptionGroup was not raised";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom"}));
        }
        EXPECT_TRUE(t1.cancelled());
        EXPECT_TRUE(t2.cancelled());
      },
      virtual_time());
  EXPECT_FALSE(ran);
}

// test_taskgroup_11 (3.12): nested groups, the task cancelled from outside, the inner children
// fail while cancelled: ExceptionGroup(ExceptionGroup(Boom x5)).
TEST_F(CPythonTaskGroups, test_taskgroup_11) {
  asyncio::run(
      [] {
        auto r = asyncio::create_task([] {
          asyncio::task_group([](asyncio::TaskGroup&) {
            asyncio::task_group([](asyncio::TaskGroup& g2) {
              for (int i = 0; i < 5; ++i) {
                g2.create_task([] {
                  try {
                    asyncio::sleep(10);
                  } catch (...) {
                    throw Boom();
                  }
                });
              }
              asyncio::sleep(10);
            });
          });
        });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel();
        try {
          asyncio::await(r);
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          ASSERT_EQ(kinds(eg), (std::vector<std::string>{"ExceptionGroup"}));
          if (auto* inner = group_of(eg.exceptions()[0])) {
            EXPECT_EQ(kinds(*inner), (std::vector<std::string>(5, "Boom")));
          }
        }
      },
      virtual_time());
}

// test_taskgroup_12 (3.12): as _11 with a child of the outer group still sleeping.
TEST_F(CPythonTaskGroups, test_taskgroup_12) {
  asyncio::run(
      [] {
        asyncio::Task<> outer_child;
        auto r = asyncio::create_task([&] {
          asyncio::task_group([&](asyncio::TaskGroup& g1) {
            outer_child = g1.create_task([] { asyncio::sleep(10); });
            asyncio::task_group([](asyncio::TaskGroup& g2) {
              for (int i = 0; i < 5; ++i) {
                g2.create_task([] {
                  try {
                    asyncio::sleep(10);
                  } catch (...) {
                    throw Boom();
                  }
                });
              }
              asyncio::sleep(10);
            });
          });
        });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel();
        try {
          asyncio::await(r);
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          ASSERT_EQ(kinds(eg), (std::vector<std::string>{"ExceptionGroup"}));
          if (auto* inner = group_of(eg.exceptions()[0])) {
            EXPECT_EQ(kinds(*inner), (std::vector<std::string>(5, "Boom")));
          }
        }
        EXPECT_TRUE(outer_child.cancelled());
        EXPECT_LT(asyncio::get_running_loop().time(), 1.0);
      },
      virtual_time());
}

// test_taskgroup_13: the outer group's child fails while the inner group waits: the inner group
// is cancelled (CancelledError, swallowed by the outer group, which sent it) and the outer raises
// its child's error alone.
TEST_F(CPythonTaskGroups, test_taskgroup_13) {
  asyncio::run(
      [] {
        auto r = asyncio::create_task([] {
          asyncio::task_group([](asyncio::TaskGroup& g1) {
            g1.create_task([] { crash_after(0.1); });
            asyncio::task_group([](asyncio::TaskGroup& g2) { g2.create_task([] { crash_after(10); }); });
          });
        });
        try {
          asyncio::await(r);
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"ValueErr"}));
        }
        EXPECT_LT(asyncio::get_running_loop().time(), 1.0);
      },
      virtual_time());
}

// test_taskgroup_14: the inner group's child fails first: the outer group gets the inner's
// ExceptionGroup as the body's error and cancels its own child.
TEST_F(CPythonTaskGroups, test_taskgroup_14) {
  asyncio::run(
      [] {
        auto r = asyncio::create_task([] {
          asyncio::task_group([](asyncio::TaskGroup& g1) {
            g1.create_task([] { crash_after(10); });
            asyncio::task_group([](asyncio::TaskGroup& g2) { g2.create_task([] { crash_after(0.1); }); });
          });
        });
        try {
          asyncio::await(r);
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          ASSERT_EQ(kinds(eg), (std::vector<std::string>{"ExceptionGroup"}));
          if (auto* inner = group_of(eg.exceptions()[0])) {
            EXPECT_EQ(kinds(*inner), (std::vector<std::string>{"ValueErr"}));
          }
        }
        EXPECT_LT(asyncio::get_running_loop().time(), 1.0);
      },
      virtual_time());
}

// test_taskgroup_15 (3.12): the body, cancelled from outside, waits in its handler; a child fails
// meanwhile (which cancels that wait too): ExceptionGroup, not CancelledError.
TEST_F(CPythonTaskGroups, test_taskgroup_15) {
  asyncio::run(
      [] {
        auto r = asyncio::create_task([] {
          asyncio::task_group([](asyncio::TaskGroup& g1) {
            g1.create_task([] {
              asyncio::sleep(0.3);
              throw Boom();
            });
            try {
              asyncio::sleep(10);
            } catch (const asyncio::CancelledError&) {
              asyncio::sleep(0.5);
              throw;
            }
          });
        });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel();
        try {
          asyncio::await(r);
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom"}));
        }
      },
      virtual_time());
}

// test_taskgroup_16 (3.12): as _15, the group in a task that the cancelled task awaits.
TEST_F(CPythonTaskGroups, test_taskgroup_16) {
  asyncio::run(
      [] {
        auto nested_runner = [] {
          asyncio::task_group([](asyncio::TaskGroup& g1) {
            g1.create_task([] {
              asyncio::sleep(0.3);
              throw Boom();
            });
            try {
              asyncio::sleep(10);
            } catch (const asyncio::CancelledError&) {
              asyncio::sleep(0.5);
              throw;
            }
          });
        };
        auto r = asyncio::create_task([&] { asyncio::await(asyncio::create_task(nested_runner)); });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel();
        try {
          asyncio::await(r);
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom"}));
        }
      },
      virtual_time());
}

// test_taskgroup_17: an empty group whose body is cancelled: CancelledError.
TEST_F(CPythonTaskGroups, test_taskgroup_17) {
  int num = 0;
  asyncio::run(
      [&] {
        auto r = asyncio::create_task([&] {
          asyncio::task_group([&](asyncio::TaskGroup&) {
            try {
              asyncio::sleep(10);
            } catch (const asyncio::CancelledError&) {
              num += 10;
              throw;
            }
          });
        });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel();
        EXPECT_THROW(asyncio::await(r), asyncio::CancelledError);
      },
      virtual_time());
  EXPECT_EQ(num, 10);
}

// test_taskgroup_18: the body turns its cancellation into MyExc: ExceptionGroup(MyExc).
TEST_F(CPythonTaskGroups, test_taskgroup_18) {
  int num = 0;
  asyncio::run(
      [&] {
        auto r = asyncio::create_task([&] {
          asyncio::task_group([&](asyncio::TaskGroup&) {
            try {
              asyncio::sleep(10);
            } catch (const asyncio::CancelledError&) {
              num += 10;
              throw MyExc();  // "This isn't a good idea, but we have to support this weird case."
            }
          });
        });
        asyncio::sleep(0.1);
        EXPECT_FALSE(r.done());
        r.cancel();
        try {
          asyncio::await(r);
          ADD_FAILURE() << "ExceptionGroup was not raised";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"MyExc"}));
        }
      },
      virtual_time());
  EXPECT_EQ(num, 10);
}

// test_taskgroup_19: the body, interrupted by the group, fails in its cleanup: both errors, the
// child's first.
TEST_F(CPythonTaskGroups, test_taskgroup_19) {
  asyncio::run(
      [] {
        auto r = asyncio::create_task([] {
          asyncio::task_group([](asyncio::TaskGroup& g) {
            g.create_task([] {
              asyncio::sleep(0.1);
              throw Boom();
            });
            try {
              asyncio::sleep(10);
            } catch (...) {
              throw MyExc();  // nested(): `finally: raise MyExc`
            }
          });
        });
        try {
          asyncio::await(r);
          ADD_FAILURE() << "ExceptionGroup was not raised";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom", "MyExc"}));
        }
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// test_taskgroup_20a: the body's cleanup raises something not derived from std::exception (a
// BaseException that is not KeyboardInterrupt/SystemExit): it is grouped like any other.
TEST_F(CPythonTaskGroups, test_taskgroup_20a) {
  asyncio::run(
      [] {
        try {
          asyncio::task_group([](asyncio::TaskGroup& g) {
            g.create_task([] {
              asyncio::sleep(0.1);
              throw Boom();
            });
            try {
              asyncio::sleep(10);
            } catch (...) {
              throw MyBaseExc();
            }
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom", "MyBaseExc"}));
        }
      },
      virtual_time());
}

// test_taskgroup_21a: a child raising something not derived from std::exception.
TEST_F(CPythonTaskGroups, test_taskgroup_21a) {
  asyncio::run(
      [] {
        try {
          asyncio::task_group([](asyncio::TaskGroup& g) {
            g.create_task([] {
              asyncio::sleep(0.1);
              throw MyBaseExc();
            });
            try {
              asyncio::sleep(10);
            } catch (...) {
              throw TypeErr();
            }
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"MyBaseExc", "TypeErr"}));
        }
      },
      virtual_time());
}

// test_taskgroup_22: cancelled while the group waits for its children at the end.
TEST_F(CPythonTaskGroups, test_taskgroup_22) {
  asyncio::run(
      [] {
        asyncio::Task<int> t1, t2;
        auto r = asyncio::create_task([&] {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            t1 = g.create_task([] {
              asyncio::sleep(1);
              return 42;
            });
            t2 = g.create_task([] {
              asyncio::sleep(2);
              return 11;
            });
          });
        });
        asyncio::sleep(0.05);
        r.cancel();
        EXPECT_THROW(asyncio::await(r), asyncio::CancelledError);
        EXPECT_TRUE(t1.cancelled());
        EXPECT_TRUE(t2.cancelled());
      },
      virtual_time());
}

// test_taskgroup_23: finished children leave the group as they finish (len(g._tasks) there;
// counted from the tasks here).
TEST_F(CPythonTaskGroups, test_taskgroup_23) {
  asyncio::run(
      [] {
        std::vector<asyncio::Task<>> tasks;
        auto unfinished = [&] {
          int n = 0;
          for (auto& t : tasks) n += t.done() ? 0 : 1;
          return n;
        };
        asyncio::task_group([&](asyncio::TaskGroup& g) {
          for (int count = 0; count < 10; ++count) {
            asyncio::sleep(0.1);
            tasks.push_back(g.create_task([] { asyncio::sleep(0.3); }));
            if (count == 5) {
              EXPECT_LT(unfinished(), 5);
            }
          }
          asyncio::sleep(1.35);
          EXPECT_EQ(unfinished(), 0);
        });
      },
      virtual_time());
}

// test_taskgroup_24: a child adds children to the group while it waits at its end.
TEST_F(CPythonTaskGroups, test_taskgroup_24) {
  std::vector<std::string> done;
  asyncio::run(
      [&] {
        asyncio::task_group([&](asyncio::TaskGroup& g) {
          g.create_task([&] {
            asyncio::sleep(0.1);
            g.create_task([&] {
              asyncio::sleep(0.1);
              done.push_back("0.1");
            });
            g.create_task([&] {
              asyncio::sleep(0.2);
              done.push_back("0.2");
            });
          });
        });
        EXPECT_NEAR(asyncio::get_running_loop().time(), 0.3, 1e-9);
      },
      virtual_time());
  EXPECT_EQ(done, (std::vector<std::string>{"0.1", "0.2"}));
}

// test_taskgroup_25: children multiplying in the group until a sibling fails.
TEST_F(CPythonTaskGroups, test_taskgroup_25) {
  int nhydras = 0;
  asyncio::run(
      [&] {
        std::function<void(asyncio::TaskGroup&)> hydra = [&](asyncio::TaskGroup& g) {
          nhydras += 1;
          asyncio::sleep(0.01);
          g.create_task([&] { hydra(g); });
          g.create_task([&] { hydra(g); });
        };
        try {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            g.create_task([&] { hydra(g); });
            g.create_task([&] {
              while (nhydras < 10) asyncio::sleep(0.015);
              throw Boom();
            });
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom"}));
        }
      },
      virtual_time());
  EXPECT_GE(nhydras, 10);
}

// test_taskgroup_task_name
TEST_F(CPythonTaskGroups, test_taskgroup_task_name) {
  asyncio::run(
      [] {
        asyncio::task_group([](asyncio::TaskGroup& g) {
          auto t = g.create_task([] { asyncio::sleep(0); }, "yolo");
          EXPECT_EQ(t.get_name(), "yolo");
        });
      },
      virtual_time());
}

// test_taskgroup_no_create_task_after_failure: a child cancelled by the group's abort cannot
// add a task to it (RuntimeError, "shutting down").
TEST_F(CPythonTaskGroups, test_taskgroup_no_create_task_after_failure) {
  bool refused = false;
  asyncio::run(
      [&] {
        auto coro1 = [] {
          asyncio::sleep(0.001);
          throw Boom();
        };
        try {
          asyncio::task_group([&](asyncio::TaskGroup& g) {
            g.create_task(coro1);
            g.create_task([&] {
              try {
                asyncio::sleep(1);
              } catch (const asyncio::CancelledError&) {
                try {
                  g.create_task(coro1);
                } catch (const asyncio::RuntimeError& e) {
                  refused = std::string(e.what()).find("shutting down") != std::string::npos;
                }
              }
            });
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom"}));
        }
      },
      virtual_time());
  EXPECT_TRUE(refused);
}

// test_taskgroup_context_manager_exit_raises (gh-95289): the body's cleanup (an async context
// manager's finally there, a handler here) replaces the group's cancellation with an error: both
// errors come out and the task is not left cancelling.
TEST_F(CPythonTaskGroups, test_taskgroup_context_manager_exit_raises) {
  asyncio::run(
      [] {
        auto main = asyncio::create_task([] {
          auto task = asyncio::current_task();
          try {
            asyncio::task_group([](asyncio::TaskGroup& tg) {
              try {  // async with database():
                tg.create_task([] { throw MyExc(); });
                asyncio::sleep(1);
              } catch (...) {
              }
              throw MyExc();  // database()'s finally
            });
            ADD_FAILURE() << "CustomException not raised";
          } catch (const asyncio::ExceptionGroup& eg) {
            EXPECT_EQ(task.cancelling(), 0);
            EXPECT_EQ(kinds(eg), (std::vector<std::string>{"MyExc", "MyExc"}));
          }
        });
        asyncio::await(main);
      },
      virtual_time());
}

// test_taskgroup_finished / test_coro_closed_when_tg_closed: create_task() on a finished group is
// RuntimeError "is finished", and the function given is let go of without running (Python closes
// the coroutine).
TEST_F(CPythonTaskGroups, test_taskgroup_finished) {
  bool ran = false;
  auto token = std::make_shared<int>(0);
  asyncio::run(
      [&] {
        asyncio::TaskGroup tg;
        tg.join();
        try {
          tg.create_task([&ran, token] { ran = true; });
          ADD_FAILURE() << "no RuntimeError";
        } catch (const asyncio::RuntimeError& e) {
          EXPECT_NE(std::string(e.what()).find("is finished"), std::string::npos) << e.what();
        }
        asyncio::sleep(0);
      },
      virtual_time());
  EXPECT_FALSE(ran);
  EXPECT_EQ(token.use_count(), 1);
}

// test_taskgroup_without_parent_task: a group outside a task is refused.
TEST_F(CPythonTaskGroups, test_taskgroup_without_parent_task) {
  auto loop = asyncio::new_event_loop(virtual_time());
  std::optional<std::string> error;
  loop->call_soon([&] {
    try {
      asyncio::TaskGroup tg;
    } catch (const asyncio::RuntimeError& e) {
      error = e.what();
    }
  });
  asyncio_test::run_briefly(*loop);
  loop->close();
  ASSERT_TRUE(error.has_value());
}

// test_cancelling_level_preserved: a group that failed leaves the task's cancel count at 0.
TEST_F(CPythonTaskGroups, test_cancelling_level_preserved) {
  asyncio::run(
      [] {
        try {
          asyncio::task_group([](asyncio::TaskGroup& tg) {
            tg.create_task([] {
              asyncio::sleep(0);
              throw asyncio::RuntimeError(asyncio::asyncio_errc::invalid_state, "x");
            });
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"RuntimeError"}));
        }
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
        asyncio::sleep(0.1);  // no cancellation left pending
        EXPECT_NEAR(asyncio::get_running_loop().time(), 0.1, 1e-9);
      },
      virtual_time());
}

// test_nested_groups_both_cancelled (3.13, gh-116720): children of both groups fail in the same
// turn; each group takes back its own cancel.
TEST_F(CPythonTaskGroups, test_nested_groups_both_cancelled) {
  asyncio::run(
      [] {
        auto raise_after = [](double t, bool runtime) {
          asyncio::sleep(t);
          if (runtime) throw asyncio::RuntimeError(asyncio::asyncio_errc::invalid_state, "x");
          throw ValueErr(t);
        };
        try {
          asyncio::task_group([&](asyncio::TaskGroup& outer_tg) {
            try {
              asyncio::task_group([&](asyncio::TaskGroup& inner_tg) {
                inner_tg.create_task([&] { raise_after(0, true); });
                outer_tg.create_task([&] { raise_after(0, false); });
              });
              ADD_FAILURE() << "RuntimeError not raised";
            } catch (const asyncio::ExceptionGroup& eg) {
              EXPECT_EQ(kinds(eg), (std::vector<std::string>{"RuntimeError"}));
            }
            EXPECT_EQ(asyncio::current_task().cancelling(), 1);
          });
          ADD_FAILURE() << "ValueError not raised";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"ValueErr"}));
        }
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// The hang gh-116720 fixed ("the outer task group would hang, because its internal cancellation
// was swallowed by the inner task group"): as above, but the outer body goes on to wait after the
// inner group; the outer group's cancel must interrupt that wait.
TEST_F(CPythonTaskGroups, test_nested_groups_both_cancelled_outer_body_waits) {
  asyncio::run(
      [] {
        bool outer_body_interrupted = false;
        try {
          asyncio::task_group([&](asyncio::TaskGroup& outer_tg) {
            try {
              asyncio::task_group([&](asyncio::TaskGroup& inner_tg) {
                inner_tg.create_task([] {
                  asyncio::sleep(0);
                  throw MyExc();
                });
                outer_tg.create_task([] {
                  asyncio::sleep(0);
                  throw Boom();
                });
              });
            } catch (const asyncio::ExceptionGroup&) {
            }
            try {
              asyncio::sleep(100);
            } catch (const asyncio::CancelledError&) {
              outer_body_interrupted = true;
              throw;
            }
          });
          ADD_FAILURE() << "no ExceptionGroup";
        } catch (const asyncio::ExceptionGroup& eg) {
          EXPECT_EQ(kinds(eg), (std::vector<std::string>{"Boom"}));
        }
        EXPECT_TRUE(outer_body_interrupted);
        EXPECT_LT(asyncio::get_running_loop().time(), 1.0);
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
      },
      virtual_time());
}

// test_error_and_cancel (3.13, gh-116720): the task is cancelled from outside while a child's
// error is on its way: the group raises the ExceptionGroup, and the outside cancellation is not
// lost: it interrupts the task's next wait.
TEST_F(CPythonTaskGroups, test_error_and_cancel) {
  asyncio::run(
      [] {
        asyncio::Event event;
        bool after_group_interrupted = false;
        auto inner = [&] {
          try {
            asyncio::task_group([&](asyncio::TaskGroup& tg) {
              tg.create_task([&] {
                event.set();
                asyncio::sleep(0);
                throw asyncio::RuntimeError(asyncio::asyncio_errc::invalid_state, "x");
              });
              asyncio::sleep(1);
              ADD_FAILURE() << "Sleep in group should have been cancelled";
            });
          } catch (const asyncio::ExceptionGroup& eg) {
            EXPECT_EQ(kinds(eg), (std::vector<std::string>{"RuntimeError"}));
            EXPECT_EQ(asyncio::current_task().cancelling(), 1);
          }
          EXPECT_EQ(asyncio::current_task().cancelling(), 1);
          try {
            asyncio::sleep(1);
          } catch (const asyncio::CancelledError&) {
            after_group_interrupted = true;
            throw;
          }
          ADD_FAILURE() << "Sleep after group should have been cancelled";
        };
        auto t = asyncio::create_task(inner);
        event.wait();
        EXPECT_EQ(t.cancelling(), 0);
        t.cancel();
        EXPECT_EQ(t.cancelling(), 1);
        EXPECT_THROW(asyncio::await(t), asyncio::CancelledError);
        EXPECT_TRUE(t.cancelled());
        EXPECT_TRUE(after_group_interrupted);
      },
      virtual_time());
}

// test_taskgroup_finished, the other way round (create_task(): `self._exiting and not self._tasks`
// is "finished"): once the group, waiting at its end, has no child left, a task outside it that
// runs before the group's task resumes cannot add one.
TEST_F(CPythonTaskGroups, test_taskgroup_finished_while_exiting) {
  std::optional<std::string> refused;
  bool late_child_ran = false;
  asyncio::run(
      [&] {
        asyncio::TaskGroup* group = nullptr;
        asyncio::Task<> outsider;
        asyncio::task_group([&](asyncio::TaskGroup& g) {
          group = &g;
          g.create_task([] { asyncio::sleep(0.1); });
          // Due with the child, then one turn more: runs after the child's end has emptied the
          // group, before the group's task resumes.
          outsider = asyncio::create_task([&] {
            asyncio::sleep(0.1);
            asyncio::sleep(0);
            try {
              group->create_task([&] { late_child_ran = true; });
            } catch (const asyncio::RuntimeError& e) {
              refused = e.what();
            }
          });
        });
        asyncio::await(outsider);
      },
      virtual_time());
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->find("is finished"), std::string::npos) << *refused;
  EXPECT_FALSE(late_child_ran);
}

}  // namespace
