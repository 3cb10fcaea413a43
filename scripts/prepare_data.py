#!/usr/bin/env python3
"""Builds a clean parallel training corpus for one language pair from the public sets in a data directory
(laid out as ../shared/data: see --help), or downloads them first with --download.

Steps: read every training set for the pair, Unicode NFC + whitespace normalisation, drop empty, overlong and
badly length-mismatched pairs, remove any pair whose source or target side occurs in an evaluation/dev set
(so scores are measured on unseen data), deduplicate, optionally repeat an in-domain set, shuffle, and write
train.SRC / train.TGT plus a held-out validation set for checkpoint selection. A stats.json records every count.

  /usr/bin/python3 scripts/prepare_data.py --data ../shared/data --src en --tgt de --out work/data/en-de
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import unicodedata
import urllib.request
from pathlib import Path

LANG3 = {"en": "eng", "de": "deu", "fr": "fra"}
# Public upstream addresses, for users who do not have the data directory (see ../shared/data/README.md).
UPSTREAM = {
    "multi30k": "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{split}.{lang}.gz",
    "tatoeba": "https://www.manythings.org/anki/{l3}-eng.zip",
    "europarl": "https://www.statmt.org/europarl/v7/{pair}.tgz",
    "bcontrast": "https://github.com/Unbabel/BConTrasT",
    "newstest": "https://www.statmt.org/wmt14/dev.tgz",
}


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as f:
        text = f.read()
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def normalise(s: str) -> str:
    s = unicodedata.normalize("NFC", s)
    s = s.replace("\u00a0", " ").replace("\u200b", "")
    return re.sub(r"\s+", " ", s).strip()


def pair_files(data: Path, src: str, tgt: str):
    """Yields (corpus name, src file, tgt file) for every training set of the pair that exists under data/train."""
    t = data / "train"
    other = tgt if src == "en" else src
    l3 = LANG3[other]
    yield "multi30k", t / f"multi30k/train.{src}.gz", t / f"multi30k/train.{tgt}.gz"
    yield "tatoeba", t / f"tatoeba/{l3}-eng/tatoeba.{LANG3[src]}.gz", t / f"tatoeba/{l3}-eng/tatoeba.{LANG3[tgt]}.gz"
    for f in sorted((t / "europarl").glob(f"europarl-v7.{other}-en.*.{src}.gz")):
        yield "europarl", f, Path(str(f)[: -len(f".{src}.gz")] + f".{tgt}.gz")
    if other == "de":
        yield "bcontrast", t / f"bcontrast/train.{src}", t / f"bcontrast/train.{tgt}"
    for f in sorted((t / "newstest").glob(f"*.en-{other}.{src}.gz")):
        yield "newstest", f, Path(str(f)[: -len(f".{src}.gz")] + f".{tgt}.gz")


def eval_lines(data: Path) -> set[str]:
    """Every line of every dev/test set, normalised: none of them may appear in training."""
    seen = set()
    for f in (data / "dev").rglob("*"):
        if f.is_file() and not f.name.startswith(("README", "LICENSE")):
            seen.update(normalise(line) for line in read_lines(f))
    seen.discard("")
    return seen


def keep_pair(s: str, t: str, max_words: int, max_ratio: float) -> str | None:
    """Returns the reason a pair is dropped, or None to keep it."""
    if not s or not t:
        return "empty"
    ws, wt = len(s.split()), len(t.split())
    if ws > max_words or wt > max_words:
        return "overlong"
    ls, lt = len(s), len(t)
    if max(ls, lt) > 12 and max(ls, lt) / max(1, min(ls, lt)) > max_ratio:
        return "length_ratio"
    if s == t and ws > 3:
        return "untranslated"
    return None


def download(data: Path, src: str, tgt: str):
    """Fetches Multi30k (the only set with stable per-file URLs) into data/train/multi30k; prints where the others
    come from, since their archives need unpacking into the same layout (see ../shared/data/README.md)."""
    dest = data / "train" / "multi30k"
    dest.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        for lang in (src, tgt):
            out = dest / f"{split}.{lang}.gz"
            if not out.exists():
                url = UPSTREAM["multi30k"].format(split=split, lang=lang)
                print(f"downloading {url}", file=sys.stderr)
                urllib.request.urlretrieve(url, out)
    for name in ("tatoeba", "europarl", "bcontrast", "newstest"):
        print(f"{name}: get it from {UPSTREAM[name]} and unpack into {data}/train/{name}/", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="data directory (train/ and dev/ as in ../shared/data)")
    ap.add_argument("--src", required=True, choices=sorted(LANG3))
    ap.add_argument("--tgt", required=True, choices=sorted(LANG3))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-words", type=int, default=100)
    ap.add_argument("--max-ratio", type=float, default=2.5, help="max character-length ratio between sides")
    ap.add_argument("--repeat", action="append", default=[], metavar="CORPUS=N",
                    help="repeat an (in-domain) corpus N times, e.g. multi30k=3")
    ap.add_argument("--valid-size", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--download", action="store_true", help="fetch the public sets that can be fetched directly")
    args = ap.parse_args()
    if args.download:
        download(args.data, args.src, args.tgt)

    repeat = {k: int(v) for k, v in (r.split("=") for r in args.repeat)}
    banned = eval_lines(args.data)
    stats = {"pair": f"{args.src}-{args.tgt}", "corpora": {}, "dropped": {}}
    seen, pairs = set(), []
    for name, fs, ft in pair_files(args.data, args.src, args.tgt):
        if not fs.exists() or not ft.exists():
            print(f"prepare_data: {fs} or {ft} missing, skipping", file=sys.stderr)
            continue
        ls, lt = read_lines(fs), read_lines(ft)
        if len(ls) != len(lt):
            sys.exit(f"prepare_data: {fs} has {len(ls)} lines but {ft} has {len(lt)}")
        kept = []
        for s, t in zip(ls, lt):
            s, t = normalise(s), normalise(t)
            why = keep_pair(s, t, args.max_words, args.max_ratio)
            if why is None and (s in banned or t in banned):
                why = "in_dev_set"
            if why is None and (s, t) in seen:
                why = "duplicate"
            if why:
                stats["dropped"][why] = stats["dropped"].get(why, 0) + 1
                continue
            seen.add((s, t))
            kept.append((s, t))
        c = stats["corpora"].setdefault(name, {"read": 0, "kept": 0})
        c["read"] += len(ls)
        c["kept"] += len(kept)
        pairs.extend((name, s, t) for s, t in kept)

    rng = random.Random(args.seed)
    rng.shuffle(pairs)
    valid, train = pairs[: args.valid_size], pairs[args.valid_size:]
    train = [p for p in train for _ in range(repeat.get(p[0], 1))]
    rng.shuffle(train)
    stats["repeat"] = repeat
    stats["train_pairs"], stats["valid_pairs"] = len(train), len(valid)
    args.out.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("valid", valid)):
        for side, lang in ((1, args.src), (2, args.tgt)):
            with open(args.out / f"{split}.{lang}", "w", encoding="utf-8") as f:
                f.writelines(r[side] + "\n" for r in rows)
    (args.out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
