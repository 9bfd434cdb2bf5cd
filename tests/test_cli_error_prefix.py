"""`kaldilite.cli.main`'s one-line user errors name the verb once, however the library worded the message."""

import click
import pytest

import kaldilite.cli
from kaldilite.errors import InputError


@pytest.mark.parametrize("message, shown", [
    ("train-sat: need 1 <= num-leaves <= tot-gauss, got 9 and 4", "need 1 <= num-leaves <= tot-gauss, got 9 and 4"),
    ("sum-tree-stats: no tree statistics to sum", "sum-tree-stats: no tree statistics to sum"),  # another step: kept
    ("train-sat:no space after the colon", "train-sat:no space after the colon"),
], ids=["own-verb-dropped", "other-step-kept", "not-a-prefix"])
def test_a_message_that_starts_with_the_verb_is_shown_with_one_prefix(monkeypatch, capsys, message, shown):
    group = click.Group()

    @group.command("train-sat")
    def failing():
        raise InputError(message)

    monkeypatch.setattr(kaldilite.cli, "cli", group)
    with pytest.raises(SystemExit) as exit_info:
        kaldilite.cli.main(["train-sat"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"kaldilite train-sat: error: {shown}\n"
