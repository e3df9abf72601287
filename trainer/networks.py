"""The three networks of one BLS-GAN model, trained together and exported as one checkpoint.

Checkpoint layout (kind ``"blsgan"``, :mod:`blsgan_core.checkpoint`)::

    config = {"generator": GeneratorConfig.to_dict(),
              "supervisor": SupervisorConfig.to_dict(),
              "reconstructor": ReconstructorConfig.to_dict(),
              "correction": bool,            # False: the no-correction ablation, k = 1
              "layers": ["upper", "lower"],  # order of the layer channels and masks
              "image_size": 256}             # the joint crops it was made for
    state = {"generator": ..., "supervisor": ..., "reconstructor": ...}

The supervisor is not needed for inference; it is kept so that fine-tuning from a
promoted model continues against a trained supervisor instead of a random one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from blsgan_core.checkpoint import Checkpoint
from blsgan_core.networks.generator import Generator, GeneratorConfig
from blsgan_core.networks.reconstructor import Reconstructor, ReconstructorConfig
from blsgan_core.networks.supervisor import Supervisor, SupervisorConfig
from blsgan_core.reconstruction import reconstruct

KIND = "blsgan"
LAYER_NAMES = ("upper", "lower")
IMAGE_SIZE = 256


@dataclass(frozen=True)
class Separation:
    """What a separator returns for a batch: layers ``(B, 2, H, W)``, ``k`` ``(B,)``, ``R``."""

    layers: torch.Tensor
    k: torch.Tensor
    reconstruction: torch.Tensor


class BLSGANNetworks(nn.Module):
    """Generator G, supervisor D and reconstructor R of one model, with Eq. 1 on top."""

    def __init__(
        self,
        generator: GeneratorConfig,
        supervisor: SupervisorConfig,
        reconstructor: ReconstructorConfig,
        *,
        correction: bool = True,
    ) -> None:
        super().__init__()
        if generator.n_layers != supervisor.n_layers:
            raise ValueError(
                f"generator has {generator.n_layers} layers but the supervisor judges "
                f"{supervisor.n_layers}"
            )
        self.correction = correction
        self.generator = Generator(generator)
        self.supervisor = Supervisor(supervisor)
        self.reconstructor = Reconstructor(reconstructor)

    def transmittance(self, images: torch.Tensor) -> torch.Tensor:
        """``k`` per image: the reconstructor's, or 1 in the no-correction ablation."""
        if self.correction:
            return self.reconstructor(images)
        return torch.ones(images.shape[0], dtype=images.dtype, device=images.device)

    def separate(self, images: torch.Tensor, masks: torch.Tensor) -> Separation:
        """Layers, ``k`` and the Eq. 1 reconstruction of ``images`` with their ``masks``."""
        layers = self.generator(images, masks)
        k = self.transmittance(images)
        return Separation(layers, k, reconstruct(layers, masks, k))

    def checkpoint_config(self) -> dict[str, Any]:
        """The ``config`` of this model's checkpoint (see the module docstring)."""
        return {
            "generator": self.generator.config.to_dict(),
            "supervisor": self.supervisor.config.to_dict(),
            "reconstructor": self.reconstructor.config.to_dict(),
            "correction": self.correction,
            "layers": list(LAYER_NAMES),
            "image_size": IMAGE_SIZE,
        }

    def network_states(self) -> dict[str, dict[str, torch.Tensor]]:
        """State dicts by network name."""
        return {
            "generator": self.generator.state_dict(),
            "supervisor": self.supervisor.state_dict(),
            "reconstructor": self.reconstructor.state_dict(),
        }

    def load_network_states(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        """Load state dicts by network name; every network must be present."""
        missing = {"generator", "supervisor", "reconstructor"} - set(state)
        if missing:
            raise ValueError(f"checkpoint state lacks network(s) {sorted(missing)}")
        self.generator.load_state_dict(state["generator"])
        self.supervisor.load_state_dict(state["supervisor"])
        self.reconstructor.load_state_dict(state["reconstructor"])

    def to_checkpoint(self, version: str, metadata: dict[str, Any]) -> Checkpoint:
        """This model as a self-describing ``"blsgan"`` checkpoint."""
        return Checkpoint(
            kind=KIND,
            version=version,
            config=self.checkpoint_config(),
            state=self.network_states(),
            metadata=metadata,
        )

    @classmethod
    def from_checkpoint_config(cls, config: dict[str, Any]) -> BLSGANNetworks:
        """Freshly initialised networks of the architecture a checkpoint describes."""
        try:
            return cls(
                GeneratorConfig(**config["generator"]),
                SupervisorConfig(**config["supervisor"]),
                ReconstructorConfig(**config["reconstructor"]),
                correction=bool(config.get("correction", True)),
            )
        except KeyError as error:
            raise ValueError(f"checkpoint config lacks {error.args[0]!r}") from error

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> BLSGANNetworks:
        """The model a ``"blsgan"`` checkpoint holds, weights loaded, on the CPU."""
        if checkpoint.kind != KIND:
            raise ValueError(f"checkpoint holds a {checkpoint.kind!r} model, not {KIND!r}")
        networks = cls.from_checkpoint_config(checkpoint.config)
        networks.load_network_states(checkpoint.state)
        return networks
