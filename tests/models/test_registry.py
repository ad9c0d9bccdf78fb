"""matconvnet.models.registry: the published models, pretrained() and download().

The registry is checked against FEATURES.md section 7 (names, wrappers, input sizes,
accuracies, MD5s) when ../shared is present.  pretrained() is exercised on small model
files written here (registered under a published name with their own MD5 patched in),
download() against a loopback HTTP server (threads) that can honour or ignore ``Range``,
cut a transfer short, or serve corrupt bytes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import re
import threading
from pathlib import Path

import pytest
import torch

import matconvnet.io as mio
from matconvnet.dagnn import DagNN
from matconvnet.models import registry as R
from matconvnet.models import (PRETRAINED, ChecksumError, DownloadError, ModelNotFoundError,
                               UnknownModelError, cnn_mnist_init, download, pretrained)

FEATURES = Path(__file__).resolve().parents[3] / "shared" / "FEATURES.md"


# ----------------------------------------------------------------------------- the registry

def test_registry_has_the_27_published_models_and_the_shipped_one():
    published = [m for m in PRETRAINED.values() if not m.shipped]
    assert len(published) == 27
    assert [m.name for m in PRETRAINED.values() if m.shipped] == ["squeezenet1_0"]
    for m in published:
        assert re.fullmatch(r"[0-9a-f]{32}", m.md5), m.name
        assert m.url == "http://www.vlfeat.org/matconvnet/models/" + m.name + ".mat"
        assert m.wrapper == ("dagnn" if m.name.endswith(("-dag", "-dagnn")) else "simplenn")
        assert m.accuracy
    assert PRETRAINED["squeezenet1_0"].md5 is None and PRETRAINED["squeezenet1_0"].url is None
    assert PRETRAINED["vgg-face"].accuracy == "not published"


def _features_rows():
    if not FEATURES.is_file():
        pytest.skip(f"{FEATURES} not present")
    text = FEATURES.read_text()
    return [[c.strip() for c in line.split("|")[1:-1]]
            for line in text.splitlines() if re.match(r"^\| \[ \] \| P-\d\d \|", line)]


def test_registry_agrees_with_features_md():
    rows = _features_rows()
    assert len(rows) == 27
    for _, _, file, task, wrapper, size, accuracy, speed, md5 in rows:
        m = PRETRAINED[file.strip("`")]
        assert m.md5 == md5
        assert m.wrapper == wrapper.rstrip("~").lower()
        assert ("wrapper" in m.inferred) == wrapper.endswith("~")
        numbers = [float(x) for x in re.findall(r"\d+\.\d+", accuracy)]
        if numbers:
            assert list(m.metrics.values()) == numbers[:len(m.metrics)]
        if speed != "—":
            assert m.images_per_second == float(speed)
        if size[:3].isdigit():
            assert m.input_size == (int(size[:3]), int(size[:3]), 3)
        else:
            assert m.input_size is None


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownModelError, match=r"'imagenet-vgg-ff'.*imagenet-vgg-f"):
        pretrained("imagenet-vgg-ff")
    with pytest.raises(TypeError, match="name"):
        pretrained(3)


def test_cache_dir_follows_matconvnet_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MATCONVNET_HOME", str(tmp_path))
    assert R.cache_dir() == tmp_path / "models"
    monkeypatch.delenv("MATCONVNET_HOME")
    assert R.cache_dir() == Path.home() / ".cache" / "matconvnet" / "models"


# ----------------------------------------------------------------------------- pretrained()

@pytest.fixture
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("MATCONVNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "models"


def _register(monkeypatch, name: str, path: Path):
    """Give the registered model ``name`` the MD5 of ``path``."""
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(PRETRAINED, name, dataclasses.replace(PRETRAINED[name], md5=md5))


def test_missing_file_says_where_to_download_it(home):
    with pytest.raises(ModelNotFoundError) as e:
        pretrained("imagenet-vgg-f")
    msg = str(e.value)
    assert str(home / "imagenet-vgg-f.mat") in msg
    assert "http://www.vlfeat.org/matconvnet/models/imagenet-vgg-f.mat" in msg
    assert "matconvnet download imagenet-vgg-f" in msg


def test_checksum_mismatch_is_rejected(home):
    home.mkdir(parents=True)
    (home / "imagenet-vgg-f.mat").write_bytes(b"not the model")
    with pytest.raises(ChecksumError) as e:
        pretrained("imagenet-vgg-f")
    msg = str(e.value)
    assert "3513562d28089bd965cc050cbf8597a6" in msg and "imagenet-vgg-f" in msg
    assert hashlib.md5(b"not the model").hexdigest() in msg
    assert "matconvnet download imagenet-vgg-f" in msg


def test_loads_simplenn_from_cache_folder_or_path(home, monkeypatch, tmp_path):
    net = cnn_mnist_init(batch_normalization=False, seed=0)
    home.mkdir(parents=True)
    f = home / "imagenet-vgg-f.mat"
    mio.save(f, net)
    _register(monkeypatch, "imagenet-vgg-f", f)
    loaded = pretrained("imagenet-vgg-f")
    assert [l["type"] for l in loaded["layers"]] == [l["type"] for l in net["layers"]]
    torch.testing.assert_close(loaded["layers"][0]["weights"][0], net["layers"][0]["weights"][0])
    # path: the file itself, or a folder holding it
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "imagenet-vgg-f.mat").write_bytes(f.read_bytes())
    assert len(pretrained("imagenet-vgg-f.mat", path=other)["layers"]) == len(net["layers"])
    assert len(pretrained("imagenet-vgg-f", path=other / "imagenet-vgg-f.mat")["layers"]) \
        == len(net["layers"])
    with pytest.raises(ModelNotFoundError, match="--dest"):
        pretrained("imagenet-vgg-f", path=tmp_path / "nowhere.mat")


def test_loads_dagnn_and_skips_verification_on_request(home, monkeypatch):
    dag = DagNN.from_simplenn(cnn_mnist_init(batch_normalization=False, seed=0))
    home.mkdir(parents=True)
    f = home / "imagenet-googlenet-dag.mat"
    mio.save_dagnn(f, dag)
    with pytest.raises(ChecksumError):
        pretrained("imagenet-googlenet-dag")
    net = pretrained("imagenet-googlenet-dag", verify=False)
    assert isinstance(net, DagNN) and len(net.layers) == len(dag.layers)


def test_a_file_that_is_not_a_model(tmp_path):
    f = tmp_path / "x.mat"
    mio.save(f, {"m": torch.zeros(2)})
    with pytest.raises(ValueError, match="not a MatConvNet model file"):
        R.load_model(f)


def test_shipped_squeezenet():
    path = R._PACKAGE_FOLDER / "squeezenet1_0.mat"
    if not path.is_file():
        pytest.skip(f"{path} not converted yet")
    net = pretrained("squeezenet1_0")
    meta = net.meta if isinstance(net, DagNN) else net["meta"]
    assert len(meta["classes"]["description"]) == 1000


# ----------------------------------------------------------------------------- download()

CONTENT = bytes(range(256)) * 400 + b"tail"          # 102,404 bytes
CONTENT_MD5 = hashlib.md5(CONTENT).hexdigest()


class _Server:
    """A loopback server of one file: ``honour_range``, ``cut_after`` (bytes sent before the
    connection drops, once), ``corrupt`` (flip one byte); ``requests`` records the Range
    header of every request (None when absent)."""

    def __init__(self):
        self.honour_range = True
        self.cut_after = None
        self.corrupt = False
        self.requests = []
        self.sent = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/model.mat"):
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                server.requests.append(rng)
                body = bytearray(CONTENT)
                if server.corrupt:
                    body[1000] ^= 0xFF
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and server.honour_range:
                    start = int(m.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = bytes(body[start:])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.cut_after is not None:
                    payload, server.cut_after = payload[:server.cut_after], None
                self.wfile.write(payload)
                server.sent += len(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files/model.mat"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def test_download_whole_file(server, tmp_path):
    seen = []
    path = download(server.url, tmp_path, CONTENT_MD5, progress=lambda d, t: seen.append((d, t)))
    assert path == tmp_path / "model.mat" and path.read_bytes() == CONTENT
    assert not (tmp_path / "model.mat.part").exists()
    assert server.requests == [None]
    assert seen[-1] == (len(CONTENT), len(CONTENT))
    # a file already there with the right checksum is kept: no request
    assert download(server.url, tmp_path / "model.mat", CONTENT_MD5) == path
    assert server.requests == [None]


def test_resumes_a_partial_file(server, tmp_path):
    (tmp_path / "model.mat.part").write_bytes(CONTENT[:40000])
    path = download(server.url, tmp_path / "model.mat", CONTENT_MD5)
    assert path.read_bytes() == CONTENT
    assert server.requests == ["bytes=40000-"]
    assert server.sent == len(CONTENT) - 40000


def test_interrupted_download_resumes_on_the_next_call(server, tmp_path):
    server.cut_after = 30000
    with pytest.raises(DownloadError, match="again to resume"):
        download(server.url, tmp_path, CONTENT_MD5)
    assert (tmp_path / "model.mat.part").stat().st_size == 30000
    assert not (tmp_path / "model.mat").exists()
    download(server.url, tmp_path, CONTENT_MD5)
    assert (tmp_path / "model.mat").read_bytes() == CONTENT
    assert server.requests == [None, "bytes=30000-"]


def test_server_that_ignores_range(server, tmp_path):
    server.honour_range = False
    (tmp_path / "model.mat.part").write_bytes(CONTENT[:5000])
    path = download(server.url, tmp_path, CONTENT_MD5)
    assert path.read_bytes() == CONTENT                     # not the part + the whole file
    assert server.requests == ["bytes=5000-"]


def test_corrupt_download_is_rejected(server, tmp_path):
    server.corrupt = True
    with pytest.raises(ChecksumError, match=f"rejected.*differs from the expected "
                                            f"{CONTENT_MD5}"):
        download(server.url, tmp_path, CONTENT_MD5)
    assert list(tmp_path.iterdir()) == []                   # nothing kept, no part


def test_corrupt_partial_file_is_replaced(server, tmp_path):
    (tmp_path / "model.mat.part").write_bytes(b"\x00" * 20000)  # wrong bytes
    path = download(server.url, tmp_path, CONTENT_MD5)
    assert path.read_bytes() == CONTENT
    assert server.requests == ["bytes=20000-", None]        # resumed, rejected, restarted


def test_complete_part_with_416(server, tmp_path):
    (tmp_path / "model.mat.part").write_bytes(CONTENT)
    assert download(server.url, tmp_path, CONTENT_MD5).read_bytes() == CONTENT
    assert server.requests == [f"bytes={len(CONTENT)}-"]
    # without a checksum a 416 cannot vouch for the part: the file is fetched again
    (tmp_path / "model.mat").unlink()
    (tmp_path / "model.mat.part").write_bytes(CONTENT + b"junk")
    assert download(server.url, tmp_path).read_bytes() == CONTENT
    assert server.requests[1:] == [f"bytes={len(CONTENT) + 4}-", None]


def test_download_by_name_into_the_cache(server, home, monkeypatch):
    monkeypatch.setattr(R, "BASE_URL", server.url[:-len("model.mat")])
    monkeypatch.setitem(PRETRAINED, "model", dataclasses.replace(
        PRETRAINED["imagenet-vgg-f"], name="model", md5=CONTENT_MD5))
    path = download("model")
    assert path == home / "model.mat" and path.read_bytes() == CONTENT


def test_download_errors(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(server.url.replace("model.mat", "other.mat"), tmp_path)
    with pytest.raises(ValueError, match="md5"):
        download(server.url, tmp_path, "xyz")
    with pytest.raises(ValueError, match="ships with the package"):
        download("squeezenet1_0", tmp_path)
    with pytest.raises(UnknownModelError):
        download("no-such-model", tmp_path)
    with pytest.raises(DownloadError, match="cannot connect"):
        download("http://127.0.0.1:1/model.mat", tmp_path, timeout=5)
