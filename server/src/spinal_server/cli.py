"""The `spinal-server` command line: serve a manifest, serve the built-in demo, replay a capture, check a manifest.

`spinal-server --demo` is the one-command start: a generated SO-101 policy behind an embedded Zenoh router.
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path

import typer

from spinal_server import __version__

app = typer.Typer(
    name="spinal-server",
    help="Serve one robot policy to many robots over Zenoh.",
    add_completion=False,
    rich_markup_mode=None,
)
log = logging.getLogger("spinal_server.cli")

_SET_HELP = "Override any manifest field: dotted.field=value (repeatable), e.g. scheduler.kind=batch."


def _overrides(
    sets: list[str],
    *,
    model: Path | None = None,
    listen: list[str] | None = None,
    connect: list[str] | None = None,
    mode: str | None = None,
    health_port: int | None = None,
    scheduler: str | None = None,
    max_batch: int | None = None,
    max_wait_ms: float | None = None,
    max_sessions: int | None = None,
    capture_dir: Path | None = None,
) -> list[str]:
    out = []
    if model is not None:
        out.append(f"model.path={model.resolve()}")
    if listen:
        out.append(f"zenoh.listen=[{', '.join(listen)}]")
    if connect:
        out.append(f"zenoh.connect=[{', '.join(connect)}]")
    for key, value in (
        ("zenoh.mode", mode),
        ("health.port", health_port),
        ("scheduler.kind", scheduler),
        ("scheduler.max_batch", max_batch),
        ("scheduler.max_wait_ms", max_wait_ms),
        ("max_sessions", max_sessions),
        ("debug.capture_dir", capture_dir.resolve() if capture_dir else None),
    ):
        if value is not None:
            out.append(f"{key}={value}")
    return out + list(sets)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    demo: bool = typer.Option(
        False, "--demo", help="Serve the built-in SO-101 demo policy (embedded router)."
    ),
    listen: list[str] = typer.Option(
        None, "--listen", help="Zenoh listen endpoint (demo), e.g. tcp/127.0.0.1:7447."
    ),
    health_port: int = typer.Option(None, "--health-port", help="Health/metrics HTTP port (demo)."),
    sets: list[str] = typer.Option(None, "--set", help=_SET_HELP),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Serve one robot policy to many robots over Zenoh."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"log_level": log_level}
        return
    if not demo:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    _run_demo(listen or [], health_port, sets or [], log_level)


@app.command()
def serve(
    ctx: typer.Context,
    manifest: Path = typer.Option(None, "--manifest", "-m", help="The server manifest (YAML)."),
    sets: list[str] = typer.Option(None, "--set", help=_SET_HELP),
    model: Path = typer.Option(None, "--model", help="model.path"),
    listen: list[str] = typer.Option(None, "--listen", help="zenoh.listen endpoint (repeatable)"),
    connect: list[str] = typer.Option(None, "--connect", help="zenoh.connect endpoint (repeatable)"),
    mode: str = typer.Option(None, "--mode", help="zenoh.mode: router, peer or client"),
    health_port: int = typer.Option(None, "--health-port", help="health.port"),
    scheduler: str = typer.Option(None, "--scheduler", help="scheduler.kind: round_robin or batch"),
    max_batch: int = typer.Option(None, "--max-batch", help="scheduler.max_batch"),
    max_wait_ms: float = typer.Option(None, "--max-wait-ms", help="scheduler.max_wait_ms"),
    max_sessions: int = typer.Option(None, "--max-sessions", help="max_sessions"),
    capture_dir: Path = typer.Option(None, "--capture-dir", help="debug.capture_dir"),
) -> None:
    """Serve the model a manifest names until SIGTERM / Ctrl-C (which drain)."""
    _configure(ctx)
    overrides = _overrides(
        sets or [],
        model=model,
        listen=listen,
        connect=connect,
        mode=mode,
        health_port=health_port,
        scheduler=scheduler,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_sessions=max_sessions,
        capture_dir=capture_dir,
    )
    _serve(_manifest(manifest, overrides))


@app.command()
def demo(
    ctx: typer.Context,
    listen: list[str] = typer.Option(
        None, "--listen", help="Zenoh listen endpoint, default tcp/127.0.0.1:7447."
    ),
    health_port: int = typer.Option(None, "--health-port", help="Health/metrics HTTP port, default 9100."),
    sets: list[str] = typer.Option(None, "--set", help=_SET_HELP),
) -> None:
    """Same as `spinal-server --demo`."""
    _run_demo(listen or [], health_port, sets or [], (ctx.obj or {}).get("log_level", "info"))


@app.command("write-demo-model")
def write_demo_model(
    directory: Path = typer.Argument(..., help="Where to write demo_policy.onnx + policy.json."),
) -> None:
    """Write the demo policy (ONNX + policy.json) to a directory, e.g. for an in-process LocalEngine."""
    from spinal_server.demo_policy import build_demo_policy

    typer.echo(str(build_demo_policy(directory)))


@app.command()
def check(
    ctx: typer.Context,
    manifest: Path = typer.Option(..., "--manifest", "-m", help="The server manifest (YAML)."),
    sets: list[str] = typer.Option(None, "--set", help=_SET_HELP),
) -> None:
    """Validate a manifest and load its model once; print what would be served."""
    _configure(ctx)
    from spinal_server.errors import ServerError
    from spinal_server.runtime import PolicyRuntime

    m = _manifest(manifest, sets or [])
    try:
        runtime = PolicyRuntime.from_manifest(m)
    except ServerError as exc:
        _fail(str(exc))
    typer.echo(f"{'service':16} {m.service_keys().prefix}")
    for key, value in runtime.describe().items():
        typer.echo(f"{key:16} {value}")


@app.command()
def replay(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A debug.capture_dir written by a server."),
    model: Path = typer.Option(
        None, "--model", help="Model to replay with (default: the one the capture names)."
    ),
    manifest: Path = typer.Option(None, "--manifest", "-m", help="Load the model as this manifest says."),
) -> None:
    """Re-run captured requests offline and check the chunks come out byte for byte the same."""
    _configure(ctx)
    from spinal_server.errors import ServerError
    from spinal_server.replay import replay_directory
    from spinal_server.runtime import PolicyRuntime

    try:
        runtime = None
        if manifest is not None:
            runtime = PolicyRuntime.from_manifest(_manifest(manifest, []))
        elif model is not None:
            runtime = PolicyRuntime.from_model_path(model)
        results = replay_directory(directory, runtime)
    except ServerError as exc:
        _fail(str(exc))
    bad = 0
    for r in results:
        verdict = (
            "identical"
            if r.identical
            else (f"ERROR {r.error}" if r.error else f"DIFFERS max|d|={r.max_abs_diff:.3g}")
        )
        bad += not r.identical
        typer.echo(f"{r.path.name}  client={r.client_uuid} seq={r.seq_id}  {verdict}")
    typer.echo(f"{len(results) - bad}/{len(results)} requests replayed identically")
    raise typer.Exit(1 if bad else 0)


@app.command()
def version() -> None:
    """Print the server version."""
    typer.echo(__version__)


# ---- helpers ---------------------------------------------------------------------------------------


def _configure(ctx: typer.Context) -> None:
    from spinal_server.logsupport import configure_logging

    configure_logging((ctx.obj or {}).get("log_level", "info"))


def _fail(message: str) -> None:
    typer.echo(f"spinal-server: {message}", err=True)
    raise typer.Exit(2)


def _manifest(path: Path | None, overrides: list[str]):
    from spinal_server.errors import ManifestError
    from spinal_server.manifest import load_manifest

    if path is None and not any(o.startswith("model.path=") for o in overrides):
        _fail("give --manifest FILE (or at least --model PATH); see server/README.md for the format")
    try:
        return load_manifest(path, overrides)
    except ManifestError as exc:
        _fail(str(exc))


def _run_demo(listen: list[str], health_port: int | None, sets: list[str], log_level: str) -> None:
    from spinal_server.demo_policy import DEMO_MODEL_ID, build_demo_policy
    from spinal_server.logsupport import configure_logging

    configure_logging(log_level)
    workdir = Path(tempfile.mkdtemp(prefix="spinal-demo-policy-"))
    model = build_demo_policy(workdir)
    overrides = [
        f"model.path={model}",
        "model.device=auto",
        f"service.model_id={DEMO_MODEL_ID}",
        "zenoh.mode=router",
        f"zenoh.listen=[{', '.join(listen or ['tcp/127.0.0.1:7447'])}]",
        f"health.port={9100 if health_port is None else health_port}",
        "max_sessions=16",
        "scheduler.kind=batch",
        *sets,
    ]
    manifest = _manifest(None, overrides)
    keys = manifest.service_keys()
    typer.echo(
        f"spinal-server demo: SO-101 policy on {', '.join(manifest.zenoh.listen)}; status at {keys.status}",
        err=True,
    )
    _serve(manifest)


def _serve(manifest) -> None:
    from spinal_server.errors import ServerError
    from spinal_server.server import PolicyServer

    server = PolicyServer(manifest)
    try:
        server.start()
    except ServerError as exc:
        _fail(str(exc))

    drainers: list[threading.Thread] = []

    def drain(signum: int, _frame: object) -> None:
        log.info("signal %s: draining", signal.Signals(signum).name)
        # Not in the handler itself: draining joins threads, and the handler runs on the main thread.
        thread = threading.Thread(target=server.drain, name="spinal-drain")
        drainers.append(thread)
        thread.start()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    server.serve_forever()
    for thread in drainers:  # leaving with a thread still unwinding aborts the interpreter at exit
        thread.join(30)
    sys.stdout.flush()


def main() -> None:
    app()
