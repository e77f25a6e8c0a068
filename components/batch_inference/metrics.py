"""Accuracy and AUC of a classifier's batch predictions against a label column of the input.

A label is a class name (`>50K`) or a class index (`1`, as reviews' 0/1 labels). AUC is the
rank statistic (Mann–Whitney U; ties count one half) of the positive class's probability; with
more than two classes, the mean one-vs-rest AUC over the classes present.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from components.batch_inference.readers import InputError


def check_label_column(name: str, carried: Sequence[str], columns: Sequence[str], is_classifier: bool) -> None:
    if not is_classifier:
        raise InputError("--label-column needs a classifier (this model returns a score, not classes)")
    if name not in carried:
        if name in columns:
            raise InputError(f"column {name!r} is a model feature, not a label")
        known = ", ".join(carried) or "none"
        raise InputError(f"the input has no column {name!r} to compare with (carried columns: {known})")


def class_index(label: str, class_names: Sequence[str]) -> Optional[int]:
    text = label.strip()
    names = [str(c) for c in class_names]
    if text in names:
        return names.index(text)
    try:
        number = float(text)
    except ValueError:
        return None
    if number.is_integer() and 0 <= int(number) < len(names):
        return int(number)
    return None


def auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of scores for the boolean positives (nan if one class is absent)."""
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average ranks over ties.
    i = 0
    while i < len(sorted_scores):
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def from_rows(rows: List[list], label_at: int, probabilities_at: int, class_names: Sequence[str],
              positive_class_id: Optional[int]) -> Dict[str, float]:
    """{labelled, unlabelled, accuracy, auc} of output rows (the label at label_at, the class
    probabilities from probabilities_at on)."""
    labels, probabilities, unlabelled = [], [], 0
    width = len(class_names)
    for row in rows:
        index = class_index(str(row[label_at]), class_names)
        if index is None:
            unlabelled += 1
            continue
        labels.append(index)
        probabilities.append([float(v) for v in row[probabilities_at:probabilities_at + width]])
    result: Dict[str, float] = {"labelled": len(labels), "unlabelled": unlabelled}
    if not labels:
        result.update(accuracy=float("nan"), auc=float("nan"))
        return result
    y = np.asarray(labels)
    p = np.asarray(probabilities)
    result["accuracy"] = float(np.mean(np.argmax(p, axis=1) == y))
    if len(class_names) == 2:
        positive = 1 if positive_class_id is None else int(positive_class_id)
        result["auc"] = auc(p[:, positive], y == positive)
    else:
        per_class = [auc(p[:, k], y == k) for k in range(len(class_names))]
        present = [a for a in per_class if not np.isnan(a)]
        result["auc"] = float(np.mean(present)) if present else float("nan")
    return result
