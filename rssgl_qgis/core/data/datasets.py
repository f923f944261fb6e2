"""Loaders for the standard hyperspectral benchmark scenes (.mat files of the UPV/EHU GIC distribution).

Variable names differ between copies of the same scene (``salinasA_corrected``, ``paviaU``...), so
arrays are picked by shape: the cube is the only 3-D array, the ground truth the 2-D integer array
of the same height and width. MATLAB v7.3 files (HDF5) are read with h5py when it is installed.
Cubes are returned in the engine's (B, H, W) float32 order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..network.model import SCENE_KERNELS
from ..palette import default_colors

__all__ = ["SceneSpec", "SCENES", "Scene", "load_scene", "load_ground_truth", "load_mat_array", "find_scene_file"]


@dataclass(frozen=True)
class SceneSpec:
    """What we know about a benchmark scene: file names, shape and class names (by class value)."""

    name: str
    cube_files: tuple[str, ...]
    gt_files: tuple[str, ...]
    bands: int
    height: int
    width: int
    class_names: dict[int, str]
    kernel: tuple[int, int, int]
    stat_loss_weight: float
    iterations: int
    patience_epochs: int


_SALINAS_NAMES = {
    1: "Brocoli_green_weeds_1", 2: "Brocoli_green_weeds_2", 3: "Fallow", 4: "Fallow_rough_plow",
    5: "Fallow_smooth", 6: "Stubble", 7: "Celery", 8: "Grapes_untrained", 9: "Soil_vinyard_develop",
    10: "Corn_senesced_green_weeds", 11: "Lettuce_romaine_4wk", 12: "Lettuce_romaine_5wk",
    13: "Lettuce_romaine_6wk", 14: "Lettuce_romaine_7wk", 15: "Vinyard_untrained", 16: "Vinyard_vertical_trellis",
}

SCENES: dict[str, SceneSpec] = {
    "indian_pines": SceneSpec(
        "indian_pines", ("Indian_pines_corrected.mat",), ("Indian_pines_gt.mat",), 200, 145, 145,
        {1: "Alfalfa", 2: "Corn-notill", 3: "Corn-mintill", 4: "Corn", 5: "Grass-pasture", 6: "Grass-trees",
         7: "Grass-pasture-mowed", 8: "Hay-windrowed", 9: "Oats", 10: "Soybean-notill", 11: "Soybean-mintill",
         12: "Soybean-clean", 13: "Wheat", 14: "Woods", 15: "Buildings-Grass-Trees-Drives",
         16: "Stone-Steel-Towers"},
        SCENE_KERNELS["indian_pines"], 0.0009, 1000, 15,
    ),
    "salinas": SceneSpec(
        "salinas", ("Salinas_corrected.mat",), ("Salinas_gt.mat",), 204, 512, 217, _SALINAS_NAMES,
        SCENE_KERNELS["salinas"], 0.001, 600, 10,
    ),
    "pavia_university": SceneSpec(
        "pavia_university", ("PaviaU.mat",), ("PaviaU_gt.mat",), 103, 610, 340,
        {1: "Asphalt", 2: "Meadows", 3: "Gravel", 4: "Trees", 5: "Painted metal sheets", 6: "Bare Soil",
         7: "Bitumen", 8: "Self-Blocking Bricks", 9: "Shadows"},
        SCENE_KERNELS["pavia_university"], 0.005, 600, 10,
    ),
    "salinas_a": SceneSpec(
        "salinas_a", ("SalinasA_corrected.mat",), ("SalinasA_gt.mat",), 204, 83, 86,
        {k: _SALINAS_NAMES[k] for k in (1, 10, 11, 12, 13, 14)},
        SCENE_KERNELS["salinas_a"], 0.001, 600, 10,
    ),
}


@dataclass
class Scene:
    """A loaded scene: cube (B, H, W) float32 (None when only the ground truth exists), labels (H, W)."""

    name: str
    cube: np.ndarray | None
    labels: np.ndarray
    class_values: np.ndarray
    class_names: list[str]
    class_colors: list[tuple[int, int, int]]


def find_scene_file(data_dir, names: tuple[str, ...], scene: str) -> Path | None:
    """Find one of ``names`` (case-insensitive) in data_dir or data_dir/<scene>."""
    wanted = {n.lower() for n in names}
    for folder in (Path(data_dir), Path(data_dir) / scene):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.name.lower() in wanted and path.is_file():
                    return path
    return None


def _mat_arrays(path: Path) -> dict[str, np.ndarray]:
    import scipy.io

    try:
        return {k: v for k, v in scipy.io.loadmat(str(path)).items() if not k.startswith("__")}
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        try:
            import h5py
        except ImportError as exc:
            raise RuntimeError(
                f"'{path}' is a MATLAB v7.3 (HDF5) file and h5py is not installed; install h5py "
                "or re-save the file in MATLAB with save(..., '-v7')."
            ) from exc
        with h5py.File(path, "r") as fh:
            # h5py reads MATLAB arrays transposed (column-major on disk).
            return {k: np.asarray(fh[k]).T for k in fh.keys() if isinstance(fh[k], h5py.Dataset)}
    except ValueError as exc:
        raise ValueError(f"'{path}' is not a readable .mat file ({exc}); download it again.") from exc


def load_mat_array(path, ndim: int, shape_hw: tuple[int, int] | None = None) -> np.ndarray:
    """The single array of ``ndim`` dimensions in a .mat file (matching ``shape_hw`` when given)."""
    arrays = _mat_arrays(Path(path))
    hits = [
        a for a in arrays.values()
        if isinstance(a, np.ndarray) and a.ndim == ndim and a.dtype != object
        and (shape_hw is None or tuple(a.shape[:2]) == tuple(shape_hw))
    ]
    if len(hits) != 1:
        found = {k: getattr(v, "shape", None) for k, v in arrays.items()}
        raise ValueError(
            f"Expected exactly one {ndim}-D array{' of size ' + str(shape_hw) if shape_hw else ''} in '{path}', "
            f"found variables {found}; check that this is the right file."
        )
    return hits[0]


def load_ground_truth(scene: str, data_dir) -> np.ndarray:
    """The (H, W) int64 ground truth of a benchmark scene (0 = unlabelled)."""
    spec = _spec(scene)
    path = find_scene_file(data_dir, spec.gt_files, scene)
    if path is None:
        raise FileNotFoundError(
            f"No ground truth for '{scene}' in '{data_dir}': expected {spec.gt_files[0]} there or in "
            f"'{Path(data_dir) / scene}'."
        )
    try:
        gt = load_mat_array(path, 2, (spec.height, spec.width))
    except ValueError as exc:
        raise ValueError(
            f"'{path}' holds no {spec.height}x{spec.width} ground truth, the size of {scene} ({exc})"
        ) from exc
    return gt.astype(np.int64)


def _spec(scene: str) -> SceneSpec:
    if scene not in SCENES:
        raise ValueError(f"Unknown scene '{scene}'; choose one of {sorted(SCENES)}.")
    return SCENES[scene]


def load_scene(scene: str, data_dir, *, random_cube: bool = False, seed: int = 0) -> Scene:
    """Load cube and ground truth. ``random_cube``: a standard-normal cube of the scene's shape instead
    of the real one (for smoke tests where only the ground truth is available)."""
    spec = _spec(scene)
    labels = load_ground_truth(scene, data_dir)
    if random_cube:
        cube = np.random.default_rng(seed).standard_normal((spec.bands, spec.height, spec.width), dtype=np.float32)
    else:
        path = find_scene_file(data_dir, spec.cube_files, scene)
        if path is None:
            raise FileNotFoundError(
                f"No cube for '{scene}' in '{data_dir}': expected {spec.cube_files[0]} there or in "
                f"'{Path(data_dir) / scene}'. Use --random-cube to smoke-test with the ground truth only."
            )
        raw = load_mat_array(path, 3, labels.shape)
        cube = np.ascontiguousarray(np.transpose(raw, (2, 0, 1)), dtype=np.float32)
    values = np.unique(labels[labels > 0])
    names = [spec.class_names.get(int(v), f"class {v}") for v in values]
    palette = default_colors(int(values.max()) if values.size else 0)
    colors = [palette[int(v) - 1] for v in values]
    return Scene(scene, cube, labels, values, names, colors)
