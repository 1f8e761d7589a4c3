"""Personal referral posters (F20): the campaign's background with each participant's own
QR code and name, rendered on demand and cached on disk.

Pillow draws, qrcode makes the code (both well kept; qrcode's Pillow factory is used).
Chinese names need a CJK font: ``QUNYUN_POSTER_FONT`` if set, else the first system font
found of WenQuanYi Micro Hei (Apache-2.0 / GPL-3.0, Debian ``fonts-wqy-microhei``, which
``make`` installs) or Noto Sans CJK (OFL-1.1); without any, Pillow's own font draws Latin
text only. A background is re-encoded to PNG when uploaded, so what is kept is only pixels.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qrcode  # type: ignore[import-untyped]  # no stubs published
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from qunyun.i18n import Term
from qunyun.services.errors import InvalidInput

WIDTH, HEIGHT = 750, 1334  # a phone screen's poster
MAX_UPLOAD = 5 * 1024 * 1024
FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
         "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
         "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc")
DEFAULT: dict[str, Any] = {"qr": {"x": 225, "y": 780, "size": 300},
                           "name": {"x": 375, "y": 1130, "size": 36, "color": "#333333",
                                    "template": "{name} 邀请你加入"},
                           "title": {"y": 220, "size": 64, "color": "#1f6f5c"}}


@dataclass(frozen=True, slots=True)
class Rendered:
    png: bytes
    name_box: tuple[int, int, int, int]  # where the name was drawn (left, top, right, bottom)
    qr_box: tuple[int, int, int, int]
    size: tuple[int, int]


def font_path() -> str | None:
    chosen = os.environ.get("QUNYUN_POSTER_FONT", "")
    if chosen and Path(chosen).is_file():
        return chosen
    return next((f for f in FONTS if Path(f).is_file()), None)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The CJK font at ``size`` (Pillow's own when none is installed); the closing report's
    picture draws with it too."""
    path = font_path()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def settings_of(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The stored poster settings over the defaults, part by part."""
    out: dict[str, Any] = json.loads(json.dumps(DEFAULT))
    for part, values in (stored or {}).items():
        if part in out and isinstance(values, dict):
            out[part].update(values)
        elif part == "background":
            out[part] = values
    return out


def check_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Positions and sizes inside the poster, a colour as #rrggbb; refused by name."""
    merged = settings_of(values)
    qr, name = merged["qr"], merged["name"]
    for where, box in (("qr", qr), ("name", name)):
        for key in ("x", "y", "size"):
            value = box.get(key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput("poster {where}.{key}: a whole number", where=where, key=key)
    if not 80 <= qr["size"] <= WIDTH or not (0 <= qr["x"] <= WIDTH - qr["size"]
                                            and 0 <= qr["y"] <= HEIGHT - qr["size"]):
        raise InvalidInput("poster qr: size 80–{w} and the code inside the {w}×{h} poster",
                           w=WIDTH, h=HEIGHT)
    if not 12 <= name["size"] <= 120 or not (0 <= name["x"] <= WIDTH
                                             and 0 <= name["y"] <= HEIGHT):
        raise InvalidInput("poster name: size 12–120 and a point inside the poster")
    color = str(name.get("color", ""))
    if len(color) != 7 or color[0] != "#" or any(c not in "0123456789abcdefABCDEF"
                                                   for c in color[1:]):
        raise InvalidInput("poster name.color: #rrggbb, not {color!r}", color=color)
    if "{name}" not in str(name.get("template", "")) or len(str(name["template"])) > 40:
        raise InvalidInput("poster name.template: up to 40 characters with {{name}}")
    return {"qr": qr, "name": name, "background": values.get("background", "")}


def store_background(folder: Path, campaign_id: int, data: bytes) -> str:
    """An uploaded background, checked and kept as a PNG of at most 1500 px a side."""
    return store_picture(folder, f"campaign-{campaign_id}-background.png", data,
                         field="background")


def store_picture(folder: Path, name: str, data: bytes, *, field: str, side: int = 1500
                  ) -> str:
    """An uploaded PNG or JPEG, checked and re-encoded as a PNG of at most ``side`` px a side
    (only pixels are kept: nothing else in the file survives); ``field`` names it in errors.
    """
    if len(data) > MAX_UPLOAD:
        raise InvalidInput("{field}: at most {mb} MB", field=Term("picture", field),
                           mb=MAX_UPLOAD // 1024 // 1024)
    try:
        opened = Image.open(io.BytesIO(data))
        opened.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidInput("{field}: not a PNG or JPEG picture",
                           field=Term("picture", field)) from None
    if opened.format not in ("PNG", "JPEG"):
        raise InvalidInput("{field}: not a PNG or JPEG picture", field=Term("picture", field))
    image = opened.convert("RGB")
    image.thumbnail((side, side))
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    image.save(folder / name, format="PNG")
    return name


def render(*, settings: dict[str, Any], title: str, nickname: str, link: str,
           background: Path | None = None) -> Rendered:
    """One participant's poster; the name shrinks (and then is cut) to stay inside it."""
    s = settings_of(settings)
    if background is not None and background.is_file():
        canvas = Image.open(background).convert("RGB").resize((WIDTH, HEIGHT))
    else:
        canvas = Image.new("RGB", (WIDTH, HEIGHT), "#f4f7f5")
        draw = ImageDraw.Draw(canvas)
        _centred(draw, title[:24], s["title"]["y"], s["title"]["size"], s["title"]["color"])
    draw = ImageDraw.Draw(canvas)
    qr = s["qr"]
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(link)
    code.make(fit=True)
    picture = code.make_image(fill_color="black", back_color="white").get_image()
    canvas.paste(picture.convert("RGB").resize((qr["size"], qr["size"]), Image.Resampling.NEAREST),
                 (qr["x"], qr["y"]))
    name = s["name"]
    text = str(name["template"]).replace("{name}", nickname.strip() or "好友")
    box = _centred(draw, text, name["y"], name["size"], name["color"], at_x=name["x"])
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=False)
    return Rendered(out.getvalue(), box, (qr["x"], qr["y"], qr["x"] + qr["size"],
                                          qr["y"] + qr["size"]), canvas.size)


def _centred(draw: ImageDraw.ImageDraw, text: str, y: int, size: int, color: str, *,
             at_x: int = WIDTH // 2, margin: int = 24) -> tuple[int, int, int, int]:
    """Draw ``text`` centred on ``at_x``, smaller until it fits between the margins, then
    cut with … if even the smallest size does not fit; returns its box."""
    room = WIDTH - 2 * margin
    def measure(font: ImageFont.FreeTypeFont | ImageFont.ImageFont
                ) -> tuple[int, int, int, int]:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        return int(left), int(top), int(right) + 1, int(bottom) + 1

    for candidate in range(size, 11, -2):
        face = font(candidate)
        left, top, right, bottom = measure(face)
        if right - left <= room:
            break
    while right - left > room and len(text) > 1:
        text = text[:-2] + "…"
        left, top, right, bottom = measure(face)
    width = right - left
    x = min(max(margin, at_x - width // 2), WIDTH - margin - width) - left
    y = min(max(0, y), HEIGHT - (bottom - top)) - top
    draw.text((x, y), text, font=face, fill=color)
    return (x + left, y + top, x + right, y + bottom)


def cached(folder: Path, key: dict[str, Any], make: Any) -> bytes:
    """The poster for ``key`` from the cache, else ``make()``'s, kept for next time."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False)
                            .encode()).hexdigest()[:32]
    path = folder / "cache" / f"{digest}.png"
    if path.is_file():
        return path.read_bytes()
    png: bytes = make().png
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(png)
    tmp.replace(path)
    return png
