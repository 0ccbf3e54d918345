import pickle
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
