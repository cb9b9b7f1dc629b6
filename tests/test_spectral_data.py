"""Spectral data pipeline: lat/lon repair, split, PDS reader, library synthesis, augmentations, metrics.

Synthetic inputs only, except the tests marked as needing ../shared/data/spectral,
which skip with that reason when it is absent.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from pymars.spectral import metadata as md
from pymars.spectral.augment import augment_pair
from pymars.spectral.metrics import DetectionCounts, carbonate_mask, cosine, image_metrics, pcc, rmse, ssim
from pymars.spectral.pairs import ScenePair, load_pairs, pairs_dir, split_scenes
from pymars.spectral.pds import read_image
from pymars.spectral.synthesis import band_table, fal_bands, filter_bands, read_envi_sli, stretch8, synth_patch

needs_shared = pytest.mark.skipif(pairs_dir() is None, reason="needs ../shared/data/spectral (absent)")


# ---- metadata: lat/lon swap detection and repair ----------------------------------------------------------

@pytest.mark.parametrize("lat,lon,site,want,fix", [
    (-60.3, -13.6, "coprates", (-13.6, -60.3), "swapped"),          # KML lon,lat copied as lat,lon
    (-13.6, -60.3, "coprates", (-13.6, -60.3), "as-is"),            # already right: left alone
    (74.2, 21.2, "nili_fossae2", (21.2, 74.2), "swapped"),
    (-77.58, -18.36, " jezero crater", (18.36, 77.58), "swapped+sign"),
    (60.1, -27.5, "Nereidum", (-27.5, -60.1), "swapped+sign"),       # longitude given in deg W
])
def test_lat_lon_swap_is_detected_and_fixed(lat, lon, site, want, fix):
    m = md.fix_lat_lon(lat, lon, site)
    assert (m.lat, m.lon) == pytest.approx(want) and m.fix == fix


def test_unknown_or_far_rows_are_not_guessed():
    assert md.fix_lat_lon(45.0, 120.0, "coprates").fix == "unverified"  # no reading near Coprates
    m = md.fix_lat_lon(3.0, 4.0, "olympus")
    assert (m.lat, m.lon, m.fix) == (3.0, 4.0, "unverified")
    with pytest.raises(ValueError):
        md.fix_lat_lon(float("nan"), 0.0, "coprates")


def test_metadata_csv_repair_duplicates_and_bad_cells(tmp_path):
    p = tmp_path / "metadata.csv"
    p.write_text('Name,Latitude,Longitude,Altitude,Coordinates,Location_name\n'
                 'frtA,-65.1,-11.5,1,"\n  -65.1,-11.5,100\n  ",coprates\n'
                 'frtA,1.0,2.0,1,"1,2",coprates\n'                       # duplicate: first row kept
                 'frtB,-54.3,#NAME?,1,"-54.3,-15.8,100",coprates\n'      # bad cell: from Coordinates
                 'frtC,-77.58,-18.36,1,"-18.38,-77.58", jezero crater\n')
    m = md.read_metadata_csv(p)
    assert (m["frta"].lat, m["frta"].lon) == (-11.5, -65.1)
    assert (m["frtb"].lat, m["frtb"].lon) == (-15.8, -54.3)
    assert (m["frtc"].lat, m["frtc"].lon, m["frtc"].site) == (18.36, 77.58, "jezero_crater")
    assert m["frta"].site_index == md.SITES.index("coprates")
    with pytest.raises(FileNotFoundError):
        md.read_metadata_csv(tmp_path / "missing.csv")


@needs_shared
def test_real_metadata_lands_on_the_sites():
    m = md.read_metadata_csv(pairs_dir() / "metadata.csv")
    for meta in m.values():
        if meta.fix != "unverified":
            c = md.SITE_CENTRES[meta.site]
            assert md.great_circle_deg(meta.lat, meta.lon, *c) <= md.MAX_SITE_DISTANCE_DEG
    nili = [v for v in m.values() if v.site == "nili_fossae"]
    assert nili and all(20 < v.lat < 24 and 72 < v.lon < 76 for v in nili)
    assert sum(v.fix == "as-is" for v in m.values()) < len(m) // 4  # "swapped in most rows"


# ---- pairs and split -------------------------------------------------------------------------------------

def test_split_is_seeded_grouped_and_covers_every_site():
    rng = np.random.default_rng(5)
    metas = {}
    for site, (la, lo) in md.SITE_CENTRES.items():
        for i in range(8):
            metas[f"{site}{i}"] = md.SceneMeta(la + rng.uniform(-2, 2), lo + rng.uniform(-2, 2), site)
    metas["twin"] = md.SceneMeta(metas["coprates0"].lat + 0.01, metas["coprates0"].lon, "coprates")
    scenes = sorted(metas) + ["nometa"]
    a, b = split_scenes(scenes, metas), split_scenes(scenes, metas)
    assert a == b and sorted(sum(a.values(), [])) == sorted(scenes)
    assert not set(a["train"]) & set(a["test"]) and not set(a["val"]) & set(a["test"])
    assert any({"coprates0", "twin"} <= set(v) for v in a.values())  # overlapping footprints stay together
    for part in ("val", "test"):
        assert {metas[s].site for s in a[part] if s in metas} == set(md.SITE_CENTRES)
    assert split_scenes(scenes, metas, seed=1) != a


def test_load_pairs_refuses_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pairs(tmp_path / "nope")
    with pytest.raises(ValueError, match="no <scene>"):
        load_pairs(tmp_path)


@needs_shared
def test_real_pairs_and_split():
    pairs = load_pairs()
    assert len(pairs) == 88 and all(p.cassis.shape == (256, 256, 3) == p.fal.shape for p in pairs)
    parts = split_scenes([p.scene for p in pairs], {p.scene: p.meta for p in pairs})
    assert [len(parts[k]) for k in ("train", "val", "test")] == [57, 16, 15]


# ---- PDS reader -------------------------------------------------------------------------------------------

LABEL = """PDS_VERSION_ID = PDS3
/* a comment = with an equals sign */
NOTE = "two
        lines"
RECORD_BYTES = 8
OBJECT = FILE
  ^IMAGE = ("CUBE.IMG", 3)
  OBJECT = IMAGE
    LINES = 2
    LINE_SAMPLES = 3
    BANDS = 4
    SAMPLE_TYPE = {stype}
    SAMPLE_BITS = 32
    BAND_STORAGE_TYPE = {storage}
    OFFSETS = (1.5, 2, "x")
  END_OBJECT = IMAGE
END_OBJECT = FILE
END
"""


@pytest.mark.parametrize("stype,dtype", [("PC_REAL", "<f4"), ("IEEE_REAL", ">f4")])
@pytest.mark.parametrize("storage,order", [("LINE_INTERLEAVED", (0, 2, 1)), ("BAND_SEQUENTIAL", (2, 0, 1)),
                                           ("SAMPLE_INTERLEAVED", (0, 1, 2))])
def test_pds_reader_on_a_synthetic_label(tmp_path, stype, dtype, storage, order):
    truth = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # (line, sample, band)
    truth[1, 2, 3] = 65535.0
    stored = truth.transpose(order)
    (tmp_path / "cube.img").write_bytes(b"\0" * 16 + stored.astype(dtype).tobytes())  # record 3 = byte 16
    (tmp_path / "cube.lbl").write_text(LABEL.format(stype=stype, storage=storage))
    cube, label = read_image(tmp_path / "cube.lbl")
    assert label["FILE"]["IMAGE"]["OFFSETS"] == (1.5, 2, "x") and label.metaget("LINES") == 2
    assert cube.shape == (2, 3, 4) and np.isnan(cube[1, 2, 3])
    ok = ~np.isnan(cube)
    np.testing.assert_array_equal(cube[ok], truth[ok])


def test_pds_reader_refuses_what_it_does_not_know(tmp_path):
    (tmp_path / "cube.img").write_bytes(b"\0" * 200)
    (tmp_path / "cube.lbl").write_text(LABEL.format(stype="VAX_REAL", storage="LINE_INTERLEAVED"))
    with pytest.raises(ValueError, match="unsupported SAMPLE_TYPE"):
        read_image(tmp_path / "cube.lbl")
    (tmp_path / "cube.lbl").write_text(LABEL.format(stype="PC_REAL", storage="LINE_INTERLEAVED"))
    (tmp_path / "cube.img").write_bytes(b"\0" * 20)
    with pytest.raises(ValueError, match="label says 24"):
        read_image(tmp_path / "cube.lbl")
    (tmp_path / "cube.lbl").write_text("OBJECT = A\nX = 1\nEND")
    with pytest.raises(ValueError, match=r"no \^IMAGE pointer / IMAGE object"):
        read_image(tmp_path / "cube.lbl")
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "none.lbl")


@needs_shared
def test_pds_reader_matches_the_reference_cube():
    d = pairs_dir().parent / "crism_trr3_epf_cutouts"
    ref = np.load(d / "trr3_cubes_wavelength_sorted.npz")
    cube, label = read_image(d / "frt0001458f_01_if156l_trr3.lbl.txt")
    assert label["PRODUCT_ID"] == "FRT0001458F_01_IF156L_TRR3" and cube.shape == (15, 64, 438)
    # The reference is wavelength-sorted; L bands are stored in decreasing wavelength (row 0 = placeholder last).
    got = cube[..., ::-1]
    want = ref["frt0001458f_01_if156l_trr3__cube"]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~np.isnan(got)], want[~np.isnan(want)])


# ---- synthesis --------------------------------------------------------------------------------------------

def test_filter_curves_match_a_hand_computation():
    wl = np.array([0.40, 0.50, 0.60, 0.70])
    spec = np.array([[0.10, 0.30, 0.20, 0.40]])
    curve = {"X": (np.array([450.0, 500.0, 650.0]), np.array([1.0, 2.0, 1.0]))}
    # By hand: s(450) = 0.2, s(500) = 0.3, s(650) = 0.3; weighted mean = (0.2 + 0.6 + 0.3) / 4 = 0.275.
    assert filter_bands(wl, spec, curve, ("X",))[0, 0] == pytest.approx(0.275)


def test_fal_targets_and_r2529_extrapolation():
    wl = np.linspace(0.4, 2.5, 211)  # stops short of 2.529 like the USGS library
    spec = 0.2 + 0.05 * wl + 0.01 * np.sin(7 * wl)
    got = fal_bands(wl, spec[None])[0]
    assert got[1] == pytest.approx(np.interp(1.506, wl, spec)) and got[2] == pytest.approx(np.interp(1.080, wl, spec))
    sel = (wl >= 2.4) & (wl <= 2.5)
    slope, icpt = np.polyfit(wl[sel], spec[sel], 1)
    assert got[0] == pytest.approx(icpt + slope * 2.529)
    # Mixing commutes with the band table (everything is linear): the basis of patch synthesis.
    a, b = spec, 0.5 - 0.1 * wl
    curves = {f: (np.array([500.0, 700.0, 900.0]), np.array([0.2, 1.0, 0.3])) for f in ("BLU", "PAN", "NIR")}
    mix = band_table(wl, (0.3 * a + 0.7 * b)[None], curves)
    np.testing.assert_allclose(mix, 0.3 * band_table(wl, a[None], curves) + 0.7 * band_table(wl, b[None], curves))


def test_envi_library_reader(tmp_path):
    data = np.array([[1, 2, 3], [4, 5, 6]], dtype=">f4")
    data.tofile(tmp_path / "lib.sli")
    (tmp_path / "lib.sli.hdr").write_text("ENVI\nsamples = 3\nlines = 2\ndata type = 4\nbyte order = 1\n"
                                          "spectra names = {\n a b, c }\nwavelength = {\n1.0, 2.0,\n3.0}\n")
    spectra, names, wl = read_envi_sli(tmp_path / "lib.sli")
    assert spectra.tolist() == [[1, 2, 3], [4, 5, 6]] and names == ["a b", "c"] and wl.tolist() == [1, 2, 3]
    (tmp_path / "lib.sli.hdr").write_text("ENVI\nsamples = 4\nlines = 2\ndata type = 4\n")
    with pytest.raises(ValueError, match="header says"):
        read_envi_sli(tmp_path / "lib.sli")


def test_synthetic_patches_are_stretched_and_seeded():
    table = np.random.default_rng(0).uniform(0.05, 0.5, (20, 6))
    x1, y1 = synth_patch(table, np.random.default_rng(7), 24, np.array([0, 1]))
    x2, y2 = synth_patch(table, np.random.default_rng(7), 24, np.array([0, 1]))
    assert (x1 == x2).all() and (y1 == y2).all() and x1.dtype == np.uint8
    inside = x1.max(axis=-1) > 0
    for img in (x1, y1):
        assert img[inside].max(axis=0).tolist() == [255, 255, 255]
    assert stretch8(np.ones((2, 2, 1))).max() == 0  # a flat channel does not divide by zero


# ---- augmentations ----------------------------------------------------------------------------------------

def test_augmentations_are_geometric_and_shared():
    rng = np.random.default_rng(3)
    inp = rng.integers(1, 255, (40, 40, 3), dtype=np.uint8)
    tgt = rng.integers(1, 255, (40, 40, 3), dtype=np.uint8)
    for seed in range(10):
        x, y = augment_pair(inp, tgt, np.random.default_rng(seed), crop=16, rotate_p=0.0)
        # Without rotation every output pixel pair is an input pixel pair (flips and crops only, no colour change).
        pairs = {tuple(a) + tuple(b) for a, b in zip(inp.reshape(-1, 3), tgt.reshape(-1, 3))}
        assert all(tuple(a) + tuple(b) in pairs for a, b in zip(x.reshape(-1, 3), y.reshape(-1, 3)))
    same = np.dstack([inp[..., :1]] * 3)
    x, y = augment_pair(same, same.copy(), np.random.default_rng(1), crop=16, rotate_p=1.0)
    assert (x == y).all()  # one rotation angle for both sides


# ---- metrics ----------------------------------------------------------------------------------------------

def test_metric_values_on_known_inputs():
    a = np.zeros((12, 12, 3))
    a[..., 0] = np.arange(12)[None, :]
    b = 2 * a + 5
    assert rmse(a, a + 3) == 3.0
    assert pcc(a, b) == pytest.approx(1.0) and pcc(a, -a) == pytest.approx(-1.0)
    assert cosine(np.array([3.0, 4.0]), np.array([4.0, 3.0])) == pytest.approx(24 / 25)
    x = np.random.default_rng(0).integers(0, 256, (20, 20, 3)).astype(np.uint8)
    assert ssim(x, x) == pytest.approx(1.0) and ssim(x, 255 - x) < 0
    mask = np.zeros((20, 20), bool)
    mask[:5] = True
    y = x.copy()
    y[5:] = 0
    assert image_metrics(y, x, mask)["rmse"] == 0.0  # masked pixels only


def test_ssim_agrees_with_pytorch_msssim():
    torch = pytest.importorskip("torch")
    msssim = pytest.importorskip("pytorch_msssim")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-40, 40, x.shape), 0, 255).astype(np.uint8)
    t = lambda a: torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None]
    assert ssim(x, y) == pytest.approx(float(msssim.ssim(t(x), t(y), data_range=255, size_average=True)), abs=1e-4)


def test_carbonate_detection_counts():
    t = np.full((4, 4, 3), 80, np.uint8)
    t[0, :2, 1] = 120  # two green pixels
    p = np.full((4, 4, 3), 80, np.uint8)
    p[0, 1:3, 1] = 120  # one right, one false alarm
    assert carbonate_mask(t).sum() == 2
    s = DetectionCounts().add(p, t).scores()
    assert (s["precision"], s["recall"], s["f1"], s["iou"]) == (0.5, 0.5, 0.5, pytest.approx(1 / 3))
    assert np.isnan(DetectionCounts().scores()["precision"])
    with pytest.raises(ValueError):
        image_metrics(p[..., :2], t[..., :2])
