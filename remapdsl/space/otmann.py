"""OTMANN: the structural distance between two networks (Kandasamy et al., NeurIPS 2018).

Configured exactly as REMAP computed it, so distances compare with the paper's. REMAP's networks are chains;
a model with residual blocks is a directed acyclic graph, and OTMANN's definitions hold on any DAG (below).

A network is a chain of nodes ``ip → layers → softmax → op`` (flatten is not a node). Each node has a
label and a mass, both declared by its layer type in the catalog (`OtmannSpec`):

* channels: ``ip`` emits 1 channel; conv and dense emit their filters/units; everything else passes the
  incoming channels through;
* mass of a layer with incoming channels ``c`` and outgoing ``c'``: ``c·c'`` ("product": conv, dense),
  ``c`` ("channels": pooling), ``c²`` ("square": dropout, activations);
* ``ip``, ``softmax`` and ``op`` each weigh ``max(0.1 · Σ layer masses, 100)``.

For two networks with masses ``m¹`` (n₁ nodes) and ``m²`` (n₂ nodes) the cost of matching node ``i`` to
node ``j`` is

    C[i, j] = mislabel(ℓᵢ, ℓⱼ) + ½·( (1/12)·Σ_k |δ¹ᵢₖ − δ²ⱼₖ| + (1/12)·Σ_k |ω¹ᵢₖ − ω²ⱼₖ| )

where ``mislabel`` is 0 for equal labels, the catalog's `OTMANN_MISMATCH` cost for matchable pairs and
7.65432e5 otherwise (then the structural term is dropped), and ``δ``/``ω`` are the 12 path lengths of a
node from ``ip`` / to ``op``: shortest, longest and random-walk, counted over all nodes and over the
conv, pool and fc groups. A dummy node on each side absorbs unmatched mass at cost 1 (the
non-assignment penalty; dummy–dummy costs 0) and carries the other network's total mass, so both sides
weigh ``T = M₁ + M₂``. With ``Z`` the optimal plan of the transport problem on the normalised masses
(solved by POT's network simplex, `ot.emd`):

    lp  = T · Σ Z ⊙ C        (the raw transport cost)
    emd = lp / T             (normalised)

Residual blocks. A block adds a node ``add`` (label `ADD`, matched only by itself, mass its channels as
pooling's) after its body's last node, with two parents: the body's last node and the node before the block,
through a projection node when the block has one (``shortcut=conv`` a conv1 node, ``shortcut=dense`` a dense
node, masses as the catalog's conv and dense). Path lengths are then taken over all paths of the DAG, as
Kandasamy et al. define them: from ``ip``, a node's shortest (longest) length is its own group count plus the
least (greatest) of its parents', and its random-walk length its own count plus the mean of its parents' (a
walk back to ``ip`` picks a parent uniformly); to ``op`` the same over children. On a chain the three coincide
and equal the chain's, so a sequential model's profile, and every distance between sequential models, is what
it was.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from remapdsl.language.analysis import ModelInfo
from remapdsl.language.blocks import shortcut_kind
from remapdsl.language.catalog import LAYER_TYPES, OTMANN_MISMATCH, LayerType, Params
from remapdsl.language.model import ModelSpec

INPUT, OUTPUT, DECISION = "ip", "op", "softmax"
ADD = "add"
UNMATCHABLE_COST = 7.65432e5
NON_ASSIGNMENT_PENALTY = 1.0
MISLABEL_COEFF = 1.0
STRUCT_COEFF = 1.0
NON_PROCESSING_FRACTION = 0.1
MIN_NON_PROCESSING_MASS = 100.0
PATH_GROUPS = ("all", "conv", "pool", "fc")
PATH_TYPES = ("shortest", "longest", "rw")
PATH_COLUMNS = tuple(f"{g}-{t}" for g in PATH_GROUPS for t in PATH_TYPES)
_MAX_ITER = 100_000


class OtmannError(ValueError):
    """A model cannot be profiled; the message names the model and the layer."""


@dataclass(frozen=True, eq=False)
class OtmannProfile:
    """What OTMANN sees of a network: node labels, masses and path lengths (rows follow the chain)."""

    labels: tuple[str, ...]
    masses: np.ndarray  # (n,)
    from_input: np.ndarray  # (n, 12), columns PATH_COLUMNS
    to_output: np.ndarray  # (n, 12)

    @property
    def total_mass(self) -> float:
        return float(self.masses.sum())

    def signature(self) -> tuple[tuple[str, ...], tuple[float, ...], bytes]:
        """Labels, masses and path lengths; two profiles with the same signature are at distance 0."""
        return (self.labels, tuple(float(m) for m in self.masses),
                self.from_input.tobytes() + self.to_output.tobytes())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OtmannProfile) and self.signature() == other.signature()

    def __hash__(self) -> int:
        return hash(self.signature())


@dataclass(frozen=True)
class OtmannDistance:
    lp: float
    emd: float


# --- profiles ------------------------------------------------------------------------------------

_MASS_RULES: dict[str, Callable[[int, int], float]] = {
    "product": lambda c_in, c_out: float(c_in * c_out),
    "channels": lambda c_in, c_out: float(c_in),
    "square": lambda c_in, c_out: float(c_in * c_in),
}


def profile(model: ModelSpec | ModelInfo) -> OtmannProfile:
    """The OTMANN profile of a model (a parsed spec or an analysed one); raises OtmannError."""
    spec = model.model if isinstance(model, ModelInfo) else model
    typed: list[tuple[LayerType | None, Params | None]]
    if isinstance(model, ModelInfo):
        typed = [(li.type, li.params) for li in model.layers]
    else:
        typed = [(LAYER_TYPES.get(layer.kind), None) for layer in spec.layers]
    if spec.blocks:
        return _dag_profile(spec, typed)
    labels = [INPUT]
    masses = [0.0]
    channels = 1
    for index, ((ltype, params), layer) in enumerate(zip(typed, spec.layers, strict=True), start=1):
        where = f"model '{spec.name}', layer {index} ({layer.kind})"
        if ltype is None:
            raise OtmannError(f"{where}: unknown layer type '{layer.kind}'")
        resolved = params if params is not None else ltype.resolve(layer.written())
        label, mass, channels = _node(ltype, resolved, channels, where)
        if label is not None:
            labels.append(label)
            masses.append(mass)
    processing = sum(masses)
    frame = max(NON_PROCESSING_FRACTION * processing, MIN_NON_PROCESSING_MASS)
    masses[0] = frame
    labels += [DECISION, OUTPUT]
    masses += [frame, frame]  # one decision layer takes the whole decision mass
    from_input, to_output = path_lengths(labels)
    return OtmannProfile(tuple(labels), np.asarray(masses, dtype=np.float64), from_input, to_output)


def _dag_profile(spec: ModelSpec, typed: list[tuple[LayerType | None, Params | None]]) -> OtmannProfile:
    """The profile of a model with blocks: its nodes in the order of the text (a topological order, each
    block's projection and addition after its body) and the parents of each."""
    labels = [INPUT]
    masses = [0.0]
    parents: list[tuple[int, ...]] = [()]
    last, channels = 0, 1
    entries: dict[int, tuple[int, int]] = {}  # block → the node before it and its channels

    def add(label: str, mass: float, *from_nodes: int) -> int:
        labels.append(label)
        masses.append(mass)
        parents.append(tuple(dict.fromkeys(from_nodes)))
        return len(labels) - 1

    def close_blocks(index: int) -> None:
        nonlocal last
        for b in range(len(spec.blocks) - 1, -1, -1):  # innermost first
            block = spec.blocks[b]
            if block.stop != index or b not in entries:
                continue
            entry, c_in = entries.pop(b)
            skip = entry
            kind = shortcut_kind(block.written())
            if kind != "identity":
                ltype = LAYER_TYPES["conv2d" if kind == "conv" else "dense"]
                params = ltype.resolve({"kernel": 1, "filters": channels} if kind == "conv" else {"units": channels})
                label = ltype.otmann.label(params) if ltype.otmann.label is not None else kind
                skip = add(label, _MASS_RULES["product"](c_in, channels), entry)
            last = add(ADD, _MASS_RULES["channels"](channels, channels), last, skip)

    for index, ((ltype, params), layer) in enumerate(zip(typed, spec.layers, strict=True)):
        close_blocks(index)
        for b, block in enumerate(spec.blocks):
            if block.start == index:
                entries[b] = (last, channels)
        where = f"model '{spec.name}', layer {index + 1} ({layer.kind})"
        if ltype is None:
            raise OtmannError(f"{where}: unknown layer type '{layer.kind}'")
        resolved = params if params is not None else ltype.resolve(layer.written())
        label, mass, channels = _node(ltype, resolved, channels, where)
        if label is not None:
            last = add(label, mass, last)
    close_blocks(len(spec.layers))
    frame = max(NON_PROCESSING_FRACTION * sum(masses), MIN_NON_PROCESSING_MASS)
    masses[0] = frame
    decision = add(DECISION, frame, last)
    add(OUTPUT, frame, decision)
    from_input, to_output = dag_path_lengths(labels, parents)
    return OtmannProfile(tuple(labels), np.asarray(masses, dtype=np.float64), from_input, to_output)


def dag_path_lengths(labels: Sequence[str], parents: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Path lengths of every node of a DAG from ``ip`` (node 0) and to ``op`` (the last node), columns
    `PATH_COLUMNS`; nodes come in a topological order, `parents[i]` the nodes with an edge into i.

    A node counts 1 for a group it belongs to, on the paths it starts (towards ``op``) or ends (from ``ip``),
    as in `path_lengths`; ``ip`` counts nothing from itself and ``op`` nothing to itself.
    """
    n = len(labels)
    groups = [path_group(lab) for lab in labels]
    children: list[list[int]] = [[] for _ in range(n)]
    for node, ps in enumerate(parents):
        for p in ps:
            children[p].append(node)
    from_rows: list[list[float]] = [[] for _ in range(n)]
    to_rows: list[list[float]] = [[] for _ in range(n)]
    # plain floats: numpy's per-call overhead on rows of three would cost more than the arithmetic
    for group in PATH_GROUPS:
        member = [1.0 if group == "all" or g == group else 0.0 for g in groups]
        ahead: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * n
        for node in range(1, n):
            rows = [ahead[p] for p in parents[node]]
            ahead[node] = _step(member[node], rows)
        behind: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * n
        for node in range(n - 2, -1, -1):
            behind[node] = _step(member[node], [behind[c] for c in children[node]])
        for node in range(n):
            from_rows[node].extend(ahead[node])
            to_rows[node].extend(behind[node])
    return np.array(from_rows, dtype=np.float64), np.array(to_rows, dtype=np.float64)


def _step(own: float, rows: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """A node's (shortest, longest, random-walk) lengths from its neighbours' on the side of the walk."""
    return (own + min(r[0] for r in rows), own + max(r[1] for r in rows),
            own + sum(r[2] for r in rows) / len(rows))


def _node(ltype: LayerType, params: Params, c_in: int, where: str) -> tuple[str | None, float, int]:
    spec = ltype.otmann
    try:
        c_out = int(ltype.out_channels(c_in, params))
        if spec.label is None:
            return None, 0.0, c_out
        label = spec.label(params)
    except (KeyError, TypeError, ValueError) as e:
        raise OtmannError(f"{where}: parameters cannot be read ({e})") from e
    rule = _MASS_RULES.get(spec.mass)
    if rule is None:
        raise OtmannError(f"{where}: unknown OTMANN mass kind '{spec.mass}' (expected {', '.join(_MASS_RULES)})")
    return label, rule(c_in, c_out), c_out


def path_group(label: str) -> str | None:
    """The path-length group of a label, by NASBOT's CNN rule.

    REMAP's pool labels (pool2/3/5) do not end in "pool" and its dense label is not "fc", so with
    REMAP's labels only the conv group has members; the pool and fc columns stay 0, as in the paper.
    """
    if label.startswith("conv") and label != "conv":
        return "conv"
    if label.endswith("pool") and label != "pool":
        return "pool"
    if label == "fc":
        return "fc"
    return None


def path_lengths(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Path lengths of every node from ``ip`` and to ``op`` in the chain, columns `PATH_COLUMNS`.

    An edge counts 1 for a group when the node it leaves (towards ``op`` forwards, towards ``ip``
    backwards) belongs to the group. A chain has one path between two nodes, so its shortest,
    longest and random-walk lengths coincide.
    """
    n = len(labels)
    groups = [path_group(lab) for lab in labels]
    from_input = np.zeros((n, len(PATH_COLUMNS)))
    to_output = np.zeros((n, len(PATH_COLUMNS)))
    for g_index, group in enumerate(PATH_GROUPS):
        member = np.array([group == "all" or g == group for g in groups], dtype=np.float64)
        back = np.concatenate(([0.0], np.cumsum(member[1:])))  # edges node k → k-1, k in 1..i
        forward = np.concatenate((np.cumsum(member[:-1][::-1])[::-1], [0.0]))  # edges k → k+1, k in i..n-2
        columns = slice(g_index * len(PATH_TYPES), (g_index + 1) * len(PATH_TYPES))
        from_input[:, columns] = back[:, None]
        to_output[:, columns] = forward[:, None]
    return from_input, to_output


# --- one pair ------------------------------------------------------------------------------------


def mismatch_cost(a: str, b: str) -> float:
    """Label-mismatch cost: 0 if equal, the catalog's cost if matchable, else infinity."""
    if a == b:
        return 0.0
    cost = OTMANN_MISMATCH.get(frozenset((a, b)))
    return np.inf if cost is None else cost * NON_ASSIGNMENT_PENALTY


def structural_cost(p: OtmannProfile, q: OtmannProfile) -> np.ndarray:
    """(n_p, n_q): path-length differences averaged over the 12 columns, both directions averaged."""
    back = np.abs(p.from_input[:, None, :] - q.from_input[None, :, :]).mean(axis=2)
    forward = np.abs(p.to_output[:, None, :] - q.to_output[None, :, :]).mean(axis=2)
    return (back + forward) / 2


def cost_matrix(p: OtmannProfile, q: OtmannProfile) -> np.ndarray:
    """The (n_p + 1, n_q + 1) transport cost matrix, the last row and column being the dummies."""
    label = np.array([[mismatch_cost(a, b) for b in q.labels] for a in p.labels])
    inner = MISLABEL_COEFF * label + STRUCT_COEFF * structural_cost(p, q)
    inner[~np.isfinite(inner)] = UNMATCHABLE_COST
    return _with_dummies(inner)


def distance(p: OtmannProfile, q: OtmannProfile) -> OtmannDistance:
    """OTMANN distance between two profiles: raw transport cost ('lp') and normalised ('emd')."""
    return _transport(p.masses, q.masses, cost_matrix(p, q))


def _with_dummies(inner: np.ndarray) -> np.ndarray:
    n1, n2 = inner.shape
    out = np.empty((n1 + 1, n2 + 1))
    out[:n1, :n2] = inner
    out[n1, :n2] = NON_ASSIGNMENT_PENALTY
    out[:n1, n2] = NON_ASSIGNMENT_PENALTY
    out[n1, n2] = 0.0
    return out


def _transport(m1: np.ndarray, m2: np.ndarray, cost: np.ndarray) -> OtmannDistance:
    t1, t2 = float(m1.sum()), float(m2.sum())
    total = t1 + t2
    n1, n2 = len(m1), len(m2)
    supply = np.empty(n1 + 1)
    np.divide(m1, total, out=supply[:n1])
    supply[n1] = t2 / total
    demand = np.empty(n2 + 1)
    np.divide(m2, total, out=demand[:n2])
    demand[n2] = t1 / total
    normalised = _solve(supply, demand, cost)
    return OtmannDistance(lp=normalised * total, emd=normalised)


# POT probes for torch, jax, cupy and tensorflow when first imported (seconds with torch installed);
# OTMANN solves numpy problems only, so the probes are switched off for that one import.
_POT_BACKEND_SWITCHES = ("POT_BACKEND_DISABLE_PYTORCH", "POT_BACKEND_DISABLE_JAX", "POT_BACKEND_DISABLE_CUPY",
                         "POT_BACKEND_DISABLE_TENSORFLOW")


def _import_pot() -> None:
    if "ot" in sys.modules:
        return
    saved = {key: os.environ.get(key) for key in _POT_BACKEND_SWITCHES}
    os.environ.update({key: "1" for key in _POT_BACKEND_SWITCHES})
    try:
        import ot  # noqa: F401
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _load_solver() -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """POT's network simplex; the compiled core when present, since ot.emd's checks cost ~8x the solve."""
    _import_pot()
    try:
        from ot.lp.emd_wrap import check_result, emd_c
    except ImportError:  # a POT without the compiled module layout
        import ot

        def solve_public(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
            return float(np.sum(ot.emd(a, b, m, numItermax=_MAX_ITER) * m))

        return solve_public

    def solve_core(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
        result = emd_c(a, b, m, _MAX_ITER, 1)
        if result[-1] != 1:
            # the marginals may differ in the last bit; retry with them made equal, as ot.emd does
            result = emd_c(a, b * (a.sum() / b.sum()), m, _MAX_ITER, 1)
        if result[-1] != 1:
            message = check_result(result[-1])
            if message:
                warnings.warn(f"OTMANN transport: {message}", RuntimeWarning, stacklevel=3)
        return float(result[1])

    return solve_core


_solver: Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None = None


def _solve(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    """Optimal transport cost of the normalised problem; POT is loaded on first use."""
    global _solver
    if _solver is None:
        _solver = _load_solver()
    return _solver(a, b, m)


def warm_up() -> bool:
    """Load POT and the solver now; False if POT is not installed.

    The first import costs about a second: a long-lived process (the language server) pays it on a
    thread of its own at start, not in the first request that needs a distance.
    """
    global _solver
    try:
        if _solver is None:
            _solver = _load_solver()
    except ImportError:
        return False
    return True


# --- batches -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistanceMatrices:
    """Pairwise OTMANN distances of a list of profiles, symmetric with zero diagonals."""

    lp: np.ndarray
    emd: np.ndarray


class _Batch:
    """Profiles prepared once for many pairs.

    Labels become indices into one mismatch table; path-length columns that are equal in every
    profile are merged (their weights summed) and all-zero ones dropped, which leaves each cost
    unchanged. The nodes of all profiles are stacked, so that the costs of one profile against a run
    of others come from a single numpy expression.
    """

    def __init__(self, profiles: Sequence[OtmannProfile]) -> None:
        vocabulary = sorted({lab for p in profiles for lab in p.labels})
        index = {lab: i for i, lab in enumerate(vocabulary)}
        # infinite for unmatchable pairs: capping a sum at UNMATCHABLE_COST then gives exactly that
        # cost, as replacing infinities does, since every finite cost lies far below it
        table = MISLABEL_COEFF * np.array([[mismatch_cost(a, b) for b in vocabulary] for a in vocabulary])
        self.mislabel = table.ravel()
        self.sizes = [len(p.labels) for p in profiles]
        self.offsets = np.concatenate(([0], np.cumsum(self.sizes))).astype(np.intp)
        self.columns = np.array([index[lab] for p in profiles for lab in p.labels], dtype=np.intp)
        self.rows = self.columns * len(vocabulary)
        self.masses = [np.append(p.masses, 0.0) for p in profiles]  # the last slot is the dummy's
        self.totals = [p.total_mass for p in profiles]
        width = 2 * len(PATH_COLUMNS)
        if profiles:
            stacked = np.vstack([np.hstack((p.from_input, p.to_output)) for p in profiles])
        else:
            stacked = np.zeros((0, width))
        merged: dict[bytes, int] = {}
        kept: list[np.ndarray] = []
        weights: list[float] = []
        for column in np.ascontiguousarray(stacked.T):
            if not column.any():
                continue
            slot = merged.setdefault(column.tobytes(), len(kept))
            if slot == len(kept):
                kept.append(column)
                weights.append(0.0)
            weights[slot] += STRUCT_COEFF / width
        self.features = np.array(kept).reshape(len(kept), len(stacked))  # (columns, nodes)
        self.weights = np.array(weights)

    def __len__(self) -> int:
        return len(self.masses)

    def row(self, i: int, first: int, stop: int) -> list[OtmannDistance]:
        """Distances from profile i to profiles first..stop-1, pair by pair: the plain form of `row_values`, which
        the batches use, kept as its reference."""
        if first >= stop:
            return []
        lo, hi = self.offsets[first], self.offsets[stop]
        mine = slice(self.offsets[i], self.offsets[i + 1])
        # column by column: no BLAS call (whose threads would fight the worker processes) and no
        # (n1, nodes, columns) temporary
        block = self.mislabel[self.rows[mine, None] + self.columns[None, lo:hi]]
        for column, weight in zip(self.features, self.weights, strict=True):
            block += weight * np.abs(column[mine, None] - column[None, lo:hi])
        np.minimum(block, UNMATCHABLE_COST, out=block)
        n1 = self.sizes[i]
        ti = self.totals[i]
        out = []
        for j in range(first, stop):
            n2, tj = self.sizes[j], self.totals[j]
            cost = np.empty((n1 + 1, n2 + 1))
            start = self.offsets[j] - lo
            cost[:n1, :n2] = block[:, start:start + n2]
            cost[n1, :] = NON_ASSIGNMENT_PENALTY
            cost[:n1, n2] = NON_ASSIGNMENT_PENALTY
            cost[n1, n2] = 0.0
            total = ti + tj
            supply = self.masses[i] / total
            supply[n1] = tj / total
            demand = self.masses[j] / total
            demand[n2] = ti / total
            normalised = _solve(supply, demand, cost)
            out.append(OtmannDistance(lp=normalised * total, emd=normalised))
        return out
    def row_values(self, i: int, first: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """What `row` gives, as arrays (lp, emd), with the per-pair work moved out of the loop: the costs of all
        pairs in one padded block (a dummy column after each profile's nodes, a dummy row below), the supplies
        and demands of all pairs in two array expressions. Equal to `row` to the last bit."""
        count = stop - first
        if count <= 0:
            return np.zeros(0), np.zeros(0)
        lo, hi = self.offsets[first], self.offsets[stop]
        mine = slice(self.offsets[i], self.offsets[i + 1])
        block = self.mislabel[self.rows[mine, None] + self.columns[None, lo:hi]]
        for column, weight in zip(self.features, self.weights, strict=True):
            block += weight * np.abs(column[mine, None] - column[None, lo:hi])
        np.minimum(block, UNMATCHABLE_COST, out=block)
        n1, ti = self.sizes[i], self.totals[i]
        sizes = np.asarray(self.sizes[first:stop])
        ends = np.cumsum(sizes + 1)  # each profile's segment ends with its dummy column
        starts = ends - sizes - 1
        padded = np.full((n1 + 1, int(ends[-1])), NON_ASSIGNMENT_PENALTY)
        real = np.ones(int(ends[-1]), dtype=bool)
        real[ends - 1] = False
        padded[:n1, real] = block
        padded[n1, ends - 1] = 0.0
        totals = np.asarray(self.totals[first:stop])
        pair_totals = ti + totals
        supplies = np.empty((count, n1 + 1))
        supplies[:, :n1] = self.masses[i][:n1][None, :] / pair_totals[:, None]
        supplies[:, n1] = totals / pair_totals
        demands = np.concatenate(self.masses[first:stop]) / np.repeat(pair_totals, sizes + 1)
        demands[ends - 1] = ti / pair_totals
        normalised = np.empty(count)
        for k in range(count):
            s, e = starts[k], ends[k]
            normalised[k] = _solve(supplies[k], demands[s:e], np.ascontiguousarray(padded[:, s:e]))
        return normalised * pair_totals, normalised


class ProfileSet:
    """Profiles prepared once for many rows of distances among them.

    Preparing costs about as much as solving one row (stacking the nodes, merging the path-length
    columns); a process asked for one row at a time over the same models (the language server's
    hovers) prepares them once and then pays only for the transport problems.
    """

    def __init__(self, profiles: Sequence[OtmannProfile]) -> None:
        self._batch = _Batch(list(profiles))

    def __len__(self) -> int:
        return len(self._batch)

    def distances_from(self, i: int) -> DistanceMatrices:
        """Distances from profile i to every profile of the set (0 at i itself): n − 1 transport problems."""
        n = len(self._batch)
        if not 0 <= i < n:
            raise IndexError(f"profile {i} of a set of {n}")
        before, after = self._batch.row_values(i, 0, i), self._batch.row_values(i, i + 1, n)
        return DistanceMatrices(np.concatenate((before[0], [0.0], after[0])),
                                np.concatenate((before[1], [0.0], after[1])))


class RowPool:
    """Whole rows of distances (one profile against every profile of a set), each shared among `workers`
    processes by spans of columns: what landmark MDS asks, one row after another. A context manager; the worker
    processes start at the first large row and stop when it closes."""

    def __init__(self, profiles: Sequence[OtmannProfile], workers: int = 2) -> None:
        self._batch = _Batch(list(profiles))
        self.workers = max(1, workers)
        self._pool: multiprocessing.pool.Pool | None = None

    def __len__(self) -> int:
        return len(self._batch)

    def row(self, i: int) -> DistanceMatrices:
        """Distances from profile i to every profile of the set (0 at i itself)."""
        n = len(self._batch)
        if not 0 <= i < n:
            raise IndexError(f"profile {i} of a set of {n}")
        spans = [(i, lo, hi) for lo, hi in _spans(n, self.workers * 2)]
        if self.workers > 1 and n >= _PARALLEL_MIN_ROW:
            if self._pool is None:
                context = _process_context()
                self._pool = context.Pool(self.workers, initializer=_init_worker, initargs=(self._batch,))
            parts = self._pool.map(_worker_span, spans)
        else:
            parts = [_span(self._batch, *span) for span in spans]
        lp = np.concatenate([part[0] for part in parts])
        emd = np.concatenate([part[1] for part in parts])
        lp[i] = emd[i] = 0.0
        return DistanceMatrices(lp, emd)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> RowPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Below this many columns a row is solved in this process.
_PARALLEL_MIN_ROW = 2_000


def _spans(n: int, parts: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, max(1, min(parts, n)) + 1).astype(int)
    return [(int(lo), int(hi)) for lo, hi in pairwise(edges.tolist()) if hi > lo]


def _span(batch: _Batch, i: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    return batch.row_values(i, lo, hi)


def _worker_span(span: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    assert _WORKER_BATCH is not None
    return _span(_WORKER_BATCH, *span)


def distances_to(target: OtmannProfile, profiles: Sequence[OtmannProfile]) -> DistanceMatrices:
    """Distances from one profile to each of `profiles` (vectors of length n): an incremental add costs n."""
    batch = _Batch([target, *profiles])
    lp, emd = batch.row_values(0, 1, len(batch))
    return DistanceMatrices(lp, emd)


# Below this many pairs, starting processes costs more than it saves.
_PARALLEL_MIN_PAIRS = 5_000


def pair_count(n: int) -> int:
    return n * (n - 1) // 2


def distance_matrix(profiles: Sequence[OtmannProfile], workers: int = 2) -> DistanceMatrices:
    """All pairwise distances, each pair solved once; large batches are shared among `workers` processes."""
    n = len(profiles)
    lp, emd = np.zeros((n, n)), np.zeros((n, n))
    batch = _Batch(profiles)
    tasks = list(_row_chunks(n, max(1, workers) * 8))
    if workers > 1 and pair_count(n) >= _PARALLEL_MIN_PAIRS and len(tasks) > 1:
        context = _process_context()
        with context.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(batch,)) as pool:
            for rows, row_lp, row_emd in pool.imap_unordered(_worker_rows, tasks):
                _fill(lp, emd, rows, row_lp, row_emd)
    else:
        for rows in tasks:
            _fill(lp, emd, *_rows(batch, rows))
    return DistanceMatrices(lp, emd)


def pair_distances(profiles: Mapping[str, OtmannProfile], pairs: Sequence[tuple[str, str]],
                   workers: int = 2) -> list[OtmannDistance]:
    """Distances for chosen pairs of keyed profiles, in the order of `pairs`.

    Pairs that share a key are computed as one row (`distances_to`), so adding one model to n
    costs n distances; when most pairs among the keys are asked for, the whole matrix is computed
    with `distance_matrix` instead.
    """
    keys = sorted({k for pair in pairs for k in pair})
    missing = [k for k in keys if k not in profiles]
    if missing:
        raise KeyError(f"no OTMANN profile for {', '.join(missing)}")
    if not pairs:
        return []
    if len(pairs) * 2 >= pair_count(len(keys)) and len(keys) > 2:
        matrices = distance_matrix([profiles[k] for k in keys], workers)
        where = {k: i for i, k in enumerate(keys)}
        return [OtmannDistance(float(matrices.lp[where[a], where[b]]), float(matrices.emd[where[a], where[b]]))
                for a, b in pairs]
    return _by_rows(profiles, pairs)


def _by_rows(profiles: Mapping[str, OtmannProfile], pairs: Sequence[tuple[str, str]]) -> list[OtmannDistance]:
    # each pair goes to the row of whichever of its keys appears in more pairs
    counts = Counter(k for pair in pairs for k in pair)
    rows: dict[str, list[int]] = {}
    for index, (a, b) in enumerate(pairs):
        rows.setdefault(a if counts[a] >= counts[b] else b, []).append(index)
    out: list[OtmannDistance | None] = [None] * len(pairs)
    for key, indices in rows.items():
        others = [pairs[i][1] if pairs[i][0] == key else pairs[i][0] for i in indices]
        row = distances_to(profiles[key], [profiles[o] for o in others])
        for i, lp, emd in zip(indices, row.lp, row.emd, strict=True):
            out[i] = OtmannDistance(float(lp), float(emd))
    return [d for d in out if d is not None]


def _row_chunks(n: int, parts: int) -> Iterator[list[int]]:
    """Rows grouped so each group holds about the same number of pairs (row i has n-1-i pairs)."""
    per_part = max(1, pair_count(n) // parts)
    rows: list[int] = []
    count = 0
    for i in range(n - 1):
        rows.append(i)
        count += n - 1 - i
        if count >= per_part:
            yield rows
            rows, count = [], 0
    if rows:
        yield rows


def _rows(batch: _Batch, rows: list[int]) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    n = len(batch)
    all_lp, all_emd = [], []
    for i in rows:
        lp, emd = batch.row_values(i, i + 1, n)
        all_lp.append(lp)
        all_emd.append(emd)
    return rows, all_lp, all_emd


def _fill(lp: np.ndarray, emd: np.ndarray, rows: list[int], row_lp: list[np.ndarray],
          row_emd: list[np.ndarray]) -> None:
    for i, vl, ve in zip(rows, row_lp, row_emd, strict=True):
        lp[i, i + 1:] = vl
        lp[i + 1:, i] = vl
        emd[i, i + 1:] = ve
        emd[i + 1:, i] = ve


_WORKER_BATCH: _Batch | None = None


def _init_worker(batch: _Batch) -> None:
    global _WORKER_BATCH
    _WORKER_BATCH = batch


def _worker_rows(rows: list[int]) -> tuple[list[int], list[np.ndarray], list[np.ndarray]]:
    assert _WORKER_BATCH is not None
    return _rows(_WORKER_BATCH, rows)


def _process_context() -> multiprocessing.context.BaseContext:
    # fork is the cheapest start, but forking a process that runs other threads (a server) can
    # deadlock the child; such callers get a fresh interpreter instead.
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and os.name == "posix":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
