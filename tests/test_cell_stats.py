"""docs/cell_stats.py, the script the tutorial quotes for what sets the factor per step:
it runs, prints every layer of both stacks for the three cells, and its factor per step
is what the exact Jacobians give."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ["I lost my keys yesterday at the station.\tJ'ai perdu mes clés hier à la gare.",
         "We will see what the teacher says about it.\tNous verrons ce qu'en dit le prof.",
         "He's calm.\tIl est calme.", "Go.\tVa !"]


@pytest.fixture(scope="module")
def cell_stats():
    spec = importlib.util.spec_from_file_location("cell_stats", ROOT / "docs" / "cell_stats.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_prints_every_layer_of_the_three_fresh_cells(cell_stats, tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(PAIRS) + "\n", encoding="utf-8")
    assert cell_stats.main(["--pairs", str(pairs), "--num-steps", "8"]) == 0
    out = capsys.readouterr().out
    for cell in ("rnn", "gru", "lstm"):
        assert f"{cell} (fresh): {cell}, 2 layers of 32 units; 4 pairs, 8 source" in out
    assert out.count("encoder layer 1") == 3 and out.count("decoder layer 1") == 3
    assert out.count("z-path alone") == 4 and out.count("cell path (f) alone") == 4
    factors = [float(f) for f in re.findall(r"carried by the Jacobians: (?:h )?([\d.]+)", out)]
    assert len(factors) == 12 and all(0 < f < 2 for f in factors)


def test_the_factor_is_the_carried_gradients(cell_stats):
    """``factor`` of the norms ``carried`` returns, against the same product written out."""
    norms = [2.0 * 0.5 ** d for d in range(40)]
    assert cell_stats.factor(norms) == pytest.approx(0.5)
    assert cell_stats.factor(norms[:12]) == pytest.approx(0.5)  # fewer steps: to the first
    gates = np.full((5, 3, 4), 0.25)
    assert cell_stats.factor(cell_stats.diagonal(gates, np.random.default_rng(0))) == \
        pytest.approx(0.25)
