"""``lthlib-runs``: the finished runs of a study, and a run's ticket out.

    lthlib-runs [OUT_ROOT] [--grid G] [--setting S] [--lr X] [--sparsity S] [--csv]
    lthlib-runs export RUN_DIR OUT.pt [--prune-form]
    lthlib-runs params-doc [--markdown [PATH]] [--html PATH]      (also python -m lthlib.cli params-doc)

The first lists every finished run under ``OUT_ROOT/<grid>/runs/`` (default ``outputs``, relative to
the project root when run inside a checkout, else to the working directory) as a table, or as CSV; the
unfinished and broken ones are counted (and the broken ones named) on stderr. ``--sparsity`` matches the
nominal or measured global sparsity at three decimals (an IMP round at 0.5904 is 0.590). The second
writes the run's weights and mask with ``lthlib.tickets.export_state`` (an output folder that is
itself named ``export`` is given as ``./export``). The third writes the parameter reference generated
from the schema (``lthlib.paramsdoc``): Markdown on stdout, or to the files given (atomically).
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from . import layout, paramsdoc, registry
from .errors import LTHError
from .results import SPARSITY_DECIMALS, collect
from .tickets import export_state

TABLE_COLUMNS = ["grid", "setting", "model", "dataset", "epochs", "lr", "seed", "target_sparsity", "sparsity",
                 "final_acc", "run"]


def _list_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lthlib-runs", description="List the finished runs of a study "
                                 "(`lthlib-runs export RUN_DIR OUT.pt` writes one run's weights and mask).")
    ap.add_argument("out_root", nargs="?", default="outputs", metavar="OUT_ROOT",
                    help="the study's output folder (default: outputs)")
    ap.add_argument("--grid", help="only this grid (a folder under OUT_ROOT)")
    ap.add_argument("--setting", choices=registry.NAMES, help="only this setting")
    ap.add_argument("--lr", type=float, help="only this learning rate")
    ap.add_argument("--sparsity", type=float, help="only this global sparsity (three decimals)")
    ap.add_argument("--csv", action="store_true", help="CSV with every column instead of the table")
    return ap


def _export_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lthlib-runs export", description="Write a finished run's weights "
                                 "and mask as a plain torch.save file (lthlib.tickets.export_state).")
    ap.add_argument("run_dir", metavar="RUN_DIR")
    ap.add_argument("out_file", metavar="OUT.pt")
    ap.add_argument("--prune-form", action="store_true",
                    help="the state dict in torch.nn.utils.prune form (weight_orig and weight_mask)")
    return ap


def _params_doc_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lthlib-runs params-doc", description="The parameter reference (every "
                                 "params key: type, default, accepted values, identity, doc), generated from "
                                 "the schema. With no option: Markdown on stdout.")
    ap.add_argument("--markdown", nargs="?", const="-", metavar="PATH",
                    help="Markdown to PATH (written atomically); without PATH, to stdout")
    ap.add_argument("--html", metavar="PATH", help="a self-contained HTML page to PATH (written atomically)")
    return ap


def params_doc(args) -> int:
    """Write the parameter reference where ``args`` say (Markdown on stdout by default)."""
    if args.markdown in (None, "-") and (args.markdown == "-" or args.html is None):
        sys.stdout.write(paramsdoc.markdown())
    written = [(args.markdown, "markdown"), (args.html, "html")]
    try:
        for path, fmt in written:
            if path not in (None, "-"):
                paramsdoc.write(path, fmt)
                print(f"wrote {path}", file=sys.stderr)
    except OSError as exc:
        print(f"lthlib-runs params-doc: {exc}", file=sys.stderr)
        return 1
    return 0


def select(df: pd.DataFrame, setting=None, lr=None, sparsity=None) -> pd.DataFrame:
    """The rows of ``collect``'s table at ``setting``, ``lr`` and ``sparsity`` (None: any)."""
    keep = pd.Series(True, index=df.index)
    if setting is not None:
        keep &= df["setting"] == setting
    if lr is not None:
        keep &= (df["lr"].astype(float) - lr).abs() <= 1e-12 * max(1.0, abs(lr))
    if sparsity is not None:
        want = round(sparsity, SPARSITY_DECIMALS)
        nominal = df["target_sparsity"].astype(float).round(SPARSITY_DECIMALS) == want
        keep &= nominal | (df["sparsity"].astype(float).round(SPARSITY_DECIMALS) == want)
    return df[keep]


def _table(df: pd.DataFrame) -> str:
    """The listing: nominal sparsity ("target": the OMP level, the IMP round's, the SDT network's match)
    and the measured global one ("sparsity": 0 for dense and small-dense networks)."""
    shown = df[TABLE_COLUMNS].assign(sparsity=df["sparsity"].map(lambda s: f"{s:.3f}"),
                                     target_sparsity=df["target_sparsity"].map(lambda s: f"{s:.3f}"),
                                     final_acc=df["final_acc"].map(lambda a: f"{a:.2f}"),
                                     lr=df["lr"].map(lambda x: f"{x:g}"))
    return shown.rename(columns={"target_sparsity": "target"}).to_string(index=False)


def list_runs(args) -> int:
    root = layout.root(args.out_root)
    if not root.is_dir():
        print(f"lthlib-runs: {root}: no such folder (give the study's output folder, e.g. outputs)",
              file=sys.stderr)
        return 1
    df, unfinished = collect(args.out_root, args.grid)
    df = select(df, args.setting, args.lr, args.sparsity)
    if args.csv:
        sys.stdout.write(df.drop(columns=["identity"]).to_csv(index=False))
    elif df.empty:
        filtered = any(v is not None for v in (args.grid, args.setting, args.lr, args.sparsity))
        print(f"no finished runs under {root}" + (" match these filters" if filtered else ""))
    else:
        print(_table(df))
    broken = [u for u in unfinished if "(broken:" in u]
    if unfinished:
        print(f"{len(unfinished)} unfinished run folder(s) not listed" + "".join(f"\n  {b}" for b in broken),
              file=sys.stderr)
    return 0


def export(args) -> int:
    try:
        out = export_state(args.run_dir, args.out_file, prune_form=args.prune_form)
    except (LTHError, OSError) as exc:
        print(f"lthlib-runs export: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        return export(_export_parser().parse_args(argv[1:]))
    if argv[:1] == ["params-doc"]:
        return params_doc(_params_doc_parser().parse_args(argv[1:]))
    return list_runs(_list_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
