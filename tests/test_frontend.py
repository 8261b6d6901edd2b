"""The frontend extension (web/): the plan contract, the drawing module under Node, and a real browser run.

- Always: web/ holds only the two extension modules, and the JS reads exactly the keys EditPlan.to_dict writes.
- With Node: syntax of every module, and web/facedit_plan_view.js run on real plans (tests/_frontend_view_check.mjs).
- With Node, Chromium, playwright-core and a ComfyUI install: tools/frontend_check.mjs against a ComfyUI started
  here, once with the probe pack of tests/_frontend_helpers.py (plan nodes that send real plans, serving our web/)
  and once with this repository as the pack (when its plan nodes are in this checkout).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _frontend_helpers import (
    ROOT,
    ComfyServer,
    comfy_install,
    example_plans,
    malformed_plan,
    pack_prompt,
    write_pack_base,
    write_probe_base,
)

WEB = ROOT / "web"
VIEW = WEB / "facedit_plan_view.js"
EXTENSION = WEB / "facedit_plan.js"
NODE = shutil.which("node")
CHROMIUM = os.environ.get("FACEDIT_CHROMIUM", "/usr/bin/chromium")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (the JS checks need `node`)")
COLORS = {"substitution": "#E69F00", "insertion": "#009E73", "deletion": "#D55E00", "generation": "#56B4E9"}


@pytest.fixture(scope="module")
def plans() -> dict:
    return example_plans()


# ------------------------------------------------------------------------------------------- always


def test_web_holds_only_the_extension_modules() -> None:
    """ComfyUI loads every .js under web/ as an extension: nothing else may sit there (web/docs has none)."""
    found = sorted(str(p.relative_to(WEB)) for p in WEB.rglob("*.js"))
    assert found == ["facedit_plan.js", "facedit_plan_view.js", "facedit_transcript.js"]


def _accessed(source: str, name: str) -> set[str]:
    return set(re.findall(rf"\b{name}\.(\w+)", source))


def test_js_reads_exactly_the_keys_the_plan_has(plans: dict) -> None:
    """The drawing reads plan fields only as raw.<key>, rawEdit.<key>, rawWord.<key>: compare with to_dict."""
    source = VIEW.read_text()
    plan = plans["multi"]
    assert plan["edits"] and plan["original_words"], "the example must have edits and words"
    assert _accessed(source, "raw") == set(plan), "web/facedit_plan_view.js and EditPlan.to_dict disagree"
    assert _accessed(source, "rawEdit") == set(plan["edits"][0])
    assert _accessed(source, "rawWord") == set(plan["original_words"][0])
    assert "plan_dict" not in EXTENSION.read_text()


def test_extension_hooks_the_plan_node_ids_and_output_key() -> None:
    source = EXTENSION.read_text()
    ids = re.search(r"PLAN_NODE_TYPES = \[([^\]]*)\]", source).group(1)
    assert re.findall(r"'(\w+)'", ids) == ["FacEDiTEditPlan", "FacEDiTManualEditPlan", "FacEDiTGenerationPlan"]
    assert "OUTPUT_KEY = 'facedit_plan'" in source
    assert "from '../../scripts/app.js'" in source  # /extensions/<pack>/x.js -> /scripts/app.js


def test_transcript_extension_hooks_the_node_ids_keys_and_speech_edit_widget() -> None:
    from _node_helpers import load_pack

    source = (WEB / "facedit_transcript.js").read_text()
    ids = re.findall(r"'(\w+)'", re.search(r"TRANSCRIPT_NODE_TYPES = \[([^\]]*)\]", source).group(1))
    pack = load_pack()
    assert ids == ["FacEDiTTranscribe", "FacEDiTAlign"] and set(ids) <= set(pack.NODE_CLASS_MAPPINGS)
    assert "OUTPUT_KEY = 'facedit_transcript'" in source
    assert "SPEECH_EDIT_TYPE = 'FacEDiTSpeechEdit'" in source and "TARGET_WIDGET = 'edited_text'" in source
    edit = pack.NODE_CLASS_MAPPINGS.get("FacEDiTSpeechEdit")
    if edit is not None:  # the Speech Edit node (issue 14b) must have the box the button fills
        assert "edited_text" in edit.GET_SCHEMA().as_object_info()["input"]["required"]


# ------------------------------------------------------------------------------------------- Node


@needs_node
@pytest.mark.parametrize("path", sorted(p.name for p in WEB.rglob("*.js")) + ["frontend_check.mjs"])
def test_js_syntax(path: str) -> None:
    file = ROOT / "tools" / path if path.endswith(".mjs") else WEB / path
    result = subprocess.run([NODE, "--check", str(file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _mutations(plan: dict) -> list[tuple[dict, str]]:
    """(broken copy, field the error must name)."""
    out = []

    def broken(field: str, change) -> None:
        p = copy.deepcopy(plan)
        change(p)
        out.append((p, field))

    broken("plan.format", lambda p: p.update(format="something.else"))
    broken("plan.version", lambda p: p.update(version=2))
    broken("plan.mode", lambda p: p.update(mode="remix"))
    broken("plan.fps", lambda p: p.update(fps=0))
    broken("plan.fps", lambda p: p.update(fps="25"))
    broken("plan.target_frames", lambda p: p.pop("target_frames"))
    broken("plan.source_time", lambda p: p["source_time"].pop())
    broken("plan.source_time[3]", lambda p: p["source_time"].__setitem__(3, None))
    broken("plan.infill_runs[0]", lambda p: p["infill_runs"].__setitem__(0, [5, 5]))
    broken("plan.infill_runs[0][1]", lambda p: p["infill_runs"].__setitem__(0, [0, p["target_frames"] + 1]))
    broken("plan.edits", lambda p: p.update(edits={"type": "deletion"}))
    broken("plan.edits[0].type", lambda p: p["edits"][0].update(type="swap"))
    broken("plan.edits[1].target_span", lambda p: p["edits"][1].update(target_span=[9, 3]))
    broken("plan.edits[1].source_span[1]", lambda p: p["edits"][1].update(source_span=[0, p["source_frames"] + 1]))
    broken("plan.original_words[2].start", lambda p: p["original_words"][2].update(start="soon"))
    broken("plan.edited_words[0].word", lambda p: p["edited_words"][0].update(word=7))
    broken("plan.warnings[0]", lambda p: p.update(warnings=[{"text": "x"}]))
    return out


@pytest.fixture(scope="module")
def node_view(plans: dict) -> tuple[dict, list]:
    mutations = _mutations(plans["multi"]) + [(malformed_plan(), "plan.source_time"), (None, "plan"), ([], "plan")]
    payload = {"plans": plans, "malformed": [m for m, _ in mutations]}
    script = str(ROOT / "tests" / "_frontend_view_check.mjs")
    result = subprocess.run([NODE, script], input=json.dumps(payload), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), mutations


@needs_node
@pytest.mark.parametrize("name", ["sample", "multi", "spans", "portrait"])
def test_view_reads_the_plan(node_view, plans: dict, name: str) -> None:
    out, _ = node_view
    got, plan = out["plans"][name]["normalized"], plans[name]
    header = ("mode", "fps", "source_frames", "target_frames")
    assert [got["mode"], got["fps"], got["sourceFrames"], got["targetFrames"]] == [plan[k] for k in header]
    assert got["edits"] == [
        {"type": e["type"], "sourceSpan": e["source_span"], "targetSpan": e["target_span"], "maskSpan": e["mask_span"]}
        for e in plan["edits"]
    ]
    assert got["originalWords"] == [w["word"] for w in plan["original_words"]]
    assert got["editedWords"] == [w["word"] for w in plan["edited_words"]]
    assert got["warnings"] == plan["warnings"]
    infill = sum(b - a for a, b in plan["infill_runs"])
    assert (
        f"infill {infill} frames" in got["summary"]["detail"]
        or f"{infill} frames generated" in got["summary"]["detail"]
    )
    fps = f"{plan['fps']:g}"
    assert got["summary"]["frames"] == f"{plan['source_frames']} → {plan['target_frames']} frames @ {fps} fps"


@needs_node
@pytest.mark.parametrize("name", ["sample", "multi", "spans", "portrait"])
def test_view_frame_classes_follow_spans_and_mask(node_view, plans: dict, name: str) -> None:
    """Per target frame: the edit whose target span holds it, else -1 in the infill mask, else -2 (copied)."""
    out, _ = node_view
    plan = plans[name]
    expected = [-2] * plan["target_frames"]
    for a, b in plan["infill_runs"]:
        expected[a:b] = [-1] * (b - a)
    for i, e in enumerate(plan["edits"]):
        a, b = e["target_span"]
        expected[a:b] = [i] * (b - a)
    assert out["plans"][name]["classes"] == expected
    assert -1 in expected or name == "portrait"  # the examples have context margins (generation: none)


@needs_node
@pytest.mark.parametrize("name", ["sample", "multi", "spans", "portrait"])
def test_view_draws_words_colours_and_summary(node_view, plans: dict, name: str) -> None:
    out, _ = node_view
    got, plan = out["plans"][name], plans[name]
    assert got["balanced"]
    texts = got["texts"]
    assert got["normalized"]["summary"]["frames"] in texts
    for word in got["labelled"]:
        assert word in texts
    words = [w["word"] for w in plan["original_words"] + plan["edited_words"]]
    assert len(got["labelled"]) >= len(words) * 0.8  # at 560 px nearly every word is labelled
    for e in plan["edits"]:
        assert COLORS[e["type"]] in got["fills"], e["type"]
    for warning in plan["warnings"]:
        assert any(t.startswith("⚠ ") and warning.startswith(t[2:12]) for t in texts)
    assert got["height"] > 150 + 10 * len(plan["warnings"])


@needs_node
@pytest.mark.parametrize("name", ["sample", "multi", "portrait"])
def test_view_hit_tests_find_words_and_frames(node_view, plans: dict, name: str) -> None:
    out, _ = node_view
    got, plan = out["plans"][name], plans[name]
    for lane in ("original", "edited"):
        words = plan[f"{lane}_words"]
        hits = got["wordHits"][lane]
        assert hits == [f'"{w["word"]}"  {w["start"]:.3f}–{w["end"]:.3f} s ({lane})' for w in words]
    for k, lines in enumerate(got["frameHits"]):
        assert lines[0] == f"target frame {k} ({k / plan['fps']:.3f} s)"
        assert math.isclose(float(lines[1].removeprefix("from source frame ")), plan["source_time"][k], abs_tol=1e-3)
        cls = got["classes"][k]
        if cls >= 0:
            assert lines[2] == f"generated ({plan['edits'][cls]['type']})"
        else:
            assert lines[2] == ("generated (context margin)" if cls == -1 else "copied from the source")
    assert got["sourceHits"] == [f"source frame {i} ({i / plan['fps']:.3f} s)" for i in range(plan["source_frames"])]
    assert got["outside"] is None
    assert got["tooltip"] == got["frameHits"][int(plan["target_frames"] / 2)]  # hover drew that frame's tooltip


@needs_node
def test_view_keeps_the_context_balanced_when_drawing_throws(node_view) -> None:
    out, _ = node_view
    for got in out["plans"].values():
        assert got["throwingContext"] == {"threw": True, "balanced": True}


@needs_node
def test_view_rejects_malformed_plans_naming_the_field(node_view) -> None:
    out, mutations = node_view
    assert len(out["malformed"]) == len(mutations)
    for result, (_, field) in zip(out["malformed"], mutations, strict=True):
        assert result["ok"] is False and result["planError"], (field, result)
        assert result["message"].startswith(field + ":"), (field, result["message"])
    assert out["errorPanel"]["balanced"]
    assert out["errorPanel"]["texts"][0].startswith("⚠ FacEDiT plan not drawn: plan.fps")


# ------------------------------------------------------------------------------------------- browser


_FIND_PLAYWRIGHT = """
const req = require('module').createRequire(process.cwd() + '/');
for (const p of [process.env.FACEDIT_PLAYWRIGHT, 'playwright-core', '/work/comfy/tools/node_modules/playwright-core']) {
  if (!p) continue;
  try { req(p); process.exit(0); } catch {}
}
process.exit(1);
"""


def _browser_skip_reason() -> str | None:
    if os.environ.get("FACEDIT_SKIP_BROWSER"):
        return "FACEDIT_SKIP_BROWSER is set"
    if NODE is None:
        return "Node.js is not installed"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (set FACEDIT_CHROMIUM)"
    if comfy_install() is None:
        return "no ComfyUI install (set FACEDIT_COMFYUI_DIR and FACEDIT_COMFYUI_PYTHON)"
    probe = subprocess.run([NODE, "-e", _FIND_PLAYWRIGHT], capture_output=True)
    if probe.returncode != 0:
        return "playwright-core is not installed (set FACEDIT_PLAYWRIGHT to its folder)"
    return None


def _report(result: subprocess.CompletedProcess) -> dict:
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"frontend_check.mjs printed no report (rc {result.returncode}):\n{result.stdout}\n{result.stderr}")
    failed = [c for c in report["checks"] if not c["ok"]]
    assert result.returncode == 0 and report["ok"], json.dumps(failed or report.get("error"), indent=1)[:4000]
    return report


@pytest.mark.skipif(_browser_skip_reason() is not None, reason=str(_browser_skip_reason()))
@pytest.mark.parametrize("pack", ["probe", "real"])
def test_extension_in_a_real_browser(tmp_path: Path, pack: str) -> None:
    """ComfyUI + headless Chromium: registers, draws after a run only, re-run replaces, nothing of the plan is
    saved; on the litegraph canvas, then with Vue nodes (tools/frontend_check.mjs). `probe`: the probe pack's
    nodes send real plans (and a malformed one); `real`: this repository's own plan nodes."""
    if pack == "real" and not (ROOT / "nodes" / "plan.py").is_file():
        pytest.skip("the plan nodes (nodes/plan.py) are not in this checkout")
    comfy, python = comfy_install()
    base = tmp_path / "base"
    check = [NODE, str(ROOT / "tools" / "frontend_check.mjs"), "--chromium", CHROMIUM]
    if pack == "probe":
        write_probe_base(base)
        vue_cases = ["--cases", "multi"]
    else:
        write_pack_base(base)
        (tmp_path / "prompt.json").write_text(json.dumps(pack_prompt()))
        check += ["--prompt", str(tmp_path / "prompt.json")]
        vue_cases = []
    with ComfyServer(comfy, python, base) as server:
        check += ["--url", server.url]
        canvas = subprocess.run(check, capture_output=True, text=True, timeout=400)
        vue = subprocess.run([*check, "--vue", *vue_cases], capture_output=True, text=True, timeout=400)
        log = server.log()
    assert "IMPORT FAILED" not in log, log[-3000:]
    report = _report(canvas)
    names = {c["name"] for c in report["checks"]}
    needed = {
        "extension registered",
        "nothing drawn before a run",
        "re-run replaces the plan",
        "saved workflow holds no plan",
        "nothing drawn after reloading the workflow",
        "Vue nodes switched on: plans move to DOM canvases",
    }
    assert needed <= names
    assert len(report["checks"]) >= 30
    assert _report(vue)["vue"] is True
