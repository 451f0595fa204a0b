"""How the training processes spread over machines: decided once from the Editable Part's HOSTFILE,
NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT, and turned into the launcher's command line.

Three forms (README "More than one machine"):
  one node   neither HOSTFILE nor NNODES > 1: ``torchrun --master_port P`` with one process per GPU
             seen (those of CUDA_VISIBLE_DEVICES where set); with one GPU, or none (a CPU machine),
             ``python -m bettersynth.train`` itself: one process, which joins a one-process group on
             a free local port (bettersynth.train.distributed). No launcher chain to start: the
             deepspeed launcher's two Python processes cost ~9 s a stage on the H100 machine, the
             trainer's own DeepSpeed engine is the same either way;
  hostfile   HOSTFILE, deepspeed's MPI-style ``host slots=N`` lines: this machine (node 0, which
             evaluates) launches every node over passwordless ssh (pdsh);
  per-node   NNODES > 1: the same job is started on every node, NODE_RANK 0..NNODES-1 (as SLURM and
             Kubernetes do), no ssh; each node's launcher (``deepspeed --no_ssh --node_rank R``) reads
             a hostfile of NNODES nodes with this node's GPU count (every node must have as many)
             written under the system's temporary folder.
The world (the processes a global batch is spread over) is the sum of the hostfile's slots, or
NNODES x the GPUs per node (one process per node on CPU). Torch-free: ``bsynth layout`` decides it
(bettersynth.job_settings) and ``bsynth launch`` (bettersynth.train.launch) runs the command.

    nodes = node_settings({"HOSTFILE": "", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1",
                           "MASTER_PORT": "29500"}, gpus_per_node=8, processes_per_node=8)   # world 16
    launcher_argv(nodes, hostfile_dir)      # [python, "-m", "deepspeed.launcher.runner", "--hostfile", ...]
    launcher_argv(one_node_of_8, ...)       # [python, "-m", "torch.distributed.run", "--nnodes", "1", ...]
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

FORMS = ("one", "hostfile", "per-node")
DEFAULT_MASTER_PORT = 29500  # torch.distributed's and deepspeed's default
DEEPSPEED = (sys.executable, "-m", "deepspeed.launcher.runner")  # the `deepspeed` command, of this Python
TORCHRUN = (sys.executable, "-m", "torch.distributed.run")  # the `torchrun` command, of this Python
# One hostfile line: a host name and its slot count (deepspeed's format; '#' starts a comment).
_HOST_LINE = re.compile(r"^(\S+)\s+slots=(\d+)$")


class NodeSettingsError(ValueError):
    """An Editable Part value or hostfile line that cannot describe the machines (the message names it)."""


def read_hostfile(path: Path) -> dict[str, int]:
    """{host: slots} in file order; NodeSettingsError naming the file and line of anything else."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise NodeSettingsError(f"HOSTFILE {path}: cannot be read: {error}") from error
    hosts: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = _HOST_LINE.match(text)
        if not match or int(match.group(2)) < 1:
            raise NodeSettingsError(f"HOSTFILE {path}, line {number}: {line.strip()!r} is not 'HOST slots=N' "
                                    "with N >= 1 (deepspeed's hostfile format)")
        if match.group(1) in hosts:
            raise NodeSettingsError(f"HOSTFILE {path}, line {number}: host {match.group(1)!r} is listed twice")
        hosts[match.group(1)] = int(match.group(2))
    if not hosts:
        raise NodeSettingsError(f"HOSTFILE {path} lists no host ('HOST slots=N' lines)")
    return hosts


@dataclass(frozen=True)
class NodeSettings:
    form: str
    nnodes: int
    node_rank: int
    gpus_per_node: int          # this node's GPUs for the launcher; 0 on a CPU machine (one process)
    master_addr: str            # "" in the hostfile form: deepspeed asks the first host for its address
    master_port: int
    hostfile: str               # the hostfile form's file; "" otherwise
    world_size: int             # training processes over all nodes

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise NodeSettingsError(f"unknown launch form {self.form!r}; one of {', '.join(FORMS)}")
        if self.nnodes < 1 or not 0 <= self.node_rank < self.nnodes:
            raise NodeSettingsError(f"NODE_RANK must be in 0..NNODES-1 = 0..{self.nnodes - 1}, got {self.node_rank}")
        if not 1 <= self.master_port <= 65535:
            raise NodeSettingsError(f"MASTER_PORT must be a TCP port (1..65535), got {self.master_port}")
        if self.form == "per-node" and not self.master_addr:
            raise NodeSettingsError("NNODES > 1 needs MASTER_ADDR: the address of node 0 that every node can reach")
        if self.form == "hostfile" and not self.hostfile:
            raise NodeSettingsError("the hostfile form needs HOSTFILE")
        if self.gpus_per_node < 0 or self.world_size < 1:
            raise NodeSettingsError(f"no training process: {self.gpus_per_node} GPU(s), world {self.world_size}")

    @property
    def evaluates(self) -> bool:
        """Only node 0 evaluates, scores and records the run; the other nodes only train."""
        return self.node_rank == 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NodeSettings:
        """The settings ``to_json`` wrote (``bsynth layout``'s NODES); NodeSettingsError for anything else."""
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as error:
            raise NodeSettingsError(f"not the node settings that `bsynth layout` prints as NODES: {text!r} "
                                    f"({error})") from error

    def shell_variables(self) -> dict[str, str]:
        return {"NODES": self.to_json(), "LAUNCH_FORM": self.form, "NNODES": str(self.nnodes),
                "NODE_RANK": str(self.node_rank), "MASTER_ADDR": self.master_addr,
                "MASTER_PORT": str(self.master_port), "HOSTFILE": self.hostfile,
                "TRAINING_PROCESSES": str(self.world_size)}


def count(value: str, name: str, minimum: int) -> int:
    if not value.strip().isdigit() or int(value) < minimum:
        raise NodeSettingsError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def node_settings(editable: Mapping[str, str], gpus_per_node: int, processes_per_node: int) -> NodeSettings:
    """The decision from the Editable Part's values (missing keys: one node), this node's GPUs and its
    training processes (bettersynth.train.batch.count_gpus: the GPUs, or 1 on CPU)."""
    hostfile = editable.get("HOSTFILE", "")
    nnodes = count(editable.get("NNODES") or "1", "NNODES", 1)
    node_rank = count(editable.get("NODE_RANK") or "0", "NODE_RANK", 0)
    port = count(editable.get("MASTER_PORT") or str(DEFAULT_MASTER_PORT), "MASTER_PORT", 1)
    addr = editable.get("MASTER_ADDR", "")
    if hostfile:
        if nnodes > 1 or node_rank:
            raise NodeSettingsError("give HOSTFILE (one launch over ssh) or NNODES/NODE_RANK (one launch per "
                                    f"node), not both: HOSTFILE={hostfile!r}, NNODES={nnodes}, NODE_RANK={node_rank}")
        path = Path(hostfile).resolve()
        hosts = read_hostfile(path)
        return NodeSettings("hostfile", len(hosts), 0, gpus_per_node, addr, port, str(path), sum(hosts.values()))
    if nnodes > 1:
        return NodeSettings("per-node", nnodes, node_rank, gpus_per_node, addr, port, "", nnodes * processes_per_node)
    if node_rank:
        raise NodeSettingsError(f"NODE_RANK={node_rank} with NNODES=1: set NNODES to the number of nodes")
    return NodeSettings("one", 1, 0, gpus_per_node, addr or "127.0.0.1", port, "", processes_per_node)


def per_node_hostfile(nodes: NodeSettings, folder: Path) -> Path:
    """Writes the per-node form's hostfile (node-0 .. node-N-1, this node's slots each) into ``folder``."""
    slots = nodes.world_size // nodes.nnodes
    path = Path(folder) / f"bsynth-hostfile-{nodes.nnodes}x{slots}"
    temporary = path.with_name(f".{path.name}.{nodes.node_rank}.tmp")
    temporary.write_text("".join(f"node-{index} slots={slots}\n" for index in range(nodes.nnodes)), encoding="utf-8")
    temporary.replace(path)
    return path


def launcher_argv(nodes: NodeSettings, hostfile_dir: Path) -> list[str]:
    """The command that starts this node's training processes, to be followed by the module's arguments."""
    if nodes.form == "one" and nodes.gpus_per_node <= 1:
        return [sys.executable, "-m", "bettersynth.train"]
    if nodes.form == "one":
        # one process per GPU seen; LOCAL_RANK k is the k-th GPU of CUDA_VISIBLE_DEVICES, so two jobs
        # on one host can use two GPU sets (and two MASTER_PORTs)
        return [*TORCHRUN, "--nnodes", "1", "--nproc_per_node", str(nodes.gpus_per_node),
                "--master_addr", nodes.master_addr, "--master_port", str(nodes.master_port),
                "--module", "bettersynth.train"]
    if nodes.form == "hostfile":
        argv = [*DEEPSPEED, "--hostfile", nodes.hostfile, "--master_port", str(nodes.master_port)]
        argv += ["--master_addr", nodes.master_addr] if nodes.master_addr else []
    else:
        argv = [*DEEPSPEED, "--hostfile", str(per_node_hostfile(nodes, hostfile_dir)), "--no_ssh",
                "--node_rank", str(nodes.node_rank), "--master_addr", nodes.master_addr,
                "--master_port", str(nodes.master_port)]
    return [*argv, "--module", "bettersynth.train"]
