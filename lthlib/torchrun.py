"""torchrun: run one setting of one experiment as a DDP rank group.

    torchrun --nproc_per_node N -m lthlib.torchrun SETTING EXPERIMENT_JSON

A notebook cannot be a rank group, so a setting with ``nproc > 1`` calls ``launch`` (a torchrun
subprocess running this module, ``distributed.launch``) and then reads the run folders the group finished.
"""
from __future__ import annotations

import json
import sys

from . import distributed as dist


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: torchrun --nproc_per_node N -m lthlib.torchrun SETTING EXPERIMENT_JSON", file=sys.stderr)
        return 2
    from .engine import run_setting
    from .params import load
    dist.init_from_env()
    try:
        exp = load(None, json.loads(argv[1]))
        runs = run_setting(exp, argv[0])
        dist.barrier()
        if dist.is_main():
            print(f"{argv[0]}: {len(runs)} runs finished on {dist.world()} processes")
    finally:
        dist.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
