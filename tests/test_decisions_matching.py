"""The user's decisions find their faces again after a re-run: exact keys first, else the box on the same source
and frame that overlaps most (IoU >= 0.5); never a face of another frame or source, never one that does not overlap.
And what the decisions become for the clustering: groups, cannot-links between people, names."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from person_cluster.records import FaceTable
from person_cluster.review import Decisions, apply_decisions, face_key, match_faces, table_keys
from person_cluster.review.decisions import Applied, DecisionError, Person
from person_cluster.tracking import Tracks

seeds = st.integers(0, 2**32 - 1)


def iou(a, b) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes: the definition, written out."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def parts(key: str):
    source, frame, box = key.split("\t")
    return source, frame, [int(v) for v in box.split(",")]


def _table(sources, frames, boxes) -> FaceTable:
    n = len(sources)
    return FaceTable(ids=np.arange(n), sources=list(sources), frames=list(frames), times=[None] * n,
                     bboxes=np.asarray(boxes, np.int64).reshape(n, 4), face=np.zeros((n, 128), np.float32),
                     cloth=np.zeros((n, 0), np.float32), has_cloth=np.zeros(n, bool))


@st.composite
def rerun(draw):
    """Faces of a first run (decided on) and of a re-run whose boxes moved, on a few sources and frames."""
    rng = np.random.default_rng(draw(seeds))
    n = draw(st.integers(1, 14))
    sources = rng.choice(["a.mp4", "b.mp4", "c.jpg"], n)
    frames = [None if s == "c.jpg" else int(rng.integers(0, 3)) for s in sources]
    left, top = rng.integers(0, 200, n), rng.integers(0, 200, n)
    size = rng.integers(4, 60, n)
    old = np.stack([left, top, left + size, top + size], axis=1)
    shift = rng.integers(-draw(st.sampled_from([1, 5, 20])), 21, (n, 4))
    new = old + shift
    new[:, 2:] = np.maximum(new[:, 2:], new[:, :2] + 1)
    keep = rng.random(n) < 0.8  # some faces are not found by the re-run; others are found where they were
    same = rng.random(n) < 0.3
    table_rows = [(sources[k], frames[k], old[k] if same[k] else new[k]) for k in range(n) if keep[k]]
    table_rows += [(sources[k], frames[k], new[k] + 7) for k in range(n) if rng.random() < 0.2]  # new, near old ones
    keys = [face_key(s, f, b) for s, f, b in table_rows]
    decided = {face_key(sources[k], frames[k], old[k]) for k in range(n)}
    return keys, decided


@settings(max_examples=150)
@given(rerun())
def test_a_decided_face_lands_only_on_the_best_overlapping_box_of_its_own_source_and_frame(case):
    keys, decided = case
    found = match_faces(keys, decided)
    assert set(found) <= decided and set(found.values()) <= set(keys)
    for d in decided:
        source, frame, box = parts(d)
        if d in keys:
            assert found[d] == d  # an exact key is itself, whatever overlaps it
            continue
        same_place = [k for k in keys if parts(k)[:2] == (source, frame)]
        best = max((iou(box, parts(k)[2]) for k in same_place), default=0.0)
        if best >= 0.5:
            assert d in found and parts(found[d])[:2] == (source, frame)
            assert iou(box, parts(found[d])[2]) == pytest.approx(best)
        else:
            assert d not in found


def test_the_overlap_needed_is_one_half_and_no_box_of_another_frame_or_source_is_taken():
    half = face_key("v.mp4", 3, [0, 0, 10, 5])  # IoU with the decided box: 50 / 100, exactly 0.5
    below = face_key("v.mp4", 3, [0, 0, 10, 4])
    decided = face_key("v.mp4", 3, [0, 0, 10, 10])
    assert match_faces([half], {decided}) == {decided: half}
    assert match_faces([below], {decided}) == {}
    for elsewhere in (face_key("v.mp4", 4, [0, 0, 10, 10]), face_key("w.mp4", 3, [0, 0, 10, 10]),
                      face_key("v.mp4", None, [0, 0, 10, 10])):
        assert match_faces([elsewhere], {decided}) == {}
    # The most overlapping box wins, wherever it is in the table; the exact key before any overlap.
    better, worse = face_key("v.mp4", 3, [1, 0, 10, 10]), face_key("v.mp4", 3, [0, 0, 10, 7])
    assert match_faces([worse, better], {decided}) == {decided: better}
    assert match_faces([better, worse], {decided}) == {decided: better}
    assert match_faces([better, decided], {decided}) == {decided: decided}
    assert match_faces([], {decided}) == {} and match_faces([decided], set()) == {}
    # Boxes apart on both axes do not overlap at all, however their gaps multiply.
    for apart in ([30, 30, 50, 50], [12, 12, 40, 40], [-30, -30, -2, -2], [10, 10, 20, 20], [0, 10, 10, 20]):
        assert match_faces([face_key("v.mp4", 3, apart)], {decided}) == {}, apart
    # Degenerate boxes overlap nothing (no division by zero).
    flat = face_key("v.mp4", 3, [5, 5, 5, 5])
    assert match_faces([flat], {face_key("v.mp4", 3, [5, 5, 5, 5]) + " "}) == {}
    assert match_faces([face_key("v.mp4", 3, [0, 0, 10, 10])], {flat}) == {}


def test_face_keys_are_the_caches_source_frame_and_box():
    assert face_key("dir/a b.mp4", 12, np.array([1.9, 2, 3, 4])) == "dir/a b.mp4\t12\t1,2,3,4"
    assert face_key("p.jpg", None, [0, 0, 5, 5]) == "p.jpg\t-\t0,0,5,5"
    table = _table(["v.mp4", "p.jpg"], [7, None], [[1, 2, 3, 4], [5, 6, 7, 8]])
    assert table_keys(table) == ["v.mp4\t7\t1,2,3,4", "p.jpg\t-\t5,6,7,8"]


# -- the decisions applied to a re-run's table ----------------------------------------------------------------
def test_decisions_are_applied_to_the_faces_that_moved_and_to_nothing_else(tmp_path):
    first = [("v.mp4", 0, [10, 10, 50, 50]), ("v.mp4", 0, [100, 10, 140, 50]), ("v.mp4", 6, [10, 10, 50, 50]),
             ("p.jpg", None, [0, 0, 30, 30]), ("v.mp4", 12, [10, 10, 50, 50])]
    k = [face_key(*f) for f in first]
    with Decisions(tmp_path) as d:
        ross = d.name([k[0], k[2]], "Ross")
        joey = d.name([k[1]], "Joey")
        d.set_cover([k[0], k[2]], k[2])
        d.mark_not_face([k[3]])
        gone = d.name([k[4]], "Gone")  # the re-run finds no face there
    # The re-run: boxes moved a little, the order changed, a new face, and face 4 is not found.
    table = _table(["p.jpg", "v.mp4", "v.mp4", "v.mp4", "v.mp4"], [None, 0, 0, 6, 12],
                   [[1, 1, 31, 31], [102, 11, 141, 52], [11, 9, 52, 50], [10, 10, 50, 50], [300, 300, 340, 340]])
    applied = apply_decisions(tmp_path, table)
    assert applied.person.tolist() == [-1, joey, ross, ross, -1]
    assert applied.not_face.tolist() == [True, False, False, False, False]
    assert applied.cover == {ross: 3}  # the cover face found again, by its own key
    assert set(applied.people) == {ross, joey, gone} and applied.people[ross].name == "Ross"


def test_no_decisions_or_an_empty_decisions_file_apply_nothing(tmp_path):
    table = _table(["v.mp4"], [0], [[0, 0, 10, 10]])
    assert apply_decisions(tmp_path, table) is None
    Decisions(tmp_path).close()
    assert apply_decisions(tmp_path, table) is None
    with Decisions(tmp_path) as d:
        d.mark_not_face([face_key("v.mp4", 0, [0, 0, 10, 10])])
    applied = apply_decisions(tmp_path, table)
    assert applied is not None and applied.not_face.tolist() == [True] and applied.person.tolist() == [-1]


def test_a_face_given_to_a_person_who_no_longer_exists_is_undecided(tmp_path):
    key = face_key("v.mp4", 0, [0, 0, 10, 10])
    with Decisions(tmp_path) as d:
        d.name([key], "x")
        d.db.execute("DELETE FROM people")  # a hand-edited or older file: an assignment without its person
        d.db.execute("INSERT INTO people (id, name) VALUES (99, 'other')")
    applied = apply_decisions(tmp_path, _table(["v.mp4"], [0], [[0, 0, 10, 10]]))
    assert applied.person.tolist() == [-1] and set(applied.people) == {99}


@settings(max_examples=30)  # a decisions file per example
@given(rerun(), seeds)
def test_every_decision_lands_where_match_faces_puts_it(case, seed):
    import tempfile
    from pathlib import Path

    keys, decided = case
    rng = np.random.default_rng(seed)
    decided = sorted(decided)
    kinds = rng.integers(0, 3, len(decided))  # 0: Ann's, 1: Bob's, 2: not a face
    with tempfile.TemporaryDirectory() as tmp:
        with Decisions(tmp) as d:
            ann = d.name([f for f, k in zip(decided, kinds) if k == 0] or ["x\t-\t0,0,1,1"], "Ann")
            bob = d.name([f for f, k in zip(decided, kinds) if k == 1] or ["y\t-\t0,0,1,1"], "Bob")
            if (kinds == 2).any():
                d.mark_not_face([f for f, k in zip(decided, kinds) if k == 2])
        rows = [parts(k) for k in keys]
        table = _table([r[0] for r in rows], [None if r[1] == "-" else int(r[1]) for r in rows], [r[2] for r in rows])
        applied = apply_decisions(Path(tmp), table)
    found = match_faces(keys, set(decided) | {"x\t-\t0,0,1,1", "y\t-\t0,0,1,1"})
    expected_person = np.full(len(keys), -1)
    expected_not = np.zeros(len(keys), bool)
    for f, k in zip(decided, kinds):
        if f in found:
            i = keys.index(found[f])
            if k == 2:
                expected_not[i] = True
            else:
                expected_person[i] = (ann, bob)[k]
    for i, key in enumerate(keys):  # a face two decisions name: it holds one of them
        named = {(ann, bob)[k] for f, k in zip(decided, kinds) if k < 2 and found.get(f) == key}
        if len(named) > 1:
            assert applied.person[i] in named
            expected_person[i] = applied.person[i]
    assert applied.person.tolist() == expected_person.tolist()
    assert applied.not_face.tolist() == expected_not.tolist()


# -- what the clustering makes of them ------------------------------------------------------------------------
def _applied(person) -> Applied:
    person = np.asarray(person, np.int64)
    return Applied(person, np.zeros(len(person), bool),
                   {p: Person(p, f"P{p}", False, None) for p in set(person.tolist()) if p >= 0}, {})


@settings(max_examples=150)
@given(seeds, st.integers(1, 16))
def test_a_track_is_cut_where_the_user_gave_its_faces_to_different_people(seed, n):
    rng = np.random.default_rng(seed)
    tracks = Tracks.by_first_face(rng.integers(0, max(1, n // 2), n))
    person = np.where(rng.random(n) < 0.5, rng.integers(0, 3, n), -1)
    cut = _applied(person).cut(tracks).ids
    assert cut.tolist() == Tracks.by_first_face(cut).ids.tolist()  # numbered by first face
    for a in range(n):
        for b in range(n):  # together: one track before, and one person (or nobody) decided for both
            same = tracks.ids[a] == tracks.ids[b] and person[a] == person[b]
            assert (cut[a] == cut[b]) == same, (a, b)


def test_a_track_split_between_two_people_keeps_its_undecided_faces_together():
    tracks = Tracks(np.array([0, 0, 0, 0, 1, 1]))
    assert _applied([5, -1, 7, -1, -1, 5]).cut(tracks).ids.tolist() == [0, 1, 2, 1, 3, 4]
    assert _applied([-1] * 6).cut(tracks).ids.tolist() == [0, 0, 0, 0, 1, 1]


@settings(max_examples=150)
@given(seeds, st.integers(1, 16))
def test_each_person_ends_in_one_cluster_of_their_own_and_undecided_faces_stay(seed, n):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 4, n)
    person = np.where(rng.random(n) < 0.5, rng.integers(0, 3, n), -1)
    out = _applied(person).enforce(labels)
    decided = person >= 0
    assert out[~decided].tolist() == labels[~decided].tolist()  # a name draws in no one
    owner = {}
    for p in set(person[decided].tolist()):
        (label,) = set(out[person == p].tolist())  # one cluster per person
        assert label >= 0 and label not in owner
        owner[label] = p
    if decided.any():  # the largest person keeps the cluster most of their faces were in, if they were in one
        sizes = {p: int((person == p).sum()) for p in owner.values()}
        big = max(sorted(sizes), key=lambda p: sizes[p])
        held = labels[(person == big) & (labels >= 0)]
        if len(held):
            values, counts = np.unique(held, return_counts=True)
            assert out[person == big][0] in values[counts == counts.max()].tolist()
        else:
            assert out[person == big][0] > labels.max()  # a cluster of their own, never someone else's


def test_a_person_whose_cluster_a_larger_person_took_gets_one_of_their_own():
    labels = np.array([0, 0, 0, 0, 1, 2])
    out = _applied([5, 5, 5, 7, 7, -1]).enforce(labels)
    assert out.tolist() == [0, 0, 0, 1, 1, 2]  # 7 had faces in 0 (taken by 5) and in 1: it gets 1
    out = _applied([5, 5, 7, -1, -1, -1]).enforce(np.array([0, 0, 0, 0, 1, 2]))
    assert out.tolist() == [0, 0, 3, 0, 1, 2]  # 7's only cluster was 5's: a new one


@given(seeds, st.integers(0, 12))
def test_every_two_people_are_cannot_linked_once_through_one_face_of_each(seed, n):
    rng = np.random.default_rng(seed)
    person = np.where(rng.random(n) < 0.6, rng.integers(0, 4, n), -1)
    a, b = _applied(person).person_pairs()
    people = sorted(set(person.tolist()) - {-1})
    pairs = sorted((int(person[x]), int(person[y])) for x, y in zip(a, b))
    assert pairs == [(p, q) for k, p in enumerate(people) for q in people[k + 1:]]
    for x in (*a, *b):
        assert x == int(np.flatnonzero(person == person[x])[0])  # the person's first face


def test_a_cluster_takes_the_name_of_the_person_most_of_its_faces_were_given_to():
    applied = _applied([4, 3, 4, -1, 0, 0, -1, 8, 0])
    del applied.people[8]  # faces given to a person removed since: no name from them
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 3, 1])
    names = applied.names(labels)
    assert {k: p.id for k, p in names.items()} == {0: 4, 1: 0}  # the majority, not the lowest id; 0 is a person
    assert applied.names(np.full(9, -1)) == {}
    tie = _applied([6, 2])
    assert tie.names(np.array([0, 0]))[0].id == 2  # a tie: the lower person id, whatever the face order


# -- actions -------------------------------------------------------------------------------------------------
A = [face_key("clip.mp4", k, [10, 10, 50, 50]) for k in range(4)]
B = [face_key("clip.mp4", k, [100, 10, 140, 50]) for k in range(4)]


def test_merge_takes_the_other_persons_name_only_when_it_has_none(tmp_path):
    with Decisions(tmp_path) as d:
        unnamed = d.move(A[:2], None)
        joey = d.name(B[:2], "Joey")
        assert d.merge(A[:2], B[:2]) == unnamed
        assert d.people()[unnamed].name == "Joey" and joey not in d.people()
        assert set(d.assigned().values()) == {unnamed}
        ross = d.name(A[2:], "Ross")
        assert d.merge(A[:2], A[2:]) == unnamed and d.people()[unnamed].name == "Joey"  # keeps its own name
        assert ross not in d.people()
        # Faces no one had yet join the kept person.
        assert d.merge(A, [B[2], B[3]]) == unnamed and d.assigned()[B[3]] == unnamed
        assert d.undo() == "merge" and B[3] not in d.assigned()


def test_a_person_is_the_one_most_of_the_faces_belong_to(tmp_path):
    with Decisions(tmp_path) as d:
        ross = d.name(A[:3], "Ross")
        joey = d.name(B[:1], "Joey")
        assert d.name([A[0], A[1], B[0], B[3]], "Ross G.") == ross  # two of Ross's faces, one of Joey's
        assert d.assigned()[B[3]] == ross and d.assigned()[B[0]] == joey  # only the unowned face moves
        assert d.people()[ross].name == "Ross G." and d.people()[joey].name == "Joey"
        assert d.hide(B[:1]) == joey and d.people()[joey].hidden
        assert d.hide(B[:1], hidden=False) == joey and not d.people()[joey].hidden


def test_moving_faces_takes_them_out_of_not_a_face_and_from_their_old_person(tmp_path):
    with Decisions(tmp_path) as d:
        ross = d.name(A, "Ross")
        d.mark_not_face([B[0], B[1]])
        joey = d.move([A[0], B[0]], None)
        assert joey not in (ross,) and d.assigned()[A[0]] == joey and d.assigned()[B[0]] == joey
        assert d.not_faces() == {B[1]}
        assert d.move([A[1]], [A[0]]) == joey and d.assigned()[A[1]] == joey
        with pytest.raises(DecisionError, match="no faces"):
            d.move([], None)
        with pytest.raises(DecisionError, match="no faces"):
            d.mark_not_face([])
        assert d.undo() == "move" and d.assigned()[A[1]] == ross
        assert d.undo() == "move" and d.not_faces() == {B[0], B[1]} and d.assigned()[A[0]] == ross
        assert d.undo() == "not_a_face" and d.undo() == "name" and d.undo() is None
        assert d.assigned() == {} and d.people() == {} and d.not_faces() == set()


def test_names_are_cleaned_and_bounded(tmp_path):
    with Decisions(tmp_path) as d:
        p = d.name(A, "  Ross \t Geller\n")
        assert d.people()[p].name == "Ross Geller"
        assert d.name(A, "x" * 200) == p
        with pytest.raises(DecisionError, match="at most 200"):
            d.name(A, "x" * 201)
        for bad in ("", " \n ", None, 5):
            with pytest.raises(DecisionError, match="must not be empty"):
                d.name(A, bad)
        assert d.people()[p].name == "x" * 200
        with pytest.raises(DecisionError, match="no person 42"):
            d._name(42)


def test_a_source_with_spaces_in_its_name_is_matched_like_any_other():
    """Keys are split at tabs: file names with spaces (and a re-run whose box moved) are as good as any."""
    moved = face_key("my holiday/day one.mp4", 12, [10, 10, 50, 50])
    keys = table_keys(_table(["my holiday/day one.mp4", "my holiday/day one.mp4"], [12, 13],
                             [[11, 10, 51, 50], [10, 10, 50, 50]]))
    assert match_faces(keys, {moved}) == {moved: keys[0]}


def test_boxes_that_only_touch_do_not_overlap():
    """1-pixel boxes side by side or one above the other share an edge, not a pixel: IoU 0, no match."""
    keys = table_keys(_table(["v.mp4"] * 2, [0, 0], [[1, 0, 2, 1], [0, 1, 1, 2]]))
    assert match_faces(keys, {face_key("v.mp4", 0, [0, 0, 1, 1])}) == {}


def test_enforce_on_no_faces_and_on_faces_all_set_aside():
    assert _applied([]).enforce(np.zeros(0, np.int64)).tolist() == []  # every input removed, decisions kept
    # Nobody was clustered: the person's faces take the first free label, 0.
    assert _applied([3, 3, -1]).enforce(np.array([-1, -1, -1])).tolist() == [0, 0, -1]


def test_ties_go_to_the_larger_person_then_the_lower_number_and_to_the_lower_cluster():
    # 20 people of one face each, all in cluster 0: person 0 keeps it, the others get new ones in number order.
    n = 20
    out = _applied(list(range(n))).enforce(np.zeros(n, np.int64))
    assert out.tolist() == list(range(n))
    # One person with one face in each of 20 clusters: the lowest cluster.
    out = _applied([4] * n).enforce(np.arange(n)[::-1].copy())
    assert set(out.tolist()) == {0}


def test_among_people_of_one_size_the_lower_number_wins_and_among_clusters_the_lower_label():
    # 40 people with 1 or 2 faces each, all in cluster 0: the first two-face person keeps it, then every other one
    # gets a new cluster, the larger people first, each size in number order.
    sizes = [1, 2] * 20
    person = np.repeat(np.arange(40), sizes)
    out = _applied(person).enforce(np.zeros(len(person), np.int64))
    order = [p for p in range(40) if sizes[p] == 2] + [p for p in range(40) if sizes[p] == 1]
    assert [int(out[person == p][0]) for p in order] == list(range(40))
    # Person 2 has one or two faces in each of 40 clusters; 0 and 1, both larger, took clusters 1 and 3: of the
    # clusters holding two of 2's faces, the lowest one left is 5.
    theirs = np.repeat(np.arange(40), [1, 2] * 20)
    labels = np.concatenate([np.full(100, 1), np.full(90, 3), theirs])
    person = np.repeat([0, 1, 2], [100, 90, len(theirs)])
    out = _applied(person).enforce(labels)
    assert [set(out[person == p].tolist()) for p in (0, 1, 2)] == [{1}, {3}, {5}]


def test_applied_not_faces_are_a_mask(tmp_path):
    """api.cluster_table indexes labels with not_face: it must be a boolean mask, also when nothing is marked."""
    table = _table(["v.mp4"] * 2, [0, 1], [[0, 0, 10, 10], [0, 0, 10, 10]])
    with Decisions(tmp_path) as d:
        d.name([face_key("v.mp4", 0, [0, 0, 10, 10])], "Ann")
    applied = apply_decisions(tmp_path, table)
    assert applied.not_face.dtype == bool and applied.not_face.tolist() == [False, False]


def test_a_hand_edited_file_with_a_face_given_to_no_person_is_a_one_line_refusal(tmp_path):
    keep, other = face_key("v.mp4", 0, [0, 0, 10, 10]), face_key("v.mp4", 1, [0, 0, 10, 10])
    with Decisions(tmp_path) as d:
        d.name([keep], "Ann")
        d.db.execute("INSERT INTO assigned VALUES (?, 41)", (other,))  # person 41 was never written
        with pytest.raises(DecisionError, match=r"^no person 41$"):
            d.merge([keep], [other])
