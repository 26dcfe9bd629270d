"""Well-known label keys shared by the operator, the local fleet and the samples.

Node labels follow NVIDIA GPU Feature Discovery, so modules built on real GPU nodes need no
relabelling; the module label ties a node (or a whole member cluster's nodes) to its module.
"""

from __future__ import annotations

#: Node label naming the AIFactoryModule a node belongs to.
MODULE_LABEL = "aifactory.dev/module"
#: Node label carrying the GPU model (NVIDIA GPU Feature Discovery's key), e.g. "H100".
GPU_MODEL_LABEL = "nvidia.com/gpu.product"
#: Node label with one GPU's memory in MiB (GPU Feature Discovery's key).
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
#: Extended resource name of NVIDIA GPUs.
GPU_RESOURCE = "nvidia.com/gpu"

#: Module annotation set by `aifactoryctl drain`: move every replica off the module.
DRAIN_ANNOTATION = "aifactory.dev/drain"
