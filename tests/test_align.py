"""CTC forced alignment: Viterbi on constructed emissions, brute-force optimality, tiny CTC models from files."""

import itertools
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from facedit.audio import normalize_wave, to_mono
from facedit.speech.align import AlignmentError, CTCAligner, ctc_viterbi, load_aligner, words_from_path
from facedit.timestamps import Word

BLANK, BAR, A, B, C, D = range(6)


def emissions_for(path_labels, vocab=6, seed=0, peak=6.0):
    """Log-probabilities whose best frame-wise label is ``path_labels[t]`` (plus noise)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(path_labels), vocab))
    logits[np.arange(len(path_labels)), path_labels] += peak
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


def test_viterbi_recovers_a_known_alignment():
    # words "AB", "BCC", "D"; the repeated C needs a blank between its two emissions
    frames = [BLANK] * 3 + [A] * 2 + [B] * 3 + [BLANK] + [BAR] + [B] * 2 + [C] * 2 + [BLANK] + [C] * 2 + [BAR] + [D] * 3
    frames += [BLANK] * 2
    tokens = [A, B, BAR, B, C, C, BAR, D]
    token_of_frame, score = ctc_viterbi(emissions_for(frames), tokens, BLANK)
    # expected token index per frame (-1 = blank), written out by hand
    expected = [-1] * 3 + [0] * 2 + [1] * 3 + [-1] + [2] + [3] * 2 + [4] * 2 + [-1] + [5] * 2 + [6] + [7] * 3 + [-1] * 2
    assert token_of_frame.tolist() == expected
    assert score < 0


def _collapse(seq, blank):
    out, prev = [], None
    for s in seq:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return out


@pytest.mark.parametrize(
    "tokens,frames,seed", [([1, 2], 4, 0), ([1, 1], 5, 1), ([2, 1, 2], 6, 2), ([1, 1, 2], 5, 3), ([2], 1, 4)]
)
def test_viterbi_score_is_the_best_of_all_paths(tokens, frames, seed):
    vocab = 3
    rng = np.random.default_rng(seed)
    lp = rng.normal(size=(frames, vocab))
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    best, best_path = -np.inf, None
    for seq in itertools.product(range(vocab), repeat=frames):
        if _collapse(seq, 0) == tokens:
            s = lp[np.arange(frames), seq].sum()
            if s > best:
                best, best_path = s, seq
    token_of_frame, score = ctc_viterbi(lp, tokens, 0)
    assert score == pytest.approx(best, abs=1e-9)
    emitted = [tokens[i] if i >= 0 else 0 for i in token_of_frame]
    assert _collapse(emitted, 0) == tokens
    assert lp[np.arange(frames), emitted].sum() == pytest.approx(best, abs=1e-9)
    assert best_path is not None


def test_viterbi_refuses_impossible_input():
    with pytest.raises(AlignmentError, match=r"4 frames cannot hold 3 tokens \(2 repeated"):
        ctc_viterbi(emissions_for([0] * 4), [A, A, A], BLANK)
    ctc_viterbi(emissions_for([0] * 5), [A, A, A], BLANK)  # A _ A _ A fits exactly
    with pytest.raises(AlignmentError, match="nothing to align"):
        ctc_viterbi(emissions_for([0] * 5), [], BLANK)
    with pytest.raises(ValueError, match="other than the blank"):
        ctc_viterbi(emissions_for([0] * 5), [A, BLANK], BLANK)
    with pytest.raises(ValueError, match="frames, vocabulary"):
        ctc_viterbi(np.zeros(5), [A], BLANK)


def test_words_from_path_timing_and_untimed_words():
    # 50 frames per second, frame j at 0.0125 + j / 50; a run j0..j1 spans [t(j0) - 0.01, t(j1) + 0.01]
    token_of_frame = np.array([-1, 0, 0, -1, 1, -1, -1, 3, 3, 3, -1])
    words = words_from_path(
        token_of_frame, [0, 0, -1, 2], ["ab", "1990", "c"], frame_rate=50.0, offset_s=0.0125, duration_s=0.3
    )
    assert words[0] == Word("ab", pytest.approx(0.0225), pytest.approx(0.1025))
    assert words[2] == Word("c", pytest.approx(0.1425), pytest.approx(0.2025))
    assert words[1] == Word("1990", pytest.approx(0.1025), pytest.approx(0.1425), interpolated=True)


def test_tokenize_matches_the_vocabulary_case():
    vocab = {"<pad>": 0, "|": 1, "A": 2, "B": 3, "'": 4}
    aligner = CTCAligner(model=None, vocab=vocab, blank=0, delimiter=1, normalize=True, case="upper")
    words, ids, owner = aligner.tokenize("ab, 1990 b'a!")
    assert words == ["ab,", "1990", "b'a!"]
    assert ids == [2, 3, 1, 3, 4, 2] and owner == [0, 0, -1, 2, 2, 2]
    with pytest.raises(AlignmentError, match="empty"):
        aligner.tokenize("   ")


# ---------------------------------------------------------------- tiny CTC models from files

VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "E": 5, "T": 6, "A": 7, "O": 8, "N": 9}


def _tiny_ctc(kind):
    from transformers import AutoModelForCTC, Wav2Vec2Config, WavLMConfig

    cls = Wav2Vec2Config if kind == "wav2vec2" else WavLMConfig
    config = cls(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
        architectures=[f"{'Wav2Vec2' if kind == 'wav2vec2' else 'WavLM'}ForCTC"],
    )
    torch.manual_seed(0)
    return AutoModelForCTC.from_config(config).eval()


def _save_ctc_folder(model, folder, legacy_names=True):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(model.config.to_json_string())
    (folder / "vocab.json").write_text(json.dumps(VOCAB))
    (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>", "word_delimiter_token": "|"}))
    (folder / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True, "sampling_rate": 16000}))
    state = {}
    for k, v in model.state_dict().items():
        if legacy_names:  # as in checkpoints saved before torch's parametrized weight norm
            k = k.replace("parametrizations.weight.original0", "weight_g").replace(
                "parametrizations.weight.original1", "weight_v"
            )
        state[k] = v.contiguous()
    save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize("kind", ["wav2vec2", "wavlm"])
def test_tiny_ctc_model_from_files_aligns_a_transcript(tmp_path, kind):
    model = _tiny_ctc(kind)
    aligner = load_aligner(_save_ctc_folder(model, tmp_path / kind))
    assert aligner.blank == 0 and aligner.delimiter == 4 and aligner.case == "upper" and aligner.normalize
    t = np.arange(int(2.0 * 22050)) / 22050
    audio = {"waveform": torch.from_numpy(0.3 * np.sin(2 * np.pi * 220 * t))[None, None].float(), "sample_rate": 22050}
    log_probs, rate, offset, duration = aligner.emissions(audio)
    assert log_probs.shape == (99, len(VOCAB)) and (rate, offset, duration) == (50.0, 0.0125, 2.0)
    with torch.no_grad():  # the loaded model is the saved one, fed the normalised 16 kHz mono waveform
        wave16 = torch.from_numpy(normalize_wave(to_mono(audio).samples))[None]
        ref = torch.log_softmax(model(wave16).logits[0], -1)
    torch.testing.assert_close(torch.from_numpy(log_probs), ref, atol=1e-5, rtol=0)
    words = aligner.align(audio, "tea at 10 one")
    assert [w.text for w in words] == ["tea", "at", "10", "one"]
    assert words[2].interpolated and not any(w.interpolated for w in words[:2] + words[3:])
    starts, ends = [w.start for w in words], [w.end for w in words]
    assert all(0 <= s <= e <= 2.0 for s, e in zip(starts, ends, strict=True))
    assert starts == sorted(starts) and all(e <= s + 1e-9 for e, s in zip(ends[:-1], starts[1:], strict=True))
    path, _ = ctc_viterbi(log_probs, aligner.tokenize("tea at 10 one")[1], aligner.blank)
    assert words[0].start == pytest.approx(max(0.0, offset + (np.flatnonzero(path >= 0)[0] - 0.5) / rate))


def test_ctc_loading_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="lacks config.json"):
        load_aligner(tmp_path / "none")
    model = _tiny_ctc("wav2vec2")
    folder = _save_ctc_folder(model, tmp_path / "bad", legacy_names=False)
    (folder / "vocab.json").write_text(json.dumps({**VOCAB, "X": 10}))
    with pytest.raises(ValueError, match="vocab.json has 11 ids, the model 10"):
        load_aligner(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="facebook/wav2vec2-base-960h.*offline"):
        load_aligner(tmp_path / "dl", download=True)
