"""Reading and writing the Hugging Face MarianMT directory layout: safetensors, config.json,
generation_config.json, tokenizer_config.json and OPUS-MT style vocab.json files."""
from __future__ import annotations

import json
import os
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .model import MarianConfig, MarianMT

_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2)}


def save_safetensors(path, tensors: dict, dtype: str = "F32", metadata: dict | None = None):
    """Writes the safetensors format: u64 little-endian header length, JSON header (name -> dtype, shape,
    data_offsets relative to the data section), then the raw little-endian data, tensors in name order."""
    np_dtype, _ = _DTYPES[dtype]
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name]
        arr = (t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)).astype(np_dtype)
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)  # keep the data section 8-byte aligned, as the reference writer does
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path) -> dict:
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16, "BF16": None}[info["dtype"]]
        raw = data[base + b:base + e]
        if dt is None:  # bfloat16: widen to float32 by shifting into the high half
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(dt).newbyteorder("<"))
        out[name] = arr.astype(np.float32).reshape(info["shape"])
    return out


def build_vocab(piece_counts: Counter, spm_pieces: list[str]) -> dict:
    """OPUS-MT vocab.json: "</s>": 0, "<unk>": 1, then pieces by descending frequency in the training text
    (ties by the SentencePiece order), every SentencePiece piece included, "<pad>" last."""
    order = {p: i for i, p in enumerate(spm_pieces)}
    pieces = [p for p in spm_pieces if p not in ("<unk>", "<s>", "</s>", "<pad>")]
    pieces.sort(key=lambda p: (-piece_counts.get(p, 0), order[p]))
    vocab = {"</s>": 0, "<unk>": 1}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    vocab["<pad>"] = len(vocab)
    return vocab


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def save_model_dir(out_dir, model: MarianMT, src_spm: str, tgt_spm: str, vocab: dict, target_vocab: dict | None,
                   source_lang: str, target_lang: str, dtype: str = "F32", extra_generation: dict | None = None):
    """Writes a complete MarianMT directory that transformers' MarianMTModel/MarianTokenizer and tolk both load."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = model.config
    write_json(out / "config.json", c.to_hf())
    gen = {"bad_words_ids": [[c.pad_token_id]], "bos_token_id": c.bos_token_id,
           "decoder_start_token_id": c.decoder_start_token_id, "eos_token_id": c.eos_token_id,
           "forced_eos_token_id": c.forced_eos_token_id, "max_length": c.max_length, "num_beams": c.num_beams,
           "pad_token_id": c.pad_token_id}
    gen.update(extra_generation or {})
    write_json(out / "generation_config.json", gen)
    save_safetensors(out / "model.safetensors", model.hf_state_dict(), dtype=dtype, metadata={"format": "pt"})
    for src, name in ((src_spm, "source.spm"), (tgt_spm, "target.spm")):
        with open(src, "rb") as fi, open(out / name, "wb") as fo:
            fo.write(fi.read())
    write_json(out / "vocab.json", vocab)
    separate = target_vocab is not None
    if separate:
        write_json(out / "target_vocab.json", target_vocab)
    write_json(out / "tokenizer_config.json", {
        "source_lang": source_lang, "target_lang": target_lang, "separate_vocabs": separate,
        "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "model_max_length": 512,
        "sp_model_kwargs": {}, "tokenizer_class": "MarianTokenizer"})


def load_model_dir(model_dir) -> MarianMT:
    d = Path(model_dir)
    cfg = json.loads((d / "config.json").read_text())
    gen_path = d / "generation_config.json"
    if gen_path.exists():
        cfg.update({k: v for k, v in json.loads(gen_path.read_text()).items() if k in ("num_beams", "max_length")})
    model = MarianMT(MarianConfig.from_hf(cfg))
    model.load_hf_state_dict(load_safetensors(d / "model.safetensors"))
    model.eval()
    return model
