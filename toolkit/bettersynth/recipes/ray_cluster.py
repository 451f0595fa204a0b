"""How the Data-Juicer process of ``bsynth recipe run --executor ray`` joins Ray (bettersynth.recipes.worker).

- The address is the resolved recipe's ``ray_address``: ``--ray-address`` (a running cluster's head,
  HOST:PORT), else $RAY_ADDRESS, else ``local`` (a Ray instance of the run's own).
- The job's runtime environment carries the recipe's custom operator folders as ``py_modules``
  (uploaded to every node, as Data-Juicer does) and the run's variables that operators read on
  whichever node they run (models folder, caches, hub offline, no installs, where drawn images go):
  a worker on another node inherits the environment of that node's ``ray start``, not this one's.
- Ray Data keeps the input order (``preserve_order``): the export lists the samples in the default
  executor's order, and operators after a Ray part (selectors) break ties the same way.
- A recipe with CUDA operators is refused on a cluster with GPUs when this node sees none:
  Data-Juicer decides on this node (an operator's ``use_cuda()``) whether a CUDA operator runs as a
  Ray actor holding a GPU, so they would silently run on CPUs.

- A cluster address that nothing answers stops the run within seconds, naming it (``ray.init`` would
  retry for minutes before failing).

``connect`` runs before Data-Juicer reads its config (whose resource checks would join Ray without
the run's environment); Data-Juicer's own ``ray.init`` calls then keep this connection
(``ignore_reinit_error=True``). ``check_gpus`` runs once the operators are registered.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

REACH_TIMEOUT_S = 10.0   # a head on a working network answers a TCP connect in well under a second

# Set for the Data-Juicer process by bettersynth.recipes.run.worker_environment, read by operators on
# the Ray workers. PYTHONPATH is not among them: the custom operators travel as py_modules.
FORWARDED = ("DATA_JUICER_EXTERNAL_MODELS_HOME", "DATA_JUICER_CACHE_HOME", "CACHE_HOME", "HF_DATASETS_CACHE",
             "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DJ_PRODUCED_DATA_DIR")
FORWARDED_PREFIXES = ("UV_", "PIP_")   # bettersynth.recipes.installs.no_install_environment


def forwarded_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables the Ray workers get: FORWARDED and the no-install settings of ``environ``, its
    Data-Juicer special-token overrides, and Data-Juicer's Ray-mode flag (as its ``initialize_ray`` does)."""
    from data_juicer.utils.constant import RAY_JOB_ENV_VAR
    from data_juicer.utils.mm_utils import SPECIAL_TOKEN_ENV_PREFIX

    prefixes = FORWARDED_PREFIXES + (SPECIAL_TOKEN_ENV_PREFIX,)
    kept = {key: value for key, value in environ.items() if key in FORWARDED or key.startswith(prefixes)}
    return dict(kept, **{RAY_JOB_ENV_VAR: "1"})


def cuda_operators(process: list[dict]) -> list[str]:
    """The operators of a Data-Juicer process list that ask for CUDA (their class's or their own ``accelerator``)."""
    from data_juicer.ops import OPERATORS

    names = []
    for item in process:
        name, arguments = next(iter(item.items()))
        if ((arguments or {}).get("accelerator") or OPERATORS.modules[name]._accelerator) == "cuda":
            names.append(name)
    return names


def check_reachable(address: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Raise ConnectionError, naming ``address``, when no process listens there (``local``/``auto`` pass)."""
    if address in ("local", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError(f"Ray address {address!r} is not HOST:PORT (the head's address, e.g. 10.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"no Ray head answers at {address} ({error}): start the cluster there (`ray start "
                              f"--head --port {port}`) or give --ray-address the head's HOST:PORT") from error


def connect(address: str, operator_paths: list[str]) -> None:
    """Join the Ray instance at ``address`` with the run's runtime environment; Ray Data keeps order."""
    import ray

    check_reachable(address)
    ray.init(address=address, runtime_env={"py_modules": list(operator_paths) or None,
                                           "env_vars": forwarded_environment(os.environ)})
    ray.data.DataContext.get_current().execution_options.preserve_order = True


def check_gpus(cfg) -> None:
    """Refuse CUDA operators on a cluster with GPUs that this node does not see (see the module docstring)."""
    import ray
    from data_juicer.utils.resource_utils import is_cuda_available

    gpus = ray.cluster_resources().get("GPU", 0)
    on_gpu = cuda_operators(cfg.process)
    if gpus and on_gpu and not is_cuda_available():
        raise RuntimeError(f"the Ray cluster at {cfg.ray_address} has {gpus:g} GPUs but this node sees none: "
                           f"Data-Juicer decides here whether {', '.join(on_gpu)} run as GPU actors, so they "
                           f"would run on CPUs; run `bsynth recipe run` on a node with a GPU")
