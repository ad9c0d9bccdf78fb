"""The MNIST digits bundled in ``matconvnet/data/bundled`` and their loader."""
import numpy as np
import pytest

from matconvnet.data import load_mnist

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # digits 0..9


@pytest.fixture(scope="module", params=["train", "test"])
def split(request):
    return request.param, load_mnist(request.param)


def test_shapes_and_dtypes(split):
    name, (images, labels) = split
    n = 5000 if name == "train" else 10000
    assert images.shape == (n, 1, 28, 28)
    assert images.dtype == np.float32
    assert labels.shape == (n,)
    assert labels.dtype == np.int64


def test_pixel_range(split):
    _, (images, _) = split
    assert images.min() == 0 and images.max() == 255
    assert np.array_equal(images, np.round(images))      # raw 8-bit intensities
    # Digits are ink on a dark background: the border is background.
    assert images[:, :, 0, :].mean() < 1 and images.mean() > 20


def test_labels_are_one_based(split):
    _, (_, labels) = split
    assert labels.min() == 1 and labels.max() == 10
    assert set(np.unique(labels)) == set(range(1, 11))


def test_train_split_is_balanced_and_sorted():
    _, labels = load_mnist("train")
    assert np.bincount(labels, minlength=11)[1:].tolist() == [500] * 10
    assert np.all(np.diff(labels) >= 0)                  # the file is sorted by class


def test_test_split_is_the_canonical_mnist_test_set():
    images, labels = load_mnist("test")
    assert np.bincount(labels - 1, minlength=10).tolist() == TEST_COUNTS
    assert (labels[:10] - 1).tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # Image 0 is a 7: a horizontal bar near the top, a stroke down the middle.
    seven = images[0, 0] > 128
    assert seven[7:10].sum() > 20 and seven[20:27, 10:15].sum() > 5


def test_splits_are_disjoint():
    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    a = {r.tobytes() for r in train.astype(np.uint8).reshape(len(train), -1)}
    b = {r.tobytes() for r in test.astype(np.uint8).reshape(len(test), -1)}
    assert not a & b


def test_fresh_arrays_each_call():
    a, _ = load_mnist("test")
    a[0] = -1
    b, _ = load_mnist("test")
    assert b[0].min() == 0


@pytest.mark.parametrize("bad", ["val", "", None, 3])
def test_bad_split(bad):
    with pytest.raises(ValueError, match="split: expected one of train, test"):
        load_mnist(bad)
