"""The node help pages (web/docs/<NodeId>.md, shown in ComfyUI's node help panel) and docs/GUIDE.md."""

import importlib.util
import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
HELP = ROOT / "web" / "docs"
GUIDE = ROOT / "docs" / "GUIDE.md"
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _load_pack():
    name = "ComfyUI-FacEDiT-docs"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


PACK = _load_pack()
NODE_IDS = sorted(PACK.NODE_CLASS_MAPPINGS)


def _input_names(node_id: str) -> list[str]:
    schema = PACK.NODE_CLASS_MAPPINGS[node_id].define_schema()
    return [getattr(i, "id", None) or i.name for i in schema.inputs]


def _relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    links = [m.group(1) for m in LINK.finditer(text)]
    links += re.findall(r"<img[^>]+src=\"([^\"]+)\"", text)
    return [unquote(u.split("#", 1)[0]) for u in links if not re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", u)]


def test_the_pack_has_nodes():
    assert len(NODE_IDS) >= 12, NODE_IDS


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_every_node_has_a_help_page(node_id):
    page = HELP / f"{node_id}.md"
    assert page.is_file(), f"missing help page {page.relative_to(ROOT)}"
    text = page.read_text()
    assert text.lstrip().startswith("# "), f"{page.name} should open with a title"
    assert len(text) > 800, f"{page.name} is too short to be a help page"


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_help_page_mentions_every_input_and_output(node_id):
    text = (HELP / f"{node_id}.md").read_text()
    schema = PACK.NODE_CLASS_MAPPINGS[node_id].define_schema()
    names = _input_names(node_id)
    assert names, node_id
    for name in names:
        assert f"`{name}`" in text, f"{node_id}.md does not mention input `{name}`"
    for output in schema.outputs:
        label = output.display_name
        assert f"`{label}`" in text, f"{node_id}.md does not mention output `{label}`"


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_help_page_states_the_code_defaults(node_id):
    """Every widget default in the schema appears in the page's row for that input."""
    text = (HELP / f"{node_id}.md").read_text()
    schema = PACK.NODE_CLASS_MAPPINGS[node_id].define_schema()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\|\s*`([^`]+)`.*$", text, flags=re.M)}
    for item in schema.inputs:
        name = getattr(item, "id", None) or item.name
        default = getattr(item, "default", None)
        if default is None or isinstance(default, str) and default == "":
            continue
        assert name in rows, f"{node_id}.md has no table row for `{name}`"
        if isinstance(default, bool):
            shown = ["true", "false"][not default]
            assert shown in rows[name].lower(), f"{node_id}.md row `{name}` should give default {shown}"
            continue
        candidates = {str(default)}
        if isinstance(default, float):
            candidates |= {f"{default:g}", f"{default:.1f}"}
        assert any(c in rows[name] for c in candidates), f"{node_id}.md row `{name}` should give default {default}"
        for bound in ("min", "max"):
            value = getattr(item, bound, None)
            if value is None or value >= 2**31:
                continue
            shown = {str(value), f"{value:g}"} if isinstance(value, float) else {str(value)}
            assert any(s in rows[name] for s in shown), f"{node_id}.md row `{name}` should give {bound} {value}"


def test_help_pages_only_for_real_nodes():
    pages = {p.stem for p in HELP.glob("*.md")}
    assert pages <= set(NODE_IDS), f"help pages for unknown nodes: {sorted(pages - set(NODE_IDS))}"


@pytest.mark.parametrize("path", [*sorted(HELP.glob("*.md")), GUIDE], ids=lambda p: p.name)
def test_relative_links_and_images_exist(path):
    assert path.is_file(), path
    for link in _relative_links(path):
        target = (path.parent / link).resolve()
        assert target.exists(), f"{path.relative_to(ROOT)} links to missing {link}"


@pytest.mark.parametrize("path", sorted(HELP.glob("*.md")), ids=lambda p: p.name)
def test_help_page_links_stay_inside_web(path):
    """ComfyUI serves only WEB_DIRECTORY (web/): a help page's relative link must resolve inside it."""
    web = (ROOT / "web").resolve()
    for link in _relative_links(path):
        target = (path.parent / link).resolve()
        assert target.is_relative_to(web), f"{path.name} links to {link}, which ComfyUI does not serve"


def test_no_javascript_under_web_docs():
    assert not list(HELP.rglob("*.js")), "every .js under WEB_DIRECTORY is loaded as a frontend extension"


@pytest.mark.parametrize("path", [GUIDE, ROOT / "README.md", *sorted(HELP.glob("*.md"))], ids=lambda p: p.name)
def test_docs_name_existing_workflows(path):
    """Workflow names have spaces: a link spells them %20, text in backticks as they are."""
    named = {unquote(n) for n in re.findall(r"workflows/([^)`\n*<>]+?\.json)", path.read_text())}
    if path in (GUIDE, ROOT / "README.md"):
        assert named, f"{path.name} should name the workflow files it walks through"
    for name in named:
        assert (ROOT / "workflows" / name).is_file(), f"{path.name} names missing workflows/{name}"


def test_link_checker_sees_links():
    sample = "see ![a](img/x.png) and [b](../y.md#top), [c](https://e.org), ```[d](z.png)```"
    tmp_links = [m.group(1) for m in LINK.finditer(re.sub(r"```.*?```", "", sample, flags=re.S))]
    assert tmp_links == ["img/x.png", "../y.md#top", "https://e.org"]


def _display_names() -> set[str]:
    return {PACK.NODE_CLASS_MAPPINGS[n].define_schema().display_name for n in NODE_IDS}


@pytest.mark.parametrize("path", sorted(HELP.glob("*.md")) + [GUIDE, ROOT / "README.md"], ids=lambda p: p.name)
def test_bold_node_names_are_nodes_of_the_pack(path):
    named = {" ".join(m.split()) for m in re.findall(r"\*\*(FacEDiT\s[A-Za-z0-9\s]+?)\*\*", path.read_text())}
    assert named <= _display_names(), f"{path.name} names nodes the pack does not have: {named - _display_names()}"


def test_word_inputs_say_where_timestamps_come_from():
    schema = PACK.NODE_CLASS_MAPPINGS["FacEDiTEditPlan"].define_schema()
    tooltips = {i.id: i.tooltip for i in schema.inputs if i.id in ("original_words", "edited_words")}
    assert len(tooltips) == 2, tooltips
    sources = {"FacEDiT Transcribe", "FacEDiT Align Transcript"}
    assert sources <= _display_names()
    for name, tooltip in tooltips.items():
        assert all(s in tooltip for s in sources), f"{name}'s tooltip does not name {sources}: {tooltip}"
    page = (HELP / "FacEDiTEditPlan.md").read_text()
    assert all(f"**{s}**" in page for s in sources)
    assert "in the works" not in page and "until it ships" not in page
