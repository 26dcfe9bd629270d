"""Developer tooling: the local fleet of real Kubernetes control planes and its binaries."""
