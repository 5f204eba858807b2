"""A model folder from someone else (awdlstm/checkpoint_check.py): every field of classifier.json, labels.json and
the config.json fields the loader reads is checked before anything is built, with a one-line error naming the
file and the field; no file it opens may lead outside the folder. The sidecars are rewritten with a valid
checksum, as a crafted folder would be: the checksum only catches accidents."""
import json
import shutil

import pytest
from run_scripts import SAMPLE, TINY, fails, train_tiny_classifier

from awdlstm import checkpoint
from awdlstm.predict import load_classifier
from awdlstm.tokenizers.atomic import CHECKSUM_KEY, with_checksum

pytestmark = pytest.mark.usefixtures("no_plots")


@pytest.fixture(scope="module")
def clas(tmp_path_factory):
    return train_tiny_classifier(tmp_path_factory.mktemp("folder"))


def edit(path, change):
    """Apply `change` to the JSON object in `path` and save it with a fresh checksum."""
    obj = json.loads(path.read_text())
    obj.pop(CHECKSUM_KEY, None)
    change(obj)
    path.write_text(json.dumps(with_checksum(obj)))


def setter(*keys, value=None, delete=False):
    def change(obj):
        for k in keys[:-1]:
            obj = obj[k]
        if delete:
            del obj[keys[-1]]
        else:
            obj[keys[-1]] = value
    return change


SIDECAR = [  # (change of classifier.json, the field named, words of the error)
    (setter("kind", value="bogus"), "kind", "must be one of"),
    (setter("vocab_sz", value="864"), "vocab_sz", "must be a whole number"),
    (setter("vocab_sz", value=0), "vocab_sz", "must be >= 1"),
    (setter("vocab", value=["a", "b"]), "vocab", "must hold vocab_sz"),
    (setter("vocab", value=[1, 2]), "vocab", "must be a list of strings"),
    (setter("sha256", value="../../etc"), "sha256", "64 hexadecimal digits"),
    (setter("config", value=[16, 32]), "config", "must be a JSON object"),
    (setter("config", "emb_sz", value=0), "config.emb_sz", "must be >= 1"),
    (setter("config", "emb_sz", value=16.0), "config.emb_sz", "must be a whole number"),
    (setter("config", "emb_sz", value=4_000_000), "config.emb_sz", "is 4000000 but the weights have 16"),
    (setter("config", "n_layers", value=3), "config.n_layers", "is 3 but the weights have 2"),
    (setter("config", "n_hid", value=4096), "config.n_hid", "is 4096 but the weights have 32"),
    (setter("config", "pad_token", value=10**9), "config.pad_token", "below vocab_sz"),
    (setter("config", "hidden_p", value=1.5), "config.hidden_p", "in [0, 1)"),
    (setter("config", "drop_mult", value=3.0), "config.input_p * drop_mult", "in [0, 1)"),
    (setter("config", "drop_mult", value=float("nan")), "config.drop_mult", "a number >= 0"),
    (setter("config", "tie_weights", value="yes"), "config.tie_weights", "true or false"),
    (setter("config", "rm_rf", value=1), "config.rm_rf", "is not a field of AWDLSTMConfig"),
    (setter("config", "n_hid", delete=True), "config.n_hid", "is missing"),
    (setter("classifier", value=None), "classifier", "must be a JSON object"),
    (setter("classifier", "n_class", value="2"), "classifier.n_class", "must be a whole number"),
    (setter("classifier", "lin_ftrs", value=[60]), "classifier.lin_ftrs", "is [60] but the weights have [50]"),
    (setter("classifier", "lin_ftrs", value=[-1]), "classifier.lin_ftrs[0]", "must be >= 1"),
    (setter("classifier", "ps", value=[0.1, 0.2]), "classifier.ps", "one dropout per lin_ftrs layer"),
    (setter("classifier", "bptt", value=0), "classifier.bptt", "must be >= 1"),
    (setter("classifier", "max_len", value=3), "classifier.max_len", "must be null or >= classifier.bptt"),
    (setter("classifier", "extra", value="x"), "classifier.extra", "is not a classifier field"),
]


@pytest.mark.parametrize("change, field, words", SIDECAR, ids=[f"{f}:{w[:20]}" for _, f, w in SIDECAR])
def test_every_field_of_the_weights_sidecar(clas, tmp_path, capsys, monkeypatch, change, field, words):
    run = shutil.copytree(clas, tmp_path / "clas")
    edit(run / "classifier.json", change)
    built = []
    monkeypatch.setattr(checkpoint, "TextClassifier", lambda *a, **k: built.append(a))  # nothing may be built
    fails("predict", "--model", run, "good", capsys=capsys,
          needles=[f"{run / 'classifier.json'}: field {field!r}", words])
    assert built == []


def test_a_class_count_that_the_weights_do_not_have(clas, tmp_path, capsys):
    run = shutil.copytree(clas, tmp_path / "clas")
    edit(run / "classifier.json", setter("classifier", "n_class", value=5))
    edit(run / "labels.json", setter("labels", value=list("abcde")))
    fails("predict", "--model", run, "good", capsys=capsys,
          needles=[f"{run / 'classifier.json'}: field 'classifier.n_class' is 5 but the weights have 2"])


@pytest.mark.parametrize("name, change, field, words", [
    ("labels.json", setter("labels", value=["pos", "pos"]), "labels", "must not repeat a label"),
    ("labels.json", setter("labels", value=[0, 1]), "labels", "list of non-empty strings"),
    ("labels.json", setter("labels", value=["neg", "pos", "meh"]), None, "labels.json has 3 labels but classifier.pt"),
    ("config.json", setter("backwards", value="no"), "backwards", "true or false"),
    ("config.json", setter("recipe", "max_tokens", value="64"), "recipe.max_tokens", "a whole number"),
    ("config.json", setter("recipe", value=[]), "recipe", "a JSON object"),
])
def test_labels_and_run_config(clas, tmp_path, capsys, name, change, field, words):
    run = shutil.copytree(clas, tmp_path / "clas")
    edit(run / name, change)
    fails("predict", "--model", run, "good", capsys=capsys,
          needles=[f"{run / name}: field {field!r}" if field else run, words])


@pytest.mark.parametrize("name", ["classifier.pt", "classifier.json", "labels.json", "config.json"])
def test_no_file_leads_outside_the_folder(clas, tmp_path, capsys, name):
    run = shutil.copytree(clas, tmp_path / "clas")
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    shutil.move(run / name, outside)
    (run / name).symlink_to(outside)
    fails("predict", "--model", run, "good", capsys=capsys,
          needles=[f"{run / name}: leads outside the folder {run} (to {outside})"])
    (run / name).unlink()
    (run / name).symlink_to(f"../clas/{name}.real")  # a link that stays inside is fine
    shutil.move(outside, run / f"{name}.real")
    assert load_classifier(run).labels.itos == ["0", "1"]


def test_a_good_folder_loads_and_lm_sidecars_are_checked_too(clas, tmp_path, capsys):
    assert load_classifier(clas).model.n_class == 2
    lm = shutil.copytree(clas.parent / "lm", tmp_path / "lm")
    edit(lm / "lm.json", setter("config", "n_layers", value=7))
    fails("generate", "--model", lm, capsys=capsys,
          needles=[f"{lm / 'lm.json'}: field 'config.n_layers' is 7 but the weights have 2"])
    edit(lm / "encoder.json", setter("classifier", value={"n_class": 2}))
    fails("train_classifier", *TINY, "--csv", SAMPLE, "--encoder", lm, "--run-dir", tmp_path / "c", capsys=capsys,
          needles=[f"{lm / 'encoder.json'}: field 'classifier' must be null (the kind is encoder)"])
