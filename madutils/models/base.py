"""The one protocol every generative model of madutils follows, and the bases that hold it.

Following scikit-learn, a model's constructor takes settings only; :meth:`GenerativeModel.fit`
learns from data and sets the learned state, attributes with a trailing underscore listed in
``_state_attributes``; :meth:`GenerativeModel.sample` draws from the fitted model. Every random
draw of ``fit`` and ``sample`` comes from the ``rng`` (a ``torch.Generator``) the caller passes,
so that a loop controls all randomness through its streams. :meth:`GenerativeModel.clone`
returns an unfitted copy with the same settings, which is how a loop trains each generation from
scratch. The calls, for every model::

    model.fit(X, y=None, *, rng) -> model
    model.sample(n, lam=1.0, *, rng, labels=None) -> samples

``y`` and ``labels`` are class labels; only a class-conditional model (``conditional = True``)
takes them. ``lam`` in (0, 1] is the paper's sampling bias: 1 is plain sampling, smaller values
give less diverse samples.

Two families build on :class:`GenerativeModel`:

- :class:`BatchedModel`, the toy models (Gaussian, mixture, flow) fitted to many independent
  replicates ("seeds") at once: data come as a tensor of shape ``(n_seeds, n_samples,
  n_features)`` and every learned tensor carries the seed axis first; their learned tensors are
  saved and restored with ``state_dict`` / ``load_state_dict``.
- :class:`ImageModel`, the image models (DDPM, WGAN-GP), one network per replicate: it holds
  their device handling, the drawing of the training seed from ``rng``, the seeded
  initialisation of the networks and saving (``save`` / ``load``, ``state_dict`` /
  ``load_state_dict``).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from madutils._image_checks import check_images, resolve_device
from madutils._validation import (
    check_generator,
    check_lam,
    check_positive_int,
    check_positive_number,
)

__all__ = ["BatchedModel", "GenerativeModel", "ImageModel", "draw_training_seed", "settings_for"]


def draw_training_seed(rng: torch.Generator) -> int:
    """Draw the integer seed of one training run from ``rng``.

    Parameters
    ----------
    rng : torch.Generator
        A CPU generator; one int64 is drawn from it.

    Returns
    -------
    int
        ``int(torch.randint(2**31 - 1, (1,), generator=rng))``, in ``[0, 2**31 - 1)``.
    """
    return int(torch.randint(2**31 - 1, (1,), generator=check_generator(rng)))


def settings_for(model_class: type, settings) -> dict:
    """The constructor arguments of ``model_class`` that the run settings hold, by name.

    A model's hyper-parameters are named the same in the model and in the run settings
    (:class:`~madutils.loops.config.LoopConfig`, :class:`~madutils.loops.image_config.
    ImageLoopConfig`), so a loop builds each generation's model from its settings with this
    one rule; arguments the settings do not hold keep the model's defaults.
    """
    names = [
        p.name
        for p in inspect.signature(model_class.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return {name: getattr(settings, name) for name in names if hasattr(settings, name)}


class GenerativeModel:
    """Base class of every generative model: settings, learned state, cloning.

    Subclasses take their settings as keyword arguments of ``__init__`` and store each under
    its own name (that is what :meth:`get_params` reads back), implement :meth:`fit` and
    :meth:`sample`, and list their learned attributes (trailing underscore) in
    ``_state_attributes``: the model is fitted when all of them are set.

    Attributes
    ----------
    conditional : bool
        Class attribute: whether the model takes class labels (``y`` in :meth:`fit`,
        ``labels`` in :meth:`sample`). False here.
    """

    #: Whether the model takes class labels in :meth:`fit` and :meth:`sample`.
    conditional: bool = False
    #: Names of the learned attributes; all are set by :meth:`fit`.
    _state_attributes: tuple[str, ...] = ()

    def fit(self, X, y=None, *, rng: torch.Generator) -> GenerativeModel:
        """Learn from the training data ``X`` (and labels ``y`` for a conditional model).

        Parameters
        ----------
        X : torch.Tensor
            Training data, in the layout of the model.
        y : torch.Tensor, optional
            Class labels of ``X``; only for a conditional model.
        rng : torch.Generator
            Source of every random draw of the training.

        Returns
        -------
        GenerativeModel
            ``self``, fitted.
        """
        raise NotImplementedError

    def sample(
        self, n: int, lam: float = 1.0, *, rng: torch.Generator, labels=None
    ) -> torch.Tensor:
        """Draw ``n`` samples with sampling bias ``lam``.

        Parameters
        ----------
        n : int
            Number of samples (per seed, for a batched model).
        lam : float in (0, 1], default 1.0
            Sampling bias: 1 = plain sampling, smaller = less diverse.
        rng : torch.Generator
            The only source of randomness.
        labels : torch.Tensor, optional
            Class of each sample; only for a conditional model.

        Returns
        -------
        torch.Tensor
        """
        raise NotImplementedError

    def get_params(self) -> dict:
        """Return the constructor arguments of this model.

        Returns
        -------
        dict
            ``{name: value}`` for every named parameter of ``__init__``, read from the
            attribute of the same name.
        """
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> GenerativeModel:
        """Return an unfitted model with the same settings.

        Returns
        -------
        GenerativeModel
            ``type(self)(**self.get_params())``.
        """
        return type(self)(**self.get_params())

    @property
    def is_fitted(self) -> bool:
        """Whether every learned attribute of ``_state_attributes`` is set."""
        return all(hasattr(self, name) for name in self._state_attributes)

    def _check_is_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit first")

    def _check_no_y(self, y) -> None:
        """Refuse training labels: the model is unconditional."""
        if y is not None:
            raise ValueError(
                f"{type(self).__name__} is unconditional: fit takes no labels, y must be None; "
                f"got {type(y).__name__}"
            )

    def _check_no_labels(self, labels) -> None:
        """Refuse sampling labels: the model is unconditional."""
        if labels is not None:
            raise ValueError(
                f"{type(self).__name__} is unconditional: sample takes no labels, labels must "
                f"be None; got {type(labels).__name__}"
            )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


class BatchedModel(GenerativeModel):
    """Base class for models fitted to many seeds at once.

    Subclasses implement ``fit(X, y=None, *, rng)`` with ``X`` of shape ``(n_seeds, n_samples,
    n_features)`` and ``sample(n, lam=1.0, *, rng, labels=None)`` returning ``(n_seeds, n,
    n_features)``, and list their learned tensors in ``_state_attributes`` so that
    :meth:`state_dict` / :meth:`load_state_dict` can save and restore a fitted model (used to
    resume interrupted loops). They are unconditional: ``y`` and ``labels`` must be None
    (:meth:`_check_no_y`, :meth:`_check_no_labels`); ``rng`` is optional in ``fit`` for
    models whose fit draws no random numbers.
    """

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Return the learned attributes (tensors), for saving a fitted model.

        Returns
        -------
        dict of str to torch.Tensor
            One entry per name of ``_state_attributes``.
        """
        self._check_is_fitted()
        return {name: getattr(self, name) for name in self._state_attributes}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> BatchedModel:
        """Restore learned attributes saved by :meth:`state_dict`.

        Parameters
        ----------
        state : dict of str to torch.Tensor
            As :meth:`state_dict` returns it.

        Returns
        -------
        BatchedModel
            ``self``, fitted.
        """
        missing = set(self._state_attributes) - set(state)
        if missing:
            raise ValueError(f"state is missing the learned attributes {sorted(missing)}")
        for name in self._state_attributes:
            setattr(self, name, state[name])
        return self


class ImageModel(GenerativeModel):
    """Base class of the image models: one network (or several) per model, trained on a device.

    What the image models share lives here:

    - settings every image model has: ``image_size``, ``epochs``, ``batch_size``, ``lr``,
      ``device`` (``"auto"``, ``"cpu"`` or ``"cuda"``) and ``progress``, stored by
      ``ImageModel.__init__`` (which a subclass calls after storing its own settings) and
      checked by :meth:`_validate`, which calls the subclass's :meth:`_check_settings`;
    - :meth:`fit`: settings and images checked, labels checked by :meth:`_check_y`, the
      training seed drawn from ``rng`` with :func:`draw_training_seed`, the device resolved;
      the subclass's :meth:`_train` initialises the networks from that seed inside
      ``torch.random.fork_rng`` (:meth:`_initial_networks`), so the caller's global random
      state is left as it was, and draws everything else of its training from a private
      generator seeded with it;
    - :meth:`sample`: the checks, the labels (:meth:`_sampling_labels`: refused by an
      unconditional model) and the call of the subclass's :meth:`_generate`;
    - saving: :meth:`state_dict` / :meth:`load_state_dict` and :meth:`save` / :meth:`load`.

    Subclasses name their networks in ``_networks`` and their per-epoch histories (lists of
    floats) in ``_histories``, build fresh networks in :meth:`_build_networks`, train in
    :meth:`_train` and draw in :meth:`_generate`; the learned state is then ``_networks``,
    ``_histories``, ``training_seed_`` and ``device_``.

    Attributes
    ----------
    training_seed_ : int
        The seed :meth:`fit` drew from its ``rng``; it seeds the initial weights and every
        random draw of the training.
    device_ : torch.device
        The resolved device the networks live on.
    """

    #: Names of the learned networks (``torch.nn.Module`` attributes), in build order.
    _networks: tuple[str, ...] = ()
    #: Names of the learned per-epoch histories (lists of float).
    _histories: tuple[str, ...] = ()
    #: Images generated at once by :meth:`sample` unless its ``batch_size`` says otherwise.
    _sample_batch_size: int = 256
    #: Saved settings of older versions and their current names, for :meth:`load`.
    _renamed_params: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._state_attributes = (*cls._networks, *cls._histories, "training_seed_", "device_")

    def __init__(
        self,
        image_size: int,
        epochs: int,
        batch_size: int,
        lr: float,
        device: str,
        progress: bool,
    ) -> None:
        """Store the settings all image models have, then check every setting.

        A subclass stores its own settings first, then calls this (so that bad settings fail
        at construction).
        """
        self.image_size = image_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.progress = progress
        self._validate()

    # -- settings ------------------------------------------------------------------------------

    def _validate(self) -> None:
        """Check the settings all image models have, then its own (:meth:`_check_settings`)."""
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_number(self.lr, "lr")
        resolve_device(self.device)
        self._check_settings()

    def _check_settings(self) -> None:
        """Check the settings of the subclass; raise ``ValueError`` on a bad one."""

    def _build_networks(self) -> tuple[torch.nn.Module, ...]:
        """Return freshly initialised networks, one per name of ``_networks`` (global RNG)."""
        raise NotImplementedError

    def _initial_networks(self, seed: int | None = None) -> tuple[torch.nn.Module, ...]:
        """:meth:`_build_networks` seeded with ``seed``, leaving the global random state as it was.

        Parameters
        ----------
        seed : int, optional
            Seeds torch's global generator inside ``torch.random.fork_rng``; None (weights that
            are about to be overwritten) leaves it as it is.

        Returns
        -------
        tuple of torch.nn.Module
            On the CPU, in training mode.
        """
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            return self._build_networks()

    # -- training ------------------------------------------------------------------------------

    def fit(self, X, y=None, *, rng: torch.Generator) -> ImageModel:
        """Train on images ``X`` (with their class labels ``y``, for a conditional model).

        Settings and data are checked, one training seed is drawn from ``rng`` with
        :func:`draw_training_seed` (kept as ``training_seed_``), and the subclass trains from
        it: the seed initialises the networks (:meth:`_initial_networks`) and seeds a private
        generator for every other random draw of the training.

        Parameters
        ----------
        X : tensor or array, shape (N, 1, image_size, image_size)
            Training images: floats in [0, 1], or uint8 pixel values (``k`` is ``k / 255``),
            which stay uint8 and are converted one batch at a time (the same training).
        y : int tensor or array, shape (N,), optional
            Class of each image, in [0, n_classes): required by a conditional model, ignored
            by an unconditional one (so that both take a labelled training set alike).
        rng : torch.Generator
            A CPU generator; the training seed is drawn from it.

        Returns
        -------
        ImageModel
            ``self``, fitted. Deterministic given the state of ``rng``, on one machine and
            device.
        """
        self._validate()
        images = check_images(X, "X", self.image_size)
        labels = self._check_y(y, images.shape[0])
        seed = draw_training_seed(rng)
        device = resolve_device(self.device)
        networks, histories = self._train(images, labels, seed, device)
        self._set_state(seed, device, networks, histories)
        return self

    def _check_y(self, y, n_images: int) -> torch.Tensor | None:
        """Return the checked labels of a conditional model; an unconditional one ignores ``y``."""
        return None

    def _train(
        self, images: torch.Tensor, labels: torch.Tensor | None, seed: int, device: torch.device
    ) -> tuple[tuple[torch.nn.Module, ...], tuple[list, ...]]:
        """Train from ``seed`` on checked data; return the networks and the histories."""
        raise NotImplementedError

    def _set_state(
        self,
        seed: int,
        device: torch.device,
        networks: tuple[torch.nn.Module, ...],
        histories: tuple[list, ...],
    ) -> None:
        """Set the learned state: networks (in eval mode), histories, seed and device."""
        for name, network in zip(self._networks, networks, strict=True):
            setattr(self, name, network.eval())
        for name, history in zip(self._histories, histories, strict=True):
            setattr(self, name, history)
        self.training_seed_ = seed
        self.device_ = device

    # -- sampling ------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        n: int,
        lam: float = 1.0,
        *,
        rng: torch.Generator,
        labels=None,
        batch_size: int | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` images with sampling bias ``lam``.

        Parameters
        ----------
        n : int
            Number of images.
        lam : float in (0, 1], default 1.0
            Sampling bias: 1 = plain sampling, smaller = higher typical quality and less
            diversity (the class docstring says how the model applies it).
        rng : torch.Generator
            The only source of randomness of the draw.
        labels : int tensor, shape (n,), optional
            Class of each image, for a conditional model (``n`` must equal ``len(labels)``;
            None: the model draws balanced labels from ``rng`` first). An unconditional model
            refuses labels.
        batch_size : int, optional
            Images generated at once; by default the model's ``_sample_batch_size``.

        Returns
        -------
        torch.Tensor, shape (n, 1, image_size, image_size), float32 in [0, 1], on the CPU.
        """
        self._check_is_fitted()
        n = check_positive_int(n, "n")
        lam = check_lam(lam)
        if batch_size is None:
            batch_size = self._sample_batch_size
        batch_size = check_positive_int(batch_size, "batch_size")
        check_generator(rng)
        labels = self._sampling_labels(n, labels, rng)
        return self._generate(n, lam, rng, labels, batch_size)

    def _sampling_labels(self, n: int, labels, rng: torch.Generator) -> torch.Tensor | None:
        """Labels of the ``n`` images to draw: an unconditional model refuses any."""
        self._check_no_labels(labels)
        return None

    def _generate(
        self,
        n: int,
        lam: float,
        rng: torch.Generator,
        labels: torch.Tensor | None,
        batch_size: int,
    ) -> torch.Tensor:
        """Draw ``n`` images from checked arguments (inside ``torch.no_grad``)."""
        raise NotImplementedError

    # -- saving --------------------------------------------------------------------------------

    @staticmethod
    def _key(name: str) -> str:
        return name.rstrip("_")

    def state_dict(self) -> dict:
        """Return settings, weights, histories and training seed of the fitted model.

        Returns
        -------
        dict
            ``"params"`` (:meth:`get_params`), ``"training_seed"``, one entry per network (its
            ``state_dict``, CPU tensors) and one per history, each named as the attribute
            without its trailing underscore.
        """
        self._check_is_fitted()
        state = {"params": self.get_params(), "training_seed": self.training_seed_}
        for name in self._networks:
            weights = getattr(self, name).state_dict()
            state[self._key(name)] = {k: v.detach().cpu().clone() for k, v in weights.items()}
        for name in self._histories:
            state[self._key(name)] = list(getattr(self, name))
        return state

    def load_state_dict(self, state: dict) -> ImageModel:
        """Restore weights, histories and training seed saved by :meth:`state_dict`.

        The settings of ``self`` are kept (``state["params"]`` is not read, except for the
        training seed of files written before it was saved on its own).

        Parameters
        ----------
        state : dict
            As :meth:`state_dict` returns it.

        Returns
        -------
        ImageModel
            ``self``, fitted, on the device of its settings.
        """
        seed = state.get("training_seed", state.get("params", {}).get("seed"))
        missing = {self._key(name) for name in (*self._networks, *self._histories)} - set(state)
        if seed is None:
            missing.add("training_seed")
        if missing:
            raise ValueError(f"state is missing the entries {sorted(missing)}")
        self._validate()
        device = resolve_device(self.device)
        networks = self._initial_networks()
        for network, name in zip(networks, self._networks, strict=True):
            network.load_state_dict(state[self._key(name)])
        histories = tuple(list(state[self._key(name)]) for name in self._histories)
        self._set_state(int(seed), device, tuple(n.to(device) for n in networks), histories)
        return self

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` atomically (``torch.save`` of :meth:`state_dict`).

        Parameters
        ----------
        path : str or Path
            The file; missing parent folders are created.

        Returns
        -------
        Path
        """
        from madutils.files import atomic_write

        path = Path(path)
        state = self.state_dict()
        atomic_write(path, lambda tmp: torch.save(state, tmp))
        return path

    @classmethod
    def load(cls, path: str | Path, **overrides) -> ImageModel:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
        **overrides
            Settings that replace the saved ones (``device``, ``progress``, ...).

        Returns
        -------
        ImageModel
            The fitted model. Files of older versions load too: their ``seed`` setting becomes
            ``training_seed_`` and renamed settings get their current names.
        """
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        params = {cls._renamed_params.get(k, k): v for k, v in state["params"].items()}
        params.pop("seed", None)
        return cls(**{**params, **overrides}).load_state_dict(state)
