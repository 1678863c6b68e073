"""The package's layers point one way: no import cycles, and the method layer does not reach into the world."""

import ast
from pathlib import Path

import editlab

ROOT = Path(editlab.__file__).parent

# The method layer: the papers' algorithms, the metrics and the method registry. They take what the world and the
# tiny model know as arguments; they do not import them.
METHOD_LAYER = ("ddim", "inversion", "attention", "p2p", "masactrl", "pnp", "pix2pix_zero", "imagic", "editing",
                "methods", "metrics", "sdedit", "interpolation", "noise_regularisation")
def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("editlab", *path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (functions included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan's strongly connected components)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in g:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_method_layer_does_not_import_the_world_or_the_toy():
    g = graph()
    for name in (f"editlab.{m}" for m in METHOD_LAYER):
        reached = {t for t in g[name] if t.startswith(("editlab.world", "editlab.toy"))}
        assert not reached, f"{name} imports {sorted(reached)}"


def test_pie_bench_constants_are_a_leaf():
    assert graph()["editlab.pie_bench"] == set()


# Public names that several modules define on purpose, each meaning the same thing for its own method or stage
# (called qualified: `sdedit.edit_many`, `p2p.paper_controller`, `toy.unet.train`). Any other repeated name is two
# different things under one name, which defeats search and reading.
SAME_MEANING = {
    "edit": "edit one picture with this module's method",
    "edit_many": "edit a batch of pictures with this module's method",
    "paper_controller": "this method's attention controller at its paper's settings",
    "train": "train this stage of the tiny model",
    "main": "a command line's entry point",
    "claim_folder": "make a resumable output folder this run's, or check that it is",
}


def public_definitions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                found.setdefault(node.name, []).append(name)
    return found


def test_a_public_name_means_one_thing_across_the_package():
    repeated = {n: where for n, where in public_definitions().items() if len(where) > 1 and n not in SAME_MEANING}
    assert repeated == {}, f"one name for different things (rename one, or list it in SAME_MEANING): {repeated}"


def test_one_denoising_loop():
    loops = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.For) and "timesteps(" in ast.unparse(node.iter):
                loops[name] = loops.get(name, 0) + 1
    # ddim.denoise_steps (the one denoising loop) and ddim.invert_steps (the one inversion loop, which walks the other way)
    assert loops == {"editlab.ddim": 2}
