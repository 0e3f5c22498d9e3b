"""Getting raw sources onto the machine: Debian packages and npm packages, no hand installs.

A Debian package that is installed is read where it lies. Otherwise, as root, it is installed with
apt-get; without root it is downloaded with ``apt-get download`` and unpacked with ``dpkg -x`` into the
workspace. npm packages are fetched with ``npm pack`` at a pinned version and unpacked into the workspace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from workbench.workspace import Workspace


class SourceUnavailable(RuntimeError):
    """A source could not be obtained; the message names the package and the command that installs it."""


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _dpkg_installed(package: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    result = _run(["dpkg-query", "-W", "-f=${Status}", package])
    return result.returncode == 0 and "install ok installed" in result.stdout


def debian_package_root(package: str, ws: Workspace) -> Path:
    """The root under which ``package``'s files lie: ``/`` when installed, else an unpacked copy."""
    if _dpkg_installed(package):
        return Path("/")
    unpacked = ws.sources_dir / package
    if (unpacked / ".complete").exists():
        return unpacked
    if shutil.which("apt-get") is None:
        raise SourceUnavailable(f"Debian package {package!r} is needed and apt-get is not available; "
                                f"install {package} by hand")
    if os.geteuid() == 0:
        result = _run(["apt-get", "install", "-y", "--no-install-recommends", package])
        if result.returncode != 0 and "Unable to locate" in result.stderr + result.stdout:
            _run(["apt-get", "update"])
            result = _run(["apt-get", "install", "-y", "--no-install-recommends", package])
        if result.returncode == 0 and _dpkg_installed(package):
            return Path("/")
    return _download_and_unpack(package, unpacked)


def _download_and_unpack(package: str, target: Path) -> Path:
    download = target.with_name(f".{package}.download")
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    result = _run(["apt-get", "download", package], cwd=download)
    debs = list(download.glob("*.deb"))
    if result.returncode != 0 or not debs:
        raise SourceUnavailable(f"could not obtain Debian package {package!r} "
                                f"({(result.stderr or result.stdout).strip()[:300]}); "
                                f"run `sudo apt-get update && sudo apt-get install {package}`")
    shutil.rmtree(target, ignore_errors=True)
    unpack = _run(["dpkg", "-x", str(debs[0]), str(target)])
    if unpack.returncode != 0:
        raise SourceUnavailable(f"dpkg -x failed for {package}: {unpack.stderr.strip()[:300]}")
    (target / ".complete").touch()
    shutil.rmtree(download, ignore_errors=True)
    return target


def npm_package_root(name: str, version: str, ws: Workspace) -> Path:
    """``npm pack name@version`` unpacked into the workspace; returns its ``package/`` folder."""
    target = ws.sources_dir / f"{name}-{version}"
    if (target / ".complete").exists():
        return target / "package"
    if shutil.which("npm") is None:
        raise SourceUnavailable(f"npm package {name}@{version} is needed and npm is not installed; "
                                f"install Node.js/npm (e.g. `apt-get install npm`)")
    target.mkdir(parents=True, exist_ok=True)
    result = _run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=target)
    tarballs = sorted(target.glob("*.tgz"))
    if result.returncode != 0 or not tarballs:
        raise SourceUnavailable(f"could not fetch npm package {name}@{version}: "
                                f"{(result.stderr or result.stdout).strip()[:300]}; run `npm pack {name}@{version}`")
    with tarfile.open(tarballs[0]) as archive:
        archive.extractall(target, filter="data")  # refuses absolute paths and links out of the folder
    tarballs[0].unlink()
    (target / ".complete").touch()
    return target / "package"
