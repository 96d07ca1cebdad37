"""Every relative link and image in README.md and docs/ points at a file that a clone of the
repository has: present, and not ignored by git (an ignored file exists only on the machine
that made it, so the link is broken for everyone else)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and ![alt](target); the target ends at whitespace or ")" (titles allowed)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def relative_links(path: Path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)   # not inside code blocks
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue      # http:, mailto:, an anchor in the same page
        yield target.split("#", 1)[0]


def in_a_git_checkout() -> bool:
    return shutil.which("git") is not None and subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--git-dir"], capture_output=True).returncode == 0


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    targets = [(t, (doc.parent / t).resolve()) for t in relative_links(doc)]
    missing = [t for t, p in targets if not p.exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"
    if in_a_git_checkout():
        inside = [str(p.relative_to(ROOT)) for _, p in targets if p.is_relative_to(ROOT)]
        ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *inside],
                                 capture_output=True, text=True).stdout.split()
        assert not ignored, f"{doc.relative_to(ROOT)} links to files git ignores: {ignored}"


def test_the_link_pattern_finds_images_and_links(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("see [x](b.md#part) and ![fig](img/c.png \"title\"), [web](https://x.org)\n"
                   "```\n[not](in-code.md)\n```\n[top](#here)\n")
    assert list(relative_links(doc)) == ["b.md", "img/c.png"]
