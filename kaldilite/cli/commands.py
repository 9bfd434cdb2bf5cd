"""Command-word verbs: corpora (`prepare-speech-commands`, `synthesize-corpus`), augmentation
(`perturb-data-dir-speed`, `add-noise-data-dir`), and the command recognizer's scoring and
threshold calibration (`score-commands`, `calibrate-rejection`).
"""

import click


@click.command("perturb-data-dir-speed")
@click.argument("factors")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("dest_dir", type=click.Path())
def perturb_data_dir_speed_cmd(factors, src_dir, dest_dir):
    """Speed-perturb a data dir (utils/data/perturb_data_dir_speed.sh).

    FACTORS is one factor (0.9) or a comma-separated list whose copies are combined, as
    perturb_data_dir_speed_3way.sh does with 0.9,1.0,1.1. Ids get the prefix sp<factor>-, audio
    plays through `sox ... speed <factor> |` pipes in wav.scp; features must be recomputed.

    e.g.: kaldilite perturb-data-dir-speed 0.9,1.0,1.1 data/train data/train_sp
    """
    from kaldilite.corpora.augment import perturb_data_dir_speed, perturb_data_dir_speed_3way
    from kaldilite.errors import InputError
    from kaldilite.io.datadir import DataDir

    try:
        values = [float(f) for f in factors.split(",") if f.strip()]
    except ValueError:
        raise InputError(f"FACTORS must be numbers separated by commas (e.g. 0.9,1.0,1.1), not '{factors}'") from None
    if not values:
        raise InputError("FACTORS is empty; give e.g. 0.9 or 0.9,1.0,1.1")
    if len(values) == 1:
        perturb_data_dir_speed(values[0], src_dir, dest_dir)
    else:
        perturb_data_dir_speed_3way(src_dir, dest_dir, values)
    data = DataDir.load(dest_dir)
    click.echo(f"{dest_dir}: {len(data)} utterances, {len(data.speakers)} speakers (speeds {factors})", err=True)


@click.command("add-noise-data-dir")
@click.option("--bg-noise-dir", required=True, type=click.Path(exists=True),
              help="Noise clips: a data dir (wav.scp), a folder of wavs, or a list file.")
@click.option("--bg-snrs", default="15:10:5:0", show_default=True,
              help="SNRs in dB, colon-separated; one is drawn per utterance.")
@click.option("--utt-prefix", default="noise", show_default=True, help="Prefix of the new utterance and speaker ids.")
@click.option("--random-seed", default=0, show_default=True, type=int)
@click.option("--sample-frequency", type=float, default=None,
              help="Resample speech to this rate first (default: keep each file's rate).")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("dest_dir", type=click.Path())
def add_noise_data_dir_cmd(bg_noise_dir, bg_snrs, utt_prefix, random_seed, sample_frequency, src_dir, dest_dir):
    """Add background noise to every utterance (steps/data/augment_data_dir.py, --bg-* options).

    The mixed audio is written under DEST_DIR/wav/; DEST_DIR/utt2noise lists the clip, offset
    and SNR chosen for each utterance.

    e.g.: kaldilite add-noise-data-dir --bg-noise-dir data/noise_train --bg-snrs 15:10:5:0 data/train data/train_noise
    """
    from kaldilite.corpora.augment import add_noise_data_dir
    from kaldilite.errors import InputError

    try:
        snrs = [float(s) for s in bg_snrs.split(":") if s.strip()]
    except ValueError:
        raise InputError(f"--bg-snrs must be numbers separated by ':' (e.g. 15:10:5:0), not '{bg_snrs}'") from None
    dest = add_noise_data_dir(src_dir, dest_dir, bg_noise_dir, snrs, utt_prefix, random_seed, sample_frequency)
    lines = (dest / "wav.scp").read_text(encoding="utf-8").count("\n")
    click.echo(f"{dest_dir}: {lines} noisy utterances (SNR {bg_snrs} dB)", err=True)


COMMANDS = [perturb_data_dir_speed_cmd, add_noise_data_dir_cmd]
