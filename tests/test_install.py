"""Installing never breaks another package (issue #33). The folders tokenizers/ and data/ sit beside awdlstm/ in
the repository and install inside it, as awdlstm.tokenizers and awdlstm.data (pyproject.toml's package-dir):
the wheel owns no top-level `tokenizers` (Hugging Face's name) or `data`. And the layering holds:
awdlstm.tokenizers imports no torch (awdlstm/__init__.py loads its names on first use)."""
import ast
import base64
import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("awdlstm", "tokenizers", "data", "pyproject.toml", "README.md", "LICENSE")


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=300, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _needs_venv_and_pip() -> str | None:
    """Why the install test cannot run here (None when it can)."""
    if importlib.util.find_spec("venv") is None:
        return "the venv module is not available"
    if importlib.util.find_spec("pip") is None:
        return "pip is not installed in this environment"
    return None


# ---------------------------------------------------------------- the layering

def test_tokenizers_and_their_workers_import_no_torch(tmp_path):
    """`import awdlstm.tokenizers` loads no torch, nor does a tokenizing worker, however it is started."""
    code = textwrap.dedent("""
        import multiprocessing as mp, sys
        import awdlstm.tokenizers
        from awdlstm.tokenizers import tokenize_corpus
        assert "torch" not in sys.modules, "import awdlstm.tokenizers imported torch"
        corpus = tokenize_corpus(["A fine film.", "A dull one!"] * 8, n_workers=2, chunk_size=4, progress=False)
        assert len(corpus) == 16 and "torch" not in sys.modules, "tokenizing imported torch"
        probe = "__import__('awdlstm.tokenizers.corpus') and 'torch' in __import__('sys').modules"
        for method in sorted(set(mp.get_all_start_methods()) & {"fork", "forkserver", "spawn"}):
            with mp.get_context(method).Pool(1) as pool:
                assert pool.apply(eval, (probe,)) is False, f"a {method} worker imported torch"
        print("ok")
    """)
    assert _run([sys.executable, "-c", code], cwd=tmp_path).stdout.strip() == "ok"


def test_package_names_load_on_first_use():
    """Every name of awdlstm.__all__ is its module's object; generate, lr_find and predict stay the functions
    even after their modules were imported; the two folders are this checkout's (or the installed copy's)."""
    import awdlstm.generate  # noqa: F401  (the module first: the package must still give the function)
    import awdlstm.lr_find  # noqa: F401
    import awdlstm.predict  # noqa: F401
    from awdlstm import generate, lr_find, predict
    assert callable(generate) and callable(lr_find) and callable(predict)
    assert generate is sys.modules["awdlstm.generate"].generate
    for name in awdlstm.__all__:
        module = importlib.import_module(f"awdlstm.{awdlstm._MODULE_OF[name]}")
        assert getattr(awdlstm, name) is getattr(module, name), name
    assert set(awdlstm.__all__) <= set(dir(awdlstm))
    with pytest.raises(AttributeError, match="no_such_name"):
        awdlstm.no_such_name  # noqa: B018
    import awdlstm.data
    import awdlstm.tokenizers
    here = Path(awdlstm.__file__).parent
    if (ROOT / "tokenizers").is_dir() and here == ROOT / "awdlstm":  # a checkout: the folders beside awdlstm/
        assert Path(awdlstm.tokenizers.__file__).parent == ROOT / "tokenizers"
        assert Path(awdlstm.data.__file__).parent == ROOT / "data"
    else:
        assert Path(awdlstm.tokenizers.__file__).parent == here / "tokenizers"


def test_no_import_of_the_old_top_level_names():
    """`import tokenizers` / `from data import ...` still work from a checkout (`python -m pytest` puts the root
    on sys.path), but not installed, and they would load a second copy of the modules: every import of ours,
    in the code and in the Markdown's examples, names awdlstm.tokenizers / awdlstm.data (or is relative)."""
    bad = []
    for path in sorted(p for folder in ("awdlstm", "tokenizers", "data", "scripts", "tests")
                       for p in (ROOT / folder).glob("**/*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            bad += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in ("tokenizers", "data")]
    old = re.compile(r"^\s*(?:(?:>>>|\.\.\.) )?(?:from (?:tokenizers|data)\b[\w.]* import|import (?:tokenizers|data)\b)", re.M)
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        bad += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m[0].strip()}" for m in old.finditer(text)]
    assert not bad, "old import names (tokenizers / data -> awdlstm.tokenizers / awdlstm.data):\n" + "\n".join(bad)


# ---------------------------------------------------------------- the wheel, beside other owners

def _stand_in_wheel(folder: Path, dist: str, package: str) -> Path:
    """A wheel of distribution `dist` that owns the top-level package `package`, as Hugging Face's `tokenizers`
    owns `tokenizers`: its __init__ says who it is, and a second module is there to be lost."""
    files = {
        f"{package}/__init__.py": f'OWNER = "{dist}"\n\nclass Tokenizer:\n    """{dist}\'s own."""\n',
        f"{package}/models.py": "BPE = 'bpe'\n",
        f"{dist.replace('-', '_')}-0.23.3.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.23.3\n",
        f"{dist.replace('-', '_')}-0.23.3.dist-info/WHEEL":
            "Wheel-Version: 1.0\nGenerator: test_install\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = f"{dist.replace('-', '_')}-0.23.3.dist-info/RECORD"
    lines = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(text.encode())}")
    files[record] = "\n".join(lines + [f"{record},,"]) + "\n"
    path = folder / f"{dist.replace('-', '_')}-0.23.3-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def _build_wheel(tmp_path: Path) -> Path:
    """Our wheel, built from a copy of the sources (no stale build/ of the checkout can slip into it)."""
    src = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).exists():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    # this environment's setuptools where it has one (no index needed), else pip fetches it (PyPI)
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", tmp_path / "dist", src])
    (wheel,) = (tmp_path / "dist").glob("awdlstm-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path) -> Path:
    """A new environment holding nothing; numpy, regex and tqdm (what awdlstm.tokenizers needs) are reachable
    from this one's site-packages through a folder of links, torch is not."""
    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", env])
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(_run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    deps = tmp_path / "deps"
    deps.mkdir()
    for name in ("numpy", "regex", "tqdm"):
        top = Path(importlib.util.find_spec(name).submodule_search_locations[0])
        for path in top.parent.glob(f"{name}*"):  # the package, and numpy.libs where the wheel has one
            if path.is_dir() and not path.name.endswith(("dist-info", "egg-info")):
                (deps / path.name).symlink_to(path, target_is_directory=True)
    (site / "zz_test_install_deps.pth").write_text(f"{deps}\n")
    return python


def _pip(python: Path, *args) -> subprocess.CompletedProcess:
    """This environment's pip, working on the fresh one's interpreter (pip >= 22.3)."""
    return _run([sys.executable, "-m", "pip", "--python", python, *args])


@pytest.mark.skipif(_needs_venv_and_pip() is not None, reason=f"needs venv and pip: {_needs_venv_and_pip()}")
def test_wheel_installs_beside_other_owners_of_tokenizers_and_data(tmp_path):
    """Installed after stand-ins that own `tokenizers` and `data`, our wheel leaves them whole, both theirs and
    ours import, and `pip uninstall awdlstm` removes ours only (the issue: ours wrote over Hugging Face's
    tokenizers/__init__.py, and uninstalling ours deleted it)."""
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"awdlstm", wheel.name.split("-py3")[0] + ".dist-info"}, names
    record = next(n for n in names if n.endswith(".dist-info/RECORD"))
    entries = [line.split(",")[0] for line in zipfile.ZipFile(wheel).read(record).decode().splitlines()]
    assert not [e for e in entries if e.startswith(("tokenizers/", "data/"))]
    for need in ("awdlstm/__init__.py", "awdlstm/tokenizers/__init__.py", "awdlstm/tokenizers/word.py",
                 "awdlstm/data/__init__.py", "awdlstm/data/samples/movie_reviews_sample.csv"):
        assert need in entries, need

    python = _fresh_venv(tmp_path)
    theirs = [_stand_in_wheel(tmp_path, "stand-in-tokenizers", "tokenizers"),
              _stand_in_wheel(tmp_path, "stand-in-data", "data")]
    _pip(python, "install", "-q", "--no-deps", "--no-index", *theirs)
    site = Path(_run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    their_files = {p: p.read_bytes() for pkg in ("tokenizers", "data") for p in (site / pkg).glob("*.py")}
    assert len(their_files) == 4

    _pip(python, "install", "-q", "--no-deps", "--no-index", wheel)
    check = textwrap.dedent("""
        import sys
        import tokenizers, data
        from tokenizers import Tokenizer
        assert tokenizers.OWNER == "stand-in-tokenizers" and data.OWNER == "stand-in-data"
        import awdlstm.tokenizers
        from awdlstm.tokenizers import Vocab, tokenize
        tokens = tokenize("This movie was GREAT!")
        assert tokens == ["xxbos", "xxmaj", "this", "movie", "was", "xxup", "great", "!"], tokens
        assert Vocab.build([tokens], min_freq=1).encode(tokens) == [2, 8, 9, 10, 11, 7, 12, 13]
        assert "torch" not in sys.modules
        import importlib.util, pathlib
        data_dir = pathlib.Path(importlib.util.find_spec("awdlstm.data").origin).parent
        assert (data_dir / "samples" / "movie_reviews_sample.csv").stat().st_size > 0
        print(pathlib.Path(awdlstm.tokenizers.__file__).parent)
    """)
    where = _run([python, "-I", "-c", check], cwd=tmp_path).stdout.strip()
    assert Path(where) == site / "awdlstm" / "tokenizers"
    assert {p: p.read_bytes() for p in their_files} == their_files  # theirs untouched

    _pip(python, "uninstall", "-y", "awdlstm")
    assert not (site / "awdlstm").exists()
    assert {p: p.read_bytes() for p in their_files if p.exists()} == their_files  # theirs whole
    _run([python, "-I", "-c", "import tokenizers, data; from tokenizers import Tokenizer; from tokenizers import models"],
         cwd=tmp_path)
    gone = subprocess.run([python, "-I", "-c", "import awdlstm"], capture_output=True, text=True, cwd=tmp_path)
    assert gone.returncode != 0 and "No module named 'awdlstm'" in gone.stderr
