"""editlab: the helper library of the text-guided diffusion editing notebooks."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``editlab.load_pipeline`` without importing torch for those who only use the world
    if name == "load_pipeline":
        from .models import load_pipeline

        return load_pipeline
    raise AttributeError(f"module 'editlab' has no attribute {name!r}")
