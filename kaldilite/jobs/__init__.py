"""Job backends beyond this machine, and the `--cmd` / `--resume` options of the parallel verbs.

`kaldilite.parallel` is the seam every `--nj` step goes through (`run_jobs`, the local process
pool, job logs and records, --resume). This package adds:

- `kaldilite.jobs.slurm`: `SlurmJobRunner`, one `sbatch --array` submission per step (Kaldi's
  `utils/parallel/slurm.pl`);
- `kaldilite.jobs.worker`: what a compute node runs for one array task
  (`python -m kaldilite.jobs.worker QDIR/STEP K`);
- `kaldilite.jobs.cli`: `job_options`, the click decorator that gives a verb `--cmd` and `--resume`.
"""
