"""DIV2K download, offline: a local HTTP server on 127.0.0.1 serves small fake zips in the real layout."""
import hashlib
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from lib import config, data
from lib.data import DataError


def fake_zip(top: str, numbers) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for n in numbers:
            image = io.BytesIO()
            Image.fromarray(np.full((260, 300, 3), n % 256, dtype=np.uint8)).save(image, format="PNG")
            bundle.writestr(f"{top}/{n:04d}.png", image.getvalue())
    return buffer.getvalue()


TRAIN = fake_zip(data.DIV2K_TRAIN, range(1, 801))
VALID = fake_zip(data.DIV2K_VALID, range(801, 901))


class Server:
    """Serves `files` with Range support; `cut_after` bytes of the first request for a file, then drops it."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests, self.cut_after = files, [], {}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                owner.requests.append((self.path, self.headers.get("Range")))
                if name not in owner.files:
                    self.send_error(404)
                    return
                body = owner.files[name]
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                limit = owner.cut_after.pop(name, None)
                self.wfile.write(body[start:] if limit is None else body[start : start + limit])
                if limit is not None:
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection dies mid-file

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/div2k"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server({"DIV2K_train_HR.zip": TRAIN, "DIV2K_valid_HR.zip": VALID})
    yield s
    s.close()


def settings(tmp_path, mirrors, train=TRAIN, valid=VALID):
    spec = lambda body: {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return {**config.resolve("paper")["data"], "div2k_dir": "", "download_dir": str(tmp_path / "div2k"),
            "mirrors": mirrors, "archives": {"DIV2K_train_HR.zip": spec(train), "DIV2K_valid_HR.zip": spec(valid)}}


def test_full_download_gives_the_studys_split(tmp_path, server):
    entries = data.make_split(settings(tmp_path, [server.url]), 42)
    assert data.split_counts(entries) == {"train": 640, "val": 160, "test": 100}
    root = tmp_path / "div2k"
    assert len(list((root / data.DIV2K_TRAIN).glob("*.png"))) == 800
    assert not list(root.glob(".extract-*")) and not list(root.glob("*.partial"))
    again = data.make_split(settings(tmp_path, [server.url]), 42)  # no second download
    assert again == entries and len(server.requests) == 2


def test_a_cut_connection_resumes_where_it_stopped(tmp_path, server):
    server.cut_after["DIV2K_train_HR.zip"] = len(TRAIN) // 3
    first = settings(tmp_path, [server.url])
    with pytest.raises(DataError, match="could not download DIV2K_train_HR.zip"):
        data.make_split(first, 42)
    partial = tmp_path / "div2k" / "DIV2K_train_HR.zip.partial"
    assert partial.stat().st_size == len(TRAIN) // 3
    data.make_split(first, 42)
    assert server.requests[-2] == ("/div2k/DIV2K_train_HR.zip", f"bytes={len(TRAIN) // 3}-")
    assert (tmp_path / "div2k" / "DIV2K_train_HR.zip").read_bytes() == TRAIN


def test_the_next_mirror_is_tried(tmp_path, server):
    dead = "http://127.0.0.1:9/nothing"  # discard port: connection refused
    assert data.split_counts(data.make_split(settings(tmp_path, [dead, server.url]), 42))["test"] == 100


def test_checksum_mismatch_sets_the_file_aside(tmp_path, server):
    wrong = settings(tmp_path, [server.url])
    wrong["archives"]["DIV2K_valid_HR.zip"]["sha256"] = "0" * 64
    with pytest.raises(DataError, match="wrong sha256.*set aside as DIV2K_valid_HR.zip.partial.bad-1"):
        data.make_split(wrong, 42)
    root = tmp_path / "div2k"
    assert (root / "DIV2K_valid_HR.zip.partial.bad-1").read_bytes() == VALID  # kept, never deleted
    assert not (root / data.DIV2K_VALID).exists() and not (root / "DIV2K_valid_HR.zip").exists()


def test_truncated_archive_is_refused_and_nothing_half_extracted(tmp_path, server):
    root = tmp_path / "div2k"
    root.mkdir()
    (root / "DIV2K_train_HR.zip").write_bytes(TRAIN[: len(TRAIN) // 2])  # a user's half-copied zip
    with pytest.raises(DataError, match=r"has \d+ bytes, expected \d+ \(truncated\?\); set aside"):
        data.make_split(settings(tmp_path, [server.url]), 42)
    assert (root / "DIV2K_train_HR.zip.bad-1").exists() and not (root / data.DIV2K_TRAIN).exists()


def test_a_corrupt_zip_with_the_right_checksum_is_not_extracted(tmp_path):
    broken = bytearray(TRAIN)
    broken[len(broken) // 2 : len(broken) // 2 + 4096] = b"\0" * 4096
    broken = bytes(broken)
    s = Server({"DIV2K_train_HR.zip": broken, "DIV2K_valid_HR.zip": VALID})
    try:
        with pytest.raises(DataError, match="not a readable zip"):
            data.make_split(settings(tmp_path, [s.url], train=broken), 42)
    finally:
        s.close()
    root = tmp_path / "div2k"
    assert not (root / data.DIV2K_TRAIN).exists() and not list(root.glob(".extract-*"))


def test_div2k_dir_is_used_without_any_request(tmp_path, server):
    for name, body in ((data.DIV2K_TRAIN, TRAIN), (data.DIV2K_VALID, VALID)):
        zipfile.ZipFile(io.BytesIO(body)).extractall(tmp_path / "mine")
    own = {**settings(tmp_path, [server.url]), "div2k_dir": str(tmp_path / "mine")}
    assert data.split_counts(data.make_split(own, 42)) == {"train": 640, "val": 160, "test": 100}
    assert server.requests == []


def test_offline_with_no_data_says_what_to_download_and_where(tmp_path):
    with pytest.raises(DataError, match=r"(?s)could not download DIV2K_train_HR.zip.*Download it by hand from .*DIV2K_train_HR.zip.*DIV2K_DIR"):
        data.make_split(settings(tmp_path, ["http://127.0.0.1:9/div2k"]), 42)
