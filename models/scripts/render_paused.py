"""Render the neutral "service paused / 服务已暂停" frame to models/assets/paused.png (run once,
committed).

When face fusion is switched off for a kiosk (or its state cannot be read), the media engine
sends this picture instead of any fused or camera frame. Like the label it is rendered at
build time because OpenCV cannot draw CJK text. Needs Pillow and a CJK font, e.g. Debian's
fonts-wqy-microhei:

    python models/scripts/render_paused.py /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
"""

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

LINES = ("Service paused", "服务已暂停")
SIZE = (1280, 720)
BACKGROUND = (58, 62, 68)
TEXT_COLOUR = (235, 235, 235)
OUT = Path(__file__).resolve().parent.parent / "assets" / "paused.png"


def main(font_path: str) -> None:
    font = ImageFont.truetype(font_path, 72)
    image = Image.new("RGB", SIZE, BACKGROUND)
    draw = ImageDraw.Draw(image)
    line_height = 110
    top = (SIZE[1] - line_height * len(LINES)) // 2
    for i, line in enumerate(LINES):
        left, _, right, _ = font.getbbox(line)
        x = (SIZE[0] - (right - left)) // 2 - left
        draw.text((x, top + i * line_height), line, font=font, fill=TEXT_COLOUR)
    image.save(OUT, optimize=True)
    print(f"{OUT} {SIZE[0]}x{SIZE[1]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
