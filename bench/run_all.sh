#!/usr/bin/env bash
# Runs every benchmark and prints its figures (docs/benchmarks.md records a run).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== update handling (bench/bench_updates.py) =="; python bench/bench_updates.py --mode both
echo; echo "== update handling, each bot its own process =="; python bench/bench_updates.py --mode realistic --people 10 50 --delivery webhook polling --bot-process
echo; echo "== CPU per typed answer (bench/bench_cpu.py) =="; python bench/bench_cpu.py --before none
echo; echo "== CPU per Bot API call, aiohttp vs httpx (bench/bench_request.py) =="; python bench/bench_request.py
echo; echo "== outbound fan-out (bench/bench_fanout.py) =="; python bench/bench_fanout.py --messages 1000
python bench/bench_fanout.py --messages 1000 --stall 0.3 --stall-every 3 --replies 20
echo; echo "== documents (bench/bench_documents.py) =="; python bench/bench_documents.py --builders && python bench/bench_documents.py
echo; echo "== deadline sweep (bench/bench_sweep.py) =="; python bench/bench_sweep.py
echo; echo "== idle memory and CPU (bench/bench_idle_memory.py) =="; python bench/bench_idle_memory.py --people 2000
echo; echo "== set-up import (bench/bench_setup_import.py) =="; python bench/bench_setup_import.py --indicators 5000
echo; echo "== dead buttons after the demo cycle (bench/dead_buttons.py) =="; python bench/dead_buttons.py
echo; echo "== messages per role in the demo cycle (bench/messages_per_role.py) =="; python bench/messages_per_role.py
# a regency on PostgreSQL (needs a server; scratch databases pemda_bench*, dropped after)
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo; echo "== a regency, 40 offices x 60 people, 1/2/4 processes (bench/bench_pemda.py) =="; python bench/bench_pemda.py
else
    echo; echo "== bench/bench_pemda.py skipped: no PostgreSQL at 127.0.0.1:5432 =="
fi
