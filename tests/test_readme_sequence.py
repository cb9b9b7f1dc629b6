"""The README's ``## Use`` commands, run in the README's order, each on what the previous ones produced.

Specification: every command of the block (read from README.md, so the test follows the README) exits
0 in a fresh folder that holds only ``image.png`` and ``images/`` (synthetic scenes), with the defaults
the README relies on: ``refs build`` makes a library that ``encode --refs`` and ``decode --refs`` accept,
``export`` takes the checkpoint ``train`` wrote. Adapted, not skipped: ``demo``'s optional parts are
filled in, ``train`` runs two steps of the tiny model on synthetic scenes. Skipped, with the reason: the
commands that need ../shared or run for minutes (``bench``, ``--protocol``, ``remac train``).

Needs the shipped models (base-v1, remac-v1): the point is that the defaults fit together.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

import pymars
from pymars.cli import main
from pymars.data.synthetic import mars_like_scene
from pymars.imageio import read_image, write_image

README = Path(__file__).resolve().parents[1] / "README.md"

#: Commands left out, and why (checked against the README: a stale entry fails the test).
SKIPPED = {
    "--protocol": "needs ../shared/data/mars",
    "remac train": "trains for an hour on ../shared",
}


def use_commands() -> list[str]:
    """The command lines of the first bash block under ``## Use``, without comments.

    Example:
        >>> use_commands()[0].startswith("pymars encode")
        True
    """
    section = README.read_text().split("\n## Use\n", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def adapted(args: list[str]) -> list[str] | None:
    """The arguments to run for one README line, or None when it is skipped."""
    line = " ".join(args)
    if any(key in line for key in SKIPPED):
        return None
    if args[0] == "demo":  # README: demo [image.png|tif] [-q 50] [--out DIR]
        return ["demo", "image.png", "-q", "50", "--out", "demo"]
    if args[0] == "train":
        return [*args, "--synthetic", "--model", "tiny", "--steps", "2", "--validate-every", "0", "--save-every", "2",
                "--threads", "1"]
    return args


@pytest.fixture()
def readme_folder(tmp_path, monkeypatch):
    if not (pymars.open_bundle("base-v1").available and pymars.open_bundle("remac-v1").available):
        pytest.skip("the shipped base-v1 and remac-v1 bundles are not installed")
    write_image(tmp_path / "image.png", mars_like_scene(256, 320, seed=21))
    (tmp_path / "images" / "more").mkdir(parents=True)
    for i in range(3):
        write_image(tmp_path / "images" / f"scene{i}.png", mars_like_scene(300, 560, seed=30 + i))
    write_image(tmp_path / "images" / "more" / "scene3.png", mars_like_scene(300, 300, seed=33))
    pano = mars_like_scene(240, 560, seed=40)  # three overlapping frames of a mosaic (encode --sequence)
    for i in range(3):
        write_image(tmp_path / f"f{i + 1}.png", pano[:, 120 * i : 120 * i + 320].copy())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_use_block_runs_in_order(readme_folder, capsys):
    commands = use_commands()
    ran, skipped = [], []
    for line in commands:
        tokens = shlex.split(line)
        assert tokens[0] == "pymars", line
        args = adapted(tokens[1:])
        if args is None:
            skipped.append(line)
            continue
        rc = main(args)
        out = capsys.readouterr()
        assert rc == 0, f"{line}\n{out.out}\n{out.err}"
        assert "Traceback" not in out.err
        ran.append(line)
    assert all(any(key in line for line in commands) for key in SKIPPED), "a SKIPPED entry is no longer in the README"
    assert len(ran) >= 10 and all(any(key in line for key in SKIPPED) for line in skipped)
    # What the sequence leaves behind is what the README says it makes.
    folder = readme_folder
    assert read_image(folder / "decoded.png").shape == (256, 320, 3)
    h = pymars.info((folder / "image.pmrs").read_bytes())
    assert h["library_hash"] is not None  # the last encode used --refs refs/mars.pmrl
    assert (folder / "refs" / "mars.pmrl").is_file() and (folder / "refs" / "mars.pmrg").is_file()
    assert (folder / "pymars" / "weights" / "my-model" / "model.json").is_file()
    assert {p.name for p in (folder / "demo").iterdir()} == {"original.png", "decoded.png", "image.pmrs"}
    assert sorted(p.name for p in (folder / "dec").iterdir()) == ["f1.png", "f2.png", "f3.png"]
    assert pymars.info((folder / "seq" / "f2.pmrs").read_bytes())["sequence_id"] is not None
    assert not [p for p in folder.rglob("*") if ".part" in p.name]


def test_refs_build_reads_sub_folders_and_says_how_k_was_chosen(readme_folder, capsys):
    assert main(["refs", "build", "images/", "-o", "refs/mars.pmrl"]) == 0
    text = capsys.readouterr().out
    assert "7 candidate tiles from 4 images (sub-folders included); k = 1 reference (" in text
    assert "a quarter of them" in text and "; )" not in text
    from pymars.remac import ReferenceLibrary

    lib = ReferenceLibrary.load("refs/mars.pmrl")
    assert lib.model_id == pymars.open_bundle("remac-v1").model_id


def test_a_library_for_another_model_names_the_command_that_fixes_it(readme_folder, capsys):
    assert main(["refs", "build", "images/", "-o", "refs/base.pmrl", "--model", "base-v1", "--k", "1"]) == 0
    capsys.readouterr()
    assert main(["encode", "image.png", "-o", "x.pmrs", "--refs", "refs/base.pmrl"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "base-v1" in err
    assert "`pymars refs build IMAGES/ --model remac-v1 -o LIB.pmrl`" in err
    assert not (readme_folder / "x.pmrs").exists()
