"""The log-mel front end F5-TTS and the Vocos 24 kHz vocoder share ("vocos" mel flavour).

torchaudio's MelSpectrogram with power 1, centred reflect-padded frames, a periodic Hann window, HTK mel scale
without filter normalisation, then log(max(mel, 1e-5)). Written with torch.stft so that torchaudio is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 24000
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 100

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def frames(self, num_samples: int) -> int:
        """Mel frames for ``num_samples`` (centred framing): 1 + num_samples // hop."""
        return 1 + num_samples // self.hop_length


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(config: MelConfig) -> torch.Tensor:
    """Triangular HTK filters (n_fft // 2 + 1, n_mels), unnormalised, from 0 Hz to the Nyquist rate."""
    n_freqs = config.n_fft // 2 + 1
    freqs = torch.linspace(0, config.sample_rate // 2, n_freqs)
    edges_mel = torch.linspace(
        _hz_to_mel(torch.tensor(0.0)), _hz_to_mel(torch.tensor(config.sample_rate / 2)), config.n_mels + 2
    )
    edges = _mel_to_hz(edges_mel)
    widths = edges[1:] - edges[:-1]
    rel = edges[None, :] - freqs[:, None]  # (F, M + 2)
    rising = -rel[:, :-2] / widths[:-1]
    falling = rel[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class LogMel(torch.nn.Module):
    """Waveform (B, N) at config.sample_rate -> log-mel (B, n_mels, 1 + N // hop)."""

    def __init__(self, config: MelConfig = MelConfig()):
        super().__init__()
        self.config = config
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)
        self.register_buffer("filters", mel_filterbank(config), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim != 2:
            raise ValueError(f"wave must be (B, N), got {tuple(wave.shape)}")
        c = self.config
        spec = torch.stft(
            wave.float(),
            c.n_fft,
            hop_length=c.hop_length,
            win_length=c.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        ).abs()  # (B, F, T)
        mel = torch.matmul(spec.transpose(1, 2), self.filters).transpose(1, 2)  # (B, M, T)
        return torch.log(torch.clamp(mel, min=1e-5))
