#!/usr/bin/env python3
"""The book's link check and the code's citation check (scripts/docs runs it after mdbook).

Links: every relative link and image in docs/src/**/*.md, README.md, CONTRIBUTING.md and
BENCHMARKS.md points at a file that exists, and every `#anchor` at a heading (or an HTML id) of
its page; a link of the book stays inside the book (docs/src), so the HTML book has it too.
`{{#include FILE[:ANCHOR|:FROM:TO]}}` is expanded as mdbook does, and the included file must
exist. Every page of docs/src is in SUMMARY.md. Heading ids are made as mdbook makes them; with
the built book (docs/book) at hand, each id is also looked up in its HTML page.

Citations: a document named in a line of crates/**/*.rs, fuzz/**/*.rs or scripts/* (`NAME.md`)
must exist: a bare name in docs/src/reference/ or at the repository's root, a name with a folder
from the root. A section cited after it (`NAME.md §3`, `NAME.md section 3`) must be a heading
`N.` of that document, and a section may not be cited without its document ("contract
section 4"). The rule is the book's: docs/src/reference/index.md.

Usage: scripts/check-docs.py [ROOT]        check the repository at ROOT (default: this one)
       scripts/check-docs.py --self-test   prove the checks fail on broken links and citations
Standard library only.
"""

import html
import os
import re
import sys
import tempfile
from pathlib import Path

REFERENCE = Path("docs/src/reference")
BOOK_SRC = Path("docs/src")
ROOT_PAGES = ["README.md", "CONTRIBUTING.md", "BENCHMARKS.md"]
SKIP_DIRS = {"target", "corpus", "artifacts", ".git", "node_modules"}

FENCE = re.compile(r"^\s*(```|~~~)")
INCLUDE = re.compile(r"\{\{#include\s+([^}\s]+)\s*\}\}")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HTML_REF = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
HTML_ID = re.compile(r"""\bid\s*=\s*["']([^"']+)["']""")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# (A name right after `$`, `{` or `}` is a path built by a script, e.g. "$stage/usr/README.md", not a citation.)
CITATION = re.compile(r"(?<![\w./\${}-])((?:[\w.-]+/)*[\w.-]*[\w-])\.md\b")
SECTION_AFTER = re.compile(r"^`?\)?,?\s*(?:§\s*|section\s+)(\d+)")
UNNAMED_SECTION = re.compile(r"\b(?:contract|spec|specification)\s+(?:§\s*|section\s+)\d+|(?<![\w`])§\s*\d+")


def strip_code_spans(line):
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def slug_text(heading):
    """A heading's text as mdbook renders it, without markup."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"<[^>]*>", "", text)  # inline HTML
    text = text.replace("**", "").replace("*", "")
    return html.unescape(text).strip()


def slug(heading):
    """mdbook's id for a heading: letters, digits, '_' and '-' (lowercased), white space as '-'."""
    out = []
    for ch in slug_text(heading):
        if ch.isalnum() or ch in "_-":
            out.append(ch.lower())
        elif ch.isspace():
            out.append("-")
    return "".join(out)


class Page:
    """A Markdown file with its includes expanded: its lines (outside code blocks) and ids."""

    def __init__(self, path, errors, root):
        self.path = path
        self.lines = []  # (line number, text) outside fenced code
        self.headings = []  # ids, in order
        self.html_ids = set()
        text = expand(path, path.read_text(encoding="utf-8"), errors, root)
        used = set()
        fenced = None
        for number, line in enumerate(text.split("\n"), 1):
            m = FENCE.match(line)
            if m:
                if fenced is None:
                    fenced = m.group(1)
                elif m.group(1) == fenced:
                    fenced = None
                continue
            if fenced:
                continue
            self.lines.append((number, line))
            h = HEADING.match(line)
            if h:
                base = slug(h.group(2))
                anchor, i = base, 1
                while anchor in used:
                    anchor = f"{base}-{i}"
                    i += 1
                used.add(anchor)
                self.headings.append(anchor)
            for m in HTML_ID.finditer(strip_code_spans(line)):
                self.html_ids.add(m.group(1))

    def anchors(self):
        return set(self.headings) | self.html_ids


def expand(path, text, errors, root, depth=0):
    """Expands mdbook's `{{#include}}` (a whole file, an ANCHOR's lines, or lines FROM:TO)."""

    def one(m):
        spec = m.group(1)
        parts = spec.split(":")
        target = (path.parent / parts[0]).resolve()
        if not target.is_file():
            errors.append(f"{rel(path, root)}: {{{{#include {spec}}}}}: no file {parts[0]}")
            return ""
        lines = target.read_text(encoding="utf-8").split("\n")
        if len(parts) == 2 and not parts[1].isdigit():
            name = parts[1]
            start = next((i for i, l in enumerate(lines) if re.search(rf"ANCHOR:\s*{re.escape(name)}\b", l)), None)
            end = next((i for i, l in enumerate(lines) if re.search(rf"ANCHOR_END:\s*{re.escape(name)}\b", l)), None)
            if start is None or end is None or end < start:
                errors.append(f"{rel(path, root)}: {{{{#include {spec}}}}}: no anchor {name} in {parts[0]}")
                return ""
            lines = lines[start + 1 : end]
        elif len(parts) >= 2:
            first = int(parts[1]) if parts[1] else 1
            last = int(parts[2]) if len(parts) > 2 and parts[2] else len(lines)
            lines = lines[first - 1 : last]
        lines = [l for l in lines if not re.search(r"ANCHOR(_END)?:", l)]
        included = "\n".join(lines)
        return expand(target, included, errors, root, depth + 1) if depth < 5 else included

    return INCLUDE.sub(one, text)


def rel(path, root):
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def links_of(page):
    """(line, target) of every link, image, reference definition and HTML href/src."""
    for number, line in page.lines:
        plain = strip_code_spans(line)
        for m in LINK.finditer(plain):
            yield number, m.group(1)
        m = REF_DEF.match(plain)
        if m:
            yield number, m.group(1)
        for m in HTML_REF.finditer(plain):
            yield number, m.group(1)


def check_links(root, errors):
    book = (root / BOOK_SRC).resolve()
    files = [root / p for p in ROOT_PAGES if (root / p).is_file()]
    files += sorted((root / BOOK_SRC).rglob("*.md"))
    pages = {}

    def page(path):
        path = path.resolve()
        if path not in pages:
            pages[path] = Page(path, errors, root)
        return pages[path]

    count = 0
    for path in files:
        p = page(path)
        in_book = path.resolve().is_relative_to(book)
        for number, target in links_of(p):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
                continue  # another site: not checked here
            count += 1
            where = f"{rel(path, root)}:{number}: {target}"
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path.resolve()
            if not dest.exists():
                errors.append(f"{where}: no such file")
                continue
            if in_book and not dest.is_relative_to(book):
                errors.append(f"{where}: leaves the book (docs/src): name the repository's file in a code span instead")
                continue
            if anchor:
                if dest.suffix != ".md":
                    errors.append(f"{where}: an anchor into a file that is not a page")
                elif anchor not in page(dest).anchors():
                    errors.append(f"{where}: no heading or id `{anchor}` in {rel(dest, root)}")
    return count, pages


def check_summary(root, errors):
    summary = root / BOOK_SRC / "SUMMARY.md"
    if not summary.is_file():
        errors.append(f"{BOOK_SRC}/SUMMARY.md: missing")
        return []
    listed = []
    for m in LINK.finditer(summary.read_text(encoding="utf-8")):
        listed.append((summary.parent / m.group(1)).resolve())
    for path in sorted((root / BOOK_SRC).rglob("*.md")):
        if path.name != "SUMMARY.md" and path.resolve() not in listed:
            errors.append(f"{rel(path, root)}: a page that SUMMARY.md does not list")
    return listed


def check_built_ids(root, listed, pages, errors):
    """Each heading id the check computes is an id of the page mdbook built."""
    out = root / "docs/book"
    if not out.is_dir():
        return 0
    src = (root / BOOK_SRC).resolve()
    count = 0
    for path in listed:
        built = out / path.relative_to(src).with_suffix(".html")
        if path.name == "SUMMARY.md" or path not in pages or not built.is_file():
            continue
        ids = set(HTML_ID.findall(built.read_text(encoding="utf-8")))
        for anchor in pages[path].headings:
            count += 1
            if anchor not in ids and html.escape(anchor, quote=True) not in ids:
                errors.append(f"{rel(path, root)}: mdbook gave the heading `{anchor}` another id (the check's slug is wrong)")
    return count


def source_files(root):
    for top in ["crates", "fuzz"]:
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            for name in filenames:
                if name.endswith(".rs"):
                    yield Path(dirpath) / name
    scripts = root / "scripts"
    if scripts.is_dir():
        for dirpath, dirnames, filenames in os.walk(scripts):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            for name in filenames:
                yield Path(dirpath) / name


def sections(doc):
    found = set()
    for line in doc.read_text(encoding="utf-8").split("\n"):
        m = re.match(r"^#{1,6}\s+(\d+)\.", line)
        if m:
            found.add(m.group(1))
    return found


def check_citations(root, errors):
    count = 0
    this = Path(__file__).resolve()
    for path in source_files(root):
        if path.resolve() == this:
            continue  # this file names its examples
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.split("\n"), 1):
            where = f"{rel(path, root)}:{number}"
            named = list(CITATION.finditer(line))
            covered = []
            for m in named:
                if line[: m.start()].endswith("]("):
                    continue  # a Markdown link the code writes: the link check reads the page it makes
                name = m.group(1) + ".md"
                count += 1
                if "/" in name:
                    doc = root / name
                else:
                    doc = root / REFERENCE / name
                    if not doc.is_file():
                        doc = root / name
                if not doc.is_file():
                    errors.append(f"{where}: cites {name}, which the repository does not have "
                                  f"(a bare name is looked up in {REFERENCE}/ and at the root)")
                    continue
                after = SECTION_AFTER.match(line[m.end():])
                if after:
                    covered.append((m.end(), m.end() + after.end()))
                    if after.group(1) not in sections(doc):
                        errors.append(f"{where}: cites section {after.group(1)} of {name}, which has no heading "
                                      f"`{after.group(1)}.`")
            for m in UNNAMED_SECTION.finditer(line):
                if not any(start <= m.start() < end for start, end in covered):
                    errors.append(f"{where}: `{m.group(0)}` cites a section without naming its document")
    return count


def check(root):
    root = Path(root).resolve()
    errors = []
    links, pages = check_links(root, errors)
    listed = check_summary(root, errors)
    ids = check_built_ids(root, listed, pages, errors)
    citations = check_citations(root, errors)
    return errors, (links, ids, citations)


def self_test():
    """A small repository with one of each mistake: each must be reported, and nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "docs/src/reference").mkdir(parents=True)
        (root / "crates/x/src").mkdir(parents=True)
        files = {
            "README.md": "[ok](docs/src/a.md#a-heading) [broken](docs/src/missing.md)\n",
            "docs/src/SUMMARY.md": "# Summary\n\n- [A](a.md)\n- [Spec](reference/spec.md)\n",
            "docs/src/a.md": "# A heading\n\n## Same\n\n## Same\n\n[fine](#same-1) [bad anchor](#nowhere) "
                             "[out](../../README.md) `[not a link](nowhere.md)`\n\n```\n[in code](nowhere.md)\n```\n",
            "docs/src/orphan.md": "# Not in the summary\n",
            "docs/src/reference/spec.md": "# Spec\n\n## 1. First\n\n## 2. Second\n",
            "crates/x/src/lib.rs": "//! spec.md §2 and spec.md section 1 are fine; gone.md is not.\n"
                                   "/// spec.md §9 has no such section; the contract section 4 names no document.\n",
        }
        for name, text in files.items():
            (root / name).write_text(text, encoding="utf-8")
        errors, _ = check(root)
        expected = [
            "README.md:1: docs/src/missing.md: no such file",
            "docs/src/a.md:7: #nowhere: no heading or id `nowhere`",
            "docs/src/a.md:7: ../../README.md: leaves the book",
            "docs/src/orphan.md: a page that SUMMARY.md does not list",
            "crates/x/src/lib.rs:1: cites gone.md",
            "crates/x/src/lib.rs:2: cites section 9 of spec.md",
            "crates/x/src/lib.rs:2: `contract section 4` cites a section without naming its document",
        ]
        missing = [e for e in expected if not any(err.startswith(e) for err in errors)]
        extra = [err for err in errors if not any(err.startswith(e) for e in expected)]
        if missing or extra:
            print("check-docs self-test FAILED", file=sys.stderr)
            for e in missing:
                print(f"  not reported: {e}", file=sys.stderr)
            for e in extra:
                print(f"  reported wrongly: {e}", file=sys.stderr)
            return 1
        print(f"check-docs self-test: each of {len(expected)} planted mistakes reported")
        return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    errors, (links, ids, citations) = check(root)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"check-docs: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-docs: {links} links, {ids} heading ids against the built book, {citations} citations: all resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
