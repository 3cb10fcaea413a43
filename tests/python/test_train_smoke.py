#!/usr/bin/env python3
"""Training smoke test: a few steps of a tiny config on a synthetic corpus, in seconds. Checks that the loss goes
down, that a rerun resumes from the checkpoint, and that the exported Hugging Face directory reloads into the
same model (F16 storage rounding aside)."""
import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from tolkpy.hf_io import load_model_dir  # noqa: E402
from tolkpy.model import MarianConfig, MarianMT  # noqa: E402

WORDS = {"the": "der", "red": "rote", "small": "kleine", "cat": "Kater", "dog": "Hund", "sees": "sieht",
         "likes": "mag", "man": "Mann", "runs": "rennt", "big": "große", "bird": "Vogel", "eats": "frisst"}


def corpus(n, rng):
    src, tgt = [], []
    keys = list(WORDS)
    for _ in range(n):
        ws = [rng.choice(keys) for _ in range(rng.randint(2, 7))]
        src.append(" ".join(ws) + ".")
        tgt.append(" ".join(WORDS[w] for w in ws) + ".")
    return src, tgt


def train(data, run, out, steps):
    cmd = [sys.executable, str(ROOT / "scripts/train.py"), "--data", str(data), "--src", "en", "--tgt", "de",
           "--run", str(run), "--out", str(out), "--vocab-size", "60", "--d-model", "32", "--heads", "2",
           "--ffn", "64", "--enc-layers", "1", "--dec-layers", "1", "--max-steps", str(steps), "--ckpt-steps", "20",
           "--max-tokens", "400", "--lr", "3e-3", "--warmup", "10", "--threads", "1", "--average", "2"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def main():
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        data.mkdir()
        for split, n in (("train", 600), ("valid", 60)):
            s, t = corpus(n, rng)
            (data / f"{split}.en").write_text("\n".join(s) + "\n")
            (data / f"{split}.de").write_text("\n".join(t) + "\n")
        run, out = tmp / "run", tmp / "model"
        train(data, run, out, 40)
        state = torch.load(run / "checkpoint_last.pt")["state"]
        valid = [state["valid"][k] for k in sorted(state["valid"], key=lambda n: int(n[6:-3]))]
        n_vocab = len(json.loads((run / "vocab.json").read_text()))
        # A model that learned nothing scores about ln(vocab_size) nats per token.
        assert valid[-1] < valid[0] and valid[-1] < math.log(n_vocab) - 1.0, f"validation loss did not go down: {valid}"

        log = train(data, run, out, 60)
        assert "resumed at step 40" in log, log
        state = torch.load(run / "checkpoint_last.pt")["state"]
        assert state["step"] == 60, state

        for f in ("config.json", "generation_config.json", "model.safetensors", "source.spm", "target.spm",
                  "vocab.json", "tokenizer_config.json"):
            assert (out / f).exists(), f"{f} missing from the exported model"
        vocab = json.loads((out / "vocab.json").read_text())
        assert vocab["</s>"] == 0 and vocab["<unk>"] == 1 and vocab["<pad>"] == len(vocab) - 1
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["model_type"] == "marian" and cfg["pad_token_id"] == vocab["<pad>"]

        summary = json.loads((run / "summary.json").read_text())
        model = load_model_dir(out)
        src = torch.tensor([[3, 4, 5, 0]])
        tgt = torch.tensor([[cfg["pad_token_id"], 3, 4]])
        logits = model(src, tgt)
        assert torch.isfinite(logits).all()
        if summary["chosen"] != "average":  # the chosen single checkpoint must be what was exported
            m2 = MarianMT(MarianConfig.from_hf(cfg)).eval()
            m2.load_state_dict(torch.load(run / summary["chosen"]))
            diff = (m2(src, tgt) - logits).abs().max().item()
            assert diff < 5e-2, f"exported model differs from its checkpoint by {diff}"
    print("train smoke test passed")


if __name__ == "__main__":
    main()
