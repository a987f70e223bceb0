# greenlet.py: gdb commands for greenlet-cpp programs.
#
#   (gdb) source tools/gdb/greenlet.py
#   (gdb) info greenlets          # this thread's greenlets: id, name, state, parent
#   (gdb) greenlet bt ID [ARGS]   # backtrace of suspended greenlet ID (ARGS go to `bt`)
#
# `info greenlets` walks the current thread's registry: the thread_local
# greenlet::detail::tls_state (a thread_state*), its `main` greenlet, then the
# `registry_head` list of greenlet::detail::greenlet_impl linked through
# `registry_next`. The running greenlet (ts->current) is marked with `*`.
#
# `greenlet bt` reads the Boost.Context frame a suspended greenlet saved when
# it switched away (greenlet_impl::context). On x86-64 SysV (Boost 1.74 to
# 1.8x, jump_x86_64_sysv_elf_gas.S) that frame is:
#   +0x00 MXCSR and x87 control word   +0x08 r12   +0x10 r13   +0x18 r14
#   +0x20 r15   +0x28 rbx   +0x30 rbp   +0x38 return address (rip)
# and the stack pointer after the return is context + 0x40. The command loads
# those registers into the innermost frame, runs `bt`, and puts the real
# registers back, so it needs a live process (not a core file) and x86-64.
#
# Both read the library's debug information: build greenlet with -g (Debug or
# RelWithDebInfo, the default).

import gdb

_FRAME_REGISTERS = (
    ("r12", 0x08),
    ("r13", 0x10),
    ("r14", 0x18),
    ("r15", 0x20),
    ("rbx", 0x28),
    ("rbp", 0x30),
)
_RETURN_ADDRESS_OFFSET = 0x38
_STACK_POINTER_OFFSET = 0x40
_THREAD_INDEX_SHIFT = 40  # greenlet ids are (thread index << 40) | serial


def _thread_state():
    """The current thread's greenlet::detail::thread_state*, or None."""
    for expression in ("greenlet::detail::tls_state", "'greenlet::detail::tls_state'"):
        try:
            ts = gdb.parse_and_eval(expression)
            break
        except gdb.error as error:
            last_error = error
    else:
        raise gdb.GdbError(
            "cannot read greenlet::detail::tls_state (%s); is the greenlet library built with -g "
            "and is the program running?" % last_error)
    if int(ts) == 0:
        return None
    return ts


def _string(value):
    """A std::string's text, for libstdc++ and libc++ alike."""
    try:
        pointer = value["_M_dataplus"]["_M_p"]
        length = int(value["_M_string_length"])
        return pointer.string(length=length) if length else ""
    except (gdb.error, UnicodeDecodeError):
        pass
    try:
        text = value.format_string(raw=False)
    except gdb.error:
        return "?"
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    return text


def _swapped_out(impl):
    """Whether a stack-copying greenlet's bytes are off the shared stack."""
    try:
        return bool(impl["detours"]["swapped_out"])  # greenlet_impl::detour_flags
    except gdb.error:
        pass
    try:
        return bool(int(impl["detours"]) & 1)  # a library where detours was one byte of bits
    except gdb.error:
        pass
    try:
        return bool(impl["swapped_out"])  # a library from before detours
    except gdb.error:
        return False  # a library from before stack copying


def _state_name(impl):
    """unstarted, active or dead, from greenlet_impl::state."""
    text = str(impl["state"])
    return text.rsplit("::", 1)[-1]


def _greenlets(ts):
    """The thread's main greenlet, then every registered one, by id."""
    result = []
    main = ts["main"]
    if int(main) != 0:
        result.append(main)
    others = []
    node = ts["registry_head"]
    seen = set()
    while int(node) != 0 and int(node) not in seen:
        seen.add(int(node))
        others.append(node)
        node = node["registry_next"]
    others.sort(key=lambda g: int(g["id"]))
    return result + others


def _find(ts, wanted):
    """The greenlet whose id is `wanted` (or whose serial within its thread is)."""
    matches = []
    for g in _greenlets(ts):
        gid = int(g["id"])
        if gid == wanted:
            return g
        if gid & ((1 << _THREAD_INDEX_SHIFT) - 1) == wanted and not bool(g["is_main"]):
            matches.append(g)
    if len(matches) == 1:
        return matches[0]
    raise gdb.GdbError("no greenlet %d in this thread; see `info greenlets`" % wanted)


class InfoGreenlets(gdb.Command):
    """List the current thread's live greenlets.

Usage: info greenlets
Prints each greenlet's id, name, state (unstarted, active or dead) and its
parent's id; `*` marks the one running now. The main greenlet comes first."""

    def __init__(self):
        super().__init__("info greenlets", gdb.COMMAND_STATUS)

    def invoke(self, argument, from_tty):
        ts = _thread_state()
        if ts is None:
            gdb.write("No greenlets: this thread has not used greenlet yet.\n")
            return
        current = int(ts["current"])
        rows = []
        for g in _greenlets(ts):
            parent = g["parent"]
            name = _string(g["name"])
            if bool(g["is_main"]) and not name:
                name = "<main>"
            state = _state_name(g)
            if state == "active" and int(g) != current:
                state = "active (suspended)"
                if _swapped_out(g):
                    state = "active (suspended, stack copied out)"
            elif int(g) == current:
                state = "active (running)"
            rows.append((
                "*" if int(g) == current else " ",
                str(int(g["id"])),
                name,
                state,
                str(int(parent["id"])) if int(parent) != 0 else "-",
                "0x%x" % int(g),
            ))
        headers = (" ", "Id", "Name", "State", "Parent", "Object")
        widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]
        for row in [headers] + rows:
            line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
            gdb.write(line.rstrip() + "\n")


class GreenletPrefix(gdb.Command):
    """Commands for greenlet-cpp programs: greenlet bt ID."""

    def __init__(self):
        super().__init__("greenlet", gdb.COMMAND_STACK, prefix=True)


class GreenletBacktrace(gdb.Command):
    """Backtrace of a suspended greenlet.

Usage: greenlet bt ID [BT-ARGUMENTS]
ID is a greenlet id from `info greenlets` (or its serial within the thread:
the id's low 40 bits). The registers the greenlet saved when it switched
away are loaded into the innermost frame for the length of one `bt` and then
restored. Needs a live x86-64 process."""

    def __init__(self):
        super().__init__("greenlet bt", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if not words:
            raise gdb.GdbError("usage: greenlet bt ID [BT-ARGUMENTS]")
        try:
            wanted = int(words[0], 0)
        except ValueError:
            raise gdb.GdbError("greenlet bt: '%s' is not a greenlet id" % words[0])
        bt_arguments = " ".join(words[1:])
        ts = _thread_state()
        if ts is None:
            raise gdb.GdbError("this thread has no greenlets")
        g = _find(ts, wanted)
        if int(g) == int(ts["current"]):
            gdb.write("greenlet %d is running: its stack is the thread's.\n" % int(g["id"]))
            gdb.execute("bt " + bt_arguments, from_tty)
            return
        state = _state_name(g)
        if state != "active":
            raise gdb.GdbError("greenlet %d is %s: it has no stack to show" % (int(g["id"]), state))
        arch = gdb.selected_frame().architecture().name()
        if "x86-64" not in arch:
            raise gdb.GdbError("greenlet bt reads x86-64 Boost.Context frames, not %s" % arch)
        if _swapped_out(g):
            raise gdb.GdbError(
                "greenlet %d runs on the shared stack (stack_mode::shared) and its bytes are copied out "
                "to the heap; its backtrace can be shown once it is switched to again" % int(g["id"]))
        context = int(g["context"])
        if context == 0:
            raise gdb.GdbError("greenlet %d has no saved context" % int(g["id"]))
        _backtrace_from(context, bt_arguments, from_tty)


def _read_word(inferior, address):
    return int.from_bytes(bytes(inferior.read_memory(address, 8)), "little")


def _backtrace_from(context, bt_arguments, from_tty):
    inferior = gdb.selected_inferior()
    new_values = {name: _read_word(inferior, context + offset) for name, offset in _FRAME_REGISTERS}
    new_values["rip"] = _read_word(inferior, context + _RETURN_ADDRESS_OFFSET)
    new_values["rsp"] = context + _STACK_POINTER_OFFSET

    selected = gdb.selected_frame()
    selected_level = selected.level() if hasattr(selected, "level") else None
    newest = gdb.newest_frame()
    newest.select()
    saved = {name: int(newest.read_register(name)) & 0xFFFFFFFFFFFFFFFF for name in new_values}
    try:
        # rip last: it is the one that decides where the unwinder starts.
        for name in [n for n in new_values if n != "rip"] + ["rip"]:
            gdb.newest_frame().select()
            gdb.execute("set $%s = %d" % (name, new_values[name]), to_string=True)
        gdb.execute("bt " + bt_arguments, from_tty)
    finally:
        for name in ["rip"] + [n for n in saved if n != "rip"]:
            gdb.newest_frame().select()
            gdb.execute("set $%s = %d" % (name, saved[name]), to_string=True)
        if selected_level:
            gdb.execute("frame %d" % selected_level, to_string=True)


InfoGreenlets()
GreenletPrefix()
GreenletBacktrace()
