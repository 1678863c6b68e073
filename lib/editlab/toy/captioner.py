"""A captioner for pictures of our world: retrieval over the world's caption grammar with the tiny model's CLIP.

pix2pix-zero captions its input picture with BLIP (Parmar et al., Sec. 3.1), so that an edit needs the picture and
the edit direction only, not a caption written by hand. BLIP knows photographs, not our world; its stand-in here
searches the captions that the world's grammar writes for a one-object scene (style, background, kind, colour,
material, pose, extra: tens of thousands) for the one that the tiny model's CLIP scores highest against the
picture. The search: every combination of style, background, kind and colour (material, pose and extra at their
defaults) scored at once; the best few kept (a beam); in each, the other attributes chosen in turn with the rest
held, for a few rounds; the best of the beam wins. Text features are cached (the first stage's 4,000 captions are
the same for every picture), so a picture costs one image feature and about a hundred new captions.

    captioner = WorldCaptioner.load()                # the shipped tiny model's CLIP
    captioner(pictures)                             # pictures (n, 3, H, W) in [-1, 1] -> n captions
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models import TOY_WEIGHTS
from ..world.captions import caption
from ..world.scene import Scene, Thing
from ..world.vocab import BACKGROUNDS, KINDS, STYLES
from .clip import image_features, load_clip, text_features, tokenize
from .tokenizer import world_tokenizer

ATTRIBUTES = ("colour", "material", "pose", "extra")


def default_thing(kind: str) -> Thing:
    """A ``kind`` with the first value of each attribute it has (plain, no extra), ``None`` for those it lacks."""
    k = KINDS[kind]
    return Thing(kind, colour=k.colours[0] if k.colours else None, material="plain" if k.materials else None,
                 pose=k.poses[0] if k.poses else None, extra="none" if k.extras else None)


def _choices(thing: Thing, attribute: str) -> tuple:
    allowed = {"colour": KINDS[thing.kind].colours, "material": KINDS[thing.kind].materials,
               "pose": KINDS[thing.kind].poses, "extra": KINDS[thing.kind].extras}[attribute]
    return allowed or (None,)


class WorldCaptioner:
    """Captions pictures of our world with the world's canonical wording (see the module's docstring)."""

    def __init__(self, clip, tokenizer, beam: int = 8, rounds: int = 2, batch: int = 256, tokens: int = 40):
        self.clip, self.tokenizer, self.beam, self.rounds, self.batch = clip.eval(), tokenizer, beam, rounds, batch
        self.tokens = tokens  # token ids per caption: a one-object caption of the world takes fewer
        self._text: dict[str, torch.Tensor] = {}
        self._first: tuple[list[Scene], torch.Tensor] | None = None  # the first stage's scenes and their features

    @classmethod
    def load(cls, weights: Path = TOY_WEIGHTS, **kwargs) -> WorldCaptioner:
        """The captioner with the CLIP shipped in ``weights`` (the tiny model's folder, or a retrained one)."""
        return cls(load_clip(weights), world_tokenizer(), **kwargs)

    @torch.no_grad()
    def texts(self, captions: list[str]) -> torch.Tensor:
        """Unit text features (n, d), computed once per caption."""
        new = [c for c in dict.fromkeys(captions) if c not in self._text]
        for i in range(0, len(new), self.batch):
            chunk = new[i:i + self.batch]
            ids = tokenize(self.tokenizer, chunk, length=self.tokens)  # causal: the pooled end token ignores what follows
            features = F.normalize(text_features(self.clip, ids).float(), dim=-1)
            self._text.update(zip(chunk, features))
        return torch.stack([self._text[c] for c in captions])

    @torch.no_grad()
    def images(self, pictures: torch.Tensor) -> torch.Tensor:
        """Unit image features (n, d) of pictures (n, 3, H, W) in [-1, 1], resized to the CLIP's side."""
        side = self.clip.config.vision_config.image_size
        x = pictures.float()
        if x.shape[-1] != side or x.shape[-2] != side:
            x = F.interpolate(x, size=(side, side), mode="area")
        return F.normalize(image_features(self.clip, x).float(), dim=-1)

    def _scores(self, image: torch.Tensor, scenes: list[Scene]) -> torch.Tensor:
        return self.texts([caption(s) for s in scenes]) @ image

    def scene(self, picture: torch.Tensor) -> Scene:
        """The one-object scene whose caption the CLIP scores highest against ``picture`` (3, H, W) in [-1, 1]."""
        image = self.images(picture[None])[0]
        if self._first is None:  # the same captions for every picture: built and encoded once
            scenes = [Scene(b, s, (_replace(default_thing(k), "colour", c),)) for s, b, k in
                      itertools.product(STYLES, BACKGROUNDS, KINDS) for c in _choices(default_thing(k), "colour")]
            self._first = scenes, self.texts([caption(x) for x in scenes])
        scenes, features = self._first
        beam = [scenes[i] for i in (features @ image).topk(self.beam).indices]
        refined = []
        for best in beam:
            for _ in range(self.rounds):
                for attribute in ATTRIBUTES:
                    thing = best.things[0]
                    options = [Scene(best.background, best.style, (_replace(thing, attribute, v),))
                               for v in _choices(thing, attribute)]
                    best = options[int(self._scores(image, options).argmax())]
            refined.append(best)
        return refined[int(self._scores(image, refined).argmax())]

    def __call__(self, pictures: torch.Tensor) -> list[str]:
        """The canonical caption of the best scene for each picture (n, 3, H, W) in [-1, 1]."""
        return [caption(self.scene(p)) for p in pictures]


def _replace(thing: Thing, attribute: str, value) -> Thing:
    return Thing(**{**{a: getattr(thing, a) for a in ("kind", *ATTRIBUTES)}, attribute: value})
