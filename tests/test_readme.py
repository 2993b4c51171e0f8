"""The README a newcomer reads: every link resolves, and its Python example runs and prints what it shows."""
import os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

def links(text):
    text = re.sub(r"```.*?```", "", text, flags=re.S)              # links inside code blocks are not links
    return re.findall(r"\]\(([^)\s]+)\)", text)

def test_readme_has_links():
    assert len(links(README)) >= 8

@pytest.mark.parametrize("target", sorted(set(links(README))))
def test_every_readme_link_resolves(target):
    if re.match(r"^[a-z]+:", target): pytest.skip("external link: not checked offline")
    path = target.split("#")[0]
    assert path and (ROOT / path).exists(), f"README links to {target}, which does not exist"

def section(title):
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]

def test_python_example_runs_and_prints_what_the_readme_shows(tmp_path):
    text = section("Use it from Python")
    codes = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(codes) == 1, "expected one Python example"
    code = codes[0]
    after = text.split("```python\n", 1)[1].split("```", 1)[1]
    shown = "\n".join(b.strip("\n") for b in re.findall(r"```\n(.*?)```", after, flags=re.S))   # its printed output
    assert shown
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=900,
                       env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == shown.strip()

def test_only_existing_notebooks_are_listed():
    for nb in re.findall(r"\]\(nbs/([^)]+\.ipynb)\)", README): assert (ROOT / "nbs" / nb).is_file()
    listed = set(re.findall(r"\]\(nbs/([^)]+\.ipynb)\)", README))
    assert listed == {p.name for p in (ROOT / "nbs").glob("[0-9]*.ipynb")}
