"""The independent SB3 learners use only stable-baselines3's public API: no underscored attribute of any
object but the module's own (``self``), and no underscored name imported (checked on the source with ast)."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "agents" / "independent.py"


def private_uses(source: str) -> list[str]:
    """``line: expr`` of every ``x._name`` with x not ``self`` and every ``from m import _name``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                out.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            out += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
    return out


def test_independent_learners_touch_no_private_member():
    bad = private_uses(SRC.read_text(encoding="utf-8"))
    assert not bad, "private members used by agents/independent.py:\n" + "\n".join(bad)


def test_the_check_finds_private_uses():
    src = "from x import _y\nm._setup_learn()\nself._a = 1\nm.policy.__class__\n"
    assert private_uses(src) == ["1: from x import _y", "2: m._setup_learn"]
