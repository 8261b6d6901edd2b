"""Write docs/plan_preview.png: the edit plan of a sentence spoken by espeak-ng and an edited version of it.

Run from the repository root: python docs/make_plan_preview.py (needs Debian's espeak-ng).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _speech_helpers import speak  # noqa: E402

from facedit.edits import plan_edit  # noqa: E402
from facedit.plan_preview import save_plan_png  # noqa: E402

ORIGINAL = "I really think that the red car is fast."
EDITED = "I think that the blue truck is very fast."
FPS = 25

original_wave, rate, original_words = speak(ORIGINAL)
edited_wave, _, edited_words = speak(EDITED)
original_s, edited_s = len(original_wave) / rate, len(edited_wave) / rate
plan = plan_edit(
    original_words,
    edited_words,
    original_duration_s=original_s,
    edited_duration_s=edited_s,
    fps=FPS,
    source_frames=round(original_s * FPS),
    context_frames=3,
)
out = ROOT / "docs" / "plan_preview.png"
save_plan_png(plan, str(out), original_audio=(original_wave, rate), edited_audio=(edited_wave, rate))
print(f"wrote {out}: {len(plan.edits)} edits, {plan.source_frames} -> {plan.target_frames} frames")
for w in plan.warnings:
    print("warning:", w)
