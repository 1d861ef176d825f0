"""CLIP byte-level BPE (as in OpenAI's simple_tokenizer.py) for the plain ASCII captions of the
demo data set. It produces the same ids as the engine's tokenizer (native/src/tokenizer) for such
text; the training script checks its ids for the caption vocabulary against known CLIP ids."""
from __future__ import annotations

import json
import re
from pathlib import Path

START, END = "<|startoftext|>", "<|endoftext|>"
_PRETOKENIZE = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", re.IGNORECASE)


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table = {b: chr(b) for b in bs}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


class ClipBpe:
    def __init__(self, folder: Path, max_length: int = 77):
        self.vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text("utf8"))
        lines = (folder / "merges.txt").read_text("utf8").split("\n")
        start = 1 if lines and lines[0].startswith("#version") else 0
        merges = [l for l in lines[start : start + 49152 - 256 - 2] if l.strip()]
        self.ranks = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
        self.byte_encoder = _bytes_to_unicode()
        self.max_length = max_length
        self.bos = self.vocab[START]
        self.eos = self.vocab[END]
        self.pad = self.eos  # SD 1.x pads with <|endoftext|>
        self.cache: dict[str, list[int]] = {}

    def _bpe(self, token: str) -> list[str]:
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(self.ranks.get((word[i], word[i + 1]), 1 << 30), i) for i in range(len(word) - 1)]
            rank, best = min(pairs)
            if rank == 1 << 30:
                break
            first, second = word[best], word[best + 1]
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text: str) -> list[int]:
        """[start] + tokens + [end], padded with <|endoftext|> to max_length."""
        cached = self.cache.get(text)
        if cached is not None:
            return cached
        norm = re.sub(r"\s+", " ", text).strip().lower()
        body: list[int] = []
        for piece in _PRETOKENIZE.findall(norm):
            if piece in (START, END):
                body.append(self.vocab[piece])
                continue
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf8"))
            body.extend(self.vocab[t] for t in self._bpe(mapped))
        body = body[: self.max_length - 2]
        ids = [self.bos, *body, self.eos]
        ids += [self.pad] * (self.max_length - len(ids))
        self.cache[text] = ids
        return ids
