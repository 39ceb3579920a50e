"""The simulator's run configuration: one frozen dataclass, validated, loadable from TOML.

Unknown keys and bad values are ConfigErrors that name the key and the value. The resolved
configuration is written into every run directory (``config.toml``) so a run can be repeated.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phalanx.errors import ConfigError

DATASETS = ("digits", "mnist", "fashion-mnist")
PARTITIONS = ("iid", "dirichlet", "shards")
MODELS = ("logreg", "mlp", "cnn", "cnn1m")
MALFORMED_KINDS = ("nan", "inf", "wrong-length")
LEDGERS = ("none", "embedded", "model")
#: where the peers' local work runs (sim/executor.py)
BACKENDS = ("inprocess", "ray")
#: the fixed-point fractional bits SecureParams accepts
FRAC_BITS_RANGE = (4, 24)
#: prefixes of a user's own dataset (ml/data.py) and the form of a user's own model
OWN_DATASET_PREFIXES = ("idx:", "npz:")
#: rules/secure/backend.ClientFault values a malicious proposer can run (simulate
#: --client-fault), each with the secure rules it applies to (empty: every one)
CLIENT_FAULT_RULES: dict[str, tuple[str, ...]] = {
    "non-binary-bits": (), "wrong-trust-weight": ("fltrust",), "bad-remainder": ("fltrust",),
    "inconsistent-sharing": (), "wrap-around": ("fedavg-nb", "fltrust", "cc"),
    "uncommitted-bundle": (), "garbage-bundle": (), "short-vector": (), "resend-part1": (),
}
# (ClientFault.NO_REVEAL is left out: it only shows against a false claim aimed at that client)


@dataclass(frozen=True)
class SimConfig:
    """Everything one simulated federation needs (defaults: the README's demo run, the whole
    system: secure aggregation under the committee MPC, judged and paid on the embedded ledger;
    ``secure=False, ledger="none"`` is the fast plaintext research mode)."""

    # federation
    peers: int = 20
    malicious: float = 0.2
    attack: str = "sign-flip"
    knowledge: str = "omniscient"
    attack_params: Mapping[str, Any] = field(default_factory=dict)
    #: proposers per round (0 = every peer proposes every round)
    proposers: int = 0
    #: extra honest-but-broken peers that send NaN / inf / wrong-length updates every round
    malformed_peers: int = 0
    # aggregation
    rule: str = "fltrust"
    rule_params: Mapping[str, Any] = field(default_factory=dict)
    #: size of the public root dataset (fltrust), held out from every peer's training data
    root_size: int = 100
    #: aggregate under the committee MPC (False: the plaintext rule, the research mode)
    secure: bool = True
    committee: int = 5
    threshold: int = 1
    #: fixed-point fractional bits of the secure encoding (None = automatic: the largest f in
    #: [4, 16] the rule's circuit accepts for the model's d and the number of clients;
    #: sim/secure_params.py)
    frac_bits: int | None = None
    #: secure runs derive every party's secrets from ``seed`` (reproducible, hence NOT secret)
    reproducible_secrets: bool = False
    #: secure fltrust: the committee reveals one bit per client, [trust weight > 0], and a
    #: valid input with weight 0 is neither accepted (paid) nor rejected (docs/economics.md,
    #: "fltrust trust bit"). None = on exactly for secure fltrust runs with a ledger (where it
    #: decides payment); True elsewhere is an error, False keeps the bit secret
    trust_bit: bool | None = None
    #: protocol-level adversaries of secure runs (attacks/servers.py, rules/secure ClientFault):
    #: corrupt_servers committee members run server_attack ("none", "tamper", "silent",
    #: "false-claim"; None = 1 when set) and faulty_clients malicious proposers per round cheat
    #: inside the MPC with client_fault (None = 1 when set)
    server_attack: str = "none"
    corrupt_servers: int | None = None
    client_fault: str = "none"
    faulty_clients: int | None = None
    # ledger (protocol.md §4): "none" = no chain, "embedded" = the contract on an in-process
    # EVM, "model" = its pure-Python mirror (fast, bit-identical integer math)
    ledger: str = "embedded"
    voters: int = 5
    #: a voter accepts iff candidate accuracy >= (1 - epsilon) · current accuracy
    epsilon: float = 0.05
    #: share of each peer's data held out as its private validation set (chained runs)
    validation_fraction: float = 0.2
    #: malicious voters vote against their honest judgement (when the attack is not "none")
    voting_attack: bool = True
    # learning
    rounds: int = 20
    model: str = "mlp"
    dataset: str = "digits"
    data_dir: str | None = None
    partition: str = "iid"
    alpha: float = 0.5
    shards_per_client: int = 2
    #: cap on each peer's local examples, a seeded sample of its partition (0 = no cap)
    samples_per_peer: int = 0
    local_epochs: int = 5
    batch_size: int = 16
    lr: float = 0.05
    momentum: float = 0.9
    # run
    seed: int = 0
    #: torch intra-op threads of the simulating process (0 = torch's default). 1 by default:
    #: on a busy 2-core machine two OpenMP threads per op ran local training up to 40x slower
    #: (docs/ml.md); the forked training path still uses every core.
    threads: int = 1
    #: where the peers' local work runs: "inprocess" or "ray" (sim/executor.py, docs/scale.md)
    backend: str = "inprocess"
    #: the Ray cluster to join ("auto" or HOST:PORT); None = start a local instance
    ray_address: str | None = None
    #: CPUs of the local Ray instance (0 = every CPU of this machine)
    ray_cpus: int = 0

    def __post_init__(self) -> None:
        for name in ("secure", "voting_attack", "reproducible_secrets"):
            check_bool(name, getattr(self, name))
        check_int("peers", self.peers, 1)
        check_fraction("malicious", self.malicious, hi_open=True)
        check_choice("knowledge", self.knowledge, ("omniscient", "partial"))
        check_int("proposers", self.proposers, 0, self.peers)
        check_int("malformed_peers", self.malformed_peers, 0)
        check_int("root_size", self.root_size, 0)
        check_int("committee", self.committee, 4)
        check_int("threshold", self.threshold, 1)
        if self.secure and self.committee < 3 * self.threshold + 1:
            raise ConfigError(
                f"committee={self.committee} must be >= 3*threshold+1={3 * self.threshold + 1}"
            )
        if self.frac_bits is not None:
            check_int("frac_bits", self.frac_bits, FRAC_BITS_RANGE[0], FRAC_BITS_RANGE[1])
        check_choice("ledger", self.ledger, LEDGERS)
        check_secure_only(self)
        check_int("voters", self.voters, 0)
        check_fraction("epsilon", self.epsilon, hi_open=True)
        check_fraction("validation_fraction", self.validation_fraction, hi_open=True)
        if self.ledger != "none":
            check_roles(self)
        check_int("rounds", self.rounds, 1)
        check_model(self.model)
        check_dataset(self.dataset)
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise ConfigError(f"data_dir={self.data_dir!r} must be a string (a directory)")
        check_choice("partition", self.partition, PARTITIONS)
        check_positive("alpha", self.alpha)
        check_int("shards_per_client", self.shards_per_client, 1)
        check_int("samples_per_peer", self.samples_per_peer, 0)
        check_int("local_epochs", self.local_epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_positive("lr", self.lr)
        check_fraction("momentum", self.momentum, hi_open=True)
        check_int("seed", self.seed, 0)
        check_int("threads", self.threads, 0)
        check_backend(self)
        if self.rule == "fltrust" and self.root_size < 1:
            raise ConfigError(f"root_size={self.root_size}: fltrust needs a root dataset (>= 1)")
        check_rule(self)
        check_attack(self)
        check_adversaries(self)
        check_trust_bit(self)

    @property
    def reveals_trust_bit(self) -> bool:
        """Whether the committee reveals fltrust's trust bit (``trust_bit``, None = auto)."""
        if self.trust_bit is None:
            return self.secure and self.rule == "fltrust" and self.ledger != "none"
        return self.trust_bit

    @property
    def num_corrupt_servers(self) -> int:
        """Committee members running ``server_attack`` (0 without one)."""
        if self.server_attack == "none":
            return 0
        return 1 if self.corrupt_servers is None else self.corrupt_servers

    @property
    def num_faulty_clients(self) -> int:
        """Malicious proposers per round running ``client_fault`` (0 without one)."""
        if self.client_fault == "none":
            return 0
        return 1 if self.faulty_clients is None else self.faulty_clients

    @property
    def num_malicious(self) -> int:
        """Malicious peers: round(malicious · peers)."""
        return int(round(self.malicious * self.peers))

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, TOML-friendly (None values are dropped)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = dict(value) if isinstance(value, Mapping) else value
        return out


def check_backend(cfg: SimConfig) -> None:
    """backend, ray_address and ray_cpus (the Ray options only with backend='ray')."""
    check_choice("backend", cfg.backend, BACKENDS)
    check_int("ray_cpus", cfg.ray_cpus, 0)
    if cfg.backend != "ray":
        for name, unset in (("ray_address", None), ("ray_cpus", 0)):
            if getattr(cfg, name) != unset:
                raise ConfigError(f"{name}={getattr(cfg, name)!r} needs backend='ray' "
                                  f"(backend={cfg.backend!r})")
    address = cfg.ray_address
    if address is None:
        return
    host, sep, port = str(address).rpartition(":")
    if not isinstance(address, str) or not (address == "auto" or (
            sep and host and port.isdigit() and 0 < int(port) < 65536)):
        raise ConfigError(f"ray_address={address!r} must be 'auto' or HOST:PORT")
    if cfg.ray_cpus:
        raise ConfigError(f"ray_cpus={cfg.ray_cpus} sizes a local instance; a joined cluster "
                          f"(ray_address={address!r}) has its own CPUs")


def load_config(path: Path | None = None, **overrides: Any) -> SimConfig:
    """A SimConfig from a TOML file (optional) with explicit overrides on top.

    Overrides whose value is None are ignored (an unset CLI option).
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"config={path} does not exist") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config={path} is not valid TOML: {e}") from e
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(SimConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown}; known keys are {sorted(known)}")
    for name in ("attack_params", "rule_params"):
        if name in values and not isinstance(values[name], Mapping):
            raise ConfigError(f"{name}={values[name]!r} must be a table")
    try:
        return SimConfig(**values)
    except TypeError as e:
        raise ConfigError(f"bad config value: {e}") from e


def dump_toml(values: Mapping[str, Any]) -> str:
    """A minimal TOML writer for the flat config (scalars, strings, one level of tables)."""
    scalars = [(k, v) for k, v in values.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in values.items() if isinstance(v, Mapping)]
    lines = [f"{k} = {toml_value(v)}" for k, v in scalars]
    for name, table in tables:
        lines += ["", f"[{name}]"] + [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} as TOML")


def check_roles(cfg: SimConfig) -> None:
    """Committee, proposers and voters are disjoint (protocol.md §4): they must fit the peers."""
    if cfg.committee < 3 * cfg.threshold + 1:
        raise ConfigError(
            f"committee={cfg.committee} must be >= 3*threshold+1={3 * cfg.threshold + 1}"
        )
    proposers = cfg.proposers or cfg.peers - cfg.committee - cfg.voters
    seats = cfg.committee + proposers + cfg.voters
    if proposers < 1 or seats > cfg.peers:
        raise ConfigError(
            f"committee={cfg.committee} + proposers={proposers} + voters={cfg.voters} "
            f"must fit in peers={cfg.peers} with at least one proposer (ledger={cfg.ledger!r}; "
            "--ledger none runs without these roles)"
        )
    if not 0 < cfg.validation_fraction:
        raise ConfigError(f"validation_fraction={cfg.validation_fraction} must be > 0 "
                          f"when ledger={cfg.ledger!r} (voters need held-out data)")


def check_secure_only(cfg: SimConfig) -> None:
    """Committee settings without a committee are an error, not silently ignored.

    A plaintext run without a ledger has no committee: a committee, threshold, frac_bits or
    reproducible_secrets other than the default would have no effect.
    """
    if cfg.secure or cfg.ledger != "none":
        return
    defaults = SimConfig.__dataclass_fields__
    for name in ("committee", "threshold", "frac_bits", "reproducible_secrets"):
        value = getattr(cfg, name)
        if value != defaults[name].default:
            raise ConfigError(f"{name}={value!r} needs secure=true (--secure) or a ledger: a "
                              "plaintext run without a ledger has no committee")


def check_trust_bit(cfg: SimConfig) -> None:
    """trust_bit is None (auto) or a bool; True needs a secure fltrust run."""
    if cfg.trust_bit is None:
        return
    check_bool("trust_bit", cfg.trust_bit)
    if cfg.trust_bit and not (cfg.secure and cfg.rule == "fltrust"):
        raise ConfigError(f"trust_bit=True needs secure=true and rule='fltrust' (got "
                          f"secure={cfg.secure}, rule={cfg.rule!r}): only the secure fltrust "
                          "circuit has the bit")


def check_rule(cfg: SimConfig) -> None:
    """The rule exists, takes these parameters, and has a secure form when ``cfg.secure``."""
    from phalanx.rules import RULES, make_rule

    if cfg.secure and cfg.rule == "fedavg":
        secure = sorted(n for n, c in RULES.items() if c.secure_compatible)
        raise ConfigError(
            "rule='fedavg' has no secure form (secure aggregation is the default): the plain "
            "mean checks nothing, so one unbounded input moves it anywhere; add --plaintext "
            "(secure = false) for the plain mean, or use 'fedavg-nb' (the norm-bounded mean). "
            f"Secure rules: {secure}"
        )
    cls = RULES.get(cfg.rule)
    if cfg.secure and cls is not None and not cls.secure_compatible:
        secure = sorted(n for n, c in RULES.items() if c.secure_compatible)
        raise ConfigError(
            f"rule={cfg.rule!r} has no secure form (it needs comparisons across clients) and "
            f"secure aggregation is the default: add --plaintext (secure = false), or choose "
            f"a secure rule {secure}"
        )
    make_rule(cfg.rule, secure=cfg.secure, **dict(cfg.rule_params))


def check_attack(cfg: SimConfig) -> None:
    """The attack exists and reads exactly the parameters given (values validated too)."""
    from phalanx.attacks.poisoning import Attack, AttackSpec, Knowledge, validate_attack_params

    check_choice("attack", cfg.attack, tuple(a.value for a in Attack))
    validate_attack_params(cfg.attack, dict(cfg.attack_params))
    AttackSpec(attack=Attack(cfg.attack), knowledge=Knowledge(cfg.knowledge),
               **dict(cfg.attack_params))


def check_adversaries(cfg: SimConfig) -> None:
    """Server and client faults of secure runs: known names, a committee and malicious peers to
    run them, counts that fit, and (for client faults) a rule whose circuit has the check."""
    from phalanx.attacks.servers import SERVER_ATTACKS

    check_choice("server_attack", cfg.server_attack, ("none", *SERVER_ATTACKS))
    check_choice("client_fault", cfg.client_fault, ("none", *CLIENT_FAULT_RULES))
    for attack, count in (("server_attack", "corrupt_servers"),
                          ("client_fault", "faulty_clients")):
        name, value = getattr(cfg, attack), getattr(cfg, count)
        if name == "none":
            if value is not None:
                flag = attack.replace("_", "-")
                raise ConfigError(f"{count}={value!r} needs {attack} (--{flag})")
            continue
        if not cfg.secure:
            raise ConfigError(f"{attack}={name!r} needs secure=true (--secure): it cheats "
                              "inside the MPC, which a plaintext run does not have")
        if value is not None:
            check_int(count, value, 1)
    if cfg.server_attack != "none":
        if cfg.num_corrupt_servers > cfg.committee:
            raise ConfigError(f"corrupt_servers={cfg.num_corrupt_servers} must be <= "
                              f"committee={cfg.committee}")
    if cfg.client_fault != "none":
        if cfg.num_faulty_clients > cfg.num_malicious:
            raise ConfigError(
                f"faulty_clients={cfg.num_faulty_clients} must be <= the malicious peers "
                f"(malicious={cfg.malicious} of peers={cfg.peers} gives {cfg.num_malicious})")
        rules = CLIENT_FAULT_RULES[cfg.client_fault]
        if rules and cfg.rule not in rules:
            raise ConfigError(f"client_fault={cfg.client_fault!r} needs rule in {list(rules)}, "
                              f"not rule={cfg.rule!r} (its circuit has no such witness)")


def check_model(name: Any) -> None:
    """A built-in model or ``package.module:function``."""
    if isinstance(name, str) and ":" in name:
        module, _, func = name.partition(":")
        if module and func and all(p.isidentifier() for p in [*module.split("."), func]):
            return
        raise ConfigError(f"model={name!r} must look like package.module:function")
    check_choice("model", name, MODELS)


def check_dataset(name: Any) -> None:
    """A named dataset, ``idx:DIR`` or ``npz:FILE``."""
    if isinstance(name, str) and name.startswith(OWN_DATASET_PREFIXES):
        if len(name) > 4:
            return
        raise ConfigError(f"dataset={name!r} needs a path after {name[:4]!r}")
    if name not in DATASETS:
        raise ConfigError(f"dataset={name!r} is unknown; choose one of {list(DATASETS)}, "
                          "idx:DIR or npz:FILE")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be a boolean (true or false, unquoted)")


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} must be an integer")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"{name}={value} must be {bound}")


def check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{name}={value!r} must be a number > 0")


def check_fraction(name: str, value: Any, *, hi_open: bool) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not (0 <= value < 1 if hi_open else 0 <= value <= 1):
        raise ConfigError(f"{name}={value!r} must be in [0, 1{')' if hi_open else ']'}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is unknown; choose one of {list(choices)}")
