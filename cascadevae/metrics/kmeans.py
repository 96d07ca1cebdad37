"""The k-means baseline of every unsupervised-accuracy table: k-means on raw pixels (scikit-
learn, k = the number of classes), its clusters matched to the classes one-to-one (Hungarian),
as a learned code is by :func:`.accuracy.unsupervised_accuracy`. A model whose code does not
beat it has learned nothing about the classes that the pixels do not already show."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from .accuracy import unsupervised_accuracy


def kmeans_accuracy(train_images, test_images, test_labels, num_clusters: int, *,
                    seeds: Sequence[int] = (0, 1, 2), n_init: int = 10) -> Dict[str, object]:
    """k-means fitted on ``train_images`` (n, ...) pixels, its clusters of ``test_images``
    scored against ``test_labels`` (one-to-one matching). One fit per seed (each with
    ``n_init`` restarts, the lowest inertia kept); returns the accuracies (0-100) per seed,
    their mean and sample std (``kmeans_*`` keys)."""
    try:
        from sklearn.cluster import KMeans
    except ImportError as exc:  # an optional dependency
        raise RuntimeError("the k-means baseline needs scikit-learn: pip install scikit-learn") from exc
    train = np.asarray(train_images, dtype=np.float32).reshape(len(train_images), -1)
    test = np.asarray(test_images, dtype=np.float32).reshape(len(test_images), -1)
    values = []
    for seed in seeds:
        km = KMeans(n_clusters=int(num_clusters), n_init=int(n_init), random_state=int(seed))
        km.fit(train)
        codes = km.predict(test).astype(np.int64)
        values.append(unsupervised_accuracy(test_labels, codes, num_classes=num_clusters,
                                            num_codes=num_clusters,
                                            mapping="one_to_one")["accuracy_unsupervised"])
    values = np.asarray(values, dtype=np.float64)
    return {"kmeans_accuracy": values.tolist(), "kmeans_mean": float(values.mean()),
            "kmeans_std": float(values.std(ddof=1)) if len(values) > 1 else None,
            "kmeans_best": float(values.max()), "kmeans_seeds": [int(s) for s in seeds],
            "kmeans_n_init": int(n_init), "kmeans_num_clusters": int(num_clusters),
            "kmeans_num_train": int(len(train)), "kmeans_num_test": int(len(test))}
