"""Render the "AI-generated · AI合成" label to models/assets/label.png (run once, committed).

The label is burned into every fused frame (EU AI Act Art. 50; China's deep-synthesis
rules). It is rendered here, at build time, because OpenCV cannot draw CJK text and the
servers should not depend on system fonts. Needs Pillow and a CJK font, e.g. Debian's
fonts-wqy-microhei:

    python models/scripts/render_label.py /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
"""

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

TEXT = "AI-generated · AI合成"
OUT = Path(__file__).resolve().parent.parent / "assets" / "label.png"


def main(font_path: str) -> None:
    font = ImageFont.truetype(font_path, 64)
    left, top, right, bottom = font.getbbox(TEXT)
    pad_x, pad_y = 28, 16
    width, height = right - left + 2 * pad_x, bottom - top + 2 * pad_y
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=height // 4, fill=(0, 0, 0, 170))
    draw.text((pad_x - left, pad_y - top), TEXT, font=font, fill=(255, 255, 255, 255))
    image.save(OUT, optimize=True)
    print(f"{OUT} {width}x{height}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
