# xenlab: two commands on a fresh Debian machine.
#   make lab    set up .venv and open JupyterLab on the labs (LANG=es or LANG=pt: Spanish,
#               Portuguese)
#   make test   set up .venv and run every test (pytest, then the notebooks with nbval)
#   make bench  speed figures (see BENCHMARKS.md)
#   make fuzz   guest-level fuzzers and the hypothesis fuzz suites with fresh seeds for
#               FUZZ_TIME seconds (default 300); prints every seed and how to rerun it
#   make images rebuild the guest images from their sources (needs gcc, as, ld, libxen-dev)
#   make real-guests  fetch Debian's Linux kernel and busybox-static with apt-get download
#               (no root) into ~/.cache/xenlab/real-guests and build their initramfs
#   make notebooks  write the chapters' text sources (labs/*/*.md) into their notebooks
#               and re-run them to store their outputs
#   make editions   the instructor edition (labs/) and the student edition (labs-student/)
#   make site   the course website in English, Spanish and Portuguese (build/site/)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stamp-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: lab test bench fuzz images lint clean notebooks editions real-guests site

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[lab,test,dev,grading,site]'
	rm -f $(VENV)/.stamp-*; touch $(STAMP)

# the student edition by default; instructors: make lab EDITION=labs (with the solutions)
EDITION ?= labs-student
# the language: make lab LANG=es (or pt); a Spanish or Portuguese locale (LANG=es_ES.UTF-8)
# opens that edition too, anything else English. LAB_LANG=en overrides the locale.
LAB_LANG ?= $(firstword $(filter es pt,$(subst _, ,$(subst ., ,$(LANG)))))
START := 00-start-here/00-start-here$(if $(filter es pt,$(LAB_LANG)),.$(LAB_LANG)).ipynb
# JupyterLab refuses to start as root (a container, a VM, a Binder-like image) unless told
# --allow-root; as a user it needs nothing. LAB_ARGS adds options (LAB_ARGS=--no-browser).
LAB_UID ?= $(shell id -u)
LAB_ARGS ?=
lab: $(STAMP)
	cd $(EDITION) && ../$(VENV)/bin/jupyter lab --ServerApp.root_dir=. \
	  $(if $(filter 0,$(LAB_UID)),--allow-root) $(LAB_ARGS) $(START)

# TEST_JOBS pytest-xdist workers (one per core here; --dist loadfile keeps each test file,
# and each notebook, on one worker, in order). TEST_JOBS=0 runs everything in this process.
TEST_JOBS ?= 2
XDIST := $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)
test: $(STAMP)
	$(PY) -m pytest -q $(XDIST)
	@if ls labs/*/*.ipynb >/dev/null 2>&1; then \
	  $(PY) -m pytest -q $(XDIST) --nbval --nbval-current-env labs/ labs-student/ \
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

# Write each chapter's text source (labs/NN/NN.md, .es.md, .pt.md) into its notebook and
# re-run it to store its outputs (what nbval compares against); make editions does the
# student edition too.
notebooks: $(STAMP)
	$(PY) labs/_build/editions.py --instructor-only

# The course website, three languages, from the stored student notebooks: build/site/
site: $(STAMP)
	$(PY) tools/build_site.py

lint: $(STAMP)
	$(VENV)/bin/ruff check xenlab tests

clean:
	rm -rf $(VENV) build *.egg-info
