"""Paints one synthetic street-facade image of a building with Pillow and numpy.

The picture is an elevation at a fixed scale (pixels per metre, varied per image): sky,
pavement, the wall with one row of windows per storey (style by era), a door and shop windows
on the ground floor, the roof with dormers when there is an attic storey, sometimes
neighbouring facades at the sides, a tree, a car or a lamp post in front. It is then lit
unevenly, warped by a slight perspective and rotation, and given pixel noise. The painter
returns the image and the truth labels (row centres in pixels after warping).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from cut_processes.demo import codes
from cut_processes.demo import footprints as fp
from cut_processes.demo.buildings import Building

Colour = tuple[int, int, int]

_PLASTER = [
    (236, 226, 200),
    (238, 236, 230),
    (222, 190, 130),
    (230, 200, 190),
    (210, 210, 205),
    (200, 215, 225),
    (205, 220, 200),
    (226, 214, 180),
]
_BRICK = [(150, 60, 45), (120, 55, 40), (205, 175, 120), (110, 70, 50), (135, 75, 60)]
_MODERN = [(240, 240, 238), (70, 72, 75), (190, 192, 195), (140, 70, 55), (160, 120, 80)]
_POSTWAR = [(220, 205, 170), (200, 175, 120), (180, 180, 175), (225, 190, 150), (196, 160, 130)]
_HALL = [(160, 165, 170), (110, 130, 160), (140, 70, 55), (220, 220, 215), (120, 125, 110)]
_ROOF = [(160, 70, 50), (120, 70, 50), (60, 62, 68), (100, 100, 105), (90, 140, 120)]
_GLASS = [(40, 55, 70), (55, 70, 85), (30, 40, 50), (70, 85, 100), (48, 60, 62)]
_FRAME = [(235, 235, 230), (50, 50, 50), (90, 60, 40), (40, 70, 50), (200, 200, 195)]
_CAR = [
    (180, 20, 20),
    (30, 30, 35),
    (200, 200, 205),
    (20, 50, 120),
    (120, 120, 125),
    (230, 230, 230),
]
_SIGNS = (
    "CAFÉ",
    "BÄCKEREI",
    "KIOSK",
    "APOTHEKE",
    "BLUMEN",
    "BÜCHER",
    "FRISEUR",
    "FISCH",
    "IMBISS",
    "OPTIK",
    "WEIN",
    "LADEN",
    "BISTRO",
    "MARKT",
)


def _c(rng: np.random.Generator, palette: list[Colour], jitter: int = 10) -> Colour:
    base = np.array(palette[int(rng.integers(len(palette)))])
    return tuple(int(v) for v in np.clip(base + rng.integers(-jitter, jitter + 1, 3), 0, 255))


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(min(255, max(0, int(v * factor))) for v in colour)


@dataclass
class _Style:
    """Window layout of a facade style (metres)."""

    axis: float  # distance between window axes
    width: float  # window width
    height: float  # window height
    sill: float  # sill height above the floor
    panes: str  # "cross", "transom", "plain", "band"
    cornices: bool


def _style(b: Building, rng: np.random.Generator) -> _Style:
    u = rng.uniform
    if b.kind == fp.HALL:
        return _Style(u(5.0, 8.0), u(3.0, 4.5), u(1.2, 1.8), 0.0, "band", False)
    if b.kind in (fp.GARAGE,):
        return _Style(3.1, 2.5, 2.1, 0.0, "plain", False)
    if b.kind in (fp.HOUSE, fp.TERRACE):
        return _Style(u(2.4, 3.2), u(0.9, 1.3), u(1.2, 1.45), 0.9, "transom", False)
    if b.kind in (fp.SCHOOL_BUILDING, fp.KITA, fp.GYM, fp.PAVILION, fp.OFFICE, fp.WORKSHOP):
        ax = u(2.4, 3.2)
        return _Style(ax, ax * u(0.6, 0.8), u(1.5, 2.1), u(0.8, 1.0), "transom", False)
    if b.era == "gruenderzeit" or b.kind == fp.VILLA:
        return _Style(u(2.6, 3.3), u(1.1, 1.35), u(1.9, 2.3), 0.85, "cross", True)
    if b.era == "interwar":
        return _Style(u(2.4, 3.0), u(1.2, 1.5), u(1.4, 1.6), 0.9, "cross", rng.random() < 0.5)
    if b.era == "postwar":
        return _Style(u(2.6, 3.4), u(1.0, 1.4), u(1.2, 1.4), 0.9, "transom", False)
    ax = u(3.0, 4.5)
    if rng.random() < 0.3:
        return _Style(ax, ax - 0.2, u(1.4, 1.9), u(0.6, 0.9), "band", False)
    return _Style(ax, ax * u(0.6, 0.9), u(1.6, 2.3), u(0.4, 0.7), "plain", False)


def _wall_palette(b: Building, rng: np.random.Generator) -> list[Colour]:
    if b.kind in (fp.HALL, fp.WORKSHOP, fp.GARAGE, fp.GYM):
        return _HALL
    if b.era == "gruenderzeit":
        return _BRICK if rng.random() < 0.35 else _PLASTER
    if b.era == "interwar":
        return _BRICK
    if b.era in ("postwar", "late_20th"):
        return _POSTWAR
    return _MODERN


class _Canvas:
    """Metres-to-pixels mapping of one facade picture: x from the facade's left edge, z up."""

    def __init__(self, left: float, ground: float, ppm: float) -> None:
        self.left, self.ground, self.ppm = left, ground, ppm

    def x(self, m: float) -> float:
        return self.left + m * self.ppm

    def y(self, z: float) -> float:
        return self.ground - z * self.ppm

    def rect(self, x0: float, z0: float, x1: float, z1: float) -> list[float]:
        """Pixel box [left, top, right, bottom] of a rectangle given in metres."""
        return [self.x(x0), self.y(z1), self.x(x1), self.y(z0)]


def _window(
    draw: ImageDraw.ImageDraw,
    cv: _Canvas,
    x0: float,
    z0: float,
    w: float,
    h: float,
    panes: str,
    frame: Colour,
    glass: Colour,
    rng: np.random.Generator,
) -> None:
    """One window with frame and glazing bars; (x0, z0) is its lower left corner (m)."""
    draw.rectangle(cv.rect(x0, z0, x0 + w, z0 + h), fill=frame)
    t = max(0.06, 1.2 / cv.ppm)
    lit = rng.random()
    pane = _shade(glass, 1.6) if lit < 0.08 else _shade(glass, rng.uniform(0.8, 1.25))
    draw.rectangle(cv.rect(x0 + t, z0 + t, x0 + w - t, z0 + h - t), fill=pane)
    if lit > 0.85:  # curtain
        draw.rectangle(cv.rect(x0 + t, z0 + h * 0.55, x0 + w - t, z0 + h - t), fill=(215, 210, 195))
    bar = max(1, round(0.05 * cv.ppm))
    if panes == "cross":
        draw.line(
            [cv.x(x0 + w / 2), cv.y(z0), cv.x(x0 + w / 2), cv.y(z0 + h)], fill=frame, width=bar
        )
        draw.line(
            [cv.x(x0), cv.y(z0 + h * 0.7), cv.x(x0 + w), cv.y(z0 + h * 0.7)], fill=frame, width=bar
        )
    elif panes == "transom":
        draw.line(
            [cv.x(x0), cv.y(z0 + h * 0.75), cv.x(x0 + w), cv.y(z0 + h * 0.75)],
            fill=frame,
            width=bar,
        )
        if w > 1.2:
            draw.line(
                [cv.x(x0 + w / 2), cv.y(z0), cv.x(x0 + w / 2), cv.y(z0 + h * 0.75)],
                fill=frame,
                width=bar,
            )
    elif panes == "band":
        n = max(2, round(w / 1.3))
        for k in range(1, n):
            xm = x0 + w * k / n
            draw.line([cv.x(xm), cv.y(z0), cv.x(xm), cv.y(z0 + h)], fill=frame, width=bar)


def _storey_floors(b: Building) -> tuple[list[float], float]:
    """Floor levels (m) of the storeys below the eaves and the wall top (m)."""
    n_full = b.storeys - int(b.has_attic_storey)
    floors = [0.0] + [b.ground_floor_height + k * b.storey_height for k in range(n_full - 1)]
    wall_top = b.measured_height if b.roof_type == codes.FLAT else b.eaves_height
    return floors, max(wall_top, floors[-1] + 0.8 * b.storey_height)


def _neighbour(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    ppm: float,
    rng: np.random.Generator,
) -> None:
    """A neighbouring facade strip (pixel box): other colour, other storey heights."""
    x0, top, x1, ground = box
    draw.rectangle([x0, top, x1, ground], fill=_c(rng, _PLASTER + _BRICK, 14))
    storey = rng.uniform(2.8, 3.8) * ppm
    win_w, win_h = rng.uniform(1.0, 1.4) * ppm, rng.uniform(1.3, 2.1) * ppm
    glass = _c(rng, _GLASS)
    y = ground - storey + (storey - win_h) * 0.45
    while y - win_h > top:
        x = x0 + rng.uniform(0.3, 1.2) * ppm
        while x + win_w < x1:
            draw.rectangle([x, y - win_h, x + win_w, y], fill=glass)
            x += rng.uniform(2.4, 3.2) * ppm
        y -= storey


def _roof(
    draw: ImageDraw.ImageDraw,
    cv: _Canvas,
    b: Building,
    width: float,
    wall_top: float,
    whole: bool,
    rng: np.random.Generator,
) -> None:
    """The roof seen from the street; ``whole``: the facade is not cropped at the sides."""
    rise = b.measured_height - wall_top
    if b.roof_type == codes.FLAT or rise <= 0.05:
        draw.rectangle(cv.rect(-0.1, wall_top - 0.25, width + 0.1, wall_top), fill=(95, 95, 95))
        return
    colour = _c(rng, _ROOF, 12)
    z0, z1, over = wall_top, b.measured_height, 0.3
    inset = min(b.depth / 2.0, width / 2.0 - 0.3) if whole else 0.0
    if b.roof_type in (codes.HIP, codes.TENT):
        pts = [(-over, z0), (width + over, z0), (width - inset, z1), (inset, z1)]
        if b.roof_type == codes.TENT and whole:
            pts = [(-over, z0), (width + over, z0), (width / 2.0, z1)]
    elif b.roof_type == codes.MANSARD:
        zb = z0 + 0.75 * rise
        lower = [(-over, z0), (width + over, z0), (width - 0.4, zb), (0.4, zb)]
        draw.polygon([(cv.x(x), cv.y(z)) for x, z in lower], fill=_shade(colour, 0.8))
        top_in = min(1.5, width / 4.0) if whole else 0.4
        pts = [(0.4, zb), (width - 0.4, zb), (width - top_in, z1), (top_in, z1)]
    elif b.roof_type == codes.SAWTOOTH:
        bays = max(1, round(width / 9.0))
        bay = width / bays
        for k in range(bays):
            tooth = [(k * bay, z0), ((k + 1) * bay, z0), ((k + 1) * bay, z1)]
            draw.polygon([(cv.x(x), cv.y(z)) for x, z in tooth], fill=colour)
            glass_tooth = [((k + 1) * bay - 0.4, z0 + 0.3), ((k + 1) * bay - 0.4, z1 - 0.4)]
            draw.line([(cv.x(x), cv.y(z)) for x, z in glass_tooth], fill=(60, 80, 100), width=3)
        return
    elif b.roof_type == codes.ARCH:
        draw.chord(
            [cv.x(-over), cv.y(z1), cv.x(width + over), cv.y(2 * z0 - z1)], 180, 360, fill=colour
        )
        return
    elif b.roof_type == codes.HALF_HIP:
        cut = min(1.0, width / 6.0) if whole else 0.0
        pts = [
            (-over, z0),
            (width + over, z0),
            (width, z1 - 0.4 * rise),
            (width - cut, z1),
            (cut, z1),
            (0.0, z1 - 0.4 * rise),
        ]
    else:  # gable, mono-pitch: a band up to the ridge
        pts = [(-over, z0), (width + over, z0), (width + over * 0.5, z1), (-over * 0.5, z1)]
    draw.polygon([(cv.x(x), cv.y(z)) for x, z in pts], fill=colour)
    step = max(0.35, 3.0 / cv.ppm)  # tile courses
    for z in np.arange(z0 + step, z1 - 0.1, step):
        span = _span(pts, float(z))
        if span is not None:
            draw.line([cv.x(span[0]), cv.y(z), cv.x(span[1]), cv.y(z)], fill=_shade(colour, 0.88))


def _span(pts: list[tuple[float, float]], z: float) -> tuple[float, float] | None:
    """Horizontal extent (m) of the convex polygon ``pts`` at height ``z``."""
    xs = []
    for (xa, za), (xb, zb) in zip(pts, pts[1:] + pts[:1], strict=True):
        if min(za, zb) <= z <= max(za, zb) and za != zb:
            xs.append(xa + (z - za) * (xb - xa) / (zb - za))
    return (min(xs), max(xs)) if len(xs) >= 2 else None


def _occluders(
    draw: ImageDraw.ImageDraw, cv: _Canvas, width: float, rng: np.random.Generator
) -> None:
    """Sometimes a street tree, a parked car and/or a lamp post in front of the facade."""
    if rng.random() < 0.3:
        xt = rng.uniform(0.1, 0.9) * width
        trunk_h, crown_r = rng.uniform(2.5, 4.0), rng.uniform(2.0, 3.5)
        draw.rectangle(cv.rect(xt - 0.15, -0.5, xt + 0.15, trunk_h + 0.5), fill=(80, 60, 40))
        green = (int(rng.integers(40, 80)), int(rng.integers(80, 120)), int(rng.integers(30, 60)))
        for _ in range(int(rng.integers(5, 10))):
            cx = xt + rng.normal(0, crown_r * 0.45)
            cz = trunk_h + crown_r + rng.normal(0, crown_r * 0.35)
            r = crown_r * rng.uniform(0.45, 0.75)
            draw.ellipse(
                cv.rect(cx - r, cz - r, cx + r, cz + r), fill=_shade(green, rng.uniform(0.8, 1.2))
            )
    if rng.random() < 0.3:
        xc = rng.uniform(-1.0, width - 3.2)
        body = _c(rng, _CAR, 8)
        draw.rounded_rectangle(cv.rect(xc, -0.4, xc + 4.3, 0.5), radius=0.2 * cv.ppm, fill=body)
        cabin = [(xc + 1.0, 0.45), (xc + 3.4, 0.45), (xc + 2.9, 1.05), (xc + 1.5, 1.05)]
        draw.polygon([(cv.x(x), cv.y(z)) for x, z in cabin], fill=_shade(body, 0.9))
        window = [(xc + 1.25, 0.5), (xc + 3.15, 0.5), (xc + 2.8, 0.97), (xc + 1.6, 0.97)]
        draw.polygon([(cv.x(x), cv.y(z)) for x, z in window], fill=(50, 60, 70))
        for xw in (xc + 0.9, xc + 3.4):
            draw.ellipse(cv.rect(xw - 0.33, -0.75, xw + 0.33, -0.09), fill=(20, 20, 20))
    if rng.random() < 0.2:
        xl = rng.uniform(0.05, 0.95) * width
        draw.rectangle(cv.rect(xl - 0.06, -0.5, xl + 0.06, 4.5), fill=(45, 50, 55))
        draw.rectangle(cv.rect(xl - 0.35, 4.4, xl + 0.35, 4.6), fill=(45, 50, 55))


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 projective transform mapping four ``src`` points onto four ``dst`` points."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    h = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    return np.append(h, 1.0).reshape(3, 3)


def noise_tile(rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """A square of unit normal noise (float32) that every picture takes a random crop of."""
    return rng.standard_normal((size, size), dtype=np.float32)


def _finish(
    img: Image.Image, rng: np.random.Generator, noise: np.ndarray
) -> tuple[Image.Image, np.ndarray]:
    """Uneven light, pixel noise, perspective warp and rotation, blur.

    Returns the image and the forward homography (original to warped pixel coordinates).
    """
    w, h = img.size
    a = np.asarray(img, dtype=np.float32)
    gx, gy = rng.uniform(-0.25, 0.25, 2)
    contrast = rng.uniform(0.85, 1.15)
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    gain = (1.0 + gx * xs + gy * ys) * np.float32(rng.uniform(0.85, 1.12) * contrast)
    if rng.random() < 0.3:  # a cast shadow across one side
        k = rng.uniform(-1.5, 1.5)
        x_edge = rng.uniform(0.2, 0.8) * w + k * (np.arange(h)[:, None] - h / 2)
        cols = np.arange(w)[None, :]
        side = cols > x_edge if rng.random() < 0.5 else cols < x_edge
        gain = np.where(side, gain * np.float32(rng.uniform(0.6, 0.8)), gain)
    oy = int(rng.integers(0, noise.shape[0] - h + 1)) if h < noise.shape[0] else 0
    ox = int(rng.integers(0, noise.shape[1] - w + 1)) if w < noise.shape[1] else 0
    grain = np.zeros((h, w), dtype=np.float32)
    patch = noise[oy : oy + h, ox : ox + w]
    grain[: patch.shape[0], : patch.shape[1]] = patch
    grain *= np.float32(rng.uniform(1.0, 3.0))
    grain += np.float32(float(a.mean()) * (1.0 - contrast))
    a *= gain[..., None]
    a += grain[..., None]
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=float)
    angle = np.radians(rng.uniform(-2.5, 2.5))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([w / 2.0, h / 2.0])
    moved = (corners - centre) @ rot.T + centre
    moved += rng.uniform(-0.03, 0.03, (4, 2)) * np.array([w, h])
    forward = _homography(corners, moved)
    inverse = np.linalg.inv(forward)
    inverse /= inverse[2, 2]
    fill = img.getpixel((w // 2, 0))
    img = img.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        tuple(inverse.flatten()[:8]),
        Image.Resampling.BILINEAR,
        fillcolor=fill,
    )
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.BoxBlur(rng.uniform(0.4, 0.8)))
    return img, forward


def paint_facade(
    b: Building, rng: np.random.Generator, noise: np.ndarray
) -> tuple[Image.Image, dict]:
    """The facade picture of ``b`` and its labels (see :mod:`cut_processes.demo.facades`)."""
    floors, wall_top = _storey_floors(b)
    facade_len = float(np.clip(b.frontage, 5.0, rng.uniform(18.0, 40.0)))
    sky, pavement = rng.uniform(0.8, 3.5), rng.uniform(0.6, 1.8)
    total_h = b.measured_height + sky + pavement + (1.0 if b.has_attic_storey else 0.0)
    ppm = float(np.clip(rng.uniform(10.0, 24.0), 256.0 / facade_len, 640.0 / facade_len))
    ppm = min(ppm, 900.0 / total_h)
    width_px, height_px = round(facade_len * ppm), round(total_h * ppm)
    row_building = b.kind in (fp.GZ_ROW, fp.INTERWAR, fp.MODERN) and b.street_class is not None
    slivers = (
        rng.uniform(0.03, 0.12, 2) * width_px if row_building and rng.random() < 0.6 else (0, 0)
    )
    left, right = float(slivers[0]), width_px - float(slivers[1])
    shown = (right - left) / ppm  # metres of this building's facade in the picture
    whole = shown >= b.frontage - 0.5

    sky_top = np.array(_c(rng, [(150, 185, 225), (190, 200, 210), (120, 160, 210)]))
    sky_bottom = np.clip(sky_top + rng.integers(20, 50), 0, 255)
    grad = np.linspace(0.0, 1.0, height_px)[:, None, None]
    base = (sky_top[None, None, :] * (1 - grad) + sky_bottom[None, None, :] * grad).astype(np.uint8)
    img = Image.fromarray(np.repeat(base, width_px, axis=1))
    draw = ImageDraw.Draw(img)
    cv = _Canvas(left, height_px - pavement * ppm, ppm)
    for box in ((0.0, left), (right, float(width_px))):
        if box[1] - box[0] > 2:
            top = cv.y(rng.uniform(0.6, 1.3) * wall_top)
            _neighbour(draw, (box[0], top, box[1], cv.ground), ppm, rng)

    palette = _wall_palette(b, rng)
    wall = _c(rng, palette, 12)
    draw.rectangle(cv.rect(0.0, 0.0, shown, wall_top), fill=wall)
    if palette is _BRICK:
        step = max(2, round(0.3 * ppm))
        for yy in range(int(cv.y(wall_top)), int(cv.ground), step):
            draw.line([cv.x(0.0), yy, cv.x(shown), yy], fill=_shade(wall, 0.9), width=1)
    _roof(draw, cv, b, shown, wall_top, whole, rng)
    draw.rectangle(
        [0, cv.ground, width_px, height_px], fill=_c(rng, [(150, 150, 145), (120, 118, 115)])
    )
    draw.line(
        [0, cv.ground, width_px, cv.ground], fill=(90, 90, 90), width=max(1, round(ppm * 0.1))
    )

    style = _style(b, rng)
    frame, glass = _c(rng, _FRAME, 6), _c(rng, _GLASS, 8)
    n_cols = max(1, int(shown // style.axis))
    axis = shown / n_cols
    rows: list[float] = []
    door_col = int(rng.integers(n_cols))
    for k, floor in enumerate(floors):
        storey_h = b.ground_floor_height if k == 0 else b.storey_height
        if style.cornices and k > 0:
            draw.rectangle(cv.rect(0.0, floor - 0.12, shown, floor + 0.1), fill=_shade(wall, 1.1))
        if k == 0 and b.has_shop_front:
            sign_z = storey_h - 0.75
            draw.rectangle(cv.rect(0.2, sign_z, shown - 0.2, sign_z + 0.5), fill=_c(rng, _CAR, 20))
            text = _SIGNS[int(rng.integers(len(_SIGNS)))]
            size = max(8, round(0.4 * ppm))
            font = ImageFont.load_default(size=size)
            draw.text((cv.x(0.6), cv.y(sign_z + 0.45)), text, fill=(250, 250, 245), font=font)
            z0, z1 = 0.35, sign_z - 0.15
            for c in range(n_cols):
                x0 = c * axis + 0.25
                if c == door_col:
                    draw.rectangle(
                        cv.rect(x0, 0.0, x0 + 1.2, min(2.4, z1)), fill=_shade(frame, 0.5)
                    )
                    continue
                _window(draw, cv, x0, z0, axis - 0.5, z1 - z0, "band", frame, glass, rng)
            rows.append((z0 + z1) / 2.0)
            continue
        if b.kind == fp.GARAGE and k == 0:
            for c in range(n_cols):
                draw.rectangle(cv.rect(c * axis + 0.3, 0.0, (c + 1) * axis - 0.3, 2.1), fill=frame)
                for zz in np.arange(0.3, 2.1, 0.3):
                    draw.line(
                        [cv.x(c * axis + 0.3), cv.y(zz), cv.x((c + 1) * axis - 0.3), cv.y(zz)],
                        fill=_shade(frame, 0.8),
                        width=1,
                    )
            rows.append(1.05)
            continue
        h = min(style.height, storey_h - style.sill - 0.35)
        sill = style.sill
        if b.kind == fp.HALL:  # high windows below the eaves
            h = min(style.height, storey_h * 0.4)
            sill = storey_h - h - min(0.8, storey_h * 0.15)
        w = min(style.width, axis - 0.3)
        for c in range(n_cols):
            x0 = c * axis + (axis - w) / 2.0
            if k == 0 and c == door_col:
                dw = 3.5 if b.kind == fp.HALL else 1.2
                dh = min(storey_h - 0.3, 4.0 if b.kind == fp.HALL else 2.4)
                xd = c * axis + (axis - min(dw, axis - 0.2)) / 2.0
                draw.rectangle(
                    cv.rect(xd, 0.0, xd + min(dw, axis - 0.2), dh), fill=_shade(frame, 0.45)
                )
                if b.kind != fp.HALL:
                    continue
            _window(draw, cv, x0, floor + sill, w, h, style.panes, frame, glass, rng)
            if style.cornices and rng.random() < 0.5:
                draw.rectangle(
                    cv.rect(
                        x0 - 0.1, floor + sill + h + 0.05, x0 + w + 0.1, floor + sill + h + 0.22
                    ),
                    fill=_shade(wall, 1.12),
                )
        if k > 0 and b.era == "postwar" and b.kind == fp.POSTWAR_SLAB and rng.random() < 0.4:
            draw.rectangle(
                cv.rect(0.3, floor - 0.1, shown - 0.3, floor + 1.0), fill=_shade(wall, 0.85)
            )
        rows.append(floor + sill + h / 2.0)
    if b.has_attic_storey:
        rise = b.measured_height - wall_top
        zc = wall_top + min(1.3, 0.45 * rise)
        dh, dw = min(1.3, 0.6 * rise), 1.0
        for c in range(n_cols):
            if n_cols > 2 and c % 2 == 1:
                continue
            xc = (c + 0.5) * axis
            roof_col = _c(rng, _ROOF, 5)
            draw.rectangle(
                cv.rect(
                    xc - dw / 2 - 0.25, zc - dh / 2 - 0.2, xc + dw / 2 + 0.25, zc + dh / 2 + 0.35
                ),
                fill=_shade(roof_col, 0.7),
            )
            _window(draw, cv, xc - dw / 2, zc - dh / 2, dw, dh, "cross", frame, glass, rng)
        rows.append(zc)
    _occluders(draw, cv, shown, rng)

    img, forward = _finish(img, rng, noise)
    centre_x = cv.x(shown / 2.0)
    pts = np.array([[centre_x, cv.y(z), 1.0] for z in [*rows, 0.0]]) @ forward.T
    ys = (pts[:, 1] / pts[:, 2]).round(1).tolist()
    labels = {
        "building_id": b.id,
        "storeys": b.storeys,
        "has_shop_front": b.has_shop_front,
        "has_attic_storey": b.has_attic_storey,
        "window_rows": ys[:-1],
        "width": width_px,
        "height": height_px,
        "ground_y": ys[-1],
        "pixels_per_metre": round(ppm, 3),
        "facade_length_m": round(shown, 2),
    }
    return img, labels
