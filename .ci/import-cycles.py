"""Fails when two source files of one crate import each other, directly or through others.

A file's imports are the crate paths it names outside comments (`crate::a::b`, `super::x`,
and the names inside `use crate::{...}` groups) and its child modules it names by relative
path (`group_commit::Counts`), each resolved to the file that defines that module. Declaring
a child (`mod x;`) is not an import; nothing imports the crate root. Usage: python3
.ci/import-cycles.py CRATE_SRC_DIR...
"""

import os
import re
import sys


def module_files(src):
    """{module path tuple: file} for every .rs file under src (lib.rs/main.rs is the root)."""
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            files.setdefault(tuple(parts), path)
    return files


def code(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def expand_groups(text):
    """`crate::{a, b::{c}}` -> `crate::a crate::b::c` (enough for import paths)."""
    pattern = re.compile(r"\b(\w+(?:::\w+)*)::\{([^{}]*)\}")
    while True:
        new = pattern.sub(
            lambda m: " ".join(f"{m.group(1)}::{part.strip()}" for part in m.group(2).split(",") if part.strip()),
            text,
        )
        if new == text:
            return text
        text = new


def resolve(path, here, files):
    parts = path.split("::")
    if parts[0] == "crate":
        base, parts = (), parts[1:]
    else:
        base = here
        while parts and parts[0] in ("super", "self"):
            if parts.pop(0) == "super":
                base = base[:-1]
    # The longest prefix that names a module file.
    for n in range(len(parts), 0, -1):
        module = base + tuple(parts[:n])
        if module in files:
            return module
    return None


def cycles(src):
    files = module_files(src)
    graph = {}
    for module, path in files.items():
        text = expand_groups(code(open(path).read()))
        targets = set()
        for m in re.finditer(r"\b(?:crate|super)(?:::\w+)+", text):
            target = resolve(m.group(0), module, files)
            if target and target != module and target != ():
                targets.add(target)
        # A child module named by a relative path (`use group_commit::Counts` in mod.rs) is
        # imported by its parent: with an import back, that is a cycle too.
        for child in {m for m in files if len(m) == len(module) + 1 and m[: len(module)] == module}:
            if module and re.search(r"(?<![:\w])" + child[-1] + r"::", text):
                targets.add(child)
        graph[module] = targets
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return [[files[m] for m in cycle] for cycle in found]


problems = [c for src in sys.argv[1:] for c in cycles(src)]
for cycle in problems:
    print("import cycle: " + " -> ".join(cycle))
sys.exit(1 if problems else 0)
