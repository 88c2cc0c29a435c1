"""One recognised character: what a recognizer returns and what the text formats read."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Character:
    """One recognised character of a page.

    Attributes:
        unicode: ``'U+XXXX'``.
        char: The character itself.
        bbox: ``(x_min, y_min, x_max, y_max)`` in page pixels.
        center: ``(x, y)`` box centre in page pixels (what a submission writes).
        detection_score: Detector probability.
        class_score: Classifier softmax probability of ``unicode``.
    """

    unicode: str
    char: str
    bbox: tuple
    center: tuple
    detection_score: float
    class_score: float
