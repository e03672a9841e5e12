"""Finding data files: a local copy (``POLYTASK_DATA``), a cache, or a checksummed download.

Each data set lives in a folder ``<root>/<folder>/``. A file is looked up, in order, under the
``root`` passed to the loader, under ``$POLYTASK_DATA``, and in the cache
(``$POLYTASK_CACHE``, default ``~/.cache/polytask``); a file found is checked against its MD5.
When no copy exists the file is downloaded from its official source into the cache and
checked. Set ``POLYTASK_OFFLINE=1`` to forbid downloads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class DataFileError(FileNotFoundError):
    """A data file is missing, corrupted, or could not be downloaded."""


@dataclass(frozen=True)
class DataFile:
    """One file of a data set.

    Attributes:
        name: file name inside the data set's folder.
        md5: its MD5 checksum, or ``None`` when no checksum is published (the loader then
            verifies the file's structure: row and column counts).
        urls: official download locations, tried in order.
        alternatives: other accepted local copies, as ``(name, md5)`` pairs (for example a
            reconstructed file that stands in for an official one).
    """

    name: str
    md5: str | None
    urls: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, str], ...] = ()


_VERIFIED: dict[tuple[str, int, float], str] = {}


def md5sum(path: Path) -> str:
    """MD5 of a file (memoised by path, size and modification time)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime)
    if key not in _VERIFIED:
        digest = hashlib.md5()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _VERIFIED[key] = digest.hexdigest()
    return _VERIFIED[key]


def cache_root() -> Path:
    """Where downloads go: ``$POLYTASK_CACHE`` or ``~/.cache/polytask``."""
    return Path(os.environ.get("POLYTASK_CACHE", Path.home() / ".cache" / "polytask"))


def search_dirs(folder: str, root: str | Path | None) -> list[Path]:
    """Folders searched for ``folder``'s files, in order."""
    if root is not None:
        return [Path(root) / folder]
    dirs = []
    if os.environ.get("POLYTASK_DATA"):
        dirs.append(Path(os.environ["POLYTASK_DATA"]) / folder)
    dirs.append(cache_root() / folder)
    return dirs


def find_local(folder: str, file: DataFile, root: str | Path | None = None) -> Path | None:
    """The verified local copy of ``file`` if one exists (no download); a corrupted copy
    raises :class:`DataFileError` as in :func:`resolve`."""
    for directory in search_dirs(folder, root):
        if (directory / file.name).is_file() or any(
            (directory / name).is_file() for name, _ in file.alternatives
        ):
            return resolve(folder, file, root)
    return None


def resolve(folder: str, file: DataFile, root: str | Path | None = None) -> Path:
    """The verified local path of ``file``, downloading it if no copy exists.

    Raises:
        DataFileError: a copy exists but its checksum is wrong (names the file, the expected
            and the actual MD5), or no copy exists and the download failed or is disabled.
    """
    dirs = search_dirs(folder, root)
    for directory in dirs:
        for name, md5 in ((file.name, file.md5), *file.alternatives):
            path = directory / name
            if path.is_file():
                actual = md5sum(path) if md5 is not None else None
                if actual != md5:
                    raise DataFileError(
                        f"{path} is corrupted: MD5 {actual}, expected {md5}. Delete it and "
                        f"fetch it again from {', '.join(file.urls) or 'its source'}"
                    )
                return path
    where = " or ".join(str(d) for d in dirs)
    hint = (
        f"Put {file.name} (MD5 {file.md5}) in {where}, or point POLYTASK_DATA at a folder "
        f"holding {folder}/{file.name}"
    )
    if not file.urls:
        raise DataFileError(
            f"{file.name} not found, and no official download of this exact file is known "
            f"(the copies in use come from the data's published repositories). {hint}"
        )
    if os.environ.get("POLYTASK_OFFLINE"):
        raise DataFileError(f"{file.name} not found and downloads are disabled. {hint}")
    target_dir = (Path(root) / folder) if root is not None else cache_root() / folder
    return download(file, target_dir, hint)


def download(file: DataFile, target_dir: Path, hint: str) -> Path:
    """Download ``file`` into ``target_dir`` atomically and verify its checksum."""
    errors = []
    target_dir.mkdir(parents=True, exist_ok=True)
    for url in file.urls:
        handle, tmp = tempfile.mkstemp(dir=target_dir, prefix=f".{file.name}.")
        os.close(handle)
        try:
            with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out)
            actual = md5sum(Path(tmp)) if file.md5 is not None else None
            if actual != file.md5:
                errors.append(f"{url}: MD5 {actual}, expected {file.md5}")
                continue
            final = target_dir / file.name
            os.replace(tmp, final)
            return final
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            errors.append(f"{url}: {error}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise DataFileError(
        f"{file.name} not found locally and the download failed (no network?): "
        f"{'; '.join(errors)}. {hint}"
    )
