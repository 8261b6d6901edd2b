"""ComfyUI adapters for the facedit library, one module per node family."""

from . import faces, loaders, motion, plan, render, speech, transcribe, tts, video
from ._comfy import register_model_folders

register_model_folders()

NODE_CLASSES = [
    *loaders.NODES,
    *faces.NODES,
    *speech.NODES,
    *transcribe.NODES,
    *plan.NODES,
    *motion.NODES,
    *render.NODES,
    *tts.NODES,
    *video.NODES,
]
NODE_CLASS_MAPPINGS: dict[str, type] = {cls.define_schema().node_id: cls for cls in NODE_CLASSES}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {
    node_id: cls.define_schema().display_name for node_id, cls in NODE_CLASS_MAPPINGS.items()
}
