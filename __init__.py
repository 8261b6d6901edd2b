"""ComfyUI entry point of the FacEDiT node pack.

ComfyUI imports this file as a package named after the pack's folder. Our node package is imported
relatively because ComfyUI owns a top-level module called ``nodes``.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
