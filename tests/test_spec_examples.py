"""S12: the worked examples of the spec items (docs/spec.md) run as programs and print their numbers."""
import pytest

from p2penv.experiments import spec_examples


def test_s12_examples_run_and_give_the_spec_numbers(capsys):
    spec_examples.main([])
    out = capsys.readouterr().out
    assert "S3 Q = 2.0 kWh, p* = 8.5 $/kWh, surplus = 10.0" in out
    assert "S9 HHI = 0.30, L_avg = HHI / |eps| = 0.06" in out
    assert spec_examples.s1_transactive_price()["price"] == pytest.approx(4.8)
    assert spec_examples.s2_prosumer() == pytest.approx({"lo": 2.0, "hi": 4.0, "q": 2.3})


def test_s5_s6_example_separates_prices_downstream_of_the_congested_line():
    import numpy as np

    r = spec_examples.s5_s6_dlmp()
    # hand values from tests/test_dlmp.py::test_teaching4_congestion_by_hand
    np.testing.assert_allclose(r["dlmp"], [0.1, 0.1006, 0.2, 0.1012], atol=1e-12)
    np.testing.assert_allclose(r["congestion"], [0, 0, 0.0986, 0], atol=1e-12)
    np.testing.assert_allclose(r["matched"], [50, 0], atol=1e-9)


def test_docs_links_stay_inside_the_repository_and_spec_lists_every_item():
    # docs/spec.md replaces the out-of-repo ../shared/seed/SPEC.md: every relative link in docs/
    # resolves to a file of this repository, and spec.md has a section per item S1..S12.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for page in sorted((root / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text, page.name
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            path = (page.parent / target).resolve()
            assert path.is_relative_to(root) and path.exists(), f"{page.name}: broken link {target}"
    spec = (root / "docs" / "spec.md").read_text(encoding="utf-8")
    for i in range(1, 13):
        assert re.search(rf"^## S{i} ", spec, re.M), f"S{i}"
