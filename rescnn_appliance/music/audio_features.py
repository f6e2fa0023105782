"""Audio features of a bounded excerpt of a track, for estimating its valence and arousal.

Only numpy and soundfile: the excerpt (at most ``EXCERPT_S`` seconds from the middle of the
track) is decoded, mixed to mono and described by a fixed vector of ``len(FEATURE_NAMES)``
numbers: loudness and its spread, spectral brightness/flatness/contrast, MFCC statistics,
onset rate, tempo and pulse clarity, major/minor mode and key clarity from a chroma profile.
Everything is expressed in Hz or seconds, so files at any sample rate give comparable values.

Example::

    >>> feats = extract_features("song.flac")          # doctest: +SKIP
    >>> dict(zip(FEATURE_NAMES, feats))["tempo_bpm"]   # doctest: +SKIP
    121.3
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

EXCERPT_S = 30.0
FRAME_S = 0.046  # analysis window; the FFT size is the next power of two at the file's rate
MIN_AUDIO_S = 0.5
N_MELS = 40
N_MFCC = 13

# Krumhansl-Kessler key profiles (C major / C minor); rotated for the other keys.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _rotations(profile: np.ndarray) -> np.ndarray:
    z = (profile - profile.mean()) / profile.std()
    return np.stack([np.roll(z, k) for k in range(12)])


_KEY_PROFILES = _rotations(MAJOR_PROFILE)
_KEY_PROFILES_MINOR = _rotations(MINOR_PROFILE)
CONTRAST_EDGES_HZ = (0, 200, 400, 800, 1600, 3200, 8000)

FEATURE_NAMES: tuple[str, ...] = (
    ("loud_db_mean", "loud_db_std", "loud_db_p10", "loud_db_p90", "low_energy_ratio",
     "centroid_hz_log", "centroid_std", "bandwidth_hz_log", "rolloff_hz_log", "flatness_mean",
     "flatness_std", "zcr_mean", "zcr_std", "flux_mean", "flux_std", "onset_rate",
     "tempo_bpm", "pulse_clarity", "mode_major_minus_minor", "key_clarity", "chroma_entropy",
     "chroma_std")
    + tuple(f"contrast_{i}" for i in range(len(CONTRAST_EDGES_HZ) - 1))
    + tuple(f"mfcc_mean_{i}" for i in range(N_MFCC))
    + tuple(f"mfcc_std_{i}" for i in range(N_MFCC))
    + tuple(f"mfcc_delta_{i}" for i in range(N_MFCC))
)


class AudioError(Exception):
    """The file cannot be decoded into usable audio; the message says why in one line."""


def _system_libsndfile_paths() -> list[str]:
    """Full paths of the system's libsndfile from the loader cache. A full path, because
    opening it by its soname would return the wheel's copy, loaded already under that name."""
    try:
        out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(" => ", 1)[1].strip() for line in out.splitlines()
            if line.strip().startswith("libsndfile.so") and " => " in line]


@lru_cache(maxsize=1)
def use_system_libsndfile() -> str:
    """Decode with the operating system's libsndfile when it is 1.1 or newer; returns its path,
    or ``"bundled"`` when soundfile keeps the copy in its wheel.

    Both give the same samples, but the wheel's build decodes Opus about 2.3x and FLAC 2x
    slower here (benchmarks/RESULTS-music.md): for the scan, decoding is most of the cost.
    """
    for path in _system_libsndfile_paths():
        try:
            lib = sf._ffi.dlopen(path)  # OSError for another architecture's copy
            version = sf._ffi.string(lib.sf_version_string()).decode("ascii", "replace")
            numbers = version.removeprefix("libsndfile-").split("-")[0].split(".")
            if (int(numbers[0]), int(numbers[1])) < (1, 1):  # no MP3, incomplete Opus
                continue
        except (OSError, AttributeError, IndexError, ValueError):
            continue
        # soundfile has no public switch; every call goes through this handle. Switched before
        # this module opens its first file; the processes that decode (scan workers, the scan
        # job, training) hold no other soundfile handle open across the switch.
        sf._snd = lib
        return path
    return "bundled"


def read_excerpt(path: str | Path, excerpt_s: float = EXCERPT_S) -> tuple[np.ndarray, int, float]:
    """Decode at most ``excerpt_s`` seconds from the middle of ``path`` as mono float32.

    Returns ``(samples, sample_rate, duration_s_of_whole_file)``.
    """
    use_system_libsndfile()
    try:
        with sf.SoundFile(str(path)) as fh:
            rate = int(fh.samplerate)
            total = int(fh.frames) if fh.frames and fh.frames > 0 else 0
            want = int(excerpt_s * rate)
            if total > want:
                fh.seek((total - want) // 2)
            data = fh.read(frames=want if total == 0 or total > want else -1,
                           dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"cannot decode: {exc}") from None
    if rate <= 0:
        raise AudioError("no sample rate")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    duration = (total or len(mono)) / rate
    if len(mono) < MIN_AUDIO_S * rate:
        raise AudioError(f"too short ({len(mono) / rate:.2f} s of audio)")
    if not np.all(np.isfinite(mono)):
        raise AudioError("decoded samples are not finite")
    return mono, rate, duration


@dataclass(frozen=True)
class _Spectral:
    """Everything about the spectrum that depends only on the sample rate (cached per rate).

    ``project`` maps a power spectrum to, in one matrix product: power at each frequency
    times Hz and Hz squared (centroid, bandwidth), the 40 mel bands and the 12 pitch classes.
    """

    n_fft: int
    hop: int
    window: np.ndarray
    freqs: np.ndarray
    project: np.ndarray
    dct: np.ndarray
    contrast_bands: tuple[slice, ...]


@lru_cache(maxsize=8)
def _spectral(rate: int) -> _Spectral:
    n_fft = 1 << int(np.ceil(np.log2(FRAME_S * rate)))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    top = min(rate / 2, 11000.0)
    edges_mel = np.linspace(mel(30.0), mel(top), N_MELS + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    fb = np.zeros((len(freqs), N_MELS))
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[:, m] = np.clip(np.minimum(up, down), 0.0, None)
    n = np.arange(N_MELS)
    dct = np.cos(np.pi / N_MELS * (n[:, None] + 0.5) * np.arange(N_MFCC)[None, :])
    chroma = np.zeros((len(freqs), 12))
    ok = (freqs >= 55.0) & (freqs <= 4200.0)
    pitch = np.round(12 * np.log2(freqs[ok] / 440.0) + 69).astype(int) % 12
    chroma[np.nonzero(ok)[0], pitch] = 1.0
    band = np.digitize(freqs, CONTRAST_EDGES_HZ) - 1  # non-decreasing: each band is a slice
    bands = tuple(slice(int(np.searchsorted(band, b)), int(np.searchsorted(band, b, "right")))
                  for b in range(len(CONTRAST_EDGES_HZ) - 1))
    project = np.column_stack([freqs, freqs**2, fb, chroma]).astype(np.float32)
    return _Spectral(n_fft, n_fft // 2, np.hanning(n_fft).astype(np.float32),
                     freqs.astype(np.float32), project, dct.astype(np.float32), bands)


def _tempo(onset: np.ndarray, frame_rate: float) -> tuple[float, float]:
    """Tempo in BPM (60..200, log-normal prior at 120) and pulse clarity from autocorrelation."""
    x = onset - onset.mean()
    if len(x) < 8 or not np.any(x):
        return 0.0, 0.0
    n = 1 << (2 * len(x) - 1).bit_length()
    spec = np.fft.rfft(x, n)
    ac = np.fft.irfft(spec * np.conj(spec), n)[: len(x)]
    ac /= ac[0] + 1e-12
    lags = np.arange(len(ac))
    lo, hi = int(frame_rate * 60 / 200), int(frame_rate * 60 / 60) + 1
    if hi >= len(ac) or lo < 1:
        return 0.0, 0.0
    bpm = 60.0 * frame_rate / lags[lo:hi]
    weight = np.exp(-0.5 * (np.log2(bpm / 120.0) / 0.9) ** 2)
    best = int(np.argmax(ac[lo:hi] * weight))
    return float(bpm[best]), float(max(ac[lo + best], 0.0))


def features_from_samples(mono: np.ndarray, rate: int) -> np.ndarray:
    """The feature vector (order ``FEATURE_NAMES``) of mono float samples at ``rate`` Hz."""
    sp = _spectral(int(rate))
    n_fft, hop = sp.n_fft, sp.hop  # half overlap: no overlap was 3 points worse on quadrant accuracy
    if len(mono) < n_fft * 4:
        raise AudioError("too short to analyse")
    n_frames = 1 + (len(mono) - n_fft) // hop
    x = np.ascontiguousarray(mono[: (n_frames + 1) * hop], dtype=np.float32)
    frame_rate = rate / hop
    eps = 1e-10

    # Frame i is half-frame blocks i and i+1, so loudness and zero crossings are sums over
    # blocks: one pass over the samples instead of one over every (overlapping) frame.
    blocks = x.reshape(n_frames + 1, hop)
    block_energy = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
    rms = np.sqrt((block_energy[:-1] + block_energy[1:]) / n_fft + eps)
    if rms.max() < 1e-4:
        raise AudioError("silent")
    loud = 20 * np.log10(rms)
    low_energy = float(np.mean(rms < rms.mean()))
    flips = np.signbit(x[1:]) != np.signbit(x[:-1])  # flips[k]: between samples k and k+1
    edge = np.zeros(n_frames + 1, np.int32)  # edge[i]: the flip from block i into block i+1
    edge[:n_frames] = flips[hop - 1::hop][:n_frames]
    internal = np.add.reduceat(flips, np.arange(0, len(flips), hop), dtype=np.int32) - edge
    zcr = (internal[:-1] + edge[:-1] + internal[1:]) * (rate / (n_fft - 1))

    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    import scipy.fft  # here, not at the top: the daemon imports this module only to scan

    # scipy's pocketfft runs several frames at once in SIMD: 4x numpy's on these frames
    spec = scipy.fft.rfft(frames * sp.window, axis=1, workers=1)  # float32 in, complex64 out
    power = spec.real**2 + spec.imag**2 + eps
    proj = power @ sp.project
    total = power.sum(axis=1)
    centroid = proj[:, 0] / total
    bandwidth = np.sqrt(np.maximum(proj[:, 1] / total - centroid**2, 0.0))
    mel = proj[:, 2:2 + N_MELS]
    chroma = proj[:, 2 + N_MELS:].sum(axis=0, dtype=np.float64)
    cum = np.cumsum(power, axis=1)
    rolloff = sp.freqs[np.minimum(np.argmax(cum >= 0.85 * total[:, None], axis=1),
                                  len(sp.freqs) - 1)]
    flatness = np.exp(np.mean(np.log(power), axis=1)) / (total / power.shape[1])
    # Frames that are nearly silent say nothing about timbre; weight by loudness.
    w = rms / rms.sum()

    log_mel = np.log(mel + eps)
    mfcc = log_mel @ sp.dct
    flux = np.maximum(np.diff(log_mel, axis=0), 0.0).mean(axis=1)
    flux_smooth = np.convolve(flux, np.ones(3) / 3, mode="same")
    # The absolute floor (log-mel units) keeps slow swells and codec noise from counting.
    thresh = np.convolve(flux, np.ones(15) / 15, mode="same") + max(0.5 * flux.std(), 0.1)
    peaks = (flux_smooth > thresh) & (flux_smooth >= np.roll(flux_smooth, 1)) & (
        flux_smooth > np.roll(flux_smooth, -1))
    onset_rate = float(peaks.sum() * frame_rate / len(flux))
    tempo, clarity = _tempo(flux, frame_rate)

    chroma = chroma / (chroma.sum() + eps)
    z = (chroma - chroma.mean()) / (chroma.std() + eps)
    major, minor = _KEY_PROFILES @ z / 12.0, _KEY_PROFILES_MINOR @ z / 12.0
    mode = float(major.max() - minor.max())
    key_clarity = float(max(major.max(), minor.max()))
    chroma_entropy = float(-(chroma * np.log(chroma + eps)).sum() / np.log(12))

    contrast = []
    for bins in sp.contrast_bands:
        width = bins.stop - bins.start
        if width < 2:
            contrast.append(0.0)
            continue
        k = max(1, width // 5)
        srt = np.sort(power[:, bins], axis=1)
        contrast.append(float(np.mean(np.log(srt[:, -k:].mean(1)) - np.log(srt[:, :k].mean(1)))))

    mfcc_mean = (w[:, None] * mfcc).sum(axis=0)
    mfcc_std = np.sqrt((w[:, None] * (mfcc - mfcc_mean) ** 2).sum(axis=0))
    mfcc_delta = np.abs(np.diff(mfcc, axis=0)).mean(axis=0)
    vec = [
        float(loud.mean()), float(loud.std()), float(np.percentile(loud, 10)),
        float(np.percentile(loud, 90)), low_energy,
        float(np.log(np.sum(w * centroid) + 1.0)), float(np.std(np.log(centroid + 1.0))),
        float(np.log(np.sum(w * bandwidth) + 1.0)), float(np.log(np.sum(w * rolloff) + 1.0)),
        float(np.sum(w * flatness)), float(np.std(flatness)),
        float(zcr.mean()), float(zcr.std()), float(flux.mean()), float(flux.std()), onset_rate,
        tempo, clarity, mode, key_clarity, chroma_entropy, float(chroma.std()),
        *contrast, *mfcc_mean.tolist(), *mfcc_std.tolist(), *mfcc_delta.tolist(),
    ]
    out = np.asarray(vec, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise AudioError("features are not finite")
    return out


def extract_features(path: str | Path, excerpt_s: float = EXCERPT_S) -> np.ndarray:
    """Decode a bounded excerpt of ``path`` and return its feature vector."""
    mono, rate, _ = read_excerpt(path, excerpt_s)
    return features_from_samples(mono, rate)


assert len(FEATURE_NAMES) == 22 + 6 + 3 * N_MFCC
