"""Several edits in one UNet batch give what each gives alone.

``Stacked`` hands each edit's controller only its own rows; ``edit_many`` gives each edit its own
unconditional embeddings (Null-text's differ per picture) and its own pivot path (Direct Inversion);
pix2pix-zero's guidance step takes each edit's gradient of its own loss. Checked on a randomly
initialised model of the toy's shape, three different pictures and prompts per batch, so a mix-up
between edits would show.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch
from editlab import editing, inversion, methods
from editlab.attention import AttentionController, AttentionStore, Stacked
from editlab.world.sentences import template_sentences

torch.set_num_threads(1)
STEPS = 5
SOURCE = "a photo of a blue cat sitting on the grass"
TARGETS = ["a photo of a pink dog sitting on the grass", "a photo of a blue dog sitting on the grass",
           "a photo of a pink cat sitting on the grass"]
BLENDED = ["cat dog", "cat dog", "cat cat"]
# Batches of another size round differently (other matrix-multiply blockings); guidance 7.5 amplifies it. Measured
# up to 1.5e-4 with PyTorch's AVX2 kernels (ATEN_CPU_CAPABILITY=avx2), so 1e-3: still ten times below the 1e-2 by
# which the three different edits differ (asserted below), so a mix-up of rows cannot pass.
ROUNDING = dict(rtol=1e-3, atol=1e-3)
FEW = {"sentences": 8, "writer": template_sentences}


@pytest.fixture(scope="module")
def pipe(random_pipe):
    return random_pipe


@pytest.fixture(scope="module")
def inverted(pipe):
    pictures = [np.random.default_rng(seed).integers(0, 256, (128, 128, 3), dtype=np.uint8) for seed in range(3)]
    out = {m: inversion.invert_many(pipe, pictures, [SOURCE] * 3, m, steps=STEPS) for m in ("ddim", "null-text")}
    out["direct"] = [inversion.invert(pipe, p, SOURCE, "direct", steps=STEPS) for p in pictures]
    return out


@pytest.mark.parametrize("editor", list(methods.EDITORS))
@pytest.mark.parametrize("method", ["ddim", "direct", "null-text"])
def test_edits_together_equal_edits_alone(pipe, inverted, editor, method):
    settings = FEW if editor == "pix2pix-zero" else {}
    together = methods.edit_many_with(pipe, inverted[method], editor, TARGETS, BLENDED, settings)
    alone = [methods.edit_with(pipe, inv, editor, t, b, settings) for inv, t, b in zip(inverted[method], TARGETS, BLENDED)]
    for a, b in zip(together, alone):
        assert a.prompts == b.prompts and a.unet_calls == b.unet_calls
        torch.testing.assert_close(a.latents[-1], b.latents[-1], **ROUNDING)
        torch.testing.assert_close(a.pictures, b.pictures, **ROUNDING)
    finals = [a.latents[-1][1] for a in together]  # the three edits differ: a mix-up would not go unseen
    assert min((finals[i] - finals[j]).abs().max() for i in range(3) for j in range(i)) > 1e-2
    if method == "direct":
        for a, inv in zip(together, inverted[method]):
            assert editing.drift(inv, a) == [0.0] * (STEPS + 1)  # each source is on its own pivot path


def test_null_text_edits_use_each_pictures_own_embeddings(pipe, inverted):
    """Give the batch the wrong embeddings and it differs: the per-picture unconditional rows matter."""
    invs = inverted["null-text"]
    swapped = [invs[0], replace(invs[1], null_embeddings=invs[0].null_embeddings)]
    right = editing.edit_many(pipe, invs[:2], [[TARGETS[0]]] * 2, [None, None], decode=False)
    wrong = editing.edit_many(pipe, swapped, [[TARGETS[0]]] * 2, [None, None], decode=False)
    torch.testing.assert_close(right[0].latents[-1], wrong[0].latents[-1])
    assert (right[1].latents[-1] - wrong[1].latents[-1]).abs().max() > 1e-3


def test_stacked_hands_each_controller_its_own_rows_laid_out_as_alone():
    class Rows(AttentionController):
        def wants_probs(self, layer, resolution):
            return True

        def edit_probs(self, probs, layer, resolution):
            self.seen = probs[:, 0, 0, 0].tolist()
            return probs * 0 + self.mark

    a, b = Rows(), Rows()
    a.mark, b.mark = 10.0, 20.0
    stacked = Stacked([a, b], [2, 3])
    stacked.begin(4, 5, guided=True)
    probs = torch.arange(10.0).view(10, 1, 1, 1).expand(10, 2, 3, 3)  # [uncond x 5, cond x 5]
    out = stacked.edit_probs(probs, None, 3)
    assert a.seen == [0, 1, 5, 6] and b.seen == [2, 3, 4, 7, 8, 9]
    assert out[:, 0, 0, 0].tolist() == [10, 10, 20, 20, 20, 10, 10, 20, 20, 20]
    latents = torch.arange(5.0).view(5, 1, 1, 1)
    assert stacked.step_end(0, latents).flatten().tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"edits of \[2, 3\] branches \(5 in all\), the loop runs 4"):
        stacked.begin(4, 4, guided=True)
    with pytest.raises(ValueError, match="one controller"):
        Stacked([a], [2, 3])


def test_stacked_stores_record_what_each_edit_records_alone(pipe, inverted):
    invs = inverted["ddim"][:2]
    stores = [AttentionStore(), AttentionStore()]
    editing.edit_many(pipe, invs, [[TARGETS[0]], [TARGETS[1]]], stores, decode=False)
    for inv, target, store in zip(invs, TARGETS, stores):
        alone = AttentionStore()
        editing.edit(pipe, inv, [target], alone, decode=False)
        torch.testing.assert_close(store.average(resolution=8), alone.average(resolution=8), **ROUNDING)


def test_edits_that_cannot_share_a_batch_are_refused(pipe, inverted):
    ddim = inverted["ddim"]
    with pytest.raises(ValueError, match="share their steps and guidance"):
        editing.edit_many(pipe, [ddim[0], replace(ddim[1], guidance=1.0)], [[TARGETS[0]]] * 2, [None, None])
    with pytest.raises(ValueError, match="one target prompt list and one controller"):
        editing.edit_many(pipe, ddim[:2], [[TARGETS[0]]], [None, None])
    with pytest.raises(ValueError, match="asks for direct inversion"):
        methods.edit_many_with(pipe, ddim[:2], "direct+p2p", TARGETS[:2])
    with pytest.raises(ValueError, match="one target prompt and one blended word entry per picture"):
        methods.edit_many_with(pipe, ddim[:2], "p2p", TARGETS[:1])
