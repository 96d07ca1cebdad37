"""Unsupervised classification accuracy of a learned discrete code against true labels (the
paper's Table 3: dSprites shape with S = 3, MNIST / FashionMNIST digits with S = 10).

At evaluation, CascadeVAE's code for x is the argmax over k of the per-code likelihood
log p(x | z = mu(x), e_k), with z = mu (no sampling) and no pairwise lambda' term; that is
what :func:`cascadevae.models.discrete.evaluation_codes` returns, and what should be passed here.
"""
import numpy as np
from scipy.optimize import linear_sum_assignment

MAPPINGS = ("auto", "one_to_one", "many_to_one")


def _as_labels(x, name):
    x = np.asarray(x)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {x.dtype}")
    if x.min() < 0:
        raise ValueError(f"{name} must be >= 0, got min {x.min()}")
    return x.astype(np.int64)


def unsupervised_accuracy(labels_true, codes, num_classes=None, *, num_codes=None,
                          mapping="auto"):
    """Accuracy (0-100) of ``codes`` (n,) as a classifier of ``labels_true`` (n,), under the
    best mapping from codes to classes.

    ``mapping``:
      * ``"one_to_one"``: the best one-to-one matching of codes to classes (Hungarian,
        ``scipy.optimize.linear_sum_assignment`` on the S x K contingency table). If S != K the
        matching is rectangular and items of an unmatched code count as wrong.
      * ``"many_to_one"``: each code maps to its majority class (several codes may share a
        class); >= the one-to-one accuracy, and reaches 100 trivially when S >= n.
      * ``"auto"`` (default): one-to-one when S == K, many-to-one otherwise.
    S = ``num_codes`` or max(codes) + 1; K = ``num_classes`` or max(labels_true) + 1.

    Returns ``{"accuracy_unsupervised", "accuracy_mapping", "accuracy_code_to_class"
    (list, -1 for an unmatched code), "accuracy_num_codes", "accuracy_num_classes"}``.
    """
    y = _as_labels(labels_true, "labels_true")
    c = _as_labels(codes, "codes")
    if y.shape != c.shape:
        raise ValueError(f"labels_true and codes must have the same length, got {y.size} and "
                         f"{c.size}")
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping must be one of {MAPPINGS}, got {mapping!r}")
    K = int(num_classes) if num_classes is not None else int(y.max()) + 1
    S = int(num_codes) if num_codes is not None else int(c.max()) + 1
    if y.max() >= K:
        raise ValueError(f"labels_true go up to {y.max()} but num_classes is {K}")
    if c.max() >= S:
        raise ValueError(f"codes go up to {c.max()} but num_codes is {S}")
    table = np.zeros((S, K), dtype=np.int64)
    np.add.at(table, (c, y), 1)
    if mapping == "auto":
        mapping = "one_to_one" if S == K else "many_to_one"
    code_to_class = np.full(S, -1, dtype=np.int64)
    if mapping == "one_to_one":
        rows, cols = linear_sum_assignment(table, maximize=True)
        code_to_class[rows] = cols
        correct = int(table[rows, cols].sum())
    else:
        code_to_class = table.argmax(axis=1)
        correct = int(table.max(axis=1).sum())
    return {"accuracy_unsupervised": 100.0 * correct / y.size, "accuracy_mapping": mapping,
            "accuracy_code_to_class": code_to_class.tolist(), "accuracy_num_codes": S,
            "accuracy_num_classes": K}
