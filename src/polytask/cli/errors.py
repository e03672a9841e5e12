"""Which exceptions are a user's mistake (one line on stderr, exit 2) and which are bugs
(a traceback, as they must surface)."""

from __future__ import annotations

import errno


def user_message(error: BaseException) -> str | None:
    """The one line to show for ``error`` when it is a user's mistake, else ``None``.

    A user's mistake: a configuration or input that polytask refused with a message
    (``ValueError`` and its subclasses: configuration, table, checkpoint, task errors), an
    unknown name (a ``KeyError`` whose message is a sentence; a bare key is a lookup bug), an
    option a factory does not take, a target of the wrong dtype, a missing optional extra, a
    file or folder that cannot be read or written (``OSError`` naming it), a run folder in use.
    Anything else (a ``TypeError`` or ``KeyError`` from inside the code, a ``RuntimeError``) is
    a bug: the caller re-raises it so that its traceback shows.
    """
    from polytask._extras import MissingExtraError
    from polytask._registry import UnknownOptionError
    from polytask.tasks.losses import TargetTypeError
    from polytask.training.run_folder import RunFolderInUseError

    if isinstance(error, KeyError):
        text = str(error.args[0]) if error.args else ""
        return text if " " in text else None
    if isinstance(error, UnknownOptionError | TargetTypeError | MissingExtraError):
        return str(error)
    if isinstance(error, RunFolderInUseError | ValueError):
        return str(error) or None
    if isinstance(error, OSError) and error.filename is not None:
        fix = {
            errno.ENOSPC: "free disk space or choose another output folder",
            errno.EACCES: "choose a folder you may write to",
            errno.EROFS: "choose a folder you may write to",
            errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
        }.get(error.errno or 0, "check the path")
        return f"{error.filename}: {error.strerror}; {fix}"
    return None
