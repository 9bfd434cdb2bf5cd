# Where the parallel jobs of this recipe run (every --nj step: make-mfcc, train-mono, align, decode).
# Sourced by run.sh; the kaldilite verbs read KALDILITE_CMD (a verb's own --cmd option wins); a
# KALDILITE_CMD already set in the environment wins over the default below.
#
#   local                      this machine, --nj jobs at a time (Kaldi's run.pl)
#   local --max-jobs-run 2     ... but never more than 2 at once
#   slurm --mem 2G --time 1:00:00 --partition cpu
#                              one `sbatch --array=1-N` per step on a Slurm cluster (Kaldi's slurm.pl);
#                              the repository and the experiment dir must be on a filesystem the
#                              compute nodes share. --cpus-per-task, --max-jobs-run N and any other
#                              sbatch option (--account=..., --qos ...) are passed on.
#
# A step that failed can be re-run with only its failed jobs: KALDILITE_RESUME=true ./run.sh --stage N
export KALDILITE_CMD="${KALDILITE_CMD:-local}"   # e.g. "slurm --mem 2G --time 1:00:00 --partition cpu"
