"""MarianTokenizer semantics (transformers' tokenization_marian.py read as documentation): SentencePiece only cuts
text into piece strings, ids come from vocab.json (target_vocab.json for the target side when separate_vocabs), and
decoding joins target pieces with the target SentencePiece model, then applies transformers' clean-up rules.
"""
from __future__ import annotations

import json
from pathlib import Path

import sentencepiece as spm

SPIECE_UNDERLINE = "\u2581"
EOS, UNK, PAD = "</s>", "<unk>", "<pad>"

# transformers' PreTrainedTokenizerBase.clean_up_tokenization, applied in this order.
CLEAN_UP_RULES = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                  (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]


def clean_up_tokenization(text: str) -> str:
    for old, new in CLEAN_UP_RULES:
        text = text.replace(old, new)
    return text


def split_language_code(text: str) -> tuple[list[str], str]:
    """A leading `>>xx<<` tag (multilingual OPUS-MT models) is one token and is cut off before SentencePiece."""
    if text.startswith(">>"):
        end = text.find("<<")
        if end != -1:
            return [text[:end + 2]], text[end + 2:]
    return [], text


class MarianTokenizer:
    def __init__(self, model_dir):
        d = Path(model_dir)
        cfg_path = d / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.exists() else {}
        self.separate_vocabs = bool(cfg.get("separate_vocabs", False))
        self.clean_up = bool(cfg.get("clean_up_tokenization_spaces", True))
        self.vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
        self.target_vocab = (json.loads((d / "target_vocab.json").read_text(encoding="utf-8"))
                             if self.separate_vocabs else self.vocab)
        self.target_decoder = {i: p for p, i in self.target_vocab.items()}
        self.spm_source = spm.SentencePieceProcessor(model_file=str(d / "source.spm"))
        self.spm_target = spm.SentencePieceProcessor(model_file=str(d / "target.spm"))
        # transformers decodes with the source model when the vocabulary is joint (both files are then the same
        # model in practice) and with the target model otherwise.
        self.spm_decode = self.spm_target if self.separate_vocabs else self.spm_source
        self.special_target_ids = {self.target_vocab[t] for t in (EOS, UNK, PAD) if t in self.target_vocab}

    @property
    def eos_id(self) -> int:
        return self.vocab[EOS]

    @property
    def pad_id(self) -> int:
        return self.vocab[PAD]

    @property
    def target_pad_id(self) -> int:
        return self.target_vocab[PAD]

    def encode_pieces(self, text: str) -> list[str]:
        code, rest = split_language_code(text)
        return code + self.spm_source.encode(rest, out_type=str)

    def encode(self, text: str) -> list[int]:
        unk = self.vocab[UNK]
        return [self.vocab.get(p, unk) for p in self.encode_pieces(text)] + [self.vocab[EOS]]

    def encode_target(self, text: str) -> list[int]:
        """Target-side ids (for training / teacher forcing): target spm and target vocab."""
        unk = self.target_vocab[UNK]
        pieces = self.spm_target.encode(text, out_type=str)
        return [self.target_vocab.get(p, unk) for p in pieces] + [self.target_vocab[EOS]]

    def decode(self, ids) -> str:
        """decode(ids, skip_special_tokens=True) as transformers does it for Marian."""
        pieces = [self.target_decoder.get(int(i), UNK) for i in ids if int(i) not in self.special_target_ids]
        text = self.spm_decode.decode_pieces(pieces).replace(SPIECE_UNDERLINE, " ").strip()
        return clean_up_tokenization(text) if self.clean_up else text
