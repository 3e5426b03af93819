# The two commands of README.md, and a few more for operators.
.PHONY: up test check down status bench soak faults fuzz
up:      ## PostgreSQL + Kafka + migrations + API + worker, in the background
	@bash scripts/stack.sh up
test:    ## the whole test suite (brings up what it needs)
	@bash scripts/test.sh
check:   ## typecheck (tsc --noEmit) and lint + format check (Biome); no servers needed
	@bash scripts/check.sh
down:
	@bash scripts/stack.sh down
status:
	@bash scripts/stack.sh status
bench:
	@bash bench/run.sh
soak:
	@bash bench/run.sh soak
faults:  ## fault and hostile-input tests only
	@SKIP_FUZZ=1 bash scripts/test.sh test/integration/faults.test.ts test/integration/hostile.test.ts
fuzz:    ## schemathesis against the OpenAPI document
	@bash scripts/fuzz.sh
