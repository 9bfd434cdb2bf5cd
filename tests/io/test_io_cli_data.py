"""`kaldilite data ...` verbs through click's runner and through the installed entry point."""

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kaldilite.cli import cli

KALDILITE = Path(sys.executable).parent / "kaldilite"


def make_dir(path, utts):
    """utts: list of (utt, spk, wav path)."""
    path.mkdir(parents=True)
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in utts))
    spk2utt = {}
    for u, s, _ in utts:
        spk2utt.setdefault(s, []).append(u)
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    (path / "text").write_text("".join(f"{u} {u.split('_')[0]}\n" for u, _, _ in utts))
    (path / "wav.scp").write_text("".join(f"{u} {w}\n" for u, _, w in utts))
    return path


def fsdd_utts(fsdd_dir, speakers=("george", "jackson", "lucas"), takes=range(3)):
    return [(f"{spk}-{d}_{t}", spk, fsdd_dir / f"{d}_{spk}_{t}.wav") for spk in speakers for d in (1, 7) for t in takes]


def test_validate_ok_on_real_fsdd_dir(tmp_path, fsdd_dir):
    path = make_dir(tmp_path / "train", fsdd_utts(fsdd_dir))
    result = CliRunner().invoke(cli, ["data", "validate", "--no-feats", "--sample-frequency", "8000", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: ok (18 utterances, 3 speakers)\n"


def test_validate_prints_problems_and_exits_1(tmp_path, fsdd_dir):
    utts = fsdd_utts(fsdd_dir)
    utts[4] = (utts[4][0], utts[4][1], tmp_path / "gone.wav")
    path = make_dir(tmp_path / "train", utts)
    result = subprocess.run([str(KALDILITE), "data", "validate", "--no-feats", str(path)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout == f"{path}/wav.scp:5: {tmp_path}/gone.wav: no such audio file; fix the path in wav.scp or restore the file\n"
    assert "kaldilite data fix" in result.stderr


def test_fix_then_split_then_subset_then_combine(tmp_path, fsdd_dir):
    path = make_dir(tmp_path / "train", fsdd_utts(fsdd_dir))
    text = (path / "text").read_text().splitlines()
    (path / "text").write_text("\n".join(text[:-2]) + "\n")  # two utterances lose their transcript
    runner = CliRunner()
    fixed = runner.invoke(cli, ["data", "fix", str(path)])
    assert fixed.exit_code == 0, fixed.output
    assert fixed.output.splitlines()[0] == f"{path}: kept 16 of 18 utterances"
    assert "  wav.scp: 18 -> 16 lines" in fixed.output.splitlines()

    split = runner.invoke(cli, ["data", "split", str(path), "2"])
    assert split.output.split() == [str(path / "split2" / "1"), str(path / "split2" / "2")]
    too_many = subprocess.run([str(KALDILITE), "data", "split", str(path), "4"], capture_output=True, text=True)
    assert too_many.returncode == 1
    assert too_many.stderr.strip() == (f"kaldilite data: error: {path}: cannot split into 4 parts by speaker, "
                                       "it has only 3 speaker(s); use --nj <= 3")

    (tmp_path / "spk.list").write_text("lucas\n")
    sub = runner.invoke(cli, ["data", "subset", "--spk-list", str(tmp_path / "spk.list"), str(path), str(tmp_path / "lucas")])
    assert sub.exit_code == 0, sub.output
    assert sub.output == f"{tmp_path / 'lucas'}: 4 utterances, 1 speakers\n"
    first = runner.invoke(cli, ["data", "subset", "--first", str(path), "3", str(tmp_path / "first3")])
    assert first.output == f"{tmp_path / 'first3'}: 3 utterances, 1 speakers\n"
    bad = runner.invoke(cli, ["data", "subset", str(path), str(tmp_path / "x")])
    assert bad.exit_code == 2 and "give SRC_DIR NUM DEST_DIR" in bad.output

    both = runner.invoke(cli, ["data", "combine", str(tmp_path / "both"), str(tmp_path / "lucas"), str(tmp_path / "first3")])
    assert both.exit_code == 0, both.output
    assert both.output == f"{tmp_path / 'both'}: 7 utterances, 2 speakers\n"


def test_kaldi_script_names_are_aliases(tmp_path, fsdd_dir):
    path = make_dir(tmp_path / "train", fsdd_utts(fsdd_dir))
    runner = CliRunner()
    assert runner.invoke(cli, ["fix-data-dir", str(path)]).output == f"{path}: kept all 18 utterances\n"
    assert runner.invoke(cli, ["validate-data-dir", "--no-feats", str(path)]).output == f"{path}: ok (18 utterances, 3 speakers)\n"
    assert runner.invoke(cli, ["split-data", str(path), "3"]).output.split()[-1] == str(path / "split3" / "3")
