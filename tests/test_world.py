"""The picture world: determinism, serialisation, drawing every object, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from editlab.world import KINDS, Scene, Thing, backgrounds, render, sample_scene, styles
from editlab.world.captions import Wording, caption, paraphrases
from scipy.ndimage import binary_opening


def every_object():
    """(kind, pose, extra) for every pose and extra of every kind."""
    for k in KINDS.values():
        for pose in k.poses or (None,):
            for extra in k.extras or (None,):
                yield k.name, pose, extra


def lone(kind, pose, extra, style="photo", size=0.45, **kw):
    k = KINDS[kind]
    t = Thing(kind, colour=k.colours[0] if k.colours else None, material="plain" if k.materials else None,
              pose=pose, extra=extra, x=0.5, y=0.45 if pose == "flying" else 0.9, size=size, **kw)
    return Scene("grass", style, (t,)).validate()


def test_same_seed_same_scene_and_pixels():
    a, b = sample_scene(123), sample_scene(123)
    assert a == b
    first = render(a, 128).image
    backgrounds._background.cache_clear()  # nothing cached may change a picture
    styles.background_ink.cache_clear()
    assert np.array_equal(first, render(b, 128).image)


def test_different_seeds_give_different_scenes():
    scenes = {sample_scene(s).to_json() for s in range(200)}
    assert len(scenes) == 200


def test_scene_json_round_trip():
    for seed in range(300):
        scene = sample_scene(seed)
        assert Scene.from_json(scene.to_json()) == scene
        json.loads(scene.to_json())  # plain JSON


def test_sampled_scenes_cover_the_world():
    things = [t for s in range(600) for t in sample_scene(s).things]
    scenes = [sample_scene(s) for s in range(600)]
    assert {t.kind for t in things} == set(KINDS)
    assert {s.background for s in scenes} == set(backgrounds.BACKGROUNDS)
    assert {s.style for s in scenes} == set(styles.STYLES)
    assert {len(s.things) for s in scenes} == {1, 2, 3}


@pytest.mark.parametrize("kind,pose,extra", list(every_object()))
def test_every_object_draws_inside_its_extent_and_without_hairlines(kind, pose, extra):
    r = render(lone(kind, pose, extra, size=0.45), 128)
    mask = r.masks[0]
    assert mask.sum() > 150, "the object is (almost) invisible"
    # No part thinner than 2 px: opening with a 2x2 square removes hairlines and little else.
    lost = mask & ~binary_opening(mask, np.ones((2, 2), bool))
    assert lost.sum() <= 0.03 * mask.sum(), f"{lost.sum()} px of {kind} are in strokes under 2 px wide"


@pytest.mark.parametrize("kind,pose,extra", list(every_object()))
def test_nothing_is_clipped_by_the_extent_box(kind, pose, extra):
    from editlab.world import objects
    from editlab.world.shapes import Canvas

    u0, u1, v0, v1 = objects.EXTENT[kind]
    n = 200
    border_u = np.concatenate([np.linspace(u0, u1, n), np.linspace(u0, u1, n), np.full(n, u0), np.full(n, u1)])
    border_v = np.concatenate([np.full(n, v0), np.full(n, v1), np.linspace(v0, v1, n), np.linspace(v0, v1, n)])
    parts = objects.draw(kind, pose, extra, Canvas(border_u[None], border_v[None]))
    assert min(p.sdf.min() for p in parts) > 0, f"{kind} ({pose}, {extra}) reaches the edge of its EXTENT box"


@pytest.mark.parametrize("style", styles.STYLES)
def test_objects_survive_8x_downsampling_in_every_style(style):
    """What an 8x-downsampling autoencoder keeps: the object must still stand out at 16x16."""
    scene = lone("cat", "standing", "none", style=style)
    empty = render(scene, 128)
    without = np.asarray(backgrounds.background("grass", 128))
    pooled = lambda img: img.reshape(16, 8, 16, 8, 3).mean(axis=(1, 3))  # noqa: E731
    cells = empty.masks[0].reshape(16, 8, 16, 8).mean(axis=(1, 3)) > 0.9
    diff = np.abs(pooled(empty.image / 255.0) - pooled(without))[cells].mean()
    assert diff > 0.1


def test_every_size_that_is_a_multiple_of_8():
    scene = sample_scene(5)
    for size in (64, 72, 256, 512):
        r = render(scene, size)
        assert r.image.shape == (size, size, 3) and r.image.dtype == np.uint8
        assert r.coverage.shape == (len(scene.things), size, size)


@pytest.mark.parametrize("size", [100, 60, 520, 0, 128.0])
def test_bad_sizes_are_refused(size):
    with pytest.raises(ValueError, match="multiple of 8"):
        render(sample_scene(1), size)


def test_bad_scenes_are_refused():
    with pytest.raises(ValueError, match="unknown object kind"):
        Thing("unicorn").validate()
    with pytest.raises(ValueError, match="not possible for a cat"):
        Scene("grass", "photo", (Thing("cat", colour="red", material="plain", pose="flying", extra="none"),)).validate()
    with pytest.raises(ValueError, match="has no colour"):
        Scene("grass", "photo", (Thing("zebra", colour="red", pose="standing", extra="none"),)).validate()
    with pytest.raises(ValueError, match="unknown background"):
        Scene("moon", "photo", sample_scene(1).things).validate()
    with pytest.raises(ValueError, match="1 to 3 objects"):
        Scene("grass", "photo", ()).validate()
    with pytest.raises(ValueError, match="not a scene"):
        Scene.from_dict({"style": "photo"})


def test_captions():
    t = Thing("cat", colour="red", material="striped", pose="sitting", extra="none")
    assert caption(Scene("grass", "photo", (t,))) == "a photo of a red striped cat sitting on the grass"
    p = Thing("person", colour="orange", material="plain", pose="jumping", extra="hat")
    assert caption(Scene("living_room", "pencil", (p,))) == \
        "a pencil sketch of a person in an orange shirt jumping wearing a hat in a living room"
    d = Thing("dog", colour="blue", material="plain", pose="standing", extra="glasses", x=0.7)
    both = Scene("street", "oil", (d, Thing("cup", colour="white", material="metal", x=0.2)))
    assert caption(both) == "an oil painting of a white metal cup and a blue dog standing wearing glasses on a city street"
    assert caption(both, Wording(style=1, background=2, reverse=True)) == \
        "a painting in oils of a blue dog standing wearing glasses and a white metal cup on the street"


def test_paraphrases_are_seeded_and_distinct():
    scene = sample_scene(9)
    a, b = paraphrases(scene, seed=1), paraphrases(scene, seed=1)
    assert a == b and len(set(a)) == len(a) == 4
    assert caption(scene) not in a


def test_benchmark_command_prints_its_rate_last():
    out = subprocess.run([sys.executable, "-m", "editlab.world", "benchmark", "--scenes", "40"],
                         capture_output=True, text=True, check=True).stdout
    last = out.strip().splitlines()[-1]
    assert last.endswith(" scenes/s") and float(last.split()[0]) > 0
