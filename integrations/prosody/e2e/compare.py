#!/usr/bin/python3
"""Prints two suite outputs (with lastseen, stock) side by side as a
Markdown table: each step's verdict and what the client received."""
import sys


def steps(path):
    out = {}
    for line in open(path):
        parts = line.rstrip("\n").split(None, 2)
        if len(parts) >= 2 and parts[0] in ("ok", "FAIL"):
            out[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "")
    return out


a, b = steps(sys.argv[1]), steps(sys.argv[2])
print("| step | with mod_lastseen | stock Prosody 0.12 | differs |")
print("|---|---|---|---|")
cell = lambda v: ("**%s** `%s`" % (v[0], v[1][:160].replace("|", "\\|"))) if v else "(not run)"
for name in a:
    print("| %s | %s | %s | %s |" % (name, cell(a.get(name)), cell(b.get(name)),
                                    "yes" if a.get(name, ("",))[0] != b.get(name, ("",))[0] else "no"))
