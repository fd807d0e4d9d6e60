"""The CNNs are exported to ONNX once and cached; a damaged cache or one that cannot be written must cost only an
export, never a wrong network or a failed run."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from person_cluster.embedding.onnx_export import cnn_session


def _builder(calls: list[int], scale: float = 2.0):
    def build():
        import torch

        calls.append(1)
        module = torch.nn.Conv2d(3, 4, 3, padding=1)
        with torch.no_grad():
            module.weight.fill_(scale)
            module.bias.zero_()
        return module.eval(), torch.zeros(1, 3, 8, 8), {0: "n", 2: "h", 3: "w"}

    return build


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "person_cluster"


def _run(session, n: int = 2, side: int = 5) -> np.ndarray:
    return session.run(None, {"input": np.ones((n, 3, side, side), np.float32)})[0]


def test_exported_once_then_loaded(cache):
    calls: list[int] = []
    first = _run(cnn_session("toy", ("a",), _builder(calls), 1))
    again = _run(cnn_session("toy", ("a",), _builder(calls), 1))
    assert calls == [1]  # the second session came from the cache
    assert first.shape == (2, 4, 5, 5) and first[0, 0, 2, 2] == pytest.approx(2.0 * 27)  # dynamic batch and sides
    assert np.array_equal(first, again)
    assert len(list(cache.glob("toy-*.onnx"))) == len(list(cache.glob("toy-*.sha256"))) == 1
    cnn_session("toy", ("b",), _builder(calls, 3.0), 1)  # other weights: another key, another file
    assert calls == [1, 1] and len(list(cache.glob("toy-*.onnx"))) == 2


def test_a_damaged_or_altered_cache_file_is_exported_again(cache, caplog):
    calls: list[int] = []
    expected = _run(cnn_session("toy", ("a",), _builder(calls), 1))
    (path,) = cache.glob("toy-*.onnx")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        got = _run(cnn_session("toy", ("a",), _builder(calls), 1))
    assert calls == [1, 1] and "damaged or altered" in caplog.text
    assert np.array_equal(got, expected)
    path.with_suffix(".sha256").unlink()  # a file without its hash is not trusted either
    cnn_session("toy", ("a",), _builder(calls), 1)
    assert calls == [1, 1, 1]


def test_a_cache_that_cannot_be_written_costs_an_export_per_run(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    calls: list[int] = []
    for _ in range(2):
        assert _run(cnn_session("toy", ("a",), _builder(calls), 1)).shape == (2, 4, 5, 5)
    assert calls == [1, 1]


def test_a_network_the_exporter_cannot_express_is_one_clear_error(cache):
    from person_cluster.models import ModelError

    def build():
        import torch

        class Svd(torch.nn.Module):  # no ONNX operator for it
            def forward(self, x):
                return torch.linalg.svd(x[0, 0]).S

        return Svd(), torch.ones(1, 3, 4, 4), {0: "n"}

    with pytest.raises(ModelError, match="cannot export the odd network"):
        cnn_session("odd", ("a",), build, 1)
