#!/usr/bin/env python3
"""Build the course site: generate the MkDocs docs directory from the chapters, then run MkDocs.

    tools/site/build.py [--from-runs] [--src build/site-src] [--out site]

Nothing in the site is written by hand: every build copies
  README.md                         -> docs/index.md                       (the home page)
  lessons/NN_topic/README.md        -> docs/lessons/NN_topic/index.md      (one page per chapter, in order)
  the images and Markdown pages the chapters link to (e.g. lessons/06_gates/full/report.md)
  runs/12_showdown/report.md        -> docs/runs/12_showdown/report.md     (when the learner has run it)
and KaTeX from Debian's libjs-katex into docs/assets/katex/ (no CDN: the site works offline).

Links are rewritten so that they resolve in the site: a chapter's README.md becomes its index.md;
an image or page the site copies keeps its relative path; a link to anything else in the
repository (a source file, which the site does not carry) becomes the file's repository path shown
as code, e.g. [the model](../common/models.cpp) -> the model (`lessons/common/models.cpp`).
External links (http:, https:, mailto:) and anchors (#...) are left alone. Code (fenced blocks and
`inline code`) is never touched.

--from-runs: where runs/NN_topic/ holds a figure a chapter shows, the page shows the learner's
figure instead, and a note at the top of each chapter says which figures are whose.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KATEX = Path("/usr/share/javascript/katex")
ASSET_EXT = {".png", ".svg", ".jpg", ".jpeg", ".gif", ".csv"}

LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```+|~~~+)")
MARKER = re.compile(r"^<!--.*-->\s*$")


class Site:
    def __init__(self, docs: Path, from_runs: bool):
        self.docs = docs
        self.from_runs = from_runs
        self.pages = {}       # repo path (posix str) -> docs path, pages the site carries
        self.copied = {}      # docs path -> source file actually copied (lesson or run)
        self.notes = {}       # repo path of a page -> list of (figure, from run?)

    # --- where things go -------------------------------------------------------------------
    def docs_path(self, repo_path: str):
        """The docs path of a repository file, or None when the site does not carry it."""
        if repo_path in self.pages:
            return self.pages[repo_path]
        p = PurePosixPath(repo_path)
        if p.parts[:1] in (("lessons",), ("runs",)) and p.suffix.lower() in ASSET_EXT | {".md"}:
            if (ROOT / repo_path).is_file():
                return repo_path
        return None

    def copy_asset(self, repo_path: str, page: str):
        """Copy an image (or a page's companion file) into docs/, from runs/ when asked and there."""
        if repo_path in self.copied:
            return
        src = ROOT / repo_path
        p = PurePosixPath(repo_path)
        from_run = False
        if self.from_runs and p.parts[0] == "lessons" and len(p.parts) == 3:
            run_file = ROOT / "runs" / p.parts[1] / p.parts[2]
            if run_file.is_file():
                src, from_run = run_file, True
        dst = self.docs / repo_path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        self.copied[repo_path] = src
        if p.suffix.lower() != ".md":
            name = "/".join(p.parts[2:]) if p.parts[0] == "lessons" else p.name  # full/recall_vs_T.png
            self.notes.setdefault(page, []).append((name, from_run))

    # --- link rewriting ------------------------------------------------------------------------
    def rewrite_links(self, text: str, repo_path: str) -> str:
        base = PurePosixPath(repo_path).parent
        lines = text.split("\n")
        out = []
        for line, prose in zip(lines, prose_mask(lines)):
            if not prose:
                out.append(line)
                continue
            # split off inline code spans: even pieces are prose, odd pieces are code
            pieces = re.split(r"(`+[^`]*`+)", line)
            for i in range(0, len(pieces), 2):
                pieces[i] = LINK.sub(lambda mm: self.rewrite_one(mm, base, repo_path), pieces[i])
            out.append("".join(pieces))
        return "\n".join(out)

    def rewrite_one(self, m, base: PurePosixPath, page: str) -> str:
        bang, label, target = m.group(1), m.group(2), m.group(3)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return m.group(0)
        path, _, frag = target.partition("#")
        repo = os.path.normpath(str(base / path)).replace(os.sep, "/")
        dst = self.docs_path(repo)
        if dst is None:
            if bang:  # an image the repository does not have: leave it, the check reports it
                return m.group(0)
            code = f"`{repo}`"
            return code if label.strip("`") == repo or label == code else f"{label} ({code})"
        if dst == repo and repo not in self.pages:
            self.copy_asset(repo, page)
        here = PurePosixPath(self.pages[page]).parent
        rel = os.path.relpath(dst, str(here) if str(here) != "." else ".").replace(os.sep, "/")
        return f"{bang}[{label}]({rel}{'#' + frag if frag else ''})"

    # --- pages -------------------------------------------------------------------------------
    def write_page(self, repo_path: str, text: str, note: str = ""):
        text = self.rewrite_links(text, repo_path)
        text = blank_around_markers(text)
        text = display_math_blocks(text)
        figures = self.notes.get(repo_path, [])
        if self.from_runs and repo_path.startswith("lessons/") and figures:
            text = insert_after_title(text, figures_note(repo_path, figures))
        if note:
            text = insert_after_title(text, note)
        dst = self.docs / self.pages[repo_path]
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text, encoding="utf-8")


def prose_mask(lines):
    """For each line, True when it is prose: False when it opens or closes a fenced code block or
    sits inside one (a fence closes with the character that opened it)."""
    mask, in_fence = [], None
    for line in lines:
        m = FENCE.match(line)
        if m:
            if in_fence is None:
                in_fence = m.group(1)[0]
            elif m.group(1)[0] == in_fence:
                in_fence = None
            mask.append(False)
        else:
            mask.append(in_fence is None)
    return mask


def blank_around_markers(text: str) -> str:
    """Put a blank line before and after each line that is only an HTML comment (the chapters'
    `<!-- generated: ... -->` markers), so that Python-Markdown reads the Markdown between them
    as Markdown. Inside a fenced block nothing changes. Only the copy changes, never the chapter."""
    out = []
    lines = text.split("\n")
    prose = prose_mask(lines)
    for i, line in enumerate(lines):
        if prose[i] and MARKER.match(line):
            if out and out[-1].strip():
                out.append("")
            out.append(line)
            if i + 1 < len(lines) and lines[i + 1].strip():
                out.append("")
            continue
        out.append(line)
    return "\n".join(out)


def display_math_blocks(text: str) -> str:
    """A line that is only $$...$$ inside a paragraph (as GitHub allows, and lesson 14 writes inside
    its list items) becomes a block of its own, which is what pymdownx.arithmatex renders as display
    math (mid-paragraph it would nest an inline formula in another). Inside a list item, Python-Markdown
    wants blocks after a blank line indented by 4: the formula and the rest of the item are indented
    so (k spaces -> max(4, 2k)). Only the copy changes, never the chapter."""
    lines = text.split("\n")
    prose = prose_mask(lines)
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if (prose[i] and len(s) > 4 and s.startswith("$$") and s.endswith("$$")
                and out and out[-1].strip()):
            k = len(line) - len(line.lstrip(" "))
            new = " " * (max(4, 2 * k) if k else 0)
            out += ["", new + s, ""]
            i += 1
            while k and i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip(" ")) >= k:
                out.append(new + lines[i][k:])  # the rest of the item, now a paragraph of the item
                i += 1
            if k and i < len(lines) and lines[i].strip():
                out.append("")  # the next item starts after a blank line, not as a lazy continuation
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def insert_after_title(text: str, block: str) -> str:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return "\n".join(lines[: i + 1] + ["", block, ""] + lines[i + 1:])
    return block + "\n\n" + text


def figures_note(repo_path: str, figures) -> str:
    lesson = PurePosixPath(repo_path).parts[1]
    mine = [f for f, r in figures if r]
    theirs = [f for f, r in figures if not r]
    if mine and not theirs:
        body = f"All {len(mine)} figures on this page are your run's, from `runs/{lesson}/`."
    elif mine:
        body = (f"{len(mine)} of the {len(figures)} figures on this page are your run's, from "
                f"`runs/{lesson}/`: {', '.join(mine)}. The others are the committed ones "
                f"(`lessons/{lesson}/`), which your run has not written: {', '.join(theirs)}.")
    else:
        body = (f"`runs/{lesson}/` holds none of this page's figures (run `./lab run "
                f"{lesson[:2]}` to make them): these are the committed ones, from `lessons/{lesson}/`.")
    body += " The numbers in the text are the chapter's, from the run that last wrote it."
    return '!!! note "Figures: ' + ("your run" if mine else "the chapter's") + '"\n    ' + body


def title_of(md: Path) -> str:
    for line in md.read_text(encoding="utf-8").split("\n"):
        if line.startswith("# "):
            return line[2:].strip()
    return md.parent.name


def yaml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-runs", action="store_true", help="show the learner's runs/ figures where they exist")
    ap.add_argument("--src", default=str(ROOT / "build" / "site-src"), help="generated MkDocs project (default: build/site-src)")
    ap.add_argument("--out", default=str(ROOT / "site"), help="built site (default: site)")
    ap.add_argument("--no-build", action="store_true", help="only generate the docs directory")
    args = ap.parse_args()

    src = Path(args.src)
    if src.exists():
        shutil.rmtree(src)
    docs = src / "docs"
    docs.mkdir(parents=True)
    site = Site(docs, args.from_runs)

    lessons = sorted(p for p in (ROOT / "lessons").glob("[0-9][0-9]_*/README.md"))
    site.pages["README.md"] = "index.md"
    for md in lessons:
        rel = md.relative_to(ROOT).as_posix()
        site.pages[rel] = f"{md.parent.relative_to(ROOT).as_posix()}/index.md"
    # Markdown pages that live beside a chapter (lesson 06's full/report.md): pages too.
    extra_pages = []
    for md in lessons:
        for sub in sorted(md.parent.rglob("*.md")):
            if sub != md:
                rel = sub.relative_to(ROOT).as_posix()
                site.pages[rel] = rel
                extra_pages.append(rel)
    report = ROOT / "runs" / "12_showdown" / "report.md"
    if report.is_file():
        site.pages["runs/12_showdown/report.md"] = "runs/12_showdown/report.md"

    nav = ["nav:", "  - Home: index.md", "  - Lessons:"]
    site.write_page("README.md", (ROOT / "README.md").read_text(encoding="utf-8"))
    for md in lessons:
        rel = md.relative_to(ROOT).as_posix()
        site.write_page(rel, md.read_text(encoding="utf-8"))
        nav.append(f"      - {yaml_str(title_of(md))}: {site.pages[rel]}")
        if md.parent.name == "12_showdown" and "runs/12_showdown/report.md" in site.pages:
            nav.append(f"      - {yaml_str('12 · Your showdown run (runs/12_showdown/report.md)')}: runs/12_showdown/report.md")
    for rel in extra_pages:
        site.write_page(rel, (ROOT / rel).read_text(encoding="utf-8"))
    if "runs/12_showdown/report.md" in site.pages:
        note = ('!!! note "Your run"\n    This page is `runs/12_showdown/report.md`, written by your last '
                '`./lab run` (lesson 12), with its figures; the chapter itself is [lesson 12]'
                '(../../lessons/12_showdown/index.md).')
        site.write_page("runs/12_showdown/report.md", report.read_text(encoding="utf-8"), note)

    # KaTeX from Debian (fonts dereferenced: the package links them from fonts-katex), our init and CSS.
    if not (KATEX / "katex.min.js").exists():
        sys.exit(f"build.py: {KATEX} not found: install Debian's libjs-katex (./lab site does)")
    shutil.copytree(KATEX, docs / "assets" / "katex", symlinks=False,
                    ignore=shutil.ignore_patterns("*.mjs", "katex.js", "katex.css", "*.ttf", "*.woff"))
    shutil.copyfile(KATEX / "katex.js", docs / "assets" / "katex" / "katex.min.js")
    for f in ("katex-init.js", "site.css"):
        shutil.copyfile(HERE / f, docs / "assets" / f)

    config = (HERE / "mkdocs.yml").read_text(encoding="utf-8") + "\n" + "\n".join(nav) + "\n"
    (src / "mkdocs.yml").write_text(config, encoding="utf-8")
    n_pages = len(site.pages)
    n_figures = sum(1 for k in site.copied if PurePosixPath(k).suffix.lower() != ".md")
    from_run = sum(1 for v in site.copied.values() if ROOT / "runs" in v.parents)
    print(f"[site] generated {src.relative_to(ROOT) if src.is_relative_to(ROOT) else src}: {n_pages} pages, "
          f"{n_figures} figures" + (f" ({from_run} from runs/)" if args.from_runs else ""), file=sys.stderr)
    if args.no_build:
        return
    out = Path(args.out)
    cmd = ["/usr/bin/python3", "-m", "mkdocs", "build", "--strict", "--clean", "-q",
           "-f", str(src / "mkdocs.yml"), "-d", str(out)]
    r = subprocess.run(cmd)
    if r.returncode != 0:
        sys.exit(f"[site] mkdocs build failed ({' '.join(cmd)})")
    print(f"[site] built {out}/index.html", file=sys.stderr)


if __name__ == "__main__":
    main()
