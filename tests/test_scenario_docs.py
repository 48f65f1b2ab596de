"""docs/scenarios.md: a card for every registered scenario, generated or hand-written, and the baseline
table's regeneration keeps the hand-written sections (experiments.scenario_baselines)."""
import re
from pathlib import Path

import p2penv
from p2penv.experiments.scenario_baselines import END, hand_written_cards, scenario_cards

PAGE = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"


def test_every_registered_scenario_has_one_card():
    text = PAGE.read_text()
    cards = re.findall(r"^#{2,3} `([^`]+)`", text, flags=re.M)
    assert sorted(cards) == sorted(p2penv.list_scenarios())  # each once: no scenario missing, none twice


def test_hand_written_cards_replace_the_generated_ones():
    tail = "\n## A section\n\n### `auction_v0/arbitrage_tou-v0`\n\ntext\n"
    assert hand_written_cards(tail) == {"auction_v0/arbitrage_tou-v0"}
    page = scenario_cards(skip=hand_written_cards(tail))
    assert "## `auction_v0/arbitrage_tou-v0`" not in page and "## `auction_v0/household6-v0`" in page
    assert page.rstrip().endswith(END)
