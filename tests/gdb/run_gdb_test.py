#!/usr/bin/env python3
# run_gdb_test.py: runs gdb_target under gdb with tools/gdb/greenlet.py loaded,
# stops at gdb_marker(), and checks `info greenlets` and `greenlet bt` output.
# Exits 77 (CTest's skip code here) when gdb cannot run the program at all.
import argparse
import os
import re
import subprocess
import sys
import tempfile

SKIP = 77


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gdb", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--program", required=True)
    args = parser.parse_args()

    commands = f"""
set pagination off
set confirm off
set debuginfod enabled off
source {args.script}
break gdb_marker
run
echo ==INFO==\\n
info greenlets
echo ==BT-ALPHA==\\n
python gdb.execute("greenlet bt " + str(int(gdb.parse_and_eval("(unsigned long long)(1ULL << 40) + 1"))))
echo ==BT-BETA-SERIAL==\\n
greenlet bt 2
echo ==BT-UNSTARTED==\\n
python
try:
    gdb.execute("greenlet bt 3")
except gdb.error as error:
    print("error:", error)
end
echo ==AFTER==\\n
bt 1
echo ==DONE==\\n
continue
"""
    with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as f:
        f.write(commands)
        command_file = f.name
    # LeakSanitizer cannot run under ptrace: in ASan builds it would fail the program at exit.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    proc = subprocess.run([args.gdb, "-nx", "-batch", "-x", command_file, args.program], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=100)
    os.unlink(command_file)
    out = proc.stdout
    print(out)

    if re.search(r"ptrace: Operation not permitted|Could not trace the inferior|"
                 r"personality: Operation not permitted.*\n.*ptrace", out):
        print("SKIP: gdb cannot trace processes here")
        return SKIP

    def section(name):
        m = re.search(r"==%s==\n(.*?)(?===[A-Z-]+==)" % name, out, re.S)
        return m.group(1) if m else ""

    failures = []

    def check(pattern, text, what):
        if not re.search(pattern, text, re.M):
            failures.append(f"{what}: no match for /{pattern}/")

    info = section("INFO")
    # Ids: the first thread's main greenlet is 1 << 40; alpha, beta, gamma and
    # delta are that plus 1..4 in creation order.
    main_id = 1 << 40
    check(r"^\*\s+%d\s+<main>\s+active \(running\)\s+-" % main_id, info, "info: main, current")
    check(r"^\s+%d\s+alpha\s+active \(suspended\)\s+%d\b" % (main_id + 1, main_id), info, "info: alpha")
    check(r"^\s+%d\s+beta\s+active \(suspended\)\s+%d\b" % (main_id + 2, main_id), info, "info: beta")
    check(r"^\s+%d\s+gamma-unstarted\s+unstarted\s+%d\b" % (main_id + 3, main_id), info, "info: gamma")
    check(r"^\s+%d\s+delta-dead\s+dead\s+%d\b" % (main_id + 4, main_id), info, "info: delta")

    alpha = section("BT-ALPHA")
    # alpha parked three calls deep: park_here(0) <- park_here(1) <- park_here(2) <- worker_body.
    check(r"#\d+\s+.*park_here.*depth=0", alpha, "bt alpha: innermost park_here")
    check(r"#\d+\s+.*park_here.*depth=2", alpha, "bt alpha: outer park_here")
    check(r"#\d+\s+.*worker_body", alpha, "bt alpha: worker_body")
    if "gdb_marker" in alpha or re.search(r"\bmain \(\)", alpha):
        failures.append("bt alpha shows the main stack, not the greenlet's")

    beta = section("BT-BETA-SERIAL")
    check(r"#\d+\s+.*park_here.*depth=0", beta, "bt beta: park_here")
    check(r"#\d+\s+.*worker_body", beta, "bt beta: worker_body")
    if len(re.findall(r"park_here", beta)) != 1:
        failures.append("bt beta: expected exactly one park_here frame")

    check(r"is unstarted: it has no stack", section("BT-UNSTARTED"), "bt of an unstarted greenlet")
    # The real registers are back: the thread is still stopped in gdb_marker.
    check(r"#0\s+.*gdb_marker", section("AFTER"), "registers restored")
    check(r"exited normally", out, "program finished after the checks")

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
