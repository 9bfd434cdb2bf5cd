"""Click options shared by several verbs: the decoder's search options (`decoder_options`).

Kaldi's decoders (gmm-latgen-faster, nnet-latgen-faster, gmm-decode-faster) all take
`--beam`, `--max-active`, `--min-active`, `--acoustic-scale` (the scripts' `--acwt`) and
`--lattice-beam`; only the defaults differ between the scripts that call them (steps/decode.sh:
beam 13, acwt 0.083333; steps/nnet2/decode.sh: beam 15, min-active 200, acwt 0.1). Each verb
declares them here with its script's defaults, so the names and help texts are written once.
(Outside `kaldilite.cli`, as `kaldilite.jobs.cli.job_options`: a verb's run imports no cli module
but its own, tests/test_startup.py.)
"""

import click


def decoder_options(*, beam=13.0, max_active=7000, min_active=20, acwt=0.083333, lattice_beam=None,
                    beam_help="Decoding beam.", acwt_help="Acoustic scale applied to log-likelihoods.",
                    lattice_beam_help="Lattice beam (word sequences kept)."):
    """A decorator adding --beam, --max-active, --min-active, --acwt and --lattice-beam, in that order,
    with these defaults (Kaldi's names; the verb's parameters beam, max_active, min_active, acwt,
    lattice_beam). `min_active=None` leaves --min-active out; --lattice-beam is added only when
    `lattice_beam` (its default) is given."""
    options = [click.option("--beam", default=beam, show_default=True, help=beam_help),
               click.option("--max-active", default=max_active, show_default=True,
                            help="Maximum number of active tokens per frame.")]
    if min_active is not None:
        options.append(click.option("--min-active", default=min_active, show_default=True,
                                    help="Minimum number of tokens expanded per frame."))
    options.append(click.option("--acwt", default=acwt, show_default=True, help=acwt_help))
    if lattice_beam is not None:
        options.append(click.option("--lattice-beam", default=lattice_beam, show_default=True, help=lattice_beam_help))

    def decorate(function):
        for option in reversed(options):  # click lists options in the order their decorators are written
            function = option(function)
        return function

    return decorate
