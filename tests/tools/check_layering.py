#!/usr/bin/env python3
"""check_layering.py -- the architecture checks the build can prove (a ctest: unit/layering).

  check_layering.py SRC_DIR BUILD_DIR

1. No call loops between files: from the symbols each object of the daemons and libraries
   defines and uses (nm), an edge A -> B when A.c calls or reads something B.c defines; any
   cycle (a strongly connected set of two or more files) fails.
2. No include loops: the same over the project's own #include "..." lines.
3. common/ is a leaf: its objects use nothing defined outside common/ and the generated
   protobuf code (proto/).
Prints each violation on one line and exits 1; 0 when the tree is clean.
"""
import os
import re
import subprocess
import sys

TARGETS = ("gw_common", "gw_transport", "gw_migrate", "gw_vmm_core", "gw_agent_core",
           "gw_client", "gw_ctl_core", "gw_coord_state", "gw_planner", "godwit-agent", "godwit-vmm",
           "godwitctl", "godwit-coordinator", "gw_coord_core")


def objects(build):
    """source path (relative to SRC) -> object path, one object per source."""
    out = {}
    for t in TARGETS:
        d = os.path.join(build, "CMakeFiles", t + ".dir")
        for root, _, files in os.walk(d):
            for f in files:
                if f.endswith(".c.o"):
                    rel = os.path.relpath(os.path.join(root, f[:-2]), d)
                    out.setdefault(rel, os.path.join(root, f))
    return out


def symbols(obj):
    defined, used = set(), set()
    res = subprocess.run(["nm", obj], capture_output=True, text=True, check=True)
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRVW":
            defined.add(parts[2])
    return defined, used


def sccs(graph):
    """Tarjan: the strongly connected components with two or more nodes."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def call_graph(objs):
    owner, uses = {}, {}
    for src, obj in objs.items():
        d, u = symbols(obj)
        for s in d:
            owner.setdefault(s, src)
        uses[src] = u
    graph = {src: set() for src in objs}
    for src, u in uses.items():
        for s in u:
            dst = owner.get(s)
            if dst and dst != src:
                graph[src].add(dst)
    return graph


def include_graph(src_dir):
    files, graph = {}, {}
    for top in ("agent", "common", "coordinator", "transport", "proto"):
        for root, _, names in os.walk(os.path.join(src_dir, top)):
            for n in names:
                if n.endswith((".c", ".h")):
                    files.setdefault(n, os.path.relpath(os.path.join(root, n), src_dir))
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for name, rel in files.items():
        deps = set()
        with open(os.path.join(src_dir, rel), errors="replace") as f:
            for line in f:
                m = inc.match(line)
                if m and os.path.basename(m.group(1)) in files:
                    deps.add(files[os.path.basename(m.group(1))])
        deps.discard(rel)
        graph[rel] = deps
    return graph


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    src_dir, build = sys.argv[1], sys.argv[2]
    objs = objects(build)
    if len(objs) < 20:
        print(f"check_layering: only {len(objs)} objects under {build}: not a build dir?")
        return 1
    bad = 0
    cg = call_graph(objs)
    for comp in sccs(cg):
        print("call loop between files: " + " <-> ".join(comp))
        bad += 1
    for comp in sccs(include_graph(src_dir)):
        print("include loop between files: " + " <-> ".join(comp))
        bad += 1
    for src, deps in sorted(cg.items()):
        if src.startswith("common/"):
            for d in sorted(deps):
                if not d.startswith(("common/", "proto/")) and "pb-c" not in d:
                    print(f"common/ is not a leaf: {src} uses {d}")
                    bad += 1
    print(f"check_layering: {len(objs)} files, {sum(len(v) for v in cg.values())} call edges, "
          f"{bad} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
