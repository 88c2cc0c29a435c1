"""The character vocabulary of the synthetic dataset and its long-tailed frequencies.

The real training set is dominated by a dozen hiragana (の に し て は を と か な る り も ...),
followed by common kanji and rarer kana; 4,212 of the 4,787 classes of
``unicode_translation.csv`` occur at all. :func:`make_vocabulary` mimics that with a
frequency-ranked list of real characters and Zipf-like weights, and leaves the rarest
ranks out of the text entirely so that the class table, like the real one, has rows that
never occur.
"""

import dataclasses

import numpy as np

#: Characters ranked by how common they should be, most common first. The head follows the
#: real training set's most frequent classes (hiragana, then 一 人 御 事 日 大 見 候 申 ...);
#: the rest are kanji and kana typical of Edo-period books, in a plausible order.
RANKED_CHARACTERS = (
    'のにしてはをとかなるりもくたられ一ふへ人つい御事す日ま大こ見そさ候けき申出あ子み也有ひ之所ぬ上め何せ中う云'
    'ゆ年おほ十ろ心わ下ちよ物やえ月ね二三方ん時又むゑ此其是者天国家間前内様殿行来入成ゐでどがばじぞ衛兵門右左女'
    '皆我今分手気身道山水花名小長色歌思言生本神王世主作風目文字後夜東西春秋雨雪京都寺宮院宿屋町村里川海島木草竹'
    '松梅桜鳥馬犬魚金銀銭米酒茶飯衣帯口耳足頭顔声死命恋夢給奉存致仕置儀故付得共被遣参哉乎兮矣焉而於以為與'
    '五六七八九百千万父母兄弟君臣民士武弓矢刀舟車船城橋寄光明暮朝昔古新高低深浅遠近広白黒赤青紅紫'
)

#: Number of classes in the table by default: big enough to look like a real long tail,
#: small enough that a classifier trained on a CPU for minutes reaches high accuracy.
DEFAULT_N_CLASSES = 200

#: Share of the table that never occurs in the text (real data: 575 of 4,787 rows, 12 %).
UNUSED_CLASS_FRACTION = 0.12

#: Zipf exponent and rank offset of the class frequencies: weight(r) = 1 / (r + offset) ** s.
#: With 176 used classes this gives the top class about 8 % of all characters and a
#: top/median ratio of about 30, close to the head of the real distribution while every
#: used class still gets dozens of samples in a 200-page set.
ZIPF_EXPONENT = 1.0
ZIPF_OFFSET = 2.0


def unicode_of(char: str) -> str:
    """Kaggle's class name of a character, e.g. ``'の'`` -> ``'U+306E'``."""
    return 'U+{:04X}'.format(ord(char))


def is_kana(char: str) -> bool:
    """True for hiragana (U+3040-U+309F), which annotation columns are written in."""
    return 0x3040 <= ord(char) <= 0x309F


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Characters of the synthetic dataset with their sampling weights.

    Attributes:
        chars: The ``C`` characters, most frequent first.
        weights: ``(C,)`` float64 probabilities summing to 1; zero for the classes that are
            in the table but never written.
    """
    chars: tuple
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def used_chars(self) -> tuple:
        """The characters with a non-zero weight, most frequent first."""
        return tuple(c for c, w in zip(self.chars, self.weights) if w > 0)

    @property
    def kana_weights(self) -> np.ndarray:
        """``(C,)`` float64 weights restricted to hiragana, renormalised (annotation text)."""
        mask = np.array([is_kana(c) for c in self.chars], dtype=bool)
        w = np.where(mask, self.weights, 0.0)
        return w / w.sum()

    def table(self) -> list:
        """``(Unicode, char)`` rows of the whole table, sorted by code point like the real file."""
        return [(unicode_of(c), c) for c in sorted(self.chars, key=ord)]


def make_vocabulary(n_classes: int = DEFAULT_N_CLASSES,
                    unused_fraction: float = UNUSED_CLASS_FRACTION,
                    zipf_exponent: float = ZIPF_EXPONENT,
                    zipf_offset: float = ZIPF_OFFSET) -> Vocabulary:
    """Take the ``n_classes`` most common characters and give them Zipf-like weights.

    Args:
        n_classes: Size of the class table, at most ``len(RANKED_CHARACTERS)``.
        unused_fraction: Share of the table (the rarest ranks) that never occurs.
        zipf_exponent: Exponent ``s`` of ``1 / (rank + offset) ** s``.
        zipf_offset: Rank offset that flattens the very top of the distribution.

    Returns:
        The vocabulary.

    Raises:
        ValueError: ``n_classes`` or ``unused_fraction`` out of range.
    """
    if not 2 <= n_classes <= len(RANKED_CHARACTERS):
        raise ValueError('n_classes must be in [2, {}], got {}'.format(
            len(RANKED_CHARACTERS), n_classes))
    if not 0.0 <= unused_fraction < 1.0:
        raise ValueError('unused_fraction must be in [0, 1), got {}'.format(unused_fraction))
    chars = tuple(RANKED_CHARACTERS[:n_classes])
    n_used = max(1, n_classes - int(round(n_classes * unused_fraction)))
    ranks = np.arange(1, n_classes + 1, dtype=np.float64)
    weights = 1.0 / (ranks + zipf_offset) ** zipf_exponent
    weights[n_used:] = 0.0
    weights /= weights.sum()
    return Vocabulary(chars=chars, weights=weights)
