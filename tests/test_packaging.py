"""What `pip install p2penv` ships: every subpackage, under the p2penv namespace only."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_installed_under_p2penv():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "p2penv").rglob("__init__.py")}
    found |= {"p2penv.agents", "p2penv.experiments"}
    assert listed == found, f"pyproject packages differ from the package folders: {sorted(listed ^ found)}"
    assert all(name == "p2penv" or name.startswith("p2penv.") for name in listed)
    assert cfg["package-dir"] == {"p2penv.agents": "agents", "p2penv.experiments": "experiments"}


def test_agents_and_experiments_import_as_p2penv_subpackages():
    import p2penv.agents.baselines
    import p2penv.experiments.metrics

    assert Path(p2penv.agents.baselines.__file__).parent == ROOT / "agents"
    assert Path(p2penv.experiments.metrics.__file__).parent == ROOT / "experiments"
