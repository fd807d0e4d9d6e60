import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from person_cluster.clustering import (
    ChineseWhispersClustering,
    DBSCANClustering,
    DenseDistances,
    FINCHClustering,
    HACClustering,
    RankOrderClustering,
    fused_distance_source,
)
from person_cluster.clustering.distances import condensed_index, condensed_pairs
from person_cluster.config import Config, PostprocessConfig
from person_cluster.evaluation import clustering_scores
from person_cluster.fusion import Fusion, fuse, fused_distances, l2_normalize
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


def test_a_folder_without_any_clothing_is_on_the_scale_of_one_where_some_photo_has_it():
    """Face crops: whether one photo of the folder shows clothing or none does, two photos without clothing are
    the same distance apart, by every way Fusion measures (all pairs, chosen pairs, cross, vectors)."""
    rng = np.random.default_rng(3)
    face = rng.normal(size=(5, 128))
    one = Fusion(face, rng.normal(size=(5, 96)), np.array([True, False, False, False, False]), 1.0, 0.5)
    none = Fusion(face, np.zeros((5, 0)), np.zeros(5, bool), 1.0, 0.5)
    i, j = np.array([1, 2, 3]), np.array([2, 3, 4])
    some = squareform(one.condensed())[i, j]
    d_face = np.linalg.norm(l2_normalize(face)[i] - l2_normalize(face)[j], axis=1)
    assert some == pytest.approx(d_face * np.hypot(1, 0.5))
    assert squareform(none.condensed())[i, j] == pytest.approx(some)
    assert none.pairs(i, j) == pytest.approx(some)
    assert none.cross(np.array([1]), np.array([2]))[0, 0] == pytest.approx(some[0])
    assert np.linalg.norm(none.vectors()[1] - none.vectors()[2]) == pytest.approx(some[0], rel=1e-5)
    assert Fusion(face, np.zeros((5, 0)), np.zeros(5, bool), 1.0, 0.0).pairs(i, j) == pytest.approx(
        some / np.hypot(1, 0.5))  # clothing that weighs nothing: the face distance itself


def test_clothing_switched_off_leaves_the_threshold_on_the_face_distance():
    """cloth.enabled: false weighs clothing 0, so the threshold is a face distance, as the user asked."""
    from person_cluster.api import item_features
    from person_cluster.records import FaceTable
    from person_cluster.tracking import Tracks

    rng = np.random.default_rng(4)
    n = 3
    table = FaceTable(np.arange(n), ["a.jpg", "b.jpg", "c.jpg"], [None] * n, [None] * n,
                      np.tile([0, 0, 60, 60], (n, 1)), rng.normal(size=(n, 128)).astype(np.float32),
                      np.zeros((n, 0), np.float32), np.zeros(n, bool))
    d_face = pdist(l2_normalize(table.face))
    on = item_features(table, Tracks.singletons(n), Config())
    off = item_features(table, Tracks.singletons(n), Config().with_overrides({"cloth.enabled": False}))
    assert off.fusion.condensed() == pytest.approx(d_face, rel=1e-5)
    assert on.fusion.condensed() == pytest.approx(d_face * np.hypot(1, 0.5), rel=1e-5)


def test_hac_recovers_blobs_and_cuts_strictly_below_threshold():
    x, truth = _blobs(10, 4, 0.02)
    labels = HACClustering(0.4).fit_predict(DenseDistances(pdist(l2_normalize(x)), len(x)))
    assert len(set(labels)) == 4
    assert all(len(set(labels[truth == k])) == 1 for k in range(4))
    two = np.array([1.0])  # two items exactly 1.0 apart
    assert len(set(HACClustering(1.0).fit_predict(DenseDistances(two, 2)))) == 2
    assert len(set(HACClustering(1.0001).fit_predict(DenseDistances(two, 2)))) == 1
    assert list(HACClustering(0.4).fit_predict(DenseDistances(np.zeros(0), 1))) == [0]


def test_dbscan_baseline_marks_noise():
    x, _ = _blobs(8, 2, 0.02)
    outlier = l2_normalize(np.random.default_rng(9).normal(size=(1, 128)))
    x = np.concatenate([x, outlier])
    labels = DBSCANClustering(eps=0.5, min_samples=3).fit_predict(DenseDistances(pdist(l2_normalize(x)), len(x)))
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


def test_condensed_index_round_trip_and_neighbours():
    n = 37
    k = np.arange(n * (n - 1) // 2)
    i, j = condensed_pairs(k, n)
    assert (i < j).all() and (condensed_index(i, j, n) == k).all()
    x = np.random.default_rng(3).normal(size=(n, 5))
    d = DenseDistances(pdist(x), n)
    idx, dist = d.neighbours(4)
    full = squareform(pdist(x)) + np.diag(np.full(n, np.inf))
    assert (idx == np.argsort(full, axis=1)[:, :4]).all()
    assert np.allclose(dist, np.sort(full, axis=1)[:, :4])


def _people(n_id=60, per=12, seed=0):
    """Faces and clothing around identity centres, some faces without clothing: a small 'video'."""
    rng = np.random.default_rng(seed)
    cf, cc = rng.normal(size=(n_id, 128)), rng.normal(size=(n_id, 96))
    truth = np.repeat(np.arange(n_id), per)
    face = cf[truth] + 0.5 * rng.normal(size=(len(truth), 128))
    cloth = cc[truth] + 0.5 * rng.normal(size=(len(truth), 96))
    return face, cloth, rng.random(len(truth)) > 0.15, truth


@pytest.mark.parametrize(
    "clusterer",
    [HACClustering(0.8), DBSCANClustering(0.8, 3), ChineseWhispersClustering(0.8), RankOrderClustering(20, 14.0, 1.0),
     FINCHClustering(0.8)],
    ids=["hac", "dbscan", "chinese_whispers", "rank_order", "finch"],
)
def test_every_algorithm_finds_people_and_gives_the_same_result_on_the_knn_graph(clusterer):
    face, cloth, has, truth = _people()
    dense = fused_distance_source(Fusion(face, cloth, has, 1.0, 0.5), dense_max=10_000)
    graph = fused_distance_source(Fusion(face, cloth, has, 1.0, 0.5), dense_max=100, knn_neighbors=32)
    a, b = clusterer.fit_predict(dense), clusterer.fit_predict(graph)
    assert clustering_scores(truth.astype(str), a)["bcubed_f"] > 0.95
    assert clustering_scores(a.astype(str), b)["ari"] == pytest.approx(1.0)  # the same partition


def test_finch_finds_blobs_deterministically_and_keeps_far_items_apart():
    x, truth = _blobs(15, 6, 0.03, seed=3)
    lone = l2_normalize(np.random.default_rng(9).normal(size=(1, 128)))  # far from every blob
    x = np.concatenate([x, lone]).astype(np.float32)
    d = DenseDistances(pdist(x), len(x))
    labels = FINCHClustering(0.8).fit_predict(d)
    assert clustering_scores(truth.astype(str), labels[:-1])["ari"] == 1.0
    assert labels.min() == 0 and (labels == labels[-1]).sum() == 1  # the far item is a cluster of its own
    assert np.array_equal(labels, FINCHClustering(0.8).fit_predict(DenseDistances(pdist(x), len(x))))
    # The paper's first partition links every item to its nearest, however far: the lone item joins a blob (the
    # partition is finer than the blobs, but no cluster mixes two).
    first = FINCHClustering(0.8, level="first").fit_predict(d)
    assert (first == first[-1]).sum() > 1
    assert clustering_scores(truth.astype(str), first[:-1])["purity"] == 1.0
    # A pair set far (a cannot-link) is never linked, though its items are each other's nearest.
    pair = DenseDistances(np.array([9.0, 0.5, 0.6]), 3)  # d(0,1) = 9 (forbidden), d(0,2) = 0.5, d(1,2) = 0.6
    assert FINCHClustering(0.55).fit_predict(pair).tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="level must be one of"):
        FINCHClustering(0.5, level="second")
    with pytest.raises(ValueError, match="distance_threshold"):
        FINCHClustering(0)


def test_graph_hac_is_exact_per_component():
    # Two tight groups far apart, plus a pair at exactly the threshold: components are cut separately.
    face, cloth, has, _ = _people(n_id=30, per=8, seed=4)
    g = fused_distance_source(Fusion(face, cloth, has, 1.0, 0.0), dense_max=50, knn_neighbors=16)
    d = fused_distance_source(Fusion(face, cloth, has, 1.0, 0.0), dense_max=10_000)
    for t in (0.6, 0.9, 1.2):
        assert clustering_scores(HACClustering(t).fit_predict(d).astype(str), HACClustering(t).fit_predict(g))["ari"] == 1.0


def test_every_registered_algorithm_is_built_from_the_config_and_an_unknown_one_is_refused():
    from person_cluster import clustering
    from person_cluster.clustering import CLUSTERERS, Clusterer, make_clusterer
    from person_cluster.config import ConfigError

    for name in CLUSTERERS:
        algo = make_clusterer(Config().with_overrides({"clustering.algorithm": name}).clustering)
        assert isinstance(algo, Clusterer)
        assert algo.honours_constraints == (name != "dbscan")
    assert all(getattr(clustering, name) for name in clustering.__all__)
    with pytest.raises(ConfigError, match="clustering.algorithm: must be one of chinese_whispers"):
        Config().with_overrides({"clustering.algorithm": "kmeans"})
