#!/usr/bin/env python3
"""Proves through Ironic that a lab VM really boots a live ISO (scripts/lab start DIR --vms 1|2).

  lab/vm/smoke.py DIR [--vm N] [--phases deploy,inspect,bios] [--boot-mode bios|uefi]
                      [--inventory FILE] [--bios-settings FILE]

Uses only Ironic's REST API (and virsh to look at the domain). One node, for VM N (default 1):
driver redfish, boot redfish-virtual-media, deploy ramdisk, inspect redfish, bios redfish,
automated cleaning off, capability boot_mode:bios (or uefi). Phases, each step timed:
  deploy   manage, provide, deploy live.iso and see its marker on the VM's serial console; soft
           power off (the guest powers off on the ACPI power button); undeploy;
           deploy live-2.iso with a config drive and see both its marker and the user-data line;
           eject the virtual media through Ironic's vmedia API and check `virsh domblklist`;
           undeploy.
  inspect  manage, redfish (out-of-band) inspection, and the inventory checked against the domain
           (1024 MiB, 1 cpu, the lab's MAC, the disk); --inventory saves it.
  bios     BIOS settings read (?detail=True, --bios-settings saves them) and a manual clean step
           bios.apply_configuration ProcTurboMode=Disabled, checked in the BMC's BIOS attributes.
The node is deleted at the end. Exits 1 at the first step that fails, with Ironic's last_error.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

API_VERSION = "1.95"
USER_DATA = "hello-from-metalhost"
BOOT_TIMEOUT = 240
STATE_TIMEOUT = 300


class Ironic:
    """A tiny Ironic REST client (noauth or HTTP basic auth, from the lab's lab.json)."""

    def __init__(self, lab):
        self.url = lab["ironic_url"]
        self.headers = {"X-OpenStack-Ironic-API-Version": API_VERSION, "Content-Type": "application/json"}
        self.context = None
        if "ironic_ca_file" in lab:
            import base64
            import ssl
            self.context = ssl.create_default_context(cafile=lab["ironic_ca_file"])
            token = base64.b64encode(f"{lab['ironic_user']}:{lab['ironic_password']}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def call(self, method, path, body=None, ok=(200, 201, 202, 204)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=self.headers)
        for attempt in range(20):
            try:
                with urllib.request.urlopen(req, timeout=120, context=self.context) as r:
                    text = r.read()
                    return json.loads(text) if text else None
            except urllib.error.HTTPError as e:
                text = e.read().decode(errors="replace")
                # the node is locked by a task still running: try again
                if e.code in (409, 503) and attempt < 19:
                    time.sleep(1)
                    continue
                if e.code in ok:
                    return None
                raise SystemExit(f"smoke: {method} {path} -> {e.code}: {text}")

    def node(self, ident):
        return self.call("GET", f"/v1/nodes/{ident}")

    def provision(self, ident, target, **extra):
        self.call("PUT", f"/v1/nodes/{ident}/states/provision", dict(target=target, **extra))

    def wait(self, ident, states, timeout=STATE_TIMEOUT):
        """Waits until the node has no target and is in one of `states`; fails on a *failed state."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            n = self.node(ident)
            if n["provision_state"] in states and not n["target_provision_state"]:
                return n
            if n["provision_state"].endswith("failed") or n["provision_state"] == "error":
                raise SystemExit(f"smoke: node is {n['provision_state']}: {n['last_error']}")
            time.sleep(1)
        n = self.node(ident)
        raise SystemExit(f"smoke: node still {n['provision_state']} (target {n['target_provision_state']}) "
                         f"after {timeout}s waiting for {states}; last_error: {n['last_error']}")


class Steps:
    """Times each step and prints it."""

    def __init__(self):
        self.t0 = time.time()
        self.times = []

    def run(self, what, fn, *args, **kwargs):
        start = time.time()
        result = fn(*args, **kwargs)
        took = time.time() - start
        self.times.append((what, round(took, 1)))
        print(f"smoke: {what}: {took:.1f} s", flush=True)
        return result


def console_size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def wait_console(path, needle, offset, timeout=BOOT_TIMEOUT):
    """Waits until `needle` appears in the serial console file after byte `offset`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        for line in text.splitlines():
            if needle in line:
                return line.strip()
        time.sleep(0.5)
    raise SystemExit(f"smoke: {needle!r} not on {path} after {timeout}s")


def virsh(*args):
    return subprocess.run(["virsh", "-q", "-c", "qemu:///system"] + list(args),
                          capture_output=True, text=True, check=True).stdout


def media_of(domain, inactive=False):
    """The domain's cdrom/floppy sources (virsh domblklist), live or as defined."""
    args = ["domblklist", domain, "--details"] + (["--inactive"] if inactive else [])
    media = []
    for line in virsh(*args).splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] in ("cdrom", "floppy") and parts[3] != "-":
            media.append(f"{parts[2]}={parts[3]}")
    return media


def deploy_phase(ironic, steps, node, vm, lab):
    uuid = node["uuid"]
    isos = lab["live_isos"]
    steps.run("provide (available)", lambda: (ironic.provision(uuid, "provide"), ironic.wait(uuid, ["available"])))

    for round_, (iso, configdrive) in enumerate([("live.iso", None), ("live-2.iso", {"user_data": USER_DATA})], 1):
        ironic.call("PATCH", f"/v1/nodes/{uuid}",
                    [{"op": "add", "path": "/instance_info/boot_iso", "value": isos[iso]}])
        offset = console_size(vm["console"])
        extra = {"configdrive": configdrive} if configdrive else {}
        start = time.time()
        steps.run(f"deploy {iso}{' + config drive' if configdrive else ''} (active)",
                  lambda: (ironic.provision(uuid, "active", **extra), ironic.wait(uuid, ["active"])))
        active_at = time.time()
        media = media_of(vm["domain"])
        print(f"smoke: while active the domain has {media}")
        marker = steps.run(f"boot of {iso} to its marker (after active)",
                           wait_console, vm["console"], f"metalhost-live-iso: booted {iso}", offset)
        print(f"smoke: console: {marker} ({time.time() - start:.1f} s after the deploy request, "
              f"{time.time() - active_at:.1f} s after active)")
        if not configdrive:
            steps.run("soft power off (ACPI power button) to power off", soft_power_off, ironic, uuid, vm, offset)
        if configdrive:
            line = steps.run("config drive to its user-data line", wait_console, vm["console"],
                             "metalhost-user-data:", offset)
            print(f"smoke: console: {line}")
            if line != f"metalhost-user-data: {USER_DATA}":
                raise SystemExit(f"smoke: expected the user data {USER_DATA!r}, got {line!r}")
            steps.run("eject through Ironic (DELETE /vmedia)", eject, ironic, uuid, vm["domain"])
        steps.run(f"undeploy {iso} (available)",
                  lambda: (ironic.provision(uuid, "deleted"), ironic.wait(uuid, ["available"])))
        after = media_of(vm["domain"], inactive=True)
        print(f"smoke: after undeploy the domain is {virsh('domstate', vm['domain']).strip()}, media {after}")
        if after:
            raise SystemExit(f"smoke: media still attached after undeploy: {after}")


def soft_power_off(ironic, uuid, vm, offset):
    """Ironic's soft power off (Redfish GracefulShutdown, libvirt's ACPI power button): the live
    ISO's acpid powers the machine off."""
    ironic.call("PUT", f"/v1/nodes/{uuid}/states/power", {"target": "soft power off", "timeout": 60})
    line = wait_console(vm["console"], "ACPI power button", offset, timeout=60)
    deadline = time.time() + 90
    while ironic.node(uuid)["power_state"] != "power off" or ironic.node(uuid)["target_power_state"]:
        if time.time() > deadline:
            raise SystemExit(f"smoke: still {ironic.node(uuid)['power_state']} after a soft power off")
        time.sleep(1)
    print(f"smoke: console: {line}; domain {virsh('domstate', vm['domain']).strip()}")


def eject(ironic, uuid, domain):
    """Detaches every virtual medium through Ironic; waits until libvirt's definition has none.
    The running domain keeps its media until it is next started (sushy-tools' libvirt driver
    changes the domain's definition only)."""
    ironic.call("DELETE", f"/v1/nodes/{uuid}/vmedia")
    deadline = time.time() + 60
    while media_of(domain, inactive=True):
        if time.time() > deadline:
            raise SystemExit(f"smoke: media still defined after eject: {media_of(domain, inactive=True)}")
        time.sleep(0.5)
    vmedia = ironic.call("GET", f"/v1/nodes/{uuid}/vmedia")
    print(f"smoke: after eject: defined media {media_of(domain, inactive=True)}, live media "
          f"{media_of(domain)}; Ironic GET /vmedia: {json.dumps(vmedia)}")


def inspect_phase(ironic, steps, node, vm, inventory_file):
    uuid = node["uuid"]
    steps.run("inspect (redfish, manageable)", lambda: (ironic.provision(uuid, "inspect"), ironic.wait(uuid, ["manageable"])))
    inv = ironic.call("GET", f"/v1/nodes/{uuid}/inventory")
    inventory = inv["inventory"]
    props = ironic.node(uuid)["properties"]
    print(f"smoke: properties after inspection: {json.dumps(props)}")
    macs = [i["mac_address"] for i in inventory.get("interfaces", [])]
    disks = [(d["name"], d["size"]) for d in inventory.get("disks", [])]
    print(f"smoke: inventory memory {inventory.get('memory')}, cpu {inventory.get('cpu')}, macs {macs}, disks {disks}")
    problems = []
    if inventory.get("memory", {}).get("physical_mb") != 1024:
        problems.append("memory.physical_mb is not 1024")
    if inventory.get("cpu", {}).get("count") != 1:
        problems.append("cpu.count is not 1")
    if vm["mac"] not in macs:
        problems.append(f"the VM's MAC {vm['mac']} is not among {macs}")
    if not disks or not all(size for _, size in disks):
        problems.append("no disk with a size")
    if problems:
        raise SystemExit("smoke: inventory: " + "; ".join(problems))
    if inventory_file:
        with open(inventory_file, "w") as f:
            json.dump(inv, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"smoke: inventory saved to {inventory_file}")


def bios_phase(ironic, steps, node, vm, lab, bios_file):
    uuid = node["uuid"]
    settings = steps.run("GET bios?detail=True", ironic.call, "GET", f"/v1/nodes/{uuid}/bios?detail=True")
    names = {s["name"]: s["value"] for s in settings["bios"]}
    print(f"smoke: {len(names)} BIOS settings: {json.dumps(names, sort_keys=True)}")
    if bios_file:
        with open(bios_file, "w") as f:
            json.dump(settings, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"smoke: BIOS settings saved to {bios_file}")
    target = "Enabled" if names.get("ProcTurboMode") == "Disabled" else "Disabled"
    step = {"interface": "bios", "step": "apply_configuration",
            "args": {"settings": [{"name": "ProcTurboMode", "value": target}]}}
    steps.run(f"manual clean bios.apply_configuration ProcTurboMode={target} (manageable)",
              lambda: (ironic.provision(uuid, "clean", clean_steps=[step], disable_ramdisk=True),
                       ironic.wait(uuid, ["manageable"], timeout=600)))
    bmc = bmc_bios(lab, vm)
    print(f"smoke: the BMC's BIOS attribute ProcTurboMode is now {bmc.get('ProcTurboMode')}")
    if bmc.get("ProcTurboMode") != target:
        raise SystemExit(f"smoke: BIOS attribute not applied: {bmc.get('ProcTurboMode')}")
    after = {s["name"]: s["value"] for s in ironic.call("GET", f"/v1/nodes/{uuid}/bios")["bios"]}
    print(f"smoke: Ironic's cached ProcTurboMode: {after.get('ProcTurboMode')}")
    # clean leaves the machine as the reboot left it: off, for the next phases
    ironic.call("PUT", f"/v1/nodes/{uuid}/states/power", {"target": "power off"})


def bmc_bios(lab, vm):
    """The BIOS attributes as the BMC emulator (sushy-tools' libvirt driver) has them."""
    req = urllib.request.Request(f"{lab['sushy_url']}/redfish/v1/Systems/{vm['uuid']}/BIOS")
    if "bmc_password" in lab:
        import base64
        token = base64.b64encode(f"{lab['bmc_user']}:{lab['bmc_password']}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["Attributes"]


def main(argv):
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    lab_dir = argv[0]

    def opt(name, default=None):
        return argv[argv.index(name) + 1] if name in argv else default
    lab = json.load(open(os.path.join(lab_dir, "lab.json")))
    if not lab.get("vms"):
        raise SystemExit("smoke: this lab has no VMs (scripts/lab start DIR --vms 1)")
    vm = lab["systems"][int(opt("--vm", "1")) - 1]
    phases = opt("--phases", "deploy,inspect,bios").split(",")
    ironic = Ironic(lab)
    steps = Steps()
    driver_info = {"redfish_address": lab["sushy_url"], "redfish_system_id": f"/redfish/v1/Systems/{vm['uuid']}",
                   "redfish_username": lab.get("bmc_user", "admin"), "redfish_password": lab.get("bmc_password", "password")}
    node = steps.run("create node", ironic.call, "POST", "/v1/nodes", {
        "name": f"smoke-{vm['domain']}", "driver": "redfish", "driver_info": driver_info,
        "boot_interface": "redfish-virtual-media", "deploy_interface": "ramdisk",
        "inspect_interface": "redfish", "bios_interface": "redfish", "automated_clean": False,
        "properties": {"capabilities": f"boot_mode:{opt('--boot-mode', 'bios')}"},
    })
    uuid = node["uuid"]
    print(f"smoke: node {uuid} for {vm['domain']} ({vm['uuid']}, console {vm['console']})")
    try:
        steps.run("manage (manageable)", lambda: (ironic.provision(uuid, "manage"), ironic.wait(uuid, ["manageable"])))
        if "inspect" in phases:
            inspect_phase(ironic, steps, node, vm, opt("--inventory"))
        if "bios" in phases:
            bios_phase(ironic, steps, node, vm, lab, opt("--bios-settings"))
        if "deploy" in phases:
            deploy_phase(ironic, steps, node, vm, lab)
    finally:
        n = ironic.node(uuid)
        print(f"smoke: node ends {n['provision_state']} (power {n['power_state']}), last_error {n['last_error']}")
    if n["provision_state"] == "manageable":
        ironic.provision(uuid, "provide")
        ironic.wait(uuid, ["available"])
    ironic.call("DELETE", f"/v1/nodes/{uuid}")
    print("smoke: timings: " + json.dumps(dict(steps.times)))
    print(f"smoke: all phases passed ({', '.join(phases)}) in {time.time() - steps.t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
