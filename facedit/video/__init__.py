"""Writing edited video files: smart render, output formats, audio mux and safe writes."""

from .plan_file import plan_path, read_plan_file, video_fingerprint, write_plan_file
from .render import OUTPUT_KINDS, OutputFormat, WriteReport, check_plan_source, write_edited_video
from .safe_write import atomic_output, check_output_path

__all__ = [
    "OUTPUT_KINDS",
    "OutputFormat",
    "WriteReport",
    "atomic_output",
    "check_output_path",
    "check_plan_source",
    "plan_path",
    "read_plan_file",
    "video_fingerprint",
    "write_edited_video",
    "write_plan_file",
]
