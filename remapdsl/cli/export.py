"""`remap export FILE MODEL`: write a model as a checked ONNX file (trained weights, or fresh with --untrained).

Trained weights come from the store (default `.remap/remap.db` beside FILE): the last checkpoint of the
newest finished run of the model with FILE's data and training settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from remapdsl.cli.options import UsageError, add_trained_weights_options
from remapdsl.cli.workspace import find_trained, open_workspace, select
from remapdsl.onnx.export import DEFAULT_EXPORTER, EXPORTERS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("export", help="write a model as an ONNX file (dynamic batch, checked)",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("file", type=Path, metavar="FILE", help="the .remap file")
    p.add_argument("model", metavar="MODEL", help="name of the model in FILE")
    p.add_argument("-o", "--output", type=Path, help="where to write the file (default: MODEL.onnx)")
    p.add_argument("--untrained", action="store_true",
                   help="export fresh weights (for size and latency before training)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh weights with --untrained (default 0)")
    p.add_argument("--exporter", choices=EXPORTERS, default=DEFAULT_EXPORTER,
                   help=f"torch exporter (default {DEFAULT_EXPORTER}: fast enough to run after every training)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_trained_weights_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from remapdsl.onnx.bench import onnx_param_count
    from remapdsl.onnx.export import ExportError, export_model

    ws = open_workspace(args.file, args.store, args.epochs, read_only=True)
    try:
        info = select(ws, args.model)
        output: Path = args.output or Path(f"{info.model.name}.onnx")
        weights, why = (None, "") if args.untrained else find_trained(ws, info)
        if weights is None and not args.untrained:
            raise UsageError(f"{why}; train it first (remap train {args.file} -m {info.model.name}), "
                             "or pass --untrained to export fresh weights")
    finally:
        ws.close()
    try:
        artifact, _ = export_model(info.model, ws.input_shape, state_dict=weights.state if weights else None,
                                   seed=args.seed, exporter=args.exporter)
        artifact.write(output)
    except ExportError as e:
        raise UsageError(str(e)) from e
    result: dict[str, Any] = {
        "model": info.model.name,
        "path": str(output),
        "trained": weights is not None,
        "run": weights.run_id if weights else None,
        "epoch": weights.epoch if weights else None,
        "seed": None if weights else args.seed,
        "input_shape": list(ws.input_shape),
        "size_bytes": artifact.size_bytes,
        "param_count": onnx_param_count(artifact.proto()),
        "expected_params": info.param_count,
        "exporter": artifact.exporter,
        "opset": artifact.opset,
        "export_seconds": round(artifact.export_seconds, 4),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        source = (f"trained weights of run {weights.run_id}, epoch {weights.epoch}" if weights
                  else f"fresh weights, seed {args.seed}")
        print(f"wrote {output}: model '{info.model.name}' ({source}), {artifact.size_bytes:,} bytes, "
              f"{result['param_count']:,} parameters, input N x {'x'.join(map(str, ws.input_shape))}, "
              f"{artifact.exporter} exporter, opset {artifact.opset}, {artifact.export_seconds:.2f} s")
    return 0
