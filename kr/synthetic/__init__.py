"""A synthetic kuzushiji dataset in the Kaggle layout: every step runs without the real data.

See SPEC.md section 8 and ``scripts/00_make_synthetic_dataset.py``.
"""

from kr.synthetic.fonts import bundled_font_path  # NOQA
from kr.synthetic.fonts import find_system_fonts  # NOQA
from kr.synthetic.fonts import missing_glyphs  # NOQA
from kr.synthetic.generator import DEFAULT_OUT  # NOQA
from kr.synthetic.generator import make_synthetic_dataset  # NOQA
from kr.synthetic.page import BookStyle  # NOQA
from kr.synthetic.page import SyntheticPage  # NOQA
from kr.synthetic.page import render_page  # NOQA
from kr.synthetic.page import sample_book_style  # NOQA
from kr.synthetic.render import GlyphRenderer  # NOQA
from kr.synthetic.render import INK_THRESHOLD  # NOQA
from kr.synthetic.vocabulary import Vocabulary  # NOQA
from kr.synthetic.vocabulary import make_vocabulary  # NOQA
from kr.synthetic.vocabulary import unicode_of  # NOQA
