"""The whole population of a store as columns: what the overview's scatter shows of every model, in a few queries.

`read_population` gives one row per architecture of the store, with the run that stands for it (see
`read_population`) and its newest ONNX measurement, as equal-length NumPy columns: no Python object per model,
so 10,000 models cost a few SQL queries and some array building. With `hashes` it reads only those models, for a
poller that learned from the change feed (`remapdsl.store.changes`) which ones changed.

`per_class_accuracy` reads the per-class validation accuracy of many runs at once (the data selection's
recolouring), and `model_detail` everything the inspector shows of one model.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

from remapdsl.store.db import ConfusionRow, EpochRow, ModelRow, RunRow, Store

# The status of a model without a run.
UNTRAINED = "untrained"
# The artifact kind of an ONNX report (`remapdsl.onnx.records.ONNX_KIND`; the store cannot import that floor).
_ONNX_KIND = "onnx"


@dataclass(frozen=True, eq=False)
class Population:
    """Models as columns: row i of every column is one architecture. Strings are object arrays of `str`
    (never None: "" where there is nothing), counts int64 with -1 for unknown, figures float64 with NaN for
    unknown. Rows are in the order the models were created (then by hash)."""

    hash: np.ndarray  # architecture hash
    name: np.ndarray  # the name it was given last (in any file)
    source: np.ndarray  # the file that gave that name ("" when none was recorded)
    parent: np.ndarray  # the parent's architecture hash, "" for none
    origin: np.ndarray  # sampled | ablation | variation | handcrafted | user
    changes: np.ndarray  # the changes against the parent, in words
    params: np.ndarray  # int64, -1 unknown
    flops: np.ndarray  # int64, -1 unknown
    status: np.ndarray  # the standing run's status (queued, running, done, stopped, failed, cancelled) or "untrained"
    run_id: np.ndarray  # int64, the standing run, -1 untrained
    val_acc: np.ndarray  # float64, validation accuracy: the run's final one, else its last epoch's; NaN without
    val_loss: np.ndarray  # float64, the same for validation loss
    epoch: np.ndarray  # int64, epochs finished by the standing run (0 untrained)
    epochs: np.ndarray  # int64, epochs the standing run plans (0 untrained or unknown)
    latency_ms: np.ndarray  # float64, ONNX p50 latency at batch 1 of the newest measurement, NaN when not measured
    size_bytes: np.ndarray  # float64, ONNX file size of the newest measurement, NaN when not measured
    created: np.ndarray  # float64, when the architecture was first stored (seconds since the epoch)

    def __len__(self) -> int:
        return len(self.hash)

    @cached_property
    def index(self) -> dict[str, int]:
        """Row of each hash."""
        return {h: i for i, h in enumerate(self.hash.tolist())}

    def row(self, hash: str) -> dict[str, Any]:
        """One model's values by column name, as plain Python values; KeyError for a hash not in the population."""
        i = self.index[hash]
        return {f.name: getattr(self, f.name)[i].item() if isinstance(getattr(self, f.name)[i], np.generic)
                else getattr(self, f.name)[i] for f in fields(self)}

    def take(self, rows: np.ndarray | Sequence[int]) -> Population:
        """The population of the given rows (indices or a boolean mask), in that order."""
        return Population(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name (e.g. for a ColumnDataSource)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def trained(self) -> np.ndarray:
        """Rows whose standing run has a validation accuracy (boolean mask)."""
        return ~np.isnan(self.val_acc)


# The run that stands for a model: the newest finished one (done or stopped), else the newest queued or running,
# else the newest (failed or cancelled). A retrained model keeps its finished result while it trains again.
# Looked up per model on the index of runs by model hash.
_RUN_RANK = "CASE WHEN status IN ('done', 'stopped') THEN 2 WHEN status IN ('queued', 'running') THEN 1 ELSE 0 END"
_STANDING_RUN = ("SELECT id FROM runs WHERE model_hash = {hash}{data} "
                 f"ORDER BY {_RUN_RANK} DESC, id DESC LIMIT 1")
_LAST_EPOCH = "(SELECT e.{column} FROM epochs e WHERE e.run_id = r.id ORDER BY e.epoch DESC LIMIT 1)"


def read_population(store: Store, *, data_key: str | None = None,
                    hashes: Collection[str] | None = None) -> Population:
    """Every model of the store (or those of `hashes` that it holds), with its standing run and ONNX figures.

    `data_key` (a data set's key, as runs store it) counts only runs on that data; without it every run counts.
    A model's standing run is its newest finished run, else its newest queued or running one, else its newest.
    Works on a read-only store; reads in one transaction, so the columns agree with each other. Two queries:
    one row per model with its name, run and epochs, and the newest ONNX report of each measured model.
    """
    with store.snapshot():
        return _read(store, data_key, hashes)


def _read(store: Store, data_key: str | None, hashes: Collection[str] | None) -> Population:
    conn = store.conn
    wanted = json.dumps(sorted(set(hashes))) if hashes is not None else None
    args: list[Any] = []
    standing = _STANDING_RUN.format(hash="m.hash", data=" AND data_key = ?" if data_key is not None else "")
    if data_key is not None:
        args.append(data_key)
    where = ""
    if wanted is not None:
        where = " WHERE m.hash IN (SELECT value FROM json_each(?))"
        args.append(wanted)
    rows = conn.execute(
        "SELECT m.hash, "
        # the newest name and its file in one lookup (names and paths hold no control characters)
        "(SELECT n.name || char(31) || n.source FROM model_names n WHERE n.hash = m.hash "
        " ORDER BY n.updated DESC, n.rowid DESC LIMIT 1), "
        "m.parent, m.origin, m.changes, COALESCE(m.params, r.params, -1), COALESCE(m.flops, r.flops, -1), "
        "COALESCE(r.status, ?), COALESCE(r.id, -1), "
        f"COALESCE(r.val_acc, {_LAST_EPOCH.format(column='val_acc')}), "
        f"COALESCE(r.val_loss, {_LAST_EPOCH.format(column='val_loss')}), "
        "(SELECT COUNT(*) FROM epochs e WHERE e.run_id = r.id), "
        "COALESCE(json_extract(r.settings, '$.epochs'), 0), m.created "
        f"FROM models m LEFT JOIN runs r ON r.id = ({standing}){where} ORDER BY m.created, m.hash",
        [UNTRAINED, *args]).fetchall()
    n = len(rows)
    cols = list(zip(*rows, strict=True)) if n else [()] * 14
    index = {h: i for i, h in enumerate(cols[0])}
    named = [(v or "").split("\x1f", 1) for v in cols[1]]
    name = _strings([pair[0] for pair in named])
    source = _strings([pair[1] if len(pair) > 1 else "" for pair in named])

    latency_ms = np.full(n, np.nan)
    size_bytes = np.full(n, np.nan)
    onnx_filter = " AND model_hash IN (SELECT value FROM json_each(?))" if wanted is not None else ""
    for model_hash, size, latency in conn.execute(
            "SELECT a.model_hash, json_extract(a.meta, '$.size_bytes'), "
            "(SELECT json_extract(l.value, '$.p50_ms') FROM json_each(a.meta, '$.latency') l "
            " WHERE json_extract(l.value, '$.batch') = 1) "
            "FROM artifacts a WHERE a.id IN (SELECT MAX(id) FROM artifacts WHERE kind = ? AND model_hash IS NOT NULL"
            f"{onnx_filter} GROUP BY model_hash)", (_ONNX_KIND, *([wanted] if wanted is not None else []))):
        i = index.get(model_hash)
        if i is None:
            continue
        if isinstance(size, (int, float)):
            size_bytes[i] = size
        if isinstance(latency, (int, float)):
            latency_ms[i] = latency

    return Population(
        hash=_strings(cols[0]), name=name, source=source, parent=_strings(cols[2]), origin=_strings(cols[3]),
        changes=_strings(cols[4]), params=_ints(cols[5], n), flops=_ints(cols[6], n), status=_strings(cols[7]),
        run_id=_ints(cols[8], n), val_acc=_floats(cols[9], n), val_loss=_floats(cols[10], n),
        epoch=_ints(cols[11], n), epochs=_ints(cols[12], n), latency_ms=latency_ms, size_bytes=size_bytes,
        created=_floats(cols[13], n))


def per_class_accuracy(store: Store, run_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per-class validation accuracy of each run, one row per run id in the order given, one column per class
    (as many as the widest stored matrix). A row is NaN where the run has no confusion matrix (untrained, failed,
    an id of -1), and NaN in a class the validation set has no example of.

    Reads the stored per-class accuracies, computed from the confusion matrix (diagonal over row sums) where
    they are missing.
    """
    ids = np.asarray(run_ids, dtype=np.int64).reshape(-1)
    wanted = sorted({int(i) for i in ids.tolist() if i >= 0})
    with store.snapshot():
        rows = store.conn.execute("SELECT run_id, matrix, per_class FROM confusion "
                                  "WHERE run_id IN (SELECT value FROM json_each(?))", (json.dumps(wanted),)).fetchall()
    found = _per_class_rows(rows)
    width = max((len(v) for v in found.values()), default=0)
    out = np.full((len(ids), width), np.nan)
    for i, rid in enumerate(ids.tolist()):
        values = found.get(rid)
        if values is not None:
            out[i, :len(values)] = values
    return out


def _per_class_rows(rows: Sequence[tuple[int, str, str]]) -> dict[int, np.ndarray]:
    """Per-class accuracy by run id from confusion rows (run id, matrix JSON, per-class JSON). The rows are parsed
    as one JSON document and computed as arrays, since ten thousand of them one at a time take seconds."""
    stored = _parse_all([r[2] for r in rows])
    out: dict[int, np.ndarray] = {}
    from_matrix: list[int] = []
    for i, (rid, _, _) in enumerate(rows):
        values = stored[i] if stored is not None else None
        if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
            out[int(rid)] = np.array(values, dtype=np.float64)
        elif stored is not None:
            from_matrix.append(i)
        else:  # the rows do not parse together: one at a time, the damaged ones left out
            found = _per_class(rows[i][1], rows[i][2])
            if found is not None:
                out[int(rid)] = found
    matrices = _parse_all([rows[i][1] for i in from_matrix])
    by_size: dict[int, list[int]] = {}
    for j in range(len(from_matrix)):
        m = matrices[j] if matrices is not None else None
        by_size.setdefault(len(m) if isinstance(m, list) and m else 0, []).append(j)
    for size, group in by_size.items():
        try:
            stack = np.array([matrices[j] for j in group], dtype=np.float64) if size and matrices else None
        except (ValueError, TypeError):
            stack = None  # ragged or not numbers
        if stack is None or stack.shape[1:] != (size, size):
            for j in group:
                i = from_matrix[j]
                found = _per_class(rows[i][1], rows[i][2])
                if found is not None:
                    out[int(rows[i][0])] = found
            continue
        support = stack.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = np.where(support > 0, np.einsum("nii->ni", stack) / support, np.nan)
        out.update(zip((int(rows[from_matrix[j]][0]) for j in group), accuracy, strict=True))
    return out


def _parse_all(texts: Sequence[str]) -> list[Any] | None:
    """The JSON values of `texts` parsed as one array; None unless it gives exactly one value per text."""
    try:
        values = json.loads("[" + ",".join(texts) + "]")
    except (ValueError, TypeError):
        return None
    return values if isinstance(values, list) and len(values) == len(texts) else None


def _per_class(matrix: str, per_class: str) -> np.ndarray | None:
    """One row's per-class accuracy: the stored figures, else from its matrix; None when neither reads (a damaged
    row reads as no matrix, not as a failure of the whole population)."""
    try:
        stored = json.loads(per_class)
        if isinstance(stored, list) and stored:
            return np.array([np.nan if v is None else v for v in stored], dtype=np.float64)
    except (ValueError, TypeError):
        pass
    try:
        m = np.array(json.loads(matrix), dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        return None
    support = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(m) / support, np.nan)


@dataclass(frozen=True)
class OnnxFigures:
    """The newest ONNX measurement of a model (`remapdsl.onnx.bench.OnnxReport`, as the store keeps it)."""

    trained: bool  # measured with trained weights (else fresh ones)
    run_id: int | None
    size_bytes: int
    latency_ms: dict[int, tuple[float, float]]  # batch → (p50, p95), milliseconds per batch
    parity_ok: bool
    max_abs_diff: float
    params_ok: bool
    provider: str

    def p50(self, batch: int) -> float | None:
        figures = self.latency_ms.get(batch)
        return figures[0] if figures else None

    def p95(self, batch: int) -> float | None:
        figures = self.latency_ms.get(batch)
        return figures[1] if figures else None


@dataclass(frozen=True)
class ModelDetail:
    """Everything the inspector shows of one model."""

    model: ModelRow  # hash, DSL text, params, flops, parent hash, origin, changes
    names: tuple[str, ...]  # every name it was given, newest first
    parent: ModelRow | None  # the parent's row, when stored
    children: tuple[str, ...]  # hashes of the models registered with this one as parent
    run: RunRow | None  # the standing run (as in `read_population`)
    epochs: tuple[EpochRow, ...]  # its training curve
    confusion: ConfusionRow | None  # its confusion matrix (rows: true class; columns: predicted)
    per_class: np.ndarray | None  # its per-class validation accuracy
    onnx: OnnxFigures | None  # the newest ONNX measurement of the architecture
    onnx_error: str | None  # why the newest measurement attempt failed, when it did

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.model.hash[:8]


def model_detail(store: Store, hash: str, *, data_key: str | None = None) -> ModelDetail:
    """One model for the inspector; KeyError naming the hash when the store has no such model."""
    with store.snapshot():
        row = store.model(hash)
        if row is None:
            raise KeyError(f"no model {hash!r} in the store at {store.path}")
        names = tuple(store.model_names(hash))
        parent = store.model(row.parent) if row.parent else None
        children = tuple(r[0] for r in store.conn.execute(
            "SELECT hash FROM models WHERE parent = ? ORDER BY created, hash", (hash,)))
        run_id = _standing_run(store, hash, data_key)
        run = store.run(run_id) if run_id is not None else None
        epochs = tuple(store.epochs(run_id)) if run_id is not None else ()
        confusion = _confusion(store, run_id)
        onnx, onnx_error = _onnx(store, hash)
    per_class = _per_class_of(confusion)
    return ModelDetail(row, names, parent, children, run, epochs, confusion, per_class, onnx, onnx_error)


def _standing_run(store: Store, hash: str, data_key: str | None) -> int | None:
    args = [hash] if data_key is None else [hash, data_key]
    sql = _STANDING_RUN.format(hash="?", data=" AND data_key = ?" if data_key is not None else "")
    r = store.conn.execute(sql, args).fetchone()
    return int(r[0]) if r else None


def _confusion(store: Store, run_id: int | None) -> ConfusionRow | None:
    if run_id is None:
        return None
    try:
        return store.confusion(run_id)
    except (ValueError, TypeError):
        return None  # a damaged matrix: shown as none rather than failing the inspector


def _per_class_of(confusion: ConfusionRow | None) -> np.ndarray | None:
    if confusion is None:
        return None
    if confusion.per_class.size:
        return np.asarray(confusion.per_class, dtype=np.float64)
    return _per_class(json.dumps(confusion.matrix.tolist()), "[]")


def _onnx(store: Store, hash: str) -> tuple[OnnxFigures | None, str | None]:
    """The newest report of the architecture, and the error of the newest attempt when that one failed."""
    rows = store.conn.execute("SELECT kind, run_id, meta FROM artifacts WHERE model_hash = ? AND kind IN (?, ?) "
                              "ORDER BY id DESC", (hash, _ONNX_KIND, "onnx-error")).fetchall()
    error: str | None = None
    figures: OnnxFigures | None = None
    for i, (kind, run_id, meta) in enumerate(rows):
        try:
            d = json.loads(meta)
        except ValueError:
            continue
        if kind != _ONNX_KIND:
            if i == 0:
                error = str(d.get("error", "")) if isinstance(d, dict) else ""
            continue
        figures = _figures(d, run_id)
        if figures is not None:
            break
    return figures, error


def _figures(d: Any, run_id: int | None) -> OnnxFigures | None:
    try:
        latency = {int(lat["batch"]): (float(lat["p50_ms"]), float(lat["p95_ms"])) for lat in d["latency"]}
        # whether parity and the parameter count held, as judged when measured (the report says so)
        return OnnxFigures(bool(d["trained"]), run_id, int(d["size_bytes"]), latency, d.get("parity_ok") is True,
                           float(d["max_abs_diff"]), int(d["param_count"]) == int(d["expected_params"]),
                           str(d.get("session", {}).get("provider", "")))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a report of another shape: not shown


def _ints(values: Sequence[Any], n: int) -> np.ndarray:
    """int64 column; what is not a whole number (a damaged setting) reads as -1."""
    return np.fromiter((v if isinstance(v, int) else -1 for v in values), np.int64, n)


def _floats(values: Sequence[Any], n: int) -> np.ndarray:
    """float64 column; None (and anything not a number) reads as NaN."""
    return np.fromiter((v if isinstance(v, (int, float)) else np.nan for v in values), np.float64, n)


def _strings(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = ["" if v is None else str(v) for v in values]
    return out
