"""Clustering what an ``add`` brought, against the people OUT already has, at the cost of what changed.

The people already found stay as they are (their faces keep their person numbers, and the user's decisions hold).
The added faces are first clustered among themselves (tracks, cannot-links and the quality gate as in a full
clustering), together with the unassigned faces already in OUT that lie near them: a face seen once before may now
find company. Then each new cluster joins the existing person it is clearly nearest to: the mean, over its items,
of the distance to that person's nearest item is below ``clustering.distance_threshold``, and every other person is
at least ``library.margin`` further, and it holds no face of a frame where that person is already seen. Otherwise it
is a new person. A wrong name is worse than a missing one, so a new cluster that is about as near two people joins
neither. Then the scene merge of a full clustering (:func:`~..postprocess.merge_within_scenes`, in each video's
learnt metric: :mod:`..metric`) runs over the new clusters: a piece of a person that matched no one joins, within
its scene, the piece that did (and takes its person), or other unmatched pieces; two people are never joined. Two
groups that share a frame are two people: of those that matched one person, only the nearest match keeps them
(:func:`_one_per_frame`). A person mostly wears
one set of clothes within a scene, so a group that matched no one has a second look in which the people already
placed elsewhere in its scene are no rivals (:func:`_match_the_rest`). The scene's clothing breaks a tie; it never
takes a clear match away, since it is not always one set (a coat held over a blouse in one shot).

Costs O(added items x items) distances, never all pairs of the library: adding a 33-s clip to an OUT of 100,000
faces computes a few million distances instead of five billion.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..constraints import FAR, CannotLinks
from ..fusion import Fusion
from ..records import FaceTable
from ..tracking import Tracks, link_tracks
from . import make_clusterer
from .distances import DenseDistances
from .gate import QualityGate

log = logging.getLogger(__name__)


@dataclass
class AddReport:
    new_faces: int = 0
    joined: dict[int, int] = dataclasses.field(default_factory=dict)  # person number -> faces it gained
    new_people: int = 0
    regrouped: int = 0  # faces that were unassigned before and now belong to someone


def cluster_added(table: FaceTable, config: Config, fixed: np.ndarray, added: np.ndarray, next_free: int,
                  margin: float, names: dict[int, str] | None = None) -> tuple[np.ndarray, Tracks, int, AddReport]:
    """Labels for every face of ``table``: ``fixed`` (person numbers, -1 unassigned, -2 not a face) for the faces
    OUT had, which stay, except unassigned ones that join a cluster; the ``added`` faces' clusters take an existing
    number or a new one from ``next_free`` (one smaller than ``postprocess.min_csize`` stays unassigned).
    ``names``: person number -> the name the user gave; people who share a name are one person to the match (no
    rivals of each other), and a cluster joins the nearest of them. Returns the labels, the tracks, the next number
    never used, and what happened."""
    from ..api import face_view, item_features

    table = face_view(table, config)
    fixed = np.asarray(fixed, np.int64)
    added = np.asarray(added, bool)
    tracks = link_tracks(table, config.tracking)
    # Items: tracks, cut where a decision split them (the faces of one item share one fixed label).
    items = tracks.cut_by(np.where(added, -3, fixed))
    features = item_features(table, items, config)
    fusion, good = features.fusion, features.good
    first = np.array([m[0] for m in items.members()], np.int64)
    item_label = np.where(added[first], -3, fixed[first])
    new = np.flatnonzero(item_label == -3)
    report = AddReport(new_faces=int(added.sum()))
    labels = fixed.copy()
    if len(new) == 0:
        return labels, tracks, next_free, report
    cc = config.clustering
    # The unassigned items near an added one join the clustering of the added ones.
    lonely = np.flatnonzero(item_label == -1)
    near = lonely[_nearest(fusion, lonely, new) < cc.distance_threshold] if len(lonely) else lonely
    pool = np.concatenate([new, near])
    sub = _subset(fusion, pool)
    same_frame = CannotLinks.same_frame(table)
    cannot = same_frame.map(items.ids)
    a, b = cannot.among(pool)
    links = CannotLinks(a, b, len(pool))
    distances = DenseDistances(sub.condensed(), len(pool))
    if len(links):
        distances.forbid(links, FAR)
    gate = QualityGate(make_clusterer(cc), config.quality.assign_distance, config.quality.assign_margin, links)
    pool_labels = gate.fit_predict(distances, good[pool])  # all good with the gate off
    if len(links):
        pool_labels = links.split(pool_labels, distances.among)
    people = np.flatnonzero(item_label >= 0)
    linked = np.concatenate([cannot.i, cannot.j]), np.concatenate([cannot.j, cannot.i])
    matcher = _Matcher(fusion, people[good[people]] if good[people].any() else people, item_label, linked,
                       cc.distance_threshold, margin, _identities(names or {}))
    clusters = np.unique(pool_labels)
    pool_cluster = np.searchsorted(clusters, pool_labels)  # each pool item's cluster, 0..
    matched = np.full(len(clusters), -1, np.int64)  # each cluster's person, -1: no one clearly
    score = np.full(len(clusters), np.inf)  # and its distance to them
    for n in range(len(clusters)):
        members = pool[pool_cluster == n]
        match = matcher.match(members)
        if match is not None:
            matched[n], score[n] = match
            matcher.place(members, match[0])
    group = np.arange(len(clusters))
    if config.postprocess.scene_merge:
        scene = features.face_scenes(items)
        group = _merge_within_scenes(table, items, first, scene, pool, pool_cluster, matched, same_frame,
                                     config, matcher.identity)
        # Each cluster's scenes (photos, -1, have none), for the second look.
        scenes: list[set[int]] = [set() for _ in clusters]
        for n, s in zip(pool_cluster.tolist(), scene[first[pool]].tolist()):
            if s >= 0:
                scenes[n].add(s)
        matched = _one_per_frame(matcher, group, matched, score, pool, pool_cluster)
        matched = _match_the_rest(matcher, group, matched, pool, pool_cluster, scenes)
    for g in np.unique(group):
        members = pool[np.isin(pool_labels, clusters[group == g])]
        # One identity per group at most: the person of its nearest match (two people who share a name may be in it).
        mine = (group == g) & (matched >= 0)
        person = int(matched[mine][np.argmin(score[mine])]) if mine.any() else -1
        faces = np.isin(items.ids, members)
        if person < 0 and faces.sum() < config.postprocess.min_csize:
            labels[faces] = -1
            continue
        if person < 0:
            person, next_free = next_free, next_free + 1
            report.new_people += 1
        else:
            report.joined[person] = report.joined.get(person, 0) + int(faces.sum())
        report.regrouped += int((faces & ~added).sum())
        labels[faces] = person
    log.info("add: %d new faces; %d joined %d people already in OUT, %d new people; %d faces unassigned before now "
             "belong to someone", report.new_faces, sum(report.joined.values()), len(report.joined),
             report.new_people, report.regrouped)
    return labels, tracks, next_free, report


def _merge_within_scenes(table: FaceTable, items: Tracks, first: np.ndarray, scene: np.ndarray, pool: np.ndarray,
                         pool_cluster: np.ndarray, matched: np.ndarray, cannot: CannotLinks,
                         config: Config, identity: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The group of each of the pool's clusters after the scene merge of a full clustering
    (:func:`~..postprocess.merge_within_scenes`), so that a person's pieces in the added clip that the match left
    unnamed join the piece that was named. Clusters ``matched`` to two people never join; two matched to one
    person join only as any two clusters do (their clothes in the scene agree), so that a piece of someone else
    that matched that person is not joined to them, and loses them where it shares a frame with the nearer match
    (:func:`_one_per_frame`). ``pool_cluster``: each pool item's cluster (0..);
    ``first``: each item's first face; ``scene``: each face's (ItemFeatures.face_scenes)."""
    from ..api import scene_merge
    from ..postprocess import merge_scenes

    item_labels = np.full(items.count, -1, np.int64)
    item_labels[pool] = pool_cluster
    face_labels = item_labels[items.ids]
    one = first[pool][np.unique(pool_cluster, return_index=True)[1]]  # each cluster's first face
    # That face of each cluster that matched someone, cannot-linked with that of each cluster that matched another.
    i, j = np.triu_indices(len(one), 1)
    keep = (matched[i] >= 0) & (matched[j] >= 0) & (identity(matched[i]) != identity(matched[j]))
    i, j = i[keep], j[keep]
    videos = {table.sources[k] for k in np.flatnonzero(face_labels >= 0).tolist()}
    merge = scene_merge(table, items.ids, scene, config, cannot, videos)
    cannot = CannotLinks(np.concatenate([cannot.i, one[i]]), np.concatenate([cannot.j, one[j]]), len(table))
    merged = merge_scenes(face_labels, table.face, table.cloth, table.has_cloth, merge, cannot, config.postprocess)
    return merged[one]


@dataclass
class _Matcher:
    """Matches clusters of added items with OUT's people (:func:`_clear_match`), and keeps two faces of one frame
    out of one person: a cluster never joins a person who holds a face of one of its frames, nor one that an
    earlier cluster of such a frame joined (:meth:`place`)."""

    fusion: Fusion
    people: np.ndarray  # the items OUT's people are compared by
    item_label: np.ndarray  # each item's person (>= 0) in OUT
    linked: tuple[np.ndarray, np.ndarray]  # cannot-linked items, both ways
    threshold: float
    margin: float
    same: dict[int, int]  # named person -> the smallest number of the people who share their name (_identities)

    def __post_init__(self) -> None:
        self.placed = self.item_label.copy()  # each item's person so far

    def identity(self, persons: np.ndarray) -> np.ndarray:
        """Each person's identity: the person, or the first of the people who share their name."""
        persons = np.asarray(persons, np.int64)
        return np.array([self.same.get(p, p) for p in persons.ravel().tolist()], np.int64).reshape(persons.shape)

    def match(self, members: np.ndarray, exclude: set[int] | frozenset[int] = frozenset()) -> tuple[int, float] | None:
        """The person ``members`` clearly is, leaving out the identities ``exclude``, and its distance to them."""
        people = self.people
        if exclude:
            people = people[~np.isin(self.identity(self.item_label[people]), list(exclude))]
        match = _clear_match(self.fusion, members, people, self.item_label, self.threshold, self.margin,
                             self.identity)
        if match is not None and match[0] in self.placed[self.partners(members)]:
            return None  # nearest to someone it cannot be: a new person rather than a wrong one
        return match

    def place(self, members: np.ndarray, person: int) -> None:
        self.placed[members] = person

    def partners(self, members: np.ndarray) -> np.ndarray:
        """The items cannot-linked with any of ``members`` (a face of one of their frames)."""
        return self.linked[1][np.isin(self.linked[0], members)]


def _group_scenes(group: np.ndarray, scenes: list[set[int]], g: int) -> set[int]:
    """The scenes of group ``g``: those of its clusters (``scenes``: each cluster's)."""
    return set().union(*(scenes[n] for n in np.flatnonzero(group == g)))


def _one_per_frame(matcher: _Matcher, group: np.ndarray, matched: np.ndarray, score: np.ndarray, pool: np.ndarray,
                   pool_cluster: np.ndarray) -> np.ndarray:
    """``matched`` where, of the groups holding one person (identity), a group with a face of a frame in which a
    nearer-matched group of that person is seen loses the person: one person is never seen twice in a frame, and
    the nearer match is the likelier. ``pool_cluster``: each pool item's cluster."""
    matched = matched.copy()
    who = np.where(matched >= 0, matcher.identity(np.maximum(matched, 0)), -1)
    item_group = group[pool_cluster]  # each pool item's group
    for person in np.unique(who[who >= 0]):
        groups = np.unique(group[who == person])
        if len(groups) < 2:
            continue
        best = [score[(group == g) & (who == person)].min() for g in groups]
        kept: set[int] = set()  # the items of the groups that keep the person
        for g in groups[np.argsort(best, kind="stable")]:
            items = pool[item_group == g]
            if kept.intersection(matcher.partners(items).tolist()):
                matched[(group == g) & (who == person)] = -1
            else:
                kept.update(items.tolist())
    return matched


def _match_the_rest(matcher: _Matcher, group: np.ndarray, matched: np.ndarray, pool: np.ndarray,
                    pool_cluster: np.ndarray, scenes: list[set[int]]) -> np.ndarray:
    """``matched`` after a second look at the groups that matched no one, largest first: each is matched as one
    (all its items), and a person who is already another group of one of its scenes is no rival: within a scene a
    person mostly wears one set of clothes, and the merge left the two apart. So a group about as near two people,
    of whom one is elsewhere in the scene, is the other. Photos (no scene) have no second look. ``scenes``: each cluster's."""
    matched = matched.copy()
    # The groups are numbered by their faces, most first (merge_within_scenes numbers them so).
    left = [g for g in np.unique(group) if matched[group == g].max() < 0]
    for g in left:
        clusters = np.flatnonzero(group == g)
        inside = np.isin(pool_cluster, clusters)
        seen = _group_scenes(group, scenes, g)
        taken = {int(matcher.identity(matched[n])) for n in np.flatnonzero(matched >= 0) if seen & scenes[n]}
        if not taken:
            continue  # the first look saw the same rivals
        match = matcher.match(pool[inside], exclude=taken)
        if match is not None:  # a later group of one of these frames is in the scene: the person is taken there
            matched[clusters] = match[0]
    return matched


def _subset(fusion: Fusion, idx: np.ndarray) -> Fusion:
    """The same fusion restricted to the items ``idx``."""
    pick = (lambda x: None if x is None else x[idx])
    return dataclasses.replace(fusion, face=fusion.face[idx], cloth=fusion.cloth[idx],
                               has_cloth=fusion.has_cloth[idx], group=pick(fusion.group), start=pick(fusion.start),
                               end=pick(fusion.end))


def _nearest(fusion: Fusion, rows: np.ndarray, cols: np.ndarray, block: int = 256) -> np.ndarray:
    """Each of ``rows``' (at least one) distance to its nearest item in ``cols``, in blocks of rows."""
    return np.concatenate([fusion.cross(rows[s:s + block], cols).min(axis=1) for s in range(0, len(rows), block)])


def _clear_match(fusion: Fusion, members: np.ndarray, people: np.ndarray, item_label: np.ndarray,
                 threshold: float, margin: float,
                 identity: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[int, float] | None:
    """The person (number) the cluster ``members`` is clearly, and its distance to them: see the module
    docstring; None if no one. ``identity``: each person's identity (people who share a name are one), for the
    margin: the rivals are the people of other identities."""
    if len(people) == 0:
        return None
    labels = item_label[people]
    order = np.argsort(labels, kind="stable")
    persons, starts = np.unique(labels[order], return_index=True)
    d = fusion.cross(members, people[order])
    # Per person: the mean over the cluster's items of the distance to the person's nearest item.
    score = np.minimum.reduceat(d, starts, axis=1).mean(axis=0)
    best = int(np.argmin(score))  # the first of equals: the smallest number
    who = persons if identity is None else identity(persons)
    rivals = score[who != who[best]]
    d1, d2 = score[best], (rivals.min() if len(rivals) else np.inf)
    if d1 < threshold and d2 - d1 >= margin:
        return int(persons[best]), float(d1)
    return None


def _identities(names: dict[int, str]) -> dict[int, int]:
    """Named person -> the smallest number among the people who share their name (one number for each name)."""
    first: dict[str, int] = {}
    for person in sorted(names):
        first.setdefault(names[person], person)
    return {p: first[n] for p, n in names.items()}
