#!/bin/bash
# Submit a shape search to Slurm: the gRPC storage proxy, the workers (one GPU each, starting
# once the proxy job runs), and a small job that cancels the proxy once every worker has ended.
#   bash examples/cluster/submit_slurm.sh                  # 16 workers through the proxy
#   OSH_WORKERS=64 bash examples/cluster/submit_slurm.sh   # 64
#   OSH_NO_PROXY=1 bash examples/cluster/submit_slurm.sh   # workers straight to PostgreSQL
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
n="${OSH_WORKERS:-16}"
if [ -n "${OSH_NO_PROXY:-}" ]; then
  sbatch --array="0-$((n - 1))" "$here/slurm_workers.sbatch"
  exit 0
fi
proxy="$(sbatch --parsable "$here/slurm_proxy.sbatch")"
proxy="${proxy%%;*}"
workers="$(sbatch --parsable --array="0-$((n - 1))" --dependency="after:$proxy" \
    --export="ALL,OSH_PROXY_JOB=$proxy" "$here/slurm_workers.sbatch")"
workers="${workers%%;*}"
sbatch --job-name=osh-proxy-stop --time=00:05:00 --dependency="afterany:$workers" \
    --wrap="scancel $proxy" > /dev/null
echo "proxy: job $proxy; workers: array $workers ($n tasks)"
echo "more workers later: sbatch --array=0-7 --export=ALL,OSH_PROXY_JOB=$proxy $here/slurm_workers.sbatch"
