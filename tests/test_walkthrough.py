"""docs/walkthrough.md is what scripts/dev/walkthrough.py's snippets print: re-run, it must not drift; every
section of chapter 10 is in it, in the book's order; and the comparison catches a changed word or number."""
import importlib.util
import re
import subprocess
import sys

from run_scripts import ROOT

SCRIPT = ROOT / "scripts" / "dev" / "walkthrough.py"
DOC = ROOT / "docs" / "walkthrough.md"

# Chapter 10's headings in the book's order (fastbook 10_nlp.ipynb), then the questionnaire answered by code.
CHAPTER_10 = [
    "## Text Preprocessing", "### Tokenization", "### Word Tokenization with fastai", "### Subword Tokenization",
    "### Numericalization with fastai", "### Putting Our Texts into Batches for a Language Model",
    "## Training a Text Classifier", "### Language Model Using DataBlock", "### Fine-Tuning the Language Model",
    "### Saving and Loading Models", "### Text Generation", "### Creating the Classifier DataLoaders",
    "### Fine-Tuning the Classifier", "## Disinformation and Language Models", "## Questionnaire, answered by code",
]


def walkthrough():
    spec = importlib.util.spec_from_file_location("walkthrough", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_walkthrough_reruns_without_drift():
    """The snippets run again (own process: one thread, fresh seeds) and print what the file shows."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "every snippet's output matches" in proc.stdout


def test_every_section_of_chapter_10_in_order():
    text = DOC.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if re.match(r"#{2,3} ", line)]
    assert [h for h in headings if h in CHAPTER_10] == CHAPTER_10
    assert "`.venv/bin/python scripts/dev/walkthrough.py`" in text.split("## Text Preprocessing")[0]
    questions = re.findall(r"^\*\*(\d+)\.", text, re.M)
    assert {"16", "17", "18", "19"} <= set(questions)
    for name in ("fix_html", "replace_rep", "replace_wrep", "spec_add_spaces", "rm_useless_spaces",
                 "replace_all_caps", "replace_maj", "lowercase", "show_batch", "save_encoder", "load_encoder",
                 "freeze_to(-2)", "freeze_to(-3)", "unfreeze()", "I liked this movie because"):
        assert name in text, name
    # every snippet is followed by its output block, except the set-up cell that prints nothing
    cells = re.findall(r"```python\n.*?```\n(```text\n)?", text, re.S)
    assert len(cells) > 30 and sum(not c for c in cells) == 1


def test_first_drift_names_a_changed_word_or_number():
    w = walkthrough()
    doc = "intro 1.5\n```python\nx = 1.5\n```\n```text\nloss 5.123456 acc 0.600000 tokens 300\n```\n"
    assert w.first_drift(doc, doc) is None
    assert w.first_drift(doc, doc.replace("5.123456", "5.123460")) is None  # last bits of a kernel's rounding
    assert "line 6" in w.first_drift(doc, doc.replace("5.123456", "5.133456"))  # a real change in the numbers
    assert "line 6" in w.first_drift(doc, doc.replace("0.600000", "0.616667"))  # one review more or less right
    assert "line 6" in w.first_drift(doc, doc.replace("tokens 300", "tokens 301"))  # integers are exact
    assert "line 3" in w.first_drift(doc, doc.replace("x = 1.5", "x = 1.50001"))  # code is text, exactly
    assert "line 1" in w.first_drift(doc, doc.replace("intro 1.5", "intro 1.50001"))  # and so is prose
    assert "lines expected" in w.first_drift(doc, doc + "more\n")


def test_a_cell_shows_its_prints_and_its_last_value():
    w = walkthrough()
    ns: dict = {}
    assert w.run_cell("a = 2\nprint('hi  ')\na * 3", ns, "cell") == "hi\n6"
    assert w.run_cell("a + 1;", ns, "cell") == ""  # a trailing ; hides the value, as in a notebook
    table = "epoch     train_loss  valid_loss  time    \n0         5.522107    5.354140    00:07   "
    assert w.run_cell(f"print({table!r})", ns, "cell").splitlines()[1] == "0         5.522107    5.354140    --:--"
