"""Draw a UI-format workflow as an 800 px wide thumbnail for ComfyUI's template browser (a JPEG beside the JSON).

ComfyUI shows `workflows/<name>.jpg` next to `workflows/<name>.json`. Screenshots of a running ComfyUI are the
best thumbnails; where none can be taken, this draws the graph from the JSON itself: its groups, its nodes
(titles, input and output names) and its links, in the frontend's dark palette.

    python tools/workflow_thumbnail.py "workflows/FacEDiT - Edit from text.json"   # writes workflows/...text.jpg
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageFont

WIDTH = 800
TITLE_H, SLOT_H = 30, 20  # the frontend's node title bar and slot row heights (canvas units)
LINK_COLORS = {"IMAGE": "#64B5F6", "AUDIO": "#EA80FC", "VIDEO": "#FFD54F", "STRING": "#81C784", "FLOAT": "#AED581",
               "INT": "#AED581", "MASK": "#81C784"}  # fmt: skip
OTHER_LINK = "#9E9E9E"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        try:
            return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable built-in font
        except TypeError:
            return ImageFont.load_default()


def _rgba(color: str, alpha: int) -> tuple[int, int, int, int]:
    return (*ImageColor.getrgb(color)[:3], alpha)


def _bezier(a: tuple[float, float], b: tuple[float, float], steps: int = 24) -> list[tuple[float, float]]:
    dx = max(abs(b[0] - a[0]) * 0.5, 20)
    c1, c2 = (a[0] + dx, a[1]), (b[0] - dx, b[1])
    out = []
    for i in range(steps + 1):
        t = i / steps
        u = 1 - t
        out.append(tuple(u**3 * p + 3 * u * u * t * q + 3 * u * t * t * r + t**3 * s
                         for p, q, r, s in zip(a, c1, c2, b, strict=True)))  # fmt: skip
    return out


def draw(graph: dict) -> Image.Image:
    boxes = [g["bounding"] for g in graph.get("groups", [])]
    boxes += [[*n["pos"], n["size"][0], n["size"][1] + TITLE_H] for n in graph["nodes"]]
    x0, y0 = min(b[0] for b in boxes) - 20, min(b[1] for b in boxes) - 20
    x1, y1 = max(b[0] + b[2] for b in boxes) + 20, max(b[1] + b[3] for b in boxes) + 20
    s = WIDTH / (x1 - x0)
    image = Image.new("RGB", (WIDTH, round((y1 - y0) * s)), "#202020")
    d = ImageDraw.Draw(image, "RGBA")
    p = lambda x, y: ((x - x0) * s, (y - y0) * s)  # noqa: E731
    title_font, slot_font = _font(max(7, round(16 * s))), _font(max(6, round(11 * s)))
    for g in graph.get("groups", []):
        gx, gy, gw, gh = g["bounding"]
        color = g.get("color", "#3f789e")
        d.rectangle([p(gx, gy), p(gx + gw, gy + gh)], fill=_rgba(color, 0x44), outline=color)
        d.text(p(gx + 8, gy + 6), g["title"], fill="#E0E0E0", font=title_font)
    nodes = {n["id"]: n for n in graph["nodes"]}

    def slot_y(n: dict, i: int) -> float:
        return n["pos"][1] + SLOT_H * (i + 0.5) + 4

    for _, src, src_slot, dst, dst_slot, kind in graph["links"]:
        a, b = nodes[src], nodes[dst]
        start = p(a["pos"][0] + a["size"][0], slot_y(a, src_slot))
        end = p(b["pos"][0], slot_y(b, dst_slot))
        d.line(_bezier(start, end), fill=LINK_COLORS.get(kind, OTHER_LINK), width=max(1, round(3 * s)))
    for n in graph["nodes"]:
        nx, ny = n["pos"]
        nw, nh = n["size"]
        d.rectangle([p(nx, ny - TITLE_H), p(nx + nw, ny + nh)], fill="#353535", outline="#111111")
        d.rectangle([p(nx, ny - TITLE_H), p(nx + nw, ny)], fill="#2A2A2A")
        d.text(p(nx + 10, ny - TITLE_H + 7), n.get("title") or n["type"], fill="#DDDDDD", font=title_font)
        for i, slot in enumerate(n.get("inputs", [])):
            if slot.get("widget") and slot.get("link") is None:
                continue
            d.text(p(nx + 10, slot_y(n, i) - 7), slot["name"], fill="#AAAAAA", font=slot_font)
        for i, slot in enumerate(n.get("outputs", [])):
            text = slot["name"]
            tw = d.textlength(text, font=slot_font)
            d.text((p(nx + nw - 10, 0)[0] - tw, p(0, slot_y(n, i) - 7)[1]), text, fill="#AAAAAA", font=slot_font)
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workflow", type=Path, help="a UI-format workflow .json")
    parser.add_argument("--out", type=Path, help="default: the workflow's path with .jpg")
    args = parser.parse_args(argv)
    out = args.out or args.workflow.with_suffix(".jpg")
    draw(json.loads(args.workflow.read_text())).save(out, quality=90)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
