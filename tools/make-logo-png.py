#!/usr/bin/env python3
"""Draw www/img/logo.png: an orange rounded square holding three white
"server rack" bars, 96x96 RGBA, antialiased by 4x4 supersampling.

Standard library only (zlib + struct), so the demo image can be rebuilt
anywhere: python3 tools/make-logo-png.py www/img/logo.png
"""
import struct
import sys
import zlib

SIZE = 96
SS = 4  # supersampling factor per axis
ORANGE_TOP = (0xE0, 0x6A, 0x3B)
ORANGE_BOTTOM = (0xB8, 0x40, 0x1E)
WHITE = (0xFF, 0xFF, 0xFF)


def inside_rounded_rect(x, y, x0, y0, x1, y1, r):
    if x < x0 or x > x1 or y < y0 or y > y1:
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def sample(x, y):
    """Colour and alpha (0/1) of one sub-sample at (x, y) in pixel units."""
    if not inside_rounded_rect(x, y, 4, 4, 92, 92, 18):
        return (0, 0, 0), 0
    for top in (24, 42, 60):
        if inside_rounded_rect(x, y, 22, top, 74, top + 12, 4):
            # a small "LED" dot on each bar, in the background colour
            if (x - 64) ** 2 + (y - (top + 6)) ** 2 <= 2.6 ** 2:
                break
            return WHITE, 1
    t = (y - 4) / 88
    colour = tuple(round(a + (b - a) * t) for a, b in zip(ORANGE_TOP, ORANGE_BOTTOM))
    return colour, 1


def render():
    rows = []
    n = SS * SS
    for py in range(SIZE):
        row = bytearray([0])  # filter type 0 (None) for each scanline
        for px in range(SIZE):
            r = g = b = a = 0
            for sy in range(SS):
                for sx in range(SS):
                    (cr, cg, cb), ca = sample(px + (sx + 0.5) / SS, py + (sy + 0.5) / SS)
                    r += cr * ca
                    g += cg * ca
                    b += cb * ca
                    a += ca
            if a:
                row += bytes((r // a, g // a, b // a, 255 * a // n))
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))
    return b"".join(rows)


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "www/img/logo.png"
    ihdr = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    png += chunk(b"IDAT", zlib.compress(render(), 9)) + chunk(b"IEND", b"")
    with open(out, "wb") as f:
        f.write(png)


if __name__ == "__main__":
    main()
