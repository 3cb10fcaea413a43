#!/usr/bin/python3
"""Peak memory of tolk over long runs of junk input, next to a clean corpus (issue #9, item 3).

Junk is what a careless pipeline feeds a translator: random characters from many scripts, runs of one letter,
digits and punctuation, URL-like strings, lines from 1 to 300 characters. Every junk line makes new source and
target lengths, so anything tolk keeps per shape (oneDNN primitives, scratch buffers, caches) shows up as memory
that keeps growing. The junk is generated from a fixed seed, so every run sees the same lines.

For each --lines N the script translates the first N junk lines in one process and records its peak resident
memory (os.wait4's ru_maxrss), wall time and the line count of the output; the clean baseline is the first
--clean-lines lines of newstest2014 (English) from the data directory. The table gives each run's peak as a
multiple of the clean run's.

  /usr/bin/python3 scripts/bench/junk_memory.py --tolk build/tolk --model models/en-de \\
      --data ../shared/data --out work/bench/junk --lines 1000,10000,100000

Writes OUT/table.md, OUT/results.jsonl and the inputs and outputs under OUT/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

# Code point ranges junk lines draw from: Latin, Latin-1 and Latin Extended, Greek, Cyrillic, Arabic, Devanagari,
# CJK ideographs, Hiragana, Hangul, emoji, and the ASCII digits and punctuation.
RANGES = [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x391, 0x3C9), (0x410, 0x44F), (0x621, 0x64A),
          (0x905, 0x939), (0x4E00, 0x9FFF), (0x3041, 0x3096), (0xAC00, 0xD7A3), (0x1F600, 0x1F64F),
          (0x30, 0x39), (0x21, 0x2F)]


def junk_line(rng: random.Random) -> str:
    kind = rng.random()
    length = rng.randint(1, 300)
    if kind < 0.1:  # one character repeated
        return chr(rng.randint(0x21, 0x7E)) * length
    if kind < 0.2:  # URL-like
        parts = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(1, 12)))
                 for _ in range(rng.randint(2, 12))]
        return ("https://" + "/".join(parts) + "?" + "&".join(parts))[:length]
    # words of random characters from one or several scripts, separated by spaces
    scripts = rng.sample(RANGES, rng.randint(1, 4))
    out = []
    while len(out) < length:
        if out and rng.random() < 0.15:
            out.append(" ")
            continue
        lo, hi = rng.choice(scripts)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out).strip() or "?"


def write_junk(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(junk_line(rng) + "\n")


def run_measured(cmd: list[str]) -> dict:
    start = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    return {"rc": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tolk", default="build/tolk")
    ap.add_argument("--model", default="models/en-de")
    ap.add_argument("--data", type=Path, required=True, help="data directory with dev/wmt/newstest2014.en-de.en")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lines", default="1000,10000", help="junk line counts, one run each")
    ap.add_argument("--clean-lines", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--extra", default="", help="extra tolk options, e.g. '--beam 1 --workers 1'")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    counts = [int(x) for x in args.lines.split(",") if x]
    junk = args.out / f"junk.{max(counts)}.txt"
    write_junk(junk, max(counts), args.seed)
    clean_src = next((p for p in [args.data / "dev" / "wmt" / "newstest2014.en-de.en", args.data / "dev" / "newstest2014.en"]
                      if p.exists()), None)
    if clean_src is None:
        sys.exit(f"no newstest2014 English file under {args.data}/dev/wmt")
    clean = args.out / f"clean.{args.clean_lines}.txt"
    with open(clean_src, encoding="utf-8") as f, open(clean, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i >= args.clean_lines:
                break
            g.write(line)

    extra = args.extra.split()
    results = []
    with open(args.out / "results.jsonl", "w") as log:
        def measure(label: str, path: Path, n: int) -> dict:
            src = path
            if n < count_lines(path):
                src = args.out / f"{path.stem}.first{n}.txt"
                with open(path, encoding="utf-8") as f, open(src, "w", encoding="utf-8") as g:
                    for i, line in enumerate(f):
                        if i >= n:
                            break
                        g.write(line)
            out = args.out / f"{label}.{n}.out"
            cmd = [args.tolk, "-m", args.model, "-q", "-i", str(src), "-o", str(out), *extra]
            r = run_measured(cmd)
            r.update(label=label, lines=n, output_lines=count_lines(out) if out.exists() else 0,
                     command=" ".join(cmd))
            log.write(json.dumps(r) + "\n")
            log.flush()
            print(json.dumps(r), flush=True)
            return r

        base = measure("clean", clean, args.clean_lines)
        for n in counts:
            results.append(measure("junk", junk, n))

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"CPU: {cpu}, {os.cpu_count()} logical cores; tolk options: {args.extra or '(defaults)'}", "",
             "| input | lines | output lines | wall s | peak RSS MiB | x clean |", "|---|---|---|---|---|---|",
             f"| newstest2014 (clean) | {base['lines']:,} | {base['output_lines']:,} | {base['wall_s']} | "
             f"{base['peak_rss_mib']} | 1.00 |"]
    for r in results:
        lines.append(f"| junk (seed {args.seed}) | {r['lines']:,} | {r['output_lines']:,} | {r['wall_s']} | "
                     f"{r['peak_rss_mib']} | {r['peak_rss_mib'] / base['peak_rss_mib']:.2f} |")
    lines += ["", "command: " + " ".join([sys.executable, *sys.argv])]
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    bad = [r for r in [base, *results] if r["rc"] != 0 or r["output_lines"] != r["lines"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
