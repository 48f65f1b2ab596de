"""S12: the seed's worked examples run as programs and print the seed's numbers."""
import pytest

from experiments import seed_examples


def test_s12_examples_run_and_give_the_seed_numbers(capsys):
    seed_examples.main([])
    out = capsys.readouterr().out
    assert "S3 Q = 2.0 kWh, p* = 8.5 $/kWh, surplus = 10.0" in out
    assert "S9 HHI = 0.30, L_avg = HHI / |eps| = 0.06" in out
    assert seed_examples.s1_transactive_price()["price"] == pytest.approx(4.8)
    assert seed_examples.s2_prosumer() == pytest.approx({"lo": 2.0, "hi": 4.0, "q": 2.3})


def test_s5_s6_example_separates_prices_downstream_of_the_congested_line():
    import numpy as np

    r = seed_examples.s5_s6_dlmp()
    # hand values from tests/test_dlmp.py::test_teaching4_congestion_by_hand
    np.testing.assert_allclose(r["dlmp"], [0.1, 0.1006, 0.2, 0.1012], atol=1e-12)
    np.testing.assert_allclose(r["congestion"], [0, 0, 0.0986, 0], atol=1e-12)
    np.testing.assert_allclose(r["matched"], [50, 0], atol=1e-9)
