"""Dependencies point inward (issue 11, finding 6): the venue's facts are a leaf package, the trading
core (bots, risk, execution) imports no framework and no edge of ours, flows do not reach into the
embedded runtime. Read from the sources' import statements, so a new import that breaks a rule fails
here before it is reviewed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pets"
FRAMEWORKS = ("bytewax", "kafka", "confluent_kafka", "dagster")


def imports(package: str) -> dict[str, set[str]]:
    """module path -> every module it imports (at any depth: also inside functions)."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(PACKAGE.parent))] = names
    return found


def offending(
    package: str, allowed: tuple[str, ...] = (), forbidden: tuple[str, ...] = (), frameworks: bool = False
) -> list[str]:
    bad = []
    for module, names in imports(package).items():
        for name in sorted(names):
            ours = name == "pets" or name.startswith("pets.")
            if ours and allowed and not name.startswith(allowed):
                bad.append(f"{module} imports {name}")
            if (not frameworks and name.split(".")[0] in FRAMEWORKS) or (
                forbidden and name.startswith(forbidden)
            ):
                bad.append(f"{module} imports {name}")
    return bad


def test_the_venue_package_is_a_leaf() -> None:
    assert offending("venue", allowed=("pets.venue", "pets.schemas")) == []


@pytest.mark.parametrize("package", ["bots", "risk", "execution"])
def test_the_trading_core_imports_no_framework_and_no_edge(package: str) -> None:
    assert offending(package, forbidden=("pets.flows", "pets.runtime", "pets.cli", "pets.assets")) == []


def test_flows_do_not_reach_into_the_embedded_runtime() -> None:
    assert offending("flows", forbidden=("pets.runtime", "pets.cli"), frameworks=True) == []


def test_the_rules_see_a_violation() -> None:
    """The walker finds an import inside a function (where the old bots/operator.py had them)."""
    tree = ast.parse("def f():\n    from bytewax import operators\n")
    assert any(isinstance(n, ast.ImportFrom) and n.module == "bytewax" for n in ast.walk(tree))
