"""`--cmd` and `--resume` for every verb that has `--nj` (make-mfcc, make-fbank, train-mono, align, decode).

    @click.command("make-mfcc")
    @click.option("--nj", ...)
    @job_options
    def command(...): ...        # the function's signature does not change

The options are consumed by callbacks that set `kaldilite.parallel`'s process defaults for the
duration of the command (restored when it ends), so the library functions the verb calls need
no extra arguments: `--cmd` overrides `KALDILITE_CMD` (the recipe's cmd.sh), `--resume`
overrides `KALDILITE_RESUME`.
"""

import click

_CMD_HELP = ("Where the jobs run: 'local' (this machine, the default; 'local --max-jobs-run N' caps "
             "concurrency) or 'slurm [--mem 2G] [--time 1:00:00] [--partition P] [--cpus-per-task N] "
             "[--max-jobs-run N] [sbatch options]' (one sbatch --array per step). Default: $KALDILITE_CMD, "
             "else local.")
_RESUME_HELP = ("Re-run only the jobs that did not succeed in the previous run of a failed step (their "
                "records are in the log dir's q/); default: $KALDILITE_RESUME.")


def _set_cmd(ctx, param, value):
    if value is None:
        return
    from kaldilite.parallel import runner_from_spec, set_default_runner

    try:
        runner = runner_from_spec(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace(f"--cmd {value!r}: ", ""), ctx, param) from None
    previous = set_default_runner(runner)
    ctx.call_on_close(lambda: set_default_runner(previous))


def _set_resume(ctx, param, value):
    if not value:
        return
    from kaldilite.parallel import set_resume

    previous = set_resume(True)
    ctx.call_on_close(lambda: set_resume(previous))


def job_options(function):
    """Decorator adding `--cmd BACKEND` and `--resume` to a click command function."""
    function = click.option("--resume", is_flag=True, default=False, expose_value=False, callback=_set_resume,
                            help=_RESUME_HELP)(function)
    function = click.option("--cmd", metavar="BACKEND", default=None, expose_value=False, callback=_set_cmd,
                            help=_CMD_HELP)(function)
    return function
