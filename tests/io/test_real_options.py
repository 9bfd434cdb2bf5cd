"""Float options read by Kaldi's rule (kaldilite.io.config.convert_string_to_real, parse_value) in
config files and on the command line, where every float and integer option of every verb has the
Kaldi rule's click type (kaldilite.cli.kaldi_number_types).

The independent answer is Kaldi's own code path re-done here over the C library: ParseOptions and
the config reader call ConvertStringToReal (src/util/text-utils.cc), which reads `istringstream >> x`
and accepts it when nothing but white space follows; when that fails it takes the one
white-space-delimited word, upper-cased, from a table of inf/nan spellings. `stream >> double` is
libstdc++'s num_get::_M_extract_float (bits/locale_facets.tcc; C locale): it gathers an optional sign,
digits, one point, and an e/E (only after a digit) with an optional sign, then converts what it
gathered with strtod, failing unless strtod read all of it and the value is finite. (A one-off check
of convert_string_to_real against that C++ compiled with g++ 12, 200000 random strings: 0 differences.)
"""

import ctypes
import math
import random

import pytest
from click.testing import CliRunner

from kaldilite.errors import InputError
from kaldilite.io.config import convert_string_to_real, parse_value, read_config

_LIBC = ctypes.CDLL(None)
_LIBC.strtod.restype = ctypes.c_double
_LIBC.strtod.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
_WORDS = {"INF": math.inf, "+INF": math.inf, "-INF": -math.inf, "INFINITY": math.inf, "+INFINITY": math.inf,
          "-INFINITY": -math.inf, "NAN": math.nan, "+NAN": math.nan, "-NAN": -math.nan, "1.#INF": math.inf,
          "-1.#INF": -math.inf, "1.#QNAN": math.nan, "-1.#QNAN": -math.nan}


def strtod(text):
    """(value, characters read) of C's strtod on ASCII `text`."""
    buffer = ctypes.create_string_buffer(text.encode())
    end = ctypes.c_void_p()
    value = _LIBC.strtod(ctypes.addressof(buffer), ctypes.byref(end))
    return value, end.value - ctypes.addressof(buffer)


def stream_extract_double(text):
    """`istringstream(text) >> x` for a double: (x or None on failbit, index where the stream stopped)."""
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:  # skipws
        i += 1
    gathered = ""
    if i < n and text[i] in "+-":
        gathered, i = text[i], i + 1
    mantissa = point = exponent = False
    while i < n:
        c = text[i]
        if c in "0123456789":
            gathered, mantissa = gathered + c, True
        elif c == "." and not point and not exponent:
            gathered, point = gathered + c, True
        elif c in "eE" and not exponent and mantissa:
            gathered, exponent, i = gathered + "e", True, i + 1
            if i < n and text[i] in "+-":
                gathered += text[i]
            else:
                continue
        else:
            break
        i += 1
    value, read = strtod(gathered)
    if read == 0 or read != len(gathered) or math.isinf(value):
        return None, i
    return value, i


def kaldi_convert_string_to_real(text):
    """ConvertStringToReal<double>: the value, or None where Kaldi returns false."""
    value, stop = stream_extract_double(text)
    if value is not None and text[stop:].strip(_C_SPACE) == "":
        return value
    words = [w for w in "".join(" " if c in _C_SPACE else c for c in text).split(" ") if w]
    if len(words) != 1:
        return None
    upper = words[0].encode().upper().decode()  # toupper in the C locale: ASCII letters only
    return _WORDS.get(upper)


def ours(text):
    try:
        return convert_string_to_real(text)
    except ValueError:
        return None


def same(a, b):
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b) and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@pytest.mark.parametrize("text, expected", [
    ("0.1", 0.1), ("-2.5e-3", -2.5e-3), ("+4", 4.0), (" 7 ", 7.0), ("\t1E+2\n", 100.0), (".5", 0.5), ("5.", 5.0),
    ("007.50", 7.5),
    ("1_0", None),                       # Python's float() reads 10
    ("\u0663", None),                    # Arabic-Indic three: float() reads 3
    ("1.5\u00a0", None),                 # float() strips Unicode spaces; C's isspace does not
    ("0x10", None), ("0x1p3", None),     # strtod reads hex, the stream stops at the x
    ("1e", None), ("1e+", None), (".", None), ("", None), (" ", None), ("1.2.3", None), ("1 2", None),
    ("--1", None), ("e5", None), ("1e5.5", None),
    ("1e999", None),                     # beyond double: failbit
    ("1e-400", 0.0),                     # below it: read as 0
    ("inf", math.inf), ("-Infinity", -math.inf), (" +INF ", math.inf), ("nan", math.nan), ("-NaN", -math.nan),
    ("1.#INF", math.inf), ("-1.#qnan", -math.nan),
    ("+1.#INF", None), ("infinit", None), ("nan(1)", None), ("inf inf", None), ("\u0131nf", None),  # dotless i
])
def test_convert_string_to_real_is_kaldis(text, expected):
    assert same(kaldi_convert_string_to_real(text), expected)  # the hand answer is Kaldi's
    assert same(ours(text), expected), text


def test_convert_string_to_real_agrees_with_kaldis_rule_on_random_strings():
    tokens = ["1", "23", "0", "007", "-", "+", ".", "e", "E", "e5", "e-3", " ", "\t", "\n", "\v", "_", "\u0663",
              "x", "0x", "p", "inf", "INF", "Infinity", "nan", "NaN", "1.#INF", "1.#QNAN", "#", "1e308", "9e307",
              "1e-400", "\u00a0", "i", "n", ","]
    rng = random.Random(0)
    accepted = refused = 0
    for _ in range(4000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(0, 5)))
        expected = kaldi_convert_string_to_real(text)
        assert same(ours(text), expected), text
        accepted += expected is not None
        refused += expected is None
    assert accepted > 400 and refused > 2000  # both sides of the rule exercised


@pytest.mark.parametrize("text, expected", [("0.1", 0.1), (" -inf", -math.inf), ("1_0", None), ("nan", None),
                                            ("0x1", None), ("1.5\u00a0", None)])
def test_float_option_values_in_config_files(text, expected, tmp_path):
    """nan is Kaldi's syntax but no option takes it: refused with the other bad values."""
    from kaldilite.decode.decoder import DecoderOptions

    conf = tmp_path / "decode.conf"
    conf.write_text(f"# beams\n--beam={text}\n")
    try:
        value = read_config(conf, DecoderOptions).beam
    except InputError as exc:
        assert str(exc) == (f"{conf}:2: bad value {text.strip(_C_SPACE)!r} for --beam: expected a number "
                            "(e.g. 0.1, -2.5e-3, inf)")
        value = None
    assert value == expected
    assert same(parse_value(text, float, "beam", "x") if expected is not None else None, expected)


def _invoke(args):
    from kaldilite.cli import cli

    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("value, error", [
    ("1_0", "Invalid value for '--acwt': '1_0' is not a number as Kaldi reads it (e.g. 0.1, -2.5e-3, inf)"),
    ("\u0660.\u0661", "Invalid value for '--acwt': '\u0660.\u0661' is not a number as Kaldi reads it"),
    ("nan", "Invalid value for '--acwt': nan is not a value any option here takes; give a number"),
    ("0.1", "Invalid value for 'GRAPH_DIR'"),   # accepted: the next check fails
    (" 1e-1 ", "Invalid value for 'GRAPH_DIR'"),
])
def test_decode_acwt_on_the_command_line(value, error, tmp_path):
    result = _invoke(["decode", "--acwt", value, str(tmp_path / "graph"), str(tmp_path), str(tmp_path / "d")])
    assert result.exit_code == 2 and error in result.output, result.output


def test_ranges_and_integers_on_the_command_line(tmp_path):
    args = [str(tmp_path / "graph"), str(tmp_path), str(tmp_path / "d")]
    refused = {("decode-commands", "--online-cmvn-silence-weight", "inf"): "inf is not in the range 0.0<=x<=1.0",
               ("decode-commands", "--online-cmvn-silence-weight", "0.5x"): "'0.5x' is not a number as Kaldi",
               ("decode", "--nj", "1_0"): "'1_0' is not an integer as Kaldi reads it (e.g. 4, -1)",
               ("decode", "--nj", "\u0663"): "'\u0663' is not an integer as Kaldi reads it",
               ("decode", "--nj", "2.0"): "'2.0' is not an integer as Kaldi reads it",
               ("make-mfcc", "--nj", "+0"): "0 is not in the range x>=1"}
    for (verb, option, value), error in refused.items():
        result = _invoke([verb, option, value] + args)
        assert result.exit_code == 2 and f"Invalid value for '{option}': {error}" in result.output, result.output
    for verb, option, value in (("decode-commands", "--online-cmvn-silence-weight", "1"), ("decode", "--nj", " +3")):
        result = _invoke([verb, option, value] + args)
        assert result.exit_code == 2 and "Invalid value for 'GRAPH_DIR'" in result.output, result.output


def test_every_number_option_of_every_verb_reads_by_kaldis_rule():
    """No verb keeps click's FLOAT/INT (Python's float()/int()); ranges keep their bounds and help."""
    import click

    from kaldilite.cli import VERBS, KaldiFloat, KaldiFloatRange, KaldiInt, KaldiIntRange, cli

    ctx = click.Context(cli)
    kinds = {}
    for verb in VERBS:
        command = cli.get_command(ctx, verb)
        for sub in [command] + list(getattr(command, "commands", {}).values()):
            for param in sub.params:
                if isinstance(param.type, (click.types.FloatParamType, click.types.IntParamType)):
                    kinds[type(param.type)] = kinds.get(type(param.type), 0) + 1
    assert set(kinds) == {KaldiFloat, KaldiFloatRange, KaldiInt, KaldiIntRange}, kinds
    assert kinds[KaldiFloat] > 150 and kinds[KaldiInt] > 100
    nj = next(p for p in cli.get_command(ctx, "make-mfcc").params if p.name == "nj")
    assert (nj.type.min, nj.type.max) == (1, None)
    assert "x>=1" in CliRunner().invoke(cli, ["make-mfcc", "--help"]).output


def test_a_config_files_bad_number_names_its_line(tmp_path):
    """click_values_with_configs (train-mono --config): the option's type reads the value."""
    for d in ("data", "lang"):
        (tmp_path / d).mkdir()
    conf = tmp_path / "mono.conf"
    conf.write_text("--num-iters=3\n--boost-silence=1_0\n")
    result = _invoke(["train-mono", "--config", str(conf), str(tmp_path / "data"), str(tmp_path / "lang"),
                      str(tmp_path / "exp")])
    assert isinstance(result.exception, InputError), result.output
    assert str(result.exception) == (f"{conf}:2: bad value '1_0' for --boost-silence: '1_0' is not a number as "
                                     "Kaldi reads it (e.g. 0.1, -2.5e-3, inf)")


@pytest.mark.parametrize("args, error", [
    (["perturb-data-dir-speed", "0.9,1_0"], "FACTORS must be numbers separated by commas (e.g. 0.9,1.0,1.1), "
                                            "not '0.9,1_0'"),
    (["perturb-data-dir-speed", "inf"], "FACTORS must be numbers separated by commas (e.g. 0.9,1.0,1.1), not 'inf'"),
    (["add-noise-data-dir", "--bg-snrs", "15:\u0661\u0660"], "--bg-snrs must be numbers separated by ':' "
                                                             "(e.g. 15:10:5:0), not '15:\u0661\u0660'"),
    (["add-noise-data-dir", "--pad-range", "0.2:nan"], "--pad-range must be numbers separated by ':' "
                                                       "(e.g. 0.2:1.5), not '0.2:nan'"),
    (["reverberate-data-dir", "--foreground-snrs", "2_0:10"], "--foreground-snrs must be numbers separated by ':' "
                                                              "(e.g. 20:10:0), not '2_0:10'"),
])
def test_number_lists_of_the_augmentation_verbs(tmp_path, args, error):
    """Speed factors and SNR lists (strings split by the verb) take each number by the same rule, finite."""
    noise = ["--bg-noise-dir", str(tmp_path)] if args[0] == "add-noise-data-dir" else []
    result = _invoke(args + noise + [str(tmp_path), str(tmp_path / "out")])
    assert isinstance(result.exception, InputError), result.output
    assert str(result.exception) == error


def test_inf_where_it_means_something_and_where_it_does_not():
    """Kaldi takes inf for any float option: an endpoint rule's --max-relative-cost is inf by default
    (a rule with no cost condition), a beam of inf prunes nothing; a frame length or shift of inf is
    refused by the options' range check (it was an OverflowError traceback), as is an infinite dither."""
    from kaldilite.feat.options import MfccOptions
    from kaldilite.online.recognizer import OnlineDecodingOptions

    opts = read_config(None, OnlineDecodingOptions, {"endpoint.rule2.max-relative-cost": "2.0",
                                                     "endpoint.rule3.max-relative-cost": "INFINITY", "beam": "inf"})
    assert opts.endpoint.rule3_max_relative_cost == OnlineDecodingOptions().endpoint.rule1_max_relative_cost \
        == math.inf
    assert opts.endpoint.rule2_max_relative_cost == 2.0 and opts.beam == math.inf
    for name, value in (("sample-frequency", "inf"), ("frame-length", "inf"), ("frame-shift", "-inf"),
                        ("frame-shift", "0")):
        with pytest.raises(InputError) as refused:
            read_config(None, MfccOptions, {name: value}).check()
        assert str(refused.value) == f"--{name} must be a positive number, got {float(value)}"
    with pytest.raises(InputError, match="--dither must be >= 0 and finite, got inf"):
        read_config(None, MfccOptions, {"dither": "inf"}).check()
