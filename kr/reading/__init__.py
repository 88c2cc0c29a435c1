"""Text in reading order (SPEC section 12): the order of a page's characters, its files
(TXT, JSON, TEI, PNG), the page loop of ``kr recognize``, the measures and the synthetic
ground truth."""

from kr.reading.formats import make_page  # NOQA
from kr.reading.formats import page_from_json  # NOQA
from kr.reading.formats import page_tei  # NOQA
from kr.reading.formats import page_text  # NOQA
from kr.reading.formats import page_to_json  # NOQA
from kr.reading.formats import RecognizedPage  # NOQA
from kr.reading.ground_truth import load_reading_truth  # NOQA
from kr.reading.ground_truth import ReadingTruth  # NOQA
from kr.reading.metrics import character_counts  # NOQA
from kr.reading.metrics import character_error_rate  # NOQA
from kr.reading.metrics import successor_links  # NOQA
from kr.reading.order import Block  # NOQA
from kr.reading.order import Column  # NOQA
from kr.reading.order import Layout  # NOQA
from kr.reading.order import reading_order  # NOQA
from kr.reading.order import RubyGroup  # NOQA
from kr.reading.pages import recognize_pages  # NOQA
