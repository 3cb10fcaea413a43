#!/usr/bin/env python3
"""Self-test of the PyTorch reference and the committed fixtures: hand-checked tokenizer rules, the reference's
internal consistency (beam 1 == greedy, batch == single, incremental == teacher-forced) and golden.json matching
what the reference computes from the committed model directories.

    /usr/bin/python3 tests/python/test_reference.py [tests/data]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from tolkpy.hf_io import load_model_dir  # noqa: E402
from tolkpy.reference import GenOptions, _Decoder, beam_search, greedy, teacher_forced  # noqa: E402
from tolkpy.tokenizer import MarianTokenizer, clean_up_tokenization, split_language_code  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_clean_up():
    assert clean_up_tokenization("Hallo , Welt . Ja ! Wie ?") == "Hallo, Welt. Ja! Wie?"
    assert clean_up_tokenization("I do n't know , I 'm sure it 's ours") == "I don't know, I'm sure it's ours"
    assert clean_up_tokenization("we 've seen they 're here") == "we've seen they're here"
    assert clean_up_tokenization("er sagt ' hallo ' ok") == "er sagt'hallo'ok"
    assert clean_up_tokenization("a ; b : c") == "a ; b : c"  # not in transformers' list


def test_language_code():
    assert split_language_code(">>deu<< Hallo") == ([">>deu<<"], " Hallo")
    assert split_language_code("Hallo >>deu<<") == ([], "Hallo >>deu<<")
    assert split_language_code(">>deu Hallo") == ([], ">>deu Hallo")


def check_fixture(d: Path):
    torch.set_grad_enabled(False)
    g = json.loads((d / "golden.json").read_text(encoding="utf-8"))
    model = load_model_dir(d)
    tok = MarianTokenizer(d)
    cfg = model.config
    for t in g["tokenize"]:
        assert tok.encode_pieces(t["text"]) == t["pieces"], t
        assert tok.encode(t["text"]) == t["ids"], t
    assert tok.encode("") == [tok.eos_id]
    for t in g["detokenize"]:
        assert tok.decode(t["ids"]) == t["text"], t
    opts1 = GenOptions(num_beams=1, max_length=g["options"]["max_length"])
    opts4 = GenOptions(num_beams=4, max_length=g["options"]["max_length"], nbest=4)
    for c in g["cases"]:
        enc, logits = teacher_forced(model, c["src_ids"], c["tgt_input_ids"], tok.pad_id)
        assert torch.allclose(enc.reshape(-1), torch.tensor(c["encoder_out"]["data"]), atol=1e-5)
        assert torch.allclose(logits.reshape(-1), torch.tensor(c["logits"]["data"]), atol=1e-5)
        gr = greedy(model, [c["src_ids"]], opts1, tok.pad_id)[0][0]
        assert gr.ids == c["greedy"]["ids"] and abs(gr.score - c["greedy"]["score"]) < 1e-5
        b1 = beam_search(model, [c["src_ids"]], opts1, tok.pad_id)[0][0]
        assert b1.ids == gr.ids and abs(b1.score - gr.score) < 1e-5
        bs = beam_search(model, [c["src_ids"]], opts4, tok.pad_id)[0]
        assert [h.ids for h in bs] == [h["ids"] for h in c["beam4"]]
        assert all(abs(h.score - e["score"]) < 1e-5 for h, e in zip(bs, c["beam4"]))
        # Incremental decoding with the cache reproduces the teacher-forced logits.
        dec = _Decoder(model, [c["src_ids"]], 1, tok.pad_id)
        inc = torch.stack([dec.step(torch.tensor([t]))[0] for t in c["tgt_input_ids"]])
        assert (inc - logits).abs().max().item() < 1e-4
    b = g["batch"]
    assert [tok.encode(t) for t in b["texts"]] == b["src_ids"]
    bg = greedy(model, b["src_ids"], opts1, tok.pad_id)
    bb = beam_search(model, b["src_ids"], GenOptions(num_beams=4, max_length=opts1.max_length), tok.pad_id)
    assert [h[0].ids for h in bg] == b["greedy"] and [h[0].ids for h in bb] == b["beam4"]
    for s, ids in zip(b["src_ids"], b["beam4"]):
        assert beam_search(model, [s], opts4, tok.pad_id)[0][0].ids == ids
    for s, ids in zip(b["src_ids"], b["greedy"]):
        assert greedy(model, [s], opts1, tok.pad_id)[0][0].ids == ids
    for c in g.get("short_cases", []):
        o1 = GenOptions(num_beams=1, max_new_tokens=c["max_new_tokens"])
        o4 = GenOptions(num_beams=4, max_new_tokens=c["max_new_tokens"], nbest=4)
        assert greedy(model, [c["src_ids"]], o1, tok.pad_id)[0][0].ids == c["greedy"]["ids"]
        assert [h.ids for h in beam_search(model, [c["src_ids"]], o4, tok.pad_id)[0]] == \
            [h["ids"] for h in c["beam4"]]
        assert len(c["greedy"]["ids"]) <= c["max_new_tokens"]
    assert cfg.decoder_start_token_id == cfg.pad_token_id


def main():
    torch.set_num_threads(1)
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "data"
    test_clean_up()
    test_language_code()
    for name in ("tiny-joint", "tiny-separate"):
        check_fixture(root / name)
        print(f"{name}: ok")
    print("all reference checks passed")


if __name__ == "__main__":
    main()
