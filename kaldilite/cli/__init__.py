"""The `kaldilite` command: one click group, one thin verb per Kaldi tool it replaces.

Every module in this package (corpus, data, feat, lang, train, decode, score, ...) defines its
verbs and lists them in a module-level `COMMANDS`; a new verb also gets a line in `VERBS` below.
Verbs import the library inside their body so that looking a verb up stays fast. User errors (`KaldiliteError`) print one line and exit 1.
Every float, integer and boolean option of every verb reads its text by Kaldi's rule, not Python's
float()/int() or click's yes/no (`kaldi_number_types`, applied as the group adds a verb: a verb declares
options the click way).

`VERBS` names each verb's module (and the one-line help `kaldilite --help` shows), so a run
imports only the module of the verb it runs, and `--help` none: building every verb's click
options costs ~20 ms of CPU per run (click parses ~400 option declarations and looks up their
translations), a fifth of what a small step such as `mkgraph` needs in all. This is click's
lazy-loading group (click docs, "Lazily Loading Subcommands"); tests/test_startup.py checks
that the table lists exactly the verbs the modules' `COMMANDS` declare, with their help.
"""

import gc
import importlib
import logging
import os
import sys

import click

from kaldilite import __version__
from kaldilite.errors import KaldiliteError

# verb -> (its cli module, the first sentence of its help; None for verbs hidden from --help).
# A new verb goes into its module's COMMANDS and here (tests/test_startup.py prints the line).
VERBS = {
    'download-fsdd': ('corpus', 'Make the Free Spoken Digit Dataset available and print its folder.'),
    'prepare-fsdd': ('corpus', 'Write OUT_DIR/train and OUT_DIR/test Kaldi data dirs from FSDD.'),
    'add-noise-data-dir': ('commands',
        'Add background noise to every utterance (steps/data/augment_data_dir.py, --bg-* options).'),
    'calibrate-rejection': ('commands',
        'Pick the rejection threshold on a decoded dev set for a target false-accept rate.'),
    'commands-results': ('commands',
        "Print the RESULTS table of the commands recipe for each EXP_DIR's decode_dev(_norej)."),
    'decode-commands': ('commands', 'Decode a data dir for command recognition: per-utterance rejection measures.'),
    'fuse-command-scores': ('commands',
        "Fuse two systems' decodes: OUT_EXP/decode_SET/measures.jsonl for every SET both decoded."),
    'perturb-data-dir-speed': ('commands', 'Speed-perturb a data dir (utils/data/perturb_data_dir_speed.sh).'),
    'reverberate-data-dir': ('commands',
        'Reverberate a data dir with simulated rooms (steps/data/reverberate_data_dir.py).'),
    'prepare-fsdd-oov': ('commands',
        'Write an out-of-vocabulary eval data dir: FSDD digits (never commands) from unseen speakers.'),
    'prepare-speech-commands': ('commands',
        'Write OUT_DIR/{train,dev[,test]} (+ noise_train, noise_dev) from a Speech Commands folder.'),
    'prepare-synthetic-oov': ('commands',
        "Write an OOV eval data dir of WORDS_FILE's words (one per line, # comments) in espeak-ng voices."),
    'score-commands': ('commands', 'Score command recognition with rejection against DATA_DIR/text.'),
    'synthesize-corpus': ('commands',
        'Synthesize a Speech Commands-layout corpus with espeak-ng voices (no recordings needed).'),
    'tune-rejection': ('commands',
        'Choose a decoding setting and llr_total threshold for rejection, 2-fold cross-tuned by speaker.'),
    'combine-data': ('data', None),
    'data': ('data', 'Validate, fix, subset, combine and split Kaldi data directories.'),
    'fix-data-dir': ('data', None),
    'split-data': ('data', None),
    'subset-data-dir': ('data', None),
    'validate-data-dir': ('data', None),
    'apply-cmvn-online': ('feat', "Apply online CMVN to features as the online decoder does (Kaldi's apply-cmvn-online)."),
    'matrix-sum': ('feat', "Sum all matrices of a table into one matrix file (Kaldi's matrix-sum, table-to-matrix form)."),
    'compute-cmvn-stats': ('feat',
        'Per-speaker CMVN stats for a data dir with features, like steps/compute_cmvn_stats.sh.'),
    'compute-fbank-feats': ('feat',
        "Compute FBANK features for each utterance of a wav.scp, like Kaldi's compute-fbank-feats."),
    'compute-mfcc-feats': ('feat',
        "Compute MFCC features for each utterance of a wav.scp, like Kaldi's compute-mfcc-feats."),
    'make-fbank': ('feat', 'Compute FBANK features for a data dir, like steps/make_fbank.sh + compute-fbank-feats.'),
    'make-mfcc': ('feat', 'Compute MFCC features for a data dir, like steps/make_mfcc.sh + compute-mfcc-feats.'),
    'arpa2fst': ('lang', "Compile an ARPA n-gram language model into G.fst (Kaldi's arpa2fst)."),
    'check-pronunciations': ('lang',
        'Check that every word of GRAMMAR_FILES has a pronunciation in DICT_DIR made of its phones.'),
    'g2p': ('lang', 'Propose lexicon.txt lines for WORDS (CMUdict, else espeak-ng; Chinese via pypinyin); with '
            '--add, append those of the words the --lexicon dict dir lacks to it.'),
    'make-grammar': ('lang', 'Build OUT_LANG_DIR (a copy of LANG_DIR) with a command grammar G.fst.'),
    'make-phone-lm': ('lang',
        'Estimate an ARPA phone n-gram from a pronunciation dictionary, for make-grammar --garbage-phone-lm.'),
    'prepare-dict': ('lang',
        'Write a Kaldi dict dir (lexicon.txt, silence/nonsilence phones) for the words in WORDS_FILE.'),
    'prepare-lang': ('lang', 'Build a Kaldi lang dir (phones.txt, words.txt, L.fst, topo, ...) from a dict dir.'),
    'validate-lang': ('lang', 'Check a lang dir for consistency; print problems as `file:line: what`.'),
    'extract-ivectors-online': ('ivector',
        'Extract online i-vectors, carried through each speaker\'s utterances (extract_ivectors_online.sh).'),
    'train-diag-ubm': ('ivector', 'Train the diagonal UBM of an i-vector extractor (steps/online/nnet2/train_diag_ubm.sh).'),
    'train-ivector-extractor': ('ivector',
        'Train an i-vector extractor on a diagonal UBM (steps/online/nnet2/train_ivector_extractor.sh).'),
    'align': ('train', 'Align a data dir with a trained GMM model (like steps/align_si.sh).'),
    'train-mono': ('train', 'Flat-start monophone GMM-HMM training (like steps/train_mono.sh).'),
    'convert-ali': ('tri', "Map alignments of one model onto another model's tree (Kaldi's convert-ali)."),
    'train-deltas': ('tri',
        "Triphone GMM-HMM on delta features from a previous system's alignments (steps/train_deltas.sh)."),
    'align-fmllr': ('transform',
        'Align a data dir with a SAT system, estimating fMLLR per speaker (steps/align_fmllr.sh).'),
    'decode-fmllr': ('transform', 'Two-pass fMLLR decoding with a SAT system (steps/decode_fmllr.sh).'),
    'train-lda-mllt': ('transform',
        "Train an LDA+MLLT triphone system on a previous system's alignments (steps/train_lda_mllt.sh)."),
    'train-sat': ('transform',
        'Speaker adaptive training with per-speaker fMLLR on LDA+MLLT features (steps/train_sat.sh).'),
    'decode': ('decode', 'Decode a data dir with a graph and score it when DATA/text exists (like steps/decode.sh).'),
    'mkgraph': ('decode', 'Build the decoding graph HCLG for a lang dir with G.fst (like utils/mkgraph.sh).'),
    'apply-rejection': ('lattice',
        'Decide command or <rejected> for each lattice with the rejection rule (kaldilite.decode.rejection).'),
    'lattice-best-path': ('lattice',
        "Best path of each lattice: its words (and alignment), like Kaldi's lattice-best-path."),
    'lattice-mbr-decode': ('lattice',
        "Minimum-Bayes-risk decoding: the word sequence with the least expected word errors (over the lattice's word sequences, Stolcke et al."),
    'lattice-nbest': ('lattice',
        'The n best word sequences of each lattice as linear lattices keyed utt-1, utt-2, ...'),
    'lattice-scale': ('lattice', "Scale the graph and acoustic costs of lattices (Kaldi's lattice-scale)."),
    'lattice-to-ctm-conf': ('lattice',
        "CTM with per-word confidences (Kaldi's lattice-to-ctm-conf): ``utt 1 start duration word conf``."),
    'lattice-to-post': ('lattice', "Per-frame transition-id posteriors by forward-backward (Kaldi's lattice-to-post)."),
    'compute-wer': ('score', 'Print %WER and %SER of hypotheses against reference transcripts.'),
    'make-denlats': ('mmi', 'Denominator lattices of the training data for MMI (steps/make_denlats.sh).'),
    'train-mmi': ('mmi',
        '(Boosted) MMI training of a GMM system with extended Baum-Welch (steps/train_mmi.sh).'),
    'train-nnet2-discriminative': ('mmi',
        'Sequence-discriminative (MMI or sMBR) training of an nnet2 DNN (steps/nnet2/train_discriminative2.sh).'),
    'decode-nnet2': ('nnet',
        'Decode a data dir with an nnet2 model and a graph, score when DATA/text exists (like steps/nnet2/decode.sh).'),
    'train-nnet2': ('nnet',
        "Train a p-norm DNN on a GMM system's alignments (like steps/nnet2/train_pnorm_simple2.sh)."),
    'decode-online': ('online',
        'Recognize commands live: one line (or JSON object) per spoken command or `<rejected>`.'),
    'export-model': ('online',
        'Make a self-contained model bundle for decode-online (like steps/online/prepare_online_decoding.sh).'),
    'record': ('record', 'Show each prompt, record it from the microphone (trimmed by the VAD), write OUT_DIR.'),
    'run-many': ('run',
        'Run the kaldilite command lines of COMMANDS_FILE, at most N at a time in N warm worker processes.'),
}

# Verbs whose process needs no BLAS thread pool (mkgraph does no dense linear algebra; the
# others run their jobs with one BLAS thread each anyway, and their own algebra is on small
# matrices): they start numpy without OpenBLAS's worker threads (unless the user set
# OPENBLAS_NUM_THREADS), which saves ~12 ms of numpy's import (a tenth of `mkgraph`) and the
# threads' spinning on the cores the jobs use (FSDD SI, --nj 2, busy machine: train-mono
# 16.1 -> 13.8 s CPU, train-deltas 13.8 -> 12.4, train-lda-mllt 23.3 -> 20.8, train-sat
# 22.6 -> 20.4; the same final.mdl, byte for byte). The feature verbs run one job per core and
# their mel-bank and DCT products are small: with OpenBLAS's threads, 40-bin hires MFCC of 883
# utterances took 7.3 s CPU instead of 1.55 s (the commands recipe's stage 8: 54 s wall for
# train_aug), the same archives byte for byte.
_SINGLE_THREADED_BLAS_VERBS = frozenset({"mkgraph", "align", "decode", "train-mono", "train-deltas",
                                         "train-lda-mllt", "train-sat", "make-mfcc", "make-fbank",
                                         "compute-mfcc-feats", "compute-fbank-feats"})


def progress_logging(*logger_names):
    """Show the INFO lines of these loggers even without -v: a trainer's per-iteration lines are
    its progress report, as Kaldi's scripts print "Pass N" (a user's -vv DEBUG is kept)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


class _KaldiNumberRule:
    """A number option's text read by Kaldi's rule (ParseOptions: ConvertStringToReal for float
    options, ConvertStringToInteger for integer ones; kaldilite.io.config), not Python's float() or
    int(), which also take '1_0', other scripts' digits and Unicode spaces; nan, which no option
    here takes, refused; then click's own conversion (and a range type's bounds check)."""

    def convert(self, value, param, ctx):
        import math

        real = isinstance(self, click.types.FloatParamType)
        if isinstance(value, str):  # not a default such as 10.0
            from kaldilite.io.config import convert_string_to_integer, convert_string_to_real

            try:
                value = (convert_string_to_real if real else convert_string_to_integer)(value)
            except ValueError:
                self.fail(f"{value!r} is not {'a number' if real else 'an integer'} as Kaldi reads it "
                          f"(e.g. {'0.1, -2.5e-3, inf' if real else '4, -1'})", param, ctx)
        if real and math.isnan(value):
            self.fail("nan is not a value any option here takes; give a number", param, ctx)
        return super().convert(value, param, ctx)


class KaldiFloat(_KaldiNumberRule, click.types.FloatParamType):
    """click's FLOAT by Kaldi's rule."""


class KaldiFloatRange(_KaldiNumberRule, click.FloatRange):
    """click's FloatRange by Kaldi's rule."""


class KaldiInt(_KaldiNumberRule, click.types.IntParamType):
    """click's INT by Kaldi's rule."""


class KaldiIntRange(_KaldiNumberRule, click.IntRange):
    """click's IntRange by Kaldi's rule."""


class KaldiBool(click.types.BoolParamType):
    """click's BOOL by Kaldi's rule (ParseOptions::ToBool: true/t/1 and false/f/0 in any case, C white
    space around; kaldilite.io.config.convert_string_to_bool), not click's, which also takes yes/no,
    y/n, on/off and Unicode spaces."""

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        from kaldilite.io.config import convert_string_to_bool

        try:
            return convert_string_to_bool(str(value))
        except ValueError:
            self.fail(f"{value!r} is not true or false as Kaldi reads it (true, false, t, f, 1, 0)", param, ctx)


_KALDI_NUMBER_TYPES = {click.types.FloatParamType: KaldiFloat, click.FloatRange: KaldiFloatRange,
                       click.types.IntParamType: KaldiInt, click.IntRange: KaldiIntRange,
                       click.types.BoolParamType: KaldiBool}


def kaldi_number_types(command):
    """Give every float, integer and boolean parameter of `command` (and of its subcommands) the Kaldi
    rule's type: one place for the ~180 float, ~145 integer and the boolean options taking a value
    (--binary=false), whether declared type=float, click.FloatRange(...), or inferred from a default
    such as 10.0 (the group calls this as it adds a verb). A range keeps its bounds; click's shared
    FLOAT, INT and BOOL are left as they are; flags (--x/--no-x) and counts take no value."""
    for param in command.params:
        kaldi_type = _KALDI_NUMBER_TYPES.get(type(param.type))
        if kaldi_type is None or getattr(param, "count", False) or getattr(param, "is_flag", False):
            continue
        old = param.type
        param.type = kaldi_type(old.min, old.max, old.min_open, old.max_open, old.clamp) \
            if isinstance(old, (click.FloatRange, click.IntRange)) else kaldi_type()
    for sub in getattr(command, "commands", {}).values():
        kaldi_number_types(sub)
    return command


class _LazyGroup(click.Group):
    """A click group that imports a verb's module when the verb is looked up (see the module doc)."""

    def add_command(self, cmd, name=None):
        super().add_command(kaldi_number_types(cmd), name)

    def _load(self, module_name):
        module = importlib.import_module(f"kaldilite.cli.{module_name}")
        for command in getattr(module, "COMMANDS", ()):
            if command.name not in self.commands:
                self.add_command(command)

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and cmd_name in VERBS:
            self._load(VERBS[cmd_name][0])
        if cmd_name not in self.commands:  # a verb missing from VERBS still runs (the test flags it)
            import pkgutil

            for info in pkgutil.iter_modules(__path__):
                if not info.name.startswith("_"):
                    self._load(info.name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        return sorted(set(VERBS) | set(self.commands))

    def format_commands(self, ctx, formatter):
        # the listing from the table: click's own layout over stand-ins that carry only the help
        stand_ins = click.Group(commands=[click.Command(name, help=help_text)
                                          for name, (_, help_text) in VERBS.items() if help_text is not None])
        click.Group.format_commands(stand_ins, ctx, formatter)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kaldilite")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose):
    """Kaldi-style speech recognition for command words, in Python."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s (%(name)s) %(message)s", stream=sys.stderr)


def main(argv=None):
    """Entry point: run the group, turning user errors into one line on stderr and exit 1."""
    args = sys.argv[1:] if argv is None else list(argv)
    # A run starts by creating its long-lived objects (the modules of numpy, click, OpenFst,
    # numba: 100k and more); with CPython's default threshold (700 allocations) the collector
    # scans them over and over meanwhile (align's start-up: 2 full and 250 young collections,
    # 40 ms of its serial part). Collect young objects every 20000 allocations instead.
    gc.set_threshold(20000, 20, 20)
    code = run_verb(args)
    # The interpreter's exit garbage-collects every object still alive (numpy's, click's, the
    # OpenFst bindings', numba's: 100k and more), several passes while it tears modules down:
    # 25-40 ms, a quarter of a short verb such as `mkgraph`. The verb has closed its outputs, so
    # the collector is told to skip them (cyclic garbage is then left to the operating system,
    # which frees the memory anyway); reference counting still finalizes everything else.
    if code == 0:
        gc.freeze()
    sys.exit(code)


def run_verb(args):
    """Run one command line (without 'kaldilite') in this process -> its exit code: user errors
    are one line on stderr and 1, as `kaldilite` exits (main; `run-many` runs several this way)."""
    verb = next((a for a in args if not a.startswith("-")), "")
    if verb in _SINGLE_THREADED_BLAS_VERBS and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        cli.main(args=args, prog_name="kaldilite", standalone_mode=False)
    except KaldiliteError as exc:
        message = str(exc)
        if verb:  # a library message that names the verb already keeps one prefix
            message = message.removeprefix(f"{verb}: ")
        click.echo(f"kaldilite {verb}: error: {message}".replace("  ", " "), err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    main()
