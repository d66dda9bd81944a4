# Vouch: `make run` serves the app, `make test` runs the whole suite.
# Both build the virtual environment from the hashed lock files first. `make attack` runs the
# attack suite (docs/security/attack-suite.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PYTHONDONTWRITEBYTECODE := 1
# Two test processes (pytest-xdist): the suite is built to run in parallel, each process
# with its own data directory, PostgreSQL databases and Redis key prefix.
PYTEST_ARGS ?= -n 2 --durations=30
# axe-core for the browser tests' accessibility check (tools/axe; see its rule below).
AXE := tools/axe/node_modules/axe-core/axe.min.js
# Type checking (settings in pyproject.toml). Django's mypy plugin imports the settings and
# sets Django up, so it gets a data directory and key of its own: nothing is written to ./var.
MYPY := VOUCH_MODE=development VOUCH_DATA_DIR=$(abspath $(VENV))/mypy-data VOUCH_SECRET_KEY=type-check $(BIN)/mypy

.PHONY: run test test-fast bench attack lint docs lock setup clean pdf-libs chromium wrk pgbackrest nginx attack-tools

run: $(VENV)/.base pdf-libs
	$(BIN)/vouch serve

setup: $(VENV)/.base
	$(BIN)/vouch setup

test: $(VENV)/.dev chromium pdf-libs pgbackrest nginx $(AXE)
	$(BIN)/ruff check src tests bench attack
	$(BIN)/ruff format --check src tests bench attack
	$(BIN)/lint-imports
	$(MYPY)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev wrk pdf-libs
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The attack suite against a real server: wapiti, sqlmap, sslyze (in a venv of its own, from
# requirements/attack.txt), the header checks, the fuzzer (tests/attack/, with more examples
# than `make test` gives it), pip-audit and the SBOM. Reports in build/attack/.
ATTACK_VENV := .venv-attack
VOUCH_ATTACK_EXAMPLES ?= 25
attack: $(VENV)/.dev $(ATTACK_VENV)/.ready attack-tools pdf-libs
	VOUCH_ATTACK_EXAMPLES=$(VOUCH_ATTACK_EXAMPLES) $(BIN)/python -m attack.run $(ATTACK_ARGS)

$(ATTACK_VENV)/.ready: requirements/attack.txt
	$(PYTHON) -m venv $(ATTACK_VENV)
	$(ATTACK_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(ATTACK_VENV)/bin/pip install -q --require-hashes --no-deps -r requirements/attack.txt
	touch $@

# The injection scanners are Debian's.
attack-tools:
	@{ command -v wapiti && command -v sqlmap; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wapiti sqlmap >/dev/null; \
	  else echo "make attack needs wapiti and sqlmap: sudo apt-get install -y wapiti sqlmap" >&2; exit 1; fi; }

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench attack
	$(BIN)/ruff format --check src tests bench attack
	$(BIN)/lint-imports
	$(MYPY)

# Pages generated from the code: the `vouch` command's reference (tests/web/test_cli_reference.py
# fails when it is out of date).
docs: $(VENV)/.base
	$(BIN)/python -m vouch.cli.reference > docs/operations/cli.md.tmp
	mv docs/operations/cli.md.tmp docs/operations/cli.md

# Re-pin the lock files (needs PyPI). Hashes make `pip install` refuse anything else.
lock: $(VENV)/.dev
	$(BIN)/pip install -q pip-tools
	cd requirements && env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null ../$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links -o base.txt base.in
	cd requirements && env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null ../$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links -o dev.txt dev.in
	cd requirements && env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null ../$(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links -o attack.txt attack.in

$(VENV)/.python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Vouch needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	touch $@

# The project itself is put on the path with a .pth file and a small launcher, so
# nothing outside the hashed lock files is fetched (no build backend download).
$(VENV)/.base: $(VENV)/.python requirements/base.txt
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements/base.txt
	$(BIN)/python -c 'import site, pathlib; pathlib.Path(site.getsitepackages()[0], "vouch-src.pth").write_text(str(pathlib.Path("src").resolve()) + "\n")'
	printf '#!%s\nfrom vouch.cli import main\n\nif __name__ == "__main__":\n    raise SystemExit(main())\n' "$(abspath $(BIN))/python" > $(BIN)/vouch
	chmod +x $(BIN)/vouch
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements/dev.txt
	touch $@

# Browser tests drive Debian's chromium; Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need chromium: sudo apt-get install -y chromium" >&2; exit 1; fi; }

# The browser tests check every page they load with axe-core (WCAG 2.1 A and AA;
# docs/development/accessibility.md). It comes from the npm registry, pinned with its integrity
# hash in tools/axe/package-lock.json: `npm ci` installs exactly that file or fails.
$(AXE): tools/axe/package.json tools/axe/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq npm >/dev/null; \
	  else echo "The browser tests' accessibility check needs npm: sudo apt-get install -y npm" >&2; exit 1; fi; }
	cd tools/axe && npm ci --ignore-scripts --no-audit --no-fund --silent
	touch $@

# Report PDFs are drawn by WeasyPrint, which needs Pango and fonts from the system: DejaVu
# for Latin, Greek and Cyrillic, WenQuanYi Micro Hei for Chinese, Japanese and Korean names
# (without it they are drawn as empty boxes, in the PDF and in the browser tests' screenshots).
pdf-libs:
	@{ ldconfig -p | grep -q 'libpango-1.0.so' && ldconfig -p | grep -q 'libpangoft2-1.0.so' && fc-list | grep -q . && fc-list :lang=ja | grep -q .; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core fonts-wqy-microhei >/dev/null; \
	  else echo "Report PDFs need Pango and fonts: sudo apt-get install -y libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core fonts-wqy-microhei" >&2; exit 1; fi; }

# The PostgreSQL mirroring tests archive WAL with pgBackRest into the test S3 server
# (tests/backups/test_replication.py; docs/postgresql.md).
pgbackrest:
	@command -v pgbackrest >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq pgbackrest >/dev/null; \
	  else echo "The PostgreSQL archiving tests need pgBackRest: sudo apt-get install -y pgbackrest" >&2; exit 1; fi; }

# tests/shield/test_limits_nginx.py runs docs/security/nginx-vouch.conf in a real nginx in
# front of a real Vouch (only the binary is needed: the test starts its own nginx).
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nginx >/dev/null; \
	  else echo "The reverse proxy tests need nginx: sudo apt-get install -y nginx" >&2; exit 1; fi; }

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
	  else echo "make bench needs wrk: sudo apt-get install -y wrk" >&2; exit 1; fi; }

clean:
	rm -rf $(VENV) $(ATTACK_VENV) tools/axe/node_modules build/attack .pytest_cache .ruff_cache .mypy_cache
