"""The deployment options of ``overcast node create`` and ``overcast node
deploy``: files fetched from the project's containers, a script with its
environment and directory, and the user to log in as."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def fetch_step(text: str) -> dict[str, Any]:
    """``container/key:/target[:mode]`` as a file step."""
    source, _, rest = text.partition(":")
    target, _, mode = rest.partition(":")
    if "/" not in source or not target.startswith("/"):
        raise click.BadParameter(f"{text!r}: give container/key:/target[:mode]")
    item = {"from": source, "target": target}
    if mode:
        item["mode"] = mode
    return {"file": item}


def deploy_options(command: F) -> F:
    """Add the deployment options to ``command``."""
    for option in reversed(
        (
            click.option(
                "--fetch",
                "fetch",
                multiple=True,
                metavar="CONTAINER/KEY:/TARGET[:MODE]",
                help="Put a stored object on the node (repeatable; streamed, checksummed).",
            ),
            click.option("--script", type=click.File("r"), help="Script to run on the node."),
            click.option("--env", multiple=True, metavar="NAME=VALUE", help="For the script."),
            click.option("--cwd", help="Directory the script runs in."),
            click.option("--user", "ssh_username", help="User to log in as (default root)."),
        )
    ):
        command = option(command)
    return command


def deploy_body(options: dict[str, Any]) -> dict[str, Any] | None:
    """The ``deploy`` body the options ask for, or None."""
    steps = [fetch_step(text) for text in options.get("fetch") or ()]
    script = options.get("script")
    if script is not None:
        step: dict[str, Any] = {"script": script.read()}
        env = dict(item.partition("=")[::2] for item in options.get("env") or ())
        if env:
            step["env"] = env
        if options.get("cwd"):
            step["cwd"] = options["cwd"]
        steps.append(step)
    elif options.get("env") or options.get("cwd"):
        raise click.UsageError("--env and --cwd go with --script")
    if not steps:
        return None
    body: dict[str, Any] = {"steps": steps}
    if options.get("ssh_username"):
        body["ssh_username"] = options["ssh_username"]
    return body
