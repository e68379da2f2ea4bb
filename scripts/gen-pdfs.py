#!/usr/bin/env python3
"""Makes PDFs of known texts, for the PDF accuracy check (scripts/pdf-accuracy)
and the tests: each TEXT file becomes OUT/<name>.pdf, typeset with fpdf2 in a
TrueType font, with what real publications do to words:

- lines are justified by hand and long words are hyphenated across line
  ends (`exam-` / `ple`);
- `fi`, `fl`, `ff`, `ffi`, `ffl` inside words are set as ligature glyphs
  (U+FB00..U+FB04), as TeX does.

A reader sees the original words; the PDF's text layer has the hyphens and
the ligature characters, which the extractor must undo.

    gen-pdfs.py --font FONT.ttf OUT TEXT...
"""
import argparse
import os
import re

from fpdf import FPDF

LIGATURES = [("ffi", "\ufb03"), ("ffl", "\ufb04"), ("ff", "\ufb00"), ("fi", "\ufb01"), ("fl", "\ufb02")]
WORD = re.compile(r"^[^\W\d_]+$")


def ligate(word):
    for seq, lig in LIGATURES:
        word = word.replace(seq, lig)
    return word


def paragraphs(text):
    for block in re.split(r"\n\s*\n", text):
        words = block.split()
        if words:
            yield words


def typeset(pdf, text, width):
    for words in paragraphs(text):
        line = []
        i = 0
        while i < len(words):
            word = words[i]
            shown = ligate(word)
            candidate = " ".join(line + [shown])
            if pdf.get_string_width(candidate) <= width or not line:
                line.append(shown)
                i += 1
                continue
            # Hyphenate a long alphabetic word across the line end.
            if WORD.match(word) and len(word) >= 7:
                for cut in range(len(word) - 3, 2, -1):
                    head = ligate(word[:cut]) + "-"
                    if pdf.get_string_width(" ".join(line + [head])) <= width:
                        line.append(head)
                        words[i] = word[cut:]
                        break
            pdf.cell(width, 5, " ".join(line), new_x="LMARGIN", new_y="NEXT")
            line = []
        if line:
            pdf.cell(width, 5, " ".join(line), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--font", required=True)
    ap.add_argument("out")
    ap.add_argument("texts", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for path in args.texts:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        pdf = FPDF(format="A4")
        pdf.set_margins(25, 25, 25)
        pdf.set_auto_page_break(True, 25)
        pdf.add_font("body", "", args.font)
        pdf.set_font("body", size=10)
        pdf.add_page()
        typeset(pdf, text, pdf.w - 50)
        name = os.path.splitext(os.path.basename(path))[0]
        pdf.output(os.path.join(args.out, name + ".pdf"))


if __name__ == "__main__":
    main()
