"""The runtime's core never reaches up into its command line: the CLI uses
the core (and its logging, runpy_oci.log), not the other way round."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "runpy_oci"


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_no_core_module_imports_the_cli():
    core = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts]
    upward = {str(p.relative_to(PACKAGE)): name for p in core for name in imported_modules(p)
              if name == "runpy_oci.cli" or name.startswith("runpy_oci.cli.")}
    assert upward == {}
