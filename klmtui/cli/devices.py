"""`klmtui device add|list|check|trust|remove`: the device registry (docs/architecture.md, CLI contract).

Thin: every decision lives in remote.devices; this module parses options and prints.
"""

from __future__ import annotations

import click

from klmtui.cli.common import AppContext, emit_json, pass_app, print_table

LIST_COLUMNS = ("name", "host", "user", "port", "key", "python", "tegrastats", "workdir")
CHECK_ROWS = (
    ("host key", "host_key"),
    ("board", "model"),
    ("L4T", "l4t"),
    ("JetPack", "jetpack"),
    ("python", "python"),
    ("torch", "torch"),
    ("CUDA", "cuda"),
    ("CUDA version", "cuda_version"),
    ("nvpmodel", "nvpmodel"),
    ("tegrastats", "tegrastats_path"),
    ("work folder", "workdir"),
    ("free disk (GB)", "disk_free_gb"),
)


@click.group("device")
def device() -> None:
    """The devices benchmarks run on (SSH, keys only, verified host keys)."""


@device.command("add")
@click.argument("name")
@click.option("--host", required=True, help="Host name, IP or ~/.ssh/config alias.")
@click.option("--user", default=None, help="Login user (default: ~/.ssh/config, else yours).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="SSH port (default: ~/.ssh/config, else 22).")
@click.option("--key", "key", metavar="FILE", default=None, help="Private key file (its path is stored, never the key).")
@click.option("--python", "python", metavar="PATH", default=None, help="Python on the device (default python3).")
@click.option("--tegrastats", metavar="CMD", default=None, help="tegrastats command on the device (default tegrastats).")
@click.option("--workdir", metavar="DIR", default=None, help="Work folder on the device (default ~/klmtui).")
@pass_app
def add(app: AppContext, name: str, host: str, user, port, key, python, tegrastats, workdir) -> None:
    """Register device NAME (nothing is contacted; run `device trust NAME` next)."""
    from remote.devices import add_device

    record = add_device(
        app.store(), name, host, user=user, port=port, key=key, python=python, tegrastats=tegrastats, workdir=workdir
    )
    click.echo(f"added device {record['name']} ({record['host']}); next: klmtui device trust {record['name']}")


@device.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array on stdout.")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """The registered devices."""
    from remote.devices import list_devices

    devices = list_devices(app.store(), host_keys=True)
    if as_json:
        emit_json(devices)
        return
    rows = ([d.get(c) for c in LIST_COLUMNS] + [_known(d["host_key_known"])] for d in devices)
    print_table("devices", (*LIST_COLUMNS, "host key"), rows)


def _known(value) -> str:
    return {True: "known", False: "not trusted yet"}.get(value, "?")


@device.command("check")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="A JSON array with one object on stdout.")
@pass_app
def check(app: AppContext, name: str, as_json: bool) -> None:
    """Connect to NAME and report L4T/JetPack, board, Python, torch/CUDA, nvpmodel, tegrastats, disk."""
    from remote.devices import check_device

    report = check_device(app.store(), name)
    if as_json:
        emit_json([report])
        return
    rows = [(label, _unavailable(report.get(field))) for label, field in CHECK_ROWS]
    rows += [("problem", p) for p in report["problems"]]
    print_table(f"device {name} ({report['user']}@{report['hostname']}:{report['port']})", ("", "value"), rows)


def _unavailable(value):
    if value is None:
        return "unavailable"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return value


@device.command("trust")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Trust without asking (scripts); the fingerprint is still printed.")
@pass_app
def trust(app: AppContext, name: str, yes: bool) -> None:
    """Show NAME's host key fingerprint and record it in klmtui's known_hosts once confirmed."""
    from remote.devices import trust_device

    def confirm(prompt: str) -> bool:
        return click.confirm(prompt, default=False, err=True)

    def announce(prompt: str) -> bool:  # --yes: say what is being trusted, do not ask
        click.echo(prompt.removesuffix(" Trust it?"), err=True)
        return True

    result = trust_device(app.store(), name, yes=False, confirm=announce if yes else confirm)
    for hop in result["hops"]:
        click.echo(f"device {name}: trusted jump host {hop}")
    if result["status"] == "already-trusted":
        click.echo(f"device {name}: {result['key_type']} {result['fingerprint']} is already trusted")
        return
    verb = "replaced the recorded key with" if result["status"] == "replaced" else "trusted"
    click.echo(
        f"device {name}: {verb} {result['key_type']} {result['fingerprint']} for {result['host_entry']}"
        f" (in {result['known_hosts']})"
    )


@device.command("remove")
@click.argument("name")
@pass_app
def remove(app: AppContext, name: str) -> None:
    """Forget device NAME."""
    from remote.devices import remove_device

    remove_device(app.store(), name)
    click.echo(f"removed device {name}")


COMMANDS: list = [device]
