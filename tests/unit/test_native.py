"""The compiled engine (qunyun.native): used only when its build matches the sources, and
then giving exactly what the plain modules give."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from qunyun import native

REQUIRE = os.environ.get("QUNYUN_REQUIRE_NATIVE") == "1"
PROBE = Path(__file__).with_name("engine_probe.py")


def _fake_build(root: Path, *, tag: str | None = None, skip_file: str | None = None) -> Path:
    """A manifest as ``build`` writes it, with empty files for the libraries."""
    suffix = EXTENSION_SUFFIXES[0]
    modules = {m: {"file": m.replace(".", "/") + suffix,
                   "source_sha256": hashlib.sha256(native.source_path(m).read_bytes())
                   .hexdigest()} for m in native.MODULES}
    shared = {"abc__mypyc": "abc__mypyc" + suffix}
    for file in (*(e["file"] for e in modules.values()), *shared.values()):
        if file != skip_file:
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            (root / file).write_bytes(b"")
    (root / native.MANIFEST).write_text(json.dumps({
        "python": tag or sys.implementation.cache_tag, "mypy": "test", "modules": modules,
        "shared": shared}), "utf-8")
    return root


def test_this_process_runs_the_build_it_should() -> None:
    import qunyun.engine.moderation as moderation

    if os.environ.get("QUNYUN_PURE"):
        assert not native.state.active and moderation.__file__.endswith(".py")
    elif native.state.active:
        assert moderation.__file__.endswith(EXTENSION_SUFFIXES[0])
        assert "_native" in moderation.__file__
    elif REQUIRE:
        pytest.fail(f"compiled engine required but not used: {native.state.reason}")
    else:
        assert moderation.__file__.endswith(".py")
        pytest.skip(f"compiled engine not built: {native.state.reason}")


def test_a_fresh_build_is_accepted(tmp_path: Path) -> None:
    assert native.check(_fake_build(tmp_path)).active


def test_a_stale_or_foreign_build_is_refused_with_the_reason(tmp_path: Path) -> None:
    assert "no compiled build" in native.check(tmp_path / "none").reason
    build = _fake_build(tmp_path / "edited")
    manifest = json.loads((build / native.MANIFEST).read_text("utf-8"))
    manifest["modules"]["qunyun.engine.faq"]["source_sha256"] = "0" * 64
    (build / native.MANIFEST).write_text(json.dumps(manifest), "utf-8")
    state = native.check(build)
    assert not state.active and "faq.py (qunyun.engine.faq) changed" in state.reason
    state = native.check(_fake_build(tmp_path / "other", tag="cpython-399"))
    assert not state.active and "cpython-399" in state.reason
    missing = "qunyun/engine/moderation" + EXTENSION_SUFFIXES[0]
    state = native.check(_fake_build(tmp_path / "partial", skip_file=missing))
    assert not state.active and "missing" in state.reason
    for name, text in (("broken", "{"), ("no-hash", json.dumps({
            "python": sys.implementation.cache_tag, "mypy": "x", "shared": {},
            "modules": {m: {"file": "x.so"} for m in native.MODULES}}))):
        (tmp_path / name).mkdir()
        (tmp_path / name / native.MANIFEST).write_text(text, "utf-8")
        assert "unreadable" in native.check(tmp_path / name).reason


def test_activate_falls_back_and_warns_without_touching_imports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUNYUN_PURE", raising=False)
    monkeypatch.setattr(native, "state", native.state)  # restored afterwards
    finders = list(sys.meta_path)
    build = _fake_build(tmp_path)
    (build / native.MANIFEST).write_text("{}", "utf-8")
    with pytest.warns(RuntimeWarning, match="compiled engine not used"):
        assert not native.activate(build).active
    # a fresh build cannot stand in once the plain modules are loaded (this process)
    import qunyun.engine.faq  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = native.activate(_fake_build(tmp_path / "fresh"))
    assert not state.active and "imported before activate()" in state.reason
    monkeypatch.setenv("QUNYUN_PURE", "1")
    assert native.activate(build).reason == "QUNYUN_PURE is set"
    assert sys.meta_path == finders


def _probe(pure: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "QUNYUN_PURE"}
    if pure:
        env["QUNYUN_PURE"] = "1"
    done = subprocess.run([sys.executable, str(PROBE)], env=env, capture_output=True,
                          text=True, check=True, timeout=300)
    return done.stdout.splitlines()


def test_compiled_and_plain_engine_give_the_same_outcomes() -> None:
    if not native.check().active:
        if REQUIRE:
            pytest.fail(f"compiled engine required: {native.check().reason}")
        pytest.skip(f"compiled engine not built: {native.check().reason}")
    compiled, plain = _probe(pure=False), _probe(pure=True)
    assert json.loads(compiled[0]) == {"build": "mypyc"}
    assert json.loads(plain[0]) == {"build": "pure"}
    assert len(plain) > 3000
    fired = {name for line in plain[1:] for name in json.loads(line)["fired"]}
    assert fired >= {"moderation", "faq", "checkin", "welcome", "points"}
    for a, b in zip(compiled[1:], plain[1:], strict=True):
        assert a == b


def test_cli_says_which_engine_runs() -> None:
    from typer.testing import CliRunner

    from qunyun.cli.main import app

    done = CliRunner().invoke(app, ["native", "status", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"build": native.state.build,
                                       "active": native.state.active,
                                       "reason": native.state.reason}
