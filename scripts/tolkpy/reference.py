"""generate() with the semantics transformers gives Marian models (greedy and beam search, n-best, padded batches),
written plainly to serve as the oracle for tolk's lib/decode. Read from transformers' generation utils
(BeamSearchScorer, BeamHypotheses, NoBadWordsLogitsProcessor, ForcedEOSTokenLogitsProcessor) as documentation.

Rules implemented (and relied on by the fixtures):
- every row starts from decoder_start_token_id; the sequence length counts that start token, so at most
  max_length - 1 tokens are generated (max_new_tokens, when given, sets max_length = max_new_tokens + 1);
- processors on the step's log-probabilities (beam) or logits (greedy): the bad_words_ids tokens (the pad token) get
  -inf every step; at the last allowed step (cur_len == max_length - 1, cur_len counting the start token) every
  token but eos gets -inf and eos gets 0;
- greedy: argmax of the processed logits, ties to the lowest id; the reported score is the sum over the generated
  tokens of the processed log-probabilities (log_softmax of the raw logits, then the processors above, so a forced
  eos adds 0) divided by (generated tokens incl. eos)^length_penalty, i.e. what a 1-beam hypothesis would score;
- beam search: scores = processed log_softmax(logits) + running beam score (float32); top 2*num_beams over
  num_beams*vocab (ties: lower flat index beam*vocab+token first); an eos candidate closes a hypothesis (score =
  sum_logprobs / (cur_len)^length_penalty, cur_len = tokens generated incl. eos) only when its rank < num_beams;
  the first num_beams non-eos candidates become the next beams; a sentence is done when it has num_beams finished
  hypotheses and (early_stopping=False) worst finished score >= best candidate score of this step / cur_len^lp;
  at the end, sentences not done get their running beams added (score / generated tokens^lp) and the best
  num_beams hypotheses are returned best first;
- at step 0 only beam 0 is live (the other beams start at -1e9).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .model import MarianMT

NEG_INF = float("-inf")


@dataclass
class GenOptions:
    num_beams: int = 4
    max_length: int = 512
    max_new_tokens: int | None = None
    length_penalty: float = 1.0
    early_stopping: bool = False
    nbest: int = 1

    def effective_max_length(self) -> int:
        return self.max_new_tokens + 1 if self.max_new_tokens is not None else self.max_length


@dataclass
class Hyp:
    ids: list
    score: float


@dataclass
class _Finished:
    """transformers' BeamHypotheses: keeps the num_beams best finished hypotheses of one sentence."""
    num_beams: int
    length_penalty: float
    early_stopping: bool
    beams: list = field(default_factory=list)  # (score, ids)
    worst_score: float = 1e9

    def add(self, ids: list, sum_logprobs: float, gen_len: int):
        score = sum_logprobs / (gen_len ** self.length_penalty)
        if len(self.beams) < self.num_beams or score > self.worst_score:
            self.beams.append((score, ids))
            if len(self.beams) > self.num_beams:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, cur_len: int) -> bool:
        if len(self.beams) < self.num_beams:
            return False
        if self.early_stopping:
            return True
        return self.worst_score >= best_sum_logprobs / (cur_len ** self.length_penalty)

    def best(self, n: int) -> list:
        ranked = sorted(self.beams, key=lambda b: b[0])
        out = []
        for _ in range(min(n, len(ranked))):
            s, ids = ranked.pop()
            out.append(Hyp(list(ids), float(s)))
        return out


class _Decoder:
    """Encoder output, cross-attention K/V and the self-attention cache for `rows` decoder rows."""

    def __init__(self, model: MarianMT, src_ids: list, rows_per_sentence: int, src_pad_id: int):
        self.model = model
        batch = len(src_ids)
        src_len = max(len(s) for s in src_ids)
        ids = torch.full((batch, src_len), src_pad_id, dtype=torch.long)
        keep = torch.zeros((batch, src_len), dtype=torch.bool)
        for b, s in enumerate(src_ids):
            ids[b, :len(s)] = torch.tensor(s, dtype=torch.long)
            keep[b, :len(s)] = True
        # Padding is masked by position (the source vocabulary's pad id need not be config.pad_token_id).
        mask = ((~keep).to(torch.float32) * -1e9)[:, None, None, :]  # [batch, 1, 1, src_len]
        memory = model.encode(ids, mask)  # [batch, src_len, d_model]
        rep = torch.arange(batch).repeat_interleave(rows_per_sentence)
        self.mask = mask[rep]
        self.cross = [(k[rep], v[rep]) for k, v in model.cross_kv(memory)]
        self.cache = [None] * len(model.model.decoder.layers)
        self.step_index = 0

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.model.decode_step(tokens[:, None], self.step_index, self.cache, self.cross, self.mask)
        self.step_index += 1
        return logits  # [rows, vocab_size]

    def reorder(self, rows: torch.Tensor):
        self.cache = [(k[rows], v[rows]) for k, v in self.cache]


def _process(scores: torch.Tensor, cur_len: int, max_length: int, bad_ids: list, eos_id: int) -> torch.Tensor:
    """NoBadWords then ForcedEOS, in transformers' order, on [rows, vocab] scores (a processed copy)."""
    scores = scores.clone()
    for t in bad_ids:
        scores[:, t] = NEG_INF
    if cur_len == max_length - 1:
        scores[:, :] = NEG_INF
        scores[:, eos_id] = 0.0
    return scores


def _cfg_ids(model: MarianMT):
    c = model.config
    return c.decoder_start_token_id, c.eos_token_id, [c.pad_token_id]


@torch.no_grad()
def greedy(model: MarianMT, src_ids: list, opts: GenOptions, src_pad_id: int) -> list:
    start, eos, bad = _cfg_ids(model)
    max_length = opts.effective_max_length()
    batch = len(src_ids)
    dec = _Decoder(model, src_ids, 1, src_pad_id)
    tokens = torch.full((batch,), start, dtype=torch.long)
    out = [[] for _ in range(batch)]
    sums = [0.0] * batch
    alive = [True] * batch
    cur_len = 1
    while cur_len < max_length and any(alive):
        logits = dec.step(tokens)  # [batch, vocab_size]
        processed = _process(logits, cur_len, max_length, bad, eos)
        logp = _process(F.log_softmax(logits, dim=-1), cur_len, max_length, bad, eos)
        nxt = torch.argmax(processed, dim=-1)  # first maximum: ties go to the lowest id
        for b in range(batch):
            if not alive[b]:
                nxt[b] = start  # finished rows are fed the pad token, as transformers does
                continue
            t = int(nxt[b])
            out[b].append(t)
            sums[b] += float(logp[b, t])
            if t == eos:
                alive[b] = False
        tokens = nxt
        cur_len += 1
    return [[Hyp(out[b], sums[b] / (len(out[b]) ** opts.length_penalty))] for b in range(batch)]


@torch.no_grad()
def beam_search(model: MarianMT, src_ids: list, opts: GenOptions, src_pad_id: int) -> list:
    start, eos, bad = _cfg_ids(model)
    max_length = opts.effective_max_length()
    nb = opts.num_beams
    batch = len(src_ids)
    vocab = model.config.decoder_vocab_size
    dec = _Decoder(model, src_ids, nb, src_pad_id)
    finished = [_Finished(nb, opts.length_penalty, opts.early_stopping) for _ in range(batch)]
    done = [False] * batch
    beam_scores = torch.zeros((batch, nb), dtype=torch.float32)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)  # [batch * beam]
    seqs = [[] for _ in range(batch * nb)]  # generated tokens per row (no start token)
    tokens = torch.full((batch * nb,), start, dtype=torch.long)
    cur_len = 1
    while cur_len < max_length:
        logits = dec.step(tokens)  # [batch * beam, vocab_size]
        logp = _process(F.log_softmax(logits, dim=-1), cur_len, max_length, bad, eos)
        cand = (logp + beam_scores[:, None]).view(batch, nb * vocab)  # [batch, beam * vocab_size]
        order = torch.sort(cand, dim=1, descending=True, stable=True).indices[:, :2 * nb]
        next_scores = torch.zeros((batch, nb), dtype=torch.float32)
        next_tokens = torch.full((batch, nb), start, dtype=torch.long)
        next_rows = torch.zeros((batch, nb), dtype=torch.long)
        for b in range(batch):
            if done[b]:
                # Finished sentences keep decoding pad from row b*nb, as transformers does; nothing is kept.
                next_rows[b, :] = b * nb
                continue
            filled = 0
            top = order[b].tolist()
            for rank, flat in enumerate(top):
                beam, tok = divmod(flat, vocab)
                row = b * nb + beam
                score = float(cand[b, flat])
                if tok == eos:
                    if rank >= nb:
                        continue
                    finished[b].add(seqs[row] + [eos], score, cur_len)
                else:
                    next_scores[b, filled] = cand[b, flat]
                    next_tokens[b, filled] = tok
                    next_rows[b, filled] = row
                    filled += 1
                if filled == nb:
                    break
            best_cand = float(cand[b, top[0]])
            done[b] = done[b] or finished[b].is_done(best_cand, cur_len)
        rows = next_rows.view(-1)
        seqs = [seqs[r] + [int(t)] for r, t in zip(rows.tolist(), next_tokens.view(-1).tolist())]
        beam_scores = next_scores.view(-1)
        tokens = next_tokens.view(-1)
        dec.reorder(rows)
        cur_len += 1
        if all(done):
            break
    results = []
    for b in range(batch):
        if not done[b]:
            for k in range(nb):
                row = b * nb + k
                finished[b].add(seqs[row], float(beam_scores[row]), len(seqs[row]))
        results.append(finished[b].best(opts.nbest))
    return results


def generate(model: MarianMT, src_ids: list, opts: GenOptions, src_pad_id: int) -> list:
    """src_ids: list of source id lists (each ending with </s>); returns per sentence a best-first list of Hyp
    (ids without the start token, with eos when the hypothesis ended)."""
    if opts.num_beams <= 1:
        return greedy(model, src_ids, opts, src_pad_id)
    return beam_search(model, src_ids, opts, src_pad_id)


@torch.no_grad()
def teacher_forced(model: MarianMT, src_ids: list, tgt_input_ids: list, src_pad_id: int):
    """One sentence: (encoder_out [src_len, d_model], logits [tgt_len, vocab_size]) from full (non-incremental)
    passes."""
    src = torch.tensor([src_ids], dtype=torch.long)
    mask = torch.zeros((1, 1, 1, len(src_ids)), dtype=torch.float32)
    memory = model.encode(src, mask)
    logits = model.decode(torch.tensor([tgt_input_ids], dtype=torch.long), memory, mask)
    return memory[0], logits[0]
