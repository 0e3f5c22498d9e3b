"""Real sources → shards: obtained automatically, deterministic, split by group, cached by version."""

import pytest

from workbench.data.arrays import load_split_arrays, load_training_arrays
from workbench.data.build import SOURCES, build_dataset, list_datasets
from workbench.data.shards import in_validation, iter_split, read_manifest, split_of
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
