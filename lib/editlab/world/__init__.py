"""A procedural picture world with exact ground truth: scenes, captions, rendering and edits.

>>> from editlab.world import sample_scene, render
>>> scene = sample_scene(7)
>>> picture = render(scene, 128).image   # uint8 (128, 128, 3)
"""

from .render import Rendering, render
from .scene import Scene, Thing, sample_scene
from .vocab import BACKGROUNDS, CATEGORIES, COLOURS, KINDS, MATERIALS, STYLES

__all__ = ["BACKGROUNDS", "CATEGORIES", "COLOURS", "KINDS", "MATERIALS", "STYLES",
           "Rendering", "Scene", "Thing", "render", "sample_scene"]
