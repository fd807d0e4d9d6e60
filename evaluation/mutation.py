"""Mutation testing of the modules that guard the user's data and the invariants, with mutmut 3 (issue 20).

    python evaluation/mutation.py [--max-children 1] [--fresh] [--show] [MUTANT ...]      (or: make mutation)

Not part of `make test` or CI: a full run makes ~3,400 mutants and takes an hour or more on 2 cores. The modules are
``[tool.mutmut] only_mutate`` in pyproject.toml (add one there); the tests are that section's selection: every test
but those marked ``slow`` or ``pipeline`` (which run the extraction: seconds each, for every mutant they reach).

How mutmut 3.8 works, and what this script adds:

- It copies ``person_cluster/``, ``tests/``, ``configs/`` and pyproject.toml into ``mutants/`` and rewrites every
  function of those modules into a trampoline that calls the original or one of its mutants, chosen by the
  MUTANT_UNDER_TEST environment variable (inherited by the CLI subprocesses some tests start).
- It runs the selected tests once ("stats") and records which tests reach which function; then, per mutant, in a
  forked child, it runs only those tests with ``-x``: killed when one fails, a timeout past 15 times their CPU time.
  Results are cached in ``mutants/*.meta`` per function hash: a function that did not change keeps its verdict.
- Tests that were added since do not re-open a cached verdict, so this script sends every mutant that was not
  killed back to be tested again, and copies ``tests/`` afresh (a test removed here is removed there). ``--fresh``
  throws the whole cache away.
- The tests find the real data through PERSON_CLUSTER_TESTDATA (``mutants/`` is one level deeper than ../shared),
  and ``lfw12_run`` is made once here, with the unmutated code, for all the sessions (PERSON_CLUSTER_LFW12_RUN).
- Mutants that no test could tell apart from the original, however good, are listed in
  ``evaluation/mutation_equivalent.yaml`` (name: one-line reason); they are reported apart and left out of the score.

The report gives per module killed / survived / timeout / no tests (reached by no selected test) / equivalent and
the score, (killed + timeout) / (mutants - equivalent); ``--show`` prints each survivor's diff.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
WORK = ROOT / "evaluation" / "work" / "mutation"
EQUIVALENT = ROOT / "evaluation" / "mutation_equivalent.yaml"
CAUGHT = ("killed", "timeout")
COLUMNS = ("killed", "survived", "timeout", "no tests", "other", "equivalent")


def modules() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]


def equivalent() -> dict[str, str]:
    data = yaml.safe_load(EQUIVALENT.read_text()) if EQUIVALENT.exists() else None
    return {str(k): str(v) for k, v in (data or {}).items()}


def verdicts(module: str) -> dict[str, str]:
    """Mutant name -> mutmut's status (killed, survived, timeout, no tests, not checked, ...), from its meta file."""
    from mutmut.stats import status_by_exit_code

    meta = MUTANTS / f"{module}.meta"
    if not meta.exists():
        return {}
    return {k: status_by_exit_code[v] for k, v in json.loads(meta.read_text())["exit_code_by_key"].items()}


def reopen_unkilled() -> int:
    """Forget every cached verdict but 'killed', so that those mutants meet the tests as they are now."""
    count = 0
    for module in modules():
        meta = MUTANTS / f"{module}.meta"
        if not meta.exists():
            continue
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        from mutmut.stats import status_by_exit_code

        for k, v in codes.items():
            if v is not None and status_by_exit_code[v] != "killed":
                codes[k] = None
                count += 1
        meta.write_text(json.dumps(data, indent=4))
    return count


def make_lfw12_run() -> Path:
    """The tests' shared photo run, made once with the unmutated code (tests/conftest.py: make_lfw12_run)."""
    root = WORK / "lfw12"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    code = "import sys; from pathlib import Path; from conftest import make_lfw12_run; make_lfw12_run(Path(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, cwd=ROOT, env=env)
    return root / "out"


def report(show: bool) -> dict[str, dict[str, int]]:
    listed = equivalent()
    table: dict[str, dict[str, int]] = {}
    survivors: list[str] = []
    seen: set[str] = set()
    for module in modules():
        got = verdicts(module)
        seen |= set(got)
        counts = Counter()
        for name, status in got.items():
            if name in listed:
                counts["equivalent"] += 1
                if status in CAUGHT:
                    print(f"note: {name} is listed as equivalent but was {status}: take it off the list")
            elif status in ("killed", "survived", "timeout", "no tests"):
                counts[status] += 1
            else:
                counts["other"] += 1  # not checked, suspicious, segfault, interrupted
            if name not in listed and status not in CAUGHT:
                survivors.append(name)
        table[module] = {c: counts[c] for c in COLUMNS} | {"mutants": len(got)}
    totals = {c: sum(row[c] for row in table.values()) for c in (*COLUMNS, "mutants")}

    def score(row: dict[str, int]) -> str:
        tested = row["mutants"] - row["equivalent"]
        return f"{100 * (row['killed'] + row['timeout']) / tested:.1f}%" if tested else "-"

    width = max(len(m) for m in table) + 2
    print(f"\n{'module':<{width}}{'mutants':>8}" + "".join(f"{c:>11}" for c in COLUMNS) + f"{'score':>9}")
    for module, row in [*table.items(), ("total", totals)]:
        print(f"{module:<{width}}{row['mutants']:>8}" + "".join(f"{row[c]:>11}" for c in COLUMNS) + f"{score(row):>9}")
    stale = sorted(set(listed) - seen)
    if stale:
        print(f"\n{len(stale)} entries of {EQUIVALENT.name} name no mutant any more (the code changed): "
              + ", ".join(stale))
    if listed:
        print(f"\nequivalent ({len(set(listed) & seen)}):")
        for name in sorted(set(listed) & seen):
            print(f"  {name}: {listed[name]}")
    print(f"\nnot killed ({len(survivors)}):")
    for name in survivors:
        print(f"  {name}")
        if show:
            diff = subprocess.run([_mutmut(), "show", name], check=False, cwd=ROOT, capture_output=True,
                                  text=True).stdout
            print("    " + "\n    ".join(diff.strip().splitlines()[1:]))
    return table | {"total": totals}


def _mutmut() -> str:
    return str(Path(sys.executable).parent / "mutmut")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-children", type=int, default=1, help="mutants tested at once (default 1: a shared machine)")
    ap.add_argument("--fresh", action="store_true", help="forget every cached verdict first")
    ap.add_argument("--show", action="store_true", help="print the diff of every mutant not killed")
    ap.add_argument("--report-only", action="store_true", help="report the cached verdicts, run nothing")
    ap.add_argument("mutants", nargs="*", help="only these mutants (mutmut names; globs allowed)")
    args = ap.parse_args()
    os.chdir(ROOT)  # mutmut reads pyproject.toml and writes mutants/ in the working directory
    if not args.report_only:
        testdata = Path(os.environ.get("PERSON_CLUSTER_TESTDATA") or ROOT.parent / "shared" / "testdata").resolve()
        if not testdata.is_dir():
            sys.exit(f"no test data at {testdata}; set PERSON_CLUSTER_TESTDATA")
        if args.fresh:
            shutil.rmtree(MUTANTS, ignore_errors=True)
        shutil.rmtree(MUTANTS / "tests", ignore_errors=True)  # mutmut copies them again, as they are now
        # Before mutmut starts: a PYTHONPATH entry missing at start-up is skipped by the import system for good
        # (sys.path_importer_cache), and the tests would import the editable install instead of the mutants.
        MUTANTS.mkdir(exist_ok=True)
        if not args.mutants:
            print(f"{reopen_unkilled()} mutants not killed before are tested again")
        env = {**os.environ, "PERSON_CLUSTER_TESTDATA": str(testdata), "PERSON_CLUSTER_LFW12_RUN": str(make_lfw12_run()),
               "PYTHONPATH": str(MUTANTS),  # the CLI subprocesses of the tests import the mutated package too
               # One thread per numerical library: the timeout is on CPU time, which idle-spinning thread pools
               # would spend; and the machine is shared.
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        started = time.monotonic()
        r = subprocess.run(["nice", "-n", "10", _mutmut(), "run", "--max-children", str(args.max_children),
                            *args.mutants], check=False, cwd=ROOT, env=env)
        print(f"\nmutmut run: exit {r.returncode} after {(time.monotonic() - started) / 60:.1f} min")
    table = report(args.show)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "report.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
