"""REMAC reference libraries: format round trip, hash and model checks, damaged files, deterministic build, CLI.

Synthetic scenes and the tiny test model only: no ../shared needed.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pymars.cli import main as cli_main
from pymars.data.synthetic import mars_like_scene
from pymars.errors import ModelMismatchError
from pymars.remac import ReferenceLibrary, ReferenceLibraryError, build_library, ground_path, reference_entry
from pymars.texture import lbp_histograms, rgb_to_gray
from pymars.texture.clustering import calinski_harabasz, js_matrix, k_medoids


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ref_images")
    for i in range(3):
        Image.fromarray(mars_like_scene(300, 560, seed=40 + i)).save(folder / f"scene{i}.png")
    # A 16-bit gray image: accepted, mapped to 8 bits and to RGB.
    Image.fromarray((mars_like_scene(280, 280, seed=50, channels=1).astype(np.uint16) * 257)).save(folder / "deep.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def built(scene_folder, tiny_bundle):
    return build_library(scene_folder, model=tiny_bundle, k_range=(2, 4), progress=False)


def test_build_picks_medoids_by_calinski_harabasz_and_reports_every_k(built):
    lib, report = built
    assert report.images == 4 and report.candidates == 7  # 2 + 2 + 2 windows of 256 + 1
    assert sorted(report.calinski_harabasz) == [2, 3, 4]
    assert report.k == max(report.calinski_harabasz, key=report.calinski_harabasz.get) == len(lib)
    assert len(set(lib.names)) == len(lib) and all(":" in n for n in lib.names)


def test_rover_arrays_are_the_encoder_analysis_and_the_cpp_lbp(built, tiny_bundle):
    from pymars import _core

    lib, _ = built
    tile = lib.tiles[0]
    np.testing.assert_array_equal(lib.histograms[0], lbp_histograms(rgb_to_gray(tile), "uniform"))
    y = _core.analyse_tile(tiny_bundle.core, tile, 75)["y"]
    # round_to_int(8 y, 127) of the core: floor(8 y + 1/2) after clamping to +-127.
    q = np.floor(np.clip(8 * y.astype(np.float32), -127, 127) + np.float32(0.5)).astype(np.int8)
    np.testing.assert_array_equal(lib.latents[0], q)
    n = q.shape[1] * q.shape[2]
    want = (32 * np.abs(q.astype(np.int64)).sum(axis=(1, 2)) + n // 2) // n
    np.testing.assert_array_equal(lib.descriptors[0], want.astype(np.uint16))
    # ... which is 256 mean |y| up to the rounding of q.
    assert np.abs(lib.descriptors[0].astype(float) - 256 * np.abs(y).mean(axis=(1, 2))).max() <= 16 + 1
    assert lib.model_id == bytes(tiny_bundle.model_id)


def test_build_is_deterministic(scene_folder, tiny_bundle, built):
    again, _ = build_library(scene_folder, model=tiny_bundle, k_range=(2, 4), progress=False)
    assert again.rover_bytes() == built[0].rover_bytes()


def test_save_load_round_trip_and_hash(built, tmp_path):
    lib, _ = built
    path = tmp_path / "sub" / "lib.pmrl"
    lib.save(path)
    assert path.read_bytes() == lib.rover_bytes() and ground_path(path).is_file()
    assert not list(tmp_path.rglob("*.part"))
    back = ReferenceLibrary.load(path)
    assert back.library_hash == lib.library_hash and back.names == lib.names
    for name in ("histograms", "descriptors", "latents", "tiles"):
        np.testing.assert_array_equal(getattr(back, name), getattr(lib, name))
    rover_only = ReferenceLibrary.load(path, ground=False)
    assert rover_only.tiles is None and rover_only.sha256 == lib.sha256


def test_any_change_of_the_rover_part_changes_the_hash(built):
    lib, _ = built
    lat = lib.latents.copy()
    lat[0, 0, 0, 0] ^= 1
    other = ReferenceLibrary(lib.model_id, lib.histograms, lib.descriptors, lat)
    assert other.library_hash != lib.library_hash


def test_ground_part_of_another_library_is_refused(built, tmp_path):
    lib, _ = built
    lib.save(tmp_path / "a.pmrl")
    lat = lib.latents.copy()
    lat[-1, -1, -1, -1] ^= 4
    ReferenceLibrary(lib.model_id, lib.histograms, lib.descriptors, lat, lib.tiles, lib.names).save(tmp_path / "b.pmrl")
    ground_path(tmp_path / "b.pmrg").replace(tmp_path / "a.pmrg")
    with pytest.raises(ReferenceLibraryError, match="belongs to library"):
        ReferenceLibrary.load(tmp_path / "a.pmrl")
    ground_path(tmp_path / "a.pmrl").unlink()
    with pytest.raises(ReferenceLibraryError, match="ground part .* is missing"):
        ReferenceLibrary.load(tmp_path / "a.pmrl")


def test_damaged_rover_parts_are_refused_with_a_clear_message(built):
    data = built[0].rover_bytes()
    cases = {
        b"": "shorter than its 28-byte header",
        b"XXXX" + data[4:]: "bad magic",
        data[:4] + b"\x09\x00" + data[6:]: "version 9",
        data[:-1]: "truncated",
        data + b"\x00": "truncated or padded",
        data[:6] + b"\x00\x00" + data[8:]: "truncated or padded",  # R = 0 with references behind it
        data[:16] + b"\x00\x00" + data[18:]: "inconsistent",  # M = 0
    }
    for damaged, message in cases.items():
        with pytest.raises(ReferenceLibraryError, match=message):
            ReferenceLibrary.from_rover_bytes(damaged)
    rng = np.random.default_rng(3)
    for _ in range(200):  # random garbage and random cuts: always the library's own error
        cut = data[: rng.integers(0, len(data))] if rng.random() < 0.5 else rng.bytes(rng.integers(0, 300))
        with pytest.raises(ReferenceLibraryError):
            ReferenceLibrary.from_rover_bytes(cut)


def test_library_for_another_model_is_refused(built):
    lib, _ = built
    lib.check_model(lib.model_id)
    with pytest.raises(ModelMismatchError, match="rebuild it"):
        lib.check_model(bytes(8))


def test_bad_arrays_and_tiles_are_refused(tiny_bundle):
    with pytest.raises(ReferenceLibraryError, match="histograms must be uint32"):
        ReferenceLibrary(bytes(8), np.zeros((1, 58), np.uint32), np.zeros((1, 2), np.uint16), np.zeros((1, 2, 16, 16), np.int8))
    with pytest.raises(ReferenceLibraryError, match="0..4096 references"):
        ReferenceLibrary(bytes(8), np.zeros((4097, 59), np.uint32), np.zeros((4097, 2), np.uint16),
                         np.zeros((4097, 2, 16, 16), np.int8))
    # An empty library is valid (every tile then codes with "no reference").
    empty = ReferenceLibrary(bytes(8), np.zeros((0, 59), np.uint32), np.zeros((0, 2), np.uint16), np.zeros((0, 2, 16, 16), np.int8))
    assert len(ReferenceLibrary.from_rover_bytes(empty.rover_bytes())) == 0
    with pytest.raises(ReferenceLibraryError, match="uint8 of shape"):
        reference_entry(tiny_bundle.core, np.zeros((128, 128, 3), np.uint8))


def test_k_medoids_and_calinski_harabasz_find_planted_clusters():
    rng = np.random.default_rng(1)
    centres = np.eye(4) * 0.85 + 0.05
    hist = np.concatenate([rng.multinomial(2000, p, 12) for p in centres]).astype(np.uint32)
    dist = js_matrix(hist)
    assert (dist == dist.T).all() and (np.diag(dist) == 0).all()
    points = np.sqrt(hist / hist.sum(1, keepdims=True))
    scores = {k: calinski_harabasz(points, k_medoids(dist, k)[0]) for k in range(2, 7)}
    assert max(scores, key=scores.get) == 4
    labels, medoids = k_medoids(dist, 4)
    assert sorted(np.bincount(labels).tolist()) == [12, 12, 12, 12]
    assert all(labels[m] == c for c, m in enumerate(medoids))


def test_cli_build_and_info(scene_folder, tiny_bundle, tmp_path, capsys):
    out = tmp_path / "cli.pmrl"
    assert cli_main(["refs", "build", str(scene_folder), "-o", str(out), "--k", "2",
                     "--model", str(tiny_bundle.root)]) == 0
    assert "k = 2 references" in capsys.readouterr().out
    assert cli_main(["refs", "info", str(out)]) == 0
    assert '"references": 2' in capsys.readouterr().out
    assert cli_main(["refs", "info", str(tmp_path / "missing.pmrl")]) == 2
    assert "no reference library" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["refs", "build", str(empty), "-o", str(tmp_path / "x.pmrl")]) == 2
    assert not (tmp_path / "x.pmrl").exists()
