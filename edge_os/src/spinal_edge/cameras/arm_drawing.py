"""A picture of the SO-101 arm from its joint positions: forward kinematics of the chain, drawn with numpy.

Used by the synthetic camera so that a simulated cell's policy sees the arm it moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Link lengths in metres, close to the SO-101's: base to shoulder, upper arm, forearm, wrist to gripper tip.
_BASE_H, _UPPER, _FORE, _HAND, _FINGER = 0.11, 0.116, 0.135, 0.06, 0.05
# Joint units are LeRobot's (about -100..100 for the body, 0..100 for the gripper); drawn as degrees.
_DEG = math.pi / 180.0

_BACKGROUND_TOP = np.array([196, 210, 226], dtype=np.float32)
_BACKGROUND_BOTTOM = np.array([122, 104, 86], dtype=np.float32)
_LINK_COLOURS = [(40, 40, 48), (230, 120, 30), (230, 120, 30), (70, 150, 220), (70, 150, 220), (60, 200, 90)]
_JOINT_COLOUR = (250, 250, 250)
_OBJECT_COLOUR = (200, 40, 40)


@dataclass(frozen=True, slots=True)
class View:
    """Where the synthetic camera looks from: azimuth and elevation in degrees, image scale in pixels/metre."""

    azimuth_deg: float
    elevation_deg: float
    scale: float = 1.0


VIEWS = {
    "front": View(azimuth_deg=25.0, elevation_deg=12.0),
    "side": View(azimuth_deg=90.0, elevation_deg=8.0),
    "top": View(azimuth_deg=10.0, elevation_deg=70.0),
}


def arm_points(joints: np.ndarray) -> dict[str, np.ndarray]:
    """3-D points (x right, y forward, z up; metres) of the chain: base, shoulder, elbow, wrist, tool, fingers."""
    q = np.zeros(6, dtype=np.float64)
    n = min(6, int(joints.shape[0]))
    q[:n] = np.nan_to_num(np.asarray(joints[:n], dtype=np.float64))
    pan, lift, elbow, wrist, roll = (q[:5] * _DEG).tolist()
    grip = float(np.clip(q[5], 0.0, 100.0)) / 100.0 * 35.0 * _DEG

    # The lift/elbow/wrist chain lives in a vertical plane turned by the pan angle.
    forward = np.array([math.sin(pan), math.cos(pan), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    side = np.cross(forward, up)

    def in_plane(angle_from_vertical: float) -> np.ndarray:
        return math.sin(angle_from_vertical) * forward + math.cos(angle_from_vertical) * up

    base = np.zeros(3)
    shoulder = np.array([0.0, 0.0, _BASE_H])
    a1 = lift
    elbow_p = shoulder + _UPPER * in_plane(a1)
    a2 = a1 + math.pi / 2 + elbow
    wrist_p = elbow_p + _FORE * in_plane(a2)
    a3 = a2 + wrist
    axis = in_plane(a3)
    tool = wrist_p + _HAND * axis
    # The fingers open in the plane the wrist roll turns about the tool axis.
    normal = math.cos(roll) * side + math.sin(roll) * np.cross(axis, side)
    finger_a = tool + _FINGER * (math.cos(grip) * axis + math.sin(grip) * normal)
    finger_b = tool + _FINGER * (math.cos(grip) * axis - math.sin(grip) * normal)
    return {
        "base": base,
        "shoulder": shoulder,
        "elbow": elbow_p,
        "wrist": wrist_p,
        "tool": tool,
        "finger_a": finger_a,
        "finger_b": finger_b,
    }


class ArmPainter:
    """Renders the arm at a fixed image size and view; allocates its canvas once."""

    def __init__(self, width: int, height: int, view: View) -> None:
        self.width, self.height, self.view = width, height, view
        rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        self._background = ((1 - rows) * _BACKGROUND_TOP + rows * _BACKGROUND_BOTTOM) * np.ones(
            (1, width, 1), dtype=np.float32
        )
        az, el = view.azimuth_deg * _DEG, view.elevation_deg * _DEG
        rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
        rx = np.array([[1, 0, 0], [0, math.cos(el), -math.sin(el)], [0, math.sin(el), math.cos(el)]])
        self._rotation = rx @ rz
        self._pixels_per_m = min(width, height) * 2.1 * view.scale
        self._origin = np.array([width * 0.45, height * 0.9])
        self._yy, self._xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self._draw_table()
        # Frames start from this picture; only the arm's bounding boxes are touched per frame.
        self._base = np.clip(self._background, 0, 255).astype(np.uint8)
        self._canvas = np.empty_like(self._base)

    def _project(self, p: np.ndarray) -> tuple[float, float, float]:
        r = self._rotation @ p
        u = self._origin[0] + r[0] * self._pixels_per_m
        v = self._origin[1] - r[2] * self._pixels_per_m
        return float(u), float(v), float(r[1])

    def _draw_table(self) -> None:
        # A grid on the table and an object to reach for: fixed features a policy can relate the arm to.
        canvas = self._background
        grid = (150, 132, 112)
        for i in range(-4, 5):
            x, y = i * 0.05, 0.21 + i * 0.04
            self._segment(canvas, np.array([x, -0.05, 0.0]), np.array([x, 0.35, 0.0]), 1.0, grid)
            self._segment(canvas, np.array([-0.2, y, 0.0]), np.array([0.2, y, 0.0]), 1.0, grid)
        self._disc(canvas, np.array([0.16, 0.2, 0.0]), 0.025 * self._pixels_per_m, _OBJECT_COLOUR)

    def render(self, joints: np.ndarray | None) -> np.ndarray:
        """An (height, width, 3) uint8 RGB picture of the arm at `joints` (grey when the state is unknown)."""
        canvas = self._canvas
        np.copyto(canvas, self._base)
        points = arm_points(joints if joints is not None else np.zeros(6))
        chain = ["base", "shoulder", "elbow", "wrist", "tool"]
        radius = max(2.0, self._pixels_per_m * 0.016)
        links = [(chain[i], chain[i + 1], _LINK_COLOURS[i]) for i in range(4)]
        links += [("tool", "finger_a", _LINK_COLOURS[5]), ("tool", "finger_b", _LINK_COLOURS[5])]
        if joints is None:
            links = [(a, b, (128, 128, 128)) for a, b, _ in links]
        # Far links first, so nearer ones cover them.
        links.sort(key=lambda link: -(self._project(points[link[0]])[2] + self._project(points[link[1]])[2]))
        for a, b, colour in links:
            width = radius * (0.6 if a == "tool" else 1.0)
            self._segment(canvas, points[a], points[b], width, colour)
        for name in chain[1:]:
            self._disc(canvas, points[name], radius * 0.9, _JOINT_COLOUR)
        return canvas.copy()

    def _segment(
        self, canvas: np.ndarray, a3: np.ndarray, b3: np.ndarray, radius: float, colour: tuple[int, int, int]
    ) -> None:
        ax, ay, _ = self._project(a3)
        bx, by, _ = self._project(b3)
        x0, x1 = int(max(0, min(ax, bx) - radius - 2)), int(min(self.width, max(ax, bx) + radius + 3))
        y0, y1 = int(max(0, min(ay, by) - radius - 2)), int(min(self.height, max(ay, by) + radius + 3))
        if x0 >= x1 or y0 >= y1:
            return
        xx = self._xx[y0:y1, x0:x1]
        yy = self._yy[y0:y1, x0:x1]
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = np.zeros_like(xx) if length2 == 0 else np.clip(((xx - ax) * dx + (yy - ay) * dy) / length2, 0, 1)
        dist = np.hypot(xx - (ax + t * dx), yy - (ay + t * dy))
        self._blend(canvas[y0:y1, x0:x1], np.clip(radius - dist + 0.5, 0.0, 1.0), colour)

    def _disc(self, canvas: np.ndarray, c3: np.ndarray, radius: float, colour: tuple[int, int, int]) -> None:
        cx, cy, _ = self._project(c3)
        x0, x1 = int(max(0, cx - radius - 2)), int(min(self.width, cx + radius + 3))
        y0, y1 = int(max(0, cy - radius - 2)), int(min(self.height, cy + radius + 3))
        if x0 >= x1 or y0 >= y1:
            return
        dist = np.hypot(self._xx[y0:y1, x0:x1] - cx, self._yy[y0:y1, x0:x1] - cy)
        self._blend(canvas[y0:y1, x0:x1], np.clip(radius - dist + 0.5, 0.0, 1.0), colour)

    @staticmethod
    def _blend(region: np.ndarray, alpha: np.ndarray, colour: tuple[int, int, int]) -> None:
        a = alpha[..., None]
        mixed = region * (1.0 - a) + a * np.asarray(colour, dtype=np.float32)
        # The canvas is uint8 per frame and float32 while the static background is drawn.
        region[...] = mixed if region.dtype == np.float32 else (mixed + 0.5).astype(np.uint8)
