import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from person_cluster.clustering import DBSCANClustering, HACClustering
from person_cluster.config import PostprocessConfig
from person_cluster.fusion import fuse, fused_distances, l2_normalize
from person_cluster.postprocess import compact, drop_small_clusters, merge_close_clusters, postprocess


def _blobs(n_per, centres, spread, dim=128, seed=0):
    rng = np.random.default_rng(seed)
    c = l2_normalize(rng.normal(size=(centres, dim)))
    x = np.concatenate([c[k] + rng.normal(0, spread, (n_per, dim)) for k in range(centres)])
    return x.astype(np.float32), np.repeat(np.arange(centres), n_per)


def test_fused_distance_is_the_distance_of_weighted_concatenation():
    rng = np.random.default_rng(1)
    face, cloth = rng.normal(size=(6, 128)), rng.normal(size=(6, 96))
    has = np.ones(6, bool)
    d = fused_distances(face, cloth, has, 1.0, 0.5)
    assert np.allclose(d, pdist(fuse(face, cloth, has, 1.0, 0.5)), atol=1e-5)
    assert np.allclose(np.linalg.norm(fuse(face, cloth, has, 1.0, 0.5)[:, :128], axis=1), 1.0, atol=1e-6)


def test_missing_clothing_uses_the_face_distance_alone():
    rng = np.random.default_rng(2)
    face, cloth = rng.normal(size=(4, 128)), rng.normal(size=(4, 96))
    has = np.array([True, True, False, True])
    d = squareform(fused_distances(face, cloth, has, 1.0, 0.5))
    df = squareform(pdist(l2_normalize(face)))
    dc = squareform(pdist(l2_normalize(cloth)))
    assert d[0, 2] == pytest.approx(df[0, 2] * np.sqrt(1 + 0.25), rel=1e-5)
    assert d[0, 1] == pytest.approx(np.sqrt(df[0, 1] ** 2 + 0.25 * dc[0, 1] ** 2), rel=1e-5)
    assert np.allclose(fused_distances(face, cloth, has, 1.0, 0.0), pdist(l2_normalize(face)))


def test_hac_recovers_blobs_and_cuts_strictly_below_threshold():
    x, truth = _blobs(10, 4, 0.02)
    labels = HACClustering(0.4).fit_predict(pdist(l2_normalize(x)), len(x))
    assert len(set(labels)) == 4
    assert all(len(set(labels[truth == k])) == 1 for k in range(4))
    two = np.array([1.0])  # two items exactly 1.0 apart
    assert len(set(HACClustering(1.0).fit_predict(two, 2))) == 2
    assert len(set(HACClustering(1.0001).fit_predict(two, 2))) == 1
    assert list(HACClustering(0.4).fit_predict(np.zeros(0), 1)) == [0]


def test_dbscan_baseline_marks_noise():
    x, _ = _blobs(8, 2, 0.02)
    outlier = l2_normalize(np.random.default_rng(9).normal(size=(1, 128)))
    x = np.concatenate([x, outlier])
    labels = DBSCANClustering(eps=0.5, min_samples=3).fit_predict(pdist(l2_normalize(x)), len(x))
    assert labels[-1] == -1 and len(set(labels[:-1])) == 2


def test_merge_is_transitive_and_order_independent():
    # Cluster centroids on a line 0.2 apart: 0~1 and 1~2 are within 0.25, 0~2 is not. One pass must merge all three.
    e = np.eye(128, dtype=np.float32)
    pts = [np.cos(t) * e[0] + np.sin(t) * e[1] for t in (0.0, 0.2, 0.4)]
    far = e[5]
    face = np.array([pts[0], pts[0], pts[1], pts[1], pts[2], far, far])
    labels = np.array([0, 0, 1, 1, 2, 3, 3])
    merged = merge_close_clusters(labels, face, np.zeros((7, 0)), np.zeros(7, bool), 0.25, None, max_passes=1)
    assert len(set(merged[:5])) == 1 and merged[5] == merged[6] != merged[0]
    perm = np.array([6, 4, 2, 0, 1, 3, 5])
    merged_p = merge_close_clusters(labels[perm], face[perm], np.zeros((7, 0)), np.zeros(7, bool), 0.25, None, 1)
    assert len(set(merged_p[[1, 2, 3, 4, 5]])) == 1


def test_small_clusters_become_unassigned_but_stay():
    labels = np.array([5, 5, 5, 2, 2, 7])
    out = drop_small_clusters(labels, 3)
    assert list(out) == [5, 5, 5, -1, -1, -1]
    assert list(compact(np.array([3, 1, 1, -1, 3, 3]))) == [0, 1, 1, -1, 0, 0]  # largest first
    cfg = PostprocessConfig(merge_face_threshold=None, min_csize=2)
    assert list(postprocess(np.array([9, 9, 4]), np.eye(3, 128), np.zeros((3, 0)), np.zeros(3, bool), cfg)) == [0, 0, -1]
