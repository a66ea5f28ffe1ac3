"""The install does not drift: constraints.txt pins every package the venv
holds, at the version installed, and every requirement of setup.py."""
import re
import sysconfig
from importlib import metadata

from timpe.paths import ROOT

LOCK = ROOT / "constraints.txt"


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned():
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line!r} in {LOCK.name} is not an exact pin"
            pins[canonical(name)] = version
    return pins


def test_every_installed_package_is_pinned_at_its_version():
    pins = pinned()
    # The venv's own, not those a package vendors and puts on sys.path.
    site = [sysconfig.get_paths()["purelib"]]
    installed = {canonical(d.metadata["Name"]): d.version
                 for d in metadata.distributions(path=site)}
    installed.pop("timpe")
    drifted = {name: (version, pins.get(name)) for name, version in installed.items()
               if pins.get(name) != version}
    assert not drifted, f"installed, and not as {LOCK.name} pins them (make lock): {drifted}"


def test_every_requirement_of_setup_py_is_pinned():
    pins = pinned()
    wanted = {canonical(re.match(r"[A-Za-z0-9_.-]+", r).group())
              for r in metadata.requires("timpe")}
    assert wanted - set(pins) == set()
