"""Every editing method behind one signature, so a benchmark can cross any inversion with any editor.

    inverted = inversion.invert(pipe, picture, source_prompt, method="direct")
    edited = methods.edit_with(pipe, inverted, "masactrl", target_prompt, blended_word="cat dog")
    inversion_name, editor_name = methods.parse_method("direct+masactrl")

An editor is a function ``(pipe, inverted, target_prompts, blended_words, settings) -> [editing.Edited]``
over lists (one picture, target prompt and blended words per edit), which edits them all in one batch
of UNet calls (:func:`editlab.editing.edit_many`) and returns one result per picture (branch 0 the
source branch, branch 1 the edit). It runs its paper's defaults as Direct Inversion's benchmark runs
them; ``settings`` overrides some of them (each editor lists the ones it takes). :func:`edit_with`
edits one picture, :func:`edit_many_with` several.

| editor         | what the target borrows from the source branch              | defaults                      |
| -------------- | ----------------------------------------------------------- | ----------------------------- |
| "p2p"          | cross-attention maps (Refine), self-attention, LocalBlend   | 0.4 / 0.6, blended word x2    |
| "masactrl"     | self-attention keys and values in the decoder               | step 4 of 50, layer 10 of 16  |
| "pnp"          | decoder features and self-attention maps                    | 0.8 / 0.5 of the steps        |
| "pix2pix-zero" | cross-attention maps, by gradient steps on its latent       | direction from sentence sets  |

Methods that need no inversion edit the picture itself and stand alone in a method name ("sdedit"):
:data:`STANDALONE` maps each to ``(pipe, pictures, texts, steps, guidance, settings) -> [Edited]`` and says
which text of a benchmark entry it reads and whether it edits with a model of its own.

| method             | reads                  | what it keeps of the picture              | defaults          |
| ------------------ | ---------------------- | ----------------------------------------- | ----------------- |
| "sdedit"           | the edited caption     | what survives noising it to ``strength``  | strength 0.5      |
| "instruct-pix2pix" | the instruction        | what its model learnt to keep (its input) | s_T 7.5, s_I 1.5  |
| "imagic"           | the edited caption     | what its fitted embedding and UNet keep   | the paper's, η 0.7 |
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from . import editing, imagic, masactrl, p2p, pix2pix_zero, pnp, sdedit
from .inversion import METHODS as INVERSIONS
from .inversion import Inverted
from .models import as_tensor, picture_size

Editor = Callable[[Any, list[Inverted], list[str], list[str], dict], list[editing.Edited]]

# Direct Inversion's result folders name the inversions this way ("directinversion+p2p").
INVERSION_ALIASES = {"directinversion": "direct", "null-text-inversion": "null-text",
                     "negative-prompt-inversion": "negative-prompt"}


def _settings(editor: str, settings: dict | None, known: Iterable[str]) -> dict:
    settings = dict(settings or {})
    unknown = set(settings) - set(known)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for {editor}; it takes {', '.join(sorted(known))}")
    return settings


def p2p_resolution(unet: torch.nn.Module) -> int:
    """The cross-attention grid Prompt-to-Prompt's LocalBlend reads: 16 for SD (64x64 latents), half the
    latent side for smaller UNets (8 for the toy's 16x16)."""
    side = unet.config.sample_size
    return 16 if side >= 64 else side // 2


def _controlled(pipe, inverted: list[Inverted], target_prompts: list[str], guidance: float | None,
                make_controller) -> list[editing.Edited]:
    """The editors that are an attention controller: edit ``j`` runs with ``make_controller(inverted[j],
    target_prompts[j], j)``, all edits in one batch of UNet calls."""
    controllers = [make_controller(inv, target, j) for j, (inv, target) in enumerate(zip(inverted, target_prompts))]
    return editing.edit_many(pipe, inverted, [[t] for t in target_prompts], controllers, guidance=guidance)


def run_p2p(pipe, inverted: list[Inverted], target_prompts: list[str], blended_words: list[str],
            settings: dict | None = None) -> list[editing.Edited]:
    """Prompt-to-Prompt by :func:`editlab.p2p.paper_controller`. Settings: cross_replace, self_replace,
    reweight, blend_threshold, blend_start, resolution, guidance."""
    s = _settings("p2p", settings, ("cross_replace", "self_replace", "reweight", "blend_threshold", "blend_start",
                                    "resolution", "guidance"))
    guidance = s.pop("guidance", None)
    s.setdefault("resolution", p2p_resolution(pipe.unet))
    return _controlled(pipe, inverted, target_prompts, guidance, lambda inv, target, j: p2p.paper_controller(
        pipe.tokenizer, [inv.prompt, target], inv.steps, blended_words[j], **s))


def run_masactrl(pipe, inverted: list[Inverted], target_prompts: list[str], blended_words: list[str],
                 settings: dict | None = None) -> list[editing.Edited]:
    """MasaCtrl by :func:`editlab.masactrl.paper_controller` (start step and layer scaled to the model).
    Settings: start_step, start_layer, guidance. The blended words are not used."""
    s = _settings("masactrl", settings, ("start_step", "start_layer", "guidance"))
    guidance = s.pop("guidance", None)
    return _controlled(pipe, inverted, target_prompts, guidance,
                       lambda inv, target, j: masactrl.paper_controller(pipe.unet, inv.steps, **s))


def run_pnp(pipe, inverted: list[Inverted], target_prompts: list[str], blended_words: list[str],
            settings: dict | None = None) -> list[editing.Edited]:
    """Plug-and-Play by :func:`editlab.pnp.paper_controller`. Settings: feature_fraction,
    attention_fraction, guidance. The blended words are not used."""
    s = _settings("pnp", settings, ("feature_fraction", "attention_fraction", "guidance"))
    guidance = s.pop("guidance", None)
    return _controlled(pipe, inverted, target_prompts, guidance, lambda inv, target, j: pnp.paper_controller(pipe.unet, **s))


# A sentence writer: (phrase, n, generator) -> n sentences containing the phrase, the contexts drawn by the generator
# alike for every phrase (the paper: GPT-3; the world: editlab.world.sentences.template_sentences).
SentenceWriter = Callable[[str, int, torch.Generator], list[str]]
# directions by text encoder (dropped with it), then by (writer, source phrase, target phrase, sentences, seed)
_DIRECTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _check_writer(writer) -> SentenceWriter:
    if not callable(writer):
        raise ValueError("pix2pix-zero's sentence directions need a sentence writer, (phrase, n, generator) -> "
                         "sentences: give writer=editlab.world.sentences.template_sentences (the world's templates) "
                         "or your own, or use direction='prompts'")
    return writer


def phrase_direction(pipe, source_phrase: str, target_phrase: str, writer: SentenceWriter, sentences: int = 100,
                     seed: int = 0) -> torch.Tensor:
    """The pix2pix-zero direction (L, d) from ``source_phrase`` to ``target_phrase`` over ``sentences``
    sentences each from ``writer`` (the same contexts for both, drawn with ``seed``); cached per pipeline."""
    writer = _check_writer(writer)
    cache = _DIRECTIONS.setdefault(pipe.text_encoder, {})
    key = (writer, source_phrase, target_phrase, sentences, seed)
    if key not in cache:
        sources = writer(source_phrase, sentences, torch.Generator().manual_seed(seed))
        targets = writer(target_phrase, sentences, torch.Generator().manual_seed(seed))
        cache[key] = pix2pix_zero.edit_direction(pipe, sources, targets)
    return cache[key]


def prompt_direction(pipe, source_prompt: str, target_prompt: str, writer: SentenceWriter, sentences: int = 100,
                     seed: int = 0) -> torch.Tensor:
    """The sum of the :func:`phrase_direction` of every phrase pair where the prompts differ
    (:func:`editlab.pix2pix_zero.changed_phrases`)."""
    pairs = pix2pix_zero.changed_phrases(source_prompt, target_prompt)
    if not pairs:
        raise ValueError(f"the prompts {source_prompt!r} and {target_prompt!r} do not differ in any word: pix2pix-zero "
                         f"needs a target prompt that names the edit")
    return sum(phrase_direction(pipe, s, t, writer, sentences, seed) for s, t in pairs)


def run_pix2pix_zero(pipe, inverted: list[Inverted], target_prompts: list[str], blended_words: list[str],
                     settings: dict | None = None) -> list[editing.Edited]:
    """pix2pix-zero by :func:`editlab.pix2pix_zero.edit_many`. The direction comes from the words in which
    the source and target prompts differ, through sentence sets from ``writer`` (``direction="templates"``, the
    paper's recipe; ``writer`` is a :data:`SentenceWriter`, for the world
    :func:`editlab.world.sentences.template_sentences`), or, as Direct Inversion's benchmark does, from the two
    prompts alone (``direction="prompts"``: E(target prompt) - E(source prompt)).

    The blended words are not used: for attribute edits PIE-Bench names the object twice ("cat cat"),
    which would give a zero direction; the word difference ("blue" -> "pink") names the edit.
    Settings: xa_guidance, official_offsets, direction, writer, sentences, seed, guidance.
    """
    s = _settings("pix2pix-zero", settings, ("xa_guidance", "official_offsets", "direction", "writer", "sentences",
                                             "seed", "guidance"))
    how, sentences, seed = s.pop("direction", "templates"), s.pop("sentences", 100), s.pop("seed", 0)
    writer = s.pop("writer", None)
    if how not in ("templates", "prompts"):
        raise ValueError(f"direction is 'templates' (sentence sets from the changed words) or 'prompts' (the two "
                         f"prompts themselves), got {how!r}")
    if how == "templates":
        directions = [prompt_direction(pipe, inv.prompt, target, writer, sentences, seed)
                      for inv, target in zip(inverted, target_prompts)]
    else:
        directions = [pix2pix_zero.edit_direction(pipe, [inv.prompt], [target])
                      for inv, target in zip(inverted, target_prompts)]
    return pix2pix_zero.edit_many(pipe, inverted, directions, labels=target_prompts, **s)


EDITORS: dict[str, Editor] = {
    "p2p": run_p2p,
    "masactrl": run_masactrl,
    "pnp": run_pnp,
    "pix2pix-zero": run_pix2pix_zero,
}


def run_sdedit(pipe, pictures: list, target_prompts: list[str], steps: int, guidance: float,
               settings: dict | None = None) -> list[editing.Edited]:
    """SDEdit by :func:`editlab.sdedit.edit_many`. Settings: strength, seed."""
    s = _settings("sdedit", settings, ("strength", "seed"))
    return sdedit.edit_many(pipe, pictures, target_prompts, steps=steps, guidance=guidance, **s)


def run_instruct_pix2pix(pipe, pictures: list, instructions: list[str], steps: int, guidance: float,
                         settings: dict | None = None) -> list[editing.Edited]:
    """InstructPix2Pix by :func:`editlab.ip2p.guidance.edit_many`: ``pipe`` is an InstructPix2Pix pipeline, the
    texts are instructions, ``guidance`` is the text scale s_T. Settings: image_scale (s_I, 1.5), seed."""
    from .ip2p import guidance as instruct

    s = _settings("instruct-pix2pix", settings, ("image_scale", "seed"))
    return instruct.edit_many(pipe, pictures, instructions, text_scale=guidance, steps=steps, **s)


IMAGIC_SETTINGS = ("embedding_steps", "embedding_lr", "unet_steps", "unet_lr", "eta", "seed")


def run_imagic(pipe, pictures: list, target_prompts: list[str], steps: int, guidance: float,
               settings: dict | None = None) -> list[editing.Edited]:
    """Imagic by :func:`editlab.imagic.fit` and :func:`editlab.imagic.generate`, one picture at a time (each fits
    its own embedding and UNet). Settings: embedding_steps, embedding_lr, unet_steps, unet_lr (default: the
    paper's, :data:`editlab.imagic.PAPER`), eta (0.7: the paper picks η in 0.6-0.8 per picture; a benchmark
    needs one), seed."""
    s = _settings("imagic", settings, IMAGIC_SETTINGS)
    eta, seed = s.pop("eta", 0.7), s.pop("seed", 0)
    optimisation = imagic.FitSettings(**{**asdict(imagic.PAPER), **s})
    results = []
    for picture, target in zip(pictures, target_prompts):
        start = time.perf_counter()
        fitted = imagic.fit(pipe, picture, target, optimisation, torch.Generator().manual_seed(seed))
        edited = imagic.generate(pipe, fitted, [eta], torch.Generator().manual_seed(seed + 1), steps, guidance)
        source = as_tensor(picture, picture_size(pipe)).float().cpu()
        calls = optimisation.embedding_steps + optimisation.unet_steps + steps
        results.append(editing.Edited(["(the picture itself)", target], torch.cat([source, edited.float().cpu()]), [],
                                      time.perf_counter() - start, calls))
    return results


@dataclass(frozen=True)
class Standalone:
    """A method that edits the picture itself, without inversion."""

    run: Callable[[Any, list, list[str], int, float, dict], list[editing.Edited]]
    reads: str  # the benchmark entry's text it is given: "editing_prompt" or "editing_instruction"
    settings: tuple[str, ...] = ()  # the settings it takes
    own_model: bool = False  # True: it edits with its own model (InstructPix2Pix's), not the text-to-image one

    def check(self, name: str, settings: dict) -> dict:
        """``settings``, or ValueError naming the ones ``name`` does not take."""
        return _settings(name, settings, self.settings)


STANDALONE: dict[str, Standalone] = {
    "sdedit": Standalone(run_sdedit, "editing_prompt", ("strength", "seed")),
    "instruct-pix2pix": Standalone(run_instruct_pix2pix, "editing_instruction", ("image_scale", "seed"), own_model=True),
    "imagic": Standalone(run_imagic, "editing_prompt", IMAGIC_SETTINGS),
}
# The InstructPix2Pix model that goes with a text-to-image model (any other: --instruct-model).
INSTRUCT_MODELS = {"toy": "toy-instruct-pix2pix"}
PAPER_INSTRUCT_MODEL = "timbrooks/instruct-pix2pix"


def instruct_model_for(model: str) -> str:
    """The InstructPix2Pix editor a benchmark run of ``model`` uses: ours for the toy, the paper's otherwise."""
    return INSTRUCT_MODELS.get(str(model), PAPER_INSTRUCT_MODEL)


def parse_method(name: str) -> tuple[str | None, str]:
    """"direct+p2p" -> ("direct", "p2p"): an inversion of :data:`editlab.inversion.METHODS` and an editor
    of :data:`EDITORS`. Direct Inversion's folder names ("directinversion+pnp") are understood too.
    A method of :data:`STANDALONE` needs no inversion: "sdedit" -> (None, "sdedit")."""
    if isinstance(name, str) and name.strip().lower() in STANDALONE:
        return None, name.strip().lower()
    if not isinstance(name, str) or name.count("+") != 1:
        raise ValueError(f"a method is '<inversion>+<editor>', e.g. 'direct+p2p', or one that needs no inversion "
                         f"({', '.join(STANDALONE)}); got {name!r}. Inversions: {', '.join(INVERSIONS)}; editors: "
                         f"{', '.join(EDITORS)}")
    inversion_name, editor_name = (part.strip().lower() for part in name.split("+"))
    inversion_name = INVERSION_ALIASES.get(inversion_name, inversion_name)
    if inversion_name not in INVERSIONS:
        raise ValueError(f"unknown inversion {inversion_name!r} in {name!r}; choose one of {', '.join(INVERSIONS)}")
    if editor_name not in EDITORS:
        raise ValueError(f"unknown editor {editor_name!r} in {name!r}; choose one of {', '.join(EDITORS)}")
    return inversion_name, editor_name


def edit_with(pipe, inverted: Inverted, method: str, target_prompt: str, blended_word: str = "",
              settings: dict | None = None) -> editing.Edited:
    """Edit ``inverted`` towards ``target_prompt`` with the editor ``method`` ("p2p", ...), or with
    "<inversion>+<editor>", whose inversion must be the one ``inverted`` was made with."""
    return edit_many_with(pipe, [inverted], method, [target_prompt], [blended_word], settings)[0]


def edit_many_with(pipe, inverted: list[Inverted], method: str, target_prompts: list[str],
                   blended_words: list[str] | None = None, settings: dict | None = None) -> list[editing.Edited]:
    """:func:`edit_with` for several pictures, edited together in one batch of UNet calls; each result is
    the one :func:`edit_with` gives alone (up to float rounding). The pictures must share their steps
    and guidance scale."""
    inverted, target_prompts = list(inverted), list(target_prompts)
    blended_words = [""] * len(inverted) if blended_words is None else list(blended_words)
    if not inverted or not len(inverted) == len(target_prompts) == len(blended_words):
        raise ValueError(f"give one target prompt and one blended word entry per picture: {len(inverted)} pictures, "
                         f"{len(target_prompts)} target prompts, {len(blended_words)} blended words")
    editor_name = method
    if isinstance(method, str) and "+" in method:
        inversion_name, editor_name = parse_method(method)
        wrong = sorted({inv.method for inv in inverted if inv.method != inversion_name})
        if wrong:
            raise ValueError(f"{method!r} asks for {inversion_name} inversion, but the picture was inverted with "
                             f"{', '.join(map(repr, wrong))}: invert it with method={inversion_name!r}, or name the "
                             f"editor alone")
    if editor_name not in EDITORS:
        raise ValueError(f"unknown editing method {method!r}; choose one of {', '.join(EDITORS)} "
                         f"(or '<inversion>+<editor>', e.g. 'direct+p2p')")
    for target in target_prompts:
        if not isinstance(target, str) or not target.strip():
            raise ValueError("the target prompt must be a non-empty string describing the edited picture")
    return EDITORS[editor_name](pipe, inverted, target_prompts, blended_words, dict(settings or {}))
