# Convenience targets; each one calls dev.py, which needs only Python.
.PHONY: demo test setup lint lock chaos ci

demo:
	python3 dev.py demo

test:
	python3 dev.py test

setup:
	python3 dev.py setup

lint:
	python3 dev.py lint

lock:
	python3 dev.py lock

chaos:
	python3 dev.py chaos

ci:
	bash .ci/run
