"""What every ``python -m editlab.<part>`` command shares: errors as one line, Ctrl-C as one line, ``--debug``.

    parser = argparse.ArgumentParser(...)
    sub = parser.add_subparsers(...)
    sub.add_parser("run", parents=[debug_option()], ...)
    return run_command(lambda: command(args), args, resumable="the same command resumes the run")
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable


def debug_option() -> argparse.ArgumentParser:
    """A parent parser giving a (sub)command the ``--debug`` flag."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", help="on an error, show the traceback")
    return parent


def run_command(command: Callable[[], int], debug: bool = False, resumable: str | None = None) -> int:
    """Run ``command``; print an error or a warning as one line (no traceback unless ``debug``), and
    Ctrl-C as one line saying whether the work can be resumed. Returns the exit status (2: an error,
    130: interrupted)."""
    if debug:
        return command()
    shown = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        return command()
    except KeyboardInterrupt:
        print(f"\ninterrupted{f' ({resumable})' if resumable else ''}", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line for the user; --debug shows the traceback
        message = " ".join(str(e).split()) or type(e).__name__
        if not isinstance(e, (ValueError, OSError)):  # not one of our messages: say what kind of error it is
            message = f"{type(e).__name__}: {message} (run again with --debug for the traceback)"
        print(f"error: {message}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = shown


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr if file is None else file)
