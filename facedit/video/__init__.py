"""Writing edited video files: smart render, output formats, audio mux and safe writes."""

from .render import OUTPUT_KINDS, OutputFormat, WriteReport, check_plan_source, write_edited_video
from .safe_write import atomic_output, check_output_path

__all__ = [
    "OUTPUT_KINDS",
    "OutputFormat",
    "WriteReport",
    "atomic_output",
    "check_output_path",
    "check_plan_source",
    "write_edited_video",
]
