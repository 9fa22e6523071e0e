"""Grouping questions by meaning: agglomerative clustering over their embedding vectors.

Used by ``citebot gaps`` to show the curator which kinds of question the corpus cannot answer.
"""

from __future__ import annotations

import numpy as np

# Cosine distance (1 - cosine similarity) at which two groups stop being merged. Average
# linkage: a group joins another when its members are on average this close to theirs. With
# MiniLM, paraphrases of one question are 0.14–0.20 apart, while different questions that share
# the corpus's topic words ("Taliban", "Russia") are still only 0.30–0.38 apart (tests/test_gaps.py).
DEFAULT_MAX_DISTANCE = 0.27


def group_similar(vectors: np.ndarray, max_distance: float = DEFAULT_MAX_DISTANCE) -> list[list[int]]:
    """Row indices of ``vectors`` in groups of similar rows: average-linkage agglomerative
    clustering on cosine distance, cut at ``max_distance``. The largest group comes first (ties:
    the one whose first row comes first); inside a group, the row nearest the group's centre
    comes first (the most typical example), then the others in their order."""
    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1, norms)
    tree = linkage(unit, method="average", metric="cosine")
    labels = fcluster(tree, t=max_distance, criterion="distance")
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(int(label), []).append(row)
    ordered = []
    for rows in groups.values():
        centre = unit[rows].mean(axis=0)
        typical = rows[int(np.argmax(unit[rows] @ centre))]
        ordered.append([typical, *(r for r in rows if r != typical)])
    ordered.sort(key=lambda rows: (-len(rows), min(rows)))
    return ordered
