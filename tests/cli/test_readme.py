"""The README's command-line, exit-code, output and dashboard claims, checked against the code:
every shell command it shows parses, its flag table is the parser's, its exit-code table is the
one the code uses, the pictures exist. (Running each claim is done by the other CLI tests: exit
codes in test_first_hour, output width in test_terminal, the dashboard in
tests/reporting/test_browser and test_dashboard.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from optuna_shape.cli import _common as common
from optuna_shape.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def commands() -> list[list[str]]:
    out = []
    for block in bash_blocks():
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                for part in line.split("&&"):
                    out.append(shlex.split(part))
    return out


def subparser(name: str):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[name]


def test_every_optuna_shape_command_in_the_readme_parses():
    parser = build_parser()
    seen = 0
    for argv in commands():
        if argv[0] == "optuna-shape":
            parser.parse_args(argv[1:])  # SystemExit(2) on a flag the code does not have
            seen += 1
    assert seen >= 5


@pytest.mark.parametrize("argv", [c for c in commands() if c[0] == "pip"])
def test_every_pip_command_names_real_extras_and_the_cpu_index(argv):
    pyproject = (ROOT / "pyproject.toml").read_text()
    for arg in argv[2:]:
        for extra in re.findall(r"\[(\w+)\]", arg):
            assert re.search(rf"^{extra} = \[", pyproject, flags=re.M), extra
    if "--index-url" in argv:
        assert argv[argv.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"


def test_flag_table_is_the_parsers():
    section = README.split("## Command line reference", 1)[1].split("### Exit codes", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `--")]
    documented = set()
    for row in table:
        first = row.split("|")[1]
        for flag in re.findall(r"--[a-z][a-z-]*", first):
            documented.add(flag)
    actual = {o for a in subparser("search")._actions for o in a.option_strings
              if o.startswith("--") and o != "--help"}
    assert documented == actual, (documented ^ actual)
    report = {o for a in subparser("report")._actions for o in a.option_strings}
    for flag in re.findall(r"--[a-z][a-z-]*", section.split("`optuna-shape report", 1)[1]):
        assert flag in report | actual, flag


def test_flag_defaults_in_the_table_match_the_parser():
    search = subparser("search")
    defaults = {o: a.default for a in search._actions for o in a.option_strings}
    expected = {"--goal": "accuracy",
                "--dataset": "digits", "--device": "cpu", "--family": "wrn",
                "--strategy": "standard", "--sampling": "interval", "--select-on": "val"}
    for flag, value in expected.items():
        assert f"| `{flag}` | `{value}` |" in README, flag
        if flag in ("--strategy", "--sampling"):  # unset unless given: paper's defaults
            assert defaults[flag] is None, flag
            continue
        assert defaults[flag] == value, flag
    from optuna_shape.cli.search import _policy

    paper = _policy(search.parse_args(["--mode", "paper"]), "accuracy")
    assert (paper.strategy, paper.sampling) == ("standard", "interval")
    from optuna_shape.cli.search_args import FAMILIES
    from optuna_shape.families import get_family

    for flag in ("--depth", "--width"):
        assert defaults[flag] is None, flag  # the family's own grid
        row = next(line for line in README.splitlines() if line.startswith(f"| `{flag}` |"))
        cell = row.split("|")[2]
        for name in FAMILIES:
            fam = get_family(name)
            grid = fam.default_depth if flag == "--depth" else fam.default_width
            mentioned = cell.split(f"`{name}`", 1)[1]
            assert f"`{grid}`" in mentioned.split(";")[0], (flag, name)
    assert f"else `{common.DEFAULT_STORAGE}`" in README
    assert "`$OPTUNA_STORAGE`" in README and common.STORAGE_ENV == "OPTUNA_STORAGE"


def test_exit_code_table_is_the_codes_the_cli_uses():
    section = README.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", section, flags=re.M)}
    assert codes == {common.EXIT_OK, common.EXIT_FAILURE, common.EXIT_USAGE,
                     common.EXIT_NO_ANSWER, common.EXIT_UNCONFIRMED, common.EXIT_INTERRUPTED}
    assert README.count("### Exit codes") == 1


def test_readme_has_no_internal_references_and_its_pictures_exist():
    assert "SPEC" not in README and "§" not in README
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (ROOT / path).is_file(), path
    assert "--index-url https://download.pytorch.org/whl/cpu" in README


def test_dashboard_defaults_in_the_readme_are_the_codes():
    assert f"optuna-dashboard {common.DEFAULT_STORAGE}" in README
