#!/usr/bin/env python3
"""Generates a capture with every reset cause and checks rstscope's verdicts against its truth file.

usage: accuracy.py GENERATOR RSTSCOPE [--packets N] [--minimum FRACTION]
A verdict agrees when its cause is the intended one, or when the intended one is among the
causes the finding says it cannot rule out (its alternatives).
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("generator")
    parser.add_argument("rstscope")
    parser.add_argument("--packets", type=int, default=1000000)
    parser.add_argument("--connections", type=int, default=40000)
    parser.add_argument("--minimum", type=float, default=0.97)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rstscope-accuracy-") as folder:
        capture = os.path.join(folder, "generated.pcap")
        subprocess.run([arguments.generator, "--packets", str(arguments.packets), "--connections",
                        str(arguments.connections), "--out", capture], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        truth = {}
        with open(capture + ".truth.tsv") as rows:
            next(rows)
            for row in rows:
                fields = row.rstrip("\n").split("\t")
                truth[int(fields[0])] = fields[1]
        report = subprocess.run([arguments.rstscope, "analyze", capture, "--format", "json", "--no-progress"],
                                check=True, capture_output=True, text=True).stdout
    total, agreed, exact = collections.Counter(), collections.Counter(), collections.Counter()
    confusions = collections.Counter()
    for line in report.splitlines():
        finding = json.loads(line)
        if finding["type"] != "reset" or truth.get(finding["frame"], "unlabelled") == "unlabelled":
            continue
        intended = truth[finding["frame"]]
        total[intended] += 1
        if finding["cause"] == intended:
            exact[intended] += 1
        if finding["cause"] == intended or intended in finding["alternatives"]:
            agreed[intended] += 1
        else:
            confusions[(intended, finding["cause"])] += 1
    print(f"{'cause':<25} {'agree':>7} {'exact':>7} {'of':>7}")
    for cause in sorted(total):
        print(f"{cause:<25} {agreed[cause]:>7} {exact[cause]:>7} {total[cause]:>7}")
    share = sum(agreed.values()) / max(1, sum(total.values()))
    print(f"agreement: {sum(agreed.values())} of {sum(total.values())} ({share:.1%}); "
          f"exact cause: {sum(exact.values())}")
    for (intended, said), count in confusions.most_common(5):
        print(f"  {count} {intended} judged {said}")
    missing = set(truth.values()) - set(total) - {"unlabelled"}
    if missing:
        print(f"causes the report never judged: {sorted(missing)}")
        return 1
    return 0 if share >= arguments.minimum else 1


if __name__ == "__main__":
    sys.exit(main())
