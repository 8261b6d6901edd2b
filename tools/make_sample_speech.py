"""Speak each word alone with espeak-ng and join them, so that every word's time is known exactly."""
import json, subprocess, numpy as np, soundfile as sf, librosa
SR = 16000
def word_audio(w):
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", f"{w}.wav", w], check=True)
    a, sr = sf.read(f"{w}.wav"); a = librosa.resample(a.astype(np.float32), orig_sr=sr, target_sr=SR)
    idx = np.nonzero(np.abs(a) > 0.01)[0]; return a[idx[0]:idx[-1] + 1]
def build(words, name):
    gap = np.zeros(int(0.06 * SR), np.float32); lead = np.zeros(int(0.3 * SR), np.float32)
    parts, t, stamps = [lead], len(lead) / SR, []
    for w in words:
        a = word_audio(w); stamps.append({"word": w, "start": round(t, 3), "end": round(t + len(a) / SR, 3)})
        parts += [a, gap]; t += (len(a) + len(gap)) / SR
    parts.append(np.zeros(int(0.3 * SR), np.float32))
    audio = np.concatenate(parts); audio = 0.9 * audio / np.abs(audio).max()
    sf.write(f"{name}.wav", audio, SR, subtype="PCM_16")
    json.dump({"segments": [{"start": stamps[0]["start"], "end": stamps[-1]["end"], "text": " ".join(words), "words": stamps}]},
              open(f"{name}_words.json", "w"), indent=1)
    print(name, len(audio) / SR)
build("we will meet at the station at noon".split(), "original")
build("we will meet at the old harbour at noon".split(), "edited")
