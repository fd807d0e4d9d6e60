"""Clustering scores, checked against their definitions written out pair by pair and face by face."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from person_cluster.evaluation.metrics import METRIC_KEYS, clustering_scores, same_frame_pairs, singletons
from person_cluster.layout import ManifestError, read_manifest


def _reference(identities: list[str], labels: list[int]) -> dict[str, float]:
    n = len(labels)
    pred = list(singletons(np.array(labels)))  # unassigned faces are clusters of their own
    pairs = list(itertools.combinations(range(n), 2))
    tp = sum(identities[a] == identities[b] and pred[a] == pred[b] for a, b in pairs)
    together = sum(pred[a] == pred[b] for a, b in pairs)
    same = sum(identities[a] == identities[b] for a, b in pairs)
    p = tp / together if together else 1.0
    r = tp / same if same else 1.0
    bp = np.mean([sum(pred[b] == pred[a] and identities[b] == identities[a] for b in range(n))
                  / sum(pred[b] == pred[a] for b in range(n)) for a in range(n)])
    br = np.mean([sum(pred[b] == pred[a] and identities[b] == identities[a] for b in range(n))
                  / sum(identities[b] == identities[a] for b in range(n)) for a in range(n)])
    purity = sum(max(sum(1 for k in range(n) if pred[k] == c and identities[k] == i) for i in set(identities))
                 for c in set(pred)) / n
    f = (lambda x, y: 2 * x * y / (x + y) if x + y else 0.0)
    return {"pairwise_precision": p, "pairwise_recall": r, "pairwise_f": f(p, r), "bcubed_precision": bp,
            "bcubed_recall": br, "bcubed_f": f(bp, br), "purity": purity,
            "n_clusters": len({v for v in labels if v >= 0}), "n_identities": len(set(identities)),
            "n_faces_scored": n, "coverage": sum(v >= 0 for v in labels) / n,
            "nmi": normalized_mutual_info_score(identities, pred), "ari": adjusted_rand_score(identities, pred)}


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(-1, 4)), min_size=1, max_size=14))
def test_every_score_is_its_definition(faces):
    identities, labels = [i for i, _ in faces], [v for _, v in faces]
    got = clustering_scores(identities, np.array(labels))
    want = _reference(identities, labels)
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
    assert isinstance(got["coverage"], float) and isinstance(got["nmi"], float)
    json.dumps(got)  # plain numbers: `evaluate --json` prints them


def test_no_faces_scored_gives_every_key_and_zeros():
    got = clustering_scores([], np.zeros(0, np.int64))
    assert set(got) == set(METRIC_KEYS) - {"detection_recall"}  # that one is the truth's, not the labels'
    assert all(got[k] == 0 for k in got)
    with pytest.raises(ValueError, match="^identities and labels differ in length$"):
        clustering_scores(["a"], np.array([0, 1]))


def test_unassigned_faces_become_clusters_of_their_own_above_the_others():
    assert singletons(np.array([2, -1, 0, -1])).tolist() == [2, 3, 0, 4]
    assert singletons(np.array([-1, -1])).tolist() == [0, 1]
    assert singletons(np.array([], np.int64)).tolist() == []
    labels = np.array([0, -1])
    singletons(labels)
    assert labels.tolist() == [0, -1]  # a copy: the caller's labels are kept


@given(st.lists(st.tuples(st.sampled_from(["v.mp4", "w.mp4", "p.jpg"]), st.sampled_from([None, 0, 6]),
                          st.integers(-2, 3)), max_size=16))
def test_same_frame_pairs_counts_every_two_faces_of_a_frame_in_one_cluster(faces):
    sources, frames, labels = ([f[k] for f in faces] for k in range(3))
    want = sum(1 for a, b in itertools.combinations(faces, 2) if a == b and a[2] >= 0)
    assert same_frame_pairs(sources, frames, np.array(labels, np.int64)) == want


def test_the_manifest_reader_names_what_is_wrong_in_one_line(tmp_path):
    with pytest.raises(ManifestError, match=r"manifest.json: no manifest; run `person-cluster run \.\.\. -o "):
        read_manifest(tmp_path)
    for content, missing in (('{"faces": [], "frames": []}', "clusters"), ("[]", "faces, clusters, frames"),
                             ('{"clusters": []}', "faces, frames"), ("7", "faces, clusters, frames")):
        (tmp_path / "manifest.json").write_text(content)
        with pytest.raises(ManifestError, match=rf"unreadable manifest \(no {missing}\)$"):
            read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"{\xff")
    with pytest.raises(ManifestError, match="unreadable manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"faces": [1], "clusters": [], "frames": [], "x": 2}')
    assert read_manifest(str(tmp_path)) == {"faces": [1], "clusters": [], "frames": [], "x": 2}


@given(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=20), st.integers(0, 2**32 - 1))
def test_a_perfect_clustering_scores_one_everywhere(identities, seed):
    """Each identity one cluster, numbered anyhow: every score is 1, and every face is covered."""
    names = sorted(set(identities))
    numbers = np.random.default_rng(seed).permutation(len(names)) + 3
    labels = np.array([numbers[names.index(i)] for i in identities])
    got = clustering_scores(identities, labels)
    for key in ("nmi", "ari", "pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision",
                "bcubed_recall", "bcubed_f", "purity", "coverage"):
        assert got[key] == pytest.approx(1.0), key
    assert got["n_clusters"] == got["n_identities"] == len(names) and got["n_faces_scored"] == len(identities)


def test_same_frame_pairs_is_a_whole_number_in_the_json():
    count = same_frame_pairs(["v.mp4"] * 3, [4, 4, 4], np.array([0, 0, 0]))
    assert json.dumps({"same_frame_pairs": count}) == '{"same_frame_pairs": 3}'


def test_any_negative_label_is_a_face_without_a_cluster():
    assert singletons(np.array([-2, -2])).tolist() == [0, 1]
