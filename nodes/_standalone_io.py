"""A small stand-in for ``comfy_api.latest.io`` used where ComfyUI is absent (unit tests, CI, scripts).

It mirrors the parts of the V3 schema that our nodes use, with the same names and call shapes, so the
node classes are defined once. The real-host check (our nodes loaded by a real ComfyUI) keeps this honest;
``as_object_info`` produces the same input-spec layout that ComfyUI's ``/object_info`` shows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Hidden(str, Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"


class NumberDisplay(str, Enum):
    number = "number"
    slider = "slider"


class FolderType(str, Enum):
    input = "input"
    output = "output"
    temp = "temp"


class UploadType(str, Enum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


def _prune(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class Input:
    io_type: str = ""

    def __init__(
        self,
        id: str,
        display_name: str | None = None,
        optional: bool = False,
        tooltip: str | None = None,
        lazy: bool | None = None,
        extra_dict: dict | None = None,
        raw_link: bool | None = None,
    ):
        self.id = id
        self.display_name = display_name
        self.optional = optional
        self.tooltip = tooltip
        self.lazy = lazy
        self.extra_dict = extra_dict or {}

    def as_dict(self) -> dict[str, Any]:
        return (
            _prune(
                {
                    "display_name": self.display_name,
                    "optional": self.optional or None,
                    "tooltip": self.tooltip,
                    "lazy": self.lazy,
                }
            )
            | self.extra_dict
        )


class WidgetInput(Input):
    def __init__(
        self,
        id: str,
        display_name: str | None = None,
        optional: bool = False,
        tooltip: str | None = None,
        lazy: bool | None = None,
        default: Any = None,
        socketless: bool | None = None,
        force_input: bool | None = None,
        extra_dict: dict | None = None,
        raw_link: bool | None = None,
    ):
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link)
        self.default = default
        self.force_input = force_input

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | _prune({"default": self.default, "forceInput": self.force_input})


class Output:
    io_type: str = ""

    def __init__(
        self,
        id: str | None = None,
        display_name: str | None = None,
        tooltip: str | None = None,
        is_output_list: bool = False,
    ):
        self.id = id
        self.display_name = display_name or id
        self.tooltip = tooltip
        self.is_output_list = is_output_list


def _comfy_type(io_type: str, input_base: type = Input):
    class _Type:
        class Input(input_base):
            pass

        class Output(Output):
            pass

    _Type.io_type = io_type
    _Type.Input.io_type = io_type
    _Type.Output.io_type = io_type
    return _Type


Image = _comfy_type("IMAGE")
Mask = _comfy_type("MASK")
Audio = _comfy_type("AUDIO")
Video = _comfy_type("VIDEO")
AnyType = _comfy_type("*")


def Custom(io_type: str):  # noqa: N802 (mirrors comfy_api's factory name)
    return _comfy_type(io_type)


class _Number(WidgetInput):
    def __init__(
        self,
        id: str,
        display_name: str | None = None,
        optional: bool = False,
        tooltip: str | None = None,
        lazy: bool | None = None,
        default: Any = None,
        min: Any = None,
        max: Any = None,
        step: Any = None,
        round: Any = None,
        display_mode: NumberDisplay | None = None,
        control_after_generate: bool | None = None,
        socketless: bool | None = None,
        force_input: bool | None = None,
        extra_dict: dict | None = None,
        raw_link: bool | None = None,
    ):
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, force_input, extra_dict)
        self.min, self.max, self.step, self.round = min, max, step, round
        self.control_after_generate = control_after_generate

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | _prune(
            {
                "min": self.min,
                "max": self.max,
                "step": self.step,
                "round": self.round,
                "control_after_generate": self.control_after_generate,
            }
        )


class Int:
    io_type = "INT"

    class Input(_Number):
        io_type = "INT"

    class Output(Output):
        io_type = "INT"


class Float:
    io_type = "FLOAT"

    class Input(_Number):
        io_type = "FLOAT"

    class Output(Output):
        io_type = "FLOAT"


class Boolean:
    io_type = "BOOLEAN"

    class Input(WidgetInput):
        io_type = "BOOLEAN"

        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: bool | None = None,
            label_on: str | None = None,
            label_off: str | None = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict | None = None,
            raw_link: bool | None = None,
        ):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, force_input, extra_dict)
            self.label_on, self.label_off = label_on, label_off

    class Output(Output):
        io_type = "BOOLEAN"


class String:
    io_type = "STRING"

    class Input(WidgetInput):
        io_type = "STRING"

        def __init__(
            self,
            id: str,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: str | None = None,
            multiline: bool | None = None,
            placeholder: str | None = None,
            dynamic_prompts: bool | None = None,
            socketless: bool | None = None,
            force_input: bool | None = None,
            extra_dict: dict | None = None,
            raw_link: bool | None = None,
        ):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, force_input, extra_dict)
            self.multiline, self.placeholder = multiline, placeholder

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _prune({"multiline": self.multiline, "placeholder": self.placeholder})

    class Output(Output):
        io_type = "STRING"


class Combo:
    io_type = "COMBO"

    class Input(WidgetInput):
        io_type = "COMBO"

        def __init__(
            self,
            id: str,
            options: list | type[Enum] | None = None,
            display_name: str | None = None,
            optional: bool = False,
            tooltip: str | None = None,
            lazy: bool | None = None,
            default: Any = None,
            control_after_generate: bool | None = None,
            upload: UploadType | None = None,
            image_folder: FolderType | None = None,
            remote: Any = None,
            socketless: bool | None = None,
            extra_dict: dict | None = None,
            raw_link: bool | None = None,
        ):
            if isinstance(options, type) and issubclass(options, Enum):
                options = [v.value for v in options]
            if isinstance(default, Enum):
                default = default.value
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, extra_dict)
            self.options = list(options or [])
            self.upload = upload

        def as_dict(self) -> dict[str, Any]:
            extra = {self.upload.value: True} if self.upload is not None else {}
            return super().as_dict() | {"options": self.options, "multiselect": False} | extra

    class Output(Output):
        io_type = "COMBO"


@dataclass
class Schema:
    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    hidden: list = field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def validate(self) -> None:
        issues = []
        for kind, ids in (("Input", [i.id for i in self.inputs]), ("Output", [o.id for o in self.outputs])):
            dupes = [item for item, count in Counter(ids).items() if count > 1]
            if dupes:
                issues.append(f"{kind} ids must be unique, but {dupes} are not.")
        if issues:
            raise ValueError("\n".join(issues))

    def finalize(self) -> None:
        if self.is_output_node:
            for hidden in (Hidden.prompt, Hidden.extra_pnginfo):
                if hidden not in self.hidden:
                    self.hidden.append(hidden)
        for i, output in enumerate(self.outputs):
            if output.id is None:
                output.id = f"_{i}_{output.io_type}_"

    def as_object_info(self) -> dict[str, Any]:
        """The node's entry as ComfyUI's ``/object_info`` lists it (V1 layout of the inputs)."""
        required, optional = {}, {}
        for inp in self.inputs:
            (optional if inp.optional else required)[inp.id] = [inp.io_type, inp.as_dict()]
        return {
            "input": {"required": required, "optional": optional, "hidden": {h.name: [h.value] for h in self.hidden}},
            "input_order": {"required": list(required), "optional": list(optional)},
            "output": [o.io_type for o in self.outputs],
            "output_is_list": [o.is_output_list for o in self.outputs],
            "output_name": [o.display_name or o.io_type for o in self.outputs],
            "output_tooltips": [o.tooltip for o in self.outputs],
            "name": self.node_id,
            "display_name": self.display_name,
            "description": self.description,
            "category": self.category,
            "output_node": self.is_output_node,
        }


class _HiddenValues:
    def __init__(self, values: dict[str, Any] | None = None):
        values = values or {}
        self.unique_id = values.get("unique_id")
        self.prompt = values.get("prompt")
        self.extra_pnginfo = values.get("extra_pnginfo")
        self.dynprompt = values.get("dynprompt")


class ComfyNode:
    """Base of V3 nodes outside ComfyUI. ``hidden`` holds hidden inputs; tests may set them."""

    hidden = _HiddenValues()

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def GET_SCHEMA(cls) -> Schema:  # noqa: N802 (ComfyUI's spelling)
        schema = cls.define_schema()
        schema.finalize()  # as ComfyUI does: outputs get their default ids first, then the ids are checked
        schema.validate()
        return schema


class NodeOutput:
    def __init__(self, *args: Any, ui: Any = None, expand: dict | None = None, block_execution: str | None = None):
        self.args = args
        self.ui = ui
        self.expand = expand
        self.block_execution = block_execution

    @property
    def result(self) -> tuple | None:
        return self.args if self.args else None

    def __getitem__(self, index: int) -> Any:
        return self.args[index]
