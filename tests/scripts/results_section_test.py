"""scripts/results_section.py keeps what it does not own: make demo replaces the head of docs/results.md,
make table1 and make unet-demo their own sections; every other section, those written by hand from a bench/
script included, stays word for word (make demo used to write the file anew and dropped a hand-written one).

    python3 tests/scripts/results_section_test.py REPO"""
import os
import subprocess
import sys
import tempfile

script = os.path.join(sys.argv[1], "scripts", "results_section.py")
with tempfile.TemporaryDirectory() as tmp:
    results = os.path.join(tmp, "results.md")
    original = ("# Results\n\nold demo table\n\n"
                "<!-- table1: written by scripts/table1.sh -->\n## Table 1\nold table 1\n\n"
                "<!-- unet-demo: written by scripts/unet-demo.sh -->\n## Touching objects\nold unet\n\n"
                "<!-- foreground: written by hand from the output of bench/foreground.sh -->\n## Small structures\nby hand\n")
    open(results, "w").write(original)

    def replace(name, body):
        section = os.path.join(tmp, name + ".md")
        open(section, "w").write(body)
        subprocess.run([sys.executable, script, results, name, section], check=True)
        return open(results).read()

    text = replace("demo", "# Results\n\nnew demo table\n")
    assert text == original.replace("old demo table", "new demo table"), text
    text = replace("unet-demo", "## Touching objects\nnew unet\n")
    assert text == original.replace("old demo table", "new demo table").replace("old unet", "new unet"), text
    assert text.endswith("## Small structures\nby hand\n") and text.count("<!--") == 3, text
    text = replace("table2", "## Table 2\nnew\n")  # a new section goes at the end
    assert text.endswith("by hand\n\n<!-- table2: written by scripts/table2.sh -->\n## Table 2\nnew\n"), text
    os.remove(results)
    assert replace("demo", "# Results\nonly\n") == "# Results\nonly\n"  # no file yet: the head alone
print("results sections kept: ok")
