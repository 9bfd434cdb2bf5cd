"""Kaldi-style options for dataclasses: config files, `--name=value` overrides, click options.

Kaldi programs take options as `--num-mel-bins=23`, read more from `--config=conf/mfcc.conf`
(one `--name=value` per line, `#` comments, blank lines allowed; src/util/parse-options.cc),
and the command line overrides the file. Here an options object is a dataclass, possibly with
nested dataclasses (`MfccOptions.frame_opts`), whose leaf fields form ONE flat namespace of
option names: the field name with `_` -> `-` (`sample_frequency` -> `--sample-frequency`), or
`metadata={"option": "name"}` to spell it otherwise. Booleans accept true/false (also t/f/1/0,
and a bare `--name` means true, as in Kaldi).

    opts = read_config("conf/mfcc.conf", MfccOptions, overrides={"num-ceps": 20})

Also the one place of Kaldi's rules for reading text (src/util/text-utils.cc, parse-options.cc), which
every reader of a Kaldi file and every verb's option uses: numbers (`convert_string_to_real`,
`convert_string_to_integer`, `split_integers`), booleans (`convert_string_to_bool`), fields separated by
C white space only (`split_fields`, `splits_like_c`) and table keys (`is_token`).
"""

import dataclasses
import math
import re
import typing
from pathlib import Path

from kaldilite.errors import InputError, MissingFileError, where

C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale (Python's str.strip() also drops Unicode spaces)
# what Python's str.split() / str.strip() take for white space beyond C's: the ASCII separators
# \x1c-\x1f and Unicode's spaces (NBSP, U+3000 ideographic space, ...)
_PYTHON_ONLY_SPACE = re.compile("[\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_C_SPACE_RUN = re.compile("[ \t\n\v\f\r]+")
_NOT_TOKEN = re.compile("[\x00-\x20\x7f]")
_TRUE = ("true", "t", "1", "")
_FALSE = ("false", "f", "0")
# what C's strtoll(text, &end, 10) reads: C-locale white space, an optional sign, ASCII digits
# (Python's int() also takes '1_0' and other scripts' digits such as '٣', which Kaldi refuses)
_STRTOLL = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_INT32 = (-2 ** 31, 2 ** 31 - 1)
# what Kaldi's ConvertStringToReal reads as a number (src/util/text-utils.cc: C++'s `stream >> x`,
# then nothing but white space): an optional sign, ASCII digits with an optional point, an optional
# e/E exponent; no hex floats, no digit separators ('1_0'), no other scripts' digits
_REAL = re.compile(r"[ \t\n\v\f\r]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t\n\v\f\r]*")
# ... and, when that fails, the one word it looks up (any case; '1.#INF' and '1.#QNAN' are MSVC's)
_REAL_WORDS = {"INF": math.inf, "+INF": math.inf, "-INF": -math.inf, "INFINITY": math.inf,
               "+INFINITY": math.inf, "-INFINITY": -math.inf, "NAN": math.nan, "+NAN": math.nan,
               "-NAN": -math.nan, "1.#INF": math.inf, "-1.#INF": -math.inf, "1.#QNAN": math.nan,
               "-1.#QNAN": -math.nan}


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One leaf option: its Kaldi name, the path of attributes to it, type, default and help."""

    name: str
    path: tuple
    type: type
    default: object
    help: str


def option_specs(options_cls):
    """All leaf options of a dataclass (recursing into nested dataclass fields), in field order."""
    specs = []
    _collect(options_cls, (), specs)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TypeError(f"{options_cls.__name__} has duplicate option names: {duplicates}")
    return specs


def _collect(cls, prefix, specs):
    hints = typing.get_type_hints(cls)
    instance = cls()
    for field in dataclasses.fields(cls):
        value = getattr(instance, field.name)
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            _collect(kind, prefix + (field.name,), specs)
            continue
        if kind not in (bool, int, float, str):
            raise TypeError(f"option field {cls.__name__}.{field.name} has unsupported type {kind}")
        name = field.metadata.get("option", field.name.replace("_", "-"))
        specs.append(OptionSpec(name, prefix + (field.name,), kind, value, field.metadata.get("help", "")))


def _default_instance_value(options, path):
    obj = options
    for attr in path:
        obj = getattr(obj, attr)
    return obj


def parse_value(text, kind, name, location):
    """Convert the text of option `name` to `kind` by Kaldi's rules (a number: `convert_string_to_real`,
    but nan, which no option takes, is refused), or raise InputError naming `location`."""
    text = text.strip(C_SPACE)
    try:
        if kind is bool:
            return convert_string_to_bool(text)
        if kind is int:
            return convert_string_to_integer(text)
        if kind is float:
            value = convert_string_to_real(text)
            if math.isnan(value):
                raise ValueError
            return value
        return text
    except ValueError:
        expected = {bool: "true or false", int: "an integer", float: "a number (e.g. 0.1, -2.5e-3, inf)"}[kind]
        raise InputError(f"{location}: bad value {text!r} for --{name}: expected {expected}") from None


def convert_string_to_bool(text):
    """The bool `text` spells by Kaldi's ParseOptions::ToBool (src/util/parse-options.cc), after the
    value's Trim: true, t, 1 or "" (a bare --name) is True; false, f or 0 False; ASCII letters in any
    case (C's tolower). click's BOOL also takes yes/no/y/n/on/off, which Kaldi refuses. ValueError
    otherwise."""
    low = text.strip(C_SPACE).lower() if text.isascii() else None
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"not true or false as Kaldi reads it: {text!r}")


def is_token(text):
    """Whether `text` can be a table key by Kaldi's IsToken (src/util/text-utils.cc): not empty, and no
    ASCII white space or other unprintable ASCII character (\\x00-\\x20, \\x7f); non-ASCII characters, an
    NBSP among them, are part of a token."""
    return bool(text) and _NOT_TOKEN.search(text) is None


def convert_string_to_integer(text):
    """The integer `text` spells by Kaldi's ConvertStringToInteger (src/util/text-utils.h), which
    ParseOptions uses for integer options: what strtoll(text, &end, 10) reads (white space, an
    optional sign, ASCII digits), then only white space. ValueError otherwise."""
    if not _STRTOLL.fullmatch(text.rstrip(C_SPACE)):
        raise ValueError(f"not an integer as Kaldi reads it: {text!r}")
    return int(text)


def convert_string_to_real(text):
    """The float `text` spells by Kaldi's ConvertStringToReal (src/util/text-utils.cc), which
    ParseOptions uses for float and double options and config files: white space, a decimal number
    (sign, digits, point, exponent), white space; else the word inf, infinity or nan, optionally
    signed (any case; also MSVC's 1.#INF, -1.#INF, 1.#QNAN, -1.#QNAN), with white space around it.
    A number beyond the double range is refused (C++'s stream sets failbit), one below it reads as 0
    or a denormal. Kaldi reads BaseFloat options as float (range 3.4e38); here every option is a
    double. ValueError otherwise."""
    match = _REAL.fullmatch(text)
    if match:
        value = float(match.group(1))
        if not math.isinf(value):
            return value
    else:
        word = text.strip(C_SPACE)
        if word.isascii() and word.upper() in _REAL_WORDS:
            return _REAL_WORDS[word.upper()]
    raise ValueError(f"not a number as Kaldi reads it: {text!r}")


def split_fields(text, maxsplit=-1):
    """`text`'s white-space-separated fields as Kaldi finds them: separated by C white space only
    (space, tab, newline, \\v, \\f, \\r: SplitStringToVector(line, " \\t", ...), SplitStringOnFirstSpace,
    ReadToken's `stream >> word`, and the scripts' awk and perl in the C locale). An NBSP, U+3000 or
    the ASCII control \\x1c is part of a field, as in Kaldi (IsToken takes non-ASCII bytes); Python's
    str.split() splits there, so `data fix` dropped an utterance whose id holds an NBSP. As
    str.split(None, maxsplit) otherwise: at most `maxsplit` splits, the last field keeps the rest with
    its inner white space (and trailing white space only when the split count was reached)."""
    if _PYTHON_ONLY_SPACE.search(text) is None:  # the common case: str.split's separators are C's
        return text.split(None, maxsplit)
    rest = text.lstrip(C_SPACE)
    if maxsplit == 0:
        return [rest] if rest else []
    fields = _C_SPACE_RUN.split(rest, max(maxsplit, 0))
    if fields[-1] == "":
        fields.pop()
    return fields


def splits_like_c(text):
    """Whether str.split() and str.strip() split and strip every line of `text` (a whole file) at C white
    space exactly, as split_fields: `text` is ASCII without \\x1c-\\x1f (C-speed scans of the file). A
    reader of big files (read_entries) then calls them per line, else split_fields, whose regex search per
    line made reading a 100k-line scp 2x slower (62 -> 128 ms)."""
    return text.isascii() and not any(char in text for char in "\x1c\x1d\x1e\x1f")


def split_integers(text, separators, omit_empty=False):
    """The int32 list `text` spells by Kaldi's SplitStringToIntegers(text, separators, omit_empty, &out)
    (src/util/text-utils.h): "" is []; else `text` split at each of the one-character `separators`,
    empty fields dropped if `omit_empty` (else an empty field is an error, as in Kaldi's option
    parsing, which passes false), each field what strtoll reads whole (leading white space, an
    optional + or -, ASCII digits: no trailing space) within int32. ValueError names the bad field."""
    if text == "":
        return []
    fields = re.split(f"[{re.escape(separators)}]", text)
    out = []
    for field in fields:
        if omit_empty and field == "":
            continue
        value = int(field) if _STRTOLL.fullmatch(field) else None
        if value is None or not _INT32[0] <= value <= _INT32[1]:
            raise ValueError(f"not an int32: {field!r}")
        out.append(value)
    return out


def iteration_list(text, option):
    """A training script's iteration list option (train_mono.sh --realign-iters "1 2 3"; bash splits it
    into words): split_integers on white space, empty fields dropped, as a tuple; else a one-line error."""
    try:
        return tuple(split_integers(str(text), " \t\n", omit_empty=True))
    except ValueError:
        raise InputError(f"--{option}={text!r}: expected space-separated iteration numbers (e.g. '10 20 30')") \
            from None


def set_option(options, spec, value):
    """Set the (possibly nested) field `spec.path` of `options` to `value`."""
    obj = options
    for attr in spec.path[:-1]:
        obj = getattr(obj, attr)
    setattr(obj, spec.path[-1], value)


def _is_default(text, default):
    try:
        return convert_string_to_real(text) == convert_string_to_real(default)
    except ValueError:
        return text.strip().lower() == default.lower()


def _unsupported(options_cls, name, text, location):
    """Raise for a known-but-unimplemented option (class attribute KALDI_UNSUPPORTED) set to a non-default."""
    default, reason = getattr(options_cls, "KALDI_UNSUPPORTED", {})[name]
    if not _is_default(str(text), default):
        raise InputError(f"{location}: --{name}={text} is not supported ({reason}); remove it")


def _unknown(name, specs, options_cls, location):
    import difflib  # only for this error: the lang and data dir readers import this module for its numbers

    known = [s.name for s in specs]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean --{close[0]}?)" if close else ""
    raise InputError(f"{location}: unknown option --{name} for {options_cls.__name__}{hint}; "
                     f"known options: {' '.join('--' + k for k in known)}")


def parse_config_lines(lines, source="<config>"):
    """Yield (line_number, name, value_text) for each option line of a Kaldi config file."""
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip(C_SPACE)  # Kaldi's ReadConfigFile: Trim
        if not line:
            continue
        location = where(source, number)
        if not line.startswith("--"):
            raise InputError(f"{location}: {line!r} is not of the form --name=value "
                             "(shell-style config files lack the leading --)")
        name, sep, value = line[2:].partition("=")
        name = name.strip(C_SPACE).replace("_", "-").lower()
        if not name:
            raise InputError(f"{location}: option with no name: {line!r}")
        yield number, name, value if sep else ""


def read_config(path, options_cls, overrides=None):
    """Build `options_cls()` with values from the Kaldi config file `path` (may be None), then `overrides`.

    `overrides` maps option names (`"num-ceps"` or `"num_ceps"`) to values (typed, or strings
    parsed like the file). Unknown options and malformed values raise InputError naming the
    file and line.
    """
    options = options_cls()
    specs = option_specs(options_cls)
    by_name = {s.name: s for s in specs}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"{path}: config file not found")
        with open(path, encoding="utf-8") as handle:
            for number, name, text in parse_config_lines(handle, str(path)):
                location = where(path, number)
                if name == "config":
                    raise InputError(f"{location}: nested --config is not supported; merge the files")
                spec = by_name.get(name)
                if spec is None:
                    if name in getattr(options_cls, "KALDI_UNSUPPORTED", {}):
                        _unsupported(options_cls, name, text, location)
                        continue
                    _unknown(name, specs, options_cls, location)
                set_option(options, spec, parse_value(text, spec.type, name, location))
    for key, value in (overrides or {}).items():
        name = key.replace("_", "-").lower().lstrip("-")
        spec = by_name.get(name)
        if spec is None:
            if name in getattr(options_cls, "KALDI_UNSUPPORTED", {}):
                _unsupported(options_cls, name, value, "command line")
                continue
            _unknown(name, specs, options_cls, "command line")
        if isinstance(value, str):
            value = parse_value(value, spec.type, name, "command line")
        elif spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
            raise InputError(f"command line: bad value {value!r} for --{name}: expected {spec.type.__name__}")
        set_option(options, spec, value)
    return options


def _format_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def options_to_config_lines(options, only_changed=False):
    """Kaldi config lines (`--name=value`) for every option of `options` (or only non-defaults)."""
    defaults = type(options)()
    lines = []
    for spec in option_specs(type(options)):
        value = _default_instance_value(options, spec.path)
        if only_changed and value == _default_instance_value(defaults, spec.path):
            continue
        lines.append(f"--{spec.name}={_format_value(value)}")
    return lines


def click_options(options_cls, exclude=()):
    """Decorator adding one click option per leaf option of `options_cls` (all default None).

    The command receives them as keyword arguments named like the fields (`num_ceps`); pass
    those to `options_from_click` together with the --config path. Options left unset on the
    command line stay None and so do not override the config file.
    """
    import click

    specs = [s for s in option_specs(options_cls) if s.name not in exclude]

    def decorate(func):
        for spec in reversed(specs):
            param = spec.name.replace("-", "_")
            kind = {bool: click.BOOL, int: click.INT, float: click.FLOAT, str: click.STRING}[spec.type]
            default_text = _format_value(spec.default)
            func = click.option(f"--{spec.name}", param, type=kind, default=None, metavar=spec.type.__name__.upper(),
                                help=f"{spec.help} [default: {default_text}]")(func)
        return func

    return decorate


def options_from_click(options_cls, config_path, kwargs):
    """Options from a --config file overridden by the non-None click values in `kwargs`.

    Removes the option keyword arguments from `kwargs` (so the rest are the command's own).
    """
    overrides = {}
    for spec in option_specs(options_cls):
        param = spec.name.replace("-", "_")
        if param in kwargs:
            value = kwargs.pop(param)
            if value is not None:
                overrides[spec.name] = value
    return read_config(config_path, options_cls, overrides)


def click_values_with_configs(ctx, config_paths, kwargs):
    """{parameter name: value} of the click verb being run (`ctx`): each Kaldi config file of
    `config_paths` in order (a later one overriding an earlier one, as Kaldi's repeated --config),
    then every option given on the command line, which overrides them; an option left at its
    default takes the config's value. Config values are cast by the option's click type (a number by
    Kaldi's rule: kaldilite.cli.kaldi_number_types); a bad value or a name the verb lacks is an error
    naming file:line."""
    import click

    options = {p.opts[0].lstrip("-"): p for p in ctx.command.params if isinstance(p, click.Option)}
    values = {}
    for path in config_paths:
        with open(path, encoding="utf-8") as handle:
            for number, name, text in parse_config_lines(handle, str(path)):
                option = options.get(name)
                if option is None or name == "config":
                    raise InputError(f"{where(str(path), number)}: unknown option --{name} for {ctx.info_name}")
                try:
                    values[option.name] = option.type_cast_value(ctx, text)
                except click.BadParameter as exc:
                    raise InputError(f"{where(str(path), number)}: bad value {text!r} for --{name}: "
                                     f"{exc.message}") from None
    values.update({k: v for k, v in kwargs.items()
                   if ctx.get_parameter_source(k) != click.core.ParameterSource.DEFAULT or k not in values})
    return values
