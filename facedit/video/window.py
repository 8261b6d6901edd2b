"""The source frames of one edit window: read from the clip once, in order, and spilled to a temporary file.

An edit goes over its window's source frames more than once (face detection, the face crops, the frames that are
written). A video reader only goes forward cheaply (a step back decodes the file again from its start), and
holding the window costs 100 MB per 4K frame in float32. So every frame is read once from the reader and written
to an unnamed temporary file (in ``$TMPDIR``; it is gone when the window is closed, or the process ends): as
uint8 when the reader decodes to uint8 (``VideoFrames.uint8``: 25 MB a 4K frame), in float32 otherwise. Later
reads come back from that file, through the OS's page cache rather than this process's memory. An array needs
none of this: it is indexed directly.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import torch

from ..video_io import uint8_to_float


class WindowFrames:
    """Frames ``[start, stop)`` of ``frames`` (an array, or a sequence with ``len`` and indexing) as float32
    (H, W, 3), indexed from 0; the reader is asked for each frame once, in increasing order."""

    def __init__(self, frames: Any, start: int, stop: int, name: str = "frames"):
        if not 0 <= start < stop <= len(frames):
            raise ValueError(f"{name}: window [{start}, {stop}) is outside its {len(frames)} frames")
        self.frames, self.start, self.name = frames, int(start), name
        self._count = int(stop) - int(start)
        self._direct = isinstance(frames, np.ndarray | torch.Tensor)
        self._uint8 = not self._direct and callable(getattr(frames, "uint8", None))
        self._file: Any = None
        self._shape: tuple[int, ...] | None = None
        self._dtype = np.dtype(np.uint8 if self._uint8 else np.float32)
        self._spilled = 0  # frames [0, _spilled) are in the file

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if not 0 <= index < self._count:
            raise IndexError(f"frame {index} is outside this window's {self._count} frames")
        if self._direct:
            return np.asarray(self.frames[self.start + index], dtype=np.float32)
        frame = None
        while self._spilled <= index:
            frame = self._spill(self._spilled)
        if frame is None:
            frame = self._load(index)
        return uint8_to_float(frame) if self._uint8 else frame

    def _spill(self, index: int) -> np.ndarray:
        source = self.start + index
        if self._uint8:
            frame = np.ascontiguousarray(self.frames.uint8(source))
        else:
            frame = np.ascontiguousarray(np.asarray(self.frames[source], dtype=np.float32))
        if self._shape is None:
            self._shape = frame.shape
            self._file = tempfile.TemporaryFile(prefix="facedit-window-", buffering=0)  # unnamed: gone when closed
        elif frame.shape != self._shape:
            raise ValueError(f"{self.name}: frame {source} is {frame.shape}, frame {self.start} is {self._shape}: "
                             "every frame needs one size")  # fmt: skip
        data = memoryview(frame).cast("B")
        try:
            self._file.seek(index * data.nbytes)
            written = 0
            while written < data.nbytes:
                written += self._file.write(data[written:])
        except OSError as err:
            raise OSError(f"{self.name}: cannot keep frame {source} in a temporary file in {tempfile.gettempdir()} "
                          f"({err}); an edit window needs {data.nbytes / 2**20:.0f} MB there per frame: point TMPDIR "
                          "at a folder with room") from err  # fmt: skip
        self._spilled += 1
        return frame

    def _load(self, index: int) -> np.ndarray:
        frame = np.empty(self._shape, self._dtype)
        data = memoryview(frame).cast("B")
        self._file.seek(index * data.nbytes)
        done = 0
        while done < data.nbytes:
            got = self._file.readinto(data[done:])
            if not got:
                raise OSError(f"{self.name}: the spill file of frames {self.start}-{self.start + self._count - 1} "
                              "was cut short")  # fmt: skip
            done += got
        return frame

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> WindowFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
