"""The session's small commands system: the commands recipe itself (mono only) on the shared
Speech Commands subset, 20 speakers per part, no augmentation, stages 0-10 (about 100 s on 2
cores), so that it has graphs, dev decodes, a calibrated rejection rule and stamps, as a
user's build would. Tests copy it (keeping mtimes, which the stamps record) before re-running
the recipe on it.
"""

import pytest

from newcmds_helpers import run_recipe


@pytest.fixture(scope="session")
def commands_system(speech_commands_dir, tmp_path_factory):
    """The built system (read-only: copy it with `copy_system` before running the recipe on it)."""
    work = tmp_path_factory.mktemp("commands_system") / "work"
    run_recipe(work, corpus=speech_commands_dir)
    return work


