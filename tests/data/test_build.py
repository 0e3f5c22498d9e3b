"""Real sources → shards: obtained automatically, deterministic, split by group, cached by version."""

import pytest

from workbench.data.arrays import load_split_arrays, load_training_arrays
from workbench.data.build import SOURCES, build_dataset, list_datasets
from workbench.data.leaks import check_leaks, leaks
from workbench.data.shards import Sample, in_validation, iter_split, read_manifest, split_of, write_dataset
from workbench.data.sources.clipart_web import find_author_tokens, make_caption, title_tokens
from workbench.data.sources.glyphs import caption_and_classes, descriptive_name
from workbench.data.sources.tuxpaint import read_caption
from workbench.workspace import Workspace


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_each_real_source_builds_real_samples(real_root, name):
    ws = Workspace.resolve(real_root)
    manifest = read_manifest(ws.dataset_dir(name))
    assert manifest["fingerprint"] and manifest["source_version"] == SOURCES[name].VERSION
    assert set(manifest["splits"]) == ({"eval"} if SOURCES[name].EVAL_ONLY else {"train", "eval"})
    for split in manifest["splits"]:
        samples = list(iter_split(ws.dataset_dir(name), split))
        assert len(samples) == manifest["splits"][split]["count"] > 0
        assert all(s.caption.strip() and s.image.mode == "RGB" for s in samples)
        assert all(s.classes for s in samples)


def test_no_held_out_image_is_a_training_image_in_the_built_data(real_root):
    """The guarantee, checked on what was built (decoded pixels), not only by how splits are drawn."""
    ws = Workspace.resolve(real_root)
    overlaps = check_leaks({name: ws.dataset_dir(name) for name in SOURCES})
    assert leaks(overlaps) == []
    within = [o for o in overlaps if o.held_out.split("/")[0] == o.train.split("/")[0]]
    assert {o.held_out for o in within} >= {"clipart-web/eval", "clipart-web/validation", "glyphs/eval", "emoji/eval"}


def test_copies_of_one_picture_share_a_split_and_collapse_to_one_sample(tmp_path):
    import random

    from PIL import Image

    def picture(i: int, scale: int = 5) -> Image.Image:
        """A 9×8 mosaic of greys, unique per i, at ``scale`` pixels a cell (another scale: a resized copy)."""
        image = Image.new("L", (9, 8))
        image.putdata(random.Random(i).sample(range(0, 256, 3), 72))
        return image.convert("RGB").resize((9 * scale, 8 * scale), Image.Resampling.NEAREST)

    samples = [Sample(f"own-{i}", picture(i), f"picture {i}", "toy", {"c": "a"}, f"g{i}") for i in range(200)]
    copies = [Sample(f"copy-{i}", picture(i), f"copy {i}", "toy", {"c": "a"}, f"h{i}") for i in range(200)]
    resized = [Sample(f"big-{i}", picture(i, 10), f"big {i}", "toy", {"c": "a"}, f"k{i}") for i in range(200)]
    manifest = write_dataset(tmp_path / "toy", "toy", samples + copies + resized, eval_fraction=0.3)
    assert manifest["content"]["collapsed_duplicates"] == 200 == manifest["content"]["pixel_duplicates"]
    stored = {split: list(iter_split(tmp_path / "toy", split)) for split in ("train", "eval")}
    uids = {split: {s.uid for s in stored[split]} for split in stored}
    assert not any(uid.startswith("copy-") for split in uids for uid in uids[split])
    for i in range(200):  # a resized copy is a near-duplicate: same group, same split as its original
        assert (f"own-{i}" in uids["eval"]) == (f"big-{i}" in uids["eval"]), i
    assert 0.15 < manifest["splits"]["eval"]["count"] / 400 < 0.45
    exact_only = write_dataset(tmp_path / "toy2", "toy2", [Sample(s.uid, picture(int(s.uid.split("-")[1]), 10 if
                               s.uid.startswith("big") else 5), s.caption, "toy", s.classes, s.group)
                               for s in samples + resized], eval_fraction=0.3, near_duplicates=False)
    assert exact_only["content"]["near_duplicates_not_grouped"] > 0


def test_train_and_eval_never_share_a_group(real_root):
    ws = Workspace.resolve(real_root)
    for name in ("glyphs", "clipart-web", "tuxpaint", "emoji"):
        groups = {split: {s.group for s in iter_split(ws.dataset_dir(name), split)} for split in ("train", "eval")}
        assert not groups["train"] & groups["eval"], name


def test_the_validation_slice_is_a_group_closed_tenth_of_train_that_holdout_leaves_out(real_root):
    ws = Workspace.resolve(real_root)
    for name in ("glyphs", "clipart-web"):
        train = load_split_arrays(ws.dataset_dir(name), "train", 16, progress=False)
        validation = load_split_arrays(ws.dataset_dir(name), "validation", 16, progress=False)
        rest = load_training_arrays(ws.dataset_dir(name), 16, holdout=True, progress=False)
        assert 0.05 < len(validation) / len(train) < 0.16, name
        assert sorted(validation.uids + rest.uids) == sorted(train.uids)
        assert not set(validation.groups) & set(rest.groups), name  # a glyph's fonts never straddle the slice
        assert all(in_validation(g) for g in validation.groups)
        row = train.uids.index(validation.uids[0])
        assert (validation.images[0] == train.images[row]).all() and validation.captions[0] == train.captions[row]
        assert load_training_arrays(ws.dataset_dir(name), 16, holdout=False, progress=False).uids == train.uids


def test_a_second_build_is_a_hit_and_a_new_limit_rebuilds(tmp_path):
    ws = Workspace.resolve(tmp_path).ensure()
    first = build_dataset("digits", ws, limit=30, progress=False)
    shard = ws.dataset_dir("digits") / first["splits"]["eval"]["shards"][0]
    stamp = shard.stat().st_mtime_ns
    assert build_dataset("digits", ws, limit=30, progress=False)["fingerprint"] == first["fingerprint"]
    assert shard.stat().st_mtime_ns == stamp
    assert build_dataset("digits", ws, limit=40, progress=False)["splits"]["eval"]["count"] == 40
    assert {row["name"]: row["built"] for row in list_datasets(ws)}["digits"] is True


def test_unknown_dataset_names_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match="clipart-web"):
        build_dataset("imagenet", Workspace.resolve(tmp_path))


def test_split_is_deterministic_and_near_its_fraction():
    splits = [split_of(f"group-{i}", 0.2) for i in range(5000)]
    assert splits == [split_of(f"group-{i}", 0.2) for i in range(5000)]
    assert 0.18 < splits.count("eval") / len(splits) < 0.22


def test_clipart_author_names_are_stripped():
    stems = ["frog_john_smith_01", "cat_john_smith", "house_john_smith_02", "tree_doe", "red_frog"]
    titles = [title_tokens(s) for s in stems]
    authors = find_author_tokens(titles)
    assert {"john", "smith"} <= authors and "frog" not in authors
    assert make_caption(titles[0], authors, ["animals", "frogs"]) == "frog, frogs, animals"


def test_glyph_names_leave_out_opaque_ones_and_caption_has_the_block():
    assert descriptive_name("\u4e00") is None           # CJK UNIFIED IDEOGRAPH-4E00
    assert descriptive_name("\uac00") is None           # HANGUL SYLLABLE GA
    assert descriptive_name(" ") is None                # a space renders nothing
    assert descriptive_name("\u00e8") == "LATIN SMALL LETTER E WITH GRAVE"
    caption, classes = caption_and_classes("\u00c8")
    assert caption == "latin capital letter e with grave, latin-1 supplement"
    assert classes == {"script": "latin", "block": "latin-1 supplement", "category": "uppercase letter"}


def test_tuxpaint_caption_is_the_default_locale_line(tmp_path):
    txt = tmp_path / "frog.txt"
    txt.write_text("A frog.\nde.utf8=Ein Frosch.\nfr.utf8=Une grenouille.\n")
    assert read_caption(txt) == "A frog."


def test_a_limited_build_keeps_whole_runs_of_neighbours():
    from workbench.data.sources._common import spread_runs

    picked = spread_runs(list(range(10_000)), limit=900, run=300)
    assert picked == [*range(0, 300), *range(4850, 5150), *range(9700, 10_000)]
    assert spread_runs(list(range(50)), limit=900, run=300) == list(range(50))
