"""Execute notebooks top to bottom with papermill, in place, on a fresh ``python3`` kernel.

    python tools/run_notebooks.py notebooks/00_the_world.ipynb [...] [-p NAME VALUE ...]

A parameter goes to the notebooks that declare it in their ``parameters`` cell (``-p FULL False`` runs
notebooks 05 and 07 at their quick setting instead of the committed full one). Each notebook runs in its own
folder (so it finds ../figures) and is replaced only when it ran to the end: a failing notebook leaves the
committed one untouched. Widget state is stripped
(it bloats the file and the pictures are in the outputs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill


def run(path: Path, parameters: dict) -> float:
    start = time.perf_counter()
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=path.parent)
    os.close(fd)
    try:
        papermill.execute_notebook(str(path), tmp, parameters=parameters, kernel_name="python3",
                                   cwd=str(path.parent), progress_bar=False)
        nb = nbformat.read(tmp, as_version=4)
        nb.metadata.pop("widgets", None)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter (values are read as Python literals when they parse)")
    args = parser.parse_args()
    import ast

    params = {}
    for name, value in args.p:
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    declared = {nb: set(papermill.inspect_notebook(str(nb))) for nb in args.notebooks}
    unused = set(params) - set().union(*declared.values())
    if unused:
        parser.error(f"no notebook has the parameter(s) {sorted(unused)}")
    for nb in sorted(args.notebooks):
        print(f"running {nb} ...", flush=True)
        seconds = run(nb, {k: v for k, v in params.items() if k in declared[nb]})  # each its own parameters
        print(f"  done in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
