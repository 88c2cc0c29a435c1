"""Class index <-> unicode <-> character, from the competition's unicode_translation.csv."""

import csv
import os

import numpy as np

from kr.datasets.labels import UNICODE_PATTERN

#: File name of the class table inside a Kaggle-layout data folder.
UNICODE_TRANSLATION_CSV = 'unicode_translation.csv'


class KuzushijiUnicodeMapping:
    """The classifier's class table: one class per row of ``unicode_translation.csv``.

    The class index is the row order (the real file has 4,787 rows, so the classifier has
    4,787 outputs, though only 4,212 codes occur in train.csv).

    Args:
        path: A data folder holding ``unicode_translation.csv``, or the CSV itself.

    Raises:
        FileNotFoundError: The CSV is missing.
        ValueError: A header, code or duplicate problem; the message names file and line.
    """

    def __init__(self, path: str):
        if os.path.isdir(path):
            path = os.path.join(path, UNICODE_TRANSLATION_CSV)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                '{} not found: download the Kaggle data into its folder or build a synthetic '
                'set with scripts/00_make_synthetic_dataset.py'.format(path))
        self.path = path
        self._unicodes = []
        self._chars = []
        self._index = {}
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the header
        with open(path, newline='', encoding='utf-8-sig') as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if header[:2] != ['Unicode', 'char']:
                raise ValueError('{}:1: expected the header "Unicode,char", got {!r}'.format(
                    path, ','.join(header)))
            for row in reader:
                if not row:
                    continue
                code = row[0].strip()
                if not UNICODE_PATTERN.match(code):
                    raise ValueError('{}:{}: {!r} is not a code like U+304A'.format(
                        path, reader.line_num, code))
                if code in self._index:
                    raise ValueError('{}:{}: {} appears twice'.format(path, reader.line_num, code))
                self._index[code] = len(self._unicodes)
                self._unicodes.append(code)
                self._chars.append(row[1] if len(row) > 1 and row[1] else chr(int(code[2:], 16)))

    def __len__(self) -> int:
        return len(self._unicodes)

    def __contains__(self, unicode: str) -> bool:
        return unicode in self._index

    @property
    def unicodes(self) -> list:
        """All class codes in index order."""
        return list(self._unicodes)

    def unicode_to_index(self, unicode: str) -> int:
        """``'U+304A'`` -> its class index. Raises ValueError naming an unknown code."""
        try:
            return self._index[unicode]
        except KeyError:
            raise ValueError('unknown unicode {!r}: not in {}'.format(unicode, self.path)) from None

    def index_to_unicode(self, index: int) -> str:
        """Class index -> ``'U+XXXX'``. Raises ValueError outside ``[0, len)``."""
        index = int(index)
        if not 0 <= index < len(self._unicodes):
            raise ValueError('class index {} out of range [0, {})'.format(index, len(self)))
        return self._unicodes[index]

    def unicode_to_char(self, unicode: str) -> str:
        """``'U+304A'`` -> ``'お'`` (the ``char`` column)."""
        return self._chars[self.unicode_to_index(unicode)]

    def index_to_char(self, index: int) -> str:
        """Class index -> the character."""
        self.index_to_unicode(index)
        return self._chars[int(index)]

    def encode(self, unicodes) -> np.ndarray:
        """List of codes -> ``(R,)`` int32 class indices."""
        return np.array([self.unicode_to_index(u) for u in unicodes], dtype=np.int32)

    def decode(self, indices) -> list:
        """Class indices -> list of codes."""
        return [self.index_to_unicode(i) for i in indices]
