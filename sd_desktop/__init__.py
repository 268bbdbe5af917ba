"""sd-desktop: Stable Diffusion as a native desktop application."""

__version__ = "0.1.0"
