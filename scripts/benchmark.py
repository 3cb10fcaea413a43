#!/usr/bin/env python3
"""Speed and memory of tolk on a real model and real text, next to the project's PyTorch reference on the same
model, input and search settings. Every configuration runs as its own process, so its peak resident memory is its
own (os.wait4's ru_maxrss); each tolk configuration runs --repeat times and the fastest run is kept (the slow
reference runs once).

What is measured, per configuration:
- wall seconds of the whole process, and its start-up seconds (the same command on an empty input: program start
  and model loading), so that "translate s" = wall - start-up is the time spent translating;
- target tokens/s over the translate seconds, the tokens counted independently of tolk: the output lines encoded
  with the model's target.spm, plus one </s> per line;
- peak resident memory (MiB) of the process;
- for each reference row, the share of output lines identical to tolk's with the same search. tolk runs with
  --no-split here (each line translated whole, as the reference does); its default splits lines into sentences.
- latency: tolk as an interactive filter (--unbuffered), one line written, its translation awaited, then the next:
  median and 90th percentile milliseconds per line.

  /usr/bin/python3 scripts/benchmark.py --model models/en-de --data ../shared/data --out work/bench/en-de

The default input is the source side of Multi30k test_2016_flickr (short image captions) and the first 500 lines
of newstest2014 (news, longer; --news-lines); --input FILE benchmarks one file of your own instead. The reference is
scripts/tolkpy (PyTorch eager, batched, with a key/value cache: the same algorithm as transformers' generate()),
with the same threads and 32 sentences a batch sorted by length; it is the slow path tolk exists to replace, and
its beam search is written plainly for clarity, so its beam-4 rows are slower than an optimised PyTorch could be.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

from evaluate import dev_sets, plain  # scripts/evaluate.py: where the dev sets live

ROOT = Path(__file__).resolve().parents[1]
REF_BATCH = 32


def default_inputs(data: Path, src: str, tgt: str, work: Path, lines: int):
    """(name, plain-text source file) for Multi30k test_2016_flickr and the first `lines` lines of newstest2014,
    found where scripts/evaluate.py finds them."""
    out = []
    for name, source, _ in dev_sets(data, src, tgt):
        if not source.exists() or name not in ("multi30k test_2016_flickr", "newstest2014"):
            continue
        path = plain(source, work)
        if name == "newstest2014":
            head = work / f"newstest2014.{lines}.{src}"
            head.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:lines]),
                            encoding="utf-8")
            name, path = f"newstest2014 (first {lines} lines)", head
        out.append((name, path))
    return out


def measured(cmd: list, stdin_path: Path | None, stdout_path: Path | None, env: dict | None = None):
    """Runs cmd to completion; returns (wall seconds, peak RSS MiB). Raises with cmd's stderr on failure."""
    fin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    fout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE, env=env)
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        for f in (fin, fout):
            if f is not subprocess.DEVNULL:
                f.close()
    if p.returncode != 0:
        raise SystemExit(f"benchmark: {' '.join(map(str, cmd))} failed ({p.returncode}): {err.decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024.0


def count_target_tokens(model: Path, path: Path) -> int:
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(model / "target.spm"))
    lines = path.read_text(encoding="utf-8").splitlines()
    return sum(len(sp.encode(line)) + 1 for line in lines)


def latency(tolk: Path, model: Path, src: Path, n: int, threads: int) -> dict:
    """tolk --unbuffered fed one line at a time; milliseconds from writing a line to reading its translation."""
    lines = [l for l in src.read_text(encoding="utf-8").splitlines() if l.strip()][:n]
    p = subprocess.Popen([str(tolk), "translate", "-m", str(model), "--unbuffered", "-q", "--threads", str(threads)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    fd, buf, times = p.stdout.fileno(), b"", []
    for line in lines:
        t0 = time.perf_counter()
        p.stdin.write(line.encode("utf-8") + b"\n")
        p.stdin.flush()
        while b"\n" not in buf:
            ready, _, _ = select.select([fd], [], [], 60)
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                raise SystemExit("benchmark: tolk --unbuffered gave no answer within 60 s")
            buf += chunk
        buf = buf.split(b"\n", 1)[1]
        times.append((time.perf_counter() - t0) * 1000)
    p.stdin.close()
    p.wait()
    times.sort()
    return {"lines": len(times), "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1)}


def reference_main(argv: list):
    """Child process: translate a file with the PyTorch reference (the rows named 'PyTorch reference')."""
    model_dir, src, dst, beam, threads = Path(argv[0]), Path(argv[1]), Path(argv[2]), int(argv[3]), int(argv[4])
    sys.path.insert(0, str(ROOT / "scripts"))
    import torch
    from tolkpy.hf_io import load_model_dir
    from tolkpy.reference import GenOptions, generate
    from tolkpy.tokenizer import MarianTokenizer
    torch.set_num_threads(threads)
    model, tok = load_model_dir(model_dir), MarianTokenizer(model_dir)
    lines = src.read_text(encoding="utf-8").splitlines()
    ids = [tok.encode(l) for l in lines]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = [""] * len(ids)
    opts = GenOptions(num_beams=beam, max_length=model.config.max_length)
    for k in range(0, len(order), REF_BATCH):
        chunk = order[k:k + REF_BATCH]
        for i, hyps in zip(chunk, generate(model, [ids[i] for i in chunk], opts, tok.pad_id)):
            out[i] = tok.decode(hyps[0].ids)
    dst.write_text("".join(o + "\n" for o in out), encoding="utf-8")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--_reference":
        return reference_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models/en-de")
    ap.add_argument("--data", type=Path, help="data directory with dev/ (as ../shared/data)")
    ap.add_argument("--input", type=Path, help="benchmark this source file instead of the dev sets")
    ap.add_argument("--out", type=Path, required=True, help="folder for outputs, bench.json and bench.md")
    ap.add_argument("--tolk", type=Path, default=ROOT / "build/tolk")
    ap.add_argument("--news-lines", type=int, default=500, help="lines of newstest2014 to use")
    ap.add_argument("--repeat", type=int, default=2, help="runs per configuration; the fastest is kept")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for the 2-thread rows and the "
                    "reference (default: the machine's cores)")
    ap.add_argument("--no-reference", action="store_true", help="skip the PyTorch reference rows")
    ap.add_argument("--latency-lines", type=int, default=50)
    args = ap.parse_args()
    if not args.tolk.exists():
        raise SystemExit(f"benchmark: {args.tolk} not found (build first: bash scripts/setup.sh)")
    tok_cfg = json.loads((args.model / "tokenizer_config.json").read_text())
    src, tgt = tok_cfg["source_lang"], tok_cfg["target_lang"]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.input:
        inputs = [(args.input.name, args.input)]
    elif args.data:
        inputs = default_inputs(args.data, src, tgt, args.out, args.news_lines)
    else:
        raise SystemExit("benchmark: give --data DIR (dev sets) or --input FILE")
    if not inputs:
        raise SystemExit(f"benchmark: no {src}-{tgt} dev sets found under {args.data}")

    th = str(args.threads)
    # --no-split: tolk translates each line whole, as the reference does, so both do the same work and their
    # outputs can be compared line by line (tolk's default splits lines into sentences first).
    tolk = [str(args.tolk), "translate", "-m", str(args.model), "-q", "--no-split"]
    ref = ["/usr/bin/python3", str(Path(__file__).resolve()), "--_reference", str(args.model)]
    configs = [  # (name, beam, command before -i/-o, reference?)
        ("tolk, greedy, default workers", 1, tolk + ["--beam", "1"], False),
        ("tolk, beam 4, default workers", 4, tolk + ["--beam", "4"], False),
        (f"tolk, greedy, 1 worker x {th} threads", 1, tolk + ["--beam", "1", "--workers", "1", "--threads", th], False),
        ("tolk, greedy, 1 worker x 1 thread", 1, tolk + ["--beam", "1", "--workers", "1", "--threads", "1"], False),
    ]
    if not args.no_reference:
        configs += [(f"PyTorch reference, greedy, {th} threads", 1, ref, True),
                    (f"PyTorch reference, beam 4, {th} threads", 4, ref, True)]
    empty = args.out / "empty.txt"
    empty.write_text("")
    rows = []
    for set_name, path in inputs:
        n_lines = len(path.read_text(encoding="utf-8").splitlines())
        tolk_out = {}
        for name, beam, cmd, is_ref in configs:
            hyp = args.out / f"{path.name}.{len(rows)}.out"

            def command(i, o):
                return cmd + [str(i), str(o), str(beam), th] if is_ref else cmd + ["-i", str(i), "-o", str(o)]
            repeat = 1 if is_ref else args.repeat  # the reference is slow, and measured for scale only
            startup = min(measured(command(empty, args.out / "empty.out"), None, None)[0] for _ in range(repeat))
            runs = [measured(command(path, hyp), None, None) for _ in range(repeat)]
            wall, rss = min(r[0] for r in runs), max(r[1] for r in runs)
            tokens = count_target_tokens(args.model, hyp)
            row = {"set": set_name, "lines": n_lines, "config": name, "beam": beam, "wall_s": round(wall, 2),
                   "startup_s": round(startup, 2), "translate_s": round(max(wall - startup, 0.0), 2),
                   "target_tokens": tokens,
                   # None when the input is too small to tell translating from starting up.
                   "tokens_per_s": round(tokens / (wall - startup)) if wall - startup >= 0.1 else None,
                   "peak_rss_mib": round(rss), "command": " ".join(command(path, hyp))}
            outs = hyp.read_text(encoding="utf-8").splitlines()
            if is_ref and beam in tolk_out:
                row["identical_to_tolk"] = round(sum(a == b for a, b in zip(outs, tolk_out[beam])) / max(len(outs), 1), 4)
            elif not is_ref:
                tolk_out.setdefault(beam, outs)
            rows.append(row)
            print(json.dumps(row), flush=True)
    lat = latency(args.tolk, args.model, inputs[0][1], args.latency_lines, args.threads)
    result = {"model": str(args.model), "machine": f"{os.cpu_count()} cores", "rows": rows,
              "latency": {"set": inputs[0][0], **lat}}
    (args.out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["| input | configuration | wall s | start-up s | target tok/s | peak RSS MiB | same as tolk |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        same = f"{100 * r['identical_to_tolk']:.1f}%" if "identical_to_tolk" in r else ""
        label = r["set"] if "lines" in r["set"] else f"{r['set']} ({r['lines']} lines)"
        md.append(f"| {label} | {r['config']} | {r['wall_s']} | {r['startup_s']} | "
                  f"{r['tokens_per_s'] or 'n/a'} | {r['peak_rss_mib']} | {same} |")
    md.append("")
    md.append(f"Interactive latency (`--unbuffered`, one line at a time, {lat['lines']} lines of {inputs[0][0]}): "
              f"median {lat['median_ms']} ms, 90th percentile {lat['p90_ms']} ms per line.")
    (args.out / "bench.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
