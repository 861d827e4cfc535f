"""What every result records beside its numbers: command, machine, software."""
import contextlib
import datetime
import json
import os
import platform
import sys

import numpy as np


def cpu_name():
    """The CPU model (``/proc/cpuinfo``'s model name where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return cpu


def machine():
    cpu = cpu_name()
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    import tensorflow as tf
    import keras

    from maml_tf.core.precision import native_bfloat16
    bf16_flags = list(native_bfloat16())
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib,
            "gpus": len(tf.config.list_physical_devices("GPU")),
            # Whether mixed_bfloat16 runs natively here (and the CPU flags that say so), or emulated.
            "bfloat16_native": bool(bf16_flags), "bfloat16_flags": bf16_flags,
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__}


def command():
    """The command line that produced a result, as a user types it (:func:`program_name`)."""
    return " ".join([program_name(sys.argv[0])] + sys.argv[1:])


def program_name(script):
    """How a user types ``script``: ``maml`` for the command line interface (the installed
    ``maml`` or ``python -m maml_tf.cli``, from any checkout or worktree), the project's
    scripts from the checkout's root (``reproduce/...``), wherever the copy that ran them was."""
    parts = os.path.normpath(script).split(os.sep)
    if parts[-2:] == ["maml_tf", "cli.py"] or parts[-1] == "maml":
        return "maml"
    if os.path.exists(script):
        folder = os.path.basename(os.path.dirname(os.path.abspath(script)))
        return (os.path.join(folder, os.path.basename(script)) if folder in ("reproduce", "benchmarks")
                else os.path.relpath(script))
    return script


def as_typed(command_line):
    """A recorded command line as :func:`command` writes it now: records made before it
    named the CLI ``maml`` hold the path of the file that ran (``../wt/x/maml_tf/cli.py``)."""
    script, _, arguments = command_line.partition(" ")
    return " ".join(filter(None, [program_name(script), arguments]))


TRAINING_HISTORY = "commands.jsonl"  # in a checkpoint directory: which command trained what


def record_training(directory, first, last, part="", **compute):
    """Append this process's command and the iterations it trained (``first`` -> ``last``)
    to ``directory``'s history, so that a result resumed over many runs names every
    command behind it, not only the last, and the machine it ran on (runs move between
    machines; their seconds per iteration compare only within one). ``part``: which model of the directory
    (an RL method); ``compute``: settings a run may change between commands (``precision``);
    nothing is recorded when no iteration was trained."""
    if last <= first:
        return
    os.makedirs(directory, exist_ok=True)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    append_json_line(os.path.join(directory, TRAINING_HISTORY),
                     {"date": date, "part": part, "from_iteration": int(first), "to_iteration": int(last),
                      "command": command(), "machine": f"{cpu_name()}, {os.cpu_count()} cores", **compute})


def training_history(directory, part=""):
    """The recorded runs of ``directory`` (of ``part`` only), oldest first: dicts with the
    fields of :func:`record_training`."""
    path = os.path.join(directory, TRAINING_HISTORY)
    if not os.path.exists(path):
        return []
    return [run for run in read_json_lines(path) if run["part"] == part]


def read_json_lines(path):
    """The records of a benchmark's run log, in order (see :func:`append_json_line`)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append_json_line(path, record):
    """Append ``record`` as one JSON line to ``path`` (a benchmark's run log)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


@contextlib.contextmanager
def atomic_file(path, newline=None):
    """Open ``path`` for writing through a temporary file renamed into place once written,
    so that a killed process leaves the old file or the new one, never half of one."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w", newline=newline) as f:
        yield f
    os.replace(partial, path)


def write_json(path, payload):
    """Write ``payload`` as indented JSON to ``path``, atomically (:func:`atomic_file`)."""
    with atomic_file(path) as f:
        json.dump(_plain(payload), f, indent=2)
        f.write("\n")


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x
