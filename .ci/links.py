"""Checks every relative link of the repository's Markdown files: the file or folder must exist,
and a `#anchor` must name a heading of the target file (GitHub's anchor rules: lower case,
punctuation dropped, spaces to hyphens, repeats numbered). Links to other sites are not
fetched (CI has no internet). Exits 1 listing every broken link."""

import os
import re
import subprocess
import sys

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text):
    """The text outside fenced code blocks and inline code."""
    out, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(out)


def anchors(path):
    found, seen = set(), {}
    fenced = False
    for line in open(path, encoding="utf-8").read().split("\n"):
        if FENCE.match(line.strip()):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip()
        slug = re.sub(r"[^\w\- ]", "", title.lower().replace("`", "")).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def main():
    files = subprocess.check_output(["git", "ls-files", "*.md"], text=True).split()
    files = [f for f in files if "node_modules/" not in f]
    broken = []
    for md in files:
        text = prose(open(md, encoding="utf-8").read())
        for match in LINK.finditer(text):
            target = match.group(1) or match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # another site, mailto:
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
            if not os.path.exists(resolved):
                broken.append(f"{md}: {target} (no {resolved})")
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                broken.append(f"{md}: {target} (no heading #{anchor} in {resolved})")
    for b in broken:
        print("broken link:", b)
    print(f"links: {len(files)} Markdown files checked, {len(broken)} broken")
    sys.exit(1 if broken else 0)


main()
