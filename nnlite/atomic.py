"""Atomic file writes: a crash or an error never leaves a half-written file behind."""
import contextlib
import os
import re
import secrets


def _tmp_pattern(name):
    """The temporary names ``atomic_path`` gives ``name``: ``.NAME.PID.TOKEN.tmp``."""
    return re.compile(rf"^\.{re.escape(name)}\.(\d+)\.[0-9a-f]{{12}}\.tmp$")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path):
    """Remove the temporary files of earlier writes of ``path`` whose process has died.

    Only names of ``atomic_path``'s own form (``.NAME.PID.TOKEN.tmp``) with a PID that no
    longer runs are touched: a killed save (SIGKILL, power loss) leaves one behind, and a
    write in progress in a live process is left alone.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    pattern = _tmp_pattern(name)
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return
    for entry in entries:
        m = pattern.match(entry)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, entry))


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; when the block succeeds, flush it to disk
    and rename it onto ``path`` (``os.replace`` is atomic), else remove it.

    The temporary file is created empty with mode 0666 less the umask, as ``open``
    would create ``path`` itself. Its name carries this process's id, so that the
    temporaries of killed writers can be told apart and are removed here first
    (``remove_stale_temporaries``).
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    remove_stale_temporaries(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise
