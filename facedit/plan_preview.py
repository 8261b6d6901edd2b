"""A picture of an edit plan: both speeches' words (and waveforms), the edits, the infill mask, the time map.

Drawn with OpenCV into an RGB float32 array [H, W, 3] in 0..1 (ComfyUI's IMAGE layout without the batch).
All rows share one time axis in seconds; the target frames sit on the edited speech's time axis.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np

from .audio import to_mono
from .edits import EditPlan

COLORS = {  # RGB, colour-blind safe (Okabe-Ito)
    "substitution": (230, 159, 0),
    "insertion": (0, 158, 115),
    "deletion": (213, 94, 0),
    "generation": (86, 180, 233),
    "context": (240, 228, 66),
    "unchanged": (205, 205, 205),
    "text": (30, 30, 30),
    "muted": (120, 120, 120),
    "wave": (170, 178, 190),
    "background": (255, 255, 255),
}
_LEFT, _RIGHT = 118, 24


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded if folded.strip() or not text.strip() else "?"


def _text_width(s: str, scale: float) -> int:
    import cv2

    return cv2.getTextSize(_ascii(s), cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]


def _wrap(s: str, width: int, scale: float) -> list[str]:
    """``s`` in lines of at most ``width`` pixels, broken between words (a longer word keeps its line)."""
    lines: list[str] = []
    for word in s.split():
        if lines and _text_width(f"{lines[-1]} {word}", scale) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


class _Canvas:
    def __init__(self, width: int, height: int, t_max: float) -> None:
        import cv2

        self.cv2 = cv2
        self.img = np.full((height, width, 3), COLORS["background"], dtype=np.uint8)
        self.width, self.t_max = width, max(t_max, 1e-6)

    def x(self, t: float) -> int:
        return int(round(_LEFT + (self.width - _LEFT - _RIGHT) * t / self.t_max))

    def text(
        self, s: str, x: int, y: int, scale: float = 0.42, color: tuple = COLORS["text"], bold: bool = False
    ) -> None:
        self.cv2.putText(
            self.img, _ascii(s), (x, y), self.cv2.FONT_HERSHEY_SIMPLEX, scale, color, 2 if bold else 1, self.cv2.LINE_AA
        )

    def text_width(self, s: str, scale: float = 0.42) -> int:
        return _text_width(s, scale)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: tuple, alpha: float = 1.0) -> None:
        x0, x1 = max(min(x0, x1), 0), min(max(x0, x1), self.width)
        if x1 <= x0:
            x1 = min(x0 + 1, self.width)
        region = self.img[y0:y1, x0:x1].astype(np.float32)
        self.img[y0:y1, x0:x1] = (region * (1 - alpha) + np.array(color, np.float32) * alpha).round().astype(np.uint8)

    def poly(self, points: list[tuple[int, int]], color: tuple, alpha: float) -> None:
        mask = np.zeros(self.img.shape[:2], np.uint8)
        self.cv2.fillPoly(mask, [np.array(points, np.int32)], 1)
        sel = mask.astype(bool)
        self.img[sel] = (self.img[sel] * (1 - alpha) + np.array(color, np.float32) * alpha).round().astype(np.uint8)

    def line(self, p0: tuple[int, int], p1: tuple[int, int], color: tuple, thickness: int = 1) -> None:
        self.cv2.line(self.img, p0, p1, color, thickness, self.cv2.LINE_AA)


def _envelope(audio: Any, canvas: _Canvas, duration_s: float) -> np.ndarray | None:
    if audio is None:
        return None
    if isinstance(audio, tuple):
        mono = to_mono(audio[0], audio[1], target_rate=8000)
    else:
        mono = to_mono(audio, target_rate=8000)
    x = np.abs(mono.samples)
    n_cols = max(canvas.x(min(mono.duration_s, canvas.t_max)) - _LEFT, 1)
    edges = np.linspace(0, len(x), n_cols + 1).astype(int)
    env = np.array([x[a:b].max() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)])
    peak = env.max()
    return env / peak if peak > 0 else env


def _speech_row(
    canvas: _Canvas, y: int, h: int, label: str, words: tuple, spans: list, env: np.ndarray | None, duration_s: float
) -> None:
    canvas.text(label, 8, y + h // 2 + 5, 0.5, bold=True)
    canvas.rect(canvas.x(0), y, canvas.x(duration_s), y + h, (245, 245, 245))
    if env is not None:
        mid = y + h // 2
        for i, v in enumerate(env):
            half = int(v * (h // 2 - 3))
            canvas.img[mid - half : mid + half + 1, _LEFT + i] = COLORS["wave"]
    for kind, t0, t1 in spans:
        canvas.rect(canvas.x(t0), y, max(canvas.x(t1), canvas.x(t0) + 2), y + h, COLORS[kind], 0.35)
    for w in words:
        kind = next((k for k, a, b in spans if w.start >= a - 1e-6 and w.end <= b + 1e-6), None)
        x0, x1 = canvas.x(w.start), max(canvas.x(w.end), canvas.x(w.start) + 2)
        color = COLORS[kind] if kind else COLORS["unchanged"]
        canvas.rect(x0, y + h - 22, x1, y + h - 4, color, 0.9)
        label = w.text + ("*" if w.interpolated else "")
        if canvas.text_width(label, 0.38) <= x1 - x0 + 18:
            canvas.text(label, x0, y + h - 27, 0.38)


def render_plan(
    plan: EditPlan,
    *,
    original_audio: Any = None,
    edited_audio: Any = None,
    width: int = 1280,
    title: str | None = None,
) -> np.ndarray:
    """The plan as an RGB picture [H, W, 3] float32 in 0..1.

    ``original_audio`` / ``edited_audio`` (ComfyUI AUDIO dicts, or (samples, sample_rate)) add waveforms.
    Rows: original speech, the edits joining both timelines, edited speech, target frames (retimed spans by
    edit type, context margin, unchanged), and the source frame every target frame is taken from.
    """
    if width < 400:
        raise ValueError(f"width: at least 400 pixels, got {width}")
    t_max = max(plan.original_duration_s, plan.edited_duration_s, plan.target_frames / plan.fps)
    warning_lines = [  # every warning in full: a cut one hides what to do about it
        line
        for i, warning in enumerate(plan.warnings)
        for line in _wrap(f"warning {i + 1} of {len(plan.warnings)}: {warning}", width - 16, 0.38)
    ]
    header = max(46, 32 + 15 * len(warning_lines))
    rows = dict(header=header, original=74, link=46, edited=74, frames=50, curve=130, legend=40)
    canvas = _Canvas(width, sum(rows.values()) + 16, t_max)
    y = 8
    kinds = sorted({e.type for e in plan.edits})
    head = title or (
        f"FacEDiT {plan.mode} plan: {len(plan.edits)} edit(s) ({', '.join(kinds) or 'none'})   "
        f"source {plan.source_frames} frames -> target {plan.target_frames} frames at {plan.fps:g} fps   "
        f"context {plan.context_frames} frames   infill {int(plan.infill_mask.sum())} frames"
    )
    canvas.text(head, 8, y + 18, 0.5, bold=True)
    for i, line in enumerate(warning_lines):
        canvas.text(line, 8, y + 38 + 15 * i, 0.38, (180, 40, 0))
    y += rows["header"]

    orig_spans = [(e.type, *e.original_span_s) for e in plan.edits]
    edit_spans = [(e.type, *e.edited_span_s) for e in plan.edits]
    original_label = "prompt" if plan.mode == "generate" else "original"
    _speech_row(
        canvas,
        y,
        rows["original"],
        original_label,
        plan.original_words,
        orig_spans,
        _envelope(original_audio, canvas, plan.original_duration_s),
        plan.original_duration_s,
    )
    y += rows["original"]
    for e in plan.edits:
        (a0, a1), (b0, b1) = e.original_span_s, e.edited_span_s
        pts = [(canvas.x(a0), y), (canvas.x(a1), y), (canvas.x(b1), y + rows["link"]), (canvas.x(b0), y + rows["link"])]
        canvas.poly(pts, COLORS[e.type], 0.4)
    y += rows["link"]
    _speech_row(
        canvas,
        y,
        rows["edited"],
        "edited",
        plan.edited_words,
        edit_spans,
        _envelope(edited_audio, canvas, plan.edited_duration_s),
        plan.edited_duration_s,
    )
    y += rows["edited"] + 8

    # Target frames on the edited time axis.
    h = rows["frames"] - 22
    canvas.text("frames", 8, y + h // 2 + 5, 0.5, bold=True)
    retimed = np.zeros(plan.target_frames, dtype=object)
    for e in plan.edits:
        retimed[e.target_span[0] : e.target_span[1]] = e.type
    for k in range(plan.target_frames):
        x0, x1 = canvas.x(k / plan.fps), canvas.x((k + 1) / plan.fps)
        if retimed[k]:
            color = COLORS[retimed[k]]
        elif plan.infill_mask[k]:
            color = COLORS["context"]
        else:
            color = COLORS["unchanged"]
        canvas.rect(x0, y, max(x1 - (1 if x1 - x0 > 3 else 0), x0 + 1), y + h, color)
    for run in plan.mask_spans():
        canvas.line((canvas.x(run[0] / plan.fps), y + h + 2), (canvas.x(run[1] / plan.fps), y + h + 2), (200, 0, 0), 2)
    canvas.text("0", canvas.x(0), y + h + 16, 0.36, COLORS["muted"])
    end_label = f"{plan.target_frames}"
    canvas.text(
        end_label,
        canvas.x(plan.target_frames / plan.fps) - canvas.text_width(end_label, 0.36),
        y + h + 16,
        0.36,
        COLORS["muted"],
    )
    y += rows["frames"]

    # Source frame of every target frame.
    h = rows["curve"] - 26
    canvas.text("source", 8, y + h // 2, 0.5, bold=True)
    canvas.text("frame", 8, y + h // 2 + 16, 0.5, bold=True)
    canvas.rect(canvas.x(0), y, canvas.x(t_max), y + h, (248, 248, 248))
    top = max(plan.source_frames - 1, 1)
    ys = lambda s: int(round(y + h - 2 - (h - 4) * s / top))  # noqa: E731
    canvas.text(
        str(plan.source_frames - 1), _LEFT - 8 - canvas.text_width(str(top), 0.36), ys(top) + 10, 0.36, COLORS["muted"]
    )
    canvas.text("0", _LEFT - 16, ys(0), 0.36, COLORS["muted"])
    pts = [(canvas.x((k + 0.5) / plan.fps), ys(s)) for k, s in enumerate(plan.source_time)]
    for k in range(1, len(pts)):
        masked = plan.infill_mask[k] or plan.infill_mask[k - 1]
        canvas.line(pts[k - 1], pts[k], (200, 0, 0) if masked else (60, 60, 60), 2 if masked else 1)
    for s in range(0, int(np.ceil(t_max)) + 1):
        if s <= t_max:
            canvas.line((canvas.x(s), y + h), (canvas.x(s), y + h + 4), COLORS["muted"])
            canvas.text(f"{s}s", canvas.x(s) - 6, y + h + 17, 0.36, COLORS["muted"])
    y += rows["curve"]

    x = 8
    for name in ("substitution", "insertion", "deletion", "generation", "context"):
        canvas.rect(x, y + 8, x + 16, y + 22, COLORS[name])
        label = "context margin" if name == "context" else name
        canvas.text(label, x + 22, y + 20, 0.42)
        x += 44 + canvas.text_width(label, 0.42)
    canvas.line((x, y + 15), (x + 18, y + 15), (200, 0, 0), 2)
    canvas.text("infill mask / retimed source", x + 24, y + 20, 0.42)
    x += 250
    canvas.text("* time interpolated", x, y + 20, 0.42, COLORS["muted"])
    return canvas.img.astype(np.float32) / 255.0


def save_plan_png(plan: EditPlan, path: str, **kwargs: Any) -> None:
    """Write ``render_plan`` to a PNG file."""
    import cv2

    image = (render_plan(plan, **kwargs) * 255).round().astype(np.uint8)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
