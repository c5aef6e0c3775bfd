# Shortcuts for contributors and teachers. Each target is one command you can also run by hand.

.PHONY: demo test test-fast lint notebooks gradcheck docs student slides

demo:            ## the main job, on built-in data
	minitransformer demo

test:            ## every test, as CI runs them
	pytest

test-fast:       ## the fast tier
	pytest -m "not slow"

lint:
	ruff check .

gradcheck:       ## prove every op and layer, as a table
	minitransformer gradcheck

notebooks:       ## tutorials/*.py -> tutorials/*.ipynb (generated, never committed)
	python -m jupytext --to notebook tutorials/ch*.py

docs:            ## the docs site (docs/_build/html), offline; any warning fails the build
	python -m sphinx -W --keep-going -b html docs docs/_build/html

student:         ## the student edition of the tutorials (student/), graded by the chapter tests
	python tools/student_edition.py student

slides:          ## one offline deck per syllabus week (slides/index.html), from the chapters
	python tools/slides.py slides
