"""Frame-by-frame quality metrics between two videos (e.g. dense vs. accelerated attention), and the verdict
a user reads first.

PSNR and SSIM need nothing beyond numpy and OpenCV, so they always run. LPIPS is only computed
when the `lpips` package and all its weights are already on this machine: nothing may be
downloaded here, and a silent multi-hundred-MB download inside a comparison would be a surprise.
"""
from __future__ import annotations

import glob
import importlib.util
import math
import os

import cv2
import numpy as np
from numpy.typing import ArrayLike

from .video import as_uint8_video


# The verdict's thresholds (mean PSNR in dB and mean luma SSIM against dense, same seed). Why these: at >= 30 dB and
# SSIM >= 0.95 a side-by-side of the embedded model's videos shows no difference one can point at (its 0.05
# error-budget profile: 37 dB / 0.99; coding practice calls 30-40 dB good quality); below 25 dB or SSIM 0.85 shapes
# smear or vanish and backgrounds speckle (the issue-30 videos: 18.5 dB / 0.68, 12.8 dB / 0.36). In between: slight
# loss, visible when one looks for it. The worse of the two metrics decides.
NO_LOSS = (30.0, 0.95)
SLIGHT_LOSS = (25.0, 0.85)
PLAN_FIX = ("this plan does not fit this model; profile it (videoaccel profile --prompts FILE -o my.json --error-budget 0.05, "
            "then --profile my.json) or raise the density")


def verdict(psnr_db: float, ssim_mean: float, fix: str | None = None) -> str:
    """``no visible loss (PSNR 34.2 dB, SSIM 0.981)``, ``slight loss (...)`` or ``VISIBLE LOSS (...)``; ``fix``
    (what to do about a loss) follows a loss after a colon."""
    metrics = f"PSNR {fmt(psnr_db, 1)} dB, SSIM {ssim_mean:.3f}"
    if psnr_db >= NO_LOSS[0] and ssim_mean >= NO_LOSS[1]:
        return f"no visible loss ({metrics})"
    word = "slight loss" if psnr_db >= SLIGHT_LOSS[0] and ssim_mean >= SLIGHT_LOSS[1] else "VISIBLE LOSS"
    return f"{word} ({metrics})" + (f": {fix}" if fix else "")


def num(x: float) -> float | None:
    """JSON has no infinity: identical frames (PSNR inf) are written as null."""
    return None if not math.isfinite(x) else x


def fmt(x: float, digits: int) -> str:
    """A metric for a table: ``inf`` for identical frames' PSNR."""
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def check_pair(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both videos as uint8 [F, H, W, 3]; ValueError naming what differs."""
    a, b = as_uint8_video(a, "video A"), as_uint8_video(b, "video B")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"frame count differs: A has {a.shape[0]} frames, B has {b.shape[0]}")
    if a.shape[1:3] != b.shape[1:3]:
        raise ValueError(
            f"frame size differs: A is {a.shape[2]}x{a.shape[1]}, B is {b.shape[2]}x{b.shape[1]} (width x height)"
        )
    return a, b


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.inf


def psnr(a: ArrayLike, b: ArrayLike) -> tuple[list[float], float]:
    """PSNR in dB per frame (data range 255; identical frames -> inf) and the mean over finite frames
    (inf when every frame is identical), so one identical frame does not make the mean infinite."""
    a, b = check_pair(a, b)
    per = []
    for fa, fb in zip(a, b):
        mse = float(np.mean((fa.astype(np.float64) - fb.astype(np.float64)) ** 2))
        per.append(math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse))
    return per, _finite_mean(per)


def _luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 luma Y in [0, 255], float64: SSIM is defined on one channel and the eye is most
    sensitive to luminance, which is what the original SSIM paper evaluates."""
    f = frame.astype(np.float64)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def _ssim_frame(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(img):
        return cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    if smap.shape[0] > 10 and smap.shape[1] > 10:
        smap = smap[5:-5, 5:-5]  # 'valid' window positions only, as in Wang et al.'s reference code
    return float(smap.mean())


def ssim(a: ArrayLike, b: ArrayLike) -> tuple[list[float], float]:
    """SSIM per frame and its mean, on the BT.601 luma channel (not an RGB mean).

    Standard parameters: Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255;
    the map is averaged over window positions that lie fully inside the frame (5-pixel border cut).
    """
    a, b = check_pair(a, b)
    per = [_ssim_frame(_luma(fa), _luma(fb)) for fa, fb in zip(a, b)]
    return per, float(np.mean(per))


def lpips_or_none(a: ArrayLike, b: ArrayLike, net: str = "alex") -> tuple[float | None, str]:
    """(mean LPIPS over frames, message) when `lpips` and its weights are local, else (None, reason)."""
    a, b = check_pair(a, b)
    if importlib.util.find_spec("lpips") is None:
        return None, "LPIPS not computed: the `lpips` package is not installed (pip install lpips)"
    import torch

    pkg_dir = os.path.dirname(importlib.util.find_spec("lpips").origin)
    head = os.path.join(pkg_dir, "weights", "v0.1", f"{net}.pth")
    if not os.path.exists(head):
        return None, f"LPIPS not computed: lpips weights {head} are missing"
    backbone = {"alex": "alexnet-*.pth", "vgg": "vgg16-*.pth", "squeeze": "squeezenet1_1-*.pth"}[net]
    ckpt_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    if not glob.glob(os.path.join(ckpt_dir, backbone)):
        return None, (
            f"LPIPS not computed: torchvision {net} backbone weights ({backbone}) are not in {ckpt_dir} "
            "and cannot be downloaded here"
        )
    try:
        import lpips

        model = lpips.LPIPS(net=net, verbose=False).eval()
        to_t = lambda v: torch.from_numpy(v).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # noqa: E731
        with torch.no_grad():
            vals = [float(model(to_t(a[i : i + 1]), to_t(b[i : i + 1])).mean()) for i in range(a.shape[0])]
    except Exception as exc:  # a broken install should not sink PSNR/SSIM results
        return None, f"LPIPS not computed: {type(exc).__name__}: {exc}"
    mean = float(np.mean(vals))
    return mean, f"LPIPS ({net}) mean: {mean:.4f}"


def side_by_side(a: ArrayLike, b: ArrayLike, labels: tuple[str, str] = ("A", "B"), sep: int = 2) -> np.ndarray:
    """Frames of A and B next to each other with a `sep`-pixel white separator and small labels
    (white text on a black outline, readable on any content), for eyeballing differences."""
    a, b = check_pair(a, b)
    f, h, w, _ = a.shape
    out = np.full((f, h, 2 * w + sep, 3), 255, np.uint8)
    out[:, :, :w], out[:, :, w + sep :] = a, b
    scale = max(0.3, min(1.0, h / 400))
    thick = 1 if scale < 0.6 else 2
    (_, th), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    org_y = 4 + th
    for frame in out:
        for label, x0 in zip(labels, (0, w + sep)):
            org = (x0 + 4, org_y)
            cv2.putText(frame, str(label), org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
            cv2.putText(frame, str(label), org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out
