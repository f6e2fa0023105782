"""Face finding on real faces: the public-domain astronaut and FER2013 val faces in a frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from rescnn_appliance.config import load_settings
from rescnn_appliance.vision.demo_frames import DemoSource
from rescnn_appliance.vision.faces import Face, FaceFinder
from rescnn_appliance.vision.frames import ImageFolderSource

# The astronaut's face in the 512x512 original (looked up by eye: hairline to chin,
# ear to ear is about 175..272 x 60..175).
ASTRONAUT_FACE_CENTRE = (224, 114)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)


def place(image: np.ndarray, x: int, y: int, scale: float = 1.0) -> np.ndarray:
    """``image`` scaled and pasted at (x, y) into a mid-gray 640x480 frame."""
    frame = np.full((480, 640), 128, np.uint8)
    part = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = min(part.shape[0], 480 - y), min(part.shape[1], 640 - x)
    frame[y:y + h, x:x + w] = part[:h, :w]
    return frame


def test_finds_the_astronauts_face(astronaut: np.ndarray) -> None:
    face = FaceFinder().find(astronaut)
    assert face is not None and face.search == "full"
    cx, cy = face.centre
    assert abs(cx - ASTRONAUT_FACE_CENTRE[0]) < 15 and abs(cy - ASTRONAUT_FACE_CENTRE[1]) < 15
    assert 70 <= face.box[2] <= 130
    crop = face.crop(48)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop.std() > 20  # a face, not a flat patch


def test_settings_build_the_finder() -> None:
    faces = load_settings(path=None, overrides={"faces.track_margin": 0.8}).faces
    finder = FaceFinder.from_settings(faces)
    assert finder.track_margin == 0.8 and finder.detect_scale == faces.detect_scale


def test_tracks_a_moving_face_through_the_window(astronaut: np.ndarray) -> None:
    finder = FaceFinder()
    boxes = []
    for step in range(6):
        frame = place(astronaut, 40 + 12 * step, 10 + 4 * step, scale=0.8)
        face = finder.find(frame)
        assert face is not None
        assert face.search == ("full" if step == 0 else "window")
        boxes.append(face.box)
    xs = [b[0] for b in boxes]
    moves = np.diff(xs)
    assert np.all(np.abs(moves - 12) <= 5), xs  # the box follows the face, 12 px a frame


def test_a_jump_beyond_the_window_falls_back_to_a_full_search(astronaut: np.ndarray) -> None:
    finder = FaceFinder()
    assert finder.find(place(astronaut, 0, 0, scale=0.8)) is not None
    face = finder.find(place(astronaut, 280, 120, scale=0.8))
    assert face is not None and face.search == "full"
    assert finder.last_search == "window+full"
    assert face.box[0] > 280


def test_blank_frame_has_no_face_and_tracking_restarts(astronaut: np.ndarray) -> None:
    finder = FaceFinder()
    assert finder.find(np.full((480, 640), 90, np.uint8)) is None
    assert finder.last_search == "full"
    assert finder.find(place(astronaut, 50, 0, scale=0.8)) is not None
    assert finder.find(np.full((480, 640), 90, np.uint8)) is None
    assert finder.last_search == "window+full"
    assert finder.find(place(astronaut, 50, 0, scale=0.8)).search == "full"


def test_an_unchanged_empty_room_is_not_searched_again_but_a_face_is_found_at_once(
        astronaut: np.ndarray) -> None:
    room = DemoSource(640, 480, fps=0).scene(35.0)  # the demo's room with nobody in it
    rng = np.random.default_rng(0)
    finder = FaceFinder()
    assert finder.find(room) is None and finder.last_search == "full"
    searches = []
    for _ in range(10):
        noisy = np.clip(room + rng.normal(0, 4, room.shape), 0, 255).astype(np.uint8)
        assert finder.find(noisy) is None
        searches.append(finder.last_search)
    # Sensor noise is not a change; the whole frame is still searched now and then.
    assert searches == ["unchanged"] * 8 + ["full", "unchanged"]
    visitor = room.copy()
    visitor[20:420, 100:500] = cv2.resize(astronaut, (400, 400), interpolation=cv2.INTER_AREA)
    face = finder.find(visitor)
    assert face is not None and face.search == "full"


def test_skipping_unchanged_frames_can_be_turned_off() -> None:
    finder = FaceFinder(skip_unchanged=False)
    blank = np.full((480, 640), 90, np.uint8)
    for _ in range(3):
        assert finder.find(blank) is None and finder.last_search == "full"


def test_takes_the_largest_of_two_faces(astronaut: np.ndarray) -> None:
    frame = place(astronaut, 0, 60, scale=0.5)
    big = cv2.resize(astronaut, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)[:400, :340]
    frame[40:440, 300:640] = big
    face = FaceFinder().find(frame)
    assert face is not None and face.box[0] > 300 and face.box[2] > 60


def test_crop_at_the_frame_edge_repeats_edge_pixels() -> None:
    frame = np.tile(np.arange(640, dtype=np.uint8)[None, :] // 3, (480, 1))
    crop = Face((-20, -20, 100, 100), frame).crop(48)
    assert crop.shape == (48, 48)
    assert np.all(crop[:, :8] == crop[0, 0])  # left strip is the replicated first column


def test_refuses_a_colour_frame(astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="grayscale uint8"):
        FaceFinder().find(np.zeros((480, 640, 3), np.uint8))


def test_demo_face_is_found_while_in_view_and_not_while_away() -> None:
    demo = DemoSource(640, 480, fps=0)
    finder = FaceFinder()
    for t in np.arange(0.0, 30.0, 2.5):
        face = finder.find(demo.scene(t))
        truth = demo.face_box(t)
        assert face is not None, t
        assert abs(face.centre[0] - (truth[0] + truth[2] / 2)) < truth[2] * 0.15
    for t in np.arange(31.0, 45.0, 3.0):
        assert finder.find(demo.scene(t)) is None, t


def test_fer_faces_from_a_folder_crop_like_fer2013(tmp_path: Path, shared_data: Path) -> None:
    """Faces written into frames, read back by the folder source: crops match the originals."""
    npz = np.load(shared_data / "fer2013" / "fer2013_trainval.npz")
    originals = npz["x_val"][npz["exact_val"]][:40]
    for i, face in enumerate(originals):
        big = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), place(big, 224, 144))

    finder = FaceFinder()
    correlations, sides = [], []
    with ImageFolderSource(tmp_path) as source:
        for frame, original in zip(source, originals):
            finder.reset()
            face = finder.find(frame.image)
            if face is None:
                continue
            crop = face.crop(48)
            correlations.append(np.corrcoef(crop.ravel(), original.ravel())[0, 1])
            sides.append(face.box[2] / 192)
    assert len(correlations) >= 16, "the cascade should find at least 40% of FER faces"
    # Framed like FER2013: the crop lines up with the original 48x48 face.
    assert np.median(correlations) > 0.6
    assert 0.85 < np.median(sides) < 1.1
