"""PyTorch implementation of the MarianMT architecture (post-norm transformer encoder-decoder), parameter names
identical to Hugging Face's MarianMTModel so a state dict maps one-to-one onto model.safetensors.

Written from "Attention Is All You Need" and transformers' modeling_marian.py read as documentation. Used as the
independent reference for tolk's C++ engine and as the model that scripts/train.py trains.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Additive mask value: finite (as transformers uses finfo.min) so fully masked rows never produce NaN.
MASK_VALUE = -1e9


@dataclass
class MarianConfig:
    vocab_size: int
    decoder_vocab_size: int
    d_model: int = 512
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_attention_heads: int = 8
    decoder_attention_heads: int = 8
    encoder_ffn_dim: int = 2048
    decoder_ffn_dim: int = 2048
    max_position_embeddings: int = 512
    activation_function: str = "swish"
    scale_embedding: bool = True
    share_encoder_decoder_embeddings: bool = True
    tie_word_embeddings: bool = True
    pad_token_id: int = 0
    eos_token_id: int = 0
    bos_token_id: int = 0
    decoder_start_token_id: int = 0
    forced_eos_token_id: int = 0
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    num_beams: int = 4
    max_length: int = 512

    def to_hf(self) -> dict:
        """config.json content in the MarianConfig schema."""
        d = asdict(self)
        for k in ("num_beams", "max_length"):
            d.pop(k)
        d.update({
            "model_type": "marian",
            "architectures": ["MarianMTModel"],
            "is_encoder_decoder": True,
            "init_std": 0.02,
            "use_cache": True,
            "bad_words_ids": [[self.pad_token_id]],
            "num_beams": self.num_beams,
            "max_length": self.max_length,
            "num_hidden_layers": self.encoder_layers,
            "torch_dtype": "float32",
        })
        return d

    @staticmethod
    def from_hf(d: dict) -> "MarianConfig":
        names = MarianConfig.__dataclass_fields__.keys()
        kw = {k: d[k] for k in names if k in d}
        if "decoder_vocab_size" not in kw or kw["decoder_vocab_size"] is None:
            kw["decoder_vocab_size"] = d["vocab_size"]
        return MarianConfig(**kw)


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """Marian's table: angle(pos, j) = pos / 10000^(2*(j//2)/dim); sines of the even-j angles fill the first half of
    the dimensions and cosines of the odd-j angles the second half (not interleaved). Computed in float64."""
    pos = np.arange(n_positions, dtype=np.float64)[:, None]
    j = np.arange(dim, dtype=np.float64)[None, :]
    angle = pos / np.power(10000.0, 2.0 * np.floor(j / 2.0) / dim)
    out = np.zeros((n_positions, dim), dtype=np.float64)
    half = dim // 2 + dim % 2
    out[:, :half] = np.sin(angle[:, 0::2])
    out[:, half:] = np.cos(angle[:, 1::2])
    return torch.from_numpy(out.astype(np.float32))


def activation(name: str):
    if name in ("swish", "silu"):
        return F.silu
    if name == "gelu":
        return F.gelu
    if name == "relu":
        return F.relu
    raise ValueError(f"unsupported activation_function '{name}'")


class Attention(nn.Module):
    """Multi-head attention with the names transformers uses (q_proj, k_proj, v_proj, out_proj)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        assert d_model % n_heads == 0, f"d_model {d_model} not divisible by heads {n_heads}"
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.scaling = self.d_head ** -0.5
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_head).transpose(1, 2)  # [batch, n_heads, t, d_head]

    def project_kv(self, kv_in: torch.Tensor):
        return self.split(self.k_proj(kv_in)), self.split(self.v_proj(kv_in))

    def forward(self, x, kv=None, mask=None):
        """x: [batch, tgt_len, d_model]; kv: (k, v) each [batch, n_heads, src_len, d_head] (precomputed) or None for
        self-attention over x; mask: additive, broadcastable to [batch, n_heads, tgt_len, src_len]."""
        q = self.split(self.q_proj(x) * self.scaling)  # [batch, n_heads, tgt_len, d_head]
        k, v = kv if kv is not None else self.project_kv(x)
        scores = torch.matmul(q, k.transpose(-1, -2))  # [batch, n_heads, tgt_len, src_len]
        if mask is not None:
            scores = scores + mask
        probs = F.softmax(scores, dim=-1)
        probs = F.dropout(probs, self.dropout, self.training)
        ctx = torch.matmul(probs, v)  # [batch, n_heads, tgt_len, d_head]
        b, h, t, dh = ctx.shape
        return self.out_proj(ctx.transpose(1, 2).reshape(b, t, h * dh))


class EncoderLayer(nn.Module):
    def __init__(self, c: MarianConfig):
        super().__init__()
        self.self_attn = Attention(c.d_model, c.encoder_attention_heads, c.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(c.d_model, eps=1e-5)
        self.fc1 = nn.Linear(c.d_model, c.encoder_ffn_dim)
        self.fc2 = nn.Linear(c.encoder_ffn_dim, c.d_model)
        self.final_layer_norm = nn.LayerNorm(c.d_model, eps=1e-5)
        self.act = activation(c.activation_function)
        self.dropout, self.act_dropout = c.dropout, c.activation_dropout

    def forward(self, x, mask):
        h = F.dropout(self.self_attn(x, mask=mask), self.dropout, self.training)
        x = self.self_attn_layer_norm(x + h)
        h = F.dropout(self.act(self.fc1(x)), self.act_dropout, self.training)
        h = F.dropout(self.fc2(h), self.dropout, self.training)
        return self.final_layer_norm(x + h)


class DecoderLayer(nn.Module):
    def __init__(self, c: MarianConfig):
        super().__init__()
        self.self_attn = Attention(c.d_model, c.decoder_attention_heads, c.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(c.d_model, eps=1e-5)
        self.encoder_attn = Attention(c.d_model, c.decoder_attention_heads, c.attention_dropout)
        self.encoder_attn_layer_norm = nn.LayerNorm(c.d_model, eps=1e-5)
        self.fc1 = nn.Linear(c.d_model, c.decoder_ffn_dim)
        self.fc2 = nn.Linear(c.decoder_ffn_dim, c.d_model)
        self.final_layer_norm = nn.LayerNorm(c.d_model, eps=1e-5)
        self.act = activation(c.activation_function)
        self.dropout, self.act_dropout = c.dropout, c.activation_dropout

    def forward(self, x, self_kv, self_mask, cross_kv, cross_mask):
        h = F.dropout(self.self_attn(x, kv=self_kv, mask=self_mask), self.dropout, self.training)
        x = self.self_attn_layer_norm(x + h)
        h = F.dropout(self.encoder_attn(x, kv=cross_kv, mask=cross_mask), self.dropout, self.training)
        x = self.encoder_attn_layer_norm(x + h)
        h = F.dropout(self.act(self.fc1(x)), self.act_dropout, self.training)
        h = F.dropout(self.fc2(h), self.dropout, self.training)
        return self.final_layer_norm(x + h)


class Stack(nn.Module):
    """Holds `embed_tokens` (possibly shared) and the layers, named as model.encoder / model.decoder in HF."""

    def __init__(self, layers, embed_tokens):
        super().__init__()
        self.embed_tokens = embed_tokens
        self.layers = nn.ModuleList(layers)


class Seq2Seq(nn.Module):
    def __init__(self, c: MarianConfig):
        super().__init__()
        if c.share_encoder_decoder_embeddings:
            assert c.vocab_size == c.decoder_vocab_size, "shared embeddings need one vocabulary size"
            self.shared = nn.Embedding(c.vocab_size, c.d_model, padding_idx=c.pad_token_id)
            enc_emb = dec_emb = self.shared
        else:
            self.shared = None
            enc_emb = nn.Embedding(c.vocab_size, c.d_model, padding_idx=c.pad_token_id)
            dec_emb = nn.Embedding(c.decoder_vocab_size, c.d_model, padding_idx=c.pad_token_id)
        self.encoder = Stack([EncoderLayer(c) for _ in range(c.encoder_layers)], enc_emb)
        self.decoder = Stack([DecoderLayer(c) for _ in range(c.decoder_layers)], dec_emb)


class MarianMT(nn.Module):
    def __init__(self, c: MarianConfig):
        super().__init__()
        self.config = c
        self.model = Seq2Seq(c)
        self.lm_head = nn.Linear(c.d_model, c.decoder_vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.model.decoder.embed_tokens.weight
        self.register_buffer("final_logits_bias", torch.zeros(1, c.decoder_vocab_size))
        self.register_buffer("positions", sinusoidal_positions(c.max_position_embeddings, c.d_model), persistent=False)
        self.embed_scale = math.sqrt(c.d_model) if c.scale_embedding else 1.0
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.02):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, std)
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()

    def embed(self, stack: Stack, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        t = ids.shape[1]
        assert offset + t <= self.positions.shape[0], "sequence longer than max_position_embeddings"
        x = stack.embed_tokens(ids) * self.embed_scale + self.positions[offset:offset + t]
        return F.dropout(x, self.config.dropout, self.training)

    @staticmethod
    def padding_mask(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
        """[batch, 1, 1, src_len] additive mask hiding padded source positions."""
        return ((ids == pad_id).to(torch.float32) * MASK_VALUE)[:, None, None, :]

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """src_ids: [batch, src_len]; src_mask: additive [batch, 1, 1, src_len] -> [batch, src_len, d_model]."""
        x = self.embed(self.model.encoder, src_ids)
        for layer in self.model.encoder.layers:
            x = layer(x, src_mask)
        return x

    def cross_kv(self, memory: torch.Tensor):
        """Per decoder layer (k, v) of the encoder output, computed once per source batch."""
        return [layer.encoder_attn.project_kv(memory) for layer in self.model.decoder.layers]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h) + self.final_logits_bias  # [batch, tgt_len, vocab_size]

    def decode(self, tgt_ids, memory, src_mask, cross=None):
        """Teacher-forced full pass: tgt_ids [batch, tgt_len] -> logits [batch, tgt_len, vocab_size]."""
        t = tgt_ids.shape[1]
        causal = torch.triu(torch.full((t, t), MASK_VALUE), diagonal=1)[None, None]  # [1, 1, tgt_len, tgt_len]
        cross = cross if cross is not None else self.cross_kv(memory)
        x = self.embed(self.model.decoder, tgt_ids)
        for layer, ckv in zip(self.model.decoder.layers, cross):
            x = layer(x, None, causal, ckv, src_mask)
        return self.logits(x)

    def decode_step(self, tokens, step, cache, cross, src_mask):
        """One incremental step: tokens [rows, 1] at position `step`; cache is a list (per layer) of (k, v)
        [rows, n_heads, step, d_head] or None, updated in place. Returns logits [rows, vocab_size]."""
        x = self.embed(self.model.decoder, tokens, offset=step)
        for i, (layer, ckv) in enumerate(zip(self.model.decoder.layers, cross)):
            k, v = layer.self_attn.project_kv(x)
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], dim=2)
                v = torch.cat([cache[i][1], v], dim=2)
            cache[i] = (k, v)
            x = layer(x, (k, v), None, ckv, src_mask)
        return self.logits(x)[:, -1, :]

    def forward(self, src_ids, tgt_in):
        mask = self.padding_mask(src_ids, self.config.pad_token_id)
        memory = self.encode(src_ids, mask)
        return self.decode(tgt_in, memory, mask)

    def hf_state_dict(self) -> dict:
        """Tensors as Hugging Face writes them to model.safetensors: tied copies left out (model.shared.weight
        stands for the embed_tokens of both stacks when shared; lm_head.weight is omitted when tied),
        positions not stored (they are computed)."""
        out = {}
        for name, t in self.state_dict().items():
            if name == "lm_head.weight" and self.config.tie_word_embeddings:
                continue
            if self.config.share_encoder_decoder_embeddings and name.endswith("embed_tokens.weight"):
                continue
            out[name] = t.detach().cpu().contiguous()
        return out

    def load_hf_state_dict(self, tensors: dict):
        """Inverse of hf_state_dict: fills tied weights from the tensors that stand for them."""
        own = self.state_dict()
        missing = []
        with torch.no_grad():
            for name, t in own.items():
                src = tensors.get(name)
                if src is None and name.endswith("embed_tokens.weight") and "model.shared.weight" in tensors:
                    src = tensors["model.shared.weight"]
                if src is None and name == "lm_head.weight" and self.config.tie_word_embeddings:
                    continue
                if src is None:
                    missing.append(name)
                    continue
                t.copy_(torch.as_tensor(np.asarray(src, dtype=np.float32)).reshape(t.shape))
        if missing:
            raise KeyError(f"missing tensors: {missing}")
