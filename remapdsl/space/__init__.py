"""The model space: OTMANN structural distances, prediction distances, their cached matrices, the kept MDS
layouts (landmark MDS for large populations) and the nearest neighbours of a model.

Names are loaded on first use: the distances need POT and SciPy (the `distance` extra), and
`import remapdsl.space` must not fail without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remapdsl.faces import lazy_names

if TYPE_CHECKING:
    from remapdsl.space.distance_cache import DistanceCache, PairValue
    from remapdsl.space.landmarks import DEFAULT_LANDMARKS, LANDMARK_THRESHOLD, LandmarkLayout, landmark_mds
    from remapdsl.space.model_space import Members, ModelSpace, RunPredictions, check_measure
    from remapdsl.space.neighbours import Neighbour, nearest
    from remapdsl.space.otmann import OtmannDistance, OtmannError, OtmannProfile, distance, distance_matrix, profile
    from remapdsl.space.prediction_distance import PredictionError, prediction_distance_matrix
    from remapdsl.space.projection import Layout, ProjectionError, embed, place

# Each public name and the module that defines it.
_HOMES = {
    "OtmannError": "otmann",
    "OtmannProfile": "otmann",
    "OtmannDistance": "otmann",
    "profile": "otmann",
    "distance": "otmann",
    "distance_matrix": "otmann",
    "PredictionError": "prediction_distance",
    "prediction_distance_matrix": "prediction_distance",
    "PairValue": "distance_cache",
    "DistanceCache": "distance_cache",
    "Layout": "projection",
    "ProjectionError": "projection",
    "embed": "projection",
    "place": "projection",
    "DEFAULT_LANDMARKS": "landmarks",
    "LANDMARK_THRESHOLD": "landmarks",
    "LandmarkLayout": "landmarks",
    "landmark_mds": "landmarks",
    "Neighbour": "neighbours",
    "nearest": "neighbours",
    "ModelSpace": "model_space",
    "Members": "model_space",
    "RunPredictions": "model_space",
    "check_measure": "model_space",
}

__all__ = [
    "DEFAULT_LANDMARKS",
    "LANDMARK_THRESHOLD",
    "DistanceCache",
    "LandmarkLayout",
    "Layout",
    "Members",
    "ModelSpace",
    "Neighbour",
    "OtmannDistance",
    "OtmannError",
    "OtmannProfile",
    "PairValue",
    "PredictionError",
    "ProjectionError",
    "RunPredictions",
    "check_measure",
    "distance",
    "distance_matrix",
    "embed",
    "landmark_mds",
    "nearest",
    "place",
    "prediction_distance_matrix",
    "profile",
]

__getattr__ = lazy_names(__name__, _HOMES)
