// server_chaos_test.cpp: seeded randomized ("chaos") runs of the I/O layer over 127.0.0.1. One loop
// runs a server and, in the same loop, 50-120 client tasks whose behaviour a seeded RNG picks: K
// lines or frames checked byte for byte; a bulk upload in random chunks with drain() against a
// slow reader (some of whose reads time out); a half-close (write_eof) then the rest read; reads
// under wait_for()/timeout() that time out and retry (a cancelled read must lose nothing); a read
// that times out on a silent server, then the stream still works; an abort mid-line (an RST with
// SO_LINGER 0, or a plain close); the server's half-close, after which it must still read what
// the client sends; 2-3 tasks writing and draining on one writer while the client reads (each's
// lines in its order, one of them maybe cancelled). Meanwhile a canceller cancels random clients (in connect, read,
// drain, sleep), the server disturbs random connections, and at a random moment it closes (plain, close_clients() or
// abort_clients()) and waits until closed.
//
// Two servers: start_server()'s (a handler task per connection; some time out idle reads; the
// chaos cancels handlers, closes or aborts their writers) and create_server()'s with a Protocol
// (the same services as callbacks, pausing reading while its writes are paused; the chaos
// pauses reading for a moment, closes or aborts transports).
//
// The checks hold for any interleaving: every echo received matches what was sent; each client
// ends in an outcome it is allowed (success; a lost connection only if the server disturbed it or
// was shutting it down; refused only once the server closed; cancelled only if cancelled); no
// handler fails with anything but a connection error or a cancellation; nothing is reported to
// the loop's exception handler; wait_closed() returns only once every handler (connection) is
// done; no task is left pending; and once the loop is closed the process has no more descriptors
// than before. A watchdog (30 s) turns a hang into a failure.
//
// GREENLET_CHAOS_SEEDS=<n> runs seeds 1..n instead of the fixed list (GREENLET_CHAOS_SEED_BASE=<b>
// starts at b; GREENLET_CHAOS_VERBOSE=1 prints each client's outcome); each failure names its
// seed. Real sockets do not replay exactly: a seed fixes the plan (modes, sizes, delays, victims),
// not the kernel's timing.
#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include <greenlet/asyncio.hpp>
#include <greenlet/io.hpp>

#include "support/greenlet_test.hpp"

namespace server_chaos_a {

namespace asyncio = greenlet::asyncio;
using ServerChaos = greenlet_test::GreenletTest;

int open_fd_count() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the DIR's own descriptor
}

// splitmix64: cheap bytes for big payloads (mt19937 per byte is slow in a Debug build).
struct byte_source {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::string bytes(std::size_t n) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; i += 8) {
      std::uint64_t v = next();
      for (std::size_t j = i; j < n && j < i + 8; ++j, v >>= 8) out[j] = static_cast<char>(v & 0xff);
    }
    return out;
  }
  // A line of printable characters, then '\n'.
  std::string line(std::size_t n) {
    std::string out = bytes(n);
    for (char& c : out) c = static_cast<char>('!' + static_cast<unsigned char>(c) % 90);
    out += '\n';
    return out;
  }
};

struct fnv {
  std::uint64_t h = 1469598103934665603ULL;
  void add(std::string_view data) {
    for (char c : data) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
};

std::string be32(std::size_t n) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (24 - 8 * i)) & 0xff);
  return out;
}

std::size_t from_be32(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n = (n << 8) | static_cast<unsigned char>(c);
  return n;
}

enum class mode { lines, frames, sink, delayed, stall, abort_mid, half, writers };
const char* mode_name(mode m) {
  static const char* names[] = {"lines", "frames", "sink", "delayed", "stall", "abort_mid", "half", "writers"};
  return names[static_cast<int>(m)];
}

enum class outcome { pending, ok, refused, lost, cancelled, wrong };
const char* outcome_name(outcome o) {
  static const char* names[] = {"pending", "ok", "refused", "lost", "cancelled", "wrong"};
  return names[static_cast<int>(o)];
}

struct client_plan {
  mode m = mode::lines;
  double start_delay = 0;
  int messages = 1;
  std::size_t bulk = 0;  // sink: bytes uploaded
  bool half_close = false;
  bool rst = false;            // abort_mid: SO_LINGER 0 before abort()
  bool scope_timeout = false;  // delayed: asyncio::timeout() rather than wait_for()
  std::uint64_t data_seed = 0;
  std::uint32_t rng_seed = 0;
};

struct client_record {
  client_plan plan;
  outcome out = outcome::pending;
  std::string detail;
  bool cancel_requested = false;
  bool handled = false;    // a handler read its header
  bool disturbed = false;  // the server cancelled, closed, aborted or timed out its connection
  bool excused = false;    // when it was lost or refused, something above allowed it
  int timeouts = 0;
};

struct premature_eof : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct mismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One accepted connection as the server's chaos sees it; the writer copy is dropped when the
// handler ends, so the registry never keeps a connection open.
struct conn_entry {
  asyncio::AnyTask task;         // a stream server's handler
  asyncio::StreamWriter writer;  // its writer
  asyncio::Transport transport;  // or a protocol server's connection
  int client = -1;
  bool live = true;
};

struct world {
  std::vector<client_record> clients;
  std::vector<std::shared_ptr<conn_entry>> conns;
  std::vector<std::string> failures;  // handler errors, reports
  int port = 0;
  bool closing = false;         // server.close() was called
  bool clients_closed = false;  // close_clients() or abort_clients() was called
  bool protocols = false;       // the server is create_server()'s, not start_server()'s
  std::mt19937 server_rng;
  int handler_losses = 0;
  int half_checked = 0;  // half-closed servers that checked what came after their write_eof()
  int idle_timeouts = 0;
};

int uniform(std::mt19937& g, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
double uniform_real(std::mt19937& g, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g); }

// ---- the server's handlers -------------------------------------------------------------------

void serve_lines(world& wd, asyncio::StreamReader& r, asyncio::StreamWriter& w, client_record& rec) {
  // Some connections time out when idle (the server's wait_for on a read).
  const bool idle_limit = uniform(wd.server_rng, 0, 3) == 0;
  const double idle = uniform_real(wd.server_rng, 0.05, 0.2);
  for (;;) {
    std::string line;
    if (idle_limit) {
      try {
        line = asyncio::timeout(idle, [&] { return r.readline(); });
      } catch (const asyncio::TimeoutError&) {
        rec.disturbed = true;
        ++wd.idle_timeouts;
        w.close();
        return;
      }
    } else {
      line = r.readline();
    }
    if (line.empty() || line.back() != '\n') break;  // EOF (a partial line: the client aborted)
    if (line.size() > 2 && uniform(wd.server_rng, 0, 3) == 0) {
      // In two writes: the client must see one line.
      const std::size_t cut = static_cast<std::size_t>(uniform(wd.server_rng, 1, static_cast<int>(line.size()) - 1));
      w.write(std::string_view(line).substr(0, cut));
      w.write(std::string_view(line).substr(cut));
    } else {
      w.write(line);
    }
    if (uniform(wd.server_rng, 0, 1) == 0) w.drain();
  }
  w.close();
}

void serve_frames(world& wd, asyncio::StreamReader& r, asyncio::StreamWriter& w) {
  for (;;) {
    std::string header;
    try {
      header = r.readexactly(4);
    } catch (const asyncio::IncompleteReadError& e) {
      if (e.partial().empty()) break;  // a clean end between frames
      throw;
    }
    std::string body = r.readexactly(from_be32(header));
    w.write(header);
    w.write(body);
    if (uniform(wd.server_rng, 0, 2) != 0) w.drain();
  }
  w.close();
}

void serve_sink(world& wd, asyncio::StreamReader& r, asyncio::StreamWriter& w) {
  // A slow reader: small reads, sleeping now and then, so the client's drain() waits.
  // Some read under short timeouts that keep expiring: a read cancelled so loses nothing.
  const bool timed = uniform(wd.server_rng, 0, 2) == 0;
  fnv hash;
  std::size_t total = 0;
  for (;;) {
    const std::ptrdiff_t want = uniform(wd.server_rng, 1, 32 * 1024);
    std::string chunk;
    if (timed) {
      try {
        chunk = asyncio::timeout(uniform(wd.server_rng, 1, 4) * 0.0002, [&] { return r.read(want); });
      } catch (const asyncio::TimeoutError&) {
        continue;
      }
    } else {
      chunk = r.read(want);
    }
    if (chunk.empty()) break;
    total += chunk.size();
    hash.add(chunk);
    if (uniform(wd.server_rng, 0, 5) == 0) asyncio::sleep(0.0005);
  }
  w.write(std::to_string(total) + " " + std::to_string(hash.h) + "\n");
  w.close();
}

void serve_delayed(world& wd, asyncio::StreamReader& r, asyncio::StreamWriter& w) {
  // Each line comes back late and in pieces, so the client's reads time out midway.
  for (;;) {
    std::string line = r.readline();
    if (line.empty() || line.back() != '\n') break;
    asyncio::sleep(uniform(wd.server_rng, 0, 3) * 0.001);
    const int pieces = uniform(wd.server_rng, 1, 3);
    std::size_t at = 0;
    for (int p = 0; p < pieces; ++p) {
      const std::size_t n = p + 1 == pieces ? line.size() - at : (line.size() - at) / 2;
      w.write(std::string_view(line).substr(at, n));
      at += n;
      w.drain();
      if (p + 1 < pieces) asyncio::sleep(0.0005);
    }
  }
  w.close();
}

// check_sum(wd, hash, line) is the end of a 'H' connection: the client's "SUM <hash>" of the lines it
// sent after the server's write_eof().
void check_sum(world& wd, const fnv& hash, const std::string& line) {
  if (line != "SUM " + std::to_string(hash.h) + "\n") {
    wd.failures.push_back("after write_eof(), the server read other lines than the client sent");
  } else {
    ++wd.half_checked;
  }
}

void serve_half(world& wd, asyncio::StreamReader& r, asyncio::StreamWriter& w) {
  // Echo until "EOF", then half-close our side and go on reading: the client's lines must still come.
  for (;;) {
    std::string line = r.readline();
    if (line.empty() || line.back() != '\n') return;
    if (line == "EOF\n") break;
    w.write(line);
  }
  w.write_eof();
  fnv hash;
  for (;;) {
    std::string line = r.readline();
    if (line.empty() || line.back() != '\n') return;
    if (line.starts_with("SUM ")) {
      check_sum(wd, hash, line);
      break;
    }
    hash.add(line);
  }
  w.close();
}

void handle(world& wd, asyncio::StreamReader r, asyncio::StreamWriter w) {
  auto entry = std::make_shared<conn_entry>();
  entry->task = asyncio::current_task();
  entry->task.set_name("handler-" + std::to_string(wd.conns.size()));
  entry->writer = w;
  wd.conns.push_back(entry);
  struct release {
    conn_entry& e;
    ~release() {
      e.live = false;
      e.writer = {};
      e.task = {};
    }
  } guard{*entry};
  try {
    std::string header = r.readline();
    if (header.size() < 3 || header.back() != '\n') return;  // the client went before its header
    const int id = std::stoi(header);
    const char kind = header[header.size() - 2];
    if (id < 0 || static_cast<std::size_t>(id) >= wd.clients.size()) {
      wd.failures.push_back("bad header " + header);
      return;
    }
    client_record& rec = wd.clients[static_cast<std::size_t>(id)];
    rec.handled = true;
    entry->client = id;
    switch (kind) {
      case 'L': serve_lines(wd, r, w, rec); break;
      case 'F': serve_frames(wd, r, w); break;
      case 'S': serve_sink(wd, r, w); break;
      case 'D': serve_delayed(wd, r, w); break;
      case 'H': serve_half(wd, r, w); break;
      default: wd.failures.push_back("bad header " + header);
    }
  } catch (const asyncio::CancelledError&) {
    throw;
  } catch (const asyncio::ConnectionError&) {
    ++wd.handler_losses;  // the client aborted, or the server's chaos did
  } catch (const asyncio::IncompleteReadError&) {
    ++wd.handler_losses;
  } catch (const asyncio::ValueError&) {
    ++wd.handler_losses;  // an aborting client's partial line over the limit: readline() drops it
  } catch (const std::exception& e) {
    wd.failures.push_back(std::string("handler: ") + typeid(e).name() + ": " + e.what());
  }
}

// ---- the protocol server: the same services as callbacks -------------------------------------

struct chaos_protocol : asyncio::Protocol, std::enable_shared_from_this<chaos_protocol> {
  world& wd;
  std::shared_ptr<conn_entry> entry = std::make_shared<conn_entry>();
  asyncio::Transport t;
  std::string head;
  char kind = 0;
  fnv hash;
  std::size_t total = 0;
  std::string partial;  // 'H': the line not complete yet
  bool half_closed = false;
  bool flow = false;    // pause reading while the peer does not take our echoes
  double last_due = 0;  // delayed echoes keep their order
  explicit chaos_protocol(world& w) : wd(w) {}

  void connection_made(asyncio::Transport& transport) override {
    t = transport;
    entry->transport = transport;
    wd.conns.push_back(entry);
    flow = uniform(wd.server_rng, 0, 1) == 0;
  }
  void data_received(std::string_view data) override {
    if (kind == 0) {
      const std::size_t nl = data.find('\n');
      head += data.substr(0, nl == std::string_view::npos ? data.size() : nl + 1);
      if (nl == std::string_view::npos) return;
      const int id = std::stoi(head);
      if (id < 0 || static_cast<std::size_t>(id) >= wd.clients.size() || head.size() < 3) {
        wd.failures.push_back("bad header " + head);
        t.abort();
        return;
      }
      kind = head[head.size() - 2];
      wd.clients[static_cast<std::size_t>(id)].handled = true;
      entry->client = id;
      data = data.substr(nl + 1);
      if (data.empty()) return;
    }
    switch (kind) {
      case 'L':
      case 'F':
        t.write(data);  // an echo of the bytes is an echo of the lines and of the frames
        break;
      case 'S':
        hash.add(data);
        total += data.size();
        break;
      case 'D': {
        // Late, in order (timers due at the same moment run in the order they were made).
        asyncio::event_loop& loop = asyncio::get_running_loop();
        last_due = std::max(last_due, loop.time() + uniform(wd.server_rng, 0, 3) * 0.001);
        loop.call_at(last_due, [self = shared_from_this(), bytes = std::string(data)] {
          if (self->t && !self->t.is_closing()) self->t.write(bytes);
        });
        break;
      }
      case 'H': half(data); break;
      default: wd.failures.push_back("bad header " + head); t.abort();
    }
  }
  void half(std::string_view data) {
    partial += data;
    std::size_t at = 0;
    for (std::size_t nl; (nl = partial.find('\n', at)) != std::string::npos; at = nl + 1) {
      const std::string line = partial.substr(at, nl + 1 - at);
      if (!half_closed) {
        if (line == "EOF\n") {
          half_closed = true;
          t.write_eof();
        } else {
          t.write(line);
        }
      } else if (line.starts_with("SUM ")) {
        check_sum(wd, hash, line);
      } else {
        hash.add(line);
      }
    }
    partial.erase(0, at);
  }
  bool eof_received() override {
    if (kind == 'S') {
      t.write(std::to_string(total) + " " + std::to_string(hash.h) + "\n");
      t.close();
      return true;
    }
    if (uniform(wd.server_rng, 0, 1) == 0) return false;  // the transport closes itself
    t.close();
    return true;
  }
  void pause_writing() override {
    if (flow) t.pause_reading();
  }
  void resume_writing() override {
    if (flow && !t.is_closing()) t.resume_reading();
  }
  void connection_lost(std::exception_ptr) override {
    entry->live = false;
    entry->transport = {};
    t = {};
  }
};

// ---- the clients -----------------------------------------------------------------------------

std::string header_for(int id, char kind) { return std::to_string(id) + " " + kind + "\n"; }

void expect_line(asyncio::StreamReader& r, const std::string& sent) {
  std::string got = r.readline();
  if (got.empty() || got.back() != '\n')
    throw premature_eof("readline() returned " + std::to_string(got.size()) + " bytes without a newline");
  if (got != sent)
    throw mismatch("echo differs: sent " + std::to_string(sent.size()) + " bytes, got " + std::to_string(got.size()));
}

void client_lines(world& wd, int id, client_record& rec, std::mt19937& g, byte_source& src) {
  auto [r, w] = asyncio::open_connection("127.0.0.1", wd.port);
  w.write(header_for(id, 'L'));
  int sent_count = 0;
  while (sent_count < rec.plan.messages) {
    std::vector<std::string> batch;
    const int n = std::min(uniform(g, 1, 4), rec.plan.messages - sent_count);
    for (int i = 0; i < n; ++i) {
      batch.push_back(
          src.line(static_cast<std::size_t>(uniform(g, 0, 9) == 0 ? uniform(g, 0, 3000) : uniform(g, 0, 80))));
      w.write(batch.back());
    }
    sent_count += n;
    if (uniform(g, 0, 1) == 0) w.drain();
    for (const std::string& line : batch) expect_line(r, line);
    if (uniform(g, 0, 3) == 0) asyncio::sleep(0.001);
  }
  if (rec.plan.half_close) {
    // write_eof(), then the echoes of what was in flight, then EOF.
    std::vector<std::string> tail;
    for (int i = uniform(g, 0, 3); i > 0; --i) {
      tail.push_back(src.line(static_cast<std::size_t>(uniform(g, 0, 200))));
      w.write(tail.back());
    }
    w.write_eof();
    for (const std::string& line : tail) expect_line(r, line);
    const std::string rest = r.read();
    if (!rest.empty()) throw mismatch("bytes after the last echo: " + std::to_string(rest.size()));
    if (!r.at_eof()) throw mismatch("not at EOF after read() returned");
  }
  w.close();
  w.wait_closed();
}

void client_frames(world& wd, int id, client_record& rec, std::mt19937& g, byte_source& src) {
  auto [r, w] = asyncio::open_connection("127.0.0.1", wd.port);
  w.write(header_for(id, 'F'));
  for (int k = 0; k < rec.plan.messages; ++k) {
    const int shape = uniform(g, 0, 9);
    const std::size_t size = static_cast<std::size_t>(shape == 0 ? uniform(g, 0, 300000) : uniform(g, 0, 2000));
    const std::string body = src.bytes(size);
    const std::string frame = be32(size) + body;
    // In up to three writes, yielding between them.
    std::size_t at = 0;
    for (int p = uniform(g, 1, 3); p > 0; --p) {
      const std::size_t n = p == 1 ? frame.size() - at : (frame.size() - at) / 2;
      w.write(std::string_view(frame).substr(at, n));
      at += n;
      if (p > 1) asyncio::sleep(0);
    }
    if (uniform(g, 0, 1) == 0) w.drain();
    const std::string header = r.readexactly(4);
    if (header != be32(size)) throw mismatch("frame header differs");
    if (r.readexactly(size) != body) throw mismatch("frame body differs, size " + std::to_string(size));
  }
  w.close();
  w.wait_closed();
}

void client_sink(world& wd, int id, client_record& rec, std::mt19937& g, byte_source& src) {
  auto [r, w] = asyncio::open_connection("127.0.0.1", wd.port);
  w.write(header_for(id, 'S'));
  fnv hash;
  std::size_t left = rec.plan.bulk;
  while (left > 0) {
    const std::size_t n = std::min(left, static_cast<std::size_t>(uniform(g, 1, 96 * 1024)));
    std::string chunk = src.bytes(n);
    hash.add(chunk);
    w.write(chunk);
    w.drain();  // against the slow reader: the buffer stays bounded
    if (w.transport_buffer_size() > 64 * 1024) throw mismatch("drain() returned above the high-water mark");
    left -= n;
  }
  w.write_eof();
  expect_line(r, std::to_string(rec.plan.bulk) + " " + std::to_string(hash.h) + "\n");
  if (!r.read().empty()) throw mismatch("bytes after the summary");
  w.close();
  w.wait_closed();
}

void client_delayed(world& wd, int id, client_record& rec, std::mt19937& g, byte_source& src) {
  auto streams = asyncio::open_connection("127.0.0.1", wd.port);
  auto& r = streams.first;
  auto& w = streams.second;
  w.write(header_for(id, 'D'));
  for (int k = 0; k < rec.plan.messages; ++k) {
    const std::string line = src.line(static_cast<std::size_t>(uniform(g, 1, 300)));
    w.write(line);
    std::string got;
    for (;;) {
      const double limit = uniform(g, 1, 8) * 0.0005;
      try {
        got = rec.plan.scope_timeout ? asyncio::timeout(limit, [&] { return r.readline(); })
                                     : asyncio::wait_for([&] { return r.readline(); }, limit);
        break;
      } catch (const asyncio::TimeoutError&) {
        ++rec.timeouts;  // what arrived stays buffered for the next try
        if (rec.timeouts > 5000) throw mismatch("the echo never came");
      }
    }
    if (got.empty() || got.back() != '\n') throw premature_eof("readline() at EOF");
    if (got != line)
      throw mismatch("delayed echo differs: sent " + std::to_string(line.size()) + ", got " +
                     std::to_string(got.size()));
  }
  w.close();
  w.wait_closed();
}

void client_stall(world& wd, int id, client_record& rec, std::mt19937& g, byte_source& src) {
  // A read that times out (the server sends nothing unasked), then the stream still works.
  auto streams = asyncio::open_connection("127.0.0.1", wd.port);
  auto& r = streams.first;
  auto& w = streams.second;
  w.write(header_for(id, 'L'));
  const double limit = uniform(g, 1, 10) * 0.001;
  try {
    std::string got = asyncio::wait_for([&] { return r.read(1); }, limit);
    if (got.empty()) throw premature_eof("EOF while stalled");
    throw mismatch("bytes nobody sent");
  } catch (const asyncio::TimeoutError&) {
    ++rec.timeouts;
  }
  for (int k = 0; k < rec.plan.messages; ++k) {
    const std::string line = src.line(static_cast<std::size_t>(uniform(g, 0, 100)));
    w.write(line);
    expect_line(r, line);
  }
  w.close();
  w.wait_closed();
}

void client_abort_mid(world& wd, int id, client_record& rec, std::mt19937& g, byte_source& src) {
  auto [r, w] = asyncio::open_connection("127.0.0.1", wd.port);
  w.write(header_for(id, 'L'));
  for (int k = 0; k < rec.plan.messages; ++k) {
    const std::string line = src.line(static_cast<std::size_t>(uniform(g, 0, 100)));
    w.write(line);
    expect_line(r, line);
  }
  // Half a line, maybe a big one, then gone.
  std::string partial = src.line(static_cast<std::size_t>(uniform(g, 1, uniform(g, 0, 1) == 0 ? 100 : 200000)));
  partial.pop_back();
  w.write(partial);
  if (uniform(g, 0, 1) == 0) asyncio::sleep(0);
  if (rec.plan.rst && w.fileno() >= 0) {
    const linger hard{1, 0};
    ::setsockopt(w.fileno(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  }
  w.abort();
  if (!w.is_closing()) throw mismatch("abort() left the writer open");
}

void client_half(world& wd, int id, client_record& rec, std::mt19937& g, byte_source& src) {
  // The server half-closes: we read to its EOF, then send more, which it must still read.
  auto [r, w] = asyncio::open_connection("127.0.0.1", wd.port);
  w.write(header_for(id, 'H'));
  for (int k = 0; k < rec.plan.messages; ++k) {
    const std::string line = src.line(static_cast<std::size_t>(uniform(g, 0, 200)));
    w.write(line);
    expect_line(r, line);
  }
  w.write("EOF\n");
  if (!r.read().empty()) throw mismatch("bytes after the echoes, before the server's EOF");
  if (!r.at_eof()) throw mismatch("not at EOF after read() returned");
  fnv hash;
  for (int k = uniform(g, 0, 20); k > 0; --k) {
    const std::string line = src.line(static_cast<std::size_t>(uniform(g, 0, 2000)));
    hash.add(line);
    w.write(line);
    if (uniform(g, 0, 3) == 0) w.drain();
  }
  w.write("SUM " + std::to_string(hash.h) + "\n");
  if (uniform(g, 0, 1) == 0) w.write_eof();
  w.close();
  w.wait_closed();
}

void client_writers(world& wd, int id, client_record&, std::mt19937& g, byte_source& src) {
  // 2-3 tasks write and drain() on one writer at once (the canceller may hit them too) while this
  // one reads: each writer's lines come back in its order, and each ends with a "done" line.
  auto streams = asyncio::open_connection("127.0.0.1", wd.port);
  auto& r = streams.first;
  auto& w = streams.second;
  w.write(header_for(id, 'L'));
  const int writers = uniform(g, 2, 3);
  std::vector<std::vector<std::string>> sent(static_cast<std::size_t>(writers));
  std::vector<bool> started(static_cast<std::size_t>(writers), false);
  std::vector<asyncio::Task<>> tasks;
  for (int k = 0; k < writers; ++k) {
    const int lines = uniform(g, 1, 30);
    const std::uint64_t seed = src.next();
    tasks.push_back(asyncio::create_task([&, k, lines, seed] {
      byte_source mine{seed};
      std::vector<std::string>& log = sent[static_cast<std::size_t>(k)];
      started[static_cast<std::size_t>(k)] = true;
      try {
        for (int i = 0; i < lines; ++i) {
          std::string line = std::to_string(k) + " " + mine.line(mine.next() % (i % 7 == 0 ? 30000 : 100));
          w.write(line);
          log.push_back(std::move(line));  // no wait between: write() took it
          w.drain();
        }
      } catch (const asyncio::CancelledError&) {
        w.write(std::to_string(k) + " done\n");  // write() never waits: allowed while unwinding
        throw;
      }
      w.write(std::to_string(k) + " done\n");
    }));
  }
  std::exception_ptr failure;
  try {
    // A victim among them, cancelled once it runs (one cancelled before its first step would never
    // run, nor write its "done" line).
    const int victim = uniform(g, 0, 2) == 0 ? uniform(g, 0, writers - 1) : -1;
    std::vector<std::size_t> echoed(static_cast<std::size_t>(writers), 0);
    for (int done = 0; done < writers;) {
      std::string got = r.readline();
      if (victim >= 0 && started[static_cast<std::size_t>(victim)]) tasks[static_cast<std::size_t>(victim)].cancel();
      if (got.empty() || got.back() != '\n') throw premature_eof("readline() at EOF");
      const std::size_t k = static_cast<std::size_t>(std::stoi(got));
      if (k >= sent.size()) throw mismatch("a line of no writer");
      if (got == std::to_string(k) + " done\n") {
        if (echoed[k] != sent[k].size()) throw mismatch("a writer's done line before its lines");
        ++done;
        continue;
      }
      if (echoed[k] >= sent[k].size() || sent[k][echoed[k]] != got) throw mismatch("a writer's lines out of order");
      ++echoed[k];
    }
  } catch (...) {
    failure = std::current_exception();
  }
  // The writer tasks use this frame: wait for them, whatever happened (not from inside a handler).
  for (auto& t : tasks) t.cancel();
  for (;;) {
    try {
      asyncio::gather(asyncio::return_exceptions, tasks);
      break;
    } catch (const asyncio::CancelledError&) {
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  w.close();
  w.wait_closed();
}

void run_client(world& wd, int id) {
  client_record& rec = wd.clients[static_cast<std::size_t>(id)];
  std::mt19937 g(rec.plan.rng_seed);
  byte_source src{rec.plan.data_seed};
  try {
    asyncio::sleep(rec.plan.start_delay);
    switch (rec.plan.m) {
      case mode::lines: client_lines(wd, id, rec, g, src); break;
      case mode::frames: client_frames(wd, id, rec, g, src); break;
      case mode::sink: client_sink(wd, id, rec, g, src); break;
      case mode::delayed: client_delayed(wd, id, rec, g, src); break;
      case mode::stall: client_stall(wd, id, rec, g, src); break;
      case mode::abort_mid: client_abort_mid(wd, id, rec, g, src); break;
      case mode::half: client_half(wd, id, rec, g, src); break;
      case mode::writers: client_writers(wd, id, rec, g, src); break;
    }
    rec.out = outcome::ok;
  } catch (const asyncio::CancelledError&) {
    rec.out = outcome::cancelled;
    throw;
  } catch (const asyncio::ConnectionRefusedError& e) {
    rec.out = outcome::refused;
    rec.excused = wd.closing;
    rec.detail = e.what();
  } catch (const mismatch& e) {
    rec.out = outcome::wrong;
    rec.detail = e.what();
  } catch (const std::exception& e) {
    const bool lost = dynamic_cast<const asyncio::ConnectionError*>(&e) != nullptr ||
                      dynamic_cast<const asyncio::IncompleteReadError*>(&e) != nullptr ||
                      dynamic_cast<const premature_eof*>(&e) != nullptr;
    rec.out = lost ? outcome::lost : outcome::wrong;
    // A connection may be lost when the server disturbed it, when the server shut its clients
    // down, or when the server closed before a handler took it (the backlog is reset).
    rec.excused = rec.disturbed || wd.clients_closed || (wd.closing && !rec.handled);
    rec.detail = std::string(typeid(e).name()) + ": " + e.what();
  }
}

// ---- one run ---------------------------------------------------------------------------------

struct run_stats {
  int ok = 0, refused = 0, lost = 0, cancelled = 0, timeouts = 0, handler_losses = 0, idle_timeouts = 0,
      half_checked = 0;
};

run_stats run_chaos(std::uint32_t seed, bool protocols) {
  std::mt19937 g(seed);
  world wd;
  wd.protocols = protocols;
  wd.server_rng.seed(seed ^ 0x5eed5eedU);
  const int n = uniform(g, 50, 120);
  const double spread = 0.03;  // clients start within 30 ms
  for (int i = 0; i < n; ++i) {
    client_record rec;
    const int pick = uniform(g, 0, 99);
    rec.plan.m = pick < 30   ? mode::lines
                 : pick < 50 ? mode::frames
                 : pick < 62 ? mode::sink
                 : pick < 77 ? mode::delayed
                 : pick < 84 ? mode::stall
                 : pick < 90 ? mode::abort_mid
                 : pick < 95 ? mode::half
                             : mode::writers;
    rec.plan.start_delay = uniform_real(g, 0, spread);
    rec.plan.messages = uniform(g, 1, 12);
    rec.plan.bulk = static_cast<std::size_t>(uniform(g, 1, 600 * 1024));
    rec.plan.half_close = uniform(g, 0, 1) == 0;
    rec.plan.rst = uniform(g, 0, 1) == 0;
    rec.plan.scope_timeout = uniform(g, 0, 1) == 0;
    rec.plan.data_seed = (static_cast<std::uint64_t>(seed) << 32) | static_cast<std::uint32_t>(i);
    rec.plan.rng_seed = static_cast<std::uint32_t>(g());
    wd.clients.push_back(rec);
  }
  // The server's end: never before the clients are done (a third of the runs), or at a random
  // moment, plain or with its clients closed or aborted.
  const int close_kind = uniform(g, 0, 9);  // 0-3: at the end; 4-5 plain; 6-7 close_clients; 8-9 abort_clients
  const double close_at = uniform_real(g, 0.5, 2.0) * spread;
  const int client_cancels = uniform(g, 0, n / 6);
  const int server_acts = uniform(g, 0, n / 6);

  const int fds_before = open_fd_count();
  const auto started = std::chrono::steady_clock::now();  // for the verbose report only
  run_stats stats;
  asyncio::run([&] {
    asyncio::get_running_loop().set_exception_handler([&](asyncio::event_loop*, const asyncio::exception_context& c) {
      std::string text = "reported: " + c.message + " [" + c.source + "]";
      if (c.exception) {
        try {
          std::rethrow_exception(c.exception);
        } catch (const std::exception& e) {
          text += std::string(" (") + typeid(e).name() + ": " + e.what() + ")";
        } catch (...) {
        }
      }
      wd.failures.push_back(text);
    });
    asyncio::Server server =
        protocols ? asyncio::create_server([&] { return std::make_shared<chaos_protocol>(wd); }, "127.0.0.1", 0,
                                           {.backlog = 256})
                  : asyncio::start_server([&](asyncio::StreamReader r,
                                              asyncio::StreamWriter w) { handle(wd, std::move(r), std::move(w)); },
                                          "127.0.0.1", 0, {.backlog = 256});
    wd.port = server.port();
    for (asyncio::AnyTask& t : asyncio::all_tasks()) {
      if (!(t == asyncio::current_task())) t.set_name("acceptor");
    }

    std::vector<asyncio::Task<>> clients;
    clients.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      clients.push_back(asyncio::create_task([&wd, i] { run_client(wd, i); }));
      clients.back().set_name("client-" + std::to_string(i));
    }

    auto shut_down = [&](int kind) {
      wd.closing = true;
      server.close();
      if (kind == 6 || kind == 7) {
        wd.clients_closed = true;
        server.close_clients();
      } else if (kind >= 8) {
        wd.clients_closed = true;
        server.abort_clients();
      }
      server.wait_closed();
      // wait_closed() waits for every handler task (streams) or every connection to be lost (protocols).
      for (const std::shared_ptr<conn_entry>& e : wd.conns) {
        if (e->live) {
          wd.failures.push_back(std::string("wait_closed() returned while a ") +
                                (protocols ? "connection was open" : "handler was running"));
          break;
        }
      }
    };
    auto closer = asyncio::create_task([&] {
      if (close_kind <= 3) return;
      asyncio::sleep(close_at);
      shut_down(close_kind);
    });
    closer.set_name("closer");
    std::mt19937 chaos_rng(seed ^ 0xc4a05U);
    auto canceller = asyncio::create_task([&] {
      for (int k = 0; k < client_cancels; ++k) {
        asyncio::sleep(uniform_real(chaos_rng, 0, 1.5 * spread / (client_cancels + 1)));
        client_record& rec = wd.clients[static_cast<std::size_t>(uniform(chaos_rng, 0, n - 1))];
        auto& task = clients[static_cast<std::size_t>(&rec - wd.clients.data())];
        if (task.done()) continue;
        rec.cancel_requested = true;
        task.cancel();
      }
    });
    auto server_chaos = asyncio::create_task([&] {
      for (int k = 0; k < server_acts; ++k) {
        asyncio::sleep(uniform_real(chaos_rng, 0, 1.5 * spread / (server_acts + 1)));
        if (wd.conns.empty()) continue;
        const std::shared_ptr<conn_entry> e =
            wd.conns[static_cast<std::size_t>(uniform(chaos_rng, 0, static_cast<int>(wd.conns.size()) - 1))];
        if (!e->live || e->client < 0) continue;
        if (protocols) {
          const int act = uniform(chaos_rng, 0, 2);
          if (act == 0) {
            // Reading paused a moment, then resumed: nothing may be lost, so no excuse.
            e->transport.pause_reading();
            asyncio::get_running_loop().call_later(uniform(chaos_rng, 1, 5) * 0.001, [e] {
              if (e->live && !e->transport.is_closing()) e->transport.resume_reading();
            });
            continue;
          }
          wd.clients[static_cast<std::size_t>(e->client)].disturbed = true;
          if (act == 1) {
            e->transport.close();
          } else {
            e->transport.abort();
          }
          continue;
        }
        wd.clients[static_cast<std::size_t>(e->client)].disturbed = true;
        switch (uniform(chaos_rng, 0, 2)) {
          case 0: e->task.cancel(); break;
          case 1: e->writer.close(); break;
          default: e->writer.abort();
        }
      }
    });

    try {
      asyncio::timeout(30.0, [&] {  // a watchdog: a hang fails the run instead of blocking CI
        asyncio::gather(asyncio::return_exceptions, clients);
        asyncio::await(canceller);
        asyncio::await(server_chaos);
        if (wd.closing) {
          asyncio::await(closer);
        } else {
          closer.cancel();
          asyncio::gather(asyncio::return_exceptions, closer);
          shut_down(uniform(g, 6, 9));  // close_clients or abort_clients: nobody is left
        }
      });
    } catch (const asyncio::TimeoutError&) {
      std::ostringstream pending;
      for (std::size_t i = 0; i < clients.size(); ++i) {
        // gather() passed the watchdog's cancel on to the clients it waited for: those it hit are the
        // ones that hung.
        const client_record& rec = wd.clients[i];
        const bool hung = !clients[i].done() || (rec.out == outcome::cancelled && !rec.cancel_requested);
        if (hung) pending << " " << i << ":" << mode_name(rec.plan.m);
      }
      wd.failures.push_back("watchdog: the run hung; clients still pending:" + pending.str() +
                            (closer.done() ? "" : " (and the server's closing)"));
      for (auto& t : clients) t.cancel();
      canceller.cancel();
      server_chaos.cancel();
      closer.cancel();
      asyncio::gather(asyncio::return_exceptions, clients);
      asyncio::gather(asyncio::return_exceptions, canceller, server_chaos, closer);
    }
    // Nothing left pending but this task (the server's acceptor and handlers are done).
    const asyncio::AnyTask me = asyncio::current_task();
    for (const asyncio::AnyTask& t : asyncio::all_tasks()) {
      if (!(t == me)) wd.failures.push_back("a task still pending at the end: " + t.repr());
    }
    wd.conns.clear();
  });
  const int fds_after = open_fd_count();

  // No SCOPED_TRACE: gtest keeps its trace stack's buffer, which the fixture's leak check counts.
  const std::string tag = "seed " + std::to_string(seed) +
                          " (GREENLET_CHAOS_SEEDS=1 GREENLET_CHAOS_SEED_BASE=" + std::to_string(seed) +
                          " replays its plan): ";
  // At most as many as before: a thread of an earlier test in this process (the child reaper) may
  // close its own descriptors meanwhile, but nothing here opens one that outlives the loop.
  EXPECT_LE(fds_after, fds_before) << tag << "descriptors leaked";
  for (const std::string& f : wd.failures) ADD_FAILURE() << tag << f;
  if (std::getenv("GREENLET_CHAOS_VERBOSE") != nullptr) {
    std::printf("seed %u: %d clients, close kind %d at %.4f s, %d client cancels, %d server acts, %.3f s\n", seed, n,
                close_kind, close_at, client_cancels, server_acts,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    for (std::size_t i = 0; i < wd.clients.size(); ++i) {
      const client_record& rec = wd.clients[i];
      std::printf("  %zu %s: %s%s%s%s %s\n", i, mode_name(rec.plan.m), outcome_name(rec.out),
                  rec.disturbed ? " disturbed" : "", rec.handled ? " handled" : "",
                  rec.cancel_requested ? " cancel-requested" : "", rec.detail.c_str());
    }
  }
  for (std::size_t i = 0; i < wd.clients.size(); ++i) {
    const client_record& rec = wd.clients[i];
    const std::string who = tag + "client " + std::to_string(i) + " (" + mode_name(rec.plan.m) + "): ";
    stats.timeouts += rec.timeouts;
    switch (rec.out) {
      case outcome::ok: ++stats.ok; break;
      case outcome::refused:
        ++stats.refused;
        EXPECT_TRUE(rec.excused) << who << "refused before the server closed: " << rec.detail;
        break;
      case outcome::lost:
        ++stats.lost;
        EXPECT_TRUE(rec.excused) << who << "connection lost though the server left it alone: " << rec.detail;
        break;
      case outcome::cancelled:
        ++stats.cancelled;
        EXPECT_TRUE(rec.cancel_requested) << who << "cancelled by nobody";
        break;
      case outcome::pending:
      case outcome::wrong: ADD_FAILURE() << who << outcome_name(rec.out) << ": " << rec.detail;
    }
  }
  stats.handler_losses = wd.handler_losses;
  stats.idle_timeouts = wd.idle_timeouts;
  stats.half_checked = wd.half_checked;
  return stats;
}

std::vector<std::uint32_t> seeds() {
  if (const char* n = std::getenv("GREENLET_CHAOS_SEEDS")) {
    const char* base = std::getenv("GREENLET_CHAOS_SEED_BASE");
    const std::uint32_t first = base != nullptr ? static_cast<std::uint32_t>(std::strtoul(base, nullptr, 10)) : 1;
    std::vector<std::uint32_t> out;
    for (std::uint32_t i = 0; i < static_cast<std::uint32_t>(std::strtoul(n, nullptr, 10)); ++i)
      out.push_back(first + i);
    return out;
  }
  return {1, 2, 5, 7, 8, 9};  // every way the server ends (close_clients, abort_clients, plain, after the clients)
}

void run_seeds(bool protocols) {
  run_stats total;
  for (std::uint32_t seed : seeds()) {
    const run_stats s = run_chaos(seed, protocols);
    total.ok += s.ok;
    total.refused += s.refused;
    total.lost += s.lost;
    total.cancelled += s.cancelled;
    total.timeouts += s.timeouts;
    total.handler_losses += s.handler_losses;
    total.idle_timeouts += s.idle_timeouts;
    total.half_checked += s.half_checked;
    if (::testing::Test::HasFailure()) break;  // one seed's report is enough to read
  }
  // The runs exercised what they are about.
  EXPECT_GT(total.ok, 0);
  EXPECT_GT(total.timeouts, 0);
  EXPECT_GT(total.half_checked, 0);
  std::printf(
      "chaos (%s): ok %d refused %d lost %d cancelled %d read-timeouts %d handler-losses %d idle-timeouts %d "
      "half-close-checks %d\n",
      protocols ? "protocols" : "streams", total.ok, total.refused, total.lost, total.cancelled, total.timeouts,
      total.handler_losses, total.idle_timeouts, total.half_checked);
}

TEST_F(ServerChaos, StreamServerUnderRandomClientsCancellationsAndShutdown) { run_seeds(false); }

TEST_F(ServerChaos, ProtocolServerUnderRandomClientsCancellationsAndShutdown) { run_seeds(true); }

}  // namespace server_chaos_a
