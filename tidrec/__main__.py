"""``tidrec STAGE [flags]``: the same as ``python -m tidrec.STAGE [flags]``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

STAGES = {
    "run": "tokenize -> fit -> evaluate, end to end",
    "data": "prepare a dataset (load, filter, split) into a folder",
    "tokenize": "item text -> embeddings -> semantic IDs",
    "fit": "train a model (the generative model or a baseline)",
    "evaluate": "leave-one-out evaluation of a trained model",
    "beam": "constrained beam search latency benchmark",
    "compare": "train and evaluate several models on one split",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"} or args[0] not in STAGES:
        width = max(map(len, STAGES))
        lines = [f"  {name:<{width}}  {what}" for name, what in STAGES.items()]
        print("usage: tidrec STAGE [flags]   (tidrec STAGE --help for a stage's flags)\n")
        print("stages:\n" + "\n".join(lines))
        if args and args[0] not in {"-h", "--help"}:
            print(f"\ntidrec: error: unknown stage {args[0]!r}", file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(f"tidrec.{args[0]}")
    return module.main(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
