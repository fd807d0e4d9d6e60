"""The cast, exactly: screen time in hundredths of a second, people seen in photos only ranked after anyone on screen,
representative faces kept where still the person's own, the candidates for it (ties in face order, 1 to 40 of
them, typicalities equal to the rounding), a face's size as the shorter side of its box wherever the box lies,
sharpness judged on the 96x96 grey crop; and the timeline's layout: a row per person on screen in the video (at
most 40) with its label beside its bar, the faces column aligned to the rows, the cuts of that video only, beneath
the bars, and margins that stay the same in inches whatever the number of rows or the matplotlib settings."""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgba

from person_cluster.config import SamplingConfig
from person_cluster.outputs.cast import CastMember, _sharpness, build_cast, draw_timeline, representative_face
from person_cluster.records import FaceTable
from person_cluster.sampling import Shot

E = np.eye(128, dtype=np.float32)


def _table(n, face=None, boxes=None, sources=None, times=None, shots=None) -> FaceTable:
    sources = sources or ["p.jpg"] * n
    times = times or [None] * n
    return FaceTable(ids=np.arange(n), sources=list(sources),
                     frames=[None if t is None else int(t * 10) for t in times], times=list(times),
                     bboxes=np.asarray(boxes if boxes is not None else [[0, 0, 40, 40]] * n, np.int64).reshape(n, 4),
                     face=np.asarray(face if face is not None else np.tile(E[0], (n, 1)), np.float32),
                     cloth=np.zeros((n, 0), np.float32), has_cloth=np.zeros(n, bool),
                     shots=np.asarray(shots if shots is not None else [-1] * n, np.int64))


def _board(size: int, period: int = 1) -> np.ndarray:
    grey = ((np.indices((size, size)) // period).sum(axis=0) % 2 * 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


# -- the representative face ---------------------------------------------------------------------------------------

def test_typicalities_equal_to_a_thousandth_are_a_tie_taken_in_face_order():
    # 0 and 3 are the most typical, 0.99391 and 0.99413: the same to the rounding, so 0 (the earlier) is the one
    # candidate of four; a resumed run that moves descriptors a little does not change the pick.
    face = np.stack([E[0] + 0.05 * E[1], E[0] + 0.3 * E[2], E[0] + 0.3 * E[3], E[0] + 0.04 * E[4]])
    table = _table(4, face, boxes=[[0, 0, 40, 40]] * 3 + [[0, 0, 90, 90]])
    assert representative_face(np.arange(4), table, lambda i: _board(40) if i == 3 else None) == 0


def test_a_quarter_of_four_faces_is_one_candidate_the_most_typical():
    face = np.stack([E[0], E[0] + 0.3 * E[1], E[0] + 0.3 * E[2], E[0] + 0.3 * E[3]])
    table = _table(4, face, boxes=[[0, 0, 40, 40], [0, 0, 90, 90], [0, 0, 40, 40], [0, 0, 40, 40]])
    assert representative_face(np.arange(4), table, lambda i: _board(40) if i == 1 else None) == 0


def test_there_are_at_most_40_candidates():
    # 200 equally typical faces: a quarter would be 50; the 40 first are the candidates, not the larger ones after.
    boxes = [[0, 0, 40, 40]] * 40 + [[0, 0, 90, 90]] * 10 + [[0, 0, 40, 40]] * 150
    assert representative_face(np.arange(200), _table(200, boxes=boxes), lambda i: None) < 40


def test_equally_typical_faces_are_candidates_in_face_order():
    # 80 faces, every fourth an outlier: the 20 candidates are the first 20 typical faces (1, 2, 3, 5, ... 26), not
    # the larger typical faces after them.
    face = np.stack([E[0] if i % 4 else E[0] + E[1] for i in range(80)])
    boxes = [[0, 0, 40, 40]] * 27 + [[0, 0, 90, 90]] * 53
    pick = representative_face(np.arange(80), _table(80, face, boxes), lambda i: None)
    assert pick <= 26 and pick % 4


def _ranks_in_face_order(v) -> list[int]:
    """Each value's rank among ``v``: how many come before it, by value and then by position (ties in face order)."""
    return [sum((v[j], j) < (v[i], i) for j in range(len(v))) for i in range(len(v))]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([30, 40, 50]), min_size=40, max_size=40), st.sets(st.integers(0, 39)))
def test_the_pick_is_the_best_total_rank_with_ties_ranked_in_face_order(sizes, sharp):
    # 160 equally typical faces: the 40 first are the candidates, equal in typicality; sizes and sharpness (a sharp
    # board or a flat crop) tie often. On any machine (numpy's default sort differs with the CPU) the same pick.
    boxes = [[0, 0, s, s] for s in sizes] + [[0, 0, 10, 10]] * 120
    crop_of = lambda i: _board(40) if i in sharp else None
    sharpness = [_sharpness(crop_of(i)) for i in range(40)]
    total = [a + b + c for a, b, c in zip(_ranks_in_face_order(sizes), _ranks_in_face_order(sharpness),
                                          _ranks_in_face_order([0] * 40))]
    assert representative_face(np.arange(160), _table(160, boxes=boxes), crop_of) == int(np.argmax(total))


@pytest.mark.parametrize("box", [[200, 0, 240, 60], [0, 100, 40, 200], [100, 0, 140, 200], [0, 100, 200, 140]])
def test_a_faces_size_is_the_shorter_side_of_its_box_wherever_it_lies(box):
    # Two candidates of 8 equally typical faces, the first sharper: the larger box decides. 40 px against 50.
    boxes = [box, [0, 0, 50, 50]] + [[0, 0, 10, 10]] * 6
    crop_of = lambda i: _board(40) if i == 0 else None
    assert representative_face(np.arange(8), _table(8, boxes=boxes), crop_of) == 1
    boxes[0] = [300, 300, 360, 360]  # 60 px: now the first is larger
    assert representative_face(np.arange(8), _table(8, boxes=boxes), crop_of) == 0


def test_sharpness_is_the_laplacian_variance_of_the_96_pixel_grey_crop():
    assert _sharpness(_board(96)) == 16 * 255 ** 2  # every pixel 4 x 255 from its neighbours, either sign
    # A finer board at 288 px is averaged over 3 x 3 pixels (4 or 5 of 9 white: 113 and 142): detail finer than the
    # 96 px crop does not count.
    assert _sharpness(_board(288)) == 16 * (142 - 113) ** 2


# -- the cast ------------------------------------------------------------------------------------------------------

def test_screen_time_is_in_hundredths_and_people_in_photos_only_rank_after_anyone_on_screen():
    # 0: one face in v.mp4, a third of a second on screen; 1: three photos (more faces, no screen time).
    table = _table(4, sources=["v.mp4", "a.jpg", "b.jpg", "c.jpg"], times=[0.0, None, None, None])
    members, _ = build_cast(table, np.array([0, 1, 1, 1]), np.arange(4), [], SamplingConfig(capture_interval_sec=1 / 3),
                            lambda i: None)
    assert [(m.cluster, m.screen_time_s, m.faces) for m in members] == [(0, 0.33, 1), (1, None, 3)]


def test_a_cover_chosen_before_is_kept_while_it_is_still_the_persons_face():
    # Person 0's faces 0-3: the representative face would be 0 (the most typical); person 1 is face 4.
    face = np.stack([E[0], E[0] + 0.3 * E[1], E[0] + 0.3 * E[2], E[0] + 0.3 * E[3], E[5]])
    table = _table(5, face)
    labels = np.array([0, 0, 0, 0, 1])

    def covers(given):
        members, _ = build_cast(table, labels, np.arange(5), [], SamplingConfig(), lambda i: None, covers=given)
        return {m.cluster: m.cover_face for m in members}

    assert covers(None) == {0: 0, 1: 4}
    assert covers({0: 2, 1: 4}) == {0: 2, 1: 4}  # kept
    assert covers({0: 4, 1: 0}) == {0: 0, 1: 4}  # no longer theirs: chosen again


# -- the timeline --------------------------------------------------------------------------------------------------

@pytest.fixture
def figures(monkeypatch):
    """The figures draw_timeline saves, as matplotlib objects."""
    from matplotlib.figure import Figure

    saved = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        saved.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def _member(k, name, seconds) -> CastMember:
    return CastMember(k, name, seconds, 1, 1, 1, "v.mp4", 0.0, "v.mp4", 0.0, k)


def _positions(fig):
    faces, bars = fig.axes
    return faces.get_position(), bars.get_position()


def test_the_timeline_layout_rows_labels_cuts_and_axes(tmp_path, figures):
    v = "films/v.mp4"
    shots = [Shot(v, 0, 0, 49, 10.0), Shot(v, 1, 50, 79, 10.0), Shot(v, 2, 80, 99, 10.0),
             Shot("w.mp4", 1, 30, 99, 10.0)]  # another video's cut: not drawn
    members = [_member(0, "Ann", 10.0), _member(1, "Bob", 2.5), _member(2, "Cy", 0.0), _member(3, "Dee", None)]
    spans = {0: {v: [(0.0, 10.0)]}, 1: {v: [(5.0, 6.0), (7.0, 8.5)]}, 2: {v: [(1.5, 1.5)]},
             4: {v: [(0.0, 1.0)]}}  # Dee (3) has no span at all: no row; 4 is no member
    crop = _board(40, period=3)
    crop[:, :, 2] = 255  # red over the board
    draw_timeline(tmp_path / "v.png", v, members, spans, shots, 10.0, lambda i: crop if i in (0, 1) else None)
    fig = figures[-1]
    faces, bars = fig.axes
    assert tuple(fig.get_size_inches()) == (14, 1.0 + 0.45 * 3) and fig.dpi == 100
    assert [t.get_text() for t in bars.get_yticklabels()] == ["Ann  10.0 s", "Bob  2.5 s", "Cy  0.0 s"]
    assert list(bars.get_yticks()) == [0.5, 1.5, 2.5]  # each label at its row's middle
    assert {t.get_fontsize() for t in bars.get_yticklabels()} == {8}
    assert bars.yaxis.get_ticks_position() == "right"
    assert bars.get_ylim() == (3.0, 0.0) and bars.get_xlim() == (0.0, 10.0)  # top row first; the whole video
    assert bars.get_xlabel() == "seconds"
    assert bars.get_title() == "v.mp4: who is on screen when" and bars.title.get_fontsize() == 10
    # Bars: row r from r + 0.15 to r + 0.85, in the colours C0, C1, ...; Bob's two spans.
    bar_rows = []
    for r, collection in enumerate(bars.collections):
        boxes = [p.vertices for p in collection.get_paths()]
        bar_rows.append(sorted((float(v[:, 0].min()), float(v[:, 0].max())) for v in boxes))
        assert all(v[:, 1].min() == pytest.approx(r + 0.15) and v[:, 1].max() == pytest.approx(r + 0.85) for v in boxes)
        assert tuple(collection.get_facecolor()[0]) == to_rgba(f"C{r}")
    assert bar_rows == [[(0.0, 10.0)], [(5.0, 6.0), (7.0, 8.5)], [(1.5, 1.5)]]
    # The cuts of this video (5 s and 8 s), not its start nor another video's: faint, thin, beneath the bars.
    assert [line.get_xdata()[0] for line in bars.lines] == [5.0, 8.0]
    assert all((line.get_color(), line.get_linewidth(), line.get_zorder()) == ("0.85", 0.6, 0) for line in bars.lines)
    assert all(line.get_zorder() < c.get_zorder() for line in bars.lines for c in bars.collections)
    # The faces column: a 48 px face per row, in RGB, aligned with the rows; white where there is none.
    image = faces.images[0]
    strip = np.asarray(image.get_array())
    thumb = cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    assert strip.shape == (3 * 48, 48, 3) and strip.dtype == np.uint8
    assert np.array_equal(strip[:48], thumb) and np.array_equal(strip[48:96], thumb) and (strip[96:] == 255).all()
    assert tuple(image.get_extent()) == (0, 1, 3, 0) and faces.get_aspect() == "auto" and not faces.axison
    # Margins: 1% left, 12% right for the labels, 0.35 in above for the title and 0.5 in below for the axis label;
    # the faces column is 0.5 / 14 of the two columns, 1% of a column's mean width apart.
    f, b = _positions(fig)
    height = 1.0 + 0.45 * 3
    assert f.x0 == pytest.approx(0.01) and b.x1 == pytest.approx(0.88)
    assert f.width / b.width == pytest.approx(0.5 / 13.5)
    assert b.x0 - f.x1 == pytest.approx(0.01 * (f.width + b.width) / 2)
    for box in (f, b):
        assert box.y0 * height == pytest.approx(0.5) and (1 - box.y1) * height == pytest.approx(0.35)


def test_the_timeline_margins_stay_in_inches_and_it_is_1400_pixels_wide_whatever_the_settings(tmp_path, figures):
    spans = {k: {"v.mp4": [(0.0, 1.0)]} for k in range(12)}
    members = [_member(k, f"p{k}", 1.0) for k in range(12)]
    with matplotlib.rc_context({"figure.dpi": 50, "image.aspect": "equal", "font.size": 20}):
        draw_timeline(tmp_path / "v.png", "v.mp4", members, spans, [], 2.0, lambda i: None)
    assert cv2.imread(str(tmp_path / "v.png")).shape[:2] == (int((1.0 + 0.45 * 12) * 100), 1400)
    fig = figures[-1]
    _, b = _positions(fig)
    height = 1.0 + 0.45 * 12
    assert b.y0 * height == pytest.approx(0.5) and (1 - b.y1) * height == pytest.approx(0.35)
    assert fig.axes[0].get_aspect() == "auto" and fig.axes[1].title.get_fontsize() == 10
    assert {t.get_fontsize() for t in fig.axes[1].get_yticklabels()} == {8}
    # Colours cycle through matplotlib's ten: row 11 is C1 again.
    assert tuple(fig.axes[1].collections[11].get_facecolor()[0]) == to_rgba("C1")


def test_the_timeline_keeps_40_rows_and_an_empty_one_still_has_an_axis(tmp_path, figures):
    members = [_member(k, f"p{k}", 1.0) for k in range(41)]
    spans = {k: {"v.mp4": [(0.0, 1.0)]} for k in range(41)}
    draw_timeline(tmp_path / "v.png", "v.mp4", members, spans, [], 2.0, lambda i: None)
    labels = [t.get_text() for t in figures[-1].axes[1].get_yticklabels()]
    assert len(labels) == 40 and labels[-1] == "p39  1.0 s"
    draw_timeline(tmp_path / "e.png", "v.mp4", [], {}, [], 0.0, lambda i: None)
    fig = figures[-1]
    assert fig.axes[1].get_xlim() == (0.0, 1e-3) and fig.axes[1].get_ylim() == (1.0, 0.0)
    assert tuple(fig.get_size_inches()) == (14, 1.45)
