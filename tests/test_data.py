import pickle
import re
import urllib.error
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from sklearn.datasets import load_digits as sklearn_digits

from resnext_lessons import data
from resnext_lessons.data import load_cifar, load_data, load_digits, make_loaders


@pytest.fixture(scope="module")
def digits():
    return load_digits(16)


def test_digits_shapes_split_and_labels(digits):
    assert digits.name == "digits" and digits.num_classes == 10 and digits.image_size == 16
    assert (len(digits.train), len(digits.test)) == (1437, 360)  # 80/20 of the 1,797 scans
    x, y = digits.train[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and 0 <= int(y) < 10
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # grey repeated over 3 channels


def test_digits_split_is_stratified_and_fixed(digits):
    train_counts = Counter(digits.train.tensors[1].tolist())
    test_counts = Counter(digits.test.tensors[1].tolist())
    for c in range(10):
        share = test_counts[c] / (train_counts[c] + test_counts[c])
        assert abs(share - 0.2) < 0.02, (c, share)
    again = load_digits(16)
    assert torch.equal(again.test.tensors[0], digits.test.tensors[0])
    assert not torch.equal(load_digits(16, seed=1).test.tensors[1], digits.test.tensors[1])


def test_digits_normalised_with_training_statistics(digits):
    x = digits.train.tensors[0]
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3


def test_digits_are_the_real_scans():
    # At 8x8 nothing is resized, so undoing the normalisation gives back scikit-learn's pixels.
    d = load_digits(8)
    ours = torch.cat([d.train.tensors[0], d.test.tensors[0]])[:, 0]
    ours = (d.denormalize(ours.unsqueeze(1).expand(-1, 3, -1, -1))[:, 0] * 16).round()
    raw = torch.as_tensor(sklearn_digits().images, dtype=torch.float32)
    key = lambda t: sorted(map(tuple, t.flatten(1).tolist()))  # noqa: E731
    assert key(ours) == key(raw)


def test_digits_resizing_is_bilinear_of_the_scan():
    small, big = load_digits(8), load_digits(24)
    raw = small.denormalize(small.test.tensors[0][:4])
    expected = F.interpolate(raw[:, :1], size=24, mode="bilinear", align_corners=False)
    assert torch.allclose(big.denormalize(big.test.tensors[0][:4])[:, :1], expected.clamp(0, 1), atol=1e-5)


def test_digits_rejects_bad_sizes():
    with pytest.raises(ValueError, match="image_size=4"):
        load_digits(4)
    with pytest.raises(ValueError, match="test_fraction=1.5"):
        load_digits(16, test_fraction=1.5)


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="cifar10, cifar100, digits"):
        load_data("imagenet")


# ------------------------------------------------------------------------------- CIFAR
def _no_network(monkeypatch):
    def refuse(self):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", refuse)


def test_missing_cifar_says_what_was_tried_and_how_to_fix(tmp_path, monkeypatch):
    _no_network(monkeypatch)
    with pytest.raises(FileNotFoundError) as info:
        load_data("cifar10", tmp_path)
    message = str(info.value)
    for part in ["cifar-10-batches-py", str(tmp_path), "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                 "no network in this test", "allow_offline=True"]:
        assert part in message
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_cifar("cifar100", tmp_path, download=False)


def test_offline_fallback_only_when_allowed_and_says_so(tmp_path, monkeypatch):
    _no_network(monkeypatch)
    d = load_data("cifar10", tmp_path, allow_offline=True)
    assert d.name == "digits" and d.title == "digits (offline)"
    assert "offline fallback" in d.note and "cifar10 is not available" in d.note
    assert len(d.train) == 1437  # real digits, never random stand-ins


@pytest.fixture
def fake_cifar_root(tmp_path, monkeypatch):
    """A tiny folder in CIFAR-10's own format (torchvision reads it; md5 checks switched off)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    return tmp_path


def test_cifar_read_from_root_with_normalised_test_images(fake_cifar_root):
    d = load_cifar("cifar10", fake_cifar_root, download=False)
    assert d.name == "cifar10" and d.num_classes == 10 and "read from" in d.note
    assert (len(d.train), len(d.test)) == (20, 4)
    x, y = d.test[0]
    raw = torch.as_tensor(d.test.data[0]).permute(2, 0, 1).float() / 255
    assert x.shape == (3, 32, 32) and y == 0
    torch.testing.assert_close(d.denormalize(x), raw)  # the test images are not augmented
    torch.testing.assert_close(x[0], (raw[0] - 0.4914) / 0.2470)


def test_cifar_training_augmentation_is_pad_crop_and_flip(fake_cifar_root):
    d = load_cifar("cifar10", fake_cifar_root, download=False)
    raw = torch.as_tensor(d.train.data[0]).permute(2, 0, 1).float() / 255
    padded = F.pad(raw, (4, 4, 4, 4))
    candidates = [
        view
        for dy in range(9)
        for dx in range(9)
        for view in (padded[:, dy:dy + 32, dx:dx + 32], padded[:, dy:dy + 32, dx:dx + 32].flip(-1))
    ]
    torch.manual_seed(0)
    samples = [d.denormalize(d.train[0][0]) for _ in range(20)]
    for s in samples:  # every augmented view is one shift of the padded image, maybe mirrored
        assert min((s - c).abs().max().item() for c in candidates) < 1e-5
    assert len({tuple(s.flatten()[:64].tolist()) for s in samples}) > 1  # and they differ


# ------------------------------------------------------------------------------- loaders
def test_loaders_batch_and_drop_the_last_partial_batch(digits):
    train, test = make_loaders(digits, 100)
    assert len(train) == 1437 // 100 and all(len(y) == 100 for _, y in train)
    assert sum(len(y) for _, y in test) == 360
    assert train.num_workers == 0 and not train.pin_memory  # in-memory tensors on CPU


def test_loaders_shard_exactly_across_processes(digits):
    seen_test, seen_train = [], []
    for rank in range(3):
        train, test = make_loaders(digits, 16, rank=rank, world_size=3, seed=5)
        train.sampler.set_epoch(1)
        seen_train.append(set(train.sampler))
        seen_test += [i for i in test.dataset.indices]
    assert sorted(seen_test) == list(range(360))  # every test image exactly once
    assert not (seen_train[0] & seen_train[1]) and not (seen_train[1] & seen_train[2])


def test_loader_settings_suit_the_device(digits, fake_cifar_root):
    assert data.default_workers(digits, "cuda") == 0  # tensors in memory: workers would only copy
    cifar = load_cifar("cifar10", fake_cifar_root, download=False)
    train, _ = make_loaders(cifar, 4, "cuda")  # building a loader needs no GPU
    assert train.pin_memory and train.num_workers >= 1 and train.persistent_workers
    cpu_train, _ = make_loaders(cifar, 4, "cpu")
    assert not cpu_train.pin_memory and cpu_train.num_workers <= train.num_workers


def test_batch_larger_than_the_data_is_refused(digits):
    with pytest.raises(ValueError, match="batch_size=5000"):
        make_loaders(digits, 5000)


# ------------------------------------------------------------------------------- Fashion-MNIST
def _idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in the IDX format of the MNIST files."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_fashion(folder, n_train=40, n_test=20, gz=True, seed=0):
    """Four tiny files in Fashion-MNIST's format; returns the arrays written."""
    import gzip

    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        raw = _idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


@pytest.fixture
def no_fashion_anywhere(tmp_path, monkeypatch):
    """No system copy, no network: only what a test writes exists."""
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")

    def refuse(self):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", refuse)
    return tmp_path


def test_fashion_read_from_the_system_folder(no_fashion_anywhere):
    arrays = _write_fashion(no_fashion_anywhere / "system")
    d = load_data("fashion-mnist", no_fashion_anywhere / "root")
    assert d.name == "fashion-mnist" and d.title == "Fashion-MNIST" and d.num_classes == 10
    assert "dataset-fashion-mnist" in d.note and (len(d.train), len(d.test)) == (40, 20) and d.route == "read"
    x, y = d.test[3]
    assert x.shape == (3, 28, 28) and int(y) == 3 and torch.equal(x[0], x[2])
    raw = torch.as_tensor(arrays["t10k-images-idx3-ubyte"][3], dtype=torch.float32) / 255
    torch.testing.assert_close(d.denormalize(x)[0], raw)  # the real pixels, normalised with train stats
    train = d.train.tensors[0]
    assert abs(train.mean().item()) < 1e-4 and abs(train.std().item() - 1) < 1e-3


def test_fashion_torchvision_folder_comes_first(no_fashion_anywhere):
    _write_fashion(no_fashion_anywhere / "system", n_train=30)
    _write_fashion(no_fashion_anywhere / "root" / "FashionMNIST" / "raw", n_train=50, gz=False)
    d = load_data("fashion-mnist", no_fashion_anywhere / "root")
    assert len(d.train) == 50 and "torchvision's folder" in d.note


def test_fashion_download_is_the_third_route(no_fashion_anywhere, monkeypatch):
    def fake_download(self):  # what torchvision's download leaves behind, without a network
        _write_fashion(no_fashion_anywhere / "root" / "FashionMNIST" / "raw", n_train=60)

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", fake_download)
    d = load_data("fashion-mnist", no_fashion_anywhere / "root")
    assert len(d.train) == 60 and "downloaded to" in d.note and d.route == "download"


def test_fashion_missing_everywhere_names_all_three_routes(no_fashion_anywhere):
    root = no_fashion_anywhere / "root"
    with pytest.raises(FileNotFoundError) as info:
        load_data("fashion-mnist", root)
    message = str(info.value)
    for part in ["(1) torchvision's folder", str(root / "FashionMNIST" / "raw"), "(2) Debian's dataset-fashion-mnist",
                 str(no_fashion_anywhere / "system"), "(3) torchvision's download", "no network in this test",
                 "apt-get install dataset-fashion-mnist", "allow_offline=True"]:
        assert part in message, part
    with pytest.raises(FileNotFoundError, match="download=False"):
        data.load_fashion_mnist(root, download=False)
    fallback = load_data("fashion-mnist", root, allow_offline=True)
    assert fallback.name == "digits" and "Fashion-MNIST is not available" in fallback.note
    assert fallback.route == "offline-fallback" and load_data("digits").route == "builtin"


def test_fashion_corrupt_or_missing_file_is_named(no_fashion_anywhere):
    system = no_fashion_anywhere / "system"
    _write_fashion(system)
    truncated = system / "t10k-images-idx3-ubyte.gz"
    truncated.write_bytes(truncated.read_bytes()[:50])
    with pytest.raises(FileNotFoundError) as info:
        load_data("fashion-mnist", no_fashion_anywhere / "root")
    assert str(truncated) in str(info.value) and "corrupt or truncated" in str(info.value)
    truncated.unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte\\[.gz\\] is missing"):
        load_data("fashion-mnist", no_fashion_anywhere / "root")


def test_fashion_short_idx_file_is_refused(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        data._read_idx(path)
    path.write_bytes(b"not an idx file at all")
    with pytest.raises(ValueError, match="wrong header"):
        data._read_idx(path)


def test_fashion_subsets_and_resizing_are_fixed(no_fashion_anywhere):
    _write_fashion(no_fashion_anywhere / "system")
    a = data.load_fashion_mnist(no_fashion_anywhere / "root", image_size=14, train_size=10, test_size=5)
    b = data.load_fashion_mnist(no_fashion_anywhere / "root", image_size=14, train_size=10, test_size=5)
    assert (len(a.train), len(a.test), a.image_size) == (10, 5, 14)
    assert a.train[0][0].shape == (3, 14, 14) and torch.equal(a.train.tensors[0], b.train.tensors[0])
    with pytest.raises(ValueError, match="train_size=41"):
        data.load_fashion_mnist(no_fashion_anywhere / "root", train_size=41)
    with pytest.raises(ValueError, match="image_size=4"):
        data.load_fashion_mnist(no_fashion_anywhere / "root", image_size=4)


@pytest.mark.skipif(not data.FASHION_MNIST_SYSTEM_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_the_installed_fashion_mnist_is_the_real_one(tmp_path):
    d = data.load_fashion_mnist(tmp_path, image_size=28, test_size=1000)
    assert len(d.train) == 60_000 and len(d.test) == 1000
    assert abs(d.mean[0] - 0.2860) < 1e-3 and abs(d.std[0] - 0.3530) < 1e-3  # its published statistics
    assert Counter(d.train.tensors[1].tolist()) == {c: 6000 for c in range(10)}


# ----------------------------------------------------------------------- the Korean edition
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _korean_note_keeps_the_numbers(d):
    """``note_ko`` is Korean and holds exactly the numbers (and paths) of ``note``."""
    assert re.search("[가-힣]", d.note_ko), d.note_ko
    assert sorted(NUMBER.findall(d.note_ko)) == sorted(NUMBER.findall(d.note)), (d.note, d.note_ko)


def test_digits_note_and_title_in_korean(digits):
    assert digits.note_ko == "digits: 학습 1437장 / 테스트 360장, scikit-learn의 실제 8x8 스캔, 16x16 크기로 조정"
    assert digits.title_in("ko") == "손글씨 숫자(오프라인)"
    assert digits.title_in() == digits.title == "digits (offline)"
    _korean_note_keeps_the_numbers(digits)
    with pytest.raises(ValueError, match="language"):
        digits.title_in("fr")


def test_offline_fallback_says_so_in_korean(tmp_path, monkeypatch, digits):
    _no_network(monkeypatch)
    d = load_data("cifar10", tmp_path, allow_offline=True)
    assert d.note_ko.startswith(f"{digits.note_ko} (오프라인 대체, 원인: ")
    assert d.note_ko.split(" (오프라인")[0] == digits.note_ko  # what chapter 8 pastes
    assert "cifar10 is not available" in d.note_ko
    _korean_note_keeps_the_numbers(d)


def test_cifar_note_in_korean(fake_cifar_root):
    d = load_cifar("cifar10", fake_cifar_root, download=False)
    assert d.note_ko == f"cifar10: {fake_cifar_root}에서 읽음" and d.title_in("ko") == "CIFAR-10"
    _korean_note_keeps_the_numbers(d)


def test_fashion_notes_in_korean_name_the_route(no_fashion_anywhere, monkeypatch):
    system = no_fashion_anywhere / "system"
    _write_fashion(system)
    d = data.load_fashion_mnist(no_fashion_anywhere / "root", image_size=16)
    assert d.note_ko == (f"fashion-mnist: 학습 40장 / 테스트 20장, 실제 28x28 사진, "
                         f"{system}(Debian의 dataset-fashion-mnist)에서 읽음, 16x16 크기로 조정")
    assert d.title_in("ko") == d.title == "Fashion-MNIST"
    _korean_note_keeps_the_numbers(d)
    raw = no_fashion_anywhere / "root" / "FashionMNIST" / "raw"
    _write_fashion(raw, n_train=1200)
    d = data.load_fashion_mnist(no_fashion_anywhere / "root")
    assert "학습 1,200장 / 테스트 20장" in d.note_ko and f"{raw}(torchvision의 폴더)에서 읽음" in d.note_ko
    _korean_note_keeps_the_numbers(d)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / f"{name}.gz").unlink()
    (system / "train-images-idx3-ubyte.gz").unlink()

    def fake_download(self):
        _write_fashion(raw, n_train=60)

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", fake_download)
    d = data.load_fashion_mnist(no_fashion_anywhere / "root")
    assert d.route == "download" and f"{raw}에 내려받음" in d.note_ko
    _korean_note_keeps_the_numbers(d)
