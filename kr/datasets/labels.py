"""The Kaggle label format: ``image_id,labels`` CSVs with ``U+XXXX x y w h`` groups."""

import csv
import os
import re

import numpy as np

from kr import fileio

#: A class token: ``U+`` and 4 to 6 upper-case hex digits, as in unicode_translation.csv.
UNICODE_PATTERN = re.compile(r'^U\+[0-9A-F]{4,6}$')
#: Tokens per character in train.csv (``U+XXXX x y w h``).
TOKENS_PER_BOX = 5


def describe_place(source: str = None, line: int = None, image_id: str = None) -> str:
    """Where a labels field comes from, for messages: ``"train.csv:7, image_id 'p1'"``."""
    parts = []
    if source is not None:
        parts.append(str(source) if line is None else '{}:{}'.format(source, line))
    if image_id is not None:
        parts.append('image_id {!r}'.format(image_id))
    return ', '.join(parts) if parts else 'labels'


def _is_missing(labels) -> bool:
    """True for ``None`` and NumPy/pandas missing-value scalars (NaN)."""
    if labels is None:
        return True
    try:
        return bool(labels != labels)  # NaN, pd.NA-like floats
    except (TypeError, ValueError):
        return False


def _first_bad_number(tokens, n_tokens: int, where: str):
    """The error for the first number token that :func:`float` rejects, or None."""
    for i, token in enumerate(tokens):
        if i % n_tokens == 0:
            continue
        try:
            float(token)
        except ValueError:
            k = i // n_tokens
            return ValueError('{}: character {} ({!r}): coordinate {!r} is not a number'.format(
                where, k, tokens[k * n_tokens], token))
    return None


def split_label_groups(labels, n_tokens: int, where: str = 'labels'):
    """Split a labels field into groups of ``n_tokens``: a class token, then numbers.

    The one tokenizer of both label formats (train.csv's ``U+XXXX x y w h``, a submission's
    ``U+XXXX x y``). It is as lenient as the competition's public scorer: any run of
    whitespace separates tokens, numbers are whatever :func:`float` reads (``12``, ``12.5``,
    ``1e3``, ``nan``), class tokens are not checked; :func:`parse_labels` adds the checks.

    Args:
        labels: The field; empty, whitespace-only, ``None`` or NaN means no characters.
        n_tokens: Tokens per character.
        where: The field's place for messages (:func:`describe_place`).

    Returns:
        tuple: ``tokens`` (the list of all tokens, ``N x n_tokens``) and ``values``
        (float64 ``(N, n_tokens - 1)``, the numbers).

    Raises:
        ValueError: Not a string, a token count that is not a multiple of ``n_tokens``, or
            a number :func:`float` rejects (the token is named).
    """
    if not isinstance(labels, str):
        if _is_missing(labels):
            labels = ''
        else:
            raise ValueError('{}: labels must be a string, got {!r}'.format(where, labels))
    tokens = labels.split()
    n, rest = divmod(len(tokens), n_tokens)
    if rest:
        # A misplaced or missing token usually shifts a label into a coordinate slot;
        # name that token when there is one, else the incomplete tail.
        error = _first_bad_number(tokens[:n * n_tokens], n_tokens, where)
        detail = (str(error) if error is not None else
                  '{}: incomplete character at the end: {!r}'.format(
                      where, ' '.join(tokens[n * n_tokens:])))
        raise ValueError('{} ({} tokens, not a multiple of {}: expected "{}" groups)'.format(
            detail, len(tokens), n_tokens,
            'U+XXXX ' + ' '.join('xywh'[:n_tokens - 1]) if n_tokens == TOKENS_PER_BOX
            else 'U+XXXX x y'))
    values = np.empty((n, n_tokens - 1), dtype=np.float64)
    try:
        for j in range(1, n_tokens):
            values[:, j - 1] = np.fromiter(map(float, tokens[j::n_tokens]), dtype=np.float64,
                                           count=n)
    except ValueError:
        raise _first_bad_number(tokens, n_tokens, where) from None
    return tokens, values


def parse_labels(labels: str, image_id: str = None, source: str = None, line: int = None):
    """Parse one train.csv ``labels`` field, strictly.

    Args:
        labels: ``"U+XXXX x y w h ..."``; empty or whitespace for a page without labels.
        image_id, source, line: Where the field comes from, for error messages.

    Returns:
        tuple: ``unicodes`` (list of R str) and ``bboxes`` (``(R, 4)`` float32
        ``x_min y_min x_max y_max`` in page pixels).

    Raises:
        ValueError: The token count is not a multiple of 5, a class token is not
            ``U+XXXX``, or a number is not a finite number or a size is negative; the
            message names the file, line, image_id and token.
    """
    where = describe_place(source, line, image_id)
    tokens, values = split_label_groups(labels, TOKENS_PER_BOX, where)
    unicodes = tokens[0::TOKENS_PER_BOX]
    for u in unicodes:
        if not UNICODE_PATTERN.match(u):
            raise ValueError('{}: malformed labels: {!r} is not a unicode token like '
                             "'U+304A'".format(where, u))
    bad = ~np.isfinite(values)
    bad[:, 2:] |= values[:, 2:] < 0
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError('{}: malformed labels: {!r} (the {} of {}) is not a {}number'.format(
            where, tokens[i * TOKENS_PER_BOX + 1 + j], 'xywh'[j], unicodes[i],
            'non-negative ' if j >= 2 else 'finite '))
    bboxes = np.concatenate([values[:, :2], values[:, :2] + values[:, 2:]], axis=1)
    return unicodes, bboxes.astype(np.float32)


def format_labels(unicodes, bboxes) -> str:
    """Inverse of :func:`parse_labels` for integer boxes: ``(R, 4)`` xyxy -> ``"U+XXXX x y w h ..."``."""
    parts = []
    for u, (x1, y1, x2, y2) in zip(unicodes, np.asarray(bboxes, dtype=np.float64)):
        parts.append('{} {} {} {} {}'.format(u, int(round(x1)), int(round(y1)),
                                             int(round(x2 - x1)), int(round(y2 - y1))))
    return ' '.join(parts)


def read_labels_csv(path: str, required_columns=('image_id', 'labels')):
    """Read an ``image_id,labels`` CSV (train.csv, split files, test_labels.csv).

    Values are kept as strings exactly as written (no ``NA`` or number guessing).

    Returns:
        list of ``(image_id, labels, line)`` tuples in file order; ``line`` is the 1-based
        line number in the file.

    Raises:
        FileNotFoundError: ``path`` is missing.
        ValueError: A required column is missing, a row has the wrong number of fields,
            or an image_id appears twice (the message names the lines).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError('labels file not found: {}'.format(path))
    rows = []
    seen = {}
    # utf-8-sig: Excel's "CSV UTF-8" writes a byte-order mark before the header
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError('{}: empty file (expected the header {})'.format(
                path, ','.join(required_columns)))
        header = [h.strip() for h in header]
        missing = [c for c in required_columns if c not in header]
        if missing:
            raise ValueError('{}: missing column(s) {} (found {})'.format(
                path, ', '.join(missing), ', '.join(header)))
        i_id, i_labels = header.index(required_columns[0]), header.index(required_columns[1])
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError('{}:{}: expected {} fields, got {}'.format(
                    path, line, len(header), len(row)))
            image_id = row[i_id].strip()
            if not image_id:
                raise ValueError('{}:{}: empty image_id'.format(path, line))
            if image_id in seen:
                raise ValueError('{}:{}: image_id {} already appears on line {}'.format(
                    path, line, image_id, seen[image_id]))
            seen[image_id] = line
            rows.append((image_id, row[i_labels], line))
    return rows


def write_labels_csv(path: str, rows) -> None:
    """Write ``(image_id, labels)`` rows as an ``image_id,labels`` CSV, atomically."""
    with fileio.atomic_write(path, newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(['image_id', 'labels'])
        for image_id, labels in rows:
            writer.writerow([image_id, labels])
