"""The output folder of one train.py run: checked writable before any work starts, and locked for the run's
lifetime so that a second train.py into the same folder (a double submission) refuses instead of interleaving
its log and checkpoints. The lock is an flock on `<folder>/.train.lock` (holding the pid): the kernel releases it
when its holder dies, however it dies, so a later run takes over (and resumes) without clean-up.
"""
import errno
import fcntl
import os

from harness.errors import UserError

LOCK_NAME = ".train.lock"


class OutputDirError(UserError):
    pass


def lock_output_dir(output_dir):
    """Create the folder if needed and lock it; returns the open lock file, to keep for the process's life."""
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise OutputDirError(f"--output-dir {output_dir}: cannot create the folder ({error.strerror}); choose "
                             "another path, or fix the permissions of its parent.") from None
    if not os.path.isdir(output_dir):
        raise OutputDirError(f"--output-dir {output_dir}: exists and is not a folder; choose another path.")
    path = os.path.join(output_dir, LOCK_NAME)
    try:
        lock_file = open(path, "a+")  # noqa: SIM115  (held open: the lock lasts as long as the file is open)
    except OSError as error:
        raise OutputDirError(f"--output-dir {output_dir}: cannot write into the folder ({error.strerror}); fix its "
                             "permissions or choose another path.") from None
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            raise
        lock_file.seek(0)
        holder = lock_file.read().strip() or "unknown"
        lock_file.close()
        raise OutputDirError(
            f"--output-dir {output_dir} is in use by another train.py (pid {holder}); wait for it to finish (a run "
            "started again after it died resumes), or choose another folder."
        ) from None
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(f"{os.getpid()}\n")
    lock_file.flush()
    return lock_file
