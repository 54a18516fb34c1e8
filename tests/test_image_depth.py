"""Images as they are: 16-bit, float, palette, CMYK and transparent images become 8 bits
by one explicit rule, recorded in dataset.json; what the default rule would clip or
flatten stops with one line naming the file and its mode."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from tf_records_parser.image_depth import DepthRule
from tf_records_parser.image_folder import convert_image_folder, load_image

RAMP16 = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)  # 0..65535


def _load(path, rule=None, channels=1):
    modes = {}
    arr = load_image(path, (16, 16), channels, rule, modes)
    return arr, modes


def test_16_bit_grey_is_scaled_from_the_full_range_not_clipped(tmp_path):
    for name, endian in (("le.png", "I;16"), ("be.tif", "I;16B")):
        path = tmp_path / name
        img = Image.fromarray(RAMP16)
        (img if endian == "I;16" else Image.frombytes("I;16B", (16, 16), RAMP16.astype(">u2").tobytes())).save(path)
        arr, modes = _load(path)
        assert list(modes) == [Image.open(path).mode]
        # v * 257 scaled by 255/65535 is v again: every level kept, nothing clipped to white
        np.testing.assert_array_equal(arr[..., 0], np.arange(256, dtype=np.uint8).reshape(16, 16))


def test_12_bit_data_in_16_bit_files_stops_unless_a_window_is_chosen(tmp_path):
    path = tmp_path / "xray.png"
    Image.fromarray((RAMP16 // 16).astype(np.uint16)).save(path)  # 0..4095
    with pytest.raises(UserError) as info:
        _load(path)
    assert str(info.value).startswith(f"'{path}' is mode I;16 with values 0..4095: scaled from 0..65535 it keeps "
                                      "fewer than 16 grey levels; set \"window\": [low, high]")
    arr, _ = _load(path, DepthRule(window=(0, 4095)))
    assert arr.min() == 0 and arr.max() == 255 and len(np.unique(arr)) == 256


def test_16_bit_rgb_default_and_window(tmp_path):
    path = tmp_path / "rgb16.png"
    rgb = np.stack([RAMP16, RAMP16 // 2, np.full_like(RAMP16, 4000)], -1)
    cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    arr, modes = _load(path, channels=3)
    assert modes == {"RGB;16": 1}
    np.testing.assert_array_equal(arr[..., 0], (RAMP16 >> 8).astype(np.uint8))
    arr, _ = _load(path, DepthRule(window=(0, 8000)), channels=3)
    assert arr[0, 0, 2] == 128 and arr[15, 15, 0] == 255  # 4000 of 0..8000 is mid-grey; above 8000 clipped, as chosen


def test_float_tiff_from_0_1_and_out_of_range_stops(tmp_path):
    ok, bad = tmp_path / "ok.tif", tmp_path / "bad.tif"
    Image.fromarray((np.arange(256, dtype=np.float32).reshape(16, 16) / 255)).save(ok)
    Image.fromarray((np.arange(256, dtype=np.float32).reshape(16, 16) * 10 - 100)).save(bad)
    arr, modes = _load(ok)
    assert modes == {"F": 1} and np.array_equal(arr[..., 0], np.arange(256, dtype=np.uint8).reshape(16, 16))
    with pytest.raises(UserError, match=rf"^'{bad}' is mode F with values -100\.\.2450: the default rule \(floats "
                                        r"from 0\.\.1\) would clip it; set \"window\""):
        _load(bad)
    arr, _ = _load(bad, DepthRule(window=(-100, 2450)))
    assert arr[0, 0, 0] == 0 and arr[15, 15, 0] == 255


def test_palette_cmyk_and_alpha(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (200, 30, 60)
    Image.fromarray(rgb).quantize(4).save(tmp_path / "p.png")
    arr, modes = _load(tmp_path / "p.png", channels=3)
    assert modes == {"P": 1} and tuple(arr[0, 0]) == (200, 30, 60) and tuple(arr[0, 15]) == (0, 0, 0)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    arr, modes = _load(tmp_path / "c.jpg", channels=3)
    assert modes == {"CMYK": 1} and np.abs(arr[0, 0].astype(int) - (200, 30, 60)).max() < 12
    rgba = np.dstack([rgb, np.full((16, 16), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    assert tuple(_load(tmp_path / "opaque.png", channels=3)[0][0, 0]) == (200, 30, 60)  # opaque alpha: dropped
    rgba[:, 8:, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "a.png")
    with pytest.raises(UserError, match=rf"^'{tmp_path / 'a.png'}' is mode RGBA with 50% transparent pixels: set "
                                        r"\"alpha\" in the data set params to 'black', 'white', 'drop'"):
        _load(tmp_path / "a.png", channels=3)
    assert tuple(_load(tmp_path / "a.png", DepthRule(alpha="white"), channels=3)[0][0, 15]) == (255, 255, 255)
    assert tuple(_load(tmp_path / "a.png", DepthRule(alpha="black"), channels=3)[0][0, 0]) == (200, 30, 60)


def test_the_rule_is_recorded_and_a_refusal_is_never_skipped_as_corrupt(tmp_path):
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        (root / "train" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(RAMP16).save(root / "train" / c / f"{i}.png")
    m = convert_image_folder(root, tmp_path / "out", image_size=(16, 16), channels=1, val_fraction=0.2,
                             test_fraction=0.2)
    written = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert written["conversion"] == m["conversion"] == {
        "rule": "8-bit images as they are; palette and CMYK through RGB; 16-bit samples scaled from 0..65535 and "
                "float samples from 0..1 to 0..255; transparent images refused; EXIF orientation applied",
        "source_modes": {"I;16": 20}}
    Image.fromarray((RAMP16 // 64).astype(np.uint16)).save(root / "train" / "b" / "3.png")
    with pytest.raises(UserError, match=r"3\.png' is mode I;16 with values 0\.\.1023"):
        convert_image_folder(root, tmp_path / "out2", image_size=(16, 16), channels=1, skip_corrupt=True)


def test_conversion_without_a_terminal_logs_a_line_per_tenth(tmp_path, caplog, monkeypatch):
    import logging

    from tf_records_parser import image_folder

    monkeypatch.setattr(image_folder, "PROGRESS_SECONDS", 0.0)  # a long conversion: every tenth is due

    root = tmp_path / "imgs"
    for c in ("a", "b"):
        (root / "train" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(root / "train" / c / f"{i}.png")
    with caplog.at_level(logging.INFO, logger="tf_records_parser"):
        convert_image_folder(root, tmp_path / "out", image_size=(8, 8), channels=1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("converting")]
    assert lines == [f"converting '{root}': {k} of 20 images" for k in range(2, 20, 2)]
