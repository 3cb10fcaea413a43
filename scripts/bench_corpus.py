#!/usr/bin/env python3
"""A 100,000-line corpus with repeated sentences, translated by tolk with and without its sentence cache, and the
cost of resuming an interrupted --resume job.

The corpus is built from the source side of the dev sets (Multi30k test_2016_flickr, FLORES-200 dev, newstest2014,
newstest2019, found where scripts/evaluate.py finds them): their distinct lines form a pool, and each corpus line
is drawn from it with a Zipf-like popularity (weight 1/(rank + 10) over the shuffled pool, fixed seed), the shape
of crawled text, subtitles and UI strings, where a few lines are very frequent and most are rare. With only the
dev sets as the pool, almost every line of 100,000 is a repeat: the cache's best case, said as such in the report.

Measured, each as its own process, on the same input and options (default greedy, --beam 1, so the no-cache run
stays within minutes on two cores):
- wall seconds with the cache (the default) and with --no-cache, and that both outputs are byte-identical;
- resuming: a --resume run is interrupted (SIGINT) once its state records 99% of the lines (at most all but 4,096),
  then the same command
  is rerun and timed; the same remaining lines, as a file of their own, are translated without --resume and timed.
  The output must equal the uninterrupted one. Then the cost of resuming on its own: a --resume job whose part is
  only the last line (--shard L/L: the input and model hashed, the state written, L-1 lines read past) against
  translating that line alone.

  /usr/bin/python3 scripts/bench_corpus.py --data ../shared/data --model models/en-de --out work/bench/corpus

Writes <out>/bench_corpus.json and <out>/bench_corpus.md. The corpus stays in <out> (never commit it).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from evaluate import dev_sets, plain  # scripts/evaluate.py: where the dev sets live

ROOT = Path(__file__).resolve().parents[1]


def build_corpus(data: Path, src: str, tgt: str, work: Path, lines: int, seed: int) -> tuple[Path, dict]:
    pool: list[str] = []
    seen = set()
    for _, source, _ in dev_sets(data, src, tgt):
        if not source.exists():
            continue
        for line in plain(source, work).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and line not in seen:
                seen.add(line)
                pool.append(line)
    if not pool:
        sys.exit(f"no dev sets for {src}-{tgt} under {data}/dev")
    rng = random.Random(seed)
    rng.shuffle(pool)
    weights = [1.0 / (rank + 10) for rank in range(len(pool))]
    chosen = rng.choices(pool, weights=weights, k=lines)
    path = work / f"corpus{lines}.{src}"
    path.write_text("".join(line + "\n" for line in chosen), encoding="utf-8")
    return path, {"lines": lines, "pool": len(pool), "distinct_lines": len(set(chosen))}


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return seconds, done.stderr.strip()


def lines_done(state: Path) -> int:
    try:
        return json.loads(state.read_text())["lines_done"]
    except (OSError, ValueError, KeyError):
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="data directory with dev/ (as ../shared/data)")
    ap.add_argument("--model", type=Path, required=True, help="model directory (e.g. models/en-de)")
    ap.add_argument("--out", type=Path, default=ROOT / "work/bench/corpus")
    ap.add_argument("--tolk", type=Path, default=ROOT / "build/tolk")
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--resume-at", type=float, default=0.99, help="share of lines done when the run is interrupted")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    corpus, shape = build_corpus(args.data, args.src, args.tgt, args.out, args.lines, args.seed)
    base = [str(args.tolk), "-m", str(args.model), "--beam", str(args.beam), "--summary"]
    print(f"corpus: {corpus} ({shape})", flush=True)

    results = {"corpus": shape, "beam": args.beam, "model": str(args.model)}
    cached_out, nocache_out = args.out / "cached.out", args.out / "nocache.out"
    results["cache_s"], results["cache_summary"] = timed(base + ["-i", str(corpus), "-o", str(cached_out)])
    print(f"with cache: {results['cache_s']:.1f} s  {results['cache_summary']}", flush=True)
    results["nocache_s"], results["nocache_summary"] = timed(
        base + ["--no-cache", "-i", str(corpus), "-o", str(nocache_out)])
    print(f"without cache: {results['nocache_s']:.1f} s  {results['nocache_summary']}", flush=True)
    results["identical"] = cached_out.read_bytes() == nocache_out.read_bytes()
    results["speedup"] = results["nocache_s"] / results["cache_s"]

    # Resume: interrupt a --resume run late, then time the rerun against translating the same tail alone.
    out = args.out / "resumed.out"
    state = args.out / ".resumed.out.tolk-resume"
    for leftover in (out, state, args.out / ".resumed.out.tolk-partial"):
        leftover.unlink(missing_ok=True)
    # Stop a few windows (1,024 lines each with two workers) before the end, so the run is still going.
    target = max(1, min(int(args.lines * args.resume_at), args.lines - 4096))
    cmd = base + ["-i", str(corpus), "-o", str(out), "--resume"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and lines_done(state) < target:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.wait()
    done = lines_done(state)
    if done == 0 or not state.exists():
        sys.exit("the --resume run finished or saved nothing before the interruption; try a smaller --resume-at")
    tail = args.out / "tail.txt"
    with open(corpus, encoding="utf-8") as f:
        tail.write_text("".join(f.readlines()[done:]), encoding="utf-8")
    results["resume_after_lines"] = done
    results["resume_s"], results["resume_summary"] = timed(cmd)
    results["tail_s"], _ = timed(base + ["-i", str(tail), "-o", str(args.out / "tail.out")])
    results["resume_identical"] = out.read_bytes() == cached_out.read_bytes()
    print(f"resume after {done} lines: {results['resume_s']:.2f} s; the remaining {args.lines - done} lines alone: "
          f"{results['tail_s']:.2f} s", flush=True)

    # The skip on its own, without the noise of translating thousands of lines: a resumable job whose part is
    # only the last line (--shard L/L --resume: hash the input and the model, write the state, read past L-1
    # lines) against translating that last line alone. Fastest of 3 each.
    last = args.out / "last.txt"
    with open(corpus, encoding="utf-8") as f:
        last.write_text(f.readlines()[-1], encoding="utf-8")
    skip_runs, alone_runs = [], []
    for i in range(3):
        for leftover in args.out.glob(".skip.out*"):
            leftover.unlink()
        skip_runs.append(timed(base + ["-i", str(corpus), "-o", str(args.out / "skip.out"), "--resume",
                                       "--shard", f"{args.lines}/{args.lines}"])[0])
        alone_runs.append(timed(base + ["-i", str(last), "-o", str(args.out / "last.out")])[0])
    results["skip_job_s"], results["last_line_alone_s"] = min(skip_runs), min(alone_runs)
    results["resume_overhead_s"] = results["skip_job_s"] - results["last_line_alone_s"]
    print(f"resume cost: {results['resume_overhead_s']:.3f} s to check and skip {args.lines - 1} lines "
          f"({results['skip_job_s']:.3f} s vs {results['last_line_alone_s']:.3f} s)", flush=True)

    (args.out / "bench_corpus.json").write_text(json.dumps(results, indent=2) + "\n")
    md = [
        "| corpus | search | with cache s | without cache s | speed-up | same output | resume: skip s |",
        "|---|---|---|---|---|---|---|",
        f"| {shape['lines']:,} lines ({shape['distinct_lines']:,} distinct) from the dev sets | "
        f"{'greedy' if args.beam == 1 else f'beam {args.beam}'} | {results['cache_s']:.1f} | "
        f"{results['nocache_s']:.1f} | {results['speedup']:.1f}x | "
        f"{'yes' if results['identical'] and results['resume_identical'] else 'NO'} | "
        f"{results['resume_overhead_s']:.2f} for {args.lines - 1:,} lines |",
    ]
    (args.out / "bench_corpus.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
