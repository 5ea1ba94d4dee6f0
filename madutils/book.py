"""Build the book: ``madutils book``.

The book's pages are listed in ``_toc.yml`` (jupyter-book 1, repository root = book root). The
pages under ``book/executed/`` are notebooks: :func:`build_book` executes each one from its
jupytext source ``notebooks/<name>.py`` with :func:`madutils.runner.run_notebook`, part by part
of the table of contents (:func:`notebook_stages`), then builds the HTML site with
``jupyter-book build . -W -n --keep-going`` (the book itself never executes anything:
``execute_notebooks: "off"``).

A build succeeds only when jupyter-book exits with 0, its log (``_build/build.log``) has no
warning or error line, no executed notebook holds an error output, ``_build/html/index.html``
exists and :func:`check_site` finds nothing wrong in the pages: jupyter-book's exit code alone
is not a reliable signal.

MathJax is served from the site itself (copied at build time from the ``django-static-mathjax``
wheel into ``book/_static/mathjax/``, which is not under version control), so the pages load
nothing from another host and read offline.

The chapters of one part are independent of each other (the loop chapters); a later part may
read what an earlier one wrote (the results chapters read the claims and timings of the loop
chapters), so it starts only when the part before it has finished. When the chapters' runs go
to a Dask cluster, the chapters of a part execute at the same time, their kernels submitting
runs to the one shared cluster, so the workers stay busy while a chapter waits for its slowest
run or computes its figures.

This module builds; it does not write pages. The browser checks of the built site are in
``tests/test_book.py``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

__all__ = [
    "BUILDER_ARGS",
    "MATHJAX_DIR",
    "build_book",
    "check_site",
    "executed_notebooks",
    "install_mathjax",
    "notebook_errors",
    "notebook_stages",
    "toc_documents",
]

#: Arguments of ``jupyter-book build``: warnings are errors, nitpicky references, report all.
BUILDER_ARGS = ("-W", "-n", "--keep-going")
#: Where the local MathJax goes, relative to the book root (matches ``mathjax_path`` in
#: ``_config.yml``, which is relative to the static directory ``book/_static``).
MATHJAX_DIR = Path("book/_static/mathjax")
#: The MathJax entry point the pages load (the ``mathjax_path`` of ``_config.yml``).
MATHJAX_ENTRY = "tex-mml-chtml.js"
_MATHJAX_DIST = "django-static-mathjax"
#: A log line that fails the build: Sphinx's ``WARNING:``/``ERROR:``/``CRITICAL:`` messages,
#: docutils' ``(SEVERE/4)`` and the like, and Python tracebacks.
_BAD_LOG_LINE = re.compile(
    r"\b(WARNING|ERROR|CRITICAL|SEVERE)\b|\((WARNING|ERROR|SEVERE)/\d\)|^Traceback \("
)
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def toc_documents(root: str | Path = ".") -> list[str]:
    """The documents of the book, in reading order, from ``<root>/_toc.yml``.

    Parameters
    ----------
    root : str or Path
        The book root (the directory holding ``_config.yml`` and ``_toc.yml``).

    Returns
    -------
    list of str
        Document names without suffix, relative to ``root`` (``"book/intro"``, ...), the
        root document first.
    """
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    if not isinstance(toc, dict) or "root" not in toc:
        raise ValueError(f"{Path(root) / '_toc.yml'} has no 'root' entry")
    return list(_toc_files(toc))


def _toc_files(node) -> Iterator[str]:
    """Every ``root``/``file`` entry of a parsed ``_toc.yml``, depth first, in order."""
    if isinstance(node, list):
        for item in node:
            yield from _toc_files(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("root", "file"):
                yield str(Path(value).with_suffix("")) if Path(value).suffix else str(value)
            elif isinstance(value, list | dict):
                yield from _toc_files(value)


def executed_notebooks(root: str | Path = ".", out: str | Path = "book/executed") -> list[str]:
    """The notebooks the book executes: the table-of-contents entries under ``out``.

    Parameters
    ----------
    root : str or Path
        The book root.
    out : str or Path
        Directory of the executed notebooks, relative to ``root``.

    Returns
    -------
    list of str
        Notebook names (``"gaussian_theory"``, ...) in execution order; each is executed from
        ``<root>/notebooks/<name>.py`` into ``<root>/<out>/<name>.ipynb``.
    """
    names = _notebooks_under(toc_documents(root), out)
    nested = [name for name in names if "/" in name]
    if nested:
        raise ValueError(f"_toc.yml: notebooks must sit directly in {out}/; got {nested}")
    if not names:
        raise ValueError(f"_toc.yml lists no document under {out}/: nothing to execute")
    return names


def notebook_stages(root: str | Path = ".", out: str | Path = "book/executed") -> list[list[str]]:
    """The notebooks of :func:`executed_notebooks`, grouped by the part of ``_toc.yml`` that
    lists them: the chapters of one stage may execute at the same time, a stage only after
    the one before it.

    Parameters
    ----------
    root : str or Path
        The book root.
    out : str or Path
        Directory of the executed notebooks, relative to ``root``.

    Returns
    -------
    list of list of str
        Notebook names, stage by stage in the book's order; a table of contents without
        ``parts`` is one stage.
    """
    names = set(executed_notebooks(root, out))
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    parts = toc.get("parts") if isinstance(toc.get("parts"), list) else [toc]
    stages = [[n for n in _notebooks_under(_toc_files(part), out) if n in names] for part in parts]
    return [stage for stage in stages if stage]


def _notebooks_under(documents: Iterable[str], out: str | Path) -> list[str]:
    """The names of the documents that lie in the directory ``out``."""
    prefix = Path(out).as_posix().strip("/") + "/"
    return [doc[len(prefix) :] for doc in documents if doc.startswith(prefix)]


def install_mathjax(root: str | Path = ".") -> Path:
    """Copy MathJax 3 from the ``django-static-mathjax`` wheel into ``<root>/book/_static``.

    Only the ``es5`` distribution goes (without the combined entry points the pages do not
    load): about 10 MB. A copy of the same version is left as it is.

    Parameters
    ----------
    root : str or Path
        The book root.

    Returns
    -------
    Path
        The MathJax directory (``<root>/book/_static/mathjax``).
    """
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the book needs a local MathJax: pip install django-static-mathjax "
            '(part of the "book" extra: pip install -e ".[book]")'
        )
    source = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if not (source / MATHJAX_ENTRY).is_file():
        raise RuntimeError(f"{source / MATHJAX_ENTRY} is missing: reinstall {_MATHJAX_DIST}")
    version = importlib.metadata.version(_MATHJAX_DIST)
    target = Path(root) / MATHJAX_DIR
    stamp = target / "madutils-mathjax-version.txt"
    if stamp.is_file() and stamp.read_text().strip() == version:
        return target
    combined = {p.name for p in source.glob("*.js")} - {MATHJAX_ENTRY}

    def ignore(directory: str, names: list[str]) -> set[str]:
        return combined & set(names) if Path(directory) == source else set()

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=ignore)
    stamp.write_text(version + "\n")
    return target


def notebook_errors(path: str | Path) -> list[str]:
    """The error outputs of an executed notebook, one line each (empty when there is none)."""
    notebook = json.loads(Path(path).read_text())
    errors = []
    for index, cell in enumerate(notebook.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(
                    f"{Path(path).name}, cell {index}: "
                    f"{output.get('ename', '?')}: {output.get('evalue', '')}"
                )
    return errors


class _Refs(HTMLParser):
    """Collects the ``href``/``src`` of a page, split into links and loaded resources."""

    _RESOURCES = {"img": "src", "script": "src", "link": "href", "source": "src", "iframe": "src"}

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.resources: list[str] = []
        self.images_without_alt: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            alt, src = (values.get("alt") or "").strip(), values.get("src") or ""
            # Sphinx writes the image's own path as alt when none was given
            if not alt or alt == src or Path(alt).name == Path(unquote(src)).name:
                self.images_without_alt.append(src)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        attribute = self._RESOURCES.get(tag)
        if attribute and values.get(attribute):
            rel = (values.get("rel") or "").split()
            # <link rel="canonical"/"next"/...> is a link, not something the page loads
            if tag != "link" or {"stylesheet", "icon", "preload", "modulepreload"} & set(rel):
                self.resources.append(values[attribute])
            else:
                self.links.append(values[attribute])


def _local_target(html_dir: Path, page: Path, ref: str) -> Path | None:
    """The file a same-site reference points to, or ``None`` for another site or a fragment."""
    parts = urlsplit(ref)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    path = unquote(parts.path)
    target = (html_dir / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
    target = Path(os.path.normpath(target))
    return target / "index.html" if target.is_dir() else target


def check_site(html_dir: str | Path, documents: Iterable[str]) -> list[str]:
    """Problems of a built HTML site that need no browser to find.

    For each document: its page exists; every link (``<a href>``) and resource (``img``,
    ``script``, stylesheet, ...) that points into the site names an existing file inside the
    site; no resource is loaded from another host (links to other sites are fine); every
    image has alt text (a figure cell gets it from ``mystnb={"image": {"alt": ...}}``).

    Parameters
    ----------
    html_dir : str or Path
        The built site (``_build/html``).
    documents : iterable of str
        Document names, as returned by :func:`toc_documents`.

    Returns
    -------
    list of str
        One line per problem; empty when the site is sound.
    """
    html_dir = Path(html_dir).resolve()
    problems = []
    for document in documents:
        page = html_dir / f"{document}.html"
        if not page.is_file():
            problems.append(f"{document}: page {page} is missing")
            continue
        parser = _Refs()
        parser.feed(page.read_text(encoding="utf-8"))
        for src in parser.images_without_alt:
            problems.append(f"{document}: image {src} has no alt text")
        for ref in parser.resources:
            if urlsplit(ref).netloc or ref.startswith("//"):
                problems.append(f"{document}: loads {ref} from another host")
        for ref in parser.links + parser.resources:
            target = _local_target(html_dir, page, ref)
            if target is None:
                continue
            if not target.is_relative_to(html_dir):
                problems.append(f"{document}: {ref} points outside the site")
            elif not target.is_file():
                problems.append(f"{document}: {ref} does not exist")
    return problems


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _fail(what: str, lines: Sequence[str], log: Path | None = None) -> RuntimeError:
    shown = list(lines[:40]) + ([f"... and {len(lines) - 40} more"] if len(lines) > 40 else [])
    where = f" (full log: {log})" if log else ""
    return RuntimeError(f"book build failed: {what}{where}:\n  " + "\n  ".join(shown))


def _chapters_at_once(value: int | None, engine) -> int:
    """The number of chapters a stage executes at a time (see :func:`build_book`)."""
    if value is not None:
        from madutils._validation import check_positive_int

        check_positive_int(value, "chapters_at_once")
        return value
    return 1 if engine is None or engine.sequential else sys.maxsize


def _kernel_threads(at_once: int):
    """One thread per kernel for the ``with`` block when chapters execute side by side."""
    from madutils.engine import environment_variables

    if at_once <= 1:
        return nullcontext()
    return environment_variables(dict.fromkeys(("OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1"))


def _execute_stage(
    names: list[str], scale: str, out_dir: Path, progress: bool, at_once: int, say
) -> list[str]:
    """Execute the chapters of one stage, ``at_once`` at a time; one line per failure."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from madutils.runner import run_notebook

    side_by_side = min(at_once, len(names)) > 1
    lock = threading.Lock()

    def line(text: str) -> None:
        with lock:  # whole lines, even from chapters finishing at once
            say(text, flush=True)

    def execute(name: str):
        line(f"[book] executing {name} at scale {scale!r}")
        return run_notebook(name, scale=scale, out=out_dir, progress=progress and not side_by_side)

    failures = []
    with ThreadPoolExecutor(max_workers=max(1, min(at_once, len(names)))) as pool:
        futures = {pool.submit(execute, name): name for name in names}
        for future in as_completed(futures):
            name = futures[future]
            error = future.exception()
            if error is None:
                line(f"[book] {name}: {future.result().seconds:.1f} s")
            else:
                failures.append(_failure_line(name, error))
    return failures


def _failure_line(name: str, error: BaseException) -> str:
    """One line for a chapter that failed: the cell's error for a papermill failure."""
    if hasattr(error, "ename"):  # papermill.exceptions.PapermillExecutionError
        return f"{name}, cell [{error.exec_count}]: {error.ename}: {error.evalue}"
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{name}: {type(error).__name__}: {lines[0] if lines else ''}"


def build_book(
    scale: str = "cpu",
    *,
    notebooks: Iterable[str] | None = None,
    out: str | Path = "book/executed",
    builder_args: Sequence[str] = BUILDER_ARGS,
    progress: bool = True,
    root: str | Path = ".",
    engine=None,
    chapters_at_once: int | None = None,
) -> Path:
    """Execute the book's notebooks at ``scale`` and build the HTML site.

    Parameters
    ----------
    scale : {"ci", "cpu", "gpu"}
        Parameter files of the notebooks (``notebooks/params/<name>/<scale>.yaml``): ``ci``
        takes seconds per notebook, ``cpu`` is the book's default, ``gpu`` the paper's sizes.
    notebooks : iterable of str, optional
        Names of the notebooks to execute (default: every notebook of the table of contents,
        in its order). The others are not executed again; their earlier outputs in ``out`` are
        used, and a build fails if one is missing. Pass ``()`` to only rebuild the site.
    out : str or Path
        Directory of the executed notebooks, their figures, claims and ``timings.json``,
        relative to ``root``; the table of contents lists its notebooks there.
    builder_args : sequence of str
        Extra arguments of ``jupyter-book build``.
    progress : bool
        Show papermill's progress bars and print each step and each notebook's time.
    root : str or Path
        The book root (holding ``_config.yml``, ``_toc.yml``, ``book/``, ``notebooks/``).
        Notebooks execute with it as their working directory.
    engine : madutils.engine.Engine, optional
        Where the chapters' sweeps run. A local cluster (``Engine(workers=N)``) is started
        once here and shared by every chapter (:func:`madutils.engine.shared_engine`).
    chapters_at_once : int, optional
        How many chapters of one part execute at the same time. Default: every chapter of
        the part when ``engine`` sends runs to a cluster (the kernels then mostly wait for
        it), one otherwise. Chapters executing side by side show no per-cell progress bars;
        their kernels compute with one thread (``OMP_NUM_THREADS=1``), as the workers do.

    Returns
    -------
    Path
        ``<root>/_build/html/index.html``.

    Raises
    ------
    ValueError
        If a name in ``notebooks`` is not a notebook of the table of contents, or a chapter's
        parameter file is invalid (checked for every chapter before any executes).
    RuntimeError
        If a notebook fails, jupyter-book exits with an error, its log has a warning or error
        line, an executed notebook holds an error output, ``index.html`` is missing or
        :func:`check_site` finds a problem. The message quotes the offending lines.
    """
    root = Path(root).resolve()
    names = executed_notebooks(root, out)
    selected = names if notebooks is None else list(notebooks)
    unknown = sorted(set(selected) - set(names))
    if unknown:
        raise ValueError(
            f"not notebooks of the book: {', '.join(unknown)}; the book has: {', '.join(names)}"
        )
    say = print if progress else (lambda *args, **kwargs: None)
    out_dir = root / out

    with _working_directory(root):
        from madutils.engine import engine_environment, shared_engine
        from madutils.runner import find_notebook, resolve_parameters

        for name in selected:  # every parameter file checked before anything executes
            resolve_parameters(find_notebook(name), scale)
        engine = shared_engine(engine) if selected else engine
        at_once = _chapters_at_once(chapters_at_once, engine)
        with engine_environment(engine), _kernel_threads(at_once):
            for stage in notebook_stages(root, out):
                chosen = [name for name in stage if name in selected]  # in the book's order
                failures = _execute_stage(chosen, scale, out_dir, progress, at_once, say)
                if failures:
                    raise _fail("notebooks failed", failures)

    errors = []
    for name in names:
        executed = out_dir / f"{name}.ipynb"
        if not executed.is_file():
            errors.append(f"{executed} is missing: execute it (notebooks={name!r})")
        else:
            errors.extend(notebook_errors(executed))
    if errors:
        raise _fail("executed notebooks", errors)

    install_mathjax(root)
    build_dir = root / "_build"
    build_dir.mkdir(exist_ok=True)
    log = build_dir / "build.log"
    command = [
        sys.executable,
        "-c",
        "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
        "build",
        str(root),
        *builder_args,
    ]
    say(f"[book] jupyter-book build (log: {log})", flush=True)
    start = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
        check=False,
    )
    output = _ANSI_ESCAPE.sub("", result.stdout)
    log.write_text(output)
    say(f"[book] jupyter-book build: {time.perf_counter() - start:.1f} s", flush=True)
    bad = [line for line in output.splitlines() if _BAD_LOG_LINE.search(line)]
    if result.returncode != 0:
        tail = output.splitlines()[-20:]
        raise _fail(f"jupyter-book exited with {result.returncode}", bad or tail, log)
    if bad:
        raise _fail("warnings or errors in the build log", bad, log)
    index = build_dir / "html" / "index.html"
    if not index.is_file():
        raise _fail("no index page", [f"{index} is missing"], log)
    problems = check_site(build_dir / "html", toc_documents(root))
    if problems:
        raise _fail("problems in the built pages", problems, log)
    say(f"[book] built {index}", flush=True)
    return index
