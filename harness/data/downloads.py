"""Fetching and unpacking dataset files: resumable HTTP downloads with progress bars and checksums,
Google Drive through gdown, and archive extraction that cannot write outside its target folder."""
import glob
import hashlib
import json
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile

from harness.data.errors import DatasetError

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 60
USER_AGENT = "coop-harness-datasets/1"


def download_url(url, destination):
    """Download `url` to `destination`, resuming `destination.part` with an HTTP Range request if present."""
    from tqdm import tqdm

    partial = destination + ".part"
    start = os.path.getsize(partial) if os.path.exists(partial) else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={start}-"} if start else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416 and _already_complete(error, start):
            os.replace(partial, destination)
            return
        raise DatasetError(f"download of {url} failed: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise DatasetError(f"download of {url} failed: {getattr(error, 'reason', error)}") from None
    with response:
        resumed = start > 0 and getattr(response, "status", None) == 206
        length = response.headers.get("Content-Length")
        total = int(length) + (start if resumed else 0) if length else None
        with open(partial, "ab" if resumed else "wb") as file, tqdm(
            total=total, initial=start if resumed else 0, unit="B", unit_scale=True, desc=os.path.basename(destination)
        ) as progress:
            while chunk := response.read(CHUNK_BYTES):
                file.write(chunk)
                progress.update(len(chunk))
    os.replace(partial, destination)


def _already_complete(error, size):
    """A 416 answer to `Range: bytes=<size>-` means complete when the file's total size is `size`."""
    match = re.fullmatch(r"bytes \*/(\d+)", error.headers.get("Content-Range", ""))
    return match is not None and int(match.group(1)) == size


def download_google_drive(file_id, destination):
    import gdown

    if gdown.download(id=file_id, output=destination, quiet=False, resume=True) is None:
        raise DatasetError(
            f"Google Drive download of {os.path.basename(destination)} (id {file_id}) failed; download "
            f"https://drive.google.com/file/d/{file_id}/view by hand and save it as {destination}"
        )


def verify_checksums(path, md5="", sha256=""):
    """Raise DatasetError (and delete the file) if a known checksum does not match."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if not expected:
            continue
        digest = hashlib.new(algorithm)
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                digest.update(chunk)
        if digest.hexdigest() != expected.lower():
            os.remove(path)
            raise DatasetError(
                f"{path}: {algorithm} is {digest.hexdigest()}, expected {expected}; the file was deleted "
                "(a wrong or damaged download), run prepare again or fetch it from another mirror"
            )


def content_problem(path, is_archive):
    """Why the downloaded file at `path` is not what was asked for (an HTML error or quota page saved under the
    file's name, an archive that is none), or None. For files that have no checksum to check."""
    with open(path, "rb") as file:
        start = file.read(512).lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")):
        return "an HTML page, not the file (a refused, quota or login page)"
    if is_archive and not (zipfile.is_zipfile(path) or tarfile.is_tarfile(path)):
        return "neither a zip nor a tar archive"
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as file:
                json.load(file)
        except (ValueError, UnicodeDecodeError) as error:
            return f"not valid JSON ({error})"
    if path.endswith(".mat") and not start.startswith(b"matlab"):
        return "not a MATLAB .mat file"
    return None


def verify_download(path, md5="", sha256="", is_archive=False):
    """Raise DatasetError, deleting the file, unless it has the known checksums (or, without any, plausible content).

    Deleting it means a refused or damaged download is fetched again on the next run, never reused."""
    verify_checksums(path, md5=md5, sha256=sha256)
    problem = None if md5 or sha256 else content_problem(path, is_archive)
    if problem:
        os.remove(path)
        raise DatasetError(f"{path} is {problem}; the file was deleted: run prepare again, or fetch it by hand "
                           "and pass --url FILE=file:///path/to/it")


def extract_archive(archive, target_dir):
    """Unpack a .zip or .tar(.gz/.tgz/...) archive into target_dir; members may not leave target_dir."""
    from tqdm import tqdm

    os.makedirs(target_dir, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for member in tqdm(bundle.infolist(), desc=f"extracting {os.path.basename(archive)}", unit="file"):
                _require_inside(target_dir, member.filename, archive)
                bundle.extract(member, target_dir)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as bundle:
            for member in tqdm(bundle, desc=f"extracting {os.path.basename(archive)}", unit="file"):
                try:
                    bundle.extract(member, target_dir, filter="data")
                except tarfile.FilterError as error:
                    raise DatasetError(f"{archive}: member {member.name!r} refused ({error}); not extracting") from None
    else:
        raise DatasetError(f"{archive} is neither a zip nor a tar archive (an HTML error page saved as a download?)")


def _require_inside(target_dir, member_name, archive):
    target = os.path.realpath(target_dir)
    if not os.path.realpath(os.path.join(target, member_name)).startswith(target + os.sep):
        raise DatasetError(f"{archive}: member {member_name!r} would be written outside {target_dir}; not extracting")


def locate(extracted_dir, relative_path):
    """`relative_path` inside an extracted tree, allowing up to two wrapper folders above it; None if absent."""
    for depth_pattern in ("", "*", os.path.join("*", "*")):
        matches = sorted(glob.glob(os.path.join(extracted_dir, depth_pattern, relative_path)))
        if matches:
            return matches[0]
    return None


def move_into_place(source, destination):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.move(source, destination)
