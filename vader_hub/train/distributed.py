"""Process-group setup from torchrun's environment, and the few collectives the trainer needs.

    torchrun --nproc_per_node 2 -m vader_hub.train --preset smoke --data photos/   # 2 processes
    python -m vader_hub.train --preset smoke --data photos/                        # 1 process

Setup reads only torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT);
without them, or with WORLD_SIZE=1, everything runs as one process and every helper here is the
identity. gloo on CPU, NCCL on CUDA. Batches are laid out interleaved: global position p of a
batch lives on rank p mod W at local position p // W (what DistributedSampler's rank::W slicing
gives), and `gather_interleaved` rebuilds the global order from the local parts.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the run.

    Attributes:
        rank: global rank (0 in a single process).
        world_size: number of processes.
        local_rank: rank on this node, which picks the CUDA device.
        device: the device this process computes on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files (rank 0)."""
        return self.rank == 0


def has_process_group() -> bool:
    """True when this process has joined a process group (of any size)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """The number of processes that take part in the collectives here (1 without a process group)."""
    return dist.get_world_size() if has_process_group() else 1


def is_distributed() -> bool:
    """True when a process group with more than one process is initialised."""
    return world_size() > 1


def is_main_process() -> bool:
    """True on the process that prints and writes files: rank 0 of the process group.

    Without a process group (one process, or after `teardown_distributed`), torchrun's RANK says it,
    so the processes of a torchrun launch still agree on which one reports.
    """
    rank = dist.get_rank() if has_process_group() else int(os.environ.get("RANK", "0"))
    return rank == 0


def setup_distributed(device: str | None = None) -> DistributedContext:
    """Join the process group torchrun describes, or run as one process.

    Args:
        device: "cpu", "cuda" or None (CUDA when available).

    Returns:
        The `DistributedContext`.

    Raises:
        ValueError: for an unknown device or "cuda" without a CUDA device.
    """
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or None, got {device!r}")
    use_cuda = torch.cuda.is_available() if device is None else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA device is available")
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    compute = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(compute)
    if processes > 1 and not has_process_group():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo",
                                device_id=compute if use_cuda else None)
    return DistributedContext(rank=rank, world_size=processes, local_rank=local_rank, device=compute)


def teardown_distributed() -> None:
    """Leave the process group, if one was joined."""
    if has_process_group():
        dist.destroy_process_group()


def gather_interleaved(local: torch.Tensor) -> torch.Tensor:
    """The global batch, in global order, from each process's interleaved part.

    Args:
        local: (B_local, ...) this process's part; every process passes the same shape.

    Returns:
        (B_local * W, ...) with global position p = l * W + r holding rank r's local item l.
    """
    if not is_distributed():
        return local
    parts = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(parts, local.contiguous())
    return torch.stack(parts, dim=1).flatten(0, 1)  # (B_local, W, ...) -> (B_local * W, ...)


def local_part(global_batch: torch.Tensor) -> torch.Tensor:
    """This process's interleaved part of a global batch (positions rank, rank + W, ...)."""
    if not is_distributed():
        return global_batch
    return global_batch[dist.get_rank()::world_size()]


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum of `values` over all processes (returns a new tensor; identity in one process)."""
    if not is_distributed():
        return values
    total = values.clone()
    dist.all_reduce(total)
    return total


def barrier() -> None:
    """Wait for every process (no-op in one process)."""
    if is_distributed():
        dist.barrier()
