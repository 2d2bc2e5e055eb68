"""Device API endpoints the setup page adds: network, TLS upload, connection test, robot bench, system.

Under `/api/...` like the daemon's own routes and behind the same gate: a bearer token, or a logged-in
browser session with its CSRF token.
"""

from __future__ import annotations

import base64
import binascii
import logging
import shutil
import threading
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from spinal.protocol.errors import ProtocolError
from starlette.concurrency import run_in_threadpool

from spinal_edge.api.auth import require_principal
from spinal_edge.control.ports import RobotMode
from spinal_edge.network import NetworkError
from spinal_edge.network.model import validate_hostname, validate_ssid, validate_wifi_password
from spinal_edge.web.calibration import CalibrationError, load_ranges
from spinal_edge.web.connection_probe import RobotDescription, ServerTarget, service_keys
from spinal_edge.web.errors import TlsBundleError
from spinal_edge.web.state import SetupPageState
from spinal_edge.web.tls_bundle import TLS_DIR, store_tls_bundle, validate_tls_bundle

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WifiJoin(_Body):
    ssid: str = Field(min_length=1, max_length=32)
    password: str = Field("", max_length=64)
    hidden: bool = False


class HostnameChange(_Body):
    hostname: str = Field(min_length=1, max_length=63)


class TlsUpload(_Body):
    """PEM texts (or base64 of them); a certificate needs its key."""

    ca_pem: str = Field("", max_length=100_000)
    cert_pem: str = Field("", max_length=100_000)
    key_pem: str = Field("", max_length=100_000)


class JogRequest(_Body):
    joint: str = Field(min_length=1, max_length=32)
    delta: float = Field(ge=-500.0, le=500.0, description="step in the arm's position units")


class CalibrationStep(_Body):
    action: Literal["start", "record", "save", "cancel"]
    joint: str = Field("", max_length=32)


class FactoryReset(_Body):
    confirm: str = Field(max_length=32, description='type "factory reset"')
    delete_recordings: bool = False


def _web(request: Request) -> SetupPageState:
    return request.app.state.web


def _bad(message: str, code: int = 422) -> HTTPException:
    return HTTPException(code, message)


# -- network --------------------------------------------------------------------------------------------


def _network(request: Request) -> Any:
    net = _web(request).network
    if net is None:
        raise _bad('This device does not manage its network ([network] backend = "none").', 409)
    return net


@router.get("/network", tags=["network"])
def network_state(request: Request) -> dict[str, Any]:
    """Hostname, active connections, the fallback access point and the last network error."""
    web = _web(request)
    net = _network(request)
    try:
        conns = net.connections()
        hostname = net.hostname()
    except NetworkError as exc:
        raise _bad(str(exc), 503) from None
    return {
        "hostname": hostname,
        "connections": [_as_dict(c) for c in conns],
        "access_point": web.fallback.ssid if web.fallback and web.fallback.active() else "",
        "last_error": web.fallback.last_error if web.fallback else "",
    }


def _as_dict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


@router.get("/network/wifi", tags=["network"])
def wifi_list(request: Request, rescan: bool = False) -> list[dict[str, Any]]:
    """Wi-Fi networks in range, strongest first."""
    try:
        return [_as_dict(n) for n in _network(request).wifi_networks(rescan=rescan)]
    except NetworkError as exc:
        raise _bad(str(exc), 503) from None


@router.post("/network/wifi", status_code=202, tags=["network"])
def wifi_join(body: WifiJoin, request: Request) -> dict[str, Any]:
    """Join a Wi-Fi network in the background (the page may lose its link); a failure reopens the access point."""
    web = _web(request)
    net = _network(request)
    try:
        validate_ssid(body.ssid)
        password = validate_wifi_password(body.password)
    except NetworkError as exc:
        raise _bad(str(exc)) from None

    def join() -> None:
        if web.fallback is not None:
            web.fallback.switch_to_wifi(body.ssid, password, hidden=body.hidden)
        else:
            try:
                net.join_wifi(body.ssid, password, hidden=body.hidden)
            except NetworkError as exc:
                log.error("joining Wi-Fi failed", extra={"ssid": body.ssid, "error": str(exc)})

    worker = threading.Thread(target=join, name="wifi-join", daemon=True)
    worker.start()
    request.app.state.web_last_join = worker
    return {"joining": body.ssid}


@router.put("/network/hostname", tags=["network"])
def set_hostname(body: HostnameChange, request: Request) -> dict[str, str]:
    net = _network(request)
    try:
        name = validate_hostname(body.hostname)
        net.set_hostname(name)
    except NetworkError as exc:
        raise _bad(str(exc)) from None
    return {"hostname": name}


# -- inference ------------------------------------------------------------------------------------------


def _pem(text: str, what: str) -> bytes | None:
    text = text.strip()
    if not text:
        return None
    if text.startswith("-----BEGIN"):
        return text.encode("ascii", errors="replace") + b"\n"
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"The {what} is neither PEM text nor base64; upload the PEM file.") from None


@router.post("/inference/tls", tags=["inference"])
def upload_tls(body: TlsUpload, request: Request) -> dict[str, Any]:
    """Validate the CA, this device's certificate and its key, store them (0600) and point `[inference] tls`
    at them; the previous files stay in force when anything is refused."""
    daemon = request.app.state.daemon
    ca, cert, key = _pem(body.ca_pem, "CA"), _pem(body.cert_pem, "certificate"), _pem(body.key_pem, "key")
    if not (ca and cert and key):
        raise _bad("Upload all three files: the server's CA, this device's certificate and its private key.")
    try:
        report = validate_tls_bundle(ca_pem=ca, cert_pem=cert, key_pem=key)
    except TlsBundleError as exc:
        raise _bad(str(exc)) from None
    paths = store_tls_bundle(daemon.config.data_dir / TLS_DIR, ca_pem=ca, cert_pem=cert, key_pem=key)
    tls = {
        "root_ca_certificate": paths["tls_ca"],
        "connect_certificate": paths["tls_cert"],
        "connect_private_key": paths["tls_key"],
    }
    daemon.store.update({"inference": {"tls": tls}})
    return {
        "stored": tls,
        "ca": [_as_dict(c) for c in report.ca],
        "certificate": [_as_dict(c) for c in report.certificate],
        "key_type": report.key_type,
        "warnings": report.warnings,
    }


def server_target(inference: Any) -> ServerTarget:
    """The probe's target from the `[inference]` section (the inference client's field names)."""
    extra = dict(inference.model_extra or {})
    endpoints = extra.get("endpoints") or ["tcp/127.0.0.1:7447"]
    tls = extra.get("tls") or {}
    return ServerTarget(
        endpoint=str(endpoints[0]),
        key_root=str(extra.get("key_root", "@lerobot")),
        model_id=str(extra.get("model_id", "")),
        revision=str(extra.get("revision", "main")),
        service=str(extra.get("service") or inference.task or "default"),
        tls_ca=tls.get("root_ca_certificate"),
        tls_cert=tls.get("connect_certificate"),
        tls_key=tls.get("connect_private_key"),
        timeout_s=min(float(extra.get("handshake_timeout_s", 2.0)) * 2, 5.0),
    )


@router.post("/inference/test", tags=["inference"])
async def test_connection(request: Request) -> dict[str, Any]:
    """Run the status and session handshake with the configured server once; capabilities or the mismatch."""
    daemon = request.app.state.daemon
    target = server_target(daemon.config.inference)
    if not target.model_id:
        raise _bad("Set the model id on the Inference page first; the server publishes under it.", 409)
    try:
        prefix = service_keys(target).prefix
    except ProtocolError as exc:
        raise _bad(f"The model id, revision or service is not usable: {exc}") from None
    robot = RobotDescription(
        robot_type=daemon.config.robot.type,
        action_names=[f"{n}.pos" for n in daemon.arm.joint_names],
        camera_names=list(daemon.cameras),
        fps=daemon.config.loop.rate_hz,
        task=daemon.task,
    )
    result = await run_in_threadpool(_web(request).probe.probe, target, robot)
    return {"target": target.endpoint, "service": prefix, **result.as_dict()}


# -- robot ----------------------------------------------------------------------------------------------


def _positions(daemon: Any) -> np.ndarray | None:
    raw = getattr(daemon.arm, "raw_positions", None)
    if callable(raw):
        return raw()
    state = daemon.arm.latest_state()
    return None if state is None else state.positions


@router.get("/robot/scan", tags=["robot"])
def scan(request: Request) -> dict[str, Any]:
    """The servos found on the buses (ids and models) as the MCU reports them."""
    arm = request.app.state.daemon.arm
    scanner = getattr(arm, "scan", None)
    if callable(scanner):
        return {"supported": True, "servos": scanner()}
    status = arm.status()
    servos = status.get("servos") or [
        {"bus": 0, "id": i + 1, "joint": n, "model": status.get("servo_model", "unknown")}
        for i, n in enumerate(arm.joint_names)
    ]
    return {
        "supported": bool(status.get("servos")),
        "servos": servos,
        "link": {k: v for k, v in status.items() if k != "servos"},
    }


@router.post("/robot/calibration", tags=["robot"])
def calibration_step(body: CalibrationStep, request: Request) -> dict[str, Any]:
    """The calibration wizard: start (torque off), record each joint's range, save, or cancel."""
    daemon = request.app.state.daemon
    wizard = _web(request).calibration
    try:
        if body.action == "start":
            daemon.set_torque(False)
            return wizard.begin(tuple(daemon.arm.joint_names), lambda: _positions(daemon))
        if body.action == "record":
            return wizard.record(body.joint)
        if body.action == "save":
            view = wizard.save(daemon.config.calibration_path())
            daemon.warnings.add(
                "calibration_saved", "a new calibration was saved; restart the daemon so the MCU enforces it"
            )
            return view
        wizard.cancel()
        return wizard.view()
    except CalibrationError as exc:
        raise _bad(str(exc), 409) from None


@router.get("/robot/calibration", tags=["robot"])
def calibration_view(request: Request) -> dict[str, Any]:
    view = _web(request).calibration.view()
    positions = _positions(request.app.state.daemon)
    view["positions"] = None if positions is None else [round(float(p), 2) for p in positions]
    return view


@router.post("/robot/jog", tags=["robot"])
def jog(body: JogRequest, request: Request) -> dict[str, Any]:
    """Move one joint by `delta` from where it is, clamped to its calibrated range (idle mode, torque on)."""
    daemon = request.app.state.daemon
    names = tuple(daemon.arm.joint_names)
    if body.joint not in names:
        raise _bad(f"There is no joint {body.joint!r}; use one of {', '.join(names)}.", 404)
    if daemon.loop.mode is not RobotMode.IDLE:
        raise _bad("Jogging needs idle mode; press Hold first.", 409)
    ranges = load_ranges(daemon.config.calibration_path(), names)
    if ranges is None:
        raise _bad("The arm is not calibrated; run the calibration wizard before jogging.", 409)
    if callable(getattr(daemon.arm, "raw_positions", None)):
        # The arm reports calibrated units and clamps targets to the calibrated range itself (so does the MCU).
        ranges = [(-100.0, 100.0)] * len(names)
    state = daemon.arm.latest_state()
    if state is None:
        raise _bad("The arm reports no position; check the MCU link on the Status page.", 503)
    if not state.torque_enabled:
        raise _bad("Torque is off; turn torque on before jogging.", 409)
    index = names.index(body.joint)
    target = np.array(state.positions, dtype=np.float64)
    low, high = ranges[index]
    target[index] = float(np.clip(target[index] + body.delta, low, high))
    daemon.arm.send_targets(target.astype(np.float32))
    return {"joint": body.joint, "target": round(float(target[index]), 3), "range": [low, high]}


# -- system ---------------------------------------------------------------------------------------------


@router.get("/system", tags=["system"])
def system_info(request: Request) -> dict[str, Any]:
    """Version, disk use of the data partition, and the daemon's recent log lines."""
    daemon = request.app.state.daemon
    usage = shutil.disk_usage(daemon.config.data_dir)
    return {
        "version": daemon.status()["version"],
        "data_dir": str(daemon.config.data_dir),
        "disk": {"total_bytes": usage.total, "free_bytes": usage.free, "used_bytes": usage.used},
        "log": request.app.state.web_log.lines(200),
    }


@router.post("/system/restart", status_code=202, tags=["system"])
def restart_daemon(request: Request) -> dict[str, str]:
    _web(request).system.restart_daemon()
    return {"restarting": "spinal-edge"}


@router.post("/system/reboot", status_code=202, tags=["system"])
def reboot(request: Request) -> dict[str, str]:
    request.app.state.daemon.hold()
    _web(request).system.reboot()
    return {"rebooting": "device"}


@router.post("/system/factory-reset", status_code=202, tags=["system"])
def factory_reset(body: FactoryReset, request: Request) -> dict[str, Any]:
    """Forget settings, TLS files, calibration and the admin password; make a new setup code; restart."""
    if body.confirm.strip().lower() != "factory reset":
        raise _bad('Type "factory reset" to confirm.')
    web = _web(request)
    daemon = request.app.state.daemon
    daemon.hold()
    daemon.store.reset()
    data_dir = daemon.config.data_dir
    shutil.rmtree(data_dir / TLS_DIR, ignore_errors=True)
    daemon.config.calibration_path().unlink(missing_ok=True)
    if body.delete_recordings:
        shutil.rmtree(daemon.config.episodes_dir(), ignore_errors=True)
    web.account.clear()
    web.setup_code.regenerate()
    web.sessions.revoke_all()
    log.warning("factory reset: settings, credentials and calibration removed; new setup code written")
    web.system.restart_daemon()
    return {"reset": True, "recordings_deleted": body.delete_recordings}
