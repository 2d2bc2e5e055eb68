"""Runs inside the booted image (sent over SSH to the image's python3) and prints what the boot test checks, as JSON.

Not a test module: the boot test reads this file and pipes it to `ssh root@device python3 -`.
"""

import json
import os
import pwd
import socket
import subprocess
import time


def sh(*args):
    done = subprocess.run(args, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else f"error {done.returncode}: {done.stderr.strip()}"


def show(unit, *props):
    out = sh("systemctl", "show", unit, "-p", ",".join(props))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def try_write(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        os.unlink(path)
        return "writable"
    except OSError as exc:
        return os.strerror(exc.errno)


def listening():
    ports = []
    for line in sh("ss", "-Htln").splitlines():
        local = line.split()[3]
        host, _, port = local.rpartition(":")
        ports.append({"host": host, "port": int(port)})
    return ports


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as exc:
        return f"missing: {exc.strerror}"


def stat_of(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"mode": oct(st.st_mode & 0o777), "owner": pwd.getpwuid(st.st_uid).pw_name}


def passwords():
    found = []
    for line in read("/etc/shadow").splitlines():
        name, hashed = line.split(":")[:2]
        if hashed != "*" and not hashed.startswith("!"):
            found.append(name)
    return found


def polkit_allows(action, **details):
    """Whether polkit grants `action` to a process of the daemon's user (as the setup page would ask)."""
    proc = subprocess.Popen(["setpriv", "--reuid=spinal", "--regid=spinal", "--init-groups", "sleep", "60"])
    try:
        time.sleep(0.5)
        args = ["pkcheck", "--action-id", action, "--process", str(proc.pid)]
        for key, value in details.items():
            args += ["--detail", key, value]
        return subprocess.run(args, capture_output=True).returncode == 0
    finally:
        proc.kill()
        proc.wait()


def verify_units():
    units = [
        "spinal-edge.service",
        "spinal-firstboot.service",
        "spinal-preseed.service",
        "spinal-setup-code.path",
        "spinal-setup-code.service",
    ]
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    return (done.stdout + done.stderr).strip()


data = os.statvfs("/data")
facts = {
    "root_options": sh("findmnt", "-no", "OPTIONS", "/"),
    "usr_write": try_write("/usr/.spinal-write-test"),
    "opt_write": try_write("/opt/spinal/.spinal-write-test"),
    "etc_fstype": sh("findmnt", "-no", "FSTYPE", "/etc"),
    "var_fstype": sh("findmnt", "-no", "FSTYPE", "/var"),
    "data_source": sh("findmnt", "-no", "SOURCE", "/data"),
    "data_bytes": data.f_blocks * data.f_frsize,
    "tmp_fstype": sh("findmnt", "-no", "FSTYPE", "/tmp"),
    "listening": listening(),
    "identity": read("/var/lib/spinal/identity.json"),
    "setup_code": read("/var/lib/spinal/setup-code").strip(),
    "setup_code_stat": stat_of("/var/lib/spinal/setup-code"),
    "hostname": socket.gethostname(),
    "machine_id": read("/etc/machine-id").strip(),
    "host_key": sh("ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"),
    "wifi_profiles": sorted(os.listdir("/etc/NetworkManager/system-connections")),
    "edge_toml": read("/etc/spinal/edge.toml"),
    "passwords": passwords(),
    "edge": show(
        "spinal-edge.service",
        "ActiveState",
        "SubState",
        "Result",
        "NRestarts",
        "ActiveEnterTimestampMonotonic",
        "ExecMainStatus",
    ),
    "firstboot": show("spinal-firstboot.service", "ActiveState", "ConditionResult", "Result"),
    "preseed_unit": show("spinal-preseed.service", "ActiveState", "Result"),
    "failed_units": sh("systemctl", "--failed", "--no-legend", "--plain"),
    "security": sh("systemd-analyze", "security", "--no-pager", "spinal-edge.service"),
    "ssh_ports_set": sh("nft", "list", "set", "inet", "spinal_filter", "ssh_ports"),
    "journal_limits": read("/etc/systemd/journald.conf.d/spinal.conf"),
    "edge_journal": sh("journalctl", "-b", "-u", "spinal-edge.service", "--no-pager", "-n", "30"),
    "edge_first_start": sh(
        "journalctl",
        "-b",
        "-u",
        "spinal-edge.service",
        "-o",
        "short-monotonic",
        "--no-pager",
        "--grep",
        "Starting spinal-edge",
        "-n",
        "1000",
    ),
    "firstboot_done": show("spinal-firstboot.service", "ActiveEnterTimestampMonotonic"),
    "critical_chain": sh("systemd-analyze", "critical-chain", "--no-pager", "spinal-edge.service"),
    "blame": sh("systemd-analyze", "blame", "--no-pager"),
    "polkit": {
        "network": polkit_allows("org.freedesktop.NetworkManager.settings.modify.system"),
        "restart_edge": polkit_allows(
            "org.freedesktop.systemd1.manage-units", unit="spinal-edge.service", verb="restart"
        ),
        "restart_ssh": polkit_allows(
            "org.freedesktop.systemd1.manage-units", unit="ssh.service", verb="restart"
        ),
        "reboot": polkit_allows("org.freedesktop.login1.reboot"),
    },
    "verify_units": verify_units(),
    "uptime": float(read("/proc/uptime").split()[0]),
}
print(json.dumps(facts))
