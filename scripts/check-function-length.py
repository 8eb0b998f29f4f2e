#!/usr/bin/env python3
"""House style (docs/architecture.md): no function in src/ or apps/ longer than about 60 lines.

Usage: scripts/check-function-length.py [ROOT] [--limit N]   (standard library only; exit 1 on a violation)
Counts the lines of every function body at namespace or class level (lambdas count with the function
that holds them), after dropping comments, strings and preprocessor lines.
"""
import glob
import os
import re
import sys


def strip(src):
    src = re.sub(r'//[^\n]*', '', src)
    src = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group(0).count('\n'), src, flags=re.S)
    src = re.sub(r'"([^"\\\n]|\\.)*"', '""', src)
    src = re.sub(r"'([^'\\\n]|\\.)'", "''", src)
    return re.sub(r'^\s*#.*$', '', src, flags=re.M)


def long_functions(path, limit):
    src = strip(open(path).read())
    stack, line, last = [], 1, 0
    for i, ch in enumerate(src):
        if ch == '\n':
            line += 1
        elif ch == '{':
            before = src[last:i]
            kind = ('class' if re.search(r'\b(struct|class|union)\b[^;{}()]*$', before)
                    else 'namespace' if re.search(r'\bnamespace\b[^;{}]*$', before) else 'block')
            header = ' '.join(h.strip() for h in before.strip().split('\n')[-3:])
            stack.append((kind, line, header))
            last = i + 1
        elif ch == '}':
            kind, start, header = stack.pop()
            at_top = all(k in ('namespace', 'class') for k, _, _ in stack)
            if kind == 'block' and at_top and not re.search(r'\benum\b', header) and line - start + 1 > limit:
                yield line - start + 1, start, header[-80:]
            last = i + 1
        elif ch == ';':
            last = i + 1


def main():
    args = sys.argv[1:]
    limit = 65
    if '--limit' in args:
        k = args.index('--limit')
        limit = int(args[k + 1])
        del args[k:k + 2]
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
    files = sorted(glob.glob(os.path.join(root, 'src/fcn/**/*.cpp'), recursive=True) + glob.glob(os.path.join(root, 'apps/fcn/*.cpp')))
    found = [(os.path.relpath(f, root), n, start, header) for f in files for n, start, header in long_functions(f, limit)]
    for path, n, start, header in found:
        print(f"check-function-length: {path}:{start}: {n} lines (limit {limit}): {header}")
    print(f"check-function-length: {len(files)} files, {len(found)} function(s) over {limit} lines")
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
