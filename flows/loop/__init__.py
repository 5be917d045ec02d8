"""The loop's engine: the stages composed once, without Prefect (see docs/architecture.md)."""
