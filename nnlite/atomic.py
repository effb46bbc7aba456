"""Atomic file writes: a crash or an error never leaves a half-written file behind."""
import contextlib
import os
import secrets


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; when the block succeeds, flush it to disk
    and rename it onto ``path`` (``os.replace`` is atomic), else remove it.

    The temporary file is created empty with mode 0666 less the umask, as ``open``
    would create ``path`` itself.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise
