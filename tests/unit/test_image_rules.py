"""The 302 model table's parameter rules, row by row, against the seed page's own wording."""

from __future__ import annotations

import pytest

from omnirelay.core.image_catalog import ImageCatalog, load_image_catalog, spec_from_row
from omnirelay.core.image_rules import apply_rules, parse_size
from omnirelay.core.images import ImageModelSpec

# The lists exactly as the 302 "Generate images" page states them.
DALLE_SIZES = ["256x256", "512x512", "1024x1024"]
STABILITY_RATIOS = ["16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"]
FLUX_ULTRA_RATIOS = ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "9:21"]
IDEOGRAM_RATIOS = ["1:1", "10:16", "16:10", "9:16", "16:9", "3:2", "2:3", "4:3", "3:4", "1:3", "3:1"]
WIDE_RATIOS = ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"]
COGVIEW_SIZES = ["1024x1024", "768x1344", "864x1152", "1344x768", "1152x864", "1440x720", "720x1440"]

SEED_IDS = [
    "dall-e-3-t2i",
    "dall-e-2-t2i",
    "stable-v1-t2i",
    "stable-sd2-t2i",
    "stable-sd3-ultra-t2i",
    "stable-sd3-t2i",
    "stable-sd3.5-medium-t2i",
    "stable-sd3.5-large-t2i",
    "stable-sd3-turbo-t2i",
    "stable-sd3-i2i",
    "stable-sd3.5-medium-i2i",
    "stable-sd3.5-large-i2i",
    "stable-sd3-turbo-i2i",
    "302ai-sdxl-t2i",
    "302ai-sdxl-lora-t2i",
    "302ai-sdxl-lighting-t2i",
    "302ai-sdxl-lighting-v2-t2i",
    "302ai-sd3-t2i",
    "302ai-aura-flow-t2i",
    "302ai-kolors-t2i",
    "302ai-kolors-i2i",
    "302ai-sd35-large-t2i",
    "302ai-sd35-large-turbo-t2i",
    "302ai-sd35-medium-t2i",
    "302ai-lumina-t2i",
    "302ai-omnigen-v1-t2i",
    "302ai-playground-v25-t2i",
    "302ai-lora-t2i",
    "flux-pro-1.1-ultra-t2i",
    "flux-pro-1.1-t2i",
    "flux-pro-t2i",
    "flux-dev-t2i",
    "flux-pro-1.0-fill-t2i",
    "flux-pro-1.0-canny-t2i",
    "flux-pro-1.0-depth-t2i",
    "flux-pro-1.1-ultra-finetuned-t2i",
    "flux-pro-1.0-finetuned-t2i",
    "flux-pro-1.0-depth-finetuned-t2i",
    "flux-pro-1.0-canny-finetuned-t2i",
    "flux-pro-1.0-fill-finetuned-t2i",
    "302ai-flux-v1.1-ultra-t2i",
    "302ai-flux-v1.1-pro-t2i",
    "302ai-flux-pro-t2i",
    "302ai-flux-dev-t2i",
    "302ai-flux-schnell-t2i",
    "302ai-flux-realism-t2i",
    "ideogram-v1-t2i",
    "ideogram-v1-turbo-t2i",
    "ideogram-v2-t2i",
    "ideogram-v2-turbo-t2i",
    "ideogram-v2a-t2i",
    "ideogram-v2a-turbo-t2i",
    "recraft-v3-t2i",
    "recraft-20b-t2i",
    "luma-t2i",
    "luma-flash-t2i",
    "doubao-v2-t2i",
    "doubao-v2-l-t2i",
    "doubao-v2.1-l-t2i",
    "doubao-v3-t2i",
    "google-v3-t2i",
    "google-v3-fast-t2i",
    "minimaxi-t2i",
    "cogview-4-t2i",
    "cogview-4-250304-t2i",
    "baidu-irag-t2i",
    "hidream-i1-full-t2i",
    "hidream-i1-dev-t2i",
    "hidream-i1-fast-t2i",
]

CATALOG = ImageCatalog(load_image_catalog())


def spec(model_id: str) -> ImageModelSpec:
    found = CATALOG.get(model_id)
    assert found is not None, model_id
    return found


def test_every_seed_model_is_in_the_table() -> None:
    missing = [m for m in SEED_IDS if CATALOG.get(m) is None]
    assert missing == []


def test_i2i_models_per_the_seed() -> None:
    seed_i2i = {
        "stable-sd3-i2i",
        "stable-sd3.5-medium-i2i",
        "stable-sd3.5-large-i2i",
        "stable-sd3-turbo-i2i",
        "302ai-kolors-i2i",
    }
    assert seed_i2i <= {m.id for m in CATALOG.all() if m.requires_image}


def family(model_id: str) -> str:
    if model_id.startswith("dall-e-") and model_id.endswith("-t2i"):
        return "dalle"
    if model_id.startswith("stable-") and model_id != "stable-v1-t2i":
        return "stability_i2i" if model_id.endswith("-i2i") else "stability"
    if model_id == "302ai-flux-v1.1-ultra-t2i":
        return "flux_ultra_302"
    if model_id.startswith("ideogram-v") and model_id != "ideogram-v3-t2i":
        return "ideogram"
    if model_id.startswith(("luma-", "google-", "minimaxi-")):
        return "wide"
    if model_id.startswith("doubao-"):
        return "doubao"
    if model_id.startswith("cogview-4"):
        return "cogview"
    return "other"


@pytest.mark.parametrize("model_id", SEED_IDS)
def test_rules_row_by_row(model_id: str) -> None:
    s = spec(model_id)
    kind = family(model_id)
    if kind == "dalle":
        for size in DALLE_SIZES:
            w, h = parse_size(size) or (0, 0)
            got = apply_rules(s, width=w, height=h, size=None, aspect_ratio=None)
            assert (got.size, got.width, got.height) == (size, w, h)
        for w, h in ((800, 600), (1024, 1792), (2048, 2048), (512, 1024)):
            got = apply_rules(s, width=w, height=h, size=None, aspect_ratio=None)
            assert (got.size, got.width, got.height) == ("1024x1024", 1024, 1024)
    elif kind == "stability":
        for ratio in STABILITY_RATIOS:
            assert (
                apply_rules(s, width=None, height=None, size=None, aspect_ratio=ratio).aspect_ratio == ratio
            )
        for bad in ("4:3", "3:4", "7:3", "", None):
            assert apply_rules(s, width=None, height=None, size=None, aspect_ratio=bad).aspect_ratio == "1:1"
    elif kind == "stability_i2i":
        assert s.requires_image
        assert apply_rules(s, width=None, height=None, size=None, aspect_ratio="16:9").aspect_ratio is None
    elif kind == "flux_ultra_302":
        for ratio in FLUX_ULTRA_RATIOS:
            assert (
                apply_rules(s, width=None, height=None, size=None, aspect_ratio=ratio).aspect_ratio == ratio
            )
        for bad in ("2:3", "5:4", "1:3", None):
            assert apply_rules(s, width=None, height=None, size=None, aspect_ratio=bad).aspect_ratio == "16:9"
    elif kind == "ideogram":
        for ratio in IDEOGRAM_RATIOS:
            assert (
                apply_rules(s, width=None, height=None, size=None, aspect_ratio=ratio).aspect_ratio == ratio
            )
        for bad in ("21:9", "9:21", "5:4", None):
            assert apply_rules(s, width=None, height=None, size=None, aspect_ratio=bad).aspect_ratio == "1:1"
    elif kind == "wide":
        for ratio in WIDE_RATIOS:
            assert (
                apply_rules(s, width=None, height=None, size=None, aspect_ratio=ratio).aspect_ratio == ratio
            )
        for bad in ("2:3", "3:2", "10:16", None):
            assert apply_rules(s, width=None, height=None, size=None, aspect_ratio=bad).aspect_ratio == "1:1"
    elif kind == "doubao":
        for w, h in ((256, 768), (768, 256), (512, 600)):
            got = apply_rules(s, width=w, height=h, size=None, aspect_ratio=None)
            assert (got.width, got.height) == (w, h)
        got = apply_rules(s, width=255, height=769, size=None, aspect_ratio=None)
        assert (got.width, got.height) == (512, 512)
        got = apply_rules(s, width=1024, height=300, size=None, aspect_ratio=None)
        assert (got.width, got.height) == (512, 300)
        got = apply_rules(s, width=None, height=None, size=None, aspect_ratio=None)  # 1024 default is out
        assert (got.width, got.height) == (512, 512)
    elif kind == "cogview":
        for size in COGVIEW_SIZES:
            w, h = parse_size(size) or (0, 0)
            assert apply_rules(s, width=w, height=h, size=None, aspect_ratio=None).size == size
        for w, h in ((1000, 1000), (1024, 768), (720, 1280)):
            assert apply_rules(s, width=w, height=h, size=None, aspect_ratio=None).size == "1024x1024"
    else:
        got = apply_rules(s, width=640, height=480, size=None, aspect_ratio="7:5")
        assert (got.width, got.height, got.size) == (640, 480, None)
        assert got.aspect_ratio == (None if s.requires_image else "7:5")


def test_explicit_size_is_read_when_width_and_height_are_absent() -> None:
    got = apply_rules(spec("dall-e-3-t2i"), width=None, height=None, size="512x512", aspect_ratio=None)
    assert got.size == "512x512"
    got = apply_rules(spec("dall-e-3-t2i"), width=None, height=None, size="bogus", aspect_ratio=None)
    assert got.size == "1024x1024"


def test_rows_are_well_formed() -> None:
    for row in load_image_catalog():
        built = spec_from_row(row)
        assert built.adapter and built.upstream_model
        assert row["price"]["per_image"]
    with pytest.raises(ValueError, match="mode"):
        spec_from_row({"id": "x", "adapter": "a", "upstream_model": "m", "mode": "video"})


def test_docs_list_every_model_with_its_adapter() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "images.md").read_text()
    for row in load_image_catalog():
        assert f"| `{row['id']}` | `{row['adapter']}` |" in text, row["id"]
