"""The book builds at the ``ci`` scale, and its pages work in a real browser, offline.

The build runs on a copy of the repository's sources (what ``git ls-files`` lists, tracked or
not ignored) in a temporary directory, so the working tree's ``_build/`` and ``book/executed/``
are left alone. The ``ci``-scale notebooks take seconds each; the whole module about a minute.

The browser test drives Debian's Chromium (``apt-get install chromium``) through Playwright
(``pip install playwright``; ``playwright install`` is never needed) and is skipped, saying so,
where ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from madutils.book import (
    build_book,
    check_site,
    executed_notebooks,
    notebook_errors,
    notebook_stages,
    toc_documents,
)
from madutils.engine import Engine

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Console errors every stock jupyter-book 1 page logs, harmless (see the toolchain notes).
KNOWN_CONSOLE_ERRORS = (
    "Identifier 'THEBE_JS_URL' has already been declared",
    "Got invalid theme mode",
)
#: Generated or local-only paths that a fresh clone does not have.
NOT_SOURCES = ("_build", "book/executed", "book/_static/mathjax", "runs", ".venv")


def _source_files(repo: Path) -> list[str]:
    """The repository's files as a fresh clone plus uncommitted work has them."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=repo,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [name for name in listing.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist, ...)
        files = [str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()]
    return [
        name
        for name in files
        if (repo / name).is_file()
        and not any(name == skip or name.startswith(skip + "/") for skip in NOT_SOURCES)
    ]


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """A copy of the book's sources, built at the ``ci`` scale; returns the book root."""
    root = tmp_path_factory.mktemp("book")
    for name in _source_files(REPO):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    # the chapters of a part side by side, their runs on one shared 2-worker cluster
    build_book("ci", root=root, progress=False, engine=Engine(workers=2))
    return root


def test_book_builds_at_ci_scale(book):
    html = book / "_build" / "html"
    assert (html / "index.html").is_file()
    log = (book / "_build" / "build.log").read_text()
    assert "build succeeded" in log
    names = executed_notebooks(book)
    assert names[-2:] == ["paper_vs_reproduction", "reproducibility"]
    for name in names:
        assert notebook_errors(book / "book" / "executed" / f"{name}.ipynb") == []
    timings = json.loads((book / "book" / "executed" / "timings.json").read_text())
    assert {timings[name]["scale"] for name in names} == {"ci"}
    # a part starts after the part before it has finished
    first, second = notebook_stages(book)
    assert max(timings[n]["finished"] for n in first) <= min(timings[n]["started"] for n in second)
    assert check_site(html, toc_documents(book)) == []


#: The figures of the deep-model experiments: each draws the median and the range across
#: replicates in every panel (the ci scale runs two replicates of each).
DEEP_MODEL_FIGURES = (
    "fully_synthetic_ddpm_metrics",
    "fully_synthetic_flow_metrics",
    "fully_synthetic_wgan_metrics",
    "synthetic_augmentation_ddpm",
    "stylegan2_metrics",
    "fresh_data_ddpm",
)


def test_every_deep_model_figure_shows_replicate_bands(book):
    figures = book / "book" / "executed" / "figures"
    for name in DEEP_MODEL_FIGURES:
        panels = json.loads((figures / f"{name}.json").read_text())["panels"]
        # the headline metric (FID, the flow's held-out NLL) always has its band; a panel of
        # a metric on which the ci-scale replicates happen to agree exactly may have none
        assert panels[0]["bands"] >= 1, (name, panels[0])
        assert sum(p["bands"] >= 1 for p in panels) >= len(panels) / 2, (name, panels)


def test_toc_lists_the_executed_notebooks_in_order():
    names = executed_notebooks(REPO)
    assert names == [
        "gaussian_theory",
        "fully_synthetic",
        "synthetic_augmentation",
        "stylegan2",
        "fresh_data",
        "effective_sample_size",
        "mitigations",
        "paper_vs_reproduction",
        "reproducibility",
    ]
    documents = toc_documents(REPO)
    assert documents[0] == "book/intro"
    assert documents[-1] == "book/bibliography"


def test_stages_are_the_parts_of_the_table_of_contents():
    assert notebook_stages(REPO) == [
        [
            "gaussian_theory",
            "fully_synthetic",
            "synthetic_augmentation",
            "stylegan2",
            "fresh_data",
            "effective_sample_size",
            "mitigations",
        ],
        ["paper_vs_reproduction", "reproducibility"],
    ]


def _small_book(root: Path, chapters: dict[str, str], toc: str) -> Path:
    """A book root whose notebooks run ``chapters[name]`` (code of one cell) at the ci scale."""
    (root / "notebooks" / "params").mkdir(parents=True)
    for name, code in chapters.items():
        source = '# %% tags=["parameters"]\noutput_dir = "executed"\n\n# %%\n' + code + "\n"
        (root / "notebooks" / f"{name}.py").write_text(source)
        (root / "notebooks" / "params" / name).mkdir()
        (root / "notebooks" / "params" / name / "ci.yaml").write_text("{}\n")
    (root / "_toc.yml").write_text(toc)
    return root


def _flat_toc(*names: str) -> str:
    """A ``_toc.yml`` without parts listing these executed notebooks."""
    chapters = "".join(f"- file: book/executed/{name}\n" for name in names)
    return "format: jb-book\nroot: intro\nchapters:\n" + chapters


def test_a_table_of_contents_without_parts_is_one_stage(tmp_path):
    toc = _flat_toc("a", "b")
    root = _small_book(tmp_path, {"a": "1", "b": "2"}, toc)
    assert notebook_stages(root) == [["a", "b"]]


def test_a_failed_chapter_is_reported_after_the_others_of_its_part(tmp_path):
    toc = (
        "format: jb-book\nroot: intro\nparts:\n"
        "- caption: Loops\n  chapters:\n  - file: book/executed/fails\n"
        "  - file: book/executed/slow\n"
        "- caption: Results\n  chapters:\n  - file: book/executed/later\n"
    )
    chapters = {
        "fails": "raise ZeroDivisionError('no chapter today')",
        "slow": "import time\ntime.sleep(3)",
        "later": "print('never')",
    }
    root = _small_book(tmp_path, chapters, toc)
    with pytest.raises(RuntimeError, match=r"fails, cell \[\d+\]: ZeroDivisionError: no chapter"):
        build_book("ci", root=root, progress=False, chapters_at_once=2)
    executed = root / "book" / "executed"
    timings = json.loads((executed / "timings.json").read_text())
    assert set(timings) == {"slow"}  # it finished; the next part never started
    assert not (executed / "later.ipynb").exists()


def test_a_bad_parameter_file_is_refused_before_any_chapter_executes(tmp_path):
    toc = _flat_toc("a", "b")
    root = _small_book(tmp_path, {"a": "1", "b": "2"}, toc)
    (root / "notebooks" / "params" / "b" / "ci.yaml").write_text("nonsense: 1\n")
    with pytest.raises(ValueError, match="unknown parameter.*nonsense"):
        build_book("ci", root=root, progress=False, chapters_at_once=2)
    assert not (root / "book" / "executed" / "a.ipynb").exists()


def test_chapters_at_once_must_be_positive(tmp_path):
    toc = _flat_toc("a")
    root = _small_book(tmp_path, {"a": "1"}, toc)
    with pytest.raises(ValueError, match="chapters_at_once"):
        build_book("ci", root=root, progress=False, chapters_at_once=0)


def test_unknown_notebook_is_rejected():
    with pytest.raises(ValueError, match="not notebooks of the book: nope"):
        build_book("ci", notebooks=["nope"], root=REPO, progress=False)


def test_check_site_reports_broken_links_and_other_hosts(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "ok.css").write_text("")
    (tmp_path / "book" / "a.html").write_text(
        '<link rel="stylesheet" href="../_static/ok.css">'
        '<script src="https://cdn.example.org/x.js"></script>'
        '<a href="b.html#top">fine</a><a href="missing.html">broken</a>'
        '<a href="https://example.org/">another site: fine</a><a href="#here">fine</a>'
        '<img src="../_images/gone.png" alt="a figure that is gone">'
        '<img src="../_static/ok.css" alt="../_static/ok.css">'
        '<img src="../_static/ok.css" alt=" ">'
        '<img src="../_static/ok.css" alt="the loss falls">'
    )
    (tmp_path / "book" / "b.html").write_text("<p>b</p>")
    assert check_site(tmp_path, ["book/a", "book/b", "book/c"]) == [
        "book/a: image ../_static/ok.css has no alt text",
        "book/a: image ../_static/ok.css has no alt text",
        "book/a: loads https://cdn.example.org/x.js from another host",
        "book/a: missing.html does not exist",
        "book/a: ../_images/gone.png does not exist",
        f"book/c: page {tmp_path / 'book' / 'c.html'} is missing",
    ]


@pytest.fixture
def site(book) -> Iterator[str]:
    """The built site served on 127.0.0.1 (a free port) for the duration of a test."""
    handler = functools.partial(_QuietHandler, directory=str(book / "_build" / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


_IMAGES_JS = """async () => {
    const images = Array.from(document.images);
    for (const img of images) { img.loading = "eager"; }
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    return images.map(img => [img.currentSrc || img.src, img.complete && img.naturalWidth > 0]);
}"""
_MATH_JS = """() => Array.from(document.querySelectorAll(".math"))
    .map(el => el.querySelector("mjx-container") !== null)"""
_LINKS_JS = """() => Array.from(document.querySelectorAll("a[href]")).map(a => a.href)"""


def _page_problems(page, base: str, html: Path, document: str) -> tuple[list[str], int, int]:
    """Problems of one page, and how many images and math elements it has."""
    requests, errors, failed = [], [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            errors.append((message.text, message.location.get("url", "")))
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append((str(error), "")))
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.goto(f"{base}/{document}.html", wait_until="load")
    page.wait_for_load_state("networkidle")
    math = page.evaluate(_MATH_JS)
    if math:
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

        with contextlib.suppress(PlaywrightTimeoutError):  # reported below
            page.wait_for_function(
                """() => Array.from(document.querySelectorAll(".math"))
                    .every(el => el.querySelector("mjx-container"))""",
                timeout=15_000,
            )
        math = page.evaluate(_MATH_JS)
    images = page.evaluate(_IMAGES_JS)
    links = page.evaluate(_LINKS_JS)

    problems = []
    problems += [f"request to another host: {url}" for url in requests if not _local(url, base)]
    problems += [f"image not loaded: {src}" for src, loaded in images if not loaded]
    if not all(math):
        problems.append(f"{math.count(False)} of {len(math)} math elements not typeset")
    problems += [f"HTTP {f}" for f in failed if urlsplit(f.split()[1]).path != "/favicon.ico"]
    for text, source in errors:
        favicon_404 = urlsplit(source).path == "/favicon.ico" and "404" in text
        if not favicon_404 and not any(known in text for known in KNOWN_CONSOLE_ERRORS):
            problems.append(f"console error: {text} ({source})")
    for url in links:
        if not url.startswith(base + "/"):
            continue
        path = unquote(urlsplit(url).path).lstrip("/")
        target = html / path
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link: {url}")
    if document.startswith("book/executed/") and not any(
        url.endswith(f"{document}.ipynb") for url in links
    ):
        problems.append("no download link to the page's notebook")
    return [f"{document}: {p}" for p in problems], len(images), len(math)


def _local(url: str, base: str) -> bool:
    return url.startswith(base + "/") or url == base or url.split(":")[0] in ("data", "blob")


@pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"{CHROMIUM} is missing: apt-get install -y chromium"
)
@pytest.mark.skipif(
    importlib.util.find_spec("playwright") is None,
    reason="playwright is missing: pip install playwright",
)
def test_pages_work_offline_in_a_browser(book, site):
    from playwright.sync_api import sync_playwright

    html = book / "_build" / "html"
    problems, images, math = [], 0, 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for document in toc_documents(book):
                page = browser.new_page()
                found, n_images, n_math = _page_problems(page, site, html, document)
                page.close()
                problems += found
                images += n_images
                math += n_math
            page = browser.new_page()
            page.goto(f"{site}/", wait_until="load")
            page.wait_for_url(f"{site}/{toc_documents(book)[0]}.html")
            page.close()
        finally:
            browser.close()
    assert problems == []
    assert images > 0, "the book shows no image at all"
    assert math > 0, "the book has no math at all"
