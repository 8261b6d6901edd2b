"""F5-TTS's character vocabulary (``vocab.txt``) and how text becomes ids."""

from __future__ import annotations

from pathlib import Path

import torch

_TRANSLATE = str.maketrans({";": ",", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


class Vocab:
    """Token -> id, line i of vocab.txt being id i; unknown characters get id 0 (the space), as in F5-TTS."""

    def __init__(self, tokens: list[str]):
        if not tokens or tokens[0] != " ":
            raise ValueError("vocab: the first token must be the space (id 0), as in F5-TTS's vocab.txt")
        self.tokens = tokens
        self.ids = {t: i for i, t in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.ids)

    def tokenize(self, text: str) -> list[str]:
        """Characters of ``text`` after F5-TTS's punctuation mapping (";" -> ",", curly quotes -> straight).

        Chinese characters would need F5-TTS's pinyin step (pypinyin + rjieba), which this pack does not do;
        they are looked up as they are.
        """
        return list(text.translate(_TRANSLATE))

    def encode(self, text: str) -> torch.Tensor:
        """(1, L) int64 ids."""
        return torch.tensor([[self.ids.get(c, 0) for c in self.tokenize(text)]], dtype=torch.long)


def load_vocab(path: str | Path) -> Vocab:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"F5-TTS vocab.txt not found: {path}")
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return Vocab(lines)
