"""Direct Inversion's Table 1 (Ju et al., ICLR 2024: PIE-Bench, 700 pictures, SD v1.4; PnP rows SD v1.5),
as the paper prints it, for setting our runs beside it. Columns as :data:`editlab.metrics.PIE_BENCH_COLUMNS`
(the paper's scalings); rows named as :func:`editlab.methods.parse_method` names them. StyleDiffusion is in
the paper's table but not in this project (no inversion of that name exists here)."""

from __future__ import annotations

# the same names as editlab.metrics.PIE_BENCH_COLUMNS (tested), written out so that bench/ needs no torch
COLUMNS = ("structure distance x1e3", "PSNR", "LPIPS x1e3", "MSE x1e4", "SSIM x1e2", "CLIP whole", "CLIP edited")

TABLE_1: dict[str, tuple[float, ...]] = {
    "ddim+p2p": (69.43, 17.87, 208.80, 219.88, 71.14, 25.01, 22.44),
    "null-text+p2p": (13.44, 27.03, 60.67, 35.86, 84.11, 24.75, 21.86),
    "negative-prompt+p2p": (16.17, 26.21, 69.01, 39.73, 83.40, 24.61, 21.87),
    "styled+p2p": (11.65, 26.05, 66.10, 38.63, 83.42, 24.78, 21.72),  # StyleDiffusion: not implemented here
    "direct+p2p": (11.65, 27.22, 54.55, 32.86, 84.76, 25.02, 22.10),
    "ddim+masactrl": (28.38, 22.17, 106.62, 86.97, 79.67, 23.96, 21.16),
    "direct+masactrl": (24.70, 22.64, 87.94, 81.09, 81.33, 24.38, 21.35),
    "ddim+pix2pix-zero": (61.68, 20.44, 172.22, 144.12, 74.67, 22.80, 20.54),
    "direct+pix2pix-zero": (49.22, 21.53, 138.98, 127.32, 77.05, 23.31, 21.05),
    "ddim+pnp": (28.22, 22.28, 113.46, 83.64, 79.05, 25.41, 22.55),
    "direct+pnp": (24.29, 22.46, 106.06, 80.45, 79.68, 25.41, 22.62),
}

NOT_IMPLEMENTED = {"styled+p2p": "StyleDiffusion + P2P (not implemented in this project)"}

# The rows this project runs: every row of the table but StyleDiffusion's.
METHODS = [m for m in TABLE_1 if m not in NOT_IMPLEMENTED]


def paper_value(method: str, column: str) -> float:
    """The paper's number for ``method`` ("direct+p2p") and ``column`` ("PSNR")."""
    if method not in TABLE_1:
        raise ValueError(f"Table 1 has no row {method!r}; its rows: {', '.join(TABLE_1)}")
    if column not in COLUMNS:
        raise ValueError(f"Table 1 has no column {column!r}; its columns: {', '.join(COLUMNS)}")
    return TABLE_1[method][COLUMNS.index(column)]
