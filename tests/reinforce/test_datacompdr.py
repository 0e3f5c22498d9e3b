"""Released DataCompDR / DFNDR shards load through the reader our own shards use.

The fixtures are written here member by member in the released layout (shared/PAPERS.md): url.txt,
jpg, txt, json (uid, sha256), syn.json, paug.json (crop [top, left, h, w] in original pixels, then
RandAugment [[op, signed magnitude], ...]) and an fp32 npz.
"""

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.augment.policy import apply, decompress
from workbench.data.reinforced.dataset import ReinforcedDataset
from workbench.data.reinforced.shards import read_shard

K, WIDTH = 3, 2 * 768  # two ViT-L-14 teachers, concatenated


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # non-square, as downloaded
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _unit(rows: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, WIDTH)).astype(np.float32)
    for block in (slice(0, 768), slice(768, WIDTH)):  # each teacher's block normalised on its own
        x[:, block] /= np.linalg.norm(x[:, block], axis=1, keepdims=True)
    return x


def _param_aug(seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [[[int(rng.integers(0, 40)), int(rng.integers(0, 80)), 200, 150],
             [[int(rng.integers(0, 14)), float(rng.choice([-0.27, 0.27]))], [5, -27.0]]] for _ in range(K)]


def write_released_shard(path, legacy: bool, samples: int = 4) -> list[dict]:
    expected = []
    with tarfile.open(path, "w") as tar:
        for i in range(samples):
            key, uid = f"{i:09d}", hashlib.md5(str(i).encode()).hexdigest()
            image = _jpeg(i)
            image_emb, text_emb = _unit(K, 10 + i), _unit(6 if legacy else 1, 20 + i)
            if legacy:  # DataCompDR-12M: one syn_text list; text_emb row 0 = ground truth, rows 1..5 synthetic
                syn = {"syn_text": [f"a synthetic caption {i}.{s}" for s in range(5)]}
                arrays = {"image_emb": image_emb, "text_emb": text_emb}
            else:  # DFNDR: one list per captioner with its own embeddings
                syn = {"syn_text_coca": [f"coca {i}.{s}" for s in range(2)],
                       "syn_text_docci": [f"docci {i}.{s}" for s in range(3)]}
                arrays = {"image_emb": image_emb, "text_emb": text_emb,
                          "syn_text_coca_emb": _unit(2, 30 + i), "syn_text_docci_emb": _unit(3, 40 + i)}
            paug = {"param_aug": _param_aug(i)}
            _add(tar, f"{key}.url.txt", f"https://example.org/{i}.jpg".encode())
            _add(tar, f"{key}.jpg", image)
            _add(tar, f"{key}.txt", f"a photo number {i}".encode())
            _add(tar, f"{key}.json", json.dumps({"uid": uid, "sha256": hashlib.sha256(image).hexdigest()}).encode())
            _add(tar, f"{key}.syn.json", json.dumps(syn).encode())
            _add(tar, f"{key}.paug.json", json.dumps(paug).encode())
            _add(tar, f"{key}.npz", _npz(**arrays))
            expected.append({"uid": uid, "syn": syn, "arrays": arrays, "paug": paug["param_aug"]})
    return expected


@pytest.mark.parametrize("legacy", [True, False], ids=["datacompdr-12m", "dfndr"])
def test_released_layout_loads_through_the_shared_reader(tmp_path, legacy):
    shard = tmp_path / "00000000.tar"
    expected = write_released_shard(shard, legacy)
    data = ReinforcedDataset.datacompdr([shard], teacher_dims=[768, 768])
    samples = list(data.samples())
    assert [s.uid for s in samples] == [e["uid"] for e in expected]
    for sample, want in zip(samples, expected):
        assert sample.param_aug == want["paug"]
        assert sample.syn_text == want["syn"]
        np.testing.assert_array_equal(sample.image_emb, want["arrays"]["image_emb"])
        np.testing.assert_array_equal(sample.text_emb, want["arrays"]["text_emb"][:1])  # ground truth only
        for key, captions in want["syn"].items():
            embeddings = (want["arrays"]["text_emb"][1:] if legacy else want["arrays"][f"{key}_emb"])
            np.testing.assert_array_equal(sample.syn_emb[key], embeddings)
            assert len(sample.syn_emb[key]) == len(captions)
        assert sample.meta["txt"].startswith("a photo number") and sample.meta["url"].startswith("https://")

        # the stored augmentations replay on the original image at any student resolution
        image = torch.from_numpy(np.array(Image.open(io.BytesIO(sample.meta["image"])).convert("RGB")))[None]
        for k in range(K):
            params = decompress([sample.param_aug[k]], data.policy)
            for size in (224, 64):
                view = apply(image, params, data.policy, size, data.source_size, data.reference_size)
                assert view.shape == (1, 3, size, size) and 0 <= float(view.min()) <= float(view.max()) <= 1
    assert list(read_shard(shard)) != []  # the function our own shards are read with
