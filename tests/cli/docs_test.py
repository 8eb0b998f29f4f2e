"""The documentation names flags that exist: every `fcn VERB ... --flag` written in README.md, docs/*.md,
scripts/*.sh and the tool's own help examples is checked against the verb's option list (`fcn VERB --help`,
its Options section only, so an example cannot vouch for itself), and a value given to a flag with listed
choices (`--dtype TEXT:{fp32,bf16}`) against those choices. A renamed or removed flag then fails
here instead of in a reader's terminal.

Run as: /usr/bin/python3 docs_test.py PATH/TO/fcn REPO_ROOT
"""
import glob
import os
import re
import subprocess
import sys

from harness import FCN, check, summary

ROOT = sys.argv[2]
_help = {}


def help_of(words):
    """(option names, subcommand names) of `fcn WORDS --help`; None where the verb does not exist."""
    key = tuple(words)
    if key not in _help:
        p = subprocess.run([FCN, *words, "--help"], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            _help[key] = None
        else:
            options, subcommands, section = {}, set(), None
            for line in p.stdout.splitlines():
                if re.match(r"^\S.*:$", line):  # "Options:", "Subcommands:", "Positionals:"
                    section = line[:-1]
                    continue
                if section == "Options":
                    m = re.match(r"^\s{2}((?:-\w,)?--[\w-]+(?:,--[\w-]+)*)(?:\s+[A-Z]+:\{([^}]*)\})?", line)
                    if m:  # a flag's name(s), and its choices where CLI11 checks them ("TEXT:{fp32,bf16}")
                        choices = set(m.group(2).split(",")) if m.group(2) else None
                        options.update((n, choices) for n in m.group(1).split(",") if n.startswith("--"))
                elif section == "Subcommands":
                    m = re.match(r"^\s{2}([a-z][\w-]*)\s", line)
                    if m:
                        subcommands.add(m.group(1))
            _help[key] = (options, subcommands)
    return _help[key]


# A command starts its piece: environment settings, a launcher and a build folder may come first.
COMMAND = re.compile(r"^(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:(?:time|nohup|exec|taskset -c \S+)\s+)?"
                     r"(?:\S*build[\w.-]*/|\./)?fcn\s+([a-z][\w-]*(?:\s+.*)?)$")


def commands_in(text):
    """The fcn command lines of a text: fenced blocks (with \\ continuations), inline code, script lines."""
    fragments = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
        fragments += block.replace("\\\n", " ").splitlines()
    fragments += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    commands = []
    for fragment in fragments:
        for piece in re.split(r"\|\||&&|[|;]|\$\(", fragment):
            m = COMMAND.match(piece.strip())
            if m:
                commands.append(m.group(1).split())
    return commands


def problems_of(source, command):
    words = [command[0]]
    found = help_of(words) if command[0] in help_of([])[1] else None
    if found is None:  # prose ("| fcn ms |") is no command; a word followed by flags is meant as one
        return [f"{source}: 'fcn {command[0]}' is not a verb"] if any(w.startswith("--") for w in command) else []
    rest = command[1:]
    while rest and rest[0] in found[1]:  # fcn data check ...
        words.append(rest.pop(0))
        found = help_of(words)
    options, problems = found[0], []
    for i, word in enumerate(rest):
        if not re.match(r"--[a-z][\w-]*", word):
            continue
        flag = re.match(r"--[\w-]+", word).group(0)
        if flag not in options:
            problems.append(f"{source}: 'fcn {' '.join(words)}' has no {flag}")
            continue
        value = word.split("=", 1)[1] if "=" in word else rest[i + 1] if i + 1 < len(rest) else ""
        if options[flag] and value and not value.startswith("-") and not re.search(r"[$<>{}\[\]*|'\"`]|\.\.\.", value):
            problems += [f"{source}: 'fcn {' '.join(words)} {flag} {value}': {v} is not one of {sorted(options[flag])}"
                         for v in value.split(",") if v not in options[flag]]
    return problems


def sources():
    for pattern in ("README.md", "docs/*.md", "scripts/*.sh", "apps/fcn/*.cpp"):
        for file in sorted(glob.glob(os.path.join(ROOT, pattern))):
            text = open(file, encoding="utf-8").read()
            if file.endswith(".sh"):  # "$FCN" train ..., build/fcn bench ...: one command per line, comments left out
                lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
                text = "```\n" + re.sub(r'"?\$\{?FCN\}?"?\s', "fcn ", "\n".join(lines)) + "\n```"
            elif file.endswith(".cpp"):  # the help examples: "  example: fcn ..." inside string literals
                text = "```\n" + "\n".join(re.findall(r"example: (fcn [^\"\\]+)", text)) + "\n```"
            yield os.path.relpath(file, ROOT), text


@check("every fcn command in the docs, scripts and help examples names only flags its verb has, with values among their choices")
def _():
    count, problems = 0, []
    for source, text in sources():
        for command in commands_in(text):
            count += 1
            problems += problems_of(source, command)
    assert count > 100, f"only {count} commands found: the extraction broke"
    assert not problems, "\n".join(sorted(set(problems)))


@check("every verb of fcn --help is shown as a command in README.md")
def _():
    shown = {command[0] for command in commands_in(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read())}
    verbs = help_of([])[1]
    assert len(verbs) >= 10, verbs
    assert verbs <= shown, f"README.md shows no command of: {sorted(verbs - shown)}"


@check("the checker can fail: a made-up flag and a made-up verb are caught")
def _():
    assert problems_of("x", ["train", "--epochs", "1", "--no-such-flag"]) == ["x: 'fcn train' has no --no-such-flag"]
    assert problems_of("x", ["data", "check", "d", "--json"]) == []
    assert problems_of("x", ["data", "check", "--epochs", "1"]) == ["x: 'fcn data check' has no --epochs"]
    assert problems_of("x", ["trian", "--epochs", "1"]) == ["x: 'fcn trian' is not a verb"]
    # A value outside a flag's choices (as fcn VERB --help lists them) is caught; lists and placeholders are not values.
    assert problems_of("x", ["bench", "--dtype", "fp16"]) == \
        ["x: 'fcn bench --dtype fp16': fp16 is not one of ['bf16', 'fp32']"]
    assert problems_of("x", ["predict", "m.fcn", "a.png", "--tta", "flip,rot180"]) == \
        ["x: 'fcn predict --tta flip,rot180': rot180 is not one of ['flip', 'rot90']"]
    assert problems_of("x", ["predict", "m.fcn", "a.png", "--tta", "flip,rot90", "--dtype", "$DTYPE"]) == []
    assert commands_in("run `fcn eval a.fcn --data d | tail` then\n```\nfcn bench \\\n  --peers\n```") == \
        [["bench", "--peers"], ["eval", "a.fcn", "--data", "d"]]


summary()
