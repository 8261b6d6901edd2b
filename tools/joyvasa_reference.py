"""Outputs of JoyVASA's OWN code on a tiny random network, for tests/test_joyvasa_reference.py.

Reads jdh-algo/JoyVASA's sources (a git clone, or the bare git dir `fetch` gives) at run time into a temporary
folder outside this repository, builds its DitTalkingHead with small sizes (its audio projection fixes HuBERT's
width at 768) and seeded random weights, and records its audio features, its denoiser's output and whole
`sample()` runs (with given noise) plus its saved buffers. The parameters are not stored: the test rebuilds them
from the seed and the recorded names and shapes. Nothing of JoyVASA's code is stored: only numbers.

    python tools/joyvasa_reference.py --joyvasa PATH [--out tests/fixtures/joyvasa_reference.safetensors]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

FILES = (
    "src/modules/dit_talking_head.py", "src/modules/common.py", "src/modules/hubert.py",
    "src/modules/wav2vec2.py", "src/config/base_config.py",
)  # fmt: skip
SIZES = dict(motion_feat_dim=70, n_motions=100, n_prev_motions=10, feature_dim=16, n_diff_steps=5)
HUBERT = dict(
    hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=64, conv_dim=(8,) * 7,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
)  # fmt: skip
CFG_SCALE = 2.8


def _read(source: Path, name: str) -> str:
    if (source / name).is_file():
        return (source / name).read_text()
    git_dir = source if (source / "HEAD").is_file() else source / ".git"
    return subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{name}"], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def fill_random(shapes: list[tuple[str, tuple[int, ...]]], seed: int) -> dict[str, torch.Tensor]:
    """Random parameters for (name, shape) in order, from one seeded CPU generator (tests rebuild them so)."""
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) * (0.2 if len(shape) > 1 else 0.5) for name, shape in shapes}


def make_inputs(seed: int) -> dict[str, torch.Tensor]:
    n, p, d = SIZES["n_motions"], SIZES["n_prev_motions"], SIZES["motion_feat_dim"]
    g = torch.Generator().manual_seed(seed)
    out = {
        "audio": torch.randn(1, 64000, generator=g) * 0.1,
        "prev_audio": torch.randn(1, p, SIZES["feature_dim"], generator=g),
        "prev_motion": torch.randn(1, p, d, generator=g) * 0.3 + 0.5,
        "noisy": torch.randn(2, n, d, generator=g),
        "x_T": torch.randn(1, n, d, generator=g),
    }
    out["steps"] = torch.tensor([SIZES["n_diff_steps"], 2])
    out["step_noise"] = torch.randn(SIZES["n_diff_steps"] - 1, 1, n, d, generator=g)
    return out


def official_model(source: str | Path) -> torch.nn.Module:
    """JoyVASA's DitTalkingHead (its own code, read into a temporary folder) with the small sizes."""
    from transformers import HubertConfig, HubertModel

    source = Path(source)
    work = Path(tempfile.mkdtemp(prefix="joyvasa_ref_"))
    pkg = work / "joyvasa_official"
    for name in FILES:
        target = pkg / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_read(source, name))
    for folder in ("", "src", "src/modules", "src/config"):
        (pkg / folder / "__init__.py").write_text("")
    HubertModel(HubertConfig(**HUBERT)).save_pretrained(
        str(pkg / "pretrained_weights/TencentGameMate:chinese-hubert-base")
    )
    sys.path.insert(0, str(work))
    try:
        dit = importlib.import_module("joyvasa_official.src.modules.dit_talking_head")
        common = importlib.import_module("joyvasa_official.src.modules.common")
        dit.enc_dec_mask = functools.partial(common.enc_dec_mask, device="cpu")  # its default device is 'cuda'
        model = dit.DitTalkingHead(device="cpu", audio_model="hubert_zh", **SIZES)
    finally:
        sys.path.remove(str(work))
    model.audio_encoder.set_attn_implementation("eager")  # its forward asks for attention maps
    return model.eval()


def build_reference(source: str | Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """``out.*`` (JoyVASA's outputs on ``make_inputs(seed)``) and ``buffer.*`` (its saved non-parameters), with the
    parameters filled by ``fill_random(shapes, seed)``; returns also ``shapes`` (name, shape) in order."""
    model = official_model(source)
    shapes = [(name, tuple(p.shape)) for name, p in model.named_parameters()]
    weights = fill_random(shapes, seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(weights[name])
    x = make_inputs(seed + 1)
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        feats = model.extract_audio_feature(x["audio"])
        out["out.audio_feat"] = feats
        out["out.denoised"] = model.denoising_net(
            x["noisy"], feats.expand(2, -1, -1), x["prev_motion"].expand(2, -1, -1), x["prev_audio"].expand(2, -1, -1),
            x["steps"],
        )  # fmt: skip
        for case, prev in (("prev", (x["prev_motion"], x["prev_audio"])), ("start", (None, None))):
            noise = iter(x["step_noise"])
            real_randn_like = torch.randn_like
            torch.randn_like = lambda t, noise=noise, **kw: next(noise).clone()  # its per-step noise, given
            try:
                sample, _, _ = model.sample(x["audio"], prev[0], prev[1], x["x_T"].clone(), cfg_scale=CFG_SCALE)
            finally:
                torch.randn_like = real_randn_like
            out[f"out.sample_{case}"] = sample
    params = {name for name, _ in shapes}
    out.update({f"buffer.{k}": v.clone() for k, v in model.state_dict().items() if k not in params})
    return out, shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joyvasa", required=True, help="a clone of github.com/jdh-algo/JoyVASA (or its git dir)")
    parser.add_argument("--out", default="tests/fixtures/joyvasa_reference.safetensors")
    args = parser.parse_args()
    from safetensors.torch import save_file

    tensors, shapes = build_reference(args.joyvasa)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"cfg_scale": str(CFG_SCALE), "parameters": json.dumps(shapes), "sizes": json.dumps(SIZES)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, args.out, metadata=meta)
    print(f"wrote {args.out}: {len(tensors)} tensors, {sum(v.numel() for v in tensors.values())} numbers")


if __name__ == "__main__":
    main()
