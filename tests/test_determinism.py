"""The encoder is deterministic: same image, same bytes, whatever the thread count.

Specification:
* encoding the same image twice gives identical bytes;
* 1, 2 and 3 worker threads give identical bytes;
* the header carries the first 8 bytes of the blob's SHA-256 as model id.
"""
from __future__ import annotations

import hashlib

import pymars
from pymars import _core


def test_same_image_twice_gives_identical_bytes(tiny_bundle, scene_rgb):
    a = pymars.encode(scene_rgb, 42, tile_size=64, model=tiny_bundle)
    b = pymars.encode(scene_rgb.copy(), 42, tile_size=64, model=tiny_bundle)
    assert a == b


def test_thread_count_does_not_change_the_bytes(tiny_bundle, scene_rgb):
    outs = {t: pymars.encode(scene_rgb, 77, tile_size=64, threads=t, model=tiny_bundle) for t in (1, 2, 3)}
    assert outs[1] == outs[2] == outs[3]


def test_decoding_with_threads_gives_the_same_image(tiny_bundle, scene_rgb):
    data = pymars.encode(scene_rgb, 77, tile_size=64, model=tiny_bundle)
    a = pymars.decode(data, threads=1, model=tiny_bundle)
    b = pymars.decode(data, threads=2, model=tiny_bundle)
    assert (a == b).all()


def test_model_id_is_the_blob_sha256_prefix(tiny_bundle, scene_rgb):
    blob = tiny_bundle.blob_path.read_bytes()
    data = pymars.encode(scene_rgb[:32, :32], 50, model=tiny_bundle)
    assert _core.parse_file_header(data)["model_id"] == hashlib.sha256(blob).digest()[:8]
