from pathlib import Path

import pytest
import yaml

from person_cluster.config import Config, ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def test_default_yaml_documents_the_code_defaults():
    assert load_config(REPO / "configs" / "default.yaml") == Config()


def test_every_shipped_config_loads():
    for path in (REPO / "configs").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and set(data) <= set(Config().to_dict()):
            load_config(path)


def test_overrides_are_parsed_as_yaml_and_validated():
    c = load_config(None, ["clustering.distance_threshold=0.5", "postprocess.merge_face_threshold=null",
                           "cloth.enabled=false", "runtime.workers=2"])
    assert c.clustering.distance_threshold == 0.5
    assert c.postprocess.merge_face_threshold is None
    assert c.cloth.enabled is False and c.runtime.workers == 2


@pytest.mark.parametrize(
    "override, message",
    [
        ("clustering.distance_treshold=0.5", "unknown key"),
        ("clusterin.distance_threshold=0.5", "unknown section"),
        ("clustering.distance_threshold=abc", "must be a number"),
        ("clustering.distance_threshold=-1", "must be > 0"),
        ("sampling.mode=shots", "interval' or 'scene"),
        ("runtime.workers=1.5", "must be an integer"),
        ("cloth.enabled=1", "true or false"),
        ("fusion.face_weight=null", "may not be null"),
        ("detection.photo_border=-0.1", "detection.photo_border: must be 0..2"),
        ("detection.photo_border=2.5", "detection.photo_border: must be 0..2"),
        ("novalue", "section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_yaml_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("clustering: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("detection:\n  upsampel: 1\n")
    with pytest.raises(ConfigError, match="detection.upsampel: unknown key"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_extraction_dict_excludes_clustering_settings():
    a = Config()
    b = a.with_overrides(["clustering.distance_threshold=0.3", "fusion.cloth_weight=0.0"])
    assert a.extraction_dict() == b.extraction_dict()
    assert a.extraction_dict() != a.with_overrides(["detection.upsample=0"]).extraction_dict()
    # Marked per field: whole extraction sections, and the output settings applied while extracting.
    from person_cluster.config import EXTRACTION_KEYS

    assert {k for k in EXTRACTION_KEYS if k.startswith("output.")} == {
        "output.crop_margin", "output.crop_max_side", "output.jpeg_quality", "output.save_frames"}
    assert "detection.model" in EXTRACTION_KEYS and "runtime.workers" not in EXTRACTION_KEYS
    assert a.extraction_dict() != a.with_overrides(["output.crop_margin=1.0"]).extraction_dict()
    assert a.extraction_dict() == a.with_overrides(["output.montage_cell=64"]).extraction_dict()


def test_every_user_error_shares_one_base_class_and_keeps_its_builtin_type():
    from person_cluster import PersonClusterError
    from person_cluster.api import RunError
    from person_cluster.cache import CacheError
    from person_cluster.config import ConfigError
    from person_cluster.evaluation import TruthError
    from person_cluster.models import ModelError
    from person_cluster.pipeline import ExtractionError
    from person_cluster.sampling import InputError

    for cls, builtin in ((ConfigError, ValueError), (TruthError, ValueError), (RunError, RuntimeError),
                         (CacheError, RuntimeError), (ModelError, RuntimeError), (ExtractionError, RuntimeError),
                         (InputError, Exception)):
        assert issubclass(cls, PersonClusterError) and issubclass(cls, builtin), cls


def test_an_outs_stored_config_reads_a_setting_added_since_as_it_was_extracted():
    """An OUT written before cloth.colour stored a whole config without it: its clothing was the CNN's alone. A
    config file that leaves the key out is not such a dump and gets the default."""
    stored = Config().to_dict()
    del stored["cloth"]["colour"]
    assert Config.from_stored(stored).cloth.colour is False
    assert Config.from_dict(stored).cloth.colour is True
    assert Config.from_stored(Config().to_dict()).cloth.colour is True  # a recorded value is kept
    assert Config.from_stored(None) == Config()
    assert "colour" not in stored["cloth"]  # the caller's dict is left as it was


def test_face_flip_names_whose_mirror_image_is_described_and_reads_older_booleans():
    """face.flip was a boolean (every face or none): an OUT's stored config, an old config file and the record in
    an old cache read true as all and false as none, so that an add extracts new inputs as the OUT's were."""
    from person_cluster.cache import _same_settings

    assert Config().face.flip == "photos"
    assert [Config().face.mirrors(photo=p) for p in (True, False)] == [True, False]
    every = Config().with_overrides({"face.flip": "all"}).face
    assert every.mirrors(photo=False) and every.mirrors(photo=True)
    none = Config().with_overrides(["face.flip=false"]).face
    assert none.flip == "none" and not none.mirrors(photo=True)
    assert Config.from_stored({"face": {"flip": True}}).face.flip == "all"
    stored = Config().to_dict()
    del stored["face"]["flip"]  # an OUT written before the key existed had no mirror images
    assert Config.from_stored(stored).face.flip == "none"
    old = {**Config().extraction_dict(), "face": {**Config().extraction_dict()["face"], "flip": False}}
    current = Config().with_overrides({"face.flip": "none"}).extraction_dict()
    assert _same_settings(old, current) and not _same_settings(old, Config().extraction_dict())
    assert old["face"]["flip"] is False  # the stored record is read, not rewritten
    with pytest.raises(ConfigError, match="face.flip"):
        Config().with_overrides({"face.flip": "photo"})
