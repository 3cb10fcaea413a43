#!/usr/bin/env python3
"""Builds the tiny MarianMT fixtures under tests/data/ (tiny-joint, tiny-separate) and their golden.json outputs
from the PyTorch reference (scripts/tolkpy). Deterministic: fixed seeds, one thread, fixed step counts.

    /usr/bin/python3 scripts/make_fixtures.py [--data ../shared/data] [--out tests/data]

The training text (Multi30k en-de, the first --lines pairs) is decompressed to a temporary directory; no data file
is copied into the repository.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tolkpy.hf_io import build_vocab, load_model_dir, save_model_dir  # noqa: E402
from tolkpy.model import MarianConfig, MarianMT  # noqa: E402
from tolkpy.reference import GenOptions, _Decoder, beam_search, greedy, teacher_forced  # noqa: E402
from tolkpy.tokenizer import MarianTokenizer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

VARIANTS = {
    # Joint vocabulary, every embedding tied (model.shared.weight only), float32 weights.
    "tiny-joint": dict(joint=True, vocab=800, d_model=32, ffn=64, dtype="F32", steps=800, seed=11),
    # Separate vocabularies (source larger than target), untied encoder/decoder embeddings, float16 weights (the
    # goldens are computed from the reloaded, f16-rounded weights).
    "tiny-separate": dict(joint=False, src_vocab=640, tgt_vocab=520, d_model=48, ffn=96, dtype="F16", steps=700,
                          seed=23),
}

MAX_LENGTH = 64
NUM_BEAMS = 4
LOGITS_MAX_POSITIONS = 16  # teacher-forced logits are stored for at most this many decoder positions

TOKENIZE_TEXTS = [
    "A man in a blue shirt is riding a bicycle.",
    "",
    ">>deu<< Two dogs are playing in the snow.",
    "Ein Café für 5€ — naïve 你好 ☃!",
    "Hello,world!!  (test) ... \"quoted\" ; colon: end?",
    "   leading and   inner   spaces   ",
    "The children don't see the girl's red ball.",
    "1234 56.7 -- 8:30 pm, 3/4",
]

CASE_TEXTS = [
    "A man is riding a bike.",
    "Two young girls are playing in the park with a dog.",
    "A woman in a red dress walks down the street.",
    "People are sitting outside a cafe.",
    "A boy jumps into the water while his friends watch from the dock.",
]

BATCH_TEXTS = [
    "A dog runs.",
    "A group of men in orange vests are working on the road near a large truck.",
    "Children play soccer.",
    "",
    "An older man with a hat is sitting on a bench and reading a newspaper in the sun.",
]

SHORT_TEXTS = [  # decoded with a small max_new_tokens so the forced </s> cuts them
    "Two young girls are playing in the park with a dog.",
    "A man is riding a bike.",
]
SHORT_MAX_NEW_TOKENS = 5

DETOKENIZE_TEXTS = [  # target-side text whose pieces exercise the clean-up rules
    "Ein Mann , eine Frau . Ja ! Wie ? ",
    "I do n't know ; I 'm sure it 's what we 've seen , they 're here .",
    "Er sagt ' hallo ' zu mir",
]


def read_gz_lines(path: Path, n: int) -> list[str]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(line.rstrip("\n"))
            if len(out) == n:
                break
    return out


def train_spm(tmp: Path, name: str, inputs: list[Path], vocab_size: int) -> Path:
    # Run inside tmp with relative names: the model stores its trainer options, and a random temp path there would
    # make regenerated files differ.
    subprocess.run(["spm_train", f"--input={','.join(p.name for p in inputs)}", f"--model_prefix={name}",
                    f"--vocab_size={vocab_size}", "--model_type=unigram", "--character_coverage=1.0",
                    "--num_threads=1", "--minloglevel=2", "--seed_sentencepiece_size=200000"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    return tmp / f"{name}.model"


def make_vocab(model_path: Path, texts: list[list[str]], extra: tuple = ()) -> dict:
    """extra: entries that are no SentencePiece piece (language tags), placed after the pieces, before <pad>."""
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    counts = Counter()
    for lines in texts:
        for line in lines:
            counts.update(sp.encode(line, out_type=str))
    return build_vocab(counts, [sp.id_to_piece(i) for i in range(sp.get_piece_size())] + list(extra))


def train(model: MarianMT, tok: MarianTokenizer, src_lines, tgt_lines, steps: int, seed: int, log):
    """Teacher-forced cross-entropy with Adam on length-sorted batches; a fixed step count keeps it reproducible."""
    c = model.config
    pairs = [(tok.encode(s)[:63], tok.encode_target(t)[:63]) for s, t in zip(src_lines, tgt_lines)]
    rng = random.Random(seed)
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][1]), len(pairs[i][0])))
    batches = [order[i:i + 48] for i in range(0, len(order), 48)]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    src_pad = tok.pad_id
    model.train()
    t0 = time.time()
    step = 0
    while step < steps:
        rng.shuffle(batches)
        for idx in batches:
            if step >= steps:
                break
            src = [pairs[i][0] for i in idx]
            tgt = [pairs[i][1] for i in idx]
            sl, tl = max(map(len, src)), max(map(len, tgt))
            src_ids = torch.tensor([s + [src_pad] * (sl - len(s)) for s in src])
            dec_in = torch.tensor([[c.decoder_start_token_id] + t[:-1] + [c.pad_token_id] * (tl - len(t))
                                   for t in tgt])
            labels = torch.tensor([t + [-100] * (tl - len(t)) for t in tgt])
            keep = torch.tensor([[1] * len(s) + [0] * (sl - len(s)) for s in src], dtype=torch.bool)
            mask = ((~keep).to(torch.float32) * -1e9)[:, None, None, :]
            memory = model.encode(src_ids, mask)
            logits = model.decode(dec_in, memory, mask)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
            lr = 3e-3 * min(1.0, (step + 1) / 100) * min(1.0, math.sqrt(400 / (step + 1)))
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if step % 200 == 0 or step == steps:
                log(f"  step {step} loss {loss.item():.3f} ({time.time() - t0:.0f}s)")
    model.eval()


def r7(x: float) -> float:
    return float(f"{x:.7g}")


def tensor_json(t: torch.Tensor) -> dict:
    return {"shape": list(t.shape), "data": [r7(v) for v in t.reshape(-1).tolist()]}


def hyp_json(h) -> dict:
    return {"ids": h.ids, "score": r7(h.score)}


def check_reference(model: MarianMT, tok: MarianTokenizer, src_list: list, log):
    """Self-consistency of the oracle: beam 1 == greedy, batch == single, incremental == teacher-forced."""
    pad = tok.pad_id
    g_opts = GenOptions(num_beams=1, max_length=MAX_LENGTH)
    b_opts = GenOptions(num_beams=NUM_BEAMS, max_length=MAX_LENGTH, nbest=NUM_BEAMS)
    singles_g = [greedy(model, [s], g_opts, pad)[0] for s in src_list]
    singles_b = [beam_search(model, [s], b_opts, pad)[0] for s in src_list]
    beam1 = [beam_search(model, [s], GenOptions(num_beams=1, max_length=MAX_LENGTH), pad)[0] for s in src_list]
    for g, b in zip(singles_g, beam1):
        assert g[0].ids == b[0].ids, f"beam 1 {b[0].ids} != greedy {g[0].ids}"
        assert abs(g[0].score - b[0].score) < 1e-4, (g[0].score, b[0].score)
    batch_g = greedy(model, src_list, g_opts, pad)
    batch_b = beam_search(model, src_list, b_opts, pad)
    for s, b in zip(singles_g, batch_g):
        assert s[0].ids == b[0].ids, "batched greedy differs from single"
    for s, b in zip(singles_b, batch_b):
        assert [h.ids for h in s] == [h.ids for h in b], "batched beam differs from single"
        for x, y in zip(s, b):
            assert abs(x.score - y.score) < 1e-4
    for s, g in zip(src_list, singles_g):
        tgt_in = [model.config.decoder_start_token_id] + g[0].ids[:-1]
        _, full = teacher_forced(model, s, tgt_in, pad)
        dec = _Decoder(model, [s], 1, pad)
        with torch.no_grad():
            inc = torch.stack([dec.step(torch.tensor([t]))[0] for t in tgt_in])
        err = (inc - full).abs().max().item()
        assert err < 1e-4, f"incremental vs teacher-forced logits differ by {err}"
    log(f"  reference checks passed on {len(src_list)} sentences")
    return singles_g, singles_b


def build_variant(name: str, spec: dict, src_lines, tgt_lines, tmp: Path, out_root: Path, log):
    log(f"== {name}")
    torch.manual_seed(spec["seed"])
    np.random.seed(spec["seed"])
    src_txt, tgt_txt = tmp / f"{name}.en", tmp / f"{name}.de"
    src_txt.write_text("\n".join(src_lines) + "\n", encoding="utf-8")
    tgt_txt.write_text("\n".join(tgt_lines) + "\n", encoding="utf-8")
    if spec["joint"]:
        sp = train_spm(tmp, f"{name}-joint", [src_txt, tgt_txt], spec["vocab"])
        src_sp = tgt_sp = sp
        # A multilingual-style target-language tag, so that tag lookup is tested (the separate variant lacks it,
        # so there the tag becomes <unk>).
        vocab = make_vocab(sp, [src_lines, tgt_lines], extra=(">>deu<<",))
        target_vocab = None
        vs = vt = len(vocab)
    else:
        src_sp = train_spm(tmp, f"{name}-src", [src_txt], spec["src_vocab"])
        tgt_sp = train_spm(tmp, f"{name}-tgt", [tgt_txt], spec["tgt_vocab"])
        vocab = make_vocab(src_sp, [src_lines])
        target_vocab = make_vocab(tgt_sp, [tgt_lines])
        vs, vt = len(vocab), len(target_vocab)
        assert vs > vt, "the config's pad id (the target <pad>) must be a valid source id"
    pad = (target_vocab or vocab)["<pad>"]
    cfg = MarianConfig(vocab_size=vs, decoder_vocab_size=vt, d_model=spec["d_model"], encoder_layers=2,
                       decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                       encoder_ffn_dim=spec["ffn"], decoder_ffn_dim=spec["ffn"], max_position_embeddings=512,
                       activation_function="swish", scale_embedding=True,
                       share_encoder_decoder_embeddings=spec["joint"], tie_word_embeddings=True,
                       pad_token_id=pad, eos_token_id=0, bos_token_id=0, decoder_start_token_id=pad,
                       forced_eos_token_id=0, dropout=0.0, num_beams=NUM_BEAMS, max_length=MAX_LENGTH)
    model = MarianMT(cfg)
    if not spec["joint"]:
        # The encoder's padding row is the source vocabulary's <pad>, not the config's (target) pad id.
        enc = model.model.encoder.embed_tokens
        src_pad = vocab["<pad>"]
        with torch.no_grad():
            enc.weight[pad].normal_(0.0, 0.02)
            enc.weight[src_pad].zero_()
        enc.padding_idx = src_pad
    # A nonzero final_logits_bias so that applying it is tested.
    with torch.no_grad():
        model.final_logits_bias.normal_(0.0, 0.05)

    out_dir = out_root / name
    tmp_dir = tmp / f"{name}-pre"
    save_model_dir(tmp_dir, model, str(src_sp), str(tgt_sp), vocab, target_vocab, "en", "de")
    tok = MarianTokenizer(tmp_dir)
    train(model, tok, src_lines, tgt_lines, spec["steps"], spec["seed"], log)
    save_model_dir(out_dir, model, str(src_sp), str(tgt_sp), vocab, target_vocab, "en", "de", dtype=spec["dtype"])

    # Goldens come from the saved directory (f16-rounded weights for the F16 variant).
    model = load_model_dir(out_dir)
    torch.set_grad_enabled(False)
    tok = MarianTokenizer(out_dir)
    golden = {"variant": name, "options": {
        "num_beams": NUM_BEAMS, "max_length": MAX_LENGTH, "length_penalty": 1.0, "early_stopping": False,
        "greedy": "num_beams=1, same max_length; score = sum of processed log-probs / generated tokens",
        "logits_positions": f"tgt_input_ids = [decoder_start] + greedy ids, at most {LOGITS_MAX_POSITIONS}",
        "short_cases_max_new_tokens": SHORT_MAX_NEW_TOKENS,
        "weights_dtype": spec["dtype"]}}

    golden["tokenize"] = [{"text": t, "pieces": tok.encode_pieces(t), "ids": tok.encode(t)} for t in TOKENIZE_TEXTS]

    specials = [tok.target_vocab[s] for s in ("</s>", "<pad>", "<unk>")]
    tgt_unk = tok.target_vocab["<unk>"]
    detok = []
    for t in DETOKENIZE_TEXTS:
        ids = [tok.target_vocab.get(p, tgt_unk) for p in tok.spm_target.encode(t, out_type=str)]
        detok.append(ids + [specials[0]])
    # Special ids in the middle and at the ends are dropped.
    detok.append([specials[1], specials[2]] + detok[0][:4] + [specials[2], specials[0]] + detok[0][4:])
    detok.append([specials[0]])
    detok.append([])

    src_cases = [tok.encode(t) for t in CASE_TEXTS]
    src_batch = [tok.encode(t) for t in BATCH_TEXTS]
    singles_g, singles_b = check_reference(model, tok, src_cases + src_batch, log)

    cases = []
    for i, (text, src) in enumerate(zip(CASE_TEXTS, src_cases)):
        g, b = singles_g[i], singles_b[i]
        tgt_in = ([cfg.decoder_start_token_id] + g[0].ids)[:LOGITS_MAX_POSITIONS]
        enc_out, logits = teacher_forced(model, src, tgt_in, tok.pad_id)
        cases.append({"text": text, "src_ids": src, "encoder_out": tensor_json(enc_out),
                      "tgt_input_ids": tgt_in, "logits": tensor_json(logits),
                      "greedy": hyp_json(g[0]), "beam4": [hyp_json(h) for h in b],
                      "greedy_text": tok.decode(g[0].ids), "beam4_text": tok.decode(b[0].ids)})
        detok.append(g[0].ids)
    golden["detokenize"] = [{"ids": ids, "text": tok.decode(ids)} for ids in detok]
    golden["cases"] = cases

    bg = greedy(model, src_batch, GenOptions(num_beams=1, max_length=MAX_LENGTH), tok.pad_id)
    bb = beam_search(model, src_batch, GenOptions(num_beams=NUM_BEAMS, max_length=MAX_LENGTH), tok.pad_id)
    golden["batch"] = {"texts": BATCH_TEXTS, "src_ids": src_batch, "greedy": [h[0].ids for h in bg],
                       "beam4": [h[0].ids for h in bb], "greedy_scores": [r7(h[0].score) for h in bg],
                       "beam4_scores": [r7(h[0].score) for h in bb]}

    short = []
    for text in SHORT_TEXTS:
        src = tok.encode(text)
        g = greedy(model, [src], GenOptions(num_beams=1, max_new_tokens=SHORT_MAX_NEW_TOKENS), tok.pad_id)[0]
        b = beam_search(model, [src], GenOptions(num_beams=NUM_BEAMS, max_new_tokens=SHORT_MAX_NEW_TOKENS,
                                                 nbest=NUM_BEAMS), tok.pad_id)[0]
        short.append({"text": text, "src_ids": src, "max_new_tokens": SHORT_MAX_NEW_TOKENS,
                      "greedy": hyp_json(g[0]), "beam4": [hyp_json(h) for h in b]})
    golden["short_cases"] = short

    with open(out_dir / "golden.json", "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")

    for c in cases:
        log(f"  greedy {len(c['greedy']['ids'])} tok: {c['greedy_text']!r} | beam: {c['beam4_text']!r}")
    lens = [len(h[0].ids) for h in singles_g]
    ended = sum(1 for h in singles_g if h[0].ids and h[0].ids[-1] == cfg.eos_token_id and len(h[0].ids) < MAX_LENGTH - 1)
    log(f"  greedy lengths {lens}; {ended} end with </s> before max_length; "
        f"{len(set(tuple(h[0].ids) for h in singles_g))} distinct outputs")
    size = sum(p.stat().st_size for p in out_dir.iterdir())
    log(f"  wrote {out_dir} ({size / 1e6:.2f} MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data")
    ap.add_argument("--lines", type=int, default=4000)
    ap.add_argument("--only", choices=sorted(VARIANTS), action="append")
    ap.add_argument("--steps", type=int, help="override the training steps (quick trial runs only)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    m30k = args.data / "train" / "multi30k"
    src_lines = read_gz_lines(m30k / "train.en.gz", args.lines)
    tgt_lines = read_gz_lines(m30k / "train.de.gz", args.lines)
    assert len(src_lines) == len(tgt_lines) == args.lines

    def log(msg):
        print(msg, flush=True)

    with tempfile.TemporaryDirectory(prefix="tolk-fixtures-") as tmp:
        for name in (args.only or VARIANTS):
            torch.set_grad_enabled(True)
            spec = dict(VARIANTS[name], **({"steps": args.steps} if args.steps else {}))
            build_variant(name, spec, src_lines, tgt_lines, Path(tmp), args.out, log)


if __name__ == "__main__":
    main()
