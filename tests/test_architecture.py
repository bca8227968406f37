"""How the package hangs together: no import cycles, no hidden in-function imports, small
modules, a builder that stands alone, and a registry where every stage says what it has."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ctaflow"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path, modules: dict[str, Path]):
    """(module-level ctaflow imports, in-function ctaflow imports as (line, target))."""
    source = path.read_text()
    tree = ast.parse(source)
    skip = _type_checking_lines(tree)
    top, inner = set(), []
    function_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function_lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        targets = {n for n in names if n in modules and n.startswith("ctaflow")}
        if not targets or node.lineno in skip:
            continue
        if node.lineno in function_lines:
            inner += [(node.lineno, t) for t in targets]
        else:
            top |= targets
    return top, inner, source.splitlines()


def _dependencies(importer: str, targets: set[str]) -> set[str]:
    """Importing a.b.c runs the __init__ of a and a.b first; packages the importer lives in are
    already being imported then, so only an explicit import of them counts."""
    ancestors = {importer.rsplit(".", k)[0] for k in range(1, importer.count(".") + 1)}
    deps = set(targets)
    for target in targets:
        parts = target.split(".")
        deps |= {".".join(parts[:i]) for i in range(1, len(parts))} - ancestors
    return deps - {importer}


def test_no_import_cycle_between_ctaflow_modules():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        top, _, _ = _imports(path, modules)
        graph[name] = _dependencies(name, top)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if state.get(name) is None:
            cycle = visit(name)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_in_function_imports_of_ctaflow_say_why():
    """An import of a ctaflow module inside a function hides a dependency; the only ones
    allowed say why on the line or in the comment block right above (``# lazy: ...``)."""
    modules = _modules()
    unexplained = []
    for path in modules.values():
        _, inner, lines = _imports(path, modules)
        for lineno, target in inner:
            if not _explained(lines, lineno):
                unexplained.append(f"{path.relative_to(PACKAGE.parent)}:{lineno} imports {target}")
    assert not unexplained, "\n".join(unexplained)


def _explained(lines: list[str], lineno: int) -> bool:
    """A ``lazy:`` comment on the import's line or in the block of imports and comments right
    above it."""
    if "lazy:" in lines[lineno - 1]:
        return True
    for line in reversed(lines[: lineno - 1]):
        text = line.strip()
        if "lazy:" in text:
            return True
        if not (text.startswith(("#", "from ", "import ", ")")) or text.endswith(",")):
            return False
    return False


def test_no_module_is_too_long():
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_builders_stand_alone():
    """A database host runs the builders (maggma ``mrun``) without the makers, atomate2's force
    fields or torch."""
    code = (
        "import sys, ctaflow.builders\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('ctaflow.makers', "
        "'ctaflow.engines.mlip', 'ctaflow.engines.vasp', 'ctaflow.campaign.schema', "
        "'ctaflow.stages', 'atomate2.forcefields', 'torch')))\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_every_stage_has_a_builder_and_a_report_section_or_says_why():
    from ctaflow.stages import STAGES

    for name, spec in STAGES.items():
        assert spec.builder is not None or spec.no_builder, f"{name}: no builder, no reason"
        assert spec.report is not None or spec.no_report, f"{name}: no report, no reason"
        assert spec.output_schema is not None, f"{name}: what does it store?"
        if spec.builder is not None:
            assert spec.builder.stage == name
            assert spec.builder.output_schema is spec.output_schema
        upstream = () if callable(spec.upstream) else spec.upstream
        for needed in (*spec.requires, *(u for u in upstream if u in STAGES)):
            assert list(STAGES).index(needed) < list(STAGES).index(name), (name, needed)
    assert sum(spec.root for spec in STAGES.values()) == 1


@pytest.mark.parametrize("kind", ["mlip", "mace", "vasp", "vasp-standin"])
def test_engines_are_data(kind):
    """An engine serialises to its spec and back, so makers that hold one can be job inputs."""
    from monty.json import MontyDecoder, jsanitize
    from pydantic import TypeAdapter

    from ctaflow.engines import get_engine
    from ctaflow.engines.specs import EngineSpec
    from ctaflow.makers.md import MDStageMaker

    engine = get_engine(TypeAdapter(EngineSpec).validate_python({"kind": kind}))
    maker = MDStageMaker(engine=engine)
    data = jsanitize(maker, strict=True, enum_values=True)
    back = MontyDecoder().process_decoded(data)
    assert type(back.engine) is type(engine)
    assert back.engine.spec == engine.spec
    assert back.settings == maker.settings
    assert back.engine.label == engine.label


def test_stage_makers_work_without_arguments():
    """atomate2 style: every stage maker has typed fields with defaults (the embedded CHGNet
    engine, the stage's default settings), so ``Maker()`` is a usable maker."""
    from dataclasses import fields

    from ctaflow.engines.mlip import MLIPEngine
    from ctaflow.makers import amorphous, exchange, interfaces, md, neb, relax, training_data

    makers = [
        amorphous.AmorphousStageMaker,
        exchange.ExchangeStageMaker,
        interfaces.InterfaceStageMaker,
        interfaces.InterfaceMaker,
        md.MDStageMaker,
        md.MDProtocolMaker,
        neb.NEBStageMaker,
        relax.RelaxStageMaker,
        training_data.TrainingDataMaker,
    ]
    for cls in makers:
        maker = cls()
        assert isinstance(maker.engine, MLIPEngine), cls
        for f in fields(maker):
            assert f.type not in ("Any", "Any | None"), f"{cls.__name__}.{f.name} is untyped"
            if f.name == "settings":
                assert getattr(maker, f.name) is not None, cls
