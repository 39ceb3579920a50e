"""Every expected failure of simulate / experiment / report / bench mpc / committee: one
``error:`` line naming the parameter and value, exit code 2, no traceback."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from phalanx.cli import app
from phalanx.errors import DataError

#: the plaintext research mode (secure aggregation with the embedded ledger is the default)
FAST = ["--plaintext", "--ledger", "none", "--peers", "5", "--rounds", "1", "--model", "logreg",
        "--no-progress"]


def run_cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def assert_one_line_error(code: int, output: str, *fragments: str) -> None:
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert code == 2, output
    assert len(errors) == 1 and "Traceback" not in output, output
    assert len(errors[0]) < 400, errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def write_idx(directory: Path, *, truncate: str | None = None, garbage: str | None = None,
              skip: str | None = None) -> None:
    """A tiny valid IDX dataset (8x8 images, 2 classes), optionally broken."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 255, (20, 8, 8), dtype=np.uint8),
              "train-labels-idx1-ubyte": (np.arange(20) % 2).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 255, (6, 8, 8), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": (np.arange(6) % 2).astype(np.uint8)}
    for name, arr in arrays.items():
        if name == skip:
            continue
        raw = bytes([0, 0, 8, arr.ndim]) + b"".join(
            int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
        if name == truncate:
            raw = raw[:-3]
        if name == garbage:
            (directory / f"{name}.gz").write_bytes(b"this is not gzip")
            continue
        (directory / f"{name}.gz").write_bytes(gzip.compress(raw))


@pytest.mark.parametrize(
    ("args", "toml", "fragments"),
    [
        (["--attack", "scaling", "--attack-param", "scal=20"], None,
         ["scal=20", "attack='scaling'", "scale"]),
        (["--attack", "sign-flip", "--attack-param", "scale=20"], None,
         ["scale=20", "attack='sign-flip'", "flip_scale"]),
        (["--attack", "scaling", "--attack-param", "scale=abc"], None, ["scale='abc'"]),
        (["--attack-param", "noequals"], None, ["--attack-param='noequals'"]),
        ([], "data_dir = 5", ["data_dir=5"]),
        ([], 'secure = "false"', ["secure='false'", "boolean"]),
        ([], "voting_attack = 1", ["voting_attack=1"]),
        (["--committee", "7"], None, ["committee=7", "secure"]),
        (["--threshold", "2"], None, ["threshold=2", "secure"]),
        (["--secure", "--rule", "fedavg"], None, ["rule='fedavg'", "fedavg-nb", "fltrust",
                                                  "--plaintext"]),
        (["--secure", "--rule", "krum"], None, ["rule='krum'", "no secure form"]),
        (["--secure", "--frac-bits", "30"], None, ["frac_bits=30"]),
        (["--rule", "cc", "--rule-param", "taux=1"], None, ["taux"]),
        (["--model", "no_such_pkg.mod:build"], None, ["model='no_such_pkg.mod:build'"]),
        (["--model", "builtins:print"], None, ["builtins:print", "not a torch.nn.Module"]),
        (["--model", "not a model"], None, ["model='not a model'"]),
        (["--dataset", "cifar"], None, ["dataset='cifar'", "idx:DIR"]),
        (["--peers", "0"], None, ["peers=0"]),
    ],
)
def test_bad_simulate_input_is_one_line(tmp_path: Path, args: list[str], toml: str | None,
                                        fragments: list[str]) -> None:
    # Prepare
    extra = []
    if toml is not None:
        (tmp_path / "run.toml").write_text(toml + "\n")
        extra = ["--config", str(tmp_path / "run.toml")]
    # Execute (a TOML that sets secure is not overridden by FAST's --plaintext)
    fast = [a for a in FAST if not (toml and "secure" in toml and a == "--plaintext")]
    code, output = run_cli(["simulate", *fast, *extra, *args, "--out", str(tmp_path / "o")])
    # Assert
    assert_one_line_error(code, output, *fragments)


@pytest.mark.parametrize("rule", ["fedavg", "krum"])
def test_a_plain_only_rule_under_the_secure_default_says_add_plaintext(tmp_path: Path,
                                                                       rule: str) -> None:
    # Execute: no --secure, no --plaintext: the default (secure, embedded ledger)
    code, output = run_cli(["simulate", "--rule", rule, "--no-progress", "--out",
                            str(tmp_path / "o")])
    # Assert: one line that says what to add; nothing ran
    assert_one_line_error(code, output, f"rule='{rule}'", "no secure form", "--plaintext")
    assert not (tmp_path / "o" / "metrics.jsonl").exists()


def test_default_ledger_roles_too_many_for_the_peers_say_ledger_none(tmp_path: Path) -> None:
    code, output = run_cli(["simulate", "--peers", "5", "--no-progress", "--out",
                            str(tmp_path / "o")])
    assert_one_line_error(code, output, "peers=5", "ledger='embedded'", "--ledger none")


@pytest.mark.parametrize(
    ("broken", "fragments"),
    [
        (dict(skip="t10k-labels-idx1-ubyte"), ["missing t10k-labels-idx1-ubyte"]),
        (dict(truncate="train-images-idx3-ubyte"), ["train-images-idx3-ubyte", "truncated"]),
        (dict(garbage="train-labels-idx1-ubyte"), ["train-labels-idx1-ubyte", "gzip"]),
    ],
)
def test_broken_own_idx_files_are_one_line(tmp_path: Path, broken: dict[str, str],
                                           fragments: list[str]) -> None:
    write_idx(tmp_path / "data", **broken)
    code, output = run_cli(["simulate", *FAST, "--dataset", f"idx:{tmp_path / 'data'}",
                            "--out", str(tmp_path / "o")])
    assert_one_line_error(code, output, *fragments)


def test_bad_npz_is_one_line(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 8, 8), np.uint8))
    code, output = run_cli(["simulate", *FAST, "--dataset", f"npz:{tmp_path / 'd.npz'}",
                            "--out", str(tmp_path / "o")])
    assert_one_line_error(code, output, "y_train", "x_test")


def test_named_dataset_offline_says_which_files_to_put_where(tmp_path: Path,
                                                             monkeypatch) -> None:
    # Prepare: every mirror fails as a machine without network does (DNS failure)
    def offline(url: str) -> bytes:
        raise DataError(f"cannot fetch {url}: <urlopen error [Errno -3] Temporary failure "
                        "in name resolution>" * 5)

    monkeypatch.setattr("phalanx.ml.data.fetch_url", offline)
    # Execute
    code, output = run_cli(["simulate", *FAST, "--dataset", "mnist", "--data-dir",
                            str(tmp_path / "mnist"), "--out", str(tmp_path / "o")])
    # Assert: a short line naming the files and the directory, not the mirrors' errors
    assert_one_line_error(code, output, "train-images-idx3-ubyte.gz", str(tmp_path / "mnist"))
    assert "name resolution" not in output


def test_unwritable_and_non_empty_out(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, output = run_cli(["simulate", *FAST, "--out", str(tmp_path / "file" / "run")])
    assert_one_line_error(code, output, "out=", "cannot be created")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "summary.json").write_text("{}")
    code, output = run_cli(["simulate", *FAST, "--out", str(tmp_path / "used")])
    assert_one_line_error(code, output, "is not empty", "--overwrite")


def test_resume_refusals(tmp_path: Path) -> None:
    code, output = run_cli(["simulate", "--resume", str(tmp_path / "nothing")])
    assert_one_line_error(code, output, "config.toml")
    run = tmp_path / "ledger"
    run.mkdir()
    (run / "config.toml").write_text('ledger = "model"\npeers = 20\n')
    (run / "summary.json").write_text('{"status": "interrupted"}')
    code, output = run_cli(["simulate", "--resume", str(run)])
    assert_one_line_error(code, output, "ledger='model'", "cannot be resumed")
    code, output = run_cli(["simulate", "--resume", str(run), "--peers", "3"])
    assert_one_line_error(code, output, "peers")


def test_experiment_errors(tmp_path: Path) -> None:
    code, output = run_cli(["experiment", "--rules", "fedavg,median", "--rule-param", "tau=1",
                            "--out", str(tmp_path / "g")])
    assert_one_line_error(code, output, "tau=1", "none of the grid")
    code, output = run_cli(["experiment", "--seeds", "a,b", "--out", str(tmp_path / "h")])
    assert_one_line_error(code, output, "seeds='a,b'")


def test_report_and_bench_and_committee_errors(tmp_path: Path) -> None:
    assert_one_line_error(*run_cli(["report", str(tmp_path)]), "not a run directory")
    assert_one_line_error(*run_cli(["bench", "mpc", "--rule", "krum", "--dim", "8",
                                    "--clients", "3"]), "krum")
    assert_one_line_error(*run_cli(["bench", "mpc", "--spool", "disk", "--dim", "8"]),
                          "spool='disk'")
    assert_one_line_error(*run_cli(["bench", "mpc", "--committee", "3", "--dim", "8"]),
                          "3")
    assert_one_line_error(*run_cli(["committee", "--corrupt", "2"]), "corrupt")


#: a local port nothing listens on (connections are refused at once)
DEAD_RPC = "http://127.0.0.1:9"
ADDRESS = "0x" + "12" * 20


@pytest.mark.parametrize(("args", "fragments"), [
    # chain deploy: options checked before any node is contacted
    (["deploy"], ["rpc is missing", "--rpc"]),
    (["deploy", "--rpc", "not a url"], ["rpc='not a url'", "http"]),
    (["deploy", "--rpc", DEAD_RPC], ["no JSON-RPC node answers", DEAD_RPC]),
    (["deploy", "--rpc", DEAD_RPC, "--key", "zz"], ["--key", "private key", "2 characters"]),
    (["deploy", "--rpc", DEAD_RPC, "--key", "0x" + "ab" * 31], ["--key", "64 hex digits"]),
    (["deploy", "--rpc", DEAD_RPC, "--committee", "3"], ["committee=3", "3*threshold+1=4"]),
    (["deploy", "--rpc", DEAD_RPC, "--committee", "129"], ["committee=129", "128"]),
    (["deploy", "--rpc", DEAD_RPC, "--threshold", "0"], ["threshold=0"]),
    (["deploy", "--rpc", DEAD_RPC, "--pool", "-1"], ["pool=-1.0"]),
    (["deploy", "--rpc", DEAD_RPC, "--min-stake", "0"], ["min_stake=0.0"]),
    (["deploy", "--rpc", DEAD_RPC, "--proposers", "0"], ["proposers=0"]),
    (["deploy", "--rpc", DEAD_RPC, "--voters", "129"], ["voters=129", "128"]),
    (["deploy", "--rpc", DEAD_RPC, "--committee", "100", "--proposers", "100", "--voters",
      "100"], ["committee=100 + proposers=100 + voters=100", "256 seats"]),
    (["deploy", "--rpc", DEAD_RPC, "--rounds", "0"], ["rounds=0"]),
    (["deploy", "--rpc", DEAD_RPC, "--phase-blocks", "0"], ["phase_blocks=0"]),
    # chain status: a node's task, or the embedded demo
    (["status", "--rpc", DEAD_RPC], ["--address", DEAD_RPC]),
    (["status", "--rpc", DEAD_RPC, "--address", "0xabc"], ["address='0xabc'", "40 hex"]),
    (["status", "--rpc", "ftp://x", "--address", ADDRESS], ["rpc='ftp://x'"]),
    (["status", "--rpc", DEAD_RPC, "--address", ADDRESS], ["no JSON-RPC node answers"]),
    (["status", "--address", ADDRESS], ["needs --rpc"]),
    (["status", "--peers", "0"], ["peers=0", "36 seats"]),
    (["status", "--peers", "20000"], ["peers=20000", "16384"]),
    (["status", "--demo-rounds", "-1"], ["demo_rounds=-1"]),
    (["status", "--demo-rounds", "11"], ["demo_rounds=11", "[0, 10]"]),
    (["status", "--seed", "-1"], ["seed=-1"]),
])
def test_bad_chain_input_is_one_line(args: list[str], fragments: list[str]) -> None:
    code, output = run_cli(["chain", *args])
    assert_one_line_error(code, output, *fragments)


def test_a_bad_key_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "not-a-key-but-secret-" + "9" * 20
    monkeypatch.setenv("PHALANX_KEY", secret)
    code, output = run_cli(["chain", "deploy", "--rpc", DEAD_RPC])
    assert_one_line_error(code, output, "$PHALANX_KEY", "private key")
    assert secret not in output


TINY = ["--dim", "8", "--clients", "3"]


@pytest.mark.parametrize(("args", "fragments"), [
    (["--rule", "nope", *TINY], ["rule='nope'", "fltrust"]),
    (["--rule", "fedavg", *TINY], ["fedavg", "no secure form"]),
    (["--rule", "krum", *TINY], ["krum"]),
    (["--sharing", "foo", *TINY], ["sharing='foo'"]),
    (["--spool", "disk", *TINY], ["spool='disk'"]),
    (["--committee", "3", *TINY], ["3"]),
    (["--threshold", "0", *TINY], ["t=0"]),
    (["--frac-bits", "30", *TINY], ["frac_bits=30"]),
    (["--frac-bits", "2", *TINY], ["frac_bits=2"]),
    (["--seed", "-1", *TINY], ["seed=-1"]),
    (["--workers", "0", *TINY], ["workers=0"]),
    (["--clients", "0", "--dim", "8"], ["clients=0"]),
    (["--dim", "0"], ["dim=0"]),
    (["--dim", str(10**11), "--clients", "100"], ["clients=100 x dim=100000000000", "GiB"]),
])
def test_bad_bench_mpc_input_is_one_line(args: list[str], fragments: list[str]) -> None:
    code, output = run_cli(["bench", "mpc", *args])
    assert_one_line_error(code, output, *fragments)


def test_debug_keeps_the_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--debug", "simulate", *FAST, "--peers", "0"])
    assert result.exit_code != 2 and result.exception is not None


def test_version() -> None:
    code, output = run_cli(["--version"])
    assert code == 0 and output.startswith("phalanx ")


@pytest.mark.parametrize(("command", "shown"), [
    ("simulate", ["[default: (secure)]", "[default: (embedded)]", "--plaintext", "research mode",
                  "need --plaintext"]),
    ("experiment", ["[default: (plaintext)]", "[default: (none)]", "Unlike simulate"]),
])
def test_help_shows_the_secure_and_ledger_defaults(command: str, shown: list[str]) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    for fragment in shown:
        assert fragment in text, (fragment, text)
