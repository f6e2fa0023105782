"""The appliance's per-frame pipeline, split into stages that the bench can time one by one.

The stages are the calls the appliance makes for a frame, in its order, with nothing added:

=============  =================================================================================
stage          what runs
=============  =================================================================================
capture        ``source.read()`` (timed by the bench loop, not here)
faces          :meth:`FaceFinder.find` on the whole grayscale frame
preprocess     :meth:`Face.crop` (48x48) and :meth:`AffectModel.inputs` (both models' inputs)
ecnn           the emotion TorchScript module and its softmax
va             the valence/arousal TorchScript module
mood           :meth:`MoodTracker.add` (or ``no_face``) with the new reading
track          :meth:`Recommender.next_track` for the smoothed valence/arousal
=============  =================================================================================

``reading`` is a frame in hand to the smoothed reading (faces .. mood, frames with a face): the
appliance's "frame to reading" latency. ``end_to_end`` is a frame in hand to the track chosen
(faces .. track), the reading plus the choice; ``capture`` is reported beside it; ``end_to_end_cpu`` is the
CPU time this thread spent over the same span (equal to ``end_to_end`` on an idle machine). A frame without a face stops
after ``mood`` (``no_face``). :meth:`BenchPipeline.process` does the same work with no clock
reads, for measuring the bench's own overhead.

Example::

    >>> pipeline = BenchPipeline(FaceFinder(), model, MoodTracker())   # doctest: +SKIP
    >>> times = pipeline.timed(frame.image, frame.t)                    # doctest: +SKIP
    >>> sorted(times)                                                   # doctest: +SKIP
    ['ecnn', 'end_to_end', 'face', 'faces', 'mood', 'pred', 'preprocess', 'reading', 'track', 'va']
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter, thread_time
from typing import Any

import numpy as np

from rescnn_appliance.tracking import MoodTracker
from rescnn_appliance.vision.affect import AffectModel, AffectReading
from rescnn_appliance.vision.faces import FaceFinder

STAGES = ("capture", "faces", "preprocess", "ecnn", "va", "mood", "track")
# end_to_end_cpu: this thread's CPU time over the same span; on a loaded machine it is what
# end_to_end would be with a core to itself (less the cache it shares).
LATENCIES = STAGES + ("reading", "end_to_end", "end_to_end_cpu")


class BenchPipeline:
    """Face finder, both models, mood tracker and (optionally) the recommender, timed per stage.

    Example::

        >>> p = BenchPipeline(FaceFinder(), AffectModel.load("models"), MoodTracker())  # doctest: +SKIP
        >>> p.timed(np.zeros((480, 640), np.uint8), t=0.0)["face"]                     # doctest: +SKIP
        False
    """

    def __init__(self, finder: FaceFinder, model: AffectModel, tracker: MoodTracker,
                 recommender: Any = None) -> None:
        import torch

        self._torch = torch
        self.finder, self.model, self.tracker = finder, model, tracker
        self.recommender = recommender

    def timed(self, image: np.ndarray, t: float) -> dict[str, Any]:
        """Run one grayscale frame through every stage; milliseconds per stage."""
        c0 = thread_time()
        t0 = perf_counter()
        face = self.finder.find(image)
        t1 = perf_counter()
        if face is None:
            self.tracker.no_face(t)
            t2 = perf_counter()
            return {"face": False, "faces": (t1 - t0) * 1e3, "mood": (t2 - t1) * 1e3,
                    "end_to_end": (t2 - t0) * 1e3, "end_to_end_cpu": (thread_time() - c0) * 1e3}
        out = self._timed_crop(face.crop(48), t, t1, c0)
        out["faces"] = (t1 - t0) * 1e3
        out["reading"] += out["faces"]
        out["end_to_end"] += out["faces"]
        return out

    def timed_crop(self, crop: np.ndarray, t: float) -> dict[str, Any]:
        """A 48x48 face crop (a labelled set's face) through preprocess .. track."""
        return self._timed_crop(crop, t, perf_counter(), thread_time())

    def _timed_crop(self, crop: np.ndarray, t: float, t1: float, c0: float) -> dict[str, Any]:
        torch = self._torch
        x48, xva = self.model.inputs(crop)
        t2 = perf_counter()
        with torch.inference_mode():
            probs = torch.softmax(self.model.ecnn(torch.from_numpy(x48)).float(), 1).numpy()
            t3 = perf_counter()
            va = self.model.va(torch.from_numpy(xva)).float().numpy()
        t4 = perf_counter()
        state = self.tracker.add(AffectReading(t, tuple(probs[0].tolist()),
                                               float(va[0, 0]), float(va[0, 1])))
        t5 = perf_counter()
        out = {"face": True, "preprocess": (t2 - t1) * 1e3, "ecnn": (t3 - t2) * 1e3,
               "va": (t4 - t3) * 1e3, "mood": (t5 - t4) * 1e3, "reading": (t5 - t1) * 1e3,
               "pred": int(probs[0].argmax())}
        if self.recommender is not None:
            self.recommender.next_track(None, state.valence, state.arousal)
            t6 = perf_counter()
            out["track"] = (t6 - t5) * 1e3
        else:
            t6 = t5
        out["end_to_end"] = (t6 - t1) * 1e3
        out["end_to_end_cpu"] = (thread_time() - c0) * 1e3
        return out

    def process(self, image: np.ndarray, t: float) -> None:
        """The same work as :meth:`timed` with no clock reads (the bare pipeline)."""
        torch = self._torch
        face = self.finder.find(image)
        if face is None:
            self.tracker.no_face(t)
            return
        crop = face.crop(48)
        x48, xva = self.model.inputs(crop)
        with torch.inference_mode():
            probs = torch.softmax(self.model.ecnn(torch.from_numpy(x48)).float(), 1).numpy()
            va = self.model.va(torch.from_numpy(xva)).float().numpy()
        state = self.tracker.add(AffectReading(t, tuple(probs[0].tolist()),
                                               float(va[0, 0]), float(va[0, 1])))
        if self.recommender is not None:
            self.recommender.next_track(None, state.valence, state.arousal)


@contextlib.contextmanager
def generated_library(settings: Any, n_tracks: int = 200, seed: int = 0) -> Iterator[Any]:
    """A throw-away SQLite library of ``n_tracks`` generated tracks and a recommender over it.

    Tracks are rows with valence/arousal spread over the plane and 20 artists (no audio: the
    bench never plays them); the moods are fitted by K-means as after a scan. Yields the
    :class:`~rescnn_appliance.music.recommend.Recommender`; the library file is deleted after.
    """
    from rescnn_appliance.music.db import Track
    from rescnn_appliance.music.library import Library
    from rescnn_appliance.music.recommend import Recommender

    logging.getLogger("alembic").setLevel(logging.WARNING)  # a fresh schema each run: no news
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="rescnn-bench-") as tmp:
        lib = Library.open(Path(tmp) / "bench-library.sqlite")
        try:
            with lib.session() as s:
                for i, (v, a) in enumerate(rng.uniform(-0.9, 0.9, (n_tracks, 2))):
                    s.add(Track(path=f"/bench/{i:05d}.flac", title=f"Bench {i}",
                                artist=f"Artist {i % 20}", status="ok", va_source="tags",
                                valence=float(v), arousal=float(a)))
            lib.refit_moods()
            recommender = Recommender(lib, settings.recommend, settings.playback, seed=seed)
            recommender.refresh()
            yield recommender
        finally:
            lib.close()
