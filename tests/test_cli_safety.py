"""A new user's trial of the command line, written down (issue 15): no data lost, no traceback.

Specification (one behaviour per test). Every command that fails:
* exits with status 2 (130 on Ctrl-C, 143 on SIGTERM), and says so in exactly one line on stderr that
  starts with ``pymars:``, naming the user's path, never a temporary file and never a traceback;
* leaves every input byte for byte as it was;
* leaves no file behind: no output, no temporary ``*.part`` file, no folder made for the output.
And the guard itself: an input is never overwritten (same path, link, export into its folder), a folder is
never taken for a file, a name that says another format is refused, a default name never replaces a file,
an input that changes while read is refused; warnings are one line ``pymars: warning: ...``; a real bug is
one line pointing to ``--debug``, which shows the traceback.

Synthetic scenes and the tiny test model only (no ../shared); the enhance case uses the shipped
enhancer when it is installed.
"""
from __future__ import annotations

import hashlib
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import pymars
from pymars import clio
from pymars.cli import main
from pymars.data.synthetic import mars_like_scene
from pymars.imageio import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- helpers


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones included) -> SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Temporary files and folders of pymars.clio (and any *.part) below ``folder``."""
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if ".part" in p.name or p.name.endswith(".old")]


def message_lines(err: str) -> list[str]:
    """The non-empty lines of stderr (a cleared progress bar is carriage returns and blanks)."""
    parts = re.split(r"[\r\n]", err)
    return [p.strip() for p in parts if p.strip()]


def assert_one_error(err: str, *words: str) -> str:
    lines = message_lines(err)
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("pymars: error: "), line
    assert "Traceback" not in err and ".part" not in line, err
    for w in words:
        assert w in line, line
    return line


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    """``pymars ARGS`` in a fresh interpreter (signals, resource limits, standard input and output)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 300)
    # Not from the checkout: `python -m` puts the working folder first on sys.path, and
    # the checkout's pymars/ has no compiled _core when the package is installed (CI).
    kw.setdefault("cwd", tempfile.gettempdir())
    return subprocess.run([sys.executable, "-m", "pymars.cli", *args], **kw)


@pytest.fixture(scope="module")
def model(tiny_bundle):
    return ["--model", str(tiny_bundle.root)]


@pytest.fixture()
def work(tmp_path):
    """A folder with an RGB PNG, a gray TIFF and a pymars file of the PNG, as a user would have them."""
    write_image(tmp_path / "image.png", mars_like_scene(150, 200, seed=11))
    write_image(tmp_path / "gray.tif", mars_like_scene(64, 96, seed=12, channels=1))
    return tmp_path


@pytest.fixture()
def coded(work, tiny_bundle):
    (work / "image.pmrs").write_bytes(pymars.encode(read_image(work / "image.png"), 60, model=tiny_bundle))
    return work


def png_with_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


# ----------------------------------------------------------------------------------------------- data loss


def test_encode_refuses_to_overwrite_its_input(work, model, capsys):
    before = snapshot(work)
    assert main(["encode", str(work / "image.png"), "-o", str(work / "image.png"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "image.png", "is the input file")
    assert snapshot(work) == before


def test_encode_refuses_a_link_to_its_input(work, model, capsys):
    os.symlink(work / "image.png", work / "link.pmrs")
    os.link(work / "image.png", work / "hard.pmrs")
    before = snapshot(work)
    for name in ("link.pmrs", "hard.pmrs"):
        assert main(["encode", str(work / "image.png"), "-o", str(work / name), *model]) == 2
        assert_one_error(capsys.readouterr().err, name, "is the input file")
    assert snapshot(work) == before


def test_decode_refuses_to_overwrite_its_input(coded, model, capsys):
    os.symlink(coded / "image.pmrs", coded / "same.png")
    before = snapshot(coded)
    assert main(["decode", str(coded / "image.pmrs"), "-o", str(coded / "same.png"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "is the input file")
    assert snapshot(coded) == before


def test_a_pymars_file_under_an_image_name_is_refused(work, model, capsys):
    before = snapshot(work)
    assert main(["encode", str(work / "image.png"), "-o", str(work / "x.png"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "x.png", "*.pmrs")
    assert snapshot(work) == before


def test_an_unusual_name_for_a_pymars_file_earns_a_one_line_warning(work, model, capsys):
    assert main(["encode", str(work / "image.png"), "-o", str(work / "x.bin"), *model]) == 0
    err = capsys.readouterr().err
    assert message_lines(err) == [f"pymars: warning: {work / 'x.bin'}: a pymars file is usually named *.pmrs"]
    assert (work / "x.bin").read_bytes()[:4] == b"PMRS" and not leftovers(work)


def test_decode_refuses_an_output_that_is_not_png_or_tiff(coded, model, capsys):
    before = snapshot(coded)
    assert main(["decode", str(coded / "image.pmrs"), "-o", str(coded / "out.jpg"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "out.jpg", "*.png")
    assert snapshot(coded) == before


def test_a_folder_as_output_is_refused_and_left_empty(work, model, capsys):
    (work / "ro").mkdir()
    before = snapshot(work)
    assert main(["encode", str(work / "image.png"), "-o", str(work / "ro"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "is a folder")
    assert snapshot(work) == before and not any((work / "ro").iterdir())


def test_missing_output_folders_are_made_and_the_message_names_the_users_path(work, model, capsys):
    out = work / "new" / "sub" / "x.pmrs"
    assert main(["encode", str(work / "image.png"), "-o", str(out), *model]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{out}: ") and ".part" not in text
    assert pymars.info(out.read_bytes())["width"] == 200 and not leftovers(work)


def test_an_output_below_a_file_is_refused(work, model, capsys):
    (work / "notes.txt").write_text("a file, not a folder")
    before = snapshot(work)
    assert main(["encode", str(work / "image.png"), "-o", str(work / "notes.txt" / "x.pmrs"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "notes.txt", "is a file, not a folder")
    assert snapshot(work) == before


def test_a_read_only_file_system_fails_before_the_work_with_one_line(work, model, capsys):
    # /sys is read-only even for root (chmod would not stop root); nothing may be made there.
    before = snapshot(work)
    for out in ("/sys/x.pmrs", "/sys/pymars-no-such-dir/x.pmrs"):
        assert main(["encode", str(work / "image.png"), "-o", out, *model]) == 2
        assert_one_error(capsys.readouterr().err, out, "cannot write")
        assert not Path(out).exists()
    assert snapshot(work) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o500 folder anyway: the read-only file "
                                               "system case (/sys) covers it")
def test_a_read_only_folder_is_refused_with_one_line(work, model, capsys):
    ro = work / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["encode", str(work / "image.png"), "-o", str(ro / "x.pmrs"), *model]) == 2
        assert_one_error(capsys.readouterr().err, "x.pmrs", "cannot write")
        assert not any(ro.iterdir())
    finally:
        ro.chmod(0o700)


def test_a_full_disk_gives_one_line_and_no_leftover(work, model, capsys):
    # /dev/full: every write fails with ENOSPC; a device is written directly (a rename would replace it).
    before = snapshot(work)
    assert main(["encode", str(work / "image.png"), "-o", "/dev/full", *model]) == 2
    assert_one_error(capsys.readouterr().err, "/dev/full", "No space left on device")
    assert snapshot(work) == before


def test_a_file_size_limit_mid_write_leaves_no_partial_file(work, model):
    # RLIMIT_FSIZE: the write fails part-way (EFBIG), as on a disk that fills up during the write.
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    before = snapshot(work)
    r = cli("encode", str(work / "image.png"), "-o", str(work / "out.pmrs"), *model, preexec_fn=limit, text=True)
    assert r.returncode == 2, r.stderr
    assert_one_error(r.stderr, "out.pmrs", "cannot write")
    assert snapshot(work) == before and not leftovers(work)


def test_a_failed_encode_leaves_an_existing_output_as_it_was(coded, model, capsys):
    before = snapshot(coded)
    assert main(["encode", str(coded / "image.png"), "-o", str(coded / "image.pmrs"), "-q", "500", *model]) == 2
    assert_one_error(capsys.readouterr().err, "1..100")
    assert snapshot(coded) == before


def test_a_default_output_name_never_replaces_a_file(coded, model, capsys):
    # decode image.pmrs would write image.png: the user's original.
    before = snapshot(coded)
    assert main(["decode", str(coded / "image.pmrs"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "image.png already exists", "-o")
    assert snapshot(coded) == before


def test_a_default_output_name_is_used_when_free(coded, model, capsys):
    (coded / "image.png").rename(coded / "original.png")
    assert main(["decode", str(coded / "image.pmrs"), *model]) == 0
    assert read_image(coded / "image.png").shape == (150, 200, 3) and not leftovers(coded)


def test_an_input_that_changes_while_read_is_refused(work, model, capsys, monkeypatch):
    real = clio._read_file

    def read_then_change(path):
        data = real(path)
        with open(path, "ab") as f:  # another program appends while pymars reads
            f.write(b"more")
        return data

    monkeypatch.setattr(clio, "_read_file", read_then_change)
    assert main(["encode", str(work / "image.png"), "-o", str(work / "x.pmrs"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "image.png", "changed while it was being read")
    assert not (work / "x.pmrs").exists() and not leftovers(work)


def test_export_refuses_the_folder_that_holds_its_checkpoint(tmp_path, capsys):
    run = tmp_path / "runs" / "base"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"weights of a week of training")
    before = snapshot(tmp_path)
    for out in (run, tmp_path / "runs"):
        assert main(["export", str(run / "checkpoint.pt"), "-o", str(out)]) == 2
        assert_one_error(capsys.readouterr().err, "holds the input")
    assert snapshot(tmp_path) == before


def test_export_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.png").write_bytes(b"precious")
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    before = snapshot(tmp_path)
    assert main(["export", str(tmp_path / "checkpoint.pt"), "-o", str(tmp_path / "photos")]) == 2
    assert_one_error(capsys.readouterr().err, "not a model bundle")
    assert snapshot(tmp_path) == before


def test_demo_refuses_to_write_over_its_image(work, model, capsys):
    (work / "d").mkdir()
    write_image(work / "d" / "original.png", mars_like_scene(64, 64, seed=3))
    before = snapshot(work)
    assert main(["demo", str(work / "d" / "original.png"), "--out", str(work / "d"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "original.png", "is the input file")
    assert snapshot(work) == before


def test_refs_build_refuses_bad_outputs_and_a_missing_folder(work, tiny_bundle, capsys):
    before = snapshot(work)
    for args, words in ((["refs", "build", str(work), "-o", str(work / "lib.png")], ("*.pmrl",)),
                        (["refs", "build", str(work), "-o", str(work)], ("is a folder",)),
                        (["refs", "build", str(work / "nope"), "-o", str(work / "lib.pmrl")], ("folder not found",)),
                        (["refs", "build", str(work / "image.png"), "-o", str(work / "lib.pmrl")], ("is a file",))):
        assert main([*args, "--model", str(tiny_bundle.root)]) == 2
        assert_one_error(capsys.readouterr().err, *words)
    assert snapshot(work) == before


def test_refs_build_skips_a_broken_image_with_a_one_line_warning(tmp_path, tiny_bundle, capsys):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    write_image(images / "a.png", mars_like_scene(300, 300, seed=1))
    write_image(images / "sub" / "b.png", mars_like_scene(300, 300, seed=2))
    (images / "broken.png").write_bytes((images / "a.png").read_bytes()[:500])
    before = snapshot(images)
    assert main(["refs", "build", str(images), "-o", str(tmp_path / "lib.pmrl"), "--k", "1",
                 "--model", str(tiny_bundle.root)]) == 0
    captured = capsys.readouterr()
    warns = [line for line in message_lines(captured.err) if line.startswith("pymars:")]
    assert warns == [f"pymars: warning: {images / 'broken.png'}: not a readable image (image file is truncated): "
                     "skipped"]
    assert "from 3 images (sub-folders included)" in captured.out
    assert snapshot(images) == before and (tmp_path / "lib.pmrg").is_file() and not leftovers(tmp_path)


def test_enhance_refuses_to_overwrite_its_input(work, capsys):
    before = snapshot(work)
    assert main(["enhance", str(work / "image.png"), "-o", str(work / "image.png")]) == 2
    assert_one_error(capsys.readouterr().err, "is the input file")
    assert snapshot(work) == before


# ----------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("command", ["encode", "decode", "info"])
def test_a_missing_input_says_file_not_found(tmp_path, command, capsys):
    assert main([command, str(tmp_path / "nope.png")]) == 2
    assert_one_error(capsys.readouterr().err, "nope.png: file not found")
    assert not any(tmp_path.iterdir())


def test_a_folder_as_input_is_refused(work, model, capsys):
    before = snapshot(work)
    assert main(["encode", str(work), "-o", str(work / "x.pmrs"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "is a folder, not a file")
    assert snapshot(work) == before


def test_an_empty_file_is_refused(work, model, capsys):
    (work / "empty.png").write_bytes(b"")
    (work / "empty.pmrs").write_bytes(b"")
    before = snapshot(work)
    assert main(["encode", str(work / "empty.png"), "-o", str(work / "x.pmrs"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "empty.png", "empty file")
    assert main(["decode", str(work / "empty.pmrs"), "-o", str(work / "x.png"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "not a valid pymars file")
    assert snapshot(work) == before


def test_a_truncated_png_is_one_line(work, model, capsys):
    data = (work / "image.png").read_bytes()
    (work / "cut.png").write_bytes(data[: len(data) // 2])
    before = snapshot(work)
    assert main(["encode", str(work / "cut.png"), "-o", str(work / "x.pmrs"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "cut.png", "truncated")
    assert snapshot(work) == before


def test_a_png_header_claiming_a_huge_image_is_one_line(work, model, capsys):
    (work / "bomb.png").write_bytes(png_with_header(100000, 100000))
    before = snapshot(work)
    assert main(["encode", str(work / "bomb.png"), "-o", str(work / "x.pmrs"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "bomb.png", "100000x100000")
    assert snapshot(work) == before


def test_a_truncated_pymars_file_decodes_what_it_holds_with_a_one_line_warning(coded, model, tiny_bundle, capsys):
    # 12 tiles of 64 pixels: the cut keeps the first ones (a file cut before its first complete
    # record holds nothing and is refused: tests/test_hostile_files.py).
    data = pymars.encode(read_image(coded / "image.png"), 60, tile_size=64, model=tiny_bundle)
    (coded / "cut.pmrs").write_bytes(data[: len(data) * 2 // 3])
    assert main(["decode", str(coded / "cut.pmrs"), "-o", str(coded / "cut.png"), *model]) == 1
    lines = message_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("pymars: warning: ") and "filled with 0" in lines[0]
    assert read_image(coded / "cut.png").shape == (150, 200, 3) and not leftovers(coded)


def test_a_pymars_file_cut_inside_its_header_is_refused(coded, model, capsys):
    (coded / "head.pmrs").write_bytes((coded / "image.pmrs").read_bytes()[:12])
    before = snapshot(coded)
    assert main(["decode", str(coded / "head.pmrs"), "-o", str(coded / "x.png"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "not a valid pymars file")
    assert snapshot(coded) == before


def test_an_image_given_to_decode_is_refused(work, model, capsys):
    before = snapshot(work)
    assert main(["decode", str(work / "image.png"), "-o", str(work / "x.png"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "not a valid pymars file")
    assert snapshot(work) == before


def test_spectral_predict_refuses_gray_and_oversized_input(work, capsys):
    from PIL import Image

    Image.fromarray(mars_like_scene(32, 32, seed=1, channels=1)).save(work / "gray.png")
    Image.new("RGBA", (32, 32)).save(work / "alpha.png")
    Image.new("RGB", (2049, 8)).save(work / "wide.png")
    before = snapshot(work)
    for name, words in (("gray.png", ("gray image", "three CaSSIS bands")), ("alpha.png", ("alpha",)),
                        ("wide.png", ("2049x8", "2048"))):
        assert main(["spectral", "predict", str(work / name), "-o", str(work / "fal.png"), "--model", "unet",
                     "--quiet"]) == 2
        assert_one_error(capsys.readouterr().err, name, *words)
    assert main(["spectral", "predict", str(work / "image.png"), "-o", str(work / "image.png"), "--quiet"]) == 2
    assert_one_error(capsys.readouterr().err, "is the input file")
    assert snapshot(work) == before


def test_enhance_without_the_shared_data_says_how_to_give_it(work, tmp_path_factory):
    if not (ROOT / "pymars" / "weights" / "enhance-marsqe-jpeg30-10k" / "model.json").is_file():
        pytest.skip("the shipped MarsQE enhancer is not installed")
    elsewhere = tmp_path_factory.mktemp("outside")  # not a checkout: ../shared is not found from here
    env = {**os.environ, "PYMARS_SHARED": str(elsewhere / "no-shared")}
    # A MarsQE rebuilds its reference dictionary from ../shared: without it, one line says how to give it.
    r = cli("enhance", str(work / "image.png"), "-o", str(work / "out.png"), "--model", "marsqe-jpeg30-10k",
            cwd=elsewhere, env=env, text=True)
    assert r.returncode == 2
    line = assert_one_error(r.stderr, "PYMARS_SHARED", "--dictionary", "pymars enhance-train dictionary")
    assert "enhance-dict`" not in line and not (work / "out.png").exists() and not leftovers(work)
    # The default (the U-Net, no references) needs nothing but its weights.
    r = cli("enhance", str(work / "image.png"), "-o", str(work / "out.png"), cwd=elsewhere, env=env, text=True)
    assert r.returncode == 0, r.stderr
    assert (work / "out.png").is_file() and not leftovers(work)


# ----------------------------------------------------------------------------------------------- paths, stdio


def test_unicode_and_spaces_in_paths(work, model, capsys):
    folder = work / "mars ☃ scène"
    folder.mkdir()
    src = folder / "ímage 1.png"
    write_image(src, mars_like_scene(64, 80, seed=4))
    out = work / "out dir" / "été 1.pmrs"
    assert main(["encode", str(src), "-o", str(out), *model]) == 0
    assert main(["decode", str(out), "-o", str(work / "out dir" / "été 1.png"), *model]) == 0
    assert read_image(work / "out dir" / "été 1.png").shape == (64, 80, 3) and not leftovers(work)
    assert main(["encode", str(folder / "ñope ☃.png"), *model]) == 2
    assert_one_error(capsys.readouterr().err, "ñope ☃.png: file not found")


def test_standard_input_and_output(work, model, tiny_bundle):
    png = (work / "image.png").read_bytes()
    r = cli("encode", "-", "-o", "-", "-q", "60", *model, input=png)
    assert r.returncode == 0, r.stderr
    assert r.stdout == pymars.encode(read_image(work / "image.png"), 60, model=tiny_bundle)
    d = cli("decode", "-", "-o", "-", *model, input=r.stdout)
    assert d.returncode == 0 and d.stdout[:4] == b"\x89PNG"
    i = cli("info", "-", "--json", input=r.stdout, text=False)
    assert i.returncode == 0 and b'"width": 200' in i.stdout
    assert not leftovers(work)


def test_standard_input_needs_an_output_name(model):
    r = cli("encode", "-", *model, input=b"", text=False)
    assert r.returncode == 2
    assert_one_error(r.stderr.decode(), "standard input", "-o")


# ----------------------------------------------------------------------------------------------- interruptions


def _start_long_encode(work: Path) -> tuple[subprocess.Popen, list[str]]:
    """An encode of 768 tiles (some 15 s with the shipped learned model base-v1) in a subprocess; returns once
    its progress bar has started. The tiny test model, and the wavelet default, would finish before any
    signal arrives."""
    if not pymars.open_bundle("base-v1").available:
        pytest.skip("the shipped learned model base-v1 is not installed (the tiny test model is too fast to interrupt)")
    write_image(work / "big.png", np.tile(mars_like_scene(256, 256, seed=5), (6, 8, 1)))
    proc = subprocess.Popen([sys.executable, "-m", "pymars.cli", "encode", str(work / "big.png"), "-o",
                             str(work / "big.pmrs"), "--tile-size", "64", "--model", "base-v1"], cwd=work, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            # A shell starts background jobs with SIGINT ignored, and the child would inherit
                            # that (Python then never raises KeyboardInterrupt): give it the default, as a
                            # terminal's foreground job has.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err: list[str] = []
    started = threading.Event()

    def pump():
        for chunk in iter(lambda: proc.stderr.read(1), ""):
            err.append(chunk)
            if "encode:" in "".join(err[-80:]):
                started.set()
        started.set()

    threading.Thread(target=pump, daemon=True).start()
    assert started.wait(120), "the encode did not start"
    time.sleep(0.3)
    return proc, err


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_and_sigterm_stop_an_encode_within_a_tile_and_leave_nothing(work, sig, code, word):
    before = snapshot(work)
    proc, err = _start_long_encode(work)
    sent = time.perf_counter()
    proc.send_signal(sig)
    assert proc.wait(60) == code
    waited = time.perf_counter() - sent
    time.sleep(0.2)  # the pump thread drains stderr
    text = "".join(err)
    assert message_lines(text)[-1] == f"pymars: {word}" and "Traceback" not in text
    done = [int(n) for n in re.findall(r"(\d+)/768 tiles", text)]
    assert not done or max(done) < 768, "the encode ran to the end before it stopped"
    assert waited < 5  # a tile of 64x64 takes some 20 ms; the whole encode some 15 s
    after = snapshot(work)
    assert after.pop("big.png") and after == before and not leftovers(work)


def test_ctrl_c_during_the_work_removes_the_temporary_output(work, model, capsys, monkeypatch):
    seen = {}

    def interrupted_encode(*args, **kw):
        seen["temp"] = [p.name for p in work.iterdir() if ".part" in p.name]  # the output is open by now
        raise KeyboardInterrupt

    monkeypatch.setattr(pymars, "encode", interrupted_encode)
    before = snapshot(work)
    assert main(["encode", str(work / "image.png"), "-o", str(work / "new" / "x.pmrs"), *model]) == 130
    assert message_lines(capsys.readouterr().err) == ["pymars: interrupted"]
    assert snapshot(work) == before and not (work / "new").exists() and not leftovers(work)


def test_the_cpp_tile_loop_stops_at_the_next_tile_when_python_raises(tiny_bundle):
    from pymars import _core

    calls = []

    def progress(n):
        calls.append(n)
        raise KeyboardInterrupt

    _core.tile_progress = progress
    try:
        with pytest.raises(KeyboardInterrupt):
            pymars.encode(mars_like_scene(256, 256, seed=6), 50, tile_size=32, model=tiny_bundle)
    finally:
        _core.tile_progress = None
    assert calls == [1]  # one tile analysed, then the loop stopped (64 tiles in all)


# ----------------------------------------------------------------------------------------------- the boundary


def test_warnings_are_one_line_without_source(work, model):
    from PIL import Image

    Image.fromarray(np.full((40, 48, 4), 90, np.uint8)).save(work / "rgba.png")
    r = cli("encode", str(work / "rgba.png"), "-o", str(work / "rgba.pmrs"), *model, text=True)
    assert r.returncode == 0
    assert message_lines(r.stderr) == [f"pymars: warning: {work / 'rgba.png'}: alpha channel dropped"]


def test_a_bug_is_one_line_that_points_to_debug(work, model, capsys, monkeypatch):
    def broken(*args, **kw):
        raise KeyError("tiles")

    monkeypatch.setattr(pymars, "encode", broken)
    assert main(["encode", str(work / "image.png"), "-o", str(work / "x.pmrs"), *model]) == 70
    lines = message_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("pymars: internal error: KeyError") and "--debug" in lines[0]
    assert main(["encode", str(work / "image.png"), "-o", str(work / "x.pmrs"), "--debug", *model]) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError" in err
    assert not leftovers(work) and not (work / "x.pmrs").exists()


def test_bench_writes_only_to_its_report_folder(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_report_safety", ROOT / "bench" / "report.py")
    report = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = report
    spec.loader.exec_module(report)
    calls = []
    monkeypatch.setattr(report, "run_all", lambda out, results, *a, **kw: calls.append((out, results, kw)) or 0)
    assert report.main(["--quick", "--report", str(tmp_path / "r")]) == 0
    out, results, kw = calls[-1]
    assert out == (tmp_path / "r").resolve() and results == out / "data"
    assert kw["committed"] == (ROOT / "bench" / "results").resolve()  # read, never written
    assert report.main(["--quick", "--update-results"]) == 0
    assert calls[-1][1] == (ROOT / "bench" / "results").resolve()
    old = {"settings": {"pymars": {"model_id": "0b0f0b2eb42f08b2"}}, "groups": {}}
    new = {"settings": {"pymars": {"model_id": "bf282961a97e5962"}}, "groups": {}}
    assert "not compared" in report.reproducibility_note(old, "pymars_rd_quick.json", new)
