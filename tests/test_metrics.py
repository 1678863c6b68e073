"""PIE-Bench's background metrics: the (1 - mask) convention, the empty-background policy, hand-computed values."""

import math

import numpy as np
import pytest
import torch
from editlab import metrics
from editlab.toy.oracle import judged_attributes, oracle_edit_judgement


def pictures_and_mask():
    rng = np.random.default_rng(0)
    source = rng.integers(0, 200, (2, 32, 32, 3), dtype=np.uint8)
    mask = np.zeros((2, 32, 32), bool)
    mask[:, 8:24, 8:24] = True  # a quarter of the picture is the edit region
    return source, mask


def test_changes_inside_the_mask_do_not_count_against_the_background():
    source, mask = pictures_and_mask()
    edited = source.copy()
    edited[mask] = 255 - edited[mask]
    assert torch.equal(metrics.background_mse(edited, source, mask), torch.zeros(2))
    assert torch.isinf(metrics.background_psnr(edited, source, mask)).all()
    torch.testing.assert_close(metrics.background_ssim(edited, source, mask), torch.ones(2))


def test_background_psnr_and_mse_by_hand():
    source, mask = pictures_and_mask()
    edited = source + np.uint8(51)  # +0.2 everywhere in [0, 1]
    mse = 0.2 ** 2 * 0.75  # the zeroed edit region counts in the average, as in the official script
    torch.testing.assert_close(metrics.background_mse(edited, source, mask), torch.full((2,), mse), rtol=1e-4, atol=0)
    torch.testing.assert_close(metrics.background_psnr(edited, source, mask), torch.full((2,), 10 * math.log10(1 / mse)), rtol=1e-4, atol=0)


def test_tensors_in_minus_one_one_equal_uint8_arrays():
    source, mask = pictures_and_mask()
    edited = source + np.uint8(10)
    def as_tensor(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1

    torch.testing.assert_close(metrics.background_psnr(as_tensor(edited), as_tensor(source), mask),
                               metrics.background_psnr(edited, source, mask))


def test_a_mask_over_the_whole_picture_gives_nan_and_the_mean_skips_it():
    source, mask = pictures_and_mask()
    mask[1] = True
    psnr = metrics.background_psnr(source + np.uint8(5), source, mask)
    assert math.isfinite(psnr[0]) and math.isnan(psnr[1])
    mean, error, n = metrics.mean_and_error(psnr)
    assert n == 1 and mean == pytest.approx(psnr[0].item()) and math.isnan(error)


def test_edited_region_psnr_counts_only_the_mask():
    source, mask = pictures_and_mask()
    truth = source.copy()
    truth[~mask] = 0  # differences outside the mask are ignored
    edited = source + np.uint8(51)
    torch.testing.assert_close(metrics.edited_region_psnr(edited, truth, mask), torch.full((2,), 10 * math.log10(1 / 0.04)), rtol=1e-4, atol=0)


def test_shapes_that_do_not_match_are_refused():
    source, mask = pictures_and_mask()
    with pytest.raises(ValueError, match="do not match"):
        metrics.background_psnr(source, source, mask[:, :16])
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.background_psnr(source[:1], source, mask)


def test_structure_distance_is_zero_for_equal_keys_and_grows_with_change():
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(2, 17, 8, generator=g)
    assert torch.equal(metrics.structure_distance_from_keys(keys, keys), torch.zeros(2))
    small = metrics.structure_distance_from_keys(keys + 0.1 * torch.randn(keys.shape, generator=g), keys)
    large = metrics.structure_distance_from_keys(torch.randn(keys.shape, generator=g), keys)
    assert (0 < small).all() and (small < large).all()


def test_vit_keys_are_the_last_layers_keys_with_cls():
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    vit = ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                             intermediate_size=32), add_pooling_layer=False).eval()
    keys = metrics.vit_last_keys(vit, torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    assert keys.shape == (2, 1 + 16, 24)


class ReadsTheTarget:
    """A stand-in oracle that sees each edit's target scene (one object) exactly."""

    def __init__(self, edits):
        self.edits = edits

    def read(self, pictures):
        return [judged_attributes(e.target) for e in self.edits]


def test_the_oracle_judgement_counts_asked_and_kept_attributes():
    from editlab.world.edits import make_edit

    edits = [e for e in (make_edit(s, 6) for s in range(40)) if len(e.source.things) == 1][:2]
    pictures = torch.zeros(len(edits), 3, 8, 8)
    judged = oracle_edit_judgement(ReadsTheTarget(edits), pictures, edits)
    assert judged == [{"asked": 1.0, "kept": 1.0}] * len(edits)

    class ReadsTheSource(ReadsTheTarget):
        def read(self, pictures):
            return [judged_attributes(e.source) for e in self.edits]

    judged = oracle_edit_judgement(ReadsTheSource(edits), pictures, edits)
    assert all(j["asked"] == 0.0 and j["kept"] == 1.0 for j in judged)  # nothing was edited


def test_paired_comparison_counts_gains_in_the_better_direction():
    new, old = [1.0, 2.0, float("nan"), 5.0], [2.0, 2.0, 1.0, 3.0]
    lower = metrics.paired_comparison(new, old, higher_is_better=False)  # e.g. structure distance
    assert lower["n"] == 3 and lower["gain"] == pytest.approx((1 + 0 - 2) / 3)
    assert lower["better"] == pytest.approx(1 / 3) and lower["worse"] == pytest.approx(1 / 3)
    higher = metrics.paired_comparison(new, old, higher_is_better=True)  # e.g. PSNR
    assert higher["gain"] == pytest.approx(-lower["gain"]) and higher["stderr"] == pytest.approx(lower["stderr"])
    with pytest.raises(ValueError, match="same edits"):
        metrics.paired_comparison([1.0], [1.0, 2.0], True)


def test_paper_table_has_every_row_and_column_of_direct_inversion_table_1():
    from editlab.bench import paper

    assert paper.COLUMNS == metrics.PIE_BENCH_COLUMNS and len(paper.TABLE_1) == 11 and len(paper.METHODS) == 10
    assert paper.paper_value("direct+p2p", "PSNR") == 27.22 and paper.paper_value("ddim+pnp", "CLIP edited") == 22.55
    with pytest.raises(ValueError, match="no row"):
        paper.paper_value("direct+p2q", "PSNR")
