"""Old-paper backgrounds and the photographic finish of a synthetic page.

Everything here works on float32 RGB images with values in [0, 255] and draws its
randomness from the ``numpy.random.Generator`` it is given, never from global state.
"""

import cv2
import numpy as np

#: Paper tones (RGB) of scanned Japanese books: cream, yellowed, tan, grey, pale.
PAPER_COLOURS = (
    (236, 224, 190),
    (229, 212, 168),
    (216, 196, 154),
    (222, 216, 200),
    (240, 232, 212),
    (205, 190, 160),
)
#: Background behind the page when the photograph shows the book's surroundings.
BACKGROUND_COLOURS = (
    (28, 26, 24),
    (52, 48, 45),
    (80, 78, 76),
    (118, 112, 104),
    (38, 40, 48),
)
#: Resolution divisor of the smooth paper tone (it has no detail finer than this).
_TONE_SCALE = 4
#: Colour of stains (tea / water / foxing), multiplied into the paper.
STAIN_COLOUR = (170, 130, 80)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Band-limited noise: a random grid of about ``cells`` cells per side, upsampled cubically.

    Returns:
        ``(height, width)`` float32 with standard deviation about 1.
    """
    aspect = width / float(height)
    gh = max(2, int(round(cells)))
    gw = max(2, int(round(cells * aspect)))
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _fibres(rng, height, width, count, length):
    """Thin curved fibres (lighter and darker), as a float32 ``(H, W)`` layer in [-1, 1]."""
    layer = np.zeros((height, width), dtype=np.float32)
    for _ in range(count):
        n = 5
        start = rng.uniform([0, 0], [width, height])
        angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.35, n))
        step = rng.uniform(0.3, 1.0) * length / n
        points = start + np.cumsum(np.stack([np.cos(angle), np.sin(angle)], 1) * step, axis=0)
        value = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.0))
        cv2.polylines(layer, [np.round(points).astype(np.int32)], False, value, 1, cv2.LINE_AA)
    return cv2.GaussianBlur(layer, (0, 0), 0.6)


def _blob(rng, radius):
    """Soft irregular blob, float32 ``(2r+1, 2r+1)`` in [0, 1], centred."""
    r = max(1, int(np.ceil(radius * 1.6)))
    size = 2 * r + 1
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float32)
    ax = radius * rng.uniform(0.6, 1.0)
    ay = radius * rng.uniform(0.6, 1.0)
    dist = np.sqrt((xx / np.float32(ax)) ** 2 + (yy / np.float32(ay)) ** 2)
    wobble = smooth_noise(rng, size, size, 5) * np.float32(0.25)
    return np.clip((1.0 + wobble - dist) / np.float32(0.35), 0.0, 1.0)


def _paste_max(canvas, patch, cx, cy):
    """``canvas = max(canvas, patch)`` with the patch centred at (cx, cy), clipped."""
    h, w = patch.shape
    x, y = int(cx) - w // 2, int(cy) - h // 2
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
    if x1 > x0 and y1 > y0:
        np.maximum(canvas[y0:y1, x0:x1], patch[y0 - y:y1 - y, x0 - x:x1 - x],
                   out=canvas[y0:y1, x0:x1])


def make_paper(rng: np.random.Generator, height: int, width: int, colour, texture: float = 1.0,
               fibres: float = 1.0, stains: int = 0, foxing: int = 0) -> np.ndarray:
    """A sheet of old paper.

    Args:
        rng: Random generator.
        height: Sheet height in pixels.
        width: Sheet width in pixels.
        colour: Base RGB, values 0-255.
        texture: Strength of the low-frequency tone variation and grain (1 = typical).
        fibres: Density of visible fibres (1 = typical).
        stains: Number of large soft stains.
        foxing: Number of small brown spots.

    Returns:
        ``(height, width, 3)`` float32 RGB in [0, 255].
    """
    # Smooth tone variations are computed at 1/_TONE_SCALE resolution and upsampled once.
    lh, lw = max(2, height // _TONE_SCALE), max(2, width // _TONE_SCALE)
    tone = np.ones((lh, lw), dtype=np.float32)
    tone += np.float32(0.025 * texture) * smooth_noise(rng, lh, lw, 3)
    tone += np.float32(0.015 * texture) * smooth_noise(rng, lh, lw, 14)
    tone += np.float32(0.010 * texture) * smooth_noise(rng, lh, lw, 90)
    # Edges of old sheets are darker (handling, light exposure).
    yy = np.minimum(np.arange(lh), np.arange(lh)[::-1]).astype(np.float32)
    xx = np.minimum(np.arange(lw), np.arange(lw)[::-1]).astype(np.float32)
    edge = np.minimum(yy[:, None], xx[None, :]) / np.float32(0.04 * min(lh, lw))
    tone -= np.float32(rng.uniform(0.0, 0.10)) * np.exp(-edge)
    tone = cv2.resize(tone, (width, height), interpolation=cv2.INTER_LINEAR)
    n_fibres = int(fibres * height * width / 6000.0)
    if n_fibres:
        tone += np.float32(0.05) * _fibres(rng, height, width, n_fibres, height * 0.02)
    darken = np.zeros((height, width), dtype=np.float32)
    for _ in range(stains):
        centre = rng.uniform([0, 0], [width, height])
        blob = _blob(rng, rng.uniform(0.04, 0.18) * min(height, width))
        # A stain is darker at its rim (tide line) than inside.
        rim = np.clip(blob * (1.0 - blob) * 4.0, 0.0, 1.0)
        _paste_max(darken, blob * np.float32(rng.uniform(0.05, 0.15)) + rim * np.float32(0.08),
                   *centre)
    for _ in range(foxing):
        centre = rng.uniform([0, 0], [width, height])
        blob = _blob(rng, rng.uniform(0.002, 0.008) * min(height, width))
        _paste_max(darken, blob * np.float32(rng.uniform(0.15, 0.4)), *centre)
    channels = []
    stain_rgb = np.asarray(STAIN_COLOUR, dtype=np.float32) / np.float32(255.0)
    for c in range(3):
        # Stains multiply the paper by a brownish factor where ``darken`` > 0.
        factor = tone * np.float32(colour[c])
        if stains or foxing:
            factor *= 1.0 - darken * (1.0 - stain_rgb[c])
        channels.append(factor)
    return cv2.merge(channels)


def make_background(rng: np.random.Generator, height: int, width: int, colour) -> np.ndarray:
    """The surroundings of a photographed page: a dark or grey cloth/board, float32 RGB."""
    tone = 1.0 + np.float32(0.08) * smooth_noise(rng, height, width, 4)
    return tone[:, :, None] * np.asarray(colour, dtype=np.float32)[None, None, :]


def composite(image: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    """Paint ``colour`` over ``image`` with opacity ``alpha``.

    ``out = image * (1 - alpha) + colour * alpha``, per channel.

    Args:
        image: ``(H, W, 3)`` float32 RGB.
        alpha: ``(H, W)`` float32 opacity in [0, 1].
        colour: RGB, 0-255.

    Returns:
        ``(H, W, 3)`` float32 RGB (a new array).
    """
    keep = 1.0 - alpha
    channels = []
    for c, value in zip(cv2.split(image), colour):
        # Per channel with OpenCV: much faster than NumPy broadcasting over (H, W, 3).
        channels.append(cv2.scaleAdd(alpha, float(value), cv2.multiply(c, keep)))
    return cv2.merge(channels)


def finish_photograph(rng: np.random.Generator, image: np.ndarray, noise: float = 3.0,
                      blur: float = 0.5, lighting: float = 0.06) -> np.ndarray:
    """Uneven lighting, sensor noise and lens blur, then clip to uint8.

    Args:
        rng: Random generator.
        image: ``(H, W, 3)`` float32 RGB in [0, 255] (modified in place).
        noise: Standard deviation of the pixel noise (grey levels).
        blur: Gaussian sigma in pixels (0 for none).
        lighting: Relative brightness change across the page.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    height, width = image.shape[:2]
    gy, gx = rng.uniform(-1.0, 1.0, size=2)
    ramp = (np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None] * np.float32(gy)
            + np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :] * np.float32(gx))
    gain = 1.0 + np.float32(lighting) * ramp
    image *= cv2.merge([gain, gain, gain])
    if blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    grain = rng.standard_normal((height, width), dtype=np.float32) * np.float32(noise)
    image += cv2.merge([grain, grain, grain])
    np.maximum(image, 0.0, out=image)
    # Saturating round to uint8 (the absolute value it also takes is a no-op by now).
    return cv2.convertScaleAbs(image)
