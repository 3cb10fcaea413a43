#!/usr/bin/python3
"""Two or more tolk builds (or any commands taking the same arguments) run alternately on the same input, so that
a slow spell of the machine hits them alike: build A, build B, A, B, ... --runs times each. Prints, per build, the
median wall time, the median CPU time (user + system of the child and its threads) and the median peak resident
memory, with every run's figures, and whether their output files are byte-identical.
    /usr/bin/python3 scripts/bench/alternate.py --runs 5 OLD/tolk build/tolk -- \\
        -m models/en-de -q --no-split --beam 4 --compute-type int8 -i test_2016_flickr.en
Each command gets `-o FILE` appended (one file per build, kept in --out). Environment variables such as
ONEDNN_MAX_CPU_ISA=AVX2 apply to every build alike.
"""
import argparse
import filecmp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(command: list, out: Path) -> tuple:
    """Wall seconds, CPU seconds (user + system) and peak resident memory (MiB) of one run of
    command + [-o, out], from the kernel's accounting of that process alone (wait4)."""
    start = time.monotonic()
    proc = subprocess.Popen(command + ["-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"alternate.py: {command[0]} exited with {code}: {err.decode(errors='replace').strip()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each build (default 5)")
    ap.add_argument("--out", help="folder for the output files (default: a temporary one)")
    ap.add_argument("builds", nargs="+", help="the programs to compare, then -- and their common arguments")
    argv = sys.argv[1:]
    if "--" not in argv:
        ap.error("give at least two builds, then -- and the arguments they share")
    cut = argv.index("--")
    a = ap.parse_args(argv[:cut])
    rest = argv[cut + 1:]
    if len(a.builds) < 2 or not rest:
        ap.error("give at least two builds, then -- and the arguments they share")
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    out_dir = Path(a.out or tempfile.mkdtemp(prefix="alternate."))
    out_dir.mkdir(parents=True, exist_ok=True)
    outs = [out_dir / f"{i}.{Path(b).name}.out" for i, b in enumerate(a.builds)]
    walls = [[] for _ in a.builds]
    cpus = [[] for _ in a.builds]
    peaks = [[] for _ in a.builds]
    for _ in range(a.runs):
        for i, build in enumerate(a.builds):
            wall, cpu, peak = run_once([build] + rest, outs[i])
            walls[i].append(wall)
            cpus[i].append(cpu)
            peaks[i].append(peak)
    print(f"{a.runs} alternating runs each of: {' '.join(rest)}" +
          (f"  [ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']}]" if "ONEDNN_MAX_CPU_ISA" in os.environ else ""))
    for i, build in enumerate(a.builds):
        print(f"  {build}: wall median {statistics.median(walls[i]):.3f} s ({' '.join(f'{w:.3f}' for w in walls[i])}), "
              f"cpu median {statistics.median(cpus[i]):.3f} s ({' '.join(f'{c:.3f}' for c in cpus[i])}), "
              f"peak RSS median {statistics.median(peaks[i]):.1f} MiB ({' '.join(f'{m:.1f}' for m in peaks[i])})")
    same = all(filecmp.cmp(outs[0], o, shallow=False) for o in outs[1:])
    print(f"  outputs {'identical' if same else 'DIFFER'} ({out_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
