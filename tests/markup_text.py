#!/usr/bin/env python3
"""The reference text extraction of XML and HTML, used by
tests/offline/formats.rs: what wordstream's format layer
(src/format/markup.rs) must yield, computed with Python's standard parsers.

    markup_text.py FILE      (FILE ends in .xml/.nxml → xml.etree; else html.parser)

Prints the text nodes (entities decoded) on stdout. Boundaries of elements
separate words (a newline) except those of INLINE elements; the content of
EXCLUDED elements, comments, processing instructions and the doctype does
not count. Pipe the output into tests/oracle.py for the counts.
"""
import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

INLINE = {
    # HTML
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
    "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt",
    "u", "var", "wbr",
    # JATS
    "italic", "bold", "sc", "monospace", "underline", "overline", "roman", "sans-serif",
    "named-content", "styled-content", "ext-link", "uri", "abbrev", "xref", "email",
}
EXCLUDED = {"script", "style", "math", "tex-math"}


def local(tag):
    tag = tag.rsplit("}", 1)[-1]
    return tag.rsplit(":", 1)[-1].lower()


def xml_text(path):
    out = []

    def walk(el):
        name = local(el.tag)
        if name in EXCLUDED:
            out.append("\n")
            return
        inline = name in INLINE
        if not inline:
            out.append("\n")
        if el.text:
            out.append(el.text)
        for child in el:
            walk(child)
            if child.tail:
                out.append(child.tail)
        if not inline:
            out.append("\n")

    walk(ET.parse(path).getroot())
    return "".join(out)


class Html(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.out = []

    def handle_starttag(self, tag, attrs):
        if self.skip or tag in EXCLUDED:
            self.skip += 1
        elif tag not in INLINE:
            self.out.append("\n")

    def handle_startendtag(self, tag, attrs):
        if not self.skip and tag not in INLINE:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if self.skip:
            self.skip -= 1
            if not self.skip:
                self.out.append("\n")
        elif tag not in INLINE:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_charset(data):
    """The encoding an HTML document declares: its BOM, else a <meta>
    charset in its first 1,024 bytes, else UTF-8."""
    for bom, name in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return name
    m = re.search(rb"<meta[^>]*?charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", data[:1024], re.I)
    return m.group(1).decode("ascii") if m else "utf-8"


def html_text(path):
    p = Html()
    with open(path, "rb") as f:
        data = f.read()
    p.feed(data.decode(html_charset(data), errors="replace"))
    p.close()
    return "".join(p.out)


def main():
    path = sys.argv[1]
    text = xml_text(path) if path.endswith((".xml", ".nxml")) else html_text(path)
    sys.stdout.buffer.write(text.encode("utf-8"))


if __name__ == "__main__":
    main()
