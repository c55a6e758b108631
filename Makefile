# Every target sets up .venv itself, so a fresh clone needs nothing but Python 3.10+.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast browser-deps bench lint venv clean mutate

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# The image's pip 23.2.1 crashes on some package metadata: upgrade first.
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 is a local CPU wheel here; any other spec pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/riskfm demo --out runs/demo

# `make test` runs every test and never installs system packages: the report's browser test skips
# (naming `make browser-deps`) where Chromium is absent. `make test-fast` leaves out the tests
# marked slow (end-to-end training runs, the browser, multi-process); docs/testing.md.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

# Chromium for tests/evaluate/test_pipeline.py::test_report_figures_render_in_headless_chromium.
# A system package: needs root and network, so it is a separate, explicit step, never part of `test`.
browser-deps:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "Chromium is already installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && apt-get install -y --no-install-recommends chromium; \
	else \
		echo "install Chromium with the system's package manager as root, e.g. 'sudo apt-get install chromium'" >&2; \
		exit 1; \
	fi

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# Mutation testing (docs/testing.md "Mutation testing"), never part of `test`: mutmut mutates the
# modules in MUTATE_PATHS (each must be listed in [tool.mutmut] only_mutate in pyproject.toml, with
# its tests in pytest_add_cli_args_test_selection), runs their tests against every mutant, and
# writes one report per module to benchmarks/results/mutation_<module>.txt: counts, then every
# mutant not killed (`mutmut show <name>` prints its diff). mutants/ is mutmut's scratch copy.
MUTATE_PATHS ?= riskfm/ecg/leads.py riskfm/data/splits.py riskfm/models/heads.py riskfm/evaluate riskfm/ct/calcium/scoring.py
MUTMUT_STAMP := $(VENV)/.installed-mutation

$(MUTMUT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	touch $(MUTMUT_STAMP)

mutate: $(MUTMUT_STAMP)
	rm -rf mutants
	set -e; patterns=; \
	for p in $(MUTATE_PATHS); do \
		m=$$(echo "$$p" | sed 's#/*$$##; s#\.py$$##; s#/#.#g'); patterns="$$patterns $$m.*"; \
	done; \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/mutmut run $$patterns
	$(BIN)/mutmut results --all true > mutants/results.txt
	set -e; for p in $(MUTATE_PATHS); do \
		m=$$(echo "$$p" | sed 's#/*$$##; s#\.py$$##; s#/#.#g'); \
		out=benchmarks/results/mutation_$$(echo "$${m#riskfm.}" | tr . _).txt; \
		{ echo "# mutmut 3.8.1 over $$p (make mutate); docs/testing.md explains every survivor"; \
		  echo "# counts by status:"; \
		  grep -F "    $$m." mutants/results.txt | sed 's/.*: //' | sort | uniq -c | sed 's/^/#/'; \
		  echo "# mutants not killed:"; \
		  grep -F "    $$m." mutants/results.txt | grep -v ': killed$$' | sed 's/^ *//' || true; \
		} > $$out; \
		echo "wrote $$out"; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache mutants
