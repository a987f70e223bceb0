// process_stats.hpp: what the kernel says about this process, for tests
// that check a resource stays bounded (stack slabs, a million tasks,
// descriptors, threads).
#pragma once

#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace greenlet_test {

// kernel_mappings() is the number of memory mappings the process holds (the
// lines of /proc/self/maps), which Linux bounds by vm.max_map_count.
inline long kernel_mappings() {
  std::ifstream maps("/proc/self/maps");
  long lines = 0;
  std::string line;
  while (std::getline(maps, line)) ++lines;
  return lines;
}

// open_fd_count() is how many descriptors the process has open (the
// entries of /proc/self/fd, less the directory's own).
inline int open_fd_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n - 3;  // ".", ".." and the directory's own fd
}

// thread_count() is how many threads the process has (the entries of
// /proc/self/task). A thread just joined may be listed a moment longer, so
// a later count is compared with a baseline as "at most". Its first call
// starts and joins a thread: ThreadSanitizer starts a thread of its own with
// the process's first, which a test run alone (or first) would otherwise
// count as one it left running, its baseline taken before any thread.
inline int thread_count() {
  static const bool sanitizer_thread_started = [] {
    std::thread([] {}).join();
    return true;
  }();
  (void)sanitizer_thread_started;
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

// max_map_count() is Linux's limit on those mappings (vm.max_map_count).
inline long max_map_count() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  long value = 0;
  in >> value;
  return value;
}

// process_state(pid) is pid's state letter ('Z': a zombie) if it is still
// a child of this process, else 0: gone, or the number reused by someone
// else's process. Read from /proc, not waitpid(), which would reap it.
inline char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const auto name_end = stat.rfind(')');  // the name may hold spaces
  if (name_end == std::string::npos) return 0;
  std::istringstream rest(stat.substr(name_end + 1));
  char state = 0;
  pid_t parent = 0;
  rest >> state >> parent;
  return parent == ::getpid() ? state : 0;
}

}  // namespace greenlet_test
