"""editlab: the helper library of the text-guided diffusion editing notebooks."""

__version__ = "0.1.0"

# ``editlab.load_pipeline`` and ``editlab.prepare_picture`` without importing torch for those who only use the world
_FROM_MODELS = ("load_pipeline", "prepare_picture")


def __getattr__(name: str):
    if name in _FROM_MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'editlab' has no attribute {name!r}")
