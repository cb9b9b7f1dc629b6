"""The `mars-rd-1` protocol helpers: loading, 2x box downsampling, the column rule, selection.

Synthetic cases always run; the exact tile lists of EVALUATION.md need ../shared
and skip with that reason when it is absent.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pymars.evaluation import protocol


def test_box_downsample_rounds_half_up_and_drops_odd_edges():
    img = np.array([[0, 1, 7], [1, 0, 7], [9, 9, 9]], np.uint8)
    assert protocol.box_downsample_2x(img).tolist() == [[1]]  # (0+1+1+0+2)//4


def test_column_rule_walks_down_in_steps_of_16_past_black():
    img = np.full((600, 300, 3), 80, np.uint8)
    img[:40] = 0  # a ragged black border at the top
    assert list(protocol.column_rule_windows(img, 256)) == [(48, 0), (304, 0)]


def test_column_rule_is_the_plain_grid_without_black():
    img = np.full((520, 520), 5, np.uint8)
    assert list(protocol.column_rule_windows(img, 256)) == [(0, 0), (0, 256), (256, 0), (256, 256)]


def test_gray_rgb_is_loaded_as_one_channel(tmp_path):
    p = tmp_path / "g.png"
    Image.fromarray(np.full((4, 4, 3), 9, np.uint8)).save(p)
    assert protocol.load_8bit(p).shape == (4, 4)


def test_sixteen_bit_images_are_refused(tmp_path):
    p = tmp_path / "g16.png"
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(p)
    with pytest.raises(ValueError, match="8-bit"):
        protocol.load_8bit(p)


needs_shared = pytest.mark.skipif(protocol.mars_data_dir() is None, reason="../shared/data/mars is not available")


@needs_shared
def test_development_groups_have_the_protocol_tile_counts():
    assert len(protocol.candidates("dev_marsscapes")) == 642
    assert len(protocol.dev_tiles("dev_marsscapes")) == 38
    assert len(protocol.dev_tiles("dev_marsdata")) == 31


@needs_shared
def test_marsdata_tiles_are_256_wide_240_high_top_left_crops():
    t = protocol.dev_tiles("dev_marsdata")[0]
    assert t.pixels.shape == (240, 256, 3) and (t.y, t.x) == (0, 0)
