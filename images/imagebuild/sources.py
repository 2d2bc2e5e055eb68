"""The Debian package sources for the image, taken from this machine's own apt configuration.

Nothing in the repository names a mirror: the build copies the host's Debian entries for the release it
builds (main plus non-free-firmware, for the Raspberry Pi's Wi-Fi firmware) into a deb822 file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

COMPONENTS = ("main", "non-free-firmware")
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class SourcesError(Exception):
    """This machine's apt configuration has no usable Debian source for the release being built."""


@dataclass(frozen=True)
class AptSource:
    """One deb source: its URI, the suites of the release wanted, and its key."""

    uri: str
    suites: tuple[str, ...]
    signed_by: str


def _suite_wanted(suite: str, release: str) -> bool:
    # The release itself, its updates and its security suite; not backports or foreign suites that merely
    # contain the name (e.g. "cloud-sdk-bookworm").
    return suite in (release, f"{release}-updates", f"{release}-security") or suite == f"{release}/updates"


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, current, key = [], {}, None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
            continue
        if raw[0] in " \t" and key:
            current[key] += "\n" + raw.strip()
            continue
        name, _, value = raw.partition(":")
        key = name.strip().lower()
        current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_deb822(text: str, release: str) -> list[AptSource]:
    found = []
    for stanza in _deb822_stanzas(text):
        if stanza.get("enabled", "yes").lower() == "no" or "deb" not in stanza.get("types", "").split():
            continue
        suites = tuple(s for s in stanza.get("suites", "").split() if _suite_wanted(s, release))
        if not suites:
            continue
        for uri in stanza.get("uris", "").split():
            found.append(AptSource(uri=uri, suites=suites, signed_by=stanza.get("signed-by", DEBIAN_KEYRING)))
    return found


_ONE_LINE = re.compile(r"^deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)(?:\s+.*)?$")


def parse_one_line(text: str, release: str) -> list[AptSource]:
    found = []
    for raw in text.splitlines():
        match = _ONE_LINE.match(raw.strip())
        if not match or not _suite_wanted(match["suite"], release):
            continue
        opts = dict(o.split("=", 1) for o in (match["opts"] or "").split() if "=" in o)
        found.append(
            AptSource(
                uri=match["uri"], suites=(match["suite"],), signed_by=opts.get("signed-by", DEBIAN_KEYRING)
            )
        )
    return found


def host_sources(release: str, apt_dir: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every enabled Debian source in the host's apt config for `release`, merged per URI, in file order."""
    found: list[AptSource] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            found += parse_one_line(path.read_text(), release)
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        found += parse_deb822(path.read_text(), release)
    merged: dict[str, AptSource] = {}
    for src in found:
        if src.uri in merged:
            old = merged[src.uri]
            suites = old.suites + tuple(s for s in src.suites if s not in old.suites)
            merged[src.uri] = AptSource(uri=src.uri, suites=suites, signed_by=old.signed_by)
        else:
            merged[src.uri] = src
    if not any(release in src.suites for src in merged.values()):
        raise SourcesError(
            f"no enabled apt source for Debian {release} in {apt_dir}; add one (e.g. in sources.list.d/debian.sources)"
        )
    return list(merged.values())


def render_deb822(sources: list[AptSource]) -> str:
    stanzas = [
        "\n".join(
            [
                "Types: deb",
                f"URIs: {src.uri}",
                f"Suites: {' '.join(src.suites)}",
                f"Components: {' '.join(COMPONENTS)}",
                f"Signed-By: {src.signed_by}",
            ]
        )
        for src in sources
    ]
    return "\n\n".join(stanzas) + "\n"
