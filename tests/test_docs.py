"""The user manual in docs/: every code sample runs, the block pages are current, and the
porting guide covers every block, wrapper call and layer class.

* Every ```` ```python ```` block of ``docs/**/*.md`` is executed; the blocks of one page run
  in order in one namespace (a page is one test), in a temporary working folder.  A block
  that must not run is fenced ```` ```python no-run: <reason> ```` -- the reason is shown on
  the page and required here.
* ``docs/blocks/*.md`` equal what ``docs/gen_blocks.py`` generates from the docstrings.
* ``docs/porting.md`` names every ``vl_nn*`` / ``vl_simplenn*`` function the package exports,
  every layer class of ``matconvnet.dagnn.layers`` and every public ``DagNN`` method, and --
  when ``../shared/FEATURES.md`` is present -- every block, option, method, layer class,
  trainer option and utility of the original that FEATURES.md lists.
"""
from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from typing import List, NamedTuple

import pytest
import torch

from matconvnet.dagnn.layers import LAYER_CLASSES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FEATURES = ROOT.parent / "shared" / "FEATURES.md"

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class Sample(NamedTuple):
    page: Path
    line: int           # 1-based line of the first code line
    info: str           # the fence's info string ('python', 'python no-run: why', 'text')
    code: str


def samples(page: Path) -> List[Sample]:
    """The fenced code blocks of a Markdown page, in order."""
    out: List[Sample] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m["indent"]), m["fence"], m["info"].strip()
        start = i + 1
        i = start
        while i < len(lines) and not (lines[i].strip().startswith(fence)
                                      and set(lines[i].strip()) == {fence[0]}):
            i += 1
        if i >= len(lines):
            raise AssertionError(f"{page}:{start}: unclosed code fence")
        body = [l[indent:] if l[:indent].strip() == "" else l for l in lines[start:i]]
        out.append(Sample(page, start + 1, info, "\n".join(body) + "\n"))
        i += 1
    return out


def _language(info: str) -> str:
    return info.split()[0].lower() if info.split() else ""


def _pages() -> List[Path]:
    return sorted(DOCS.rglob("*.md"))


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def test_there_are_pages_and_samples():
    pages = _pages()
    assert DOCS / "index.md" in pages
    python = [s for p in pages for s in samples(p) if _language(s.info) == "python"]
    assert len(python) >= 40, f"only {len(python)} python samples in docs/"


def test_no_run_blocks_give_a_reason():
    for page in _pages():
        for s in samples(page):
            if _language(s.info) != "python":
                continue
            flags = s.info.split(None, 1)[1] if len(s.info.split()) > 1 else ""
            if flags:
                assert re.match(r"no-run:\s*\S.{8,}", flags), (
                    f"{_rel(page)}:{s.line - 1}: a python block may only be marked "
                    f"'no-run: <reason>', got {s.info!r}")


@pytest.mark.parametrize("page", _pages(), ids=_rel)
def test_page_samples_run(page, tmp_path, monkeypatch):
    """Run the page's python blocks in order in one namespace, in a temporary folder."""
    runnable = [s for s in samples(page)
                if _language(s.info) == "python" and "no-run" not in s.info]
    if not runnable:
        pytest.skip(f"{_rel(page)} has no python samples")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    namespace = {"__name__": "__docs__"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # the samples are small: more threads only add contention
    registered = dict(LAYER_CLASSES)    # a sample may register a layer class: undo it after
    try:
        for s in runnable:
            # pad with blank lines so that tracebacks give the line numbers of the .md file
            code = compile("\n" * (s.line - 1) + s.code, str(page), "exec")
            exec(code, namespace)
    finally:
        torch.set_num_threads(threads)
        LAYER_CLASSES.clear()
        LAYER_CLASSES.update(registered)


# ----------------------------------------------------------------------------- generated pages


def _gen_blocks():
    spec = importlib.util.spec_from_file_location("gen_blocks", DOCS / "gen_blocks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_block_pages_are_current():
    gen = _gen_blocks()
    stale = gen.stale_pages(gen.render_all())
    assert not stale, ("docs/blocks is out of date with the block docstrings: "
                       f"{', '.join(stale)}; run python3 docs/gen_blocks.py")


def test_every_block_has_a_page():
    import matconvnet
    gen = _gen_blocks()
    blocks = sorted(n for n in matconvnet.__all__ if n.startswith("vl_nn"))
    assert blocks == sorted(name for name, _ in gen.block_functions())
    for name in blocks:
        assert (DOCS / "blocks" / f"{name}.md").is_file(), name


def test_a_docstring_missing_a_section_is_refused():
    gen = _gen_blocks()
    doc = "vl_nnx: a block.\n\nFormula::\n\n    y = x\n\nCall forms::\n\n    y = vl_nnx(x)\n"
    with pytest.raises(ValueError, match="Shapes, Options, Example"):
        gen.check("vl_nnx", doc)
    doc += "\nShapes: any.\n\nOptions: none.\n\nExample::\n\n    pass\n"
    with pytest.raises(ValueError, match="backward call"):
        gen.check("vl_nnx", doc)


# ----------------------------------------------------------------------------- porting guide


def _porting() -> str:
    return (DOCS / "porting.md").read_text(encoding="utf-8")


def _mentioned(name: str, text: str, case: bool = True) -> bool:
    flags = 0 if case else re.IGNORECASE
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])",
                     text, flags) is not None


def test_porting_covers_exported_functions():
    import matconvnet
    text = _porting()
    missing = [n for n in matconvnet.__all__
               if n.startswith(("vl_nn", "vl_simplenn")) and not _mentioned(n, text)]
    assert not missing, f"docs/porting.md does not mention {missing}"


def test_porting_covers_layer_classes():
    from matconvnet.dagnn import layers
    text = _porting()
    classes = {c for n, c in inspect.getmembers(layers, inspect.isclass)
               if issubclass(c, layers.Layer) and c.__module__ == layers.__name__
               and not n.startswith("_")}
    classes |= {c for c in layers.LAYER_CLASSES.values() if c.__module__.startswith("matconvnet.")}
    missing = sorted(c.__name__ for c in classes
                     if not _mentioned(f"dagnn.{c.__name__}", text)
                     or not re.search(r"(?<![\w.])" + c.__name__ + r"\(", text))
    assert not missing, (f"docs/porting.md lacks a row 'dagnn.X -> X(...)' for the layer "
                         f"classes {missing}")


def test_porting_covers_dagnn_methods():
    from matconvnet.dagnn import DagNN
    text = _porting()
    public = [n for n, _ in inspect.getmembers(DagNN) if not n.startswith("_")]
    missing = [n for n in public if not _mentioned(n, text)]
    assert not missing, f"docs/porting.md does not mention the DagNN members {missing}"


def _features_names() -> dict:
    """MATLAB names FEATURES.md lists, by kind: {kind: {name, ...}}."""
    rows = [l for l in FEATURES.read_text(encoding="utf-8").splitlines()
            if l.startswith("| [")]

    def cells(row):
        return [c.strip() for c in row.strip().strip("|").split("|")]

    def ticked(cell):
        return re.findall(r"`([^`]+)`", cell)

    names: dict = {}

    def add(kind, name):
        name = name.strip().strip("'")
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
            names.setdefault(kind, set()).add(name)

    for row in rows:
        c = cells(row)
        if len(c) < 4:
            continue
        ident = c[1]
        if re.fullmatch(r"B-[A-Z]+", ident):                       # blocks
            for t in ticked(c[2]):
                add("block", t)
        elif re.fullmatch(r"O-[A-Z]+-\d+", ident):                 # block options
            for t in ticked(c[3]):
                for part in re.split(r"\s*/\s*", t):
                    add("block option", part)
        elif re.fullmatch(r"S-OPT-\d+", ident):                    # vl_simplenn options
            for t in ticked(c[2]):
                add("vl_simplenn option", t)
        elif re.fullmatch(r"U-IJ-\d+", ident):                     # vl_imreadjpeg options
            add("utility", "vl_imreadjpeg")
            for t in ticked(c[2])[:1]:
                add("vl_imreadjpeg option", t)
        elif re.fullmatch(r"S-U-\d+|U-(AP|TA|TM|TS|CT|SU|CP|CB)-\d+", ident):   # utilities
            for t in re.findall(r"\bvl_\w+", c[2]):
                add("utility", t)
        elif re.fullmatch(r"U-[A-Z0-9]+-\d+", ident):               # utils/ scripts
            for t in re.findall(r"[\w-]+\.(?:py|m|sh)\b", c[2]):
                add("script", t)
        elif re.fullmatch(r"E-[A-Z-]+", ident):                     # examples
            for t in re.findall(r"\bcnn_\w+", c[2]):
                add("example", t.removesuffix(".m"))
        elif re.fullmatch(r"D-M-\d+", ident):                      # DagNN methods
            for t in ticked(c[2]):
                m = re.match(r"(?:[\w\s,\[\]]*=\s*)?(?:DagNN\.)?([A-Za-z]+)", t)
                if m:
                    add("DagNN method", m.group(1))
        elif re.fullmatch(r"D-P-\d+", ident):                      # DagNN properties
            for t in ticked(c[2])[:1]:
                add("DagNN property", t)
        elif re.fullmatch(r"D-C-[A-Z0-9]+", ident):                # layer classes
            for t in ticked(c[2])[:1]:
                add("layer class", "dagnn." + t)
        elif re.fullmatch(r"T-O-\d+", ident):                      # trainer options
            for t in ticked(c[2])[:1]:
                add("cnn_train option", t.split(".")[0])
        elif re.fullmatch(r"T-S-[1-9]", ident):                    # solvers
            for t in ticked(c[2]):
                add("solver", t)
    return names


@pytest.mark.skipif(not FEATURES.is_file(), reason="../shared/FEATURES.md is not present")
def test_porting_covers_every_call_of_the_original():
    text = _porting()
    names = _features_names()
    for kind in ("block", "block option", "vl_simplenn option", "utility", "DagNN method",
                 "DagNN property", "layer class", "cnn_train option", "solver",
                 "vl_imreadjpeg option", "script", "example"):
        assert names.get(kind), f"no {kind} names found in FEATURES.md (format changed?)"
    missing = {kind: sorted(n for n in ns if not _mentioned(n, text, case=False))
               for kind, ns in names.items()}
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"docs/porting.md does not mention: {missing}"


# ----------------------------------------------------------------------------- links, nav


def test_links_between_pages_resolve():
    broken = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target) or target.startswith("#"):
                continue
            path = target.split("#")[0]
            if not (page.parent / path).resolve().is_file():
                broken.append(f"{_rel(page)} -> {target}")
    assert not broken, f"links to missing files: {broken}"


def test_mkdocs_nav_lists_every_page():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*(\S+\.md)\s*$", nav, re.MULTILINE))
    pages = {p.relative_to(DOCS).as_posix() for p in _pages()}
    assert listed == pages, (f"mkdocs.yml nav: missing {sorted(pages - listed)}, "
                             f"no such page {sorted(listed - pages)}")


def test_table_cells_have_no_pipes_in_code():
    """A '|' inside `code` in a table row splits the cell in Markdown renderers."""
    bad = []
    for page in _pages():
        fenced = False
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if _FENCE.match(line):
                fenced = not fenced
            if not fenced and line.startswith("|"):
                bad += [f"{_rel(page)}:{n}: {span}" for span in re.findall(r"`([^`]*)`", line)
                        if "|" in span]
    assert not bad, f"pipes inside code spans of table rows: {bad}"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_named_modules_and_functions_exist():
    """Every ``matconvnet.x.y`` the pages name, and every ``matconvnet train X`` example."""
    from matconvnet.cli import EXAMPLES
    missing = set()
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for dotted in set(re.findall(r"\bmatconvnet(?:\.[A-Za-z_]\w*)+", text)):
            if not _resolves(dotted):
                missing.add(f"{_rel(page)}: {dotted}")
        for example in set(re.findall(r"matconvnet train (\w+)", text)):
            if example not in EXAMPLES or not _resolves(EXAMPLES[example]):
                missing.add(f"{_rel(page)}: matconvnet train {example}")
    assert not missing, f"the pages name what does not exist: {sorted(missing)}"
