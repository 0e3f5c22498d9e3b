"""glyphs: every Unicode character with a descriptive name, rendered in up to three real fonts.

Tens of thousands of real image-text pairs with compositional captions ("latin capital letter e with
grave, latin-1 supplement"): the larger base set. Opaque names (CJK ideographs, Hangul and Yi
syllables, numbered hieroglyphs and signs) are left out: a caption that is a code teaches nothing.
All renders of one character share a group, so a held-out character is never seen in training.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageChops, ImageDraw, ImageFont

from workbench.data.obtain import debian_package_root
from workbench.data.shards import Sample
from workbench.data.sources._common import ordered_map, spread_runs
from workbench.workspace import Workspace

NAME = "glyphs"
VERSION = 1
EVAL_FRACTION = 0.1
EVAL_ONLY = False
NEAR_DUPLICATES = False
"""Glyphs group by exact pixels only: at the perceptual hash's 9×8 grey, every thin vertical stroke of every
script looks alike and the chains joined 5.6k renders (12% of the set) into one group."""
PACKAGES = ["fonts-noto-core", "fonts-dejavu-core", "fonts-freefont-ttf", "fonts-symbola"]
SIZE = 64
FONTS_PER_CHAR = 3
FONT_FILES = {  # package → regular faces (glob, relative to the package root)
    "fonts-noto-core": "usr/share/fonts/truetype/noto/*-Regular.ttf",
    "fonts-dejavu-core": "usr/share/fonts/truetype/dejavu/DejaVu{Sans,Serif}.ttf",
    "fonts-freefont-ttf": "usr/share/fonts/truetype/freefont/Free{Sans,Serif,Mono}.ttf",
    "fonts-symbola": "usr/share/fonts/truetype/ancient-scripts/Symbola*.ttf",
}
OPAQUE = re.compile(r"^(CJK UNIFIED IDEOGRAPH|CJK COMPATIBILITY IDEOGRAPH|HANGUL SYLLABLE|YI SYLLABLE|"
                    r"TANGUT (IDEOGRAPH|COMPONENT)|KHITAN SMALL SCRIPT|NUSHU CHARACTER|EGYPTIAN HIEROGLYPH|"
                    r"ANATOLIAN HIEROGLYPH)")
NUMBERED = re.compile(r"(-[0-9A-F]{4,6}$)|\b[A-Z]*\d{2,}[A-Z]*\b")
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}
CATEGORY_NAMES = {
    "Lu": "uppercase letter", "Ll": "lowercase letter", "Lt": "titlecase letter", "Lm": "modifier letter",
    "Lo": "other letter", "Mn": "nonspacing mark", "Mc": "spacing mark", "Me": "enclosing mark",
    "Nd": "decimal number", "Nl": "letter number", "No": "other number", "Pc": "connector punctuation",
    "Pd": "dash punctuation", "Ps": "open punctuation", "Pe": "close punctuation", "Pi": "initial quote",
    "Pf": "final quote", "Po": "other punctuation", "Sm": "math symbol", "Sc": "currency symbol",
    "Sk": "modifier symbol", "So": "other symbol",
}


def descriptive_name(char: str) -> str | None:
    """The character's Unicode name if it describes the character, else None."""
    name = unicodedata.name(char, None)
    if not name or unicodedata.category(char) in INVISIBLE or OPAQUE.match(name) or NUMBERED.search(name):
        return None
    return name


def caption_and_classes(char: str) -> tuple[str, dict[str, str]]:
    from fontTools import unicodedata as fu

    block = fu.block(char)
    script = fu.script_name(fu.script(char), default=fu.script(char))
    caption = f"{unicodedata.name(char).lower()}, {block.lower()}"
    classes = {"script": script.replace("_", " ").lower(), "block": block.lower(),
               "category": CATEGORY_NAMES.get(unicodedata.category(char), unicodedata.category(char))}
    return caption, classes


def font_paths(ws: Workspace) -> list[Path]:
    paths: list[Path] = []
    for package, pattern in FONT_FILES.items():
        root = debian_package_root(package, ws)
        for part in _expand_braces(pattern):
            paths.extend(sorted(root.glob(part)))
    return paths


def _expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^}]*)\}", pattern)
    if not match:
        return [pattern]
    return [pattern[:match.start()] + option + pattern[match.end():] for option in match.group(1).split(",")]


def coverage(paths: list[Path]) -> dict[int, list[int]]:
    """Code point → indices (into ``paths``) of the fonts whose cmap has it."""
    from fontTools.ttLib import TTFont

    covered: dict[int, list[int]] = {}
    for index, path in enumerate(paths):
        for codepoint in TTFont(str(path), lazy=True).getBestCmap():
            covered.setdefault(codepoint, []).append(index)
    return covered


def choose_fonts(codepoint: int, candidates: list[int], paths: list[Path]) -> list[int]:
    """Up to FONTS_PER_CHAR fonts, a seeded choice that favours different families."""
    def rank(index: int) -> str:
        return hashlib.sha1(f"{codepoint}:{paths[index].name}".encode()).hexdigest()

    chosen, families = [], set()
    for index in sorted(candidates, key=rank):
        family = re.split(r"[-_]", paths[index].stem)[0]
        if family not in families:
            chosen.append(index)
            families.add(family)
        if len(chosen) == FONTS_PER_CHAR:
            break
    return chosen


@lru_cache(maxsize=64)
def _font(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, 96)


def render(char: str, font_path: str) -> Image.Image | None:
    """Black glyph on white, scaled to fit and centred in SIZE × SIZE; None when nothing is drawn."""
    canvas = Image.new("L", (192, 192), 255)
    ImageDraw.Draw(canvas).text((48, 48), char, font=_font(font_path), fill=0)
    box = ImageChops.invert(canvas).getbbox()
    if box is None:
        return None
    glyph = canvas.crop(box)
    scale = (SIZE - 8) / max(glyph.size)
    if scale < 1:
        glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                             Image.Resampling.LANCZOS)
    out = Image.new("L", (SIZE, SIZE), 255)
    out.paste(glyph, ((SIZE - glyph.width) // 2, (SIZE - glyph.height) // 2))
    return out


def _render_item(item: tuple[int, list[str]]) -> list[tuple[str, Image.Image | None]]:
    codepoint, fonts = item
    return [(Path(font).stem, render(chr(codepoint), font)) for font in fonts]


def samples(ws: Workspace, limit: int | None = None, skipped: dict | None = None) -> Iterator[Sample]:
    paths = font_paths(ws)
    covered = coverage(paths)
    items = []
    for codepoint in range(0x110000):
        char = chr(codepoint)
        if descriptive_name(char) is None:
            continue
        if codepoint not in covered:
            if skipped is not None:
                skipped["no font covers it"] = skipped.get("no font covers it", 0) + 1
            continue
        items.append((codepoint, [str(paths[i]) for i in choose_fonts(codepoint, covered[codepoint], paths)]))
    if limit is not None:
        items = spread_runs(items, limit, run=300)  # a few blocks, each with enough held-out characters
    for (codepoint, _), renders in zip(items, ordered_map(_render_item, items)):
        caption, classes = caption_and_classes(chr(codepoint))
        for font, image in renders:
            if image is None:
                if skipped is not None:
                    skipped["blank render"] = skipped.get("blank render", 0) + 1
                continue
            yield Sample(uid=f"U+{codepoint:04X}/{font}", image=image, caption=caption, source=NAME,
                         classes=classes, group=f"U+{codepoint:04X}")
