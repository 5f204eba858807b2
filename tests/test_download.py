"""download -> verify -> extract -> read, against small archives served from a localhost HTTP server."""
import hashlib
import io
import tarfile

import pytest

from awdlstm.data import download
from awdlstm.data.download import (
    Archive,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download_imdb,
    download_url,
    download_wt103,
    get_cache_dir,
    safe_extract,
    untar_data,
)
from awdlstm.data.sources import read_imdb, read_imdb_lm, read_wikitext


def make_tgz(files: dict, links: dict | None = None) -> bytes:
    """A .tgz holding `files` {name: text}; `links` {name: (type, target)} adds symlinks / hard links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (kind, target) in (links or {}).items():  # links first, so files can go "through" them
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


IMDB_FILES = {"aclImdb/train/neg/0_2.txt": "dull.", "aclImdb/train/pos/1_9.txt": "Superb!",
              "aclImdb/train/unsup/2_0.txt": "no idea", "aclImdb/test/neg/3_1.txt": "awful",
              "aclImdb/test/pos/4_10.txt": "a <br />gem", "aclImdb/README": "readme"}


def archive_for(server, name, data, folder, checks=True):
    server.files[f"/{name}"] = data
    return Archive(name, (f"{server.url}/{name}",), folder, len(data) if checks else None,
                   hashlib.md5(data).hexdigest() if checks else None,
                   hashlib.sha256(data).hexdigest() if checks else None)


def test_imdb_download_verify_extract_read(server, tmp_path, capsys):
    arc = archive_for(server, "aclImdb_v1.tar.gz", make_tgz(IMDB_FILES), "aclImdb")
    path = download_imdb(cache_dir=tmp_path, archive=arc)
    assert path == tmp_path / "data" / "aclImdb"
    assert (tmp_path / "archives" / "aclImdb_v1.tar.gz").read_bytes() == server.files["/aclImdb_v1.tar.gz"]
    t = read_imdb(path)
    assert t.texts == ["awful", "a <br />gem", "dull.", "Superb!"] and t.labels == ["neg", "pos", "neg", "pos"]
    assert t.is_valid == [True, True, False, False]
    assert len(read_imdb_lm(path)) == 5
    assert "aclImdb_v1.tar.gz" in capsys.readouterr().err  # the tqdm bar
    n = len(server.log)
    assert download_imdb(cache_dir=tmp_path, archive=arc) == path and len(server.log) == n  # cached


def test_wikitext_and_wt103(server, tmp_path, monkeypatch):
    wt = archive_for(server, "wikitext-103.tgz", make_tgz({"wikitext-103/train.csv": '" = A = \n"\n" B "\n',
                                                           "wikitext-103/test.csv": '" C "\n'}), "wikitext-103")
    monkeypatch.setenv("AWDLSTM_CACHE", str(tmp_path / "env"))
    assert get_cache_dir() == tmp_path / "env" and get_cache_dir(tmp_path) == tmp_path
    train, valid = read_wikitext(download.download_wikitext103(archive=wt, progress=False))
    assert train == [" = A = \n", " B "] and valid == [" C "]
    fwd = archive_for(server, "wt103-fwd.tgz", make_tgz({"wt103-fwd/lstm_fwd.pth": b"w", "wt103-fwd/itos_wt103.pkl": b"i"}),
                      "wt103-fwd", checks=False)
    weights, itos = download_wt103("fwd", archive=fwd, progress=False)
    assert (weights.name, itos.name) == ("lstm_fwd.pth", "itos_wt103.pkl")
    assert weights.parent == tmp_path / "env" / "data" / "wt103-fwd"
    with pytest.raises(ValueError, match="'sideways'"):
        download_wt103("sideways")


def test_wrong_checksum_deletes_and_never_installs(server, tmp_path):
    data = make_tgz(IMDB_FILES)
    good = archive_for(server, "a.tgz", data, "aclImdb")
    for bad in (Archive("a.tgz", good.urls, "aclImdb", good.size, "0" * 32),
                Archive("a.tgz", good.urls, "aclImdb", good.size, None, "f" * 64),
                Archive("a.tgz", good.urls, "aclImdb", good.size + 1)):
        with pytest.raises(ChecksumError, match="a.tgz"):
            untar_data(bad, tmp_path, progress=False)
        assert not list((tmp_path / "archives").iterdir())  # neither a.tgz nor a.tgz.part
        assert not (tmp_path / "data" / "aclImdb").exists()


def test_interrupted_download_resumes(server, tmp_path):
    data = make_tgz({f"d/f{i}.txt": f"text {i} " * 2000 for i in range(30)})  # incompressible enough
    arc = archive_for(server, "big.tgz", data, "d")
    server.cut["/big.tgz"] = len(data) // 3
    with pytest.raises(DownloadError, match="run again to resume"):
        untar_data(arc, tmp_path, progress=False)
    part = tmp_path / "archives" / "big.tgz.part"
    assert part.stat().st_size == len(data) // 3
    assert not (tmp_path / "archives" / "big.tgz").exists()  # the partial file is not the archive
    path = untar_data(arc, tmp_path, progress=False)
    assert server.log[-1] == ("/big.tgz", f"bytes={len(data) // 3}-")  # resumed, not restarted
    assert (path / "f29.txt").read_text() == "text 29 " * 2000
    assert not part.exists()


def test_resume_at_wrong_offset_is_refused(server, tmp_path):
    data = make_tgz({f"d/f{i}.txt": f"text {i} " * 2000 for i in range(30)})
    arc = archive_for(server, "w.tgz", data, "d")
    server.cut["/w.tgz"] = 1000
    with pytest.raises(DownloadError, match="run again to resume"):
        untar_data(arc, tmp_path, progress=False)
    server.range_shift = 1  # a broken server answering a different range than asked
    with pytest.raises(DownloadError, match="wrong place"):
        untar_data(arc, tmp_path, progress=False)
    assert not (tmp_path / "archives" / "w.tgz.part").exists()
    server.range_shift = 0
    assert (untar_data(arc, tmp_path, progress=False) / "f0.txt").is_file()


def test_server_ignoring_range_restarts_and_mirror_fallback(server, tmp_path):
    data = make_tgz({"d/a.txt": "x" * 5000})
    arc = archive_for(server, "r.tgz", data, "d")
    (tmp_path / "archives").mkdir()
    (tmp_path / "archives" / "r.tgz.part").write_bytes(b"garbage")
    server.no_range = True
    mirrored = Archive(arc.name, (f"{server.url}/missing.tgz", *arc.urls), "d", arc.size, arc.md5)
    assert (untar_data(mirrored, tmp_path, progress=False) / "a.txt").read_text() == "x" * 5000
    with pytest.raises(DownloadError, match="404"):
        download_url(f"{server.url}/nothing", tmp_path / "nothing")


@pytest.mark.parametrize("members,links", [
    ({"../evil.txt": "x"}, None),
    ({"/tmp/abs_evil.txt": "x"}, None),
    ({"ok/../../evil.txt": "x"}, None),
    ({}, {"d/link": (tarfile.SYMTYPE, "../../etc")}),
    ({}, {"d/link": (tarfile.SYMTYPE, "/etc/passwd")}),
    ({}, {"d/hard": (tarfile.LNKTYPE, "../outside")}),
    ({"d/up/x.txt": "x"}, {"d/up": (tarfile.SYMTYPE, ".")}),  # written through a symlink
    ({}, {"d/fifo": (tarfile.FIFOTYPE, "")}),
])
def test_escaping_archives_are_refused(tmp_path, members, links):
    arc = tmp_path / "evil.tgz"
    arc.write_bytes(make_tgz({"d/fine.txt": "ok", **members}, links))
    with pytest.raises(UnsafeArchiveError, match="archive member"):
        safe_extract(arc, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "d" / "fine.txt").exists()


def test_escaping_archive_through_untar_data(server, tmp_path):
    arc = archive_for(server, "evil.tgz", make_tgz({"d/ok.txt": "ok", "../../escaped.txt": "x"}), "d")
    with pytest.raises(UnsafeArchiveError):
        untar_data(arc, tmp_path / "cache", progress=False)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "cache" / "data" / "d").exists()
    assert not [p for p in (tmp_path / "cache" / "data").iterdir()]  # the temporary folder is gone


def test_safe_extract_keeps_inside_links(tmp_path):
    arc = tmp_path / "ok.tgz"
    arc.write_bytes(make_tgz({"d/a.txt": "A"}, {"d/b.txt": (tarfile.SYMTYPE, "a.txt")}))
    out = safe_extract(arc, tmp_path / "out")
    assert (out / "d" / "b.txt").read_text() == "A"
    (tmp_path / "junk.tgz").write_bytes(b"not an archive")
    with pytest.raises(UnsafeArchiveError, match="cannot be extracted"):
        safe_extract(tmp_path / "junk.tgz", tmp_path / "out2")
