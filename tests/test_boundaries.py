"""The shape of the code, kept by tests: a pure core, one door into it, two faces that never meet.

Read with ``ast`` (nothing is imported), so a new import that breaks a rule fails here first.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CALCULATOR = ROOT / "calculator"
CORE = CALCULATOR / "core"
WEB = [CALCULATOR / "views.py", *sorted((CALCULATOR / "web").glob("*.py"))]
API = sorted((CALCULATOR / "api").glob("*.py"))
# The faces reach the core only through calculator.services (the adapters models.py and schemas.py
# translate to and from it; the core's own modules import each other relatively).
FACES = [*WEB, *API, CALCULATOR / "admin.py", CALCULATOR / "warmup.py"]


def imports(path: Path) -> list[str]:
    """Absolute module names a file imports (relative imports resolved inside the package)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                base = f"{package}.{node.module}" if node.module else package
                names += [base] if node.module else [f"{base}.{alias.name}" for alias in node.names]
            else:
                names += [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=rel)
def test_the_core_imports_only_the_standard_library_and_itself(path):
    for name in imports(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith("calculator.core"), f"{rel(path)} imports {name}"


@pytest.mark.parametrize("path", WEB, ids=rel)
def test_the_web_face_never_imports_the_api(path):
    assert not [n for n in imports(path) if n.startswith("calculator.api")]


@pytest.mark.parametrize("path", API, ids=rel)
def test_the_api_face_never_imports_the_web(path):
    assert not [n for n in imports(path) if n.startswith(("calculator.web", "calculator.views"))]


@pytest.mark.parametrize("path", FACES, ids=rel)
def test_faces_reach_the_core_only_through_the_services(path):
    assert not [n for n in imports(path) if n.startswith("calculator.core")]


def test_the_rules_above_see_real_imports():
    """A rule that checks nothing cannot fail: make sure the reader finds what files import."""
    assert "calculator.services" in imports(CALCULATOR / "views.py")
    assert "calculator.core.estimate" in imports(CORE / "advice.py")
    assert any(n.startswith("calculator.core") for n in imports(CALCULATOR / "services" / "__init__.py"))
