"""Every command of the whole ``bandit-router`` app has help text, and so does every option
and argument, so that future commands cannot forget it (a habit from sqlite-utils)."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from bandit_router.cli.app import app


def _walk(command, path: tuple[str, ...] = ()):
    # Duck-typed: typer ships its own copy of click, so isinstance checks against click fail.
    yield path, command
    if getattr(command, "commands", None):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


def _commands(typer_app=app):
    return list(_walk(typer.main.get_command(typer_app), ("bandit-router",)))


def test_the_command_tree_is_not_empty():
    names = {" ".join(p) for p, _ in _commands()}
    for expected in [
        "bandit-router runs list",
        "bandit-router regret show",
        "bandit-router regret export",
    ]:
        assert expected in names


def missing_help(typer_app) -> list[str]:
    """Commands, options and arguments of ``typer_app`` without help text."""
    missing = []
    for path, command in _commands(typer_app):
        name = " ".join(path)
        if not (command.help or command.short_help or "").strip():
            missing.append(f"{name}: the command has no help text")
        for param in command.params:
            if param.name == "help":
                continue
            if not (getattr(param, "help", None) or "").strip():
                kind = getattr(param, "param_type_name", "parameter")
                label = "/".join(getattr(param, "opts", None) or [str(param.name)])
                missing.append(f"{name}: {kind} {label} has no help text")
    return missing


def test_every_command_option_and_argument_has_help_text():
    missing = missing_help(app)
    assert not missing, "add help= texts:\n" + "\n".join(missing)


def test_the_check_catches_a_command_without_help():
    import typer

    bad = typer.Typer()

    @bad.command()
    def documented(x: int = typer.Option(1, help="An option.")) -> None:
        """Has help."""

    @bad.command()
    def silent(name: str = typer.Argument(...), y: int = typer.Option(2)) -> None:
        pass

    found = missing_help(bad)
    assert any("silent: the command" in m for m in found)
    assert any("option" in m and "--y" in m for m in found)
    assert any("argument" in m and "name" in m for m in found)
    assert not any("documented" in m for m in found)


def test_help_pages_render():
    runner = CliRunner()
    for path, _ in _commands():
        result = runner.invoke(app, [*path[1:], "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_every_command_shows_an_example_whose_flags_exist():
    """Each command's help ends with an ``Example:`` that runs it; its options must be the
    command's own (a renamed flag would otherwise leave a stale example behind)."""
    import shlex

    for path, command in _commands():
        text = command.help or ""
        assert "Example:" in text, f"{' '.join(path)}: the help has no Example:"
        example = text.split("Example:", 1)[1].strip().splitlines()[0].strip()
        if getattr(command, "commands", None):  # a group: the example runs one of its commands
            assert example.startswith(" ".join(path)), (path, example)
            continue
        words = shlex.split(example.split("&&")[-1])
        assert words[: len(path)] == list(path), (path, example)
        flags = {o for p in command.params for o in getattr(p, "opts", [])}
        unknown = [w for w in words if w.startswith("-") and w not in flags]
        assert not unknown, f"{' '.join(path)}: the example uses unknown {unknown}"
