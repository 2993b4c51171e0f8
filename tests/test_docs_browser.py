"""The offline docs site (tools/build_docs.py, `make docs`) as a reader sees it, in headless Chromium.

Each page is checked in a copy of the site with a small probe script added: Chromium loads it
(`--virtual-time-budget`), the probe waits for the `load` event and the fonts, measures the DOM
(title, every `<img>`'s naturalWidth, typeset math, error outputs, the sidebar) and writes the
result into the DOM, which `--dump-dom` prints. Screenshots of the real pages go to
`_docs/_screenshots/`. A throwaway two-page site built from generated notebooks checks the
image, math and link paths whatever the course notebooks contain, and a copy of it with the image
deleted checks that the image check fails when it should.

Skipped when Chromium (/usr/bin/chromium) is missing; the checks of the course's own pages are
skipped until `_docs/index.html` exists. `tools/ci_docs.sh` installs Chromium, builds and runs this.
"""
from __future__ import annotations

import html, json, os, re, shutil, struct, subprocess, sys, tempfile, warnings, zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = Path(os.environ.get("DOCS_DIR") or REPO / "_docs")   # DOCS_DIR: check a site built elsewhere
BUILDER = REPO / "tools" / "build_docs.py"
SHOTS = DOCS / "_screenshots"


def _find_chromium():
    for c in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if c and Path(c).is_file() and os.access(c, os.X_OK): return c
    return None


CHROMIUM = _find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (/usr/bin/chromium): apt-get install chromium")
needs_site = pytest.mark.skipif(not (DOCS / "index.html").exists(),
                                reason="_docs/index.html does not exist: build the site with `make docs` (tools/build_docs.py)")

PROBE = r"""
<script>
window.addEventListener('load', () => {
  const finish = () => {
    const main = document.querySelector('main') || document.body;
    const text = main.cloneNode(true);
    text.querySelectorAll('annotation, pre, code, script, style').forEach(e => e.remove());
    const outputs = [...document.querySelectorAll('.cell-output')].map(e => e.textContent).join('\n');
    const nav = document.querySelector('.navbar');
    const r = {
      title: (document.querySelector('h1.title') || {}).textContent || '',
      docTitle: document.title,
      images: [...document.images].map(i => ({src: (i.getAttribute('src') || '').slice(0, 100), complete: i.complete,
                                              w: i.naturalWidth, h: i.naturalHeight, inMain: main.contains(i)})),
      katex: document.querySelectorAll('.katex').length,
      mathml: document.querySelectorAll('math').length,
      mathErrors: document.querySelectorAll('.katex-error, .math-error').length,
      katexFontsLoaded: [...document.fonts].filter(f => f.family.replace(/["']/g, '').startsWith('KaTeX') && f.status === 'loaded').length,
      rawDisplayMath: (text.textContent.match(/\$\$/g) || []).length,
      errorOutputs: document.querySelectorAll('.cell-output-error').length,
      tracebacks: (outputs.match(/Traceback \(most recent call last\)|^\s*\w*(Error|Exception): /mg) || []).slice(0, 5),
      sidebar: [...document.querySelectorAll('nav.sidebar a')].map(a => ({href: a.getAttribute('href'), text: a.textContent.trim(),
                                                                          active: a.classList.contains('active')})),
      styled: !!nav && getComputedStyle(nav).position === 'sticky',
      textLength: text.textContent.length,
    };
    const pre = document.createElement('pre');
    pre.id = '__docs_probe__';
    pre.textContent = JSON.stringify(r);
    document.body.appendChild(pre);
  };
  (document.fonts ? document.fonts.ready : Promise.resolve()).then(finish, finish);
});
</script>
"""


def chromium(*args, timeout=90) -> subprocess.CompletedProcess:
    "Run headless Chromium with the flags this closed network needs, and a fresh profile."
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def probe(site: Path, page: str) -> dict:
    "Load `page` of `site` (a folder) in Chromium with the probe added (to a copy of the page) and return what it measured."
    src = site / page
    probe_page = src.with_name(f"__probe__{src.name}")
    probe_page.write_text(src.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        r = chromium("--virtual-time-budget=5000", "--window-size=1280,1600", "--dump-dom", probe_page.as_uri())
    finally: probe_page.unlink()
    m = re.search(r'<pre id="__docs_probe__">(.*?)</pre>', r.stdout, flags=re.S)
    assert m, f"{page}: the page did not finish loading in Chromium (rc={r.returncode}):\n{r.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def problems(res: dict, *, title: str, n_images: int, n_math: int, math: str, n_pages: int, page: str, site: Path) -> list[str]:
    "What is wrong with a probed page; empty when it renders as it should."
    bad = []
    if not res["title"].strip(): bad.append("no page title (h1.title)")
    elif res["title"].strip() != title.strip(): bad.append(f"title {res['title']!r} != {title!r}")
    if title.strip() not in res["docTitle"]: bad.append(f"<title> {res['docTitle']!r} lacks the page title")
    if not res["styled"]: bad.append("site.css did not load (the navbar is not styled)")
    broken = [i["src"] for i in res["images"] if not (i["complete"] and i["w"] > 0)]
    if broken: bad.append(f"images that did not load: {broken}")
    loaded = [i for i in res["images"] if i["inMain"] and i["complete"] and i["w"] > 0]
    if len(loaded) < n_images: bad.append(f"{len(loaded)} images loaded, the notebook has {n_images}")
    if n_math:
        typeset = res["katex"] if math == "katex" else res["mathml"]
        if typeset < n_math: bad.append(f"{typeset} typeset formulas ({math}), the notebook has {n_math}")
        if math == "katex" and res["katexFontsLoaded"] == 0: bad.append("KaTeX's fonts did not load")
    if res["mathErrors"]: bad.append(f"{res['mathErrors']} formulas failed to typeset")
    if res["rawDisplayMath"]: bad.append(f"raw $$ left in the text ({res['rawDisplayMath']})")
    if res["errorOutputs"]: bad.append(f"{res['errorOutputs']} error output cells")
    if res["tracebacks"]: bad.append(f"error text in outputs: {res['tracebacks']}")
    if len(res["sidebar"]) != n_pages: bad.append(f"sidebar has {len(res['sidebar'])} links, the site {n_pages} pages")
    active = [a["href"] for a in res["sidebar"] if a["active"]]
    if len(active) != 1 or Path(active[0]).name != Path(page).name: bad.append(f"sidebar highlights {active}, not {page}")
    missing = [a["href"] for a in res["sidebar"] if not (site / Path(page).parent / a["href"]).is_file()]
    if missing: bad.append(f"sidebar links to missing pages: {missing}")
    if res["textLength"] < 20: bad.append("the page is (nearly) empty")
    return bad


def screenshot(site: Path, page: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists(): dest.unlink()
    r = chromium("--virtual-time-budget=5000", "--window-size=1280,1600", f"--screenshot={dest}", (site / page).as_uri())
    assert dest.is_file(), f"no screenshot of {page}: {r.stderr[-1500:]}"
    from PIL import Image
    with Image.open(dest) as im:
        assert im.size == (1280, 1600)
        colours = im.convert("RGB").resize((320, 400)).getcolors(maxcolors=100_000)
    assert colours is None or len(colours) > 20, f"the screenshot of {page} is (nearly) blank"
    return dest


def manifest(site: Path) -> dict:
    f = site / "site.json"
    assert f.is_file(), f"{f} is missing: rebuild the site with tools/build_docs.py"
    return json.loads(f.read_text(encoding="utf-8"))


def check_page(site: Path, source: str, shot: Path | None = None) -> dict:
    m = manifest(site)
    entry = next((p for p in m["pages"] if p["source"] == source), None)
    assert entry, f"{source} is not in {site}/site.json (pages: {[p['source'] for p in m['pages']]})"
    with tempfile.TemporaryDirectory(prefix="docs-probe-") as tmp:       # probe a copy: the site stays untouched
        copy = Path(tmp) / "site"
        shutil.copytree(site, copy, ignore=shutil.ignore_patterns("_screenshots"))
        res = probe(copy, entry["page"])
    bad = problems(res, title=entry["title"], n_images=entry["n_images"], n_math=entry["n_math"], math=m["math"],
                   n_pages=len(m["pages"]), page=entry["page"], site=site)
    assert not bad, f"{entry['page']} ({source}) does not render right:\n  " + "\n  ".join(bad)
    if shot: screenshot(site, entry["page"], shot)
    return {"entry": entry, "probe": res}


# ------------------------------------------------------------------------------------------
# The course's site, as built in _docs/
# ------------------------------------------------------------------------------------------
def test_sidebar_lists_the_notebooks():
    "nbs/sidebar.yml (the page order of both sites) lists exactly the notebooks in nbs/."
    r = subprocess.run([sys.executable, str(BUILDER), "--check-sidebar"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_chromium
@needs_site
def test_index_page_renders():
    m = manifest(DOCS)
    index = next(p for p in m["pages"] if p["page"] == "index.html")
    if index["source"] is None: pytest.skip("nbs/index.ipynb does not exist yet (the builder wrote a placeholder front page)")
    out = check_page(DOCS, "index.ipynb", SHOTS / "index.png")
    if not out["entry"]["n_images"]: warnings.warn("index.ipynb has no image output: only the fixture site checks images")


@needs_chromium
@needs_site
def test_core_page_renders():
    if not (REPO / "nbs" / "00_core.ipynb").exists(): pytest.skip("nbs/00_core.ipynb does not exist")
    out = check_page(DOCS, "00_core.ipynb", SHOTS / "core.png")
    if not out["entry"]["n_images"]:
        warnings.warn("00_core.ipynb has no saved image output yet: its image check is inactive (the fixture site checks images)")
    assert out["entry"]["n_math"] > 0, "00_core.ipynb has math: the build found none"


# ------------------------------------------------------------------------------------------
# A throwaway site: images, math, links and error detection whatever the course notebooks hold
# ------------------------------------------------------------------------------------------
def _png(w=48, h=32) -> bytes:
    "A small gradient PNG, written with the standard library."
    raw = b"".join(b"\x00" + b"".join(bytes([40 + 4 * x, 110, 200 - 3 * y]) for x in range(w)) for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _nb(cells) -> dict:
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _md(src): return {"cell_type": "markdown", "metadata": {}, "source": src}


def _code(src, outputs): return {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": outputs, "source": src}


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory):
    import base64
    root = tmp_path_factory.mktemp("docs-fixture")
    nbs, site = root / "nbs", root / "site"
    nbs.mkdir()
    png = base64.b64encode(_png()).decode()
    (nbs / "index.ipynb").write_text(json.dumps(_nb([
        _md("# Fixture front page\n\n> A page made by the test."),
        _md("Inline $\\lVert x\\rVert_2$ and $\\mathbb{R}^d$, and on a line of its own\n\n"
            "$$\\text{R@K} = \\frac{100}{n}\\sum_{k=1}^{K} \\#\\{q : r_q \\le k\\} \\cdot 1 \\qquad x_\\text{img}$$\n\n"
            "The [second page](01_second.ipynb#a-section)."),
        _code("print('hello')\nplot()", [
            {"output_type": "stream", "name": "stdout", "text": "hello\n"},
            {"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": "<Figure>"}}]),
    ])), encoding="utf-8")
    (nbs / "01_second.ipynb").write_text(json.dumps(_nb([
        _md("# Second page\n\n> Another one."), _md("## A section\n\nBack to the [front page](index.ipynb)."),
    ])), encoding="utf-8")
    (nbs / "sidebar.yml").write_text("website:\n  sidebar:\n    contents:\n      - index.ipynb\n      - 01_second.ipynb\n")
    r = subprocess.run([sys.executable, str(BUILDER), "--nbs", str(nbs), "--out", str(site), "-j", "1", "--strict", "--no-cache"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, f"building the fixture site failed:\n{r.stdout}\n{r.stderr}"
    assert re.search(r"Built 2 pages", r.stdout), r.stdout
    return site


@needs_chromium
def test_fixture_site_renders_image_math_and_links(fixture_site):
    out = check_page(fixture_site, "index.ipynb")
    assert out["entry"]["n_images"] == 1 and out["entry"]["n_math"] == 3
    imgs = [i for i in out["probe"]["images"] if i["inMain"]]
    assert [(i["w"], i["h"]) for i in imgs] == [(48, 32)]
    front = (fixture_site / "index.html").read_text(encoding="utf-8")
    assert 'href="second.html#a-section"' in front                      # notebook links became page links
    assert "01_second.ipynb" not in front
    check_page(fixture_site, "01_second.ipynb")


@needs_chromium
def test_image_check_fails_without_the_image(fixture_site, tmp_path):
    "The image check is real: delete the image file and the same page fails it."
    site = tmp_path / "site"
    shutil.copytree(fixture_site, site)
    for f in (site / "index_files").glob("*.png"): f.unlink()
    with pytest.raises(AssertionError, match="images that did not load"):
        check_page(site, "index.ipynb")
