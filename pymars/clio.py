"""Command-line input and output that never loses a user's data, and errors as one line.

What it is for: every ``pymars`` command that writes goes through
:func:`check_output` (before any work) and :class:`AtomicOutput` /
:class:`AtomicFolder` (the write itself); every command reads its input with
:func:`read_input`; ``main`` runs the command inside :func:`error_boundary`,
:func:`termination_as_interrupt` and :func:`cli_warnings`. Together they make
these promises:

* an input is never overwritten: not by the same path, not through a link to
  it, not by an export into the folder that holds it;
* a folder is never taken for a file, and a file's name says what it holds
  (``.pmrs`` for a pymars file, ``.png``/``.tif`` for an image, ``.pmrl`` for
  a reference library); a default output name (no ``-o``) never replaces a file;
* the content goes to a hidden temporary file in the output's folder, renamed
  over the output only once complete; on every other path (error, Ctrl-C,
  SIGTERM, full disk) the temporary file and any folder made for it are
  removed, so the output is as it was before the command;
* a folder that cannot take the output fails before the work, not after it;
* an input that changes while it is read is refused rather than half-read;
* a message names the user's path, never the temporary one;
* an expected failure is one line ``pymars: error: ...`` and exit status 2,
  Ctrl-C is ``pymars: interrupted`` and 130 (SIGTERM ``pymars: terminated``,
  143), a real bug is one line that points to ``--debug`` (status 70), and a
  warning is one line ``pymars: warning: ...``.

What it must not do: import NumPy, the codec or PyTorch at import time (the
CLI loads it for every command), print anything but the boundary's and the
warnings' lines, or write anywhere but next to the output it was given.

Example:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); src = os.path.join(d, "a.png"); _ = open(src, "wb").write(b"image")
    >>> check_output(src, "pymars file", inputs=[src])
    Traceback (most recent call last):
    ...
    pymars.clio.OutputRefused: ...a.png: is the input file; refusing to overwrite it (choose another -o)
    >>> check_output(os.path.join(d, "b.png"), "pymars file")
    Traceback (most recent call last):
    ...
    pymars.clio.OutputRefused: ...b.png: a pymars file must be named *.pmrs (e.g. b.pmrs), not *.png
    >>> out = check_output(os.path.join(d, "a.pmrs"), "pymars file", inputs=[src])
    >>> with AtomicOutput(out) as sink:
    ...     sink.write(b"PMRS")
    >>> sorted(os.listdir(d))
    ['a.pmrs', 'a.png']
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import signal
import stat
import sys
import threading
import traceback
import warnings
from pathlib import Path

from pymars import _core
from pymars.errors import PymarsError

#: The name that means standard input (as an input) or standard output (as an output).
STDIO = "-"

#: What an output holds -> the file name suffixes that say so (the first is the one suggested).
CONTENT_SUFFIXES = {
    "pymars file": (".pmrs",),
    "image": (".png", ".tif", ".tiff"),
    "PNG image": (".png",),
    "reference library": (".pmrl",),
}

#: Suffixes of other formats. A pymars file under one of these names would be opened by other
#: tools as that format (or mistaken for the user's original), so it is refused; any other
#: suffix (``.bin``, none) only earns a warning, as ground pipelines name files their own way.
OTHER_FORMATS = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".jp2", ".j2k",
                           ".heic", ".img", ".raw", ".pmrl", ".pmrg", ".pmw", ".npz", ".npy", ".json", ".onnx",
                           ".pt", ".safetensors", ".txt", ".md", ".py", ".csv"})

#: Exit statuses of :func:`error_boundary` (130 and 143: 128 + the signal number, as shells report).
EXIT_ERROR, EXIT_BUG, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 2, 70, 130, 141, 143


class OutputRefused(PymarsError):
    """An output path that would overwrite an input, replace a folder or mislabel its content."""


class InputChanged(PymarsError):
    """An input file changed (size, time or identity) while it was being read."""


class CommandError(PymarsError):
    """Options that do not fit together (the command says which and why)."""


class OutputError(OSError):
    """The output could not be written (full disk, read-only or missing folder); names the user's path."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived. Raised like Ctrl-C, so every ``finally`` and ``with`` block
    cleans up on the way out (the default action would kill the process with its temporary
    files left behind)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# ---------------------------------------------------------------------------------------------
# Inputs


def read_input(path: str | os.PathLike) -> bytes:
    """The bytes of an input file (``-``: standard input).

    Refuses a missing file and a folder with a one-line message, and a file
    that changes while it is read (its size, modification time or identity
    differ before and after, or fewer bytes came than it holds), which would
    otherwise be coded half old, half new. Pipes and devices are read as they
    come.

    Example:
        >>> read_input("no-such-file.png")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no-such-file.png: file not found
        >>> read_input(".")
        Traceback (most recent call last):
        ...
        IsADirectoryError: .: is a folder, not a file
    """
    if str(path) == STDIO:
        return sys.stdin.buffer.read()
    p = Path(path)
    try:
        before = os.stat(p)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    if stat.S_ISDIR(before.st_mode):
        raise IsADirectoryError(f"{path}: is a folder, not a file")
    data = _read_file(p)
    if not stat.S_ISREG(before.st_mode):
        return data
    after = os.stat(p)
    if _identity(before) != _identity(after) or len(data) != after.st_size:
        raise InputChanged(f"{path}: changed while it was being read; run the command again once the file is "
                           "complete")
    return data


def _read_file(path: Path) -> bytes:
    # One function so that a test can change the file "during" the read.
    with open(path, "rb") as f:
        return f.read()


def _identity(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


# ---------------------------------------------------------------------------------------------
# Outputs: the guard


def check_output(path: str | os.PathLike, content: str, inputs=(), *, default: bool = False,
                 allow_stdout: bool = False) -> Path | str:
    """The output path, once it is safe to write ``content`` there; call it before any work.

    ``content`` is a key of :data:`CONTENT_SUFFIXES`; ``inputs`` are the
    command's input files; ``default``: the name was made up by the command
    (no ``-o``), so it must not replace an existing file. Returns a Path, or
    :data:`STDIO` for ``-`` when ``allow_stdout``. Missing parent folders are
    fine (:class:`AtomicOutput` makes them, and removes them again on failure).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> check_output(d, "image")
        Traceback (most recent call last):
        ...
        pymars.clio.OutputRefused: ...: is a folder; give a file name such as .../out.png
        >>> check_output(d / "new" / "x.png", "image") == d / "new" / "x.png"
        True
    """
    if str(path) == STDIO:
        if not allow_stdout:
            raise OutputRefused("-: this command cannot write to standard output; give a file name")
        return STDIO
    p = Path(path)
    want = CONTENT_SUFFIXES[content]
    suffix = p.suffix.lower()
    if p.is_dir() or str(path).endswith(("/", os.sep)):
        raise OutputRefused(f"{path}: is a folder; give a file name such as {p / ('out' + want[0])}")
    exists = p.exists()
    special = exists and not p.is_file()  # a device or a pipe (/dev/null): written directly, its name says nothing
    for source in inputs if exists else ():
        if source is not None and str(source) != STDIO and _same_file(p, source):
            raise OutputRefused(f"{path}: is the input file; refusing to overwrite it (choose another -o)")
    if suffix not in want and not special:
        if content == "pymars file" and suffix not in OTHER_FORMATS:
            warnings.warn(f"{path}: a pymars file is usually named *{want[0]}", stacklevel=2)
        else:
            named = f"*{suffix}" if suffix else "a name without a suffix"
            raise OutputRefused(f"{path}: a {content} must be named *{' or *'.join(want)} "
                                f"(e.g. {p.with_suffix(want[0]).name}), not {named}")
    if exists and default and not special:
        raise OutputRefused(f"{path} already exists; pass -o {path} to replace it, or choose another name")
    ancestor = _existing_ancestor(p.parent)
    if not ancestor.is_dir():
        raise OutputRefused(f"{path}: {ancestor} is a file, not a folder")
    return p


def check_output_folder(path: str | os.PathLike, inputs=(), *, marker: str = "model.json",
                        what: str = "model bundle") -> Path:
    """The output folder of an export, once it is safe to (re)place it; call it before any work.

    Refuses an existing file, a folder that holds one of ``inputs`` (an export
    into its own run folder would delete the checkpoint it comes from) and an
    existing non-empty folder without ``marker`` (it is not an earlier export,
    so replacing it could delete anything).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / "checkpoint.pt").write_bytes(b"")
        0
        >>> check_output_folder(d, [d / "checkpoint.pt"])
        Traceback (most recent call last):
        ...
        pymars.clio.OutputRefused: ...: holds the input .../checkpoint.pt; export to another folder
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputRefused(f"{path}: is a file, not a folder")
    target = p.resolve()
    for source in inputs:
        src = Path(source).resolve()
        if src == target or target in src.parents:
            raise OutputRefused(f"{path}: holds the input {source}; export to another folder")
    if p.is_dir() and any(p.iterdir()) and not (p / marker).is_file():
        raise OutputRefused(f"{path}: is a folder but not a {what} (no {marker}); refusing to replace it "
                            "(choose a new folder)")
    ancestor = _existing_ancestor(p.parent)
    if not ancestor.is_dir():
        raise OutputRefused(f"{path}: {ancestor} is a file, not a folder")
    return p


def _same_file(a: Path, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _existing_ancestor(folder: Path) -> Path:
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


# ---------------------------------------------------------------------------------------------
# Outputs: the atomic writers


def _make_parents(folder: Path) -> list[Path]:
    """Create the missing folders above a file; returns them, deepest last (for the clean-up)."""
    missing = []
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    try:
        for f in reversed(missing):
            f.mkdir()
            made.append(f)
    except OSError:
        _remove_folders(made)
        raise
    return made


def _remove_folders(made: list[Path]) -> None:
    for f in reversed(made):
        with contextlib.suppress(OSError):
            f.rmdir()  # only if still empty


def _temp_name(p: Path, kind: str) -> Path:
    # Hidden, unique, in the output's own folder (os.replace is atomic within one file system);
    # the name is cut so that it stays under the 255-byte limit of a file name.
    return p.parent / f".{p.name[:200]}.{secrets.token_hex(4)}.{kind}"


def _write_error(path, e: OSError, doing: str = "cannot write") -> OutputError:
    err = OutputError(f"{path}: {doing} ({e.strerror or e})")
    err.errno = e.errno
    return err


class AtomicOutput:
    """A file that appears at ``path`` complete, or not at all.

    Entering creates the hidden temporary file next to ``path`` (and any
    missing folder), so a folder that cannot take the output fails at once;
    :meth:`write` appends; leaving the block without an exception replaces
    ``path`` by the temporary file; leaving it with one (Ctrl-C and SIGTERM
    included) removes the temporary file and the folders made for it.
    :data:`STDIO` buffers the content and writes it to standard output at the
    end; an existing device or pipe (``/dev/null``) is written directly, as a
    rename would replace the device itself.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> with AtomicOutput(d / "sub" / "x.pmrs") as out:
        ...     out.write(b"PMRS")
        >>> (d / "sub" / "x.pmrs").read_bytes()
        b'PMRS'
        >>> try:
        ...     with AtomicOutput(d / "more" / "y.pmrs") as out:
        ...         out.write(b"PM")
        ...         raise KeyboardInterrupt
        ... except KeyboardInterrupt:
        ...     pass
        >>> sorted(p.name for p in d.iterdir())
        ['sub']
    """

    def __init__(self, path: str | os.PathLike):
        self.path = path if str(path) == STDIO else Path(path)
        self._file = None
        self._temp: Path | None = None
        self._made: list[Path] = []
        self._chunks: list[bytes] | None = None

    def __enter__(self) -> "AtomicOutput":
        if self.path == STDIO:
            self._chunks = []
            return self
        p = self.path
        try:
            if p.is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a folder")
            if p.exists() and not p.is_file():
                self._file = open(p, "wb")  # a device or a pipe: no rename possible, nothing to lose
                return self
            self._made = _make_parents(p.parent)
            self._temp = _temp_name(p, "part")
            fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            self._file = os.fdopen(fd, "wb")
        except OSError as e:
            self._discard()
            raise _write_error(p, e) from None
        return self

    @property
    def temp_path(self) -> Path:
        """The hidden temporary file (for writers that take a path: torch.save, safetensors, ONNX)."""
        if self._temp is None:
            raise ValueError(f"{self.path}: standard output or a device has no temporary file")
        return self._temp

    def write(self, data: bytes) -> None:
        if self._chunks is not None:
            self._chunks.append(bytes(data))
            return
        try:
            self._file.write(data)
        except OSError as e:
            raise _write_error(self.path, e) from None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self._discard()
            return False
        try:
            self._commit()
        except BaseException as e:
            self._discard()
            if isinstance(e, OSError) and not isinstance(e, OutputError):
                raise _write_error(self.path, e) from None
            raise
        return False

    def _commit(self) -> None:
        if self._chunks is not None:
            sys.stdout.buffer.write(b"".join(self._chunks))
            sys.stdout.buffer.flush()
            return
        self._file.flush()
        if self._temp is not None:
            os.fsync(self._file.fileno())  # the bytes are on disk before the name points at them
        self._file.close()
        if self._temp is not None:
            os.replace(self._temp, self.path)
            self._temp = None

    def _discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._temp is not None:
            with contextlib.suppress(OSError):
                self._temp.unlink()
            self._temp = None
        _remove_folders(self._made)
        self._made = []


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """A temporary path next to ``path`` that replaces ``path`` when the block ends without an exception.

    The project's one way to write a file that appears complete or not at all
    (checkpoints, weights, ONNX graphs, caches) when the writer wants a path;
    :class:`AtomicOutput` when it writes bytes. On an exception (Ctrl-C
    included) the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "ck.bin"
        >>> with atomic_path(p) as tmp:
        ...     _ = tmp.write_bytes(b"step 1")
        >>> p.read_bytes()
        b'step 1'
    """
    with AtomicOutput(path) as out:
        yield out.temp_path


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "a.json"
        >>> atomic_write(p, b"{}"); p.read_bytes()
        b'{}'
    """
    with AtomicOutput(path) as out:
        out.write(data)


def write_json(path: str | os.PathLike, doc) -> None:
    """Write ``doc`` as indented JSON to ``path`` atomically (a result file of bench/).

    Example:
        >>> import tempfile, json
        >>> p = Path(tempfile.mkdtemp()) / "r.json"
        >>> write_json(p, {"a": 1}); json.loads(p.read_text())
        {'a': 1}
    """
    import json

    with AtomicOutput(path) as out:
        out.write((json.dumps(doc, indent=1) + "\n").encode())


class AtomicFolder:
    """A folder that appears at ``path`` complete, or not at all (exports of model bundles).

    The block writes into the path it is given, a folder named ``path.name``
    (writers record their folder's name) inside a hidden staging folder next
    to ``path``. On success an existing ``path`` is moved aside, the new one
    moved in and the old one deleted; on failure the staging folder goes.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> with AtomicFolder(d / "my-model") as folder:
        ...     _ = (folder / "model.json").write_text("{}")
        ...     folder.name
        'my-model'
        >>> sorted(p.name for p in d.iterdir()), (d / "my-model" / "model.json").is_file()
        (['my-model'], True)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._stage: Path | None = None
        self._made: list[Path] = []

    def __enter__(self) -> Path:
        p = self.path
        try:
            self._made = _make_parents(p.parent)
            self._stage = _temp_name(p, "part")
            (self._stage / p.name).mkdir(parents=True)
        except OSError as e:
            self._discard()
            raise _write_error(p, e) from None
        return self._stage / p.name

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self._discard()
            return False
        old = _temp_name(self.path, "old") if self.path.exists() else None
        try:
            if old is not None:
                os.rename(self.path, old)
            os.rename(self._stage / self.path.name, self.path)
        except OSError as e:
            if old is not None and not self.path.exists():
                os.rename(old, self.path)
            self._discard()
            raise _write_error(self.path, e) from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._discard()
        return False

    def _discard(self) -> None:
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None
        _remove_folders(self._made)
        self._made = []


# ---------------------------------------------------------------------------------------------
# Progress of the C++ tile loops


@contextlib.contextmanager
def tile_progress(tiles: int, desc: str, enabled: bool = True):
    """A progress bar (stderr, cleared at the end) over the encoder's analysis of ``tiles`` tiles.

    The C++ tile loops report finished tiles to ``pymars._core.tile_progress``
    (csrc/python/bindings.cpp, TileLoopControl). The analysis pass is almost
    all of an encode's time (the rate-control passes of ``--target-bytes`` re-code
    the analysed tiles in a few percent of it), so the bar counts it alone and
    the later passes only fill it up.

    Example:
        >>> with tile_progress(4, "encode", enabled=False):
        ...     pass
    """
    if not enabled:
        yield
        return
    from tqdm import tqdm

    bar = tqdm(total=tiles, desc=desc, unit="tile", leave=False, file=sys.stderr, dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} tiles [{elapsed}<{remaining}]")
    previous = getattr(_core, "tile_progress", None)
    _core.tile_progress = lambda n: bar.update(min(n, bar.total - bar.n))
    try:
        yield
    finally:
        _core.tile_progress = previous
        bar.close()


# ---------------------------------------------------------------------------------------------
# Signals, warnings and the error boundary


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def termination_as_interrupt():
    """Within the block, SIGTERM (and SIGHUP) raise :class:`Terminated` like Ctrl-C raises KeyboardInterrupt.

    Only in the main thread (Python allows no handler elsewhere); a signal the
    parent chose to ignore (``nohup``) stays ignored. The previous handlers
    come back at the end.

    Example:
        >>> import signal
        >>> with termination_as_interrupt():
        ...     signal.getsignal(signal.SIGTERM).__name__
        '_raise_terminated'
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is None or signal.getsignal(sig) == signal.SIG_IGN:
                continue
            with contextlib.suppress(ValueError, OSError):
                previous[sig] = signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"pymars: warning: {_one_line(str(message))}", file=sys.stderr)


@contextlib.contextmanager
def cli_warnings():
    """Within the block, warnings print as one line ``pymars: warning: <message>`` (no source line).

    Example:
        >>> import contextlib, io, sys, warnings
        >>> err = io.StringIO()
        >>> with contextlib.redirect_stderr(err), cli_warnings():
        ...     warnings.warn("x.png: alpha channel dropped")
        >>> err.getvalue()
        'pymars: warning: x.png: alpha channel dropped\\n'
    """
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        yield


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def expected_failure(e: BaseException) -> str | None:
    """The one-line message for an expected failure (bad input or options, a file system refusal,
    a damaged file, a model mismatch, a missing optional package), or None for a bug.

    Example:
        >>> expected_failure(PermissionError(13, "Permission denied", "/sys/x.pmrs"))
        '/sys/x.pmrs: Permission denied'
        >>> expected_failure(KeyError("tiles")) is None
        True
    """
    if isinstance(e, OSError):  # missing files, permissions, full disks, PIL's unreadable images
        if e.filename is not None and e.strerror:
            names = f"{e.filename} -> {e.filename2}" if e.filename2 is not None else f"{e.filename}"
            return f"{names}: {e.strerror}"
        return _one_line(str(e)) or type(e).__name__
    if isinstance(e, ValueError):  # PymarsError and every refused value
        return _one_line(str(e)) or type(e).__name__
    if isinstance(e, MemoryError):
        return "out of memory (the image or the number of threads is too large for this machine)"
    if isinstance(e, ImportError) and e.name:
        return (f"this command needs the Python package {e.name!r}, which is not installed "
                "(pip install 'pymars[train]' for training and the PyTorch paths)")
    if type(e).__module__.startswith("PIL"):  # DecompressionBombError and friends
        return _one_line(str(e))
    return None


def error_boundary(command, args, debug: bool = False) -> int:
    """Run ``command(args)`` and turn what it raises into one line on stderr and an exit status.

    Expected failures (:func:`expected_failure`): ``pymars: error: <message>``,
    status 2. Ctrl-C: ``pymars: interrupted``, 130; SIGTERM/SIGHUP
    (:class:`Terminated`): ``pymars: terminated``, 143. Anything else is a bug:
    one line naming the exception and ``--debug``, status 70. With ``debug``
    the traceback comes first.

    Example:
        >>> import contextlib, io
        >>> err = io.StringIO()
        >>> def fail(args): raise FileNotFoundError("x.png: file not found")
        >>> with contextlib.redirect_stderr(err):
        ...     error_boundary(fail, None)
        2
        >>> err.getvalue()
        'pymars: error: x.png: file not found\\n'
    """
    try:
        return command(args)
    except BrokenPipeError:
        # The reader of our output went away (`pymars info x.pmrs | head -1`): not an error to report.
        # Standard output is pointed at /dev/null so that the interpreter's last flush stays quiet.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as e:
        if debug:
            traceback.print_exc()
        if isinstance(e, Terminated):
            print("pymars: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        print("pymars: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if debug:
            traceback.print_exc()
        message = expected_failure(e)
        if message is not None:
            print(f"pymars: error: {message}", file=sys.stderr)
            return EXIT_ERROR
        what = _one_line(str(e))
        print(f"pymars: internal error: {type(e).__name__}{': ' + what if what else ''} (a bug in pymars: "
              f"run the command again with --debug for the traceback, and report it)", file=sys.stderr)
        return EXIT_BUG


def positive_int(text: str) -> int:
    """argparse type of a count that must be >= 1 (argparse turns the ValueError into one usage line).

    Example:
        >>> positive_int("8")
        8
        >>> positive_int("0")
        Traceback (most recent call last):
        ...
        ValueError: must be an integer >= 1, got '0'
    """
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"must be an integer >= 1, got {text!r}")
    return n
