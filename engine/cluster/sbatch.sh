#!/bin/sh
# Slurm's sbatch, looked up on PATH when `deno task experiment FILE --slurm` submits.
# The `run` permission set in deno.json names this file instead of `sbatch`: Deno resolves a
# program name on PATH when it starts and prints a line on every command where that fails, which
# is every machine without Slurm. This file is always there; sbatch is needed only when used.
# Exit 127 with the line below when sbatch is not on PATH (engine/cluster/slurm.ts says why).
if ! command -v sbatch >/dev/null 2>&1; then
  echo "sbatch: not found on PATH" >&2
  exit 127
fi
exec sbatch "$@"
