"""SymbolTable against OpenFst's own text reader (pywrapfst) and hand-made bad files."""

import pytest

from kaldilite.errors import InputError, MissingFileError
from kaldilite.io.symbols import SymbolTable, UnknownSymbolError

WORDS = "<eps> 0\n!SIL 1\n<UNK> 2\nlight 3\noff 4\non 5\nturn 6\n#0 7\n<s> 8\n</s> 9\n"


def test_reads_kaldi_words_txt_like_openfst(tmp_path):
    import pywrapfst

    (tmp_path / "words.txt").write_text(WORDS)
    ours = SymbolTable.read(tmp_path / "words.txt")
    theirs = pywrapfst.SymbolTable.read_text(str(tmp_path / "words.txt"))
    assert len(ours) == theirs.num_symbols() == 10
    for symbol, sym_id in ours:
        assert theirs.find(symbol) == sym_id and theirs.find(sym_id) == symbol
    assert ours.id("turn") == 6 and ours.symbol(3) == "light" and "#0" in ours and "lamp" not in ours
    openfst = ours.to_openfst()
    assert openfst.find("on") == 5


def test_write_then_read_gives_the_same_file(tmp_path):
    (tmp_path / "words.txt").write_text(WORDS)
    table = SymbolTable.read(tmp_path / "words.txt")
    table.write(tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_text() == WORDS
    assert SymbolTable.read(tmp_path / "copy.txt") == table


def test_sym2int_with_and_without_map_oov():
    table = SymbolTable.from_symbols(["<eps>", "<UNK>", "on", "off"])
    assert table.ids(["on", "lamp", "off"], oov="<UNK>") == [2, 1, 3]
    with pytest.raises(UnknownSymbolError, match=r"1 unknown symbol\(s\): lamp") as err:
        table.ids(["on", "lamp"])
    assert isinstance(err.value, KeyError) and isinstance(err.value, InputError)
    assert table.symbols_of([3, 2]) == ["off", "on"]
    assert table.add("new") == 4 and table.add("on") == 2
    with pytest.raises(InputError):
        table.add("x", 2)


@pytest.mark.parametrize(
    "content, message",
    [
        ("a 0\nb\n", r"t.txt:2: expected 'symbol id'"),
        ("a 0\na 1\n", r"t.txt:2: symbol 'a' appears twice"),
        ("a 0\n\nb 0\n", r"t.txt:3: id 0 given to both 'a' and 'b'"),
    ],
)
def test_malformed_tables_name_file_and_line(tmp_path, content, message):
    (tmp_path / "t.txt").write_text(content)
    with pytest.raises(InputError, match=message):
        SymbolTable.read(tmp_path / "t.txt")


def test_missing_table(tmp_path):
    with pytest.raises(MissingFileError, match="no such symbol table"):
        SymbolTable.read(tmp_path / "words.txt")
