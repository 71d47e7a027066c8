"""Dataset loaders on generated temporary trees (no network, no shared data)."""
import logging
import os
import tarfile
import zlib

import larq_glt  # noqa: F401  (selects legacy Keras before TensorFlow)
import numpy as np
import pytest
from PIL import Image

from larq_glt import data
from larq_glt.data import DatasetError, download, split, synthetic

S = 32  # small images keep the tests fast


def write_image(path, size=(S, S), value=(128, 128, 128), mode="RGB", fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if mode == "L":
        img = Image.new("L", size, value if isinstance(value, int) else value[0])
    elif mode == "RGBA":
        img = Image.new("RGBA", size, tuple(value) + (77,))
    else:
        rng = np.random.default_rng(zlib.crc32(str(path).encode()))
        arr = np.clip(np.asarray(value) + rng.integers(-5, 6, (size[1], size[0], 3)), 0, 255)
        img = Image.fromarray(arr.astype(np.uint8))
    img.save(path, format=fmt)


def write_corrupt(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n this is not really an image")


def make_vww(root, per_class=6, corrupt=True):
    for i in range(per_class):
        write_image(root / "person" / f"{i:012d}.png", value=(200, 200, 200))
        write_image(root / "non_person" / f"{100 + i:012d}.png", value=(40, 40, 40))
    if corrupt:
        write_corrupt(root / "person" / "broken.png")
    (root / "person" / "README.txt").write_text("not an image")
    return root


def make_folder(root, with_val=True):
    classes = {"zebra": (220, 220, 220), "apple": (30, 30, 30), "mango": (120, 120, 120)}
    for name, value in classes.items():
        for i in range(5):
            write_image(root / "train" / name / f"t{i}.jpg", value=value, fmt="JPEG")
        if with_val:
            for i in range(2):
                write_image(root / "val" / name / f"v{i}.png", value=value)
    write_corrupt(root / "train" / "apple" / "corrupt.jpg")
    return root


def test_vww_layout_labels_and_corrupt_file(tmp_path, caplog):
    root = make_vww(tmp_path / "vw")
    with caplog.at_level(logging.WARNING, logger="larq_glt.data"):
        s = data.load("vww", data_dir=root, image_size=S, batch_size=4, augment=False,
                      val_fraction=0.25)
    assert s.class_names == ("non_person", "person")
    assert s.info.num_skipped == 1 and s.info.skipped[0][0].endswith("broken.png")
    assert "skipped 1 unreadable" in caplog.text and "broken.png" in caplog.text
    assert s.info.ignored_files == 1  # README.txt: not an image, not an error
    assert s.info.num_train + s.info.num_val == 12
    # Split on names before decoding: person has 7 files (one broken), 2 go to val.
    assert s.info.val_class_counts[0] == 2  # round(6 * 0.25)
    counts = np.add(s.info.train_class_counts, s.info.val_class_counts)
    assert counts.tolist() == [6, 6]
    for split_name in ("train", "val"):
        x, y = s.arrays(split_name)
        assert x.dtype == np.uint8 and x.shape[1:] == (S, S, 3) and y.dtype == np.int32
        # person images were written bright, non_person dark: label 1 == person
        np.testing.assert_array_equal(y, (x.mean(axis=(1, 2, 3)) > 128).astype(np.int32))
    x, y = next(iter(s.train))
    assert x.dtype.name == "uint8" and y.dtype.name == "int32" and x.shape == (4, S, S, 3)


def test_vww_accepts_parent_of_archive_folder(tmp_path):
    make_vww(tmp_path / "vw_coco2014_96", corrupt=False)
    s = data.load("vww", data_dir=tmp_path, image_size=S, batch_size=4)
    assert s.info.root == str(tmp_path / "vw_coco2014_96") and s.info.num_skipped == 0


def test_vww_wrong_layout_names_path(tmp_path):
    write_image(tmp_path / "cats" / "a.png")
    with pytest.raises(DatasetError, match="person/ and non_person/") as err:
        data.load("vww", data_dir=tmp_path)
    assert str(tmp_path) in str(err.value)


def test_vww_empty_class_is_an_error(tmp_path):
    make_vww(tmp_path, corrupt=False)
    for f in (tmp_path / "non_person").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match="non_person has no images"):
        data.load("vww", data_dir=tmp_path)


def test_vww_offline_gives_clear_error(tmp_path, monkeypatch):
    def no_network(url, dest, timeout=30.0):
        raise download.DownloadError("Name or service not known")

    monkeypatch.setattr(download, "fetch", no_network)
    dest = tmp_path / "not_there"
    with pytest.raises(DatasetError) as err:
        data.load("vww", data_dir=dest)
    msg = str(err.value)
    assert data.vww.URL in msg and str(dest) in msg and "tar -xzf" in msg
    assert "Name or service not known" in msg
    # Default location: the cache dir, which the message must name too.
    monkeypatch.setenv("LARQ_GLT_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match=str(tmp_path / "cache")):
        data.load("vww")
    with pytest.raises(DatasetError, match="downloading is disabled"):
        data.load("vww", data_dir=dest, download=False)


def test_vww_download_and_extract(tmp_path, monkeypatch):
    src = make_vww(tmp_path / "src" / "vw_coco2014_96", per_class=3, corrupt=False)
    archive = tmp_path / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="vw_coco2014_96")
    calls = []

    def fake_fetch(url, dest, timeout=30.0):
        calls.append(url)
        dest.write_bytes(archive.read_bytes())

    monkeypatch.setattr(download, "fetch", fake_fetch)
    dest = tmp_path / "data"
    s = data.load("vww", data_dir=dest, image_size=S, batch_size=2)
    assert calls == [data.vww.URL]
    assert (dest / "vw_coco2014_96" / "person").is_dir()
    assert not (dest / "vw_coco2014_96.tar.gz").exists()  # archive removed after extraction
    assert s.info.num_train + s.info.num_val == 6
    # Second load finds the extracted data and does not download again.
    data.load("vww", data_dir=dest, image_size=S)
    assert len(calls) == 1


def test_vww_damaged_archive_is_removed(tmp_path, monkeypatch):
    def junk(url, dest, timeout=30.0):
        dest.write_bytes(b"junk")

    monkeypatch.setattr(download, "fetch", junk)
    with pytest.raises(DatasetError, match="cannot extract"):
        data.load("vww", data_dir=tmp_path / "d")
    assert not (tmp_path / "d" / "vw_coco2014_96.tar.gz").exists()


def test_truncated_jpeg_is_skipped(tmp_path):
    root = make_folder(tmp_path)
    good = root / "train" / "mango" / "t0.jpg"
    write_image(good, size=(64, 64), fmt="JPEG")
    blob = good.read_bytes()
    (root / "train" / "mango" / "cut.jpg").write_bytes(blob[: len(blob) // 2])
    s = data.load("folder", data_dir=root, image_size=S)
    assert sorted(os.path.basename(p) for p, _ in s.info.skipped) == ["corrupt.jpg", "cut.jpg"]


def test_folder_layout_corrupt_resize_and_modes(tmp_path, caplog):
    root = make_folder(tmp_path)
    write_image(root / "val" / "mango" / "big.png", size=(120, 80), value=(120, 120, 120))
    write_image(root / "val" / "zebra" / "gray.png", mode="L", value=90)
    write_image(root / "val" / "apple" / "rgba.png", mode="RGBA", value=(10, 200, 30))
    with caplog.at_level(logging.WARNING, logger="larq_glt.data"):
        s = data.load("folder", data_dir=root, image_size=S, batch_size=4)
    assert s.class_names == ("apple", "mango", "zebra")  # sorted
    assert s.info.num_skipped == 1 and "corrupt.jpg" in caplog.text
    assert s.info.split == "folders"
    assert s.info.train_class_counts == [5, 5, 5] and s.info.val_class_counts == [3, 3, 3]
    x, y = s.arrays("val")
    assert x.shape == (9, S, S, 3) and x.dtype == np.uint8
    # Val order is the listing order: class by class, sorted file names.
    by_name = {}
    i = 0
    for c in s.class_names:
        for f in sorted((root / "val" / c).iterdir()):
            by_name[f.name] = x[i]
            i += 1
    gray = by_name["gray.png"]
    assert (gray == 90).all()  # grayscale -> RGB: three equal channels
    np.testing.assert_array_equal(by_name["rgba.png"][0, 0], [10, 200, 30])  # alpha dropped
    big = by_name["big.png"].astype(int)  # 120x80 noisy grey, centre-cropped and resized
    assert abs(big.mean() - 120) < 2


def test_folder_stream_equals_memory(tmp_path):
    root = make_folder(tmp_path)
    kw = dict(data_dir=root, image_size=S, batch_size=4, seed=3)
    mem = data.load("folder", cache="memory", **kw)
    stream = data.load("folder", cache="stream", **kw)
    assert (mem.info.storage, stream.info.storage) == ("memory", "stream")
    for split_name in ("train", "val"):
        np.testing.assert_array_equal(mem.arrays(split_name)[0], stream.arrays(split_name)[0])
    for (xa, ya), (xb, yb) in zip(mem.train_epoch(2), stream.train_epoch(2)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert stream.info.num_skipped == 1


def test_stream_survives_file_vanishing_mid_training(tmp_path, caplog):
    root = make_folder(tmp_path)
    s = data.load("folder", data_dir=root, image_size=S, batch_size=4, cache="stream")
    os.remove(root / "train" / "zebra" / "t0.jpg")
    with caplog.at_level(logging.WARNING, logger="larq_glt.data"):
        seen = sum(len(y) for _, y in s.train)
    assert seen == s.info.num_train - 1
    assert any(p.endswith("t0.jpg") for p, _ in s.skipped)


def test_folder_without_val_splits_train(tmp_path):
    root = make_folder(tmp_path, with_val=False)
    s = data.load("folder", data_dir=root, image_size=S, val_fraction=0.2)
    assert "sha1" in s.info.split
    assert s.info.val_class_counts == [1, 1, 1] and s.info.train_class_counts == [4, 4, 4]


def test_folder_val_with_unknown_class(tmp_path):
    root = make_folder(tmp_path)
    write_image(root / "val" / "kiwi" / "k.png")
    with pytest.raises(DatasetError, match="kiwi"):
        data.load("folder", data_dir=root, image_size=S)


@pytest.mark.parametrize("case", ["missing", "empty", "no_images", "no_data_dir"])
def test_missing_or_empty_dirs(tmp_path, case):
    root = tmp_path / "ds"
    if case == "empty":
        root.mkdir()
    if case == "no_images":
        (root / "train" / "a").mkdir(parents=True)
        (root / "train" / "a" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError) as err:
        data.load("folder", data_dir=None if case == "no_data_dir" else root)
    msg = str(err.value)
    assert "train/<class>" in msg
    if case != "no_data_dir":
        assert str(root) in msg
    if case == "no_images":
        assert "no image files" in msg


def test_split_is_deterministic_stratified_and_stable():
    names = [f"{c}/{i:05d}.png" for c in ("a", "b") for i in range(50)]
    labels = [0] * 50 + [1] * 50
    tr1, va1 = split.split_train_val(names, labels, 0.1, seed=0)
    tr2, va2 = split.split_train_val(list(reversed(names)), list(reversed(labels)), 0.1, seed=0)
    assert sorted(names[i] for i in va1) == sorted(names[::-1][i] for i in va2)  # order-free
    assert len(va1) == 10 and sum(labels[i] for i in va1) == 5  # stratified
    assert set(tr1).isdisjoint(va1) and len(tr1) + len(va1) == 100
    _, va3 = split.split_train_val(names, labels, 0.1, seed=1)
    assert set(va3) != set(va1)
    # Adding files moves at most one existing file per class out of validation.
    more = names + [f"a/new{i}.png" for i in range(5)]
    _, va4 = split.split_train_val(more, labels + [0] * 5, 0.1, seed=0)
    old_val = {names[i] for i in va1}
    assert len(old_val - {more[i] for i in va4}) <= 2


def test_same_seed_same_files(tmp_path):
    root = make_vww(tmp_path, per_class=10, corrupt=False)
    a = data.load("vww", data_dir=root, image_size=S, seed=5, val_fraction=0.3)
    b = data.load("vww", data_dir=root, image_size=S, seed=5, val_fraction=0.3)
    c = data.load("vww", data_dir=root, image_size=S, seed=6, val_fraction=0.3)
    np.testing.assert_array_equal(a.arrays("val")[0], b.arrays("val")[0])
    assert not np.array_equal(a.arrays("val")[0], c.arrays("val")[0])


def test_limit_caps_each_split(tmp_path):
    root = make_vww(tmp_path, per_class=10, corrupt=False)
    s = data.load("vww", data_dir=root, image_size=S, limit=5, val_fraction=0.3)
    assert s.info.num_train == 5 and s.info.num_val == 5


def test_stl10_through_tfds_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        s = data.load("stl10", data_dir=tmp_path, batch_size=5, augment=False)
        small = data.load("stl10", data_dir=tmp_path, image_size=48, limit=4)
    assert s.num_classes == 10 and s.class_names[0] == "airplane"
    assert (s.info.num_train, s.info.num_val) == (12, 12)
    x, y = next(iter(s.train))
    assert x.dtype.name == "uint8" and x.shape == (5, 96, 96, 3) and y.dtype.name == "int32"
    assert 0 <= int(np.min(y)) and int(np.max(y)) < 10
    assert small.arrays("train")[0].shape == (4, 48, 48, 3)


def test_stl10_offline_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "reachable", lambda url, timeout=5.0: False)
    with pytest.raises(DatasetError, match="not prepared") as err:
        data.load("stl10", data_dir=tmp_path)
    assert data.stl10.URL in str(err.value) and str(tmp_path) in str(err.value)


def test_synthetic_is_deterministic_and_learnable():
    a = data.load("synthetic", image_size=S, seed=1, batch_size=16)
    b = data.load("synthetic", image_size=S, seed=1, batch_size=16)
    c = data.load("synthetic", image_size=S, seed=2, batch_size=16)
    for split_name in ("train", "val"):
        np.testing.assert_array_equal(a.arrays(split_name)[0], b.arrays(split_name)[0])
        np.testing.assert_array_equal(a.arrays(split_name)[1], b.arrays(split_name)[1])
    assert not np.array_equal(a.arrays("train")[0], c.arrays("train")[0])
    xa, ya = next(iter(a.train))
    xb, yb = next(iter(b.train))
    np.testing.assert_array_equal(xa, xb)  # same seed: same first shuffled, augmented batch
    # The global tone alone separates the classes: nearest class level on the image mean.
    x, y = a.arrays("val")
    levels = synthetic.tone_level(np.arange(a.num_classes), a.num_classes)
    pred = np.abs(x.mean(axis=(1, 2, 3))[:, None] - levels[None, :]).argmin(axis=1)
    assert (pred == y).mean() > 0.95
    assert a.info.train_class_counts == [128] * 4
    # The colour cast survives tone augmentation: in augmented training batches the
    # brightest channel of classes 0, 1, 2 is red, green, blue.
    x, y = next(iter(a.train))
    x, y = x.numpy().astype(float), y.numpy()
    brightest = x.mean(axis=(1, 2)).argmax(axis=1)
    assert ((brightest == y)[y < 3]).mean() > 0.9


def test_train_epochs_cover_data_and_reshuffle():
    s = data.load("synthetic", image_size=S, batch_size=24, augment=False, num_train=100)
    assert s.steps_per_epoch == 5 and int(s.train.cardinality()) == 5
    x_all, _ = s.arrays("train")
    key = lambda imgs: sorted(im.tobytes() for im in imgs)  # noqa: E731
    first = [x for x, _ in s.train]
    second = [x for x, _ in s.train]
    assert key(np.concatenate(first)) == key(x_all)  # each example exactly once
    assert not np.array_equal(first[0], second[0])  # a new order each epoch
    e3 = [x.numpy() for x, _ in s.train_epoch(3)]
    e3b = [x.numpy() for x, _ in s.train_epoch(3)]
    e4 = [x.numpy() for x, _ in s.train_epoch(4)]
    np.testing.assert_array_equal(np.concatenate(e3), np.concatenate(e3b))
    assert not np.array_equal(e3[0], e4[0])
    # train_from continues with the same batches as train_epoch.
    stream = [x.numpy() for x, _ in s.train_from(3).take(2 * s.steps_per_epoch)]
    np.testing.assert_array_equal(np.concatenate(stream[:5]), np.concatenate(e3))
    np.testing.assert_array_equal(np.concatenate(stream[5:]), np.concatenate(e4))


def test_val_and_unbatched_are_unaugmented_arrays():
    s = data.load("synthetic", image_size=S, batch_size=10, num_val=25)
    x, y = s.arrays("val")
    got = np.concatenate([b.numpy() for b, _ in s.val])
    np.testing.assert_array_equal(got, x)
    items = list(s.unbatched("val").as_numpy_iterator())
    assert len(items) == 25 and items[3][0].shape == (S, S, 3)
    np.testing.assert_array_equal(items[3][0], x[3])
    assert items[3][1] == y[3]
    assert s.arrays("val", limit=7)[0].shape[0] == 7
    with pytest.raises(DatasetError, match="split"):
        s.arrays("test")


def test_drop_remainder_and_augment_only_train():
    s = data.load("synthetic", image_size=S, batch_size=30, num_train=100, drop_remainder=True)
    sizes = [len(y) for _, y in s.train]
    assert sizes == [30, 30, 30] and s.steps_per_epoch == 3
    x_all, _ = s.arrays("train")
    seen = np.concatenate([x.numpy() for x, _ in s.train])
    assert not {im.tobytes() for im in seen} <= {im.tobytes() for im in x_all}  # augmented


def test_bad_arguments():
    with pytest.raises(DatasetError, match="unknown dataset"):
        data.load("imagenet")
    with pytest.raises(DatasetError, match="no option"):
        data.load("synthetic", colour=True)
    with pytest.raises(DatasetError, match="val_fraction"):
        data.load("synthetic", val_fraction=1.0)
    with pytest.raises(DatasetError, match="cache"):
        data.load("synthetic", cache="disk")
    with pytest.raises(DatasetError, match="image_size"):
        data.load("synthetic", image_size=4)


def test_info_to_dict_is_json_ready(tmp_path):
    import json

    root = make_vww(tmp_path)
    s = data.load("vww", data_dir=root, image_size=S)
    d = json.loads(json.dumps(s.info.to_dict()))
    assert d["num_skipped"] == 1 and d["class_names"] == ["non_person", "person"]
    assert d["augment"]["gamma"] == 0.3
