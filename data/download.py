"""Fetch, verify and extract the data sets and weights of chapter 10 (fastai's `untar_data`).

    path = download_imdb()                      # ~/.cache/awdlstm/data/aclImdb  (train/ test/)
    weights, itos = download_wt103('fwd')       # fastai's pretrained WikiText-103 language model

A download goes to `<name>.part` and is resumed from there (HTTP Range) when interrupted; only after its
size and checksum are verified is it renamed (os.replace) to its final name, so a partial file is never
mistaken for a complete one. Extraction refuses any member that would land outside the target folder
(absolute paths, `..`, links pointing outside, device files) and happens in a temporary folder that is
renamed into place when complete. The cache folder is `cache_dir`, else $AWDLSTM_CACHE, else ~/.cache/awdlstm.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm


@dataclass(frozen=True)
class Archive:
    """A downloadable archive: tried at each of `urls` in turn, extracted to the folder `folder`.

    `size`, `md5` and `sha256` are checked when known (None = not published: only the size announced by
    the server is checked).
    """

    name: str
    urls: tuple[str, ...]
    folder: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None


# Published sizes/checksums: Stanford's page + many independent uses (md5, sha256); fastai's checks.txt (md5).
IMDB = Archive("aclImdb_v1.tar.gz", ("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
               "aclImdb", 84_125_825, "7c2ac02c03563afcf9b574c7e56c153a",
               "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe")
IMDB_FASTAI = Archive("imdb.tgz", ("https://s3.amazonaws.com/fast-ai-nlp/imdb.tgz",),  # fastai's URLs.IMDB
                      "imdb", 144_440_600, "90f9b1c4ff43a90d67553c9240dc0249")
WIKITEXT103 = Archive("wikitext-103.tgz", ("https://s3.amazonaws.com/fast-ai-nlp/wikitext-103.tgz",),
                      "wikitext-103", 190_200_704, "2dd8cf8693b3d27e9c8f0a7df054b2c7")  # fastai's URLs.WIKITEXT
# fastai's URLs.WT103_FWD / WT103_BWD: no published size or checksum (fastai's checks.txt has none).
WT103_FWD = Archive("wt103-fwd.tgz", ("https://s3.amazonaws.com/fast-ai-modelzoo/wt103-fwd.tgz",), "wt103-fwd")
WT103_BWD = Archive("wt103-bwd.tgz", ("https://s3.amazonaws.com/fast-ai-modelzoo/wt103-bwd.tgz",), "wt103-bwd")


class DownloadError(RuntimeError):
    """The transfer failed or stopped early; the partial `.part` file is kept for resuming."""


class ChecksumError(RuntimeError):
    """The downloaded file has the wrong size or checksum; it was deleted."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would be written outside the target folder."""


def get_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir`, else $AWDLSTM_CACHE, else ~/.cache/awdlstm."""
    return Path(cache_dir or os.environ.get("AWDLSTM_CACHE") or Path.home() / ".cache" / "awdlstm").expanduser()


def file_digest(path: str | os.PathLike, algo: str) -> str:
    """Hex digest (`md5`, `sha256`) of a file, read in 1 MiB blocks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def download_url(url: str, dest: str | os.PathLike, size: int | None = None, md5: str | None = None,
                 sha256: str | None = None, progress: bool = True, timeout: float = 60) -> Path:
    """Download `url` to `dest` with a tqdm bar, resuming `dest.part`; verify size/checksums; rename into place.

    Returns `dest` at once when it already exists (it only ever appears after a verified download).
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is None or have < size:
        _fetch(url, part, have, progress, timeout)
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise ChecksumError(f"{url}: downloaded {got:,} bytes, expected {size:,}; the file was deleted")
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want and (digest := file_digest(part, algo)) != want.lower():
            part.unlink()
            raise ChecksumError(f"{url}: {algo} is {digest}, expected {want}; the file was deleted")
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, have: int, progress: bool, timeout: float) -> None:
    """Append the bytes of `url` from offset `have` to `part` (restart from 0 if the server ignores Range)."""
    headers = {"User-Agent": "awdlstm"} | ({"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part file is already complete
            return
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: {getattr(e, 'reason', e)}") from None
    with resp:
        if have and resp.status != 206:
            have = 0  # the server sent the whole file
        elif have and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            part.unlink()
            raise DownloadError(f"{url}: the server resumed at the wrong place "
                                f"({resp.headers.get('Content-Range')!r} for byte {have}); "
                                f"{part} was deleted, run again to restart")
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        done = have
        try:
            with open(part, "ab" if have else "wb") as f, \
                    tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=part.name[:-5], disable=not progress) as bar:
                while block := resp.read(1 << 16):
                    f.write(block)
                    done += len(block)
                    bar.update(len(block))
        except (http.client.IncompleteRead, OSError) as e:
            raise DownloadError(f"{url}: transfer broke after {done:,} bytes ({e!r}); "
                                f"{part} is kept, run again to resume") from None
    if total is not None and done < total:
        raise DownloadError(f"{url}: connection closed after {done:,} of {total:,} bytes; "
                            f"{part} is kept, run again to resume")


def _check_member(m: tarfile.TarInfo, root: Path, links: set[PurePosixPath]) -> None:
    """Raise UnsafeArchiveError if extracting `m` under `root` could write outside `root`.

    `links` collects the archive's symlinks: no member may be written through one (link chains could escape).
    """
    name = PurePosixPath(m.name)
    if name.is_absolute() or m.name.startswith(("/", "\\")) or ".." in name.parts \
            or (name.parts and ":" in name.parts[0]):
        raise UnsafeArchiveError(f"archive member {m.name!r} has an absolute or '..' path")
    if any(parent in links for parent in name.parents):
        raise UnsafeArchiveError(f"archive member {m.name!r} is inside a symlink of the archive")
    if not (root / name).resolve().is_relative_to(root):
        raise UnsafeArchiveError(f"archive member {m.name!r} would be written outside {root}")
    if m.issym() or m.islnk():
        target = PurePosixPath(m.linkname)
        base = (root / name).parent if m.issym() else root
        if target.is_absolute() or not (base / target).resolve().is_relative_to(root):
            raise UnsafeArchiveError(f"archive member {m.name!r} links outside the archive ({m.linkname!r})")
        if m.issym():
            links.add(name)
    elif not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(f"archive member {m.name!r} is a device or fifo")


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a tar archive (any compression) into the folder `dest`, refusing members that escape it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members, links = tar.getmembers(), set()
            for m in members:
                _check_member(m, root, links)
            kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, members=members, **kw)
    except tarfile.TarError as e:
        raise UnsafeArchiveError(f"{archive}: cannot be extracted ({e})") from None
    return dest


def untar_data(archive: Archive | str, cache_dir: str | os.PathLike | None = None, progress: bool = True,
               force: bool = False) -> Path:
    """fastai's `untar_data`: download `archive` (an `Archive` or a URL) into `<cache>/archives/`, verify it,
    extract it to `<cache>/data/<archive.folder>` and return that folder (done once; `force` redoes both)."""
    if isinstance(archive, str):
        name = archive.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
        archive = Archive(name, (archive,), name.removesuffix(".tgz").removesuffix(".tar.gz"))
    cache = get_cache_dir(cache_dir)
    target = cache / "data" / archive.folder
    if target.is_dir() and not force:
        return target
    file = cache / "archives" / archive.name
    if force and file.is_file():
        file.unlink()
    errors = []
    for url in archive.urls:  # mirrors in turn; a checksum error is not retried elsewhere
        try:
            download_url(url, file, archive.size, archive.md5, archive.sha256, progress)
            break
        except DownloadError as e:
            errors.append(str(e))
    else:
        raise DownloadError("could not download " + archive.name + ":\n  " + "\n  ".join(errors))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{archive.folder}.tmp-"))
    try:
        safe_extract(file, tmp)
        src = tmp / archive.folder if (tmp / archive.folder).is_dir() else tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(src, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def download_imdb(cache_dir: str | os.PathLike | None = None, archive: Archive | None = None,
                  progress: bool = True) -> Path:
    """The full IMDb data set (100,000 reviews in train/test/unsup); read it with `sources.read_imdb`.

    Tries Stanford's archive, then fastai's mirror (a different archive with its own checksum).
    """
    if archive is not None:
        return untar_data(archive, cache_dir, progress)
    try:
        return untar_data(IMDB, cache_dir, progress)
    except DownloadError as first:
        try:
            return untar_data(IMDB_FASTAI, cache_dir, progress)
        except DownloadError as second:
            raise DownloadError(f"{first}\n{second}") from None


def download_wikitext103(cache_dir: str | os.PathLike | None = None, archive: Archive | None = None,
                         progress: bool = True) -> Path:
    """fastai's WikiText-103 folder (train.csv, test.csv) for pretraining; read it with `sources.read_wikitext`."""
    return untar_data(archive or WIKITEXT103, cache_dir, progress)


def download_wt103(direction: str = "fwd", cache_dir: str | os.PathLike | None = None,
                   archive: Archive | None = None, progress: bool = True) -> tuple[Path, Path]:
    """fastai's pretrained AWD-LSTM on WikiText-103 -> (weights `lstm_fwd.pth`, vocab `itos_wt103.pkl`).

    Only downloads and extracts; loading them safely is `awdlstm.pretrained`'s job.
    """
    if direction not in ("fwd", "bwd"):
        raise ValueError(f"direction must be 'fwd' or 'bwd', got {direction!r}")
    path = untar_data(archive or (WT103_FWD if direction == "fwd" else WT103_BWD), cache_dir, progress)
    found = [sorted(path.glob(f"*.{ext}")) for ext in ("pth", "pkl")]
    if not found[0] or not found[1]:
        raise FileNotFoundError(f"{path} should hold one .pth and one .pkl file, found "
                                f"{sorted(p.name for p in path.iterdir())}")
    return found[0][0], found[1][0]
