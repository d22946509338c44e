"""nbgrader's configuration for the labs (INSTRUCTORS.md, "Grading").

The repository is the course directory: the chapters in labs/ are nbgrader's *source*
assignments (the instructor edition, with solutions and hidden tests, in English,
Spanish and Portuguese: NN-name.ipynb, NN-name.es.ipynb, NN-name.pt.ipynb), labs-student/
is its *release* folder (the student edition). From the repository's root:

    nbgrader generate_assignment 05-split-drivers --force   # labs-student/05-split-drivers/
    make editions                                          # every chapter, executed
"""

c = get_config()  # noqa: F821 (nbgrader's config loader defines it)

c.CourseDirectory.source_directory = "labs"
c.CourseDirectory.release_directory = "labs-student"
c.CourseDirectory.db_url = "sqlite:///build/gradebook.db"
# the text sources (NN-name.md and its translations, which hold the solutions) and
# jupytext's pairing are the instructor's: never released
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.md",
                            "jupytext.toml"]
# a solution region becomes the placeholder the exercise checks (labs/README.md)
c.ClearSolutions.code_stub = {"python": "answer = ...  # your answer"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
