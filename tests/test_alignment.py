"""The chip dlib's network reads, aligned by dlib's landmarks, the detector's points or both (embedding/face.py):
the similarity fit, the templates against dlib's own chip, the shrinking of big faces, and which points are used."""

from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest
from conftest import LFW, need
from hypothesis import given
from hypothesis import strategies as st

from person_cluster.config import Config, ConfigError, DetectionConfig, FaceConfig
from person_cluster.detection import make_detector
from person_cluster.embedding.face import (
    DLIB_FIVE_POINTS,
    MEAN_FACE_POINTS,
    FaceAligner,
    chip_points,
    similarity,
    warp_chip,
)
from person_cluster.models import dlib_model_path

PHOTO = LFW / "Colin_Powell" / "Colin_Powell_0001.jpg"


def _apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]


@given(angle=st.floats(-3.1, 3.1), scale=st.floats(0.05, 20), shift=st.tuples(st.floats(-500, 500),
                                                                               st.floats(-500, 500)),
       seed=st.integers(0, 10_000))
def test_similarity_recovers_a_similarity_exactly(angle, scale, shift, seed):
    src = np.random.default_rng(seed).uniform(0, 300, (5, 2))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    truth = np.c_[scale * rotation, shift]
    m = similarity(src, _apply(truth, src))
    np.testing.assert_allclose(m, truth, atol=1e-6 * max(1.0, scale), rtol=1e-6)


@given(seed=st.integers(0, 10_000))
def test_similarity_is_the_least_squares_one_and_never_a_mirror(seed):
    rng = np.random.default_rng(seed)
    src = rng.uniform(0, 100, (10, 2))
    dst = rng.uniform(0, 100, (10, 2))
    m = similarity(src, dst)
    assert np.linalg.det(m[:, :2]) > 0  # a rotation and a scale: no reflection, even for mirrored points
    error = ((_apply(m, src) - dst) ** 2).sum()
    # Any other similarity near it fits worse (the optimum over angle, scale and shift).
    for delta in rng.normal(0, 1e-3, (20, 4)):
        s, a = np.hypot(m[0, 0], m[1, 0]) * (1 + delta[0]), np.arctan2(m[1, 0], m[0, 0]) + delta[1]
        other = np.c_[s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]), m[:, 2] + delta[2:]]
        assert ((_apply(other, src) - dst) ** 2).sum() >= error - 1e-9
    mirrored = src * [-1, 1]
    assert np.linalg.det(similarity(src, mirrored)[:, :2]) > 0


def test_chip_points_place_the_mean_face_as_dlib_pads_it():
    np.testing.assert_allclose(chip_points(MEAN_FACE_POINTS, 0.0, 150), MEAN_FACE_POINTS * 150)
    np.testing.assert_allclose(chip_points(np.array([[0.0, 1.0]]), 0.25, 150), [[25.0, 125.0]])
    # The eyes of the two templates: dlib's four eye corners lie around the detector's two eye centres.
    corners = chip_points(DLIB_FIVE_POINTS, 0.25)
    centres = chip_points(MEAN_FACE_POINTS, 0.25)
    assert abs(corners[2:4, 0].mean() - centres[0, 0]) < 3 and abs(corners[0:2, 0].mean() - centres[1, 0]) < 3


@pytest.fixture(scope="module")
def photo():
    rgb = cv2.cvtColor(cv2.imread(str(need(PHOTO))), cv2.COLOR_BGR2RGB)
    det = min(make_detector(DetectionConfig())(rgb), key=lambda d: abs((d.box.left + d.box.right) / 2 - 75))  # 150x150
    return rgb, det


def _dlib_shape(rgb, box):
    predictor = dlib.shape_predictor(dlib_model_path("landmarks5"))
    return predictor(rgb, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))


def test_dlibs_template_and_the_warp_give_dlibs_own_chip(photo):
    """Our warp with dlib's five points onto DLIB_FIVE_POINTS is the chip dlib.get_face_chip cuts: the template's
    constants and the pixel conventions are dlib's."""
    rgb, det = photo
    shape = _dlib_shape(rgb, det.box)
    own = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
    ours = warp_chip(rgb, similarity(own, chip_points(DLIB_FIVE_POINTS, 0.25)))
    theirs = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
    assert ours.shape == theirs.shape == (150, 150, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 4
    # Off by two pixels is already far more different.
    shifted = warp_chip(rgb, similarity(own + 2, chip_points(DLIB_FIVE_POINTS, 0.25)))
    assert np.abs(shifted.astype(int) - theirs.astype(int)).mean() > 2 * np.abs(ours.astype(int)
                                                                                 - theirs.astype(int)).mean()


def _dots(size: int, points: np.ndarray, radius: int) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    for x, y in points:
        cv2.circle(img, (round(x), round(y)), radius, (255, 255, 255), -1)
    return img


def _centroid(chip: np.ndarray) -> np.ndarray:
    grey = chip[..., 0].astype(np.float64)
    ys, xs = np.indices(grey.shape)
    return np.array([(xs * grey).sum(), (ys * grey).sum()]) / grey.sum()


@pytest.mark.parametrize("scale", [0.1, 0.3, 0.8, 1.0, 2.5])
def test_a_point_lands_where_the_similarity_puts_it_whether_the_face_is_shrunk_first_or_not(scale):
    centre = np.array([[1000.0, 990.0]])  # the chip's whole view lies inside the image (no border reflected)
    img = _dots(2000, centre, max(2, int(6 / scale)))
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = np.c_[scale * rotation, [0, 0]]
    m[:, 2] = [60, 80] - _apply(m, centre)[0]  # the dot goes to chip pixel (60, 80)
    chip = warp_chip(img, m)
    np.testing.assert_allclose(_centroid(chip), [60, 80], atol=0.35)


def test_a_big_face_is_shrunk_by_area_averaging_not_sampled():
    """A 1-pixel checkerboard shrunk 8x: sampling picks a pattern of black and white, averaging gives grey."""
    board = (np.indices((1200, 1200)).sum(0) % 2 * 255).astype(np.uint8)
    chip = warp_chip(np.dstack([board] * 3), np.array([[0.125, 0, 0], [0, 0.125, 0]]))
    assert chip.std() < 10 and abs(chip.mean() - 127.5) < 10


def test_which_points_align_the_chip(photo):
    rgb, det = photo
    box, points = det.box, det.landmarks
    dlib_chip = dlib.get_face_chip(rgb, _dlib_shape(rgb, box), size=150, padding=0.25)
    align = {a: FaceAligner(0.25, a) for a in ("both", "detector", "dlib")}
    # dlib: the detector's points change nothing; without points every way is dlib's.
    assert np.array_equal(align["dlib"](rgb, box, points), dlib_chip)
    for a in align.values():
        assert np.array_equal(a(rgb, box, None), dlib_chip)
    # detector: the box (what dlib's landmarks are found in) changes nothing.
    from person_cluster.records import Box

    other_box = Box(box.left + 6, box.top + 6, box.right + 6, box.bottom + 6)
    assert np.array_equal(align["detector"](rgb, box, points), align["detector"](rgb, other_box, points))
    chips = {a: align[a](rgb, box, points).astype(int) for a in ("both", "detector")}
    d_det, d_both = (np.abs(chips[a] - dlib_chip).mean() for a in ("detector", "both"))
    assert 0 < d_both < d_det  # both lies between the two: it uses dlib's landmarks and the detector's points
    assert np.abs(chips["both"] - chips["detector"]).mean() > 0
    # Five points that coincide fit no similarity: the chip is dlib's.
    same = [points[0]] * 5
    assert np.array_equal(align["both"](rgb, box, same), dlib_chip)


def test_face_align_is_validated_and_an_old_out_reads_as_dlib():
    assert FaceConfig().align == "both"
    with pytest.raises(ConfigError, match="face.align"):
        Config().with_overrides({"face.align": "eyes"})
    stored = Config().to_dict()
    del stored["face"]["align"]
    assert Config.from_stored(stored).face.align == "dlib"  # OUTs written before it were aligned by dlib alone
    assert Config.from_dict(stored).face.align == "both"
