#!/usr/bin/env python3
"""tolk beside CTranslate2 on the same weights, in one run (issue #10, item 1).

Both engines translate the same raw-text inputs, alternately (tolk, CT2, tolk, CT2, ... inside each group of
cells, and every group repeated --runs times), each run its own process:
  - Multi30k test_2016_flickr source, the first --news-lines lines of newstest2014, batched (tolk: its default
    batching, CT2: max batch 32), and the first --batch1-lines Multi30k lines one sentence at a time (batch size 1);
  - greedy and beam 4 (--beams);
  - tolk at each of --tolk-compute-types and two thread layouts: its default (one single-threaded worker per
    core) and 1 worker x N threads; CT2 at each of --ct2-compute-types and N replicas x 1 thread or
    1 replica x N threads. The table gives each engine at its faster layout (all runs are in the JSONL);
  - cold start: one short sentence, process start to exit, for every engine / compute type / layout.

Reported per cell (median of the runs): target tokens/s over the whole process (load included), wall seconds,
peak RSS (the child's ru_maxrss), and the share of output lines identical between tolk and CT2 for the same
compute type. Target tokens are counted on each output file by scripts/benchmark.py's counter (target.spm
pieces + one </s> a line), the same counter for both engines. Before comparing lines, CT2's output gets the
clean-up tolk (and transformers' MarianTokenizer) applies when decoding (" ." -> "." and the like); the
ct2_translate driver only joins SentencePiece pieces.

A compute type an engine does not run here (an option tolk does not know yet, a type CTranslate2 refuses on
this CPU) is probed once with the short sentence and reported as n/a with the engine's own message.

  /usr/bin/python3 scripts/bench/compare_ct2.py --tolk build/tolk \\
      --ct2-driver work/ct2/bin/ct2_translate --ct2-model work/ct2/models/en-de-ct2 \\
      --model models/en-de --data ../shared/data --out work/bench/ct2-en-de

Writes OUT/table.md (machine, then one markdown table with ratios), OUT/results.jsonl (one record per run),
OUT/runs/ (every output file) and OUT/inputs/.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark import count_target_tokens, default_inputs  # noqa: E402  scripts/benchmark.py
from tolkpy.tokenizer import clean_up_tokenization  # noqa: E402  (pure Python, no torch)

SHORT = {  # cold-start sentence per source language (else the first Multi30k line)
    "en": "A man is riding a bicycle down the street.",
    "de": "Ein Mann fährt mit dem Fahrrad die Straße entlang.",
    "fr": "Un homme fait du vélo dans la rue.",
}
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


# ----------------------------------------------------------------------------------------------------- machine

def cpu_description() -> tuple[str, list[str]]:
    model, flags = "unknown CPU", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "unknown CPU":
                model = val.strip()
            elif key == "flags" and not flags:
                have = set(val.split())
                flags = [f for f in ISA_FLAGS if f in have]
                flags += sorted(f for f in have if f.startswith("avx512") and f not in flags)
    except OSError:
        pass
    return model, flags


def proc_stat():
    """(total jiffies, idle jiffies) of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]


def busy_share(seconds: float = 1.0) -> float:
    t0, i0 = proc_stat()
    time.sleep(seconds)
    t1, i1 = proc_stat()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(max_busy: float | None, max_wait: float) -> float:
    """With --max-busy: wait (up to max_wait s) until the CPUs are below that busy share. Returns seconds waited."""
    if max_busy is None:
        return 0.0
    t0 = time.time()
    while busy_share(1.0) > max_busy and time.time() - t0 < max_wait:
        time.sleep(2.0)
    return time.time() - t0


def ct2_version(driver: Path) -> str:
    try:
        out = subprocess.run(["ldd", str(driver)], capture_output=True, text=True).stdout
        m = re.search(r"libctranslate2\.so\S* => (\S+)", out)
        if m:
            real = os.path.realpath(m.group(1))
            v = re.search(r"\.so\.(\d+(?:\.\d+)*)$", real)
            return f"{v.group(1) if v else '?'} ({real})"
    except OSError:
        pass
    return "unknown"


def tolk_revision() -> str:
    def git(*a):
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


# ----------------------------------------------------------------------------------------------------- running

def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """One process to completion: wall seconds, peak RSS (MiB), CPU seconds, exit code, stderr tail, and the
    share of the machine's CPUs other processes used meanwhile."""
    ncpu = os.cpu_count() or 1
    hz = os.sysconf("SC_CLK_TCK")
    load = os.getloadavg()[0]
    s0 = proc_stat()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=env)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    s1 = proc_stat()
    p.stderr.close()
    cpu = ru.ru_utime + ru.ru_stime
    machine_busy = ((s1[0] - s0[0]) - (s1[1] - s0[1])) / hz
    return {"wall_s": wall, "rss_mib": ru.ru_maxrss / 1024.0, "cpu_s": cpu,
            "rc": os.waitstatus_to_exitcode(status), "stderr": err.decode("utf-8", "replace")[-1500:],
            "load1_before": load, "others_share": max(0.0, machine_busy - cpu) / (ncpu * wall) if wall else 0.0}


def first_error_line(stderr: str) -> str:
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    lines = [l.split("what():", 1)[-1].strip() for l in lines]
    for l in lines:
        if "error" in l.lower() or "unsupported" in l.lower() or "not support" in l.lower():
            return l[:200]
    return (lines[-1] if lines else "failed without a message")[:200]


class Engines:
    def __init__(self, a):
        self.a = a
        help_text = subprocess.run([str(a.tolk), "translate", "--help"], capture_output=True, text=True).stdout
        self.tolk_has_compute_type = "--compute-type" in help_text
        self.n = a.threads
        # tolk: its default layout (no flags: one single-threaded worker per core on a file) and 1 x N threads.
        self.tolk_layouts = [(f"{os.cpu_count() or 1}w x 1t (default)", []),
                             (f"1w x {self.n}t", ["--workers", "1", "--threads", str(self.n)])]
        self.ct2_layouts = [(f"{self.n} x 1", ["--inter", str(self.n), "--intra", "1"]),
                            (f"1 x {self.n}", ["--inter", "1", "--intra", str(self.n)])]
        self.ct2_max_len = a.ct2_max_decoding_length or tolk_new_token_limit(a.model)

    def tolk_cmd(self, ctype, layout_args, inp, out, beam, batch1):
        c = [str(self.a.tolk), "translate", "-m", str(self.a.model), "-i", str(inp), "-o", str(out),
             "--beam", str(beam), "--no-split", "-q", *layout_args]
        if batch1:
            c += ["--batch-size", "1"]
        # Before tolk had --compute-type it computed in float32 only: float32 then runs without the option.
        if self.tolk_has_compute_type or ctype != "float32":
            c += ["--compute-type", ctype]
        return c + shlex.split(self.a.tolk_extra)

    def ct2_cmd(self, ctype, layout_args, inp, out, beam, batch1):
        return [str(self.a.ct2_driver), "-m", str(self.a.ct2_model), "-i", str(inp), "-o", str(out),
                "--beam", str(beam), "--batch-size", "1" if batch1 else "32", *layout_args,
                "--compute-type", ctype, "--max-decoding-length", str(self.ct2_max_len),
                *shlex.split(self.a.ct2_extra)]

    def configs(self):
        """(engine, compute type, layout name, command builder), tolk and CT2 alternating."""
        tolk = [("tolk", ct, name, (lambda *x, ct=ct, la=la: self.tolk_cmd(ct, la, *x)))
                for ct in self.a.tolk_compute_types for name, la in self.tolk_layouts]
        ct2 = [("ct2", ct, name, (lambda *x, ct=ct, la=la: self.ct2_cmd(ct, la, *x)))
               for ct in self.a.ct2_compute_types for name, la in self.ct2_layouts]
        return [c for pair in itertools.zip_longest(tolk, ct2) for c in pair if c]


def tolk_new_token_limit(model: Path) -> int:
    """Tokens tolk can emit before its forced </s>: max_length counts the decoder start and the final </s>."""
    for f in ("generation_config.json", "config.json"):
        p = model / f
        if p.exists():
            ml = json.loads(p.read_text()).get("max_length")
            if ml:
                return max(1, int(ml) - 2)
    return 510


# ----------------------------------------------------------------------------------------------------- inputs

def head(src: Path, n: int | None, dst: Path) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    dst.write_text("".join(lines[:n] if n else lines), encoding="utf-8")
    return dst


def prepare_inputs(a, src_lang: str, tgt_lang: str):
    """[(key, label, path, batch1)] and the cold-start file."""
    d = a.out / "inputs"
    d.mkdir(parents=True, exist_ok=True)
    found = dict((name.split()[0], path) for name, path in default_inputs(a.data, src_lang, tgt_lang, d, a.news_lines))
    m30k, news = found.get("multi30k"), found.get("newstest2014")
    sets = []
    lim = a.lines
    if "multi30k" in a.sets and m30k:
        p = head(m30k, lim, d / "multi30k.src")
        sets.append(("multi30k", f"Multi30k test_2016_flickr ({n_lines(p)} lines)", p, False))
    if "news" in a.sets and news:
        p = head(news, lim, d / "news.src")
        sets.append(("news", f"newstest2014 first {n_lines(p)} lines", p, False))
    if "batch1" in a.sets and m30k:
        n = min(a.batch1_lines, lim) if lim else a.batch1_lines
        p = head(m30k, n, d / "batch1.src")
        sets.append(("batch1", f"Multi30k first {n_lines(p)} lines, one at a time", p, True))
    missing = [s for s in a.sets if s not in {k for k, *_ in sets}]
    if missing:
        print(f"compare_ct2: no input for {missing} under {a.data}", file=sys.stderr)
    short = d / "short.src"
    first = m30k.read_text(encoding="utf-8").splitlines()[0] if m30k else "Hello."
    short.write_text(SHORT.get(src_lang, first) + "\n", encoding="utf-8")
    return sets, short


def slug(layout: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", layout.lower())


def n_lines(p: Path) -> int:
    return len(p.read_text(encoding="utf-8").splitlines())


def read_lines(p: Path) -> list[str]:
    return p.read_text(encoding="utf-8").splitlines()


def identical_share(tolk_out: Path, ct2_out: Path) -> tuple[float, float]:
    """(share identical after clean-up on both sides, share byte-identical)."""
    t, c = read_lines(tolk_out), read_lines(ct2_out)
    n = max(len(t), len(c), 1)
    same = sum(clean_up_tokenization(x) == clean_up_tokenization(y) for x, y in zip(t, c))
    exact = sum(x == y for x, y in zip(t, c))
    return same / n, exact / n


# ----------------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tolk", type=Path, default=ROOT / "build/tolk")
    ap.add_argument("--ct2-driver", type=Path, help="ct2_translate from ../shared/tools/ct2")
    ap.add_argument("--ct2-model", type=Path, help="the converted CTranslate2 model directory")
    ap.add_argument("--model", type=Path, default=ROOT / "models/en-de", help="tolk's model (same weights)")
    ap.add_argument("--data", type=Path, help="data directory with dev/ (as ../shared/data)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tolk-compute-types", default="float32,int8,bfloat16")
    ap.add_argument("--ct2-compute-types", default="float32,int8,bfloat16,int8_bfloat16")
    ap.add_argument("--runs", type=int, default=3, help="runs per cell; the median is reported")
    ap.add_argument("--beams", default="1,4")
    ap.add_argument("--sets", default="multi30k,news,batch1", help="of multi30k, news, batch1")
    ap.add_argument("--news-lines", type=int, default=500)
    ap.add_argument("--batch1-lines", type=int, default=200)
    ap.add_argument("--lines", type=int, default=None, help="cut every input to its first N lines (smoke runs)")
    ap.add_argument("--cold-runs", type=int, default=None, help="cold-start runs per config (default: --runs)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="N of the layouts (default: the machine's cores)")
    ap.add_argument("--ct2-max-decoding-length", type=int, default=None,
                    help="default: the model's max_length - 2, the tokens tolk emits before its forced </s>")
    ap.add_argument("--tolk-extra", default="", help="extra tolk arguments (one string)")
    ap.add_argument("--ct2-extra", default="", help="extra ct2_translate arguments (one string)")
    ap.add_argument("--max-busy", type=float, default=None,
                    help="before each run, wait until the CPUs are at most this busy (0..1; default: no wait)")
    ap.add_argument("--max-wait", type=float, default=600)
    ap.add_argument("--table-only", action="store_true", help="rewrite OUT/table.md from OUT/results.jsonl")
    a = ap.parse_args()
    a.tolk_compute_types = [t for t in a.tolk_compute_types.split(",") if t]
    a.ct2_compute_types = [t for t in a.ct2_compute_types.split(",") if t]
    a.sets = [s for s in a.sets.split(",") if s]
    beams = [int(b) for b in a.beams.split(",")]
    if a.table_only:
        records = [json.loads(l) for l in (a.out / "results.jsonl").read_text().splitlines() if l.strip()]
        table = make_table(records)
        (a.out / "table.md").write_text(table)
        print(table)
        return
    for p, what in ((a.tolk, "--tolk"), (a.ct2_driver, "--ct2-driver"), (a.ct2_model, "--ct2-model"),
                    (a.model, "--model"), (a.data, "--data")):
        if p is None or not p.exists():
            raise SystemExit(f"compare_ct2: {what} {p} not found" if p else f"compare_ct2: {what} is required")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "runs").mkdir(exist_ok=True)
    tok_cfg = json.loads((a.model / "tokenizer_config.json").read_text())
    sets, short = prepare_inputs(a, tok_cfg["source_lang"], tok_cfg["target_lang"])
    eng = Engines(a)
    configs = eng.configs()
    results = open(a.out / "results.jsonl", "w")
    unavailable: dict[tuple[str, str], str] = {}  # (engine, compute type) -> reason
    records = []

    def record(rec):
        records.append(rec)
        results.write(json.dumps(rec, ensure_ascii=False) + "\n")
        results.flush()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    cpu, flags = cpu_description()
    record({"kind": "meta", "command": shlex.join([sys.executable, *sys.argv]), "cpu": cpu, "isa": flags,
            "cores": os.cpu_count(), "tolk": str(a.tolk), "tolk_revision": tolk_revision(), "model": str(a.model),
            "ct2_driver": str(a.ct2_driver), "ct2_version": ct2_version(a.ct2_driver), "ct2_model": str(a.ct2_model),
            "runs": a.runs, "beams": beams, "tolk_compute_types": a.tolk_compute_types,
            "ct2_compute_types": a.ct2_compute_types, "tolk_layouts": [n for n, _ in eng.tolk_layouts],
            "ct2_layouts": [n for n, _ in eng.ct2_layouts], "tolk_has_compute_type": eng.tolk_has_compute_type,
            "ct2_max_decoding_length": eng.ct2_max_len, "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            # Instruction-set limits both engines inherit (oneDNN's, and CTranslate2's for its own kernels).
            "isa_limits": {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "CT2_FORCE_CPU_ISA") if k in os.environ}})

    # 1. Cold start, which also probes every compute type once.
    cold_runs = a.cold_runs or a.runs
    for rep in range(cold_runs):
        for engine, ctype, layout, build in configs:
            if (engine, ctype) in unavailable:
                continue
            out = a.out / "runs" / f"cold.{engine}.{ctype}.{slug(layout)}.txt"
            cmd = build(short, out, 1, False)
            env = dict(os.environ, CT2_VERBOSE="1") if engine == "ct2" and rep == 0 else None
            wait_quiet(a.max_busy, a.max_wait)
            r = run_measured(cmd, env)
            if r["rc"] != 0:
                unavailable[(engine, ctype)] = first_error_line(r["stderr"])
                log(f"{engine} {ctype}: n/a ({unavailable[(engine, ctype)]})")
            m = re.search(r"Selected compute type: (\S+)", r["stderr"]) if env else None
            record({"kind": "cold", "set": "cold", "beam": 1, "engine": engine, "compute_type": ctype,
                    "layout": layout, "run": rep, "command": shlex.join(cmd),
                    **({"effective_compute_type": m.group(1)} if m else {}),
                    **{k: v for k, v in r.items() if k != "stderr"},
                    **({"error": first_error_line(r["stderr"])} if r["rc"] else {})})
    # 2. Throughput cells.
    for key, label, path, batch1 in sets:
        for beam in beams:
            for rep in range(a.runs):
                for engine, ctype, layout, build in configs:
                    if (engine, ctype) in unavailable:
                        continue
                    out = a.out / "runs" / f"{key}.b{beam}.{engine}.{ctype}.{slug(layout)}.txt"
                    cmd = build(path, out, beam, batch1)
                    wait_quiet(a.max_busy, a.max_wait)
                    r = run_measured(cmd)
                    rec = {"kind": "throughput", "set": key, "set_label": label, "beam": beam, "engine": engine,
                           "compute_type": ctype, "layout": layout, "run": rep, "command": shlex.join(cmd),
                           "output": str(out), **{k: v for k, v in r.items() if k != "stderr"}}
                    if r["rc"] == 0:
                        tokens = count_target_tokens(a.model, out)
                        rec.update(target_tokens=tokens, tokens_per_s=tokens / r["wall_s"])
                    else:
                        rec["error"] = first_error_line(r["stderr"])
                        log(f"FAILED {shlex.join(cmd)}: {rec['error']}")
                    record(rec)
                    log(f"{key} beam {beam} run {rep + 1}/{a.runs} {engine} {ctype} {layout}: "
                        + (f"{rec['tokens_per_s']:.0f} tok/s, {r['wall_s']:.2f} s, {r['rss_mib']:.0f} MiB"
                           if r["rc"] == 0 else "failed"))
    results.close()
    table = make_table(records)
    (a.out / "table.md").write_text(table)
    print(table)


# ----------------------------------------------------------------------------------------------------- table

def summarize_cell(records, **key):
    """Per layout: median tok/s, wall, RSS over successful runs; returns the best layout's summary or None."""
    by_layout: dict[str, list] = {}
    for r in records:
        if all(r.get(k) == v for k, v in key.items()) and r["rc"] == 0:
            by_layout.setdefault(r["layout"], []).append(r)
    best = None
    for layout, rs in by_layout.items():
        s = {"layout": layout, "runs": len(rs),
             "wall_s": statistics.median(r["wall_s"] for r in rs),
             "rss_mib": statistics.median(r["rss_mib"] for r in rs),
             "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rs) if "tokens_per_s" in rs[0] else None,
             "disturbed": sum(r["others_share"] > 0.10 for r in rs), "output": rs[-1].get("output")}
        if best is None or (s["tokens_per_s"] or -s["wall_s"]) > (best["tokens_per_s"] or -best["wall_s"]):
            best = s
    return best


def fmt(x, nd=0):
    if x is None:
        return "n/a"
    return f"{x:,.{nd}f}"


def speed(s) -> str:
    """'tok/s (layout)' of a cell summary, or n/a."""
    return f"{fmt(s['tokens_per_s'])} ({s['layout']})" if s else "n/a"


def seconds(s) -> str:
    """'s (layout)' of a cold-start summary, or n/a."""
    return f"{fmt(s['wall_s'], 3)} s ({s['layout']})" if s else "n/a"


def ratio(x, y):
    return f"{x / y:.2f}x" if x and y else "n/a"


def make_table(records) -> str:
    meta = next(r for r in records if r["kind"] == "meta")
    unavailable, ct2_effective = {}, {}
    for r in records:
        if r["kind"] == "cold" and r["rc"] != 0:
            unavailable.setdefault((r["engine"], r["compute_type"]), r.get("error", "failed"))
        if r.get("effective_compute_type"):
            ct2_effective[r["compute_type"]] = r["effective_compute_type"]
    sets = list(dict.fromkeys((r["set"], r["set_label"]) for r in records if r["kind"] == "throughput"))
    beams = meta["beams"]
    tolk_types, ct2_types = meta["tolk_compute_types"], meta["ct2_compute_types"]
    lines = [
        f"CPU: {meta['cpu']}, {meta['cores']} logical cores; ISA: {' '.join(meta['isa']) or 'unknown'}"
        + "".join(f"; limited by {k}={v}" for k, v in meta.get("isa_limits", {}).items()),
        f"tolk {meta['tolk_revision']} ({meta['tolk']}), model {meta['model']}; CTranslate2 {meta['ct2_version']}, "
        f"model {meta['ct2_model']}; {meta['time']}",
        f"{meta['runs']} run(s) a cell, median; tokens/s = target tokens (target.spm pieces + </s> a line) / wall "
        f"time of the whole process (start, load, translate, exit); each engine at its faster thread layout "
        f"(tolk workers x threads: {' or '.join(meta['tolk_layouts'])}; "
        f"CT2 replicas x threads: {' or '.join(meta['ct2_layouts'])})",
        "",
        "| input | search | compute type | tolk tok/s (layout) | CT2 tok/s (layout) | speed tolk/CT2 | tolk wall s "
        "| CT2 wall s | tolk RSS MiB | CT2 RSS MiB | RSS tolk/CT2 | identical lines |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    types = list(dict.fromkeys(tolk_types + ct2_types))
    disturbed = 0

    def na(engine, ctype):
        return (engine, ctype) in unavailable or ctype not in (
            tolk_types if engine == "tolk" else ct2_types)

    for key, label in sets:
        for beam in beams:
            search = "greedy" if beam == 1 else f"beam {beam}"
            best_tolk = None
            for ctype in types:
                t = None if na("tolk", ctype) else summarize_cell(records, set=key, beam=beam, engine="tolk",
                                                                   compute_type=ctype)
                c = None if na("ct2", ctype) else summarize_cell(records, set=key, beam=beam, engine="ct2",
                                                                  compute_type=ctype)
                if t is None and c is None:
                    continue
                disturbed += (t or {}).get("disturbed", 0) + (c or {}).get("disturbed", 0)
                if t and (best_tolk is None or t["tokens_per_s"] > best_tolk[1]["tokens_per_s"]):
                    best_tolk = (ctype, t)
                same = "n/a"
                if t and c:
                    s, exact = identical_share(Path(t["output"]), Path(c["output"]))
                    same = f"{100 * s:.1f}%"
                lines.append(
                    f"| {label} | {search} | {ctype} | {speed(t)} | {speed(c)} "
                    f"| {ratio(t and t['tokens_per_s'], c and c['tokens_per_s'])} "
                    f"| {fmt(t and t['wall_s'], 2)} | {fmt(c and c['wall_s'], 2)} "
                    f"| {fmt(t and t['rss_mib'])} | {fmt(c and c['rss_mib'])} "
                    f"| {ratio(t and t['rss_mib'], c and c['rss_mib'])} | {same} |")
            c8 = None if na("ct2", "int8") else summarize_cell(records, set=key, beam=beam, engine="ct2",
                                                                compute_type="int8")
            if best_tolk and c8:
                ct, t = best_tolk
                lines.append(
                    f"| {label} | {search} | **tolk fastest ({ct}) vs CT2 int8** "
                    f"| {fmt(t['tokens_per_s'])} ({t['layout']}) | {fmt(c8['tokens_per_s'])} ({c8['layout']}) "
                    f"| **{ratio(t['tokens_per_s'], c8['tokens_per_s'])}** | {fmt(t['wall_s'], 2)} "
                    f"| {fmt(c8['wall_s'], 2)} | {fmt(t['rss_mib'])} | {fmt(c8['rss_mib'])} "
                    f"| {ratio(t['rss_mib'], c8['rss_mib'])} | |")
    # Cold start: speed ratio = CT2 seconds / tolk seconds (> 1: tolk starts faster).
    for ctype in types:
        t = None if na("tolk", ctype) else summarize_cell_cold(records, "tolk", ctype)
        c = None if na("ct2", ctype) else summarize_cell_cold(records, "ct2", ctype)
        if t is None and c is None:
            continue
        lines.append(
            f"| cold start, one short sentence (s) | greedy | {ctype} "
            f"| {seconds(t)} | {seconds(c)} "
            f"| {ratio(c and c['wall_s'], t and t['wall_s'])} | {fmt(t and t['wall_s'], 3)} | {fmt(c and c['wall_s'], 3)} "
            f"| {fmt(t and t['rss_mib'])} | {fmt(c and c['rss_mib'])} "
            f"| {ratio(t and t['rss_mib'], c and c['rss_mib'])} | |")
    notes = ["", "speed tolk/CT2 > 1: tolk is faster (cold start: CT2 seconds / tolk seconds). identical lines: "
             "tolk's and CT2's outputs of the same compute type, CT2's after the transformers clean-up tolk applies."]
    for (engine, ctype), why in sorted(unavailable.items()):
        notes.append(f"n/a: {'tolk' if engine == 'tolk' else 'CTranslate2'} {ctype}: {why}")
    eff = [f"{k} -> {v}" for k, v in ct2_effective.items() if k != v]
    if eff:
        notes.append("CTranslate2 compute types as resolved on this CPU: " + ", ".join(eff))
    if not meta["tolk_has_compute_type"]:
        notes.append("this tolk has no --compute-type: its float32 cells ran without the option")
    notes.append(f"CT2 max_decoding_length {meta['ct2_max_decoding_length']} (tolk's limit for this model); CT2 beam search stops "
                 "when beam-size hypotheses have finished (patience 1), tolk follows transformers "
                 "(early_stopping=False), so beam outputs and work can differ")
    if disturbed:
        notes.append(f"warning: {disturbed} run(s) shared the machine with other processes (>10% of the CPUs); "
                     "see others_share in results.jsonl")
    notes.append("")
    notes.append("command: " + meta["command"])
    return "\n".join(lines + notes) + "\n"


def summarize_cell_cold(records, engine, ctype):
    best = None
    by_layout: dict[str, list] = {}
    for r in records:
        if r["kind"] == "cold" and r["engine"] == engine and r["compute_type"] == ctype and r["rc"] == 0:
            by_layout.setdefault(r["layout"], []).append(r)
    for layout, rs in by_layout.items():
        s = {"layout": layout, "wall_s": statistics.median(r["wall_s"] for r in rs),
             "rss_mib": statistics.median(r["rss_mib"] for r in rs)}
        if best is None or s["wall_s"] < best["wall_s"]:
            best = s
    return best


if __name__ == "__main__":
    main()
