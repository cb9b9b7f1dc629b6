"""Clustering of texture histograms: Jensen-Shannon distances, k-medoids and the Calinski-Harabasz index.

What it is for: choosing a few representative textures among many (the
references of a REMAC library, :mod:`pymars.remac.build`; the texture
dictionary of MarsQE, :mod:`pymars.enhance.dictionary`). The distances come
from the C++ matcher (fixed point, the same on every CPU); the clustering is
deterministic (farthest-point start, alternating updates), so a rebuilt
library or dictionary is the same one.

What it must not touch: any model or codec state (histograms in, indices out).

Example:
    >>> h = np.array([[9, 1], [8, 2], [1, 9], [2, 8]], np.uint32)
    >>> labels, medoids = k_medoids(js_matrix(h), 2)
    >>> labels.tolist()
    [0, 0, 1, 1]
"""
from __future__ import annotations

import numpy as np

from pymars.texture import js_divergence


def js_matrix(histograms: np.ndarray) -> np.ndarray:
    """Symmetric matrix of fixed-point Jensen-Shannon divergences (Q16 bits, int64) from the C++ matcher.

    Example:
        >>> js_matrix(np.array([[9, 1], [9, 1], [1, 9]], np.uint32))[0].tolist()
        [0, 0, 34797]
    """
    n = len(histograms)
    d = np.zeros((n, n), np.int64)
    for i in range(n):
        for j in range(i + 1, n):
            d[i, j] = d[j, i] = js_divergence(histograms[i], histograms[j])
    return d


def k_medoids(dist: np.ndarray, k: int, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(labels, medoid indices) of a deterministic alternating k-medoids on a distance matrix."""
    n = len(dist)
    k = min(k, n)
    # Farthest-point initialisation from the most central candidate.
    medoids = [int(np.argmin(dist.sum(1)))]
    while len(medoids) < k:
        medoids.append(int(np.argmax(dist[:, medoids].min(1))))
    medoids = np.array(medoids)
    for _ in range(iterations):
        labels = np.argmin(dist[:, medoids], axis=1)
        new = medoids.copy()
        for c in range(k):
            members = np.flatnonzero(labels == c)
            if len(members):
                new[c] = members[np.argmin(dist[np.ix_(members, members)].sum(1))]
        if np.array_equal(new, medoids):
            break
        medoids = new
    return np.argmin(dist[:, medoids], axis=1), medoids


def calinski_harabasz(points: np.ndarray, labels: np.ndarray) -> float:
    """Calinski-Harabasz index (between- over within-cluster dispersion, scaled by degrees of freedom).

    Example:
        >>> pts = np.array([[0.0], [0.1], [5.0], [5.1]])
        >>> round(calinski_harabasz(pts, np.array([0, 0, 1, 1])))
        5000
    """
    n, k = len(points), len(np.unique(labels))
    if k < 2 or k >= n:
        return 0.0
    mean = points.mean(0)
    between = within = 0.0
    for c in np.unique(labels):
        p = points[labels == c]
        centre = p.mean(0)
        between += len(p) * float(((centre - mean) ** 2).sum())
        within += float(((p - centre) ** 2).sum())
    return between / (k - 1) / max(within / (n - k), 1e-300)
