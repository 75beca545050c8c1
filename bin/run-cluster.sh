#!/usr/bin/env bash
# Train on a local cluster: W worker processes on 127.0.0.1, all-reducing gradients.
#
#   bin/run-cluster.sh [W[:G]] -- <DeepSpeech.py args>
#
# W workers (default 2), each seeing G GPUs through CUDA_VISIBLE_DEVICES (default 0:
# CPU only; worker i gets GPUs i*G .. i*G+G-1). The workers get free loopback ports and
# run `DeepSpeech.py --worker_hosts ... --task_index i <args>`; worker 0 is the chief
# and alone writes checkpoints, summaries, exports and test reports. Each line of
# output is prefixed "[worker i]" and also kept in $LOG_DIR/worker-i.log (default: a
# new temporary dir, printed at the end). The script returns the first non-zero exit
# status of a worker and then stops the others; Ctrl-C stops them all. --train_batch_size
# stays per replica: a step trains on W x G (or W) x train_batch_size utterances.
#
# Several hosts: run one command per host, with the same --worker_hosts everywhere
# and each host's own --task_index (the chief is task 0), e.g. on host B of two:
#
#   python DeepSpeech.py --worker_hosts hostA:2222,hostB:2222 --task_index 1 \
#       --checkpoint_dir /shared/ckpt ...
#
# The ports must be reachable between the hosts, and --checkpoint_dir must name the
# same shared directory on every host: all workers resume from the chief's
# checkpoints (see doc/DISTRIBUTED.rst).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: $0 [W[:G]] -- <DeepSpeech.py args>" >&2
  exit 2
}

spec=2:0
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  spec=$1
  shift
fi
[ $# -gt 0 ] && [ "$1" = "--" ] || usage
shift
[[ $spec =~ ^([0-9]+)(:([0-9]+))?$ ]] || usage
n_workers=${BASH_REMATCH[1]}
n_gpus=${BASH_REMATCH[3]:-0}
[ "$n_workers" -ge 1 ] || usage

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3
LOG_DIR=${LOG_DIR:-$(mktemp -d -t deepspeech-cluster-XXXXXX)}
mkdir -p "$LOG_DIR"

# Free ports: bind them all at once (so they differ), then release them for the workers.
ports=$("$PY" - "$n_workers" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(",".join(f"127.0.0.1:{s.getsockname()[1]}" for s in socks))
EOF
)

pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap 'echo "run-cluster: interrupted, stopping the workers" >&2; stop_all; exit 130' INT TERM

for ((i = 0; i < n_workers; i++)); do
  gpus=""
  for ((g = i * n_gpus; g < (i + 1) * n_gpus; g++)); do gpus+="${gpus:+,}$g"; done
  CUDA_VISIBLE_DEVICES=$gpus "$PY" -u DeepSpeech.py \
    --worker_hosts "$ports" --task_index "$i" "$@" \
    > >(sed -u "s/^/[worker $i] /" | tee "$LOG_DIR/worker-$i.log") 2>&1 &
  pids+=($!)
done
echo "run-cluster: $n_workers workers on $ports (GPUs each: $n_gpus), logs in $LOG_DIR" >&2

# Poll rather than `wait -n`: the first failure must stop the rest at once.
status=0
running=$n_workers
declare -A exited=()
while [ "$running" -gt 0 ]; do
  for ((i = 0; i < n_workers; i++)); do
    pid=${pids[$i]}
    if [ -n "${exited[$i]:-}" ] || kill -0 "$pid" 2>/dev/null; then continue; fi
    rc=0
    wait "$pid" || rc=$?
    exited[$i]=$rc
    running=$((running - 1))
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
      status=$rc
      echo "run-cluster: worker $i exited with status $rc, stopping the others" >&2
      stop_all
    fi
  done
  if [ "$running" -gt 0 ]; then sleep 0.5; fi
done
wait  # the log prefixers
echo "run-cluster: done (exit $status), logs in $LOG_DIR" >&2
exit "$status"
