"""Write docs/before_after.png from the demo's output: original frame | edited frame | |difference| x 8.

Run from the repository root after the demo:
    python -m facedit demo --out /tmp/guide/demo_edited.mp4 --steps 4
    python docs/make_before_after.py /tmp/guide
Without real weights the demo uses random stand-in models: the edited face is meaningless, the picture only
shows WHERE the pixels change.
"""

import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facedit.audio import audio_duration, load_audio_file  # noqa: E402
from facedit.edits import target_frame_count  # noqa: E402
from facedit.pipeline import make_plan  # noqa: E402
from facedit.timestamps import load_words  # noqa: E402
from facedit.video_io import read_video  # noqa: E402

SAMPLES = ROOT / "facedit" / "samples"
GAIN = 8.0
PANEL = 340


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 28), (0, 0, 0), -1)
    cv2.putText(out, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main(folder: Path) -> None:
    original = read_video(folder / "demo_original.mp4")
    edited = read_video(folder / "demo_edited.mp4", with_audio=False)
    fps = float(original.fps)
    edited_s = audio_duration(load_audio_file(SAMPLES / "edited.wav"))
    source_frames = len(original.frames)
    original_s = original.audio.shape[-1] / original.sample_rate  # as the demo (edit_file) takes it
    plan = make_plan(
        fps=fps, source_frames=source_frames, original_duration_s=original_s, edited_duration_s=edited_s,
        original_words=load_words(SAMPLES / "original_words.json"),
        edited_words=load_words(SAMPLES / "edited_words.json"), context_frames=3,
    )  # fmt: skip
    assert len(edited.frames) == plan.target_frames == target_frame_count(edited_s, fps), "rerun the demo"
    # a masked frame whose source time is a whole frame: the background is then the same original frame
    masked = np.flatnonzero(plan.infill_mask)
    whole = [k for k in masked if abs(plan.source_time[k] - round(plan.source_time[k])) < 1e-6]
    k = int(whole[len(whole) // 2] if whole else masked[len(masked) // 2])
    s = int(round(plan.source_time[k]))
    before, after = original.frames[s], edited.frames[k]
    diff = np.clip(np.abs(after - before).max(-1, keepdims=True) * GAIN, 0, 1).repeat(3, -1)
    panels = []
    for image, text in (
        (before, f"original, frame {s}"),
        (after, f"edited, frame {k} (random weights)"),
        (diff, f"|edited - original| x {GAIN:g}"),
    ):
        rgb = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
        h, w = rgb.shape[:2]
        rgb = cv2.resize(rgb, (PANEL, round(h * PANEL / w)), interpolation=cv2.INTER_AREA)
        panels.append(label(rgb, text))
    sheet = np.concatenate([np.pad(p, ((0, 0), (0, 4), (0, 0)), constant_values=255) for p in panels], 1)[:, :-4]
    out = ROOT / "docs" / "before_after.png"
    # 256 colours keep the file small (about 150 KB) and are plenty for this picture
    Image.fromarray(sheet).quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB): original frame {s}, edited frame {k}; {plan.edits}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "facedit_demo"))
