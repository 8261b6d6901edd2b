"""A tiny random-weight Whisper saved as a Hugging Face folder (byte-level tokenizer, no merges), built offline."""

from __future__ import annotations

import json
from pathlib import Path

import torch

SPECIALS = [
    "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
    "<|nocaptions|>", "<|notimestamps|>",
]  # fmt: skip


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (what Whisper's byte-level BPE is built on)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def write_tiny_whisper(folder: Path, seed: int = 0) -> Path:
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(_bytes_to_unicode().values())}
    vocab["<|endoftext|>"] = len(vocab)
    scratch = folder / "_tokenizer_src"
    scratch.mkdir(exist_ok=True)
    (scratch / "vocab.json").write_text(json.dumps(vocab))
    (scratch / "merges.txt").write_text("#version: 0.2\n")
    tok = WhisperTokenizer(str(scratch / "vocab.json"), str(scratch / "merges.txt"))
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    ids = {s: tok.convert_tokens_to_ids(s) for s in ["<|endoftext|>", *SPECIALS]}
    eot = ids["<|endoftext|>"]
    config = WhisperConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=64, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )  # fmt: skip
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        no_timestamps_token_id=ids["<|notimestamps|>"], lang_to_id={"<|en|>": ids["<|en|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}, is_multilingual=True,
        alignment_heads=[[1, 0], [1, 1]], max_initial_timestamp_index=50, max_length=64,
        begin_suppress_tokens=[eot],
    )  # fmt: skip
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    for p in scratch.iterdir():
        p.unlink()
    scratch.rmdir()
    return folder


def retyped_line(words: list[dict], new: str = "harbour") -> tuple[str, dict]:
    """What a user types after reading a tiny Whisper's transcript (JSON word dicts): the line with its longest real
    word replaced by ``new``; returns the line and the replaced word. The random weights also write symbol-only
    tokens, which take no part in matching words."""
    from facedit.edits import normalize_token

    real = [k for k, w in enumerate(words) if normalize_token(w["word"])]
    assert real, f"the tiny Whisper heard no word: {words}"
    k = max(real, key=lambda i: words[i]["end"] - words[i]["start"])
    assert normalize_token(words[k]["word"]) != normalize_token(new)
    return " ".join(new if i == k else w["word"] for i, w in enumerate(words)), words[k]
