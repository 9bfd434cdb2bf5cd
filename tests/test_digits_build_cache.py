"""The digits system fixture's cache (tests/digits_build.py): a build is reused only for the same code.

Checked on a stand-in repository and a stand-in build (a function that counts its calls): what the key
covers, when a build is reused, rebuilt or removed.
"""

import os

from digits_build import BUILDS_KEPT, build_key, cached_build


def fake_repo(root):
    files = {"kaldilite/decode/decoder.py": "rule = 1\n", "kaldilite/__init__.py": "", "recipes/digits/run.sh": "echo\n",
             "recipes/digits/conf/mfcc.conf": "--use-energy=false\n", "recipes/utils/stamp.sh": "step() { :; }\n",
             "lang/en/lexicon.txt": "two T UW\n", "README.md": "about\n", "tests/test_x.py": "def test(): pass\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_key_changes_with_code_recipe_and_lexicon_and_nothing_else(tmp_path):
    repo = fake_repo(tmp_path / "repo")
    key = build_key(repo, "/corpus")
    assert build_key(repo, "/corpus") == key
    assert build_key(repo, "/other/corpus") != key
    for name in ("README.md", "tests/test_x.py", "kaldilite/decode/__pycache__/decoder.cpython-311.pyc"):
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("changed\n")
        assert build_key(repo, "/corpus") == key, name  # not read by the build
    seen = {key}
    for name, text in (("kaldilite/decode/decoder.py", "rule = 2\n"), ("kaldilite/lang/new_module.py", "x = 1\n"),
                       ("recipes/digits/run.sh", "echo 2\n"), ("recipes/digits/conf/mfcc.conf", "--dither=0\n"),
                       ("recipes/utils/stamp.sh", "step() { true; }\n"), ("lang/en/lexicon.txt", "two T UW1\n")):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        new = build_key(repo, "/corpus")
        assert new not in seen, name
        seen.add(new)


def test_a_build_is_reused_for_its_key_only_and_old_ones_are_removed(tmp_path):
    root = tmp_path / "cache"
    calls = []

    def build(work):
        calls.append(work)
        (work / "exp").mkdir(parents=True)
        (work / "exp/final.mdl").write_text("model\n")

    first = cached_build(root, "k0", build, ["exp/final.mdl"])
    assert cached_build(root, "k0", build, ["exp/final.mdl"]) == first and len(calls) == 1  # reused
    assert cached_build(root, "k1", build, ["exp/final.mdl"]) != first and len(calls) == 2  # other code: built

    # a build that was interrupted (no marker) or lost a file it needs is made again
    (root / "k1/work_independent/.built").unlink()
    cached_build(root, "k1", build, ["exp/final.mdl"])
    (root / "k1/work_independent/exp/final.mdl").unlink()
    cached_build(root, "k1", build, ["exp/final.mdl"])
    assert len(calls) == 4

    # only the BUILDS_KEPT most recently used builds of other keys stay
    os.utime(root / "k0", (1, 1))  # k0 the least recently used, k1 the most
    for k in range(2, BUILDS_KEPT + 1):
        cached_build(root, f"k{k}", build)
    assert (root / "k0").is_dir()  # BUILDS_KEPT others beside the new one: none removed yet
    cached_build(root, "k1", build)  # reused: now the most recent
    cached_build(root, "new", build)
    kept = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert len(kept) == BUILDS_KEPT + 1 and "k0" not in kept and {"k1", "new"} <= set(kept)
