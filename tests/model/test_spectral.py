"""Post-processing: Magenta's matrix and reference audio, and independent STFT round trips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.signal

from gansynth_instrument.errors import ModelError
from gansynth_instrument.model.spectral import (
    RELEASED,
    denormalize,
    linear_to_mel_weight_matrix,
    mel_to_linear_matrix,
    spectrogram_to_audio,
)

# Issue 4: post-processing alone is well-conditioned, so Magenta's audio within 1e-4 × peak.
REFERENCE_TOLERANCE = 1e-4
HOP, N_FFT, FRAMES, PAD_FRONT = 512, 2048, 128, 3072
rng = np.random.default_rng(4)


def test_mel_matrix_has_magentas_view_aliasing():
    """Facts doc §3: Magenta's mel2l has 2042 non-zeros, max 1.03499; copies would give 2343."""
    mel2l = mel_to_linear_matrix()
    assert mel2l.shape == (1024, 1024)
    assert np.count_nonzero(mel2l) == 2042
    assert mel2l.min() == 0.0 and mel2l.max() == pytest.approx(1.03499, abs=1e-5)
    assert not mel2l[0].any() and not mel2l[:, 0].any()
    assert not linear_to_mel_weight_matrix()[0].any()  # DC row


@pytest.mark.parametrize("reference", ["reference.npz", "reference_stage_00011.npz"])
def test_post_processing_reproduces_magentas_audio(magenta_tiny, reference):
    ref = np.load(magenta_tiny / reference)
    note = int(ref["spec_note_index"][0])
    audio = spectrogram_to_audio(denormalize(ref["spec"]))
    assert audio.shape == (1, 64000) and audio.dtype == np.float32
    expected = ref["audio"][note]
    peak = np.abs(expected).max()
    assert np.abs(audio[0] - expected).max() <= REFERENCE_TOLERANCE * peak


def _analysis(signal: np.ndarray) -> np.ndarray:
    """Our own STFT of ``signal`` as Magenta frames it: front pad 3072, Hann 2048, hop 512."""
    padded = np.concatenate([np.zeros(PAD_FRONT), signal])
    starts = np.arange(FRAMES) * HOP
    frames = padded[starts[:, None] + np.arange(N_FFT)] * scipy.signal.get_window("hann", N_FFT)
    return np.fft.rfft(frames, axis=-1)[:, 1:]  # the model has no DC bin


def test_linear_path_inverts_an_stft_of_a_known_signal():
    """Two partials well above DC: |X| and IF in, the same signal out (away from the last frame)."""
    t_s = np.arange(64000) / 16000
    signal = 0.6 * np.sin(2 * np.pi * 440.0 * t_s) + 0.3 * np.cos(2 * np.pi * 1234.5 * t_s + 1.0)
    stft = _analysis(signal)
    phase = np.angle(stft)
    step = np.diff(phase, axis=0)
    wrapped_step = np.mod(step + np.pi, 2 * np.pi) - np.pi
    inst_freq = np.concatenate([phase[:1], wrapped_step]) / np.pi
    spec = np.stack([np.log(np.abs(stft) + 1e-30), inst_freq], axis=-1)[None]
    linear = dataclasses.replace(RELEASED, data_type="linear")
    audio = spectrogram_to_audio(spec.astype(np.float32), linear)
    # Frames around the onset (zeros → signal) have content at DC, which the model drops; the
    # last samples lack their full overlap of frames. Everything between must come back, up to
    # float32 rounding of a phase summed over 128 frames (~3e-4 rad by the last ones).
    steady = slice(N_FFT, 64000 - N_FFT)
    np.testing.assert_allclose(audio[0, steady], signal[steady], atol=3e-4)


@pytest.mark.filterwarnings("ignore:NOLA condition failed")  # boundary=False: tail, not compared
def test_mel_path_matches_a_float64_dense_istft_on_random_input():
    """Random tanh-range generator output (small phases, no float32 drift) vs scipy's iSTFT."""
    raw = np.tanh(rng.normal(size=(2, FRAMES, 1024, 2))).astype(np.float32)
    spec = denormalize(raw)
    mel2l = mel_to_linear_matrix().astype(np.float32).astype(np.float64)
    magnitude = np.sqrt(np.exp(spec[..., 0].astype(np.float64)) @ mel2l + 1e-6)
    phase = np.cumsum(spec[..., 1].astype(np.float64) * np.pi, axis=1) @ mel2l
    stft = np.pad(magnitude * np.exp(1j * phase), [(0, 0), (0, 0), (1, 0)])
    window = scipy.signal.get_window("hann", N_FFT)
    _, expected = scipy.signal.istft(
        stft.transpose(0, 2, 1) / window.sum(),  # undo scipy's 'spectrum' scaling
        window=window,
        nperseg=N_FFT,
        noverlap=N_FFT - HOP,
        boundary=False,
    )
    audio = spectrogram_to_audio(spec)
    complete = slice(0, 64000 - N_FFT)  # scipy divides the partial-overlap tail differently
    peak = np.abs(expected).max()
    np.testing.assert_allclose(
        audio[:, complete], expected[:, PAD_FRONT:][:, complete], atol=2e-5 * peak
    )


def test_bad_spectrograms_and_representations_are_refused():
    with pytest.raises(ModelError, match=r"\[batch, 128, 1024, 2\]"):
        spectrogram_to_audio(np.zeros((1, 64, 1024, 2), np.float32))
    with pytest.raises(ModelError, match="unsupported representation"):
        spectrogram_to_audio(
            np.zeros((1, 128, 1024, 2), np.float32), dataclasses.replace(RELEASED, ifreq=False)
        )
