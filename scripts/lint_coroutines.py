#!/usr/bin/env python3
"""Flags C++20 coroutine code that gcc 12 (Debian 12) miscompiles with Boost.Asio awaitables.

Found by probes on this toolchain (docs/architecture.md, "Coroutine rules"):
  1. co_await inside a condition (if/while/for/switch, ?:, &&, ||, !): the frame is resumed
     in a bad state (SIGILL or a coroutine that never completes). Assign to a local first.
  2. a class temporary built in the arguments of a co_await'ed call, e.g. co_await f(T{...})
     or co_await f(T(...)): destroyed twice. Name it, then std::move it.
  3. lambda coroutines, and capturing lambdas written in the arguments of a co_await'ed call
     (their captures were destroyed twice): name the lambda first.
Usage: lint_coroutines.py DIR...   Exit status 1 when anything is flagged.
"""
import os
import re
import sys

CONDITION = re.compile(r"\b(if|while|for|switch)\s*\(")
OPERATOR_AWAIT = re.compile(r"(\?|&&|\|\||!)\s*co_await\b")
AWAIT_CALL = re.compile(r"co_await\s+[\w:.\->*]+\(")
TEMPORARY = re.compile(r"(?<![\w:])([A-Z]\w*)\s*[({]")
# A lambda with captures written in the arguments: its captures were freed twice (gcc 12).
CAPTURING_LAMBDA = re.compile(r"\[[^\]\[]+\]\s*(\([^)]*\)\s*)?(mutable\s*)?(->[^{]*)?\{")
LAMBDA_CORO = re.compile(r"\[[^\]]*\]\s*\([^)]*\)\s*(mutable\s*)?->\s*(boost::)?(asio::awaitable|Task)\b")


def strip(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    return line.split("//", 1)[0]


def balanced(text, start):
    """Text inside the parenthesis opening at text[start], or None when it does not close."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return None


def statements(path):
    """(line number, statement text) with statements joined across lines."""
    buf, first = "", 0
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = strip(raw).strip()
            if not line or line.startswith("#"):
                continue
            if not buf:
                first = n
            buf += " " + line
            if line.endswith((";", "{", "}")) or len(buf) > 2000:
                yield first, buf
                buf = ""
    if buf:
        yield first, buf


def check(path):
    problems = []
    for n, stmt in statements(path):
        if LAMBDA_CORO.search(stmt):
            problems.append((n, "lambda coroutine"))
        if "co_await" not in stmt:
            continue
        for m in CONDITION.finditer(stmt):
            inside = balanced(stmt, m.end() - 1)
            if inside is not None and "co_await" in inside:
                problems.append((n, "co_await inside a %s condition" % m.group(1)))
        if OPERATOR_AWAIT.search(stmt):
            problems.append((n, "co_await as an operand of ?:, &&, || or !"))
        for m in AWAIT_CALL.finditer(stmt):
            args = balanced(stmt, m.end() - 1) or ""
            for t in TEMPORARY.finditer(args):
                problems.append((n, "temporary %s(...) in a co_await'ed call's arguments" % t.group(1)))
            if CAPTURING_LAMBDA.search(args):
                problems.append((n, "capturing lambda in a co_await'ed call's arguments"))
    return problems


def main(dirs):
    bad = 0
    for d in dirs:
        if os.path.isfile(d):
            for n, what in check(d):
                print("%s:%d: %s" % (d, n, what))
                bad += 1
            continue
        for root, _, files in os.walk(d):
            for name in sorted(files):
                if name.endswith((".cpp", ".h")):
                    path = os.path.join(root, name)
                    for n, what in check(path):
                        print("%s:%d: %s" % (path, n, what))
                        bad += 1
    if bad:
        print("%d coroutine rule violation(s); see docs/architecture.md" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["."]))
