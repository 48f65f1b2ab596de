"""Shape conventions shared by the pipeline's compiled stages."""
from __future__ import annotations

import numpy as np


def agent_batches(arrays, n: int, b: int) -> list[np.ndarray]:
    """Per-agent arrays of shapes (N,) or (..., N) as C-contiguous (Bc, N): Bc = 1 when every array
    describes one market (shared by a batch of B joint actions), else B (copies where broadcast)."""
    flat = [np.ascontiguousarray(x, dtype=np.float64).reshape(-1, n) for x in arrays]
    rows = {x.shape[0] for x in flat}
    if rows == {1}:
        return flat
    if not rows <= {1, b}:
        raise ValueError(f"actions: batch of {b} joint actions for per-agent arrays of {sorted(rows)} markets")
    return [x if x.shape[0] == b else np.ascontiguousarray(np.broadcast_to(x, (b, n))) for x in flat]
