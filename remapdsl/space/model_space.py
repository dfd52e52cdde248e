"""The model space: distances between models, their nearest neighbours, and layouts that keep their places.

What the command line, the language server and the overview call. Models come in by name and are known by
a key: in the structural space their architecture hash (so names, comments and formatting do not matter,
and two names of one architecture share a key), in the predictions space the id of the run whose
validation predictions stand for the model. Distances go through `DistanceCache`: given a store they are
read from and written to its table of distances, otherwise to a store of this object's own in memory.
Either way a pair is computed once, and a new model among n known ones costs n distances.

Layouts are kept in the store's table of layouts (`remapdsl.store.layouts`), per space and measure, by
key. Laying out a set of models:

* a model with a stored position keeps it;
* a new model is placed out of sample (Gower's formula, `projection.place`) from its distances to the
  models of the set already laid out, which do not move; it joins the reference layout
  (`Layout.with_point`), so the next new model is placed among it too;
* when the laid-out models of the set are too few to span the plane (fewer than three, or all on one
  line) or fewer than the new ones, MDS of the whole set is turned onto them (Procrustes) and they keep
  their exact positions;
* only an explicit re-layout runs MDS over the current models again; it is turned onto the stored
  positions (Procrustes, `projection.align`), so the picture keeps its orientation, and it replaces the
  stored layout of that space and measure.

scipy (for MDS) is imported when a layout is computed and POT when a distance is: the language server
imports this module for its hovers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from remapdsl.language.analysis import ModelInfo
from remapdsl.language.hashing import architecture_hash
from remapdsl.language.model import ModelSpec
from remapdsl.space import otmann
from remapdsl.space.distance_cache import (
    PREDICTIONS,
    STRUCTURAL,
    ComputePairs,
    DistanceCache,
    Pair,
    PairValue,
    ordered,
    predictions_compute,
)
from remapdsl.space.landmarks import DEFAULT_LANDMARKS, LANDMARK_THRESHOLD
from remapdsl.space.neighbours import Neighbour, nearest
from remapdsl.store.db import Store
from remapdsl.store.distances import DistanceTable
from remapdsl.store.layouts import LayoutTable, Position

if TYPE_CHECKING:
    from remapdsl.space.projection import Layout

SPACES = (STRUCTURAL, PREDICTIONS)
# The measures of each space, the default first; each reads one column of the distances table.
MEASURES = {STRUCTURAL: ("emd", "lp"), PREDICTIONS: ("hamming",)}
_COLUMN = {"emd": "value", "lp": "lp", "hamming": "value"}
KEPT, PLACED, RELAID = "kept", "placed", "relaid"
# A row of the prepared set is solved for the distances missing from one model when they are at least this
# many and at least this share of the set; fewer cost less solved alone.
_PREPARED_MIN = 32
_PREPARED_SHARE = 0.25
# Keys remembered by source text; past this many (a server runs for days) they are forgotten at once.
_KEY_MEMO = 50_000


def check_measure(space: str, measure: str | None) -> str:
    """The measure asked for, or the space's default; ValueError naming what the space offers."""
    if space not in MEASURES:
        raise ValueError(f"unknown space '{space}'; expected {' or '.join(SPACES)}")
    if measure is None:
        return MEASURES[space][0]
    if measure not in MEASURES[space]:
        raise ValueError(f"the {space} space has no measure '{measure}'; expected {' or '.join(MEASURES[space])}")
    return measure


@dataclass(frozen=True)
class RunPredictions:
    """The validation predictions of the run that stands for a model in the predictions space."""

    run_id: int
    predictions: np.ndarray


@dataclass(frozen=True)
class Members:
    """Models of one space by name, each with its key, and the models left out with the reason."""

    space: str
    keys: Mapping[str, str]  # model name → key, in the models' order
    problems: Mapping[str, str] = field(default_factory=dict)

    def distinct(self) -> list[str]:
        """The keys in the models' order, each once."""
        return list(dict.fromkeys(self.keys.values()))

    def key(self, name: str) -> str:
        key = self.keys.get(name)
        if key is None:
            why = self.problems.get(name)
            raise KeyError(f"'{name}' is left out: {why}" if why else f"'{name}' is not among the models")
        return key


@dataclass(frozen=True)
class PlacedLayout:
    """Positions of a set of models, and how each came by its position."""

    space: str
    measure: str
    positions: dict[str, tuple[float, float]]  # model name → (x, y)
    kept: tuple[str, ...]  # names whose stored position was kept
    placed: tuple[str, ...]  # new ones, placed among the kept ones without moving them
    relaid: tuple[str, ...]  # laid out afresh by MDS: the first layout of the space, or an explicit re-layout
    stress: float | None = None  # of the whole layout, when MDS ran (only then is the whole matrix at hand)

    def status(self, name: str) -> str:
        return KEPT if name in self.kept else PLACED if name in self.placed else RELAID


class ModelSpace:
    """Distances, neighbours and layouts over one store: a file's, or one in memory (for a process without a
    store, or one whose store it must not write).

    Threads may share it: one at a time uses the store and the caches. Profiles are kept per
    architecture hash and predictions per run for the life of the object.
    """

    def __init__(self, store: Store | None = None, *, workers: int = 2, landmarks: int = DEFAULT_LANDMARKS,
                 landmark_threshold: int = LANDMARK_THRESHOLD) -> None:
        if landmarks < 3:
            raise ValueError(f"a landmark layout needs at least 3 landmarks; found {landmarks}")
        self.store = Store.in_memory() if store is None else store
        self.cache = DistanceCache(DistanceTable(self.store))
        self.layouts = LayoutTable(self.store)
        self.workers = workers
        # layouts of more models than `landmark_threshold` are landmark layouts of `landmarks` landmarks
        self.landmarks = landmarks
        self.landmark_threshold = max(landmark_threshold, landmarks)
        self._lock = threading.RLock()
        self._profiles: dict[str, otmann.OtmannProfile] = {}  # by architecture hash
        self._by_text: dict[str, str] = {}  # architecture hash by the text of a model's layers
        self._predictions: dict[str, np.ndarray] = {}  # by run id
        self._prepared: tuple[tuple[str, ...], dict[str, int], otmann.ProfileSet] | None = None
        # the last reference layout per (space, measure), with the squared-distance statistics placement needs,
        # so that a long-lived process adds a model without summing the stored matrix again
        self._references: dict[tuple[str, str], Layout] = {}

    # --- members -----------------------------------------------------------------------------------

    def structural(self, models: Mapping[str, ModelSpec | ModelInfo],
                   texts: Mapping[str, str] | None = None) -> Members:
        """The models keyed by architecture hash, profiled once per hash; models OTMANN cannot read are left out.

        `texts`, when the caller has them (the language server), are the source lines of each model's layers:
        the layers are read from those lines alone, so a text seen before gives its key without hashing the
        model again (about 20 µs a model: a 1,000-model file after each edit).
        """
        keys: dict[str, str] = {}
        problems: dict[str, str] = {}
        with self._lock:
            for name, model in models.items():
                key = self._hash(model.model if isinstance(model, ModelInfo) else model,
                                 texts.get(name) if texts is not None else None)
                if key not in self._profiles:
                    try:
                        self._profiles[key] = otmann.profile(model)
                    except otmann.OtmannError as e:
                        problems[name] = str(e)
                        continue
                keys[name] = key
        return Members(STRUCTURAL, keys, problems)

    def predictions(self, runs: Mapping[str, RunPredictions]) -> Members:
        """The models keyed by the id of the run that stands for each (same data set and split for all)."""
        keys: dict[str, str] = {}
        with self._lock:
            for name, run in runs.items():
                key = str(run.run_id)
                self._predictions[key] = np.asarray(run.predictions)
                keys[name] = key
        return Members(PREDICTIONS, keys)

    def _hash(self, spec: ModelSpec, text: str | None) -> str:
        if text is None:
            return architecture_hash(spec)
        key = self._by_text.get(text)
        if key is None:
            if len(self._by_text) >= _KEY_MEMO:
                self._by_text.clear()
            key = self._by_text[text] = architecture_hash(spec)
        return key

    # --- distances and neighbours ------------------------------------------------------------------

    def pair(self, members: Members, a: str, b: str) -> PairValue:
        """The distance between two models (structural: value is 'emd' and lp the raw cost)."""
        ka, kb = members.key(a), members.key(b)
        if ka == kb:
            return PairValue(0.0, 0.0 if members.space == STRUCTURAL else None)
        with self._lock:
            return self.cache.pairs(members.space, [(ka, kb)], self._compute(members))[ordered(ka, kb)]

    def row(self, members: Members, name: str, measure: str | None = None) -> dict[str, float]:
        """Distances from one model to each of the others, by name: at most one per other architecture or run."""
        column = _COLUMN[check_measure(members.space, measure)]
        key = members.key(name)
        others = [k for k in members.distinct() if k != key]
        with self._lock:
            values = self.cache.get_row(members.space, key, others, self._compute(members), column)
        by_key = dict(zip(others, values.tolist(), strict=True))
        by_key[key] = 0.0
        return {n: by_key[k] for n, k in members.keys.items() if n != name}

    def neighbours(self, members: Members, name: str, k: int = 5, measure: str | None = None) -> list[Neighbour]:
        """The k models closest to `name` (ties by name); another name of the same key is at distance 0."""
        row = self.row(members, name, measure)
        return nearest(list(row), list(row.values()), k)

    def matrix(self, members: Members, measure: str | None = None) -> tuple[list[str], np.ndarray]:
        """The distinct keys and their pairwise matrix, computing only the pairs not cached yet."""
        column = _COLUMN[check_measure(members.space, measure)]
        keys = members.distinct()
        with self._lock:
            return keys, self.cache.get_matrix(members.space, keys, self._compute(members), column)

    def _compute(self, members: Members) -> ComputePairs:
        if members.space == PREDICTIONS:
            return predictions_compute(self._predictions)
        universe = tuple(members.distinct())

        def compute(pairs: list[Pair]) -> list[PairValue]:
            hub = _hub(pairs)
            found = self._row_of_set(universe, hub, [b if a == hub else a for a, b in pairs]) if hub else {}
            rest = [pair for pair in pairs if ordered(*pair) not in found]
            solved = otmann.pair_distances(self._profiles, rest, self.workers) if rest else []
            found.update((ordered(*pair), PairValue(d.emd, d.lp)) for pair, d in zip(rest, solved, strict=True))
            return [found[ordered(*pair)] for pair in pairs]

        return compute

    def _row_of_set(self, universe: tuple[str, ...], hub: str, others: list[str]) -> dict[Pair, PairValue]:
        """Distances from `hub` to those of `others` in the prepared profile set, by one row of it.

        The members' profiles are prepared once for the rows asked of them (a hover asks for one row each).
        After an edit the set is kept while it holds `hub` and nearly all of `others` and is not much larger
        than the members: the few new models are solved apart. Empty when too few distances are missing for a
        row of the whole set to pay.
        """
        if len(others) < max(_PREPARED_MIN, _PREPARED_SHARE * len(universe)):
            return {}
        current = self._prepared
        if current is None or hub not in current[1] or len(current[0]) > 2 * len(universe) or \
                sum(o not in current[1] for o in others) * 8 > len(others):
            index = {k: i for i, k in enumerate(universe)}
            current = self._prepared = (universe, index, otmann.ProfileSet([self._profiles[k] for k in universe]))
        _, index, prepared = current
        row = prepared.distances_from(index[hub])
        return {ordered(hub, o): PairValue(float(row.emd[index[o]]), float(row.lp[index[o]]))
                for o in others if o in index}

    # --- layouts -----------------------------------------------------------------------------------

    def layout(self, members: Members, measure: str | None = None, *, relayout: bool = False,
               refine: int = 0) -> PlacedLayout:
        """Positions of the members: stored ones kept, new ones placed among them, and all of them stored.

        With `relayout`, MDS over the members (with `refine` SMACOF iterations) turned onto the stored
        positions replaces the stored layout; `refine` applies as well to the first layout of a space.
        Over `landmark_threshold` members, MDS is landmark MDS (`remapdsl.space.landmarks`): n x L distances
        rather than n²/2, and new models are then placed among the landmarks.
        """
        measure = check_measure(members.space, measure)
        if refine < 0:
            raise ValueError(f"refine must be 0 or more; found {refine}")
        space, keys = members.space, members.distinct()
        with self._lock:
            rows = self.layouts.positions(space, measure)
            stored = {p.key: np.array([p.x, p.y]) for p in rows}
            refined = any(p.refined for p in rows)
            landmarks = {p.key for p in rows if p.landmark}
            kept = [k for k in keys if k in stored]
            new = [k for k in keys if k not in stored]
            how = dict.fromkeys(kept, KEPT)
            stress: float | None = None
            coords: Mapping[str, np.ndarray] = stored
            if relayout and keys:
                fresh, stress = self._fresh(members, keys, measure, refine, stored)
                self._write(space, measure, fresh, keys, replace=True)
                coords = fresh.coords
                how = dict.fromkeys(keys, RELAID)
            elif not new:
                pass
            elif len(new) > len(kept) or not _spans_plane([stored[k] for k in kept]):
                fresh, stress = self._fresh(members, keys, measure, refine, {k: stored[k] for k in kept}, keep=True)
                self._write(space, measure, fresh, new)
                coords = fresh.coords
                how.update(dict.fromkeys(new, PLACED if kept else RELAID))
            else:
                placed = self._place(members, measure, kept, new, stored, refined, landmarks)
                self._write(space, measure, placed, new)
                coords = {**stored, **placed.coords}
                how.update(dict.fromkeys(new, PLACED))
        positions = {name: (_plain(coords[k][0]), _plain(coords[k][1])) for name, k in members.keys.items()}
        by = {status: tuple(n for n, k in members.keys.items() if how[k] == status)
              for status in (KEPT, PLACED, RELAID)}
        return PlacedLayout(space, measure, positions, by[KEPT], by[PLACED], by[RELAID],
                            None if stress is None else _plain(stress))

    def _fresh(self, members: Members, keys: list[str], measure: str, refine: int,
               previous: Mapping[str, np.ndarray], keep: bool = False) -> tuple[_Positions, float]:
        """MDS of the members turned onto `previous` over the keys they share; with `keep`, those keys then
        take their previous positions exactly. The layout's stress comes with it (for a landmark layout, over
        the distances measured)."""
        from remapdsl.space.projection import Layout, align, embed, stress  # scipy: the `distance` extra

        if len(keys) > self.landmark_threshold:
            return self._fresh_landmarks(members, keys, measure, refine, previous, keep)
        d = self.cache.get_matrix(members.space, keys, self._compute(members), _COLUMN[measure])
        fresh = embed(keys, d, refine=refine)
        coords = align(fresh.coords, previous, keys)
        if keep:
            for i, key in enumerate(keys):
                if key in previous:
                    coords[i] = previous[key]
        layout = Layout(tuple(keys), coords, fresh.row_means, fresh.grand_mean, fresh.refined)
        self._references[(members.space, measure)] = layout
        return _Positions(dict(zip(keys, coords, strict=True)), fresh.refined), stress(d, coords)

    def _fresh_landmarks(self, members: Members, keys: list[str], measure: str, refine: int,
                         previous: Mapping[str, np.ndarray], keep: bool) -> tuple[_Positions, float]:
        """Landmark MDS of the members (see `_fresh`); the landmarks' distances among themselves are stored, so
        that a model added later is placed among them from L distances."""
        from remapdsl.space.landmarks import landmark_mds
        from remapdsl.space.projection import Layout, align

        with self._rows(members, keys, measure) as rows:
            laid = landmark_mds(keys, rows.row, self.landmarks, refine=refine)
            self.cache.store(members.space, rows.pairs(laid.landmarks))
        coords = align(laid.coords, previous, keys)
        if keep:
            for i, key in enumerate(keys):
                if key in previous:
                    coords[i] = previous[key]
        chosen = [keys[i] for i in laid.landmarks]
        base = laid.reference
        self._references[(members.space, measure)] = Layout(tuple(chosen), coords[laid.landmarks], base.row_means,
                                                            base.grand_mean, base.refined)
        return _Positions(dict(zip(keys, coords, strict=True)), base.refined, frozenset(chosen)), laid.stress

    def _rows(self, members: Members, keys: list[str], measure: str) -> _RowSource:
        """Whole rows of distances among `keys`, for landmark MDS."""
        if members.space == PREDICTIONS:
            return _PredictionRows(keys, [self._predictions[k] for k in keys])
        return _StructuralRows(keys, [self._profiles[k] for k in keys], measure, self.workers)

    def _place(self, members: Members, measure: str, kept: list[str], new: list[str],
               stored: Mapping[str, np.ndarray], refined: bool, landmarks: set[str]) -> _Positions:
        """`new` placed one after another among the kept models (and the new ones placed before), or, in a
        landmark layout, each among the landmarks."""
        from remapdsl.space.projection import place

        space, column = members.space, _COLUMN[measure]
        compute = self._compute(members)
        reference = self._reference(members, measure, kept, stored, refined, landmarks)
        among_landmarks = not landmarks.isdisjoint(reference.keys) or len(reference.keys) < len(kept)
        if among_landmarks:
            wanted = [(n, o) for n in new for o in reference.keys]
        else:
            wanted = [(n, o) for i, n in enumerate(new) for o in (*kept, *new[:i])]
        values = self.cache.pairs(space, wanted, compute)
        coords: dict[str, np.ndarray] = {}
        for key in new:
            d = np.array([_measure(values[ordered(key, o)], column) for o in reference.keys])
            coords[key] = place(reference, d)
            if not among_landmarks:
                reference = reference.with_point(key, coords[key], d)
        self._references[(space, measure)] = reference
        return _Positions(coords, reference.refined)

    def _reference(self, members: Members, measure: str, kept: list[str], stored: Mapping[str, np.ndarray],
                   refined: bool, landmarks: set[str]) -> Layout:
        """What new models are placed among, with the row means of the squared distances (what Gower needs): the
        landmarks of a landmark layout, else all the kept models. A layout grown past `landmark_threshold`
        without landmarks has them chosen among its kept models now (and marked)."""
        from remapdsl.space.landmarks import maxmin
        from remapdsl.space.projection import Layout

        space, column = members.space, _COLUMN[measure]
        chosen = [k for k in kept if k in landmarks]
        if not chosen and len(kept) > self.landmark_threshold:
            start = min(range(len(kept)), key=kept.__getitem__)
            with self._rows(members, kept, measure) as rows:
                picked, _ = maxmin(len(kept), self.landmarks, rows.row, start)
                self.cache.store(space, rows.pairs(picked))
            chosen = [kept[i] for i in picked]
            self.layouts.write(space, measure, [Position(k, float(stored[k][0]), float(stored[k][1]), refined, True)
                                                for k in chosen])
        # (fewer than L landmarks when the other models all sit on one of them)
        keys = chosen if chosen else kept
        cached = self._references.get((space, measure))
        if cached is not None and len(cached.keys) == len(keys) and set(cached.keys) == set(keys) and \
                np.array_equal(cached.coords, np.array([stored[k] for k in cached.keys])):
            return cached
        # every pair among them, read from the cache (computed if it lost some)
        d = self.cache.get_matrix(space, keys, self._compute(members), column)
        row_means = (d ** 2).mean(axis=1)
        coords = np.array([stored[k] for k in keys])
        return Layout(tuple(keys), coords, row_means, float(row_means.mean()), refined)

    def _write(self, space: str, measure: str, positions: _Positions, keys: Sequence[str],
               replace: bool = False) -> None:
        """Store the positions of `keys`; with `replace`, drop the rest of the stored layout."""
        self.layouts.write(space, measure, [Position(k, float(positions.coords[k][0]), float(positions.coords[k][1]),
                                                     positions.refined, k in positions.landmarks) for k in keys],
                           replace=replace)


@dataclass(frozen=True)
class _Positions:
    """Positions computed by a layout step, by key; which of them are landmarks."""

    coords: Mapping[str, np.ndarray]
    refined: bool
    landmarks: frozenset[str] = frozenset()


class _RowSource:
    """Rows of distances from one key to all keys (in their order), remembered for the landmarks' own pairs."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self._values: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}  # row → (value, lp)

    def row(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def pairs(self, chosen: Sequence[int] | np.ndarray) -> dict[Pair, PairValue]:
        """The distances among the chosen rows' keys, as the distance cache stores them."""
        out: dict[Pair, PairValue] = {}
        chosen = [int(i) for i in chosen]
        for a_index, i in enumerate(chosen):
            value, lp = self._values[i]
            for j in chosen[a_index + 1:]:
                if self.keys[i] != self.keys[j]:
                    out[ordered(self.keys[i], self.keys[j])] = PairValue(float(value[j]),
                                                                         None if lp is None else float(lp[j]))
        return out

    def __enter__(self) -> _RowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing held by default."""


class _StructuralRows(_RowSource):
    def __init__(self, keys: list[str], profiles: list[otmann.OtmannProfile], measure: str, workers: int) -> None:
        super().__init__(keys)
        self.measure = measure
        self._pool = otmann.RowPool(profiles, workers)

    def row(self, i: int) -> np.ndarray:
        d = self._pool.row(i)
        self._values[i] = (d.emd, d.lp)
        return d.lp if self.measure == "lp" else d.emd

    def close(self) -> None:
        self._pool.close()


class _PredictionRows(_RowSource):
    def __init__(self, keys: list[str], predictions: list[np.ndarray]) -> None:
        super().__init__(keys)
        lengths = {len(p) for p in predictions}
        if len(lengths) != 1 or lengths == {0}:
            raise ValueError("the models' validation predictions differ in length or are empty; all models must be "
                             "evaluated on the same validation split")
        self._matrix = np.asarray(predictions, dtype=np.int64).reshape(len(predictions), -1)

    def row(self, i: int) -> np.ndarray:
        # the normalised Hamming distance of `prediction_distance`, one model against all
        d: np.ndarray = (self._matrix != self._matrix[i]).mean(axis=1)
        self._values[i] = (d, None)
        return d


def _hub(pairs: Sequence[Pair]) -> str | None:
    """The key every pair shares, if one does."""
    if not pairs:
        return None
    common = set(pairs[0])
    for a, b in pairs[1:]:
        common &= {a, b}
        if not common:
            return None
    return min(common)


def _spans_plane(points: Sequence[np.ndarray]) -> bool:
    """Whether the points span the plane, as Gower's formula needs of the models it places among."""
    if len(points) < 3:
        return False
    x = np.asarray(points, dtype=np.float64)
    x = x - x.mean(axis=0)
    singular = np.linalg.svd(x, compute_uv=False)
    return bool(singular[-1] > 1e-9 * max(singular[0], 1e-300))


def _measure(v: PairValue, column: str) -> float:
    if column == "value":
        return v.value
    if v.lp is None:
        raise ValueError("no raw transport cost ('lp') stored for this pair")
    return v.lp


def _plain(x: float) -> float:
    """A float as JSON should carry it: -0.0 becomes 0.0."""
    return float(x) + 0.0
