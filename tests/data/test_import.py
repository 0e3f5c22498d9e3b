"""`workbench data import`: a captioned folder, a CSV/Parquet table, img2dataset-style shards."""

import io
import json

import pandas as pd
import pytest
import webdataset as wds
from PIL import Image

from workbench.data.importer import import_dataset
from workbench.data.shards import iter_split, read_manifest
from workbench.workspace import Workspace


def make_image(colour: str) -> Image.Image:
    return Image.new("RGB", (40, 30), colour)


def test_folder_of_images_with_captions(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    for i, colour in enumerate(["red", "green", "blue", "yellow"]):
        make_image(colour).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"a {colour} square\n")
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "broken.txt").write_text("broken")
    ws = Workspace.resolve(tmp_path / "ws").ensure()
    manifest = import_dataset(folder, "mine", ws, eval_fraction=0.5)
    assert sum(s["count"] for s in manifest["splits"].values()) == 4
    assert manifest["skipped"] == {"unreadable image (UnidentifiedImageError)": 1}
    captions = {s.caption for split in manifest["splits"] for s in iter_split(ws.dataset_dir("mine"), split)}
    assert captions == {"a red square", "a green square", "a blue square", "a yellow square"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_with_class_columns(tmp_path, suffix):
    (tmp_path / "img").mkdir()
    rows = []
    for i, colour in enumerate(["red", "green", "blue"]):
        make_image(colour).save(tmp_path / "img" / f"{i}.jpg")
        rows.append({"file": f"img/{i}.jpg", "text": f"{colour} thing", "colour": colour})
    table = tmp_path / f"data{suffix}"
    frame = pd.DataFrame(rows)
    frame.to_csv(table, index=False) if suffix == ".csv" else frame.to_parquet(table)
    ws = Workspace.resolve(tmp_path / "ws").ensure()
    import_dataset(table, "tab", ws, path_column="file", caption_column="text", class_columns=["colour"])
    samples = [s for split in ("train", "eval") if split in read_manifest(ws.dataset_dir("tab"))["splits"]
               for s in iter_split(ws.dataset_dir("tab"), split)]
    assert sorted(s.classes["colour"] for s in samples) == ["blue", "green", "red"]


def test_table_missing_column_says_which(tmp_path):
    table = tmp_path / "t.csv"
    pd.DataFrame([{"path": "x.png"}]).to_csv(table, index=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['caption'\]"):
        import_dataset(table, "t", Workspace.resolve(tmp_path / "ws").ensure())


def test_img2dataset_shards(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    with wds.TarWriter(str(shards / "00000.tar")) as sink:
        for i in range(5):
            buffer = io.BytesIO()
            make_image(["red", "green", "blue", "yellow", "purple"][i]).save(buffer, format="JPEG")
            sink.write({"__key__": f"{i:09d}", "jpg": buffer.getvalue(), "txt": f"photo {i}",
                        "json": json.dumps({"key": f"{i:09d}", "url": "http://example.invalid"})})
    ws = Workspace.resolve(tmp_path / "ws").ensure()
    manifest = import_dataset(shards, "web", ws, eval_fraction=0.0)
    assert manifest["splits"]["train"]["count"] == 5


def test_builtin_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="built-in"):
        import_dataset(tmp_path, "glyphs", Workspace.resolve(tmp_path / "ws"))
