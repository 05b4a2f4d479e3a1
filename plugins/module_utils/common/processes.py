# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Child processes that never outlive their task.

A program is started as the leader of a process group of its own (start_in_own_group), so
the workers it forks (pg_dump / pg_restore --jobs, for instance) can be stopped together with
it (stop_process): on a failure, a timeout or an interruption nothing is left running.
run_captured runs one to completion without a shell and turns a failure into an exception
whose message carries the tail of its stderr, with every secret masked. raise_on_sigterm
makes SIGTERM an exception, so finally blocks clean up before the process exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

from ansible_collections.ceres.rollout.plugins.module_utils.common.redaction import redact

ERROR_TAIL_CHARS = 2000
STOP_GRACE_SECONDS = 10


def tail(text, limit=ERROR_TAIL_CHARS):
    """The end of text (stripped), at most limit characters, marked with ... when cut."""
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class raise_on_sigterm:
    """Context manager: SIGTERM raises make_error() inside the block (so finally blocks remove
    temporary output, stop child processes ...); the previous handler is restored on exit."""

    def __init__(self, make_error):
        self.make_error = make_error
        self._previous = None

    def __enter__(self):
        self._previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._raise)
        return self

    def _raise(self, signum, frame):
        raise self.make_error()

    def __exit__(self, *exc_info):
        signal.signal(signal.SIGTERM, self._previous)
        return False


def describe_exit(what, returncode):
    """ "<what> exited with status N" or "<what> was killed by SIGNAME"."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        return "%s was killed by %s" % (what, name)
    return "%s exited with status %d" % (what, returncode)


def start_in_own_group(argv, **popen_arguments):
    """Popen argv as the leader of a process group of its own (a new session), so the
    workers it forks can be stopped with it: stop_process()."""
    return subprocess.Popen(argv, start_new_session=True, **popen_arguments)


def run_captured(argv, environment, secrets, error_class, what, stdin_chunks=None, output_encoding="utf-8"):
    """Run argv (started by start_in_own_group, no shell) to completion; return its stdout
    decoded with output_encoding. stdout and stderr go to temporary files (no pipe to fill up,
    and none that workers of a dead leader could hold open); on a non-zero exit, error_class
    is raised with the tail of stderr, secrets masked. stdin_chunks, when given, are fed to
    its stdin (its stdout is then discarded)."""
    with tempfile.TemporaryFile() as stdout_file, tempfile.TemporaryFile() as stderr_file:
        process = start_in_own_group(
            argv,
            env=environment,
            stdout=stdout_file if stdin_chunks is None else subprocess.DEVNULL,
            stderr=stderr_file,
            stdin=subprocess.PIPE if stdin_chunks is not None else subprocess.DEVNULL,
        )
        try:
            if stdin_chunks is not None:
                _feed_stdin(process, stdin_chunks)
            process.wait()
        except BaseException:
            stop_process(process)  # with its workers, also on Ctrl-C and SIGTERM
            raise
        if process.returncode != 0:
            stop_process(process)  # workers a failed leader left behind
            stderr_file.seek(0)
            detail = tail(stderr_file.read().decode("utf-8", "replace"))
            raise error_class(redact("%s: %s" % (describe_exit(what, process.returncode), detail), secrets))
        stdout_file.seek(0)
        return stdout_file.read().decode(output_encoding, "replace")


def _feed_stdin(process, chunks):
    try:
        for chunk in chunks:
            process.stdin.write(chunk)
    except BrokenPipeError:
        pass  # the program exited early; its exit status and stderr say why
    finally:
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass


def stop_process(process):
    """Stop a process started by start_in_own_group() and every process of its group (workers
    outlive a killed leader otherwise): SIGTERM (and SIGCONT, for stopped ones) to the group,
    SIGKILL to what is left after STOP_GRACE_SECONDS. The leader is reaped; the wait for its
    workers is bounded."""
    group = process.pid
    if process.poll() is not None and not process_group_alive(group):
        return
    _signal_group(group, signal.SIGTERM)
    _signal_group(group, signal.SIGCONT)
    if _wait_for_group(process, group, STOP_GRACE_SECONDS):
        return
    _signal_group(group, signal.SIGKILL)
    process.wait()
    _wait_for_group(process, group, STOP_GRACE_SECONDS)


def _signal_group(group, signum):
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_for_group(process, group, timeout):
    """Wait up to timeout for the leader to exit (it is reaped) and its group to be empty."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        if process.poll() is not None and not process_group_alive(group):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def process_group_alive(group):
    """Whether a process of the group is still running. Zombies do not count: the workers of
    a dead leader are reparented to init, which in a container may never reap them."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command: state, ppid, pgrp
        if len(fields) > 2 and int(fields[2]) == group and fields[0] not in (b"Z", b"X"):
            return True
    return False
