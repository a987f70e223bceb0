// resident_bytes.hpp: what the memory benchmarks measure.
#pragma once

#include <malloc.h>
#include <unistd.h>

#include <fstream>

// resident_bytes() is the process's RSS (/proc/self/statm) after handing free heap memory back
// (malloc_trim), so that heap an earlier benchmark or repetition freed and this one reuses counts
// as this one's.
inline long resident_bytes() {
  malloc_trim(0);
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}
