"""editlab: the helper library of the text-guided diffusion editing notebooks."""

__version__ = "0.1.0"
