#!/usr/bin/env python3
"""A stand-in `nmcli` executable for tests: records each argv (and any passwd-file's content) as a JSON line
in $FAKE_NMCLI_LOG and answers from the canned state in $FAKE_NMCLI_STATE (a JSON file)."""

import json
import os
import sys

argv = sys.argv[1:]
with open(os.environ["FAKE_NMCLI_STATE"]) as f:
    state = json.load(f)
entry = {"argv": argv}
if "passwd-file" in argv:
    path = argv[argv.index("passwd-file") + 1]
    with open(path) as f:
        entry["passwd_file"] = f.read()
    entry["passwd_mode"] = oct(os.stat(path).st_mode & 0o777)
with open(os.environ["FAKE_NMCLI_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\n")

words = [a for a in argv if a not in ("-t", "-e", "yes")]
if words[:1] == ["--wait"]:
    words = words[2:]
if argv[-2:] == ["general", "hostname"]:
    print(state.get("hostname", "spinal"))
elif words[:2] == ["general", "hostname"]:
    pass
elif "connection" in words and "show" in words and "--active" in words:
    for line in state.get("active", []):
        print(line)
elif "device" in words and "show" in words:
    for line in state.get("addresses", {}).get(words[-1], []):
        print(line)
elif "-g" in argv:
    # nmcli escapes ':' and '\\' in terse values
    print(state.get("ssids", {}).get(argv[-1], "").replace("\\", "\\\\").replace(":", "\\:"))
elif words[:3] == ["device", "wifi", "list"] or "wifi" in words and "list" in words:
    for line in state.get("wifi", []):
        print(line)
elif "up" in words:
    psk = entry.get("passwd_file", "").partition(":")[2].strip()
    if state.get("refuse_psk") and psk == state["refuse_psk"]:
        print(
            "Error: Connection activation failed: (7) Secrets were required, but not provided.",
            file=sys.stderr,
        )
        sys.exit(4)
elif "delete" in words and state.get("nothing_to_delete"):
    print("Error: unknown connection", file=sys.stderr)
    sys.exit(10)
