#!/usr/bin/env python3
"""Hostile model directories for tolk (issue #9), built from the fixtures in tests/data into a temporary directory
(nothing large is committed): truncations, bad offsets, dtype and shape mismatches, overflowing shapes, NaN and Inf
weights, deeply nested JSON, huge numbers, absurd config values, symlink loops, FIFOs, /dev/zero and directories
in place of files.

With --tolk BIN, runs `BIN -m DIR --beam 1 --max-new-tokens 4 Hello.` on each and checks that it exits 2 with ONE
line on stderr naming the file at fault, within --time-limit seconds (1 by default; the build's ASan binary is the
intended one). Without it, builds the directories into --out DIR (default: a fresh temporary directory) and lists them.

    /usr/bin/python3 tests/hostile/make_hostile.py --tolk build-asan/tolk [--time-limit 1] [--keep]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data"


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


# --- safetensors helpers ---------------------------------------------------------------------------------------

def read_st(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_st(path: Path, header: dict | str, data: bytes, header_len: int | None = None) -> None:
    text = header if isinstance(header, str) else json.dumps(header)
    h = text.encode()
    path.write_bytes(struct.pack("<Q", len(h) if header_len is None else header_len) + h + data)


def first_f32(header: dict, suffix: str) -> str:
    return next(k for k, v in sorted(header.items())
                if k != "__metadata__" and v["dtype"] == "F32" and k.endswith(suffix))


def poke_float(path: Path, tensor_suffix: str, value: float) -> None:
    header, data = read_st(path)
    name = first_f32(header, tensor_suffix)
    begin = header[name]["data_offsets"][0] + 4 * 3
    data = data[:begin] + struct.pack("<f", value) + data[begin + 4:]
    write_st(path, header, data)


# --- the cases -------------------------------------------------------------------------------------------------

def edit_json(path: Path, **changes) -> None:
    j = json.loads(path.read_text())
    j.update(changes)
    path.write_text(json.dumps(j))


def cases():
    """(name, fixture, file the error must name, function(model_dir) that breaks it)."""
    def replace_with_dir(name):
        def f(d: Path):
            (d / name).unlink()
            (d / name).mkdir()
        return f

    def replace_with_fifo(name):
        def f(d: Path):
            (d / name).unlink()
            os.mkfifo(d / name)
        return f

    def replace_with_loop(name):
        def f(d: Path):
            (d / name).unlink()
            os.symlink(name, d / name)
        return f

    def replace_with_zero(name):
        def f(d: Path):
            (d / name).unlink()
            os.symlink("/dev/zero", d / name)
        return f

    def truncate(name, keep):
        def f(d: Path):
            raw = (d / name).read_bytes()
            (d / name).write_bytes(raw[:keep if keep >= 0 else len(raw) + keep])
        return f

    def prepend_json(name, text):
        def f(d: Path):
            t = (d / name).read_text()
            (d / name).write_text("{" + text + ", " + t.lstrip()[1:])
        return f

    def st(fn):
        def f(d: Path):
            header, data = read_st(d / "model.safetensors")
            fn(d / "model.safetensors", header, data)
        return f

    def shift_offsets(p, h, data):
        name = first_f32(h, "fc1.weight")
        b, e = h[name]["data_offsets"]
        h[name]["data_offsets"] = [b + 4, e + 4]
        write_st(p, h, data)

    def past_end(p, h, data):
        name = first_f32(h, "fc2.bias")
        b, e = h[name]["data_offsets"]
        h[name]["data_offsets"] = [len(data) - (e - b) + 8, len(data) + 8]
        write_st(p, h, data)

    def dtype_f16(p, h, data):
        h[first_f32(h, "q_proj.weight")]["dtype"] = "F16"
        write_st(p, h, data)

    def dtype_bad(p, h, data):
        h[first_f32(h, "q_proj.weight")]["dtype"] = "I64"
        write_st(p, h, data)

    def shape_swap(p, h, data):
        name = first_f32(h, "fc1.weight")
        h[name]["shape"] = list(reversed(h[name]["shape"]))
        write_st(p, h, data)

    def shape_overflow(p, h, data):
        h[first_f32(h, "fc1.weight")]["shape"] = [2 ** 32, 2 ** 32, 2 ** 32]
        write_st(p, h, data)

    def header_len_huge(p, h, data):
        write_st(p, h, data, header_len=2 ** 63)

    def header_nested(p, h, data):
        text = json.dumps(h)
        write_st(p, '{"__metadata__": {"x": ' + nested(100000, '"y"') + '}, ' + text[1:], data)

    def header_entry_nested(p, h, data):
        text = json.dumps(h)
        write_st(p, '{"t": {"dtype": "F32", "shape": ' + nested(100000) + ', "data_offsets": [0, 4]}, ' + text[1:],
                 data)

    def header_overflow(p, h, data):
        text = json.dumps(h)
        write_st(p, '{"__metadata__": {"x": 1e400}, ' + text[1:], data)

    def header_garbage(p, h, data):
        write_st(p, "\x00\xff not json", data)

    def nan(p, h, data):
        poke_float(p, "q_proj.weight", math.nan)

    def inf(p, h, data):
        poke_float(p, "fc2.weight", -math.inf)

    j = "tiny-joint"
    out = [
        ("config-truncated", j, "config.json", truncate("config.json", 100)),
        ("config-nested", j, "config.json", lambda d: (d / "config.json").write_text('{"a": ' + nested(100000) + "}")),
        ("config-1e400-ignored-key", j, "config.json", prepend_json("config.json", '"dropout2": 1e400')),
        ("config-encoder-layers-1e9", j, "config.json", lambda d: edit_json(d / "config.json", encoder_layers=10 ** 9)),
        ("config-decoder-layers-200", j, "model.safetensors",
         lambda d: edit_json(d / "config.json", decoder_layers=200)),
        ("config-positions-5e7", j, "config.json",
         lambda d: edit_json(d / "config.json", max_position_embeddings=5 * 10 ** 7)),
        ("config-positions-2^31-1", j, "config.json",
         lambda d: edit_json(d / "config.json", max_position_embeddings=2 ** 31 - 1)),
        ("config-d-model-2^40", j, "config.json", lambda d: edit_json(d / "config.json", d_model=2 ** 40)),
        ("config-d-model-64", j, "model.safetensors", lambda d: edit_json(d / "config.json", d_model=64)),
        ("config-vocab-negative", j, "config.json", lambda d: edit_json(d / "config.json", vocab_size=-5)),
        ("config-ffn-huge", j, "config.json", lambda d: edit_json(d / "config.json", encoder_ffn_dim=2 ** 30)),
        ("config-num-beams-100000", j, "config.json", lambda d: edit_json(d / "config.json", num_beams=100000)),
        ("config-bad-words-huge-id", j, "config.json",
         lambda d: edit_json(d / "config.json", bad_words_ids=[[2 ** 40]])),
        ("generation-num-beams-100000", j, "generation_config.json",
         lambda d: edit_json(d / "generation_config.json", num_beams=100000)),
        ("generation-nested", j, "generation_config.json",
         lambda d: (d / "generation_config.json").write_text('{"x": ' + nested(100000) + "}")),
        ("generation-1e400", j, "generation_config.json",
         prepend_json("generation_config.json", '"length_penalty": 1e400')),
        ("generation-directory", j, "generation_config.json", replace_with_dir("generation_config.json")),
        ("generation-fifo", j, "generation_config.json", replace_with_fifo("generation_config.json")),
        ("tokenizer-config-nested", j, "tokenizer_config.json",
         lambda d: (d / "tokenizer_config.json").write_text('{"x": ' + nested(100000) + "}")),
        ("tokenizer-config-fifo", j, "tokenizer_config.json", replace_with_fifo("tokenizer_config.json")),
        ("tokenizer-config-zero", j, "tokenizer_config.json", replace_with_zero("tokenizer_config.json")),
        ("tokenizer-config-loop", j, "tokenizer_config.json", replace_with_loop("tokenizer_config.json")),
        ("vocab-zero", j, "vocab.json", replace_with_zero("vocab.json")),
        ("vocab-fifo", j, "vocab.json", replace_with_fifo("vocab.json")),
        ("vocab-directory", j, "vocab.json", replace_with_dir("vocab.json")),
        ("vocab-loop", j, "vocab.json", replace_with_loop("vocab.json")),
        ("vocab-1e400", j, "vocab.json", prepend_json("vocab.json", '"zzz": 1e400')),
        ("vocab-nested", j, "vocab.json", lambda d: (d / "vocab.json").write_text(nested(100000))),
        ("vocab-nested-value", j, "vocab.json",
         lambda d: (d / "vocab.json").write_text('{"a": ' + nested(100000) + "}")),
        ("vocab-truncated", j, "vocab.json", truncate("vocab.json", -10)),
        ("vocab-id-huge", j, "vocab.json", prepend_json("vocab.json", '"zzz": 4000000000')),
        ("vocab-id-outside-model", j, "vocab.json", prepend_json("vocab.json", '"zzz": 5000')),
        ("target-vocab-nested", "tiny-separate", "target_vocab.json",
         lambda d: (d / "target_vocab.json").write_text('{"a": ' + nested(100000) + "}")),
        ("weights-empty", j, "model.safetensors", truncate("model.safetensors", 0)),
        ("weights-4-bytes", j, "model.safetensors", truncate("model.safetensors", 4)),
        ("weights-truncated-header", j, "model.safetensors", truncate("model.safetensors", 100)),
        ("weights-truncated-data", j, "model.safetensors", truncate("model.safetensors", -1000)),
        ("weights-header-length-2^63", j, "model.safetensors", st(header_len_huge)),
        ("weights-header-garbage", j, "model.safetensors", st(header_garbage)),
        ("weights-offsets-shifted", j, "model.safetensors", st(shift_offsets)),
        ("weights-offsets-past-end", j, "model.safetensors", st(past_end)),
        ("weights-dtype-f16", j, "model.safetensors", st(dtype_f16)),
        ("weights-dtype-i64", j, "model.safetensors", st(dtype_bad)),
        ("weights-shape-swapped", j, "model.safetensors", st(shape_swap)),
        ("weights-shape-overflow", j, "model.safetensors", st(shape_overflow)),
        ("weights-metadata-nested", j, "model.safetensors", st(header_nested)),
        ("weights-shape-nested", j, "model.safetensors", st(header_entry_nested)),
        ("weights-header-1e400", j, "model.safetensors", st(header_overflow)),
        ("weights-nan", j, "model.safetensors", st(nan)),
        ("weights-inf", j, "model.safetensors", st(inf)),
        ("weights-loop", j, "model.safetensors", replace_with_loop("model.safetensors")),
        ("weights-directory", j, "model.safetensors", replace_with_dir("model.safetensors")),
        ("weights-fifo", j, "model.safetensors", replace_with_fifo("model.safetensors")),
        ("weights-zero", j, "model.safetensors", replace_with_zero("model.safetensors")),
        ("source-spm-loop", j, "source.spm", replace_with_loop("source.spm")),
        ("source-spm-truncated", j, "source.spm", truncate("source.spm", 1000)),
        ("source-spm-fifo", j, "source.spm", replace_with_fifo("source.spm")),
        ("target-spm-zero", j, "target.spm", replace_with_zero("target.spm")),
        ("target-spm-directory", j, "target.spm", replace_with_dir("target.spm")),
    ]
    return out


def build(out: Path) -> list[tuple[str, Path, str]]:
    built = []
    for name, fixture, file, breaker in cases():
        d = out / name
        shutil.copytree(FIXTURES / fixture, d)
        (d / "golden.json").unlink(missing_ok=True)
        breaker(d)
        built.append((name, d, file))
    return built


def check(tolk: str, built, time_limit: float) -> int:
    failures = 0
    slowest = 0.0
    for name, d, file in built:
        start = time.monotonic()
        try:
            p = subprocess.run([tolk, "-m", str(d), "--beam", "1", "--max-new-tokens", "4", "Hello."],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=max(30.0, 10 * time_limit))
            rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            rc, err = "timeout", ""
        elapsed = time.monotonic() - start
        slowest = max(slowest, elapsed)
        lines = err.splitlines()
        problems = []
        if rc != 2:
            problems.append(f"exit {rc}")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        if file not in err:
            problems.append(f"does not name {file}")
        if "internal error" in err:
            problems.append("internal error")
        if elapsed > time_limit:
            problems.append(f"took {elapsed:.2f} s")
        status = "ok  " if not problems else "FAIL"
        failures += bool(problems)
        print(f"{status} {name:32s} {elapsed:5.2f}s  {err.strip()[:150]}" + (f"  <- {', '.join(problems)}" if problems else ""))
    print(f"{len(built) - failures}/{len(built)} hostile model directories rejected correctly; slowest {slowest:.2f} s")
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tolk", help="tolk binary to check against every directory")
    ap.add_argument("--out", type=Path, help="where to build the directories (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--time-limit", type=float, default=1.0, help="seconds each rejection may take (default 1)")
    args = ap.parse_args()
    tmp = None
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        out = args.out
    else:
        tmp = tempfile.mkdtemp(prefix="tolk_hostile_")
        out = Path(tmp)
    try:
        built = build(out)
        if not args.tolk:
            for name, d, file in built:
                print(f"{d}  (error must name {file})")
            return 0
        return check(args.tolk, built, args.time_limit)
    finally:
        if tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
