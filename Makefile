# The two commands of README.md, and a few more for operators.
.PHONY: help up test check down status logs bench soak faults fuzz
help:    ## this list (the default: `make` alone starts nothing)
	@grep -E '^[a-z]+: *##' $(MAKEFILE_LIST) | sed 's/: *## */\t/' | expand -t 10
up:      ## PostgreSQL + Kafka + migrations + API + worker, in the background
	@bash scripts/stack.sh up
test:    ## the whole test suite (brings up what it needs)
	@bash scripts/test.sh
check:   ## typecheck (tsc --noEmit) and lint + format check (Biome); no servers needed
	@bash scripts/check.sh
down:    ## stop what `make up` started
	@bash scripts/stack.sh down
status:  ## what runs, on which port
	@bash scripts/stack.sh status
logs:    ## follow the API, worker, Kafka and Postgres logs of `make up`
	@tail -F $${PV_DATA_DIR:-.data}/logs/*.log
bench:   ## k6 benchmarks and the performance targets (bench/RESULTS.md)
	@bash bench/run.sh
soak:    ## 10 minutes at 2000 views/s: memory stays flat
	@bash bench/run.sh soak
faults:  ## fault and hostile-input tests only
	@SKIP_FUZZ=1 bash scripts/test.sh test/integration/faults-*.test.ts test/integration/hostile.test.ts
fuzz:    ## schemathesis against the OpenAPI document
	@bash scripts/fuzz.sh
