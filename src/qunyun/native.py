"""The rule engine's hot modules compiled with mypyc, used only while they match the source.

Why: every group message runs the moderation classifier, the FAQ matcher and the rules;
issue 5 asks for 50k messages a second per core. The same strictly typed modules compiled
with mypyc (mypy's own compiler, which mypy and black ship with) run ~40 % faster than
under the interpreter; see bench/README.md.

How: ``qunyun native build`` (``make native``, part of ``make test``) compiles
:data:`MODULES` into ``src/qunyun/_native/`` with a manifest of each source's SHA-256.
``qunyun/__init__`` calls :func:`activate` first thing: when a build exists for this Python
and every source still matches it, a finder loads those modules from the build; otherwise
(no build, an edited source, another Python, ``QUNYUN_PURE=1``) the plain modules load, with
a warning when a build is stale. Nothing else changes: the compiled modules are the same code,
and the tests run both (``make test`` runs the unit tests again with ``QUNYUN_PURE=1``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec
from importlib.util import spec_from_file_location
from pathlib import Path
from types import ModuleType

# Modules a message goes through. Plugins and tests subclass Rule, which allows it
# (mypyc_attr); triggers.py and domain/events.py stay plain: compiling them gained nothing.
MODULES: tuple[str, ...] = (
    "qunyun.domain.text",
    "qunyun.engine.automation",
    "qunyun.engine.dispatcher",
    "qunyun.engine.faq",
    "qunyun.engine.moderation",
    "qunyun.engine.rule",
    "qunyun.engine.rules.blacklist",
    "qunyun.engine.rules.checkin",
    "qunyun.engine.rules.faq",
    "qunyun.engine.rules.moderation",
    "qunyun.engine.rules.points",
    "qunyun.engine.rules.welcome",
)
PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_DIR = PACKAGE_DIR / "_native"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class NativeState:
    """Whether the compiled modules are in use, and why (shown by /healthz and the bench)."""

    active: bool
    reason: str

    @property
    def build(self) -> str:
        return "mypyc" if self.active else "pure"


state = NativeState(False, "not activated")


def source_path(module: str) -> Path:
    """The plain source of a dotted module name inside this package."""
    return PACKAGE_DIR.joinpath(*module.split(".")[1:]).with_suffix(".py")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _BuildFinder(MetaPathFinder):
    """Finds the listed modules (and mypyc's shared library) in the build directory."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        return spec_from_file_location(fullname, file,
                                       loader=ExtensionFileLoader(fullname, str(file)))


def check(build_dir: Path = BUILD_DIR) -> NativeState:
    """Whether the build in ``build_dir`` can stand in for the sources, without loading it."""
    manifest_path = build_dir / MANIFEST
    if not manifest_path.exists():
        return NativeState(False, "no compiled build (make native)")
    try:  # runs on every import of qunyun: whatever is wrong means "use the plain modules"
        manifest = json.loads(manifest_path.read_text("utf-8"))
        modules: dict[str, dict[str, str]] = manifest["modules"]
        shared: dict[str, str] = manifest["shared"]
        if manifest["python"] != sys.implementation.cache_tag:
            return NativeState(False, f"built for {manifest['python']}, this is "
                                      f"{sys.implementation.cache_tag}")
        if set(modules) != set(MODULES):
            return NativeState(False, "built for another module list (make native)")
        for name, entry in modules.items():
            if _sha256(source_path(name)) != entry["source_sha256"]:
                return NativeState(False, f"{source_path(name).name} ({name}) changed since "
                                          "the build (make native)")
        for file in (*(e["file"] for e in modules.values()), *shared.values()):
            if not (build_dir / file).exists():
                return NativeState(False, f"{build_dir / file} is missing (make native)")
        return NativeState(True, f"{len(modules)} modules compiled with mypyc "
                                 f"{manifest['mypy']}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return NativeState(False, f"unreadable {manifest_path}: {type(exc).__name__}: {exc}")


def activate(build_dir: Path = BUILD_DIR) -> NativeState:
    """Install the finder when the build is fresh; called before any engine module loads."""
    global state
    if os.environ.get("QUNYUN_PURE", "").lower() in ("1", "true", "yes"):
        state = NativeState(False, "QUNYUN_PURE is set")
        return state
    found = check(build_dir)
    loaded = [m for m in MODULES if m in sys.modules]
    if found.active and loaded:
        found = NativeState(False, f"{loaded[0]} was imported before activate()")
    if found.active:
        manifest = json.loads((build_dir / MANIFEST).read_text("utf-8"))
        files = {name: build_dir / entry["file"] for name, entry in manifest["modules"].items()}
        files.update({name: build_dir / file for name, file in manifest["shared"].items()})
        sys.meta_path.insert(0, _BuildFinder(files))
    elif (build_dir / MANIFEST).exists():
        warnings.warn(f"qunyun: compiled engine not used: {found.reason}", RuntimeWarning,
                      stacklevel=2)
    state = found
    return state


def build(build_dir: Path = BUILD_DIR, *, jobs: int = 2) -> NativeState:
    """Compile :data:`MODULES` with mypyc into ``build_dir`` (replaced whole at the end);
    a no-op when the build there is already fresh."""
    if (current := check(build_dir)).active:
        return current
    import shutil  # here, not at the top: every process imports this module, few build
    import tempfile

    from mypy.version import __version__ as mypy_version
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    root = PACKAGE_DIR.parents[1]  # the checkout: pyproject.toml holds mypy's settings
    if not (root / "pyproject.toml").exists():
        raise FileNotFoundError(f"{root / 'pyproject.toml'}: the build needs a source checkout "
                                "(an installed wheel runs the plain modules)")
    digests = {name: _sha256(source_path(name)) for name in MODULES}
    with tempfile.TemporaryDirectory(prefix="qunyun-native-") as tmp:
        out = Path(tmp) / "out"
        cwd = Path.cwd()
        os.chdir(root)  # mypy resolves the config and the module names from the checkout
        try:
            extensions = mypycify(
                [f"--config-file={root / 'pyproject.toml'}",
                 *(str(source_path(m).relative_to(root)) for m in MODULES)],
                opt_level="3", target_dir=str(Path(tmp) / "c"))
            dist = Distribution({"name": "qunyun-native", "ext_modules": extensions})
            command = dist.get_command_obj("build_ext")
            command.build_lib = str(out)
            command.build_temp = str(Path(tmp) / "obj")
            command.parallel = jobs
            command.ensure_finalized()
            command.run()
        finally:
            os.chdir(cwd)
        suffix = EXTENSION_SUFFIXES[0]
        modules = {name: {"file": "/".join(name.split(".")) + suffix,
                          "source_sha256": digests[name]} for name in MODULES}
        shared = {p.name.removesuffix(suffix): p.name for p in out.glob(f"*{suffix}")}
        (out / MANIFEST).write_text(json.dumps(
            {"python": sys.implementation.cache_tag, "mypy": mypy_version,
             "modules": modules, "shared": shared}, indent=1), "utf-8")
        old = build_dir.with_name(build_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if build_dir.exists():
            build_dir.rename(old)  # a running process keeps its mapped files
        shutil.move(str(out), build_dir)
        shutil.rmtree(old, ignore_errors=True)
    return check(build_dir)
