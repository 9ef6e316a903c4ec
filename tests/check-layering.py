#!/usr/bin/env python3
"""The direction of includes and calls between the parts of the tree.

- src/common includes only its own headers; src/lib only its own and
  src/common's; src/ctl only its own and src/common's.
- No object of the library refers to a symbol the daemon defines.
- Among the daemon's files, no two call each other both ways; and apart
  from conn.c handing a request to the dispatcher (rpc/dispatch.c), calls
  only go one way: the graph of calls between files has no cycle.

Calls are read from the built objects (nm), so the build directory is
the current one (as under `make check`) or the first argument; sources
from $srcdir or the second. Exit 77 (skip) when the objects are not built.
"""
import collections
import os
import re
import subprocess
import sys

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
SRC = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("srcdir", "."))
# The one call that goes up: a request read from a connection is handed
# to the handlers.
ALLOWED_UP = {("conn", "rpc/dispatch")}
# sandboxctl doctor runs the host checks itself when the daemon is down.
CTL_LIB_INCLUDES = {("cmd_doctor.c", "hostcheck.h"), ("cmd_doctor.c", "netlink.h")}

problems = []


def includes(path):
    with open(path, errors="replace") as f:
        return re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read(), re.M)


def check_includes(part, allowed_dirs):
    top = os.path.join(SRC, "src", part)
    for root, _, files in os.walk(top):
        for name in files:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            for inc in includes(path):
                if inc == "config.h":
                    continue
                here = os.path.join(root, inc)
                if os.path.exists(here):
                    continue
                if part == "ctl" and (name, inc) in CTL_LIB_INCLUDES:
                    continue
                if not any(os.path.exists(os.path.join(SRC, "src", d, inc)) for d in allowed_dirs):
                    problems.append("%s includes \"%s\", which is not in %s"
                                    % (os.path.relpath(path, SRC), inc, " or ".join("src/" + d for d in allowed_dirs)))


def nm(path):
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TDBRCW":
            defined.add(f[2])
        elif len(f) == 2 and f[0] == "U":
            undefined.add(f[1])
    return defined, undefined


def daemon_objects():
    """(name, object path) of every daemon source, from Makefile.am."""
    with open(os.path.join(SRC, "Makefile.am")) as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(r"^src_sandboxd_SOURCES\s*=(.*)$", text, re.M)
    objs = []
    for src in m.group(1).split():
        if not src.endswith(".c"):
            continue
        rel = os.path.relpath(src, "src/daemon")[:-2]
        d, base = os.path.split(src[:-2])
        objs.append((rel, os.path.join(BUILD, d, "sandboxd-%s.o" % base)))
    return objs


def find_cycle(graph):
    """Some cycle of graph (a list of nodes), or None."""
    state, stack = {}, []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state:
                c = visit(w)
                if c:
                    return c
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            c = visit(v)
            if c:
                return c
    return None


def main():
    check_includes("common", ["common"])
    check_includes("lib", ["lib", "common"])
    check_includes("ctl", ["ctl", "common"])

    objs = daemon_objects()
    lib = os.path.join(BUILD, "src", "libsbx.a")
    missing = [o for _, o in objs if not os.path.exists(o)] + ([] if os.path.exists(lib) else [lib])
    if missing:
        print("SKIP: check-layering: not built: %s" % ", ".join(missing[:3]))
        return 77

    defs, undefs = {}, {}
    for name, obj in objs:
        defs[name], undefs[name] = nm(obj)
    daemon_defined = {s: n for n, d in defs.items() for s in d}
    _, lib_undefined = nm(lib)
    for sym in sorted(lib_undefined & set(daemon_defined)):
        problems.append("the library calls %s, which the daemon defines (%s.c)" % (sym, daemon_defined[sym]))

    calls = collections.defaultdict(dict)
    for a in defs:
        for sym in undefs[a]:
            b = daemon_defined.get(sym)
            if b and b != a:
                calls[a].setdefault(b, []).append(sym)
    for a in sorted(calls):
        for b in sorted(calls[a]):
            if a < b and a in calls.get(b, {}):
                problems.append("%s.c and %s.c call each other: %s.c calls %s; %s.c calls %s"
                                % (a, b, a, ", ".join(sorted(calls[a][b])[:4]), b, ", ".join(sorted(calls[b][a])[:4])))
    down = {a: {b for b in calls[a] if (a, b) not in ALLOWED_UP} for a in calls}
    cycle = find_cycle(down)
    if cycle:
        problems.append("a circle of calls: %s" % " -> ".join(c + ".c" for c in cycle))

    for p in problems:
        print("check-layering: %s" % p)
    edges = sum(len(v) for v in calls.values())
    print("check-layering: %d daemon files, %d one-way call edges, %s"
          % (len(defs), edges, "%d problem(s)" % len(problems) if problems else "no problem"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
