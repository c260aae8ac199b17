"""The deployment files as a council's IT team uses them: the container's entrypoint and
health check run against the sandbox, and systemd accepts the unit.

No container registry is reachable from the build machines, so the image itself is built
elsewhere; what the image runs (``deploy/entrypoint.sh``, ``m365perf health``) runs here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from m365perf.sandbox.testing import RunningSandbox, running_sandbox
from m365perf.store import migrate

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
M365PERF = BIN / "m365perf"
SYSTEMD_ANALYZE = Path("/usr/bin/systemd-analyze")
START_S = 60.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health(url: str) -> subprocess.CompletedProcess[str]:
    """The container's HEALTHCHECK command, as the image runs it."""
    return subprocess.run(
        [str(M365PERF), "health", "--url", url, "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _healthcheck_command() -> str:
    """The Dockerfile's HEALTHCHECK command (shell form), as Docker hands it to /bin/sh."""
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    joined = ""
    for line in lines[start:]:
        joined += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            break
    command = joined.split(" CMD ", 1)[1].strip()
    assert not command.startswith("["), "exec form cannot read SERVE_PORT"
    return command


def image_health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK run as Docker runs it: /bin/sh -c, the container's env."""
    return subprocess.run(
        ["/bin/sh", "-c", _healthcheck_command()],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path) as running:
        yield running


def _flows_for(sandbox: RunningSandbox, where: Path) -> Path:
    """The example monthly flow, its Power BI dataset the sandbox's (as the demo does)."""
    info = requests.get(f"{sandbox.base_url}/_sandbox/health", timeout=10).json()
    text = (ROOT / "flows" / "monthly-corporate-kpis.yaml").read_text()
    for placeholder, sandbox_id in (
        ("7d3c2a1e-5b4f-4c8e-9a6d-2f1e0b9c8d7a", info["powerbi_workspace_id"]),
        ("0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", info["powerbi_dataset_id"]),
    ):
        assert placeholder in text, "the example flow's Power BI ids changed: update this test"
        text = text.replace(placeholder, sandbox_id)
    where.mkdir()
    (where / "monthly-corporate-kpis.yaml").write_text(text)
    return where


@pytest.mark.slow
def test_the_entrypoint_migrates_then_serves_until_the_health_check_passes(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    port = free_port()
    database = f"sqlite:///{tmp_path / 'container.db'}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("M365PERF_")}
    env.update({f"M365PERF_{k.upper()}": v for k, v in sandbox.settings_overrides().items()})
    env.update(
        {
            "M365PERF_DATABASE_URL": database,
            "M365PERF_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "SERVE_HOST": "127.0.0.1",
            "SERVE_PORT": str(port),
            "SERVE_FLOWS": str(_flows_for(sandbox, tmp_path / "flows")),
        }
    )
    url = f"http://127.0.0.1:{port}/health"
    before = health(url)
    assert before.returncode == 1, "healthy before anything listens"
    assert "unhealthy: no answer" in before.stderr

    log = tmp_path / "entrypoint.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["/bin/sh", str(DEPLOY / "entrypoint.sh")],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_S
        answer = health(url)
        while answer.returncode != 0:
            assert process.poll() is None, f"the service stopped:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"not healthy:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
            answer = health(url)
        assert answer.stdout.startswith("ok:")
        assert "parked 0" in answer.stdout
        # The Dockerfile's own HEALTHCHECK asks the port SERVE_PORT set (not 8080 here).
        assert image_health(env).returncode == 0
        output = log.read_text()
        assert "the database is now at schema revision" in output  # db upgrade ran first
        assert migrate.current_revision(database) == migrate.head_revision()
        # The script exec'd serve: the container's main process is the service itself.
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"serve" in command and b"--no-migrate" in command
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # `docker stop`'s SIGTERM reached serve itself, which shut down cleanly.
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()[-4000:]
    assert "Application shutdown complete" in log.read_text()
    assert health(url).returncode == 1, "still healthy after the service stopped"


@pytest.mark.slow
def test_serve_without_migrating_refuses_an_old_database_in_one_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("M365PERF_")}
    env.update(
        {
            "M365PERF_TENANT_ID": "contoso",
            "M365PERF_CLIENT_ID": "app",
            "M365PERF_CLIENT_SECRET": "s3cret",
            "M365PERF_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
            "M365PERF_MIGRATE_ON_START": "false",
        }
    )
    (tmp_path / "flows").mkdir()
    result = subprocess.run(
        [str(M365PERF), "serve", "--flows", str(tmp_path / "flows")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "run `m365perf db upgrade`" in result.stderr


def _verify(unit: Path) -> str:
    """What ``systemd-analyze verify`` says about the unit: empty when it accepts all of it.

    It exits 0 even for a key it ignores, so its words are the verdict, not its status.
    """
    result = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = (result.stdout + result.stderr).strip()
    return said if said or result.returncode == 0 else f"exit {result.returncode}"


def _unit_pointing_at_this_venv(tmp_path: Path, change: tuple[str, str] | None = None) -> Path:
    """The shipped unit, its binary this venv's m365perf (verify needs it to exist)."""
    text = (DEPLOY / "m365perf.service").read_text()
    assert "/opt/m365perf/bin/m365perf " in text
    text = text.replace("/opt/m365perf/bin/m365perf", str(M365PERF))
    if change is not None:
        assert change[0] in text
        text = text.replace(*change)
    unit = tmp_path / "m365perf.service"
    unit.write_text(text)
    return unit


@pytest.mark.skipif(not SYSTEMD_ANALYZE.exists(), reason="needs systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    assert _verify(_unit_pointing_at_this_venv(tmp_path)) == ""
    misspelt = _unit_pointing_at_this_venv(tmp_path, ("NoNewPrivileges=", "NoNewPrivilege="))
    assert "Unknown key 'NoNewPrivilege'" in _verify(misspelt)


def test_the_unit_runs_unprivileged_and_hardened() -> None:
    lines = set((DEPLOY / "m365perf.service").read_text().splitlines())
    for line in (
        "User=m365perf",
        "EnvironmentFile=/etc/m365perf/m365perf.env",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ):
        assert line in lines


def test_the_dockerfile_runs_the_entrypoint_as_a_user_with_the_health_command() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and line[0].isupper()]
    assert instructions[0] == "FROM" and "FROM python:3.11-slim" in text
    assert "USER m365perf" in text
    assert instructions.index("USER") < instructions.index("ENTRYPOINT")
    assert "SERVE_PORT" in _healthcheck_command()  # the port the entrypoint serves on
    assert 'ENTRYPOINT ["/usr/local/bin/m365perf-entrypoint"]' in text
    assert "COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/m365perf-entrypoint" in text
