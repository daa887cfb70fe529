# Two entry points do all set-up on a fresh Debian machine (as root) and are quick when set up:
#   make demo   the end-to-end pipeline
#   make test   the test suite (what CI runs)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Debian packages: speech synthesis for the synthetic corpus (espeak-ng, flite, festival and
# three festival voices), PortAudio for sounddevice, PulseAudio for the real-microphone test
# path, libsndfile for soundfile, Chromium and its WebDriver for the `asr serve` browser-page test,
# and WordNet's usage examples (wordnet-base), everyday English for `asr train-lm --wordnet`.
APT_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
	libportaudio2 libsndfile1 pulseaudio pulseaudio-utils libasound2-plugins chromium chromium-driver wordnet-base
# torch's CPU build, installed before the project so the open `torch>=2.1` range is already met.
TORCH_PIN := torch==2.13.0
SETUP_STAMP := $(VENV)/.setup-done
# apt-get runs as root: directly when make does, else through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Where `make demo` leaves its work; the README names the exported model inside it.
DEMO_DIR ?= work/demo
# When this `make` began: the demo's time budget counts set-up too (`asr demo --started-at`).
STARTED_AT := $(shell date +%s)

# Optional voices for `asr synth --voices` (asr/synth/voices.py, EXTRA_PACKAGES): mbrola's diphone
# speakers and SVOX Pico, from Debian's contrib and non-free sections. `make extra-voices` reads
# those sections for this one install only (a temporary source list), leaving the machine's apt
# sources as they are. The mbrola voices are free for non-commercial, non-military use only.
EXTRA_VOICE_PACKAGES := mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 festvox-us1 festvox-us2 \
	festvox-us3 libttspico-utils

.PHONY: setup system-packages extra-voices demo test clean

setup: system-packages $(SETUP_STAMP)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	python3 -c "import venv, ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

extra-voices: system-packages
	@set -e; codename=$$(. /etc/os-release && echo $$VERSION_CODENAME); \
	lists=$$(mktemp -d); trap 'rm -rf "$$lists"' EXIT; mkdir -p "$$lists/parts" "$$lists/state/partial"; \
	chmod -R a+rx "$$lists"; chown _apt "$$lists/state/partial" 2>/dev/null || true; \
	printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	  "$$codename" > "$$lists/parts/extra-voices.sources"; \
	apt_options="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$$lists/parts -o Dir::State::Lists=$$lists/state"; \
	$(SUDO) apt-get $$apt_options update -qq; \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get $$apt_options install -y -qq $(EXTRA_VOICE_PACKAGES)

# A disk too full for the virtualenv is named before pip fills it (asr/tools/disk_space.py). pip keeps
# no cache of what it downloads: the wheels would take a second copy of the space on a fresh machine.
$(SETUP_STAMP): pyproject.toml
	test -x $(PY) || python3 asr/tools/disk_space.py $(VENV)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --no-cache-dir "$(TORCH_PIN)"
	$(PY) -m pip install -q --no-cache-dir -e ".[train,dev]"
	touch $@

test: setup
	$(PY) -m pytest -q

demo: setup
	$(PY) cli.py demo --work-dir $(DEMO_DIR) --started-at $(STARTED_AT)

clean:
	rm -rf $(VENV) work
