"""The retraining config (strict frozen dataclasses, ``common.config``).

Example (``config_files/backprop_files/symbols.json``)::

    {"name": "symbols_all",
     "selection": "../../results/symbols_selection/selection.json",
     "heldout_selection": null,
     "methods": [{"name": "continued"}, {"name": "pas", "params": {"lam_scale": 100}}],
     "iterations": 100, "batch": {"random": 50, "selected": 5}, "data": {"stream": false},
     "eval_every": 20, "learning_rate": 0.001, "seed": 0, "output_dir": "results/backprops",
     "freeze": {"up_to": "conv4_block6_out", "batch_norm": "inference"}}

Relative ``selection`` / ``heldout_selection`` paths are relative to the config file;
``output_dir`` relative paths are relative to the working directory; without it the runs go to
``$VF_RESULTS_ROOT/backprops`` (``./results/backprops`` when the variable is not set).
"""
from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Optional

from classification_models.mask_ops import RESIZE_MODES
from common.errors import UserError
from common.paths import PATH_NAME_FIELD, results_root
from common.seeding import SEED_FIELD


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One method run: registry ``name``, its ``params``, and an optional ``label``
    (the key in ``summary.json``; defaults to the name, must be unique)."""

    #: a registered method (see `methods[].params` below)
    name: str
    #: the method's parameters
    params: dict[str, Any] = field(default_factory=dict)
    #: the method's key in `summary.json` and tables (default: its name; must be unique)
    label: Optional[str] = field(default=None, metadata=PATH_NAME_FIELD)

    @property
    def key(self) -> str:
        return self.label or self.name


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """Batch composition: ``random`` random training images + ``selected`` from the selection (§3.1).

    ``selected`` larger than the selection is an error unless ``with_replacement`` is
    true (then the selected slots are drawn with replacement: the same masked image can
    appear several times in one batch).
    """

    #: random training images per batch
    random: int = field(default=50, metadata={"min": 0})
    #: images from the selection (the masked images) per batch
    selected: int = field(default=5, metadata={"min": 0})
    #: draw the selected slots with replacement (needed when `selected` exceeds the selection)
    with_replacement: bool = False


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Where the random images of every batch come from (``data``).

    ``stream: false`` (the default) holds the splits as arrays and draws batch positions
    from them. ``stream: true`` reads the random images from the training split's records
    through a shuffle buffer of ``shuffle_buffer`` records and scores val/test batch by
    batch, so memory does not grow with the data set (a ``[N, 224, 224, 3]`` split is
    ~150 kB per image); the selected images stay in memory. Methods that need the whole
    training split at once refuse it. Streamed batches are other random images than the
    array draw: the same seed repeats a streamed run, not an array run — except with
    ``mode: fast``, which reads the split once, in position order, to cache its features
    and then draws by position from the cache, as with arrays.
    """

    #: read the random images from the training records instead of holding the splits as arrays
    stream: bool = False
    #: records in the shuffle buffer of a streamed training split
    shuffle_buffer: int = field(default=1024, metadata={"min": 1})


@dataclasses.dataclass(frozen=True)
class MaskResize:
    """How image masks become activation-grid masks (``classification_models.mask_ops``)."""

    #: `area`: a cell is masked above `threshold` coverage; `soft`: the covered share; `dilate`: grown first
    mode: str = field(default="area", metadata={"choices": RESIZE_MODES})
    #: the share of a cell a mask must cover to mask it (`area`)
    threshold: float = field(default=0.25, metadata={"min": 0.0, "max": 0.999})
    #: pixels the mask grows by before resizing (`dilate`; null: one grid stride)
    dilate_px: Optional[int] = field(default=None, metadata={"min": 0})


@dataclasses.dataclass(frozen=True)
class PropagationSpec:
    """Feedback propagation (``classification_models.propagation``): a cell of another
    training image is masked where a logistic regression on last-conv activation vectors
    (masked against unmasked cells of the expert's images, inverse regularisation ``c``)
    gives a probability above the threshold. The threshold is ``threshold`` lowered (in
    steps of 0.05, down to 0.05) until the cell model marks at least ``min_recall`` of
    the expert's own masked cells (0 keeps ``threshold``), each masked image scored by a
    model fit on the other masked images (``calibrate: "leave_one_out"``; ``"in_sample"``
    scores them by the model fit on all, which overstates how much of a thin or moving
    cue it finds on other images): a cue that covers most of the image (a background),
    or a thin one, otherwise leaves parts of itself unmarked, and the model reads the cue
    from them. ``pixels``: masks drawn pixel by pixel
    (``PixelSegmenter``, probability above ``pixel_threshold``) instead of whole cells;
    ``auto`` does so when the expert's masks cover on average at least half of their
    images (a background mask: an object's outline crosses many cells, and whole cells
    would swap the object away). ``top`` filters with at least ``min_share`` of their
    activation inside the masks are the ones ``filter_penalty`` penalises. With
    ``data.stream`` the training split is read chunk by chunk and the images and masks
    of at most ``bank`` propagated images (a seeded random sample) are held, which
    ``swap`` swaps in for every streamed image that carries a propagated mask: about
    ``bank × (variants + 1) × H × W × C`` bytes (500 at 224×224×3: 0.4 GB).
    ``position``: the cell model also reads where each cell lies (Gaussian bumps on a grid
    over the image, ``classification_models.propagation.position_features``); ``auto``
    turns it on when it reads a layer finer than the feature map (``layer``), whose
    low-level features cannot tell a small cue from parts of the object that look alike.
    Used by ``swap`` (``propagate``) and ``filter_penalty``."""

    #: the cell model's starting probability threshold for marking a cell
    threshold: float = field(default=0.8, metadata={"min": 0.0, "max": 1.0})
    #: the threshold is lowered until this share of the expert's own masked cells is marked (0: keep it)
    min_recall: float = field(default=0.85, metadata={"min": 0.0, "max": 1.0})
    #: draw propagated masks pixel by pixel: `auto` when the masks cover on average half their images
    pixels: str = field(default="auto", metadata={"choices": ("auto", "always", "never")})
    #: the pixel model's probability threshold
    pixel_threshold: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    #: inverse L2 regularisation of the cell model (logistic regression)
    c: float = field(default=1.0, metadata={"gt": 0.0})
    #: how many filters `filter_penalty` penalises (the most active inside the masks)
    top: int = field(default=8, metadata={"min": 1})
    #: a penalised filter has at least this share of its activation inside the masks
    min_share: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    #: with `data.stream`: the most propagated images (and their masks) held in memory for swaps
    bank: int = field(default=500, metadata={"min": 1})
    #: score the expert's masked images by a model fit on the others (`leave_one_out`) or on all
    calibrate: str = field(default="leave_one_out", metadata={"choices": ("in_sample", "leave_one_out")})
    #: the layer the cell model reads: `features`, a layer name, or `auto` (a finer one for cues under two cells)
    layer: str = "auto"
    #: the cell model also learns where cells lie (`auto`: when it reads a layer finer than the feature map)
    position: str = field(default="auto", metadata={"choices": ("auto", "on", "off")})


@dataclasses.dataclass(frozen=True)
class StopSpec:
    """Early stopping and model selection inside one method's run (``stopping``).

    Every ``eval_every`` iterations the model is scored on ``on``: ``val_swap`` (the
    validation images with their cue regions swapped between classes, which a model
    that reads the cue gets wrong — the default, because a user's validation split
    usually carries the cue too), ``val`` (plain validation accuracy; right when the
    validation split is known to be free of the cue) or ``none`` (run all
    ``iterations``). The run stops when the score has not improved by ``min_delta``
    for ``patience`` iterations, never before iteration ``start_from`` (a base that
    never learned the object can sit at chance for hundreds of iterations of swaps
    before it grows the object's features; the same reason as Keras's
    ``EarlyStopping(start_from_epoch=...)``), and, with
    ``restore_best``, ends with the weights of
    the best-scoring check (the base model's own score is the first check, so a
    method that only makes things worse ends where it started). Nor does it stop while
    the training cross-entropy still falls by more than ``min_ce_drop`` (mean of the
    last ``patience // 2`` iterations against the ``patience // 2`` before): a model
    that is still growing the object's features can climb more slowly than
    ``min_delta`` per check for a while; a large value turns this off. Without masks or
    without a validation split ``val_swap`` falls back to ``val``, then to ``none``;
    the run records which was used.
    """

    #: the score early stopping and the kept checkpoint follow (`none`: run every iteration)
    on: str = field(default="val_swap", metadata={"choices": ("val_swap", "val", "none")})
    #: iterations without an improvement of `min_delta` before the run stops
    patience: int = field(default=200, metadata={"min": 1})
    #: the smallest rise of the score that counts as an improvement
    min_delta: float = field(default=0.005, metadata={"min": 0.0, "max": 1.0})
    #: end with the weights of the best-scoring check (the base's score is the first)
    restore_best: bool = True
    #: the run never stops before this iteration
    start_from: int = field(default=500, metadata={"min": 0})
    #: no stop while the training cross-entropy still falls by more than this over `patience` iterations
    min_ce_drop: float = field(default=0.05, metadata={"min": 0.0})


@dataclasses.dataclass(frozen=True)
class Freeze:
    """Which layers stay fixed during retraining (``freeze``).

    ``up_to``: every layer up to and including this one (the model's layers in order,
    nested backbones entered) is frozen; ``batch_norm: "inference"`` also freezes every
    batch-norm layer, which then normalises with its stored statistics. Other names
    than those in the model fail when the run starts, naming the layer.
    """

    #: every layer up to and including this one is frozen (nested backbones entered)
    up_to: Optional[str] = None
    #: `inference` also freezes every batch-norm layer (stored statistics)
    batch_norm: str = field(default="train", metadata={"choices": ("train", "inference")})


@dataclasses.dataclass(frozen=True)
class FastSpec:
    """The fast path (``mode: "fast"``, ``retraining.fast``): layers up to and including
    ``freeze_up_to`` (default: the narrowest block output before the feature map's last
    downsampling, the input of a backbone's last stage) are frozen, their output is
    computed once per image a method can draw and kept in ``cache_dir`` (default: the
    system's temporary folder; removed after each method), and only the later layers
    train. When a linear probe on those features reaches less than chance plus
    ``probe_margin`` of the way to 1 on the cue-swapped validation copy, the features do
    not encode the object and the run takes the full path (``run.json`` says why)."""

    #: the last frozen layer (null: the input of the backbone's last stage)
    freeze_up_to: Optional[str] = None
    #: the linear probe must reach chance plus this share of the way to 1, else the full path
    probe_margin: float = field(default=0.25, metadata={"min": 0.0, "max": 1.0})
    #: where the frozen layers' outputs are cached (null: the system's temporary folder)
    cache_dir: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class RetrainConfig:
    """A retraining experiment.

    ``bn_recalibration``: before every check and at the end, the moving statistics of
    the model's training batch-norm layers are recomputed from this many batches of
    plain training images (0: never). In a short retraining the weights move faster
    than the moving statistics follow, and the model scores far lower in inference
    mode than it has learned to; recomputing them is the batch-norm update of SWA
    (Izmailov et al. 2018), "precise BN" (Wu & Johnson 2021). Models without batch
    normalisation are not touched.

    ``mode``: ``full`` trains the whole model; ``fast`` only the layers after a freeze
    point, on cached features (``FastSpec``). ``precision: "mixed_float16"``: the
    retrained copies compute in float16 with float32 weights and a scaled loss
    (``classification_models.precision``; for GPUs — on a CPU it is slower).
    ``worst_group``: where worst-group accuracy (groups = class × cue value) is measured:
    ``cue_values`` the test split with the cue values the data set records (an image
    folder's ``cues.csv``), ``val_swap`` the cue-swapped validation copy (cue value: the
    pasted cue's class), ``auto`` the first of these the run has, ``none`` nowhere.
    ``track_test``: each method's test (and worst-group) accuracy at every check, in its
    ``along.json`` (``retraining.tracking``; for figures, never for choosing).
    """

    #: the run's folder name under `output_dir`
    name: str = field(metadata=PATH_NAME_FIELD)
    #: the expert's `selection.json` (relative to this config file)
    selection: str
    #: the methods to run, each from the base model, in order
    methods: list[MethodSpec] = field(metadata={"min_len": 1})
    #: masked images never trained on, scored before and after (relative to this file)
    heldout_selection: Optional[str] = None
    #: the most optimiser steps per method (early stopping may end sooner)
    iterations: int = field(default=1000, metadata={"min": 1})
    #: how many random and selected images make one batch
    batch: BatchSpec = field(default_factory=BatchSpec)
    #: arrays in memory or batches streamed from the records
    data: DataSpec = field(default_factory=DataSpec)
    #: iterations between checks (validation scores, early stopping, CAMs of the selection)
    eval_every: int = field(default=20, metadata={"min": 1})
    #: the optimiser's learning rate
    learning_rate: float = field(default=1e-3, metadata={"gt": 0.0})
    #: Adam, or SGD with momentum 0.9
    optimizer: str = field(default="adam", metadata={"choices": ("adam", "sgd")})
    #: iterations over which the learning rate ramps up linearly (0: none)
    warmup: int = field(default=0, metadata={"min": 0})
    #: early stopping and which checkpoint is kept
    stopping: StopSpec = field(default_factory=StopSpec)
    #: seeds batch draws, mask variants, swaps and propagation
    seed: int = field(default=0, metadata=SEED_FIELD)
    #: where the run folder goes (relative to the working directory; null: `$VF_RESULTS_ROOT/backprops`)
    output_dir: Optional[str] = None
    #: how image masks become activation-grid masks
    mask_resize: MaskResize = field(default_factory=MaskResize)
    #: how the expert's masks are extended to other training images
    propagation: PropagationSpec = field(default_factory=PropagationSpec)
    #: the data cache root (default: the train result's, or `VF_DATA_ROOT`)
    data_root: Optional[str] = None
    #: write the CAM figures of every method
    overlays: bool = True
    #: build the cue-swapped validation copy (`val_swap`)
    counterfactual_val: bool = True
    #: batches of plain training images that recompute batch-norm statistics at every check (0: never)
    bn_recalibration: int = field(default=5, metadata={"min": 0})
    #: write each method's retrained `model.keras`
    save_models: bool = True
    #: layers kept fixed during retraining (null: none)
    freeze: Optional[Freeze] = None
    #: `full` trains the whole model; `fast` only the layers after a freeze point, on cached features
    mode: str = field(default="full", metadata={"choices": ("full", "fast")})
    #: `mixed_float16` computes the retrained copies in float16 (for GPUs)
    precision: str = field(default="float32", metadata={"choices": ("float32", "mixed_float16")})
    #: the fast path's settings (`mode: fast`)
    fast: FastSpec = field(default_factory=FastSpec)
    #: where worst-group accuracy (class × cue value) is measured (`auto`: recorded cue values, else the cue-swapped copy)
    worst_group: str = field(default="auto", metadata={"choices": ("auto", "cue_values", "val_swap", "none")})
    #: record each method's test accuracy at every check in `along.json` (figures only; never chooses anything)
    track_test: bool = False

    def __post_init__(self) -> None:
        if self.output_dir is None:  # the documented default: $VF_RESULTS_ROOT (or ./results) / backprops
            object.__setattr__(self, "output_dir", str(results_root() / "backprops"))

    def validate(self, source: str) -> None:
        keys = [m.key for m in self.methods]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise UserError(f"{source}: methods: '{dup[0]}' appears twice; give one of them a 'label'")
        if self.warmup and self.warmup >= self.iterations:
            raise UserError(f"{source}: warmup {self.warmup} is not shorter than iterations {self.iterations}: the "
                            f"learning rate would never reach learning_rate {self.learning_rate:g}; use a warmup below "
                            f"{self.iterations} (a tenth of the run is usual) or 0")
        if self.batch.random + self.batch.selected < 1:
            raise UserError(f"{source}: batch must hold at least one image, got random=0 selected=0")
