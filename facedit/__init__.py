"""FacEDiT: speech-conditional facial motion infilling for talking-face editing and generation.

A plain library: it never imports ComfyUI. Modules inside the package import each other relatively so
that the package works both as top-level ``facedit`` and as a subpackage of the ComfyUI pack.
"""

__version__ = "0.1.0"
