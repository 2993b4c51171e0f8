"""Write README.md from nbs/index.ipynb and its saved outputs (nbdev_readme needs Quarto; this does not).

Markdown cells are copied; code cells marked `#| hide` are dropped; code cells marked `#| echo: false`
show only their outputs (Markdown outputs as they are, text outputs in a code block). Relative links, written for
the notebook's folder (nbs/, where the docs site renders it), are rewritten relative to the repository root."""
import json, re, sys
from pathlib import Path

def directives(src: str) -> dict:
    out = {}
    for line in src.splitlines():
        if line.startswith("#|"):
            key, _, val = line[2:].strip().partition(":")
            out[key.strip()] = val.strip() or True
    return out

def cell_outputs(cell) -> list[str]:
    parts = []
    for o in cell.get("outputs", []):
        data = o.get("data", {})
        if "text/markdown" in data: parts.append("".join(data["text/markdown"]).strip())
        elif o.get("output_type") == "stream" and o.get("name") == "stdout": parts.append("```\n" + "".join(o["text"]).rstrip() + "\n```")
        elif "text/plain" in data: parts.append("```\n" + "".join(data["text/plain"]).rstrip() + "\n```")
    return parts

_LINK = re.compile(r"(\]\()([^)\s]+)(\))")

def rebase_links(text: str, folder: str) -> str:
    "Prefix relative Markdown link targets with `folder/` (absolute URLs, anchors and root-relative paths stay)."
    def fix(m):
        target = m.group(2)
        if re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, re.I): return m.group(0)
        return m.group(1) + f"{folder}/{target}" + m.group(3)
    return _LINK.sub(fix, text)

def make_readme(nb_path="nbs/index.ipynb") -> str:
    nb = json.loads(Path(nb_path).read_text())
    blocks = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown": blocks.append(src.strip()); continue
        d = directives(src)
        if d.get("hide") or d.get("include") == "false": continue
        if d.get("echo") != "false":
            code = "\n".join(l for l in src.splitlines() if not l.startswith("#|")).strip()
            if code: blocks.append("```python\n" + code + "\n```")
        blocks += cell_outputs(cell)
    note = "<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->"
    folder = Path(nb_path).parent.as_posix()
    blocks = [rebase_links(b, folder) if folder not in ("", ".") else b for b in blocks]
    return "\n\n".join([blocks[0], note] + blocks[1:]) + "\n"

if __name__ == "__main__":
    text = make_readme(*sys.argv[1:2])
    if "--check" in sys.argv:
        if Path("README.md").read_text() != text: sys.exit("README.md is out of date: run `make readme` and commit it")
    else: Path("README.md").write_text(text)
