#!/usr/bin/env python3
"""Scores a model directory on the dev sets with the tolk binary itself: translates each set with greedy search
and with beam 4 (`tolk translate`), then scores with `tolk eval` (sacreBLEU-compatible BLEU and chrF).
Writes <out>/scores.json and <out>/scores.md (the table that goes into the model card) plus the translations.

  /usr/bin/python3 scripts/evaluate.py --model models/en-de --data ../shared/data --out work/eval/en-de
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANG3 = {"en": "eng", "de": "deu", "fr": "fra"}


def dev_sets(data: Path, src: str, tgt: str):
    """(name, source file, reference file) for every dev set in data/dev that covers the pair."""
    d = data / "dev"
    yield "multi30k test_2016_flickr", d / f"multi30k/test_2016_flickr.{src}.gz", d / f"multi30k/test_2016_flickr.{tgt}.gz"
    yield "FLORES-200 dev", d / f"flores/{LANG3[src]}_Latn.dev", d / f"flores/{LANG3[tgt]}_Latn.dev"
    for year in (2014, 2019):
        yield f"newstest{year}", d / f"wmt/newstest{year}.{src}-{tgt}.{src}", d / f"wmt/newstest{year}.{src}-{tgt}.{tgt}"


def plain(path: Path, out_dir: Path) -> Path:
    """tolk reads plain text: decompress .gz inputs into the output folder."""
    if path.suffix != ".gz":
        return path
    out = out_dir / path.stem
    out.write_bytes(gzip.decompress(path.read_bytes()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="data directory with dev/ (as ../shared/data)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tolk", type=Path, default=ROOT / "build/tolk")
    ap.add_argument("--beams", default="1,4", help="comma-separated beam sizes")
    ap.add_argument("--threads", type=int, default=0,
                    help="tolk's --threads (0: tolk's default for a corpus, one single-threaded worker per core)")
    args = ap.parse_args()

    tok = json.loads((args.model / "tokenizer_config.json").read_text())
    src, tgt = tok["source_lang"], tok["target_lang"]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, fs, fr in dev_sets(args.data, src, tgt):
        if not fs.exists() or not fr.exists():
            print(f"evaluate: {name} not found under {args.data}, skipped", file=sys.stderr)
            continue
        fs, fr = plain(fs, args.out), plain(fr, args.out)
        n_lines = len(fs.read_text(encoding="utf-8").splitlines())
        for beam in (int(b) for b in args.beams.split(",")):
            hyp = args.out / f"{name.replace(' ', '_')}.beam{beam}.{tgt}"
            cmd = [str(args.tolk), "translate", "-m", str(args.model), "--beam", str(beam),
                   *(["--threads", str(args.threads)] if args.threads else []), "-i", str(fs), "-o", str(hyp), "--quiet"]
            t0 = time.time()
            subprocess.run(cmd, check=True)
            seconds = time.time() - t0
            res = subprocess.run([str(args.tolk), "eval", "-r", str(fr), "-i", str(hyp), "--json"], check=True,
                                 capture_output=True, text=True)
            scores = json.loads(res.stdout)
            row = {"set": name, "lines": n_lines, "beam": beam, "seconds": round(seconds, 1),
                   "command": " ".join(cmd), **scores}
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "scores.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [f"| dev set | lines | search | BLEU | chrF | time (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        search = "greedy" if r["beam"] == 1 else f"beam {r['beam']}"
        lines.append(f"| {r['set']} | {r['lines']} | {search} | {r['bleu']['score']:.1f} | {r['chrf']['score']:.1f} "
                     f"| {r['seconds']} |")
    (args.out / "scores.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
