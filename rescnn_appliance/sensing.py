"""The sensing worker: frames -> face -> models -> events for the appliance's loop.

:class:`SensingWorker` runs on its own thread. It opens the frame source from ``settings.camera``
(retrying with a doubling back-off up to ``camera.retry_max_s`` while the camera is missing or
lost), finds the largest face, reads it with the models and hands each result to ``post`` as
:class:`~rescnn_appliance.appliance.FaceSeen`; the camera coming and going is posted as
:class:`~rescnn_appliance.appliance.CameraChanged`. While a face is in view it analyses
``camera.fps`` frames a second; two seconds after the face left it drops to ``camera.idle_fps``.
``beat`` is the monotonic time of its last loop, for the watchdog. Frames never leave memory.

Example::

    >>> worker = SensingWorker(settings, model, events.put)   # doctest: +SKIP
    >>> worker.start(); ...; worker.stop()                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

FAST_AFTER_FACE_S = 2.0  # keep the full rate this long after the last face


class SensingWorker:
    """Camera, face finder and models on one thread; see the module docstring."""

    def __init__(self, settings: Any, model: Any, post: Callable[[Any], None]) -> None:
        self.camera = settings.camera
        self.faces = settings.faces
        self.model = model
        self.post = post
        self.beat = time.monotonic()
        self.frames = 0
        self.faces_found = 0
        self.fps = float(self.camera.idle_fps)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sensing", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        from rescnn_appliance.appliance import WorkerFailed

        try:
            self._loop()
        except Exception as exc:
            log.exception("sensing failed")
            self.post(WorkerFailed(f"{type(exc).__name__}: {exc}"))

    def _open(self) -> Any:
        """Open the source, retrying with back-off; None when asked to stop meanwhile."""
        from rescnn_appliance.appliance import CameraChanged
        from rescnn_appliance.vision.frames import CameraError, open_reconnecting

        delay, last = 1.0, ""
        while not self._stop.is_set():
            self.beat = time.monotonic()
            try:
                source = open_reconnecting(self.camera)
                self.post(CameraChanged(True, source.describe()))
                return source
            except CameraError as exc:
                if str(exc) != last:
                    last = str(exc)
                    self.post(CameraChanged(False, last))
            self._stop.wait(delay)
            delay = min(delay * 2, max(1.0, float(self.camera.retry_max_s)))
        return None

    def _loop(self) -> None:
        from rescnn_appliance.appliance import CameraChanged, FaceSeen
        from rescnn_appliance.vision.faces import FaceFinder
        from rescnn_appliance.vision.frames import EndOfStream

        finder = FaceFinder.from_settings(self.faces)
        source = self._open()
        if source is None:
            return
        connected, last_face = True, float("-inf")
        fast, idle = float(self.camera.fps), float(self.camera.idle_fps)
        try:
            while not self._stop.is_set():
                start = time.monotonic()
                self.beat = start
                try:
                    frame = source.read()
                except EndOfStream:
                    frame = None
                if source.is_connected != connected:
                    connected = source.is_connected
                    self.post(CameraChanged(connected, source.describe() if connected
                                            else source.last_error or "camera lost"))
                if frame is not None:
                    self.frames += 1
                    face = finder.find(frame.image)
                    if face is not None:
                        self.faces_found += 1
                        last_face = frame.t
                        self.post(FaceSeen(frame.t, self.model.read(face.crop(48), frame.t)))
                    else:
                        self.post(FaceSeen(frame.t, None))
                fps = fast if time.monotonic() - last_face < FAST_AFTER_FACE_S else idle
                if fps != self.fps:
                    self.fps = fps
                    source.set_rate(fps)
                period = 1.0 / fps if fps > 0 else 1.0
                self._stop.wait(max(0.0, start + period - time.monotonic()))
        finally:
            source.close()
