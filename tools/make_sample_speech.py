"""Speak each word alone with espeak-ng and join them, so that every word's time is known exactly.

Writes original.wav / edited.wav and their *_words.json (WhisperX layout) into the working directory.
"""

import json
import subprocess

import librosa
import numpy as np
import soundfile as sf

SR = 16000


def word_audio(word: str) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", f"{word}.wav", word], check=True)
    audio, sr = sf.read(f"{word}.wav")
    audio = librosa.resample(audio.astype(np.float32), orig_sr=sr, target_sr=SR)
    voiced = np.nonzero(np.abs(audio) > 0.01)[0]
    return audio[voiced[0] : voiced[-1] + 1]


def build(words: list[str], name: str) -> None:
    gap = np.zeros(int(0.06 * SR), np.float32)
    lead = np.zeros(int(0.3 * SR), np.float32)
    parts, t, stamps = [lead], len(lead) / SR, []
    for word in words:
        audio = word_audio(word)
        stamps.append({"word": word, "start": round(t, 3), "end": round(t + len(audio) / SR, 3)})
        parts += [audio, gap]
        t += (len(audio) + len(gap)) / SR
    parts.append(np.zeros(int(0.3 * SR), np.float32))
    audio = np.concatenate(parts)
    audio = 0.9 * audio / np.abs(audio).max()
    sf.write(f"{name}.wav", audio, SR, subtype="PCM_16")
    segment = {"start": stamps[0]["start"], "end": stamps[-1]["end"], "text": " ".join(words), "words": stamps}
    with open(f"{name}_words.json", "w") as f:
        json.dump({"segments": [segment]}, f, indent=1)
    print(name, len(audio) / SR)


if __name__ == "__main__":
    build("we will meet at the station at noon".split(), "original")
    build("we will meet at the old harbour at noon".split(), "edited")
