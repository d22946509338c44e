# xenlab: two commands on a fresh Debian machine.
#   make lab    set up .venv and open JupyterLab on labs/
#   make test   set up .venv and run every test (pytest, then the notebooks with nbval)
#   make bench  speed figures (see BENCHMARKS.md)
#   make fuzz   guest-level fuzzers and the hypothesis fuzz suites with fresh seeds for
#               FUZZ_TIME seconds (default 300); prints every seed and how to rerun it
#   make images rebuild the guest images from their sources (needs gcc, as, ld, libxen-dev)
#   make real-guests  fetch Debian's Linux kernel and busybox-static with apt-get download
#               (no root) into ~/.cache/xenlab/real-guests and build their initramfs
#   make notebooks  re-run the labs and store their outputs (after changing what they show)
#   make editions   the instructor edition (labs/) and the student edition (labs-student/)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stamp-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: lab test bench fuzz images lint clean notebooks editions real-guests

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[lab,test,dev,grading]'
	rm -f $(VENV)/.stamp-*; touch $(STAMP)

# the student edition by default; instructors: make lab EDITION=labs (with the solutions)
EDITION ?= labs-student
# JupyterLab refuses to start as root (a container, a VM, a Binder-like image) unless told
# --allow-root; as a user it needs nothing. LAB_ARGS adds options (LAB_ARGS=--no-browser).
LAB_UID ?= $(shell id -u)
LAB_ARGS ?=
lab: $(STAMP)
	cd $(EDITION) && ../$(VENV)/bin/jupyter lab --ServerApp.root_dir=. \
	  $(if $(filter 0,$(LAB_UID)),--allow-root) $(LAB_ARGS) 00-start-here/00-start-here.ipynb

test: $(STAMP)
	$(PY) -m pytest -q
	@if ls labs/*/*.ipynb >/dev/null 2>&1; then \
	  $(PY) -m pytest -q --nbval --nbval-current-env labs/ labs-student/ \
	    --nbval-sanitize-with labs/sanitize.cfg; fi

bench: $(STAMP)
	$(PY) -m xenlab.bench

FUZZ_TIME ?= 300
fuzz: $(STAMP)
	$(PY) -m xenlab.fuzz --time $(FUZZ_TIME)

images:
	$(MAKE) -C images

real-guests:
	$(PYTHON) tools/fetch_real_guests.py

# The two editions of the labs: labs/ (instructor: solutions, hidden tests) re-run, and
# labs-student/ (student: no answers) generated from it by nbgrader and run (INSTRUCTORS.md).
editions: $(STAMP)
	$(PY) labs/_build/editions.py

# Re-run every notebook and store its outputs (what nbval compares against).
notebooks: $(STAMP)
	for nb in labs/*/*.ipynb; do \
	  (cd $$(dirname $$nb) && $(CURDIR)/$(VENV)/bin/jupyter nbconvert --to notebook --execute \
	     --inplace $$(basename $$nb)) || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check xenlab tests

clean:
	rm -rf $(VENV) build *.egg-info
