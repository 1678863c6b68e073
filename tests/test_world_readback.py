"""Reading the world back from a prompt and from a picture (editlab.world.readback)."""

import numpy as np
import pytest
from editlab.world import render, sample_scene
from editlab.world.captions import caption
from editlab.world.readback import mask_iou, object_mask, prompt_words


def test_the_words_of_a_caption_are_the_scenes_own():
    for seed in range(40):
        scene = sample_scene(seed, n_objects=1)
        words, thing = prompt_words(caption(scene)), scene.things[0]
        assert (words["style"], words["background"], words["kind"]) == (scene.style, scene.background, thing.kind)
        assert words["colour"] == thing.colour and words["pose"] == thing.pose


def test_the_object_mask_of_a_render_is_the_objects_silhouette():
    ious = []
    for seed in range(20):
        scene = sample_scene(seed, n_objects=1)
        rendering = render(scene, 128)
        ious.append(mask_iou(object_mask(rendering.image, caption(scene)), rendering.coverage[0] > 0.5))
    # a rough footprint (median 0.75 on these renders; white on snow and thin shapes are missed), far from chance
    assert np.median(ious) > 0.65 and sum(iou > 0.4 for iou in ious) >= 15, ious


def test_a_prompt_outside_the_world_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="names no background"):
        object_mask(np.zeros((64, 64, 3), np.uint8), "a red car")


def test_iou():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[:2], b[1:3] = True, True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 0.0
