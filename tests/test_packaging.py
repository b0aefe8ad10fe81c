"""Packaging: every third-party module the code imports is a declared dependency of the wheel.

``pip install medscrm`` installs only ``[project].dependencies`` (plus the extras asked for),
never the dev group, so a module imported by the code but reached only through a dev tool (or
another package's dependencies) works in the locked environment and fails for users. These tests
read every module under ``src/medscrm`` with :mod:`ast` (imports inside functions included),
map each imported top-level name to the distribution that provides it in this environment and
compare with ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "medscrm"
#: every package the wheel ships (medscrm_client: the generated API client)
PACKAGES = (SRC, ROOT / "src" / "medscrm_client")

# Declared distributions the code never imports by name, each with what it is needed for.
USED_WITHOUT_IMPORT = {
    "duckdb-engine": "SQLAlchemy dialect for duckdb:// URLs, loaded through its entry point",
    "python-multipart": "FastAPI imports it to parse Form() bodies (login and console forms)",
    "opentelemetry-exporter-otlp-proto-http": "the otel extra's exporter, imported as "
    "opentelemetry.exporter.otlp.proto.http when MEDSCRM_OTEL=1 (a namespace package the dev "
    "environment does not install, so no import name maps to it here)",
}


def _canon(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    assert m, f"cannot read a distribution name from requirement {req!r}"
    return _canon(m.group(1))


@dataclass(frozen=True)
class Use:
    module: str  # top-level import name
    where: str  # file:line
    top_level: bool  # executed when the module is imported (not inside a function)


def _imports(tree: ast.AST, rel: str) -> list[Use]:
    out: list[Use] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    out.append(Use(alias.name.split(".")[0], f"{rel}:{child.lineno}", not in_function))
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append(Use(child.module.split(".")[0], f"{rel}:{child.lineno}", not in_function))
            visit(child, inner)

    visit(tree, False)
    return out


def third_party_imports(root: Path | None = None) -> list[Use]:
    uses: list[Use] = []
    for path in sorted(p for r in ([root] if root else PACKAGES) for p in r.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for use in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=rel), rel):
            if use.module in sys.stdlib_module_names or use.module in ("medscrm", "medscrm_client"):
                continue
            uses.append(use)
    return uses


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = {_req_name(r) for r in project.get("dependencies", [])}
    extras = {
        extra: {_req_name(r) for r in reqs}
        for extra, reqs in (project.get("optional-dependencies") or {}).items()
    }
    return deps, extras


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    dists = _packages_distributions().get(module)
    assert dists, (
        f"no installed distribution provides the module {module!r}: install the environment "
        "(uv sync --frozen) or declare and lock the package"
    )
    return {_canon(d) for d in dists}


def dependency_problems(uses: list[Use], deps: set[str], extras: dict[str, set[str]]) -> list[str]:
    """What is imported but not declared, or needs an extra yet runs on ``import medscrm...``."""
    in_extras = set().union(*extras.values()) if extras else set()
    problems = []
    for use in uses:
        dists = _distributions(use.module)
        if dists & deps:
            continue
        if dists & in_extras:
            if use.top_level:
                extra = next(e for e, d in extras.items() if d & dists)
                problems.append(
                    f"{use.where}: {use.module} ({', '.join(sorted(dists))}) is only in the optional extra "
                    f"[{extra}] but is imported when the module loads: import it inside the function "
                    "that needs it (with a clear error naming the extra)"
                )
            continue
        problems.append(
            f"{use.where}: {use.module} is provided by {', '.join(sorted(dists))}, which is not in "
            "[project].dependencies (uv add it)"
        )
    return problems


def test_every_import_is_a_declared_dependency():
    deps, extras = declared()
    uses = third_party_imports()
    assert {u.module for u in uses} >= {"pandas", "sqlalchemy", "fastapi"}  # the walk sees the code
    problems = dependency_problems(uses, deps, extras)
    assert not problems, "undeclared runtime imports:\n" + "\n".join(problems)


def test_every_declared_dependency_is_used():
    deps, extras = declared()
    imported: set[str] = set()
    for module in {u.module for u in third_party_imports()}:
        imported |= _distributions(module)
    unused = sorted((deps | set().union(*extras.values())) - imported - set(USED_WITHOUT_IMPORT))
    assert not unused, (
        f"declared but imported nowhere under src/medscrm or src/medscrm_client (uv remove them): {unused}"
    )


def test_the_check_sees_imports_inside_functions_and_extras(tmp_path):
    # the checker itself: a lazy import of an extra is fine, a top-level one is not, and an
    # import of something undeclared is reported wherever it is
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text(
        "import os\nimport yaml\n\ndef f():\n    import pandas as pd\n    from pyspark.sql import x\n",
        encoding="utf-8",
    )
    (pkg / "b.py").write_text("from pyspark.sql import SparkSession\n", encoding="utf-8")
    uses = []
    for p in sorted(pkg.glob("*.py")):
        uses += [u for u in _imports(ast.parse(p.read_text()), p.name) if u.module != "os"]
    assert [(u.module, u.top_level) for u in uses] == [
        ("yaml", True),
        ("pandas", False),
        ("pyspark", False),
        ("pyspark", True),
    ]
    problems = dependency_problems(uses, {"pyyaml"}, {"spark": {"pyspark"}})
    assert len(problems) == 2
    assert problems[0].startswith("a.py:5: pandas") and "not in [project].dependencies" in problems[0]
    assert problems[1].startswith("b.py:1: pyspark") and "[spark]" in problems[1]
