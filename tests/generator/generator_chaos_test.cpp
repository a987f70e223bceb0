// generator_chaos_test.cpp: a seeded, model-checked random walk over many
// generators. Each generator's body follows a small script (yield n values,
// maybe delegate to a sub-generator with yield_from at some point, catch or
// let through thrown errors, and on GeneratorExit let it out, return, or
// refuse by yielding again). A model of each script, written as a state
// machine, predicts what every next/send/throw_/close, range-for broken out
// of early, and destruction mid-iteration must give: values, return values,
// the documented errors and their messages, reports to the unraisable hook,
// and the RAII guards on the bodies' stacks (each destroyed exactly once).
//
// Seeds: a fixed list for CI; GREENLET_CHAOS_SEEDS=<n> runs seeds 1..n.
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <greenlet/generator.hpp>

#include "support/chaos_seeds.hpp"

namespace greenlet_chaos_generator {

// SCOPED_TRACE is used: its stack is grown before the leak count starts.
using GeneratorChaos = greenlet_test::TracedGreenletTest;
using gen = greenlet::generator<int, int, int>;

struct chaos_error : std::runtime_error {
  explicit chaos_error(int t) : std::runtime_error("chaos_error"), tag(t) {}
  int tag;
};

enum class on_close { propagate, return_value, refuse };

struct script {
  int base = 0;
  int n = 0;  // values yielded by the body itself
  bool catch_errors = false;
  on_close close_policy = on_close::propagate;
  // The sub-generator delegated to (yield_from) before the body's yield
  // number sub_at (sub_at == n: after the last one); sub_n < 0: none.
  int sub_at = 0;
  int sub_n = -1;
  int sub_base = 0;
  bool sub_catch = false;
};

constexpr int refused_bonus = 5000000;
constexpr int closed_return = 7000000;
constexpr int caught_bonus = 1000;

// live guards per generator (index 2k: body, 2k+1: its sub-generator's body).
struct guards {
  std::vector<int> live;
  std::vector<std::string> errors;
  long made = 0;
  long gone = 0;
};

struct guard {
  guard(guards* g_, std::size_t slot_) : g(g_), slot(slot_) {
    ++g->live[slot];
    ++g->made;
  }
  ~guard() {
    if (alive != 0xBEEFu) {
      g->errors.push_back("guard " + std::to_string(slot) + " destroyed twice");
      return;
    }
    alive = 0;
    --g->live[slot];
    ++g->gone;
  }
  guard(const guard&) = delete;
  guard& operator=(const guard&) = delete;
  guards* g;
  std::size_t slot;
  std::uint32_t alive = 0xBEEFu;
};

gen make_sub(guards* gs, std::size_t slot, int n, int base, bool catch_errors) {
  return gen([gs, slot, n, base, catch_errors](gen::context& co) {
    guard top(gs, slot);
    int sum = 0;
    for (int j = 0; j < n; ++j) {
      try {
        std::optional<int> got = co.yield(base + j);
        if (got) sum += *got;
      } catch (const chaos_error&) {
        if (!catch_errors) throw;
        sum += caught_bonus;
      }
    }
    return base + sum;
  });
}

gen make_gen(guards* gs, std::size_t index, script s) {
  return gen([gs, index, s](gen::context& co) {
    guard top(gs, 2 * index);
    int sum = 0;
    for (int i = 0; i <= s.n; ++i) {
      try {
        if (s.sub_n >= 0 && i == s.sub_at) {
          guard around(gs, 2 * index);  // a second guard while delegating
          gen sub = make_sub(gs, 2 * index + 1, s.sub_n, s.sub_base, s.sub_catch);
          sum += co.yield_from(sub);
        }
        if (i == s.n) break;
        std::optional<int> got = co.yield(s.base + i);
        if (got) sum += *got;
      } catch (const chaos_error&) {
        if (!s.catch_errors) throw;
        sum += caught_bonus;
      } catch (const greenlet::GeneratorExit&) {
        if (s.close_policy == on_close::propagate) throw;
        if (s.close_policy == on_close::return_value) return closed_return + s.base;
        co.yield(-1);  // refuses to close
        return refused_bonus + s.base + sum;
      }
    }
    return s.base + sum;
  });
}

// The model of one generator: the script run as a state machine.
struct model {
  enum class status { unstarted, suspended, finished } st = status::unstarted;
  enum class where { yield, sub, refusal } at = where::yield;
  script s;
  int i = 0;
  int j = 0;
  int sum = 0;
  int sub_sum = 0;
  std::optional<int> returned;
};

// What an operation must give.
struct outcome {
  enum class kind { yielded, stop, stop_finished, error, exit_ok, refused, just_started } k = kind::yielded;
  int v = 0;  // yielded value, or return value for stop / exit_ok with a value
  bool has_return = false;
  int tag = 0;  // the chaos_error's tag for error
};

enum class input { value, error, exit };

class machine {
 public:
  explicit machine(model& m) : m_(m) {}

  // resume(in, sent, tag) advances the model of a started or unstarted
  // generator as next/send/throw_/close would.
  outcome resume(input in, std::optional<int> sent, int tag) {
    using st = model::status;
    if (m_.st == st::finished) {
      if (in == input::value) return {outcome::kind::stop_finished};
      if (in == input::error) return {outcome::kind::error, 0, false, tag};
      return {outcome::kind::exit_ok};
    }
    if (m_.st == st::unstarted) {
      if (in == input::value && sent) return {outcome::kind::just_started};
      if (in != input::value) {
        m_.st = st::finished;
        if (in == input::error) return {outcome::kind::error, 0, false, tag};
        return {outcome::kind::exit_ok};
      }
      m_.st = st::suspended;
      m_.i = 0;
      m_.sum = 0;
      return loop_top();
    }
    switch (m_.at) {
      case model::where::yield:
        if (in == input::value) {
          if (sent) m_.sum += *sent;
          ++m_.i;
          return loop_top();
        }
        if (in == input::error) return caught_or_raised(tag);
        return closing();
      case model::where::sub:
        if (in == input::value) {
          if (sent) m_.sub_sum += *sent;
          ++m_.j;
          return sub_top();
        }
        if (in == input::error) {
          if (m_.s.sub_catch) {
            m_.sub_sum += caught_bonus;
            ++m_.j;
            return sub_top();
          }
          return caught_or_raised(tag);  // out of yield_from into the body
        }
        return closing();  // yield_from closes the sub, the body sees GeneratorExit
      case model::where::refusal:
        if (in == input::value) return finish(refused_bonus + m_.s.base + m_.sum);
        m_.st = st::finished;
        if (in == input::error) return {outcome::kind::error, 0, false, tag};
        return {outcome::kind::exit_ok};
    }
    return {};
  }

  // guards_expected() is the guards live on the body's stack and the sub's.
  std::pair<int, int> guards_expected() const {
    if (m_.st != model::status::suspended) return {0, 0};
    if (m_.at == model::where::sub) return {2, 1};
    return {1, 0};
  }

 private:
  outcome finish(int r) {
    m_.st = model::status::finished;
    m_.returned = r;
    return {outcome::kind::stop, r, true};
  }
  outcome loop_top() {
    for (;;) {
      if (m_.i > m_.s.n) return finish(m_.s.base + m_.sum);
      if (m_.s.sub_n >= 0 && m_.i == m_.s.sub_at) {
        m_.j = 0;
        m_.sub_sum = 0;
        m_.at = model::where::sub;
        return sub_top();
      }
      return after_sub();
    }
  }
  // after_sub() is the body past the delegation at position i.
  outcome after_sub() {
    if (m_.i == m_.s.n) return finish(m_.s.base + m_.sum);
    m_.at = model::where::yield;
    return {outcome::kind::yielded, m_.s.base + m_.i};
  }
  outcome sub_top() {
    if (m_.j < m_.s.sub_n) {
      m_.at = model::where::sub;
      return {outcome::kind::yielded, m_.s.sub_base + m_.j};
    }
    m_.sum += m_.s.sub_base + m_.sub_sum;
    return after_sub();
  }
  outcome caught_or_raised(int tag) {
    if (!m_.s.catch_errors) {
      m_.st = model::status::finished;
      return {outcome::kind::error, 0, false, tag};
    }
    m_.sum += caught_bonus;
    ++m_.i;
    return loop_top();
  }
  outcome closing() {
    switch (m_.s.close_policy) {
      case on_close::propagate: m_.st = model::status::finished; return {outcome::kind::exit_ok};
      case on_close::return_value:
        m_.st = model::status::finished;
        m_.returned = closed_return + m_.s.base;
        return {outcome::kind::exit_ok, closed_return + m_.s.base, true};
      case on_close::refuse: m_.at = model::where::refusal; return {outcome::kind::refused};
    }
    return {};
  }
  model& m_;
};

class walk {
 public:
  explicit walk(std::uint64_t seed) : rng_(seed) {}

  void run(int generators, int operations) {
    gs_.live.assign(2 * static_cast<std::size_t>(generators), 0);
    for (int k = 0; k < generators; ++k) {
      gens_.emplace_back();
      models_.emplace_back();
      renew(static_cast<std::size_t>(k));
    }
    for (int op = 0; op < operations && !::testing::Test::HasFailure(); ++op) {
      SCOPED_TRACE("operation " + std::to_string(op));
      const auto k = static_cast<std::size_t>(uniform(0, generators - 1));
      SCOPED_TRACE("generator " + std::to_string(k));
      const int roll = uniform(0, 99);
      auto operate = [&] {
        if (roll < 30) {
          apply(k, input::value, std::nullopt, "next");
        } else if (roll < 50) {
          apply(k, input::value, uniform(1, 9), "send");
        } else if (roll < 62) {
          apply(k, input::error, std::nullopt, "throw_");
        } else if (roll < 72) {
          apply(k, input::exit, std::nullopt, "close");
        } else if (roll < 82) {
          iterate(k, uniform(0, 4));
        } else {
          destroy(k);
          renew(k);
        }
      };
      // Sometimes from a greenlet of its own, which then dies: the body's
      // parent is whoever resumed it last.
      if (uniform(0, 4) == 0) {
        greenlet::greenlet helper(operate);
        helper.switch_();
        EXPECT_TRUE(helper.dead());
      } else {
        operate();
      }
      check_guards();
    }
    for (std::size_t k = 0; k < gens_.size(); ++k) destroy(k);
    check_guards();
    EXPECT_EQ(gs_.made, gs_.gone);
    EXPECT_EQ(greenlet::debug::live_count(), 0u);
  }

  int reports = 0;
  std::vector<std::string> report_texts;

 private:
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  void renew(std::size_t k) {
    script s;
    s.base = uniform(1, 1000) * 10;
    s.n = uniform(0, 5);
    s.catch_errors = uniform(0, 1) == 1;
    const int c = uniform(0, 9);
    s.close_policy = c < 5 ? on_close::propagate : c < 8 ? on_close::return_value : on_close::refuse;
    if (uniform(0, 2) == 0) {
      s.sub_at = uniform(0, s.n);
      s.sub_n = uniform(0, 3);
      s.sub_base = -uniform(1, 1000) * 10;
      s.sub_catch = uniform(0, 1) == 1;
    }
    models_[k] = model{};
    models_[k].s = s;
    gens_[k] = make_gen(&gs_, k, s);
  }

  std::string describe(std::size_t k) const {
    const script& s = models_[k].s;
    return "script{base " + std::to_string(s.base) + ", n " + std::to_string(s.n) + ", catch " +
           std::to_string(s.catch_errors) + ", close " + std::to_string(static_cast<int>(s.close_policy)) +
           ", sub_at " + std::to_string(s.sub_at) + ", sub_n " + std::to_string(s.sub_n) + ", sub_catch " +
           std::to_string(s.sub_catch) + "}";
  }

  // apply(k, in, sent, what) does one operation on generator k and compares
  // it with the model's prediction.
  void apply(std::size_t k, input in, std::optional<int> sent, const char* what) {
    SCOPED_TRACE(std::string(what) + " on " + describe(k));
    const int tag = uniform(1, 1 << 20);
    const outcome want = machine(models_[k]).resume(in, sent, tag);
    gen& g = gens_[k];
    try {
      int got = 0;
      switch (in) {
        case input::value: got = sent ? g.send(sent) : g.next(); break;
        case input::error: got = g.throw_(chaos_error(tag)); break;
        case input::exit:
          g.close();
          if (want.k != outcome::kind::exit_ok) ADD_FAILURE() << "close() returned, expected kind " << int(want.k);
          if (want.has_return) {
            EXPECT_TRUE(g.returned());
            EXPECT_EQ(g.return_value(), want.v);
          }
          EXPECT_TRUE(g.finished());
          return;
      }
      EXPECT_EQ(want.k, outcome::kind::yielded) << "got value " << got;
      EXPECT_EQ(got, want.v);
      EXPECT_TRUE(g.suspended());
    } catch (const greenlet::StopIteration& e) {
      if (want.k == outcome::kind::stop) {
        EXPECT_EQ(e.code(), greenlet::generator_errc::stop_iteration) << e.what();
        EXPECT_EQ(e.value().get<int>(), want.v);
        EXPECT_EQ(g.return_value(), want.v);
      } else {
        EXPECT_EQ(want.k, outcome::kind::stop_finished) << e.what();
        EXPECT_EQ(e.code(), greenlet::generator_errc::already_finished) << e.what();
        EXPECT_NE(std::string(e.what()).find("generator already finished"), std::string::npos) << e.what();
      }
      EXPECT_TRUE(g.finished());
    } catch (const chaos_error& e) {
      EXPECT_EQ(want.k, outcome::kind::error) << "chaos_error " << e.tag;
      EXPECT_EQ(e.tag, want.tag);
      EXPECT_TRUE(g.finished());
    } catch (const greenlet::generator_error& e) {
      if (want.k == outcome::kind::refused) {
        EXPECT_EQ(e.code(), greenlet::generator_errc::ignored_generator_exit) << e.what();
        EXPECT_NE(std::string(e.what()).find("generator ignored GeneratorExit"), std::string::npos) << e.what();
        EXPECT_TRUE(g.suspended());
      } else {
        EXPECT_EQ(want.k, outcome::kind::just_started) << e.what();
        EXPECT_EQ(e.code(), greenlet::generator_errc::just_started) << e.what();
        EXPECT_NE(std::string(e.what()).find("can't send non-None value to a just-started generator"),
                  std::string::npos)
            << e.what();
        EXPECT_FALSE(g.started());
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected exception: " << e.what();
    }
  }

  // iterate(k, limit) runs range-for over generator k, breaking out after
  // `limit` values (0: to the end).
  void iterate(std::size_t k, int limit) {
    SCOPED_TRACE("range-for (limit " + std::to_string(limit) + ") on " + describe(k));
    // The model: repeated next() until a value count or the end.
    std::vector<int> want;
    bool want_error = false;
    int want_tag = 0;
    model before = models_[k];
    for (;;) {
      const outcome o = machine(models_[k]).resume(input::value, std::nullopt, 0);
      if (o.k == outcome::kind::yielded) {
        want.push_back(o.v);
        if (limit != 0 && static_cast<int>(want.size()) == limit) break;
        continue;
      }
      // StopIteration ends the loop quietly; an error goes through. (The
      // bodies raise nothing on next(); refused closes only come from close.)
      want_error = o.k == outcome::kind::error;
      want_tag = o.tag;
      break;
    }
    (void)before;
    std::vector<int> got;
    try {
      for (int v : gens_[k]) {
        got.push_back(v);
        if (limit != 0 && static_cast<int>(got.size()) == limit) break;
      }
      EXPECT_FALSE(want_error);
    } catch (const chaos_error& e) {
      EXPECT_TRUE(want_error);
      EXPECT_EQ(e.tag, want_tag);
    }
    EXPECT_EQ(got, want);
  }

  void destroy(std::size_t k) {
    SCOPED_TRACE("destroy " + describe(k));
    model& m = models_[k];
    // A suspended body refusing to close is reported (ignored GeneratorExit)
    // and killed; in its refusal already, the second GeneratorExit goes out.
    const bool report =
        m.st == model::status::suspended && m.s.close_policy == on_close::refuse && m.at != model::where::refusal;
    const int before = reports;
    gens_[k] = gen();
    m.st = model::status::finished;
    EXPECT_EQ(reports - before, report ? 1 : 0);
    if (report && reports > before) {
      EXPECT_NE(report_texts.back().find("generator ignored GeneratorExit"), std::string::npos) << report_texts.back();
    }
  }

  void check_guards() {
    for (const std::string& e : gs_.errors) ADD_FAILURE() << e;
    gs_.errors.clear();
    for (std::size_t k = 0; k < models_.size(); ++k) {
      const auto [body, sub] = machine(models_[k]).guards_expected();
      EXPECT_EQ(gs_.live[2 * k], body) << "guards of generator " << k << " " << describe(k);
      EXPECT_EQ(gs_.live[2 * k + 1], sub) << "guards of the sub of generator " << k << " " << describe(k);
    }
  }

  std::mt19937_64 rng_;
  guards gs_;
  std::vector<gen> gens_;
  std::vector<model> models_;
};

void run_seed(std::uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " (rerun: GREENLET_CHAOS_SEEDS)");
  walk w(seed);
  auto previous = greenlet::set_unraisable_hook([&w](std::exception_ptr e, std::string_view context) {
    ++w.reports;
    w.report_texts.push_back(greenlet::describe_exception(e) + " | " + std::string(context));
  });
  w.run(24, 300);
  greenlet::set_unraisable_hook(std::move(previous));
}

TEST_F(GeneratorChaos, RandomWalk) {
  for (std::uint64_t seed : greenlet_test::chaos_seeds(20)) {
    run_seed(seed);
    if (HasFailure()) break;
  }
}

TEST_F(GeneratorChaos, RandomWalkSharedStacks) {
  greenlet::set_thread_stack_mode(greenlet::stack_mode::shared);
  for (std::uint64_t seed : greenlet_test::chaos_seeds(10)) {
    run_seed(seed);
    if (HasFailure()) break;
  }
  greenlet::set_thread_stack_mode(greenlet::stack_mode::inherit);
}

}  // namespace greenlet_chaos_generator
