// ucontext_start.hpp: the ucontext peer's setup, shared by switch_bench and
// generator_bench. makecontext() passes only int arguments, so a pointer to
// the peer's state goes over as two 32-bit halves and is put back together
// by pointer_from_halves() in the entry function.
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <cstdint>

namespace bench_ucontext {

// prepare(ctx, back, stack, size, entry, arg) makes ctx run entry(hi, lo) on
// stack (size bytes), with back as its uc_link; entry gets arg back from
// pointer_from_halves(hi, lo).
inline void prepare(ucontext_t& ctx, ucontext_t& back, char* stack, std::size_t size, void (*entry)(unsigned, unsigned),
                    void* arg) {
  getcontext(&ctx);
  ctx.uc_stack.ss_sp = stack;
  ctx.uc_stack.ss_size = size;
  ctx.uc_link = &back;
  const auto addr = reinterpret_cast<std::uintptr_t>(arg);
  makecontext(&ctx, reinterpret_cast<void (*)()>(entry), 2, static_cast<unsigned>(addr >> 32),
              static_cast<unsigned>(addr & 0xffffffffu));
}

template <class T>
T* pointer_from_halves(unsigned hi, unsigned lo) {
  return reinterpret_cast<T*>((static_cast<std::uintptr_t>(hi) << 32) | lo);
}

}  // namespace bench_ucontext
