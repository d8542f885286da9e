"""MoCo's queue of negatives, holding key pixel features and the id of the image each came from.

Each step the trainer enqueues, for every image of the global batch, the keys of its first
`queue_keys_per_image` matched pixels. The matched pixels are drawn uniformly from the views'
overlap, so these are a uniform random subsample of the image's keys, and they are the keys
already computed for the loss (no extra sampling of the key map). Keys enter after the loss, as in
MoCo, so a batch is never its own negative set. The queue starts, as MoCo's does, with random unit
vectors whose id is -1 (no image); they are replaced as real keys arrive.
"""

import torch
import torch.nn.functional as F

EMPTY_ID = -1


class KeyQueue:
    """A fixed-size ring buffer of (key, image id) with wrap-around.

    Args:
        size: number of keys held (K).
        dim: feature dimension (C).
        seed: seed of the random initial keys, so every process starts with the same queue.
        device: where the queue lives.

    Raises:
        ValueError: for a non-positive size or dimension.
    """

    def __init__(self, size: int, dim: int, seed: int = 0, device: torch.device | str = "cpu") -> None:
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be positive, got size={size}, dim={dim}")
        generator = torch.Generator().manual_seed(seed)
        self.keys = F.normalize(torch.randn(size, dim, generator=generator), dim=1).to(device)  # (K, C)
        self.ids = torch.full((size,), EMPTY_ID, dtype=torch.long, device=device)  # (K,)
        self.pointer = 0

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, ids: torch.Tensor) -> None:
        """Write `keys` (M, C) with their image `ids` (M,) over the oldest entries, wrapping around.

        More keys than the queue holds leave only the last `size` of them, exactly as writing them
        one by one would.

        Raises:
            ValueError: for mismatched shapes.
        """
        if keys.dim() != 2 or keys.shape[1] != self.keys.shape[1] or ids.shape != keys.shape[:1]:
            raise ValueError(f"enqueue expects keys (M, {self.keys.shape[1]}) and ids (M,), "
                             f"got {tuple(keys.shape)} and {tuple(ids.shape)}")
        count = keys.shape[0]
        if count > self.size:
            self.pointer = (self.pointer + count - self.size) % self.size
            keys, ids = keys[-self.size:], ids[-self.size:]
            count = self.size
        slots = (self.pointer + torch.arange(count, device=self.keys.device)) % self.size  # (M,)
        self.keys.index_copy_(0, slots, keys.to(self.keys.dtype))
        self.ids.index_copy_(0, slots, ids.to(self.ids.device))
        self.pointer = (self.pointer + count) % self.size

    def state_dict(self) -> dict[str, object]:
        """The queue's checkpoint entry: `keys` (K, C) and `ids` (K,) as CPU tensors, `pointer` an int."""
        return {"keys": self.keys.cpu(), "ids": self.ids.cpu(), "pointer": self.pointer}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore from `state_dict()` output.

        Raises:
            ValueError: if the saved queue has another size or dimension.
        """
        keys, ids, pointer = state["keys"], state["ids"], int(state["pointer"])
        if keys.shape != self.keys.shape or ids.shape != self.ids.shape or not 0 <= pointer < self.size:
            raise ValueError(f"checkpoint queue {tuple(keys.shape)} (pointer {pointer}) does not fit this "
                             f"run's queue {tuple(self.keys.shape)}; queue_size must match the checkpoint")
        self.keys.copy_(keys)
        self.ids.copy_(ids)
        self.pointer = pointer
