"""The StyleGAN2 chapter's loops (the paper's E3 and E4), written once for the chapter, its
cost estimate and its benchmark.

E3 is the fully synthetic loop at each truncation λ (the paper: 9 generations at λ = 1, 5 at
λ = 0.7); E4 is synthetic augmentation at λ = 1 whose synthetic part is the pool of every
earlier model's samples (the paper: 7 generations). Every loop of a replicate starts from the
same first generation, trained once (the image loops' first-generation cache).
"""

from __future__ import annotations

from madutils.analysis.replicates import replicate_seeds
from madutils.loops.image_config import ImageLoopConfig
from madutils.recipes import recipe

__all__ = [
    "POOL_LOOP",
    "chapter_cases",
    "chapter_parameters",
    "chapter_runs",
    "loop_name",
]

#: How the pages name the accumulating augmentation loop (E4).
POOL_LOOP = "augmentation, accumulated pool"


def loop_name(family: str, synthetic_source: str, lam: float) -> str:
    """How the pages name a loop of the chapter: its family and truncation."""
    if family == "synthetic_augmentation":
        return POOL_LOOP if synthetic_source == "accumulate" else f"augmentation, λ = {lam:g}"
    return f"fully synthetic, λ = {lam:g}"


def chapter_cases(
    lams,
    generations: int,
    biased_generations: int,
    pool_generations: int,
    seed: int,
    replicates: int,
    *,
    pool_fixed_steps: bool = False,
) -> list[dict]:
    """Sweep cases (:func:`madutils.analysis.sweep.run_sweep`'s ``cases``) of the chapter.

    Parameters
    ----------
    lams : sequence of float
        Truncations of the fully synthetic loops (E3).
    generations, biased_generations : int
        Generations of the fully synthetic loop at λ = 1 and at every other λ.
    pool_generations : int
        Generations of the accumulating augmentation loop (E4, λ = 1); 0 leaves it out.
    seed, replicates : int
        The replicates' seeds are ``seed, seed + 1, ...``.
    pool_fixed_steps : bool
        Whether the pool's generations train for the optimizer steps of generation 1 (its
        training sets grow by ``n_ini`` images a generation; see ``ImageLoopConfig``'s
        ``fixed_steps``).

    Returns
    -------
    list of dict
        One case per loop and replicate: ``family``, ``lam``, ``generations``, ``seed`` and,
        for E4, ``synthetic_source``.
    """
    seeds = replicate_seeds(seed, replicates)
    fully = [
        dict(
            family="fully_synthetic",
            lam=float(lam),
            generations=generations if float(lam) == 1.0 else biased_generations,
            seed=s,
        )
        for lam in lams
        for s in seeds
    ]
    pool = [
        dict(
            family="synthetic_augmentation",
            synthetic_source="accumulate",
            lam=1.0,
            generations=pool_generations,
            fixed_steps=pool_fixed_steps,
            seed=s,
        )
        for s in seeds
        if pool_generations > 0
    ]
    return fully + pool


def chapter_parameters(scale: str, notebooks_dir="notebooks") -> dict:
    """The chapter's parameters at ``scale`` (``notebooks/stylegan2.py`` and its parameter
    file), as ``madutils run stylegan2 --scale <scale>`` gives them.

    Parameters
    ----------
    scale : {"ci", "cpu", "gpu"}
    notebooks_dir : str or Path
        The repository's ``notebooks/`` folder (default: under the working directory).
    """
    from madutils.runner import find_notebook, notebook_parameters, resolve_parameters

    path = find_notebook("stylegan2", notebooks_dir)
    return {**notebook_parameters(path), **resolve_parameters(path, scale)}


def chapter_runs(parameters: dict, *, replicates: int | None = None) -> list[ImageLoopConfig]:
    """The runs of the chapter with ``parameters`` (:func:`chapter_parameters`).

    Parameters
    ----------
    parameters : dict
        The chapter's parameters: ``scale`` and ``stylegan2`` (the recipe and its overrides),
        ``lams``, the three generation counts, ``with_pool``, ``pool_fixed_steps``, ``seed``,
        ``replicates``.
    replicates : int, optional
        Replicates to build instead of ``parameters["replicates"]`` (1 for a cost estimate).
    """
    p = parameters
    cases = chapter_cases(
        p["lams"],
        p["generations"],
        p["biased_generations"],
        p["pool_generations"] if p["with_pool"] else 0,
        p["seed"],
        p["replicates"] if replicates is None else replicates,
        pool_fixed_steps=p["pool_fixed_steps"],
    )
    settings = recipe("stylegan2", p["scale"], overrides=p["stylegan2"])
    return [ImageLoopConfig(**{**settings, **case}) for case in cases]
