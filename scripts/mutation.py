"""Mutation testing of the security-deciding modules: a small driver around mutmut.

For each module named in ``[tool.gateway-mutation.modules]`` (pyproject.toml):

1. unit pass: mutmut mutates that one module and judges every mutant by the module's
   own mirrored unit tests only (a work dir per module under ``.mutation/``, so one
   module's score never borrows another module's tests);
2. integration pass: each survivor of the unit pass is run again against the
   module's integration tests (real gateway subprocesses inherit ``MUTANT_UNDER_TEST``
   and import the mutated tree), stopping at the first failure.

Results are kept in ``.mutation/results.json``; a per-module score table is printed
(and written as Markdown with ``--markdown FILE``). Mutants listed in
``mutation-equivalents.toml`` (next to pyproject.toml) with a reason are not counted.

Run from the repository root with mutmut installed (``pip install -e '.[mutation]'``):
``nice -n 10 python scripts/mutation.py [--unit-only] [--fresh] [module-substring ...]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".mutation"
EQUIVALENTS = REPO / "mutation-equivalents.toml"

# mutmut's exit codes for a mutant: 0 = the tests passed (survived), 33 = no test reached it.
SURVIVED = {0, 33, 5}
NOT_RUN = {None}


@dataclass
class ModuleResult:
    """Outcome of both passes for one module."""

    module: str
    mutants: dict[str, int | None] = field(default_factory=dict)
    integration: dict[str, str] = field(default_factory=dict)  # name -> killed/survived

    def unit_killed(self, equivalent: set[str]) -> tuple[int, int]:
        counted = [n for n in self.mutants if n not in equivalent]
        killed = [n for n in counted if self.mutants[n] not in SURVIVED | NOT_RUN]
        return len(killed), len(counted)

    def suite_survivors(self, equivalent: set[str]) -> list[str]:
        return [
            n
            for n, code in self.mutants.items()
            if n not in equivalent
            and code in SURVIVED | NOT_RUN
            and self.integration.get(n) != "killed"
        ]


def load_config() -> dict[str, dict[str, list[str]]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    section: dict[str, dict[str, list[str]]] = data["tool"]["gateway-mutation"]
    return section


def load_equivalents() -> dict[str, str]:
    if not EQUIVALENTS.exists():
        return {}
    data = tomllib.loads(EQUIVALENTS.read_text())
    return {str(k): str(v) for k, v in data.get("equivalent", {}).items()}


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def prepare_workdir(module: str, unit_tests: list[str], fresh: bool) -> Path:
    """A directory holding only a pyproject whose [tool.mutmut] mutates `module` alone."""
    workdir = WORK / slug(module)
    if fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("gateway", "tests"):
        link = workdir / name
        if not link.exists():
            link.symlink_to(REPO / name)
    text = (REPO / "pyproject.toml").read_text()
    text = text.split("\n[tool.mutmut]")[0].split("\n[tool.gateway-mutation")[0]
    selection = json.dumps(unit_tests)
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["gateway"]\n'
        f"only_mutate = [{json.dumps(module)}]\n"
        f"pytest_add_cli_args_test_selection = {selection}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
        "use_git_change_detection = false\n"
    )
    (workdir / "pyproject.toml").write_text(text)
    return workdir


def run_unit_pass(module: str, unit_tests: list[str], fresh: bool) -> ModuleResult:
    workdir = prepare_workdir(module, unit_tests, fresh)
    # mutmut puts its mutated tree first on sys.path itself; an outside PYTHONPATH
    # would let the original `gateway` win.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    log = workdir / "mutmut.log"
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", "2"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        print(f"  mutmut failed for {module}; see {log}", file=sys.stderr)
    meta = workdir / "mutants" / f"{module}.meta"
    result = ModuleResult(module)
    if meta.exists():
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        result.mutants = {str(k): v for k, v in codes.items()}
    return result


def run_integration_pass(
    module: str, result: ModuleResult, tests: list[str], equivalent: set[str], timeout: float
) -> None:
    """Run each unit-pass survivor against the integration tests; first failure kills it."""
    mutants_dir = WORK / slug(module) / "mutants"
    for name in result.suite_survivors(equivalent):
        if not tests:
            result.integration[name] = "survived"
            continue
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(PYTHONPATH=str(mutants_dir), MUTANT_UNDER_TEST=name)
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
        try:
            proc = subprocess.run(
                cmd,
                cwd=mutants_dir,
                env=env,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            outcome = "survived" if proc.returncode == 0 else "killed"
            if proc.returncode not in (0, 1):
                outcome = "killed" if proc.returncode == 2 else outcome
        except subprocess.TimeoutExpired:
            outcome = "killed"  # a mutant that hangs the suite is noticed
        result.integration[name] = outcome
        print(f"    {outcome:8} {name}", flush=True)


def show(module: str, name: str) -> None:
    """Print mutmut's diff for one mutant (from the module's work dir)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name],
        cwd=WORK / slug(module),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    print("\n".join(line for line in out.splitlines() if line[:1] in "+-@"))


def score_table(results: list[ModuleResult], equivalent: set[str]) -> list[str]:
    lines = [
        "| module | mutants | killed by own unit tests | unit score | left after integration |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        killed, counted = r.unit_killed(equivalent)
        score = f"{100 * killed / counted:.1f} %" if counted else "-"
        ran_integration = bool(r.integration) or killed == counted
        left = len(r.suite_survivors(equivalent)) if ran_integration else "not run"
        lines.append(f"| {r.module} | {counted} | {killed} | {score} | {left} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="substrings of module paths to run")
    parser.add_argument("--unit-only", action="store_true", help="skip the integration pass")
    parser.add_argument("--fresh", action="store_true", help="forget kept mutmut results")
    parser.add_argument("--report-only", action="store_true", help="print kept results")
    parser.add_argument(
        "--integration-only",
        action="store_true",
        help="run the integration pass on the kept unit-pass survivors",
    )
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--markdown", type=Path, help="also write the score table here")
    parser.add_argument("--timeout", type=float, default=600.0, help="per-survivor seconds")
    args = parser.parse_args()

    config = load_config()
    unit = config["modules"]
    integration = config.get("integration", {})
    equivalents = load_equivalents()
    equivalent = set(equivalents)
    WORK.mkdir(exist_ok=True)
    store = WORK / "results.json"
    kept: dict[str, dict[str, object]] = json.loads(store.read_text()) if store.exists() else {}

    results: list[ModuleResult] = []
    for module, tests in unit.items():
        if args.only and not any(s in module for s in args.only):
            old = kept.get(module)
            if old:
                results.append(ModuleResult(module, old["mutants"], old["integration"]))  # type: ignore[arg-type]
            continue
        if args.report_only or args.integration_only:
            old = kept.get(module, {"mutants": {}, "integration": {}})
            result = ModuleResult(module, old["mutants"], old["integration"])  # type: ignore[arg-type]
            if args.integration_only and result.mutants:
                print(f"{module}: integration pass", flush=True)
                run_integration_pass(
                    module, result, integration.get(module, []), equivalent, args.timeout
                )
                kept[module] = {"mutants": result.mutants, "integration": result.integration}
                store.write_text(json.dumps(kept, indent=1, sort_keys=True))
            results.append(result)
            continue
        # An entry starting with "-" is a pytest option (e.g. "-mnot slow"), not a path.
        missing = [t for t in tests if not t.startswith("-") and not (REPO / t).exists()]
        if missing:
            print(f"{module}: no unit tests ({', '.join(missing)} missing); skipped", flush=True)
            continue
        started = time.monotonic()
        print(f"{module}: unit pass ({' '.join(tests)})", flush=True)
        result = run_unit_pass(module, tests, args.fresh)
        killed, counted = result.unit_killed(equivalent)
        print(f"  {killed}/{counted} killed ({time.monotonic() - started:.0f} s)", flush=True)
        if not args.unit_only:
            run_integration_pass(
                module, result, integration.get(module, []), equivalent, args.timeout
            )
        results.append(result)
        kept[module] = {"mutants": result.mutants, "integration": result.integration}
        store.write_text(json.dumps(kept, indent=1, sort_keys=True))

    unknown = sorted(equivalent - {n for r in results for n in r.mutants})
    table = score_table(results, equivalent)
    print("\n".join(table))
    for r in results:
        for name in r.suite_survivors(equivalent):
            print(f"survivor: {name}")
            if args.show:
                show(r.module, name)
    if unknown and not args.only:
        print(f"equivalents no longer generated: {', '.join(unknown)}")
    if args.markdown:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        args.markdown.write_text(f"Run {stamp} at commit {commit}\n\n" + "\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
