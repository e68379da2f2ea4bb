#!/usr/bin/env python3
"""The reference word count (docs/design.md §1), used by tests/offline/differential.rs.

    re.findall(r'\\w+', text) -> keep w.isalpha() -> collections.Counter

except that a word longer than 65536 bytes in the input's encoding is
skipped, as wordstream skips it (MAX_TOKEN_BYTES).

`text` is the input's bytes decoded as UTF-8 with errors='replace' (invalid
bytes become U+FFFD, a non-word character) or as ISO-8859-1. `--lowercase`
applies `str.lower()` to each word after the isalpha filter (wordstream's
documented semantics: per word, so the final-sigma context is the word).

Usage: oracle.py [--encoding utf8|latin1] [--lowercase] [--per-file] PATH...

PATH is a file, a directory (walked recursively, files in sorted order) or
`-` (stdin). Output on stdout, in sections:

    #file<TAB>NAME<TAB>INVALID<TAB>WORDS<TAB>DISTINCT   (each input file, with --per-file)
    word<TAB>count                                      (its counts)
    ...
    #path<TAB>PATH<TAB>INVALID<TAB>WORDS<TAB>DISTINCT   (each PATH argument: all its files)
    ...
    #all<TAB>-<TAB>INVALID<TAB>WORDS<TAB>DISTINCT       (always last: every PATH together)
    ...

Counts are sorted by count descending, then word ascending by UTF-8 bytes,
exactly as `wordstream count-local --output tsv` prints them. INVALID is the
number of bytes inside invalid UTF-8 subparts (0 for latin1). A word never
contains '#' or a TAB, so section headers cannot be mistaken for counts.
"""
import codecs
import collections
import os
import re
import sys

WORD = re.compile(r"\w+")
MAX_TOKEN_BYTES = 64 << 10


class InvalidBytes:
    """A codecs error handler that replaces like 'replace' and sums the
    lengths of the invalid subparts it is handed."""

    def __init__(self):
        self.total = 0

    def __call__(self, err):
        self.total += err.end - err.start
        return ("\ufffd", err.end)


INVALID = InvalidBytes()
codecs.register_error("wordstream-oracle-count", INVALID)


def words_of(data, encoding, lowercase):
    """The Counter of one input and its invalid byte count."""
    if encoding == "latin1":
        text, invalid = data.decode("latin-1"), 0
    else:
        before = INVALID.total
        text = data.decode("utf-8", "wordstream-oracle-count")
        invalid = INVALID.total - before
        # Cross-check the handler against the standard 'replace' handler.
        assert text == data.decode("utf-8", "replace")
    # A token's bytes in the input: it holds no U+FFFD, so it encodes back.
    width = len if encoding == "latin1" else (lambda w: len(w.encode("utf-8")))
    words = [w for w in WORD.findall(text) if w.isalpha() and width(w) <= MAX_TOKEN_BYTES]
    if lowercase:
        words = [w.lower() for w in words]
    return collections.Counter(words), invalid


def section(out, tag, name, counter, invalid):
    rows = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0].encode("utf-8")))
    out.write(
        ("#%s\t%s\t%d\t%d\t%d\n" % (tag, name, invalid, sum(counter.values()), len(counter))).encode(
            "utf-8", "surrogateescape"
        )
    )
    out.write("".join("%s\t%d\n" % kv for kv in rows).encode("utf-8"))


def inputs(p):
    """(name, bytes) of every file of one PATH argument."""
    if p == "-":
        yield "-", sys.stdin.buffer.read()
    elif os.path.isdir(p):
        found = []
        for root, _dirs, files in os.walk(p, followlinks=True):
            found.extend(os.path.join(root, f) for f in files)
        # count-local sorts by file name within each directory (walkdir);
        # the order does not change a sum, so plain sorting is enough.
        for f in sorted(found):
            with open(f, "rb") as fh:
                yield f, fh.read()
    else:
        with open(p, "rb") as fh:
            yield p, fh.read()


def main(argv):
    encoding, lowercase, per_file, paths = "utf8", False, False, []
    it = iter(argv)
    for a in it:
        if a == "--encoding":
            encoding = next(it)
        elif a == "--lowercase":
            lowercase = True
        elif a == "--per-file":
            per_file = True
        else:
            paths.append(a)
    if encoding not in ("utf8", "latin1"):
        sys.exit("oracle.py: unknown encoding %r" % encoding)
    out = sys.stdout.buffer
    total, total_invalid = collections.Counter(), 0
    for path in paths:
        group, group_invalid = collections.Counter(), 0
        for name, data in inputs(path):
            counter, invalid = words_of(data, encoding, lowercase)
            if per_file:
                section(out, "file", name, counter, invalid)
            group.update(counter)
            group_invalid += invalid
        section(out, "path", path, group, group_invalid)
        total.update(group)
        total_invalid += group_invalid
    section(out, "all", "-", total, total_invalid)


if __name__ == "__main__":
    main(sys.argv[1:])
