// datagram_chaos_test.cpp: seeded randomized ("chaos") runs of datagram endpoints
// (create_datagram_endpoint), over 127.0.0.1 (UDP) and Unix-domain SOCK_DGRAM sockets. One loop
// runs 4-9 endpoints of one family, more made while it runs (some by a task cancelled while it
// creates), and a sender task per endpoint sending datagrams to random endpoints of the run, open
// or closed: sizes 0 to the largest one the socket takes, now and then a larger one (EMSGSIZE);
// some endpoints connected (remote_addr) to another, or to a closed UDP port (the ICMP error comes
// back as ConnectionRefusedError). Receivers may echo what they get (sending from inside
// datagram_received()), throw from it on purpose, or close or abort themselves. Unix-domain
// endpoints have small random write-buffer limits: their receiver's queue (net.unix.max_dgram_qlen)
// fills, sendto() queues, pause_writing()/resume_writing() come; some senders wait for the resume,
// others go on buffering; a sender may close() or abort() its endpoint with datagrams queued.
// Meanwhile a chaos task closes and aborts random endpoints (one with datagrams queued,
// preferably) and cancels senders. At the end the queues are flushed and every open receiver read
// dry; a Unix-domain endpoint whose queue waits on a closing one (close() stops reading at once,
// the socket stays open until its own queue is sent: it may wait on itself, as asyncio's would)
// is aborted then.
//
// Checked, for any interleaving:
//  - every datagram received is byte for byte one that was sent from that sender's address to the
//    receiver's address, and not received before (no duplicate, none invented or cut);
//  - Unix-domain datagrams arrive in the order each sender sent them (the kernel queues them on the
//    receiver in sendto() order), and, from a sender that was not aborted to a receiver open until
//    the end, all of them do, but those whose sendto() reported an error at once. UDP gives no
//    such promise, even on loopback (a full receive buffer or the per-CPU backlog drops, the
//    backlog of another CPU may reorder): only the first check holds for it;
//  - a connected endpoint receives only from its remote_addr (Unix-domain: while that is open);
//  - error_received() gets only what the run can cause: EMSGSIZE in the sendto() of a datagram
//    too large; ConnectionRefusedError when the destination (or a connected endpoint's peer) was
//    closed; nothing else;
//  - connection_made() once, before anything else; connection_lost(nullptr) exactly once, after
//    close() or abort(), after what close() had queued was sent; no callback after it; no
//    datagram_received() once close() or abort() was called;
//  - pause_writing() and resume_writing() alternate, starting with a pause, above the high-water
//    mark and at or below the low-water mark;
//  - sendto() on a closing endpoint raises RuntimeError;
//  - the loop's exception handler sees exactly the exceptions thrown on purpose;
//  - every protocol is released, no task is left pending, no descriptor is leaked (compared with
//    /proc/self/fd before the run), and a watchdog (20 s) turns a hang into a failure.
//
// GREENLET_CHAOS_SEEDS=<n> runs seeds 1..n, GREENLET_CHAOS_SEED=<s> one seed
// (support/chaos_seeds.hpp); GREENLET_CHAOS_VERBOSE=1 prints each run's counts. Each failure names
// its seed. Real sockets do not replay exactly: a seed fixes the plan (endpoints, sizes, delays,
// victims), not the kernel's timing.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/chaos_seeds.hpp"
#include "support/process_stats.hpp"

namespace datagram_chaos_a {

namespace asyncio = greenlet::asyncio;
using DatagramChaos = greenlet_test::GreenletTest;

int uniform(std::mt19937& g, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
bool chance(std::mt19937& g, int percent) { return uniform(g, 0, 99) < percent; }

// splitmix64: cheap payload bytes (mt19937 per byte is slow in a Debug build).
struct payload_source {
  std::uint64_t s;
  std::string bytes(std::size_t n) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; i += 8) {
      std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      for (std::size_t j = i; j < n && j < i + 8; ++j, z >>= 8) out[j] = static_cast<char>(z & 0xff);
    }
    return out;
  }
};

std::string key_of(const asyncio::address& a) { return a.host + "|" + std::to_string(a.port); }

// What was sent from one address to another, in sendto() order.
struct sent_datagram {
  std::string data;
  bool failed_at_once = false;  // its sendto() called error_received(), or it is too large
  bool received = false;
};
struct pair_log {
  std::vector<sent_datagram> sent;
  std::size_t next = 0;  // Unix-domain: the first not yet passed by a receipt
};

struct deliberate_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct world;

// endpoint is one endpoint as the run sees it; it outlives its protocol and transport.
struct endpoint {
  int id = 0;
  asyncio::DatagramTransport t;
  std::weak_ptr<asyncio::DatagramProtocol> protocol;
  std::string name;                        // key_of(sockname)
  asyncio::address addr;                   // sockname
  std::optional<asyncio::address> remote;  // connected to it
  int remote_id = -1;                      // the endpoint it is connected to, -1 for a closed port
  bool made_by_factory = false;
  int made = 0, lost = 0;
  bool closing = false;  // close() or abort() was called (by the run or the endpoint itself)
  bool aborted = false;
  bool paused = false;
  int pauses = 0, resumes = 0;
  bool in_sendto = false;  // the run is inside this endpoint's sendto()
  bool sending_oversize = false;
  int sending_to = -1;  // the destination of the sendto() in progress
  int errors_at_once = 0;
  int oversize_queued = 0;  // datagrams too large that sendto() queued (their EMSGSIZE comes later)
  std::size_t high = 64 * 1024, low = 16 * 1024;
  bool echo = false;     // sends back what it receives
  int echoes_left = 20;  // (two echoing endpoints would play ping-pong for ever)
  bool thrower = false;  // throws from datagram_received() now and then
  bool self_closer = false;
  std::vector<int> sent_to;  // endpoints it has sent to
  asyncio::Event resumed;    // set while not paused (or once lost)
  std::mt19937 rng;
  bool marker_seen = false;
  int received = 0;
};

struct world {
  explicit world(std::uint32_t s) : seed(s), g(s) {}
  std::uint32_t seed;
  std::mt19937 g;
  bool unix_family = false;
  std::string path_prefix;
  int next_path = 0;
  std::vector<std::unique_ptr<endpoint>> eps;
  std::map<std::string, pair_log> pairs;  // "from->to" keys of key_of()
  std::vector<std::string> failures;
  std::vector<std::string> reported;  // the loop's exception handler, other than the deliberate ones
  std::string helper_key;             // the marker sender's address
  int deliberate = 0, deliberate_reported = 0;
  int closed_port = 0;
  // Stats.
  int sent = 0, received = 0, refused = 0, too_large = 0, pauses = 0, queued_aborts = 0, echoes = 0,
      creations_cancelled = 0, sends_refused_closing = 0, stuck_aborts = 0, queued_closes = 0;

  void fail(const std::string& what) { failures.push_back(what); }
  endpoint* by_key(const std::string& key) {
    for (auto& e : eps) {
      if (e->name == key) return e.get();
    }
    return nullptr;
  }
};

// record_send(wd, from, to_key, data) logs a datagram about to be sent; returns its slot.
std::pair<pair_log*, std::size_t> record_send(world& wd, endpoint& from, const std::string& to_key,
                                              const std::string& data) {
  pair_log& log = wd.pairs[from.name + "->" + to_key];
  log.sent.push_back({data});
  ++wd.sent;
  return {&log, log.sent.size() - 1};
}

// send(wd, from, to, data, oversize) is one sendto() with its bookkeeping; `to` is null for a
// connected endpoint's sendto(data). True if it went without an error at once.
bool send(world& wd, endpoint& from, endpoint* to, const std::string& data, bool oversize) {
  const std::string to_key = to != nullptr ? to->name : key_of(*from.remote);
  auto [log, slot] = record_send(wd, from, to_key, data);
  const int errors_before = from.errors_at_once;
  from.in_sendto = true;
  from.sending_oversize = oversize;
  from.sending_to = to != nullptr ? to->id : from.remote_id;
  if (to != nullptr) {
    from.sent_to.push_back(to->id);
    from.t.sendto(data, to->addr);
  } else {
    if (from.remote_id >= 0) from.sent_to.push_back(from.remote_id);
    from.t.sendto(data);
  }
  from.in_sendto = false;
  from.sending_oversize = false;
  if (from.errors_at_once != errors_before) {
    log->sent[slot].failed_at_once = true;
    return false;
  }
  if (oversize) {
    // Queued behind empty datagrams (which get_write_buffer_size() does not count): it fails later.
    log->sent[slot].failed_at_once = true;
    ++from.oversize_queued;
    if (from.t.get_write_buffer_size() < data.size())
      wd.fail("endpoint " + std::to_string(from.id) + ": a datagram too large was neither refused nor queued");
  }
  return true;
}

struct chaos_protocol : asyncio::DatagramProtocol {
  world& wd;
  endpoint& ep;
  chaos_protocol(world& w, endpoint& e) : wd(w), ep(e) {}
  std::string who() const { return "endpoint " + std::to_string(ep.id) + " (" + ep.name + "): "; }
  void check_live(const char* callback) {
    if (ep.made != 1) wd.fail(who() + callback + " before connection_made()");
    if (ep.lost != 0) wd.fail(who() + callback + " after connection_lost()");
  }

  void connection_made(asyncio::DatagramTransport& t) override {
    ++ep.made;
    if (ep.made != 1) wd.fail(who() + "connection_made() twice");
    if (ep.lost != 0) wd.fail(who() + "connection_made() after connection_lost()");
    ep.t = t;
    ep.addr = t.get_extra_info("sockname");
    ep.name = key_of(ep.addr);
  }

  void datagram_received(std::string data, asyncio::address from) override {
    check_live("datagram_received()");
    if (ep.closing) wd.fail(who() + "datagram_received() after close() or abort()");
    const std::string from_key = key_of(from);
    if (!wd.helper_key.empty() && from_key == wd.helper_key) {
      if (data == "marker " + std::to_string(ep.id)) {
        ep.marker_seen = true;
      } else {
        wd.fail(who() + "a marker for another endpoint");
      }
      return;
    }
    ++ep.received;
    ++wd.received;
    // (A Unix-domain socket whose peer closed is disconnected by its next send, ECONNREFUSED, and
    // then takes datagrams from anyone: only while the peer is open is it a failure.)
    if (ep.remote && from_key != key_of(*ep.remote) &&
        !(wd.unix_family && wd.eps[static_cast<std::size_t>(ep.remote_id)]->closing)) {
      wd.fail(who() + "connected to " + key_of(*ep.remote) + ", received from " + from_key);
    }
    auto it = wd.pairs.find(from_key + "->" + ep.name);
    if (it == wd.pairs.end()) {
      wd.fail(who() + "received " + std::to_string(data.size()) + " bytes from " + from_key +
              ", which sent nothing to it");
      return;
    }
    pair_log& log = it->second;
    auto matches = [&](const sent_datagram& s) { return !s.received && s.data == data; };
    if (wd.unix_family) {
      // In order: the first not received at or after `next`.
      std::size_t i = log.next;
      while (i < log.sent.size() && !matches(log.sent[i])) ++i;
      if (i == log.sent.size()) {
        const bool earlier =
            std::any_of(log.sent.begin(), log.sent.begin() + static_cast<std::ptrdiff_t>(log.next), matches);
        wd.fail(who() + "received " + std::to_string(data.size()) + " bytes from " + from_key + " that " +
                (earlier ? "were sent before datagrams it received already (out of order)"
                         : "it did not send (or sent once and this is a duplicate)"));
        return;
      }
      log.sent[i].received = true;
      log.next = i + 1;
    } else {
      auto hit = std::find_if(log.sent.begin(), log.sent.end(), matches);
      if (hit == log.sent.end()) {
        wd.fail(who() + "received " + std::to_string(data.size()) + " bytes from " + from_key +
                " that it did not send (or sent once and this is a duplicate)");
        return;
      }
      hit->received = true;
    }
    if (ep.echo && !ep.closing && (!ep.remote || from_key == key_of(*ep.remote))) {
      // Back to the sender, from inside the callback: the sender's address is an endpoint's.
      endpoint* back = wd.by_key(from_key);
      if (back != nullptr && data.size() < 30000 && ep.echoes_left > 0) {
        --ep.echoes_left;
        ++wd.echoes;
        send(wd, ep, ep.remote ? nullptr : back, data, false);
      }
    }
    if (ep.thrower && chance(ep.rng, 15)) {
      ++wd.deliberate;
      throw deliberate_error("deliberate " + std::to_string(ep.id));
    }
    if (ep.self_closer && chance(ep.rng, 5)) {
      ep.closing = true;
      if (chance(ep.rng, 50)) {
        ep.aborted = true;
        ep.t.abort();
      } else {
        ep.t.close();
      }
    }
  }

  void error_received(const asyncio::OSError& exc) override {
    check_live("error_received()");
    const int err = exc.errno_();
    if (ep.in_sendto) ++ep.errors_at_once;
    if (err == EMSGSIZE) {
      ++wd.too_large;
      if (ep.in_sendto ? !ep.sending_oversize : ep.oversize_queued-- <= 0)
        wd.fail(who() + "EMSGSIZE for a datagram that was not too large: " + exc.what());
      return;
    }
    // ECONNREFUSED (UDP: the ICMP port unreachable a connected socket gets; Unix: no socket at the
    // path), EPERM (Unix: a socket connected to another refuses the rest) or ENOTCONN (Unix: a
    // connected socket whose peer closed is disconnected after one ECONNREFUSED): the destination of
    // this sendto(), else of an earlier one or the connected peer, is closed or connected to
    // another socket (a UDP socket connected elsewhere does not take the datagram: port unreachable).
    if (err == ECONNREFUSED || (wd.unix_family && (err == EPERM || (err == ENOTCONN && ep.remote)))) {
      ++wd.refused;
      if (err == ECONNREFUSED && dynamic_cast<const asyncio::ConnectionRefusedError*>(&exc) == nullptr)
        wd.fail(who() + "ECONNREFUSED not as a ConnectionRefusedError");
      auto unreachable = [&](int id) {
        if (id < 0) return true;
        const endpoint& d = *wd.eps[static_cast<std::size_t>(id)];
        return d.closing || (d.remote.has_value() && key_of(*d.remote) != ep.name);
      };
      bool excused;
      if (ep.in_sendto) {
        excused = unreachable(ep.sending_to);
      } else if (ep.remote) {
        excused = unreachable(ep.remote_id);
      } else {
        excused = std::any_of(ep.sent_to.begin(), ep.sent_to.end(), unreachable);
      }
      if (!excused) wd.fail(who() + "refused though its destinations are open: " + exc.what());
      return;
    }
    wd.fail(who() + "unexpected error_received(): " + exc.what());
  }

  void connection_lost(std::exception_ptr exc) override {
    ++ep.lost;
    if (ep.lost != 1) wd.fail(who() + "connection_lost() " + std::to_string(ep.lost) + " times");
    if (exc) wd.fail(who() + "connection_lost() with " + greenlet_test::describe_exception(exc));
    if (!ep.closing) wd.fail(who() + "connection_lost() without close() or abort()");
    if (ep.t && ep.t.get_write_buffer_size() != 0) wd.fail(who() + "connection_lost() with datagrams still queued");
    ep.resumed.set();  // a sender waiting for resume_writing() stops waiting
  }

  void pause_writing() override {
    ++ep.pauses;
    ++wd.pauses;
    if (ep.paused) wd.fail(who() + "pause_writing() twice");
    if (ep.t && ep.t.get_write_buffer_size() <= ep.high)
      wd.fail(who() + "pause_writing() at or below the high-water mark");
    ep.paused = true;
    ep.resumed.clear();
  }

  void resume_writing() override {
    ++ep.resumes;
    if (!ep.paused) wd.fail(who() + "resume_writing() without pause_writing()");
    if (ep.t && ep.t.get_write_buffer_size() > ep.low) wd.fail(who() + "resume_writing() above the low-water mark");
    ep.paused = false;
    ep.resumed.set();
  }
};

// unstick(wd) aborts each endpoint with datagrams queued that has sent to a deaf endpoint (closing,
// not yet lost: its socket is open but no longer read), which may be why its queue does not move.
void unstick(world& wd) {
  auto deaf = [&](int id) {
    const endpoint& d = *wd.eps[static_cast<std::size_t>(id)];
    return d.closing && d.made == 1 && d.lost == 0;
  };
  for (auto& e : wd.eps) {
    if (!e->t || e->lost != 0 || e->aborted || e->t.get_write_buffer_size() == 0) continue;
    if (!std::any_of(e->sent_to.begin(), e->sent_to.end(), deaf)) continue;
    e->closing = true;
    e->aborted = true;
    ++wd.stuck_aborts;
    e->t.abort();
  }
}

std::string unix_path(world& wd) { return wd.path_prefix + std::to_string(wd.next_path++); }

// create(wd, ep, connect_to) makes ep's endpoint: bound to a fresh address, or connected.
void create(world& wd, endpoint& ep) {
  asyncio::datagram_endpoint_config config;
  if (wd.unix_family) {
    config.family = AF_UNIX;
    config.local_addr = asyncio::address{unix_path(wd), 0};
    if (ep.remote) config.remote_addr = ep.remote;
  } else if (ep.remote) {
    config.remote_addr = ep.remote;  // bound by connect() to 127.0.0.1 and a free port
  } else {
    config.local_addr = asyncio::address{"127.0.0.1", 0};
  }
  auto made = asyncio::create_datagram_endpoint(
      [&] {
        ep.made_by_factory = true;
        auto p = std::make_shared<chaos_protocol>(wd, ep);
        ep.protocol = p;
        return p;
      },
      config);
  if (made.first.fileno() != ep.t.fileno())
    wd.fail("endpoint " + std::to_string(ep.id) + ": not the transport connection_made() got");
  if (wd.unix_family) {
    made.first.set_write_buffer_limits(ep.high, ep.low);
  }
}

// new_endpoint(wd) adds an endpoint to the world with a random character.
endpoint& new_endpoint(world& wd) {
  auto ep = std::make_unique<endpoint>();
  ep->id = static_cast<int>(wd.eps.size());
  ep->rng.seed(static_cast<std::uint32_t>(wd.g()));
  ep->resumed.set();
  ep->echo = chance(wd.g, 30);
  ep->thrower = chance(wd.g, 15);
  ep->self_closer = chance(wd.g, 10);
  if (wd.unix_family) {
    ep->high = static_cast<std::size_t>(uniform(wd.g, 1, 64)) * 1024;
    ep->low = static_cast<std::size_t>(uniform(wd.g, 0, static_cast<int>(ep->high)));
  }
  // Some connect to an existing endpoint, or (UDP) to a closed port.
  const int open_ones = static_cast<int>(wd.eps.size());
  if (chance(wd.g, 20) && (open_ones > 0 || !wd.unix_family)) {
    if (open_ones > 0 && (wd.unix_family || chance(wd.g, 60))) {
      endpoint& peer = *wd.eps[static_cast<std::size_t>(uniform(wd.g, 0, open_ones - 1))];
      // (A Unix-domain socket cannot connect to one connected to another: EPERM.)
      if (!peer.name.empty() && !peer.closing && !(wd.unix_family && peer.remote)) {
        ep->remote = peer.addr;
        ep->remote_id = peer.id;
      }
    } else {
      ep->remote = asyncio::address{"127.0.0.1", wd.closed_port};
      ep->remote_id = -1;
    }
  }
  wd.eps.push_back(std::move(ep));
  return *wd.eps.back();
}

// size_for(wd, g, queue_empty, oversize) is a random datagram size; oversize (only asked with an
// empty queue, so that its EMSGSIZE comes at once) is one the socket refuses.
std::size_t size_for(world& wd, std::mt19937& g, bool queue_empty, bool& oversize) {
  const int r = uniform(g, 0, 99);
  oversize = false;
  if (r < 6) return 0;
  if (r < 55) return static_cast<std::size_t>(uniform(g, 1, 64));
  if (r < 82) return static_cast<std::size_t>(uniform(g, 65, 2000));
  if (r < 94) return static_cast<std::size_t>(uniform(g, 2001, 20000));
  if (r < 98 || !queue_empty) {
    return static_cast<std::size_t>(wd.unix_family ? uniform(g, 20001, 150000) : uniform(g, 20001, 65507));
  }
  oversize = true;
  return static_cast<std::size_t>(wd.unix_family ? uniform(g, 213000, 230000) : uniform(g, 65508, 70000));
}

void run_sender(world& wd, endpoint& ep, int count, std::uint64_t data_seed) {
  std::mt19937 g(static_cast<std::uint32_t>(data_seed));
  payload_source src{data_seed};
  const bool waits_for_resume = chance(g, 60);
  int burst = 0, burst_to = -1;
  for (int k = 0; k < count; ++k) {
    if (ep.closing) {
      // sendto() on a closing endpoint is refused.
      try {
        if (ep.remote) {
          ep.t.sendto("late");
        } else {
          ep.t.sendto("late", ep.addr);
        }
        wd.fail("endpoint " + std::to_string(ep.id) + ": sendto() after close() did not raise");
      } catch (const asyncio::RuntimeError&) {
        ++wd.sends_refused_closing;
      }
      return;
    }
    if (waits_for_resume && ep.paused) {
      ep.resumed.wait();
      continue;
    }
    bool oversize = false;
    const std::size_t size = size_for(wd, g, ep.t.get_write_buffer_size() == 0, oversize);
    std::string data = src.bytes(size);
    if (ep.remote) {
      send(wd, ep, nullptr, data, oversize);
    } else {
      // A burst goes to one destination: a Unix-domain receiver's queue fills.
      if (burst == 0 || burst_to < 0) burst_to = uniform(g, 0, static_cast<int>(wd.eps.size()) - 1);
      endpoint& to = *wd.eps[static_cast<std::size_t>(burst_to)];
      if (to.name.empty()) continue;  // still being made
      send(wd, ep, &to, data, oversize);
    }
    if (ep.t.get_write_buffer_size() > 0 && !ep.closing && chance(g, 15)) {
      // Mid-flight, datagrams queued: close() must send them first, abort() drops them.
      ep.closing = true;
      if (chance(g, 50)) {
        ++wd.queued_aborts;
        ep.aborted = true;
        ep.t.abort();
      } else {
        ++wd.queued_closes;
        ep.t.close();
      }
      continue;  // and the next sendto() is refused
    }
    if (burst > 0) {
      --burst;  // no pause between these
      continue;
    }
    if (chance(g, 20)) burst = uniform(g, 5, 40);
    switch (uniform(g, 0, 5)) {
      case 0:
      case 1: break;
      case 2:
      case 3: asyncio::sleep(0); break;
      default: asyncio::sleep(uniform(g, 1, 20) * 0.0001);
    }
  }
}

struct run_stats {
  int sent = 0, received = 0, refused = 0, too_large = 0, pauses = 0, queued_aborts = 0, queued_closes = 0, echoes = 0,
      creations_cancelled = 0, deliberate = 0, endpoints = 0, sends_refused_closing = 0;
};

// The UDP socket that sends the end-of-run markers (not an endpoint).
struct helper_socket {
  int fd = -1;
  ~helper_socket() {
    if (fd >= 0) ::close(fd);
  }
};

run_stats run_chaos(std::uint32_t seed) {
  world wd(seed);
  wd.unix_family = chance(wd.g, 50);
  wd.path_prefix = "/tmp/greenlet_dgchaos_" + std::to_string(::getpid()) + "_" + std::to_string(seed) + "_";
  const std::string tag = "seed " + std::to_string(seed) + " (" + (wd.unix_family ? "unix" : "udp") +
                          ", GREENLET_CHAOS_SEED=" + std::to_string(seed) + " replays its plan): ";
  const int initial = uniform(wd.g, 4, 9);
  const int later = uniform(wd.g, 0, 3);
  const int chaos_acts = uniform(wd.g, 0, initial);
  bool hung = false;
  run_stats stats;
  const int fds_before = greenlet_test::open_fd_count();
  {
    helper_socket helper;
    if (!wd.unix_family) {
      helper.fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      if (::bind(helper.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
          ::getsockname(helper.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        ADD_FAILURE() << "bind helper";
      wd.helper_key = key_of(asyncio::address{"127.0.0.1", ntohs(a.sin_port)});
    }

    asyncio::run([&] {
      asyncio::get_running_loop().set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
        try {
          if (c.exception) std::rethrow_exception(c.exception);
        } catch (const deliberate_error&) {
          ++wd.deliberate_reported;
          return;
        } catch (...) {
        }
        wd.reported.push_back(c.message + (c.exception ? ": " + greenlet_test::describe_exception(c.exception) : ""));
      });
      // A closed UDP port: bound, read, closed. (An endpoint made later may get it again: then the
      // endpoints connected to it talk to that one, which the checks allow.)
      {
        const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
        wd.closed_port = ntohs(a.sin_port);
        ::close(s);
      }
      for (int i = 0; i < initial; ++i) create(wd, new_endpoint(wd));

      // wait_until(done) sleeps until done(). Now and then it aborts the endpoints whose queue may
      // wait for ever: a Unix-domain destination that no longer reads (close() stops reading at once,
      // and the socket stays open until its own queue is sent: it may wait on itself, or two closing
      // endpoints on each other, as asyncio's would).
      auto wait_until = [&](const std::function<bool()>& done) {
        for (int round = 1; !done(); ++round) {
          if (round % 400 == 0) unstick(wd);
          asyncio::sleep(0.0005);
        }
      };
      std::vector<asyncio::Task<>> senders;
      auto start_sender = [&](endpoint& ep) {
        if (chance(wd.g, 15)) return;  // a receiver only
        const int count = uniform(wd.g, 3, 30);
        const std::uint64_t data_seed = (static_cast<std::uint64_t>(seed) << 32) | static_cast<std::uint32_t>(wd.g());
        senders.push_back(asyncio::create_task([&wd, &ep, count, data_seed] { run_sender(wd, ep, count, data_seed); }));
        senders.back().set_name("sender-" + std::to_string(ep.id));
      };
      for (int i = 0; i < initial; ++i) start_sender(*wd.eps[static_cast<std::size_t>(i)]);

      std::mt19937 chaos_rng(seed ^ 0xd6a7U);
      std::vector<asyncio::Task<>> creators;
      auto chaos = asyncio::create_task([&] {
        int made_later = 0;
        for (int k = 0; k < chaos_acts + later; ++k) {
          asyncio::sleep(uniform(chaos_rng, 0, 30) * 0.0002);
          const int act = uniform(chaos_rng, 0, 9);
          if (made_later < later && act < 3) {
            ++made_later;
            endpoint& ep = new_endpoint(wd);
            const bool cancel_it = chance(chaos_rng, 40);
            creators.push_back(asyncio::create_task([&wd, &ep] { create(wd, ep); }));
            if (cancel_it) {
              asyncio::sleep(0);  // it waits for connection_made() now
              creators.back().cancel();
              ep.closing = true;  // the cancelled creation closes the endpoint
            } else {
              asyncio::await(creators.back());
              start_sender(ep);
            }
            continue;
          }
          if (act < 6) {
            // Close or abort an open endpoint, one with datagrams queued if there is one.
            std::vector<endpoint*> open;
            for (auto& e : wd.eps) {
              if (!e->closing && e->t) open.push_back(e.get());
            }
            if (open.empty()) continue;
            endpoint* victim = open[static_cast<std::size_t>(uniform(chaos_rng, 0, static_cast<int>(open.size()) - 1))];
            for (endpoint* e : open) {
              if (e->t.get_write_buffer_size() > 0) victim = e;
            }
            victim->closing = true;
            if (chance(chaos_rng, 50)) {
              if (victim->t.get_write_buffer_size() > 0) ++wd.queued_aborts;
              victim->aborted = true;
              victim->t.abort();
            } else {
              victim->t.close();
            }
            continue;
          }
          if (!senders.empty())
            senders[static_cast<std::size_t>(uniform(chaos_rng, 0, static_cast<int>(senders.size()) - 1))].cancel();
        }
      });
      chaos.set_name("chaos");

      try {
        asyncio::timeout(20.0, [&] {
          asyncio::await(chaos);
          for (auto& c : creators) {
            try {
              asyncio::await(c);
            } catch (const asyncio::CancelledError&) {
              ++wd.creations_cancelled;
            }
          }
          // senders may grow while chaos runs; it is done now.
          wait_until([&] {
            return std::all_of(senders.begin(), senders.end(), [](const asyncio::Task<>& t) { return t.done(); });
          });
          asyncio::gather(asyncio::return_exceptions, senders);
          for (auto& s : senders) {
            if (!s.cancelled() && s.exception())
              wd.fail("a sender failed: " + greenlet_test::describe_exception(s.exception()));
          }
          // Everything queued goes out (or fails, or is lost with its closing endpoint).
          wait_until([&] {
            return std::all_of(wd.eps.begin(), wd.eps.end(), [](const std::unique_ptr<endpoint>& e) {
              if (e->closing) return e->made == 0 || e->lost == 1;
              return !e->t || e->t.get_write_buffer_size() == 0;
            });
          });
          if (wd.unix_family) {
            // Every datagram sent is on its receiver's socket now: wait until each open one is read.
            wait_until([&] {
              return std::all_of(wd.eps.begin(), wd.eps.end(), [](const std::unique_ptr<endpoint>& e) {
                if (e->closing || !e->t || e->t.fileno() < 0) return true;
                char byte;
                return ::recv(e->t.fileno(), &byte, 0, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
              });
            });
          } else {
            // UDP: a marker to each open endpoint; its arrival is a pause long enough in practice for
            // what was sent before it (the check does not need it: UDP may lose them anyway).
            for (auto& e : wd.eps) {
              if (e->closing || !e->t || e->remote) continue;
              const std::string marker = "marker " + std::to_string(e->id);
              for (int round = 0; !e->marker_seen && !e->closing; ++round) {  // (it may close itself)
                if (round % 200 == 0) asyncio::sock_sendto(helper.fd, marker, e->addr);
                asyncio::sleep(0.0002);
              }
            }
          }
        });
      } catch (const asyncio::TimeoutError&) {
        hung = true;
        for (const asyncio::AnyTask& t : asyncio::all_tasks()) {
          if (!(t == asyncio::current_task()) && !t.done()) wd.fail("at the watchdog, pending: " + t.repr());
        }
        for (auto& e : wd.eps) {
          wd.fail("at the watchdog: endpoint " + std::to_string(e->id) + " " + e->name +
                  (e->closing ? " closing" : "") + (e->aborted ? " aborted" : "") + " made " + std::to_string(e->made) +
                  " lost " + std::to_string(e->lost) + (e->paused ? " paused" : "") + " queued " +
                  std::to_string(e->t ? e->t.get_write_buffer_size() : 0) + " fd " +
                  std::to_string(e->t ? e->t.fileno() : -2) + (e->remote ? " remote " + key_of(*e->remote) : "") +
                  (e->marker_seen ? " marker" : ""));
        }
        chaos.cancel();
        for (auto& s : senders) s.cancel();
        for (auto& c : creators) c.cancel();
        asyncio::gather(asyncio::return_exceptions, senders);
        asyncio::gather(asyncio::return_exceptions, creators);
        asyncio::gather(asyncio::return_exceptions, chaos);
      }

      // Unix-domain: from a sender that was not aborted to a receiver open until now, everything
      // whose sendto() did not fail at once has arrived, in order (checked on receipt).
      if (wd.unix_family && !hung) {
        for (auto& from : wd.eps) {
          if (from->aborted || from->name.empty()) continue;
          for (auto& to : wd.eps) {
            if (to->closing || to->name.empty() || to->t.fileno() < 0) continue;
            // A connected receiver refuses others (EPERM), and the kernel purges its queue when it
            // finds its peer closed (its next send: ECONNREFUSED).
            if (to->remote && (to->remote_id != from->id || from->closing)) continue;
            auto it = wd.pairs.find(from->name + "->" + to->name);
            if (it == wd.pairs.end()) continue;
            int missing = 0;
            for (const sent_datagram& s : it->second.sent) missing += !s.failed_at_once && !s.received;
            if (missing > 0)
              wd.fail("endpoint " + std::to_string(to->id) + " did not receive " + std::to_string(missing) + " of " +
                      std::to_string(it->second.sent.size()) + " datagrams from endpoint " + std::to_string(from->id));
          }
        }
      }
      // Close the rest; every endpoint's connection_lost() comes once.
      for (auto& e : wd.eps) {
        if (e->t && !e->closing) {
          e->closing = true;
          e->t.close();
        }
      }
      for (int spins = 0; spins < 10000; ++spins) {
        bool all = true;
        for (auto& e : wd.eps) all = all && (!e->made_by_factory || e->lost == 1);
        if (all) break;
        asyncio::sleep(0.0005);
      }
      const asyncio::AnyTask me = asyncio::current_task();
      for (const asyncio::AnyTask& t : asyncio::all_tasks()) {
        if (!(t == me)) wd.fail("a task still pending at the end: " + t.repr());
      }
      for (auto& e : wd.eps) e->t = {};
    });
  }
  for (int i = 0; i < wd.next_path; ++i) ::unlink((wd.path_prefix + std::to_string(i)).c_str());
  const int fds_after = greenlet_test::open_fd_count();

  EXPECT_FALSE(hung) << tag << "the run hung (watchdog)";
  EXPECT_LE(fds_after, fds_before) << tag << "descriptors leaked";
  for (const std::string& f : wd.failures) ADD_FAILURE() << tag << f;
  for (const std::string& r : wd.reported) ADD_FAILURE() << tag << "reported to the loop's exception handler: " << r;
  EXPECT_EQ(wd.deliberate_reported, wd.deliberate) << tag << "exceptions thrown from datagram_received()";
  for (auto& e : wd.eps) {
    const std::string who = tag + "endpoint " + std::to_string(e->id) + ": ";
    if (!e->made_by_factory) continue;
    EXPECT_EQ(e->lost, 1) << who << "connection_lost() calls";
    EXPECT_LE(e->made, 1) << who << "connection_made() calls";
    EXPECT_TRUE(e->protocol.expired()) << who << "its protocol outlived the loop";
    EXPECT_EQ(e->pauses - e->resumes, e->paused ? 1 : 0) << who << "pauses and resumes";
  }
  stats.sent = wd.sent;
  stats.received = wd.received;
  stats.refused = wd.refused;
  stats.too_large = wd.too_large;
  stats.pauses = wd.pauses;
  stats.queued_aborts = wd.queued_aborts;
  stats.queued_closes = wd.queued_closes;
  stats.echoes = wd.echoes;
  stats.creations_cancelled = wd.creations_cancelled;
  stats.deliberate = wd.deliberate;
  stats.endpoints = static_cast<int>(wd.eps.size());
  stats.sends_refused_closing = wd.sends_refused_closing;
  if (std::getenv("GREENLET_CHAOS_VERBOSE") != nullptr) {
    std::printf("seed %u (%s): %d endpoints, sent %d received %d refused %d too-large %d pauses %d stuck-aborts %d\n",
                seed, wd.unix_family ? "unix" : "udp", stats.endpoints, wd.sent, wd.received, wd.refused, wd.too_large,
                wd.pauses, wd.stuck_aborts);
  }
  return stats;
}

// The first datagram read of a thread makes its receive buffer: made up front, so the fixture does
// not count it as the first test's leak (datagram_test.cpp does the same).
class datagram_chaos_warm_up : public ::testing::Environment {
 public:
  void SetUp() override {
    asyncio::run([] {
      auto [t, p] = asyncio::create_datagram_endpoint<asyncio::DatagramProtocol>(
          {.local_addr = asyncio::address{"127.0.0.1", 0}});
      t.sendto("x", t.get_extra_info("sockname"));
      asyncio::sleep(0.001);
      t.close();
      asyncio::sleep(0);
    });
  }
};
[[maybe_unused]] ::testing::Environment* const datagram_chaos_env =
    ::testing::AddGlobalTestEnvironment(new datagram_chaos_warm_up);

TEST_F(DatagramChaos, RandomEndpointsSendCloseAbortAndCancelKeepingTheInvariants) {
  run_stats total;
  for (const std::uint32_t seed : greenlet_test::chaos_seeds(16)) {
    const run_stats s = run_chaos(seed);
    total.sent += s.sent;
    total.received += s.received;
    total.refused += s.refused;
    total.too_large += s.too_large;
    total.pauses += s.pauses;
    total.queued_aborts += s.queued_aborts;
    total.queued_closes += s.queued_closes;
    total.echoes += s.echoes;
    total.creations_cancelled += s.creations_cancelled;
    total.deliberate += s.deliberate;
    total.endpoints += s.endpoints;
    total.sends_refused_closing += s.sends_refused_closing;
    if (HasFailure()) break;
  }
  std::printf(
      "datagram chaos: endpoints %d sent %d received %d refused %d too-large %d pauses %d queued-aborts %d "
      "queued-closes %d echoes %d "
      "cancelled-creations %d deliberate-throws %d refused-late-sends %d\n",
      total.endpoints, total.sent, total.received, total.refused, total.too_large, total.pauses, total.queued_aborts,
      total.queued_closes, total.echoes, total.creations_cancelled, total.deliberate, total.sends_refused_closing);
  if (HasFailure() || std::getenv("GREENLET_CHAOS_SEED") != nullptr) return;
  // The runs exercised what they are about.
  EXPECT_GT(total.received, 0);
  EXPECT_GT(total.refused, 0);
  EXPECT_GT(total.too_large, 0);
  EXPECT_GT(total.pauses, 0);
  EXPECT_GT(total.queued_closes, 0);
}

}  // namespace datagram_chaos_a
