#!/usr/bin/python3
"""When a command's memory peaks: samples its resident memory (/proc/PID/status) as fast as Python can read it
and prints a line whenever it moved by more than --step MiB, then the kernel's high-water mark at exit.
    /usr/bin/python3 scripts/bench/rss_timeline.py -- build/tolk -m models/en-de -i IN -o OUT
Columns: milliseconds since start, resident MiB (VmRSS), of which anonymous (RssAnon: heap, weights, caches) and
file-backed (RssFile: code of the program and its libraries as it gets touched, mapped files), and the high-water
mark so far (VmHWM). A peak shorter than one sampling interval (about 0.1 ms, more on a loaded machine) shows only
in the high-water mark. Linux only.
"""
import argparse
import subprocess
import sys
import time


def read_status(pid: int) -> dict:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024.0
    return fields


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", type=float, default=1.5, help="print when VmRSS moved by more than this (MiB)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    a = ap.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        ap.error("no command given (put it after --)")
    start = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    last = None
    high = {}
    while child.poll() is None:
        try:
            s = read_status(child.pid)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            break  # exited between poll() and the read
        if "VmRSS" not in s:
            break  # a zombie: its memory is gone
        high = s
        if last is None or abs(s["VmRSS"] - last) > a.step:
            print(f"{(time.monotonic() - start) * 1000:8.1f} ms  rss {s['VmRSS']:6.1f}  anon {s.get('RssAnon', 0):6.1f}"
                  f"  file {s.get('RssFile', 0):6.1f}  hwm {s.get('VmHWM', 0):6.1f}")
            last = s["VmRSS"]
    rc = child.wait()
    if high:
        print(f"high-water mark seen last: {high.get('VmHWM', 0):.1f} MiB; exit status {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
