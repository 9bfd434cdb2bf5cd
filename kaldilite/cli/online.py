"""Online verbs: `decode-online` (live recognition: mic, wav, stdin) and `export-model` (the bundle).

`decode-online` is the user's live entry point (Kaldi's online2-wav-gmm-latgen-faster with
endpointing, plus a microphone); `export-model` is steps/online/prepare_online_decoding.sh.
"""

import json
import logging
import sys

import click

from kaldilite.errors import InputError

log = logging.getLogger(__name__)


@click.command("export-model")
@click.argument("exp_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("graph_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--mfcc-config", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Feature config the model was trained with (e.g. conf/mfcc.conf).")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False),
              help="Training data dir: its cmvn.scp summed is the online-CMVN prior; its first utterance checks "
                   "--mfcc-config.")
@click.option("--online-config", type=click.Path(exists=True, dir_okay=False),
              help="Decoder/endpoint/VAD options (default: the repository's conf/online.conf).")
@click.option("--rejection", type=click.Path(exists=True, dir_okay=False),
              help="Rejection rule JSON (default GRAPH_DIR/rejection.json, which calibrate-rejection writes; "
                   "refused when calibrated on another model's decodes).")
@click.option("--default-rejection", is_flag=True,
              help="Use the uncalibrated default rule when a filler/garbage graph has no rejection.json, or when "
                   "--model (or GRAPH_DIR) is not the model (graph) the rule's calibration decodes recorded (their "
                   "decoded_with.json; for a rule without the record: --model is not EXP_DIR/final.mdl); else "
                   "refused.")
@click.option("--lang", "lang_dir", type=click.Path(exists=True, file_okay=False),
              help="Lang dir with words/fillers.txt, when the graph dir has none.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False),
              help="Model file (default EXP_DIR/final.mdl; needed when EXP_DIR holds only the decodes the rule was "
                   "calibrated on).")
@click.option("--ivector-extractor", type=click.Path(exists=True),
              help="For a model trained with online i-vectors (train-nnet2 --online-ivector-dir): the extractor dir "
                   "(or its final.ie) it was trained with, copied into the bundle (default: the one the model "
                   "records; refused if it is another).")
def export_model_cmd(exp_dir, graph_dir, out_dir, mfcc_config, data_dir, online_config, rejection, default_rejection,
                     lang_dir, model, ivector_extractor):
    """Make a self-contained model bundle for decode-online (like steps/online/prepare_online_decoding.sh).

    \b
    Usage: kaldilite export-model [options] <exp-dir> <graph-dir> <out-dir>
     e.g.: kaldilite export-model --mfcc-config conf/mfcc.conf --data data/train exp/mono exp/mono/graph exp/mono_online
           kaldilite export-model --mfcc-config conf/mfcc_hires.conf --data data/train_aug_hires \\
             exp/nnet2 exp/nnet2/graph_commands exp/nnet2_online

    The bundle's rejection rule is the graph dir's rejection.json (calibrate-rejection), which
    must have been calibrated on this model's decodes with this graph (checked by SHA-256 against
    the record decode-commands writes, DECODE_DIR/decoded_with.json, which the rule copies). Its conf/online.conf carries the online-CMVN
    stats as those decodes did: --cmvn-silence-weight is their cmvn_carry.conf's
    --online-cmvn-silence-weight (decode-commands' record in the decode dir the rule names).
    """
    from kaldilite.online.bundle import ModelBundle, export_model

    out = export_model(exp_dir, graph_dir, out_dir, mfcc_config=mfcc_config, data_dir=data_dir,
                       online_config=online_config, rejection=rejection, default_rejection=default_rejection,
                       lang_dir=lang_dir, model=model, ivector_extractor=ivector_extractor)
    bundle = ModelBundle.load(out)  # prove it loads before saying so
    ivectors = (f", online i-vectors every {bundle.ivector_opts.ivector_period} frames"
                if bundle.ivector_model is not None else "")
    click.echo(f"export-model: wrote {out} ({bundle.info['model_type']} model{ivectors}, "
               f"{bundle.graph.num_states}-state graph, {bundle.sample_rate} Hz, {len(bundle.fillers)} words that "
               "mean rejected: fillers, garbage phones, silence)")


def _print_devices():
    from kaldilite.online.sources import list_devices

    lines = list_devices()
    if not lines:
        raise _device_error("no audio input devices found (PortAudio sees none); connect a microphone, or use "
                            "--wav / --stdin")
    click.echo("Input devices (* = default):")
    for line in lines:
        click.echo(line)


def _device_error(message):
    from kaldilite.errors import DeviceError

    return DeviceError(message)


@click.command("decode-online")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Model bundle dir (from export-model).")
@click.option("--mic", is_flag=True, help="Listen to a microphone (PortAudio), until Ctrl-C.")
@click.option("--wav", is_flag=True, help="Stream the WAV_FILES arguments.")
@click.option("--stdin", "use_stdin", is_flag=True,
              help="Read raw 16-bit little-endian mono PCM from stdin (see --sample-rate), or a 16-bit mono WAV "
                   "stream (its header gives the rate).")
@click.option("--channel", type=int,
              help="With --wav: the channel of multi-channel files to decode (0-based, Kaldi's --channel); without "
                   "it a file with several channels is refused.")
@click.option("--realtime", type=click.BOOL, default=False, show_default=True,
              help="With --wav: stream in real time (like a microphone) instead of as fast as possible.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per result instead of a line. JSON has no infinities: a score of -inf "
                   "(no command path: rejected whatever the threshold) is written -1e+300, +inf 1e+300, so that it "
                   "compares with any threshold as the infinity does; a missing value (NaN) is null.")
@click.option("--device", help="Input device (number or name, see --list-devices); default: the system's.")
@click.option("--list-devices", is_flag=True, help="List input devices and exit.")
@click.option("--sample-rate", type=int,
              help="Rate of --stdin audio (default: the model's), or the rate to open --mic at (default: the model's "
                   "if the device supports it, else the device's, resampled).")
@click.option("--config", "online_config", type=click.Path(exists=True, dir_okay=False),
              help="Online options overriding the bundle's conf/online.conf (Kaldi --name=value lines).")
@click.option("--beam", type=float, help="Decoding beam (overrides the bundle's).")
@click.option("--acoustic-scale", type=float, help="Acoustic scale (overrides the bundle's).")
@click.option("--chunk-length", type=float,
              help="Seconds of audio processed at a time: features, decoding, endpoint check (overrides the bundle's).")
@click.option("--vad", type=click.BOOL, help="Gate the decoder with the WebRTC VAD (overrides the bundle's).")
@click.option("--do-endpointing", type=click.BOOL, help="Use the endpoint rules (overrides the bundle's).")
@click.option("--carry-cmvn", type=click.BOOL,
              help="Carry online-CMVN statistics (and an i-vector model's i-vector statistics) from one utterance to "
                   "the next (overrides the bundle's; false: every utterance starts from the priors, as a new "
                   "speaker).")
@click.option("--cmvn-silence-weight", type=float,
              help="Weight of the frames the best path puts on silence phones in the carried CMVN statistics "
                   "(overrides the bundle's, which is the one its rejection threshold was calibrated with; 1: all "
                   "frames alike, as apply-cmvn-online carries them).")
@click.option("--utt2spk", "utt2spk_file", type=click.Path(exists=True, dir_okay=False),
              help="With --wav: `FILE SPEAKER` lines (FILE as given, its name, or its name without extension); "
                   "online-CMVN (and i-vector) statistics are carried only between files of the same speaker (Kaldi's "
                   "online2 --spk2utt). Without it, all files of a run are one speaker.")
@click.option("--buffer-length", type=float, default=10.0, show_default=True,
              help="Seconds of audio the capture ring buffer holds before it drops chunks (overruns).")
@click.option("--partial", is_flag=True, help="Print partial hypotheses to stderr as they change.")
@click.argument("wav_files", nargs=-1, type=click.Path(dir_okay=False))
def decode_online_cmd(model_dir, mic, wav, use_stdin, channel, realtime, as_json, device, list_devices, sample_rate,
                      online_config, beam, acoustic_scale, chunk_length, vad, do_endpointing, carry_cmvn,
                      cmvn_silence_weight, utt2spk_file,
                      buffer_length, partial, wav_files):
    """Recognize commands live: one line (or JSON object) per spoken command or `<rejected>`.

    Each result gives the command or <rejected>, its confidence, start-end time in the stream,
    the latency from the end of speech to the result and the endpoint rule that ended it; then
    it listens on. Overruns (audio dropped because recognition fell behind) are reported.

    \b
    Usage: kaldilite decode-online --model <bundle-dir> (--mic | --wav <wav>... | --stdin) [options]
     e.g.: kaldilite decode-online --model exp/nnet2_online --mic
           kaldilite decode-online --model exp/nnet2_online --wav --json a.wav b.wav
           kaldilite decode-online --model exp/nnet2_online --wav --utt2spk utt2spk ann_1.wav bob_1.wav ann_2.wav
           arecord -q -f S16_LE -r 16000 -c 1 -t raw | kaldilite decode-online --model exp/nnet2_online --stdin

    exp/nnet2_online is the bundle the commands recipe's stage 11 exports (16 kHz); the digits
    recipe's models are 8 kHz.
    """
    if list_devices:
        _print_devices()
        return
    sources = [name for name, on in (("--mic", mic), ("--wav", wav), ("--stdin", use_stdin)) if on]
    if len(sources) != 1:
        raise click.UsageError("choose exactly one input: --mic, --wav FILE..., or --stdin")
    if wav and not wav_files:
        raise click.UsageError("--wav needs at least one file")
    if wav_files and not wav:
        raise click.UsageError(f"unexpected arguments {' '.join(wav_files)} (files go with --wav)")
    if model_dir is None:
        raise click.UsageError("--model DIR is required (a bundle made by `kaldilite export-model`)")
    if buffer_length <= 0:
        raise InputError(f"--buffer-length must be positive, got {buffer_length}")
    if sample_rate is not None and sample_rate <= 0:
        raise InputError(f"--sample-rate must be positive, got {sample_rate}")
    if utt2spk_file and not wav:
        raise click.UsageError("--utt2spk goes with --wav (it names each file's speaker)")
    if channel is not None and not wav:
        raise click.UsageError("--channel goes with --wav (--mic and --stdin record one channel)")
    speaker_of = _file_speakers(utt2spk_file, wav_files) if utt2spk_file else {}

    from kaldilite.online.bundle import ModelBundle
    from kaldilite.online.recognizer import OnlineRecognizer, recognize_stream
    from kaldilite.online.sources import MicSource, StdinSource, WavSource

    overrides = {k: v for k, v in (("beam", beam), ("acoustic-scale", acoustic_scale), ("chunk-length", chunk_length),
                                   ("vad", vad), ("do-endpointing", do_endpointing), ("carry-cmvn", carry_cmvn),
                                   ("cmvn-silence-weight", cmvn_silence_weight))
                 if v is not None}
    bundle = ModelBundle.load(model_dir, online_config, overrides)
    opts = bundle.online_opts
    if opts.chunk_length <= 0:
        raise InputError(f"--chunk-length must be positive, got {opts.chunk_length}")
    if not 0.0 <= opts.cmvn_silence_weight <= 1.0:
        raise InputError(f"--cmvn-silence-weight must be in [0, 1] (0: speech frames only, 1: every frame), "
                         f"got {opts.cmvn_silence_weight}")
    counts = {"accepted": 0, "rejected": 0, "overruns": 0}

    def emit(result):
        counts["accepted" if result.accepted else "rejected"] += 1
        click.echo(result.to_json() if as_json else result.to_line())
        sys.stdout.flush()

    def show_partial(words):
        click.echo(f"partial: {' '.join(words)}", err=True)

    recognizer = None
    speaker_states = {}  # --utt2spk: each speaker's adaptation state (CMVN, i-vectors) after their last file
    last_speaker = None

    def run(source, speaker=None):
        # One recognizer for all inputs, each file a new stream. The speaker state (online-CMVN and
        # i-vector statistics) carries over (--carry-cmvn) between the files of one speaker: all files
        # without --utt2spk.
        nonlocal recognizer, last_speaker
        if recognizer is not None:
            speaker_states[last_speaker] = recognizer.speaker_state
        state = speaker_states.get(speaker) or bundle.speaker_state()  # this speaker's so far, else the priors
        if source.sample_rate < bundle.sample_rate:  # resampled up, but the band above half its rate is empty
            log.warning("%s: %d Hz audio for a model trained on %d Hz: upsampled, but it holds nothing above %g kHz, "
                        "so expect lower accuracy; record at %d Hz", source.name, source.sample_rate,
                        bundle.sample_rate, source.sample_rate / 2000, bundle.sample_rate)
        if recognizer is None or recognizer.sample_rate != source.sample_rate:
            recognizer = OnlineRecognizer(bundle, opts, sample_rate=source.sample_rate, source_name=source.name,
                                          on_partial=show_partial if partial else None)
        recognizer.new_stream(source.name, speaker_state=state)
        last_speaker = speaker
        try:
            recognize_stream(recognizer, source, emit)
        finally:
            counts["overruns"] += source.overruns
            if source.overruns and as_json:
                click.echo(json.dumps({"source": source.name, "overruns": source.overruns,
                                       "dropped_seconds": round(source.dropped_samples / source.sample_rate, 3)}))

    if wav:
        for path in wav_files:
            run(WavSource(path, realtime=realtime, buffer_seconds=buffer_length, channel=channel),
                speaker_of.get(path))
    elif use_stdin:
        run(StdinSource(sample_rate or bundle.sample_rate, buffer_seconds=buffer_length,
                        explicit_rate=sample_rate is not None))
    else:
        source = MicSource(device, sample_rate, preferred_rate=bundle.sample_rate, buffer_seconds=buffer_length,
                           other_inputs="decode files with --wav FILE... or --stdin")
        click.echo(f"decode-online: listening on {source.name} at {source.sample_rate} Hz (Ctrl-C to stop)", err=True)
        try:
            run(source)
        except KeyboardInterrupt:
            pass
    click.echo(f"decode-online: {counts['accepted']} command(s), {counts['rejected']} rejected, "
               f"{counts['overruns']} overrun(s)", err=True)


def _file_speakers(utt2spk_file, wav_files):
    """{wav file: speaker} from `KEY SPEAKER` lines, KEY the file as given, its name or its stem."""
    from pathlib import Path

    from kaldilite.io.datadir import read_entries

    table = {}
    for entry in read_entries(utt2spk_file):
        if len(entry.value.split()) != 1:
            line = f"{entry.key} {entry.value}".strip()
            raise InputError(f"{utt2spk_file}:{entry.line}: expected 'FILE SPEAKER', got {line!r}")
        table[entry.key] = entry.value
    speakers = {}
    for path in wav_files:
        for key in (path, Path(path).name, Path(path).stem):
            if key in table:
                speakers[path] = table[key]
                break
        else:
            raise InputError(f"{utt2spk_file}: no speaker for {path} (add a line '{Path(path).stem} SPEAKER')")
    return speakers


COMMANDS = [decode_online_cmd, export_model_cmd]
