"""The synthetic data set: one shape in a named colour on a plain coloured background, with captions.

Everything here is a pure function of a numpy Generator, so a seed reproduces the data exactly.
The vocabulary (colours, shapes, positions, sizes) is also written to the model's atelier.json,
and the engine's semantic tests check generated images against the same geometry.
"""
from __future__ import annotations

import numpy as np

SIZE = 64

# Colour names and their sRGB values. Chosen far apart so a pixel statistic can tell them apart.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 220, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("center", "top left", "top right", "bottom left", "bottom right")
SIZES = ("small", "large")

# Half extent of a shape in pixels, and how far a corner position is from the centre.
HALF = {"small": 11.0, "large": 17.0}
OFFSET = {"small": 14.0, "large": 8.0}
JITTER = 2.0


def centre_of(position: str, size: str) -> tuple[float, float]:
    c = SIZE / 2
    o = OFFSET[size]
    dx = -o if "left" in position else (o if "right" in position else 0.0)
    dy = -o if "top" in position else (o if "bottom" in position else 0.0)
    return c + dx, c + dy


def shape_mask(shape: str, cx: float, cy: float, half: float, supersample: int = 2) -> np.ndarray:
    """Coverage in [0, 1] of each pixel by the shape (anti-aliased by supersampling)."""
    n = SIZE * supersample
    coords = (np.arange(n, dtype=np.float64) + 0.5) / supersample
    x = coords[None, :]
    y = coords[:, None]
    if shape == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= half**2
    elif shape == "square":
        s = half * 0.886  # same area as the circle of radius `half`
        inside = (np.abs(x - cx) <= s) & (np.abs(y - cy) <= s)
    elif shape == "triangle":
        # Upright isosceles triangle: apex above the centre, flat base below.
        top = cy - half * 1.05
        bottom = cy + half * 0.85
        t = np.clip((y - top) / (bottom - top), 0.0, 1.0)
        inside = (y >= top) & (y <= bottom) & (np.abs(x - cx) <= t * half * 1.15)
    else:
        raise ValueError(shape)
    m = inside.astype(np.float32).reshape(SIZE, supersample, SIZE, supersample).mean(axis=(1, 3))
    return m


def render(shape: str, colour: str, background: str, position: str, size: str, jitter: tuple[float, float]) -> np.ndarray:
    """An HxWx3 float32 image in [-1, 1]."""
    cx, cy = centre_of(position, size)
    m = shape_mask(shape, cx + jitter[0], cy + jitter[1], HALF[size])[..., None]
    fg = np.array(COLOURS[colour], dtype=np.float32) / 127.5 - 1
    bg = np.array(COLOURS[background], dtype=np.float32) / 127.5 - 1
    return (m * fg + (1 - m) * bg).astype(np.float32)


def sample_attributes(rng: np.random.Generator) -> dict[str, str]:
    names = list(COLOURS)
    colour = names[rng.integers(len(names))]
    others = [c for c in names if c != colour]
    return {
        "shape": SHAPES[rng.integers(len(SHAPES))],
        "colour": colour,
        "background": others[rng.integers(len(others))],
        "position": POSITIONS[rng.integers(len(POSITIONS))],
        "size": SIZES[rng.integers(len(SIZES))],
    }


POSITION_PHRASES = {
    "center": ["in the center", "in the middle", "in the centre"],
    "top left": ["in the top left", "at the top left", "in the top left corner"],
    "top right": ["in the top right", "at the top right", "in the top right corner"],
    "bottom left": ["in the bottom left", "at the bottom left", "in the bottom left corner"],
    "bottom right": ["in the bottom right", "at the bottom right", "in the bottom right corner"],
}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big"]}


def caption(a: dict[str, str], rng: np.random.Generator) -> str:
    """A varied English caption. Attributes are left out at random so the model also learns what an
    unnamed attribute looks like (any value) and what a single word such as "red" means, which is
    what a negative prompt relies on."""
    r = rng.random()
    if r < 0.10:
        return ""  # unconditional, for classifier-free guidance
    if r < 0.13:
        return a["colour"]
    if r < 0.15:
        return f"{a['background']} background"
    if r < 0.17:
        return a["shape"]
    pick = lambda xs: xs[rng.integers(len(xs))]  # noqa: E731
    words: list[str] = []
    if rng.random() < 0.85:
        words.append("a")
    if rng.random() < 0.6:
        words.append(pick(SIZE_WORDS[a["size"]]))
    if rng.random() < 0.88:
        words.append(a["colour"])
    words.append(a["shape"] if rng.random() < 0.93 else "shape")
    pos_first = rng.random() < 0.5
    pos = pick(POSITION_PHRASES[a["position"]]) if rng.random() < 0.7 else None
    bg = None
    if rng.random() < 0.88:
        bg = pick([f"on a {a['background']} background", f"on {a['background']}", f"with a {a['background']} background"])
    if pos and pos_first:
        words.append(pos)
    if bg:
        words.append(bg)
    if pos and not pos_first:
        words.append(pos)
    return " ".join(words)


def make_dataset(n: int, seed: int) -> tuple[np.ndarray, list[dict[str, str]]]:
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    attrs: list[dict[str, str]] = []
    for i in range(n):
        a = sample_attributes(rng)
        jitter = (float(rng.uniform(-JITTER, JITTER)), float(rng.uniform(-JITTER, JITTER)))
        images[i] = render(a["shape"], a["colour"], a["background"], a["position"], a["size"], jitter).transpose(2, 0, 1)
        attrs.append(a)
    return images, attrs
