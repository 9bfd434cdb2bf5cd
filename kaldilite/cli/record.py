"""`kaldilite record`: record a command corpus from the microphone into a Kaldi data dir.

A thin wrapper over `kaldilite.online.record` (prompt, VAD-trimmed take, keep / redo / skip /
quit, resumable). Kaldi has no recording tool; the output is a data dir its recipes take.
"""

import click


@click.command("record")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--prompts", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Commands file (one prompt per line, e.g. lang/en/commands.txt).")
@click.option("--speaker", required=True, help="Speaker id (letters, digits, _): the prefix of every utterance id.")
@click.option("--repeat", default=5, show_default=True, help="Takes per prompt.")
@click.option("--device", default=None,
              help="Input device (number or name; see `kaldilite decode-online --list-devices`).")
@click.option("--sample-rate", type=int, default=None,
              help="Rate to open the device at (default: --sample-frequency if the device supports it, else its own).")
@click.option("--sample-frequency", type=int, default=16000, show_default=True, help="Rate of the written wavs.")
@click.option("--max-wait", type=float, default=5.0, show_default=True, help="Seconds to wait for speech to start.")
@click.option("--max-seconds", type=float, default=4.0, show_default=True, help="Longest take in seconds.")
@click.option("--vad-mode", type=int, default=2, show_default=True, help="WebRTC VAD aggressiveness 0..3.")
@click.option("--vad-hangover", type=float, default=0.5, show_default=True,
              help="Seconds of non-speech that end a take.")
@click.option("--vad-padding", type=float, default=0.3, show_default=True,
              help="Seconds kept before the detected onset of speech.")
def record_cmd(out_dir, prompts, speaker, repeat, device, sample_rate, sample_frequency, max_wait, max_seconds,
               vad_mode, vad_hangover, vad_padding):
    """Show each prompt, record it from the microphone (trimmed by the VAD), write OUT_DIR.

    OUT_DIR becomes a Kaldi data dir (wav/, wav.scp, text, utt2spk, spk2utt) that the commands
    recipe takes as --corpus. After each take: Enter keeps it, r records it again, s skips the
    prompt, q stops; re-running the same command continues where it stopped.

    \b
    e.g.: kaldilite record --prompts lang/en/commands.txt --repeat 5 --speaker alice data/alice
    """
    from kaldilite.online.record import RecordOptions, read_prompts, record_session
    from kaldilite.online.sources import MicSource
    from kaldilite.online.vad import VadOptions

    opts = RecordOptions(repeat=repeat, sample_frequency=sample_frequency, max_wait=max_wait, max_seconds=max_seconds,
                         vad=VadOptions(vad=True, vad_mode=vad_mode, vad_hangover=vad_hangover,
                                        vad_padding=vad_padding))
    prompt_list = read_prompts(prompts)
    MicSource(device=device, sample_rate=sample_rate, preferred_rate=sample_frequency)  # device errors before prompting

    def open_source():
        return MicSource(device=device, sample_rate=sample_rate, preferred_rate=sample_frequency)

    record_session(prompt_list, speaker, out_dir, open_source,
                   ask=lambda question: click.prompt(question, default="", show_default=False, prompt_suffix=""),
                   show=click.echo, opts=opts)


COMMANDS = [record_cmd]
