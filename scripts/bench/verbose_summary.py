#!/usr/bin/python3
"""Where oneDNN's time goes in one tolk run, from oneDNN's own per-call timings (ONEDNN_VERBOSE=1).

    ONEDNN_VERBOSE=1 build/tolk -m models/en-de -q --no-split --beam 4 --workers 1 --threads 1 \\
        -i IN -o OUT > work/verbose.log
    /usr/bin/python3 scripts/bench/verbose_summary.py work/verbose.log --vocab 8001

Prints the summed execution time per kind of primitive: the projections by shape (K inputs x N outputs, with
their GFLOP/s), the attention matmuls and everything else by implementation; then the decoding steps by how many
rows the vocabulary projection (N = --vocab) had (its pieces summed), with their share of oneDNN's time. A step's
time is its calls after the previous step's vocabulary projection, up to and including its own, so a batch's
encoder counts with that batch's first step. Use one worker: with several, their calls interleave in the log.
"""
import argparse
import collections
import re

SHAPE = re.compile(r"^(\d+)x(\d+):(\d+)x(\d+)(?::|$)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", help="the output of a run with ONEDNN_VERBOSE=1")
    ap.add_argument("--vocab", type=int, default=8001, help="output size of the vocabulary projection")
    ap.add_argument("--small-rows", type=int, default=8, help="steps with at most this many rows are summed apart")
    a = ap.parse_args()

    times = collections.Counter()
    flops = collections.Counter()
    total = 0.0
    step_rows, step_ms = [], []  # per decoding step: rows of its vocabulary projection, its oneDNN ms
    pending, current, in_vocab = 0.0, None, False  # ms since the last vocabulary call; the step being read
    with open(a.log, encoding="utf-8", errors="replace") as log:
        for line in log:
            if not line.startswith("onednn_verbose,exec,"):
                continue
            fields = line.rstrip("\n").split(",")
            kind, impl, ms, dims = fields[3], fields[4], float(fields[-1]), fields[-2]
            total += ms
            m = SHAPE.match(dims)
            vocab = False
            if kind == "matmul" and m and m.group(2) == m.group(3):
                rows, k, n = int(m.group(1)), int(m.group(2)), int(m.group(4))
                key = f"projection K{k} x N{n} ({impl})"
                flops[key] += 2 * rows * k * n
                vocab = n == a.vocab
            elif kind == "matmul":
                key = f"attention matmul ({impl})"
            else:
                key = f"{kind} ({impl})"
            times[key] += ms
            if vocab:
                if not in_vocab:  # the first piece of a step's projection: the calls before it are this step's
                    if current:
                        step_rows.append(current[0])
                        step_ms.append(current[1])
                    current, pending = [0, pending], 0.0
                current[0] += int(m.group(1))
                current[1] += ms
            else:
                pending += ms
            in_vocab = vocab
    if current:
        step_rows.append(current[0])
        step_ms.append(current[1])

    print(f"oneDNN time: {total:.0f} ms")
    for key, ms in times.most_common():
        rate = f"  {flops[key] / ms / 1e6:.0f} GFLOP/s" if key in flops else ""
        print(f"{ms:9.1f} ms {100 * ms / total:5.1f}%  {key}{rate}")
    small = [i for i, r in enumerate(step_rows) if r <= a.small_rows]
    small_ms = sum(step_ms[i] for i in small)
    print(f"decoding steps: {len(step_rows)}; with at most {a.small_rows} rows: {len(small)}, {small_ms:.0f} ms "
          f"({100 * small_ms / total if total else 0:.1f}% of oneDNN time)")
    by_rows = collections.Counter(step_rows)
    for rows in sorted(by_rows)[:8]:
        ms = sum(t for r, t in zip(step_rows, step_ms) if r == rows)
        print(f"  {rows:4d} rows: {by_rows[rows]:5d} steps, {ms:8.1f} ms")


if __name__ == "__main__":
    main()
