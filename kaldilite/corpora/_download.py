"""Shared mechanics of corpus download: local folder, local archive, or URL, with a marker file."""

import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError

log = logging.getLogger(__name__)


def fetch_corpus(name, target, source, url, is_corpus_dir):
    """Return a directory holding corpus `name`.

    `source` may be a directory (used in place), an archive (.tar.gz/.tgz/.zip, extracted into
    `target`), or None (download `url` into `target`, once: a `.complete` marker makes it
    idempotent). `is_corpus_dir(path)` tells whether a folder is the corpus root; extracted
    archives are searched one level down for it, since archives usually wrap a top folder.
    """
    if source is not None:
        source = Path(source)
        if source.is_dir():
            if not is_corpus_dir(source):
                raise InputError(f"{source}: not a {name} folder (expected its layout); pass the corpus root")
            return source
        if not source.exists():
            raise MissingFileError(f"{source}: no such file or folder for the {name} corpus")
        return _extract(name, source, Path(target), is_corpus_dir)
    target = Path(target)
    marker = target / f".{name}.complete"
    if marker.exists():
        return Path(marker.read_text().strip())
    target.mkdir(parents=True, exist_ok=True)
    archive = target / os.path.basename(url)
    log.info("downloading %s from %s", name, url)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, tempfile.NamedTemporaryFile(
            dir=target, delete=False
        ) as out:
            shutil.copyfileobj(response, out)
        os.replace(out.name, archive)
    except OSError as exc:
        raise MissingFileError(
            f"cannot download {name} from {url} ({exc}); download it elsewhere and pass --source DIR_OR_ARCHIVE"
        ) from None
    return _extract(name, archive, target, is_corpus_dir)


def _extract(name, archive, target, is_corpus_dir):
    marker = target / f".{name}.complete"
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tf.extractall(staging, filter="data")
        else:
            raise InputError(f"{archive}: not a .zip or .tar(.gz) archive of {name}")
        candidates = [staging] + sorted(p for p in staging.iterdir() if p.is_dir())
        root = next((p for p in candidates if is_corpus_dir(p)), None)
        if root is None:
            raise InputError(f"{archive}: archive does not contain the {name} layout")
        final = target / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(root, final)
        marker.write_text(str(final.resolve()) + "\n")
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
