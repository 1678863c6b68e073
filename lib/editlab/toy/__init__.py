"""The tiny Stable Diffusion trained on the world: components, training stages and evaluation."""
