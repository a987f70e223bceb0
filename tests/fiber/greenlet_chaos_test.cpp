// greenlet_chaos_test.cpp: a seeded, model-checked random walk over a pool of
// greenlets. Every greenlet runs the same interpreter: each message it
// receives names, in a plan the main greenlet wrote beforehand, what it does
// next (switch or throw to another, spawn a child, return, raise, raise a
// GreenletExit), from how many nested frames. Main computes every plan on a
// model of the pool (states, parents, handles, references) that follows
// greenlet's rules: a dead target passes a switch to its nearest live
// ancestor, an exception into an unstarted greenlet kills it unstarted,
// GreenletExit escaping comes back as a value, dropping the last reference
// kills a suspended greenlet. Between the plans main re-parents (cycles must
// be refused and change nothing), drops handles and spawns. After each
// operation it checks every message arrived where, how and with what the model
// said, the dead/started flags, the parents, the live count and the RAII
// guards on each stack (each one destroyed exactly once).
//
// Seeds: a fixed list for CI; GREENLET_CHAOS_SEEDS=<n> runs seeds 1..n.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/chaos_seeds.hpp"

namespace greenlet_chaos_fiber {

// SCOPED_TRACE is used: its stack is grown before the leak count starts.
using GreenletChaos = greenlet_test::TracedGreenletTest;

constexpr int main_index = -1;

// How a message reaches its receiver.
enum class arrival { value, error, exit_value, exit_raised };
// What the receiver does with it.
enum class action { switch_to, throw_error, throw_exit, spawn, ret, raise, raise_exit };

const char* name_of(arrival a) {
  switch (a) {
    case arrival::value: return "value";
    case arrival::error: return "error";
    case arrival::exit_value: return "exit_value";
    case arrival::exit_raised: return "exit_raised";
  }
  return "?";
}

struct step {
  int receiver = main_index;
  arrival how = arrival::value;
  std::uint64_t payload = 0;
  // What the receiver does (unused when it is main, which ends the plan).
  action act = action::ret;
  int target = main_index;  // switch_to / throw_*: a pool index or main; spawn: the new index
  int depth = 0;            // nested frames (each with a guard) around the switch
};

struct plan {
  std::vector<step> steps;
};

struct message {
  std::shared_ptr<const plan> p;
  std::size_t index = 0;
  std::uint64_t payload = 0;
};

struct chaos_error : std::runtime_error {
  explicit chaos_error(message m) : std::runtime_error("chaos_error"), msg(std::move(m)) {}
  message msg;
};

struct chaos_exit : greenlet::GreenletExit {
  explicit chaos_exit(message m) : greenlet::GreenletExit("chaos_exit"), msg(std::move(m)) {}
  message msg;
};

struct world;

// guard is the RAII object on every frame of every body: it counts itself
// per greenlet and notices a second destruction.
struct guard {
  guard(world* w, int who);
  ~guard();
  guard(const guard&) = delete;
  guard& operator=(const guard&) = delete;
  world* w;
  int who;
  std::uint32_t alive = 0xA11CEu;
};

// The model of one greenlet.
struct model_greenlet {
  enum class state { unstarted, active, dead } st = state::unstarted;
  int parent = main_index;
  bool handle = true;
  bool freed = false;
  int depth = 0;              // nested frames it is suspended in
  bool exit_returns = false;  // when killed by a release: return instead of letting GreenletExit out
};

struct world {
  std::mt19937_64 rng;
  greenlet::stack_options stack{};
  bool mix_stacks = false;
  greenlet::greenlet main;
  std::vector<greenlet::greenlet> pool;  // reserved: bodies use references into it across switches
  std::vector<greenlet::detail::greenlet_impl*> impl;
  std::vector<model_greenlet> model;
  std::vector<int> guards;  // live guards per greenlet
  std::vector<std::string> errors;
  long guards_made = 0;
  long guards_gone = 0;

  explicit world(std::uint64_t seed) : rng(seed), main(greenlet::getcurrent()) {}

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  bool chance(int percent) { return uniform(0, 99) < percent; }

  void fail(std::string what) {
    if (errors.size() < 20) errors.push_back(std::move(what));
  }

  greenlet::greenlet& handle_of(int i) { return i == main_index ? main : pool[static_cast<std::size_t>(i)]; }

  greenlet::stack_options pick_stack() {
    if (!mix_stacks) return stack;
    switch (uniform(0, 3)) {
      case 0: return {.mode = greenlet::stack_mode::shared};
      case 1: return {.size = 32 * 1024, .guard_page = false, .mode = greenlet::stack_mode::separate};
      case 2: return {.size = 64 * 1024, .mode = greenlet::stack_mode::separate};
      default: return stack;
    }
  }

  // free_slot() is the first slot whose greenlet was freed, or the next new
  // one: slots are reused so the walk keeps live greenlets to the end.
  int free_slot() const {
    for (std::size_t i = 0; i < model.size(); ++i) {
      if (model[i].freed) return static_cast<int>(i);
    }
    return static_cast<int>(model.size());
  }
  // make(slot, parent) puts an unstarted greenlet running the interpreter in
  // `slot`; called by main or by a body (spawn). model[slot] is set already.
  void make(int slot, int parent);
  greenlet::value body(int self, greenlet::value args);
};

guard::guard(world* w_, int who_) : w(w_), who(who_) {
  ++w->guards[static_cast<std::size_t>(who)];
  ++w->guards_made;
}
guard::~guard() {
  if (alive != 0xA11CEu) {
    w->fail("guard of greenlet " + std::to_string(who) + " destroyed twice");
    return;
  }
  alive = 0;
  --w->guards[static_cast<std::size_t>(who)];
  ++w->guards_gone;
}

struct receipt {
  message msg;
  arrival how = arrival::value;
  bool valid = false;
};

// receipt_of(v) reads a value that arrived: a message, or a chaos_exit that
// came back as a value.
receipt receipt_of(world& w, greenlet::value& v, int self) {
  if (v.holds<chaos_exit>()) return {v.get<const chaos_exit&>().msg, arrival::exit_value, true};
  if (v.holds<message>()) return {std::move(v).get<message>(), arrival::value, true};
  w.fail("greenlet " + std::to_string(self) + " received a value that is no message");
  return {};
}

// exchange(w, self, act, target, out) performs a switch/throw of a body or of
// main and converts what comes back into a receipt. A plain GreenletExit (a
// kill by release) goes on.
receipt exchange(world& w, int self, action act, int target, message out) {
  try {
    greenlet::value v;
    switch (act) {
      case action::throw_error: v = w.handle_of(target).throw_(chaos_error(std::move(out))); break;
      case action::throw_exit: v = w.handle_of(target).throw_(chaos_exit(std::move(out))); break;
      default: v = w.handle_of(target).switch_(std::move(out)); break;
    }
    return receipt_of(w, v, self);
  } catch (const chaos_exit& e) {
    return {e.msg, arrival::exit_raised, true};
  } catch (const chaos_error& e) {
    return {e.msg, arrival::error, true};
  }
}

// nested(depth) makes `depth` frames, each with a guard and a tagged array
// that must survive the switch (stack copying moves it away and back).
template <class F>
receipt nested(world& w, int self, int depth, F&& f) {
  if (depth == 0) return f();
  guard g(&w, self);
  std::array<std::uint32_t, 48> tag;
  for (std::size_t i = 0; i < tag.size(); ++i) tag[i] = static_cast<std::uint32_t>(self * 977 + depth * 31 + i);
  receipt r = nested(w, self, depth - 1, f);
  for (std::size_t i = 0; i < tag.size(); ++i) {
    if (tag[i] != static_cast<std::uint32_t>(self * 977 + depth * 31 + i)) {
      w.fail("greenlet " + std::to_string(self) + " lost its frame at depth " + std::to_string(depth));
      break;
    }
  }
  return r;
}

// check(w, self, r) compares a receipt with the plan.
bool check(world& w, int self, const receipt& r) {
  if (!r.valid || !r.msg.p) return false;
  const auto& steps = r.msg.p->steps;
  if (r.msg.index >= steps.size()) {
    w.fail("greenlet " + std::to_string(self) + " got message index " + std::to_string(r.msg.index) + " past the plan");
    return false;
  }
  const step& s = steps[r.msg.index];
  if (s.receiver != self || s.how != r.how || s.payload != r.msg.payload) {
    w.fail("message " + std::to_string(r.msg.index) + ": expected at " + std::to_string(s.receiver) + " as " +
           name_of(s.how) + " payload " + std::to_string(s.payload) + ", got at " + std::to_string(self) + " as " +
           name_of(r.how) + " payload " + std::to_string(r.msg.payload));
    return false;
  }
  return true;
}

greenlet::value world::body(int self, greenlet::value args) {
  guard top(this, self);
  receipt r = receipt_of(*this, args, self);
  try {
    for (;;) {
      if (!check(*this, self, r)) {
        // Off the plan: hand control back to main, which reports.
        main.switch_(message{});
        return greenlet::value();
      }
      const step& s = r.msg.p->steps[r.msg.index];
      message out{r.msg.p, r.msg.index + 1,
                  r.msg.index + 1 < r.msg.p->steps.size() ? r.msg.p->steps[r.msg.index + 1].payload : 0};
      switch (s.act) {
        case action::ret: return greenlet::value(std::move(out));
        case action::raise: throw chaos_error(std::move(out));
        case action::raise_exit: throw chaos_exit(std::move(out));
        case action::spawn: {
          const int child = s.target;
          make(child, self);
          r = nested(*this, self, s.depth,
                     [&] { return exchange(*this, self, action::switch_to, child, std::move(out)); });
          break;
        }
        default:
          r = nested(*this, self, s.depth, [&] { return exchange(*this, self, s.act, s.target, std::move(out)); });
          break;
      }
    }
  } catch (const chaos_exit&) {
    throw;
  } catch (const chaos_error&) {
    throw;
  } catch (const greenlet::GreenletExit&) {
    // Killed because its last reference went: the policy main set.
    if (model[static_cast<std::size_t>(self)].exit_returns) return greenlet::value(std::string("bye"));
    throw;
  }
}

void world::make(int slot, int parent) {
  const auto i = static_cast<std::size_t>(slot);
  if (i > pool.size() || i >= pool.capacity()) {
    fail("bad slot " + std::to_string(slot));
    return;
  }
  if (i == pool.size()) {
    pool.emplace_back();
    impl.push_back(nullptr);
    guards.push_back(0);
  }
  if (!pool[i].empty() || guards[i] != 0) fail("slot " + std::to_string(slot) + " reused while in use");
  pool[i] = greenlet::greenlet([this, slot](greenlet::value args) { return body(slot, std::move(args)); },
                               handle_of(parent), pick_stack());
  impl[i] = pool[i].impl();
}

// The driver: plans, model updates, checks.
class driver {
 public:
  driver(world& w, int max_greenlets) : w_(w), max_(max_greenlets) {}

  void run(int operations) {
    for (int i = 0; i < 4; ++i) spawn_from_main();
    for (int op = 0; op < operations && !::testing::Test::HasFailure(); ++op) {
      SCOPED_TRACE("operation " + std::to_string(op));
      const int roll = w_.uniform(0, 99);
      if (roll < 55) {
        run_plan();
      } else if (roll < 70) {
        reparent();
      } else if (roll < 80) {
        drop_handle();
      } else {
        spawn_from_main();
      }
      verify();
    }
    // Drop everything: every greenlet must be freed, every guard gone.
    for (std::size_t i = 0; i < w_.pool.size(); ++i) {
      if (w_.model[i].handle) {
        w_.model[i].handle = false;
        w_.pool[i] = greenlet::greenlet();
        collect();
      }
    }
    verify();
    EXPECT_EQ(greenlet::debug::live_count(), 0u);
    EXPECT_EQ(w_.guards_made, w_.guards_gone);
  }

 private:
  using st = model_greenlet::state;
  model_greenlet& m(int i) { return w_.model[static_cast<std::size_t>(i)]; }
  int count() const { return static_cast<int>(w_.model.size()); }

  // deliver(target, how) is where a switch or throw lands, updating the model
  // as the library does on the way (unstarted greenlets killed or started).
  std::pair<int, arrival> deliver(int t, arrival how) {
    for (;;) {
      if (t == main_index) return {t, how};
      model_greenlet& g = m(t);
      if (g.st == st::dead) {
        if (how == arrival::exit_raised) how = arrival::exit_value;
        t = g.parent;
        continue;
      }
      if (g.st == st::unstarted) {
        if (how == arrival::value || how == arrival::exit_value) {
          g.st = st::active;
          g.depth = 0;
          return {t, how};
        }
        g.st = st::dead;  // started only to die at once
        if (how == arrival::exit_raised) how = arrival::exit_value;
        t = g.parent;
        continue;
      }
      return {t, how};
    }
  }

  // targets(): pool indexes main holds a handle to, and main.
  int random_target() {
    std::vector<int> held;
    // Mostly live ones (a dead one passes the switch to its parent, often
    // main, which ends the plan).
    const bool live_only = w_.chance(75);
    for (int i = 0; i < count(); ++i) {
      if (m(i).handle && (!live_only || m(i).st != st::dead)) held.push_back(i);
    }
    if (held.empty() || w_.chance(5)) return main_index;
    return held[static_cast<std::size_t>(w_.uniform(0, static_cast<int>(held.size()) - 1))];
  }

  void set_model(int slot, model_greenlet g) {
    if (slot == count()) {
      w_.model.push_back(g);
    } else {
      m(slot) = g;
    }
  }
  int live() {
    int n = 0;
    for (int i = 0; i < count(); ++i) n += m(i).freed ? 0 : 1;
    return n;
  }

  void spawn_from_main() {
    if (live() >= max_) return;
    // Its parent: main, or any greenlet main holds.
    int parent = main_index;
    if (w_.chance(40)) parent = random_target();
    const int slot = w_.free_slot();
    set_model(slot, model_greenlet{.parent = parent, .exit_returns = w_.chance(50)});
    w_.make(slot, parent);
  }

  // run_plan(): main sends a message and the pool passes it on per the plan
  // until it comes back to main.
  void run_plan() {
    auto p = std::make_shared<plan>();
    const action first = pick_main_action();
    const int first_target = random_target();
    // What main does counts as the step before message 0.
    int actor = main_index;
    action act = first;
    int target = first_target;
    for (int hop = 0;; ++hop) {
      arrival how = arrival::value;
      int landing = target;
      switch (act) {
        case action::throw_error: how = arrival::error; break;
        case action::throw_exit: how = arrival::exit_raised; break;
        case action::ret:
        case action::raise:
        case action::raise_exit:
          m(actor).st = st::dead;
          m(actor).depth = 0;
          landing = m(actor).parent;
          how = act == action::ret ? arrival::value : act == action::raise ? arrival::error : arrival::exit_value;
          break;
        default: break;
      }
      if (act == action::spawn) {
        // The body makes the child with itself as parent.
        set_model(target, model_greenlet{.parent = actor, .exit_returns = w_.chance(50)});
        landing = target;
      }
      auto [receiver, arrived] = deliver(landing, how);
      step s;
      s.receiver = receiver;
      s.how = arrived;
      s.payload = w_.rng();
      if (receiver != main_index) {
        m(receiver).depth = 0;  // it runs now
        choose_action(s, receiver, hop);
      }
      p->steps.push_back(s);
      if (receiver == main_index) break;
      actor = receiver;
      act = s.act;
      target = s.target;
      if (act == action::switch_to || act == action::throw_error || act == action::throw_exit || act == action::spawn) {
        m(actor).depth = s.depth;  // suspended there, unless the message lands on itself
      }
    }
    // Run it: the model already holds the outcome.
    message out{p, 0, p->steps[0].payload};
    receipt r = exchange(w_, main_index, first, first_target, std::move(out));
    EXPECT_TRUE(check(w_, main_index, r)) << "plan of " << p->steps.size() << " steps";
    EXPECT_EQ(r.msg.index + 1, p->steps.size());
  }

  action pick_main_action() {
    const int roll = w_.uniform(0, 99);
    if (roll < 70) return action::switch_to;
    if (roll < 85) return action::throw_error;
    return action::throw_exit;
  }

  // choose_action(s, who, hop) picks what greenlet `who` does with message s.
  void choose_action(step& s, int who, int hop) {
    const int roll = w_.uniform(0, 99);
    s.depth = w_.chance(30) ? w_.uniform(1, 4) : 0;
    if (hop >= 12) {
      // Long enough: back to main, one way or another.
      s.act = roll < 60 ? action::switch_to : action::throw_error;
      s.target = main_index;
      return;
    }
    (void)who;
    if (roll < 52) {
      s.act = action::switch_to;
      s.target = random_target();
    } else if (roll < 58) {
      s.act = action::throw_error;
      s.target = random_target();
    } else if (roll < 64) {
      s.act = action::throw_exit;
      s.target = random_target();
    } else if (roll < 72 && live() < max_) {
      s.act = action::spawn;
      s.target = w_.free_slot();
    } else if (roll < 78) {
      s.act = action::ret;
    } else if (roll < 86) {
      s.act = action::raise;
    } else if (roll < 93) {
      s.act = action::raise_exit;
    } else {
      s.act = action::switch_to;
      s.target = main_index;
    }
  }

  // refs(i) is the model's count of references to greenlet i: main's
  // handle and its unfreed children's parent links.
  int refs(int i) {
    int n = m(i).handle ? 1 : 0;
    for (int c = 0; c < count(); ++c) {
      if (!m(c).freed && m(c).parent == i) ++n;
    }
    return n;
  }

  // collect() frees what nothing references, as the library must: a
  // suspended one is killed (its guards unwind), the others just go.
  void collect() {
    for (bool changed = true; changed;) {
      changed = false;
      for (int i = 0; i < count(); ++i) {
        if (!m(i).freed && refs(i) == 0) {
          m(i).freed = true;
          m(i).st = st::dead;
          m(i).depth = 0;
          changed = true;
        }
      }
    }
  }

  void reparent() {
    const int a = random_target();
    const int b = random_target();
    if (a == main_index) {
      try {
        w_.main.set_parent(w_.handle_of(b));
        ADD_FAILURE() << "set_parent on the main greenlet was accepted";
      } catch (const greenlet::error& e) {
        EXPECT_EQ(e.code(), greenlet::errc::main_parent) << e.what();
      }
      return;
    }
    bool cycle = false;
    for (int g = b; g != main_index; g = m(g).parent) {
      if (g == a) {
        cycle = true;
        break;
      }
    }
    try {
      w_.pool[static_cast<std::size_t>(a)].set_parent(w_.handle_of(b));
      EXPECT_FALSE(cycle) << "set_parent(" << a << " -> " << b << ") made a cycle";
      m(a).parent = b;
      collect();
    } catch (const greenlet::error& e) {
      EXPECT_TRUE(cycle) << "set_parent(" << a << " -> " << b << ") refused: " << e.what();
      EXPECT_EQ(e.code(), greenlet::errc::cyclic_parent) << e.what();
      EXPECT_NE(std::string(e.what()).find("cyclic parent chain"), std::string::npos) << e.what();
    }
  }

  void drop_handle() {
    std::vector<int> held;
    for (int i = 0; i < count(); ++i) {
      if (m(i).handle) held.push_back(i);
    }
    if (held.empty()) return;
    int i = held[static_cast<std::size_t>(w_.uniform(0, static_cast<int>(held.size()) - 1))];
    // Mostly dead ones, which frees their slots for new greenlets.
    for (int tries = 0; tries < 3 && m(i).st != st::dead; ++tries) {
      i = held[static_cast<std::size_t>(w_.uniform(0, static_cast<int>(held.size()) - 1))];
    }
    m(i).handle = false;
    w_.pool[static_cast<std::size_t>(i)] = greenlet::greenlet();
    collect();
  }

  void verify() {
    for (const std::string& e : w_.errors) ADD_FAILURE() << e;
    w_.errors.clear();
    std::size_t live = 0;
    for (int i = 0; i < count(); ++i) {
      const model_greenlet& g = m(i);
      const int expected_guards = g.st == st::active ? 1 + g.depth : 0;
      EXPECT_EQ(w_.guards[static_cast<std::size_t>(i)], expected_guards) << "guards of greenlet " << i;
      if (g.freed) continue;
      ++live;
      greenlet::detail::greenlet_impl* impl = w_.impl[static_cast<std::size_t>(i)];
      greenlet::greenlet h = greenlet::greenlet::from_impl((greenlet::detail::retain(impl), impl));
      EXPECT_EQ(h.dead(), g.st == st::dead) << "greenlet " << i;
      EXPECT_EQ(h.started(), g.st != st::unstarted) << "greenlet " << i;
      EXPECT_EQ(static_cast<bool>(h), g.st == st::active) << "greenlet " << i;
      const greenlet::greenlet parent = h.parent();
      const auto* expected_parent =
          g.parent == main_index ? w_.main.impl() : w_.impl[static_cast<std::size_t>(g.parent)];
      EXPECT_EQ(parent.impl(), expected_parent) << "parent of greenlet " << i << " (model: " << g.parent << ")";
    }
    EXPECT_EQ(greenlet::debug::live_count(), live);
  }

  world& w_;
  int max_;
};

void run_seed(std::uint64_t seed, greenlet::stack_options stack, bool mix) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " (rerun: GREENLET_CHAOS_SEEDS)");
  world w(seed);
  w.stack = stack;
  w.mix_stacks = mix;
  constexpr int max_greenlets = 40;
  w.pool.reserve(max_greenlets + 1);
  w.impl.reserve(max_greenlets + 1);
  driver d(w, max_greenlets);
  d.run(200);
  for (const std::string& e : w.errors) ADD_FAILURE() << e;
}

TEST_F(GreenletChaos, SeparateStacks) {
  for (std::uint64_t seed : greenlet_test::chaos_seeds(20)) {
    run_seed(seed, {.mode = greenlet::stack_mode::separate}, false);
    if (HasFailure()) break;
  }
}

TEST_F(GreenletChaos, SharedStacks) {
  for (std::uint64_t seed : greenlet_test::chaos_seeds(20)) {
    run_seed(seed, {.mode = greenlet::stack_mode::shared}, false);
    if (HasFailure()) break;
  }
}

TEST_F(GreenletChaos, SmallUnguardedStacks) {
  for (std::uint64_t seed : greenlet_test::chaos_seeds(10)) {
    run_seed(seed, {.size = 16 * 1024, .guard_page = false, .mode = greenlet::stack_mode::separate}, false);
    if (HasFailure()) break;
  }
}

TEST_F(GreenletChaos, MixedStacks) {
  for (std::uint64_t seed : greenlet_test::chaos_seeds(20)) {
    run_seed(seed, {}, true);
    if (HasFailure()) break;
  }
}

}  // namespace greenlet_chaos_fiber
