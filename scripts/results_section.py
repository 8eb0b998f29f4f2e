"""Replaces (or appends) one generated section of docs/results.md.

    python3 scripts/results_section.py RESULTS NAME SECTION_FILE

A section starts at the line `<!-- NAME: written by ... -->` and runs to the next such marker or the
end of the file, so make demo, make table1 and make unet-demo each keep the others' sections, and
sections written by hand (marked the same way) stay. NAME `demo` is the head of the file, before the
first marker: make demo's own part, unmarked."""
import re
import sys

results, name, section = sys.argv[1:]
text = open(results).read() if __import__("os").path.exists(results) else ""
marker = re.compile(r"^<!-- ([a-z0-9-]+): written by .* -->$", re.M)
parts, last, current = [], 0, None
for m in marker.finditer(text):
    parts.append((current, text[last:m.start()]))
    current, last = m.group(1), m.start()
parts.append((current, text[last:]))
body = open(section).read().rstrip() + "\n"
head = name == "demo"
new = body if head else f"<!-- {name}: written by scripts/{name}.sh -->\n" + body
out, replaced = [], False
for key, chunk in parts:
    if key == (None if head else name):
        out.append(new + "\n")
        replaced = True
    else:
        out.append(chunk.rstrip() + "\n\n" if chunk.strip() else "")
if not replaced:
    out.append(new)  # (the head is parts' first, so never missing)
open(results + ".tmp", "w").write("".join(out).rstrip() + "\n")
__import__("os").replace(results + ".tmp", results)
