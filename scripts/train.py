#!/usr/bin/env python3
"""Trains a MarianMT model (the architecture tolk runs: post-norm transformer, swish, sinusoidal positions, tied
embeddings, final_logits_bias) on a prepared parallel corpus and writes the Hugging Face MarianMT directory.

- SentencePiece unigram model trained on both sides (joint vocabulary, as OPUS-MT's en-de models have), used as
  source.spm and target.spm; vocab.json built the OPUS-MT way (</s>=0, <unk>=1, pieces by frequency, <pad> last).
- Label-smoothed cross-entropy, Adam (0.9, 0.98) with linear warmup then inverse-square-root decay, batches by
  token count with sentences of similar length together (less padding, so fewer wasted FLOPs), gradient clipping.
- A checkpoint every --ckpt-minutes; rerunning the same command resumes from the last one (wall-clock budget
  included). At the end the last --average checkpoints are averaged; the averaged or the best single checkpoint,
  whichever has the lower validation loss, is exported (early selection on the dev set).

  OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=2 /usr/bin/python3 scripts/train.py --data work/data/en-de \
      --src en --tgt de --run work/runs/en-de --out models/en-de --time-budget 110 --threads 1

Threads, measured on the 2-core development machine (d_model 256, 4+2 layers, 8k vocabulary, target tokens/s):
OPENBLAS_NUM_THREADS=2 with --threads 1 (matrix products on both cores, PyTorch's own element-wise ops on one)
about 1,550; OPENBLAS_NUM_THREADS=1 with --threads 2 about 1,200; both at 2 about 950 (the two thread pools
oversubscribe the cores); 1 and 1, with another job on the other core, about 900. OpenBLAS uses every core when
OPENBLAS_NUM_THREADS is unset, so --threads defaults to 1.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tolkpy.hf_io import build_vocab, save_model_dir, write_json  # noqa: E402
from tolkpy.model import MarianConfig, MarianMT  # noqa: E402


def log(run: Path, msg: str):
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    with open(run / "train.log", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def read(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def train_spm(run: Path, texts: list[Path], vocab_size: int, threads: int, sample: int) -> Path:
    prefix = run / "spm"
    if not (run / "spm.model").exists():
        spm.SentencePieceTrainer.train(
            input=",".join(str(t) for t in texts), model_prefix=str(prefix), vocab_size=vocab_size,
            model_type="unigram", character_coverage=1.0, input_sentence_size=sample, shuffle_input_sentence=True,
            num_threads=threads, hard_vocab_limit=False, bos_id=-1, eos_id=1, unk_id=0, pad_id=-1,
            minloglevel=2)
    return run / "spm.model"


def make_vocab(sp: spm.SentencePieceProcessor, texts: list[list[str]]) -> dict:
    counts = Counter()
    for lines in texts:
        for line in lines:
            counts.update(sp.encode(line, out_type=str))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    return build_vocab(counts, pieces)


def encode_corpus(sp, vocab, lines: list[str], max_len: int) -> list[list[int]]:
    unk, eos = vocab["<unk>"], vocab["</s>"]
    out = []
    for pieces in sp.encode(lines, out_type=str):
        out.append([vocab.get(p, unk) for p in pieces][: max_len - 1] + [eos])
    return out


def make_batches(src, tgt, max_tokens: int, rng: random.Random) -> list[list[int]]:
    """Groups sentence indices of similar length (sorted by target then source length, with a little noise so
    batches differ between epochs) so that padded tokens per batch stay under max_tokens."""
    order = sorted(range(len(src)), key=lambda i: (len(tgt[i]) + rng.random(), len(src[i])))
    batches, cur, width = [], [], 0
    for i in order:
        w = max(width, len(src[i]), len(tgt[i]) + 1)
        if cur and w * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, w = [], max(len(src[i]), len(tgt[i]) + 1)
        cur.append(i)
        width = w
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def collate(idx, src, tgt, pad: int):
    """-> src [batch, src_len], decoder input [batch, tgt_len] (start token = pad, then the target shifted right),
    labels [batch, tgt_len] (target + </s>, pad where there is nothing to predict)."""
    b, s_len, t_len = len(idx), max(len(src[i]) for i in idx), max(len(tgt[i]) for i in idx)
    s = torch.full((b, s_len), pad, dtype=torch.long)
    t_in = torch.full((b, t_len), pad, dtype=torch.long)
    lab = torch.full((b, t_len), pad, dtype=torch.long)
    for r, i in enumerate(idx):
        s[r, : len(src[i])] = torch.tensor(src[i])
        t_in[r, 1: len(tgt[i])] = torch.tensor(tgt[i][:-1])
        lab[r, : len(tgt[i])] = torch.tensor(tgt[i])
    return s, t_in, lab


def loss_fn(logits, labels, pad: int, smoothing: float):
    """Label-smoothed cross entropy summed over non-pad target tokens; also returns the token count."""
    mask = labels != pad
    lp = F.log_softmax(logits[mask].float(), dim=-1)  # [tokens, vocab_size]
    nll = -lp.gather(1, labels[mask][:, None]).squeeze(1)
    smooth = -lp.mean(dim=-1)
    return ((1 - smoothing) * nll + smoothing * smooth).sum(), nll.sum(), int(mask.sum())


@torch.no_grad()
def valid_loss(model, batches, src, tgt, pad) -> float:
    model.eval()
    total, n = 0.0, 0
    for idx in batches:
        s, t_in, lab = collate(idx, src, tgt, pad)
        _, nll, k = loss_fn(model(s, t_in), lab, pad, 0.0)
        total, n = total + float(nll), n + k
    model.train()
    return total / max(n, 1)


def lr_at(step: int, peak: float, warmup: int) -> float:
    step = max(step, 1)
    return peak * min(step / warmup, math.sqrt(warmup / step))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="directory with train.SRC/TGT and valid.SRC/TGT")
    ap.add_argument("--src", required=True)
    ap.add_argument("--tgt", required=True)
    ap.add_argument("--run", type=Path, required=True, help="working directory: checkpoints, log, spm")
    ap.add_argument("--out", type=Path, required=True, help="model directory to write (HF MarianMT layout)")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--spm-sample", type=int, default=300000, help="sentences sampled to train SentencePiece")
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--enc-layers", type=int, default=4)
    ap.add_argument("--dec-layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--max-len", type=int, default=128, help="tokens per sentence kept for training")
    ap.add_argument("--max-tokens", type=int, default=2500, help="padded target tokens per batch")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    ap.add_argument("--warmup", type=int, default=800)
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--time-budget", type=float, default=110.0, help="minutes of training (across resumes)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many updates (0: no limit)")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--ckpt-steps", type=int, default=0, help="also checkpoint every N steps (0: off)")
    ap.add_argument("--average", type=int, default=5, help="average the last N checkpoints at the end")
    ap.add_argument("--threads", type=int, default=1,
                    help="PyTorch's own threads (OpenBLAS's matrix products have theirs: OPENBLAS_NUM_THREADS)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dtype", choices=["F32", "F16"], default="F16", help="storage dtype of model.safetensors")
    ap.add_argument("--beams", type=int, default=4, help="num_beams written to generation_config.json")
    ap.add_argument("--export-now", action="store_true",
                    help="skip training: select among the checkpoints saved so far and export (a running job "
                         "is not disturbed)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)
    t_src, t_tgt = args.data / f"train.{args.src}", args.data / f"train.{args.tgt}"
    v_src, v_tgt = args.data / f"valid.{args.src}", args.data / f"valid.{args.tgt}"

    sp_path = train_spm(args.run, [t_src, t_tgt], args.vocab_size, args.threads, args.spm_sample)
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    train_s, train_t = read(t_src), read(t_tgt)
    vocab_path = args.run / "vocab.json"
    if vocab_path.exists():
        vocab = json.loads(vocab_path.read_text())
    else:
        vocab = make_vocab(sp, [train_s, train_t])
        write_json(vocab_path, vocab)
    pad = vocab["<pad>"]
    src = encode_corpus(sp, vocab, train_s, args.max_len)
    tgt = encode_corpus(sp, vocab, train_t, args.max_len)
    vsrc = encode_corpus(sp, vocab, read(v_src), args.max_len)
    vtgt = encode_corpus(sp, vocab, read(v_tgt), args.max_len)
    n_tok = sum(len(t) for t in tgt)
    log(args.run, f"data: {len(src)} pairs, {n_tok} target tokens; vocab {len(vocab)}")

    cfg = MarianConfig(vocab_size=len(vocab), decoder_vocab_size=len(vocab), d_model=args.d_model,
                       encoder_layers=args.enc_layers, decoder_layers=args.dec_layers,
                       encoder_attention_heads=args.heads, decoder_attention_heads=args.heads,
                       encoder_ffn_dim=args.ffn, decoder_ffn_dim=args.ffn, pad_token_id=pad,
                       eos_token_id=vocab["</s>"], bos_token_id=vocab["</s>"], decoder_start_token_id=pad,
                       forced_eos_token_id=vocab["</s>"], dropout=args.dropout, num_beams=args.beams)
    model = MarianMT(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9)
    n_params = sum(p.numel() for p in model.parameters())
    log(args.run, f"model: {n_params} parameters, config {json.dumps(cfg.to_hf())}")

    state = {"step": 0, "epoch": 0, "batch": 0, "elapsed": 0.0, "tokens": 0, "ckpts": []}
    last = args.run / "checkpoint_last.pt"
    if last.exists():
        ck = torch.load(last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        state = ck["state"]
        log(args.run, f"resumed at step {state['step']} ({state['elapsed'] / 60:.1f} min done)")

    vbatches = make_batches(vsrc, vtgt, 4000, random.Random(0))

    def checkpoint():
        path = args.run / f"model_{state['step']}.pt"
        torch.save(model.state_dict(), path)
        state["ckpts"].append(path.name)
        for old in state["ckpts"][: -args.average]:
            (args.run / old).unlink(missing_ok=True)
        state["ckpts"] = state["ckpts"][-args.average:]
        vl = valid_loss(model, vbatches, vsrc, vtgt, pad)
        state.setdefault("valid", {})[path.name] = vl
        torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "state": state}, f"{last}.tmp")
        Path(f"{last}.tmp").replace(last)
        log(args.run, f"checkpoint step {state['step']}: valid nll {vl:.4f} (ppl {math.exp(vl):.2f})")

    model.train()
    budget = args.time_budget * 60
    t0, t_ck, done = time.time() - state["elapsed"], time.time(), args.export_now
    win_loss, win_tok, win_t = 0.0, 0, time.time()
    while not done:
        rng = random.Random(args.seed * 1000 + state["epoch"])
        batches = make_batches(src, tgt, args.max_tokens, rng)
        while state["batch"] < len(batches):
            idx = batches[state["batch"]]
            state["batch"] += 1
            s, t_in, lab = collate(idx, src, tgt, pad)
            loss, nll, k = loss_fn(model(s, t_in), lab, pad, args.smoothing)
            opt.zero_grad(set_to_none=True)
            (loss / k).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            state["step"] += 1
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"], args.lr, args.warmup)
            opt.step()
            state["tokens"] += k
            win_loss, win_tok = win_loss + float(nll), win_tok + k
            state["elapsed"] = time.time() - t0
            if state["step"] % 100 == 0:
                dt = time.time() - win_t
                log(args.run, f"step {state['step']} epoch {state['epoch']} nll {win_loss / win_tok:.3f} "
                              f"lr {lr_at(state['step'], args.lr, args.warmup):.2e} {win_tok / dt:.0f} tok/s "
                              f"{state['elapsed'] / 60:.1f} min")
                win_loss, win_tok, win_t = 0.0, 0, time.time()
            done = state["elapsed"] >= budget or (args.max_steps and state["step"] >= args.max_steps)
            if done or time.time() - t_ck >= args.ckpt_minutes * 60 or (
                    args.ckpt_steps and state["step"] % args.ckpt_steps == 0):
                checkpoint()
                t_ck = time.time()
            if done:
                break
        if not done:
            state["epoch"] += 1
            state["batch"] = 0

    # Early selection: the best single checkpoint against the average of the last ones.
    best = min(state["ckpts"], key=lambda n: state["valid"][n])
    candidates = {best: torch.load(args.run / best)}
    if len(state["ckpts"]) > 1:
        sds = [torch.load(args.run / n) for n in state["ckpts"]]
        candidates["average"] = {k: sum(sd[k].float() for sd in sds) / len(sds) for k in sds[0]}
    scores = {}
    for name, sd in candidates.items():
        model.load_state_dict(sd)
        scores[name] = valid_loss(model, vbatches, vsrc, vtgt, pad)
        log(args.run, f"candidate {name}: valid nll {scores[name]:.4f}")
    chosen = min(scores, key=scores.get)
    model.load_state_dict(candidates[chosen])
    model.eval()
    save_model_dir(args.out, model, str(sp_path), str(sp_path), vocab, None, args.src, args.tgt, dtype=args.dtype)
    summary = {"chosen": chosen, "valid_nll": scores[chosen], "steps": state["step"], "epochs": state["epoch"],
               "target_tokens_seen": state["tokens"], "train_minutes": round(state["elapsed"] / 60, 1),
               "parameters": n_params}
    if not args.export_now:
        write_json(args.run / "summary.json", summary)
    log(args.run, f"exported {args.out}: {json.dumps(summary)}")


if __name__ == "__main__":
    main()
