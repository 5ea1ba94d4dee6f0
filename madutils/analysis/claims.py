"""Claim summaries and glued numbers: how a chapter's measurements reach the book's prose.

:func:`glue_value` hands a number to myst-nb's ``glue`` as a plain Python value (NumPy scalars
cannot be formatted by ``{glue:text}`key:.2f```), without displaying it.

Each loop notebook records, for every claim of the paper it tests, the claim, the paper's
figure, the number this reproduction measured, the verdict and the rule that reached it (a
named rule of :mod:`madutils.analysis.verdicts`, stated as a sentence with its thresholds).
The "paper vs this reproduction" page collects them, so its table never holds a hand-typed
number or verdict.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from madutils._validation import check_choice
from madutils.results import atomic_write

__all__ = ["CLAIM_COLUMNS", "VERDICTS", "Claim", "glue_value", "load_claims", "record_claims"]

VERDICTS = (
    "reproduced",
    "partly",
    "not shown at this scale",
    "not reproduced",
    "GPU-only",
    "not yet run",
)

#: Columns of :func:`load_claims`'s table.
CLAIM_COLUMNS = ["chapter", "claim", "figure", "result", "evidence", "verdict", "rule"]


def glue_value(name: str, value) -> None:
    """Glue ``value`` under ``name`` for ``{glue:text}`` in the chapter's prose (not displayed)."""
    from myst_nb import glue

    if hasattr(value, "item"):  # NumPy and torch scalars
        value = value.item()
    glue(name, value, display=False)


@dataclass
class Claim:
    """One claim of the paper and what this reproduction found.

    Attributes
    ----------
    claim : str
        The paper's claim, in a sentence.
    figure : str
        Where the paper shows it, e.g. ``"Fig. 10 (left)"``.
    result : str
        What was measured here, with its number(s).
    verdict : str
        One of :data:`VERDICTS`; the computed ones come from a rule (:meth:`judged`).
    rule : str
        The rule that reached the verdict, as a sentence with its thresholds ("" for the
        verdicts that are not computed: "GPU-only", "not yet run").
    evidence : str
        For a claim judged on replicates, the effect and the spread across replicates it was
        judged against (:attr:`madutils.analysis.verdicts.Verdict.evidence`); "" otherwise.
    """

    claim: str
    figure: str
    result: str
    verdict: str
    rule: str = ""
    evidence: str = ""

    def __post_init__(self):
        check_choice(self.verdict, "verdict", VERDICTS)
        computed = self.verdict in VERDICTS[:4]
        if computed and not self.rule:
            raise ValueError(
                f"a claim judged {self.verdict!r} needs the rule that judged it: build it with "
                "Claim.judged(..., verdict=judge(rule_name, **numbers))"
            )

    @classmethod
    def judged(cls, claim: str, figure: str, result: str, verdict) -> Claim:
        """A claim whose verdict comes from a rule of :mod:`madutils.analysis.verdicts`.

        Parameters
        ----------
        claim, figure, result : str
            As the attributes.
        verdict : madutils.analysis.verdicts.Verdict
            What :func:`~madutils.analysis.verdicts.judge` returned for the claim's numbers.
        """
        return cls(
            claim,
            figure,
            result,
            verdict=verdict.verdict,
            rule=verdict.rule,
            evidence=verdict.evidence,
        )


def record_claims(output_dir: str | Path, chapter: str, claims: list[Claim]) -> None:
    """Write a chapter's claims to ``<output_dir>/claims/<chapter>.json`` (returns nothing, so
    a notebook cell ending with this call shows no output)."""
    path = Path(output_dir) / "claims" / f"{chapter}.json"
    text = json.dumps([asdict(c) for c in claims], indent=2) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def load_claims(output_dir: str | Path, chapters: list[str] | None = None) -> pd.DataFrame:
    """All recorded claims as a table with a ``chapter`` column (in ``chapters`` order)."""
    folder = Path(output_dir) / "claims"
    files = sorted(folder.glob("*.json")) if folder.exists() else []
    if chapters is not None:
        by_name = {f.stem: f for f in files}
        files = [by_name[c] for c in chapters if c in by_name]
    frames = [pd.DataFrame(json.loads(f.read_text())).assign(chapter=f.stem) for f in files]
    if not frames:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    for column in ("rule", "evidence"):  # claims recorded before these columns existed
        if column not in table:
            table[column] = ""
    return table[CLAIM_COLUMNS].fillna({"rule": "", "evidence": ""})
