"""The front door: the README is short and true, its links and the docs' links resolve, and every
```python block of the README and docs/*.md runs.

A page's blocks run in order in one fresh interpreter (they build on each other), in a temporary folder
(so what they write lands there), with the matplotlib backend Agg; the pages of ``BY_SECTION`` hold
independent ``## `` sections (one per library), each run on its own.
A block fenced as ```python fragment is an excerpt that needs context it does not show: not run. A
section that needs an extra (Ray's RLlib, TorchRL, BenchMARL) is skipped where it is not installed; the
sections that train (docs/ecosystem.md) are ``slow`` (``make test-all``; the BenchMARL one runs in
``.venv-benchmarl``).
"""
import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BY_SECTION = {"ecosystem.md"}
SLOW_SECTIONS = {("ecosystem.md", "RLlib"), ("ecosystem.md", "TorchRL"), ("ecosystem.md", "BenchMARL")}
# p2penv modules whose import needs an extra, by the module that tells whether it is installed
NEEDS = {"p2penv.agents.rllib_ppo": "ray", "p2penv.agents.torchrl_env": "torchrl",
         "p2penv.agents.benchmarl_task": "benchmarl", "p2penv.agents.vector_ppo": "torch"}
FENCE = re.compile(r"^```python( fragment)?\n(.*?)^```$", re.M | re.S)


def sections(page: Path) -> list[tuple[str, str]]:
    """(``## `` heading, the section's runnable python code) of every section that has some; one
    ("all", code) for a page not in ``BY_SECTION``."""
    text = page.read_text()
    if page.name not in BY_SECTION:
        code = "\n".join(m[2] for m in FENCE.finditer(text) if not m[1])
        return [("all", code)] if code.strip() else []
    out = []
    for part in re.split(r"^(?=## )", text, flags=re.M):
        title = part.splitlines()[0][3:].strip() if part.startswith("## ") else "(top)"
        code = "\n".join(m[2] for m in FENCE.finditer(part) if not m[1])
        if code.strip():
            out.append((title, code))
    return out


def snippets():
    for page in PAGES:
        for title, code in sections(page):
            marks = [pytest.mark.slow] if (page.name, title) in SLOW_SECTIONS else []
            yield pytest.param(page, title, code, id=page.name if title == "all" else f"{page.name}-{title}",
                               marks=marks)


def missing_extra(code: str) -> str | None:
    """The first module the code imports (directly or through a p2penv module) that is not installed."""
    for node in ast.walk(ast.parse(code)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        for name in names:
            need = NEEDS.get(name, name.split(".")[0])
            if importlib.util.find_spec(need) is None:
                return need
    return None


@pytest.mark.parametrize("page, title, code", list(snippets()))
def test_python_snippets_run(page, title, code, tmp_path):
    need = missing_extra(code)
    if need:
        pytest.skip(f"{page.name} / {title}: needs {need}")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, f"{page.name} / {title}:\n{res.stderr[-3000:]}"


def test_the_readme_is_a_short_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert text.index("make demo") < text.index("## ") and text.index("make test") < text.index("## ")
    assert not re.search(r"\b\d[\d,]* tests\b|\d+(\.\d+)? min(utes)? of tests", text)  # counts and times go stale
    assert "## Findings" in text and "Learner validation" in text


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    """Every relative link of the page names a file that exists, and an anchor into a page a heading of it."""
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == ".md":
            heads = {_slug(h) for h in re.findall(r"^#+ (.*)$", dest.read_text(), flags=re.M)}
            if anchor not in heads:
                bad.append(target)
    assert not bad, f"{page.name}: broken links {bad}"
