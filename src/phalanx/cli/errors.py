"""One ``error: ...`` line and exit code 2 for every expected failure (a traceback with --debug).

Expected failures are PhalanxError (bad configuration, missing data, chain errors) and OSError
(files and directories); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from phalanx.errors import PhalanxError

F = TypeVar("F", bound=Callable[..., Any])
#: exit code of an expected failure (bad input)
EXIT_BAD_INPUT = 2
#: exit code after Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130


def is_debug() -> bool:
    """True when the root command got ``--debug``."""
    # typer vendors click (typer._click): its context stack, not the click package's
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # typer versions that use the click package
        from click import get_current_context  # type: ignore[no-redef]  # same function

    ctx = get_current_context(silent=True)
    if ctx is None:
        return False
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) if isinstance(root.obj, dict) else False


def fail(e: BaseException) -> None:
    """Print ``error: <e>`` (one line) to stderr and exit 2."""
    text = " ".join(str(e).split()) or type(e).__name__
    typer.secho(f"error: {text}", err=True, fg=typer.colors.RED)
    raise typer.Exit(EXIT_BAD_INPUT)


def one_line_errors(func: F) -> F:
    """Decorate a command: expected failures become one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (PhalanxError, OSError) as e:
            if is_debug():
                raise
            fail(e)
        except typer.BadParameter as e:
            if is_debug():
                raise
            fail(e)
        return None

    return wrapper  # type: ignore[return-value]  # same signature as func
