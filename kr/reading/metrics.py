"""Measures of reading order and of text (SPEC section 12).

* successor-link accuracy: the share of characters whose predicted next character is the
  true next one (Lamb et al. 2021, arXiv 2106.06786, report 98.65 % with a learned model);
* a page is entirely right when all of its links are;
* the character error rate, ``CER = edit distance(predicted, reference) / len(reference)``;
* the order-free character F1 (multisets of characters), which isolates recognition from
  ordering: ``CER`` against ``1 - F1`` shows what the order costs.
"""

import collections

import numpy as np


def successor_links(predicted_order, true_order) -> tuple:
    """Count the true successor links that the predicted order keeps.

    Args:
        predicted_order: ``(R,)`` int: the page's character indices in predicted order.
        true_order: ``(R,)`` int: the same indices in true reading order.

    Returns:
        tuple ``(correct, total)`` of ints; ``total = R - 1`` (0 for at most one character).

    Raises:
        ValueError: The two orders are not permutations of the same indices.
    """
    predicted = [int(i) for i in np.asarray(predicted_order).reshape(-1)]
    true = [int(i) for i in np.asarray(true_order).reshape(-1)]
    if sorted(predicted) != sorted(true) or len(set(true)) != len(true):
        raise ValueError('the predicted order ({} indices) is not a permutation of the true '
                         'order ({} indices)'.format(len(predicted), len(true)))
    following = {a: b for a, b in zip(predicted, predicted[1:])}
    correct = sum(1 for a, b in zip(true, true[1:]) if following.get(a) == b)
    return correct, max(0, len(true) - 1)


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (unit insertion, deletion, substitution)."""
    a, b = list(a), list(b)
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def text_characters(text: str) -> str:
    """``text`` without white space: line breaks mark columns, they are not characters."""
    return ''.join(text.split())


def character_error_rate(predicted: str, reference: str) -> tuple:
    """``(edits, reference length)`` between two texts, white space left out.

    The rate is ``edits / length``; summing both over pages gives the corpus CER.
    """
    p, r = text_characters(predicted), text_characters(reference)
    return edit_distance(p, r), len(r)


def character_counts(predicted: str, reference: str) -> tuple:
    """``(true positives, predicted, reference)`` character counts, ignoring order.

    F1 is ``2 tp / (predicted + reference)`` (white space left out).
    """
    p = collections.Counter(text_characters(predicted))
    r = collections.Counter(text_characters(reference))
    return sum((p & r).values()), sum(p.values()), sum(r.values())
